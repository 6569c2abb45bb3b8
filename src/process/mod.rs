//! Creating the container init: the parent side (`parent`), the child's setup sequence
//! (`child`, `identity`), and the protocol between them (`sync`, which documents the whole
//! sequence).

pub mod activation;
pub mod capabilities;
mod child;
pub mod exec;
pub mod fds;
pub(crate) mod identity;
pub mod lsm;
pub mod namespaces;
pub mod netdev;
pub mod parent;
pub mod plan;
pub mod procattrs;
pub mod procfs;
pub mod spawn;
pub mod sync;
pub mod sysctl;
mod tail;
pub mod tty;

use std::os::fd::{BorrowedFd, RawFd};

use anyhow::{Context, Result};

use crate::bundle::Bundle;
use crate::process::namespaces::Plan;

/// Everything the child needs, prepared by the parent before clone3. The child works on its
/// own copy of this (clone3 copies the address space), so nothing here is shared afterwards.
#[derive(Debug)]
pub struct Launch<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    pub plan: &'a Plan,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Socket-activation fds (LISTEN_FDS) passed on at 3.. before the preserved ones.
    pub listen_fds: u32,
    /// Idmapped mount trees the parent prepared, attached by the init.
    pub idmapped: &'a crate::rootfs::idmapped::Idmapped,
    /// O_PATH fd of `<state>/exec.fifo`, reopened for writing by the init as the barrier.
    pub fifo: BorrowedFd<'a>,
    /// Where the pty master goes when process.terminal is true: a connected console socket.
    pub console: Option<BorrowedFd<'a>>,
    /// The seccomp agent at linux.seccomp.listenerPath, connected on the host, when the
    /// filter uses SCMP_ACT_NOTIFY.
    pub seccomp_agent: Option<crate::seccomp::Agent<'a>>,
    /// Where the container's cgroup is, for its `cgroup` mounts.
    pub cgroup_view: &'a crate::rootfs::CgroupView,
    /// Parent fds the child must close at once (the state lock above all).
    pub close_in_child: Vec<RawFd>,
}

impl Launch<'_> {
    /// The container's runtime-spec state, for hooks and the seccomp agent.
    pub fn oci_state(&self, status: crate::state::Status, pid: i32) -> crate::state::OciState {
        crate::state::OciState::new(
            self.id,
            status,
            pid,
            &self.bundle.dir,
            self.bundle.annotations.clone(),
        )
    }
}

/// process.oomScoreAdj, written by the runtime (host root, through the host's /proc) into
/// its child before the Go message, so the container process inherits it. Not by the child
/// itself: it is non-dumpable from birth (CVE-2016-9962), which makes its /proc files belong
/// to the host's root, and in a new user namespace the child is that namespace's root, a
/// different uid with no privilege over them (EACCES). `pid` is our unreaped child (or the
/// init we hold a pidfd for), so it cannot name another process.
pub fn set_oom_score_adj(pid: i32, process: &plan::ProcessPlan) -> Result<()> {
    let Some(adj) = process.process.oom_score_adj() else {
        return Ok(());
    };
    let path = format!("/proc/{pid}/oom_score_adj");
    std::fs::write(&path, adj.to_string())
        .with_context(|| format!("process.oomScoreAdj: writing {adj} to {path}"))
}

/// process.oomScoreAdj for skiff without privilege over the host's namespaces (rootless),
/// which may not open a non-dumpable child's /proc files: skiff sets its own value before
/// the clone, and the child inherits it. The kernel lets it raise the value, not lower it.
pub fn inherit_oom_score_adj(process: &plan::ProcessPlan) -> Result<()> {
    let Some(adj) = process.process.oom_score_adj() else {
        return Ok(());
    };
    let own = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
    std::fs::write("/proc/self/oom_score_adj", adj.to_string()).with_context(|| {
        format!(
            "process.oomScoreAdj: {adj}: a non-root user may raise it from the current {} but \
             not lower it (that needs CAP_SYS_RESOURCE)",
            own.trim()
        )
    })
}
