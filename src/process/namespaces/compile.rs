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
    }
    Ok(wants(spec))
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

/// linux.uidMappings and gidMappings as the kernel's uid_map and gid_map take them.
#[derive(Debug, Clone, Default)]
pub struct IdMaps {
    pub uid: String,
    pub gid: String,
}

impl IdMaps {
    pub fn compile(spec: &Spec) -> IdMaps {
        let linux = spec.linux().as_ref();
        let text = |maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| -> String {
            maps.into_iter()
                .flatten()
                .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                .collect()
        };
        IdMaps {
            uid: text(linux.and_then(|l| l.uid_mappings().as_ref())),
            gid: text(linux.and_then(|l| l.gid_mappings().as_ref())),
        }
    }
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
