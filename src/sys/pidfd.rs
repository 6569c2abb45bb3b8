//! Process file descriptors: signal and wait for a process without pid-reuse races.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// pidfd_open(2).
pub fn open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; the result is a new fd we take ownership of.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    super::cvt(ret).map(super::owned_fd)
}

/// pidfd_send_signal(2).
pub fn send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: valid fd, a NULL siginfo (the kernel fills in a kill()-like one), flags 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    super::cvt(ret).map(drop)
}

/// How a child ended, as waitid reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The shell convention runc follows: the exit code, or 128 + signal number.
    pub fn status(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

/// Waits for (and reaps) the child behind `pidfd`. Only works for our own children.
/// With `nohang`, returns `Ok(None)` when it is still running.
pub fn wait(pidfd: BorrowedFd<'_>, nohang: bool) -> io::Result<Option<Exit>> {
    let mut flags = libc::WEXITED;
    if nohang {
        flags |= libc::WNOHANG;
    }
    loop {
        // SAFETY: zeroed siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: P_PIDFD with a valid pidfd, a valid siginfo pointer and a NULL rusage.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_waitid,
                libc::P_PIDFD,
                pidfd.as_raw_fd(),
                &mut info as *mut libc::siginfo_t,
                flags,
                std::ptr::null::<libc::rusage>(),
            )
        };
        match super::cvt(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        // SAFETY: waitid filled `info` for a SIGCHLD-style event (or left it zeroed with WNOHANG).
        let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(match code {
            libc::CLD_EXITED => Exit::Code(status),
            _ => Exit::Signal(status),
        }));
    }
}

/// Blocks until the process behind `pidfd` has exited (works for any process, not only
/// children), or `timeout_ms` passes. Returns whether it exited.
pub fn wait_exit(pidfd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let ret = super::cvt_retry(|| unsafe { libc::poll(&mut pfd, 1, timeout_ms) } as libc::c_long)?;
    Ok(ret > 0)
}
