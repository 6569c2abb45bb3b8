//! process.*, user, capabilities, rlimits, noNewPrivileges, oomScoreAdj, umask and the
//! inherited file descriptors, checked from inside the container.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::{errno, fail, unverified, verdict};

fn proc_status() -> BTreeMap<String, String> {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        })
        .collect()
}

pub(crate) fn check_umask(cfg: &Value) {
    let Some(want) = cfg.pointer("/process/user/umask").and_then(Value::as_u64) else {
        return;
    };
    match proc_status().get("Umask") {
        Some(v) => {
            let got = u64::from_str_radix(v, 8).unwrap_or(u64::MAX);
            verdict(
                "process.user.umask",
                got == want,
                format!("want {want:04o} got {got:04o}"),
            )
        }
        None => unverified(
            "process.user.umask",
            "kernel has no Umask in /proc/self/status",
        ),
    }
}

pub(crate) fn check_fds(env: &HashMap<String, String>) {
    if env.contains_key("LISTEN_FDS") {
        unverified("runtime-linux.fds", "LISTEN_FDS set");
        return;
    }
    let mut extra = vec![];
    if let Ok(rd) = fs::read_dir("/proc/self/fd") {
        let mut fds: Vec<(i32, String)> = vec![];
        for e in rd.flatten() {
            if let Ok(n) = e.file_name().to_string_lossy().parse::<i32>() {
                let t = fs::read_link(e.path())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                fds.push((n, t));
            }
        }
        // The directory being read shows up as one extra fd.
        for (n, t) in fds {
            if n > 2 && !t.starts_with("/proc/") {
                extra.push(format!("{n}->{t}"));
            }
        }
        verdict(
            "runtime-linux.fds",
            extra.is_empty(),
            if extra.is_empty() {
                "only 0,1,2 open".to_string()
            } else {
                format!("extra fds open: {}", extra.join(", "))
            },
        );
    } else {
        unverified("runtime-linux.fds", "cannot read /proc/self/fd");
    }
}

pub(crate) fn check_process(cfg: &Value, env: &HashMap<String, String>) {
    if let Some(cwd) = cfg.pointer("/process/cwd").and_then(Value::as_str) {
        match std::env::current_dir() {
            Ok(p) => {
                let want = Path::new(cwd).components().collect::<std::path::PathBuf>();
                verdict(
                    "process.cwd",
                    p == want,
                    format!("want {cwd} got {}", p.display()),
                )
            }
            Err(e) => fail("process.cwd", format!("getcwd: {e}")),
        }
    }
    if let Some(list) = cfg.pointer("/process/env").and_then(Value::as_array) {
        // Later duplicates win, as with execve + getenv.
        let mut want: BTreeMap<String, String> = BTreeMap::new();
        for e in list.iter().filter_map(Value::as_str) {
            if let Some((k, v)) = e.split_once('=') {
                want.insert(k.to_string(), v.to_string());
            }
        }
        let mut bad = vec![];
        for (k, v) in &want {
            match env.get(k) {
                Some(g) if g == v => {}
                Some(g) => bad.push(format!("{k}: want {v:?} got {g:?}")),
                None => bad.push(format!("{k}: missing")),
            }
        }
        verdict(
            "process.env",
            bad.is_empty(),
            if bad.is_empty() {
                format!("{} variables present", want.len())
            } else {
                bad.join("; ")
            },
        );
    }
    if let Some(args) = cfg.pointer("/process/args").and_then(Value::as_array) {
        let got: Vec<String> = std::env::args().collect();
        let want: Vec<String> = args
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect();
        verdict(
            "process.args",
            got == want,
            format!("want {want:?} got {got:?}"),
        );
    }
}

pub(crate) fn check_user(cfg: &Value) {
    let Some(user) = cfg.pointer("/process/user") else {
        return;
    };
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: plain syscalls writing to locals.
    unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    if let Some(uid) = user.get("uid").and_then(Value::as_u64) {
        let ok = [r, e, s].iter().all(|&x| x as u64 == uid);
        verdict(
            "process.user.uid",
            ok,
            format!("want {uid} got real/eff/saved {r}/{e}/{s}"),
        );
    }
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: as above.
    unsafe { libc::getresgid(&mut r, &mut e, &mut s) };
    if let Some(gid) = user.get("gid").and_then(Value::as_u64) {
        let ok = [r, e, s].iter().all(|&x| x as u64 == gid);
        verdict(
            "process.user.gid",
            ok,
            format!("want {gid} got real/eff/saved {r}/{e}/{s}"),
        );
    }
    let mut groups = vec![0 as libc::gid_t; 256];
    // SAFETY: buffer has 256 entries.
    let n = unsafe { libc::getgroups(256, groups.as_mut_ptr()) };
    let mut got: Vec<u64> = groups[..n.max(0) as usize]
        .iter()
        .map(|&g| g as u64)
        .collect();
    got.sort();
    got.dedup();
    let mut want: Vec<u64> = user
        .get("additionalGids")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    want.sort();
    want.dedup();
    let gid = user.get("gid").and_then(Value::as_u64);
    // The primary gid may or may not be in the supplementary list.
    let got_wo: Vec<u64> = got
        .iter()
        .copied()
        .filter(|g| Some(*g) != gid || want.contains(g))
        .collect();
    verdict(
        "process.user.additionalGids",
        got_wo == want,
        format!("want {want:?} got {got:?}"),
    );
}

