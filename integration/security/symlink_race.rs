//! CVE-2021-30465 (runc: a mount destination swapped for a symlink between the runtime's check
//! and its mount(2), so the mount lands outside the rootfs) and CVE-2024-45310 (runc: mount
//! targets created with mkdir/open through a path component a shared volume swapped for a
//! symlink to the host).
//!
//! The attack: two rootfs directories are swapped, in a tight loop with
//! renameat2(RENAME_EXCHANGE), with symlinks to a scratch host directory (one absolute, one
//! relative with ".."), while `skiff run` is run again and again with mounts whose
//! destinations (tmpfs, a bind of a file, a bind of a directory under new subdirectories) all
//! go through them. A runtime that resolves those paths on the host, or checks then mounts
//! by path, creates targets in (or mounts over) the host directory. skiff resolves every
//! component in-root with openat2(RESOLVE_IN_ROOT), creates with *at() on those fds and
//! mounts onto the opened fd; the host directory must stay empty and unmounted, however the
//! race falls (a run may fail when a symlink is in place at the wrong moment; that is fine).

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
use serde_json::json;

use super::{entries, host_mounts_under, scratch_dir};
use crate::common::{output_via_files, require_root, Bundle};

const RUNS: usize = 40;

/// Swaps `a` and `b` (a directory and a symlink) until `stop` is set.
fn racer(a: &Path, b: &Path, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let (a, b) = (a.to_path_buf(), b.to_path_buf());
    std::thread::spawn(move || {
        let mut swaps = 0;
        while !stop.load(Ordering::Relaxed) {
            if renameat2(AT_FDCWD, &a, AT_FDCWD, &b, RenameFlags::RENAME_EXCHANGE).is_ok() {
                swaps += 1;
            }
        }
        swaps
    })
}

#[test]
fn swapping_mount_paths_for_host_symlinks_never_touches_the_host() {
    require_root!();
    let mut b = Bundle::new("cve-2021-30465");
    let host = scratch_dir(&b, "host");
    let rootfs = b.rootfs();
    // /race and /race2 are directories in the image; their twins are symlinks to the host
    // directory, absolute and relative (rootfs/../host is the host directory when resolved
    // on the host).
    std::fs::create_dir(rootfs.join("race")).unwrap();
    std::fs::create_dir(rootfs.join("race2")).unwrap();
    std::os::unix::fs::symlink(&host, rootfs.join("race-swap")).unwrap();
    std::os::unix::fs::symlink("../host", rootfs.join("race2-swap")).unwrap();
    std::fs::write(b.dir.join("vol-file"), "volume file\n").unwrap();
    std::fs::create_dir(b.dir.join("vol-dir")).unwrap();
    let mut m = b.config["mounts"].as_array().unwrap().clone();
    for dir in ["race", "race2"] {
        m.push(json!({"destination": format!("/{dir}/tmpfs"), "type": "tmpfs", "source": "tmpfs"}));
        m.push(
            json!({"destination": format!("/{dir}/file"), "type": "bind",
                      "source": "vol-file", "options": ["bind"]}),
        );
        m.push(
            json!({"destination": format!("/{dir}/new/sub/dir"), "type": "bind",
                      "source": "vol-dir", "options": ["rbind"]}),
        );
    }
    b.config["mounts"] = json!(m);
    b.config["root"]["readonly"] = json!(false);
    b.args(&["true"]);
    b.write_config();

    let stop = Arc::new(AtomicBool::new(false));
    let racers = [
        racer(
            &rootfs.join("race"),
            &rootfs.join("race-swap"),
            stop.clone(),
        ),
        racer(
            &rootfs.join("race2"),
            &rootfs.join("race2-swap"),
            stop.clone(),
        ),
    ];
    let mut ok = 0;
    let mut touched = Vec::new();
    let bundle = b.dir.to_str().unwrap().to_string();
    for i in 0..RUNS {
        // A fresh id each time: a failed run must not make the next one fail for its id.
        let id = format!("{}-{i}", b.id);
        let out = output_via_files(
            b.command(&["run", "--bundle", &bundle, &id])
                .stdin(Stdio::null()),
        );
        if out.status.success() {
            ok += 1;
        }
        let seen = entries(&host);
        let mounted = host_mounts_under(&host);
        if !seen.is_empty() || !mounted.is_empty() {
            touched.push(format!("run {i}: entries {seen:?}, mounts {mounted:?}"));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps: u64 = racers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(
        touched.is_empty(),
        "the host directory was reached through a swapped symlink: {touched:?}"
    );
    assert!(swaps > 1000, "the racers barely ran ({swaps} swaps)");
    eprintln!("symlink race: {ok}/{RUNS} runs succeeded, {swaps} swaps");
}
