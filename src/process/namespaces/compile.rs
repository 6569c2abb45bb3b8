//! linux.namespaces and what goes with them (id maps, time offsets), checked and compiled at
//! bundle time into what `Plan::open` and the init apply.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{bail, ensure, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::Want;
use crate::host::HostFacts;

/// linux.namespaces checked (against what the host said about the paths it names, and with
/// the id maps, hostname and time offsets that need one) and reduced to wants.
pub fn compile(spec: &Spec, facts: &HostFacts) -> Result<Vec<Want>> {
    let linux = spec.linux().as_ref();
    let nss = linux.and_then(|l| l.namespaces().as_ref());
    let mut seen = HashSet::new();
    for ns in nss.iter().copied().flatten() {
        ensure!(
            seen.insert(ns.typ()),
            "linux.namespaces: {:?} listed twice",
            ns.typ()
        );
        // An empty path means "a new namespace", as runc reads it.
        if let Some(path) = ns.path().as_ref().filter(|p| !p.as_os_str().is_empty()) {
            ensure!(
                facts.namespace_paths.get(path).copied().unwrap_or(false),
                "linux.namespaces: {:?} path {} does not exist",
                ns.typ(),
                path.display()
            );
        }
    }
    let has = |t| seen.contains(&t);
    if facts.caller.euid != 0 && !has(LinuxNamespaceType::User) {
        bail!(
            "linux.namespaces: skiff runs as uid {} (rootless), which needs a user namespace \
             in linux.namespaces (`skiff spec --rootless` writes one)",
            facts.caller.euid
        );
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        bail!("hostname: setting a hostname needs a UTS namespace in linux.namespaces");
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts)
    {
        bail!("domainname: setting a domainname needs a UTS namespace in linux.namespaces");
    }
    let maps = linux.is_some_and(|l| {
        l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
    });
    let new_user = nss.into_iter().flatten().any(|n| {
        n.typ() == LinuxNamespaceType::User
            && !n.path().as_ref().is_some_and(|p| !p.as_os_str().is_empty())
    });
    if maps && !has(LinuxNamespaceType::User) {
        bail!("linux.uidMappings: id mappings need a user namespace in linux.namespaces");
    }
    let offsets = linux.is_some_and(|l| l.time_offsets().as_ref().is_some_and(|o| !o.is_empty()));
    let time = nss
        .into_iter()
        .flatten()
        .find(|n| n.typ() == LinuxNamespaceType::Time);
    match time {
        None if offsets => {
            bail!("linux.timeOffsets: time offsets need a time namespace in linux.namespaces")
        }
        Some(t) if offsets && t.path().as_ref().is_some_and(|p| !p.as_os_str().is_empty()) => {
            bail!(
                "linux.timeOffsets: a joined time namespace keeps its own offsets (give either \
                 a path or timeOffsets)"
            )
        }
        _ => {}
    }
    let joined_user = nss
        .into_iter()
        .flatten()
        .find(|n| n.typ() == LinuxNamespaceType::User)
        .and_then(|n| n.path().clone())
        .filter(|p| !p.as_os_str().is_empty());
    if let (Some(path), true) = (joined_user, maps) {
        let found = match &facts.joined_user_maps {
            Some(Ok(m)) => m,
            Some(Err(e)) => bail!("{e}"),
            None => bail!(
                "linux.namespaces: the maps of {} were not read",
                path.display()
            ),
        };
        same_maps_as_joined(linux.expect("namespaces come from linux"), &path, found)?;
    }
    if new_user {
        let l = linux.expect("namespaces come from linux");
        ensure!(
            l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
                && l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty()),
            "linux.uidMappings/gidMappings: a new user namespace needs both mappings"
        );
        let c = &facts.caller;
        if c.euid != 0 {
            let uid = Ids {
                field: "linux.uidMappings",
                own: c.euid,
                file: "/etc/subuid",
                ranges: &c.subuids,
                tool: c.newuidmap.is_some(),
                tool_name: "newuidmap",
            };
            uid.check(l.uid_mappings().as_deref().unwrap_or_default())?;
            let gid = Ids {
                field: "linux.gidMappings",
                own: c.egid,
                file: "/etc/subgid",
                ranges: &c.subgids,
                tool: c.newgidmap.is_some(),
                tool_name: "newgidmap",
            };
            gid.check(l.gid_mappings().as_deref().unwrap_or_default())?;
        }
    }
    Ok(wants(spec))
}

/// What an unprivileged caller may map (user_namespaces(7)): its own id, one id long, which
/// it writes itself; ranges that subuid(5)/subgid(5) give it, written by the setuid helper.
struct Ids<'a> {
    field: &'static str,
    own: u32,
    file: &'static str,
    ranges: &'a [(u32, u32)],
    tool: bool,
    tool_name: &'static str,
}

