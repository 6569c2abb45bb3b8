//! create → created → start → running → stopped → delete, exit codes, kill and delete rules.

use crate::common::{pid_alive, require_root, text, wait_for, Bundle};

#[test]
fn full_lifecycle_follows_the_state_machine() {
    require_root!();
    let mut b = Bundle::new("lifecycle");
    b.args(&["sleep", "0.3"]);
    b.create_ok();
    let st = b.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], b.id.as_str());
    assert_eq!(st["bundle"], b.dir.to_str().unwrap());
    assert_eq!(st["rootfs"], b.rootfs().to_str().unwrap());
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid_alive(pid), "init not alive after create");
    // Created means blocked before exec: the init is still skiff, not the user's program.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "skiff");
    assert!(b.root.join(&b.id).join("exec.fifo").exists());

    b.ok(&["start", &b.id]);
    assert_eq!(b.status(), "running");
    assert!(!b.root.join(&b.id).join("exec.fifo").exists());
    assert!(
        wait_for(5000, || b.status() == "stopped"),
        "container never stopped"
    );
    assert_eq!(
        b.state()["pid"],
        0,
        "a stopped container reports pid 0 as runc does"
    );
    b.ok(&["delete", &b.id]);
    let out = b.skiff(&["state", &b.id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn run_exits_with_the_container_status() {
    require_root!();
    let mut b = Bundle::new("exit");
    b.sh("exit 42");
    assert_eq!(b.run().0, 42);
    // Killed from outside (pid 1 of a namespace ignores SIGKILL from inside it).
    b.args(&["sleep", "100"]);
    b.write_config();
    let bundle = b.dir.to_str().unwrap().to_string();
    let mut run = b
        .command(&["run", "--bundle", &bundle, &b.id])
        .spawn()
        .unwrap();
    assert!(wait_for(5000, || b
        .skiff(&["state", &b.id])
        .status
        .success()
        && b.status() == "running"));
    b.ok(&["kill", &b.id, "KILL"]);
    assert_eq!(run.wait().unwrap().code(), Some(128 + 9));
}

#[test]
fn start_twice_is_an_error_without_effect() {
    require_root!();
    let mut b = Bundle::new("start2");
    b.args(&["sleep", "30"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    let pid = b.state()["pid"].as_i64().unwrap();
    let out = b.skiff(&["start", &b.id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already running"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(b.status(), "running");
    assert!(pid_alive(pid));
}

#[test]
fn kill_and_delete_rules() {
    require_root!();
    let mut b = Bundle::new("kill");
    b.sh("trap 'exit 7' TERM; while true; do sleep 0.05; done");
    b.create_ok();
    b.ok(&["start", &b.id]);
    // delete of a running container without --force is refused and changes nothing
    let out = b.skiff(&["delete", &b.id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not stopped"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(b.status(), "running");
    // numeric and named signals
    b.ok(&["kill", &b.id, "15"]);
    assert!(wait_for(5000, || b.status() == "stopped"));
    let out = b.skiff(&["kill", &b.id, "SIGTERM"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("container not running"),
        "{}",
        text(&out.stderr)
    );
    b.ok(&["delete", &b.id]);
    // delete --force of a container that does not exist succeeds (containerd relies on it)
    b.ok(&["delete", "--force", &b.id]);
    let out = b.skiff(&["delete", &b.id]);
    assert!(text(&out.stderr).contains("does not exist"));
}

#[test]
fn delete_force_kills_a_running_container() {
    require_root!();
    let mut b = Bundle::new("force");
    b.args(&["sleep", "100"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    let pid = b.state()["pid"].as_i64().unwrap();
    let cg = b.default_cgroup();
    assert!(cg.exists());
    b.ok(&["delete", "--force", &b.id]);
    assert!(!pid_alive(pid), "init survived delete --force");
    assert!(!cg.exists(), "cgroup survived delete --force");
}

#[test]
fn deleting_a_created_container_kills_its_init() {
    require_root!();
    let mut b = Bundle::new("delcreated");
    b.args(&["true"]);
    b.create_ok();
    let pid = b.state()["pid"].as_i64().unwrap();
    b.ok(&["delete", &b.id]);
    assert!(wait_for(2000, || !pid_alive(pid)));
}

#[test]
fn pid_file_holds_the_init_pid() {
    require_root!();
    let mut b = Bundle::new("pidfile");
    b.args(&["true"]);
    let pf = b.dir.join("init.pid");
    let bundle = b.dir.to_str().unwrap().to_string();
    let out = b.skiff(&[
        "create",
        "--bundle",
        &bundle,
        "--pid-file",
        pf.to_str().unwrap(),
        &b.id,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid: i64 = std::fs::read_to_string(&pf).unwrap().parse().unwrap();
    assert_eq!(pid, b.state()["pid"].as_i64().unwrap());
}

#[test]
fn stdio_passes_through_pipes() {
    require_root!();
    let mut b = Bundle::new("stdio");
    b.args(&["sh", "-c", "tr a-z A-Z; echo err >&2"]);
    b.write_config();
    let bundle = b.dir.to_str().unwrap().to_string();
    let mut child = b
        .command(&["run", "--bundle", &bundle, &b.id])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped through\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "PIPED THROUGH\n");
    assert_eq!(text(&out.stderr), "err\n");
}

#[test]
fn concurrent_commands_on_one_id_are_serialised() {
    require_root!();
    let mut b = Bundle::new("concurrent");
    b.args(&["sleep", "30"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let mut c = b.command(&["state", &b.id]);
            std::thread::spawn(move || c.output().unwrap())
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["status"], "running");
    }
}
