//! Creating and opening paths inside the rootfs without ever leaving it: every lookup goes
//! through openat2(RESOLVE_IN_ROOT), and creation happens with *at() calls on a parent fd that
//! was itself resolved in-root, so swapping a component for a symlink mid-way cannot redirect
//! the creation to the host (CVE-2024-45310 class).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::stat::{mknodat, Mode, SFlag};

use crate::sys::fs::{
    open_in_root, openat2, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS,
};

/// Splits a container path into normal components (a relative destination is relative to
/// "/", as runtime-spec 1.2 says). `..` is kept for the kernel to clamp at the root.
fn components(path: &Path) -> Vec<&std::ffi::OsStr> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            Component::ParentDir => Some(std::ffi::OsStr::new("..")),
            _ => None,
        })
        .collect()
}

fn io_kind(e: &io::Error, errno: i32) -> bool {
    e.raw_os_error() == Some(errno)
}

/// Opens a directory inside the root as O_PATH.
pub fn open_dir(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    open_in_root(root, path, libc::O_PATH | libc::O_DIRECTORY)
}

/// `mkdir -p` inside the root; returns an O_PATH fd of the final directory. A component that
/// is a dangling symlink is followed the way the kernel would follow it with the rootfs as
/// `/` (the directories it names are created inside the rootfs), never onto the host.
pub fn mkdir_all(root: BorrowedFd<'_>, path: &Path, mode: u32) -> Result<OwnedFd> {
    let mut todo: VecDeque<OsString> = components(path).into_iter().map(OsString::from).collect();
    let mut cur = PathBuf::from("/");
    let mut fd = open_dir(root, &cur).context("opening the rootfs")?;
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        let next = cur.join(&c);
        match open_dir(root, &next) {
            Ok(f) => {
                (fd, cur) = (f, next);
                continue;
            }
            Err(e) if io_kind(&e, libc::ENOENT) => {}
            Err(e) => {
                return Err(e).with_context(|| format!("opening directory {}", next.display()))
            }
        }
        match nix::sys::stat::mkdirat(fd.as_fd(), c.as_os_str(), Mode::from_bits_truncate(mode)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => {
                return Err(e).with_context(|| format!("creating directory {}", next.display()))
            }
        }
        match open_dir(root, &next) {
            Ok(f) => (fd, cur) = (f, next),
            Err(e) if io_kind(&e, libc::ENOENT) => {
                // It exists but does not resolve: a dangling symlink. Follow it in-root.
                links += 1;
                if links > 40 {
                    bail!("too many levels of symbolic links under {}", path.display());
                }
                let target = nix::fcntl::readlinkat(fd.as_fd(), c.as_os_str())
                    .with_context(|| format!("reading symlink {}", next.display()))?;
                let target = PathBuf::from(target);
                if target.is_absolute() {
                    cur = PathBuf::from("/");
                    fd = open_dir(root, &cur).context("opening the rootfs")?;
                }
                for t in components(&target).into_iter().rev() {
                    todo.push_front(t.to_os_string());
                }
            }
            Err(e) => {
                return Err(e).with_context(|| format!("opening directory {}", next.display()))
            }
        }
    }
    Ok(fd)
}

/// Makes sure a mount target exists inside the root: a directory, or (for `file`) an empty
/// regular file created with mknodat, which never follows a symlink at the last component.
/// A final component that is a dangling symlink is followed inside the rootfs, link by link,
/// and the file is created where the chain ends (as the kernel would with the rootfs as `/`).
pub fn ensure_target(root: BorrowedFd<'_>, path: &Path, file: bool) -> Result<()> {
    if !file {
        mkdir_all(root, path, 0o755)?;
        return Ok(());
    }
    let mut cur = path.to_path_buf();
    for _ in 0..=40 {
        match open_in_root(root, &cur, libc::O_PATH) {
            Ok(_) => return Ok(()),
            Err(e) if io_kind(&e, libc::ENOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("opening {}", cur.display())),
        }
        let (parent, name) = split(&cur)?;
        let dir = mkdir_all(root, parent, 0o755)?;
        match mknodat(
            dir.as_fd(),
            name,
            SFlag::S_IFREG,
            Mode::from_bits_truncate(0o644),
            0,
        ) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("creating file {}", cur.display())),
        }
        // Something is there but does not resolve: a dangling symlink (anything else was
        // made meanwhile and is the target now).
        let target = match nix::fcntl::readlinkat(dir.as_fd(), name) {
            Ok(t) => PathBuf::from(t),
            Err(nix::errno::Errno::EINVAL) => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading symlink {}", cur.display())),
        };
        cur = if target.is_absolute() {
            target
        } else {
            parent.join(target)
        };
    }
    bail!("too many levels of symbolic links under {}", path.display())
}

/// (parent, last component) of a container path.
pub fn split(path: &Path) -> Result<(&Path, &std::ffi::OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => Ok((p, n)),
        _ => bail!("{} has no final component", path.display()),
    }
}

/// Opens a mount target in the root. For /proc and /sys (`strict`), no symlink anywhere on
/// the path is allowed and the target must be a directory (CVE-2019-19921, CVE-2023-27561).
pub fn open_target(root: BorrowedFd<'_>, path: &Path, strict: bool) -> Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let r = if strict {
        openat2(
            root,
            rel,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS,
        )
    } else {
        open_in_root(root, path, libc::O_PATH)
    };
    r.with_context(|| {
        if strict {
            format!(
                "opening mount target {} (it must be a real directory, not a symlink)",
                path.display()
            )
        } else {
            format!("opening mount target {}", path.display())
        }
    })
}

/// The "/proc/self/fd/N" path of an fd, for the syscalls that only take paths. Only used
/// before pivot_root, while the host's /proc is still our /proc.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}
