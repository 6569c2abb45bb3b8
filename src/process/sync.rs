//! THE create protocol: what the parent (`skiff create`/`run`) and the child (the future
//! container init) say to each other over one SOCK_SEQPACKET socketpair, and in which order.
//! This is the only place that defines it; `parent.rs` and `child.rs` each follow it through
//! the typed ends below.
//!
//! ```text
//!  parent                                          child
//!  ──────                                          ─────
//!  validate, lock <root>/<id>, mkfifo exec.fifo, mkdir cgroup, open joined namespaces,
//!  connect the console socket and (NOTIFY) the seccomp agent, become non-dumpable
//!  [setns pid_for_children when joining a pid ns]
//!  clone3(new namespaces | INTO_CGROUP | PIDFD) ─► born in its cgroup (and namespaces);
//!                                                  non-dumpable from birth; drops the
//!                                                  parent's fds, parent-death signal
//!  [clone3 made a user ns: write uid/gid maps]
//!                                                  [plan.join: setns each, user first]
//!                          ◄───────────────────── MapIds      (plan.unshare_user only,
//!  write uid_map/gid_map                                        after unshare(NEWUSER))
//!  MapsDone ─────────────────────────────────────►
//!                                                  [unshare the rest]
//!                          ◄───────────────────── InitPid{pid} (plan.fork only: the child
//!  pidfd_open(pid), reap the child                  forked the init with CLONE_PARENT and
//!                                                   exits; the init carries on from here)
//!  write /proc/<pid>/oom_score_adj
//!  Go{pid} ──────────────────────────────────────► init: time ns, mounts, devices
//!                          ◄───────────────────── RunHooks    (only with prestart or
//!  run prestart + createRuntime hooks                           createRuntime hooks)
//!  HooksDone ────────────────────────────────────►
//!                                                  createContainer hooks, pivot_root,
//!                                                  masked/readonly paths, hostname,
//!                                                  rlimits, then the shared tail
//!                                                  (tail.rs): fds, user, caps (keeping
//!                                                  CAP_SYS_ADMIN for a filter without
//!                                                  noNewPrivileges), cwd, look up args[0]
//!                                                  [NOTIFY: load the filter, listener fd
//!                                                  + process state to the agent]
//!                          ◄───────────────────── Ready
//!  write state.json and --pid-file, exit           block opening exec.fifo for writing
//!  ...
//!  `skiff start`: open exec.fifo, read 1 byte ◄── load the filter, drop CAP_SYS_ADMIN,
//!                                                  startContainer hooks, write 1 byte,
//!                                                  execve
//! ```
//!
//! At any point the child may send `Log{level,msg}` (the parent writes it to the log: it is
//! the only writer), or `Error{msg}` and exit: the parent then kills and reaps it and undoes
//! everything. EOF from the parent makes the child exit; EOF from the child before `Ready` is
//! an error for the parent. Any message out of this order is a protocol error.

use std::os::fd::{AsRawFd, OwnedFd};

use anyhow::{bail, Context, Result};
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::logging::Level;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Msg {
    // child → parent
    MapIds,
    InitPid { pid: i32 },
    RunHooks,
    Ready,
    Log { level: Level, msg: String },
    Error { msg: String },
    // parent → child
    MapsDone,
    Go { pid: i32 },
    HooksDone,
}

/// `Msg::Ready` as `Socket::send` would encode it (a test checks that it still is).
const READY: &[u8] = br#""Ready""#;

/// Messages are small JSON documents; SEQPACKET keeps their boundaries.
const MAX_MSG: usize = 64 * 1024;

#[derive(Debug)]
struct Socket(OwnedFd);

impl Socket {
    fn send(&self, msg: &Msg) -> Result<()> {
        self.send_encoded(&serde_json::to_vec(msg)?)
    }

    fn send_encoded(&self, buf: &[u8]) -> Result<()> {
        send(self.0.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL)
            .context("sending on the sync socket")?;
        Ok(())
    }

