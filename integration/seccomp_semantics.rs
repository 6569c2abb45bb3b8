//! Issue 13: how the rules of a profile combine is libseccomp's (runc's) business, and the
//! container must see what it would see under runc. Each test is one row of the issue's
//! table (allow-by-default profiles where skiff used to allow what runc denies); the syscall
//! is made from inside the container, by busybox or by a tiny static helper that makes a raw
//! syscall with the given arguments and prints the errno.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::common::{require_root, Bundle};

const SYS_MKDIR: u32 = 83;
const SYS_GETPGID: u32 = 121;

/// `rawsyscall NR [ARG...]`: numbers (0x.. allowed), or paths (starting with '/') passed as
/// pointers. Prints `ret=R errno=E`.
const HELPER: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long a[6] = {0};
    for (int i = 2; i < argc && i < 8; i++)
        a[i - 2] = argv[i][0] == '/' ? (long)argv[i] : strtol(argv[i], 0, 0);
    long r = syscall(strtol(argv[1], 0, 0), a[0], a[1], a[2], a[3], a[4], a[5]);
    printf("ret=%ld errno=%d\n", r, r == -1 ? errno : 0);
    return 0;
}
"#;

/// The helper, built once per test run with gcc (scripts/deps installs it and static glibc).
fn helper() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let src = dir.join("skiff-rawsyscall.c");
        let bin = dir.join(format!("skiff-rawsyscall-{}", std::process::id()));
        std::fs::write(&src, HELPER).unwrap();
        let out = Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(&bin)
            .arg(&src)
            .output()
            .expect("gcc (scripts/deps installs it)");
        assert!(
            out.status.success(),
            "building the raw-syscall helper: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
}

/// A bundle with `syscalls` under an allow-by-default profile and the helper in /bin.
fn bundle(name: &str, syscalls: Value) -> Bundle {
    let mut b = Bundle::new(name);
    b.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls});
    b.config["root"]["readonly"] = json!(false);
    std::fs::copy(helper(), b.rootfs().join("bin/rawsyscall")).unwrap();
    b
}

/// Runs `rawsyscall` once per argument list, returns the errno of each call.
fn errnos(b: &mut Bundle, calls: &[&str]) -> Vec<i32> {
    let script: Vec<String> = calls.iter().map(|c| format!("rawsyscall {c}")).collect();
    b.sh(&script.join("; "));
    let out = b.run_ok();
    let got: Vec<i32> = out
        .lines()
        .filter_map(|l| l.split("errno=").nth(1))
        .map(|e| e.trim().parse().unwrap())
        .collect();
    assert_eq!(got.len(), calls.len(), "{out}");
    got
}

/// `[mkdir,mkdirat]` ALLOW, then `[mkdir,mkdirat]` ERRNO: the first rule equals the default
/// action, runc drops it, so the second one applies.
#[test]
fn a_rule_equal_to_the_default_is_dropped() {
    require_root!();
    let mut b = bundle(
        "seccomp-sem-default",
        json!([
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
        ]),
    );
    b.sh("mkdir /tmp/x 2>&1; echo status=$?; rawsyscall 83 /tmp/y 0777");
    let out = b.run_ok();
    assert!(
        out.contains("Operation not permitted") && out.contains("status=1"),
        "{out}"
    );
    assert!(out.contains("errno=1\n"), "{out}");
    assert!(!b.rootfs().join("tmp/x").exists() && !b.rootfs().join("tmp/y").exists());
}

/// `mkdir` LOG if arg1 == 0777, then `[mkdir,mkdirat]` ERRNO: an unconditional rule
/// overrides the conditional ones of the same syscall, so mkdir(p, 0777) gets EPERM.
#[test]
fn an_unconditional_rule_overrides_conditional_ones() {
    require_root!();
    let mut b = bundle(
        "seccomp-sem-uncond",
        json!([
            {"names": ["mkdir"], "action": "SCMP_ACT_LOG",
             "args": [{"index": 1, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
        ]),
    );
    let got = errnos(
        &mut b,
        &[
            &format!("{SYS_MKDIR} /tmp/a 0777"),
            &format!("{SYS_MKDIR} /tmp/b 0755"),
        ],
    );
    assert_eq!(got, [libc::EPERM, libc::EPERM]);
    assert!(!b.rootfs().join("tmp/a").exists());
}

/// `getpgid` ALLOW if arg0 == 8, then `getpgid` ERRNO(77): the unconditional rule wins
/// even for getpgid(8).
#[test]
fn a_later_unconditional_rule_beats_an_earlier_conditional_one() {
    require_root!();
    let mut b = bundle(
        "seccomp-sem-later",
        json!([
            {"names": ["getpgid"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77},
        ]),
    );
    let got = errnos(
        &mut b,
        &[&format!("{SYS_GETPGID} 8"), &format!("{SYS_GETPGID} 0")],
    );
    assert_eq!(got, [77, 77]);
}

/// `getpgid` ERRNO(77) if (arg0 & 240) == 5: libseccomp masks the datum too, so the rule
/// reads (arg0 & 240) == (5 & 240) == 0 and getpgid(15) matches; getpgid(16) does not
/// (the kernel then answers ESRCH: no process 16 in the container's pid namespace).
#[test]
fn masked_eq_masks_the_datum_too() {
    require_root!();
    let mut b = bundle(
        "seccomp-sem-masked",
        json!([
            {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
             "args": [{"index": 0, "value": 240, "valueTwo": 5, "op": "SCMP_CMP_MASKED_EQ"}]},
        ]),
    );
    let got = errnos(
        &mut b,
        &[&format!("{SYS_GETPGID} 15"), &format!("{SYS_GETPGID} 16")],
    );
    assert_eq!(got, [77, libc::ESRCH]);
}
