//! The spec's `mounts`, in order. Bind mounts go through the fd-based API (open_tree a clone of
//! the source, set its attributes while still detached, move_mount it onto the opened target),
//! so the target can't be swapped between check and mount (CVE-2021-30465). Other filesystems
//! are mounted with mount(2) onto the target's /proc/self/fd path, which names the already
//! opened inode, never a path the container could change.

use std::cell::RefCell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, SFlag};
use oci_spec::runtime::Mount;

use super::options::Options;
use super::paths;
use crate::sys::mount::{self as m, MountAttr};

/// What every mount of one container shares.
pub struct Ctx<'a> {
    pub bundle: &'a Path,
    /// The rootfs as the spec names it and as the kernel resolves it: a destination (or a
    /// bind source) under one of these is a path inside the container (see [`destination`]).
    pub rootfs: Vec<PathBuf>,
    /// Trees the parent prepared (see `idmapped`).
    pub idmapped: &'a super::idmapped::Idmapped,
    /// The container's cgroup on the host (see `cgroup2_bind`).
    pub cgroup_view: &'a super::CgroupView,
    /// skiff runs unprivileged (rootless): a sysfs the container's user namespace may not
    /// mount is the host's, bound, and a devpts `gid=` it does not map is left out
    /// (`filesystem`). As root, both fail as they do with runc.
    pub rootless: bool,
    /// Read-only tmpfs mounts, mounted read-write so that what belongs under them (devices,
    /// /dev/pts, the console, later mounts) can be made, and made read-only by `finish`.
    pub late_ro: RefCell<Vec<LateRo>>,
}

/// A mount to make read-only once the rootfs is complete.
#[derive(Debug)]
pub struct LateRo {
    pub dest: PathBuf,
    /// The mount's root, opened right after it was mounted.
    pub fd: OwnedFd,
}

/// The rootfs paths a destination or source may start with: `root.path` joined to the
/// bundle, and that path with its symlinks resolved.
pub fn rootfs_paths(bundle: &Path, root_path: &Path, rootfs: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if !root_path.as_os_str().is_empty() {
        let p = bundle.join(root_path);
        if let Ok(c) = std::fs::canonicalize(&p) {
            out.push(c);
        }
        out.push(p);
    }
    if let Some(r) = rootfs {
        out.push(r.to_path_buf());
    }
    out.dedup();
    out
}

/// The path inside the rootfs of a host path under it, if it is under it.
pub fn in_rootfs(path: &Path, rootfs: &[PathBuf]) -> Option<PathBuf> {
    rootfs
        .iter()
        .find_map(|r| path.strip_prefix(r).ok())
        .map(|rest| Path::new("/").join(rest))
}

/// A mount's destination as a path inside the container. One that already starts with the
/// rootfs path (`$ROOTFS/mnt/x`) is taken as that path, as runc does, rather than joined
/// under the rootfs a second time; a relative one is relative to `/` (runtime-spec 1.2).
pub fn destination(dest: &Path, rootfs: &[PathBuf]) -> PathBuf {
    if let Some(inside) = in_rootfs(dest, rootfs) {
        return inside;
    }
    if dest.is_absolute() {
        dest.to_path_buf()
    } else {
        Path::new("/").join(dest)
    }
}

/// Mounts one entry of `mounts` into the rootfs.
pub fn mount_one(root: BorrowedFd<'_>, ctx: &Ctx<'_>, mp: &super::MountPlan) -> Result<()> {
    let (i, mnt, o) = (mp.index, &mp.mount, &mp.options);
    let dest = destination(mnt.destination(), &ctx.rootfs);
    let fstype = mp.fstype.as_str();
    let what = || {
        format!(
            "mounts[{i}] ({} on {})",
            fstype_or_bind(fstype, o),
            dest.display()
        )
    };
    let prepared =
        ctx.idmapped.get(i).is_some() || ctx.idmapped.userns(i).is_some() || ctx.idmapped.helped(i);
    if mp.idmap.is_some() && !prepared {
        bail!("{}: the idmapped tree was not prepared", what());
    }
    if mp.bind {
        bind(root, ctx, i, &dest, mnt, o).with_context(what)
    } else {
        filesystem(root, ctx, &dest, fstype, mnt, o).with_context(what)
    }
}

fn fstype_or_bind<'a>(fstype: &'a str, o: &Options) -> &'a str {
    if o.bind {
        "bind"
    } else {
        fstype
    }
}

/// A bind mount's source on the host (a relative one is relative to the bundle, as runc
/// resolves it).
pub fn bind_source(bundle: &Path, mnt: &Mount) -> Result<PathBuf> {
    let src = mnt
        .source()
        .as_ref()
        .context("bind mount without a source")?;
    Ok(if src.is_absolute() {
        src.clone()
    } else {
        bundle.join(src)
    })
}

