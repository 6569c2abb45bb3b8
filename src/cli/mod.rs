//! The command line, runc-compatible: the same commands, flags and defaults, so containerd's
//! shim, conmon and docker can drive skiff by swapping the binary path. clap accepts both
//! `--flag value` and `--flag=value`, as the clients use both.

use std::io::Write;
use std::path::PathBuf;

mod criu;
pub use criu::go_style_args;
mod features;
mod spec;
pub mod update;

pub use update::UpdateArgs;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::bundle::SPEC_VERSION;

#[derive(Debug, Parser)]
#[command(
    name = "skiff",
    about = "An OCI container runtime",
    long_about = "skiff runs containers from OCI bundles (a config.json and a root filesystem), \
                  following the OCI runtime specification. It is a drop-in replacement for runc.",
    disable_version_flag = true,
    // As Go's flag parsing (runc): a repeated flag is not an error, the last one counts
    // (podman passes checkpoint's --leave-running twice).
    args_override_self = true,
    subcommand_required = false
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalOpts {
    /// Print the version of skiff and of the runtime specification it implements
    #[arg(short = 'v', long)]
    pub version: bool,

    /// Directory holding the containers' state [default: /run/skiff, or $XDG_RUNTIME_DIR/skiff
    /// for a non-root user]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Write log messages to FILE instead of stderr
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Format of log messages
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Also log debug messages
    #[arg(long, global = true)]
    pub debug: bool,

    /// Have systemd make each new container's cgroup as a transient unit (cgroupsPath is
    /// "slice:prefix:name")
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,

    /// Rootless cgroup handling: where the caller may not make a cgroup, a container that
    /// asks for no limits and no cgroupsPath runs in the caller's (auto: when not root, as
    /// runc decides)
    #[arg(long, value_name = "true|false|auto", value_parser = ["true", "false", "auto"])]
    pub rootless: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container from a bundle; its process waits until `start`
    Create(CreateArgs),
    /// Run the user process of a created container
    Start(IdArg),
    /// Print the state of a container as JSON
    State(IdArg),
    /// Send a signal to a container's init process
    Kill(KillArgs),
    /// Delete a container and everything the runtime created for it
    Delete(DeleteArgs),
    /// Create and start a container, wait for it to exit and delete it
    Run(RunArgs),
    /// List the containers under the state root
    List(ListArgs),
    /// Suspend every process of a container (the cgroup v2 freezer)
    Pause(IdArg),
    /// Resume the processes of a paused container
    Resume(IdArg),
    /// List the processes running in a container
    Ps(PsArgs),
    /// Print a container's events as JSON lines: resource statistics and OOM notifications
    Events(EventsArgs),
    /// Change the resource limits of a running container
    Update(Box<UpdateArgs>),
    /// Write a default config.json into a bundle directory
    Spec(SpecArgs),
    /// Run a new process inside a running container
    Exec(Box<ExecArgs>),
    /// Print the runtime-spec features skiff supports, as JSON
    Features,
    /// Checkpoint a running container with CRIU
    Checkpoint(Box<criu::CheckpointArgs>),
    /// Restore a container from a CRIU checkpoint
    Restore(Box<criu::RestoreArgs>),
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// Container id
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// JSON file with the process to run (runtime-spec `process`), instead of CMD ARGS
    #[arg(short = 'p', long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Allocate a terminal for the process
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Unix socket that receives the terminal's master fd
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Do not wait for the process: return once it runs
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Unix socket that receives a pidfd of the process (SCM_RIGHTS), as runc's
    #[arg(long, value_name = "PATH")]
    pub pidfd_socket: Option<PathBuf>,
    /// Write the process's pid to FILE
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Working directory inside the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE), in addition to the container's
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Run as UID[:GID] (numeric)
    #[arg(short = 'u', long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional group ids
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective and permitted sets
    #[arg(short = 'c', long = "cap", value_name = "CAP")]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long)]
    pub no_new_privs: bool,
    /// AppArmor profile for the process
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// SELinux label for the process
    #[arg(long, value_name = "LABEL")]
    pub process_label: Option<String>,
    /// Pass N additional file descriptors (from fd 3 on) to the process
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Exec even when the container is paused
    #[arg(long)]
    pub ignore_paused: bool,
    /// Run the process in this sub-cgroup of the container's cgroup
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
    /// Container id
    pub id: String,
    /// The program and its arguments (unless --process is given)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct CreateOpts {
    /// Path to the bundle directory (holding config.json)
    #[arg(short = 'b', long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,

    /// Write the pid of the container's init process to FILE
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Unix socket that receives the pseudo-terminal master when process.terminal is true
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,

    /// Unix socket that receives a pidfd of the container's init (SCM_RIGHTS), as runc's
    #[arg(long, value_name = "PATH")]
    pub pidfd_socket: Option<PathBuf>,

    /// Do not use pivot_root (move the rootfs onto / and chroot instead)
    #[arg(long)]
    pub no_pivot: bool,

    /// Do not create a new session keyring for the container
    #[arg(long)]
    pub no_new_keyring: bool,

    /// Pass N additional file descriptors (from fd 3 on) to the container process
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
}

impl CreateOpts {
    pub fn options(&self) -> crate::container::CreateOptions {
        crate::container::CreateOptions {
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            pidfd_socket: self.pidfd_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
        }
    }
}

