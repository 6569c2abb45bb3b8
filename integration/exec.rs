//! exec: the new process is inside every namespace and the cgroup of the container, gets the
//! container's process settings with the command-line overrides, and exits with its status.

use serde_json::json;

use crate::common::{output_via_files, require_root, text, wait_for, Bundle};

fn running(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    b.config["process"]["env"] = json!(["PATH=/bin", "BASE=1"]);
    b.args(&["sleep", "60"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    b
}

#[test]
fn exec_joins_every_namespace_and_the_cgroup() {
    require_root!();
    let b = running("exec-ns");
    let pid = b.state()["pid"].as_i64().unwrap();
    let out = b.ok(&["exec", &b.id, "sh", "-c", "for n in pid net ipc uts mnt cgroup user; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup"]);
    let lines: Vec<&str> = out.lines().collect();
    for (i, n) in ["pid", "net", "ipc", "uts", "mnt", "cgroup", "user"]
        .iter()
        .enumerate()
    {
        let want = std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
        assert_eq!(lines[i], want.to_str().unwrap(), "{n} namespace not joined");
    }
    // Inside its cgroup namespace the container's cgroup is the root.
    assert!(lines.contains(&"0::/"), "{out}");
}

#[test]
fn exec_exit_status_user_env_cwd() {
    require_root!();
    let b = running("exec-opts");
    let out = b.skiff(&["exec", &b.id, "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    let out = b.ok(&[
        "exec",
        "--user",
        "1000:1001",
        "-g",
        "5",
        "--env",
        "EXTRA=2",
        "--cwd",
        "/tmp",
        &b.id,
        "sh",
        "-c",
        "id -u; id -g; id -G; echo $BASE$EXTRA; pwd",
    ]);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(&l[..2], ["1000", "1001"]);
    assert!(l[2].split_whitespace().any(|g| g == "5"), "{out}");
    assert_eq!(l[3], "12");
    assert_eq!(l[4], "/tmp");
}

#[test]
fn exec_with_a_process_file() {
    require_root!();
    let b = running("exec-process");
    let p = b.dir.join("process.json");
    std::fs::write(&p, json!({
        "args": ["sh", "-c", "echo from-file; grep CapEff /proc/self/status"],
        "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
    }).to_string()).unwrap();
    let out = b.ok(&["exec", "--process", p.to_str().unwrap(), &b.id]);
    assert!(out.starts_with("from-file\n"), "{out}");
    assert!(out.contains(&format!("{:016x}", 1u64 << 5)), "{out}");
}

#[test]
fn exec_cap_never_sets_inheritable() {
    require_root!();
    let b = running("exec-cap");
    let out = b.ok(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        &b.id,
        "grep",
        "-E",
        "Cap(Inh|Prm)",
        "/proc/self/status",
    ]);
    assert!(out.contains("CapInh:\t0000000000000000"), "{out}");
    let prm = out.lines().find(|l| l.starts_with("CapPrm")).unwrap();
    let v = u64::from_str_radix(prm.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert!(v & (1 << 21) != 0, "CAP_SYS_ADMIN not added: {out}");
}

#[test]
fn exec_detached_writes_the_pid_file() {
    require_root!();
    let b = running("exec-detach");
    let pf = b.dir.join("exec.pid");
    let out = b.skiff(&[
        "exec",
        "--detach",
        "--pid-file",
        pf.to_str().unwrap(),
        &b.id,
        "sleep",
        "30",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid: i64 = std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let init = b.state()["pid"].as_i64().unwrap();
    let ns = |p: i64| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
    assert_eq!(ns(pid), ns(init));
    let cg = |p: i64| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(
        cg(pid),
        cg(init),
        "exec process not in the container's cgroup"
    );
}

#[test]
fn exec_errors() {
    require_root!();
    let b = running("exec-err");
    let out = b.skiff(&["exec", &b.id, "no-such-binary"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("executable file not found"),
        "{}",
        text(&out.stderr)
    );
    let out = b.skiff(&["exec", "no-such-container", "true"]);
    assert!(text(&out.stderr).contains("does not exist"));
    b.ok(&["kill", &b.id, "KILL"]);
    assert!(wait_for(5000, || b.status() == "stopped"));
    let out = b.skiff(&["exec", &b.id, "true"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("stopped"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn exec_with_a_terminal_relays_it() {
    require_root!();
    let b = running("exec-tty");
    let mut c = b.command(&["exec", "-t", &b.id, "sh", "-c", "tty; echo done"]);
    let out = output_via_files(c.stdin(std::process::Stdio::null()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout).replace('\r', "");
    assert!(s.contains("/dev/pts/") && s.contains("done"), "{s}");
}
