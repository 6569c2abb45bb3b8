//! The one way skiff starts a process of a container, for `create` (the init) and `exec`
//! alike: born non-dumpable, cloned (clone3) straight into the container's cgroup with a
//! pidfd, in the container's pid namespace when one is to be joined (our side enters it for
//! the call only), and held by a [`Guard`] that kills and reaps it on every failure path.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use anyhow::{Context, Result};
use nix::sched::{setns, CloneFlags};

use crate::sys::clone::{clone3, Forked};
use crate::sys::pidfd;

/// A process skiff started (the container init, or an exec'd process).
#[derive(Debug)]
pub struct Init {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// Kills and reaps its process on drop unless disarmed: no failure path leaves one behind.
#[derive(Debug)]
pub struct Guard(Option<Init>);

impl Guard {
    /// The process is the caller's now.
    pub fn disarm(mut self) -> Init {
        self.0.take().expect("the guard holds a process")
    }

    pub fn pid(&self) -> i32 {
        self.0.as_ref().map_or(0, |c| c.pid)
    }

    /// Guards `next` instead (the init a forking intermediate child made) and hands back
    /// the process guarded so far.
    pub fn replace(&mut self, next: Init) -> Init {
        std::mem::replace(self, Guard(Some(next))).disarm()
    }

    /// Takes over the process the guarded child forked into a pid namespace
    /// ([`fork_into_pid_ns`]; `pid` as it reported it), and reaps the child.
    pub fn adopt(&mut self, pid: i32, what: &str) -> Result<()> {
        let fd = pidfd::open(pid).with_context(|| format!("pidfd_open of the {what} {pid}"))?;
        let first = self.replace(Init { pid, pidfd: fd });
        pidfd::wait(first.pidfd.as_fd(), false).context("reaping the intermediate child")?;
        Ok(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            let _ = pidfd::send_signal(c.pidfd.as_fd(), libc::SIGKILL);
            let _ = pidfd::wait(c.pidfd.as_fd(), false);
        }
    }
}

/// Which side of [`clone_into`] we are on.
pub enum Cloned {
    /// The new process: it runs its setup and never returns.
    Child,
    /// Us, with the new process guarded.
    Parent(Guard),
}

/// Puts a process into the container's cgroup by other means than its birth (systemd's
/// `AttachProcessesToUnit`).
pub type Attach<'a> = &'a dyn Fn(i32) -> Result<()>;

/// The cgroup a process is to be born in.
#[derive(Clone, Copy)]
pub struct Birthplace<'a> {
    pub dir: BorrowedFd<'a>,
    /// Where the kernel refuses the birth there, who can place it instead (see
    /// [`clone_into`]); without one the refusal is the error.
    pub attach: Option<Attach<'a>>,
}

impl std::fmt::Debug for Birthplace<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Birthplace")
            .field("dir", &self.dir)
            .field("attach", &self.attach.is_some())
            .finish()
    }
}

/// Clones a process with clone3 `flags` into `cgroup` (without one, into ours: a rootless
/// container that has none of its own). `enter_pid_ns`, when given, moves our
/// side into the pid namespace the process is to be born in (for the clone3 only: we return
/// to our own, where hooks and later children belong).
///
/// An unprivileged caller may not move a process between its own cgroup and one outside the
/// subtree delegated to it (the kernel wants write access at their common ancestor): from a
/// login session into a unit of the user's own systemd, CLONE_INTO_CGROUP fails with EACCES.
/// There, when the birthplace names who can `attach` it and the process makes no cgroup
/// namespace at birth (it would be rooted at the wrong cgroup), it is born in ours, and the
/// returned `Attach` must place it before it is let go (as runc's init is placed by systemd).
pub fn clone_into<'a>(
    what: &str,
    flags: u64,
    cgroup: Option<Birthplace<'a>>,
    enter_pid_ns: Option<&dyn Fn() -> Result<()>>,
) -> Result<(Cloned, Option<Attach<'a>>)> {
    let dir = cgroup.map(|c| c.dir);
    match clone_once(what, flags, dir, enter_pid_ns) {
        Err(e) => {
            let fallback = cgroup.and_then(|c| c.attach).filter(|_| {
                flags & libc::CLONE_NEWCGROUP as u64 == 0 && crate::cgroups::denied(&e)
            });
            let Some(attach) = fallback else {
                return Err(e);
            };
            crate::logging::step(&format!(
                "{what}: not ours to be born in the container's cgroup ({e:#}): born in ours, \
                 to be attached"
            ));
            let cloned = clone_once(what, flags, None, enter_pid_ns)?;
            let pending = matches!(cloned, Cloned::Parent(_)).then_some(attach);
            Ok((cloned, pending))
        }
        Ok(cloned) => Ok((cloned, None)),
    }
}

fn clone_once(
    what: &str,
    flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
    enter_pid_ns: Option<&dyn Fn() -> Result<()>>,
) -> Result<Cloned> {
    let own = match enter_pid_ns {
        Some(enter) => {
            let own = File::open("/proc/self/ns/pid").context("opening our own pid namespace")?;
            enter()?;
            Some(own)
        }
        None => None,
    };
    born_non_dumpable()?;
    let forked = clone3(flags, cgroup, true);
    if let (Some(own), Ok(Forked::Parent { .. }) | Err(_)) = (&own, &forked) {
        setns(own.as_fd(), CloneFlags::CLONE_NEWPID).context("returning to our pid namespace")?;
    }
    Ok(
        match forked.with_context(|| format!("clone3 of the {what}"))? {
            Forked::Child => Cloned::Child,
            Forked::Parent { pid, pidfd } => Cloned::Parent(Guard(Some(Init {
                pid,
                pidfd: pidfd.context("clone3 returned no pidfd")?,
            }))),
        },
    )
}

/// The child inherits dumpability at clone3, so it is non-dumpable from its first
/// instruction rather than from its first prctl: a process already in a joined pid namespace
/// (exec, or create into an existing one) with CAP_SYS_PTRACE could otherwise attach to it
/// in between, while it still is host root in the host's mount namespace (CVE-2016-9962).
/// The runtime itself stays non-dumpable too, which only keeps others out of it.
fn born_non_dumpable() -> Result<()> {
    nix::sys::prctl::set_dumpable(false).context("making skiff non-dumpable before clone3")
}

/// In a child that has joined or unshared a pid namespace, which takes effect only for its
/// children: forks the process that is to live in it, a sibling of ours (CLONE_PARENT) so
/// the runtime can wait for it. Returns in the new process; the child reports its pid
/// (`InitPid`, for [`Guard::adopt`]) and exits.
pub fn fork_into_pid_ns(end: &super::sync::ChildEnd, what: &str) -> Result<()> {
    use nix::sys::{prctl, signal::Signal};
    match clone3(libc::CLONE_PARENT as u64, None, false)
        .with_context(|| format!("forking the {what} into its pid namespace"))?
    {
        Forked::Child => {
            prctl::set_pdeathsig(Signal::SIGKILL).context("setting the parent-death signal")
        }
        Forked::Parent { pid, .. } => {
            end.init_pid(pid)?;
            crate::sys::misc::exit_now(0)
        }
    }
}
