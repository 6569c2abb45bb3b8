//! Bounded inputs (issue 14, 4): counts and documents from outside are refused quickly with
//! a clear error, before anything is made, and never wrap; and `--preserve-fds` hands over
//! the caller's fds only, never skiff's own (issue 21).

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::common::{output_via_files_within, require_root, text, Bundle};

const QUICK: Option<Duration> = Some(Duration::from_secs(20));

fn nothing_made(b: &Bundle) {
    let left = std::fs::read_dir(&b.root).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "a state directory was made");
    assert!(!b.default_cgroup().exists(), "a cgroup was made");
}

/// The command with only fds 0-2 open (plus what `fds` then opens on /dev/null).
fn with_only_stdio(mut c: Command, fds: &'static [i32]) -> Command {
    // SAFETY: close_range, open and dup2 are async-signal-safe; runs in the forked child
    // before exec and allocates nothing (the path is a static C string).
    unsafe {
        c.pre_exec(move || {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            for &fd in fds {
                let n = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                if n < 0 || (n != fd && (libc::dup2(n, fd) < 0 || libc::close(n) < 0)) {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    c.stdin(Stdio::null());
    c
}

#[test]
fn preserve_fds_beyond_the_fd_limit_are_refused_at_once_before_anything_is_made() {
    require_root!();
    let b = Bundle::new("lim-fds");
    b.write_config();
    let dir = b.dir.to_str().unwrap().to_string();
    // 4294967295 wrapped 3 + n to 2 (and hung); 100000000 ran for minutes.
    for n in ["4294967295", "100000000", "20000"] {
        for cmd in ["run", "create"] {
            let out = output_via_files_within(
                b.command(&[cmd, "--preserve-fds", n, "--bundle", &dir, &b.id])
                    .stdin(Stdio::null()),
                QUICK,
            );
            let err = text(&out.stderr);
            assert!(!out.status.success(), "{cmd} --preserve-fds {n} succeeded");
            assert!(
                err.contains(&format!("--preserve-fds {n}")) && err.contains("RLIMIT_NOFILE"),
                "{cmd} {n}: {err}"
            );
            nothing_made(&b);
        }
    }
}

/// Issue 21: runc refuses a preserved fd the caller does not have ("unable to stat
/// preserved-fd 0 (of 100)"); skiff handed the container its own fds (sockets, the exec
/// fifo, /dev/null) in their place.
#[test]
fn missing_preserved_fds_are_refused_and_skiffs_own_fds_never_take_their_place() {
    require_root!();
    let mut b = Bundle::new("lim-missing");
    b.sh("ls /proc/self/fd | sort -n | tr '\\n' ' '");
    b.write_config();
    let dir = b.dir.to_str().unwrap().to_string();
    let out = output_via_files_within(
        &mut with_only_stdio(
            b.command(&["run", "--preserve-fds", "100", "--bundle", &dir, &b.id]),
            &[],
        ),
        QUICK,
    );
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "the container got fds nobody passed: {}",
        text(&out.stdout)
    );
    assert!(
        err.contains("unable to stat preserved-fd 0 (of 100)"),
        "{err}"
    );
    nothing_made(&b);
    // A hole in the caller's fds (4) where skiff's own --log file would land is refused too.
    let log = b.dir.join("skiff.log");
    let mut c = b.command(&["--log", log.to_str().unwrap(), "run", "--preserve-fds", "3"]);
    c.args(["--bundle", &dir, &b.id]);
    let out = output_via_files_within(&mut with_only_stdio(c, &[3, 5]), QUICK);
    assert!(
        !out.status.success(),
        "the container got skiff's log: {}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("unable to stat preserved-fd 1 (of 3)"),
        "{err}"
    );
    nothing_made(&b);
    // With every fd passed, exactly those arrive.
    let mut c = b.command(&["--log", log.to_str().unwrap(), "run", "--preserve-fds", "3"]);
    c.args(["--bundle", &dir, &b.id]);
    let out = output_via_files_within(&mut with_only_stdio(c, &[3, 4, 5]), QUICK);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let fds: Vec<i32> = text(&out.stdout)
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    // 0-5 and the fd ls opens for the directory.
    assert!(
        fds.starts_with(&[0, 1, 2, 3, 4, 5]) && fds.len() <= 7,
        "{fds:?}"
    );
}

/// A running container to exec into.
fn running(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    b.args(&["sleep", "3600"]);
    b.start_ok();
    b
}

#[test]
fn an_endless_exec_process_file_is_refused_quickly() {
    require_root!();
    let b = running("lim-zero");
    let out = output_via_files_within(
        b.command(&["exec", "--process", "/dev/zero", &b.id])
            .stdin(Stdio::null()),
        QUICK,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255));
    assert!(err.contains("/dev/zero: larger than 64 MiB"), "{err}");
}

#[test]
fn a_config_json_over_the_size_limit_is_refused_before_anything_is_made() {
    require_root!();
    let mut b = Bundle::new("lim-size");
    b.config["annotations"] = json!({"big": "A".repeat(65 << 20)});
    let out = output_via_files_within(
        {
            b.write_config();
            let dir = b.dir.to_str().unwrap().to_string();
            &mut b.command(&["create", "--bundle", &dir, &b.id])
        },
        QUICK,
    );
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("config.json: larger than 64 MiB"), "{err}");
    nothing_made(&b);
}

/// Nesting is bounded at 64 levels, below serde_json's own limit, with a message that says
/// so (a config nested 100 deep in a field skiff ignores used to be accepted).
#[test]
fn json_nested_too_deep_is_refused_with_a_clear_error() {
    require_root!();
    let deep = || {
        serde_json::from_str::<serde_json::Value>(&format!(
            "{}{}",
            "[".repeat(100),
            "]".repeat(100)
        ))
        .unwrap()
    };
    let mut b = Bundle::new("lim-depth");
    b.config["x-unknown"] = deep();
    let out = b.create();
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("nested deeper than 64 levels"), "{err}");
    nothing_made(&b);
    let b = running("lim-depth-exec");
    let file = b.dir.join("process.json");
    std::fs::write(
        &file,
        json!({"cwd": "/", "args": ["true"], "x": deep()}).to_string(),
    )
    .unwrap();
    let out = b.skiff(&["exec", "--process", file.to_str().unwrap(), &b.id]);
    assert!(
        text(&out.stderr).contains("nested deeper than 64 levels"),
        "{}",
        text(&out.stderr)
    );
}

/// Issue 21: an exec process file without `user` runs as uid 0, gid 0 (runc); skiff said
/// "missing field user".
#[test]
fn an_exec_process_file_without_user_runs_as_root() {
    require_root!();
    let b = running("lim-nouser");
    let file = b.dir.join("process.json");
    let p = json!({"cwd": "/", "args": ["/bin/sh", "-c", "id -u; id -g"], "env": ["PATH=/bin"]});
    std::fs::write(&file, p.to_string()).unwrap();
    let out = b.skiff(&["exec", "--process", file.to_str().unwrap(), &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "0\n0\n");
}
