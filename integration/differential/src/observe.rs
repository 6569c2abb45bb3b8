//! The observer: the container's process (/observe in the rootfs). It reports what the
//! kernel shows from inside, as one JSON line, then takes orders on stdin. Protocol
//! (stdout lines, then stdin lines):
//!
//! ```text
//! {"inside": {...}}
//! {"ready": true}
//! < mount PATH      mount a tmpfs at PATH (the container-to-host propagation probe)
//! {"mounted": {"path": PATH, "errno": N}}
//! < exit            exit as /observe-plan.json says (code or signal)
//! ```
//!
//! Syscalls rather than /proc where possible, so a container without /proc still reports.

use crate::sys;
use serde_json::{json, Map, Value};
use std::fs;
use std::io::{BufRead, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};

const RLIMITS: [(&str, u32); 16] = [
    ("RLIMIT_CPU", 0),
    ("RLIMIT_FSIZE", 1),
    ("RLIMIT_DATA", 2),
    ("RLIMIT_STACK", 3),
    ("RLIMIT_CORE", 4),
    ("RLIMIT_RSS", 5),
    ("RLIMIT_NPROC", 6),
    ("RLIMIT_NOFILE", 7),
    ("RLIMIT_MEMLOCK", 8),
    ("RLIMIT_AS", 9),
    ("RLIMIT_LOCKS", 10),
    ("RLIMIT_SIGPENDING", 11),
    ("RLIMIT_MSGQUEUE", 12),
    ("RLIMIT_NICE", 13),
    ("RLIMIT_RTPRIO", 14),
    ("RLIMIT_RTTIME", 15),
];

fn say(v: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

pub fn main() -> i32 {
    // The umask first: nothing below may change it.
    let umask = sys::umask();
    let plan: Value = fs::read_to_string("/observe-plan.json")
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    let mut o = Map::new();
    o.insert("umask".into(), json!(format!("{umask:04o}")));
    identity(&mut o);
    o.insert(
        "cwd".into(),
        json!(std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|e| format!("error {}", errno_of(&e)))),
    );
    o.insert(
        "env".into(),
        json!(std::env::vars_os()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect::<Vec<_>>()),
    );
    let (host, domain) = sys::uname();
    o.insert("hostname".into(), json!(host));
    o.insert("domainname".into(), json!(domain));
    let mut rl = Map::new();
    for (name, res) in RLIMITS {
        let v = match sys::getrlimit(res) {
            Ok((s, h)) => json!([limit(s), limit(h)]),
            Err(e) => json!(format!("errno {e}")),
        };
        rl.insert(name.into(), v);
    }
    o.insert("rlimits".into(), Value::Object(rl));
    o.insert("net".into(), json!({
        "interfaces": sys::interfaces(),
        "lo": sys::if_flags("lo").map(|f| format!("{f:#x}")).unwrap_or_else(|e| format!("errno {e}")),
    }));
    o.insert("paths".into(), paths(&plan));
    o.insert("dev".into(), dev_tree());
    o.insert("devaccess".into(), dev_access(&plan));
    o.insert(
        "mknod".into(),
        json!(match sys::mknod_char("/dev/.dfh-mknod", 1, 3) {
            Ok(()) => {
                let _ = fs::remove_file("/dev/.dfh-mknod");
                0
            }
            Err(e) => e,
        }),
    );
    o.insert("sysctls".into(), sysctls(&plan));
    if plan["seccomp_probe"] == json!(true) {
        o.insert("seccomp_probe".into(), json!(sys::getpriority_errno()));
    }
    o.insert("fds".into(), fds());
    let (sid, pgid, fg) = sys::session();
    o.insert(
        "tty".into(),
        json!({
            "isatty": [sys::isatty(0), sys::isatty(1), sys::isatty(2)],
            "session_leader": sid, "group_leader": pgid, "foreground": fg,
        }),
    );
    o.insert("pid1".into(), json!(sys::getpid() == 1));
    o.insert("ppid0".into(), json!(sys::getppid() == 0));
    say(json!({"inside": o}));
    say(json!({"ready": true}));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if let Some(path) = line.strip_prefix("mount ") {
            let errno = sys::mount("dfh-c2h", path, "tmpfs", 0, "size=64k")
                .err()
                .unwrap_or(0);
            say(json!({"mounted": {"path": path, "errno": errno}}));
        } else if line == "exit" {
            break;
        }
    }
    if let Some(sig) = plan["signal"].as_i64() {
        sys::raise(sig as i32);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    plan["exit"].as_i64().unwrap_or(0) as i32
}

