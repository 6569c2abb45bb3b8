//! The container's filesystem view, set up by the child in its new mount namespace:
//!
//! 1. [`prepare`]: make the host mounts non-propagating into our namespace, bind the rootfs
//!    onto itself (pivot_root needs a mount point), the spec's mounts in order, devices and
//!    /dev symlinks, the cwd. Everything is resolved inside the rootfs (see [`paths`]).
//! 2. [`enter`]: pivot_root (or MS_MOVE + chroot with --no-pivot), dropping the host's tree.
//! 3. [`finish`]: maskedPaths, readonlyPaths, rootfsPropagation, read-only tmpfs mounts,
//!    root.readonly.

mod copyup;
mod devices;
mod helper;
pub mod idmapped;
pub mod mountinfo;
mod mounts;
pub mod options;
mod paths;
mod plan;
pub mod restore;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, SFlag};

pub use plan::{MountPlan, Plan};

use crate::sys::fs::open_in_root;
use crate::sys::mount::{self as m, MountAttr};

/// What a `cgroup` mount in the container can show: the cgroup2 hierarchy as the runtime
/// sees it, the container's own cgroup in it, and whether the container has a cgroup
/// namespace of its own (new or joined).
#[derive(Debug, Clone)]
pub struct CgroupView {
    pub hierarchy: PathBuf,
    pub dir: PathBuf,
    pub own_ns: bool,
}

/// Handles kept from before pivot_root.
#[derive(Debug)]
pub struct Prepared {
    /// The rootfs (a mount point now), as an O_PATH directory.
    pub root: OwnedFd,
    /// Its path in the runtime's view (what `--no-pivot` keeps out of reach).
    path: PathBuf,
    /// Read-only tmpfs mounts, read-write until [`finish`].
    late_ro: Vec<mounts::LateRo>,
}

pub fn prepare(
    plan: &Plan,
    bundle: &Path,
    rootfs: &Path,
    idmapped: &idmapped::Idmapped,
    cgroup_view: &CgroupView,
) -> Result<Prepared> {
    // As runc: the whole tree takes linux.rootfsPropagation (rslave by default) first, so a
    // volume whose host source is shared stays a peer of it under rshared (Kubernetes'
    // Bidirectional propagation) and a slave of it by default. Then the mount that holds the
    // rootfs is made private (only that one): the rootfs bind below must not propagate to the
    // host, and pivot_root refuses a shared parent. What the rootfs itself ends up with
    // is applied to / after pivot_root (finish).
    let flag = plan
        .propagation
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
        .context("linux.rootfsPropagation: applying it to the container's mount namespace")?;
    let canonical = std::fs::canonicalize(rootfs).unwrap_or_else(|_| rootfs.to_path_buf());
    holder_private(&canonical)?;
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("bind-mounting rootfs {} onto itself", rootfs.display()))?;
    let root = std::fs::File::open(rootfs)
        .map(OwnedFd::from)
        .with_context(|| format!("opening rootfs {}", rootfs.display()))?;

    let ctx = mounts::Ctx {
        bundle,
        rootfs: mounts::rootfs_paths(bundle, &plan.root_path, Some(rootfs)),
        rootless: plan.unprivileged,
        idmapped,
        cgroup_view,
        late_ro: Default::default(),
    };
    for mnt in &plan.mounts {
        mounts::mount_one(root.as_fd(), &ctx, mnt)?;
    }
    for d in &plan.devices {
        devices::create(root.as_fd(), d, plan.bind_devices)?;
    }
    devices::symlinks(root.as_fd())?;
    if let Some(cwd) = &plan.cwd {
        paths::mkdir_all(root.as_fd(), cwd, 0o755)
            .with_context(|| format!("process.cwd: creating {}", cwd.display()))?;
    }
    Ok(Prepared {
        root,
        // As mountinfo spells it (symlinks resolved).
        path: canonical,
        late_ro: ctx.late_ro.into_inner(),
    })
}

