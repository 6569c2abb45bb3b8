//! Terminals: `process.terminal` with `--console-socket`.
//!
//! The pty is allocated by the init inside the container, from the container's own devpts
//! (its `/dev/pts/ptmx`, opened in-root without following symlinks and checked to be a devpts
//! ptmx), so the terminal belongs to the container and never to the host. The peer is taken
//! with TIOCGPTPEER (no path lookup that a racing process could redirect), bind-mounted onto
//! `/dev/console` (created fresh: an image's `/dev/console` symlink is never followed,
//! CVE-2025-52565), and becomes stdin/stdout/stderr and the controlling terminal. The master is
//! sent to the console socket as exactly one fd with SCM_RIGHTS, the protocol runc uses and
//! containerd's and conmon's receivers expect.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::sys::stat::{fstat, Mode, SFlag};
use oci_spec::runtime::Box as ConsoleSize;

use crate::sys::fs::open_in_root;
use crate::sys::mount as m;
use crate::sys::tty as raw;

const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;

/// In the init, after pivot_root and setsid: the whole terminal setup.
/// `console`: bind the pty onto /dev/console too (the init's terminal; an exec'd process
/// gets a pty of its own and leaves /dev/console alone).
pub fn setup_in_container(
    socket: BorrowedFd<'_>,
    size: Option<ConsoleSize>,
    console: bool,
) -> Result<()> {
    let root = std::fs::File::open("/")
        .map(OwnedFd::from)
        .context("opening /")?;
    let master = open_ptmx(root.as_fd())?;
    raw::unlockpt(master.as_fd()).context("unlocking the pty")?;
    if let Some(s) = size {
        raw::set_winsize(master.as_fd(), s.height() as u16, s.width() as u16)
            .context("process.consoleSize: setting the terminal size")?;
    }
    let slave = raw::peer(master.as_fd()).context("opening the pty peer (TIOCGPTPEER)")?;
    check_devpts(slave.as_fd(), false).context("the pty peer")?;
    // Output as the program wrote it: "\n" stays "\n" (no ONLCR translation), as runc's
    // terminals behave and as clients comparing output line by line expect.
    let mut t = nix::sys::termios::tcgetattr(&slave).context("reading the pty's termios")?;
    t.output_flags.remove(nix::sys::termios::OutputFlags::ONLCR);
    nix::sys::termios::tcsetattr(&slave, nix::sys::termios::SetArg::TCSANOW, &t)
        .context("clearing ONLCR on the pty")?;
    if console {
        bind_console(root.as_fd(), slave.as_fd())?;
    }
    send_fd(socket, master.as_fd(), "/dev/pts/ptmx")
        .context("sending the pty master to the console socket")?;
    drop(master);
    nix::unistd::dup2_stdin(&slave)
        .and_then(|()| nix::unistd::dup2_stdout(&slave))
        .and_then(|()| nix::unistd::dup2_stderr(&slave))
        .context("making the pty the container's stdio")?;
    raw::set_controlling(slave.as_fd()).context("making the pty the controlling terminal")?;
    Ok(())
}

/// The container's devpts ptmx, never through the `/dev/ptmx` symlink an image controls.
fn open_ptmx(root: BorrowedFd<'_>) -> Result<OwnedFd> {
    let path = Path::new("/dev/pts/ptmx");
    let fd = open_in_root(root, path, libc::O_RDWR | libc::O_NOCTTY | libc::O_NOFOLLOW)
        .context("opening /dev/pts/ptmx (process.terminal needs a devpts mount on /dev/pts)")?;
    check_devpts(fd.as_fd(), true).context("/dev/pts/ptmx")?;
    Ok(fd)
}

/// A character device on a devpts filesystem; for the ptmx, the 5:2 multiplexer.
fn check_devpts(fd: BorrowedFd<'_>, ptmx: bool) -> Result<()> {
    let fs = nix::sys::statfs::fstatfs(fd).context("statfs")?;
    if fs.filesystem_type().0 as i64 != DEVPTS_SUPER_MAGIC {
        bail!("not on a devpts filesystem");
    }
    let st = fstat(fd).context("stat")?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR {
        bail!("not a character device");
    }
    let (maj, min) = (
        nix::sys::stat::major(st.st_rdev),
        nix::sys::stat::minor(st.st_rdev),
    );
    if ptmx && (maj, min) != (5, 2) {
        bail!("is device {maj}:{min}, not the pty multiplexer 5:2");
    }
    Ok(())
}

/// Replaces whatever `/dev/console` is with an empty file and binds the pty peer onto it.
fn bind_console(root: BorrowedFd<'_>, slave: BorrowedFd<'_>) -> Result<()> {
    let dev = crate::rootfs::mkdir_in_root(root, Path::new("/dev"))?;
    match nix::unistd::unlinkat(
        dev.as_fd(),
        "console",
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e).context("removing the image's /dev/console"),
    }
    nix::sys::stat::mknodat(
        dev.as_fd(),
        "console",
        SFlag::S_IFREG,
        Mode::from_bits_truncate(0o600),
        0,
    )
    .context("creating /dev/console")?;
    let target = nix::fcntl::openat(
        dev.as_fd(),
        "console",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("opening /dev/console")?;
    let tree =
        m::open_tree(slave, Path::new(""), m::OPEN_TREE_CLONE).context("cloning the pty peer")?;
    m::move_mount(tree.as_fd(), target.as_fd()).context("bind-mounting the pty onto /dev/console")
}

/// One fd with SCM_RIGHTS and its name as the payload (runc's console-socket protocol).
pub fn send_fd(socket: BorrowedFd<'_>, fd: BorrowedFd<'_>, name: &str) -> Result<()> {
    crate::sys::fdpass::send(socket, Some(fd), name.as_bytes())?;
    Ok(())
}

/// A connected pair standing in for a console socket when skiff itself relays the terminal
/// (`run` and `exec -t` in the foreground): (our end, the end the container side sends on).
pub fn relay_pair() -> Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("creating the terminal socketpair")
}

/// Receives one fd sent with [`send_fd`] (used by `run`, which is its own console socket).
pub fn recv_fd(socket: BorrowedFd<'_>) -> Result<OwnedFd> {
    crate::sys::fdpass::recv_fd(socket)?.context("the container sent no terminal fd")
}
