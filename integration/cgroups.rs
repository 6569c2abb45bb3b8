//! cgroups on this host (hybrid: cgroup v1 controllers plus a cgroup2 mount with few
//! controllers): placement in the cgroup2 mount without touching the v1 hierarchies, the
//! freezer, the device program, kill --all, ps, events, update, delete, and the error for
//! every controller the hierarchy lacks. Limits that need the controllers are proven in the
//! pure cgroup v2 guest (`guest.rs`).

mod runc;

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{
    cgroup2_mount, controllers, key, pid_alive, require_root, text, wait_for, Bundle,
};

/// A line of /proc/<pid>/cgroup for one v1 controller ("4:memory:/x" → "/x").
fn v1_line(cgroup_file: &str, controller: &str) -> Option<String> {
    cgroup_file.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
        names
            .split(',')
            .any(|n| n == controller)
            .then(|| path.to_string())
    })
}

fn pids_json(b: &Bundle) -> Vec<i64> {
    let out = b.ok(&["ps", "--format", "json", &b.id]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ps json {out:?}: {e}"))
}

#[test]
fn init_is_placed_in_the_cgroup2_mount_and_keeps_its_v1_cgroups() {
    require_root!();
    let mut b = Bundle::new("cg-place");
    b.args(&["sleep", "30"]);
    b.create_ok();
    let pid = b.state()["pid"].as_i64().unwrap();
    let theirs = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let rel = b
        .default_cgroup()
        .strip_prefix(cgroup2_mount())
        .unwrap()
        .to_path_buf();
    assert!(
        theirs
            .lines()
            .any(|l| l == format!("0::/{}", rel.display())),
        "{theirs}"
    );
    assert!(b.default_cgroup().join("cgroup.procs").exists());
    // skiff never moves a process between cgroup v1 cgroups: the init is where we are.
    for c in ["memory", "cpu", "pids", "devices", "freezer", "blkio"] {
        assert_eq!(
            v1_line(&theirs, c),
            v1_line(&ours, c),
            "v1 {c} cgroup moved"
        );
    }
    b.ok(&["delete", "--force", &b.id]);
    assert!(!b.default_cgroup().exists());
}

#[test]
fn pause_freezes_and_resume_thaws() {
    require_root!();
    let mut b = Bundle::new("cg-freeze");
    b.config["root"]["readonly"] = json!(false);
    b.sh(
        "i=0; while :; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; sleep 0.02; done",
    );
    b.start_ok();
    let n = || -> u64 {
        std::fs::read_to_string(b.rootfs().join("tmp/n"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(wait_for(30_000, || n() > 2), "the container never counted");
    b.ok(&["pause", &b.id]);
    assert_eq!(b.status(), "paused");
    assert_eq!(key(&b.cg_read("cgroup.events"), "frozen"), Some(1));
    let frozen_at = n();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(n(), frozen_at, "a paused container made progress");
    // Pausing twice is an error (runc: "container not running"); so is resuming twice.
    let again = b.skiff(&["pause", &b.id]);
    assert!(
        text(&again.stderr).contains("not running"),
        "{}",
        text(&again.stderr)
    );
    // ps works on a frozen container.
    assert!(!pids_json(&b).is_empty());
    b.ok(&["resume", &b.id]);
    assert_eq!(b.status(), "running");
    assert_eq!(key(&b.cg_read("cgroup.events"), "frozen"), Some(0));
    assert!(
        wait_for(30_000, || n() > frozen_at + 2),
        "no progress after resume"
    );
    let again = b.skiff(&["resume", &b.id]);
    assert!(
        text(&again.stderr).contains("not paused"),
        "{}",
        text(&again.stderr)
    );
    // A paused container can be deleted with --force (nothing is left behind: see Drop).
    b.ok(&["pause", &b.id]);
    b.ok(&["delete", "--force", &b.id]);
}

#[test]
fn denied_device_cannot_be_opened_and_allowed_one_can() {
    require_root!();
    let mut b = Bundle::new("cg-dev");
    b.resources(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rw"}
    ]}));
    b.sh("cat /dev/null; echo null=$?; head -c 3 /dev/zero | wc -c");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("null=1"), "{out}");
    assert!(
        err.contains("/dev/null") && err.contains("Operation not permitted"),
        "{err}"
    );
    assert!(
        out.lines().any(|l| l.trim() == "3"),
        "/dev/zero not readable: {out}"
    );
}

#[test]
fn a_later_deny_punches_a_hole_in_an_allow_all() {
    require_root!();
    let mut b = Bundle::new("cg-dev-hole");
    b.resources(json!({"devices": [
        {"allow": true, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 5, "access": "w"}
    ]}));
    b.sh("head -c 2 /dev/zero | wc -c; echo x > /dev/zero; echo zero-write=$?; echo x > /dev/null; echo null-write=$?");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.lines().any(|l| l.trim() == "2"), "{out}");
    assert!(out.contains("zero-write=1"), "{out}");
    assert!(out.contains("null-write=0"), "{out}");
}

