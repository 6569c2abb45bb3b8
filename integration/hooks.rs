//! The six hook kinds: when they run, in which namespace, what they read on stdin, and what
//! their failure or timeout does.

use serde_json::json;

use crate::common::{host_ns, require_root, text, wait_for, Bundle};

/// A host-side hook script that appends "<name> <mnt ns> <stdin>" to `log`.
fn host_hook(b: &Bundle, name: &str, log: &std::path::Path, extra: &str) -> serde_json::Value {
    let path = b.dir.join(format!("hook-{name}.sh"));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nin=$(cat)\necho \"{name} $(readlink /proc/self/ns/mnt) $in\" >> {}\n{extra}\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    json!({"path": path, "args": [format!("hook-{name}"), "a1"], "env": ["HOOKENV=x"]})
}

#[test]
fn all_six_hooks_run_in_order_in_their_namespaces_with_the_state_on_stdin() {
    require_root!();
    let mut b = Bundle::new("hooks");
    let log = b.dir.join("hooks.log");
    b.config["root"]["readonly"] = json!(false);
    // startContainer's path resolves inside the container: a busybox script in the rootfs.
    std::fs::write(
        b.rootfs().join("start-hook.sh"),
        "#!/bin/sh\nin=$(cat)\necho \"startContainer $(readlink /proc/self/ns/mnt) $in\" >> /start.log\n",
    )
    .unwrap();
    std::fs::set_permissions(
        b.rootfs().join("start-hook.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    b.config["hooks"] = json!({
        "prestart": [host_hook(&b, "prestart", &log, "")],
        "createRuntime": [host_hook(&b, "createRuntime", &log, "")],
        "createContainer": [host_hook(&b, "createContainer", &log, "")],
        "startContainer": [{"path": "/start-hook.sh"}],
        "poststart": [host_hook(&b, "poststart", &log, "")],
        "poststop": [host_hook(&b, "poststop", &log, "")],
    });
    b.args(&["sleep", "0.2"]);
    b.create_ok();
    let pid = b.state()["pid"].as_i64().unwrap();
    let container_mnt = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    let container_mnt = container_mnt.to_str().unwrap();
    let lines = || std::fs::read_to_string(&log).unwrap_or_default();
    let kinds = |s: &str| {
        s.lines()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds(&lines()),
        ["prestart", "createRuntime", "createContainer"],
        "{}",
        lines()
    );
    b.ok(&["start", &b.id]);
    assert_eq!(
        kinds(&lines()),
        ["prestart", "createRuntime", "createContainer", "poststart"]
    );
    assert!(wait_for(5000, || b.status() == "stopped"));
    b.ok(&["delete", &b.id]);
    let all = lines();
    assert_eq!(kinds(&all).last().unwrap(), "poststop");
    let start = std::fs::read_to_string(b.rootfs().join("start.log")).unwrap();
    for line in all.lines().chain(start.lines()) {
        let mut f = line.splitn(3, ' ');
        let (kind, mnt, state) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let state: serde_json::Value =
            serde_json::from_str(state).unwrap_or_else(|e| panic!("{kind}: {e}: {state}"));
        assert_eq!(state["id"], b.id.as_str(), "{kind}");
        assert_eq!(state["bundle"], b.dir.to_str().unwrap(), "{kind}");
        assert_eq!(state["pid"], pid, "{kind}");
        let want_status = match kind {
            "prestart" | "createRuntime" | "createContainer" => "creating",
            "startContainer" => "created",
            "poststart" => "running",
            _ => "stopped",
        };
        assert_eq!(state["status"], want_status, "{kind}");
        match kind {
            "createContainer" | "startContainer" => {
                assert_eq!(mnt, container_mnt, "{kind} not in the container's mount ns")
            }
            _ => assert_eq!(mnt, host_ns("mnt"), "{kind} not in the runtime's mount ns"),
        }
    }
}

#[test]
fn failing_creation_hooks_fail_create_and_leave_nothing() {
    require_root!();
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let mut b = Bundle::new("hookfail");
        b.config["hooks"] = json!({kind: [{"path": "/bin/true"}, {"path": "/bin/false"}]});
        b.args(&["true"]);
        let out = b.create();
        assert!(!out.status.success(), "{kind} failure did not fail create");
        let err = text(&out.stderr);
        assert!(err.contains(&format!("hooks.{kind}[1]")), "{kind}: {err}");
    }
}

#[test]
fn a_hanging_hook_is_killed_at_its_timeout() {
    require_root!();
    let mut b = Bundle::new("hooktimeout");
    b.config["hooks"] =
        json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    b.args(&["true"]);
    let t = std::time::Instant::now();
    let out = b.create();
    assert!(!out.status.success());
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    assert!(
        text(&out.stderr).contains("timed out"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn poststart_failure_stops_the_container_and_poststop_failure_only_warns() {
    require_root!();
    let mut b = Bundle::new("postfail");
    b.config["hooks"] =
        json!({"poststart": [{"path": "/bin/false"}], "poststop": [{"path": "/bin/false"}]});
    b.args(&["sleep", "30"]);
    b.create_ok();
    let out = b.skiff(&["start", &b.id]);
    assert!(
        !out.status.success(),
        "a failing poststart hook must fail start (runtime-spec 1.3)"
    );
    // "... stop the container, and continue the lifecycle at step 12": destroyed, with the
    // poststop hooks run (their failure only a warning).
    let err = text(&out.stderr);
    assert!(err.contains("hooks.poststart[0]"), "{err}");
    assert!(
        err.contains("warning") && err.contains("hooks.poststop[0]"),
        "{err}"
    );
    let st = b.skiff(&["state", &b.id]);
    assert!(
        text(&st.stderr).contains("does not exist"),
        "container not destroyed"
    );
}

#[test]
fn hook_args_and_env_are_exactly_the_configured_ones() {
    require_root!();
    let mut b = Bundle::new("hookenv");
    let out = b.dir.join("env.out");
    // busybox picks its applet from argv[0]: "sh" runs only if args[0] reached execve.
    let script = format!("echo \"$1 $HOOKENV ${{HOME:-nohome}}\" > {}", out.display());
    b.config["hooks"] = json!({"createRuntime": [{
        "path": crate::common::busybox().unwrap(),
        "args": ["sh", "-c", script, "zero", "first"],
        "env": ["HOOKENV=set"]
    }]});
    b.args(&["true"]);
    b.create_ok();
    let got = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        got, "first set nohome\n",
        "the hook saw the runtime's environment or wrong args"
    );
}
