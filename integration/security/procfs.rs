//! CVE-2019-16884 (runc: the image's own /proc, mounted over procfs, received the AppArmor
//! label write), CVE-2019-19921 (runc: /proc a symlink swapped in through a volume, so
//! procfs was mounted elsewhere), CVE-2023-27561 (the same regression) and CVE-2023-28642
//! (runc: /proc a symlink in the image).
//!
//! skiff refuses to mount proc or sysfs onto anything but a real directory reached without a
//! symlink (paths::open_target, strict), and makes every /proc write of its own through a
//! private, unattached procfs instance (procfs.rs), so a spec mount over a /proc file cannot
//! redirect them.

use serde_json::json;

use super::{entries, fingerprint, host_mounts_under, scratch_dir};
use crate::common::{require_root, text, Bundle};

/// Replaces the image's `/<dir>` with `kind` and expects create to refuse.
fn refused(dir: &str, kind: &str) {
    let mut b = Bundle::new("cve-2019-19921");
    let host = scratch_dir(&b, "host");
    let at = b.rootfs().join(dir);
    std::fs::remove_dir(&at).unwrap();
    match kind {
        // Absolute: a runtime resolving on the host mounts procfs/sysfs onto the host dir.
        "abs-symlink" => std::os::unix::fs::symlink(&host, &at).unwrap(),
        // Relative: inside the image, onto another directory (procfs somewhere else means
        // the container's /proc is the image's, and every later /proc write goes there).
        "rel-symlink" => std::os::unix::fs::symlink("tmp", &at).unwrap(),
        "file" => std::fs::write(&at, "not a directory\n").unwrap(),
        _ => unreachable!(),
    }
    b.args(&["true"]);
    let out = b.create();
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "/{dir} as {kind} was accepted: {err}"
    );
    let fstype = if dir == "proc" { "proc" } else { "sysfs" };
    assert!(
        err.contains(&format!("{fstype} on /{dir}")),
        "/{dir} as {kind}: the error does not name the mount: {err}"
    );
    assert!(
        err.contains("not a symlink") || err.contains("Not a directory"),
        "/{dir} as {kind}: {err}"
    );
    assert!(entries(&host).is_empty(), "the host directory changed");
    assert!(
        host_mounts_under(&host).is_empty(),
        "something was mounted on the host"
    );
    assert!(
        entries(&b.rootfs().join("tmp")).is_empty(),
        "/{dir} as {kind}: something was mounted or created at the symlink's target"
    );
}

#[test]
fn proc_and_sys_on_symlinks_or_files_are_refused() {
    require_root!();
    for dir in ["proc", "sys"] {
        for kind in ["abs-symlink", "rel-symlink", "file"] {
            refused(dir, kind);
        }
    }
}

/// A spec mount binds a file of the bundle over /proc/sys/net/ipv4/ip_forward, then the
/// config asks for the sysctl: a runtime writing through the container's /proc writes the
/// bundle file. skiff's write goes to the real sysctl (conf/all/forwarding follows it).
#[test]
fn a_spec_mount_over_a_proc_file_does_not_redirect_the_sysctl_write() {
    require_root!();
    let mut b = Bundle::new("cve-2019-16884");
    let fake = b.dir.join("fake-ip_forward");
    std::fs::write(&fake, "7\n").unwrap();
    let before = fingerprint(&fake);
    let mut m = b.config["mounts"].as_array().unwrap().clone();
    m.push(
        json!({"destination": "/proc/sys/net/ipv4/ip_forward", "type": "bind",
                  "source": fake, "options": ["bind"]}),
    );
    b.config["mounts"] = json!(m);
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    // Writable, so that a write through the container's /proc would land in the file.
    b.config["linux"]["readonlyPaths"] = json!([]);
    b.sh("cat /proc/sys/net/ipv4/conf/all/forwarding /proc/sys/net/ipv4/ip_forward");
    let out = b.run_ok();
    assert_eq!(
        before,
        fingerprint(&fake),
        "the sysctl write went to the bound file"
    );
    assert_eq!(
        out, "1\n7\n",
        "expected the real sysctl set (forwarding=1) and the bound file untouched"
    );
}

/// The same with the other writes the init makes under /proc: oom_score_adj.
#[test]
fn a_spec_mount_over_proc_self_does_not_redirect_oom_score_adj() {
    require_root!();
    let mut b = Bundle::new("cve-2019-16884-oom");
    let fake = b.dir.join("fake-oom_score_adj");
    std::fs::write(&fake, "0\n").unwrap();
    let before = fingerprint(&fake);
    let mut m = b.config["mounts"].as_array().unwrap().clone();
    m.push(
        json!({"destination": "/proc/self/oom_score_adj", "type": "bind",
                  "source": fake, "options": ["bind"]}),
    );
    b.config["mounts"] = json!(m);
    b.config["process"]["oomScoreAdj"] = json!(345);
    b.args(&["true"]);
    b.create_ok();
    let pid = b.state()["pid"].as_i64().unwrap();
    let real = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
    assert_eq!(
        real.trim(),
        "345",
        "oomScoreAdj was not applied to the init"
    );
    assert_eq!(
        before,
        fingerprint(&fake),
        "the oom_score_adj write went to the bound file"
    );
}
