//! The process object: terminal, user, args, env, cwd, capabilities, rlimits,
//! noNewPrivileges, oomScoreAdj; and how the observer exits.

use super::{Case, Draft, Ns};
use crate::rng::Rng;
use serde_json::{json, Value};

/// Every capability of Linux 6.1 (CAP_LAST_CAP = 40), in number order.
pub const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const RUNC_SPEC_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// (name, soft, hard) drawn for rlimits; u64::MAX is RLIM_INFINITY.
const RLIMITS: [(&str, u64, u64); 16] = [
    ("RLIMIT_NOFILE", 1024, 4096),
    ("RLIMIT_NPROC", 1000, 2000),
    ("RLIMIT_CORE", 0, u64::MAX),
    ("RLIMIT_STACK", 8388608, u64::MAX),
    ("RLIMIT_MEMLOCK", 65536, 65536),
    ("RLIMIT_MSGQUEUE", 819200, 819200),
    ("RLIMIT_NICE", 0, 0),
    ("RLIMIT_RTPRIO", 0, 0),
    ("RLIMIT_SIGPENDING", 1000, 1000),
    ("RLIMIT_AS", u64::MAX, u64::MAX),
    ("RLIMIT_CPU", 100, 200),
    ("RLIMIT_FSIZE", 1 << 30, 1 << 30),
    ("RLIMIT_DATA", u64::MAX, u64::MAX),
    ("RLIMIT_LOCKS", 100, 200),
    ("RLIMIT_RSS", u64::MAX, u64::MAX),
    ("RLIMIT_RTTIME", 1_000_000, 2_000_000),
];

pub fn process(r: &mut Rng, case: &mut Case, draft: &Draft, plan: &mut Value) -> Value {
    let terminal = r.chance(12);
    case.terminal_drawn = terminal;
    let uid = *r.pick(&[0, 0, 0, 0, 0, 0, 0, 1000, 1000, 65534]);
    let gid = *r.pick(&[0, 0, 1000, 100]);
    let mut user = json!({"uid": uid, "gid": gid});
    if r.chance(30) {
        let gids: Vec<u32> = r
            .subset(&[5, 10, 1000, 65534], 50)
            .into_iter()
            .filter(|g| (draft.mapped)(*g))
            .collect();
        user["additionalGids"] = json!(gids);
    }
    if r.chance(50) {
        user["umask"] = json!(*r.pick(&[0, 0o022, 0o027, 0o077, 0o002]));
    }
    if uid != 0 {
        case.tag(format!("uid={uid}"));
    }
    let args = if r.chance(10) {
        case.tag("args.pathlookup");
        json!(["observe", "observe"])
    } else {
        json!(["/observe", "observe"])
    };
    let mut env =
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/".to_string()];
    if terminal || r.chance(30) {
        env.push("TERM=xterm".into());
    }
    for (p, v) in [
        (40, "A=1"),
        (20, "EMPTY="),
        (10, "HOME=/custom-home"),
        (10, "SPACED=a b  c"),
        (5, "A=2"),
    ] {
        if r.chance(p) {
            env.push(v.into());
        }
    }
    let cwd = *r.pick(&["/", "/", "/", "/", "/tmp", "/etc", "/work/new/dir", "/mnt"]);
    let mut p = json!({
        "terminal": terminal,
        "user": user,
        "args": args,
        "env": env,
        "cwd": cwd,
    });
    if r.chance(85) {
        p["capabilities"] = capabilities(r, case);
    }
    if r.chance(50) {
        let mut list = vec![];
        for (name, soft, hard) in RLIMITS {
            if r.chance(25) {
                list.push(json!({"type": name, "soft": soft, "hard": hard}));
            }
        }
        if !list.is_empty() {
            case.tag("rlimits");
            p["rlimits"] = Value::Array(list);
        }
    }
    if r.chance(40) {
        p["noNewPrivileges"] = json!(true);
    } else if r.chance(20) {
        p["noNewPrivileges"] = json!(false);
    }
    if r.chance(40) {
        let adj = if r.chance(50) {
            *r.pick(&[-1000i64, -500, 0, 100, 500, 1000])
        } else {
            r.range(0, 2000) as i64 - 1000
        };
        p["oomScoreAdj"] = json!(adj);
    }
    if terminal {
        case.tag("terminal");
    }
    // The observer's exit: a code, or a signal where it is not a pid namespace's init
    // (the kernel protects an init from its own signals).
    plan["exit"] = json!(*r.pick(&[0, 0, 0, 1, 3, 42, 255]));
    plan["signal"] = if draft.state("pid") != Ns::New && r.chance(10) {
        json!(15)
    } else {
        Value::Null
    };
    if r.chance(10) {
        // Sometimes more claimed than passed: what sits at the missing numbers must not
        // be the runtime's own fds.
        case.preserve_fds = r.range(1, 3) as u32;
        case.preserve_given = if r.chance(60) {
            case.preserve_fds
        } else {
            r.range(0, case.preserve_fds as u64 - 1) as u32
        };
        case.tag(format!(
            "preserve-fds={}(passed {})",
            case.preserve_fds, case.preserve_given
        ));
    }
    p
}

fn capabilities(r: &mut Rng, case: &mut Case) -> Value {
    let base: Vec<&str> = match r.weighted(&[40, 30, 15, 15]) {
        0 => RUNC_SPEC_CAPS.to_vec(),
        1 => DOCKER_CAPS.to_vec(),
        2 => CAPS.to_vec(),
        _ => r.subset(&CAPS, 30),
    };
    let pick = |r: &mut Rng, percent| -> Vec<&str> {
        if r.chance(percent) {
            r.subset(&base, 60)
        } else {
            base.clone()
        }
    };
    let effective = pick(r, 20);
    let permitted = base.clone();
    let inheritable = match r.weighted(&[60, 20, 20]) {
        0 => vec![],
        1 => base.clone(),
        _ => r.subset(&base, 50),
    };
    let mut ambient: Vec<&str> = vec![];
    if r.chance(15) {
        ambient = r.subset(&inheritable, 50);
        case.tag("caps.ambient");
    }
    if r.chance(4) {
        // Names missing from inheritable: the kernel cannot raise them.
        ambient.extend(base.iter().filter(|c| !inheritable.contains(c)).take(2));
        case.tag("caps.ambient-not-inheritable");
    }
    let mut bounding = base.clone();
    if r.chance(2) {
        bounding.push("CAP_NOT_A_CAPABILITY");
        case.tag("caps.unknown-name");
    }
    json!({
        "bounding": bounding,
        "effective": effective,
        "permitted": permitted,
        "inheritable": inheritable,
        "ambient": ambient,
    })
}
