//! Bad input: a clear error naming the file/field, a non-zero exit, and nothing left behind
//! (the Bundle guard checks the state root and the cgroup on drop).

use serde_json::json;

use crate::common::{require_root, text, Bundle};

fn create_err(b: &Bundle) -> String {
    let out = b.create();
    assert!(!out.status.success(), "create unexpectedly succeeded");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn duplicate_id_is_refused_and_the_first_container_is_untouched() {
    require_root!();
    let mut b = Bundle::new("dup");
    b.args(&["sleep", "30"]);
    b.create_ok();
    let pid = b.state()["pid"].clone();
    let err = create_err(&b);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(b.state()["pid"], pid);
    assert_eq!(b.status(), "created");
}

#[test]
fn invalid_ids_are_refused() {
    require_root!();
    let b = Bundle::new("badid");
    b.write_config();
    let bundle = b.dir.to_str().unwrap().to_string();
    for id in ["", "..", "a/b", "../escape", "tab\there"] {
        let out = b
            .command(&["create", "--bundle", &bundle, id])
            .output()
            .unwrap();
        assert!(!out.status.success(), "id {id:?} accepted");
        assert!(
            text(&out.stderr).contains("invalid container id"),
            "{id:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(!b.root.parent().unwrap().join("escape").exists());
}

#[test]
fn missing_bundle_is_named() {
    require_root!();
    let b = Bundle::new("nobundle");
    let out = b
        .command(&["create", "--bundle", "/nonexistent/bundle", &b.id])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("/nonexistent/bundle"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn malformed_config_names_the_field() {
    require_root!();
    let mut b = Bundle::new("badfield");
    b.config["process"]["args"] = json!("not-a-list");
    let err = create_err(&b);
    assert!(
        err.contains("config.json") && err.contains("process.args"),
        "{err}"
    );

    b.config["process"]["args"] = json!([]);
    let err = create_err(&b);
    assert!(err.contains("process.args"), "{err}");

    b.config["process"]["args"] = json!(["true"]);
    b.config["process"]["cwd"] = json!("relative");
    let err = create_err(&b);
    assert!(err.contains("process.cwd"), "{err}");
}

#[test]
fn invalid_json_is_reported() {
    require_root!();
    let b = Bundle::new("badjson");
    std::fs::write(b.dir.join("config.json"), "{ not json").unwrap();
    let bundle = b.dir.to_str().unwrap().to_string();
    let out = b
        .command(&["create", "--bundle", &bundle, &b.id])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("invalid JSON"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn missing_program_fails_create_and_cleans_up() {
    require_root!();
    let mut b = Bundle::new("noprog");
    b.args(&["/no/such/program"]);
    let err = create_err(&b);
    assert!(err.contains("/no/such/program"), "{err}");
    b.args(&["no-such-program"]);
    let err = create_err(&b);
    assert!(err.contains("executable file not found in $PATH"), "{err}");
}

#[test]
fn a_failing_mount_cleans_up_everything() {
    require_root!();
    let mut b = Bundle::new("badmount");
    let mut m = b.config["mounts"].as_array().unwrap().clone();
    m.push(json!({"destination": "/x", "type": "bind", "source": "/nonexistent/source"}));
    b.config["mounts"] = json!(m);
    b.args(&["true"]);
    let err = create_err(&b);
    assert!(
        err.contains("mounts[7]") && err.contains("/nonexistent/source"),
        "{err}"
    );
}

#[test]
fn unsupported_resources_are_refused_by_field() {
    require_root!();
    let mut b = Bundle::new("resources");
    b.config["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    b.args(&["true"]);
    let err = create_err(&b);
    assert!(err.contains("linux.resources.memory"), "{err}");
}

#[test]
fn json_log_lines_carry_level_msg_time() {
    require_root!();
    let mut b = Bundle::new("jsonlog");
    b.args(&["/no/such/program"]);
    b.write_config();
    let log = b.dir.join("log.json");
    let bundle = b.dir.to_str().unwrap().to_string();
    let out = b
        .command(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "create",
            "--bundle",
            &bundle,
            &b.id,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains("/no/such/program"));
    let time = last["time"].as_str().unwrap();
    assert!(
        time.len() >= 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{time}"
    );
    assert_eq!(last.as_object().unwrap().len(), 3);
}
