//! Pure tests of the compiler: the generated programs are run through a small classic-BPF
//! interpreter on hand-made seccomp_data.

use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

use super::bpf::{ALU_AND_K, JMP_JA, LD_W_ABS, RET_K};
use super::profile::*;
use super::*;

const GETPID: u32 = 39;
const GETCWD: u32 = 79;
const I386_GETPID: u32 = 20;
const ERRNO_EPERM: u32 = RET_ERRNO | 1;

pub(super) fn profile(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("test profile parses")
}

pub(super) fn build(v: Value) -> Filter {
    compile(&profile(v)).expect("test profile compiles")
}

fn compile_err(v: Value) -> String {
    format!("{:#}", compile(&profile(v)).unwrap_err())
}

/// Runs `p` on seccomp_data {nr, arch, args}; also checks every jump stays in the program.
fn run(p: &[SockFilter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let i = p[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => {
                let k = i.k as usize;
                acc = u32::from_ne_bytes(data[k..k + 4].try_into().unwrap());
            }
            ALU_AND_K => acc &= i.k,
            JMP_JA => pc += i.k as usize,
            RET_K => return i.k,
            code => {
                let taken = match code {
                    c if c == bpf::Cmp::Eq.code() => acc == i.k,
                    c if c == bpf::Cmp::Gt.code() => acc > i.k,
                    c if c == bpf::Cmp::Ge.code() => acc >= i.k,
                    c => panic!("unexpected opcode {c:#x}"),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
        }
        assert!(pc < p.len(), "jump out of the program");
    }
}

fn x86_64(f: &Filter, nr: u32, arg0: u64) -> u32 {
    run(
        f.instructions(),
        AUDIT_ARCH_X86_64,
        nr,
        [arg0, 0, 0, 0, 0, 0],
    )
}

#[test]
fn arch_is_checked_first_and_foreign_arches_are_killed() {
    let f = build(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    let p = f.instructions();
    assert_eq!(
        (p[0].code, p[0].k),
        (LD_W_ABS, 4),
        "first load is seccomp_data.arch"
    );
    assert_eq!(p[1].k, AUDIT_ARCH_X86_64);
    assert_eq!(x86_64(&f, GETPID, 0), RET_ALLOW);
    // i386 and x32 are not in the profile: bad architecture, libseccomp's KILL_THREAD. The
    // x86_64 number -1 (tracers skipping a syscall) is not an x32 call.
    assert_eq!(
        run(p, AUDIT_ARCH_I386, I386_GETPID, [0; 6]),
        RET_KILL_THREAD
    );
    assert_eq!(x86_64(&f, X32_SYSCALL_BIT | GETPID, 0), RET_KILL_THREAD);
    assert_eq!(x86_64(&f, u32::MAX, 0), RET_ALLOW);
    assert_eq!(run(p, AUDIT_ARCH_AARCH64, 172, [0; 6]), RET_KILL_THREAD);
}

#[test]
fn several_architectures_resolve_numbers_per_arch() {
    let f = build(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["getpid", "socketcall", "listns"], "action": "SCMP_ACT_ALLOW"}]
    }));
    let p = f.instructions();
    assert_eq!(x86_64(&f, GETPID, 0), RET_ALLOW);
    assert_eq!(x86_64(&f, GETCWD, 0), ERRNO_EPERM);
    assert_eq!(run(p, AUDIT_ARCH_I386, I386_GETPID, [0; 6]), RET_ALLOW);
    assert_eq!(
        run(p, AUDIT_ARCH_I386, 102, [0; 6]),
        RET_ALLOW,
        "i386 socketcall"
    );
    assert_eq!(run(p, AUDIT_ARCH_I386, GETPID, [0; 6]), ERRNO_EPERM);
    assert_eq!(x86_64(&f, X32_SYSCALL_BIT | GETPID, 0), RET_ALLOW);
    assert_eq!(x86_64(&f, X32_SYSCALL_BIT | GETCWD, 0), ERRNO_EPERM);
    // x86_64 getpid's number with the x32 bit is x32's getpid; the plain number 102 is
    // x86_64 getuid, not socketcall.
    assert_eq!(x86_64(&f, 102, 0), ERRNO_EPERM);
}

