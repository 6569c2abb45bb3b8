//! clone3(2) with fork semantics: the child gets a copy of the address space and continues
//! from the call, like fork(), but can be born in new namespaces, inside a cgroup
//! (CLONE_INTO_CGROUP: no migration afterwards) and hand back a pidfd (CLONE_PIDFD: no pid-reuse
//! race when signalling it later).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// `struct clone_args` from linux/sched.h (version 2, with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

pub const CLONE_PIDFD: u64 = 0x1000;
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What clone3 returned, seen from each side.
#[derive(Debug)]
pub enum Forked {
    Child,
    Parent { pid: i32, pidfd: Option<OwnedFd> },
}

/// Calls clone3 with fork semantics. With `pidfd`, CLONE_PIDFD hands back a pidfd of the
/// child; with `cgroup`, the child is born in that cgroup v2 directory. The exit signal is
/// SIGCHLD (with CLONE_PARENT the kernel uses our own exit signal instead).
///
/// The caller must be single-threaded: the child gets only the calling thread, so any lock
/// held by another thread would stay locked forever in the child.
pub fn clone3(flags: u64, cgroup: Option<BorrowedFd<'_>>, pidfd: bool) -> io::Result<Forked> {
    const CLONE_PARENT: u64 = libc::CLONE_PARENT as u64;
    let mut fd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags,
        exit_signal: if flags & CLONE_PARENT != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        ..Default::default()
    };
    if pidfd {
        args.flags |= CLONE_PIDFD;
        args.pidfd = &mut fd as *mut libc::c_int as u64;
    }
    if let Some(cg) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = cg.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size we pass; stack = 0 gives fork semantics
    // (the child runs on a copy of our stack); `fd` outlives the call. skiff is
    // single-threaded when it clones (see process::parent), so the child's copy of the heap
    // is consistent.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match super::cvt(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            pidfd: pidfd.then(|| super::owned_fd(fd as libc::c_long)),
        }),
    }
}

/// A child that only holds a place and waits to be killed: a systemd scope cannot start
/// empty, and the runtime itself should not have to be moved into the container's unit and
/// back (a cgroup an unprivileged caller came from may not take it back). It dies with us
/// (PR_SET_PDEATHSIG) and with this value (killed and reaped on drop).
#[derive(Debug)]
pub struct Placeholder {
    pid: i32,
    pidfd: OwnedFd,
}

impl Placeholder {
    pub fn spawn() -> io::Result<Placeholder> {
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        match clone3(0, None, true)? {
            Forked::Child => {
                // SAFETY: the child makes only async-signal-safe syscalls on plain integers
                // and never returns into the copy of the parent's Rust state.
                unsafe {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0
                        || libc::getppid() != parent
                    {
                        libc::_exit(1);
                    }
                    loop {
                        libc::pause();
                    }
                }
            }
            Forked::Parent { pid, pidfd } => Ok(Placeholder {
                pid,
                pidfd: pidfd.ok_or_else(|| io::Error::other("clone3 returned no pidfd"))?,
            }),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }
}

impl Drop for Placeholder {
    fn drop(&mut self) {
        use std::os::fd::AsFd;
        let _ = super::pidfd::send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        let _ = super::pidfd::wait(self.pidfd.as_fd(), false);
    }
}
