//! The container lifecycle, one file per operation. Each operation takes the container's
//! lock, derives its status from the kernel, refuses what the status does not allow (with
//! runc's error wording, which clients match), and acts.

mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod kill;
mod options;
mod pause;
mod ps;
mod query;
mod restore;
mod resume;
mod run;
mod start;
mod update;

pub use checkpoint::{checkpoint, CheckpointOptions};
pub use create::{create, write_pid_file, Created};
pub use delete::delete;
pub use events::events;
pub use exec::exec;
pub use kill::{kill, parse_signal};
pub use options::{CreateOptions, ExecOptions, Format, Global, RunOptions};
pub use pause::pause;
pub use ps::ps;
pub use query::{list, state};
pub use restore::{restore, RestoreOptions};
pub use resume::resume;
pub use run::run;
pub use start::start;
pub use update::update;

use std::os::fd::OwnedFd;

use anyhow::Result;

use crate::state::State;
use crate::sys::pidfd;

/// A pidfd for the container's init, if it is still the process we created (its start time
/// matches): opening it first and checking afterwards closes the pid-reuse window.
pub fn init_pidfd(state: &State) -> Result<Option<OwnedFd>> {
    // An aborted create may have died before it recorded its init.
    if state.pid <= 0 {
        return Ok(None);
    }
    let fd = match pidfd::open(state.pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok((crate::state::proc_start_time(state.pid) == Some(state.start_time)).then_some(fd))
}
