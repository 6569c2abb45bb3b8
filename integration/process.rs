//! The container process: args, env, cwd, user and groups, umask, capabilities, rlimits,
//! no_new_privs, oom_score_adj, hostname and domainname, fds.

use serde_json::json;

use crate::common::{require_root, text, Bundle};

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} missing in /proc/self/status:\n{status}"))
        .trim()
        .to_string()
}

#[test]
fn args_env_and_cwd() {
    require_root!();
    let mut b = Bundle::new("args");
    b.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
    b.config["process"]["cwd"] = json!("/tmp/work");
    b.args(&[
        "sh",
        "-c",
        "echo \"$0|$1|$FOO|$(pwd)|$HOME\"",
        "zero",
        "one two",
    ]);
    assert_eq!(b.run_ok().trim(), "zero|one two|bar baz|/tmp/work|/root");
}

#[test]
fn user_groups_and_umask() {
    require_root!();
    let mut b = Bundle::new("user");
    b.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 1002], "umask": 63});
    b.sh("id -u; id -g; id -G; umask; grep -E '^(Uid|Gid|Groups):' /proc/self/status");
    let out = b.run_ok();
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "1000");
    assert_eq!(l[1], "1001");
    let mut groups: Vec<&str> = l[2].split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["1001", "1002", "5"]);
    assert_eq!(l[3], "0077");
    assert!(
        l[4].split_whitespace().skip(1).all(|v| v == "1000"),
        "{}",
        l[4]
    );
    assert!(
        l[5].split_whitespace().skip(1).all(|v| v == "1001"),
        "{}",
        l[5]
    );
}

#[test]
fn capability_sets_are_exactly_the_configured_ones() {
    require_root!();
    let mut b = Bundle::new("caps");
    // CAP_CHOWN=0 CAP_KILL=5 CAP_NET_BIND_SERVICE=10 CAP_SYS_ADMIN=21
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_KILL"],
        "ambient": ["CAP_KILL"],
    });
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["noNewPrivileges"] = json!(true);
    b.sh("cat /proc/self/status");
    let s = b.run_ok();
    // After execve as a non-root user: permitted/effective = ambient, bounding kept.
    assert_eq!(
        status_field(&s, "CapBnd"),
        format!("{:016x}", 1u64 << 0 | 1 << 5 | 1 << 10 | 1 << 21)
    );
    assert_eq!(status_field(&s, "CapInh"), format!("{:016x}", 1u64 << 5));
    assert_eq!(status_field(&s, "CapAmb"), format!("{:016x}", 1u64 << 5));
    assert_eq!(status_field(&s, "CapPrm"), format!("{:016x}", 1u64 << 5));
    assert_eq!(status_field(&s, "CapEff"), format!("{:016x}", 1u64 << 5));
    assert_eq!(status_field(&s, "NoNewPrivs"), "1");
}

#[test]
fn root_keeps_exactly_the_configured_sets() {
    require_root!();
    let mut b = Bundle::new("caps-root");
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL"],
        "permitted": ["CAP_CHOWN", "CAP_KILL"],
        "effective": ["CAP_CHOWN"],
    });
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.sh("cat /proc/self/status");
    let s = b.run_ok();
    assert_eq!(
        status_field(&s, "CapBnd"),
        format!("{:016x}", 1u64 | 1 << 5)
    );
    assert_eq!(status_field(&s, "CapInh"), "0000000000000000");
    assert_eq!(status_field(&s, "NoNewPrivs"), "0");
    // uid 0 gets its permitted set refilled from the bounding set at execve (no file caps)
    assert_eq!(
        status_field(&s, "CapPrm"),
        format!("{:016x}", 1u64 | 1 << 5)
    );
}

#[test]
fn rlimits_are_applied() {
    require_root!();
    let mut b = Bundle::new("rlimits");
    b.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654},
        {"type": "RLIMIT_NPROC", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
    ]);
    b.sh("grep -E 'open files|processes|core file' /proc/self/limits");
    let out = b.run_ok();
    let row = |k: &str| -> Vec<String> {
        let l = out.lines().find(|l| l.contains(k)).unwrap();
        l.split_whitespace().map(str::to_string).collect()
    };
    let nofile = row("open files");
    assert_eq!(&nofile[3..5], ["321", "654"]);
    let nproc = row("processes");
    assert_eq!(&nproc[2..4], ["1000", "2000"]);
}

#[test]
fn an_rlimit_above_the_hard_limit_is_a_clear_error() {
    require_root!();
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let can_raise = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false);
    if can_raise || hard == u64::MAX {
        crate::common::skip!(
            "cap-sys-resource",
            "this machine may raise rlimits (CAP_SYS_RESOURCE present)"
        );
    }
    let mut b = Bundle::new("rlimit-high");
    b.config["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]);
    b.args(&["true"]);
    let out = b.create();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("process.rlimits")
            && err.contains("RLIMIT_NOFILE")
            && err.contains(&hard.to_string()),
        "{err}"
    );
}

#[test]
fn oom_score_adj_and_no_new_privileges() {
    require_root!();
    let mut b = Bundle::new("oom");
    b.config["process"]["oomScoreAdj"] = json!(500);
    b.sh("cat /proc/self/oom_score_adj; grep NoNewPrivs /proc/self/status");
    let out = b.run_ok();
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "500");
    assert!(l[1].ends_with('1'), "{}", l[1]);
}

#[test]
fn hostname_and_domainname() {
    require_root!();
    let mut b = Bundle::new("uts");
    b.config["hostname"] = json!("box-one");
    b.config["domainname"] = json!("example.test");
    b.sh("hostname; cat /proc/sys/kernel/domainname");
    assert_eq!(b.run_ok(), "box-one\nexample.test\n");
    let mine = nix::unistd::gethostname().unwrap();
    assert_ne!(mine.to_str().unwrap(), "box-one");
}

#[test]
fn only_stdio_and_preserved_fds_reach_the_container() {
    require_root!();
    let mut b = Bundle::new("fds");
    b.sh("ls /proc/self/fd | sort -n | tr '\\n' ' '");
    b.write_config();
    let bundle = b.dir.to_str().unwrap().to_string();
    // Leak two fds into skiff (without CLOEXEC); only the first is preserved.
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let f1 = std::fs::File::open("/etc/hostname").unwrap();
    let f2 = std::fs::File::open("/etc/hostname").unwrap();
    let (r1, r2) = (f1.as_raw_fd(), f2.as_raw_fd());
    let mut cmd = b.command(&["run", "--preserve-fds", "1", "--bundle", &bundle, &b.id]);
    // SAFETY: dup2 and close are async-signal-safe; runs in the forked child before exec.
    // Through spare numbers first: dup2 onto the same number (r1 may already be 3) would
    // keep its close-on-exec flag, and r2 may be 3.
    unsafe {
        cmd.pre_exec(move || {
            for (from, spare) in [(r1, 1000), (r2, 1001)] {
                if libc::dup2(from, spare) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::dup2(1000, 3) < 0 || libc::dup2(1001, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(1000);
            libc::close(1001);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // 0 1 2, the preserved 3, and the fd ls itself opens for the directory.
    let fds: Vec<i32> = text(&out.stdout)
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(fds.starts_with(&[0, 1, 2, 3]), "{fds:?}");
    assert!(
        fds.len() <= 5,
        "runtime fds leaked into the container: {fds:?}"
    );
}
