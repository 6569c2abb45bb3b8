//! What skiff itself does under the container's seccomp filter: nothing it decides (program
//! lookup, cwd check, fd bookkeeping, /proc) may depend on a syscall the profile refuses.
//! After the filter skiff makes only capset (without noNewPrivileges), the write of its
//! verdict to `start` (create) or its Ready message (exec), and execve (src/process/tail.rs).

use serde_json::{json, Value};

use crate::common::{require_root, Bundle};

const ARCHES: [&str; 3] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];

/// Default allow, one syscall refused with EPERM.
fn denying(name: &str) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ARCHES,
        "syscalls": [{"names": [name], "action": "SCMP_ACT_ERRNO"}]
    })
}

/// glibc's faccessat(..., AT_EACCESS) is faccessat2: runc prints `hi` with this profile (its
/// lookup falls back on EPERM); skiff looks the program up before the filter is on.
#[test]
fn a_profile_refusing_faccessat2_still_finds_the_program() {
    require_root!();
    for nnp in [false, true] {
        let mut b = Bundle::new("seccomp-faccessat2");
        b.config["linux"]["seccomp"] = denying("faccessat2");
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.args(&["sh", "-c", "echo hi"]);
        let (code, out, err) = b.run();
        assert_eq!((code, out.as_str()), (0, "hi\n"), "nnp={nnp}: {err}");
    }
}

/// The cwd is entered and checked (getcwd) before the filter: crun runs this, and so do we.
#[test]
fn a_profile_refusing_getcwd_still_gets_its_cwd() {
    require_root!();
    for nnp in [false, true] {
        let mut b = Bundle::new("seccomp-getcwd");
        b.config["linux"]["seccomp"] = denying("getcwd");
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.config["process"]["cwd"] = json!("/tmp");
        // The shell's own $PWD needs getcwd: ask the kernel instead.
        b.args(&["sh", "-c", "readlink /proc/self/cwd; cd /bin && echo moved"]);
        let (code, out, err) = b.run();
        assert_eq!(
            (code, out.as_str()),
            (0, "/tmp\nmoved\n"),
            "nnp={nnp}: {err}"
        );
    }
}

/// What busybox needs for `echo`, `sleep` and exiting (from strace of the static binary),
/// prctl only for the PR_GET_NAME it makes.
const PROGRAM: &[&str] = &[
    "arch_prctl",
    "brk",
    "exit_group",
    "getrandom",
    "getuid",
    "mprotect",
    "prlimit64",
    "readlink",
    "rseq",
    "set_robust_list",
    "set_tid_address",
    "write",
    "nanosleep",
    "clock_nanosleep",
    "rt_sigreturn",
    // busybox as a non-root user stats itself and drops set-id privileges with
    // setgid/setuid (skiff's own switch uses setgroups, setresgid, setresuid)
    "newfstatat",
    "getgid",
    "setgid",
    "setuid",
];

/// What skiff may still call once the filter is on (the list in src/process/tail.rs).
const RUNTIME: &[&str] = &["capset", "sendto", "execve"];

/// Everything else kills the whole process: a runtime step the profile does not allow
/// cannot be hidden behind an ignored error.
fn minimal_profile() -> Value {
    let mut names: Vec<&str> = PROGRAM.to_vec();
    names.extend(RUNTIME);
    json!({
        "defaultAction": "SCMP_ACT_KILL_PROCESS",
        "architectures": ARCHES,
        "syscalls": [
            {"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": ["prctl"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": libc::PR_GET_NAME, "op": "SCMP_CMP_EQ"}]}
        ]
    })
}

#[test]
fn a_profile_with_only_the_programs_syscalls_and_the_runtimes_last_ones_runs_and_execs() {
    require_root!();
    for nnp in [false, true] {
        for user in [0, 65534] {
            let mut b = Bundle::new("seccomp-minimal");
            b.config["linux"]["seccomp"] = minimal_profile();
            b.config["process"]["noNewPrivileges"] = json!(nnp);
            b.config["process"]["user"] = json!({"uid": user, "gid": user});
            b.args(&["echo", "hi"]);
            let (code, out, err) = b.run();
            let what = format!("nnp={nnp} uid={user}");
            assert_eq!((code, out.as_str()), (0, "hi\n"), "run, {what}: {err}");

            b.args(&["sleep", "60"]);
            b.create_ok();
            b.ok(&["start", &b.id]);
            for exec_nnp in [false, true] {
                let mut args = vec!["exec"];
                if exec_nnp {
                    args.push("--no-new-privs");
                }
                args.extend([b.id.as_str(), "echo", "from-exec"]);
                let out = b.ok(&args);
                assert_eq!(out, "from-exec\n", "exec --no-new-privs={exec_nnp}, {what}");
            }
            assert_eq!(b.status(), "running", "{what}");
            b.ok(&["kill", &b.id, "KILL"]);
        }
    }
}

/// Control for the test above: without the runtime's last syscalls the same profile kills
/// the container before its program runs, so the list is exactly what is needed.
#[test]
fn the_minimal_profile_without_execve_is_refused_by_the_kernel() {
    require_root!();
    let mut b = Bundle::new("seccomp-minimal-control");
    let mut profile = minimal_profile();
    let names = profile["syscalls"][0]["names"].as_array_mut().unwrap();
    names.retain(|n| n != "execve");
    b.config["linux"]["seccomp"] = profile;
    b.config["process"]["noNewPrivileges"] = json!(true);
    b.args(&["echo", "hi"]);
    let (code, out, _err) = b.run();
    assert_ne!(code, 0, "{out}");
    assert!(!out.contains("hi"), "{out}");
}
