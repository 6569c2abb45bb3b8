//! What runc's own integration tests (tests/integration/{cgroups,exec,run,update}.bats)
//! expect of the cgroup handling, with their wording and values. They run on this hybrid
//! host (its cgroup2 tree has hugetlb, a domain controller, which is enough for the
//! delegation and no-internal-processes cases) and, through `scripts/guest-tests`
//! (`cgroups::`), in the pure cgroup v2 guest with every controller.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::common::{
    cgroup2_mount, controllers, output_via_files_within, require_root, text, wait_for, Bundle,
};

/// A cgroup v2 directory a test makes itself (never a v1 one); removed on drop, children
/// first, once its processes are gone.
struct CgDir(PathBuf);

impl CgDir {
    fn new(name: &str) -> CgDir {
        let p = cgroup2_mount().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        CgDir(p)
    }

    /// Its path as linux.cgroupsPath takes it (from the hierarchy root).
    fn rel(&self) -> String {
        format!(
            "/{}",
            self.0.strip_prefix(cgroup2_mount()).unwrap().display()
        )
    }
}

impl Drop for CgDir {
    fn drop(&mut self) {
        fn rm(p: &Path) {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rm(&e.path());
                }
            }
            // A just-killed process may take a moment to leave.
            wait_for(30_000, || std::fs::remove_dir(p).is_ok() || !p.exists());
        }
        let _ = std::fs::write(self.0.join("cgroup.freeze"), "0");
        rm(&self.0);
        if !std::thread::panicking() {
            assert!(!self.0.exists(), "cgroup {} left behind", self.0.display());
        }
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Runs a skiff command that must not hang (the bug was a `run -d` waiting forever on an
/// init born frozen): killed — by its pid, it is our child — after 30 s.
fn bounded(b: &Bundle, args: &[&str]) -> Output {
    b.write_config();
    output_via_files_within(
        b.command(args).stdin(Stdio::null()),
        Some(Duration::from_secs(30)),
    )
}

fn bundle_arg(b: &Bundle) -> String {
    b.dir.to_str().unwrap().to_string()
}

/// runc's set_cgroup_mount_writable: the container's /sys/fs/cgroup without "ro".
fn cgroup_mount_writable(b: &mut Bundle) {
    for m in b.config["mounts"].as_array_mut().unwrap() {
        if m["type"] == "cgroup" {
            if let Some(o) = m["options"].as_array_mut() {
                o.retain(|o| o != "ro");
            }
        }
    }
}

/// A domain controller the hierarchy has (memory, as runc's tests use, where it can).
fn domain_controller() -> Option<String> {
    let have = controllers();
    ["memory", "io", "hugetlb", "rdma", "misc"]
        .into_iter()
        .find(|c| have.iter().any(|h| h == c))
        .map(str::to_string)
}

/// cgroups.bats "runc run/create should refuse pre-existing frozen cgroup".
#[test]
fn pre_existing_frozen_cgroup_is_refused_and_left_alone() {
    require_root!();
    let frozen = CgDir::new("it-frozen");
    if !frozen.0.join("cgroup.freeze").exists() {
        crate::common::skip!(
            "kernel",
            "no cgroup.freeze (the cgroup v2 freezer needs Linux 5.2)"
        );
    }
    std::fs::write(frozen.0.join("cgroup.freeze"), "1").unwrap();
    // The container's own cgroup frozen, and (a cgroup to be made in it) its parent frozen.
    for path in [frozen.rel(), format!("{}/ct", frozen.rel())] {
        let mut b = Bundle::new("cg-frozen");
        b.config["linux"]["cgroupsPath"] = json!(path);
        b.args(&["true"]);
        let dir = bundle_arg(&b);
        for args in [
            &["run", "-d", "--bundle", &dir, &b.id][..],
            &["create", "--bundle", &dir, &b.id],
        ] {
            let out = bounded(&b, args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(
                err.contains("container's cgroup unexpectedly frozen"),
                "{args:?}: {err}"
            );
        }
        // Left as it was: still frozen, nothing made in it, no process.
        assert_eq!(read(&frozen.0.join("cgroup.freeze")), "1");
        assert!(!frozen.0.join("ct").exists());
        assert_eq!(read(&frozen.0.join("cgroup.procs")), "");
    }
}

/// cgroups.bats "runc run/create should error for a non-empty cgroup".
#[test]
fn run_and_create_refuse_a_non_empty_cgroup() {
    require_root!();
    let top = CgDir::new("it-shared");
    let path = format!("{}/ct", top.rel());
    let mut ct1 = Bundle::new("cg-shared-1");
    ct1.config["linux"]["cgroupsPath"] = json!(path);
    ct1.args(&["sleep", "60"]);
    let dir = bundle_arg(&ct1);
    let out = bounded(&ct1, &["run", "-d", "--bundle", &dir, &ct1.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid = ct1.state()["pid"].as_i64().unwrap();
    // A second container sharing the cgroup with the first one.
    let mut ct2 = Bundle::new("cg-shared-2");
    ct2.config["linux"]["cgroupsPath"] = json!(path);
    ct2.args(&["true"]);
    let dir = bundle_arg(&ct2);
    for args in [
        &["run", "-d", "--bundle", &dir, &ct2.id][..],
        &["create", "--bundle", &dir, &ct2.id],
    ] {
        let out = bounded(&ct2, args);
        let err = text(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(
            err.contains("container's cgroup is not empty"),
            "{args:?}: {err}"
        );
    }
    // The first container and its cgroup are untouched.
    assert_eq!(ct1.status(), "running");
    assert_eq!(read(&top.0.join("ct/cgroup.procs")), pid.to_string());
    ct1.ok(&["delete", "--force", &ct1.id]);
    assert!(!top.0.join("ct").exists());
}

/// cgroups.bats "runc create (limits + cgrouppath + permission on the cgroup dir)
/// succeeds": the container's cgroup gets every controller of the hierarchy root, down a
/// path whose parent skiff makes.
#[test]
fn every_controller_is_delegated_to_the_container_cgroup() {
    require_root!();
    let top = CgDir::new("it-deleg");
    let mut b = Bundle::new("cg-deleg");
    b.config["linux"]["cgroupsPath"] = json!(format!("{}/parent/ct", top.rel()));
    // runc's set_resources_limit, where the hierarchy has pids (not on a hybrid host).
    if controllers().iter().any(|c| c == "pids") {
        b.resources(json!({"pids": {"limit": 100}}));
    }
    b.args(&["sleep", "60"]);
    let dir = bundle_arg(&b);
    let out = bounded(&b, &["run", "-d", "--bundle", &dir, &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cg = top.0.join("parent/ct");
    assert_eq!(
        read(&cg.join("cgroup.controllers")),
        read(&cgroup2_mount().join("cgroup.controllers"))
    );
    b.ok(&["delete", "--force", &b.id]);
    assert!(!top.0.join("parent").exists(), "skiff's parent left behind");
}

/// run.bats "runc run --keep (check cgroup exists)": pids.max is there without a limit.
#[test]
fn run_keep_keeps_the_cgroup_with_its_controllers() {
    require_root!();
    if !controllers().iter().any(|c| c == "pids") {
        crate::common::skip!(
            "cgroup-v2-controllers",
            "the cgroup v2 hierarchy has no pids controller (scripts/guest-tests)"
        );
    }
    let top = CgDir::new("it-keep");
    let mut b = Bundle::new("cg-keep");
    b.config["linux"]["cgroupsPath"] = json!(format!("{}/ct", top.rel()));
    b.args(&["echo", "Hello World"]);
    let dir = bundle_arg(&b);
    let out = bounded(&b, &["run", "--keep", "--bundle", &dir, &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(b.status(), "stopped");
    assert_eq!(read(&top.0.join("ct/pids.max")), "max");
    b.ok(&["delete", &b.id]);
    assert!(!top.0.join("ct").exists());
}

/// exec.bats "runc exec --cgroup subcgroup [v2]" and cgroups.bats "runc exec (cgroup v2 +
/// init process in non-root cgroup) succeeds", with a domain controller of the hierarchy
/// (memory in the guest, hugetlb on the hybrid host).
#[test]
fn exec_cgroup_sub_cgroups_and_the_init_cgroup_fallback() {
    require_root!();
    let Some(ctl) = domain_controller() else {
        crate::common::skip!(
            "cgroup-v2-controllers",
            "the cgroup v2 hierarchy has no domain controller"
        );
    };
    let top = CgDir::new("it-execcg");
    let mut b = Bundle::new("cg-execcg");
    b.config["linux"]["cgroupsPath"] = json!(format!("{}/ct", top.rel()));
    cgroup_mount_writable(&mut b);
    b.args(&["sleep", "600"]);
    let dir = bundle_arg(&b);
    let out = bounded(&b, &["run", "-d", "--bundle", &dir, &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let exec = |args: &[&str]| -> Output {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        bounded(&b, &a)
    };
    let ok = |args: &[&str]| -> String {
        let out = exec(args);
        assert!(
            out.status.success(),
            "exec {args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let fails = |args: &[&str]| -> String {
        let out = exec(args);
        assert_eq!(out.status.code(), Some(255), "exec {args:?} did not fail");
        text(&out.stderr)
    };
    let id = b.id.as_str();
    // Delegated: the container's cgroup has the controller.
    let have = ok(&[id, "cat", "/sys/fs/cgroup/cgroup.controllers"]);
    assert!(have.split_whitespace().any(|c| c == ctl), "{have}");

    // Check we can't join parent cgroup, nor a sibling sharing our name prefix.
    let err = fails(&["--cgroup", "..", id, "cat", "/proc/self/cgroup"]);
    assert!(err.contains("bad sub cgroup path"), "{err}");
    std::fs::create_dir(top.0.join("ct-sibling")).unwrap();
    let err = fails(&["--cgroup", "../ct-sibling", id, "cat", "/proc/self/cgroup"]);
    assert!(err.contains("bad sub cgroup path"), "{err}");
    std::fs::remove_dir(top.0.join("ct-sibling")).unwrap();
    // Check we can't join non-existing subcgroup: *" cgroup"*"o such file or directory"*.
    let err = fails(&["--cgroup", "nonexistent", id, "cat", "/proc/self/cgroup"]);
    let at = err.find(" cgroup").unwrap_or_else(|| panic!("{err}"));
    assert!(err[at..].contains("o such file or directory"), "{err}");
    // The top-level cgroup, implicitly and explicitly.
    ok(&[id, "grep", "^0::/$", "/proc/self/cgroup"]);
    ok(&["--cgroup", "/", id, "grep", "^0::/$", "/proc/self/cgroup"]);

    // Move the init to a subcgroup: an exec process can still join "/", no domain
    // controller being enabled yet.
    ok(&[
        id,
        "sh",
        "-euc",
        "mkdir /sys/fs/cgroup/foobar && echo 1 > /sys/fs/cgroup/foobar/cgroup.procs \
         && grep -w foobar /proc/1/cgroup",
    ]);
    ok(&[id, "grep", "^0::/$", "/proc/self/cgroup"]);
    // Turn on a domain controller: "/" can no longer take processes; exec falls back to
    // the init's cgroup.
    ok(&[
        id,
        "sh",
        "-euc",
        &format!(
            "echo $$ > /sys/fs/cgroup/foobar/cgroup.procs; \
             echo +{ctl} > /sys/fs/cgroup/cgroup.subtree_control"
        ),
    ]);
    let out = ok(&[
        id,
        "sh",
        "-euc",
        "cat /proc/self/cgroup && grep '^0::/foobar$' /proc/self/cgroup",
    ]);
    assert!(out.lines().any(|l| l == "0::/foobar"), "{out}");
    // --cgroup / disables the fallback: runc's *" adding pid "*" to cgroups"*"evice or
    // resource busy"*.
    let err = fails(&["--cgroup", "/", id, "true"]);
    let a = err.find(" adding pid ").unwrap_or_else(|| panic!("{err}"));
    let t = a + err[a..]
        .find(" to cgroups")
        .unwrap_or_else(|| panic!("{err}"));
    assert!(err[t..].contains("evice or resource busy"), "{err}");
    // Explicit --cgroup foobar, and every process is in it.
    ok(&[
        "--cgroup",
        "foobar",
        id,
        "grep",
        "^0::/foobar$",
        "/proc/self/cgroup",
    ]);
    ok(&[
        "--cgroup",
        "foobar",
        id,
        "sh",
        "-euc",
        "! grep -vwH foobar /proc/[0-9]*/cgroup | grep '^[^:]*:0::'",
    ]);
    // A second subcgroup.
    ok(&["--cgroup", "foobar", id, "mkdir", "/sys/fs/cgroup/second"]);
    ok(&[
        "--cgroup",
        "second",
        id,
        "grep",
        "-w",
        "second",
        "/proc/self/cgroup",
    ]);
    b.ok(&["delete", "--force", &b.id]);
    assert!(!top.0.join("ct").exists());
}

/// exec.bats "runc exec [init changes cgroup]": the init moved itself out and the
/// container's cgroup was removed; exec follows the init.
#[test]
fn exec_follows_the_init_when_the_container_cgroup_is_gone() {
    require_root!();
    let new = CgDir::new("it-initcg");
    let new_rel = new.rel();
    let mut b = Bundle::new("cg-initcg");
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "cgroup");
    cgroup_mount_writable(&mut b);
    b.sh(&format!(
        "echo 1 > /sys/fs/cgroup{new_rel}/cgroup.procs && exec sleep 600"
    ));
    let dir = bundle_arg(&b);
    let out = bounded(&b, &["run", "-d", "--bundle", &dir, &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid = b.state()["pid"].as_i64().unwrap();
    let v2_line = |pid: &str| -> String {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("0::"))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        wait_for(30_000, || v2_line(&pid.to_string())
            == format!("0::{new_rel}")),
        "the init did not move: {}",
        v2_line(&pid.to_string())
    );
    // Remove the original container cgroup.
    std::fs::remove_dir(b.default_cgroup()).unwrap();
    let out = bounded(&b, &["exec", &b.id, "cat", "/proc/self/cgroup"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = text(&out.stdout);
    // On a pure v2 host that is the whole file (runc's test); a hybrid one adds v1 lines.
    assert!(
        out.lines().any(|l| l == format!("0::{new_rel}")),
        "exec not in the init's cgroup: {out}"
    );
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert_eq!(out.trim(), format!("0::{new_rel}"));
    }
    b.ok(&["delete", "--force", &b.id]);
}

/// Found with the test above: `delete --force` must also kill an init that moved itself
/// out of the container's (still existing) cgroup.
#[test]
fn delete_force_kills_an_init_that_left_the_container_cgroup() {
    require_root!();
    let new = CgDir::new("it-leftcg");
    let mut b = Bundle::new("cg-leftcg");
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "cgroup");
    cgroup_mount_writable(&mut b);
    b.sh(&format!(
        "echo 1 > /sys/fs/cgroup{}/cgroup.procs && exec sleep 600",
        new.rel()
    ));
    b.start_ok();
    let pid = b.state()["pid"].as_i64().unwrap();
    assert!(
        wait_for(30_000, || read(&new.0.join("cgroup.procs"))
            == pid.to_string()),
        "the init did not move"
    );
    let out = bounded(&b, &["delete", "--force", &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !crate::common::pid_alive(pid),
        "the init survived delete --force"
    );
}

/// update.bats "update cpuset parameters via resources.CPU" and cgroups.bats "runc run
/// (hugetlb limits)" ({pagesize: ...}): resources keys match ignoring case, as Go reads
/// them, in config.json and in `update --resources`.
#[test]
fn resources_keys_match_ignoring_case() {
    require_root!();
    let have = controllers();
    let cpus =
        std::fs::read_to_string(cgroup2_mount().join("cpuset.cpus.effective")).unwrap_or_default();
    let mut checked = 0;
    if have.iter().any(|c| c == "cpuset") && cpus.trim() != "0" && !cpus.trim().is_empty() {
        let mut b = Bundle::new("cg-case-cpu");
        b.config["linux"]["resources"] = json!({"CPU": {"Cpus": "0", "Mems": "0"}});
        b.args(&["sleep", "60"]);
        b.start_ok();
        assert_eq!(b.cg_read("cpuset.cpus"), "0");
        assert_eq!(b.cg_read("cpuset.mems"), "0");
        let f = b.dir.join("r.json");
        std::fs::write(&f, r#"{"CPU": {"Cpus": "1"}}"#).unwrap();
        b.ok(&["update", "-r", f.to_str().unwrap(), &b.id]);
        assert_eq!(b.cg_read("cpuset.cpus"), "1");
        checked += 1;
    }
    if have.iter().any(|c| c == "hugetlb")
        && Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
    {
        let mut b = Bundle::new("cg-case-huge");
        b.config["linux"]["resources"] =
            json!({"hugepageLimits": [{"pagesize": "2MB", "limit": 2097152}]});
        b.args(&["sleep", "60"]);
        b.start_ok();
        assert_eq!(b.cg_read("hugetlb.2MB.max"), "2097152");
        let f = b.dir.join("r.json");
        std::fs::write(
            &f,
            r#"{"HugepageLimits": [{"PageSize": "2MB", "Limit": 4194304}]}"#,
        )
        .unwrap();
        b.ok(&["update", "-r", f.to_str().unwrap(), &b.id]);
        assert_eq!(b.cg_read("hugetlb.2MB.max"), "4194304");
        checked += 1;
    }
    if checked == 0 {
        crate::common::skipped(
            "cgroup-v2-controllers",
            "neither cpuset (with 2 CPUs) nor hugetlb (2MB pages) here",
        );
    }
}

/// update.bats "update memory vs CheckBeforeUpdate": runc checks memory+swap first.
#[test]
fn update_check_before_update_words_it_as_runc() {
    require_root!();
    if !controllers().iter().any(|c| c == "memory") {
        crate::common::skip!(
            "cgroup-v2-controllers",
            "no memory controller (scripts/guest-tests)"
        );
    }
    let mut b = Bundle::new("cg-cbu");
    b.args(&["sleep", "60"]);
    b.start_ok();
    let f = b.dir.join("r.json");
    for (json, want) in [
        (
            r#"{"memory": {"limit": 1024, "checkBeforeUpdate": true}}"#,
            "rejecting memory limit",
        ),
        (
            r#"{"memory": {"limit": 1024, "swap": 2048, "checkBeforeUpdate": true}}"#,
            "rejecting memory+swap limit",
        ),
    ] {
        std::fs::write(&f, json).unwrap();
        let out = b.skiff(&["update", "-r", f.to_str().unwrap(), &b.id]);
        assert!(!out.status.success(), "{json}");
        assert!(text(&out.stderr).contains(want), "{}", text(&out.stderr));
        assert_eq!(b.status(), "running");
    }
}

/// update.bats "update cgroup cpu.idle" and "update cpu period with no previous
/// period/quota set".
#[test]
fn update_cpu_idle_and_period_as_runc() {
    require_root!();
    if !controllers().iter().any(|c| c == "cpu") {
        crate::common::skip!(
            "cgroup-v2-controllers",
            "no cpu controller (scripts/guest-tests)"
        );
    }
    let mut b = Bundle::new("cg-idle");
    b.resources(json!({"cpu": {}}));
    b.args(&["sleep", "60"]);
    b.start_ok();
    b.ok(&["update", "--cpu-period", "50000", &b.id]);
    assert_eq!(b.cg_read("cpu.max"), "max 50000");
    if !b.default_cgroup().join("cpu.idle").exists() {
        crate::common::skip!("kernel", "no cpu.idle (Linux 5.15)");
    }
    assert_eq!(b.cg_read("cpu.idle"), "0");
    let f = b.dir.join("r.json");
    for val in ["1", "0", "1"] {
        std::fs::write(&f, format!(r#"{{"cpu": {{"idle": {val}}}}}"#)).unwrap();
        b.ok(&["update", "-r", f.to_str().unwrap(), &b.id]);
        assert_eq!(b.cg_read("cpu.idle"), val);
    }
    for val in ["1", "0", "1"] {
        b.ok(&["update", "--cpu-idle", val, &b.id]);
        assert_eq!(b.cg_read("cpu.idle"), val);
    }
    for val in ["-1", "2", "3"] {
        let out = b.skiff(&["update", "--cpu-idle", val, &b.id]);
        assert!(!out.status.success(), "--cpu-idle {val} accepted");
        assert_eq!(b.cg_read("cpu.idle"), "1");
    }
    // Another update leaves cpu.idle alone.
    b.ok(&["update", "--cpu-period", "10000", &b.id]);
    assert_eq!(b.cg_read("cpu.idle"), "1");
}
