//! A container's delete and kill never touch another container (issue 14, 2). Two
//! containers may share a cgroup: `linux.cgroupsPath` names the same one, and skiff (as
//! runc) only refuses a cgroup that holds processes at create. As runc: only a container
//! that shares the host's pid namespace has its whole cgroup killed; removing a cgroup that
//! still holds another container's processes is an error naming it.

use serde_json::json;

use crate::common::{cgroup2_mount, pid_alive, require_root, text, wait_for, Bundle};

/// A cgroup path at the hierarchy root only these two containers use.
fn shared_path(tag: &str) -> (String, std::path::PathBuf) {
    let name = format!("skiff-it-shared-{tag}-{}", std::process::id());
    (format!("/{name}"), cgroup2_mount().join(&name))
}

/// c1 runs `true` and stops; c2, in the same cgroup, runs `sleep`.
fn stopped_and_running(tag: &str) -> (Bundle, Bundle, std::path::PathBuf, i64) {
    let (path, dir) = shared_path(tag);
    let mut c1 = Bundle::new(&format!("{tag}-1"));
    c1.config["linux"]["cgroupsPath"] = json!(path);
    c1.args(&["true"]);
    c1.start_ok();
    assert!(wait_for(10_000, || c1.status() == "stopped"));
    let mut c2 = Bundle::new(&format!("{tag}-2"));
    c2.config["linux"]["cgroupsPath"] = json!(path);
    c2.args(&["sleep", "3600"]);
    c2.start_ok();
    let pid = c2.state()["pid"].as_i64().unwrap();
    (c1, c2, dir, pid)
}

#[test]
fn deleting_a_stopped_container_never_kills_another_in_its_cgroup() {
    require_root!();
    let (c1, c2, dir, pid) = stopped_and_running("iso-del");
    let out = c1.skiff(&["delete", &c1.id]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "delete of c1 removed a busy cgroup");
    assert!(
        err.contains("unable to remove container's cgroup") && err.contains(dir.to_str().unwrap()),
        "{err}"
    );
    assert!(pid_alive(pid), "c2 was killed by c1's delete");
    assert_eq!(c2.status(), "running");
    for args in [
        &["kill", &c1.id, "KILL"][..],
        &["kill", "--all", &c1.id, "KILL"],
    ] {
        let _ = c1.skiff(args);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(pid_alive(pid), "{args:?} killed c2");
    }
    assert!(dir.exists());
    // Once c2 is gone, c1's delete can finish.
    c2.ok(&["delete", "--force", &c2.id]);
    c1.ok(&["delete", &c1.id]);
    assert!(!dir.exists());
}

/// kill --all, kill KILL and delete --force of a running container with its own pid
/// namespace spare a process that is not the container's but sits in its cgroup.
#[test]
fn kill_and_delete_force_spare_a_foreign_process_in_the_containers_cgroup() {
    require_root!();
    let (path, dir) = shared_path("iso-foreign");
    let mut c = Bundle::new("iso-foreign");
    c.config["linux"]["cgroupsPath"] = json!(path);
    c.args(&["sleep", "3600"]);
    c.start_ok();
    let mut foreign = std::process::Command::new("sleep")
        .arg("3600")
        .spawn()
        .unwrap();
    std::fs::write(dir.join("cgroup.procs"), foreign.id().to_string()).unwrap();
    let fpid = i64::from(foreign.id());
    c.ok(&["kill", "--all", &c.id, "TERM"]);
    c.ok(&["kill", "--all", &c.id, "KILL"]);
    assert!(wait_for(10_000, || c.status() == "stopped"));
    assert!(
        pid_alive(fpid),
        "kill --all reached a process that is not the container's"
    );
    let out = c.skiff(&["delete", "--force", &c.id]);
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "delete --force removed a busy cgroup"
    );
    assert!(err.contains(dir.to_str().unwrap()), "{err}");
    assert!(
        pid_alive(fpid),
        "delete --force killed a process that is not the container's"
    );
    // The container is kept: once the cgroup is free, delete finishes.
    assert_eq!(c.status(), "stopped");
    foreign.kill().unwrap();
    foreign.wait().unwrap();
    c.ok(&["delete", &c.id]);
    assert!(!dir.exists());
}
