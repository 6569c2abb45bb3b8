//! Kernel attributes of the process: sysctls, personality, ioPriority, scheduler and CPU
//! affinity.

use std::fs;

use serde_json::Value;

use crate::namespaces::{cstr, uts};
use crate::{fail, unverified, verdict};

pub(crate) fn check_sysctl(cfg: &Value) {
    let Some(map) = cfg.pointer("/linux/sysctl").and_then(Value::as_object) else {
        return;
    };
    for (k, v) in map {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        let want = v
            .as_str()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        match fs::read_to_string(&path) {
            Ok(g) => {
                let got = g.split_whitespace().collect::<Vec<_>>().join(" ");
                verdict(
                    &format!("linux.sysctl[{k}]"),
                    got == want,
                    format!("want {want:?} got {got:?}"),
                );
            }
            Err(e) => fail(&format!("linux.sysctl[{k}]"), format!("{path}: {e}")),
        }
    }
}

pub(crate) fn check_personality(cfg: &Value) {
    let Some(dom) = cfg
        .pointer("/linux/personality/domain")
        .and_then(Value::as_str)
    else {
        return;
    };
    // SAFETY: 0xffffffff only queries.
    let p = unsafe { libc::personality(0xffffffff) };
    let want = if dom == "LINUX32" { 0x0008 } else { 0 };
    let m = cstr(&uts().machine);
    verdict(
        "linux.personality",
        (p & 0xff) == want,
        format!("domain {dom}: personality {p:#x}, uname machine {m}"),
    );
}

pub(crate) fn check_io_priority(cfg: &Value) {
    let Some(io) = cfg.pointer("/process/ioPriority") else {
        return;
    };
    let class = match io.get("class").and_then(Value::as_str) {
        Some("IOPRIO_CLASS_RT") => 1,
        Some("IOPRIO_CLASS_BE") => 2,
        Some("IOPRIO_CLASS_IDLE") => 3,
        _ => 0,
    };
    let prio = io.get("priority").and_then(Value::as_i64).unwrap_or(0);
    // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, 0).
    let got = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, 0) };
    let want = (class << 13) | prio;
    verdict(
        "process.ioPriority",
        got == want,
        format!(
            "want class {class} prio {prio} ({want}) got {got} (class {} prio {})",
            got >> 13,
            got & 0x1fff
        ),
    );
}

pub(crate) fn check_scheduler(cfg: &Value) {
    let Some(s) = cfg.pointer("/process/scheduler") else {
        return;
    };
    let pol = match s.get("policy").and_then(Value::as_str) {
        Some("SCHED_OTHER") => 0,
        Some("SCHED_FIFO") => 1,
        Some("SCHED_RR") => 2,
        Some("SCHED_BATCH") => 3,
        Some("SCHED_ISO") => 4,
        Some("SCHED_IDLE") => 5,
        Some("SCHED_DEADLINE") => 6,
        _ => -1,
    };
    // SAFETY: queries only.
    let got = unsafe { libc::sched_getscheduler(0) } & !0x40000000;
    let mut detail = format!("policy want {pol} got {got}");
    let mut ok = got == pol;
    if let Some(n) = s.get("nice").and_then(Value::as_i64) {
        // SAFETY: getpriority query; errno reset first.
        let g = unsafe {
            *libc::__errno_location() = 0;
            libc::getpriority(libc::PRIO_PROCESS, 0)
        };
        ok &= g as i64 == n;
        detail += &format!("; nice want {n} got {g}");
    }
    if let Some(p) = s.get("priority").and_then(Value::as_i64) {
        let mut sp = libc::sched_param { sched_priority: 0 };
        // SAFETY: fills sp.
        unsafe { libc::sched_getparam(0, &mut sp) };
        ok &= sp.sched_priority as i64 == p;
        detail += &format!("; priority want {p} got {}", sp.sched_priority);
    }
    verdict("process.scheduler", ok, detail);
}

pub(crate) fn parse_cpulist(s: &str) -> Vec<usize> {
    let mut v = vec![];
    for part in s.trim().split(',').filter(|x| !x.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            if let (Ok(a), Ok(b)) = (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
                v.extend(a..=b);
            }
        } else if let Ok(a) = part.trim().parse() {
            v.push(a);
        }
    }
    v.sort();
    v.dedup();
    v
}

pub(crate) fn check_cpu_affinity(cfg: &Value) {
    let Some(a) = cfg.pointer("/process/execCPUAffinity") else {
        return;
    };
    let Some(fin) = a.get("final").and_then(Value::as_str) else {
        unverified(
            "process.execCPUAffinity",
            "only `initial` set: it applies before exec and is not observable afterwards",
        );
        return;
    };
    // SAFETY: zeroed cpu_set_t, sched_getaffinity fills it.
    let got: Vec<usize> = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&i| libc::CPU_ISSET(i, &set))
            .collect()
    };
    let want = parse_cpulist(fin);
    verdict(
        "process.execCPUAffinity.final",
        got == want,
        format!("want {want:?} got {got:?}"),
    );
}
