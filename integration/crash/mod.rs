//! skiff killed (SIGKILL) in the middle of its commands, as shims, the OOM killer and node
//! shutdowns do: afterwards `delete --force` must leave nothing of the container (no
//! process, mount, cgroup or state directory) and the id must be usable again
//! (`process::sync` documents why). `matrix` kills every command at every crash point,
//! `random` at random moments, `concurrency` runs commands on shared ids in parallel.

mod concurrency;
mod criu;
mod matrix;
mod random;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::json;

use crate::common::{mounts, require_root, text, wait_for, Bundle};

/// Every command gets this long; a command still running then is a hang (a test failure).
pub const LIMIT: Duration = Duration::from_secs(60);

/// A bundle whose container process (and hooks, if any) carry the container id in their
/// command lines, so a process left behind can be found by it. `sh` stays the parent of
/// its `sleep`, with the id as its $0.
pub fn marked(name: &str, sleep: &str) -> Bundle {
    let mut b = Bundle::new(name);
    let id = b.id.clone();
    b.args(&["sh", "-c", &format!("sleep {sleep}; true"), &id]);
    b
}

/// The hooks of every kind, all trivial, each carrying the id in its arguments.
pub fn with_hooks(b: &mut Bundle) {
    let hook = json!({"path": "/bin/true", "args": ["true", &b.id], "timeout": 30});
    b.config["hooks"] = json!({
        "prestart": [hook],
        "createRuntime": [hook],
        "createContainer": [hook],
        "startContainer": [hook],
        "poststart": [hook],
        "poststop": [hook],
    });
}

