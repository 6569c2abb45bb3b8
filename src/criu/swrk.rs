//! One conversation with `criu swrk`: CRIU as a child of ours, serving one request over a
//! SOCK_SEQPACKET pair (its fd 3), sending notifications we answer on the way.
//!
//! ```text
//!   skiff                                criu swrk 3
//!     |--- criu_req (DUMP/RESTORE/...) ----->|
//!     |<-- criu_resp NOTIFY "setup-namespaces" (pid)
//!     |--- criu_req NOTIFY, success -------->|   (and so on, per notification)
//!     |<-- criu_resp NOTIFY "orphan-pts-master" + SCM_RIGHTS(pty master)
//!     |<-- criu_resp DUMP/RESTORE (success, restored pid)
//!     |    criu exits
//! ```
//!
//! Fds named in the options (images and work directories) are ours: CRIU opens them as
//! /proc/<our pid>/fd/N. Fds CRIU is to inherit (`inherit_fd`) are numbered in its table:
//! 0-2 its stdio, 3 the socket, 4... the `extra` fds in order. If skiff dies, the socket
//! closes: CRIU fails the request at its next notification and undoes what it did (a dump
//! resumes the tree, a restore kills what it restored).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Child, Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use super::rpc::{self, Features, Opts, ReqType, Resp};
use crate::sys::fdpass;

/// The CRIU binary: `$SKIFF_CRIU` (tests, other builds), else `criu` on PATH, as runc.
fn binary() -> String {
    std::env::var("SKIFF_CRIU").unwrap_or_else(|_| "criu".into())
}

/// A failed request: CRIU's verdict, and where its log is.
#[derive(Debug)]
pub struct Failed {
    pub typ: &'static str,
    pub errno: i32,
    pub msg: Option<String>,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // runc's wording.
        write!(f, "criu failed: type {} errno {}", self.typ, self.errno)?;
        if let Some(m) = &self.msg {
            write!(f, " ({m})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failed {}

/// What the stdio of the CRIU process is. A restore gives the restored tree its pipes
/// through CRIU's own stdio (inherit_fd 0-2), as runc does.
pub enum Stdio3 {
    Inherit,
    Null,
}

/// What answers CRIU's notifications: (script, pid, the fd the notification carried).
pub type Notify<'a> = dyn FnMut(&str, i32, Option<OwnedFd>) -> Result<()> + 'a;

pub struct Session {
    child: Child,
    sock: OwnedFd,
}

impl Session {
    pub fn start(stdio: Stdio3, extra: &[BorrowedFd<'_>]) -> Result<Session> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("creating the socketpair for criu swrk")?;
        let mut cmd = Command::new(binary());
        cmd.args(["swrk", "3"]);
        if let Stdio3::Null = stdio {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        let mut fds = vec![theirs.as_fd()];
        fds.extend_from_slice(extra);
        crate::sys::misc::pass_fds(&mut cmd, &fds).context("passing fds to criu swrk")?;
        let child = cmd
            .spawn()
            .with_context(|| format!("starting `{} swrk` (is CRIU installed?)", binary()))?;
        drop(cmd);
        Ok(Session { child, sock: ours })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `req` and answers CRIU's notifications with `notify(script, pid, fd)` (a
    /// failure there fails the request: CRIU undoes it); returns CRIU's final response and
    /// waits for CRIU to exit.
    pub fn call(
        mut self,
        t: ReqType,
        opts: Option<&Opts>,
        features: Option<Features>,
        notify: &mut Notify<'_>,
    ) -> Result<Resp> {
        let resp = self.converse(t, opts, features, notify);
        // CRIU serves one request: closing our end ends it (a pre-dump's CRIU waits for a
        // final dump otherwise).
        let _ = nix::sys::socket::shutdown(
            std::os::fd::AsRawFd::as_raw_fd(&self.sock),
            nix::sys::socket::Shutdown::Both,
        );
        let status = self.child.wait().context("waiting for criu")?;
        let resp = resp?;
        if !status.success() && t != ReqType::PreDump {
            bail!("criu failed: {status}");
        }
        Ok(resp)
    }

    fn converse(
        &mut self,
        t: ReqType,
        opts: Option<&Opts>,
        features: Option<Features>,
        notify: &mut Notify<'_>,
    ) -> Result<Resp> {
        self.send(&rpc::request(t, opts, features))?;
        loop {
            let (buf, fd) = fdpass::recv(self.sock.as_fd()).context("reading from criu")?;
            if buf.is_empty() {
                bail!("criu closed the connection before it answered (it may have crashed)");
            }
            let resp = Resp::decode(&buf)?;
            if !resp.success {
                return Err(Failed {
                    typ: resp.typ.map(ReqType::name).unwrap_or("UNKNOWN"),
                    errno: resp.cr_errno.unwrap_or(0),
                    msg: resp.cr_errmsg.clone(),
                }
                .into());
            }
            match resp.typ {
                Some(ReqType::Notify) => {
                    let (script, pid) = resp
                        .notify
                        .clone()
                        .ok_or_else(|| anyhow!("a notification without its script"))?;
                    crate::logging::debug(&format!("criu: notification {script} (pid {pid})"));
                    notify(&script, pid, fd)
                        .with_context(|| format!("handling criu's {script} notification"))?;
                    self.send(&rpc::request(ReqType::Notify, None, None))?;
                }
                Some(got) if got == t => return Ok(resp),
                other => bail!("criu answered {other:?} to a {} request", t.name()),
            }
        }
    }

    fn send(&self, msg: &[u8]) -> Result<()> {
        fdpass::send(self.sock.as_fd(), None, msg).context("writing to criu")?;
        Ok(())
    }
}

/// CRIU's version, as major*10000 + minor*100 + sublevel (3.17.1 is 31701).
pub fn version() -> Result<u32> {
    let s = Session::start(Stdio3::Null, &[])?;
    let r = s.call(ReqType::Version, None, None, &mut |_, _, _| Ok(()))?;
    r.version
        .ok_or_else(|| anyhow!("criu did not say its version"))
}

/// Which of `want` this CRIU and kernel lack.
pub fn missing_features(want: Features) -> Result<Vec<&'static str>> {
    let s = Session::start(Stdio3::Null, &[])?;
    let r = s
        .call(ReqType::FeatureCheck, None, Some(want), &mut |_, _, _| {
            Ok(())
        })
        .context("CRIU feature check failed")?;
    let have = r.features.unwrap_or_default();
    let mut missing = Vec::new();
    if want.mem_track && !have.mem_track {
        missing.push("MemTrack");
    }
    if want.lazy_pages && !have.lazy_pages {
        missing.push("LazyPages");
    }
    Ok(missing)
}