#[test]
fn update_replaces_the_device_program() {
    require_root!();
    let mut b = Bundle::new("cg-dev-upd");
    b.config["root"]["readonly"] = json!(false);
    // The container probes /dev/zero in a loop (not through exec, whose setns lands outside
    // the container's root in the chroot-based guest).
    b.sh(
        "while :; do if head -c 1 /dev/zero >/dev/null 2>&1; then r=ok; else r=denied; fi; \
          echo $r > /tmp/z.new; mv /tmp/z.new /tmp/z; sleep 0.02; done",
    );
    b.start_ok();
    let probe = || std::fs::read_to_string(b.rootfs().join("tmp/z")).unwrap_or_default();
    assert!(wait_for(30_000, || probe().trim() == "ok"), "{}", probe());
    let file = b.dir.join("res.json");
    std::fs::write(
        &file,
        json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 5, "access": "r"}
        ]})
        .to_string(),
    )
    .unwrap();
    b.ok(&["update", "--resources", file.to_str().unwrap(), &b.id]);
    assert!(
        wait_for(30_000, || probe().trim() == "denied"),
        "{}",
        probe()
    );
    // Replaced, not stacked: one program on the cgroup.
    let dir = std::fs::File::open(b.default_cgroup()).unwrap();
    let ids = skiff::sys::bpf::query_device_progs(std::os::fd::AsFd::as_fd(&dir)).unwrap();
    assert_eq!(ids.len(), 1, "device programs attached: {ids:?}");
    // An update without device rules leaves the program alone.
    std::fs::write(&file, "{}").unwrap();
    b.ok(&["update", "--resources", file.to_str().unwrap(), &b.id]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(probe().trim(), "denied");
    // And rules that allow it again take effect.
    std::fs::write(&file, r#"{"devices":[{"allow":true,"access":"rwm"}]}"#).unwrap();
    b.ok(&["update", "--resources", file.to_str().unwrap(), &b.id]);
    assert!(wait_for(30_000, || probe().trim() == "ok"), "{}", probe());
}

#[test]
fn kill_all_reaches_every_process() {
    require_root!();
    let mut b = Bundle::new("cg-killall");
    b.sh("sleep 100 & sleep 100 & wait");
    b.start_ok();
    assert!(wait_for(30_000, || pids_json(&b).len() == 3));
    let pids = pids_json(&b);
    b.ok(&["kill", "--all", &b.id, "TERM"]);
    assert!(wait_for(30_000, || pids.iter().all(|&p| !pid_alive(p))));
    assert!(wait_for(30_000, || b.status() == "stopped"));

    b.ok(&["delete", &b.id]);
    b.start_ok();
    assert!(wait_for(30_000, || pids_json(&b).len() == 3));
    let pids = pids_json(&b);
    b.ok(&["kill", "--all", &b.id, "9"]);
    assert!(wait_for(30_000, || pids.iter().all(|&p| !pid_alive(p))));
    assert_eq!(key(&b.cg_read("cgroup.events"), "populated"), Some(0));
}

#[test]
fn ps_lists_the_container_processes() {
    require_root!();
    let mut b = Bundle::new("cg-ps");
    b.sh("sleep 100 & sleep 101 & wait");
    b.start_ok();
    assert!(wait_for(30_000, || pids_json(&b).len() == 3));
    let rel = b.default_cgroup();
    let rel = rel.strip_prefix(cgroup2_mount()).unwrap();
    for pid in pids_json(&b) {
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert!(
            cg.contains(&format!("0::/{}", rel.display())),
            "{pid}: {cg}"
        );
    }
    let table = b.ok(&["ps", &b.id]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].split_whitespace().any(|h| h == "PID"), "{table}");
    assert_eq!(lines.len(), 4, "{table}");
    assert!(table.contains("sleep 101"), "{table}");
    // ps options after the id go to ps(1).
    let table = b.ok(&["ps", &b.id, "-o", "pid,comm"]);
    assert_eq!(
        table.lines().filter(|l| l.contains("sleep")).count(),
        2,
        "{table}"
    );
}

