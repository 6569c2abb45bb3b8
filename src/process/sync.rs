//! THE create protocol: what the parent (`skiff create`/`run`) and the child (the future
//! container init) say to each other over one SOCK_SEQPACKET socketpair, and in which order.
//! This is the only place that defines it; `parent.rs` and `child.rs` each follow it through
//! the typed ends below. `[name]` marks a crash point (`failpoint!`, see below).
//!
//! ```text
//!  parent                                          child
//!  ──────                                          ─────
//!  validate; connect the console socket and (NOTIFY) the seccomp agent
//!  mkdir + flock <root>/<id> (under <root>'s flock)   [create.locked]
//!  W1: state.json {pid 0, cgroup, its new dirs}      [create.recorded]
//!  mkfifo exec.fifo                                   [create.fifo]
//!  mkdir cgroup (W1 again if other parents were made) [create.cgroup]
//!  resources, device program                          [create.resources]
//!  [idmapped binds from inside the rootfs in a user ns: fork the mount helper, host
//!   root in the host's namespaces (rootfs/helper.rs); its messages: `mount_helper`]
//!  open joined namespaces, become non-dumpable
//!  [setns pid_for_children when joining a pid ns]
//!  clone3(new namespaces | INTO_CGROUP | PIDFD) ─► born in its cgroup (and namespaces);
//!                                  [spawn.cloned]  non-dumpable from birth; parent-death
//!                                                  signal SIGKILL; drops the parent's fds
//!  [clone3 made a user ns: write uid/gid maps]     [plan.join: setns each, user first]
//!                          ◄───────────────────── MapIds      (plan.unshare_user only,
//!  write uid_map/gid_map           [spawn.maps]                after unshare(NEWUSER))
//!  MapsDone ─────────────────────────────────────►
//!                                                  [unshare the rest]
//!                          ◄───────────────────── InitPid{pid} (plan.fork only: the child
//!  pidfd_open(pid), reap the child                  forked the init with CLONE_PARENT and
//!                                                   exits; the init carries on from here)
//!  write /proc/<pid>/oom_score_adj
//!  Go{pid} ─────────────────────────[spawn.go]───► init: [user ns: become its root, then
//!  W2: state.json {pid, start time, pid ns}        parent-death signal again + EOF check],
//!                 [spawn.recorded]                 time ns, mounts, devices
//!                             mount helper ◄────── MountRequest{index} + mount ns fd
//!                             mount helper ──────► tree fd ("ok") | error text
//!                          ◄───────────────────── RunHooks    (only with prestart or
//!  run prestart + createRuntime hooks                           createRuntime hooks)
//!                  [spawn.hooks, spawn.hooks-done]
//!  HooksDone ────────────────────────────────────►
//!                                                  createContainer hooks (cwd: the rootfs),
//!                                                  pivot_root, masked/readonly paths,
//!                                                  hostname, rlimits, then the shared tail
//!                                                  (tail.rs): fds, user, caps (keeping
//!                                                  CAP_SYS_ADMIN for a filter without
//!                                                  noNewPrivileges), cwd, look up args[0]
//!                                                  [NOTIFY: load the filter, listener fd
//!                                                  + process state to the agent],
//!                                                  clear the parent-death signal
//!                          ◄───────────────────── Ready
//!  --pid-file, --pidfd-socket  [spawn.ready, create.pid-file]
//!  W3: <state>/config.json, the config copy: commits the record  [create.committed]
//!  Commit ───────────────────────────────────────► (EOF instead: exit)
//!  exit                              [create.done] block opening exec.fifo for writing
//!  ...
//!  `skiff start`: open exec.fifo O_PATH, unlink it, reopen it for reading  ◄── unblocks:
//!  [start.fifo-held, start.fifo-removed]     load the filter, drop CAP_SYS_ADMIN,
//!  read the verdict [start.released]         startContainer hooks, write the verdict
//!                                            byte, execve
//! ```
//!
//! Two more messages carry an fd (SCM_RIGHTS, `sys::fdpass`) to a peer the caller names:
//! the pty master to `--console-socket` and the init's pidfd to `--pidfd-socket` (runc's
//! protocol: the fd's name as the payload), and the seccomp listener with the container's
//! state to the seccomp agent (`seccomp::agent`).
//!
//! At any point the child may send `Log{level,msg}` (the parent writes it to the log: it is
//! the only writer), or `Error{msg}` and exit: the parent then kills and reaps it and undoes
//! everything. EOF from the parent makes the child exit; EOF from the child before `Ready` is
//! an error for the parent. Any message out of this order is a protocol error.
//!
//! # Crash consistency
//!
//! skiff may be killed (SIGKILL: shim timeouts, OOM, node shutdown) at any instant of any
//! command. Whatever that leaves, the next `delete --force` (or `delete`) removes it
//! completely: no process, no mount, no cgroup, no state directory, and the id is free again.
//! `integration/crash/` kills every command at every crash point above (and the others in
//! `start`, `run`, `exec`, `delete`, `update`, `pause`, `resume`) and at random moments, and
//! checks the kernel's view after `delete --force`. The argument:
//!
//! - **Record before making.** W1 names the cgroup (and which of its directories skiff made)
//!   before it exists; the fifo lives in the state directory. The init needs no record to
//!   die (below), but W2 names it by pid, start time and pid namespace while it sets up,
//!   written after `Go` so the write costs nothing on the critical path: `delete` then kills
//!   it and waits for it by its pidfd, and tells its processes from another container's in
//!   a shared cgroup.
//! - **No orphan init.** The init carries the parent-death signal SIGKILL from its first
//!   instruction (the fork case's init too) through its setup: skiff's death kills it. Where
//!   a credential change clears the signal (becoming the user namespace's root) it is set
//!   again and the socket checked for EOF, which covers a parent that died in between. From
//!   the user switch on, the init only talks on the socket, where skiff's death is EOF: it
//!   sends Ready and blocks for `Commit` (EOF: it exits), so clearing the signal before
//!   Ready costs nothing, and `create` need not wait for an answer (which would cost a
//!   round trip on its critical path). `Commit` comes after W3, the pid file and the pidfd:
//!   an init never outlives a `create` that died before it could return, and never waits
//!   on the fifo for a `start` that cannot come.
//! - **Uncommitted means aborted.** W3, the copy of config.json that later commands read, is
//!   written last (atomically) and is what commits the record. A create holds the
//!   container's flock until it exits, so a record another command can lock without it
//!   belongs to a dead create: it reads as `stopped` (runc shows aborted starts as stopped),
//!   `list` shows it, and `delete` kills what W2 names (if it still runs), removes the
//!   cgroup and the directory.
//! - **Debris.** A directory with no state.json is what a create killed between its mkdir
//!   and W1, or a delete killed after removing state.json (it goes first), leaves. Creates
//!   take the root's flock from mkdir to flock, so a reader holding both locks knows no
//!   create is halfway: it removes the directory (`state::Store::open`), and the id is free.
//! - **Start.** `start` unlinks the fifo before it releases the init, so a crash leaves a
//!   container that is either created (fifo present, init waiting), running, or stopped,
//!   never "created" with an init that is already past the barrier (a later `start` would
//!   wait forever). A crash between the unlink and the release leaves an init that waits
//!   forever while the container reads as running; `delete --force` removes it.
//! - **Delete.** `delete` kills, removes the cgroup, runs poststop hooks and removes
//!   state.json before the rest of the directory, so a crash leaves either the container
//!   (whose next delete redoes what is left, poststop hooks included) or debris.
//! - **Other commands.** `exec` puts its process in the container's cgroup and pid
//!   namespace at birth (it dies with the container); `update`, `pause` and `resume` change
//!   the cgroup and rewrite state.json atomically (rename), so a crash leaves the old or the
//!   new record; the container stays deletable.
//! - **What is outside.** Hooks die with the process that runs them (parent-death signal),
//!   but what a hook starts itself is its own affair, as with runc. A `--pid-file` is
//!   written through a temporary file next to it, which a crash at that instant leaves.

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
    Commit,
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
                // The peer closed with a message of ours unread: it is gone all the same.
                Err(nix::errno::Errno::ECONNRESET) => return Ok(None),
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

    /// The container is recorded: the init may outlive us from now on. Nothing to wait
    /// for: the init cleared its parent-death signal before Ready, and waits for this (EOF
    /// if we die first).
    pub fn commit(self) -> Result<()> {
        self.end.0.send(&Msg::Commit)
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

    /// After Ready: waits until skiff has recorded the container (EOF: it died first).
    pub fn wait_commit(&self) -> Result<()> {
        match self.0.recv()? {
            Some(Msg::Commit) => Ok(()),
            Some(m) => bail!("protocol error: expected Commit, got {m:?}"),
            None => bail!("skiff exited before it recorded the container"),
        }
    }

    /// True when the parent's end is closed (it exited), without waiting.
    pub fn parent_gone(&self) -> bool {
        let mut p = [libc::pollfd {
            fd: self.raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        }];
        crate::sys::misc::poll(&mut p, 0)
            .is_ok_and(|_| p[0].revents & (libc::POLLHUP | libc::POLLRDHUP) != 0)
    }

    pub fn log(&self, level: Level, msg: String) {
        let _ = self.0.send(&Msg::Log { level, msg });
    }

    pub fn error(&self, msg: String) {
        let _ = self.0.send(&Msg::Error { msg });
    }
}

