//! runtime.md: state, lifecycle and operations, checked from outside.

use super::*;

const S_STATE: &str = "runtime.md#state";
const S_QUERY: &str = "runtime.md#query-state";
const S_CREATE: &str = "runtime.md#create";
const S_START: &str = "runtime.md#start";
const S_KILL: &str = "runtime.md#kill";
const S_DELETE: &str = "runtime.md#delete";
const S_LIFE: &str = "runtime.md#lifecycle";

fn waiting(cx: &Ctx, name: &str) -> Bundle {
    let mut b = cx.bundle(name);
    b.cfg["process"]["args"] = wait_args();
    b
}

fn semver(s: &str) -> bool {
    let core = s.split(['-', '+']).next().unwrap_or("");
    let p: Vec<&str> = core.split('.').collect();
    p.len() == 3
        && p.iter()
            .all(|x| !x.is_empty() && x.chars().all(|c| c.is_ascii_digit()))
}

fn check_state_fields(s: &Value, id: &str, bundle: &str, status: &str) -> Vec<String> {
    let mut bad = vec![];
    match s["ociVersion"].as_str() {
        Some(v) if semver(v) => {}
        other => bad.push(format!("ociVersion must be a SemVer string, got {other:?}")),
    }
    if s["id"] != id {
        bad.push(format!("id: want {id:?} got {}", s["id"]));
    }
    if s["status"] != status {
        bad.push(format!("status: want {status:?} got {}", s["status"]));
    }
    let canon = fs::canonicalize(bundle)
        .map(|p| p.display().to_string())
        .unwrap_or(bundle.to_string());
    match s["bundle"].as_str() {
        Some(b) if b.starts_with('/') && (b == bundle || b == canon) => {}
        other => bad.push(format!("bundle: want absolute {bundle:?} got {other:?}")),
    }
    if status == "created" || status == "running" {
        match s["pid"].as_i64() {
            Some(p) if p > 0 => {
                if !is_alive(p as i32) {
                    bad.push(format!("pid {p} is not a live process on the host"));
                }
            }
            other => bad.push(format!("pid REQUIRED when {status}, got {other:?}")),
        }
    }
    bad
}

