//! `tmpcopyup` (runc's extension; podman asks for it with `--tmpfs`): a tmpfs mounted over a
//! directory of the image starts with a copy of what that directory holds (modes, owners,
//! timestamps, symlinks, nested directories, device nodes and fifos).
//!
//! The tmpfs is built detached (fsopen/fsmount), so it is reachable by no path while it is
//! filled; the copy reads the directory through the fd that was resolved inside the rootfs
//! and writes into the detached tree, every step an *at() call on a directory fd with
//! O_NOFOLLOW, so a symlink in the image (or one swapped in meanwhile) is copied as a symlink
//! and never followed out of the rootfs. The caller then move_mounts the tree onto the target.
//! Hard links are copied as separate files; extended attributes are not copied.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use anyhow::{bail, Context, Result};
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{
    fchmod, fstat, fstatat, futimens, mkdirat, mknodat, utimensat, FileStat, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

use crate::sys::mount as m;

/// Nesting deeper than this is refused rather than followed (an image cannot make us recurse
/// without bound).
const MAX_DEPTH: usize = 512;

/// A detached tmpfs named `source` (as /proc/mounts shows it), configured with `data`
/// (`size=`, `mode=`, ...), superblock flags from `flags` and mount attributes `attrs`,
/// holding a copy of the directory `src`.
pub fn tmpfs_with_copy(
    src: BorrowedFd<'_>,
    source: &str,
    data: &[String],
    flags: MsFlags,
    attrs: u64,
) -> Result<OwnedFd> {
    let fs = m::fsopen("tmpfs").context("creating a tmpfs")?;
    m::fsconfig_set(fs.as_fd(), "source", Some(source)).context("tmpfs source")?;
    for d in data {
        let (key, value) = match d.split_once('=') {
            Some((k, v)) => (k, Some(unquote(v))),
            None => (d.as_str(), None),
        };
        m::fsconfig_set(fs.as_fd(), key, value).with_context(|| format!("tmpfs option {d:?}"))?;
    }
    for (flag, name) in [
        (MsFlags::MS_SYNCHRONOUS, "sync"),
        (MsFlags::MS_DIRSYNC, "dirsync"),
        (MsFlags::MS_LAZYTIME, "lazytime"),
        (MsFlags::MS_MANDLOCK, "mand"),
    ] {
        if flags.contains(flag) {
            m::fsconfig_set(fs.as_fd(), name, None)
                .with_context(|| format!("tmpfs option {name:?}"))?;
        }
    }
    let tree = m::fsmount(fs.as_fd(), attrs).context("creating the tmpfs mount")?;
    let from = reopen_dir(src).context("opening the directory to copy")?;
    let to = reopen_dir(tree.as_fd()).context("opening the new tmpfs")?;
    copy_dir(from.as_fd(), to.as_fd(), 0)?;
    // The tmpfs root takes the directory's owner (its mode comes from `mode=`, which the
    // caller set from the directory unless one was given) unless uid=/gid= were asked for.
    let st = fstat(from.as_fd()).context("stat of the directory to copy")?;
    let owner_given = data
        .iter()
        .any(|d| d.starts_with("uid=") || d.starts_with("gid="));
    if !owner_given {
        fchown(
            to.as_fd(),
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
        )
        .context("chown of the tmpfs root")?;
    }
    times(to.as_fd(), &st).context("timestamps of the tmpfs root")?;
    Ok(tree)
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// A readable directory fd for `fd` (which may be O_PATH), never following a symlink.
fn reopen_dir(fd: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    openat(
        fd,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn open_child(dir: BorrowedFd<'_>, name: &OsStr, flags: OFlag) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

fn perms(st: &FileStat) -> Mode {
    Mode::from_bits_truncate(st.st_mode & 0o7777)
}

fn times(fd: BorrowedFd<'_>, st: &FileStat) -> nix::Result<()> {
    let (a, m) = stamps(st);
    futimens(fd, &a, &m)
}

fn stamps(st: &FileStat) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(st.st_atime, st.st_atime_nsec),
        TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    )
}

fn ids(st: &FileStat) -> (Option<Uid>, Option<Gid>) {
    (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
}

/// Copies the entries of `from` into the (empty) directory `to`.
fn copy_dir(from: BorrowedFd<'_>, to: BorrowedFd<'_>, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        bail!("tmpcopyup: directories nested deeper than {MAX_DEPTH} levels");
    }
    let listing = reopen_dir(from).context("tmpcopyup: opening a directory")?;
    let mut names = Vec::new();
    let mut dir = nix::dir::Dir::from_fd(listing).context("tmpcopyup: reading a directory")?;
    for entry in dir.iter() {
        let entry = entry.context("tmpcopyup: reading a directory")?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            use std::os::unix::ffi::OsStrExt;
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    drop(dir);
    for name in names {
        copy_entry(from, to, &name, depth)
            .with_context(|| format!("tmpcopyup: copying {}", name.to_string_lossy()))?;
    }
    Ok(())
}

fn copy_entry(from: BorrowedFd<'_>, to: BorrowedFd<'_>, name: &OsStr, depth: usize) -> Result<()> {
    let st = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW).context("stat")?;
    let (uid, gid) = ids(&st);
    match kind(&st) {
        SFlag::S_IFDIR => {
            mkdirat(to, name, Mode::from_bits_truncate(0o700)).context("mkdir")?;
            let src = open_child(from, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .context("opening the directory")?;
            let dst = open_child(to, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .context("opening the copy")?;
            copy_dir(src.as_fd(), dst.as_fd(), depth + 1)?;
            // chown before chmod: chown clears the set-id bits.
            fchown(dst.as_fd(), uid, gid).context("chown")?;
            fchmod(dst.as_fd(), perms(&st)).context("chmod")?;
            times(dst.as_fd(), &st).context("timestamps")?;
        }
        SFlag::S_IFREG => {
            let src = open_child(from, name, OFlag::O_RDONLY).context("opening the file")?;
            let dst = openat(
                to,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .context("creating the copy")?;
            let mut r = std::fs::File::from(src);
            let mut w = std::fs::File::from(dst);
            std::io::copy(&mut r, &mut w).context("copying the contents")?;
            fchown(w.as_fd(), uid, gid).context("chown")?;
            fchmod(w.as_fd(), perms(&st)).context("chmod")?;
            times(w.as_fd(), &st).context("timestamps")?;
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(from, name).context("readlink")?;
            symlinkat(target.as_os_str(), to, name).context("symlink")?;
            fchownat(to, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).context("chown")?;
            let (a, m) = stamps(&st);
            utimensat(to, name, &a, &m, UtimensatFlags::NoFollowSymlink).context("timestamps")?;
        }
        k => {
            // Device nodes, fifos, sockets: the same node (mknod needs the privilege the
            // container's setup has, as for linux.devices).
            let old = crate::sys::misc::umask(0);
            let r = mknodat(to, name, k, perms(&st), st.st_rdev);
            crate::sys::misc::umask(old);
            r.context("mknod")?;
            fchownat(to, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW).context("chown")?;
            let (a, m) = stamps(&st);
            utimensat(to, name, &a, &m, UtimensatFlags::NoFollowSymlink).context("timestamps")?;
        }
    }
    Ok(())
}