#[test]
fn every_action_is_encoded() {
    let cases = [
        ("SCMP_ACT_KILL", None, RET_KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", None, RET_KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", None, RET_KILL_PROCESS),
        ("SCMP_ACT_TRAP", None, RET_TRAP),
        ("SCMP_ACT_ERRNO", None, RET_ERRNO | 1),
        ("SCMP_ACT_ERRNO", Some(13), RET_ERRNO | 13),
        ("SCMP_ACT_TRACE", None, RET_TRACE | 1),
        ("SCMP_ACT_TRACE", Some(4242), RET_TRACE | 4242),
        ("SCMP_ACT_LOG", None, RET_LOG),
        ("SCMP_ACT_NOTIFY", None, RET_USER_NOTIF),
    ];
    for (action, errno, want) in cases {
        let mut rule = json!({"names": ["getpid"], "action": action});
        if let Some(e) = errno {
            rule["errnoRet"] = json!(e);
        }
        let f = build(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule],
                             "listenerPath": "/run/agent.sock"}),
        );
        assert_eq!(x86_64(&f, GETPID, 0), want, "{action} {errno:?}");
        assert_eq!(x86_64(&f, GETCWD, 0), RET_ALLOW);
        assert_eq!(f.uses_notify(), action == "SCMP_ACT_NOTIFY");
    }
}

#[test]
fn default_errno_ret_and_errno_defaults() {
    let f = build(json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
        ]
    }));
    assert_eq!(x86_64(&f, GETCWD, 0), RET_ERRNO | 38);
    assert_eq!(
        x86_64(&f, 258, 0),
        RET_ERRNO | 1,
        "mkdirat: EPERM by default"
    );
    assert_eq!(x86_64(&f, 41, 0), RET_ERRNO | 13, "socket: errnoRet");
    assert_eq!(x86_64(&f, GETPID, 0), RET_ALLOW);
}

/// Every operator on wide (x86_64) and narrow (i386) arguments against a reference, on values
/// around the 32-bit boundary where comparing only one half would go wrong.
#[test]
fn operators_compare_both_halves() {
    let edges = [
        0u64,
        1,
        0x7fff_ffff,
        0xffff_fffe,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0x1_ffff_ffff,
        0x8000_0000_0000_0000,
        0xffff_ffff_0000_0000,
        0xffff_ffff_ffff_ffff,
    ];
    type Reference = fn(u64, u64) -> bool;
    let ops: [(&str, Reference); 6] = [
        ("SCMP_CMP_EQ", |x, v| x == v),
        ("SCMP_CMP_NE", |x, v| x != v),
        ("SCMP_CMP_LT", |x, v| x < v),
        ("SCMP_CMP_LE", |x, v| x <= v),
        ("SCMP_CMP_GT", |x, v| x > v),
        ("SCMP_CMP_GE", |x, v| x >= v),
    ];
    for (op, reference) in ops {
        for v in edges {
            let f = build(json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "architectures": ["SCMP_ARCH_X86"],
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW",
                              "args": [{"index": 2, "value": v, "op": op}]}]
            }));
            for x in edges {
                let args = [0, 0, x, 0, 0, 0];
                let got = run(f.instructions(), AUDIT_ARCH_X86_64, GETPID, args) == RET_ALLOW;
                assert_eq!(got, reference(x, v), "x86_64: {x:#x} {op} {v:#x}");
                let narrow = run(f.instructions(), AUDIT_ARCH_I386, I386_GETPID, args);
                let want = reference(x & 0xffff_ffff, v & 0xffff_ffff);
                assert_eq!(narrow == RET_ALLOW, want, "i386: {x:#x} {op} {v:#x}");
            }
        }
    }
}