/// The container's /dev/null, opened without following a symlink and checked to be the real
/// 1:3 character device before anything is masked with it: an image or a racing process
/// could have made it a symlink to a procfs file, which masking would then bind read-write
/// (CVE-2025-31133).
fn open_devnull(root: BorrowedFd<'_>) -> Result<OwnedFd> {
    let fd = open_in_root(
        root,
        Path::new("/dev/null"),
        libc::O_PATH | libc::O_NOFOLLOW,
    )
    .context("opening /dev/null")?;
    let st = fstat(fd.as_fd()).context("stat of /dev/null")?;
    let is_chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_chr || nix::sys::stat::major(st.st_rdev) != 1 || nix::sys::stat::minor(st.st_rdev) != 3 {
        bail!(
            "/dev/null in the container is not the 1:3 character device: refusing to mask with it"
        );
    }
    Ok(fd)
}

/// Makes the prepared rootfs the process's `/`.
pub fn enter(p: &Prepared, no_pivot: bool) -> Result<()> {
    let old_root = std::fs::File::open("/").context("opening the old root")?;
    nix::unistd::fchdir(p.root.as_fd()).context("chdir into the rootfs")?;
    if no_pivot {
        hide_full_proc_and_sys(&p.path)?;
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .context("moving the rootfs onto / (--no-pivot)")?;
        nix::unistd::chroot(".").context("chroot into the rootfs (--no-pivot)")?;
    } else {
        crate::sys::mount::pivot_root_dot().context("pivot_root into the rootfs")?;
        // The old root is now stacked on "/". Step into it (not the new root: "." would name
        // the new root, and a recursive change there would undo the mounts' own
        // propagation), make it a slave so the unmount cannot reach the host, detach it.
        nix::unistd::fchdir(&old_root).context("chdir into the old root")?;
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .context("making the old root a slave before unmounting it")?;
        umount2(".", MntFlags::MNT_DETACH).context("unmounting the old root")?;
    }
    nix::unistd::chdir("/").context("chdir to the new /")?;
    Ok(())
}

/// Makes the mount that holds `rootfs` private when it is shared (pivot_root refuses a shared
/// parent, and the rootfs bind would propagate to the host), as runc and crun do: a rootfs
/// whose own mount is shared on the host then starts private whatever rootfsPropagation says
/// (a slave of the host needs a holder that is a slave there). An unbindable holder is made
/// private too: the rootfs could not be bound onto itself (runc 1.1 then fails, README
/// "Differences from runc").
fn holder_private(rootfs: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let holder = mountinfo::parse(&text)
        .into_iter()
        .filter(|e| rootfs.starts_with(&e.mount_point))
        .max_by_key(|e| e.mount_point.as_os_str().len())
        .with_context(|| format!("no mount holds the rootfs {}", rootfs.display()))?;
    if holder.shared || holder.unbindable {
        mount(
            None::<&str>,
            &holder.mount_point,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .with_context(|| {
            format!(
                "making {} (the mount holding the rootfs) private",
                holder.mount_point.display()
            )
        })?;
    }
    Ok(())
}

/// Without pivot_root the host's mounts stay in the container's mount namespace, out of
/// sight under the chroot but not out of the kernel's: a fresh procfs or sysfs may only be
/// mounted (in a nested user namespace, say) where the namespace already holds a fully
/// visible one, and the host's full /proc and /sys would count. So, as runc does, every
/// full procfs and sysfs mount outside the rootfs is detached first (made a slave so the
/// unmount cannot reach the host), or covered with a tmpfs where it cannot be unmounted.
fn hide_full_proc_and_sys(rootfs: &Path) -> Result<()> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .context("--no-pivot: reading /proc/self/mountinfo")?;
    for e in mountinfo::parse(&text) {
        let full = e.root == Path::new("/") && (e.fstype == "proc" || e.fstype == "sysfs");
        if !full || e.mount_point.starts_with(rootfs) {
            continue;
        }
        let p = &e.mount_point;
        let what = || {
            format!(
                "--no-pivot: hiding the host's {} at {}",
                e.fstype,
                p.display()
            )
        };
        match mount(
            None::<&str>,
            p,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            // Gone with a parent detached before it.
            Err(nix::errno::Errno::ENOENT) => continue,
            other => other.with_context(what)?,
        }
        match umount2(p, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM) => mount(
                Some("tmpfs"),
                p,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .with_context(what)?,
            Err(e) => return Err(e).with_context(what),
        }
    }
    Ok(())
}

