//! Places where runc (1.1.5, with crun where it agrees) does one thing and skiff used to do
//! another: each test is named after the behaviour clients count on.

use std::process::{Command, Stdio};

use serde_json::json;

use crate::common::{require_root, Bundle};

/// runc's default "loopback" network and crun bring `lo` up in a new network namespace
/// (flags 0x9: IFF_UP | IFF_LOOPBACK), so services on 127.0.0.1 work under `ctr run`.
#[test]
fn loopback_is_up_in_a_new_network_namespace() {
    require_root!();
    let mut b = Bundle::new("lo-up");
    b.sh("cat /sys/class/net/lo/flags; nc -l -p 4000 >/dev/null & sleep 0.2; echo x | nc 127.0.0.1 4000 && echo connected");
    let out = b.run_ok();
    assert_eq!(out, "0x9\nconnected\n");
}

/// A joined network namespace is the owner's business: its `lo` is left as it is.
#[test]
fn loopback_of_a_joined_network_namespace_is_left_alone() {
    require_root!();
    let mut holder = Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = holder.id();
    let path = format!("/proc/{pid}/ns/net");
    assert!(crate::common::wait_for(5000, || std::fs::read_link(&path)
        .is_ok_and(
            |l| l != std::fs::read_link("/proc/self/ns/net").unwrap()
        )));
    let mut b = Bundle::new("lo-joined");
    b.without_namespace("network")
        .add_namespace(json!({"type": "network", "path": path}));
    // sysfs shows the devices of the namespace it was mounted in, which is not ours here.
    b.sh("ip -o link show lo");
    let out = b.run();
    let _ = holder.kill();
    let _ = holder.wait();
    let (code, out, err) = out;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("lo: <LOOPBACK> "), "lo was brought up: {out}");
}

