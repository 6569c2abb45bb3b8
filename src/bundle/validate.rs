//! Checks the spec before anything is created, so bad input fails early with the field named
//! and leaves nothing behind. Fields skiff does not implement yet are refused here by name
//! rather than silently ignored.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::host::HostFacts;

/// Validates `spec` with what the host said about it; returns the absolute rootfs path.
pub fn validate(spec: &Spec, facts: &HostFacts) -> Result<PathBuf> {
    let v = spec.version();
    ensure!(
        v.starts_with("1."),
        "ociVersion: expected a 1.x runtime-spec version, got {v:?}"
    );
    let rootfs = rootfs(spec, facts)?;
    process(spec)?;
    namespaces(spec, facts)?;
    mounts(spec)?;
    hooks(spec)?;
    crate::process::sysctl::validate(spec)?;
    crate::process::procattrs::validate(spec)?;
    crate::process::lsm::validate(spec, facts.lsm)?;
    crate::rootfs::idmapped::validate(spec)?;
    crate::rootfs::validate_propagation(spec)?;
    crate::process::netdev::validate(spec)?;
    unsupported(spec, facts)?;
    Ok(rootfs)
}

fn rootfs(spec: &Spec, facts: &HostFacts) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .context("root: missing (expected {\"path\": ...})")?;
    ensure!(
        !root.path().as_os_str().is_empty(),
        "root.path: must not be empty"
    );
    let (path, is_dir) = match &facts.rootfs {
        Some(Ok(found)) => found.clone(),
        Some(Err(e)) => bail!("{e}"),
        None => bail!("root.path: not looked up"),
    };
    ensure!(is_dir, "root.path: {} is not a directory", path.display());
    Ok(path)
}

fn process(spec: &Spec) -> Result<()> {
    let p = spec.process().as_ref().context("process: missing")?;
    let args = p.args().as_deref().unwrap_or_default();
    ensure!(
        !args.is_empty(),
        "process.args: must hold at least the program to run"
    );
    ensure!(
        p.cwd().is_absolute(),
        "process.cwd: must be an absolute path, got {:?}",
        p.cwd()
    );
    let mut seen = Vec::new();
    for r in p.rlimits().iter().flatten() {
        ensure!(
            !seen.contains(&r.typ()),
            "process.rlimits: {} given twice",
            r.typ()
        );
        seen.push(r.typ());
        ensure!(
            r.soft() <= r.hard(),
            "process.rlimits: {:?} soft limit {} is above its hard limit {}",
            r.typ(),
            r.soft(),
            r.hard()
        );
    }
    for e in p.env().iter().flatten() {
        ensure!(
            e.contains('='),
            "process.env: {e:?} is not of the form KEY=value"
        );
    }
    Ok(())
}

fn namespaces(spec: &Spec, facts: &HostFacts) -> Result<()> {
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
    Ok(())
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

fn mounts(spec: &Spec) -> Result<()> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        ensure!(
            !m.destination().as_os_str().is_empty(),
            "mounts[{i}].destination: must not be empty"
        );
    }
    Ok(())
}

/// Hook paths are absolute and timeouts positive (config.md, POSIX-platform hooks).
fn hooks(spec: &Spec) -> Result<()> {
    let Some(h) = spec.hooks() else { return Ok(()) };
    let kinds = [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
        ("createContainer", h.create_container()),
        ("startContainer", h.start_container()),
        ("poststart", h.poststart()),
        ("poststop", h.poststop()),
    ];
    for (kind, list) in kinds {
        for (i, hook) in list.iter().flatten().enumerate() {
            // runc runs createContainer hooks from the container's rootfs, where a relative
            // path names one of its files.
            ensure!(
                hook.path().is_absolute()
                    || (kind == "createContainer" && !hook.path().as_os_str().is_empty()),
                "hooks.{kind}[{i}].path: {:?} must be an absolute path",
                hook.path()
            );
            if let Some(t) = hook.timeout() {
                ensure!(
                    t > 0,
                    "hooks.{kind}[{i}].timeout: must be greater than zero, got {t}"
                );
            }
        }
    }
    Ok(())
}

/// Fields whose effect skiff cannot provide: refuse them by name instead of running a
/// container that silently lacks a requested restriction.
fn unsupported(spec: &Spec, facts: &HostFacts) -> Result<()> {
    let Some(l) = spec.linux() else { return Ok(()) };
    if l.intel_rdt().is_some() {
        if !facts.resctrl {
            bail!(
                "linux.intelRdt: this host has no resctrl filesystem at /sys/fs/resctrl \
                 (Intel RDT / AMD QoS is not available or not mounted)"
            );
        }
        bail!("linux.intelRdt: not supported by this version of skiff");
    }
    Ok(())
}
