//! `exec`: a new process inside a running container.
//!
//! The sequence is the create protocol's short form (see `sync.rs`): the parent enters the
//! container's pid namespace for its children (setns on the init's pidfd), clone3s the child
//! straight into the container's cgroup (CLONE_INTO_CGROUP) and goes back to its own pid
//! namespace; the child joins every other namespace of the init in one setns on the same
//! pidfd (the kernel orders them, user namespace first, and a pidfd cannot be a reused pid),
//! then applies the process (rlimits, terminal, then the tail it shares with the init in
//! `tail.rs`: fds, user, capabilities, no_new_privs, cwd, lookup), loads the seccomp filter,
//! reports Ready and execs. There is no barrier: exec starts at once, and the filter goes on
//! before Ready so a failure to load it fails the command.
//!
//! ```text
//!  parent                                   child
//!  setns(init pidfd, NEWPID) for children
//!  clone3(INTO_CGROUP | PIDFD) ───────────► setns(init pidfd, user|mnt|net|ipc|uts|cgroup|time)
//!  setns back to our own pid namespace
//!  Go{pid} ───────────────────────────────► setsid, terminal, rlimits, user, caps, cwd, lookup,
//!                                           seccomp filter
//!                          ◄─────────────── Ready (or Error)
//!  pid file, then wait or detach            execve
//! ```

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use anyhow::{bail, Context, Result};
use nix::sched::{setns, CloneFlags};
use nix::sys::prctl;
use nix::sys::signal::Signal;

use super::identity;
use super::plan::ProcessPlan;
use super::procattrs::ContainerAttrs;
use super::spawn::{self, Cloned, Init};
use super::sync::{self, ChildEnd, ParentSide, Request};
use super::tail::{self, Tail};
use crate::process::procfs::Proc;

/// What the exec'd process gets. Prepared by the caller before clone3.
#[derive(Debug)]
pub struct Exec<'a> {
    pub init: BorrowedFd<'a>,
    /// The init's root directory (`/proc/<pid>/root`), which the process chroots into after
    /// joining the mount namespace: setns only puts it at the namespace's root mount, which
    /// is not the container's root when the runtime itself runs chrooted.
    pub root: BorrowedFd<'a>,
    pub process: &'a ProcessPlan,
    /// The container-wide settings every process gets (personality, memory policy).
    pub container: &'a ContainerAttrs,
    pub seccomp: Option<&'a crate::seccomp::Filter>,
    /// Namespaces of the init that differ from ours (pid is handled apart).
    pub join: CloneFlags,
    pub join_pid: bool,
    /// skiff cannot enter the container's pid namespace and return (unprivileged, or root
    /// of a user namespace that does not own its own pid namespace): the child joins it with
    /// the rest and forks the process.
    pub unprivileged: bool,
    /// The cgroup to be born in (none: ours, for a rootless container without one).
    pub cgroup: Option<spawn::Birthplace<'a>>,
    pub console: Option<BorrowedFd<'a>>,
    /// The seccomp agent (linux.seccomp.listenerPath) when the filter uses SCMP_ACT_NOTIFY,
    /// and the container's state JSON it is sent along with the listener fd.
    pub seccomp_agent: Option<(crate::seccomp::Agent<'a>, crate::state::OciState)>,
    pub preserve_fds: u32,
    /// setgroups(2) is denied in the container's user namespace.
    pub setgroups_denied: bool,
    pub close_in_child: Vec<RawFd>,
}

impl Exec<'_> {
    /// The child joins the pid namespace itself and forks the process (see `unprivileged`).
    fn forks(&self) -> bool {
        self.join_pid && self.unprivileged
    }
}

