//! Checks the spec before anything is created, so bad input fails early with the field named
//! and leaves nothing behind. Fields skiff does not implement yet are refused here by name
//! rather than silently ignored.

use std::path::PathBuf;

use anyhow::{bail, ensure, Context, Result};
use oci_spec::runtime::Spec;

use crate::host::HostFacts;

/// Validates `spec` with what the host said about it; returns the absolute rootfs path.
pub fn validate(spec: &Spec, facts: &HostFacts) -> Result<PathBuf> {
    let v = spec.version();
    ensure!(
        v.starts_with("1."),
        "ociVersion: expected a 1.x runtime-spec version, got {v:?}"
    );
    let rootfs = rootfs(spec, facts)?;
    crate::process::lsm::validate(spec, facts.lsm)?;
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