/// Masked and read-only paths, rootfs propagation, read-only tmpfs mounts and a read-only
/// root, after `enter` (and after the console, which may be made under /dev).
pub fn finish(plan: &Plan, prepared: &Prepared) -> Result<()> {
    let root = std::fs::File::open("/")
        .map(OwnedFd::from)
        .context("opening /")?;
    // runc's order from here: read-only tmpfs mounts and the root first, then read-only
    // paths, then masked paths. It is visible: a /dev/null mask takes the flags of the mount
    // /dev/null is on (read-only under a read-only root without a /dev mount), and a mask
    // inside a read-only path is the mask, read-write, not a read-only copy of it.
    let ro = MountAttr {
        attr_set: m::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    for late in &prepared.late_ro {
        m::mount_setattr(late.fd.as_fd(), false, &ro).with_context(|| {
            format!(
                "mounts: making the tmpfs on {} read-only",
                late.dest.display()
            )
        })?;
    }
    if plan.readonly_root {
        m::mount_setattr(root.as_fd(), false, &ro)
            .context("root.readonly: remounting / read-only")?;
    }
    for path in &plan.readonly_paths {
        readonly(root.as_fd(), Path::new(path))
            .with_context(|| format!("linux.readonlyPaths: {path}"))?;
    }
    let mut masker = Masker {
        context: plan.tmpfs_context.clone(),
        ..Default::default()
    };
    for path in &plan.masked_paths {
        masker
            .mask(root.as_fd(), Path::new(path))
            .with_context(|| format!("linux.maskedPaths: {path}"))?;
    }
    // The rootfs itself takes the propagation type too (the runtime-spec: it "sets the
    // rootfs's mount propagation"), but only the root mount: recursively it would override
    // the volumes' own propagation options (Kubernetes' None volume next to a Bidirectional
    // one must stay private). Last, so the masks and read-only paths stay private too. runc
    // 1.1 leaves the root private instead (README "Differences from runc").
    if let Some(f) = plan.propagation {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            f - MsFlags::MS_REC,
            None::<&str>,
        )
        .context("linux.rootfsPropagation: applying it to /")?;
    }
    Ok(())
}

/// A masked or read-only path, resolved inside the container as runc resolves it (symlinks
/// followed, within the root): one that loops fails with ELOOP rather than being skipped.
fn open_existing(root: BorrowedFd<'_>, path: &Path) -> Result<Option<OwnedFd>> {
    match open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e).context("opening it"),
    }
}

/// Masks paths: directories get an empty read-only tmpfs (one for all of them, as runc
/// does: the first is mounted, the others are binds of it), everything else the container's
/// /dev/null.
#[derive(Default)]
struct Masker {
    /// linux.mountLabel's `context=` option for the masking tmpfs.
    context: Option<String>,
    devnull: Option<OwnedFd>,
    /// The root of the first masking tmpfs, once mounted.
    tmpfs: Option<OwnedFd>,
}

