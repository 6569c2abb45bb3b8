//! `pause`: freeze every process of the container through the cgroup v2 freezer
//! (cgroup.freeze), returning once cgroup.events reports the cgroup frozen.

use anyhow::{bail, Context, Result};

use super::Global;
use crate::cgroups;
use crate::state::{Status, Store};

pub fn pause(g: &Global, id: &str) -> Result<()> {
    let (locked, state) = Store::new(&g.root).open(id)?;
    crate::failpoint!("pause.locked");
    // runc pauses running and created containers; anything else is "not running".
    match locked.status(&state) {
        Status::Running | Status::Created => {}
        _ => bail!("container not running"),
    }
    let cg = state
        .cgroup
        .as_ref()
        .context("the container has no cgroup to freeze")?;
    cgroups::freeze(cg, true)
}
