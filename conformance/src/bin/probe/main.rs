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
use std::collections::HashMap;
use std::fs;
use std::io::Write;

mod attrs;
mod cgroups;
mod devices;
mod mountinfo;
mod mounts;
mod namespaces;
mod paths;
mod process;
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
    process::check_umask(&cfg);
    process::check_fds(&env);
    process::check_process(&cfg, &env);
    process::check_user(&cfg);
    process::check_caps(&cfg);
    process::check_rlimits(&cfg);
    process::check_nnp(&cfg);
    process::check_oom(&cfg, &env);
    namespaces::check_uts(&cfg);
    namespaces::check_namespaces(&cfg, &env);
    namespaces::check_idmaps(&cfg);
    namespaces::check_time_offsets(&cfg);
    let mi = mountinfo::read_mountinfo();
    mounts::check_root(&cfg, &mi);
    mounts::check_mounts(&cfg, &mi);
    paths::check_masked(&cfg, &mi);
    paths::check_readonly(&cfg, &mi);
    devices::check_devices(&cfg);
    attrs::check_sysctl(&cfg);
    attrs::check_personality(&cfg);
    attrs::check_io_priority(&cfg);
    attrs::check_scheduler(&cfg);
    attrs::check_cpu_affinity(&cfg);
    cgroups::check_cgroups(&cfg, &env);
    devices::check_device_access(&env);
    seccomp::check(&cfg, &env);
    emit("probe.done", Some(true), "");
}