pub fn cases() -> Vec<Case> {
    vec![
        case("runtime/state/nonexistent-error", S_QUERY, "Attempting to query a container that does not exist MUST generate an error.", Needs::None, |cx| {
            let o = cx.rt(&["state", "oc-no-such-container"]);
            Ok(if o.ok() { V::Fail(format!("state of a nonexistent container succeeded: {}", o.stdout)) } else { V::Pass })
        }),
        case("runtime/state/created", S_STATE, "state MUST include ociVersion, id, status (created), pid (REQUIRED when created or running), bundle (absolute path)", Needs::None, |cx| {
            let c = Ctr::new(cx, waiting(cx, "state-created"));
            let o = c.create();
            ensure(o.ok(), format!("create failed: {}", o.brief()))?;
            let s = c.state()?;
            let bad = check_state_fields(&s, &c.id, &c.b.path(), "created");
            Ok(if bad.is_empty() { V::Pass } else { V::Fail(format!("{}\nstate: {s}", bad.join("\n"))) })
        }),
        case("runtime/state/annotations", S_STATE, "annotations (map, OPTIONAL) contains the list of annotations associated with the container.", Needs::None, |cx| {
            let mut b = waiting(cx, "state-annotations");
            b.set("/annotations", json!({"org.opencontainers.conformance.a": "one", "org.opencontainers.conformance.b": "two"}));
            let c = Ctr::new(cx, b);
            let o = c.create();
            ensure(o.ok(), format!("create failed: {}", o.brief()))?;
            let s = c.state()?;
            Ok(if s["annotations"] == c.b.cfg["annotations"] { V::Pass } else { V::Fail(format!("annotations: want {} got {}", c.b.cfg["annotations"], s["annotations"])) })
        }),
        case("runtime/state/running", S_START, "Upon successful completion of this operation the status property of this container MUST be running.", Needs::None, |cx| {
            let c = Ctr::new(cx, waiting(cx, "state-running"));
            let o = c.create();
            ensure(o.ok(), format!("create failed: {}", o.brief()))?;
            let pid0 = c.pid();
            let o = c.start();
            ensure(o.ok(), format!("start failed: {}", o.brief()))?;
            let s = c.state()?;
            let mut bad = check_state_fields(&s, &c.id, &c.b.path(), "running");
            if s["pid"].as_i64().map(|p| p as i32) != pid0 {
                bad.push(format!("pid changed from {pid0:?} (created) to {}", s["pid"]));
            }
            Ok(if bad.is_empty() { V::Pass } else { V::Fail(bad.join("\n")) })
        }),
        case("runtime/state/stopped-on-exit", S_KILL, "When the process in the container is stopped, irrespective of it being as a result of a kill operation or any other reason, the status property of this container MUST be stopped.", Needs::None, |cx| {
            let mut b = cx.bundle("state-stopped");
            b.args(&["/probe", "exit", "0"]);
            let c = Ctr::new(cx, b);
            c.up()?;
            let s = c.wait_status("stopped", 10)?;
            let bad = check_state_fields(&s, &c.id, &c.b.path(), "stopped");
            Ok(if bad.is_empty() { V::Pass } else { V::Fail(bad.join("\n")) })
        }),
        case("runtime/lifecycle/exit-nonzero-stopped", S_LIFE, "The container process exits. This MAY happen due to erroring out, exiting, crashing ... (status MUST be stopped)", Needs::None, |cx| {
            let mut b = cx.bundle("exit-nonzero");
            b.args(&["/probe", "exit", "3"]);
            let c = Ctr::new(cx, b);
            c.up()?;
            c.wait_status("stopped", 10)?;
            Ok(V::Pass)
        }),
        case("runtime/create/status-created", S_CREATE, "Upon successful completion of this operation the status property of this container MUST be created.", Needs::None, |cx| {
            let c = Ctr::new(cx, waiting(cx, "create-status"));
            let o = c.create();
            ensure(o.ok(), format!("create failed: {}", o.brief()))?;
            let st = c.status();
            Ok(if st == "created" { V::Pass } else { V::Fail(format!("status after create: {st}")) })
        }),
        case("runtime/create/user-code-not-run", S_LIFE, "While the resources requested in config.json MUST be created, the user-specified program (from process) MUST NOT be run at this time.", Needs::None, |cx| {
            let c = Ctr::new(cx, waiting(cx, "create-not-run"));
            let o = c.create();
            ensure(o.ok(), format!("create failed: {}", o.brief()))?;
            std::thread::sleep(Duration::from_millis(300));
            if c.started_count() != 0 {
                return fail("the user-specified program ran during create");
            }
            c.start();
            Ok(if c.wait_started(5) { V::Pass } else { V::Fail("the user program did not run after start".into()) })
        }),
        case("runtime/create/resources-created", S_LIFE, "The container's runtime environment MUST be created according to the configuration in config.json ... the resources requested MUST be created (namespaces exist after create)", Needs::None, |cx| {
            let c = Ctr::new(cx, waiting(cx, "create-resources"));
            let o = c.create();
            ensure(o.ok(), format!("create failed: {}", o.brief()))?;
            let pid = c.pid().ok_or("no pid in state")?;
            let mut bad = vec![];
            for f in ["pid", "net", "ipc", "uts", "mnt"] {
                let got = ns_inode(pid, f);
                let host = cx.host.ns.get(f).copied();
                if got.is_none() || got == host {
                    bad.push(format!("{f}: container pid {pid} ns {got:?}, runtime's {host:?}"));
                }
            }
            Ok(if bad.is_empty() { V::Pass } else { V::Fail(format!("namespaces not created at create time: {}", bad.join("; "))) })
        }),
        case("runtime/create/duplicate-id-error", S_CREATE, "If the ID provided is not unique across all containers within the scope of the runtime ... the implementation MUST generate an error and a new container MUST NOT be created.", Needs::None, |cx| {
            let c = Ctr::new(cx, waiting(cx, "dup-a"));
            let o = c.create();
            ensure(o.ok(), format!("create failed: {}", o.brief()))?;
            let s1 = c.state()?;
            let c2 = Ctr::new(cx, waiting(cx, "dup-b"));
            c2.b.write();
            let o2 = c2.create_raw(&c.id);
            let s2 = c.state()?;
            std::mem::forget(c2);
            if o2.ok() {
                return fail(format!("second create with the same id succeeded; state now {s2}"));
            }
            Ok(if s1 == s2 { V::Pass } else { V::Fail(format!("failed create changed the existing container: before {s1} after {s2}")) })
        }),
        case("runtime/create/config-update-no-effect", S_LIFE, "Any updates to config.json after this step MUST NOT affect the container.", Needs::None, |cx| {
            let c = Ctr::new(cx, waiting(cx, "config-update"));
            let o = c.create();
            ensure(o.ok(), format!("create failed: {}", o.brief()))?;
            let mut cfg = c.b.cfg.clone();
            cfg["process"]["args"] = json!(["/probe", "exit", "0"]);
            fs::write(c.b.dir.join("config.json"), cfg.to_string()).map_err(|e| e.to_string())?;
            let o = c.start();
            ensure(o.ok(), format!("start failed: {}", o.brief()))?;
            Ok(if c.wait_started(5) { V::Pass } else { V::Fail("the process from the updated config.json ran instead of the original one".into()) })
        }),
        case("runtime/create/missing-config-error", S_LIFE, "If the runtime is unable to create the environment specified in the config.json, it MUST generate an error.", Needs::None, |cx| {
            let b = cx.bundle("missing-config");
            let c = Ctr::new(cx, b);
            let o = c.create_raw(&c.id);
            if o.ok() {
                return fail("create without config.json succeeded");
            }
            Ok(if c.state().is_err() { V::Pass } else { V::Fail("a container exists after the failed create".into()) })
        }),
        case("runtime/start/nonexistent-error", S_START, "Attempting to start a container that does not exist MUST generate an error.", Needs::None, |cx| {
            let o = cx.rt(&["start", "oc-no-such-container"]);
            Ok(if o.ok() { V::Fail("start of a nonexistent container succeeded".into()) } else { V::Pass })
        }),
        case("runtime/start/twice-error-no-effect", S_START, "Attempting to start an already started container MUST have no effect on the container and MUST generate an error.", Needs::None, |cx| {
            let c = Ctr::new(cx, waiting(cx, "start-twice"));
            c.up()?;
            ensure(c.wait_started(5), "user program did not start")?;
            let pid = c.pid();
            let o = c.start();
            std::thread::sleep(Duration::from_millis(200));
            let mut bad = vec![];
            if o.ok() {
                bad.push("second start succeeded".to_string());
            }
            if c.started_count() != 1 {
                bad.push(format!("user program ran {} times", c.started_count()));
            }
            if c.status() != "running" || c.pid() != pid {
                bad.push(format!("container changed: status {} pid {:?} (was {pid:?})", c.status(), c.pid()));
            }
            Ok(if bad.is_empty() { V::Pass } else { V::Fail(bad.join("; ")) })
        }),
        case("runtime/start/stopped-error", S_START, "Attempting to start an already started container MUST have no effect on the container and MUST generate an error.", Needs::None, |cx| {
            let mut b = cx.bundle("start-stopped");
            b.args(&["/probe", "exit", "0"]);
            let c = Ctr::new(cx, b);
            c.up()?;
            c.wait_status("stopped", 10)?;
            let o = c.start();
            let st = c.status();
            if o.ok() {
                return fail(format!("start of a stopped container succeeded (status now {st})"));
            }
            Ok(if st == "stopped" { V::Pass } else { V::Fail(format!("status changed to {st}")) })
        }),
        case("runtime/kill/nonexistent-error", S_KILL, "Attempting to send a signal to a container that is neither created nor running MUST have no effect on the container and MUST generate an error.", Needs::None, |cx| {
            let o = cx.rt(&["kill", "oc-no-such-container", "KILL"]);
            Ok(if o.ok() { V::Fail("kill of a nonexistent container succeeded".into()) } else { V::Pass })
        }),
        case("runtime/kill/created", S_KILL, "This operation MUST send the specified signal to the container process (a created container may be signalled).", Needs::None, |cx| {
            let c = Ctr::new(cx, waiting(cx, "kill-created"));
            let o = c.create();
            ensure(o.ok(), format!("create failed: {}", o.brief()))?;
            let pid = c.pid().ok_or("no pid")?;
            let o = c.kill("KILL");
            ensure(o.ok(), format!("kill of a created container failed: {}", o.brief()))?;
            c.wait_status("stopped", 10)?;
            let gone = wait_until(5, || !is_alive(pid));
            Ok(if gone && c.started_count() == 0 { V::Pass } else { V::Fail(format!("after KILL: process alive {}, user program ran {}", !gone, c.started_count())) })
        }),
        case("runtime/kill/signal-delivered", S_KILL, "This operation MUST send the specified signal to the container process.", Needs::None, |cx| {
            let c = Ctr::new(cx, waiting(cx, "kill-usr1"));
            c.up()?;
            ensure(c.wait_started(5), "user program did not start")?;
            let o = c.kill("USR1");
            ensure(o.ok(), format!("kill USR1 failed: {}", o.brief()))?;
            let got = wait_until(5, || !c.signals().is_empty());
            Ok(if got && c.signals() == vec!["10".to_string()] { V::Pass } else { V::Fail(format!("signals received by the container process: {:?}", c.signals())) })
        }),
        case("runtime/kill/signal-number", S_KILL, "This operation MUST send the specified signal to the container process (signal given by number).", Needs::None, |cx| {
            let c = Ctr::new(cx, waiting(cx, "kill-num"));
            c.up()?;
            ensure(c.wait_started(5), "user program did not start")?;
            let o = c.kill("12");
            ensure(o.ok(), format!("kill 12 failed: {}", o.brief()))?;
            let got = wait_until(5, || !c.signals().is_empty());
            Ok(if got && c.signals() == vec!["12".to_string()] { V::Pass } else { V::Fail(format!("signals received: {:?}", c.signals())) })
        }),
        case("runtime/kill/term-stops", S_KILL, "When the process in the container is stopped ... as a result of a kill operation ... the status MUST be stopped.", Needs::None, |cx| {
            let c = Ctr::new(cx, waiting(cx, "kill-term"));
            c.up()?;
            ensure(c.wait_started(5), "user program did not start")?;
            let pid = c.pid().ok_or("no pid")?;
            let o = c.kill("TERM");
            ensure(o.ok(), format!("kill TERM failed: {}", o.brief()))?;
            c.wait_status("stopped", 10)?;
            Ok(if wait_until(5, || !is_alive(pid)) { V::Pass } else { V::Fail(format!("pid {pid} still alive")) })
        }),
        case("runtime/kill/stopped-error", S_KILL, "Attempting to send a signal to a container that is neither created nor running MUST have no effect on the container and MUST generate an error.", Needs::None, |cx| {
            let mut b = cx.bundle("kill-stopped");
            b.args(&["/probe", "exit", "0"]);
            let c = Ctr::new(cx, b);
            c.up()?;
            c.wait_status("stopped", 10)?;
            let o = c.kill("KILL");
            let st = c.status();
            if o.ok() {
                return fail("kill of a stopped container succeeded");
            }
            Ok(if st == "stopped" { V::Pass } else { V::Fail(format!("status changed to {st}")) })
        }),
        case("runtime/delete/nonexistent-error", S_DELETE, "Attempting to delete a container that does not exist MUST generate an error.", Needs::None, |cx| {
            let o = cx.rt(&["delete", "oc-no-such-container"]);
            Ok(if o.ok() { V::Fail("delete of a nonexistent container succeeded".into()) } else { V::Pass })
        }),
        case("runtime/delete/running-error", S_DELETE, "Attempting to delete a container whose process is still running MUST generate an error.", Needs::None, |cx| {
            let c = Ctr::new(cx, waiting(cx, "delete-running"));
            c.up()?;
            ensure(c.wait_started(5), "user program did not start")?;
            let pid = c.pid();
            let o = c.delete();
            let st = c.status();
            if o.ok() {
                return fail(format!("delete of a running container succeeded (status now {st})"));
            }
            Ok(if st == "running" && c.pid() == pid && pid.map(is_alive).unwrap_or(false) { V::Pass } else { V::Fail(format!("failed delete changed the container: status {st}")) })
        }),
        case("runtime/delete/created-error", S_DELETE, "Attempting to delete a container whose process is still running MUST generate an error. (In `created` the container process exists.)", Needs::None, |cx| {
            let c = Ctr::new(cx, waiting(cx, "delete-created"));
            let o = c.create();
            ensure(o.ok(), format!("create failed: {}", o.brief()))?;
            let o = c.delete();
            let st = c.status();
            if o.ok() {
                // runc (and crun) delete a created container without --force, and
                // containerd's shim relies on it: see README.md, "Spec and runc differ".
                return Ok(V::Diverge(format!("delete of a created container succeeded (status now {st}), as runc does")));
            }
            Ok(if st == "created" { V::Pass } else { V::Fail(format!("failed delete changed the container: status {st}")) })
        }),
        case("runtime/delete/stopped-removes", S_DELETE, "Deleting a container MUST delete the resources that were created during the create step.", Needs::None, |cx| {
            let c = Ctr::new(cx, waiting(cx, "delete-stopped"));
            c.up()?;
            ensure(c.wait_started(5), "user program did not start")?;
            let pid = c.pid().ok_or("no pid")?;
            let o = c.kill("KILL");
            ensure(o.ok(), format!("kill failed: {}", o.brief()))?;
            c.wait_status("stopped", 10)?;
            let o = c.delete();
            ensure(o.ok(), format!("delete of a stopped container failed: {}", o.brief()))?;
            let mut bad = vec![];
            if c.state().is_ok() {
                bad.push("state still succeeds after delete".to_string());
            }
            if is_alive(pid) {
                bad.push(format!("container process {pid} still alive"));
            }
            let left: Vec<String> = fs::read_dir(&cx.root).map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().to_string()).filter(|n| n.contains(&c.id)).collect()).unwrap_or_default();
            if !left.is_empty() {
                bad.push(format!("runtime state left under --root: {left:?}"));
            }
            Ok(if bad.is_empty() { V::Pass } else { V::Fail(bad.join("; ")) })
        }),
        case("runtime/delete/id-reusable", S_DELETE, "Once a container is deleted its ID MAY be used by a subsequent container.", Needs::None, |cx| {
            let mut b = cx.bundle("id-reuse");
            b.args(&["/probe", "exit", "0"]);
            let c = Ctr::new(cx, b);
            c.up()?;
            c.wait_status("stopped", 10)?;
            let o = c.delete();
            ensure(o.ok(), format!("delete failed: {}", o.brief()))?;
            let o = c.create();
            Ok(if o.ok() && c.status() == "created" { V::Pass } else { V::Fail(format!("re-create with the same id: {}", o.brief())) })
        }),
        case("runtime/delete/keeps-foreign-resources", S_DELETE, "Note that resources associated with the container, but not created by this container, MUST NOT be deleted.", Needs::None, |cx| {
            let mut b = cx.bundle("delete-foreign");
            b.args(&["/probe", "exit", "0"]);
            let src = b.dir.join("volume");
            write_file(&src.join("keep"), "data").map_err(|e| e.to_string())?;
            fs::create_dir_all(b.rootfs.join("vol")).ok();
            b.push("/mounts", json!({"destination": "/vol", "type": "bind", "source": src.display().to_string(), "options": ["rbind", "rw"]}));
            let c = Ctr::new(cx, b);
            c.up()?;
            c.wait_status("stopped", 10)?;
            let o = c.delete();
            ensure(o.ok(), format!("delete failed: {}", o.brief()))?;
            let mut bad = vec![];
            if fs::read_to_string(src.join("keep")).ok().as_deref() != Some("data") {
                bad.push("bind-mount source content was removed");
            }
            if !c.b.dir.join("config.json").exists() || !c.b.rootfs.join("probe").exists() {
                bad.push("the bundle was modified/removed");
            }
            Ok(if bad.is_empty() { V::Pass } else { V::Fail(bad.join("; ")) })
        }),
    ]
}
