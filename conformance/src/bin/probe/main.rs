//! probe: runs as the container process and verifies, from inside, that the
//! configuration in /probe-config.json (a copy of the bundle's config.json)
//! was applied. Output: one JSON object per line on stdout:
//!   {"check": "<name>", "ok": true|false|null, "detail": "..."}
//! `ok: null` means "could not be verified here" (never a silent pass).
//! The last line is {"check":"probe.done","ok":true} so the driver knows the
//! probe ran to completion.
//!
//! Modes:
//!   probe                 check everything in the config (default)
//!   probe wait [DIR]      append "started" to DIR/started (default /), wait
//!                         for a signal, append its number to DIR/signals, exit
//!   probe exit CODE       exit with CODE at once

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

mod seccomp;

fn emit(check: &str, ok: Option<bool>, detail: impl AsRef<str>) {
    let line = json!({"check": check, "ok": ok, "detail": detail.as_ref()}).to_string();
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}
fn pass(check: &str, detail: impl AsRef<str>) {
    emit(check, Some(true), detail)
}
fn fail(check: &str, detail: impl AsRef<str>) {
    emit(check, Some(false), detail)
}
fn unverified(check: &str, detail: impl AsRef<str>) {
    emit(check, None, detail)
}
fn verdict(check: &str, ok: bool, detail: impl AsRef<str>) {
    emit(check, Some(ok), detail)
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("wait") => wait_mode(args.get(2).map(String::as_str).unwrap_or("/")),
        Some("exit") => std::process::exit(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0)),
        _ => check_mode(),
    }
}

// ---------------------------------------------------------------- wait mode

static mut SIGNAL_DIR: [u8; 256] = [0; 256];

extern "C" fn on_signal(sig: libc::c_int) {
    // Async-signal-safe: open/write/close only.
    // SAFETY: SIGNAL_DIR is written once before handlers are installed.
    unsafe {
        let dir = &*std::ptr::addr_of!(SIGNAL_DIR);
        let fd = libc::open(
            dir.as_ptr() as *const libc::c_char,
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT,
            0o644,
        );
        if fd >= 0 {
            let mut buf = [0u8; 8];
            let mut n = sig as u32;
            let mut i = buf.len();
            i -= 1;
            buf[i] = b'\n';
            loop {
                i -= 1;
                buf[i] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            libc::write(fd, buf[i..].as_ptr() as *const libc::c_void, buf.len() - i);
            libc::close(fd);
        }
        libc::_exit(0);
    }
}

fn wait_mode(dir: &str) {
    let sigfile = format!("{}/signals\0", dir.trim_end_matches('/'));
    // SAFETY: single-threaded, before installing handlers.
    unsafe {
        let d = &mut *std::ptr::addr_of_mut!(SIGNAL_DIR);
        let b = sigfile.as_bytes();
        d[..b.len().min(255)].copy_from_slice(&b[..b.len().min(255)]);
        for sig in 1..32 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP || sig == libc::SIGCHLD {
                continue;
            }
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
    let started = format!("{}/started", dir.trim_end_matches('/'));
    if let Ok(mut f) = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&started)
    {
        let _ = writeln!(f, "started {}", std::process::id());
    }
    loop {
        // SAFETY: pause just waits for a signal.
        unsafe { libc::pause() };
    }
}

// --------------------------------------------------------------- check mode

fn check_mode() {
    let cfg: Value = match fs::read_to_string("/probe-config.json")
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            fail(
                "probe.config",
                format!("cannot read /probe-config.json: {e}"),
            );
            emit("probe.done", Some(true), "");
            return;
        }
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    // Order matters: seccomp last-but-one (it may block things), umask early.
    check_umask(&cfg);
    check_fds(&env);
    check_process(&cfg, &env);
    check_user(&cfg);
    check_caps(&cfg);
    check_rlimits(&cfg);
    check_nnp(&cfg);
    check_oom(&cfg, &env);
    check_uts(&cfg);
    check_namespaces(&cfg, &env);
    check_idmaps(&cfg);
    check_time_offsets(&cfg);
    let mi = read_mountinfo();
    check_root(&cfg, &mi);
    check_mounts(&cfg, &mi);
    check_masked(&cfg, &mi);
    check_readonly(&cfg, &mi);
    check_devices(&cfg);
    check_sysctl(&cfg);
    check_personality(&cfg);
    check_io_priority(&cfg);
    check_scheduler(&cfg);
    check_cpu_affinity(&cfg);
    check_cgroups(&cfg, &env);
    check_device_access(&env);
    seccomp::check(&cfg, &env);
    emit("probe.done", Some(true), "");
}

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

