//! The case table. Each case id is `<spec file>/<section>/<name>`.

use crate::harness::*;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

mod config_linux;
mod config_md;
mod hooks;
mod lifecycle;

pub fn all() -> Vec<Case> {
    let mut v = vec![];
    v.extend(lifecycle::cases());
    v.extend(hooks::cases());
    v.extend(config_md::cases());
    v.extend(config_linux::cases());
    v
}

pub fn case(
    id: &str,
    section: &'static str,
    spec: &'static str,
    needs: Needs,
    f: impl Fn(&Ctx) -> R + 'static,
) -> Case {
    Case {
        id: id.to_string(),
        section,
        spec,
        needs,
        run: Box::new(f),
    }
}

/// A case judged by the probe's report on `focus` checks.
pub fn probe_case(
    id: &str,
    section: &'static str,
    spec: &'static str,
    needs: Needs,
    focus: &'static [&'static str],
    setup: impl Fn(&Ctx, &mut Bundle) -> Result<(), String> + 'static,
) -> Case {
    let name = id.to_string();
    case(id, section, spec, needs, move |cx| {
        let mut b = cx.bundle(&name);
        setup(cx, &mut b)?;
        let r = cx.run_probe(b)?;
        Ok(r.judge(focus))
    })
}

/// A case whose config the runtime MUST reject (at create, or at the latest at
/// start for process properties), leaving no container behind.
pub fn reject_case(
    id: &str,
    section: &'static str,
    spec: &'static str,
    needs: Needs,
    setup: impl Fn(&Ctx, &mut Bundle) -> Result<(), String> + 'static,
) -> Case {
    let name = id.to_string();
    case(id, section, spec, needs, move |cx| {
        let mut b = cx.bundle(&name);
        setup(cx, &mut b)?;
        let c = Ctr::new(cx, b);
        let o = c.create();
        if o.ok() {
            let pid = c.pid();
            let s = c.start();
            if s.ok() {
                return Ok(V::Fail(format!(
                    "create and start both succeeded (expected an error); container output: {}",
                    c.output().chars().take(500).collect::<String>()
                )));
            }
            // An error at start is an error, but the container must not run.
            std::thread::sleep(Duration::from_millis(100));
            if c.started_count() > 0 {
                return Ok(V::Fail("start failed but the user program ran".into()));
            }
            let st = c.status();
            if st == "running" {
                return Ok(V::Fail(format!(
                    "start failed but status is running (pid {pid:?})"
                )));
            }
            return Ok(V::Pass);
        }
        // Nothing may be left behind.
        match c.state() {
            Err(_) => Ok(V::Pass),
            Ok(s) => Ok(V::Fail(format!(
                "create failed ({}) but the container exists: {s}",
                o.brief()
            ))),
        }
    })
}

/// A case where create+start MUST succeed (e.g. unknown properties are ignored).
pub fn accept_case(
    id: &str,
    section: &'static str,
    spec: &'static str,
    setup: impl Fn(&Ctx, &mut Bundle) -> Result<(), String> + 'static,
) -> Case {
    let name = id.to_string();
    case(id, section, spec, Needs::None, move |cx| {
        let mut b = cx.bundle(&name);
        setup(cx, &mut b)?;
        let r = cx.run_probe(b)?;
        Ok(r.judge(&["process.args"]))
    })
}

pub fn fail(msg: impl Into<String>) -> R {
    Ok(V::Fail(msg.into()))
}

pub fn ensure(cond: bool, msg: impl Into<String>) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg.into())
    }
}

pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

/// Host-side mount helper (our own temporary mounts, undone by the case's cleanups).
pub fn host_mount(cx: &Ctx, args: &[&str], target: &Path) -> Result<(), String> {
    let o = cx.exec("mount", args, Duration::from_secs(10));
    if !o.ok() {
        return Err(format!("host mount failed: {}", o.brief()));
    }
    let t = target.to_path_buf();
    cx.defer(move || {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&t)
            .status();
    });
    Ok(())
}

pub fn write_file(p: &Path, s: &str) -> Result<(), String> {
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    fs::write(p, s).map_err(|e| format!("{}: {e}", p.display()))
}

pub fn wait_args() -> Value {
    json!(["/probe", "wait", "/"])
}
