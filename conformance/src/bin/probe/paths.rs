//! maskedPaths and readonlyPaths.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use serde_json::Value;

use crate::mountinfo::{top_mount, MountEnt};
use crate::{emit, pass, verdict};

pub(crate) fn check_masked(cfg: &Value, mi: &[MountEnt]) {
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

pub(crate) fn check_readonly(cfg: &Value, mi: &[MountEnt]) {
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
