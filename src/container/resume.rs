//! `resume`: thaw a paused container (cgroup.freeze 0, then wait for `frozen 0`).

use anyhow::{bail, Context, Result};

use super::Global;
use crate::cgroups;
use crate::state::{Status, Store};

pub fn resume(g: &Global, id: &str) -> Result<()> {
    let (locked, state) = Store::new(&g.root).open(id)?;
    crate::failpoint!("resume.locked");
    if locked.status(&state) != Status::Paused {
        bail!("container not paused");
    }
    let cg = state
        .cgroup
        .as_ref()
        .context("the container has no cgroup to thaw")?;
    cgroups::freeze(cg, false)
}
