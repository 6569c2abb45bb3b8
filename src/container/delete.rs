//! `delete`: kill what is left (with --force, or of a container that never started or whose
//! create was aborted), remove the cgroup, run the poststop hooks, remove the state
//! directory.
//!
//! A container's delete never touches another container, whose processes may share its
//! cgroup (`linux.cgroupsPath` naming the same or a pre-existing cgroup). As runc: a
//! container with its own pid namespace is stopped by killing its init (the kernel kills the
//! rest of the namespace) and its cgroup is only removed once empty — still holding other
//! processes, that is an error naming the cgroup, and the container is kept so a later
//! delete can finish; only a container that shares the host's pid namespace has every
//! process of its cgroup killed, since nothing else would stop them.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::Global;
use crate::cgroups;
use crate::state::{Locked, NotFound, State, Status, Store};
use crate::sys::pidfd;

pub fn delete(g: &Global, id: &str, force: bool) -> Result<()> {
    let (locked, state) = match Store::new(&g.root).open(id) {
        Ok(x) => x,
        // containerd deletes --force a container it already deleted: that is success.
        Err(e) if force && e.is::<NotFound>() => return Ok(()),
        Err(e) => return Err(e),
    };
    crate::failpoint!("delete.locked");
    match locked.status(&state) {
        // A container that never started has nothing of the user's running: runc deletes
        // it. An aborted create is stopped, but its init may still be on its way out.
        Status::Stopped | Status::Created | Status::Creating => {}
        _ if force => {}
        s => bail!("cannot delete container {id} that is not stopped: {s}"),
    }
    stop(&state)?;
    crate::failpoint!("delete.stopped");
    destroy(&locked, &state)
}

/// SIGKILLs the container and waits until its init is gone. Without a pid namespace of its
/// own, every process of its cgroup is killed too (the init's death would not stop them).
pub fn stop(state: &State) -> Result<()> {
    let init = super::init_pidfd(state)?;
    if !state.own_pid_ns {
        if let Some(cg) = state.cgroup.as_ref().filter(|cg| cg.exists()) {
            cgroups::kill_all(cg)?;
        }
    }
    // The init by its pidfd: it may have moved itself out of the container's cgroup.
    if let Some(fd) = &init {
        let _ = pidfd::send_signal(fd.as_fd(), libc::SIGKILL);
        // A SIGKILLed process exits promptly; the bound only guards against a stuck kernel.
        if !pidfd::wait_exit(fd.as_fd(), 10_000)? {
            bail!(
                "container init {} did not exit within 10s of SIGKILL",
                state.pid
            );
        }
    }
    Ok(())
}

/// Undoes create: cgroup, poststop hooks (failures are warnings), state directory. A cgroup
/// that cannot be removed keeps the container, so the next delete can try again.
pub fn destroy(locked: &Locked, state: &State) -> Result<()> {
    remove_cgroup(state)?;
    crate::failpoint!("delete.cgroup-removed");
    let hooks = state.hooks.as_ref().and_then(|h| h.poststop().as_ref());
    crate::hooks::run_all_warn("poststop", hooks, &state.oci(Status::Stopped));
    crate::failpoint!("delete.hooks-run");
    locked.remove()
}

/// Removes the container's cgroup (and the parents create made) once its init is gone,
/// without ever killing another container's process (see the module documentation).
pub fn remove_cgroup(state: &State) -> Result<()> {
    empty_cgroup(state)?;
    // A systemd unit goes last, once nothing is left in it: systemd removes its cgroup.
    cgroups::driver::remove_unit(state.unit())
}

/// Ends what is left in the container's cgroup and removes the directories skiff made.
fn empty_cgroup(state: &State) -> Result<()> {
    let Some(cg) = &state.cgroup else {
        return Ok(());
    };
    if !state.own_pid_ns {
        return cgroups::destroy(cg, &state.cgroup_created);
    }
    // The kernel kills the rest of the init's pid namespace as the init dies; what is left
    // once those have gone is someone else's.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = cgroups::pids(cg)?;
        if pids.is_empty() {
            return cgroups::remove(cg, &state.cgroup_created);
        }
        let ours = |pid: &i32| {
            let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid"));
            // Unreadable: exiting already (or gone), so still on its way out of the cgroup.
            match (&state.pid_ns, ns) {
                (Some(init), Ok(ns)) => ns.to_string_lossy() == init.as_str(),
                (None, Ok(_)) | (_, Err(_)) => true,
            }
        };
        if Instant::now() >= deadline || (state.pid_ns.is_some() && !pids.iter().any(ours)) {
            bail!(
                "unable to remove container's cgroup {}: it still holds {} process(es) that \
                 are not this container's (pids {:?}); another container shares it",
                cg.display(),
                pids.len(),
                &pids[..pids.len().min(8)]
            );
        }
        cgroups::manager::wait_event(cg, "populated", 0, Duration::from_millis(100))?;
    }
}
