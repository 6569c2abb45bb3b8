//! `start`: release the init from the exec fifo barrier, then run the poststart hooks.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{bail, Context, Result};

use crate::cli::GlobalOpts;
use crate::state::{Locked, State, Status, Store};
use crate::sys::pidfd;

pub fn start(g: &GlobalOpts, id: &str) -> Result<()> {
    let (locked, state) = Store::new(&g.root).open(id)?;
    start_locked(&locked, &state, None)
}

/// Starts a created container; `init` is the pidfd when the caller created it (`run`).
pub fn start_locked(locked: &Locked, state: &State, init: Option<BorrowedFd<'_>>) -> Result<()> {
    match locked.status(state) {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running => bail!("cannot start an already running container"),
        Status::Paused => bail!("cannot start a paused container"),
        Status::Creating => bail!("cannot start a container that is still being created"),
    }
    let owned;
    let init = match init {
        Some(fd) => fd,
        None => {
            owned =
                super::init_pidfd(state)?.context("cannot start a container that has stopped")?;
            owned.as_fd()
        }
    };
    release(locked, init)?;
    let hooks = state.hooks.as_ref().and_then(|h| h.poststart().as_ref());
    if let Err(e) = crate::hooks::run_all("poststart", hooks, &super::hook_state(state, "running"))
    {
        // runtime-spec 1.3: a failing poststart hook stops the container.
        let _ = pidfd::send_signal(init, libc::SIGKILL);
        return Err(e);
    }
    Ok(())
}

/// Opens the fifo for reading (which lets the init's blocking open for writing complete) and
/// waits for its byte, or for the init to die, whichever comes first.
fn release(locked: &Locked, init: BorrowedFd<'_>) -> Result<()> {
    let path = locked.fifo();
    let fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: fifo.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: init.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        crate::sys::misc::poll(&mut fds, -1).context("waiting for the container init")?;
        if fds[0].revents & libc::POLLIN != 0 {
            let mut b = [0u8; 1];
            match nix::unistd::read(&fifo, &mut b) {
                Ok(1) => break,
                Ok(_) => {}
                Err(nix::errno::Errno::EAGAIN) => continue,
                Err(e) => return Err(e).context("reading the exec fifo"),
            }
        }
        if fds[1].revents != 0 {
            bail!("cannot start a container that has stopped: its init exited before start");
        }
        if fds[0].revents & libc::POLLHUP != 0 {
            bail!("the container init closed the exec fifo without starting");
        }
    }
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    Ok(())
}
