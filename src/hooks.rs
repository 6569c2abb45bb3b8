//! Running OCI hooks: the hook's path and args (args[0] is argv[0]), its `env` (without one,
//! the environment of whoever runs it, as runc's Go `exec.Cmd` with a nil `Env`), the
//! container state JSON on stdin, and a timeout after which it is killed. The hook's stdout
//! and stderr both go to the runtime's stderr (stdout may be a client's data channel).
//!
//! The timeout covers the whole hook, writing its stdin included: the state is written
//! without blocking, as the hook reads it, so a hook that never reads a state larger than a
//! pipe still meets its deadline. A hook runs in a process group of its own; on timeout the
//! whole group is killed. It also dies with the process that started it (parent-death
//! signal), so a runtime killed while a hook runs leaves no hook behind (what the hook
//! itself started is its own business, as with runc).

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use oci_spec::runtime::{Hook, Hooks, Spec};

use crate::state::OciState;

/// The spec's hooks, checked: paths absolute and timeouts positive (config.md,
/// POSIX-platform hooks).
pub fn compile(spec: &Spec) -> Result<Hooks> {
    let Some(h) = spec.hooks() else {
        return Ok(Hooks::default());
    };
    let kinds = [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
        ("createContainer", h.create_container()),
        ("startContainer", h.start_container()),
        ("poststart", h.poststart()),
        ("poststop", h.poststop()),
    ];
    for (kind, list) in kinds {
        for (i, hook) in list.iter().flatten().enumerate() {
            // runc runs createContainer hooks from the container's rootfs, where a relative
            // path names one of its files.
            ensure!(
                hook.path().is_absolute()
                    || (kind == "createContainer" && !hook.path().as_os_str().is_empty()),
                "hooks.{kind}[{i}].path: {:?} must be an absolute path",
                hook.path()
            );
            if let Some(t) = hook.timeout() {
                ensure!(
                    t > 0,
                    "hooks.{kind}[{i}].timeout: must be greater than zero, got {t}"
                );
            }
        }
    }
    Ok(h.clone())
}

/// Where a hook runs: the environment it gets when it has no `env` of its own (`None`: the
/// runtime's), and its working directory (`None`: the runtime's).
#[derive(Clone, Copy, Default)]
struct Place<'a> {
    env: Option<&'a [String]>,
    cwd: Option<&'a Path>,
}

/// Runs each hook in order; the first failure stops the sequence (callers decide whether a
/// failure is fatal: per spec it is for prestart/createRuntime/createContainer/startContainer,
/// a warning for poststart/poststop).
/// Hooks in the runtime's namespaces run where the runtime works, as runc's: `create` and
/// `run` work from the bundle directory, `start` and `delete` from the caller's.
pub fn run_all(kind: &str, hooks: Option<&Vec<Hook>>, state: &OciState) -> Result<()> {
    run_each(kind, hooks, state, Place::default())
}

/// createContainer hooks: in the container's mount namespace, with the container's root
/// filesystem as the working directory (runc runs them from there, before pivot_root), so a
/// relative path or relative arguments name files of the container.
///
/// Without an `env` of their own they get the container process's (process.env as the
/// config lists it): runc runs them from its init, whose environment that already is.
pub fn run_all_in_rootfs(
    kind: &str,
    hooks: Option<&Vec<Hook>>,
    state: &OciState,
    rootfs: &Path,
    process_env: &[String],
) -> Result<()> {
    let place = Place {
        env: Some(process_env),
        cwd: Some(rootfs),
    };
    run_each(kind, hooks, state, place)
}

/// Runs every hook even when some fail, logging each failure as a warning (poststop, and
/// the cleanup after a failed create or start).
pub fn run_all_warn(kind: &str, hooks: Option<&Vec<Hook>>, state: &OciState) {
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        if let Err(e) = run(h, state, Place::default()) {
            crate::logging::warn(&format!("{}: {e:#}", describe(kind, i, h)));
        }
    }
}

/// runc's stable phrase ("error running hook #1", which its users match) plus the kind, the
/// config field and the program.
fn describe(kind: &str, i: usize, h: &Hook) -> String {
    format!(
        "error running hook #{i} ({kind} hook {}, hooks.{kind}[{i}])",
        h.path().display()
    )
}

/// startContainer hooks: run inside the container, and without an `env` of their own they
/// get the container process's environment (runc's behaviour).
pub fn run_all_in_container(
    kind: &str,
    hooks: Option<&Vec<Hook>>,
    state: &OciState,
    process_env: &[String],
) -> Result<()> {
    let place = Place {
        env: Some(process_env),
        cwd: None,
    };
    run_each(kind, hooks, state, place)
}

fn run_each(
    kind: &str,
    hooks: Option<&Vec<Hook>>,
    state: &OciState,
    place: Place<'_>,
) -> Result<()> {
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        run(h, state, place).with_context(|| describe(kind, i, h))?;
    }
    Ok(())
}

/// The program to execute: runc executes the path as given (Go's `exec.Cmd.Path`, no PATH
/// search), so a bare relative name is taken from the working directory too.
fn program(path: &Path) -> PathBuf {
    if path.is_relative() && path.components().count() == 1 {
        Path::new(".").join(path)
    } else {
        path.to_path_buf()
    }
}