/// A user namespace without a cgroup namespace of its own may not mount cgroup2 (EPERM):
/// runc binds the hierarchy instead (its own cgroup namespace is the runtime's, so that is
/// the view a cgroup2 mount would give), and so does skiff, read-only as the mount asks.
/// (crun binds the container's own cgroup.)
#[test]
fn a_cgroup_mount_in_a_user_namespace_without_a_cgroup_namespace_binds_the_hierarchy() {
    require_root!();
    let mut b = Bundle::new("userns-cgroup-bind");
    b.without_namespace("cgroup");
    b.add_namespace(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let own = crate::common::cgroup_base();
    let ours = format!("/sys/fs/cgroup/{}/{}", own.trim_matches('/'), b.id);
    b.sh(&format!(
        "head -n1 {ours}/cgroup.procs; grep ' /sys/fs/cgroup ' /proc/self/mountinfo; \
          touch /sys/fs/cgroup/x 2>/dev/null || echo read-only"
    ));
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(
        lines[0], "1",
        "the container's init is in its cgroup: {out}"
    );
    let root = lines[1].split_whitespace().nth(3).unwrap();
    assert_eq!(root, "/", "the hierarchy is bound from its root: {out}");
    assert!(lines[1].contains(" cgroup2 "), "{out}");
    assert_eq!(lines[2], "read-only");
}

/// process.scheduler.flags take the runtime-spec's names (SCHED_FLAG_RESET_ON_FORK,
/// SCHED_FLAG_DL_OVERRUN, ...), and the flag reaches the kernel: the container process's
/// policy carries SCHED_RESET_ON_FORK, as `chrt -p` shows from the host.
#[test]
fn scheduler_flags_use_the_specs_names_and_are_applied() {
    require_root!();
    let mut b = Bundle::new("sched-flags");
    b.config["process"]["scheduler"] =
        json!({"policy": "SCHED_BATCH", "nice": 3, "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
    b.args(&["sleep", "30"]);
    b.create_ok();
    let pid = b.state()["pid"].to_string();
    let out = Command::new("chrt").args(["-p", &pid]).output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.contains("SCHED_BATCH|SCHED_RESET_ON_FORK"), "{out}");

    let mut bad = Bundle::new("sched-flags-bad");
    bad.config["process"]["scheduler"] =
        json!({"policy": "SCHED_OTHER", "flags": ["SCHED_RESET_ON_FORK_TYPO"]});
    bad.args(&["true"]);
    let out = bad.create();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("process.scheduler.flags[0]") && err.contains("SCHED_FLAG_DL_OVERRUN"),
        "{err}"
    );
}

/// A `--log` that cannot be opened stops the command before it does anything (runc exits 1
/// with the open error): a client reads errors from that file, so a container must not start
/// without it.
#[test]
fn an_unopenable_log_file_fails_before_anything_is_made() {
    require_root!();
    let mut b = Bundle::new("log-unopenable");
    b.sh("touch /tmp/ran; sleep 30");
    let bundle = b.dir.to_str().unwrap().to_string();
    let log = b.dir.join("no-such-dir/log.json");
    let out = b.skiff(&[
        "--log",
        log.to_str().unwrap(),
        "run",
        "--detach",
        "--bundle",
        &bundle,
        &b.id,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-dir/log.json") && err.contains("No such file"),
        "{err}"
    );
    let state = b.skiff(&["state", &b.id]);
    assert!(!state.status.success(), "a container was made");
}

/// A `cgroup` mount's data options go to the kernel with the mount, as runc passes them:
/// one the kernel does not know fails `create` (it used to be dropped without a word).
#[test]
fn cgroup_mount_data_options_reach_the_kernel() {
    require_root!();
    let mut b = Bundle::new("cgroup-data");
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    let cg = mounts.iter_mut().find(|m| m["type"] == "cgroup").unwrap();
    cg["options"] = json!([
        "nosuid",
        "noexec",
        "nodev",
        "relatime",
        "ro",
        "no_such_cgroup2_option"
    ]);
    b.args(&["true"]);
    let out = b.create();
    assert!(
        !out.status.success(),
        "an unknown cgroup2 option was dropped"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("on /sys/fs/cgroup") && err.contains("mounting cgroup2"),
        "{err}"
    );
    // A known option is accepted (in the container's own cgroup namespace it changes nothing
    // on the host: the kernel applies cgroup2 root flags only from the initial namespace).
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    let cg = mounts.iter_mut().find(|m| m["type"] == "cgroup").unwrap();
    cg["options"] = json!([
        "nosuid",
        "noexec",
        "nodev",
        "relatime",
        "ro",
        "memory_recursiveprot"
    ]);
    b.sh("grep -c ' /sys/fs/cgroup ' /proc/self/mountinfo");
    assert_eq!(b.run_ok(), "1\n");
}

/// With --no-pivot the host's mounts stay in the container's mount namespace under the
/// chroot. Left there, the host's full /proc would let a nested user namespace in the
/// container mount a fresh procfs (the kernel's "mount too revealing" check passes because a
/// fully visible procfs already exists in the namespace) — and write the host's
/// /proc/sysrq-trigger. runc detaches them first; so does skiff. The test only mounts.
#[test]
fn no_pivot_leaves_no_host_procfs_for_a_nested_user_namespace_to_mount() {
    require_root!();
    let mut b = Bundle::new("nopivot-proc");
    std::os::unix::fs::symlink("busybox", b.rootfs().join("bin/unshare")).unwrap();
    // Mapping uid 0 into a new user namespace takes CAP_SETFCAP (Linux 5.12), which
    // Docker's default set has and runc's spec template does not.
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SETFCAP"));
    }
    b.sh(
        "unshare -mrpf sh -c 'mount -t proc none /proc && echo MOUNTED || echo REFUSED' 2>&1; \
          unshare -mrnf sh -c 'mount -t sysfs none /sys && echo MOUNTED || echo REFUSED' 2>&1",
    );
    let bundle = b.dir.to_str().unwrap().to_string();
    let out = b.skiff(&["run", "--no-pivot", "--bundle", &bundle, &b.id]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("REFUSED").count(), 2, "{stdout}");
    assert!(!stdout.contains("MOUNTED"), "{stdout}");
}

/// maskedPaths and readonlyPaths are resolved inside the container with symlinks followed,
/// as runc resolves them: a self-looping symlink fails `create` (runc: ELOOP) instead of
/// being left unmasked, and a symlink to a file masks that file.
#[test]
fn masked_paths_follow_symlinks_in_the_container_and_a_loop_fails_create() {
    require_root!();
    let mut b = Bundle::new("mask-loop");
    std::os::unix::fs::symlink("/loop", b.rootfs().join("loop")).unwrap();
    b.config["linux"]["maskedPaths"] = json!(["/loop"]);
    b.args(&["true"]);
    let out = b.create();
    assert!(!out.status.success(), "a looping masked path was skipped");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/loop") && err.contains("symbolic links"),
        "{err}"
    );

    let mut b = Bundle::new("mask-link");
    std::fs::write(b.rootfs().join("etc/secret"), "secret\n").unwrap();
    std::os::unix::fs::symlink("/etc/secret", b.rootfs().join("etc/link")).unwrap();
    b.config["linux"]["maskedPaths"] = json!(["/etc/link"]);
    b.sh("cat /etc/secret; echo end");
    assert_eq!(b.run_ok(), "end\n");

    let mut b = Bundle::new("ro-loop");
    std::os::unix::fs::symlink("/loop", b.rootfs().join("loop")).unwrap();
    b.config["linux"]["readonlyPaths"] = json!(["/loop"]);
    b.args(&["true"]);
    assert!(
        !b.create().status.success(),
        "a looping read-only path was skipped"
    );
}