impl Ids<'_> {
    fn check(&self, maps: &[oci_spec::runtime::LinuxIdMapping]) -> Result<()> {
        let given = |r: &[(u32, u32)]| {
            r.iter()
                .map(|(f, n)| format!("{f}-{}", u64::from(*f) + u64::from(*n) - 1))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (i, m) in maps.iter().enumerate() {
            let (first, size) = (u64::from(m.host_id()), u64::from(m.size()));
            if m.host_id() == self.own && size == 1 {
                continue;
            }
            let granted = self.ranges.iter().any(|(f, n)| {
                let (f, n) = (u64::from(*f), u64::from(*n));
                first >= f && first + size <= f + n
            });
            let (field, own, file) = (self.field, self.own, self.file);
            let last = (first + size).saturating_sub(1);
            if !granted {
                let have = if self.ranges.is_empty() {
                    format!("{file} gives it none")
                } else {
                    format!("{file} gives it {}", given(self.ranges))
                };
                bail!(
                    "{field}[{i}]: host ids {first}-{last} are not this user's to map \
                     (unprivileged, id {own}: only {own} itself, one id long, and ranges that \
                     {have})"
                );
            }
            if !self.tool {
                bail!(
                    "{field}[{i}]: mapping host ids {first}-{last} needs {} (Debian's uidmap \
                     package), which is not in $PATH",
                    self.tool_name
                );
            }
        }
        Ok(())
    }
}

/// A joined user namespace keeps its own maps. containerd and CRI-O pass the maps too, so
/// (like runc) matching ones are accepted and different ones are an error.
fn same_maps_as_joined(
    l: &oci_spec::runtime::Linux,
    path: &Path,
    (uid, gid): &(String, String),
) -> Result<()> {
    let norm = |text: &str| {
        let mut v: Vec<Vec<u64>> = text
            .lines()
            .map(|l| {
                l.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
            .filter(|v: &Vec<u64>| v.len() == 3)
            .collect();
        v.sort();
        v
    };
    let spec = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        let mut v: Vec<Vec<u64>> = m
            .into_iter()
            .flatten()
            .map(|m| vec![m.container_id() as u64, m.host_id() as u64, m.size() as u64])
            .collect();
        v.sort();
        v
    };
    for (field, theirs, ours) in [
        (
            "linux.uidMappings",
            norm(uid),
            spec(l.uid_mappings().as_ref()),
        ),
        (
            "linux.gidMappings",
            norm(gid),
            spec(l.gid_mappings().as_ref()),
        ),
    ] {
        if !ours.is_empty() && ours != theirs {
            bail!(
                "{field}: the user namespace joined at {} has other mappings (give either the \
                 path or matching mappings)",
                path.display()
            );
        }
    }
    Ok(())
}

/// linux.namespaces as wants (an empty path means a new namespace, as runc reads it).
fn wants(spec: &Spec) -> Vec<Want> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .map(|n| Want {
            typ: n.typ(),
            path: n.path().clone().filter(|p| !p.as_os_str().is_empty()),
        })
        .collect()
}

/// linux.uidMappings and gidMappings as the kernel's uid_map and gid_map take them, and how
/// they are written: by skiff itself (root, or an unprivileged caller's own ids), or by
/// newuidmap/newgidmap (subordinate ranges; `Ids::check` allowed them).
#[derive(Debug, Clone, Default)]
pub struct IdMaps {
    pub uid: String,
    pub gid: String,
    /// The helper for each map, when an unprivileged caller maps more than its own id.
    pub uid_helper: Option<std::path::PathBuf>,
    pub gid_helper: Option<std::path::PathBuf>,
    /// An unprivileged caller maps only its own gid: setgroups(2) must be denied in the
    /// namespace before the kernel lets it write gid_map.
    pub deny_setgroups: bool,
}

impl IdMaps {
    pub fn compile(spec: &Spec, caller: &crate::host::Caller) -> IdMaps {
        use oci_spec::runtime::LinuxIdMapping;
        let linux = spec.linux().as_ref();
        let uid = linux
            .and_then(|l| l.uid_mappings().clone())
            .unwrap_or_default();
        let gid = linux
            .and_then(|l| l.gid_mappings().clone())
            .unwrap_or_default();
        let text = map_text;
        let only_own = |maps: &[LinuxIdMapping], own: u32| {
            maps.iter().all(|m| m.host_id() == own && m.size() == 1)
        };
        let unprivileged = caller.euid != 0;
        IdMaps {
            uid: text(&uid),
            gid: text(&gid),
            uid_helper: (unprivileged && !only_own(&uid, caller.euid))
                .then(|| caller.newuidmap.clone())
                .flatten(),
            gid_helper: (unprivileged && !only_own(&gid, caller.egid))
                .then(|| caller.newgidmap.clone())
                .flatten(),
            deny_setgroups: unprivileged && !gid.is_empty() && only_own(&gid, caller.egid),
        }
    }
}

/// Id mappings as uid_map/gid_map (and newuidmap's arguments) take them.
pub fn map_text(maps: &[oci_spec::runtime::LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// linux.timeOffsets as the kernel's timens_offsets takes them (empty without offsets).
pub fn time_offsets(spec: &Spec) -> String {
    let offsets = spec
        .linux()
        .as_ref()
        .and_then(|x| x.time_offsets().as_ref());
    let mut text = String::new();
    for (clock, o) in offsets.into_iter().flatten() {
        text.push_str(&format!(
            "{clock} {} {}\n",
            o.secs().unwrap_or(0),
            o.nanosecs().unwrap_or(0)
        ));
    }
    text
}