pub fn spawn(e: &mut Exec<'_>) -> Result<Init> {
    let (pend, cend) = sync::pair()?;
    e.close_in_child.push(pend.raw_fd());
    let init = e.init;
    let enter = move || {
        setns(init, CloneFlags::CLONE_NEWPID).context("entering the container's pid namespace")
    };
    if e.unprivileged {
        super::inherit_oom_score_adj(e.process)?;
    }
    let fork = e.forks();
    let enter = (e.join_pid && !fork).then_some(&enter as &dyn Fn() -> Result<()>);
    let (cloned, attach) = spawn::clone_into("exec process", 0, e.cgroup, enter)?;
    let mut child = match cloned {
        Cloned::Child => {
            drop(pend);
            child_main(e, cend)
        }
        Cloned::Parent(guard) => guard,
    };
    let mut pid = child.pid();
    crate::failpoint!("exec.cloned");
    drop(cend);
    crate::logging::step("exec: process cloned");
    let mut side = ParentSide::new(pend, false, fork);
    if fork {
        // The child forked the process into the pid namespace (a sibling of it, so ours).
        match side.next_request()? {
            Request::InitPid(p) => {
                child.adopt(p, "exec process")?;
                pid = p;
            }
            other => bail!("protocol error: unexpected {other:?} from the exec process"),
        }
    }
    let adj = match e.unprivileged {
        true => Ok(()),
        false => super::set_oom_score_adj(pid, e.process),
    };
    // Placed before it is let go: it runs nothing of its own before `go`.
    let adj = adj.and_then(|()| attach.map_or(Ok(()), |a| a(pid)));
    let result = adj
        .and_then(|()| side.go(pid))
        .inspect(|()| {
            crate::failpoint!("exec.go");
        })
        .and_then(|()| side.next_request());
    match result? {
        Request::Ready => Ok(child.disarm()),
        other => bail!("protocol error: unexpected {other:?} from the exec process"),
    }
}

fn child_main(e: &Exec<'_>, end: ChildEnd) -> ! {
    let ready = std::cell::Cell::new(false);
    let result = child(e, &end, &ready);
    super::child::fail(&end, result, ready.get(), 255)
}

fn child(
    e: &Exec<'_>,
    end: &ChildEnd,
    ready: &std::cell::Cell<bool>,
) -> Result<std::convert::Infallible> {
    // Non-dumpable until execve: a container process must not ptrace us or open our
    // /proc/<pid>/exe while we still hold host resources (CVE-2016-9962, CVE-2019-5736).
    prctl::set_pdeathsig(Signal::SIGKILL).context("setting the parent-death signal")?;
    prctl::set_dumpable(false).context("making the exec process non-dumpable")?;
    for fd in &e.close_in_child {
        let _ = nix::unistd::close(*fd);
    }
    // process.execCPUAffinity.initial (procattrs.rs).
    e.process.attrs.initial_affinity()?;
    let fork = e.forks();
    let join = if fork {
        e.join | CloneFlags::CLONE_NEWPID
    } else {
        e.join
    };
    if !join.is_empty() {
        setns(e.init, join).context("joining the container's namespaces")?;
    }
    if fork {
        spawn::fork_into_pid_ns(end, "exec process")?;
    }
    nix::unistd::fchdir(e.root).context("entering the container's root")?;
    nix::unistd::chroot(".").context("chroot into the container's root")?;
    nix::unistd::chdir("/").context("chdir to /")?;
    // Done with it: no runtime fd of a directory, not even the container's root, stays
    // reachable as /proc/self/fd/N for process.cwd or args (CVE-2024-21626). Our copy of the
    // parent's fd, which nothing else in this process closes.
    let _ = nix::unistd::close(e.root.as_raw_fd());
    let pid = end.wait_go()?;
    crate::logging::step("exec: namespaces joined");
    let p = &e.process.process;
    nix::unistd::setsid().context("setsid")?;
    if e.process.terminal {
        let socket = e
            .console
            .context("process.terminal is true but there is no console socket")?;
        crate::process::tty::setup_in_container(socket, p.console_size(), false)?;
    }
    identity::rlimits(p)?;
    let env = identity::environment(p);
    // ioPriority, scheduler (procattrs.rs) and the LSM exec labels (lsm.rs), while still
    // privileged and before any seccomp filter.
    e.process.attrs.apply()?;
    e.container.apply()?;
    if !e.process.labels.is_empty() {
        crate::process::lsm::apply_labels(&e.process.labels, &Proc::open()?)?;
    }
    // For a NOTIFY filter: the process state for the agent (this process's pid, the
    // container's state), built before loading.
    let agent = match &e.seccomp_agent {
        Some((a, state)) => Some((
            a.socket,
            crate::seccomp::agent::process_state(pid, a.metadata, state)?,
        )),
        None => None,
    };
    let mut armed = tail::prepare(Tail {
        process: e.process,
        filter: e.seccomp,
        agent,
        env,
        kept_fds: e.preserve_fds,
        setgroups_denied: e.setgroups_denied,
    })?;
    crate::logging::step("exec: identity switched, program found");
    prctl::set_pdeathsig(None).context("clearing the parent-death signal")?;
    // No barrier to wait at: the filter goes on now, so a failure to load it fails `exec`.
    armed.seal()?;
    end.ready()?;
    ready.set(true);
    armed.exec()
}