impl Masker {
    fn mask(&mut self, root: BorrowedFd<'_>, path: &Path) -> Result<()> {
        let Some(target) = open_existing(root, path)? else {
            return Ok(());
        };
        let st = fstat(target.as_fd()).context("stat")?;
        let dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
        let tree = match (&self.tmpfs, dir) {
            (Some(t), true) => m::open_tree(t.as_fd(), Path::new(""), m::OPEN_TREE_CLONE)
                .context("cloning the masking tmpfs")?,
            (None, true) => {
                // As runc's `mount tmpfs tmpfs -o ro`: source "tmpfs", a read-only superblock
                // as well as a read-only mount.
                let fs = m::fsopen("tmpfs").context("creating a tmpfs")?;
                m::fsconfig_set(fs.as_fd(), "source", Some("tmpfs"))
                    .and_then(|()| m::fsconfig_set(fs.as_fd(), "ro", None))
                    .context("configuring the masking tmpfs")?;
                if let Some(c) = &self.context {
                    let (k, v) = c.split_once('=').unwrap_or((c, ""));
                    m::fsconfig_set(fs.as_fd(), k, Some(v.trim_matches('"')))
                        .context("linux.mountLabel")?;
                }
                m::fsmount(fs.as_fd(), m::MOUNT_ATTR_RDONLY)
                    .context("creating a read-only tmpfs")?
            }
            (_, false) => {
                if self.devnull.is_none() {
                    self.devnull = Some(open_devnull(root)?);
                }
                let null = self.devnull.as_ref().expect("opened above");
                m::open_tree(null.as_fd(), Path::new(""), m::OPEN_TREE_CLONE)
                    .context("cloning /dev/null")?
            }
        };
        m::move_mount(tree.as_fd(), target.as_fd()).context("mounting over it")?;
        if dir && self.tmpfs.is_none() {
            // The tmpfs is now the top mount at `path`.
            self.tmpfs = open_existing(root, path)?;
        }
        Ok(())
    }
}

fn readonly(root: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let Some(target) = open_existing(root, path)? else {
        return Ok(());
    };
    let tree = m::open_tree(
        target.as_fd(),
        Path::new(""),
        m::OPEN_TREE_CLONE | m::AT_RECURSIVE,
    )
    .context("cloning its mount tree")?;
    let attr = MountAttr {
        attr_set: m::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    // Only the top mount, as runc remounts it: a mount under a read-only path keeps its own
    // flags (a read-write volume inside stays read-write).
    m::mount_setattr(tree.as_fd(), false, &attr).context("making it read-only")?;
    m::move_mount(tree.as_fd(), target.as_fd()).context("mounting over it")
}

/// `mkdir -p` of a container path, resolved inside `root`; an O_PATH fd of the directory.
pub fn mkdir_in_root(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd> {
    paths::mkdir_all(root, path, 0o755)
}

/// The init's stdio that is the host's /dev/null becomes the container's /dev/null (as
/// runc does after pivot_root): an fd of a host mount the container cannot see is one CRIU
/// refuses to checkpoint, and a shim or podman gives a detached container /dev/null as
/// stdin. Nothing to do when no stdio fd is /dev/null, or when the container cannot open
/// its own.
pub fn reopen_dev_null() -> Result<()> {
    use nix::sys::stat::makedev;
    let is_null = |fd: BorrowedFd<'_>| {
        fstat(fd).is_ok_and(|st| {
            SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
                && st.st_rdev == makedev(1, 3)
        })
    };
    let (i, o, e) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let stdio = [i.as_fd(), o.as_fd(), e.as_fd()];
    if !stdio.iter().any(|fd| is_null(*fd)) {
        return Ok(());
    }
    // The device program is in place before the init is born (runc sets it later): where
    // it denies /dev/null, or the container has none, the stdio stays as it was given.
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return Ok(());
    };
    for (i, fd) in stdio.iter().enumerate() {
        if is_null(*fd) {
            let r = match i {
                0 => nix::unistd::dup2_stdin(&null),
                1 => nix::unistd::dup2_stdout(&null),
                _ => nix::unistd::dup2_stderr(&null),
            };
            r.with_context(|| format!("making fd {i} the container's /dev/null"))?;
        }
    }
    Ok(())
}