    /// Receives one message; `None` when the peer has closed its end.
    fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; MAX_MSG];
        let n = loop {
            match recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.context("receiving on the sync socket")?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(
            serde_json::from_slice(&buf[..n]).context("malformed message on the sync socket")?,
        ))
    }
}

/// The parent's end.
#[derive(Debug)]
pub struct ParentEnd(Socket);

/// The child's end.
#[derive(Debug)]
pub struct ChildEnd(Socket);

/// Creates the connected pair (both ends close-on-exec: neither may reach the container).
pub fn pair() -> Result<(ParentEnd, ChildEnd)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("creating the sync socketpair")?;
    Ok((ParentEnd(Socket(a)), ChildEnd(Socket(b))))
}

impl ParentEnd {
    pub fn raw_fd(&self) -> i32 {
        self.0 .0.as_raw_fd()
    }
}

impl ChildEnd {
    pub fn raw_fd(&self) -> i32 {
        self.0 .0.as_raw_fd()
    }
}

/// A request from the child, in protocol order.
#[derive(Debug, PartialEq)]
pub enum Request {
    MapIds,
    InitPid(i32),
    RunHooks,
    Ready,
}

/// The parent's view of where the sequence is; refuses anything out of order.
#[derive(Debug)]
pub struct ParentSide {
    end: ParentEnd,
    expect_maps: bool,
    expect_pid: bool,
    go_sent: bool,
    hooks_done: bool,
}

impl ParentSide {
    /// `maps`: the child will ask for id maps; `fork`: it will report the init's pid.
    pub fn new(end: ParentEnd, maps: bool, fork: bool) -> Self {
        ParentSide {
            end,
            expect_maps: maps,
            expect_pid: fork,
            go_sent: false,
            hooks_done: false,
        }
    }

    pub fn maps_done(&mut self) -> Result<()> {
        self.end.0.send(&Msg::MapsDone)
    }

    pub fn go(&mut self, pid: i32) -> Result<()> {
        self.go_sent = true;
        self.end.0.send(&Msg::Go { pid })
    }

    pub fn hooks_done(&mut self) -> Result<()> {
        self.hooks_done = true;
        self.end.0.send(&Msg::HooksDone)
    }

    /// Waits for the child's next request, writing its log lines to the log meanwhile.
    pub fn next_request(&mut self) -> Result<Request> {
        loop {
            let msg = match self.end.0.recv()? {
                None => bail!("container init exited during setup"),
                Some(m) => m,
            };
            let req = match msg {
                Msg::Log { level, msg } => {
                    crate::logging::log(level, &msg);
                    continue;
                }
                Msg::Error { msg } => bail!("{msg}"),
                Msg::MapIds if self.expect_maps && !self.go_sent => {
                    self.expect_maps = false;
                    Request::MapIds
                }
                Msg::InitPid { pid } if self.expect_pid && !self.expect_maps => {
                    self.expect_pid = false;
                    Request::InitPid(pid)
                }
                Msg::RunHooks if self.go_sent && !self.hooks_done => Request::RunHooks,
                Msg::Ready if self.go_sent => Request::Ready,
                other => bail!("protocol error: unexpected {other:?} from the container init"),
            };
            return Ok(req);
        }
    }
}

impl ChildEnd {
    fn expect(&self, want: &str, ok: impl Fn(&Msg) -> bool) -> Result<Msg> {
        match self.0.recv()? {
            Some(m) if ok(&m) => Ok(m),
            Some(m) => bail!("protocol error: expected {want}, got {m:?}"),
            None => bail!("skiff exited during container setup"),
        }
    }

    pub fn map_ids(&self) -> Result<()> {
        self.0.send(&Msg::MapIds)?;
        self.expect("MapsDone", |m| *m == Msg::MapsDone).map(drop)
    }

