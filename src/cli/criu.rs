//! `checkpoint` and `restore`: runc's flags, mapped onto the lifecycle's options.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::container::{CheckpointOptions, CreateOptions, RestoreOptions};
use crate::criu::{self, rpc::CgMode};

/// What both commands take.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Directory of the CRIU image files (default: ./checkpoint)
    #[arg(long, value_name = "DIR")]
    pub image_path: Option<PathBuf>,
    /// Directory for CRIU's work files and log (default: the image directory)
    #[arg(long, value_name = "DIR")]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections
    #[arg(long)]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long)]
    pub ext_unix_sk: bool,
    /// Allow shell jobs (a terminal shared with the caller)
    #[arg(long)]
    pub shell_job: bool,
    /// Handle file locks
    #[arg(long)]
    pub file_locks: bool,
    /// How CRIU handles cgroups: soft (default), full, strict or ignore
    #[arg(long, value_name = "MODE")]
    pub manage_cgroups_mode: Option<String>,
    /// Create a namespace but do not restore its properties (only "network")
    #[arg(long, value_name = "NS")]
    pub empty_ns: Vec<String>,
    /// Deduplicate memory images against their parent
    #[arg(long)]
    pub auto_dedup: bool,
    /// Restore memory pages lazily (userfaultfd)
    #[arg(long)]
    pub lazy_pages: bool,
}

impl CommonArgs {
    fn options(&self) -> Result<criu::Common> {
        let cwd = std::env::current_dir().context("the current directory")?;
        Ok(criu::Common {
            image_path: cwd.join(
                self.image_path
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("checkpoint")),
            ),
            work_path: self.work_path.as_ref().map(|p| cwd.join(p)),
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            manage_cgroups_mode: CgMode::parse(
                self.manage_cgroups_mode.as_deref().unwrap_or_default(),
            )?,
            empty_ns: criu::empty_ns(&self.empty_ns)?,
            auto_dedup: self.auto_dedup,
            lazy_pages: self.lazy_pages,
        })
    }
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// A previous pre-dump, relative to the image directory: dump only what changed since
    #[arg(long, value_name = "DIR")]
    pub parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint
    #[arg(long)]
    pub leave_running: bool,
    /// Dump the memory only and leave the container running (for a later --parent-path)
    #[arg(long)]
    pub pre_dump: bool,
    /// With --lazy-pages: CRIU writes a NUL byte to FD once the page server is ready
    #[arg(long, value_name = "FD", default_value_t = -1, allow_negative_numbers = true)]
    pub status_fd: i32,
    /// ADDRESS:PORT of a CRIU page server to send the memory to
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub page_server: Option<String>,
    /// Container id
    pub id: String,
}

impl CheckpointArgs {
    pub fn options(&self) -> Result<CheckpointOptions> {
        let page_server = match &self.page_server {
            None => None,
            Some(s) => {
                // runc's wording.
                let (addr, port) = s
                    .rsplit_once(':')
                    .filter(|(a, p)| !a.is_empty() && !p.is_empty())
                    .context("Use --page-server ADDRESS:PORT to specify page server")?;
                let port: i32 = port.parse().context("Invalid port number")?;
                Some((addr.trim_matches(['[', ']']).to_string(), port))
            }
        };
        Ok(CheckpointOptions {
            criu: self.common.options()?,
            parent_path: self.parent_path.clone(),
            leave_running: self.leave_running,
            pre_dump: self.pre_dump,
            status_fd: (self.status_fd >= 0).then_some(self.status_fd),
            page_server,
        })
    }
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Path to the bundle directory (holding config.json)
    #[arg(short = 'b', long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Do not wait for the container: return once it is restored
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Write the pid of the restored init to FILE
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pseudo-terminal master when process.terminal is true
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc's callers: skiff never makes itself a subreaper (the restored init
    /// is its own child)
    #[arg(long)]
    pub no_subreaper: bool,
    /// Accepted for runc's callers: CRIU itself puts the restored tree in its rootfs
    #[arg(long)]
    pub no_pivot: bool,
    /// The LSM label to restore the processes with (apparmor:NAME or selinux:LABEL), in
    /// place of the one they were dumped with
    #[arg(long, value_name = "LABEL")]
    pub lsm_profile: Option<String>,
    /// The SELinux mount context to restore the mounts with
    #[arg(long, value_name = "CONTEXT")]
    pub lsm_mount_context: Option<String>,
    /// Container id
    pub id: String,
}

impl RestoreArgs {
    pub fn options(&self) -> Result<RestoreOptions> {
        Ok(RestoreOptions {
            criu: self.common.options()?,
            create: CreateOptions {
                bundle: self.bundle.clone(),
                pid_file: self.pid_file.clone(),
                console_socket: self.console_socket.clone(),
                no_pivot: self.no_pivot,
                ..Default::default()
            },
            detach: self.detach,
            lsm_profile: self.lsm_profile.clone(),
            lsm_mount_context: self.lsm_mount_context.clone(),
        })
    }
}

/// The command line with the Go-style spellings clients pass rewritten as skiff parses them:
/// go-runc (containerd's runc shim) passes `restore -no-subreaper` with one dash, which Go's
/// flag parsing (runc) accepts as the long flag.
pub fn go_style_args(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let mut restore = false;
    args.into_iter()
        .map(|a| {
            if a == "restore" {
                restore = true;
            }
            if restore && a == "-no-subreaper" {
                "--no-subreaper".into()
            } else {
                a
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("skiff").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn podmans_repeated_flag_parses_and_lists_still_collect() {
        let cli = parse(&[
            "checkpoint",
            "--leave-running",
            "--image-path",
            "/i",
            "--leave-running",
            "c1",
        ]);
        let Some(Command::Checkpoint(a)) = cli.command else {
            panic!()
        };
        assert!(a.leave_running);
        let cli = parse(&["exec", "--env", "A=1", "--env", "B=2", "c1", "true"]);
        let Some(Command::Exec(a)) = cli.command else {
            panic!()
        };
        assert_eq!(a.env, ["A=1", "B=2"]);
    }

    #[test]
    fn go_runcs_single_dash_no_subreaper_parses() {
        let args = ["skiff", "restore", "-no-subreaper", "--bundle", "/b", "c1"];
        let cli = Cli::try_parse_from(super::go_style_args(args.map(Into::into))).unwrap();
        let Some(Command::Restore(a)) = cli.command else {
            panic!()
        };
        assert!(a.no_subreaper);
        let exec = ["skiff", "exec", "c1", "echo", "-no-subreaper"].map(std::ffi::OsString::from);
        assert_eq!(
            super::go_style_args(exec.clone()),
            exec,
            "only restore's flag"
        );
    }

    #[test]
    fn runcs_page_server_and_cgroup_mode_errors() {
        let cli = parse(&["checkpoint", "--page-server", "nohost", "c1"]);
        let Some(Command::Checkpoint(a)) = cli.command else {
            panic!()
        };
        let e = a.options().unwrap_err().to_string();
        assert_eq!(e, "Use --page-server ADDRESS:PORT to specify page server");
        let cli = parse(&["restore", "--manage-cgroups-mode", "hard", "c1"]);
        let Some(Command::Restore(a)) = cli.command else {
            panic!()
        };
        let e = a.options().unwrap_err().to_string();
        assert_eq!(e, "Invalid manage-cgroups-mode value");
    }
}