impl ExecArgs {
    pub fn options(&self) -> crate::container::ExecOptions {
        crate::container::ExecOptions {
            process: self.process.clone(),
            command: self.command.clone(),
            tty: self.tty,
            console_socket: self.console_socket.clone(),
            detach: self.detach,
            pidfd_socket: self.pidfd_socket.clone(),
            pid_file: self.pid_file.clone(),
            cwd: self.cwd.clone(),
            env: self.env.clone(),
            user: self.user.clone(),
            additional_gids: self.additional_gids.clone(),
            caps: self.cap.clone(),
            no_new_privs: self.no_new_privs,
            apparmor: self.apparmor.clone(),
            process_label: self.process_label.clone(),
            preserve_fds: self.preserve_fds,
            ignore_paused: self.ignore_paused,
            cgroup: self.cgroup.clone(),
        }
    }
}

impl From<ListFormat> for crate::container::Format {
    fn from(f: ListFormat) -> Self {
        match f {
            ListFormat::Table => crate::container::Format::Table,
            ListFormat::Json => crate::container::Format::Json,
        }
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: CreateOpts,
    /// Container id
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub opts: CreateOpts,
    /// Do not wait for the container: print nothing and return once it is started
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits (do not delete it)
    #[arg(long)]
    pub keep: bool,
    /// Container id
    pub id: String,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Send the signal to every process of the container, not only its init
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Container id
    pub id: String,
    /// Signal name (TERM, SIGTERM) or number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill the container first if it is still running; succeed if it does not exist
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Container id
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format
    #[arg(short = 'f', long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Print only the container ids
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format: ps(1)'s table, or a JSON array of the container's pids
    #[arg(short = 'f', long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Container id
    pub id: String,
    /// Options passed to ps(1) for the table format (default: -ef)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PS OPTIONS"
    )]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// How often to report statistics (a Go duration: 5s, 500ms, 1m)
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub interval: String,
    /// Print the container's statistics once and exit
    #[arg(long)]
    pub stats: bool,
    /// Container id
    pub id: String,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Directory to write config.json into
    #[arg(short = 'b', long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Write a config for a rootless container (user namespace with the caller's ids mapped)
    #[arg(long)]
    pub rootless: bool,
}

/// Runs the parsed command; returns the process exit status.
pub fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    use crate::container;
    // An absolute state root: create and run change directory to the bundle.
    let global = &cli.global;
    let root = match &global.root {
        Some(r) => r.clone(),
        None => crate::host::default_state_root(),
    };
    let root = if root.is_relative() {
        std::env::current_dir()
            .context("the current directory")?
            .join(root)
    } else {
        root
    };
    let rootless = match global.rootless.as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => crate::host::rootless_by_default(global.systemd_cgroup),
    };
    let g = &container::Global {
        root,
        rootless,
        cgroup_driver: if global.systemd_cgroup {
            // Rootless, the units are the user's manager's (runc's rule).
            crate::cgroups::driver::Driver::Systemd(if rootless {
                crate::cgroups::systemd::bus::Which::User
            } else {
                crate::cgroups::systemd::bus::Which::System
            })
        } else {
            crate::cgroups::driver::Driver::Fs
        },
    };
    let Some(cmd) = &cli.command else {
        anyhow::bail!("no command given (try --help)");
    };
    match cmd {
        Command::Create(a) => container::create(g, &a.opts.options(), &a.id, None).map(|_| 0),
        Command::Start(a) => container::start(g, &a.id).map(|()| 0),
        Command::State(a) => container::state(g, &a.id).map(|()| 0),
        Command::Kill(a) => container::kill(g, &a.id, &a.signal, a.all).map(|()| 0),
        Command::Delete(a) => container::delete(g, &a.id, a.force).map(|()| 0),
        Command::Run(a) => {
            let run = container::RunOptions {
                detach: a.detach,
                keep: a.keep,
            };
            container::run(g, &a.id, &a.opts.options(), run)
        }
        Command::List(a) => container::list(g, a.format.into(), a.quiet).map(|()| 0),
        Command::Pause(a) => container::pause(g, &a.id).map(|()| 0),
        Command::Resume(a) => container::resume(g, &a.id).map(|()| 0),
        Command::Ps(a) => container::ps(g, &a.id, a.format.into(), &a.ps_args).map(|()| 0),
        Command::Events(a) => {
            let interval = update::parse_duration(&a.interval)
                .with_context(|| format!("--interval {:?}", a.interval))?;
            container::events(g, &a.id, interval, a.stats).map(|()| 0)
        }
        Command::Update(a) => {
            let r = update::requested(a)?;
            container::update(g, &a.id, &r).map(|()| 0)
        }
        Command::Spec(a) => spec::write(&a.bundle, a.rootless).map(|()| 0),
        Command::Exec(a) => container::exec(g, &a.id, &a.options()),
        Command::Features => {
            let text = serde_json::to_string_pretty(&features::document())?;
            writeln!(std::io::stdout().lock(), "{text}")?;
            Ok(0)
        }
        Command::Checkpoint(a) => container::checkpoint(g, &a.id, &a.options()?).map(|()| 0),
        Command::Restore(a) => container::restore(g, &a.id, &a.options()?),
    }
}

/// `skiff --version`, in runc's three-line shape (containerd parses it).
pub fn version_text() -> String {
    format!(
        "skiff version {}\ncommit: {}\nspec: {SPEC_VERSION}\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("SKIFF_COMMIT").unwrap_or("unknown")
    )
}
