//! linux.devices, the default devices and /dev symlinks, and whether the device cgroup
//! lets the container use them.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use serde_json::Value;

use crate::{fail, pass, verdict};

/// What a device node must be: its type, number and (where the config says) mode and owner.
struct Node<'a> {
    ty: &'a str,
    major: u64,
    minor: u64,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
}

fn dev_check(check: &str, path: &str, want: Node) {
    let Node {
        ty,
        major,
        minor,
        mode,
        uid,
        gid,
    } = want;
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

pub(crate) fn check_devices(cfg: &Value) {
    if let Some(list) = cfg.pointer("/linux/devices").and_then(Value::as_array) {
        for d in list {
            let path = d.get("path").and_then(Value::as_str).unwrap_or("?");
            dev_check(
                &format!("linux.devices[{path}]"),
                path,
                Node {
                    ty: d.get("type").and_then(Value::as_str).unwrap_or("?"),
                    major: d.get("major").and_then(Value::as_u64).unwrap_or(0),
                    minor: d.get("minor").and_then(Value::as_u64).unwrap_or(0),
                    mode: d.get("fileMode").and_then(Value::as_u64).map(|x| x as u32),
                    uid: d.get("uid").and_then(Value::as_u64).map(|x| x as u32),
                    gid: d.get("gid").and_then(Value::as_u64).map(|x| x as u32),
                },
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
            Node {
                ty: "c",
                major: ma,
                minor: mi,
                mode: None,
                uid: None,
                gid: None,
            },
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

pub(crate) fn check_device_access(env: &HashMap<String, String>) {
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