/// `--debug` writes a record for each step of run, create and exec to the log, text or
/// JSON (runc does; crun writes none), with the time each step took.
#[test]
fn debug_logs_each_step_of_run_create_and_exec() {
    require_root!();
    for format in ["text", "json"] {
        let mut b = Bundle::new("debug-steps");
        b.args(&["sleep", "30"]);
        let bundle = b.dir.to_str().unwrap().to_string();
        let log = b.dir.join("debug.log");
        let log_s = log.to_str().unwrap().to_string();
        let g = ["--debug", "--log", &log_s, "--log-format", format];
        let with = |args: &[&str]| {
            let mut v: Vec<&str> = g.to_vec();
            v.extend(args);
            let out = b.skiff(&v);
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        with(&["create", "--bundle", &bundle, &b.id]);
        with(&["start", &b.id]);
        with(&["exec", &b.id, "true"]);
        with(&["kill", &b.id, "KILL"]);
        let text = std::fs::read_to_string(&log).unwrap();
        for step in [
            "create: bundle loaded and validated",
            "create: cgroup made",
            "init: mounts and devices made",
            "init: rootfs entered (pivot_root)",
            "init: identity switched, program found",
            "create: the init is ready",
            "init: started",
            "exec: namespaces joined",
        ] {
            let line = text.lines().find(|l| l.contains(step));
            let line = line.unwrap_or_else(|| panic!("{format}: no {step:?} in\n{text}"));
            assert!(line.contains("debug") && line.contains(" ms)"), "{line}");
            if format == "json" {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["level"], "debug", "{line}");
            }
        }
        // Without --debug: nothing at debug level.
        let quiet = b.dir.join("quiet.log");
        let mut b2 = Bundle::new("debug-quiet");
        b2.args(&["true"]);
        let bundle2 = b2.dir.to_str().unwrap().to_string();
        let out = b2.skiff(&[
            "--log",
            quiet.to_str().unwrap(),
            "run",
            "--bundle",
            &bundle2,
            &b2.id,
        ]);
        assert!(out.status.success());
        assert_eq!(std::fs::read_to_string(&quiet).unwrap_or_default(), "");
    }
}

