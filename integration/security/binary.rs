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
