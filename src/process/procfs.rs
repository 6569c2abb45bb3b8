//! A private procfs handle for the container init.
//!
//! Every write the init makes under /proc on behalf of a container (timens offsets, sysctls,
//! LSM labels, the exec fifo reopen) goes through this handle (oom_score_adj is written by the
//! runtime itself, through the host's /proc, before the init starts its setup): a fresh proc instance
//! from fsopen/fsmount that is attached nowhere, so the container cannot mount over, or
//! redirect with symlinks, anything skiff later opens through it (CVE-2019-16884,
//! CVE-2025-52881 classes). Paths below it are resolved with RESOLVE_BENEATH and without
//! symlinks or crossing into other mounts.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::sys::fs::{
    openat2, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV,
};
use crate::sys::mount as m;

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

#[derive(Debug)]
pub struct Proc {
    root: OwnedFd,
}

impl Proc {
    /// A new proc instance for the caller's pid namespace. Falls back to the already
    /// mounted /proc (checked to be procfs) where fsopen is refused.
    pub fn open() -> Result<Proc> {
        let root = match m::fsopen("proc").and_then(|fs| {
            m::fsmount(
                fs.as_fd(),
                m::MOUNT_ATTR_NOSUID | m::MOUNT_ATTR_NODEV | m::MOUNT_ATTR_NOEXEC,
            )
        }) {
            Ok(fd) => fd,
            Err(_) => std::fs::File::open("/proc")
                .map(OwnedFd::from)
                .context("opening /proc")?,
        };
        check_procfs(root.as_fd()).context("the procfs handle")?;
        Ok(Proc { root })
    }

    /// Opens `rel` (relative to the proc root, e.g. "self/oom_score_adj" is spelled with our
    /// pid: "self" is a symlink and symlinks are refused).
    pub fn open_file(&self, rel: &Path, flags: i32) -> Result<OwnedFd> {
        let fd = match openat2(
            self.root.as_fd(),
            rel,
            flags | libc::O_NOFOLLOW,
            0,
            RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV,
        ) {
            // A seccomp profile loaded before this (no noNewPrivileges) may not list
            // openat2: it then answers ENOSYS (its stub for syscalls newer than any it
            // names) or its default errno, EPERM as a rule.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
                self.walk(rel, flags)
            }
            r => r,
        }
        .with_context(|| format!("opening /proc/{}", rel.display()))?;
        check_procfs(fd.as_fd()).with_context(|| format!("/proc/{}", rel.display()))?;
        Ok(fd)
    }

    /// `open_file` with plain openat, one component at a time, none of them a symlink:
    /// what the RESOLVE_* flags ask for. Nothing can be mounted inside this instance (it is
    /// attached nowhere), so crossing a mount cannot happen either.
    fn walk(&self, rel: &Path, flags: i32) -> std::io::Result<OwnedFd> {
        use nix::fcntl::OFlag;
        use std::path::Component;
        let parts: Vec<_> = rel.components().collect();
        let Some((last, dirs)) = parts.split_last() else {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        };
        let name = |c: &Component| match c {
            Component::Normal(n) => Ok(n.to_os_string()),
            _ => Err(std::io::Error::from_raw_os_error(libc::EXDEV)),
        };
        let open = |at: BorrowedFd<'_>, n: &std::ffi::OsStr, f: i32| {
            nix::fcntl::openat(
                at,
                n,
                OFlag::from_bits_retain(f | libc::O_NOFOLLOW | libc::O_CLOEXEC),
                nix::sys::stat::Mode::empty(),
            )
            .map_err(std::io::Error::from)
        };
        let mut dir: Option<OwnedFd> = None;
        for c in dirs {
            let at = dir.as_ref().map_or(self.root.as_fd(), |d| d.as_fd());
            dir = Some(open(at, &name(c)?, libc::O_PATH | libc::O_DIRECTORY)?);
        }
        let at = dir.as_ref().map_or(self.root.as_fd(), |d| d.as_fd());
        open(at, &name(last)?, flags)
    }

    /// Our pid as this proc instance numbers it (what its "self" symlink points to).
    fn own_pid(&self) -> Result<String> {
        let link =
            nix::fcntl::readlinkat(self.root.as_fd(), "self").context("reading /proc/self")?;
        let pid = link.to_string_lossy().into_owned();
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            bail!("/proc/self points to {pid:?}, not a pid");
        }
        Ok(pid)
    }

    /// Writes `data` to `/proc/<our pid>/<rel>` in one write(2), as proc files expect.
    pub fn write_self(&self, rel: &str, data: &str) -> Result<()> {
        let path = format!("{}/{rel}", self.own_pid()?);
        let fd = self.open_file(Path::new(&path), libc::O_WRONLY)?;
        std::fs::File::from(fd)
            .write_all(data.as_bytes())
            .with_context(|| format!("writing {data:?} to /proc/self/{rel}"))
    }

    /// Writes a sysctl under /proc/sys (`key` with dots, as in linux.sysctl).
    pub fn write_sysctl(&self, key: &str, value: &str) -> Result<()> {
        let rel = format!("sys/{}", crate::process::sysctl::proc_path(key));
        let fd = self.open_file(Path::new(&rel), libc::O_WRONLY | libc::O_TRUNC)?;
        std::fs::File::from(fd)
            .write_all(value.as_bytes())
            .with_context(|| format!("writing {value:?} to /proc/{rel}"))
    }

    /// Opens the magic link `/proc/<our pid>/<dir>/<name>` (an fd or a namespace). Only the
    /// directory is resolved under the no-symlink rules; the last component is the magic link
    /// itself, opened with plain openat on the verified directory fd.
    pub fn open_own_link(&self, dir: &str, name: &str, flags: i32) -> Result<OwnedFd> {
        let path = format!("{}/{dir}", self.own_pid()?);
        let dirfd = self.open_file(Path::new(&path), libc::O_PATH | libc::O_DIRECTORY)?;
        nix::fcntl::openat(
            dirfd.as_fd(),
            name,
            nix::fcntl::OFlag::from_bits_retain(flags | libc::O_CLOEXEC),
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("opening /proc/self/{dir}/{name}"))
    }

    /// Reopens one of our own fds through /proc, the only way to turn an O_PATH fd of a fifo
    /// into an open end.
    pub fn reopen_own_fd(&self, fd: BorrowedFd<'_>, flags: i32) -> Result<OwnedFd> {
        use std::os::fd::AsRawFd;
        self.open_own_link("fd", &fd.as_raw_fd().to_string(), flags)
    }
}

fn check_procfs(fd: BorrowedFd<'_>) -> Result<()> {
    let st = nix::sys::statfs::fstatfs(fd).context("statfs")?;
    if st.filesystem_type().0 as i64 != PROC_SUPER_MAGIC {
        bail!("not on procfs (something is mounted over it)");
    }
    Ok(())
}
