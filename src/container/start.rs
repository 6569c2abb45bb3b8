//! `start`: release the init from the exec fifo barrier, then run the poststart hooks.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{bail, Context, Result};

use super::Global;
use crate::state::{Locked, State, Status, Store};
use crate::sys::pidfd;

pub fn start(g: &Global, id: &str) -> Result<()> {
    let (locked, state) = Store::new(&g.root).open(id)?;
    crate::failpoint!("start.locked");
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
    crate::logging::step("start: releasing the init");
    let started = release(locked, init).and_then(|()| {
        crate::failpoint!("start.released");
        crate::logging::step("start: the init has passed the barrier");
        let hooks = state.hooks.as_ref().and_then(|h| h.poststart().as_ref());
        crate::hooks::run_all("poststart", hooks, &state.oci(Status::Running))
    });
    crate::failpoint!("start.poststart-run");
    if let Err(e) = started {
        // runtime-spec 1.3: a failing startContainer or poststart hook "MUST generate an
        // error, stop the container, and continue the lifecycle at step 12": it is
        // destroyed, which runs the poststop hooks.
        let _ = pidfd::send_signal(init, libc::SIGKILL);
        let _ = pidfd::wait_exit(init, 10_000);
        if let Err(de) = super::delete::destroy(locked, state) {
            crate::logging::warn(&format!(
                "destroying the container after a failed start: {de:#}"
            ));
        }
        return Err(e);
    }
    Ok(())
}

/// Opens the fifo for reading (which lets the init's blocking open for writing complete) and
/// waits for its byte, or for the init to die, whichever comes first. The fifo's name goes
/// first, while the init still waits: "created" (the fifo exists) then never describes an
/// init that is already past the barrier, whenever we are killed (process::sync).
fn release(locked: &Locked, init: BorrowedFd<'_>) -> Result<()> {
    let path = locked.fifo();
    let held = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    crate::failpoint!("start.fifo-held");
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    crate::failpoint!("start.fifo-removed");
    let reopen = format!("/proc/self/fd/{}", held.as_raw_fd());
    let fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&reopen)
        .with_context(|| format!("opening {} for reading", path.display()))?;
    let mut verdict = Vec::new();
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
        if fds[0].revents & (libc::POLLIN | libc::POLLHUP) != 0 {
            let mut b = [0u8; 4096];
            match nix::unistd::read(&fifo, &mut b) {
                Ok(0) if verdict.is_empty() && fds[0].revents & libc::POLLHUP == 0 => continue,
                Ok(0) => break,
                Ok(n) => {
                    verdict.extend_from_slice(&b[..n]);
                    if verdict == b"0" {
                        break;
                    }
                    continue;
                }
                Err(nix::errno::Errno::EAGAIN) => continue,
                Err(e) => return Err(e).context("reading the exec fifo"),
            }
        }
        if fds[1].revents != 0 && verdict.is_empty() {
            bail!("cannot start a container that has stopped: its init exited before start");
        }
    }
    if verdict != b"0" {
        let why =
            String::from_utf8_lossy(verdict.strip_prefix(b"E").unwrap_or(&verdict)).into_owned();
        if why.is_empty() {
            bail!("the container init exited before starting the process");
        }
        bail!("{why}");
    }
    Ok(())
}