fn check_umask(cfg: &Value) {
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

fn check_fds(env: &HashMap<String, String>) {
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

fn check_process(cfg: &Value, env: &HashMap<String, String>) {
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

fn check_user(cfg: &Value) {
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

fn check_caps(cfg: &Value) {
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

fn check_rlimits(cfg: &Value) {
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

fn check_nnp(cfg: &Value) {
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

fn check_oom(cfg: &Value, env: &HashMap<String, String>) {
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
        None => match env.get("PROBE_PARENT_OOM") {
            Some(p) => verdict(
                "process.oomScoreAdj.unset",
                &got == p,
                format!("unset: must stay the caller's {p}, got {got}"),
            ),
            None => {}
        },
    }
}

fn uts() -> libc::utsname {
    // SAFETY: zeroed utsname is valid; uname fills it.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        libc::uname(&mut u);
        u
    }
}
fn cstr(b: &[libc::c_char]) -> String {
    let v: Vec<u8> = b
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&v).into_owned()
}

fn check_uts(cfg: &Value) {
    let u = uts();
    if let Some(h) = cfg.get("hostname").and_then(Value::as_str) {
        let got = cstr(&u.nodename);
        verdict("hostname", got == h, format!("want {h:?} got {got:?}"));
    }
    if let Some(d) = cfg.get("domainname").and_then(Value::as_str) {
        let got = cstr(&u.domainname);
        verdict("domainname", got == d, format!("want {d:?} got {got:?}"));
    }
}

fn ns_file(ty: &str) -> &str {
    match ty {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    }
}

fn check_namespaces(cfg: &Value, env: &HashMap<String, String>) {
    let list: Vec<Value> = cfg
        .pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for ty in [
        "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time",
    ] {
        let f = ns_file(ty);
        let check = format!("linux.namespaces.{ty}");
        let host = env
            .get(&format!("PROBE_HOST_NS_{f}"))
            .and_then(|v| v.parse::<u64>().ok());
        let got = match fs::metadata(format!("/proc/self/ns/{f}")) {
            Ok(m) => m.ino(),
            Err(e) => {
                if list
                    .iter()
                    .any(|n| n.get("type").and_then(Value::as_str) == Some(ty))
                {
                    unverified(&check, format!("/proc/self/ns/{f}: {e}"));
                }
                continue;
            }
        };
        let Some(host) = host else {
            unverified(&check, format!("driver did not pass PROBE_HOST_NS_{f}"));
            continue;
        };
        let entry = list
            .iter()
            .find(|n| n.get("type").and_then(Value::as_str) == Some(ty));
        match entry {
            None => verdict(
                &check,
                got == host,
                format!("not listed: must inherit the runtime's ({host}), got {got}"),
            ),
            Some(n) => match n.get("path").and_then(Value::as_str) {
                Some(_) => match env
                    .get(&format!("PROBE_EXPECT_NS_{f}"))
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    Some(want) => verdict(
                        &check,
                        got == want,
                        format!("path given: must join {want}, got {got}"),
                    ),
                    None => unverified(&check, "path given but driver passed no expected inode"),
                },
                None => verdict(
                    &check,
                    got != host,
                    format!("no path: must be new (runtime's is {host}), got {got}"),
                ),
            },
        }
        if ty == "cgroup" && entry.is_some() && entry.and_then(|n| n.get("path")).is_none() {
            let cg = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
            let root = cg
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .unwrap_or("?")
                .to_string();
            verdict(
                "linux.namespaces.cgroup.root",
                root == "/",
                format!("/proc/self/cgroup unified path {root:?} (must be / in a new cgroup ns)"),
            );
        }
    }
}

fn check_idmaps(cfg: &Value) {
    let userns = cfg
        .pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .any(|n| n.get("type").and_then(Value::as_str) == Some("user"))
        })
        .unwrap_or(false);
    if !userns {
        return;
    }
    for (key, file) in [("uidMappings", "uid_map"), ("gidMappings", "gid_map")] {
        let Some(list) = cfg
            .pointer(&format!("/linux/{key}"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        let mut want: Vec<(u64, u64, u64)> = list
            .iter()
            .map(|m| {
                (
                    m["containerID"].as_u64().unwrap_or(0),
                    m["hostID"].as_u64().unwrap_or(0),
                    m["size"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        want.sort();
        let txt = fs::read_to_string(format!("/proc/self/{file}")).unwrap_or_default();
        let mut got: Vec<(u64, u64, u64)> = txt
            .lines()
            .filter_map(|l| {
                let v: Vec<u64> = l
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                (v.len() == 3).then(|| (v[0], v[1], v[2]))
            })
            .collect();
        got.sort();
        verdict(
            &format!("linux.{key}"),
            want == got,
            format!("want {want:?} got {got:?}"),
        );
    }
}

fn check_time_offsets(cfg: &Value) {
    let Some(map) = cfg.pointer("/linux/timeOffsets").and_then(Value::as_object) else {
        return;
    };
    let txt = match fs::read_to_string("/proc/self/timens_offsets") {
        Ok(t) => t,
        Err(e) => {
            unverified(
                "linux.timeOffsets",
                format!("/proc/self/timens_offsets: {e}"),
            );
            return;
        }
    };
    for (clock, v) in map {
        let secs = v.get("secs").and_then(Value::as_i64).unwrap_or(0);
        let nsecs = v.get("nanosecs").and_then(Value::as_i64).unwrap_or(0);
        let line = txt
            .lines()
            .find(|l| l.split_whitespace().next() == Some(clock.as_str()));
        let got = line
            .map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .map(String::from)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        verdict(
            &format!("linux.timeOffsets.{clock}"),
            got == format!("{secs} {nsecs}"),
            format!("want {secs} {nsecs} got {got:?}"),
        );
    }
}

// ------------------------------------------------------------------ mounts

#[derive(Debug, Clone)]
struct MountEnt {
    idx: usize,
    root: String,
    point: String,
    opts: Vec<String>,
    optional: Vec<String>,
    fstype: String,
    source: String,
    superopts: Vec<String>,
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push(u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_mountinfo() -> Vec<MountEnt> {
    let txt = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v = vec![];
    for (idx, line) in txt.lines().enumerate() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if f.len() < 6 || sep + 3 > f.len() {
            continue;
        }
        v.push(MountEnt {
            idx,
            root: unescape(f[3]),
            point: unescape(f[4]),
            opts: f[5].split(',').map(String::from).collect(),
            optional: f[6..sep].iter().map(|s| s.to_string()).collect(),
            fstype: f[sep + 1].to_string(),
            source: unescape(f[sep + 2]),
            superopts: f
                .get(sep + 3)
                .map(|s| s.split(',').map(String::from).collect())
                .unwrap_or_default(),
        });
    }
    v
}

fn norm(p: &str) -> String {
    let mut parts: Vec<&str> = vec![];
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            x => parts.push(x),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Topmost mount at `point` (the last one in mountinfo order).
fn top_mount<'a>(mi: &'a [MountEnt], point: &str) -> Option<&'a MountEnt> {
    mi.iter().rev().find(|m| m.point == point)
}

fn check_root(cfg: &Value, mi: &[MountEnt]) {
    if cfg.pointer("/root/readonly").and_then(Value::as_bool) == Some(true) {
        let flag = top_mount(mi, "/")
            .map(|m| m.opts.iter().any(|o| o == "ro"))
            .unwrap_or(false);
        let r = fs::write("/.probe-write-test", b"x");
        let erofs = matches!(&r, Err(e) if e.raw_os_error() == Some(libc::EROFS));
        if r.is_ok() {
            let _ = fs::remove_file("/.probe-write-test");
        }
        verdict(
            "root.readonly",
            flag && erofs,
            format!("mount flag ro: {flag}; write gives EROFS: {erofs} ({r:?})"),
        );
    } else if cfg.pointer("/root/readonly").and_then(Value::as_bool) == Some(false) {
        let r = fs::write("/.probe-write-test", b"x");
        let _ = fs::remove_file("/.probe-write-test");
        verdict("root.readwrite", r.is_ok(), format!("write to / : {r:?}"));
    }
    if let Some(p) = cfg
        .pointer("/linux/rootfsPropagation")
        .and_then(Value::as_str)
    {
        match top_mount(mi, "/") {
            Some(m) => {
                let (ok, why) = propagation_matches(p, &m.optional);
                verdict(
                    "linux.rootfsPropagation",
                    ok,
                    format!("{p}: optional fields {:?} {why}", m.optional),
                );
            }
            None => fail("linux.rootfsPropagation", "no / in mountinfo"),
        }
    }
}

fn propagation_matches(p: &str, optional: &[String]) -> (bool, &'static str) {
    let shared = optional.iter().any(|o| o.starts_with("shared:"));
    let master = optional.iter().any(|o| o.starts_with("master:"));
    let unb = optional.iter().any(|o| o == "unbindable");
    match p.trim_start_matches('r') {
        "shared" => (shared, "(want shared:N)"),
        "slave" => (master && !shared, "(want master:N, not shared)"),
        "private" => (
            !shared && !master && !unb,
            "(want no shared/master/unbindable)",
        ),
        "unbindable" => (unb, "(want unbindable)"),
        _ => (false, "(unknown propagation)"),
    }
}

/// Expected per-mount flags after applying the options in order.
fn expected_flags(
    opts: &[String],
) -> (
    BTreeMap<&'static str, bool>,
    BTreeMap<&'static str, bool>,
    Option<&'static str>,
    Vec<String>,
) {
    // (flag -> set?) for the mount; recursive flags; atime mode; data options
    let mut f: BTreeMap<&'static str, bool> = BTreeMap::new();
    let mut rec: BTreeMap<&'static str, bool> = BTreeMap::new();
    let mut atime: Option<&'static str> = None;
    let mut data = vec![];
    for o in opts {
        match o.as_str() {
            "ro" => {
                f.insert("ro", true);
            }
            "rw" => {
                f.insert("ro", false);
            }
            "nosuid" => {
                f.insert("nosuid", true);
            }
            "suid" => {
                f.insert("nosuid", false);
            }
            "nodev" => {
                f.insert("nodev", true);
            }
            "dev" => {
                f.insert("nodev", false);
            }
            "noexec" => {
                f.insert("noexec", true);
            }
            "exec" => {
                f.insert("noexec", false);
            }
            "nosymfollow" => {
                f.insert("nosymfollow", true);
            }
            "symfollow" => {
                f.insert("nosymfollow", false);
            }
            "nodiratime" => {
                f.insert("nodiratime", true);
            }
            "diratime" => {
                f.insert("nodiratime", false);
            }
            "noatime" => atime = Some("noatime"),
            "relatime" => atime = Some("relatime"),
            "strictatime" => atime = Some("strictatime"),
            "atime" | "norelatime" | "nostrictatime" => {}
            "defaults" => {
                f.insert("ro", false);
                f.insert("nosuid", false);
                f.insert("nodev", false);
                f.insert("noexec", false);
            }
            "rro" => {
                rec.insert("ro", true);
                f.insert("ro", true);
            }
            "rrw" => {
                rec.insert("ro", false);
                f.insert("ro", false);
            }
            "rnosuid" => {
                rec.insert("nosuid", true);
                f.insert("nosuid", true);
            }
            "rsuid" => {
                rec.insert("nosuid", false);
                f.insert("nosuid", false);
            }
            "rnodev" => {
                rec.insert("nodev", true);
                f.insert("nodev", true);
            }
            "rdev" => {
                rec.insert("nodev", false);
                f.insert("nodev", false);
            }
            "rnoexec" => {
                rec.insert("noexec", true);
                f.insert("noexec", true);
            }
            "rexec" => {
                rec.insert("noexec", false);
                f.insert("noexec", false);
            }
            "rnosymfollow" => {
                rec.insert("nosymfollow", true);
                f.insert("nosymfollow", true);
            }
            "rsymfollow" => {
                rec.insert("nosymfollow", false);
                f.insert("nosymfollow", false);
            }
            "rnodiratime" => {
                rec.insert("nodiratime", true);
                f.insert("nodiratime", true);
            }
            "rdiratime" => {
                rec.insert("nodiratime", false);
                f.insert("nodiratime", false);
            }
            "rnoatime" => {
                rec.insert("noatime", true);
                atime = Some("noatime");
            }
            "rstrictatime" => {
                rec.insert("strictatime", true);
                atime = Some("strictatime");
            }
            "rrelatime" => {
                rec.insert("relatime", true);
                atime = Some("relatime");
            }
            "bind" | "rbind" | "shared" | "rshared" | "slave" | "rslave" | "private"
            | "rprivate" | "unbindable" | "runbindable" | "async" | "sync" | "dirsync"
            | "remount" | "silent" | "loud" | "mand" | "nomand" | "iversion" | "noiversion"
            | "lazytime" | "nolazytime" | "tmpcopyup" | "idmap" | "ridmap" | "ratime"
            | "rnorelatime" | "rnostrictatime" => {}
            other => data.push(other.to_string()),
        }
    }
    (f, rec, atime, data)
}

fn flags_ok(m: &MountEnt, f: &BTreeMap<&'static str, bool>, atime: Option<&str>) -> Vec<String> {
    let mut bad = vec![];
    for (flag, want) in f {
        let has = if *flag == "ro" {
            m.opts.iter().any(|o| o == "ro")
        } else {
            m.opts.iter().any(|o| o == flag)
        };
        if has != *want {
            bad.push(format!("{}{flag}", if *want { "" } else { "not " }));
        }
    }
    if let Some(a) = atime {
        let has_noatime = m.opts.iter().any(|o| o == "noatime");
        let has_rel = m.opts.iter().any(|o| o == "relatime");
        let ok = match a {
            "noatime" => has_noatime,
            "relatime" => has_rel,
            "strictatime" => !has_noatime && !has_rel,
            _ => true,
        };
        if !ok {
            bad.push(a.to_string());
        }
    }
    bad
}

fn check_mounts(cfg: &Value, mi: &[MountEnt]) {
    let Some(list) = cfg.get("mounts").and_then(Value::as_array) else {
        return;
    };
    let mut order: Vec<(String, usize)> = vec![];
    for m in list {
        let dest = norm(m.get("destination").and_then(Value::as_str).unwrap_or(""));
        let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
        let opts: Vec<String> = m
            .get("options")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let src = m.get("source").and_then(Value::as_str).unwrap_or("");
        let is_bind = ty == "bind" || opts.iter().any(|o| o == "bind" || o == "rbind");
        let base = format!("mounts[{dest}]");
        // Masked paths may legitimately cover a listed mount (e.g. /sys/firmware):
        // use the first mount at that point that is not a masking one.
        let cands: Vec<&MountEnt> = mi.iter().filter(|e| e.point == dest).collect();
        let Some(ent) = cands
            .iter()
            .rev()
            .find(|e| is_bind || e.fstype == ty || cands.len() == 1)
            .copied()
            .or(cands.last().copied())
        else {
            fail(
                &format!("{base}.present"),
                "no mount at destination in /proc/self/mountinfo",
            );
            continue;
        };
        pass(
            &format!("{base}.present"),
            format!("{} {} on {}", ent.fstype, ent.source, ent.point),
        );
        order.push((dest.clone(), ent.idx));
        if !is_bind && !ty.is_empty() {
            // cgroup on a v2 host shows as cgroup2.
            let ok = ent.fstype == ty
                || (ty == "cgroup" && ent.fstype == "cgroup2")
                || (ty == "cgroup" && ent.fstype == "tmpfs");
            verdict(
                &format!("{base}.type"),
                ok,
                format!("want {ty} got {}", ent.fstype),
            );
        }
        if is_bind {
            // mountinfo's root field is the bound path inside its filesystem:
            // it must be a suffix of the source path.
            let ok = src.ends_with(ent.root.as_str()) || ent.root == "/";
            verdict(
                &format!("{base}.source"),
                ok,
                format!("source {src} mount root {}", ent.root),
            );
        }
        let (f, rec, atime, data) = expected_flags(&opts);
        let bad = flags_ok(ent, &f, atime);
        verdict(
            &format!("{base}.flags"),
            bad.is_empty(),
            format!(
                "options {opts:?} mountinfo {:?}{}",
                ent.opts,
                if bad.is_empty() {
                    String::new()
                } else {
                    format!(" wrong: {bad:?}")
                }
            ),
        );
        if !rec.is_empty() {
            let subs: Vec<&MountEnt> = mi
                .iter()
                .filter(|e| {
                    e.point
                        .starts_with(&format!("{}/", dest.trim_end_matches('/')))
                })
                .collect();
            if subs.is_empty() {
                unverified(
                    &format!("{base}.recursive"),
                    "no submounts to check recursion on",
                );
            } else {
                let mut bad = vec![];
                let ratime = rec
                    .iter()
                    .find(|(k, _)| ["noatime", "strictatime", "relatime"].contains(k))
                    .map(|(k, _)| *k);
                let rflags: BTreeMap<&'static str, bool> = rec
                    .iter()
                    .filter(|(k, _)| !["noatime", "strictatime", "relatime"].contains(k))
                    .map(|(k, v)| (*k, *v))
                    .collect();
                for s in &subs {
                    let b = flags_ok(s, &rflags, ratime);
                    if !b.is_empty() {
                        bad.push(format!("{}: {b:?} ({:?})", s.point, s.opts));
                    }
                }
                verdict(
                    &format!("{base}.recursive"),
                    bad.is_empty(),
                    format!("{} submounts; {}", subs.len(), bad.join("; ")),
                );
            }
        }
        if let Some(p) = opts.iter().rev().find(|o| {
            [
                "shared",
                "rshared",
                "slave",
                "rslave",
                "private",
                "rprivate",
                "unbindable",
                "runbindable",
            ]
            .contains(&o.as_str())
        }) {
            let (ok, why) = propagation_matches(p, &ent.optional);
            verdict(
                &format!("{base}.propagation"),
                ok,
                format!("{p}: optional fields {:?} {why}", ent.optional),
            );
        }
        check_mount_data(&base, &dest, ty, ent, &data);
        if opts.iter().any(|o| o == "idmap" || o == "ridmap") || m.get("uidMappings").is_some() {
            check_idmapped(&base, &dest, m);
        }
    }
    if order.len() > 1 {
        let mut bad = vec![];
        for w in order.windows(2) {
            // A later mount nested in an earlier one or independent: mountinfo
            // lists mounts in creation order.
            if w[1].1 < w[0].1 {
                bad.push(format!("{} before {}", w[1].0, w[0].0));
            }
        }
        verdict(
            "mounts.order",
            bad.is_empty(),
            if bad.is_empty() {
                "mountinfo order follows config order".into()
            } else {
                bad.join("; ")
            },
        );
    }
}

fn check_mount_data(base: &str, dest: &str, ty: &str, ent: &MountEnt, data: &[String]) {
    if data.is_empty() {
        return;
    }
    let mut bad = vec![];
    let mut unv = vec![];
    for d in data {
        let (k, v) = d
            .split_once('=')
            .map(|(a, b)| (a, Some(b)))
            .unwrap_or((d.as_str(), None));
        if ty == "tmpfs" && k == "mode" {
            let want = u32::from_str_radix(v.unwrap_or(""), 8).unwrap_or(0);
            let got = fs::metadata(dest)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(u32::MAX);
            if want != got {
                bad.push(format!("mode want {want:o} got {got:o}"));
            }
            continue;
        }
        if ty == "tmpfs" && k == "size" {
            let want = parse_size(v.unwrap_or(""));
            // SAFETY: statvfs into a zeroed struct.
            let got = unsafe {
                let mut s: libc::statvfs = std::mem::zeroed();
                let p = CString::new(dest).unwrap();
                if libc::statvfs(p.as_ptr(), &mut s) == 0 {
                    Some(s.f_blocks as u64 * s.f_frsize as u64)
                } else {
                    None
                }
            };
            if want.is_some() && got != want {
                bad.push(format!("size want {want:?} got {got:?}"));
            }
            continue;
        }
        let sup = ent
            .superopts
            .iter()
            .find(|s| s.split_once('=').map(|(a, _)| a).unwrap_or(s) == k);
        match (sup, v) {
            (Some(s), Some(v)) => {
                let sv = s.split_once('=').map(|(_, b)| b).unwrap_or("");
                let nz = |x: &str| x.trim_start_matches('0').to_string();
                if nz(sv) != nz(v) {
                    bad.push(format!("{k} want {v} got {sv}"));
                }
            }
            (Some(_), None) => {}
            (None, _) => unv.push(d.clone()),
        }
    }
    let check = format!("{base}.data");
    if !bad.is_empty() {
        fail(&check, format!("{bad:?} superopts {:?}", ent.superopts));
    } else if !unv.is_empty() {
        unverified(
            &check,
            format!(
                "not visible in mountinfo: {unv:?} (superopts {:?})",
                ent.superopts
            ),
        );
    } else {
        pass(&check, format!("{data:?}"));
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let (num, mul) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1024),
        'm' | 'M' => (&s[..s.len() - 1], 1024 * 1024),
        'g' | 'G' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mul)
}

fn check_idmapped(base: &str, dest: &str, m: &Value) {
    // The driver puts a file owned by 0:0 (host) at the root of the source.
    // Through an idmapped mount whose mapping maps containerID c -> hostID h,
    // an on-disk id h is shown as c... we check the mapping for id 0 in both
    // directions the spec allows and report what is seen.
    let p = format!("{}/idmap-probe-file", dest.trim_end_matches('/'));
    let Ok(md) = fs::metadata(&p) else {
        unverified(&format!("{base}.idmap"), format!("{p} missing"));
        return;
    };
    let want_uid = m.get("uidMappings").and_then(|a| a.get(0)).and_then(|e| {
        let c = e["containerID"].as_u64()?;
        let h = e["hostID"].as_u64()?;
        // file on disk is owned by host uid 0 (== hostID when hostID is 0)
        if h == 0 {
            Some(c)
        } else if c == 0 {
            Some(h)
        } else {
            None
        }
    });
    let want_gid = m.get("gidMappings").and_then(|a| a.get(0)).and_then(|e| {
        let c = e["containerID"].as_u64()?;
        let h = e["hostID"].as_u64()?;
        if h == 0 {
            Some(c)
        } else if c == 0 {
            Some(h)
        } else {
            None
        }
    });
    let ok = want_uid.map(|u| u == md.uid() as u64).unwrap_or(true)
        && want_gid.map(|g| g == md.gid() as u64).unwrap_or(true);
    verdict(
        &format!("{base}.idmap"),
        ok,
        format!(
            "file owned {}:{} want {want_uid:?}:{want_gid:?}",
            md.uid(),
            md.gid()
        ),
    );
}

fn check_masked(cfg: &Value, mi: &[MountEnt]) {
    let Some(list) = cfg.pointer("/linux/maskedPaths").and_then(Value::as_array) else {
        return;
    };
    for p in list.iter().filter_map(Value::as_str) {
        let check = format!("linux.maskedPaths[{p}]");
        let md = match fs::symlink_metadata(p) {
            Ok(m) => m,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                emit(
                    &check,
                    Some(true),
                    "does not exist in the container (nothing to mask)",
                );
                continue;
            }
            Err(e) => {
                // Unreadable even for stat: masked in effect.
                pass(&check, format!("stat fails: {e}"));
                continue;
            }
        };
        if md.is_dir() {
            let entries = fs::read_dir(p).map(|r| r.count()).unwrap_or(0);
            let ro = top_mount(mi, p)
                .map(|m| m.opts.iter().any(|o| o == "ro"))
                .unwrap_or(false);
            verdict(
                &check,
                entries == 0 && ro,
                format!("directory: {entries} entries, read-only mount on it: {ro}"),
            );
        } else {
            let ft = md.file_type();
            let is_null = ft.is_char_device() && md.rdev() == libc::makedev(1, 3);
            let content = fs::read(p).map(|b| b.len()).unwrap_or(0);
            verdict(
                &check,
                is_null && content == 0,
                format!("file: char 1:3 (/dev/null) {is_null}, readable bytes {content}"),
            );
        }
    }
}

fn check_readonly(cfg: &Value, mi: &[MountEnt]) {
    let Some(list) = cfg
        .pointer("/linux/readonlyPaths")
        .and_then(Value::as_array)
    else {
        return;
    };
    for p in list.iter().filter_map(Value::as_str) {
        let check = format!("linux.readonlyPaths[{p}]");
        if fs::symlink_metadata(p).is_err() {
            pass(&check, "does not exist in the container");
            continue;
        }
        let ro = top_mount(mi, p).map(|m| m.opts.iter().any(|o| o == "ro"));
        // Functional: try a write that would otherwise be possible for root.
        let md = fs::metadata(p).ok();
        let write_err = if md.as_ref().map(|m| m.is_dir()).unwrap_or(false) {
            let t = format!("{}/.probe-ro-test", p.trim_end_matches('/'));
            let r = fs::write(&t, b"x");
            let _ = fs::remove_file(&t);
            match r.err().and_then(|e| e.raw_os_error()) {
                // Some filesystems (procfs) refuse new files before the ro check:
                // open an existing file inside for writing instead.
                Some(e) if e != libc::EROFS => first_file(p, 3)
                    .map(|f| {
                        fs::OpenOptions::new()
                            .write(true)
                            .open(f)
                            .err()
                            .and_then(|e| e.raw_os_error())
                    })
                    .unwrap_or(Some(e)),
                other => other,
            }
        } else {
            fs::OpenOptions::new()
                .write(true)
                .open(p)
                .err()
                .and_then(|e| e.raw_os_error())
        };
        let ok = ro == Some(true) && write_err == Some(libc::EROFS);
        verdict(
            &check,
            ok,
            format!(
                "ro mount at path: {ro:?}; write errno {write_err:?} (want EROFS {})",
                libc::EROFS
            ),
        );
    }
}

fn first_file(dir: &str, depth: u32) -> Option<String> {
    let mut subdirs = vec![];
    for e in fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_file() && m.permissions().mode() & 0o200 != 0 {
            return Some(p.display().to_string());
        }
        if m.is_dir() {
            subdirs.push(p.display().to_string());
        }
    }
    if depth > 0 {
        for d in subdirs {
            if let Some(f) = first_file(&d, depth - 1) {
                return Some(f);
            }
        }
    }
    None
}

fn dev_check(
    check: &str,
    path: &str,
    ty: &str,
    major: u64,
    minor: u64,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) {
    let md = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            fail(check, format!("{path}: {e}"));
            return;
        }
    };
    let ft = md.file_type();
    let mut bad = vec![];
    let type_ok = match ty {
        "c" | "u" => ft.is_char_device(),
        "b" => ft.is_block_device(),
        "p" => ft.is_fifo(),
        _ => false,
    };
    if !type_ok {
        bad.push(format!("type want {ty} got {:?}", ft));
    }
    if ty != "p" {
        let (ma, mi) = (libc::major(md.rdev()) as u64, libc::minor(md.rdev()) as u64);
        if (ma, mi) != (major, minor) {
            bad.push(format!("rdev want {major}:{minor} got {ma}:{mi}"));
        }
    }
    if let Some(m) = mode {
        let got = md.permissions().mode() & 0o7777;
        if got != m & 0o7777 {
            bad.push(format!("mode want {:o} got {got:o}", m & 0o7777));
        }
    }
    if let Some(u) = uid {
        if md.uid() != u {
            bad.push(format!("uid want {u} got {}", md.uid()));
        }
    }
    if let Some(g) = gid {
        if md.gid() != g {
            bad.push(format!("gid want {g} got {}", md.gid()));
        }
    }
    verdict(
        check,
        bad.is_empty(),
        if bad.is_empty() {
            format!("{path} ok")
        } else {
            bad.join("; ")
        },
    );
}

fn check_devices(cfg: &Value) {
    if let Some(list) = cfg.pointer("/linux/devices").and_then(Value::as_array) {
        for d in list {
            let path = d.get("path").and_then(Value::as_str).unwrap_or("?");
            dev_check(
                &format!("linux.devices[{path}]"),
                path,
                d.get("type").and_then(Value::as_str).unwrap_or("?"),
                d.get("major").and_then(Value::as_u64).unwrap_or(0),
                d.get("minor").and_then(Value::as_u64).unwrap_or(0),
                d.get("fileMode").and_then(Value::as_u64).map(|x| x as u32),
                d.get("uid").and_then(Value::as_u64).map(|x| x as u32),
                d.get("gid").and_then(Value::as_u64).map(|x| x as u32),
            );
        }
    }
    let listed = |p: &str| {
        cfg.pointer("/linux/devices")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .any(|d| d.get("path").and_then(Value::as_str) == Some(p))
            })
            .unwrap_or(false)
    };
    for (p, ma, mi) in [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ] {
        if listed(p) {
            continue;
        }
        dev_check(
            &format!("linux.defaultDevices[{p}]"),
            p,
            "c",
            ma,
            mi,
            None,
            None,
            None,
        );
    }
    // functional: /dev/null swallows, /dev/zero gives zeros, /dev/full gives ENOSPC
    {
        let w = fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .and_then(|mut f| f.write_all(b"x"));
        let z = fs::File::open("/dev/zero").and_then(|mut f| {
            let mut b = [1u8; 16];
            std::io::Read::read_exact(&mut f, &mut b).map(|_| b.iter().all(|&x| x == 0))
        });
        let full = fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .and_then(|mut f| f.write_all(b"x"))
            .err()
            .and_then(|e| e.raw_os_error());
        let ok = w.is_ok() && matches!(z, Ok(true)) && full == Some(libc::ENOSPC);
        verdict(
            "linux.defaultDevices.usable",
            ok,
            format!(
                "write /dev/null {w:?}; read /dev/zero zeros {z:?}; write /dev/full errno {full:?}"
            ),
        );
    }
    match fs::symlink_metadata("/dev/ptmx") {
        Ok(m) if m.file_type().is_symlink() => {
            let t = fs::read_link("/dev/ptmx")
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            verdict(
                "linux.defaultDevices[/dev/ptmx]",
                t == "pts/ptmx" || t == "/dev/pts/ptmx",
                format!("symlink to {t}"),
            );
        }
        Ok(m) => {
            let ok = m.file_type().is_char_device()
                && libc::major(m.rdev()) == 5
                && libc::minor(m.rdev()) == 2;
            verdict(
                "linux.defaultDevices[/dev/ptmx]",
                ok,
                format!("char {}:{}", libc::major(m.rdev()), libc::minor(m.rdev())),
            );
        }
        Err(e) => fail("linux.defaultDevices[/dev/ptmx]", format!("{e}")),
    }
    if cfg.pointer("/process/terminal").and_then(Value::as_bool) == Some(true) {
        // SAFETY: isatty and ioctl(TIOCGWINSZ) on our own stdio.
        let ttys: Vec<bool> = (0..3).map(|fd| unsafe { libc::isatty(fd) } == 1).collect();
        verdict(
            "process.terminal",
            ttys.iter().all(|&t| t),
            format!("isatty(0,1,2) = {ttys:?}"),
        );
        if let Some(cs) = cfg.pointer("/process/consoleSize") {
            let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
            // SAFETY: fills ws.
            let r = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) };
            let (h, w) = (
                cs["height"].as_u64().unwrap_or(0),
                cs["width"].as_u64().unwrap_or(0),
            );
            verdict(
                "process.consoleSize",
                r == 0 && ws.ws_row as u64 == h && ws.ws_col as u64 == w,
                format!("want {h}x{w} got {}x{} (ioctl {r})", ws.ws_row, ws.ws_col),
            );
        }
        let ok = fs::metadata("/dev/console")
            .map(|m| m.file_type().is_char_device())
            .unwrap_or(false);
        verdict(
            "linux.defaultDevices[/dev/console]",
            ok,
            "terminal: /dev/console must be the pty",
        );
    }
    for (l, t) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        let got = fs::read_link(l).map(|p| p.display().to_string());
        verdict(
            &format!("runtime-linux.devSymlinks[{l}]"),
            got.as_deref().ok() == Some(t),
            format!("want -> {t} got {got:?}"),
        );
    }
}

