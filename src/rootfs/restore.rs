//! What a CRIU restore needs of the rootfs: the mount points create made (CRIU mounts onto
//! them but does not make them), and each mount's path as the container sees it, which is
//! how CRIU names a mount.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use oci_spec::runtime::Mount;

use super::mounts::{destination, rootfs_paths};
use super::Plan;

/// A mount's destination as a clean absolute path in the container (`a/./b` and `a//b`
/// written `a/b`: CRIU compares mount points as strings).
pub fn mount_point(plan: &Plan, bundle: &Path, rootfs: &Path, dest: &Path) -> String {
    let roots = rootfs_paths(bundle, &plan.root_path, Some(rootfs));
    let mut out = PathBuf::from("/");
    for c in destination(dest, &roots).components() {
        if let std::path::Component::Normal(n) = c {
            out.push(n);
        }
    }
    out.to_string_lossy().into_owned()
}

/// A bind mount's source on the host.
pub fn bind_source(bundle: &Path, m: &Mount) -> Result<PathBuf> {
    super::mounts::bind_source(bundle, m)
}

/// Makes the mount points of `plan` that are missing in the rootfs (a directory, or a file
/// for a bind mount of a file), as create made them, except under a tmpfs, whose content
/// CRIU restores itself.
pub fn make_mount_points(plan: &Plan, bundle: &Path, rootfs: &Path) -> Result<()> {
    let root: OwnedFd = std::fs::File::open(rootfs)
        .with_context(|| format!("opening the rootfs {}", rootfs.display()))?
        .into();
    let dest = |m: &Mount| mount_point(plan, bundle, rootfs, m.destination());
    let tmpfs: Vec<String> = plan
        .mounts
        .iter()
        .filter(|m| m.fstype == "tmpfs")
        .map(|m| dest(&m.mount))
        .collect();
    for m in &plan.mounts {
        let d = dest(&m.mount);
        if m.fstype == "cgroup" || m.fstype == "cgroup2" {
            continue;
        }
        if tmpfs.iter().any(|t| d.starts_with(&format!("{t}/"))) {
            continue;
        }
        let file = m.bind
            && bind_source(bundle, &m.mount)
                .ok()
                .and_then(|s| std::fs::metadata(s).ok())
                .is_some_and(|md| !md.is_dir());
        super::paths::ensure_target(root.as_fd(), Path::new(&d), file)
            .with_context(|| format!("mounts[{}]: making its mount point {d}", m.index))?;
    }
    Ok(())
}
