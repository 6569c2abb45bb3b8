//! config.md#posix-platform-hooks and the hook steps of runtime.md#lifecycle.

use super::*;

const S_HOOKS: &str = "config.md#posix-platform-hooks";
const S_LIFE: &str = "runtime.md#lifecycle";

fn hooked(cx: &Ctx, name: &str, kinds: &[(&str, &str, &[&str])]) -> Bundle {
    let mut b = cx.bundle(name);
    b.cfg["process"]["args"] = wait_args();
    for (kind, hname, extra) in kinds {
        let mut h = b.hook(hname, extra);
        if *kind == "startContainer" {
            // Resolves in the container namespace: the rootfs copy.
            h["path"] = json!("/hooks/hook.sh");
        }
        b.push(&format!("/hooks/{kind}"), h);
    }
    b
}

const ALL: &[(&str, &str, &[&str])] = &[
    ("prestart", "prestart-1", &[]),
    ("prestart", "prestart-2", &[]),
    ("createRuntime", "createRuntime", &[]),
    ("createContainer", "createContainer", &[]),
    ("startContainer", "startContainer", &[]),
    ("poststart", "poststart", &[]),
    ("poststop", "poststop", &[]),
];

/// What a full lifecycle left: the bundle (with the hooks' files), the hook log after
/// create, after start, before delete and after delete, the container's pid (on the host and
/// as the container sees it) and its id.
struct Cycle {
    b: Bundle,
    logs: Vec<Vec<String>>,
    pid: i32,
    ns_pid: i32,
    id: String,
}