/// The mount helper's traffic (`rootfs::helper`), on a SOCK_SEQPACKET pair of its own
/// between the init and the helper: one request at a time, each carrying the init's mount
/// namespace fd, each reply the idmapped tree's fd (payload "ok") or the error text (no fd).
/// EOF on either side ends it.
pub mod mount_helper {
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

    use anyhow::{bail, Context, Result};

    use crate::sys::fdpass;

    /// init → helper: `mounts[index]`, cloned from the mount namespace `mntns`.
    pub fn request(sock: BorrowedFd<'_>, index: usize, mntns: BorrowedFd<'_>) -> Result<OwnedFd> {
        fdpass::send(sock, Some(mntns), index.to_string().as_bytes())
            .context("asking the mount helper")?;
        let (reply, fd) = fdpass::recv(sock).context("waiting for the mount helper")?;
        match fd {
            Some(fd) => Ok(fd),
            None if reply.is_empty() => bail!("the mount helper exited"),
            None => bail!("{}", String::from_utf8_lossy(&reply)),
        }
    }

    /// In the helper: the next request (`None` once the init's end is closed).
    pub fn next(sock: BorrowedFd<'_>) -> Result<Option<(usize, Option<OwnedFd>)>> {
        let (msg, ns) = fdpass::recv(sock).context("mount helper: reading a request")?;
        if msg.is_empty() {
            return Ok(None);
        }
        let index = std::str::from_utf8(&msg)
            .ok()
            .and_then(|s| s.parse().ok())
            .context("mount helper: malformed request")?;
        Ok(Some((index, ns)))
    }

