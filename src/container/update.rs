//! `update`: new resource limits for a running container. The request is merged into the
//! resources in force (stored in state.json) because some values depend on others, the
//! whole result is applied again (idempotent writes), the device program is replaced only
//! when the request lists device rules, and the merged resources are stored.

use anyhow::{bail, Result};
use oci_spec::runtime::LinuxResources;

use super::Global;
use crate::cgroups::{self, resources};
use crate::state::{Status, Store};

pub fn update(g: &Global, id: &str, request: &LinuxResources) -> Result<()> {
    let (locked, mut state) = Store::new(&g.root).open(id)?;
    crate::failpoint!("update.locked");
    if locked.status(&state) == Status::Stopped {
        bail!("container not running");
    }
    let Some(cg) = state.cgroup.clone() else {
        bail!("the container has no cgroup to update")
    };
    let merged = resources::merge(&state.resources.clone().unwrap_or_default(), request)?;
    let devices = request.devices().as_ref().is_some_and(|d| !d.is_empty());
    // The config as it was at create says which default device rules linux.devices replaced.
    let spec = locked.load_spec().ok();
    let paths = spec
        .as_ref()
        .map(cgroups::created_devices)
        .unwrap_or_default();
    let plan = resources::plan(&merged, devices, &paths)?;
    let dir = std::fs::File::open(&cg)
        .map_err(|e| anyhow::anyhow!("opening the container's cgroup {}: {e}", cg.display()))?;
    // systemd first: it rewrites the files it owns from the unit's properties.
    cgroups::driver::update_unit(state.unit(), &plan)?;
    cgroups::apply_plan(&cg, std::os::fd::AsFd::as_fd(&dir), &plan)?;
    crate::failpoint!("update.applied");
    state.resources = Some(merged);
    locked.save(&state)
}
