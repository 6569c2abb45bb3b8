//! Running OCI hooks: the hook's path and args (args[0] is argv[0]), its env only, the
//! container state JSON on stdin, and a timeout after which it is killed. The hook's stdout
//! and stderr both go to the runtime's stderr (stdout may be a client's data channel).

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Hook;

/// Runs each hook in order; the first failure stops the sequence (callers decide whether a
/// failure is fatal: per spec it is for prestart/createRuntime/createContainer/startContainer,
/// a warning for poststart/poststop).
pub fn run_all(kind: &str, hooks: Option<&Vec<Hook>>, state_json: &str) -> Result<()> {
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        run(h, state_json).with_context(|| describe(kind, i, h))?;
    }
    Ok(())
}

/// Runs every hook even when some fail, logging each failure as a warning (poststop, and
/// the cleanup after a failed create or start).
pub fn run_all_warn(kind: &str, hooks: Option<&Vec<Hook>>, state_json: &str) {
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        if let Err(e) = run(h, state_json) {
            crate::logging::warn(&format!("{}: {e:#}", describe(kind, i, h)));
        }
    }
}

/// runc's wording ("error running createRuntime hook #1", which its tests and users match)
/// plus the config field.
fn describe(kind: &str, i: usize, h: &Hook) -> String {
    format!(
        "error running {kind} hook #{i}: {} (hooks.{kind}[{i}])",
        h.path().display()
    )
}

/// startContainer hooks: run inside the container, and without an `env` of their own they
/// get the container process's environment (runc's behaviour).
pub fn run_all_in_container(
    kind: &str,
    hooks: Option<&Vec<Hook>>,
    state_json: &str,
    process_env: &[String],
) -> Result<()> {
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        let env = h.env().as_deref().unwrap_or(process_env);
        run_with_env(h, state_json, env).with_context(|| describe(kind, i, h))?;
    }
    Ok(())
}

fn run(h: &Hook, state_json: &str) -> Result<()> {
    run_with_env(h, state_json, h.env().as_deref().unwrap_or_default())
}

fn run_with_env(h: &Hook, state_json: &str, env: &[String]) -> Result<()> {
    let mut cmd = Command::new(h.path());
    let args = h.args().as_deref().unwrap_or_default();
    if let Some(argv0) = args.first() {
        cmd.arg0(argv0);
    }
    cmd.args(args.iter().skip(1));
    cmd.env_clear();
    for kv in env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let out = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    cmd.stdin(Stdio::piped())
        .stdout(out)
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().context("starting hook")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin closes the pipe early: not an error.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let mut nap = Duration::from_micros(200);
    loop {
        if let Some(status) = child.try_wait().context("waiting for hook")? {
            if status.success() {
                return Ok(());
            }
            bail!("hook failed: {}", exit_text(status));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "hook timed out after {}s and was killed",
                h.timeout().unwrap_or(0)
            );
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// The state JSON a hook reads on stdin (runtime-spec "State").
pub fn state_json(
    id: &str,
    status: &str,
    pid: i32,
    bundle: &std::path::Path,
    annotations: &std::collections::HashMap<String, String>,
) -> String {
    serde_json::json!({
        "ociVersion": crate::cli::SPEC_VERSION,
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
        "annotations": annotations,
    })
    .to_string()
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