    /// In the helper: the answer to the last request.
    pub fn reply(sock: BorrowedFd<'_>, tree: Result<OwnedFd>) -> Result<()> {
        match tree {
            Ok(tree) => fdpass::send(sock, Some(tree.as_fd()), b"ok"),
            Err(e) => fdpass::send(sock, None, format!("{e:#}").as_bytes()),
        }
        .context("mount helper: answering")?;
        Ok(())
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
        assert_eq!(c.0.recv().unwrap(), Some(Msg::HooksDone));
        c.ready().unwrap();
        assert_eq!(p.next_request().unwrap(), Request::Ready);
        assert!(!c.parent_gone());
        p.commit().unwrap();
        c.wait_commit().unwrap();
    }

    #[test]
    fn a_parent_gone_before_commit_is_eof_for_the_child() {
        let (p, c) = pair().unwrap();
        let p = ParentSide::new(p, false, false);
        c.ready().unwrap();
        drop(p);
        assert!(c.parent_gone());
        assert!(c
            .wait_commit()
            .unwrap_err()
            .to_string()
            .contains("before it recorded the container"));
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
        let e = p.next_request().unwrap_err().to_string();
        assert!(e.contains("protocol error: unexpected InitPid"), "{e}");
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
        let e = p.next_request().unwrap_err().to_string();
        assert!(e.contains("protocol error: unexpected RunHooks"), "{e}");
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
