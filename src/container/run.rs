//! `run`: create + start in one process, then (unless detached) forward signals to the
//! container, wait for it, delete it and exit with its status.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::create::create;
use super::delete::{destroy, stop};
use super::start::start_locked;
use crate::cli::{GlobalOpts, RunArgs};
use crate::state::Store;
use crate::sys::pidfd;

/// Returns the container's exit status (128 + signal when it was killed).
pub fn run(g: &GlobalOpts, a: &RunArgs) -> Result<i32> {
    let c = create(g, &a.opts, &a.id)?;
    if let Err(e) = start_locked(&c.locked, &c.state, Some(c.init.pidfd.as_fd())) {
        let _ = stop(&c.state);
        let _ = destroy(&c.locked, &c.state);
        return Err(e);
    }
    if a.detach {
        return Ok(0);
    }
    // Other commands (kill, state, exec) must reach the container while it runs.
    drop(c.locked);
    let status = wait_forwarding(c.init.pidfd.as_fd())?;
    if !a.keep {
        let (locked, state) = Store::new(&g.root).open(&a.id)?;
        stop(&state)?;
        destroy(&locked, &state)?;
    }
    Ok(status)
}

/// Every signal we receive goes to the init, as runc forwards them; we exit with it.
fn wait_forwarding(init: BorrowedFd<'_>) -> Result<i32> {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGURG,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        set.remove(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .context("blocking signals")?;
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("signalfd")?;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: init.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sfd.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        crate::sys::misc::poll(&mut fds, -1).context("waiting for the container")?;
        if fds[0].revents != 0 {
            if let Some(exit) =
                pidfd::wait(init, false).context("waiting for the container init")?
            {
                return Ok(exit.status());
            }
        }
        while let Ok(Some(info)) = sfd.read_signal() {
            let _ = pidfd::send_signal(init, info.ssi_signo as i32);
        }
    }
}
