//! Behaviours runc's own integration tests check for, beyond the spec: each test names the
//! runc bats test it mirrors.

use serde_json::json;

use crate::common::{require_root, text, wait_for, Bundle};

fn started(name: &str, args: &[&str]) -> Bundle {
    let mut b = Bundle::new(name);
    b.args(args);
    b.create_ok();
    b.ok(&["start", &b.id]);
    b
}

/// tty.bats: the terminal passes "\n" through untranslated (no ONLCR).
#[test]
fn terminal_output_has_no_carriage_returns() {
    require_root!();
    let mut b = Bundle::new("onlcr");
    b.config["process"]["terminal"] = json!(true);
    b.sh("echo one; echo two");
    // The bytes exactly as the terminal delivered them.
    let got = b.run_with_console();
    assert_eq!(got, "one\ntwo\n");
}

/// tty.bats "runc exec [tty ptsname]": an exec'd terminal next to the init's one.
#[test]
fn exec_tty_in_a_container_with_a_terminal() {
    require_root!();
    let mut b = Bundle::new("exec-tty2");
    b.config["process"]["terminal"] = json!(true);
    b.args(&["sleep", "30"]);
    let _receiver = b.start_with_console();
    let mut c = b.command(&["exec", "-t", &b.id, "tty"]);
    let out = crate::common::output_via_files(c.stdin(std::process::Stdio::null()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "/dev/pts/1");
}

/// tty.bats "runc run [tty owner] ({u,g}id != 0)": the user owns its terminal.
#[test]
fn a_non_root_process_owns_its_terminal() {
    require_root!();
    let mut b = Bundle::new("tty-owner");
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.sh("stat -c %u $(tty)");
    b.write_config();
    let bundle = b.dir.to_str().unwrap().to_string();
    let mut c = b.command(&["run", "--bundle", &bundle, &b.id]);
    let out = crate::common::output_via_files(c.stdin(std::process::Stdio::null()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "1000");
}

/// kill.bats "kill detached busybox": signal 0 probes; --all of a stopped container is fine.
#[test]
fn kill_zero_and_kill_all_of_a_stopped_container() {
    require_root!();
    let b = started("kill0", &["sleep", "30"]);
    b.ok(&["kill", &b.id, "0"]);
    assert_eq!(b.status(), "running");
    b.ok(&["kill", &b.id, "KILL"]);
    assert!(wait_for(5000, || b.status() == "stopped"));
    let out = b.skiff(&["kill", &b.id, "0"]);
    assert!(text(&out.stderr).contains("container not running"));
    b.ok(&["kill", "--all", &b.id, "0"]);
}

/// list.bats: `list --format json` keeps the state's field order.
#[test]
fn list_json_fields_in_runc_order() {
    require_root!();
    let b = started("listorder", &["sleep", "30"]);
    let out = b.ok(&["list", "--format", "json"]);
    let keys: Vec<&str> = [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
    ]
    .into_iter()
    .collect();
    let pos: Vec<usize> = keys
        .iter()
        .map(|k| out.find(&format!("\"{k}\"")).unwrap())
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{out}");
}

/// capabilities.bats "runc run with unknown capability" expects runc's warning and a
/// running container; config.md says a capability that "cannot be mapped to a relevant
/// kernel interface ... MUST cause the runtime to fail" — skiff follows the spec (see
/// conformance/README.md) and names the field.
#[test]
fn an_unknown_capability_fails_naming_the_field() {
    require_root!();
    let mut b = Bundle::new("unknown-cap");
    b.config["process"]["capabilities"]["bounding"] = json!(["CAP_UNKNOWN", "CAP_KILL"]);
    b.args(&["true"]);
    let (code, _, err) = b.run();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("process.capabilities.bounding") && err.contains("CAP_UNKNOWN"),
        "{err}"
    );
}

/// An ambient capability missing from the inheritable set cannot be raised: runc 1.1 skips it
/// without a word (crun too); a warning would land in the container's own stderr. It is in
/// the --debug log.
#[test]
fn ambient_without_inheritable_is_skipped_silently() {
    require_root!();
    let mut b = Bundle::new("ambient-warn");
    b.config["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL"]);
    b.config["process"]["capabilities"]["ambient"] = json!(["CAP_KILL", "CAP_CHOWN"]);
    b.config["process"]["capabilities"]["permitted"] = json!(["CAP_KILL", "CAP_CHOWN"]);
    b.config["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_CHOWN"]);
    b.config["process"]["capabilities"]["effective"] = json!(["CAP_KILL", "CAP_CHOWN"]);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.sh("grep CapAmb /proc/self/status");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "", "nothing but the container's own stderr");
    assert!(out.contains("CapAmb:\t0000000000000020"), "{out}");
    let log = b.dir.join("debug.log");
    let bundle = b.dir.to_str().unwrap();
    let out = b.skiff(&[
        "--debug",
        "--log",
        log.to_str().unwrap(),
        "run",
        "--bundle",
        bundle,
        &b.id,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("ambient capability CAP_CHOWN"), "{log}");
}

