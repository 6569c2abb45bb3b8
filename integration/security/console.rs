//! CVE-2025-52565 (runc: the pty was bind-mounted onto /dev/console by path, so an image
//! whose /dev/console is a symlink had the mount (and the file creation before it) land on
//! the symlink's target).
//!
//! The spec here has no /dev tmpfs, so the image's /dev is used, and its /dev/console is a
//! symlink to a scratch host file (by absolute path, and as a /proc/<pid>/fd magic link to
//! an fd of ours with the container in our pid namespace, and to a procfs file of the
//! container's own /proc with the container in a scratch network namespace). skiff unlinks whatever
//! /dev/console is, creates a fresh empty file with mknodat on the in-root /dev fd and
//! mounts the pty (taken with TIOCGPTPEER) onto that file's O_NOFOLLOW fd (tty.rs). The host
//! file must be untouched and /dev/console inside must be the pty.

use std::os::fd::AsRawFd;

use serde_json::json;

use super::{fingerprint, host_mounts_under, ScratchNetns};
use crate::common::{require_root, Bundle};

#[test]
fn a_dev_console_symlink_to_the_host_is_replaced_by_the_pty() {
    require_root!();
    for kind in ["absolute", "magic-link", "procfs"] {
        let mut b = Bundle::new("cve-2025-52565");
        let netns = ScratchNetns::new();
        let secret = b.dir.join("host-console-target");
        std::fs::write(&secret, "host data\n").unwrap();
        let held = std::fs::File::open(&secret).unwrap();
        let before = fingerprint(&secret);
        // The image's /dev, not a tmpfs from the spec.
        let mounts: Vec<_> = b.config["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["destination"] != "/dev")
            .cloned()
            .collect();
        b.config["mounts"] = json!(mounts);
        let link = match kind {
            "absolute" => secret.to_str().unwrap().to_string(),
            // A procfs file of the container's own /proc; the container is in a scratch
            // network namespace of ours, whose ip_forward we read back.
            "procfs" => {
                b.without_namespace("network")
                    .add_namespace(json!({"type": "network", "path": netns.path()}));
                "/proc/sys/net/ipv4/ip_forward".to_string()
            }
            _ => {
                b.without_namespace("pid");
                format!("/proc/{}/fd/{}", std::process::id(), held.as_raw_fd())
            }
        };
        std::fs::create_dir_all(b.rootfs().join("dev")).unwrap();
        std::os::unix::fs::symlink(&link, b.rootfs().join("dev/console")).unwrap();
        b.config["process"]["terminal"] = json!(true);
        // lstat: a /dev/console still a symlink (to an overmounted target) shows as one.
        b.sh("stat -c '%F %t' /dev/console; echo 1 > /dev/console; \
             stat -c 'ip_forward: %F' /proc/sys/net/ipv4/ip_forward; echo done");
        let got = b.run_with_console();
        assert_eq!(
            before,
            fingerprint(&secret),
            "{kind}: the host file changed"
        );
        assert!(
            host_mounts_under(&b.dir).is_empty(),
            "{kind}: something is mounted on the host"
        );
        assert!(
            got.contains("character special file 88"),
            "{kind}: /dev/console is not the pty (major 136 = 0x88): {got}"
        );
        assert!(
            got.contains("\n1\n") && got.contains("ip_forward: regular empty file"),
            "{kind}: the write to /dev/console did not reach the pty, or the pty was mounted \
             onto the symlink's target: {got}"
        );
        assert_eq!(netns.sysctl("net/ipv4/ip_forward"), "0", "{kind}: {got}");
        drop(held);
    }
}
