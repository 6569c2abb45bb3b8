//! Namespaces: new ones differ from the host's, joined ones are the very namespace given,
//! user namespaces carry the configured id maps, time namespaces their offsets.

use serde_json::json;

use crate::common::{host_ns, require_root, text, Bundle};

const ALL: &[&str] = &["pid", "net", "ipc", "uts", "mnt", "cgroup"];

#[test]
fn new_namespaces_differ_from_the_hosts() {
    require_root!();
    let mut b = Bundle::new("ns-new");
    b.sh("for n in pid net ipc uts mnt cgroup user time; do echo $n=$(readlink /proc/self/ns/$n); done");
    let out = b.run_ok();
    for ns in ALL {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{ns}=")))
            .unwrap();
        let inside = line.split_once('=').unwrap().1;
        assert_ne!(inside, host_ns(ns), "{ns} namespace is the host's");
    }
    // Not asked for: shared with the host.
    for ns in ["user", "time"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{ns}=")))
            .unwrap();
        assert_eq!(
            line.split_once('=').unwrap().1,
            host_ns(ns),
            "{ns} should be the host's"
        );
    }
}

#[test]
fn the_container_is_pid_1_of_its_pid_namespace() {
    require_root!();
    let mut b = Bundle::new("ns-pid1");
    b.sh("echo $$");
    assert_eq!(b.run_ok().trim(), "1");
}

#[test]
fn namespaces_are_joined_by_path() {
    require_root!();
    let mut host = Bundle::new("ns-owner");
    host.args(&["sleep", "30"]);
    host.create_ok();
    host.ok(&["start", &host.id]);
    let pid = host.state()["pid"].as_i64().unwrap();
    let want = |ns: &str| std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();

    let mut b = Bundle::new("ns-join");
    b.config["linux"]["namespaces"] = json!([
        {"type": "mount"}, {"type": "pid"},
        {"type": "network", "path": format!("/proc/{pid}/ns/net")},
        {"type": "uts", "path": format!("/proc/{pid}/ns/uts")},
        {"type": "ipc", "path": format!("/proc/{pid}/ns/ipc")},
    ]);
    b.config.as_object_mut().unwrap().remove("hostname");
    b.sh("for n in net uts ipc; do readlink /proc/self/ns/$n; done");
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], want("net").to_str().unwrap());
    assert_eq!(lines[1], want("uts").to_str().unwrap());
    assert_eq!(lines[2], want("ipc").to_str().unwrap());
}

#[test]
fn joining_a_pid_namespace_puts_the_init_inside_it() {
    require_root!();
    let mut host = Bundle::new("pidns-owner");
    host.args(&["sleep", "30"]);
    host.create_ok();
    host.ok(&["start", &host.id]);
    let pid = host.state()["pid"].as_i64().unwrap();
    let mut b = Bundle::new("pidns-join");
    b.config["linux"]["namespaces"] = json!([
        {"type": "mount"}, {"type": "pid", "path": format!("/proc/{pid}/ns/pid")},
    ]);
    b.config.as_object_mut().unwrap().remove("hostname");
    // pid 1 of that namespace is the other container's sleep
    b.sh("cat /proc/1/cmdline | tr '\\0' ' '");
    assert_eq!(b.run_ok().trim(), "sleep 30");
}

#[test]
fn a_bad_namespace_path_fails_create_cleanly() {
    require_root!();
    let mut b = Bundle::new("ns-badpath");
    b.config["linux"]["namespaces"] =
        json!([{"type": "mount"}, {"type": "network", "path": "/proc/self/ns/nonexistent"}]);
    b.args(&["true"]);
    let out = b.create();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("linux.namespaces"),
        "{}",
        text(&out.stderr)
    );
}

fn userns_config(b: &mut Bundle) {
    let mut nss = b.config["linux"]["namespaces"].as_array().unwrap().clone();
    nss.push(json!({"type": "user"}));
    b.config["linux"]["namespaces"] = json!(nss);
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    // sysfs cannot be mounted for a network namespace owned by the host's user namespace...
    // here it is owned by the new one, so the default mounts work; the rootfs must be
    // readable by the mapped root, which it is (world-readable busybox).
}

#[test]
fn user_namespace_maps_ids() {
    require_root!();
    let mut b = Bundle::new("userns");
    userns_config(&mut b);
    b.sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; readlink /proc/self/ns/user");
    let out = b.run_ok();
    let norm: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(norm[0], "0 100000 65536");
    assert_eq!(norm[1], "0 100000 65536");
    assert_eq!(norm[2], "0");
    assert_ne!(norm[3], host_ns("user"));
}

#[test]
fn user_namespace_with_a_joined_network_namespace_forks_the_init() {
    require_root!();
    let mut owner = Bundle::new("userns-netowner");
    owner.args(&["sleep", "30"]);
    owner.create_ok();
    owner.ok(&["start", &owner.id]);
    let pid = owner.state()["pid"].as_i64().unwrap();
    let mut b = Bundle::new("userns-join");
    userns_config(&mut b);
    b.config["linux"]["namespaces"] = json!([
        {"type": "mount"}, {"type": "pid"}, {"type": "user"}, {"type": "ipc"},
        {"type": "network", "path": format!("/proc/{pid}/ns/net")},
    ]);
    b.config.as_object_mut().unwrap().remove("hostname");
    // the host's sysfs cannot be mounted for a netns we do not own: bind it instead
    let mounts: Vec<serde_json::Value> = b.config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["destination"].as_str().unwrap().starts_with("/sys"))
        .cloned()
        .collect();
    b.config["mounts"] = json!(mounts);
    b.sh("echo $$; readlink /proc/self/ns/net; cat /proc/self/uid_map");
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "1",
        "the forked init is pid 1 of the new pid namespace"
    );
    assert_eq!(
        lines[1],
        std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .unwrap()
            .to_str()
            .unwrap()
    );
    assert!(lines[2].split_whitespace().eq(["0", "100000", "65536"]));
}

#[test]
fn time_namespace_applies_offsets() {
    require_root!();
    let mut b = Bundle::new("timens");
    let mut nss = b.config["linux"]["namespaces"].as_array().unwrap().clone();
    nss.push(json!({"type": "time"}));
    b.config["linux"]["namespaces"] = json!(nss);
    b.config["linux"]["timeOffsets"] = json!({
        "monotonic": {"secs": 86400, "nanosecs": 0},
        "boottime": {"secs": 172800, "nanosecs": 0}
    });
    b.sh("cat /proc/uptime; cat /proc/self/timens_offsets; readlink /proc/self/ns/time");
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    let uptime: f64 = lines[0].split_whitespace().next().unwrap().parse().unwrap();
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        uptime - host > 172000.0,
        "boottime offset not applied: {uptime} vs {host}"
    );
    assert!(out.contains("monotonic") && out.contains("86400"), "{out}");
    assert_ne!(lines.last().unwrap(), &host_ns("time"));
}
