//! The end of every container process's setup, one path for the init (`child.rs`) and for
//! `exec` (`exec.rs`): the fds it keeps, its user, groups and capabilities, its cwd, the
//! program lookup, and the seccomp filter.
//!
//! A container's seccomp profile may allow nothing but what its own program needs, so every
//! decision the runtime makes (which fds stay open, the cwd and whether it is inside the
//! container, the user switch, which file args[0] names, the CPU affinity, any /proc access)
//! happens in [`prepare`], before the filter is loaded. [`Armed::seal`] then loads it, and
//! after that skiff itself makes only these syscalls:
//!
//! * `capset`, only without noNewPrivileges and when the spec's effective set lacks
//!   CAP_SYS_ADMIN: loading a filter without no_new_privs needs that capability, so the user
//!   switch keeps it until the filter is on and this one call then drops it;
//! * `write` (create: the verdict for `skiff start` on the exec fifo) or `sendto` (exec:
//!   Ready on the sync socket, a message encoded in advance);
//! * `execve`.
//!
//! Two cases add to that list, because they exist to run code after the filter:
//! startContainer hooks, which run under it as runc runs them (fork, execve, wait4 and what
//! the hook program needs), and a filter with SCMP_ACT_NOTIFY, which is loaded before
//! `create` returns so a failed handoff fails it: its listener goes to the agent (`sendmsg`,
//! `close`, `shutdown`), and the init's wait for `start` follows under the filter
//! (`sendto`, `prctl`, `openat2` or `openat` of the exec fifo through procfs, `write`).
//!
//! Failure after the filter is loaded is reported like any other (the messages are built
//! then, which may allocate: a profile that refuses brk/mmap only loses the message).

use std::convert::Infallible;
use std::os::fd::BorrowedFd;

use anyhow::{Context, Result};
use caps::Capability;

use super::identity::{self, Execve};
use super::plan::ProcessPlan;
use crate::process::capabilities::Sets;
use crate::seccomp::Filter;
use crate::sys::misc;

/// What the shared tail needs from the caller.
#[derive(Debug)]
pub(super) struct Tail<'a> {
    pub process: &'a ProcessPlan,
    pub filter: Option<&'a Filter>,
    /// For a NOTIFY filter: the agent's connected socket and the process state for it
    /// (`seccomp::agent::process_state`), built by the caller.
    pub agent: Option<(BorrowedFd<'a>, Vec<u8>)>,
    /// The program's environment (process.env, HOME, LISTEN_*).
    pub env: Vec<String>,
    /// How many fds from 3 on the program keeps (socket activation, then --preserve-fds).
    pub kept_fds: u32,
    /// setgroups(2) is denied in the container's user namespace (`identity::switch_user`).
    pub setgroups_denied: bool,
}

/// A process that has made all its decisions and runs as its user: only the filter (and the
/// capability it needed) and execve are left.
#[derive(Debug)]
pub(super) struct Armed<'a> {
    filter: Option<&'a Filter>,
    agent: Option<(BorrowedFd<'a>, Vec<u8>)>,
    /// The spec's sets, when CAP_SYS_ADMIN was kept beyond them for loading the filter.
    caps: Option<Sets>,
    env: Vec<String>,
    execve: Execve,
}

/// Everything up to the filter, in order: fds, user and capabilities, cwd, the program
/// lookup, the final CPU affinity; a NOTIFY filter is sealed here too (see the module doc).
pub(super) fn prepare(t: Tail<'_>) -> Result<Armed<'_>> {
    let p = &t.process.process;
    // Everything past stdio and the fds the caller asked to pass on must close at execve
    // (CVE-2024-21626: a leaked host fd would give the container a way out).
    let first = 3u32
        .checked_add(t.kept_fds)
        .context("too many fds to pass on to the container process")?;
    misc::cloexec_from(first).context("marking fds close-on-exec")?;
    misc::keep_across_exec(3, t.kept_fds);
    let caps = &t.process.caps;
    let nnp = p.no_new_privileges().unwrap_or(false);
    let extra = (t.filter.is_some() && !nnp && !caps.effective_has(Capability::CAP_SYS_ADMIN))
        .then_some(Capability::CAP_SYS_ADMIN);
    identity::switch_user_and_chdir(p, caps, extra, t.setgroups_denied)?;
    let exe = identity::lookup(p, &t.env)?;
    let execve = Execve::new(exe, p, &t.env)?;
    t.process.attrs.final_affinity()?;
    let notify = t.filter.is_some_and(Filter::uses_notify);
    let mut armed = Armed {
        filter: t.filter,
        agent: t.agent,
        caps: extra.map(|_| caps.clone()),
        env: t.env,
        execve,
    };
    if notify {
        armed.seal()?;
    }
    Ok(armed)
}

impl Armed<'_> {
    /// Loads the filter (once; a no-op after) and drops the capability kept for it.
    pub fn seal(&mut self) -> Result<()> {
        if let Some(f) = self.filter.take() {
            let agent = self.agent.as_ref().map(|(s, m)| (*s, m.as_slice()));
            crate::seccomp::install(f, agent)?;
        }
        if let Some(caps) = self.caps.take() {
            caps.finish()?;
        }
        Ok(())
    }

    /// The program's environment (startContainer hooks without an `env` of their own get it).
    pub fn env(&self) -> &[String] {
        &self.env
    }

    /// execve(2) of the program found by [`prepare`]; returns only on failure.
    pub fn exec(&self) -> Result<Infallible> {
        self.execve.run()
    }
}
