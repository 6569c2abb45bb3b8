//! Containers with a terminal, checkpointed and restored: CRIU hands the restored pty's
//! master back (its orphan-pts-master notification) and it goes to `--console-socket`, as a
//! shim or conmon expects. And a container in a network namespace it joined by path: the
//! restored one is in that same namespace again (CRIU's external namespace, keyed by the
//! dump). runc first, then skiff.

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use super::Rt;
use crate::common::{console_receiver, text, wait_for, Bundle};

#[test]
fn a_terminal_comes_back_through_the_console_socket() {
    each_runtime!(terminal);
}

#[test]
fn a_joined_network_namespace_is_joined_again() {
    each_runtime!(joined_netns);
}

/// The numbers the counter printed on a terminal (CRLF lines).
fn numbers(out: &str) -> Vec<u64> {
    out.split(['\r', '\n'])
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn counting_on_a_terminal(name: &str, rt: Rt) -> Bundle {
    let mut b = Bundle::new(&format!("criu-{name}-{}", rt.name));
    b.with_runtime(rt.bin);
    b.config["process"]["terminal"] = serde_json::json!(true);
    b.sh("i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done");
    b
}

/// run -d, checkpoint, restore -d, each terminal to a console socket of its own; calls
/// `check` with the restored init's pid; kills and deletes. The counter on the restored
/// terminal must go on from where the first one stopped.
fn cycle(b: &Bundle, rt: Rt, check: impl FnOnce(i64)) {
    let dir = b.dir.to_str().unwrap().to_string();
    let img = b.dir.join("image").to_str().unwrap().to_string();
    let sock = |n: &str| {
        b.dir
            .join(format!("{n}.sock"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let run_console = console_receiver(std::path::Path::new(&sock("run")));
    b.ok(&[
        "run",
        "-d",
        "--console-socket",
        &sock("run"),
        "--bundle",
        &dir,
        &b.id,
    ]);
    assert!(
        wait_for(30_000, || b.status() == "running"),
        "{}: not running",
        rt.name
    );
    std::thread::sleep(Duration::from_millis(1500));
    let out = b.skiff(&["checkpoint", "--image-path", &img, &b.id]);
    assert!(
        out.status.success(),
        "{}: checkpoint: {}",
        rt.name,
        text(&out.stderr)
    );
    // The dumped process is gone: its terminal reads EIO, the receiver returns.
    let before = numbers(&run_console.join().unwrap());
    let last = *before
        .last()
        .unwrap_or_else(|| panic!("{}: no output before", rt.name));
    let restore_console = console_receiver(std::path::Path::new(&sock("restore")));
    let out = b.skiff(&[
        "restore",
        "-d",
        "--image-path",
        &img,
        "--console-socket",
        &sock("restore"),
        "--bundle",
        &dir,
        &b.id,
    ]);
    assert!(
        out.status.success(),
        "{}: restore: {}",
        rt.name,
        text(&out.stderr)
    );
    assert_eq!(b.status(), "running", "{}: after restore", rt.name);
    check(b.state()["pid"].as_i64().unwrap());
    std::thread::sleep(Duration::from_millis(1500));
    b.ok(&["kill", &b.id, "KILL"]);
    let after = numbers(&restore_console.join().unwrap());
    let first = *after
        .first()
        .unwrap_or_else(|| panic!("{}: nothing on the restored terminal", rt.name));
    assert!(
        first > last / 2 && first <= last + 20,
        "{}: the counter was at {last}, the restored terminal starts at {first}",
        rt.name
    );
    assert!(wait_for(10_000, || b.status() == "stopped"), "{}", rt.name);
    b.ok(&["delete", &b.id]);
}

fn terminal(rt: Rt) {
    let b = counting_on_a_terminal("tty", rt);
    cycle(&b, rt, |_| {});
}

fn joined_netns(rt: Rt) {
    let mut b = counting_on_a_terminal("netns", rt);
    let name = format!("criu-{}-{}", rt.name, std::process::id());
    let ns = format!("/run/netns/{name}");
    let made = Command::new("ip").args(["netns", "add", &name]).status();
    assert!(made.is_ok_and(|s| s.success()), "ip netns add {name}");
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["netns", "delete", &self.0])
                .status();
        }
    }
    let _gone = Gone(name);
    let want = std::fs::metadata(&ns).unwrap().ino();
    for n in b.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "network" {
            n["path"] = serde_json::json!(ns);
        }
    }
    cycle(&b, rt, |pid| {
        let got = std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .unwrap()
            .ino();
        assert_eq!(
            got, want,
            "{}: the restored init's network namespace",
            rt.name
        );
    });
}