fn limit(v: u64) -> Value {
    if v == u64::MAX {
        json!("unlimited")
    } else {
        json!(v)
    }
}

fn identity(o: &mut Map<String, Value>) {
    let (ru, eu, su) = sys::getresuid();
    let (rg, eg, sg) = sys::getresgid();
    o.insert(
        "ids".into(),
        json!({"uid": [ru, eu, su], "gid": [rg, eg, sg], "groups": sys::getgroups()}),
    );
    let mut caps = Map::new();
    match sys::capget() {
        Ok((e, p, i)) => {
            caps.insert("effective".into(), json!(format!("{e:016x}")));
            caps.insert("permitted".into(), json!(format!("{p:016x}")));
            caps.insert("inheritable".into(), json!(format!("{i:016x}")));
        }
        Err(e) => {
            caps.insert("capget".into(), json!(format!("errno {e}")));
        }
    }
    let (mut bnd, mut amb) = (0u64, 0u64);
    for cap in 0..64u64 {
        match sys::prctl(libc::PR_CAPBSET_READ, cap, 0) {
            Ok(1) => bnd |= 1 << cap,
            Ok(_) => {}
            Err(_) => break,
        }
        if let Ok(1) = sys::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_IS_SET as u64,
            cap,
        ) {
            amb |= 1 << cap;
        }
    }
    caps.insert("bounding".into(), json!(format!("{bnd:016x}")));
    caps.insert("ambient".into(), json!(format!("{amb:016x}")));
    o.insert("caps".into(), Value::Object(caps));
    o.insert(
        "nnp".into(),
        json!(sys::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0).unwrap_or(-1)),
    );
    o.insert(
        "seccomp".into(),
        json!(sys::prctl(libc::PR_GET_SECCOMP, 0, 0)
            .map(|m| m.to_string())
            .unwrap_or_else(|e| format!("errno {e}"))),
    );
}

/// A file type as `ls -l` would letter it (d, l, c, b, p, s, -).
fn kind(ft: fs::FileType) -> &'static str {
    if ft.is_dir() {
        "d"
    } else if ft.is_symlink() {
        "l"
    } else if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else if ft.is_fifo() {
        "p"
    } else if ft.is_socket() {
        "s"
    } else {
        "-"
    }
}

/// The strings of the plan's array `key`.
fn strings<'a>(plan: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    plan[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// Masked and read-only paths (and the defaults): what a reader and a writer meet there.
fn paths(plan: &Value) -> Value {
    let mut out = Map::new();
    for p in strings(plan, "paths") {
        let v = match fs::symlink_metadata(p) {
            Err(e) => json!({"exists": false, "errno": errno_of(&e)}),
            Ok(md) => {
                let ft = md.file_type();
                let mut v = json!({"type": kind(ft), "ro": sys::statvfs_flags(p).map(|f| f & libc::ST_RDONLY != 0).ok()});
                if ft.is_dir() {
                    match fs::read_dir(p) {
                        Ok(d) => v["entries"] = json!(d.count() > 0),
                        Err(e) => v["readable"] = json!(errno_of(&e)),
                    }
                } else if !ft.is_symlink() {
                    v["readable"] = json!(read_probe(p));
                    if ft.is_char_device() {
                        v["rdev"] = json!(format!(
                            "{}:{}",
                            libc::major(md.rdev()),
                            libc::minor(md.rdev())
                        ));
                    }
                }
                v
            }
        };
        out.insert(p.to_string(), v);
    }
    Value::Object(out)
}

