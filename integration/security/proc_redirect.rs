//! CVE-2025-52881 (runc: the LSM label and sysctl writes the runtime makes under /proc were
//! redirected, through mounts set up before the write, onto other files, e.g. a procfs file
//! of the host's choosing).
//!
//! The attack mounts whole directory trees over the parts of /proc the runtime writes to
//! (/proc/sys, /proc/self/attr) from the spec's mounts, so they are in place before the
//! writes. skiff writes through its private procfs instance (fsopen, attached nowhere,
//! opened with RESOLVE_BENEATH | NO_SYMLINKS | NO_XDEV and checked to be procfs), so the
//! fake trees (scratch files in the bundle) are never written.

use serde_json::json;

use super::fingerprint;
use crate::common::{require_root, text, Bundle};

/// A fake /proc/sys tree bound over the real one: the sysctl must still reach the kernel.
#[test]
fn a_fake_proc_sys_tree_does_not_receive_the_sysctl_write() {
    require_root!();
    let mut b = Bundle::new("cve-2025-52881-sysctl");
    let fake = b.dir.join("fake-sys");
    std::fs::create_dir_all(fake.join("net/ipv4")).unwrap();
    std::fs::create_dir_all(fake.join("net/core")).unwrap();
    std::fs::write(fake.join("net/ipv4/ip_forward"), "7\n").unwrap();
    std::fs::write(fake.join("net/core/somaxconn"), "7\n").unwrap();
    let before = (
        fingerprint(&fake.join("net/ipv4/ip_forward")),
        fingerprint(&fake.join("net/core/somaxconn")),
    );
    let mut m = b.config["mounts"].as_array().unwrap().clone();
    m.push(
        json!({"destination": "/proc/sys", "type": "bind", "source": fake,
                  "options": ["rbind"]}),
    );
    b.config["mounts"] = json!(m);
    b.config["linux"]["readonlyPaths"] = json!([]);
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "net.core.somaxconn": "1234"});
    b.args(&["true"]);
    b.create_ok();
    let pid = b.state()["pid"].as_i64().unwrap();
    let after = (
        fingerprint(&fake.join("net/ipv4/ip_forward")),
        fingerprint(&fake.join("net/core/somaxconn")),
    );
    assert_eq!(before, after, "a sysctl write landed in the fake /proc/sys");
    // The real values, read in the init's network namespace (util-linux nsenter).
    let real = |k: &str| {
        let out = std::process::Command::new("nsenter")
            .args([
                "-t",
                &pid.to_string(),
                "-n",
                "cat",
                &format!("/proc/sys/{k}"),
            ])
            .output()
            .unwrap();
        text(&out.stdout).trim().to_string()
    };
    assert_eq!(real("net/ipv4/ip_forward"), "1");
    assert_eq!(real("net/core/somaxconn"), "1234");
}

/// A fake /proc/self/attr (files named like the LSM's) bound over the real directory, then
/// a label asked for. On a host with the LSM the label write goes through the private
/// procfs; on one without (this one), the request is refused naming the field. Either way
/// the fake files are never written.
#[test]
fn a_fake_proc_self_attr_does_not_receive_the_label_write() {
    require_root!();
    let host = skiff::process::lsm::Host::detect();
    for (field, value, enabled) in [
        ("apparmorProfile", "skiff-test-profile", host.apparmor),
        (
            "selinuxLabel",
            "system_u:system_r:container_t:s0",
            host.selinux,
        ),
    ] {
        let mut b = Bundle::new("cve-2025-52881-attr");
        let fake = b.dir.join("fake-attr");
        std::fs::create_dir_all(fake.join("apparmor")).unwrap();
        for f in ["exec", "current", "apparmor/exec", "apparmor/current"] {
            std::fs::write(fake.join(f), "unconfined\n").unwrap();
        }
        let before: Vec<_> = ["exec", "current", "apparmor/exec", "apparmor/current"]
            .iter()
            .map(|f| fingerprint(&fake.join(f)))
            .collect();
        let mut m = b.config["mounts"].as_array().unwrap().clone();
        m.push(
            json!({"destination": "/proc/self/attr", "type": "bind", "source": fake,
                      "options": ["rbind"]}),
        );
        b.config["mounts"] = json!(m);
        b.config["process"][field] = json!(value);
        b.args(&["true"]);
        let out = b.create();
        let after: Vec<_> = ["exec", "current", "apparmor/exec", "apparmor/current"]
            .iter()
            .map(|f| fingerprint(&fake.join(f)))
            .collect();
        assert_eq!(
            before, after,
            "{field}: the label write landed in the fake attr dir"
        );
        if !enabled {
            assert!(!out.status.success());
            assert!(
                text(&out.stderr).contains(&format!("process.{field}")),
                "{}",
                text(&out.stderr)
            );
        }
    }
}