/// hooks.bats "startContainer hook should inherit process environment".
#[test]
fn start_container_hooks_get_the_process_env() {
    require_root!();
    let mut b = Bundle::new("sc-env");
    b.config["root"]["readonly"] = json!(false);
    b.config["process"]["env"] = json!(["PATH=/bin", "ONE=two"]);
    b.config["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo $ONE > /hook-env"]}]});
    b.args(&["true"]);
    b.run_ok();
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("hook-env")).unwrap(),
        "two\n"
    );
}

/// env.bats "env var override is set only once" and "empty HOME env var is overridden".
#[test]
fn env_is_deduplicated_and_an_empty_home_replaced() {
    require_root!();
    let mut b = Bundle::new("env-dedup");
    b.config["process"]["env"] = json!(["PATH=/bin", "ONE=one", "HOME=", "ONE=two"]);
    b.sh("env | grep -E '^(ONE|HOME)=' | sort | tr '\\n' ' '");
    assert_eq!(b.run_ok(), "HOME=/root ONE=two ");
}

/// cwd.bats "runc exec --user with no access to cwd".
#[test]
fn a_cwd_only_root_may_enter_still_works_for_another_user() {
    require_root!();
    let mut b = Bundle::new("cwd-priv");
    std::fs::create_dir_all(b.rootfs().join("root")).unwrap();
    std::fs::set_permissions(
        b.rootfs().join("root"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    b.config["process"]["cwd"] = json!("/root");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.sh("pwd");
    assert_eq!(b.run_ok().trim(), "/root");
}

/// run.bats "[joining existing container namespaces]": `"path": ""` is a new namespace.
#[test]
fn an_empty_namespace_path_means_a_new_namespace() {
    require_root!();
    let mut b = Bundle::new("ns-empty-path");
    b.config["linux"]["namespaces"] =
        json!([{"type": "mount"}, {"type": "pid", "path": ""}, {"type": "uts", "path": ""}]);
    b.sh("echo $$");
    assert_eq!(b.run_ok().trim(), "1");
}

/// timens.bats "runc run [simple timens + userns]".
#[test]
fn time_offsets_with_a_user_namespace() {
    require_root!();
    let mut b = Bundle::new("timens-userns");
    let mut nss = b.config["linux"]["namespaces"].as_array().unwrap().clone();
    nss.push(json!({"type": "time"}));
    nss.push(json!({"type": "user"}));
    b.config["linux"]["namespaces"] = json!(nss);
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 7881, "nanosecs": 2802}});
    b.sh("cat /proc/self/timens_offsets");
    let out = b.run_ok();
    assert!(out.contains("monotonic") && out.contains("7881"), "{out}");
}

/// run.bats "runc run [execve error]": one plain line, Go's wording.
#[test]
fn an_exec_failure_after_start_is_one_plain_line() {
    require_root!();
    let mut b = Bundle::new("execve-error");
    b.config["root"]["readonly"] = json!(false);
    // Found by the lookup at create, but not executable as a program: execve fails.
    std::fs::write(b.rootfs().join("run.sh"), "#!/nonexistent\n").unwrap();
    std::fs::set_permissions(
        b.rootfs().join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    b.args(&["/run.sh"]);
    let (code, _, err) = b.run();
    assert_ne!(code, 0);
    assert_eq!(
        err.trim(),
        "exec /run.sh: no such file or directory",
        "{err}"
    );
}

/// cgroups.bats "runc exec --ignore-paused": the exec'd process is born frozen and runs
/// once the container is resumed — resume must not wait for exec's lock.
#[test]
fn exec_ignore_paused_runs_after_resume() {
    require_root!();
    let b = started("exec-paused", &["sleep", "30"]);
    b.ok(&["pause", &b.id]);
    assert_eq!(b.status(), "paused");
    let mut c = b.command(&["exec", "--ignore-paused", &b.id, "echo", "ok"]);
    let exec = std::thread::spawn(move || {
        crate::common::output_via_files(c.stdin(std::process::Stdio::null()))
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    b.ok(&["resume", &b.id]);
    let out = exec.join().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok\n");
}
