//! The spec's `mounts`, in order. Bind mounts go through the fd-based API (open_tree a clone of
//! the source, set its attributes while still detached, move_mount it onto the opened target),
//! so the target can't be swapped between check and mount (CVE-2021-30465). Other filesystems
//! are mounted with mount(2) onto the target's /proc/self/fd path, which names the already
//! opened inode, never a path the container could change.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::mount::mount;
use oci_spec::runtime::{Mount, Spec};

use super::options::Options;
use super::paths;
use crate::sys::mount::{self as m, MountAttr};

/// What every mount of one container shares.
pub struct Ctx<'a> {
    pub bundle: &'a Path,
    pub spec: &'a Spec,
    /// Idmapped trees the parent prepared (see `idmapped`).
    pub idmapped: &'a super::idmapped::Idmapped,
}

/// Mounts entry `i` of `mounts` into the rootfs.
pub fn mount_one(root: BorrowedFd<'_>, ctx: &Ctx<'_>, i: usize, mnt: &Mount) -> Result<()> {
    let bundle = ctx.bundle;
    let dest = mnt.destination();
    let dest = if dest.is_absolute() {
        dest.clone()
    } else {
        Path::new("/").join(dest)
    };
    let fstype = mnt.typ().as_deref().unwrap_or("");
    let mut o = Options::parse(mnt.options().as_deref().unwrap_or_default());
    if let Some(c) = crate::lsm::mount_context(ctx.spec, fstype) {
        o.data.push(c);
    }
    let what = || {
        format!(
            "mounts[{i}] ({} on {})",
            fstype_or_bind(fstype, &o),
            dest.display()
        )
    };
    let pre = ctx.idmapped.get(i);
    if pre.is_none() && (o.idmap || mnt.uid_mappings().is_some() || mnt.gid_mappings().is_some()) {
        bail!("{}: the idmapped tree was not prepared", what());
    }
    if o.bind || fstype == "bind" {
        bind(root, bundle, &dest, mnt, &o, pre).with_context(what)
    } else {
        filesystem(root, &dest, fstype, mnt, &o).with_context(what)
    }
}

fn fstype_or_bind<'a>(fstype: &'a str, o: &Options) -> &'a str {
    if o.bind {
        "bind"
    } else {
        fstype
    }
}

fn bind(
    root: BorrowedFd<'_>,
    bundle: &Path,
    dest: &Path,
    mnt: &Mount,
    o: &Options,
    idmapped: Option<&OwnedFd>,
) -> Result<()> {
    let src = mnt
        .source()
        .as_ref()
        .context("bind mount without a source")?;
    // A relative source is relative to the bundle, as runc resolves it.
    let src: PathBuf = if src.is_absolute() {
        src.clone()
    } else {
        bundle.join(src)
    };
    let meta = std::fs::metadata(&src).with_context(|| format!("source {}", src.display()))?;
    paths::ensure_target(root, dest, !meta.is_dir())?;
    let target = paths::open_target(root, dest, false)?;
    if let Some(tree) = idmapped {
        // Cloned, idmapped and given its attributes by the parent: only attach it.
        m::move_mount(tree.as_fd(), target.as_fd()).context("attaching the idmapped mount")?;
        return propagate(root, dest, o);
    }
    let mut flags = m::OPEN_TREE_CLONE;
    if o.recursive {
        flags |= m::AT_RECURSIVE;
    }
    let cwd = nix::fcntl::AT_FDCWD;
    let tree = m::open_tree(cwd, &src, flags)
        .with_context(|| format!("cloning mount tree of {}", src.display()))?;
    let attr = MountAttr {
        attr_set: o.attr_set,
        attr_clr: o.attr_clr,
        ..Default::default()
    };
    if attr != MountAttr::default() {
        m::mount_setattr(tree.as_fd(), false, &attr).context("setting mount attributes")?;
    }
    recursive_attrs(tree.as_fd(), o)?;
    m::move_mount(tree.as_fd(), target.as_fd()).context("attaching the bind mount")?;
    propagate(root, dest, o)
}

fn filesystem(
    root: BorrowedFd<'_>,
    dest: &Path,
    fstype: &str,
    mnt: &Mount,
    o: &Options,
) -> Result<()> {
    // skiff is cgroup-v2-only: a "cgroup" mount (runc's default spec) is the container's view
    // of the unified hierarchy, scoped by its cgroup namespace.
    let fstype = if fstype == "cgroup" {
        "cgroup2"
    } else {
        fstype
    };
    if fstype.is_empty() {
        bail!("type: missing (and the options hold no bind/rbind)");
    }
    let strict = matches!(fstype, "proc" | "sysfs");
    paths::ensure_target(root, dest, false)?;
    let target = paths::open_target(root, dest, strict)?;
    let source = mnt
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| fstype.to_string());
    let data = o.data.join(",");
    let data = (!data.is_empty()).then_some(data.as_str());
    // A v1 "cgroup" mount's data options name v1 controllers, which mean nothing to cgroup2.
    let data = if fstype == "cgroup2" { None } else { data };
    mount(
        Some(source.as_str()),
        &paths::fd_path(target.as_fd()),
        Some(fstype),
        o.flags,
        data,
    )
    .with_context(|| format!("mounting {fstype}"))?;
    if o.rec_attr_set != 0 || o.rec_attr_clr != 0 {
        let fresh = paths::open_target(root, dest, strict)?;
        recursive_attrs(fresh.as_fd(), o)?;
    }
    propagate(root, dest, o)
}

fn recursive_attrs(fd: BorrowedFd<'_>, o: &Options) -> Result<()> {
    if o.rec_attr_set == 0 && o.rec_attr_clr == 0 {
        return Ok(());
    }
    let attr = MountAttr {
        attr_set: o.rec_attr_set,
        attr_clr: o.rec_attr_clr,
        ..Default::default()
    };
    m::mount_setattr(fd, true, &attr).context("setting recursive mount attributes")
}

/// Applies propagation options to the mount now at `dest` (re-opened: the earlier fd names
/// the directory underneath the new mount).
fn propagate(root: BorrowedFd<'_>, dest: &Path, o: &Options) -> Result<()> {
    if o.propagation.is_empty() {
        return Ok(());
    }
    let fd = paths::open_target(root, dest, false)?;
    for p in &o.propagation {
        mount(
            None::<&str>,
            &paths::fd_path(fd.as_fd()),
            None::<&str>,
            *p,
            None::<&str>,
        )
        .with_context(|| format!("setting propagation {p:?}"))?;
    }
    Ok(())
}