    pub fn init_pid(&self, pid: i32) -> Result<()> {
        self.0.send(&Msg::InitPid { pid })
    }

    /// Waits for the go-ahead; returns the init's pid as the runtime sees it.
    pub fn wait_go(&self) -> Result<i32> {
        match self.expect("Go", |m| matches!(m, Msg::Go { .. }))? {
            Msg::Go { pid } => Ok(pid),
            _ => unreachable!("expect() checked the variant"),
        }
    }

    pub fn run_hooks(&self) -> Result<()> {
        self.0.send(&Msg::RunHooks)?;
        self.expect("HooksDone", |m| *m == Msg::HooksDone).map(drop)
    }

    /// Sends Ready from bytes encoded at compile time: `exec` sends it after the seccomp
    /// filter is on, where encoding (allocating) could need syscalls the profile refuses.
    pub fn ready(&self) -> Result<()> {
        self.0.send_encoded(READY)
    }

    pub fn log(&self, level: Level, msg: String) {
        let _ = self.0.send(&Msg::Log { level, msg });
    }

    pub fn error(&self, msg: String) {
        let _ = self.0.send(&Msg::Error { msg });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_sequence_with_maps_and_fork() {
        let (p, c) = pair().unwrap();
        let mut p = ParentSide::new(p, true, true);
        c.0.send(&Msg::MapIds).unwrap();
        assert_eq!(p.next_request().unwrap(), Request::MapIds);
        p.maps_done().unwrap();
        assert_eq!(c.0.recv().unwrap(), Some(Msg::MapsDone));
        c.init_pid(42).unwrap();
        assert_eq!(p.next_request().unwrap(), Request::InitPid(42));
        p.go(42).unwrap();
        assert_eq!(c.wait_go().unwrap(), 42);
        c.log(Level::Debug, "hello".into());
        c.0.send(&Msg::RunHooks).unwrap();
        assert_eq!(p.next_request().unwrap(), Request::RunHooks);
        p.hooks_done().unwrap();
        c.ready().unwrap();
        assert_eq!(p.next_request().unwrap(), Request::Ready);
    }

    #[test]
    fn ready_is_encoded_as_serde_would() {
        assert_eq!(serde_json::to_vec(&Msg::Ready).unwrap(), READY);
    }

    #[test]
    fn child_error_becomes_parent_error() {
        let (p, c) = pair().unwrap();
        let mut p = ParentSide::new(p, false, false);
        c.error("mounting /proc: EPERM".into());
        assert_eq!(
            p.next_request().unwrap_err().to_string(),
            "mounting /proc: EPERM"
        );
    }

    #[test]
    fn ready_before_go_is_a_protocol_error() {
        let (p, c) = pair().unwrap();
        let mut p = ParentSide::new(p, false, false);
        c.ready().unwrap();
        assert!(p
            .next_request()
            .unwrap_err()
            .to_string()
            .contains("protocol error"));
    }

    #[test]
    fn pid_before_maps_is_a_protocol_error() {
        let (p, c) = pair().unwrap();
        let mut p = ParentSide::new(p, true, true);
        c.init_pid(7).unwrap();
        assert!(p.next_request().is_err());
    }

    #[test]
    fn hooks_twice_is_a_protocol_error() {
        let (p, c) = pair().unwrap();
        let mut p = ParentSide::new(p, false, false);
        p.go(1).unwrap();
        c.0.send(&Msg::RunHooks).unwrap();
        assert_eq!(p.next_request().unwrap(), Request::RunHooks);
        p.hooks_done().unwrap();
        c.0.send(&Msg::RunHooks).unwrap();
        assert!(p.next_request().is_err());
    }

    #[test]
    fn eof_before_ready_is_an_error() {
        let (p, c) = pair().unwrap();
        let mut p = ParentSide::new(p, false, false);
        drop(c);
        assert!(p
            .next_request()
            .unwrap_err()
            .to_string()
            .contains("exited during setup"));
    }
}
