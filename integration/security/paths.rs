//! Ids and paths from the command line and config.json that try to leave the state root, the
//! rootfs or the cgroup hierarchy (the class of runc's "container id path traversal" fix and
//! of CVE-2024-45310's created paths).
//!
//! The line skiff draws, as runc does: config.json is the orchestrator's, so host paths in it
//! (root.path, mount sources, hook paths, namespace paths, --pid-file) may point anywhere,
//! and a relative root.path with ".." is simply resolved against the bundle; what must never
//! leave its place is everything that names a *container* path (mount destinations,
//! linux.devices, process.cwd, masked and read-only paths: clamped to the rootfs by
//! RESOLVE_IN_ROOT, ".." included), the container id (a single path component below the
//! state root) and linux.cgroupsPath (no "..").

use serde_json::json;

use super::{entries, host_mounts_under, scratch_dir};
use crate::common::{require_root, text, Bundle};

#[test]
fn container_ids_cannot_leave_the_state_root() {
    require_root!();
    let mut b = Bundle::new("id-escape");
    b.args(&["true"]);
    b.write_config();
    // A directory beside the state root that looks like a container.
    let victim = b
        .root
        .parent()
        .unwrap()
        .join(format!("victim-{}", std::process::id()));
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("state.json"), "{}").unwrap();
    let victim_name = victim.file_name().unwrap().to_str().unwrap().to_string();
    let bundle = b.dir.to_str().unwrap().to_string();
    let up = format!("../{victim_name}");
    for id in [
        "..",
        ".",
        up.as_str(),
        "a/../../x",
        "/abs",
        "x/y",
        "bad\nid",
        "",
    ] {
        for args in [
            vec!["create", "--bundle", &bundle, id],
            vec!["delete", "--force", id],
            vec!["state", id],
            vec!["kill", id, "KILL"],
            vec!["exec", id, "true"],
        ] {
            let out = b.skiff(&args);
            assert!(!out.status.success(), "{args:?} accepted");
            let err = text(&out.stderr);
            assert!(err.contains("invalid container id"), "{args:?}: {err}");
        }
    }
    let left = entries(&victim);
    let _ = std::fs::remove_dir_all(&victim);
    let stray = b.root.parent().unwrap().join("x");
    let escaped = stray.exists();
    let _ = std::fs::remove_dir_all(&stray);
    assert_eq!(
        left,
        ["state.json"],
        "a command reached outside the state root"
    );
    assert!(!escaped, "create made a directory outside the state root");
}

/// Container paths with ".." (absolute and relative) are clamped to the rootfs: nothing is
/// created in, or mounted over, the scratch host directory they aim at.
#[test]
fn container_paths_with_dotdot_stay_in_the_rootfs() {
    require_root!();
    let mut b = Bundle::new("dotdot-escape");
    let host = scratch_dir(&b, "host");
    let rel = host
        .strip_prefix("/")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let up = "../".repeat(16);
    std::fs::write(b.dir.join("vol-file"), "v\n").unwrap();
    let mut m = b.config["mounts"].as_array().unwrap().clone();
    m.push(json!({"destination": format!("/{up}{rel}/tmpfs"), "type": "tmpfs", "source": "tmpfs"}));
    m.push(
        json!({"destination": format!("{up}{rel}/file"), "type": "bind",
                  "source": "vol-file", "options": ["bind"]}),
    );
    b.config["mounts"] = json!(m);
    b.config["linux"]["devices"] = json!([{"path": format!("/{up}{rel}/null2"), "type": "c",
                                          "major": 1, "minor": 3}]);
    b.config["linux"]["maskedPaths"] = json!([format!("/{up}{rel}/file")]);
    b.config["linux"]["readonlyPaths"] = json!([format!("/{up}{rel}/tmpfs")]);
    b.config["process"]["cwd"] = json!(format!("/{up}{rel}/cwd"));
    b.config["root"]["readonly"] = json!(false);
    b.sh("pwd; stat -c %F null2; grep -c ' /' /proc/self/mountinfo >/dev/null; touch here");
    let out = b.run_ok();
    assert!(
        entries(&host).is_empty(),
        "the host directory got {:?}",
        entries(&host)
    );
    assert!(
        host_mounts_under(&host).is_empty(),
        "a host path was mounted over"
    );
    // Where they went instead: the same path inside the rootfs.
    let inside = b.rootfs().join(&rel);
    assert_eq!(
        out.lines().next(),
        Some(format!("/{rel}/cwd").as_str()),
        "{out}"
    );
    assert!(inside.join("cwd/here").exists(), "{out}");
    assert!(inside.join("null2").exists() && inside.join("tmpfs").is_dir());
}

/// runc's rule, kept: a relative root.path is joined to the bundle directory, "../" and all
/// (the config is the orchestrator's and could name any absolute path anyway).
#[test]
fn a_relative_root_path_is_resolved_against_the_bundle_even_with_dotdot() {
    require_root!();
    let mut b = Bundle::new("rootpath-dotdot");
    let sibling = b.dir.join("images/one");
    std::fs::create_dir_all(&sibling).unwrap();
    std::fs::rename(b.rootfs(), sibling.join("rootfs")).unwrap();
    std::fs::create_dir(b.dir.join("sub")).unwrap();
    b.config["root"]["path"] = json!("sub/../images/one/rootfs");
    std::fs::write(sibling.join("rootfs/marker"), "image one\n").unwrap();
    b.args(&["cat", "/marker"]);
    assert_eq!(b.run_ok(), "image one\n");
    // Back where the harness expects it.
    std::fs::rename(sibling.join("rootfs"), b.rootfs()).unwrap();
}

#[test]
fn cgroups_path_cannot_leave_the_hierarchy() {
    require_root!();
    for p in ["../../escape", "/../escape", "a/../../escape", "/"] {
        let mut b = Bundle::new("cgpath-escape");
        b.config["linux"]["cgroupsPath"] = json!(p);
        b.args(&["true"]);
        let out = b.create();
        // Only ever the cgroup2 hierarchy (never a v1 one), and removed if it was made.
        let stray = crate::common::cgroup2_mount().join("escape");
        let escaped = stray.exists();
        let _ = std::fs::remove_dir(&stray);
        assert!(
            !escaped,
            "cgroupsPath {p:?} made a cgroup outside its place"
        );
        assert!(!out.status.success(), "cgroupsPath {p:?} accepted");
        assert!(
            text(&out.stderr).contains("linux.cgroupsPath"),
            "{p:?}: {}",
            text(&out.stderr)
        );
    }
}

/// A linux.sysctl key is a path below /proc/sys: one that passes the namespace check as a
/// net.* key but climbs out of /proc/sys/net is refused before anything is created. (The
/// target here is the container's own UTS-namespaced hostname, so even a runtime that let it
/// through would only rename the container, never touch a host-global sysctl.)
#[test]
fn sysctl_keys_cannot_climb_out_of_their_namespace() {
    require_root!();
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for key in [
        "net/../kernel/hostname",
        "net.ipv4.conf.all.forwarding/../../../../../kernel.hostname",
        "net.ipv4/../../kernel/hostname",
    ] {
        let mut b = Bundle::new("sysctl-escape");
        b.config["linux"]["sysctl"] = json!({ key: "pwned-by-sysctl" });
        b.args(&["hostname"]);
        let (code, out, err) = b.run();
        assert!(
            !out.contains("pwned"),
            "sysctl {key:?} reached kernel.hostname"
        );
        assert_ne!(code, 0, "sysctl {key:?} accepted");
        assert!(err.contains("linux.sysctl"), "{key}: {err}");
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_name
    );
}