/// The container process's pid as its own pid namespace sees it (state.md: "For hooks
/// executed in the container namespace, it is the pid as seen by the container").
fn pid_in_container(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

/// Full lifecycle with every hook; returns the bundle (and logs) after delete.
fn full_cycle(cx: &Ctx, name: &str) -> Result<Cycle, String> {
    let b = hooked(cx, name, ALL);
    let c = Ctr::new(cx, b);
    let o = c.create();
    ensure(o.ok(), format!("create failed: {}", o.brief()))?;
    let after_create = c.b.hook_log();
    let pid = c.pid().ok_or("no pid")?;
    let ns_pid = pid_in_container(pid).ok_or("no NSpid for the container process")?;
    let o = c.start();
    ensure(o.ok(), format!("start failed: {}", o.brief()))?;
    let after_start = c.b.hook_log();
    ensure(c.wait_started(5), "user program did not start")?;
    let o = c.kill("KILL");
    ensure(o.ok(), format!("kill failed: {}", o.brief()))?;
    c.wait_status("stopped", 10)?;
    let before_delete = c.b.hook_log();
    let o = c.delete();
    ensure(o.ok(), format!("delete failed: {}", o.brief()))?;
    let after_delete = c.b.hook_log();
    let id = c.id.clone();
    let b = Bundle {
        dir: c.b.dir.clone(),
        rootfs: c.b.rootfs.clone(),
        cfg: c.b.cfg.clone(),
    };
    Ok(Cycle {
        b,
        logs: vec![after_create, after_start, before_delete, after_delete],
        pid,
        ns_pid,
        id,
    })
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn fail_case(id: &str, kind: &'static str, spec: &'static str) -> Case {
    case(id, S_LIFE, spec, Needs::None, move |cx| {
        let b = hooked(
            cx,
            &format!("fail-{kind}"),
            &[(kind, kind, &["1"]), ("poststop", "poststop", &[])],
        );
        let c = Ctr::new(cx, b);
        let o = c.create();
        let at_start = matches!(kind, "startContainer" | "poststart");
        if !at_start {
            if o.ok() {
                return fail(format!("create succeeded although the {kind} hook failed"));
            }
            std::thread::sleep(Duration::from_millis(200));
            let st = c.state();
            if let Ok(s) = &st {
                if s["status"] == "created" || s["status"] == "running" {
                    return fail(format!(
                        "container left {} after failed {kind} hook",
                        s["status"]
                    ));
                }
            }
            return Ok(if c.started_count() == 0 {
                V::Pass
            } else {
                V::Fail("user program ran".into())
            });
        }
        ensure(o.ok(), format!("create failed: {}", o.brief()))?;
        let o = c.start();
        if o.ok() {
            return fail(format!("start succeeded although the {kind} hook failed"));
        }
        // "stop the container": it must not stay running.
        let stopped = wait_until(5, || c.status() != "running");
        if !stopped {
            return fail(format!("container still running after failed {kind} hook"));
        }
        if kind == "startContainer" && c.started_count() > 0 {
            return fail("user program ran although startContainer failed");
        }
        Ok(V::Pass)
    })
}

fn fail_poststop_case(id: &str, kind: &'static str, spec: &'static str) -> Case {
    case(id, S_LIFE, spec, Needs::None, move |cx| {
        let b = hooked(
            cx,
            &format!("failps-{kind}"),
            &[(kind, kind, &["1"]), ("poststop", "poststop", &[])],
        );
        let c = Ctr::new(cx, b);
        let o = c.create();
        if matches!(kind, "startContainer" | "poststart") && o.ok() {
            let _ = c.start();
        }
        // Give the runtime a chance, then make sure the container is gone.
        std::thread::sleep(Duration::from_millis(200));
        // Read the log before our own cleanup (delete --force would run poststop too).
        let log = c.b.hook_log();
        Ok(if log.iter().any(|l| l == "poststop") {
            V::Pass
        } else {
            V::Fail(format!(
                "poststop hooks were not invoked after the failed {kind} hook; hook log {log:?}"
            ))
        })
    })
}

pub fn cases() -> Vec<Case> {
    vec![
        case("config/hooks/order-and-timing", S_LIFE, "steps 3-13: prestart, createRuntime, createContainer during create; startContainer then the program then poststart during start; poststop after delete; hooks of one kind MUST be called in the listed order", Needs::None, |cx| {
            let Cycle { logs, .. } = full_cycle(cx, "hooks-order")?;
            let want = [
                s(&["prestart-1", "prestart-2", "createRuntime", "createContainer"]),
                s(&["prestart-1", "prestart-2", "createRuntime", "createContainer", "startContainer", "poststart"]),
                s(&["prestart-1", "prestart-2", "createRuntime", "createContainer", "startContainer", "poststart"]),
                s(&["prestart-1", "prestart-2", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]),
            ];
            let names = ["after create", "after start", "before delete", "after delete"];
            let mut bad = vec![];
            for i in 0..4 {
                if logs[i] != want[i] {
                    bad.push(format!("{}: want {:?} got {:?}", names[i], want[i], logs[i]));
                }
            }
            Ok(if bad.is_empty() { V::Pass } else { V::Fail(bad.join("\n")) })
        }),
        case("config/hooks/state-on-stdin", S_HOOKS, "The state of the container MUST be passed to hooks over stdin so that they may do work appropriate to the current state of the container.", Needs::None, |cx| {
            let Cycle { b, pid, ns_pid, id, .. } = full_cycle(cx, "hooks-stdin")?;
            let mut bad = vec![];
            for (_, name, _) in ALL {
                let raw = b.hook_file(name, "stdin").unwrap_or_default();
                let v: Value = match serde_json::from_str(&raw) {
                    Ok(v) => v,
                    Err(e) => {
                        bad.push(format!("{name}: stdin is not a state JSON ({e}): {raw:?}"));
                        continue;
                    }
                };
                if v["id"] != id.as_str() {
                    bad.push(format!("{name}: id {}", v["id"]));
                }
                if !v["ociVersion"].is_string() {
                    bad.push(format!("{name}: no ociVersion"));
                }
                let bp = b.path();
                if v["bundle"].as_str() != Some(bp.as_str()) {
                    bad.push(format!("{name}: bundle {} want {bp}", v["bundle"]));
                }
                // Additional status values MAY be defined by the runtime.
                if v["status"].as_str().map(str::is_empty).unwrap_or(true) {
                    bad.push(format!("{name}: status {}", v["status"]));
                }
                // state.md: the pid "as seen by" the namespace the hook runs in.
                let want = match *name {
                    "poststop" => continue,
                    "createContainer" | "startContainer" => ns_pid,
                    _ => pid,
                };
                if v["pid"].as_i64() != Some(want as i64) {
                    bad.push(format!("{name}: pid {} want {want}", v["pid"]));
                }
            }
            Ok(if bad.is_empty() { V::Pass } else { V::Fail(bad.join("\n")) })
        }),
        case("config/hooks/args-env", S_HOOKS, "args (array of strings, OPTIONAL) with the same semantics as IEEE Std 1003.1-2008 execv's argv; env (array of strings, OPTIONAL) with the same semantics as IEEE Std 1003.1-2008's environ.", Needs::None, |cx| {
            let mut b = hooked(cx, "hooks-args", &[]);
            let mut h = b.hook("createRuntime", &["0", "", "arg with space"]);
            h["env"] = json!(["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "CONFORMANCE_HOOK_ENV=value=with=equals"]);
            b.push("/hooks/createRuntime", h);
            let c = Ctr::new(cx, b);
            let o = c.create();
            ensure(o.ok(), format!("create failed: {}", o.brief()))?;
            let args = c.b.hook_file("createRuntime", "args").unwrap_or_default();
            let env = c.b.hook_file("createRuntime", "env").unwrap_or_default();
            let want_args = format!("createRuntime\n{}\n0\n\narg with space\n", c.b.hooklog().display());
            let mut bad = vec![];
            if args != want_args {
                bad.push(format!("argv[1..]: want {want_args:?} got {args:?}"));
            }
            if !env.lines().any(|l| l == "CONFORMANCE_HOOK_ENV=value=with=equals") {
                bad.push(format!("env: {env:?}"));
            }
            Ok(if bad.is_empty() { V::Pass } else { V::Fail(bad.join("\n")) })
        }),
        case("config/hooks/runtime-namespace", S_HOOKS, "prestart, createRuntime, poststart and poststop hooks MUST be called/executed in the runtime namespace.", Needs::None, |cx| {
            let Cycle { b, .. } = full_cycle(cx, "hooks-rtns")?;
            let host = format!("mnt:[{}]", cx.host.ns["mnt"]);
            let mut bad = vec![];
            for name in ["prestart-1", "createRuntime", "poststart", "poststop"] {
                let got = b.hook_file(name, "mntns").unwrap_or_default();
                if got.trim() != host {
                    bad.push(format!("{name}: mount ns {:?}, runtime's {host}", got.trim()));
                }
            }
            Ok(if bad.is_empty() { V::Pass } else { V::Fail(bad.join("\n")) })
        }),
        case("config/hooks/createContainer-container-namespace", S_HOOKS, "The createContainer hooks' path MUST resolve in the runtime namespace. The createContainer hooks MUST be executed in the container namespace.", Needs::None, |cx| {
            let b = hooked(cx, "hooks-cc", &[("createContainer", "createContainer", &[])]);
            let c = Ctr::new(cx, b);
            let o = c.create();
            ensure(o.ok(), format!("create failed: {}", o.brief()))?;
            let pid = c.pid().ok_or("no pid")?;
            let want = format!("mnt:[{}]", ns_inode(pid, "mnt").unwrap_or(0));
            let got = c.b.hook_file("createContainer", "mntns").unwrap_or_default();
            Ok(if got.trim() == want { V::Pass } else { V::Fail(format!("hook mount ns {:?}, container's {want}, runtime's mnt:[{}]", got.trim(), cx.host.ns["mnt"])) })
        }),
        case("config/hooks/startContainer-container-namespace", S_HOOKS, "The startContainer hooks' path MUST resolve in the container namespace. The startContainer hooks MUST be executed in the container namespace. (called before the user-specified process is executed)", Needs::None, |cx| {
            let b = hooked(cx, "hooks-sc", &[("startContainer", "startContainer", &[])]);
            let c = Ctr::new(cx, b);
            c.up()?;
            let pid = c.pid().ok_or("no pid")?;
            let want = format!("mnt:[{}]", ns_inode(pid, "mnt").unwrap_or(0));
            let got = c.b.hook_file("startContainer", "mntns").unwrap_or_default();
            let before = c.b.hook_file("startContainer", "user-started").unwrap_or_default();
            let mut bad = vec![];
            if got.trim() != want {
                bad.push(format!("hook mount ns {:?}, container's {want} (hook ran: {})", got.trim(), !c.b.hook_log().is_empty()));
            }
            if before.trim() != "no" {
                bad.push(format!("user program already started when the hook ran: {before:?}"));
            }
            Ok(if bad.is_empty() { V::Pass } else { V::Fail(bad.join("; ")) })
        }),
        case("config/hooks/poststart-after-exec", S_HOOKS, "The poststart hooks MUST be called after the user-specified process is executed but before the start operation returns.", Needs::None, |cx| {
            let b = hooked(cx, "hooks-ps", &[("poststart", "poststart", &[])]);
            let c = Ctr::new(cx, b);
            c.up()?;
            let log = c.b.hook_log();
            let cmd = c.b.hook_file("poststart", "cmdline").unwrap_or_default();
            let mut bad = vec![];
            if log != s(&["poststart"]) {
                bad.push(format!("hook log when start returned: {log:?}"));
            }
            if cmd.trim() != "/probe wait /" {
                bad.push(format!("container process cmdline at poststart: {:?} (want the user program)", cmd.trim()));
            }
            Ok(if bad.is_empty() { V::Pass } else { V::Fail(bad.join("; ")) })
        }),
        case("config/hooks/poststop-after-delete", S_HOOKS, "The poststop hooks MUST be called after the container is deleted but before the delete operation returns.", Needs::None, |cx| {
            let Cycle { b, logs, .. } = full_cycle(cx, "hooks-pst")?;
            let cmd = b.hook_file("poststop", "cmdline").unwrap_or_else(|| "gone".into());
            let mut bad = vec![];
            if logs[2].iter().any(|l| l == "poststop") {
                bad.push("poststop ran before delete".to_string());
            }
            if !logs[3].iter().any(|l| l == "poststop") {
                bad.push("poststop had not run when delete returned".to_string());
            }
            if cmd.trim() != "gone" {
                bad.push(format!("container process still present during poststop: {:?}", cmd.trim()));
            }
            Ok(if bad.is_empty() { V::Pass } else { V::Fail(bad.join("; ")) })
        }),
        fail_case("config/hooks/prestart-fail-error", "prestart", "If any prestart hook fails, the runtime MUST generate an error, stop the container, and continue the lifecycle at step 12."),
        fail_case("config/hooks/createRuntime-fail-error", "createRuntime", "If any createRuntime hook fails, the runtime MUST generate an error, stop the container, and continue the lifecycle at step 12."),
        fail_case("config/hooks/createContainer-fail-error", "createContainer", "If any createContainer hook fails, the runtime MUST generate an error, stop the container, and continue the lifecycle at step 12."),
        fail_case("config/hooks/startContainer-fail-error", "startContainer", "If any startContainer hook fails, the runtime MUST generate an error, stop the container, and continue the lifecycle at step 12."),
        fail_case("config/hooks/poststart-fail-error", "poststart", "If any poststart hook fails, the runtime MUST generate an error, stop the container, and continue the lifecycle at step 12."),
        fail_poststop_case("config/hooks/prestart-fail-poststop", "prestart", "... continue the lifecycle at step 12 (destroy) and 13: the poststop hooks MUST be invoked by the runtime."),
        fail_poststop_case("config/hooks/createRuntime-fail-poststop", "createRuntime", "... continue the lifecycle at step 12 (destroy) and 13: the poststop hooks MUST be invoked by the runtime."),
        fail_poststop_case("config/hooks/startContainer-fail-poststop", "startContainer", "... continue the lifecycle at step 12 (destroy) and 13: the poststop hooks MUST be invoked by the runtime."),
        case("config/hooks/poststop-fail-continues", S_LIFE, "If any poststop hook fails, the runtime MUST log a warning, but the remaining hooks and lifecycle continue as if the hook had succeeded.", Needs::None, |cx| {
            let b = hooked(cx, "hooks-pstfail", &[("poststop", "poststop-1", &["1"]), ("poststop", "poststop-2", &[])]);
            let c = Ctr::new(cx, b);
            c.up()?;
            c.kill("KILL");
            c.wait_status("stopped", 10)?;
            let o = c.delete();
            let log = c.b.hook_log();
            let mut bad = vec![];
            if !o.ok() {
                bad.push(format!("delete failed: {}", o.brief()));
            }
            if log != s(&["poststop-1", "poststop-2"]) {
                bad.push(format!("hook log {log:?}"));
            }
            if c.state().is_ok() {
                bad.push("container still exists".into());
            }
            Ok(if bad.is_empty() { V::Pass } else { V::Fail(bad.join("; ")) })
        }),
        case("config/hooks/timeout", S_HOOKS, "timeout (int, OPTIONAL) is the number of seconds before aborting the hook. (an aborted createRuntime hook is a failed hook: create MUST generate an error)", Needs::None, |cx| {
            let mut b = hooked(cx, "hooks-timeout", &[]);
            let mut h = b.hook("createRuntime", &["0", "20"]);
            h["timeout"] = json!(1);
            b.push("/hooks/createRuntime", h);
            let c = Ctr::new(cx, b);
            let t0 = Instant::now();
            let o = c.create();
            let el = t0.elapsed();
            if o.ok() {
                return fail(format!("create succeeded after {el:?} although the hook exceeded its timeout"));
            }
            Ok(if el < Duration::from_secs(15) { V::Pass } else { V::Fail(format!("create took {el:?}: hook not aborted at its 1s timeout")) })
        }),
        reject_case("config/hooks/timeout-zero-error", S_HOOKS, "If set, timeout MUST be greater than zero. (Runtimes MUST generate an error when invalid values are encountered.)", Needs::None, |_cx, b| {
            let mut h = b.hook("createRuntime", &[]);
            h["timeout"] = json!(0);
            b.push("/hooks/createRuntime", h);
            Ok(())
        }),
        reject_case("config/hooks/relative-path-error", S_HOOKS, "path (string, REQUIRED) ... This specification extends the IEEE standard in that path MUST be absolute.", Needs::None, |_cx, b| {
            let mut h = b.hook("createRuntime", &[]);
            h["path"] = json!("hooks/hook.sh");
            b.push("/hooks/createRuntime", h);
            Ok(())
        }),
    ]
}