#[test]
fn missing_controllers_are_named_in_the_error() {
    require_root!();
    let have = controllers();
    let cases: &[(Value, &str, &str)] = &[
        (
            json!({"memory": {"limit": 67108864}}),
            "linux.resources.memory.limit",
            "memory",
        ),
        (
            json!({"memory": {"reservation": 1000000}}),
            "linux.resources.memory",
            "memory",
        ),
        (
            json!({"cpu": {"shares": 512}}),
            "linux.resources.cpu.shares",
            "cpu",
        ),
        (
            json!({"cpu": {"quota": 50000, "period": 100000}}),
            "linux.resources.cpu.quota",
            "cpu",
        ),
        (
            json!({"cpu": {"cpus": "0"}}),
            "linux.resources.cpu.cpus",
            "cpuset",
        ),
        (
            json!({"pids": {"limit": 10}}),
            "linux.resources.pids.limit",
            "pids",
        ),
        (
            json!({"blockIO": {"weight": 500}}),
            "linux.resources.blockIO.weight",
            "io",
        ),
        (
            json!({"rdma": {"mlx4_0": {"hcaHandles": 1}}}),
            "linux.resources.rdma",
            "rdma",
        ),
        (
            json!({"unified": {"memory.high": "1000000"}}),
            "linux.resources.unified",
            "memory",
        ),
    ];
    let mut checked = 0;
    for (i, (r, field, controller)) in cases.iter().enumerate() {
        if have.iter().any(|c| c == controller) {
            continue;
        }
        let mut b = Bundle::new(&format!("cg-missing-{i}"));
        b.resources(r.clone());
        b.args(&["true"]);
        let out = b.create();
        let err = text(&out.stderr);
        assert!(
            !out.status.success(),
            "{r} accepted without the {controller} controller"
        );
        assert!(
            err.contains(field)
                && (err.contains(&format!("\\\"{controller}\\\" controller"))
                    || err.contains(&format!("\"{controller}\" controller"))),
            "{r}: {err}"
        );
        checked += 1;
    }
    if checked == 0 {
        crate::common::skipped(
            "pure-cgroup-v2",
            "the cgroup v2 hierarchy has every controller (not a hybrid host)",
        );
    }
}

