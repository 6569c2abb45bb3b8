//! What the lifecycle operations take. The command line (`cli/`) maps its flags onto these,
//! so nothing here knows how they were spelled.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// What every operation needs from the global flags: where the containers' state lives, and
/// who makes a new container's cgroup.
#[derive(Debug, Clone)]
pub struct Global {
    /// The state root (absolute: `create` works from the bundle directory).
    pub root: PathBuf,
    /// cgroupfs, or systemd's transient units (`--systemd-cgroup`). Only `create` reads it:
    /// later commands follow what the state records.
    pub cgroup_driver: crate::cgroups::driver::Driver,
    /// `--rootless`: where the caller may not make the container's cgroup, a container that
    /// needs none (no limits, no cgroupsPath) runs without one (runc's rule).
    pub rootless: bool,
}

/// `create` and `run`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub pidfd_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

impl CreateOptions {
    /// The same options with every relative path made absolute against the current
    /// directory (`create` then works from the bundle directory, as runc does).
    pub fn absolute(&self) -> Result<CreateOptions> {
        let cwd = std::env::current_dir().context("the current directory")?;
        let abs = |p: &Option<PathBuf>| p.as_ref().map(|p| cwd.join(p));
        Ok(CreateOptions {
            bundle: cwd.join(&self.bundle),
            pid_file: abs(&self.pid_file),
            console_socket: abs(&self.console_socket),
            pidfd_socket: abs(&self.pidfd_socket),
            ..self.clone()
        })
    }
}

/// `run` beyond `create`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Return once the container has started.
    pub detach: bool,
    /// Keep the container's state after it exits.
    pub keep: bool,
}

/// `exec`: the process, from a file (`process`) or built from `command` and the overrides.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub process: Option<PathBuf>,
    pub command: Vec<String>,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pidfd_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    /// `UID[:GID]`.
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// A sub-cgroup of the container's cgroup to run in.
    pub cgroup: Option<String>,
}

/// How `list` and `ps` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
}
