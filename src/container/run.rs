//! `run`: create + start in one process, then (unless detached) forward signals to the
//! container, wait for it, delete it and exit with its status. With process.terminal and
//! no --console-socket, `run` is its own console socket and relays the terminal.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::create::create;
use super::delete::{destroy, stop};
use super::start::start_locked;
use super::{CreateOptions, Global, RunOptions};
use crate::state::Store;
use crate::sys::pidfd;

/// Returns the container's exit status (128 + signal when it was killed).
pub fn run(g: &Global, id: &str, opts: &CreateOptions, a: RunOptions) -> Result<i32> {
    // Before skiff opens anything of its own (create checks again, unchanged).
    crate::process::fds::check_preserved(
        crate::process::activation::listen_fds(),
        opts.preserve_fds,
    )?;
    // In the foreground without --console-socket, `run` is the console socket itself (used
    // only if process.terminal turns out to be true).
    let (ours, theirs) = if opts.console_socket.is_none() && !a.detach {
        let (x, y) = crate::process::tty::relay_pair()?;
        (Some(x), Some(y))
    } else {
        (None, None)
    };
    let c = create(g, opts, id, theirs)?;
    let master = match &ours {
        Some(s) if c.terminal => Some(crate::process::tty::recv_fd(s.as_fd())?),
        _ => None,
    };
    if let Err(e) = start_locked(&c.locked, &c.state, Some(c.init.pidfd.as_fd())) {
        // A failed start may already have destroyed the container (hook failures do).
        if c.locked.dir.exists() {
            let _ = stop(&c.state);
            let _ = destroy(&c.locked, &c.state);
        }
        return Err(e);
    }
    crate::failpoint!("run.started");
    if a.detach {
        return Ok(0);
    }
    // Other commands (kill, state, exec) must reach the container while it runs.
    drop(c.locked);
    let status = {
        let _raw = master.as_ref().map(|_| RawMode::enter());
        wait_forwarding(c.init.pidfd.as_fd(), master.as_ref())?
    };
    crate::failpoint!("run.exited");
    if !a.keep {
        let (locked, state) = Store::new(&g.root).open(id)?;
        stop(&state)?;
        destroy(&locked, &state)?;
    }
    Ok(status)
}

/// Every signal we receive goes to the init, as runc forwards them; terminal data is
/// relayed both ways; returns the init's exit status.
pub(super) fn wait_forwarding(init: BorrowedFd<'_>, master: Option<&OwnedFd>) -> Result<i32> {
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
    if let Some(m) = master {
        copy_winsize(m.as_fd());
    }
    let mut stdin_open = master.is_some();
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![pollfd(init.as_raw_fd()), pollfd(sfd.as_fd().as_raw_fd())];
        if let Some(m) = master {
            fds.push(pollfd(m.as_raw_fd()));
            if stdin_open {
                fds.push(pollfd(0));
            }
        }
        crate::sys::misc::poll(&mut fds, -1).context("waiting for the container")?;
        let stdout = std::io::stdout();
        if let (Some(m), Some(p)) = (master, fds.get(2)) {
            if p.revents != 0 {
                // EIO once the last holder of the terminal exits; the exit is seen next.
                relay(m.as_fd(), stdout.as_fd(), &mut buf);
            }
        }
        if let (Some(m), Some(p)) = (master, fds.get(3)) {
            if p.revents != 0 {
                stdin_open = relay(std::io::stdin().as_fd(), m.as_fd(), &mut buf);
            }
        }
        if fds[0].revents != 0 {
            if let Some(m) = master {
                // Drain what the process wrote before it exited.
                while relay_nonblocking(m.as_fd(), &mut buf) {}
            }
            if let Some(exit) =
                pidfd::wait(init, false).context("waiting for the container init")?
            {
                return Ok(exit.status());
            }
        }
        while let Ok(Some(info)) = sfd.read_signal() {
            if info.ssi_signo == libc::SIGWINCH as u32 {
                if let Some(m) = master {
                    copy_winsize(m.as_fd());
                }
                continue;
            }
            let _ = pidfd::send_signal(init, info.ssi_signo as i32);
        }
    }
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Copies one read's worth from `from` to `to`; false at EOF or on an error.
fn relay(from: BorrowedFd<'_>, to: BorrowedFd<'_>, buf: &mut [u8]) -> bool {
    let n = match nix::unistd::read(from, buf) {
        Ok(0) | Err(_) => return false,
        Ok(n) => n,
    };
    let mut data = &buf[..n];
    while !data.is_empty() {
        match nix::unistd::write(to, data) {
            Ok(w) => data = &data[w..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

fn relay_nonblocking(master: BorrowedFd<'_>, buf: &mut [u8]) -> bool {
    let mut p = [pollfd(master.as_raw_fd())];
    match crate::sys::misc::poll(&mut p, 0) {
        Ok(1) if p[0].revents & libc::POLLIN != 0 => relay(master, std::io::stdout().as_fd(), buf),
        _ => false,
    }
}

/// The container's terminal gets our terminal's size (when stdin is one).
fn copy_winsize(master: BorrowedFd<'_>) {
    if let Ok((rows, cols)) = crate::sys::tty::get_winsize(std::io::stdin().as_fd()) {
        let _ = crate::sys::tty::set_winsize(master, rows, cols);
    }
}

/// Our own terminal in raw mode while relaying (keys go to the container as typed), restored
/// on drop. Nothing to do when stdin is not a terminal.
pub(super) struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    pub(super) fn enter() -> RawMode {
        use nix::sys::termios;
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(&stdin) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}
