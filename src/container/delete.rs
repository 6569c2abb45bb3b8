//! `delete`: kill what is left (with --force, or of a container that never started), run the
//! poststop hooks, remove the cgroup and the state directory.

use std::os::fd::AsFd;

use anyhow::{bail, Result};

use crate::cgroups;
use crate::cli::GlobalOpts;
use crate::state::{Locked, NotFound, State, Status, Store};
use crate::sys::pidfd;

pub fn delete(g: &GlobalOpts, id: &str, force: bool) -> Result<()> {
    let (locked, state) = match Store::new(&g.root).open(id) {
        Ok(x) => x,
        // containerd deletes --force a container it already deleted: that is success.
        Err(e) if force && e.is::<NotFound>() => return Ok(()),
        Err(e) => return Err(e),
    };
    match locked.status(&state) {
        Status::Stopped => {}
        // A container that never started has nothing of the user's running: runc deletes it.
        Status::Created | Status::Creating => stop(&state)?,
        _ if force => stop(&state)?,
        s => bail!("cannot delete container {id} that is not stopped: {s}"),
    }
    destroy(&locked, &state)
}

/// SIGKILLs the container and waits until its init is gone.
pub fn stop(state: &State) -> Result<()> {
    let init = super::init_pidfd(state)?;
    if let Some(cg) = state.cgroup.as_ref().filter(|cg| cg.exists()) {
        cgroups::kill_all(cg)?;
    }
    // The init by its pidfd too: it may have moved itself out of the container's cgroup.
    if let Some(fd) = &init {
        let _ = pidfd::send_signal(fd.as_fd(), libc::SIGKILL);
    }
    if let Some(fd) = &init {
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

/// Undoes create: poststop hooks (failures are warnings), cgroup, state directory.
pub fn destroy(locked: &Locked, state: &State) -> Result<()> {
    let mut first_err = None;
    if let Some(cg) = &state.cgroup {
        if let Err(e) = cgroups::destroy(cg, &state.cgroup_created) {
            first_err = Some(e);
        }
    }
    let hooks = state.hooks.as_ref().and_then(|h| h.poststop().as_ref());
    crate::hooks::run_all_warn("poststop", hooks, &super::hook_state(state, "stopped"));
    if let Err(e) = locked.remove() {
        first_err.get_or_insert(e);
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