#[test]
fn masked_eq_masks_both_halves() {
    // Docker's clone rule: allowed unless a namespace flag is set.
    let ns_flags: u64 = 0x7E02_0000;
    let f = build(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": ns_flags, "valueTwo": 0,
                                "op": "SCMP_CMP_MASKED_EQ"}]}]
    }));
    assert_eq!(x86_64(&f, 56, 0x0001_1200), RET_ALLOW, "fork-like clone");
    assert_eq!(x86_64(&f, 56, 0x1000_0000), ERRNO_EPERM, "CLONE_NEWUSER");
    assert_eq!(
        x86_64(&f, 56, 0x1_0000_0000),
        RET_ALLOW,
        "high bits are not masked"
    );
    let f = build(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 1, "value": 0xff00_0000_0000_00ffu64,
                                "valueTwo": 0x1200_0000_0000_0034u64,
                                "op": "SCMP_CMP_MASKED_EQ"}]}]
    }));
    let at1 = |x| {
        run(
            f.instructions(),
            AUDIT_ARCH_X86_64,
            GETPID,
            [0, x, 0, 0, 0, 0],
        )
    };
    assert_eq!(at1(0x12ab_cdef_0000_ff34), RET_ALLOW);
    assert_eq!(at1(0x13ab_cdef_0000_ff34), ERRNO_EPERM, "high half differs");
    assert_eq!(at1(0x12ab_cdef_0000_ff35), ERRNO_EPERM, "low half differs");
}

#[test]
fn args_are_anded_rules_ored() {
    let f = build(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getpid"], "action": "SCMP_ACT_LOG",
             "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_GE"}]}
        ]
    }));
    let call = |a0, a1| {
        run(
            f.instructions(),
            AUDIT_ARCH_X86_64,
            GETPID,
            [a0, a1, 0, 0, 0, 0],
        )
    };
    assert_eq!(call(1, 2), RET_ALLOW, "both conditions of the first rule");
    assert_eq!(call(1, 3), ERRNO_EPERM, "one condition only: default");
    assert_eq!(call(3, 0), RET_ERRNO | 13, "second rule");
    assert_eq!(call(7, 0), RET_LOG, "third rule");
    assert_eq!(call(2, 2), ERRNO_EPERM, "no rule: default");
}

/// Which of several matching rules decides is libseccomp's choice, not the profile order:
/// the first unconditional rule beats everything, a rule equal to the default is dropped,
/// and among conditional rules the one testing the higher argument is looked at first.
#[test]
fn overlapping_rules_decide_as_in_libseccomp() {
    let f = build(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getpid"], "action": "SCMP_ACT_LOG",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7},
            {"names": ["getpid"], "action": "SCMP_ACT_TRAP"},
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 10,
             "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11,
             "args": [{"index": 1, "value": 7, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    let call = |nr, a0, a1| {
        run(
            f.instructions(),
            AUDIT_ARCH_X86_64,
            nr,
            [a0, a1, 0, 0, 0, 0],
        )
    };
    assert_eq!(call(GETPID, 1, 0), RET_ERRNO | 7);
    assert_eq!(
        call(GETCWD, 5, 7),
        RET_ERRNO | 11,
        "argument 1 is tested first"
    );
    assert_eq!(call(GETCWD, 5, 0), RET_ERRNO | 10);
}

/// libseccomp refuses a rule whose conditions equal (or start) an earlier one's with
/// another action (EEXIST, so runc fails), and mis-compiles some rule sets that split a
/// 64-bit ordered comparison followed by more conditions: skiff refuses both, naming them.
#[test]
fn conflicting_and_miscompiled_rule_sets_are_refused() {
    let rule = |errno, args| {
        json!({"names": ["getpgid"], "action": "SCMP_ACT_ERRNO",
                                     "errnoRet": errno, "args": args})
    };
    let eq = |i, v| json!({"index": i, "value": v, "op": "SCMP_CMP_EQ"});
    let err = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        rule(10, json!([eq(0, 1)])), rule(11, json!([eq(0, 1)]))]}));
    assert!(
        err.contains("linux.seccomp.syscalls[1]: rules for getpgid") && err.contains("EEXIST"),
        "{err}"
    );
    let err = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        rule(10, json!([eq(0, 1), eq(1, 2)])), rule(11, json!([eq(0, 1)]))]}));
    assert!(err.contains("EEXIST"), "{err}");
    let gt = json!({"index": 0, "value": 5, "op": "SCMP_CMP_GT"});
    let err = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        rule(10, json!([gt, eq(1, 1)])), rule(10, json!([gt, eq(2, 2)]))]}));
    assert!(err.contains(MISCOMPILED), "{err}");
    // With one action, the shorter rule just absorbs the longer one.
    build(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        rule(10, json!([eq(0, 1), eq(1, 2)])), rule(10, json!([eq(0, 1)]))]}));
}

