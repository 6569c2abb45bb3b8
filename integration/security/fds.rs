//! CVE-2024-21626 (runc: a host directory fd leaked into the container process, reachable
//! as /proc/self/fd/N, so process.cwd, `exec --cwd` or process.args through it led to the
//! host filesystem).
//!
//! skiff marks every fd above stdio and the passed ones close-on-exec, closes the runtime's
//! host directory fds in the child at once, resolves the cwd it creates in-root without
//! magic links, and checks getcwd() after chdir. The attacks walk from every plausible fd
//! number, with enough ".." to reach the host's / from any host directory, to a scratch
//! host directory: nothing may appear there, and no host program may run.

use serde_json::json;

use super::{entries, scratch_dir};
use crate::common::{require_root, text, Bundle};

/// `/proc/self/fd/N` followed by enough ".." to climb from any host directory to `/`, then
/// `target` (an absolute host path).
fn through_fd(n: u32, target: &std::path::Path) -> String {
    format!(
        "/proc/self/fd/{n}/{}{}",
        "../".repeat(24),
        target.strip_prefix("/").unwrap().display()
    )
}

const FDS: std::ops::RangeInclusive<u32> = 3..=15;

#[test]
fn a_cwd_through_a_passed_host_fd_is_refused() {
    require_root!();
    let mut b = Bundle::new("cve-2024-21626");
    b.config["process"]["cwd"] = json!("/proc/self/fd/3");
    b.args(&["true"]);
    b.write_config();
    let bundle = b.dir.to_str().unwrap().to_string();
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let host_dir = std::fs::File::open("/etc").unwrap();
    let raw = host_dir.as_raw_fd();
    let mut cmd = b.command(&["create", "--preserve-fds", "1", "--bundle", &bundle, &b.id]);
    // SAFETY: dup2 and close are async-signal-safe; runs in the forked child before exec.
    // Through a spare number: dup2 onto the same number (raw may be 3) would keep its
    // close-on-exec flag.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 1000) < 0 || libc::dup2(1000, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(1000);
            Ok(())
        });
    }
    let out = crate::common::output_via_files(&mut cmd);
    assert!(!out.status.success(), "a cwd on the host was accepted");
    // Refused either when the cwd is created in-root (magic links are not followed) or by
    // the getcwd check after chdir.
    assert!(
        text(&out.stderr).contains("process.cwd"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn runtime_fds_never_reach_the_container_process() {
    require_root!();
    let mut b = Bundle::new("fdleak");
    // Every fd the process has, with what it points to: only stdio may be there.
    b.sh("for f in /proc/self/fd/*; do echo \"$f $(readlink $f)\"; done");
    let out = b.run_ok();
    for line in out.lines() {
        let fd: i32 = line
            .split('/')
            .nth(4)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            fd <= 2
                || line.contains("/proc/self/fd")
                || line.ends_with(&format!("/proc/{}/fd", 0))
                || line.contains(" /proc/"),
            "leaked fd: {line}\n{out}"
        );
    }
}

fn running(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    b.config["process"]["env"] = json!(["PATH=/bin"]);
    b.args(&["sleep", "60"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    b
}

#[test]
fn exec_cwd_through_a_proc_fd_never_reaches_the_host() {
    require_root!();
    let b = running("cve-2024-21626-exec-cwd");
    let host = scratch_dir(&b, "host");
    for n in FDS {
        // Straight into fd N's directory (wherever that is, so nothing is written there),
        // and through it to the scratch directory (where a marker would show).
        for (cwd, script) in [
            (format!("/proc/self/fd/{n}"), "echo RAN"),
            (through_fd(n, &host), "touch escaped; echo RAN"),
        ] {
            let out = b.skiff(&["exec", "--cwd", &cwd, &b.id, "sh", "-c", script]);
            let (o, e) = (text(&out.stdout), text(&out.stderr));
            assert!(
                entries(&host).is_empty(),
                "exec --cwd {cwd}: the process wrote into the host directory"
            );
            assert!(!o.contains("RAN"), "exec --cwd {cwd} ran: {o}");
            assert!(!out.status.success(), "exec --cwd {cwd} succeeded");
            assert!(e.contains("process.cwd"), "exec --cwd {cwd}: {e}");
        }
    }
}

#[test]
fn a_program_through_a_proc_fd_is_never_a_host_file() {
    require_root!();
    let mut b = Bundle::new("cve-2024-21626-args");
    let host = scratch_dir(&b, "host");
    let evil = host.join("evil.sh");
    std::fs::write(&evil, "#!/bin/sh\necho HOST-PROGRAM-RAN\n").unwrap();
    std::fs::set_permissions(&evil, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The init's program (create fails when args[0] cannot be found, or exec fails).
    for n in FDS {
        let prog = through_fd(n, &evil);
        b.args(&[&prog]);
        let (code, out, _) = b.run();
        assert!(
            !out.contains("HOST-PROGRAM-RAN"),
            "args[0] {prog} ran a host file"
        );
        assert_ne!(code, 0, "args[0] {prog} succeeded");
    }
    // An exec'd program.
    b.args(&["sleep", "60"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    for n in FDS {
        let prog = through_fd(n, &evil);
        let out = b.skiff(&["exec", &b.id, &prog]);
        assert!(
            !text(&out.stdout).contains("HOST-PROGRAM-RAN"),
            "exec {prog} ran a host file"
        );
        assert!(!out.status.success(), "exec {prog} succeeded");
    }
}

#[test]
fn runtime_fds_never_reach_an_exec_process() {
    require_root!();
    let b = running("fdleak-exec");
    let script = "for f in /proc/self/fd/*; do echo \"$f $(readlink $f)\"; done";
    for extra in [
        &[][..],
        &["--preserve-fds", "0"][..],
        &["--no-new-privs"][..],
    ] {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend([b.id.as_str(), "sh", "-c", script]);
        let out = b.ok(&args);
        let fds: Vec<&str> = out
            .lines()
            .filter(|l| {
                let fd: u32 = l
                    .trim_start_matches("/proc/self/fd/")
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                // 0-2 are stdio; the shell's glob had the fd directory itself open (gone by
                // the time readlink runs, so nothing after the name).
                fd > 2 && !l.ends_with("/fd") && !l.ends_with(' ')
            })
            .collect();
        assert!(fds.is_empty(), "exec {extra:?}: leaked fds {fds:?}\n{out}");
    }
}