const CAPS: [&str; 41] = [
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

fn cap_names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| {
            CAPS.get(b)
                .map(|s| s.to_string())
                .unwrap_or(format!("cap{b}"))
        })
        .collect()
}

pub(crate) fn check_caps(cfg: &Value) {
    let Some(caps) = cfg.pointer("/process/capabilities") else {
        return;
    };
    let st = proc_status();
    for (set, field) in [
        ("bounding", "CapBnd"),
        ("effective", "CapEff"),
        ("inheritable", "CapInh"),
        ("permitted", "CapPrm"),
        ("ambient", "CapAmb"),
    ] {
        let Some(list) = caps.get(set).and_then(Value::as_array) else {
            continue;
        };
        let mut want = 0u64;
        let mut unknown = vec![];
        for c in list.iter().filter_map(Value::as_str) {
            match CAPS.iter().position(|n| *n == c) {
                Some(i) => want |= 1 << i,
                None => unknown.push(c.to_string()),
            }
        }
        let check = format!("process.capabilities.{set}");
        let Some(got) = st.get(field).and_then(|v| u64::from_str_radix(v, 16).ok()) else {
            unverified(&check, format!("no {field} in /proc/self/status"));
            continue;
        };
        if !unknown.is_empty() {
            unverified(&check, format!("probe does not know {unknown:?}"));
            continue;
        }
        let missing = cap_names(want & !got);
        let extra = cap_names(got & !want);
        verdict(
            &check,
            want == got,
            format!("missing {missing:?} extra {extra:?}"),
        );
    }
}

fn rlimit_resource(name: &str) -> Option<i32> {
    Some(match name {
        "RLIMIT_CPU" => 0,
        "RLIMIT_FSIZE" => 1,
        "RLIMIT_DATA" => 2,
        "RLIMIT_STACK" => 3,
        "RLIMIT_CORE" => 4,
        "RLIMIT_RSS" => 5,
        "RLIMIT_NPROC" => 6,
        "RLIMIT_NOFILE" => 7,
        "RLIMIT_MEMLOCK" => 8,
        "RLIMIT_AS" => 9,
        "RLIMIT_LOCKS" => 10,
        "RLIMIT_SIGPENDING" => 11,
        "RLIMIT_MSGQUEUE" => 12,
        "RLIMIT_NICE" => 13,
        "RLIMIT_RTPRIO" => 14,
        "RLIMIT_RTTIME" => 15,
        _ => return None,
    })
}

pub(crate) fn check_rlimits(cfg: &Value) {
    let Some(list) = cfg.pointer("/process/rlimits").and_then(Value::as_array) else {
        return;
    };
    for rl in list {
        let ty = rl.get("type").and_then(Value::as_str).unwrap_or("?");
        let check = format!("process.rlimits.{ty}");
        let Some(res) = rlimit_resource(ty) else {
            unverified(&check, "unknown rlimit type");
            continue;
        };
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: writes into lim.
        if unsafe { libc::getrlimit(res as _, &mut lim) } != 0 {
            fail(&check, format!("getrlimit failed errno {}", errno()));
            continue;
        }
        let soft = rl.get("soft").and_then(Value::as_u64).unwrap_or(0);
        let hard = rl.get("hard").and_then(Value::as_u64).unwrap_or(0);
        verdict(
            &check,
            lim.rlim_cur == soft && lim.rlim_max == hard,
            format!("want {soft}/{hard} got {}/{}", lim.rlim_cur, lim.rlim_max),
        );
    }
}

pub(crate) fn check_nnp(cfg: &Value) {
    if cfg
        .pointer("/process/noNewPrivileges")
        .and_then(Value::as_bool)
        != Some(true)
    {
        return;
    }
    let got = proc_status().get("NoNewPrivs").cloned().unwrap_or_default();
    verdict(
        "process.noNewPrivileges",
        got == "1",
        format!("NoNewPrivs: {got}"),
    );
}

pub(crate) fn check_oom(cfg: &Value, env: &HashMap<String, String>) {
    let got = fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap_or_default()
        .trim()
        .to_string();
    match cfg.pointer("/process/oomScoreAdj").and_then(Value::as_i64) {
        Some(want) => verdict(
            "process.oomScoreAdj",
            got == want.to_string(),
            format!("want {want} got {got}"),
        ),
        None => {
            if let Some(p) = env.get("PROBE_PARENT_OOM") {
                verdict(
                    "process.oomScoreAdj.unset",
                    &got == p,
                    format!("unset: must stay the caller's {p}, got {got}"),
                )
            }
        }
    }
}
