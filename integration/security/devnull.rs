//! CVE-2025-31133 (runc: maskedPaths were masked by bind-mounting the container's
//! /dev/null, which the image (or a race) could make a symlink to a procfs file: the
//! "masked" path then became a writable bind of that file, e.g. core_pattern).
//!
//! The spec here has no /dev tmpfs, so the image's own /dev is used, and its /dev/null is
//! a symlink. skiff opens /dev/null without following symlinks and checks it is the 1:3
//! character device before masking anything with it (rootfs::open_devnull); otherwise
//! create is refused and nothing is bind-mounted.

use std::os::fd::AsRawFd;

use serde_json::json;

use super::{fingerprint, ScratchNetns};
use crate::common::{require_root, text, Bundle};

/// The image's /dev is used as it is: no tmpfs on /dev from the spec.
fn image_dev(b: &mut Bundle) {
    let mounts: Vec<_> = b.config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destination"] != "/dev")
        .cloned()
        .collect();
    b.config["mounts"] = json!(mounts);
    std::fs::create_dir_all(b.rootfs().join("dev")).unwrap();
}

fn masked_write_attempt(b: &mut Bundle, data: &str) {
    std::fs::write(b.rootfs().join("etc/masked"), "image file\n").unwrap();
    b.config["linux"]["maskedPaths"] = json!(["/etc/masked"]);
    b.config["root"]["readonly"] = json!(false);
    // Through a "masked" path that is really the symlink's target, the container writes.
    b.sh(&format!("echo {data} > /etc/masked; echo wrote=$?"));
}

/// /dev/null -> /proc/sys/net/ipv4/ip_forward, the exploit's shape (a procfs file of the
/// container's own /proc, which a bind mount can clone). The container joins a scratch
/// network namespace of ours, so that the file a vulnerable runtime would expose read-write
/// at /etc/masked is that namespace's ip_forward, which we read back afterwards.
#[test]
fn a_dev_null_symlink_to_a_procfs_file_is_refused() {
    require_root!();
    let netns = ScratchNetns::new();
    assert_eq!(netns.sysctl("net/ipv4/ip_forward"), "0");
    let mut b = Bundle::new("cve-2025-31133");
    image_dev(&mut b);
    b.without_namespace("network")
        .add_namespace(json!({"type": "network", "path": netns.path()}));
    std::os::unix::fs::symlink("/proc/sys/net/ipv4/ip_forward", b.rootfs().join("dev/null"))
        .unwrap();
    masked_write_attempt(&mut b, "1");
    let (code, out, err) = b.run();
    assert_eq!(
        netns.sysctl("net/ipv4/ip_forward"),
        "0",
        "the container wrote the procfs file through the masked path: {out}"
    );
    assert_ne!(code, 0, "a symlinked /dev/null was used for masking: {out}");
    assert!(err.contains("not the 1:3 character device"), "{err}");
    assert!(!out.contains("wrote="), "the container ran: {out}");
}

/// The magic-link form: /dev/null -> /proc/<our pid>/fd/<n>, an fd of ours on a scratch
/// host file (the container shares our pid namespace so the link resolves in it).
#[test]
fn a_dev_null_symlink_to_a_procfs_magic_link_is_refused() {
    require_root!();
    let mut b = Bundle::new("cve-2025-31133-fd");
    let secret = b.dir.join("host-secret");
    std::fs::write(&secret, "host data\n").unwrap();
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&secret)
        .unwrap();
    let before = fingerprint(&secret);
    image_dev(&mut b);
    b.without_namespace("pid");
    let link = format!("/proc/{}/fd/{}", std::process::id(), held.as_raw_fd());
    std::os::unix::fs::symlink(&link, b.rootfs().join("dev/null")).unwrap();
    masked_write_attempt(&mut b, "pwned");
    let (code, out, err) = b.run();
    assert_eq!(before, fingerprint(&secret), "the host file was written");
    assert_ne!(code, 0, "a symlinked /dev/null was used for masking: {out}");
    assert!(err.contains("/dev/null"), "{err}");
    assert!(!out.contains("wrote="), "the container ran: {out}");
    drop(held);
}

/// /dev/null -> a procfs file (the hostname of the container's own UTS namespace, so that
/// even a vulnerable runtime only exposes that), and /dev/null as a plain file.
#[test]
fn a_dev_null_that_is_not_the_device_is_refused() {
    require_root!();
    for kind in ["procfs-symlink", "file"] {
        let mut b = Bundle::new("cve-2025-31133-file");
        image_dev(&mut b);
        let null = b.rootfs().join("dev/null");
        match kind {
            "procfs-symlink" => {
                std::os::unix::fs::symlink("/proc/sys/kernel/hostname", &null).unwrap()
            }
            _ => std::fs::write(&null, "").unwrap(),
        }
        masked_write_attempt(&mut b, "pwned");
        let out = b.create();
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{kind}: masking went ahead");
        assert!(
            err.contains("linux.maskedPaths") || err.contains("/dev/null"),
            "{kind}: {err}"
        );
        assert!(
            err.contains("not the 1:3 character device"),
            "{kind}: {err}"
        );
        match kind {
            "file" => assert_eq!(std::fs::read_to_string(&null).unwrap(), "", "{kind}"),
            _ => assert_eq!(
                std::fs::read_link(&null).unwrap(),
                std::path::Path::new("/proc/sys/kernel/hostname")
            ),
        }
    }
}
