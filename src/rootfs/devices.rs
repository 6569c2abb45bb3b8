//! /dev inside the container: the default devices every container gets, the spec's
//! `linux.devices`, and the standard symlinks. Nodes are created with mknodat on an in-root
//! directory fd; inside a user namespace (where mknod is not allowed) the host's device is
//! bind-mounted onto an empty file instead.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::paths;
use crate::sys::mount as m;

/// A device node to create.
#[derive(Debug, Clone)]
pub struct Dev {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// From linux.devices: an existing file that is not this device is an error (config-linux
    /// "Devices"). The defaults leave an image's existing nodes alone.
    pub strict: bool,
}

/// The devices every container gets (runtime-spec "Default Devices").
pub fn defaults() -> Vec<Dev> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(n, major, minor)| Dev {
        path: PathBuf::from("/dev").join(n),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
        strict: false,
    })
    .collect()
}

pub fn from_spec(i: usize, d: &LinuxDevice) -> Result<Dev> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        other => bail!("linux.devices[{i}].type: {other:?} is not one of c, u, b, p"),
    };
    if !d.path().is_absolute() {
        bail!(
            "linux.devices[{i}].path: {} must be absolute",
            d.path().display()
        );
    }
    Ok(Dev {
        path: d.path().clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
        strict: true,
    })
}

/// Creates `dev` in the root (replacing nothing that exists already).
pub fn create(root: BorrowedFd<'_>, dev: &Dev, in_userns: bool) -> Result<()> {
    let (parent, name) = paths::split(&dev.path)?;
    let dir = paths::mkdir_all(root, parent, 0o755)?;
    if in_userns {
        return bind_host(root, dev);
    }
    let rdev = makedev(dev.major, dev.minor);
    // The umask must not eat the requested mode bits; fchmodat below is not possible on
    // an O_PATH dir fd for the node, so create with the full mode directly.
    let old = crate::sys::misc::umask(0);
    let r = mknodat(
        dir.as_fd(),
        name,
        dev.kind,
        Mode::from_bits_truncate(dev.mode),
        rdev,
    );
    crate::sys::misc::umask(old);
    match r {
        Ok(()) => {}
        Err(nix::errno::Errno::EEXIST) if !dev.strict => return Ok(()),
        Err(nix::errno::Errno::EEXIST) => return check_existing(dir.as_fd(), name, dev),
        Err(nix::errno::Errno::EPERM) => bail!(
            "creating device {}: EPERM (is mknod of it, {}:{}, denied by linux.resources.devices?)",
            dev.path.display(),
            dev.major,
            dev.minor
        ),
        Err(e) => return Err(e).with_context(|| format!("creating device {}", dev.path.display())),
    }
    fchownat(
        dir.as_fd(),
        name,
        Some(Uid::from_raw(dev.uid)),
        Some(Gid::from_raw(dev.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .with_context(|| format!("chown of device {}", dev.path.display()))
}

fn check_existing(dir: BorrowedFd<'_>, name: &std::ffi::OsStr, dev: &Dev) -> Result<()> {
    let st = nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .with_context(|| format!("stat of existing {}", dev.path.display()))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    // runc's wording (dev.bats "existing device node conflicts").
    if kind != dev.kind {
        bail!(
            "linux.devices: {} already exists: {} has incorrect ftype (not the requested \
             device {}:{})",
            dev.path.display(),
            dev.path.display(),
            dev.major,
            dev.minor
        );
    }
    let have = (
        nix::sys::stat::major(st.st_rdev),
        nix::sys::stat::minor(st.st_rdev),
    );
    if dev.kind != SFlag::S_IFIFO && have != (dev.major, dev.minor) {
        bail!(
            "linux.devices: {} already exists: {} has incorrect major:minor: {}:{} doesn't \
             match expected {}:{}",
            dev.path.display(),
            dev.path.display(),
            have.0,
            have.1,
            dev.major,
            dev.minor
        );
    }
    Ok(())
}

fn bind_host(root: BorrowedFd<'_>, dev: &Dev) -> Result<()> {
    paths::ensure_target(root, &dev.path, true)?;
    let target = paths::open_target(root, &dev.path, false)?;
    let tree = m::open_tree(nix::fcntl::AT_FDCWD, &dev.path, m::OPEN_TREE_CLONE)
        .with_context(|| format!("cloning host device {}", dev.path.display()))?;
    m::move_mount(tree.as_fd(), target.as_fd())
        .with_context(|| format!("bind-mounting host device {}", dev.path.display()))
}

/// The /dev symlinks runc creates (and /dev/ptmx → pts/ptmx, the devpts instance's ptmx).
pub fn symlinks(root: BorrowedFd<'_>) -> Result<()> {
    let dev = paths::mkdir_all(root, Path::new("/dev"), 0o755)?;
    let links = [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ];
    for (name, target) in links {
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("creating symlink /dev/{name}")),
        }
    }
    Ok(())
}
