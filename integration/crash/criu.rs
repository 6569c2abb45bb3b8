//! `checkpoint` and `restore` killed at each of their crash points. CRIU works only in the
//! guest (scripts/guest-tests); on a kernel it cannot handle these skip (key `criu`).
//!
//! A restore killed anywhere leaves at most an uncommitted record and a cgroup holding what
//! CRIU restored: `delete --force` must remove all of it, and the image must restore again
//! under the same id. A checkpoint killed anywhere leaves a container `delete --force`
//! removes (running, or stopped once CRIU has ended its processes).

use std::os::fd::OwnedFd;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{bundle_dir, delete_force_and_check, leftovers, marked, skiff, LIMIT};
use crate::common::{require_root, skiff_bin, skipped, text, wait_for, Bundle};

/// `criu check` passes on this kernel; else the test says so (`common::skipped`).
fn criu_works() -> bool {
    let works = Command::new("criu")
        .arg("check")
        .output()
        .is_ok_and(|o| o.status.success() && text(&o.stdout).contains("Looks good"));
    if !works {
        skipped(
            "criu",
            "criu check fails on this kernel (these run in scripts/guest-tests)",
        );
    }
    works
}

/// The container's stdio: pipes, as a shim gives them (CRIU cannot dump an fd of a file
/// outside the container's mounts, but it hands pipes over); the test keeps the other ends.
struct Pipes {
    in_r: OwnedFd,
    _in_w: OwnedFd,
    _out_r: OwnedFd,
    out_w: OwnedFd,
}

impl Pipes {
    fn new() -> Pipes {
        let (in_r, _in_w) = nix::unistd::pipe().unwrap();
        let (_out_r, out_w) = nix::unistd::pipe().unwrap();
        Pipes {
            in_r,
            _in_w,
            _out_r,
            out_w,
        }
    }
}

/// `skiff ARGS` with the pipes as its stdio (the container inherits them) and its own
/// messages in a log file; (exit status, log), bounded by [`LIMIT`].
fn piped(b: &Bundle, io: &Pipes, args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String) {
    b.write_config();
    let log = b.dir.join("skiff.log");
    let _ = std::fs::remove_file(&log);
    let mut c = Command::new(skiff_bin());
    c.arg("--root")
        .arg(&b.root)
        .arg("--log")
        .arg(&log)
        .args(args);
    c.stdin(Stdio::from(io.in_r.try_clone().unwrap()))
        .stdout(Stdio::from(io.out_w.try_clone().unwrap()))
        .stderr(Stdio::from(io.out_w.try_clone().unwrap()));
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("{args:?} still running after {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, std::fs::read_to_string(&log).unwrap_or_default())
}

/// The crash points a command reaches (`SKIFF_FAILPOINT_TRACE`), running it to its end.
fn points_of(b: &Bundle, io: &Pipes, args: &[&str], what: &str) -> Vec<String> {
    let trace = b.dir.join(format!("{what}.trace"));
    let (st, log) = piped(
        b,
        io,
        args,
        &[("SKIFF_FAILPOINT_TRACE", trace.to_str().unwrap())],
    );
    assert!(st.success(), "{what}: {log}");
    let points: Vec<String> = std::fs::read_to_string(&trace)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(&format!("{what}.")))
        .map(str::to_string)
        .collect();
    assert!(!points.is_empty(), "{what} reached no crash point");
    points
}

fn run_detached(b: &Bundle, io: &Pipes) {
    let (st, log) = piped(
        b,
        io,
        &["run", "-d", "--bundle", &bundle_dir(b), &b.id],
        &[],
    );
    assert!(st.success(), "run -d: {log}");
}

fn killed(st: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    st.signal() == Some(libc::SIGKILL)
}

#[test]
fn restore_killed_at_each_crash_point_leaves_what_delete_removes() {
    require_root!();
    if !criu_works() {
        return;
    }
    let b = marked("crash-restore", "3600");
    let img = b.dir.join("image");
    let img = img.to_str().unwrap();
    let dir = bundle_dir(&b);
    let io = Pipes::new();
    run_detached(&b, &io);
    let out = skiff(&b, &["checkpoint", "--image-path", img, &b.id], &[]);
    assert!(out.status.success(), "checkpoint: {}", text(&out.stderr));
    assert!(
        leftovers(&b).is_empty(),
        "after checkpoint: {:?}",
        leftovers(&b)
    );
    let restore = [
        "restore",
        "-d",
        "--image-path",
        img,
        "--bundle",
        &dir,
        &b.id,
    ];
    let points = points_of(&b, &io, &restore, "restore");
    delete_force_and_check(&b, "after a full restore");
    for p in &points {
        let (st, log) = piped(&b, &io, &restore, &[("SKIFF_FAILPOINT", p)]);
        assert!(killed(st), "restore did not die at {p}: {log}");
        delete_force_and_check(&b, &format!("restore killed at {p}"));
    }
    // The image is intact and the id free: the container comes back.
    let (st, log) = piped(&b, &io, &restore, &[]);
    assert!(st.success(), "restore at the end: {log}");
    assert!(wait_for(5000, || b.status() == "running"), "{}", b.status());
    delete_force_and_check(&b, "the last restore");
}

#[test]
fn checkpoint_killed_at_each_crash_point_leaves_what_delete_removes() {
    require_root!();
    if !criu_works() {
        return;
    }
    let b = marked("crash-checkpoint", "3600");
    let img = b.dir.join("image");
    let img = img.to_str().unwrap();
    let io = Pipes::new();
    run_detached(&b, &io);
    let checkpoint = ["checkpoint", "--image-path", img, &b.id];
    let points = points_of(&b, &io, &checkpoint, "checkpoint");
    for p in &points {
        run_detached(&b, &io);
        let (st, log) = piped(&b, &io, &checkpoint, &[("SKIFF_FAILPOINT", p)]);
        assert!(killed(st), "checkpoint did not die at {p}: {log}");
        delete_force_and_check(&b, &format!("checkpoint killed at {p}"));
    }
}