#[test]
fn hugetlb_limits_are_written_where_the_hierarchy_has_hugetlb() {
    require_root!();
    if !controllers().iter().any(|c| c == "hugetlb")
        || !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
    {
        crate::common::skip!("hugetlb", "no hugetlb controller or 2MB huge pages");
    }
    let mut b = Bundle::new("cg-hugetlb");
    b.resources(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}));
    b.args(&["sleep", "60"]);
    b.start_ok();
    assert_eq!(b.cg_read("hugetlb.2MB.max"), "4194304");
    if b.default_cgroup().join("hugetlb.2MB.rsvd.max").exists() {
        assert_eq!(b.cg_read("hugetlb.2MB.rsvd.max"), "4194304");
    }
    // update from standard input, as containerd sends it.
    let mut cmd = b.command(&["update", "--resources", "-", &b.id]);
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"hugepageLimits":[{"pageSize":"2MB","limit":2097152}]}"#)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(b.cg_read("hugetlb.2MB.max"), "2097152");
    // A size the kernel does not have is named.
    let f = b.dir.join("bad.json");
    std::fs::write(&f, r#"{"hugepageLimits":[{"pageSize":"3MB","limit":1}]}"#).unwrap();
    let out = b.skiff(&["update", "-r", f.to_str().unwrap(), &b.id]);
    assert!(
        text(&out.stderr).contains("hugetlb.3MB.max"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn update_errors_name_the_field_and_refuse_stopped_containers() {
    require_root!();
    let mut b = Bundle::new("cg-update-err");
    b.args(&["sleep", "60"]);
    b.start_ok();
    if !controllers().iter().any(|c| c == "memory") {
        let out = b.skiff(&["update", "--memory", "64m", &b.id]);
        assert!(
            text(&out.stderr).contains("linux.resources.memory.limit"),
            "{}",
            text(&out.stderr)
        );
    }
    let out = b.skiff(&["update", "--memory", "64x", &b.id]);
    assert!(
        text(&out.stderr).contains("--memory"),
        "{}",
        text(&out.stderr)
    );
    let f = b.dir.join("u.json");
    std::fs::write(&f, r#"{"unified":{"../../cgroup.procs":"1"}}"#).unwrap();
    let out = b.skiff(&["update", "-r", f.to_str().unwrap(), &b.id]);
    assert!(
        text(&out.stderr).contains("no '/'"),
        "{}",
        text(&out.stderr)
    );
    b.ok(&["kill", &b.id, "KILL"]);
    assert!(wait_for(30_000, || b.status() == "stopped"));
    let out = b.skiff(&["update", "--pids-limit", "5", &b.id]);
    assert!(
        text(&out.stderr).contains("container not running"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn unified_keys_outside_the_cgroup_are_refused_before_anything_is_made() {
    require_root!();
    for k in ["../x.max", "memory.max/x", "cgroup.procs"] {
        let mut b = Bundle::new("cg-unified");
        b.resources(json!({"unified": {k: "1"}}));
        b.args(&["true"]);
        let out = b.create();
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("linux.resources.unified"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn events_stats_have_runcs_shape() {
    require_root!();
    let mut b = Bundle::new("cg-events");
    b.args(&["sleep", "60"]);
    b.start_ok();
    let out = b.ok(&["events", "--stats", &b.id]);
    let ev: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], b.id.as_str());
    let d = &ev["data"];
    assert!(
        d["cpu"]["usage"]["kernel"].is_u64() && d["cpu"]["usage"]["user"].is_u64(),
        "{d}"
    );
    assert!(d["memory"]["kernelTCP"]["limit"].is_u64(), "{d}");
    assert_eq!(d["pids"]["current"], 1, "{d}");
    assert!(
        d["hugetlb"].is_object() && d["intel_rdt"].is_object(),
        "{d}"
    );
    // The stream: a stats line per interval, ending when the container does.
    // Two lines are awaited rather than slept for: the guest runs under emulation, where
    // starting `events` alone can take most of a second.
    let mut cmd = b.command(&["events", "--interval", "200ms", &b.id]);
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines: Vec<Value> = vec![];
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while lines.len() < 2 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(serde_json::from_str(&l).unwrap()),
            Err(_) => break,
        }
    }
    b.ok(&["kill", &b.id, "KILL"]);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(
        rx.try_iter()
            .map(|l| serde_json::from_str::<Value>(&l).unwrap()),
    );
    assert!(
        status.success(),
        "events did not end cleanly when the container did"
    );
    assert!(lines.len() >= 2, "{lines:?}");
    assert!(lines.iter().all(|l| l["type"] == "stats"));
    let out = b.skiff(&["events", "--stats", &b.id]);
    assert!(
        text(&out.stderr).contains("is not running"),
        "{}",
        text(&out.stderr)
    );
    let out = b.skiff(&["events", "--interval", "0s", &b.id]);
    assert!(
        text(&out.stderr).contains("greater than 0"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn delete_removes_the_cgroup_and_child_cgroups_while_processes_exit() {
    require_root!();
    let mut b = Bundle::new("cg-delete");
    b.sh("trap '' TERM; for i in 1 2 3 4 5; do sleep 100 & done; wait");
    b.start_ok();
    assert!(wait_for(30_000, || pids_json(&b).len() == 6));
    // A child cgroup (as a container with its own cgroup manager makes), holding a process.
    let sub = b.default_cgroup().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let pid = pids_json(&b).into_iter().max().unwrap();
    std::fs::write(sub.join("cgroup.procs"), pid.to_string()).unwrap();
    let pids = pids_json(&b);
    assert_eq!(pids.len(), 6, "ps includes child cgroups");
    b.ok(&["delete", "--force", &b.id]);
    assert!(!b.default_cgroup().exists());
    assert!(pids.iter().all(|&p| !pid_alive(p)));
}

/// Issue 16: without a reachable systemd, `--systemd-cgroup` fails at once, naming the bus
/// socket it tried, and leaves nothing (no state, no cgroup). The driver itself is tested
/// against a real systemd in the systemd guest (integration/systemd/smoke).
#[test]
fn systemd_cgroup_without_systemd_fails_fast_naming_the_bus() {
    require_root!();
    let sock = "/run/skiff-test-no-such-bus/system_bus_socket";
    let mut b = Bundle::new("cg-systemd-nobus");
    b.config["linux"]["cgroupsPath"] = serde_json::json!("system.slice:skiff-test:nobus");
    b.args(&["true"]);
    b.write_config();
    let create = |b: &Bundle| {
        let bundle = b.dir.to_str().unwrap();
        b.command(&["--systemd-cgroup", "create", "--bundle", bundle, &b.id])
            .env("DBUS_SYSTEM_BUS_ADDRESS", format!("unix:path={sock}"))
            .output()
            .unwrap()
    };
    let started = std::time::Instant::now();
    let out = create(&b);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "create succeeded without systemd");
    assert!(
        err.contains(sock),
        "the error does not name the socket: {err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(!b.root.join(&b.id).exists(), "a state directory was left");
    let (mount, _) = skiff::cgroups::host_layout().unwrap();
    assert!(!mount.join("system.slice/skiff-test-nobus.scope").exists());
    // A path not of the form slice:prefix:name is refused with runc's wording.
    b.config["linux"]["cgroupsPath"] = serde_json::json!("/skiff-test/nobus");
    b.write_config();
    let out = create(&b);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("expected cgroupsPath to be of format \\\"slice:prefix:name\\\"")
            || err.contains("expected cgroupsPath to be of format \"slice:prefix:name\""),
        "{err}"
    );
    assert!(!b.root.join(&b.id).exists());
}
