//! 200 commands (create, start, state, kill, delete, exec) on 20 ids, run by 8 threads at
//! once: every command ends within its limit (no deadlock), every state.json and every
//! `state` output parses (no torn or corrupted record), and after `delete --force` of every
//! id nothing is left.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{bundle_dir, leftovers, processes_of, skiff};
use crate::common::{require_root, text, wait_for, Bundle};

#[test]
fn parallel_mixed_commands_on_shared_ids_keep_state_consistent_and_leave_nothing() {
    require_root!();
    let mut b = Bundle::new("conc");
    b.args(&["sh", "-c", "sleep 3600; true"]);
    b.write_config();
    let b = Arc::new(b);
    let ids: Vec<String> = (0..20).map(|i| format!("{}-{i}", b.id)).collect();
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    // Successes per command: the mix must really have created, started and exec'd.
    let ok = Arc::new(Mutex::new(
        std::collections::BTreeMap::<&'static str, usize>::new(),
    ));
    let next = Arc::new(Mutex::new(0usize));
    let started = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (b, ids, errors, next, ok) = (
                b.clone(),
                ids.clone(),
                errors.clone(),
                next.clone(),
                ok.clone(),
            );
            std::thread::spawn(move || loop {
                let n = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                if n >= 200 {
                    return;
                }
                let id = &ids[(n * 7 + t) % ids.len()];
                let dir = bundle_dir(&b);
                let args: Vec<&str> = match n % 6 {
                    0 => vec!["create", "--bundle", &dir, id],
                    1 => vec!["start", id],
                    2 => vec!["state", id],
                    3 => vec!["kill", id, "KILL"],
                    4 => vec!["delete", "--force", id],
                    _ => vec!["exec", id, "true"],
                };
                let kind = ["create", "start", "state", "kill", "delete", "exec"][n % 6];
                // Bounded (a hang fails the test); the config is written once, above.
                let out = super::bounded(b.command(&args).stdin(std::process::Stdio::null()));
                let err = text(&out.stderr);
                if out.status.success() {
                    *ok.lock().unwrap().entry(kind).or_default() += 1;
                }
                if args[0] == "state" && out.status.success() {
                    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                        errors.lock().unwrap().push(format!("state {id}: {e}"));
                    }
                }
                // Failures are expected (wrong status, gone, exists); not these.
                for bad in ["parsing", "panicked", "protocol error", "Resource deadlock"] {
                    if err.contains(bad) {
                        errors.lock().unwrap().push(format!("{args:?}: {err}"));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let took = started.elapsed();
    // Every record on disk is whole.
    for e in std::fs::read_dir(&b.root).into_iter().flatten().flatten() {
        let state = e.path().join("state.json");
        if let Ok(text) = std::fs::read(&state) {
            if let Err(err) = serde_json::from_slice::<serde_json::Value>(&text) {
                errors
                    .lock()
                    .unwrap()
                    .push(format!("{}: {err}", state.display()));
            }
        }
    }
    for id in &ids {
        let out = skiff(&b, &["delete", "--force", id], &[]);
        assert!(out.status.success(), "{id}: {}", text(&out.stderr));
    }
    let errors = errors.lock().unwrap();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(
        took < Duration::from_secs(120),
        "200 commands took {took:?}"
    );
    let ok = ok.lock().unwrap();
    for kind in ["create", "start", "state", "exec", "delete"] {
        assert!(
            ok.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} succeeded: {ok:?}"
        );
    }
    let cg = b.default_cgroup();
    for id in &ids {
        let cg = cg.with_file_name(id);
        assert!(
            wait_for(2000, || !cg.exists()),
            "cgroup {} left",
            cg.display()
        );
        assert!(processes_of(id).is_empty(), "{id}: {:?}", processes_of(id));
    }
    assert!(leftovers(&b).is_empty(), "{:#?}", leftovers(&b));
    eprintln!(
        "concurrency: 200 commands on 20 ids by 8 threads in {took:?} (succeeded: {ok:?}), \
         nothing left"
    );
}
