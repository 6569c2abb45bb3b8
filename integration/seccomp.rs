//! linux.seccomp applied to the container process: the configured errno comes back from a
//! blocked syscall, allowed ones work, with and without noNewPrivileges.

use serde_json::json;

use crate::common::{require_root, text, Bundle};

fn mkdir_blocked(errno: u32) -> serde_json::Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}]
    })
}

#[test]
fn a_blocked_syscall_returns_the_configured_errno() {
    require_root!();
    for nnp in [true, false] {
        let mut b = Bundle::new("seccomp-errno");
        b.config["linux"]["seccomp"] = mkdir_blocked(122); // EDQUOT: unmistakable
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.config["root"]["readonly"] = json!(false);
        b.sh("mkdir /tmp/x 2>&1; echo status=$?; echo ok > /tmp/y && cat /tmp/y; grep Seccomp: /proc/self/status");
        let out = b.run_ok();
        assert!(out.contains("Disk quota exceeded"), "nnp={nnp}: {out}");
        assert!(
            out.contains("status=1") && out.contains("ok\n"),
            "nnp={nnp}: {out}"
        );
        assert!(out.contains("Seccomp:\t2"), "filter mode not active: {out}");
    }
}

#[test]
fn docker_like_default_profile_blocks_mount_and_unshare() {
    require_root!();
    let profile: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/seccomp/testdata/docker-like.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut b = Bundle::new("seccomp-docker");
    b.config["linux"]["seccomp"] = profile;
    // CAP_SYS_ADMIN present, so only the filter can refuse mount/unshare.
    let all = json!(["CAP_SYS_ADMIN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"]);
    b.config["process"]["capabilities"] =
        json!({"bounding": all, "effective": all, "permitted": all});
    b.sh("mount -t tmpfs none /tmp 2>&1; echo mount=$?; echo hi; ls / >/dev/null && echo ls-ok");
    let out = b.run_ok();
    assert!(
        out.contains("permission denied") && out.contains("mount=1"),
        "{out}"
    );
    assert!(out.contains("hi\nls-ok"), "{out}");
    // Control: the same container without the filter may mount.
    b.config["linux"].as_object_mut().unwrap().remove("seccomp");
    let out = b.run_ok();
    assert!(out.contains("mount=0"), "{out}");
}

#[test]
fn an_invalid_profile_fails_create_naming_the_field() {
    require_root!();
    let mut b = Bundle::new("seccomp-bad");
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_BOGUS"});
    b.args(&["true"]);
    let out = b.create();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("linux.seccomp"),
        "{}",
        text(&out.stderr)
    );
}

/// As with runc, startContainer hooks run in the container after the filter is loaded:
/// a hook making a killed syscall dies of SIGSYS and `run` fails saying so.
#[test]
fn a_start_container_hook_runs_under_the_filter() {
    require_root!();
    for nnp in [true, false] {
        let mut b = Bundle::new("seccomp-hook");
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}]
        });
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]);
        b.config["hooks"] = json!({"startContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", "mkdir /tmp/from-hook"]}
        ]});
        b.args(&["true"]);
        let (code, _out, err) = b.run();
        assert_ne!(code, 0, "nnp={nnp}: the hook's mkdir was not killed");
        assert!(
            err.contains("startContainer") && err.contains("bad system call"),
            "nnp={nnp}: {err}"
        );
    }
}

/// Without noNewPrivileges the filter goes on before the user switch, so everything skiff
/// does after it must get through profiles that predate close_range and openat2 (older
/// Docker profiles, runtime-tools' default): those answer ENOSYS for them.
#[test]
fn an_early_filter_without_close_range_or_openat2_still_starts_and_execs() {
    require_root!();
    let mut profile: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/seccomp/testdata/docker-like.json"
        ))
        .unwrap(),
    )
    .unwrap();
    // The default errno stays EPERM: the -ENOSYS stub then answers for newer syscalls.
    profile.as_object_mut().unwrap().remove("defaultErrnoRet");
    for rule in profile["syscalls"].as_array_mut().unwrap() {
        let names = rule["names"].as_array_mut().unwrap();
        names.retain(|n| n != "close_range" && n != "openat2");
    }
    for nnp in [false, true] {
        let mut b = Bundle::new("seccomp-old-profile");
        b.config["linux"]["seccomp"] = profile.clone();
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.sh("echo started; sleep 30");
        b.start_ok();
        let out = b.ok(&["exec", &b.id, "sh", "-c", "echo exec-ok"]);
        assert!(out.contains("exec-ok"), "nnp={nnp}: {out}");
        assert_eq!(b.status(), "running", "nnp={nnp}");
    }
}
