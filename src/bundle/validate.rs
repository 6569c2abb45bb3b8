//! Checks the spec before anything is created, so bad input fails early with the field named
//! and leaves nothing behind. Fields skiff does not implement yet are refused here by name
//! rather than silently ignored.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Validates `spec` for a bundle at `dir`; returns the absolute rootfs path.
pub fn validate(spec: &Spec, dir: &Path) -> Result<PathBuf> {
    let v = spec.version();
    ensure!(
        v.starts_with("1."),
        "ociVersion: expected a 1.x runtime-spec version, got {v:?}"
    );
    let rootfs = rootfs(spec, dir)?;
    process(spec)?;
    namespaces(spec)?;
    mounts(spec)?;
    hooks(spec)?;
    unsupported(spec)?;
    Ok(rootfs)
}

fn rootfs(spec: &Spec, dir: &Path) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .context("root: missing (expected {\"path\": ...})")?;
    ensure!(
        !root.path().as_os_str().is_empty(),
        "root.path: must not be empty"
    );
    let path = dir.join(root.path());
    let path =
        std::fs::canonicalize(&path).with_context(|| format!("root.path: {}", path.display()))?;
    ensure!(
        path.is_dir(),
        "root.path: {} is not a directory",
        path.display()
    );
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

fn namespaces(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let nss = linux.and_then(|l| l.namespaces().as_ref());
    let mut seen = HashSet::new();
    for ns in nss.iter().copied().flatten() {
        ensure!(
            seen.insert(ns.typ()),
            "linux.namespaces: {:?} listed twice",
            ns.typ()
        );
        if let Some(path) = ns.path() {
            ensure!(
                path.exists(),
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
    let new_user = nss
        .into_iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if maps && !has(LinuxNamespaceType::User) {
        bail!("linux.uidMappings: id mappings need a user namespace in linux.namespaces");
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
            ensure!(
                hook.path().is_absolute(),
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

/// Fields whose effect skiff cannot provide yet: refuse them by name instead of running a
/// container that silently lacks a requested restriction.
fn unsupported(spec: &Spec) -> Result<()> {
    let no =
        |field: &str| -> Result<()> { bail!("{field}: not supported by this version of skiff") };
    if let Some(p) = spec.process() {
        if p.apparmor_profile()
            .as_deref()
            .is_some_and(|s| !s.is_empty())
        {
            no("process.apparmorProfile")?;
        }
        if p.selinux_label().as_deref().is_some_and(|s| !s.is_empty()) {
            no("process.selinuxLabel")?;
        }
        if p.io_priority().is_some() {
            no("process.ioPriority")?;
        }
        if p.scheduler().is_some() {
            no("process.scheduler")?;
        }
        if p.exec_cpu_affinity().is_some() {
            no("process.execCPUAffinity")?;
        }
    }
    let Some(l) = spec.linux() else { return Ok(()) };
    if l.sysctl().as_ref().is_some_and(|s| !s.is_empty()) {
        no("linux.sysctl")?;
    }
    if l.intel_rdt().is_some() {
        no("linux.intelRdt")?;
    }
    if l.personality().is_some() {
        no("linux.personality")?;
    }
    if l.memory_policy().is_some() {
        no("linux.memoryPolicy")?;
    }
    if l.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        no("linux.netDevices")?;
    }
    if l.mount_label().as_deref().is_some_and(|s| !s.is_empty()) {
        no("linux.mountLabel")?;
    }
    Ok(())
}