fn check_sysctl(cfg: &Value) {
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

fn check_personality(cfg: &Value) {
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

fn check_io_priority(cfg: &Value) {
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

fn check_scheduler(cfg: &Value) {
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

fn parse_cpulist(s: &str) -> Vec<usize> {
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

fn check_cpu_affinity(cfg: &Value) {
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

// ----------------------------------------------------------------- cgroups

fn cgroup_dir() -> Result<String, String> {
    let cg = fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
    let p = cg
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no cgroup v2 entry in /proc/self/cgroup")?;
    let mi = read_mountinfo();
    let m = mi
        .iter()
        .rev()
        .find(|m| m.fstype == "cgroup2")
        .ok_or("no cgroup2 mount in the container")?;
    // The mount root (cgroup ns root or bind) corresponds to m.root.
    let rel = if m.root == "/" {
        p.to_string()
    } else {
        p.strip_prefix(m.root.as_str()).unwrap_or(p).to_string()
    };
    Ok(format!(
        "{}/{}",
        m.point.trim_end_matches('/'),
        rel.trim_start_matches('/')
    )
    .trim_end_matches('/')
    .to_string())
}

fn cg_read(dir: &str, file: &str) -> Result<String, String> {
    fs::read_to_string(format!("{dir}/{file}"))
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("{file}: {e}"))
}

fn cg_expect(check: &str, dir: &str, file: &str, want: &str) {
    match cg_read(dir, file) {
        Ok(got) => verdict(
            check,
            got == want,
            format!("{file}: want {want:?} got {got:?}"),
        ),
        Err(e) => fail(check, e),
    }
}

fn check_cgroups(cfg: &Value, env: &HashMap<String, String>) {
    let res = cfg.pointer("/linux/resources");
    let wants_cg = res.is_some() || env.contains_key("PROBE_CGROUP_EXPECT");
    if !wants_cg {
        return;
    }
    let dir = match cgroup_dir() {
        Ok(d) => d,
        Err(e) => {
            unverified("linux.resources", format!("cannot locate own cgroup: {e}"));
            return;
        }
    };
    let Some(res) = res else { return };
    if let Some(m) = res.get("memory") {
        let lim = m.get("limit").and_then(Value::as_i64);
        if let Some(l) = lim {
            cg_expect(
                "linux.resources.memory.limit",
                &dir,
                "memory.max",
                &if l < 0 { "max".into() } else { l.to_string() },
            );
        }
        if let Some(r) = m.get("reservation").and_then(Value::as_i64) {
            cg_expect(
                "linux.resources.memory.reservation",
                &dir,
                "memory.low",
                &if r < 0 { "max".into() } else { r.to_string() },
            );
        }
        if let Some(s) = m.get("swap").and_then(Value::as_i64) {
            let want = if s < 0 {
                "max".to_string()
            } else {
                (s - lim.unwrap_or(0)).to_string()
            };
            cg_expect(
                "linux.resources.memory.swap",
                &dir,
                "memory.swap.max",
                &want,
            );
        }
    }
    if let Some(c) = res.get("cpu") {
        if let Some(sh) = c.get("shares").and_then(Value::as_u64) {
            // runc ≤ 1.2's linear mapping, or the one runc uses since 1.3 (runc PR #4785,
            // opencontainers/cgroups): either is what some clients expect, as kubernetes'
            // e2e tests accept both.
            let old = if sh == 0 {
                100
            } else {
                1 + ((sh.saturating_sub(2)) * 9999) / 262142
            };
            let l = (sh.clamp(2, 262144) as f64).log2();
            let new = 10f64.powf((l * l + 125.0 * l) / 612.0 - 7.0 / 34.0).ceil() as u64;
            match cg_read(&dir, "cpu.weight") {
                Ok(got) => verdict(
                    "linux.resources.cpu.shares",
                    got == old.to_string() || got == new.to_string(),
                    format!("cpu.weight: want {old:?} or {new:?} got {got:?}"),
                ),
                Err(e) => fail("linux.resources.cpu.shares", e),
            }
        }
        if c.get("quota").is_some() || c.get("period").is_some() {
            let q = c.get("quota").and_then(Value::as_i64);
            let p = c.get("period").and_then(Value::as_u64).unwrap_or(100000);
            let qs = match q {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".into(),
            };
            cg_expect(
                "linux.resources.cpu.quota",
                &dir,
                "cpu.max",
                &format!("{qs} {p}"),
            );
        }
        if let Some(b) = c.get("burst").and_then(Value::as_u64) {
            cg_expect(
                "linux.resources.cpu.burst",
                &dir,
                "cpu.max.burst",
                &b.to_string(),
            );
        }
        if let Some(s) = c.get("cpus").and_then(Value::as_str) {
            match cg_read(&dir, "cpuset.cpus") {
                Ok(g) => verdict(
                    "linux.resources.cpu.cpus",
                    parse_cpulist(&g) == parse_cpulist(s),
                    format!("want {s} got {g}"),
                ),
                Err(e) => fail("linux.resources.cpu.cpus", e),
            }
        }
        if let Some(s) = c.get("mems").and_then(Value::as_str) {
            match cg_read(&dir, "cpuset.mems") {
                Ok(g) => verdict(
                    "linux.resources.cpu.mems",
                    parse_cpulist(&g) == parse_cpulist(s),
                    format!("want {s} got {g}"),
                ),
                Err(e) => fail("linux.resources.cpu.mems", e),
            }
        }
        if let Some(i) = c.get("idle").and_then(Value::as_i64) {
            cg_expect("linux.resources.cpu.idle", &dir, "cpu.idle", &i.to_string());
        }
    }
    if let Some(l) = res.pointer("/pids/limit").and_then(Value::as_i64) {
        cg_expect(
            "linux.resources.pids",
            &dir,
            "pids.max",
            &if l <= 0 { "max".into() } else { l.to_string() },
        );
    }
    if let Some(b) = res.get("blockIO") {
        if let Some(w) = b.get("weight").and_then(Value::as_u64) {
            let bfq = cg_read(&dir, "io.bfq.weight");
            let io = cg_read(&dir, "io.weight");
            let conv = 1 + (w.saturating_sub(10)) * 9999 / 990;
            let ok = matches!(&bfq, Ok(s) if s.split_whitespace().any(|x| x == w.to_string()))
                || matches!(&io, Ok(s) if s.split_whitespace().any(|x| x == conv.to_string() || x == w.to_string()));
            verdict(
                "linux.resources.blockIO.weight",
                ok,
                format!("weight {w}: io.bfq.weight {bfq:?} io.weight {io:?} (converted {conv})"),
            );
        }
        let iomax = cg_read(&dir, "io.max").unwrap_or_default();
        for (key, field) in [
            ("throttleReadBpsDevice", "rbps"),
            ("throttleWriteBpsDevice", "wbps"),
            ("throttleReadIOPSDevice", "riops"),
            ("throttleWriteIOPSDevice", "wiops"),
        ] {
            for d in b
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let (ma, mi, rate) = (
                    d["major"].as_u64().unwrap_or(0),
                    d["minor"].as_u64().unwrap_or(0),
                    d["rate"].as_u64().unwrap_or(0),
                );
                let line = iomax
                    .lines()
                    .find(|l| l.starts_with(&format!("{ma}:{mi} ")));
                let ok = line
                    .map(|l| l.split_whitespace().any(|x| x == format!("{field}={rate}")))
                    .unwrap_or(false);
                verdict(
                    &format!("linux.resources.blockIO.{key}"),
                    ok,
                    format!("want {ma}:{mi} {field}={rate}; io.max {iomax:?}"),
                );
            }
        }
    }
    for h in res
        .get("hugepageLimits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let size = h["pageSize"].as_str().unwrap_or("?");
        let lim = h["limit"].as_u64().unwrap_or(0);
        cg_expect(
            &format!("linux.resources.hugepageLimits[{size}]"),
            &dir,
            &format!("hugetlb.{size}.max"),
            &lim.to_string(),
        );
    }
    if let Some(u) = res.get("unified").and_then(Value::as_object) {
        for (k, v) in u {
            let want = v.as_str().unwrap_or("").trim();
            match cg_read(&dir, k) {
                Ok(g) => verdict(
                    &format!("linux.resources.unified[{k}]"),
                    g == want,
                    format!("want {want:?} got {g:?}"),
                ),
                Err(e) => fail(&format!("linux.resources.unified[{k}]"), e),
            }
        }
    }
}

fn check_device_access(env: &HashMap<String, String>) {
    for (var, want_ok) in [
        ("PROBE_DEVICE_DENIED", false),
        ("PROBE_DEVICE_ALLOWED", true),
    ] {
        let Some(list) = env.get(var) else { continue };
        for p in list.split(',').filter(|s| !s.is_empty()) {
            let r = fs::OpenOptions::new().read(true).open(p);
            let check = format!("linux.resources.devices[{p}]");
            let eperm = matches!(&r, Err(e) if e.raw_os_error() == Some(libc::EPERM));
            match (&r, want_ok) {
                (Ok(_), true) => pass(&check, "open allowed"),
                // No driver behind the number: the open got past the device cgroup.
                (Err(e), true) if !eperm => {
                    pass(&check, format!("not denied by the device cgroup ({e})"))
                }
                (Err(e), false) if e.raw_os_error() == Some(libc::EPERM) => {
                    pass(&check, "open denied with EPERM")
                }
                _ => fail(
                    &check,
                    format!(
                        "want {}, open gave {r:?}",
                        if want_ok { "success" } else { "EPERM" }
                    ),
                ),
            }
        }
    }
}
