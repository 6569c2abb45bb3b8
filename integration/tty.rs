//! process.terminal: the pty comes from the container's devpts, is sent as one fd to the
//! console socket, is the container's stdio and controlling terminal and /dev/console, and
//! has the configured size. A foreground `run` relays it itself.

use serde_json::json;

use crate::common::{require_root, text, Bundle};

fn terminal(b: &mut Bundle, script: &str) {
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    b.sh(script);
}

#[test]
fn console_socket_receives_a_container_pty() {
    require_root!();
    let mut b = Bundle::new("tty-socket");
    terminal(&mut b, "tty; stty size; stat -c '%t' /dev/console; readlink /proc/self/fd/0 /proc/self/fd/2; ps -o pid,tty | tail -1");
    let got = b.run_with_console();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines[0], "/dev/pts/0", "{got}");
    assert_eq!(lines[1], "30 100", "{got}");
    assert_eq!(
        lines[2], "88",
        "/dev/console is not the pty (major 136 = 0x88): {got}"
    );
    assert!(got.contains("/dev/pts/0"), "{got}");
}

#[test]
fn terminal_without_a_console_socket_is_refused_for_create() {
    require_root!();
    let mut b = Bundle::new("tty-nosocket");
    terminal(&mut b, "true");
    let out = b.create();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--console-socket"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn console_socket_without_terminal_is_refused() {
    require_root!();
    let mut b = Bundle::new("tty-noterm");
    b.args(&["true"]);
    let bundle = b.dir.to_str().unwrap().to_string();
    let out = b.skiff(&[
        "create",
        "--bundle",
        &bundle,
        "--console-socket",
        "/nonexistent.sock",
        &b.id,
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("process.terminal is false"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn foreground_run_relays_the_terminal() {
    require_root!();
    let mut b = Bundle::new("tty-run");
    terminal(&mut b, "read x; echo got:$x; tty");
    b.write_config();
    let bundle = b.dir.to_str().unwrap().to_string();
    let mut child = b
        .command(&["run", "--bundle", &bundle, &b.id])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let s = text(&out.stdout).replace('\r', "");
    assert!(s.contains("got:hello") && s.contains("/dev/pts/0"), "{s}");
}