fn run(h: &Hook, state: &OciState, place: Place<'_>) -> Result<()> {
    let prog = program(h.path());
    let mut cmd = Command::new(&prog);
    if let Some(dir) = place.cwd {
        cmd.current_dir(dir);
    }
    let out = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    cmd.stdin(Stdio::piped())
        .stdout(out)
        .stderr(Stdio::inherit())
        .process_group(0);
    crate::sys::misc::die_with_parent(&mut cmd);
    let (path, argv, envp) = image(&prog, h, place.env)?;
    crate::sys::misc::exec_exactly(&mut cmd, path, argv, envp);
    let child = cmd.spawn().context("starting hook")?;
    // A timeout too large to represent is no timeout.
    let timeout = h.timeout().filter(|t| *t > 0);
    let deadline = timeout.and_then(|t| Instant::now().checked_add(Duration::from_secs(t as u64)));
    let mut running = Running::new(child)?;
    match running.finish(state.to_json().as_bytes(), deadline)? {
        Some(status) if status.success() => Ok(()),
        Some(status) => bail!("{}", exit_text(status)),
        None => bail!(
            "hook ran past specified timeout of {:.1}s and was killed with its process group",
            timeout.unwrap_or(0) as f64
        ),
    }
}

/// What the hook executes: its path, its args (args[0] is argv[0]; none: the path), and its
/// `env` in the config's order (none: `inherited`, else the runtime's own environment).
fn image(
    prog: &Path,
    h: &Hook,
    inherited: Option<&[String]>,
) -> Result<(CString, Vec<CString>, Vec<CString>)> {
    let c = |s: &[u8]| CString::new(s).context("a NUL byte in a hook's path, args or env");
    let path = c(prog.as_os_str().as_bytes())?;
    let args = h.args().as_deref().unwrap_or_default();
    let argv = if args.is_empty() {
        vec![c(h.path().as_os_str().as_bytes())?]
    } else {
        args.iter()
            .map(|a| c(a.as_bytes()))
            .collect::<Result<_>>()?
    };
    let envp = match h.env().as_deref().or(inherited) {
        Some(env) => env.iter().map(|e| c(e.as_bytes())).collect::<Result<_>>()?,
        None => std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend(v.into_vec());
                c(&kv)
            })
            .collect::<Result<_>>()?,
    };
    Ok((path, argv, envp))
}

/// A started hook: its pidfd and the write end of its stdin.
struct Running {
    child: Child,
    pidfd: std::os::fd::OwnedFd,
    stdin: Option<ChildStdin>,
}

impl Running {
    fn new(mut child: Child) -> Result<Self> {
        let stdin = child.stdin.take();
        let pidfd = match crate::sys::pidfd::open(child.id() as i32) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e).context("pidfd_open of the hook");
            }
        };
        if let Some(s) = &stdin {
            let fl =
                nix::fcntl::fcntl(s, nix::fcntl::FcntlArg::F_GETFL).context("hook stdin flags")?;
            let fl = nix::fcntl::OFlag::from_bits_retain(fl) | nix::fcntl::OFlag::O_NONBLOCK;
            nix::fcntl::fcntl(s, nix::fcntl::FcntlArg::F_SETFL(fl))
                .context("making the hook's stdin non-blocking")?;
        }
        Ok(Running {
            child,
            pidfd,
            stdin,
        })
    }

    /// Feeds `input` to the hook's stdin as it reads it and waits for its exit; `None` when
    /// the deadline passed first (the hook's process group is then killed and reaped).
    fn finish(
        &mut self,
        mut input: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Option<std::process::ExitStatus>> {
        loop {
            if input.is_empty() {
                // EOF for the hook once everything is written.
                self.stdin = None;
            }
            let mut fds = vec![poll_fd(self.pidfd.as_raw_fd(), libc::POLLIN)];
            if let Some(s) = &self.stdin {
                fds.push(poll_fd(s.as_raw_fd(), libc::POLLOUT));
            }
            let wait_ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.kill_group();
                        return Ok(None);
                    }
                    // Rounded up, so the loop does not spin in its last millisecond.
                    left.as_millis().saturating_add(1).min(i32::MAX as u128) as i32
                }
            };
            crate::sys::misc::poll(&mut fds, wait_ms).context("waiting for the hook")?;
            if fds.get(1).is_some_and(|p| p.revents != 0) {
                input = self.feed(input);
            }
            if fds[0].revents != 0 {
                return self.child.wait().map(Some).context("waiting for the hook");
            }
        }
    }

    /// Writes what the pipe takes; the rest of `input`. A hook that closed its stdin (or
    /// exited) does not want the rest: not an error.
    fn feed<'b>(&mut self, input: &'b [u8]) -> &'b [u8] {
        let Some(s) = &mut self.stdin else {
            return &[];
        };
        match s.write(input) {
            Ok(n) => &input[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => input,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => input,
            Err(_) => &[],
        }
    }

    fn kill_group(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn poll_fd(fd: i32, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// A hook's exit in the words runc's users see (Go's `ExitError` text): `exit status 3`,
/// `signal: bad system call (SIGSYS) (core dumped)`.
fn exit_text(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    let Some(sig) = status.signal() else {
        return status.to_string();
    };
    let what = match sig {
        libc::SIGHUP => "hangup",
        libc::SIGINT => "interrupt",
        libc::SIGQUIT => "quit",
        libc::SIGILL => "illegal instruction",
        libc::SIGTRAP => "trace/breakpoint trap",
        libc::SIGABRT => "aborted",
        libc::SIGBUS => "bus error",
        libc::SIGFPE => "floating point exception",
        libc::SIGKILL => "killed",
        libc::SIGUSR1 => "user defined signal 1",
        libc::SIGSEGV => "segmentation fault",
        libc::SIGUSR2 => "user defined signal 2",
        libc::SIGPIPE => "broken pipe",
        libc::SIGALRM => "alarm clock",
        libc::SIGTERM => "terminated",
        libc::SIGSYS => "bad system call",
        _ => "",
    };
    let name = nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"));
    let core = if status.core_dumped() {
        " (core dumped)"
    } else {
        ""
    };
    if what.is_empty() {
        format!("signal: {name}{core}")
    } else {
        format!("signal: {what} ({name}){core}")
    }
}