fn bind(
    root: BorrowedFd<'_>,
    ctx: &Ctx<'_>,
    i: usize,
    dest: &Path,
    mnt: &Mount,
    o: &Options,
) -> Result<()> {
    let own;
    let tree = match ctx.idmapped.get(i) {
        // Cloned and given its attributes by the parent (host root): only attach it.
        Some(t) => t.as_fd(),
        None => {
            // A source inside the rootfs is cloned here, in the container's mount
            // namespace, so it shows what the earlier mounts put there; it is resolved
            // inside the rootfs, like a destination.
            let src = bind_source(ctx.bundle, mnt)?;
            own = match in_rootfs(&src, &ctx.rootfs) {
                Some(_) if ctx.idmapped.helped(i) => ctx.idmapped.request(i)?,
                Some(inside) => super::idmapped::clone_tree(
                    &inside,
                    Some(root),
                    o,
                    ctx.idmapped.userns(i),
                    None,
                )?,
                None => super::idmapped::clone_tree(&src, None, o, ctx.idmapped.userns(i), None)?,
            };
            own.as_fd()
        }
    };
    let st = fstat(tree).context("stat of the source tree")?;
    let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    paths::ensure_target(root, dest, !is_dir)?;
    let target = paths::open_target(root, dest, false)?;
    m::move_mount(tree, target.as_fd()).context("attaching the bind mount")?;
    propagate(root, dest, o)
}

fn filesystem(
    root: BorrowedFd<'_>,
    ctx: &Ctx<'_>,
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
    if fstype == "cgroup2" && !ctx.cgroup_view.own_ns {
        // Without a cgroup namespace of its own the container shares the runtime's. A fresh
        // cgroup2 mount from the initial cgroup namespace re-applies the hierarchy's root
        // flags from its options (`nsdelegate`, `memory_recursiveprot`...) for the whole
        // host; binding the hierarchy shows the same tree and changes nothing. Data options
        // are not applied then (README "Differences from runc").
        let target = match paths::open_target(root, dest, false) {
            Err(e) if is_enoent(&e) => {
                paths::ensure_target(root, dest, false)?;
                paths::open_target(root, dest, false)?
            }
            other => other?,
        };
        drop(target);
        return cgroup2_bind(root, dest, o, &ctx.cgroup_view.hierarchy);
    }
    let strict = matches!(fstype, "proc" | "sysfs");
    let tmpfs = fstype == "tmpfs";
    let mut data = o.data.clone();
    if fstype == "devpts" && ctx.rootless {
        // A `gid=` the user namespace does not map makes the kernel refuse the mount (a
        // rootless config from a root template's `gid=5`): leave it out, as crun does; the
        // ptys then belong to the creator's group.
        data.retain(|d| match d.strip_prefix("gid=").map(str::parse::<u32>) {
            Some(Ok(gid)) => gid_mapped(gid),
            _ => true,
        });
    }
    let mut existing_dir = false;
    let target = if strict {
        // CVE-2019-19921, CVE-2023-27561, CVE-2023-28642: a /proc or /sys that is a symlink
        // or not a directory is refused before anything is created through it; only a
        // missing target is made (as a plain directory).
        match paths::open_target(root, dest, true) {
            Ok(fd) => fd,
            Err(e) if is_enoent(&e) => {
                paths::ensure_target(root, dest, false)?;
                paths::open_target(root, dest, true)?
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("filesystem {fstype:?} must be mounted on ordinary directory")
                })
            }
        }
    } else {
        match paths::open_target(root, dest, false) {
            Ok(fd) => {
                let st = fstat(fd.as_fd()).context("stat of the mount target")?;
                existing_dir =
                    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
                // A tmpfs over an image directory gets that directory's mode (set-id and
                // sticky bits included) unless `mode=` says otherwise, as with runc.
                if tmpfs && existing_dir && !data.iter().any(|d| d.starts_with("mode=")) {
                    data.push(format!("mode={:o}", st.st_mode & 0o7777));
                }
                fd
            }
            Err(e) if is_enoent(&e) => {
                paths::ensure_target(root, dest, false)?;
                paths::open_target(root, dest, false)?
            }
            Err(e) => return Err(e),
        }
    };
    // A read-only tmpfs is mounted read-write and made read-only last (`finish`), so the
    // devices, /dev/pts, the console and later mounts can still be made under it.
    let late_ro = tmpfs && o.flags.contains(MsFlags::MS_RDONLY);
    let flags = if late_ro {
        o.flags - MsFlags::MS_RDONLY
    } else {
        o.flags
    };
    let source = mnt
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| fstype.to_string());
    if tmpfs && o.tmpcopyup && existing_dir {
        let attrs = o.attr_set & !m::MOUNT_ATTR_RDONLY;
        let tree = super::copyup::tmpfs_with_copy(target.as_fd(), &source, &data, flags, attrs)?;
        m::move_mount(tree.as_fd(), target.as_fd()).context("attaching the tmpfs")?;
    } else {
        let data = data.join(",");
        let data = (!data.is_empty()).then_some(data.as_str());
        let mounted = mount(
            Some(source.as_str()),
            &paths::fd_path(target.as_fd()),
            Some(fstype),
            flags,
            data,
        );
        match mounted {
            Err(nix::errno::Errno::EPERM | nix::errno::Errno::EBUSY) if fstype == "cgroup2" => {
                return cgroup2_bind(root, dest, o, &ctx.cgroup_view.dir);
            }
            // A user namespace may mount sysfs only for a network namespace it owns: without
            // one of its own (rootless), the host's /sys is bound instead, recursively (its
            // submounts are locked to it), with the mount's flags; as runc does.
            Err(nix::errno::Errno::EPERM) if fstype == "sysfs" && ctx.rootless => {
                return bind_host_tree(root, dest, o, Path::new("/sys"), true)
                    .context("binding the host's /sys (sysfs cannot be mounted here)");
            }
            other => other.with_context(|| format!("mounting {fstype}"))?,
        }
    }
    if late_ro {
        let fd = paths::open_target(root, dest, false)?;
        ctx.late_ro.borrow_mut().push(LateRo {
            dest: dest.to_path_buf(),
            fd,
        });
    }
    if o.rec_attr_set != 0 || o.rec_attr_clr != 0 {
        let fresh = paths::open_target(root, dest, strict)?;
        recursive_attrs(fresh.as_fd(), o)?;
    }
    propagate(root, dest, o)
}

