//! The fixed profiles of the differential test: the defaults of Docker, containerd and
//! Podman (their shapes, built here from our Docker-like allow list), and the four cases of
//! issue 13 where skiff used to allow what runc denies.

use serde_json::{json, Value};

/// The Docker-default-like profile the other tests use too.
pub(super) fn docker() -> Value {
    serde_json::from_str(include_str!("../testdata/docker-like.json")).unwrap()
}

fn allow_list() -> Vec<String> {
    docker()["syscalls"][0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

fn personality() -> Vec<Value> {
    [0u64, 8, 0x20000, 0x20008, 0xffff_ffff]
        .iter()
        .map(|v| {
            json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]})
        })
        .collect()
}

/// clone without namespace flags, clone3 refused with ENOSYS so that libcs fall back to it.
fn clone() -> [Value; 2] {
    [
        json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 2_114_060_288u64, "valueTwo": 0,
                      "op": "SCMP_CMP_MASKED_EQ"}]}),
        json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}),
    ]
}

/// containerd's default shape: EPERM by default (no defaultErrnoRet), the allow list with
/// the amd64-only calls in an entry of their own, personality and clone conditions, clone3
/// refused with ENOSYS so that libcs fall back to clone.
pub(super) fn containerd() -> Value {
    let amd64 = ["arch_prctl", "modify_ldt"];
    let main: Vec<String> = allow_list()
        .into_iter()
        .filter(|n| !amd64.contains(&n.as_str()) && n != "clone3")
        .collect();
    let mut syscalls = vec![json!({"names": main, "action": "SCMP_ACT_ALLOW"})];
    syscalls.extend(personality());
    syscalls.push(json!({"names": amd64, "action": "SCMP_ACT_ALLOW"}));
    syscalls.extend(clone());
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    })
}

/// Podman's default shape: ENOSYS by default, an explicit EPERM list first, the allow list,
/// netlink-audit sockets refused with EINVAL and every other socket allowed, clone
/// conditions, clone3 with ENOSYS.
pub(super) fn podman() -> Value {
    let eperm = [
        "bdflush",
        "io_pgetevents",
        "kexec_file_load",
        "kexec_load",
        "migrate_pages",
        "move_pages",
        "nfsservctl",
        "nice",
        "oldfstat",
        "oldlstat",
        "oldolduname",
        "oldstat",
        "olduname",
        "pciconfig_iobase",
        "pciconfig_read",
        "pciconfig_write",
        "sgetmask",
        "ssetmask",
        "swapoff",
        "swapon",
        "syscall",
        "sysfs",
        "uselib",
        "userfaultfd",
        "ustat",
        "vm86",
        "vm86old",
        "vmsplice",
    ];
    let main: Vec<String> = allow_list()
        .into_iter()
        .filter(|n| !eperm.contains(&n.as_str()) && n != "socket" && n != "clone3")
        .collect();
    let mut syscalls = vec![
        json!({"names": eperm, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}),
        json!({"names": main, "action": "SCMP_ACT_ALLOW"}),
    ];
    syscalls.extend(personality());
    syscalls.push(
        json!({"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
        "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
                 {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]}),
    );
    syscalls.push(json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}]}));
    syscalls.extend(clone());
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    })
}

/// Issue 13's table: allow-by-default profiles where skiff used to allow what runc denies.
pub(super) fn issue13() -> Vec<(&'static str, Value)> {
    let allow = |syscalls: Value| json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls});
    vec![
        (
            "a rule equal to the default is dropped",
            allow(json!([
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
            ])),
        ),
        (
            "an unconditional rule overrides conditional ones",
            allow(json!([
                {"names": ["mkdir"], "action": "SCMP_ACT_LOG",
                 "args": [{"index": 1, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
            ])),
        ),
        (
            "an unconditional rule overrides an earlier conditional one",
            allow(json!([
                {"names": ["getpgid"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77},
            ])),
        ),
        (
            "SCMP_CMP_MASKED_EQ masks the datum too",
            allow(json!([
                {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
                 "args": [{"index": 0, "value": 240, "valueTwo": 5,
                           "op": "SCMP_CMP_MASKED_EQ"}]},
            ])),
        ),
    ]
}
