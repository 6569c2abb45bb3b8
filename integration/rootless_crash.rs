//! Rootless skiff killed (SIGKILL) at every crash point of `create`, `run`, `exec` and
//! `delete --force` (the points learned from an undisturbed traced run, so a new one is
//! covered without editing this file): the user's own `delete --force` then leaves nothing
//! (no process of the container, no state directory, no mount of its bundle) and the id
//! takes a new container. The rootless path has its own steps (the user namespace made by
//! the child, maps written while it is dumpable, no cgroup of its own) that the root matrix
//! (`crash::matrix`) never passes.

use std::os::unix::process::ExitStatusExt;

use crate::common::{require_root, text, wait_for};
use crate::crash::leftovers;
use crate::rootless::Rootless;

#[derive(Clone, Copy, Debug)]
enum Cmd {
    Create,
    Run,
    Exec,
    Delete,
}

fn bundle(cmd: Cmd) -> Rootless {
    let mut r = Rootless::new("rlfp");
    let id = r.b.id.clone();
    // The id in the command line finds what is left; `run` must see its container exit.
    let sleep = if matches!(cmd, Cmd::Run) {
        "0.05"
    } else {
        "3600"
    };
    r.b.args(&["sh", "-c", &format!("sleep {sleep}; true"), &id]);
    r
}

/// Prepares for `cmd` and runs it with `env`.
fn invoke(r: &Rootless, cmd: Cmd, env: &[(&str, &str)]) -> std::process::Output {
    let dir = r.b.dir.to_str().unwrap().to_string();
    let id = r.b.id.clone();
    if matches!(cmd, Cmd::Exec | Cmd::Delete) {
        r.ok(&["run", "-d", "--bundle", &dir, &id]);
    }
    let args: Vec<&str> = match cmd {
        Cmd::Create => vec!["create", "--bundle", &dir, &id],
        Cmd::Run => vec!["run", "--bundle", &dir, &id],
        Cmd::Exec => vec!["exec", &id, "true"],
        Cmd::Delete => vec!["delete", "--force", &id],
    };
    r.b.write_config();
    let mut c = r.command(&args);
    c.stdin(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    crate::crash::bounded(&mut c)
}

fn clean_and_reusable(r: &Rootless, what: &str) {
    let out = r.skiff(&["delete", "--force", &r.b.id]);
    assert!(
        out.status.success(),
        "{what}: delete --force failed: {}",
        text(&out.stderr)
    );
    let mut left = vec![];
    assert!(
        wait_for(2000, || {
            left = leftovers(&r.b);
            left.is_empty()
        }),
        "{what}: left behind after delete --force: {left:#?}"
    );
    let dir = r.b.dir.to_str().unwrap().to_string();
    r.ok(&["create", "--bundle", &dir, &r.b.id]);
    r.ok(&["delete", "--force", &r.b.id]);
    assert!(
        wait_for(2000, || leftovers(&r.b).is_empty()),
        "{what}: the reused id left {:#?}",
        leftovers(&r.b)
    );
}

#[test]
fn rootless_commands_killed_at_every_point_leave_nothing_after_delete_force() {
    require_root!();
    let mut cells = 0;
    for cmd in [Cmd::Create, Cmd::Run, Cmd::Exec, Cmd::Delete] {
        let r = bundle(cmd);
        // The trace goes where the user may write.
        let trace = r.xdg.join("trace");
        let out = invoke(
            &r,
            cmd,
            &[("SKIFF_FAILPOINT_TRACE", trace.to_str().unwrap())],
        );
        assert!(out.status.success(), "{cmd:?}: {}", text(&out.stderr));
        let mut points: Vec<String> = vec![];
        for p in std::fs::read_to_string(&trace).unwrap_or_default().lines() {
            if !points.iter().any(|s| s == p) {
                points.push(p.to_string());
            }
        }
        clean_and_reusable(&r, &format!("{cmd:?} undisturbed"));
        if matches!(cmd, Cmd::Create | Cmd::Run) {
            // The rootless child's own step: the maps written while it is dumpable.
            assert!(
                points.iter().any(|p| p == "spawn.maps"),
                "{cmd:?}: no spawn.maps in {points:?}"
            );
        }
        assert!(points.len() >= 3, "{cmd:?}: only {points:?}");
        for point in &points {
            let what = format!("rootless {cmd:?} killed at {point}");
            let out = invoke(&r, cmd, &[("SKIFF_FAILPOINT", point)]);
            assert_eq!(
                out.status.signal(),
                Some(9),
                "{what}: not killed: {}",
                text(&out.stderr)
            );
            clean_and_reusable(&r, &what);
            cells += 1;
        }
    }
    eprintln!("rootless crash points: {cells} killed and cleaned up");
}
