//! The six hook kinds: when they run, in which namespace, what they read on stdin, and what
//! their failure or timeout does.

use serde_json::json;

use crate::common::{host_ns, require_root, text, wait_for, write_script, Bundle};

/// A host-side hook script that appends "<name> <mnt ns> <stdin>" to `log`.
fn host_hook(b: &Bundle, name: &str, log: &std::path::Path, extra: &str) -> serde_json::Value {
    let path = b.dir.join(format!("hook-{name}.sh"));
    write_script(
        &path,
        &format!(
            "#!/bin/sh\nin=$(cat)\necho \"{name} $(readlink /proc/self/ns/mnt) $in\" >> {}\n{extra}\n",
            log.display()
        ),
    );
    json!({"path": path, "args": [format!("hook-{name}"), "a1"], "env": ["HOOKENV=x"]})
}

#[test]
fn all_six_hooks_run_in_order_in_their_namespaces_with_the_state_on_stdin() {
    require_root!();
    let mut b = Bundle::new("hooks");
    let log = b.dir.join("hooks.log");
    b.config["root"]["readonly"] = json!(false);
    // startContainer's path resolves inside the container: a busybox script in the rootfs.
    write_script(
        &b.rootfs().join("start-hook.sh"),
        "#!/bin/sh\nin=$(cat)\necho \"startContainer $(readlink /proc/self/ns/mnt) $in\" >> /start.log\n",
    );
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
        // The pid as seen where the hook runs (runtime-spec "State"): the container's own
        // for createContainer/startContainer, none once stopped.
        let want_pid = match kind {
            "createContainer" | "startContainer" => serde_json::json!(1),
            "poststop" => serde_json::Value::Null,
            _ => serde_json::json!(pid),
        };
        assert_eq!(state["pid"], want_pid, "{kind}");
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
        text(&out.stderr).contains("hook ran past specified timeout of 1.0s"),
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

/// A state JSON larger than a pipe (200 kB of annotations).
fn big_state(b: &mut Bundle) {
    b.config["annotations"] = json!({"big": "A".repeat(200_000)});
}

/// Issue 14, 3: the timeout covers writing the state to the hook's stdin. runc: "hook ran
/// past specified timeout"; skiff used to block on the pipe and succeed after 6 s.
#[test]
fn a_hook_timeout_holds_while_its_stdin_is_still_being_written() {
    require_root!();
    let mut b = Bundle::new("hook-bigstate");
    big_state(&mut b);
    b.config["hooks"] =
        json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "6"], "timeout": 1}]});
    b.args(&["true"]);
    let t = std::time::Instant::now();
    let (code, _, err) = b.run();
    assert_ne!(code, 0, "the hook outlived its timeout and run succeeded");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(4),
        "took {:?}",
        t.elapsed()
    );
    for want in [
        "error running hook #0",
        "createRuntime",
        "/bin/sleep",
        "hook ran past specified timeout of 1.0s",
    ] {
        assert!(err.contains(want), "{want:?} missing: {err}");
    }
}

/// A hook that never reads its stdin and never exits still gets its timeout, and what it
/// started in its process group is killed with it.
#[test]
fn a_hook_that_never_reads_stdin_is_killed_with_its_process_group_at_its_timeout() {
    require_root!();
    let mut b = Bundle::new("hook-noread");
    big_state(&mut b);
    let mark = format!("{}-hookchild", b.id);
    b.config["hooks"] = json!({"prestart": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", "sleep 3600 & sleep 3600; : \"$0\"", &mark],
        "timeout": 1
    }]});
    b.args(&["true"]);
    let dir = b.dir.to_str().unwrap().to_string();
    b.write_config();
    let out = crate::common::output_via_files_within(
        b.command(&["create", "--bundle", &dir, &b.id])
            .stdin(std::process::Stdio::null()),
        Some(std::time::Duration::from_secs(30)),
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("hook ran past specified timeout of 1.0s"),
        "{err}"
    );
    // The hook's shell had the mark as its $0; its background sleep is in its group.
    let shells = || crate::crash::processes_of(&mark);
    assert!(wait_for(2000, || shells().is_empty()), "{:?}", shells());
}

/// Issue 21: a hook without `env` gets the runtime's environment (runc: Go's exec.Cmd with
/// a nil Env); skiff gave it an empty one.
#[test]
fn a_hook_without_env_inherits_the_runtimes_environment() {
    require_root!();
    let mut b = Bundle::new("hook-env");
    let out = b.dir.join("hook-env.out");
    b.config["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo \"$SKIFF_IT_HOOK_ENV\" > {}", out.display())]
    }]});
    b.args(&["true"]);
    let dir = b.dir.to_str().unwrap().to_string();
    b.write_config();
    let res = crate::common::output_via_files(
        b.command(&["run", "--bundle", &dir, &b.id])
            .env("SKIFF_IT_HOOK_ENV", "from-the-runtime")
            .stdin(std::process::Stdio::null()),
    );
    assert!(res.status.success(), "{}", text(&res.stderr));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "from-the-runtime\n");
}

/// Issue 21: a createContainer hook with a relative path and relative file arguments runs
/// with the container's rootfs as its working directory (runc chdirs there before
/// pivot_root); skiff refused the relative path.
#[test]
fn a_create_container_hook_runs_from_the_rootfs_with_relative_path_and_args() {
    require_root!();
    let mut b = Bundle::new("hook-relative");
    b.config["root"]["readonly"] = json!(false);
    write_script(&b.rootfs().join("hook.sh"), "#!/bin/sh\npwd > \"$1\"\n");
    b.config["hooks"] =
        json!({"createContainer": [{"path": "hook.sh", "args": ["hook.sh", "where.txt"]}]});
    b.args(&["true"]);
    b.run_ok();
    let rootfs = std::fs::canonicalize(b.rootfs()).unwrap();
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("where.txt")).unwrap(),
        format!("{}\n", rootfs.display())
    );
}
