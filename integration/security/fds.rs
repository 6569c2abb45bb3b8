//! CVE-2024-21626: a host fd reaching the container, and a cwd outside it through one.

use serde_json::json;

use crate::common::{require_root, text, Bundle};

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
    // SAFETY: dup2 is async-signal-safe; runs in the forked child before exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
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