#[test]
fn repeated_argument_index_becomes_ored_rules_like_runc() {
    let f = build(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                               {"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]}]
    }));
    assert_eq!(x86_64(&f, GETPID, 1), RET_ALLOW);
    assert_eq!(x86_64(&f, GETPID, 3), RET_ALLOW);
    assert_eq!(x86_64(&f, GETPID, 2), ERRNO_EPERM);
}

#[test]
fn unknown_syscalls_are_skipped_even_all_of_them() {
    let f = build(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["no_such_syscall", "getpid"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(x86_64(&f, GETPID, 0), RET_ALLOW);
    // Only unknown names (runc's "redundant seccomp rules" case): the default applies.
    let f = build(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert_eq!(x86_64(&f, GETPID, 0), RET_ALLOW);
}

#[test]
fn newer_syscalls_than_the_profile_get_enosys() {
    let f = build(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["getpid", "openat"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(x86_64(&f, 257, 0), RET_ALLOW);
    assert_eq!(x86_64(&f, 256, 0), ERRNO_EPERM);
    assert_eq!(x86_64(&f, 258, 0), RET_ERRNO | 38, "above openat: ENOSYS");
    assert_eq!(x86_64(&f, 0x3fff_ffff, 0), RET_ERRNO | 38);
    assert_eq!(x86_64(&f, X32_SYSCALL_BIT | 258, 0), RET_ERRNO | 38);
    assert_eq!(
        x86_64(&f, 0x8000_0000, 0),
        RET_ERRNO | 38,
        "bit 30 clear: x86_64's half"
    );
    // Like runc, only for the architectures the profile lists.
    let f = build(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(x86_64(&f, 1000, 0), ERRNO_EPERM);
    // A permissive default needs no such patch.
    let f = build(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert_eq!(x86_64(&f, 1000, 0), RET_ALLOW);
}

#[test]
fn flags_map_to_seccomp_flags() {
    let f = build(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                  "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    }));
    assert_eq!(f.flags(), Flags::LOG | Flags::SPEC_ALLOW | Flags::TSYNC);
    let f = build(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_NOTIFY"}],
        "listenerPath": "/run/agent.sock"
    }));
    let want = Flags::TSYNC | Flags::TSYNC_ESRCH | Flags::NEW_LISTENER | Flags::WAIT_KILLABLE_RECV;
    assert_eq!(f.flags(), want);
}

#[test]
fn unknown_flag_is_an_error_naming_it() {
    let cfg = json!({
        "ociVersion": "1.0.2",
        "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                              "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}}
    });
    let err = crate::bundle::parse(cfg.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("linux.seccomp.flags") && err.contains("SECCOMP_FILTER_FLAG_BOGUS"),
        "{err}"
    );
}

#[test]
fn invalid_profiles_name_the_field() {
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY"}),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}),
            "linux.seccomp.defaultErrnoRet: 5000",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.syscalls[1]: SCMP_ACT_NOTIFY cannot be used for write",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
                   "syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.syscalls[0]: SCMP_ACT_NOTIFY cannot be used for sendmsg",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.listenerPath: a rule uses SCMP_ACT_NOTIFY",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}),
            "linux.seccomp.listenerMetadata: set without linux.seccomp.listenerPath",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}),
            "linux.seccomp.syscalls[0].args[0].index: 6",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": [], "action": "SCMP_ACT_ERRNO"}]}),
            "linux.seccomp.syscalls[0].names",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_TRACE", "errnoRet": 70000}]}),
            "linux.seccomp.syscalls[0].errnoRet: 70000",
        ),
    ];
    for (v, want) in cases {
        let err = compile_err(v);
        assert!(err.starts_with(want), "{err}\n  does not start with {want}");
    }
}

