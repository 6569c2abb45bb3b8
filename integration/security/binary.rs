//! CVE-2019-5736 (overwrite the runtime through /proc/<pid>/exe) and CVE-2016-9962 (ptrace or
//! /proc access to the init while it still holds host resources).

use serde_json::json;

use crate::common::{require_root, skiff_bin, text, wait_for, Bundle};

fn sha(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn the_init_exe_cannot_be_opened_for_writing() {
    require_root!();
    let before = sha(skiff_bin());
    let mut b = Bundle::new("cve-2019-5736");
    b.args(&["true"]);
    b.create_ok();
    let pid = b.state()["pid"].as_i64().unwrap();
    let exe = format!("/proc/{pid}/exe");
    let link = std::fs::read_link(&exe).unwrap();
    assert_ne!(
        link,
        std::fs::canonicalize(skiff_bin()).unwrap(),
        "the init runs the host binary itself"
    );
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(&exe)
        .unwrap_err();
    assert!(
        matches!(
            err.raw_os_error(),
            Some(libc::EROFS) | Some(libc::ETXTBSY) | Some(libc::EPERM)
        ),
        "opening the init's exe for writing: {err}"
    );
    assert_eq!(sha(skiff_bin()), before);
}

/// The container executes /proc/self/exe (through a `#!` line, as the exploit did) while a
/// second process keeps trying to open every /proc/<pid>/exe it sees for writing.
#[test]
fn executing_proc_self_exe_from_the_container_cannot_reach_the_host_binary() {
    require_root!();
    let before = sha(skiff_bin());
    let mut b = Bundle::new("cve-2019-5736-exec");
    b.config["root"]["readonly"] = json!(false);
    std::fs::write(b.rootfs().join("evil"), "#!/proc/self/exe --version\n").unwrap();
    std::fs::set_permissions(
        b.rootfs().join("evil"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    b.sh(
        "(for i in $(seq 200); do for p in /proc/[0-9]*; do echo pwned 2>/dev/null >> $p/exe && echo WROTE $p; done; done) & \
         for i in $(seq 20); do /evil >/dev/null 2>&1; done; wait; echo done",
    );
    let out = b.run_ok();
    assert!(out.contains("done"), "{out}");
    assert!(
        !out.contains("WROTE"),
        "a container process wrote through /proc/<pid>/exe: {out}"
    );
    assert_eq!(sha(skiff_bin()), before, "the host's skiff binary changed");
}

/// With a user namespace the init's uid is the mapped one; a dumpable init would own its
/// /proc files as that uid and be ptrace-able by the container's root.
#[test]
fn the_init_is_not_dumpable_before_exec() {
    require_root!();
    let mut b = Bundle::new("cve-2016-9962");
    let mut nss = b.config["linux"]["namespaces"].as_array().unwrap().clone();
    nss.push(json!({"type": "user"}));
    b.config["linux"]["namespaces"] = json!(nss);
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.args(&["sh", "-c", "stat -c %u /proc/self/environ"]);
    b.create_ok();
    let pid = b.state()["pid"].as_i64().unwrap();
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(format!("/proc/{pid}/environ"))
        .unwrap()
        .uid();
    assert_eq!(
        owner, 0,
        "a created init's /proc files belong to its uid: it is dumpable"
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("200000")),
        "{status}"
    );
    b.ok(&["start", &b.id]);
    assert!(wait_for(5000, || b.status() == "stopped"));
    let _ = text(&[]);
}

/// `exec` re-executes from the sealed view too: its process is a clone of that skiff until
/// it execs, so the container never sees the host binary behind a /proc/<pid>/exe.
#[test]
fn the_exec_process_runs_from_the_sealed_view() {
    require_root!();
    let before = sha(skiff_bin());
    let mut b = Bundle::new("cve-2019-5736-execproc");
    b.args(&["sleep", "60"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    let pid_file = b.dir.join("exec.pid");
    let mut child = b
        .command(&[
            "exec",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &b.id,
            "sleep",
            "5",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The pid file is written after the exec process was cloned from this very process.
    assert!(wait_for(5000, || pid_file.exists()));
    let exe = format!("/proc/{}/exe", child.id());
    let link = std::fs::read_link(&exe).unwrap();
    let host = std::fs::canonicalize(skiff_bin()).unwrap();
    let err = std::fs::OpenOptions::new().write(true).open(&exe);
    let _ = child.kill();
    let _ = child.wait();
    assert_ne!(link, host, "skiff exec runs the host binary itself");
    let err = err.unwrap_err();
    assert!(
        matches!(
            err.raw_os_error(),
            Some(libc::EROFS) | Some(libc::ETXTBSY) | Some(libc::EPERM)
        ),
        "opening the exec process's exe for writing: {err}"
    );
    assert_eq!(sha(skiff_bin()), before);
}

/// The init and exec processes are non-dumpable from their first instructions, so their
/// /proc files belong to root; every write skiff makes there (oom_score_adj, sysctls, the
/// exec fifo reopen) must still work when the container's user is not root, with and without
/// a user namespace.
#[test]
fn non_dumpable_setup_still_works_for_a_non_root_user() {
    require_root!();
    for userns in [false, true] {
        let mut b = Bundle::new("dumpable-nonroot");
        if userns {
            let mut nss = b.config["linux"]["namespaces"].as_array().unwrap().clone();
            nss.push(json!({"type": "user"}));
            b.config["linux"]["namespaces"] = json!(nss);
            b.config["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
            b.config["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
        }
        b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        b.config["process"]["oomScoreAdj"] = json!(200);
        b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        b.args(&["sleep", "60"]);
        b.create_ok();
        let pid = b.state()["pid"].as_i64().unwrap();
        let adj = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
        assert_eq!(adj.trim(), "200", "userns={userns}");
        // start reopens the exec fifo through /proc as uid 1000.
        b.ok(&["start", &b.id]);
        let process = b.dir.join("process.json");
        std::fs::write(
            &process,
            json!({"cwd": "/", "args": ["sh", "-c",
                   "id -u; cat /proc/self/oom_score_adj /proc/sys/net/ipv4/ip_forward"],
                   "env": ["PATH=/bin"], "user": {"uid": 1000, "gid": 1000},
                   "oomScoreAdj": 300})
            .to_string(),
        )
        .unwrap();
        let out = b.ok(&["exec", "--process", process.to_str().unwrap(), &b.id]);
        assert_eq!(out, "1000\n300\n1\n", "userns={userns}");
    }
}
