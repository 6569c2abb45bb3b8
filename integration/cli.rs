//! The command line surface clients depend on: --version, spec, list, flag forms, man pages.

use crate::common::{require_root, skiff_bin, text, Bundle};
use std::process::Command;

#[test]
fn version_has_runc_shape() {
    let out = Command::new(skiff_bin()).arg("--version").output().unwrap();
    let s = text(&out.stdout);
    let lines: Vec<&str> = s.lines().collect();
    assert!(lines[0].starts_with("skiff version "), "{s}");
    assert!(lines.iter().any(|l| l.starts_with("spec: 1.")), "{s}");
}

#[test]
fn spec_refuses_to_overwrite() {
    let dir = std::env::temp_dir().join(format!("skiff-it-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = || {
        Command::new(skiff_bin())
            .args(["spec", "--bundle"])
            .arg(&dir)
            .output()
            .unwrap()
    };
    assert!(run().status.success());
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["root"]["path"], "rootfs");
    let again = run();
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("exists"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn list_shows_containers_in_table_and_json() {
    require_root!();
    let mut b = Bundle::new("list");
    b.args(&["sleep", "30"]);
    b.create_ok();
    let table = b.ok(&["list"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains(&b.id) && table.contains("created"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&b.ok(&["list", "--format=json"])).unwrap();
    assert_eq!(json[0]["id"], b.id.as_str());
    assert_eq!(json[0]["status"], "created");
    assert_eq!(b.ok(&["list", "-q"]).trim(), b.id);
}

#[test]
fn flags_accept_both_spellings() {
    require_root!();
    let mut b = Bundle::new("flags");
    b.args(&["true"]);
    b.write_config();
    let bundle = format!("--bundle={}", b.dir.display());
    let root = format!("--root={}", b.root.display());
    let out = Command::new(skiff_bin())
        .args([&root, "run", &bundle, &b.id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// `--systemd-cgroup` only changes how `create` makes a cgroup: other commands take it (as
/// clients pass it to every call) and do what they always do.
#[test]
fn systemd_cgroup_is_accepted_by_commands_that_make_no_cgroup() {
    let root = std::env::temp_dir().join(format!("skiff-cli-systemd-{}", std::process::id()));
    let out = Command::new(skiff_bin())
        .arg("--root")
        .arg(&root)
        .args(["--systemd-cgroup", "list", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn checkpoint_and_restore_are_refused_clearly_and_touch_nothing() {
    require_root!();
    let mut b = Bundle::new("ckpt");
    b.args(&["sleep", "30"]);
    b.create_ok();
    for cmd in [
        ["checkpoint", "--image-path", "/nonexistent", b.id.as_str()],
        ["restore", "--bundle", "/nonexistent", b.id.as_str()],
    ] {
        let out = b.skiff(&cmd);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        assert!(
            text(&out.stderr).contains("not supported"),
            "{cmd:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(b.status(), "created");
}
