//! SCMP_ACT_NOTIFY: handing the listener fd to the seccomp agent at
//! `linux.seccomp.listenerPath` (config-linux.md, "The Container Process State").
//!
//! The agent listens on a unix stream socket on the host. The container process cannot reach
//! that path once it has pivoted into the rootfs, so the runtime connects in its own mount
//! namespace before clone3 ([`connect`]) and the process inherits the connected socket. After
//! loading the filter it sends, in one connection that is then closed, the container process
//! state JSON with the listener fd as SCM_RIGHTS (named "seccompFd" in `fds`). The message is
//! built before the filter is loaded; after it only sendmsg(2) and close(2) run, and NOTIFY on
//! sendmsg is refused at validation (a notified sendmsg would wait for an agent that has no
//! fd yet).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{bail, Context, Result};

use super::Filter;

/// Where the listener fd of a NOTIFY filter goes: the connected agent socket and the
/// profile's opaque `listenerMetadata`.
#[derive(Debug, Clone, Copy)]
pub struct Agent<'a> {
    pub socket: BorrowedFd<'a>,
    pub metadata: Option<&'a str>,
}

/// linux.seccomp's `listenerPath` and `listenerMetadata`.
#[derive(Debug, Clone, Default)]
pub struct Listener {
    pub path: Option<std::path::PathBuf>,
    pub metadata: Option<String>,
}

impl Listener {
    pub fn of(spec: &oci_spec::runtime::Spec) -> Listener {
        let s = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
        Listener {
            path: s.and_then(|s| s.listener_path().clone()),
            metadata: s.and_then(|s| s.listener_metadata().clone()),
        }
    }
}

/// Connects to `listenerPath` when `filter` uses SCMP_ACT_NOTIFY (the path is ignored
/// otherwise, as config-linux.md says). Runs in the runtime, on the host.
pub fn connect(l: &Listener, filter: &Filter) -> Result<Option<OwnedFd>> {
    if !filter.uses_notify() {
        return Ok(None);
    }
    let path = l
        .path
        .as_ref()
        .context("linux.seccomp.listenerPath: required with SCMP_ACT_NOTIFY")?;
    let sock = std::os::unix::net::UnixStream::connect(path).with_context(|| {
        format!(
            "linux.seccomp.listenerPath: connecting to the seccomp agent at {}",
            path.display()
        )
    })?;
    Ok(Some(sock.into()))
}

/// The container process state: `pid` is the process the filter is loaded in (as the runtime
/// sees it), `state` the container's state (runtime.md "State").
pub fn process_state(
    pid: i32,
    metadata: Option<&str>,
    state: &crate::state::OciState,
) -> Result<Vec<u8>> {
    let mut msg = serde_json::json!({
        "ociVersion": crate::bundle::SPEC_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = metadata.filter(|m| !m.is_empty()) {
        msg["metadata"] = serde_json::Value::String(m.to_string());
    }
    Ok(serde_json::to_vec(&msg)?)
}

/// Sends `listener` and `message` to the agent: the fd with the first sendmsg, the rest of a
/// message the socket did not take at once in further sendmsg calls without fds (the spec
/// allows several, fds only in the first). Allocates nothing.
pub fn send(socket: BorrowedFd<'_>, listener: BorrowedFd<'_>, message: &[u8]) -> Result<()> {
    let mut sent = 0;
    while sent < message.len() {
        let fd = (sent == 0).then_some(listener);
        match crate::sys::fdpass::send(socket, fd, &message[sent..]) {
            Ok(0) => bail!("the seccomp agent's socket accepted no data"),
            Ok(n) => sent += n,
            Err(e) => {
                return Err(e).context(
                    "linux.seccomp.listenerPath: sending the seccomp fd to the seccomp agent",
                )
            }
        }
    }
    Ok(())
}

/// Loads `filter` on the calling thread and, when it made a listener, hands that to the
/// agent with `message` (from [`process_state`]), closes it and shuts the connection down.
/// When is decided by `process::tail`: a NOTIFY filter before `create` returns, so a failed
/// handoff fails it.
pub fn install(filter: &Filter, agent: Option<(BorrowedFd<'_>, &[u8])>) -> Result<()> {
    let listener =
        super::load(filter, filter.flags()).context("linux.seccomp: loading the filter")?;
    match (listener, agent) {
        (None, _) => Ok(()),
        (Some(fd), Some((socket, message))) => {
            let r = send(socket, std::os::fd::AsFd::as_fd(&fd), message);
            drop(fd);
            // "The connection MUST NOT be reused and it MUST be closed after sending": shut
            // down now for every copy of the fd (the runtime's too); the fd itself goes at
            // execve (close-on-exec).
            let _ =
                nix::sys::socket::shutdown(socket.as_raw_fd(), nix::sys::socket::Shutdown::Both);
            r
        }
        (Some(_), None) => bail!(
            "linux.seccomp.listenerPath: the filter uses SCMP_ACT_NOTIFY but no seccomp agent \
             is connected"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn process_state_has_the_spec_fields() {
        let state = crate::state::OciState::new(
            "c1",
            crate::state::Status::Creating,
            42,
            std::path::Path::new("/b"),
            Default::default(),
        );
        let msg = process_state(42, Some("MKNOD=/dev/null"), &state).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&msg).unwrap();
        assert_eq!(v["ociVersion"], crate::bundle::SPEC_VERSION);
        assert_eq!(v["fds"], serde_json::json!(["seccompFd"]));
        assert_eq!(v["pid"], 42);
        assert_eq!(v["metadata"], "MKNOD=/dev/null");
        assert_eq!(v["state"]["id"], "c1");
        assert_eq!(v["state"]["status"], "creating");
        let v: serde_json::Value =
            serde_json::from_slice(&process_state(1, None, &state).unwrap()).unwrap();
        assert!(v.get("metadata").is_none(), "{v}");
    }

    /// A message larger than the socket buffer arrives whole, the fd with its first byte.
    #[test]
    fn a_long_message_is_sent_in_pieces_with_the_fd_first() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let big = vec![b'x'; 1 << 20];
        let devnull = std::fs::File::open("/dev/null").unwrap();
        let reader = std::thread::spawn(move || {
            let fd = crate::sys::fdpass::recv_fd(b.as_fd()).unwrap();
            let mut rest = Vec::new();
            std::io::Read::read_to_end(&mut &b, &mut rest).unwrap();
            (fd.is_some(), rest.len())
        });
        send(a.as_fd(), devnull.as_fd(), &big).unwrap();
        drop(a);
        let (got_fd, rest) = reader.join().unwrap();
        assert!(got_fd);
        // recv_fd takes up to 4096 bytes with the fd; the remainder follows.
        assert!(rest >= big.len() - 4096 && rest < big.len(), "{rest}");
    }
}