/// Binds `source`, a directory of the cgroup2 hierarchy, at `dest` with the mount's flags,
/// where a fresh cgroup2 mount will not do, as runc does: without a cgroup namespace of its
/// own the whole hierarchy (see `filesystem`; in a user namespace the kernel would refuse the
/// mount anyway, it wants the cgroup namespace's owner), and when the kernel refuses a
/// container with its own cgroup namespace (EPERM, EBUSY) the container's own cgroup.
fn cgroup2_bind(root: BorrowedFd<'_>, dest: &Path, o: &Options, source: &Path) -> Result<()> {
    bind_host_tree(root, dest, o, source, false)
        .with_context(|| format!("binding the cgroup directory {}", source.display()))
}

/// Binds `source`, a directory of the runtime's view, at `dest` with the mount's flags and
/// private propagation (the whole tree when `recursive`).
fn bind_host_tree(
    root: BorrowedFd<'_>,
    dest: &Path,
    o: &Options,
    source: &Path,
    recursive: bool,
) -> Result<()> {
    let what = || format!("cloning {}", source.display());
    let mut flags = m::OPEN_TREE_CLONE;
    if recursive {
        flags |= m::AT_RECURSIVE;
    }
    let tree = m::open_tree(nix::fcntl::AT_FDCWD, source, flags).with_context(what)?;
    let mut attr = MountAttr::default();
    if o.flags.contains(MsFlags::MS_RDONLY) {
        attr.attr_set |= m::MOUNT_ATTR_RDONLY;
    }
    for (flag, a) in [
        (MsFlags::MS_NOSUID, m::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, m::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, m::MOUNT_ATTR_NOEXEC),
    ] {
        if o.flags.contains(flag) {
            attr.attr_set |= a;
        }
    }
    // Private, as a fresh mount would be: a clone of the host's (shared) mount would
    // otherwise be its peer, and mounts would propagate both ways.
    attr.propagation = MsFlags::MS_PRIVATE.bits();
    m::mount_setattr(tree.as_fd(), recursive, &attr).context("setting its attributes")?;
    let target = paths::open_target(root, dest, false)?;
    m::move_mount(tree.as_fd(), target.as_fd()).context("attaching it")?;
    propagate(root, dest, o)
}

/// Whether `gid` is mapped in our user namespace (read before pivot_root, from the
/// runtime's /proc).
fn gid_mapped(gid: u32) -> bool {
    let map = std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
    map.lines().any(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        f.len() == 3 && (f[0]..f[0] + f[2]).contains(&u64::from(gid))
    })
}

fn is_enoent(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.raw_os_error() == Some(libc::ENOENT))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_under_the_rootfs_path_are_taken_as_is() {
        let r = vec![PathBuf::from("/b/rootfs"), PathBuf::from("/real/b/rootfs")];
        assert_eq!(
            destination(Path::new("/b/rootfs/mnt/x"), &r),
            Path::new("/mnt/x")
        );
        assert_eq!(
            destination(Path::new("/real/b/rootfs/y"), &r),
            Path::new("/y")
        );
        assert_eq!(destination(Path::new("/b/rootfs"), &r), Path::new("/"));
        // Component-wise, not a string prefix.
        assert_eq!(
            destination(Path::new("/b/rootfsX/z"), &r),
            Path::new("/b/rootfsX/z")
        );
        assert_eq!(destination(Path::new("rel/dir"), &r), Path::new("/rel/dir"));
        assert_eq!(
            destination(Path::new("/etc/hosts"), &r),
            Path::new("/etc/hosts")
        );
    }
}