/// A user namespace mapping root to 100000 (the init then asks for its id maps).
pub fn with_userns(b: &mut Bundle) {
    b.add_namespace(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
}

/// `skiff ARGS` for the bundle (config written first), bounded by [`LIMIT`].
pub fn skiff(b: &Bundle, args: &[&str], env: &[(&str, &str)]) -> Output {
    b.write_config();
    let mut c = b.command(args);
    c.stdin(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    bounded(&mut c)
}

/// Runs `cmd` to its end (stdout and stderr through files: a created init inherits them);
/// killed and a test failure after [`LIMIT`].
pub fn bounded(cmd: &mut Command) -> Output {
    crate::common::output_via_files_within(cmd, Some(LIMIT))
}

pub fn bundle_dir(b: &Bundle) -> String {
    b.dir.to_str().unwrap().to_string()
}

/// What the kernel and the state root still hold of the container: its state directory, its
/// cgroup, processes with its id in their command line (an init still in skiff before its
/// execve, the container's `sh`, hooks), mounts of its bundle.
pub fn leftovers(b: &Bundle) -> Vec<String> {
    let mut out = vec![];
    if let Ok(d) = std::fs::read_dir(&b.root) {
        out.extend(d.flatten().map(|e| format!("state {}", e.path().display())));
    }
    let cg = b.default_cgroup();
    if cg.exists() {
        out.push(format!("cgroup {}", cg.display()));
    }
    out.extend(
        processes_of(&b.id)
            .into_iter()
            .map(|(pid, cmd)| format!("process {pid}: {cmd}")),
    );
    let dir = b.dir.to_str().unwrap();
    out.extend(
        mounts()
            .lines()
            .filter(|l| l.contains(dir))
            .map(|l| format!("mount {l}")),
    );
    out
}

/// Live (not zombie) processes whose command line mentions `id`.
pub fn processes_of(id: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me || !crate::common::pid_alive(pid.into()) {
            continue;
        }
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmd.split(' ').any(|w| w == id) {
            out.push((pid, cmd.trim().to_string()));
        }
    }
    out
}

/// `delete --force`, then the kernel's view must hold nothing of the container (processes
/// are given a moment to finish exiting).
pub fn delete_force_and_check(b: &Bundle, what: &str) {
    let out = skiff(b, &["delete", "--force", &b.id], &[]);
    assert!(
        out.status.success(),
        "{what}: delete --force failed: {}",
        text(&out.stderr)
    );
    let mut left = vec![];
    assert!(
        wait_for(2000, || {
            left = leftovers(b);
            left.is_empty()
        }),
        "{what}: left behind after delete --force: {left:#?}"
    );
}

/// [`delete_force_and_check`], then the id must take a new container.
pub fn assert_deleted_and_reusable(b: &Bundle, what: &str) {
    delete_force_and_check(b, what);
    let out = skiff(b, &["create", "--bundle", &bundle_dir(b), &b.id], &[]);
    assert!(
        out.status.success(),
        "{what}: the id cannot be used again: {}",
        text(&out.stderr)
    );
    delete_force_and_check(b, what);
}

/// `list --format json` as (id, status) pairs.
pub fn listed(b: &Bundle) -> Vec<(String, String)> {
    let out = skiff(b, &["list", "--format", "json"], &[]);
    assert!(out.status.success(), "list: {}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or(json!([]));
    v.as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or("").to_string(),
                c["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// `skiff create` started and SIGKILLed by the test at `delay` (or done before).
pub fn kill_after(mut cmd: Command, delay: Duration) -> bool {
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let killed = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    killed
}

/// The state directory of the bundle's container.
pub fn state_dir(b: &Bundle) -> PathBuf {
    b.root.join(&b.id)
}

/// Issue 14, 1: a create killed after its init exists but before it returned leaves a
/// container `list` shows as stopped (an aborted create, as runc shows them), whose init
/// does not outlive the runtime nor wait on the exec fifo, and which `delete` (without
/// --force) removes completely, freeing the id.
#[test]
fn an_aborted_create_is_listed_as_stopped_its_init_dies_and_delete_removes_it() {
    require_root!();
    let b = marked("crash-aborted", "3600");
    let dir = bundle_dir(&b);
    // The init has its pid recorded and is setting up (or ready) when create dies.
    let out = skiff(
        &b,
        &["create", "--bundle", &dir, &b.id],
        &[("SKIFF_FAILPOINT", "create.pid-file")],
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(9), "{}", text(&out.stderr));
    assert!(
        wait_for(2000, || processes_of(&b.id).is_empty()),
        "the init outlived the runtime: {:?}",
        processes_of(&b.id)
    );
    assert!(state_dir(&b).join("state.json").exists());
    assert_eq!(listed(&b), [(b.id.clone(), "stopped".to_string())]);
    let out = skiff(&b, &["create", "--bundle", &dir, &b.id], &[]);
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    let out = skiff(&b, &["delete", &b.id], &[]);
    assert!(out.status.success(), "delete: {}", text(&out.stderr));
    assert!(leftovers(&b).is_empty(), "{:#?}", leftovers(&b));
    assert_deleted_and_reusable(&b, "after delete");
}

/// A state directory without state.json (what a create killed before its first record, or
/// a delete killed after removing state.json, leaves) does not wedge the id: `delete` says
/// it is gone, `create` takes the id, `delete --force` removes it.
#[test]
fn a_state_directory_without_state_json_does_not_wedge_the_id() {
    require_root!();
    let b = marked("crash-debris", "3600");
    let dir = bundle_dir(&b);
    for (n, cmd) in [
        ["delete", "--force"],
        ["create", "--bundle"],
        ["delete", ""],
    ]
    .iter()
    .enumerate()
    {
        std::fs::create_dir_all(state_dir(&b)).unwrap();
        nix::unistd::mkfifo(
            &state_dir(&b).join("exec.fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o622),
        )
        .unwrap();
        let args: Vec<&str> = match n {
            1 => vec![cmd[0], cmd[1], &dir, &b.id],
            2 => vec![cmd[0], &b.id],
            _ => vec![cmd[0], cmd[1], &b.id],
        };
        let out = skiff(&b, &args, &[]);
        if n == 2 {
            assert!(
                text(&out.stderr).contains("does not exist"),
                "{}",
                text(&out.stderr)
            );
        } else {
            assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        }
        if n == 1 {
            assert_eq!(listed(&b), [(b.id.clone(), "created".to_string())]);
            let out = skiff(&b, &["delete", "--force", &b.id], &[]);
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
        assert!(leftovers(&b).is_empty(), "{args:?}: {:#?}", leftovers(&b));
    }
}
