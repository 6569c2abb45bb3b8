//! Hostile config.json files, generated from a fixed seed: every one either runs or is refused
//! with an error, never a panic or a hang, and leaves no state, cgroup or mount behind.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{mounts, output_via_files_within, require_root, text, Bundle, Rng};

/// JSON pointers to every value in the config.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        _ => {}
    }
}

fn hostile_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(-1),
        json!(0),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1.5),
        json!(""),
        json!("x"),
        json!("../../../etc"),
        json!("/"),
        json!([]),
        json!({}),
        json!([1, "a"]),
        json!({"a": 1}),
        json!(true),
        json!("\u{0}"),
        json!("a".repeat(5000)),
    ]
}

/// Whole fields replaced by plausible but wrong structures.
fn hostile_fields() -> Vec<(&'static str, Value)> {
    vec![
        ("/linux/resources", json!({"memory": {"limit": "x"}})),
        (
            "/linux/resources",
            json!({"unified": {"../cgroup.procs": "1"}}),
        ),
        (
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [1]}]}),
        ),
        ("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_BOGUS"})),
        ("/hooks", json!({"prestart": [{"path": ""}]})),
        ("/hooks", json!({"createRuntime": [{"path": "relative"}]})),
        (
            "/linux/devices",
            json!([{"path": "/dev/x", "type": "q", "major": 1, "minor": 1}]),
        ),
        (
            "/linux/devices",
            json!([{"path": "../../x", "type": "c", "major": 1, "minor": 3}]),
        ),
        ("/mounts", json!([{"destination": "", "type": "bind"}])),
        (
            "/mounts",
            json!([{"destination": "/proc/../..", "type": "proc", "source": "proc"}]),
        ),
        (
            "/linux/uidMappings",
            json!([{"containerID": 0, "hostID": 0, "size": 0}]),
        ),
        (
            "/process/rlimits",
            json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 0}]),
        ),
        ("/linux/sysctl", json!({"../x": "1"})),
        ("/linux/namespaces", json!([{"type": "bogus"}])),
        (
            "/linux/namespaces",
            json!([{"type": "mount", "path": "/nonexistent"}]),
        ),
        ("/process/user", json!({"uid": -5})),
        ("/linux/cgroupsPath", json!("../../x")),
        ("/linux/timeOffsets", json!({"monotonic": {"secs": "a"}})),
        ("/process/capabilities", json!({"bounding": ["CAP_BOGUS"]})),
        ("/root", json!({"path": "/nonexistent"})),
        ("/process/cwd", json!("relative")),
    ]
}

fn set(v: &mut Value, ptr: &str, x: Value) {
    let (parent, key) = ptr.rsplit_once('/').unwrap();
    let key = key.replace("~1", "/").replace("~0", "~");
    let parent = if parent.is_empty() {
        Some(&mut *v)
    } else {
        v.pointer_mut(parent)
    };
    match parent {
        Some(Value::Object(m)) => {
            m.insert(key, x);
        }
        Some(Value::Array(a)) => {
            if let Ok(i) = key.parse::<usize>() {
                if i < a.len() {
                    a[i] = x;
                }
            }
        }
        // The parent was replaced by a scalar in this case: nothing to set.
        _ => {}
    }
}

#[test]
fn hostile_configs_are_refused_or_run_and_leave_nothing() {
    require_root!();
    let mut b = Bundle::new("fuzz");
    b.args(&["true"]);
    let base = b.config.clone();
    let mut all = vec![];
    pointers(&base, String::new(), &mut all);
    // root.path is the one host path a bundle names for itself: pointed at a host directory
    // (a hostile value like "../../../etc"), mount targets would be created there.
    all.retain(|p| !p.starts_with("/root"));
    let values = hostile_values();
    let fields = hostile_fields();
    let mut rng = Rng(0x5eed_5eed_1234_5678);
    let bundle = b.dir.to_str().unwrap().to_string();
    let (mut refused, mut ran) = (0, 0);
    for case in 0..120 {
        let mut c = base.clone();
        let mut what = vec![];
        for _ in 0..=rng.below(3) {
            if rng.below(10) < 3 {
                let (p, v) = fields[rng.below(fields.len())].clone();
                what.push(format!("{p} = {v}"));
                set(&mut c, p, v);
            } else {
                let p = all[rng.below(all.len())].clone();
                let v = values[rng.below(values.len())].clone();
                what.push(format!(
                    "{p} = {}",
                    v.to_string().chars().take(40).collect::<String>()
                ));
                set(&mut c, &p, v);
            }
        }
        b.config = c;
        b.write_config();
        let out = output_via_files_within(
            b.command(&["run", "--bundle", &bundle, &b.id])
                .stdin(Stdio::null()),
            Some(Duration::from_secs(30)),
        );
        let err = text(&out.stderr);
        assert!(
            out.status.code().is_some() && !err.contains("panicked"),
            "case {case} ({what:?}): skiff crashed: {:?}\n{err}",
            out.status
        );
        if out.status.success() {
            ran += 1;
        } else {
            refused += 1;
            assert!(
                !err.trim().is_empty(),
                "case {case} ({what:?}): failed without a word"
            );
        }
        let left = std::fs::read_dir(&b.root).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "case {case} ({what:?}): state left behind");
        assert!(
            !b.default_cgroup().exists(),
            "case {case} ({what:?}): cgroup left behind"
        );
        assert!(
            !mounts().contains(b.dir.to_str().unwrap()),
            "case {case} ({what:?}): mounts left behind"
        );
    }
    // The generator must really exercise both outcomes.
    assert!(refused > 20 && ran >= 2, "refused {refused}, ran {ran}");
}