/// `update` of the device rules never leaves a window in which an allowed device is denied:
/// the new program is attached before the old one goes (BPF_F_REPLACE, or attach then
/// detach). The container opens /dev/fuse (not one of the devices every container may use,
/// so the rules decide; with `true`, as a failed redirection on the special builtin `:` would
/// end the shell) in a tight loop and records any refusal while the rules are replaced
/// again and again.
#[test]
fn updating_device_rules_never_denies_an_allowed_device_in_between() {
    require_root!();
    let mut b = Bundle::new("dev-update-window");
    b.config["root"]["readonly"] = json!(false);
    b.config["linux"]["devices"] =
        json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}]);
    let fuse = json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"});
    b.config["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}, fuse]);
    b.sh("while :; do true < /dev/fuse || echo denied >> /tmp/refused; echo x > /tmp/alive; done");
    b.start_ok();
    let alive = b.rootfs().join("tmp/alive");
    assert!(crate::common::wait_for(30_000, || alive.exists()));
    let file = b.dir.join("res.json");
    for i in 0..40 {
        // A different program each time (the minor of an extra allowed device varies), all
        // allowing /dev/fuse.
        let rules = json!({"devices": [
            {"allow": false, "access": "rwm"},
            fuse,
            {"allow": true, "type": "c", "major": 10, "minor": 200 + (i % 7), "access": "rw"}
        ]});
        std::fs::write(&file, rules.to_string()).unwrap();
        b.ok(&["update", "--resources", file.to_str().unwrap(), &b.id]);
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let refused = b.rootfs().join("tmp/refused");
    let seen = std::fs::read_to_string(&refused).unwrap_or_default();
    assert_eq!(seen, "", "/dev/fuse was denied during an update");
    // Control: the loop does notice a denial.
    std::fs::write(
        &file,
        json!({"devices": [{"allow": false, "access": "rwm"}]}).to_string(),
    )
    .unwrap();
    b.ok(&["update", "--resources", file.to_str().unwrap(), &b.id]);
    assert!(
        crate::common::wait_for(30_000, || refused.exists()),
        "the probe cannot see a denial"
    );
}

/// Without a cgroup namespace of its own, a container's `cgroup` mount shows the whole
/// hierarchy (as a fresh cgroup2 mount would) through a bind: a fresh cgroup2 mount from the
/// initial cgroup namespace would re-apply the hierarchy's root flags (`nsdelegate`,
/// `memory_recursiveprot`...) from its options, for the whole host. runc does that; skiff
/// leaves the host's flags alone (README "Differences from runc").
#[test]
fn a_cgroup_mount_without_a_cgroup_namespace_never_changes_the_hosts_cgroup2_flags() {
    require_root!();
    let flags = || {
        crate::common::mounts()
            .lines()
            .find(|l| l.contains(" - cgroup2 "))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
            .unwrap()
    };
    let before = flags();
    let mut b = Bundle::new("cgroup-no-ns");
    b.without_namespace("cgroup");
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    let cg = mounts.iter_mut().find(|m| m["type"] == "cgroup").unwrap();
    let toggled = if before.contains("nsdelegate") {
        "rw"
    } else {
        "nsdelegate"
    };
    cg["options"] = json!(["nosuid", "noexec", "nodev", "relatime", "ro", toggled]);
    let own = crate::common::cgroup_base();
    let path = format!("/sys/fs/cgroup/{}/{}", own.trim_matches('/'), b.id);
    b.sh(&format!("test -f {path}/cgroup.procs && echo whole-hierarchy; grep -c ' /sys/fs/cgroup ' /proc/self/mountinfo"));
    assert_eq!(b.run_ok(), "whole-hierarchy\n1\n");
    assert_eq!(flags(), before, "the host's cgroup2 root flags changed");
}

/// Hooks in the runtime's namespaces run from the bundle directory (runc works from there),
/// and their state on stdin has no `annotations` when the config has none and no `pid` once
/// the container has stopped, as runc writes it.
#[test]
fn runtime_hooks_run_from_the_bundle_with_runcs_state_fields() {
    require_root!();
    let mut b = Bundle::new("hook-cwd");
    let dir = b.dir.to_str().unwrap().to_string();
    let hook = |kind: &str| {
        json!({"path": crate::common::busybox().unwrap(),
               "args": ["sh", "-c", format!("pwd > {dir}/{kind}.cwd; cat > {dir}/{kind}.state")]})
    };
    b.config["hooks"] = json!({"prestart": [hook("prestart")], "poststop": [hook("poststop")]});
    b.config.as_object_mut().unwrap().remove("annotations");
    b.args(&["true"]);
    b.run_ok();
    let canon = std::fs::canonicalize(&b.dir).unwrap();
    for kind in ["prestart", "poststop"] {
        let cwd = std::fs::read_to_string(b.dir.join(format!("{kind}.cwd"))).unwrap();
        assert_eq!(cwd.trim(), canon.to_str().unwrap(), "{kind}");
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(b.dir.join(format!("{kind}.state"))).unwrap())
                .unwrap();
        assert!(state.get("annotations").is_none(), "{kind}: {state}");
        assert_eq!(
            state.get("pid").is_some(),
            kind == "prestart",
            "{kind}: {state}"
        );
    }
}

/// A hook's environment is exactly its `env`, in the config's order (Go's exec keeps it;
/// Rust's std would sort it); a createContainer hook without one gets the container
/// process's `env` as the config lists it (runc runs it from its init).
#[test]
fn hook_environments_keep_the_configs_order() {
    require_root!();
    let mut b = Bundle::new("hook-env-order");
    let bb = crate::common::busybox().unwrap();
    b.config["process"]["env"] = json!(["ZED=1", "PATH=/bin", "ALPHA=2"]);
    b.config["hooks"] = json!({
        "prestart": [{"path": bb, "args": ["env"], "env": ["B=2", "A=1", "C=3"]}],
        "createContainer": [{"path": bb, "args": ["env"]}]
    });
    // prestart's stdout goes to skiff's stderr (stdout may be a client's data channel).
    b.args(&["true"]);
    let (code, _out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("B=2\nA=1\nC=3\n"), "{err}");
    assert!(err.contains("ZED=1\nPATH=/bin\nALPHA=2\n"), "{err}");
}

/// runc reopens the init's stdio that is the host's /dev/null on the container's own
/// /dev/null after pivot_root (reOpenDevNull): podman and shims give a detached container
/// /dev/null as stdin, and CRIU cannot checkpoint an fd of a mount the container does not
/// have. The fd's mount (fdinfo mnt_id) is then the container's /dev.
#[test]
fn stdio_that_is_dev_null_is_the_containers_dev_null() {
    require_root!();
    let mut b = Bundle::new("devnull-stdio");
    b.sh("grep mnt_id /proc/self/fdinfo/0; awk '$5 == \"/dev\" { print $1 }' /proc/self/mountinfo");
    let b_dir = b.dir.to_str().unwrap().to_string();
    b.write_config();
    let out = b
        .command(&["run", "--bundle", &b_dir, &b.id])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = text.lines();
    let fd0 = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    let dev = lines.next().unwrap_or_default().trim().to_string();
    assert!(
        !dev.is_empty() && fd0 == dev,
        "stdin's mount {fd0:?}, the container's /dev {dev:?}"
    );
}
