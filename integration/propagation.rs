//! Mount propagation between a volume and the host, as runc sets it up: the container's tree
//! takes linux.rootfsPropagation first, so a bind volume of a shared host mount with `rshared`
//! under `rootfsPropagation: rshared` is a peer of its source (Kubernetes' Bidirectional),
//! and the default keeps the container a slave of the host. The full matrix against runc runs
//! in the guest (integration/differential); these are the cases Kubernetes depends on.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::common::{mounts, require_root, wait_for, Bundle};

/// A directory of the test's own, bind-mounted onto itself and made shared (this host's
/// mounts are all private), unmounted with everything under it on drop.
struct SharedSource(PathBuf);

impl SharedSource {
    fn new(b: &Bundle) -> SharedSource {
        let dir = b.dir.join("shared-src");
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.to_str().unwrap();
        sh(&format!("mount --bind {d} {d} && mount --make-shared {d}"));
        SharedSource(dir)
    }
}

impl Drop for SharedSource {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-R").arg(&self.0).status();
    }
}

fn sh(script: &str) {
    let st = Command::new("sh").args(["-c", script]).status().unwrap();
    assert!(st.success(), "{script}");
}

fn is_mount(p: &Path) -> bool {
    mounts()
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(p.to_str().unwrap()))
}

fn volume(b: &mut Bundle, src: &Path, options: &[&str]) {
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/vol", "type": "bind", "source": src, "options": options}));
    // CAP_SYS_ADMIN, so the container can mount below its volume.
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_ADMIN"));
    }
    b.config["root"]["readonly"] = json!(false);
}

/// `rootfsPropagation: rshared` + an `rbind,rshared` volume of a shared host mount: a mount
/// the container makes below the volume appears on the host (runc's behaviour; containerd's
/// CRI sets exactly this for mountPropagation: Bidirectional).
#[test]
fn bidirectional_volume_mounts_reach_the_host() {
    require_root!();
    let mut b = Bundle::new("prop-bidi");
    let src = SharedSource::new(&b);
    std::fs::create_dir_all(src.0.join("sub")).unwrap();
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    volume(&mut b, &src.0, &["rbind", "rshared"]);
    b.sh("mount -t tmpfs from-container /vol/sub && echo mounted; sleep 30");
    b.start_ok();
    let sub = src.0.join("sub");
    assert!(
        wait_for(10_000, || is_mount(&sub)),
        "the container's mount did not reach the host"
    );
    b.ok(&["kill", &b.id, "KILL"]);
}

/// The default (rslave) and `rslave` volumes: host → container propagation only.
#[test]
fn slave_volumes_see_host_mounts_and_keep_their_own() {
    require_root!();
    for (root_prop, vol_opts) in [
        (None, vec!["rbind"]),
        (Some("rslave"), vec!["rbind", "rslave"]),
    ] {
        let mut b = Bundle::new("prop-slave");
        let src = SharedSource::new(&b);
        std::fs::create_dir_all(src.0.join("from-host")).unwrap();
        std::fs::create_dir_all(src.0.join("from-ctr")).unwrap();
        if let Some(p) = root_prop {
            b.config["linux"]["rootfsPropagation"] = json!(p);
        }
        volume(&mut b, &src.0, &vol_opts);
        b.sh("mount -t tmpfs c /vol/from-ctr; while ! grep -q ' /vol/from-host ' /proc/self/mountinfo; \
              do sleep 0.05; done; echo seen > /vol/from-ctr/seen; sleep 30");
        b.start_ok();
        let host = src.0.join("from-host");
        let h = host.to_str().unwrap();
        sh(&format!("mount -t tmpfs from-host {h}"));
        // The container writes into its own tmpfs, which the host cannot see: look through
        // its root instead.
        let pid = b.state()["pid"].as_i64().unwrap();
        let through = PathBuf::from(format!("/proc/{pid}/root/vol/from-ctr/seen"));
        assert!(
            wait_for(10_000, || through.exists()),
            "{root_prop:?}: the host's mount was not seen"
        );
        assert!(
            !is_mount(&src.0.join("from-ctr")),
            "{root_prop:?}: the container's mount leaked"
        );
        b.ok(&["kill", &b.id, "KILL"]);
    }
}

/// `rootfsPropagation: shared` still pivots, and the host's mount table is the same after the
/// container is gone (the rootfs bind and everything under it stayed out of the host).
#[test]
fn shared_rootfs_propagation_pivots_and_leaves_the_host_table_alone() {
    require_root!();
    let before = mount_points();
    for p in ["shared", "rshared"] {
        let mut b = Bundle::new("prop-root");
        b.config["linux"]["rootfsPropagation"] = json!(p);
        b.sh("grep -E '^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ / ' /proc/self/mountinfo");
        let out = b.run_ok();
        assert!(out.contains(" shared:"), "{p}: / is not shared: {out}");
    }
    assert_eq!(mount_points(), before);
}

fn mount_points() -> Vec<String> {
    let mut v: Vec<String> = mounts()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
        .filter(|m| !m.contains("skiff-it-"))
        .collect();
    v.sort();
    v
}

/// Without --systemd-cgroup a `slice:prefix:name` cgroupsPath is a plain relative path, as
/// runc and crun take it (containerd 1.6 writes this form for every pod whose cgroup parent
/// ends in .slice, even with SystemdCgroup = false).
#[test]
fn a_slice_form_cgroups_path_is_a_relative_path_without_the_systemd_driver() {
    require_root!();
    let mut b = Bundle::new("slice-path");
    let name = format!("test.slice:cri-containerd:{}", b.id);
    b.config["linux"]["cgroupsPath"] = json!(name);
    b.sh("cat /proc/self/cgroup");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "cgroup");
    let out = b.run_ok();
    let own = crate::common::cgroup_base();
    let want = format!("0::{}/{name}", own.trim_end_matches('/'));
    assert!(out.lines().any(|l| l == want), "{out}\nwanted {want}");
}

/// Under `rootfsPropagation: rshared` (what containerd sets when a pod has a Bidirectional
/// volume), a volume asking for `rprivate` stays private and one asking for `rslave` stays a
/// slave: the rootfs's propagation is not pushed down onto them afterwards (the CRI replay
/// found this: Kubernetes' None and HostToContainer volumes next to a Bidirectional one).
#[test]
fn volumes_keep_their_own_propagation_under_a_shared_rootfs() {
    require_root!();
    let mut b = Bundle::new("prop-keep");
    let src = SharedSource::new(&b);
    for d in ["none", "h2c", "bidi"] {
        std::fs::create_dir_all(b.dir.join(d)).unwrap();
    }
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    for (dest, opts) in [
        ("/none", vec!["rbind", "rprivate"]),
        ("/h2c", vec!["rbind", "rslave"]),
        ("/bidi", vec!["rbind", "rshared"]),
    ] {
        mounts.push(json!({"destination": dest, "type": "bind", "source": src.0, "options": opts}));
    }
    b.sh("for d in none h2c bidi; do grep -E \"^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ /$d \" /proc/self/mountinfo; done");
    let out = b.run_ok();
    let line = |d: &str| {
        out.lines()
            .find(|l| l.split_whitespace().nth(4) == Some(d))
            .unwrap_or_else(|| panic!("no {d} in {out}"))
            .to_string()
    };
    let none = line("/none");
    assert!(
        !none.contains("shared:") && !none.contains("master:"),
        "{none}"
    );
    let h2c = line("/h2c");
    assert!(h2c.contains("master:") && !h2c.contains("shared:"), "{h2c}");
    assert!(line("/bidi").contains("shared:"), "{out}");
}
