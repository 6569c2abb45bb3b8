//! Passing fds over unix sockets (SCM_RIGHTS): the one place skiff does it, for the console
//! socket and `--pidfd-socket` (runc's protocol: one fd, its name as the payload), the
//! seccomp agent (the listener with the first part of the state JSON) and the mount helper
//! (process::sync). Received fds are close-on-exec.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

/// Sends `payload` on `socket` with `fd` (if any) as SCM_RIGHTS in one sendmsg(2); returns
/// how much of the payload the socket took. Allocates nothing (it runs after a seccomp
/// filter is loaded, for the agent).
pub fn send(
    socket: BorrowedFd<'_>,
    fd: Option<BorrowedFd<'_>>,
    payload: &[u8],
) -> io::Result<usize> {
    let iov = [IoSlice::new(payload)];
    let fds = fd.map(|f| [f.as_raw_fd()]);
    let with_fd;
    let cmsg: &[ControlMessage<'_>] = match &fds {
        Some(fds) => {
            with_fd = [ControlMessage::ScmRights(fds)];
            &with_fd
        }
        None => &[],
    };
    loop {
        match sendmsg::<()>(socket.as_raw_fd(), &iov, cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// Receives one message on `socket` and returns the first fd it carried (others are closed).
pub fn recv_fd(socket: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    recv(socket).map(|(_, fd)| fd)
}

/// Receives one message on `socket`: its payload (empty at EOF) and the first fd it carried
/// (others are closed).
pub fn recv(socket: BorrowedFd<'_>) -> io::Result<(Vec<u8>, Option<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let len = msg.bytes;
    let mut first = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel installed these fds in our table for this message;
                // nothing else owns them, so each is adopted exactly once.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if first.is_none() {
                    first = Some(owned);
                }
            }
        }
    }
    Ok((buf[..len].to_vec(), first))
}
