//! A user namespace with given id maps, as an fd, for idmapped mounts (mount_setattr takes
//! the mapping as a user namespace fd). A namespace only exists while something is in it or
//! refers to it, so a short-lived child is cloned into a new user namespace; the caller
//! (root) writes its maps, opens /proc/<pid>/ns/user, then lets the child exit and reaps it.
//! The fd keeps the namespace alive afterwards.

use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};

use super::clone::{clone3, Forked};

/// Creates a user namespace whose uid_map and gid_map are the given texts (lines of
/// "inside outside count"), and returns an fd of it.
pub fn with_maps(uid_map: &str, gid_map: &str) -> io::Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (pid, pidfd) = match clone3(libc::CLONE_NEWUSER as u64, None, true)? {
        Forked::Child => {
            // Wait for the parent to close its end (EOF), then go. Nothing else runs here.
            drop(w);
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(&r, &mut b);
            super::misc::exit_now(0);
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd.expect("clone3 was asked for a pidfd")),
    };
    drop(r);
    let result = (|| {
        write_map(pid, "uid_map", uid_map)?;
        write_map(pid, "gid_map", gid_map)?;
        std::fs::File::open(format!("/proc/{pid}/ns/user")).map(OwnedFd::from)
    })();
    drop(w);
    super::pidfd::wait(pidfd.as_fd(), false)?;
    result
}

fn write_map(pid: i32, file: &str, text: &str) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/{file}"))?;
    // The kernel takes the whole map in one write.
    f.write_all(text.as_bytes())
        .map_err(|e| io::Error::new(e.kind(), format!("writing {file} {:?}: {e}", text.trim())))
}

/// The uid_map and gid_map of the user namespace `ns` (as seen from ours): a short-lived child
/// joins it, the maps are read from its /proc entry, then it exits and is reaped.
pub fn maps_of(ns: std::os::fd::BorrowedFd<'_>) -> io::Result<(String, String)> {
    use std::io::Read;
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (done_r, done_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (pid, pidfd) = match clone3(0, None, true)? {
        Forked::Child => {
            drop(ready_r);
            drop(done_w);
            if nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWUSER).is_err() {
                super::misc::exit_now(1);
            }
            let _ = nix::unistd::write(&ready_w, b"1");
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(&done_r, &mut b);
            super::misc::exit_now(0);
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd.expect("clone3 was asked for a pidfd")),
    };
    drop(ready_w);
    drop(done_r);
    let mut ok = [0u8; 1];
    let joined = std::fs::File::from(ready_r).read(&mut ok)? == 1;
    let result = if joined {
        let read = |f: &str| std::fs::read_to_string(format!("/proc/{pid}/{f}"));
        read("uid_map").and_then(|u| Ok((u, read("gid_map")?)))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not join it (is it a user namespace?)",
        ))
    };
    drop(done_w);
    super::pidfd::wait(pidfd.as_fd(), false)?;
    result
}