#[test]
fn too_large_program_is_a_clear_error() {
    let rules: Vec<Value> = (0..1500)
        .map(|i| {
            json!({"names": ["getpid"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": i, "op": "SCMP_CMP_EQ"}]})
        })
        .collect();
    let err = compile_err(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules}));
    assert!(
        err.starts_with("linux.seccomp: the compiled filter has") && err.contains("4096"),
        "{err}"
    );
}

#[test]
fn long_jumps_are_correct() {
    // 200 argument rules on one syscall put several hundred instructions between the
    // search tree's jumps and their targets.
    let mut rules: Vec<Value> = (0..200u64)
        .map(|i| {
            json!({"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": i % 50 + 1,
                   "args": [{"index": 1, "value": i * 0x1_0000_0001, "op": "SCMP_CMP_EQ"}]})
        })
        .collect();
    rules.push(json!({"names": ["getpid", "read", "write", "close"], "action": "SCMP_ACT_ALLOW"}));
    rules.push(json!({"names": ["exit_group"], "action": "SCMP_ACT_LOG"}));
    let f = build(json!({"defaultAction": "SCMP_ACT_TRAP", "syscalls": rules}));
    assert!(f.instructions().len() > 1000);
    let far = f.instructions().iter().filter(|i| i.code == JMP_JA).count();
    assert!(far > 0, "expected trampolines");
    for i in (0..200u64).step_by(7) {
        let got = run(
            f.instructions(),
            AUDIT_ARCH_X86_64,
            258,
            [0, i * 0x1_0000_0001, 0, 0, 0, 0],
        );
        assert_eq!(got, RET_ERRNO | (i as u32 % 50 + 1));
    }
    assert_eq!(
        run(f.instructions(), AUDIT_ARCH_X86_64, 258, [0, 1, 0, 0, 0, 0]),
        RET_TRAP
    );
    assert_eq!(x86_64(&f, GETPID, 0), RET_ALLOW);
    assert_eq!(x86_64(&f, 231, 0), RET_LOG);
    assert_eq!(x86_64(&f, 3, 0), RET_ALLOW);
    assert_eq!(x86_64(&f, 4, 0), RET_TRAP);
}

#[test]
fn loading_a_bundle_compiles_the_profile() {
    let dir = std::env::temp_dir().join(format!("skiff-seccomp-validate-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("rootfs")).unwrap();
    let mut cfg = json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"cwd": "/", "args": ["/bin/true"], "user": {"uid": 0, "gid": 0}},
        "linux": {"namespaces": [{"type": "mount"}],
                  "seccomp": {"defaultAction": "SCMP_ACT_ERRNO",
                              "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}}
    });
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let b = crate::host::load_bundle(&dir).expect("a valid profile passes");
    assert!(b.seccomp.is_some());
    cfg["linux"]["seccomp"]["syscalls"][0]["args"] =
        json!([{"index": 9, "value": 0, "op": "SCMP_CMP_EQ"}]);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let err = format!("{:#}", crate::host::load_bundle(&dir).unwrap_err());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        err.contains("linux.seccomp.syscalls[0].args[0].index"),
        "{err}"
    );
    assert!(err.contains("config.json"), "{err}");
}