/// Whether a read returns data ("data"), nothing ("empty"), or an errno.
fn read_probe(p: &str) -> Value {
    use std::io::Read;
    match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(p)
    {
        Err(e) => json!(errno_of(&e)),
        Ok(mut f) => {
            let mut buf = [0u8; 16];
            match f.read(&mut buf) {
                Ok(0) => json!("empty"),
                Ok(_) => json!("data"),
                Err(e) => json!(errno_of(&e)),
            }
        }
    }
}

/// Everything under /dev (three levels, no symlink followed): type, numbers, mode, owner.
fn dev_tree() -> Value {
    let mut out = Map::new();
    fn walk(dir: &str, depth: u32, out: &mut Map<String, Value>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = format!("{}/{}", dir, e.file_name().to_string_lossy());
            let Ok(md) = fs::symlink_metadata(&path) else {
                continue;
            };
            let ft = md.file_type();
            let desc = if ft.is_symlink() {
                format!(
                    "link -> {}",
                    fs::read_link(&path)
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                )
            } else {
                let kind = kind(ft);
                let nums = if ft.is_char_device() || ft.is_block_device() {
                    format!(" {}:{}", libc::major(md.rdev()), libc::minor(md.rdev()))
                } else {
                    String::new()
                };
                format!(
                    "{kind}{nums} {:04o} {}:{}",
                    md.mode() & 0o7777,
                    md.uid(),
                    md.gid()
                )
            };
            out.insert(path.clone(), json!(desc));
            if ft.is_dir() && depth < 3 {
                walk(&path, depth + 1, out);
            }
        }
    }
    walk("/dev", 1, &mut out);
    Value::Object(out)
}

/// Open every device node of /dev (and the config's) for reading and for writing: the
/// device cgroup's verdict (errno; 0 = allowed). Block devices are opened read-only.
fn dev_access(plan: &Value) -> Value {
    let mut paths: Vec<String> = fs::read_dir("/dev")
        .map(|rd| {
            rd.flatten()
                .map(|e| format!("/dev/{}", e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default();
    paths.extend(strings(plan, "devices").map(String::from));
    paths.sort();
    paths.dedup();
    let mut out = Map::new();
    for p in paths {
        let Ok(md) = fs::symlink_metadata(&p) else {
            continue;
        };
        let ft = md.file_type();
        if !(ft.is_char_device() || ft.is_block_device()) {
            continue;
        }
        let open = |write: bool| -> i32 {
            let mut o = fs::OpenOptions::new();
            if write {
                o.write(true);
            } else {
                o.read(true);
            }
            match o.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(&p) {
                Ok(_) => 0,
                Err(e) => errno_of(&e),
            }
        };
        let w = if ft.is_block_device() {
            Value::Null
        } else {
            json!(open(true))
        };
        out.insert(p.clone(), json!({"read": open(false), "write": w}));
    }
    Value::Object(out)
}

fn sysctls(plan: &Value) -> Value {
    let mut out = Map::new();
    for key in strings(plan, "sysctls") {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let v = match fs::read_to_string(&path) {
            Ok(s) => json!(s.split_whitespace().collect::<Vec<_>>().join(" ")),
            Err(e) => json!(format!("errno {}", errno_of(&e))),
        };
        out.insert(key.to_string(), v);
    }
    Value::Object(out)
}

/// Open fds beyond stdio: (fd, close-on-exec, what it is where /proc tells).
fn fds() -> Value {
    let mut out = vec![];
    for fd in 0..1024 {
        if let Some(cloexec) = sys::fd_flags(fd) {
            let what = fs::read_link(format!("/proc/self/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "?".into());
            out.push(json!({"fd": fd, "cloexec": cloexec, "what": what}));
        }
    }
    Value::Array(out)
}
