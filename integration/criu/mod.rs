//! `checkpoint` and `restore` through CRIU (`criu swrk`), runc's behaviour the oracle: every
//! scenario runs against runc first, which proves the test, then against skiff, with the
//! same flags. Besides exit codes they assert what the kernel shows: the restored pid alive,
//! its cgroup and the limits written there, files the restored process keeps writing.
//!
//! CRIU 3.17 works on the guest's kernel (Debian 6.1, scripts/vm), not on the development
//! host's (`criu check`: "vdso: Failed to fill self vdso symtable"); there these skip ("criu").
//! scripts/guest-tests runs them in the guest. Its `prepare` step matters: the guest runs the
//! command chrooted into its overlay root, and CRIU refuses to dump a container made from
//! there ("mnt: The root task has another root than mntns"), so the overlay is moved onto the
//! namespace root first.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{skiff_bin, skipped, text};

pub(super) const RUNC: &str = "/usr/sbin/runc";

/// A runtime command: a dump or a restore under TCG emulation takes a while.
pub(super) const LIMIT: Duration = Duration::from_secs(300);

/// How long to wait for what a (restored) process does next.
pub(super) const PATIENCE_MS: u64 = 90_000;

/// A counter on stdout, every ~100 ms; it reads nothing.
pub(super) const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done";

#[derive(Clone, Copy)]
pub(super) struct Rt {
    pub(super) name: &'static str,
    pub(super) bin: &'static str,
}

/// The runtimes each scenario runs against, runc first; None (after `common::skipped`)
/// where CRIU cannot work or runc, the reference, is missing.
pub(super) fn runtimes() -> Option<[Rt; 2]> {
    static CRIU_WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let works = *CRIU_WORKS.get_or_init(|| {
        Command::new("criu")
            .arg("check")
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| {
                o.status.success() && (text(&o.stdout) + &text(&o.stderr)).contains("Looks good")
            })
    });
    if !works {
        skipped(
            "criu",
            "criu check fails on this kernel (criu 3.17 needs the guest's 6.1 kernel); these \
             run in the guest (scripts/vm)",
        );
        return None;
    }
    if !Path::new(RUNC).exists() {
        skipped(
            "runc",
            &format!(
                "{RUNC} is missing: the reference every checkpoint scenario is proven against"
            ),
        );
        return None;
    }
    Some([
        Rt {
            name: "runc",
            bin: RUNC,
        },
        Rt {
            name: "skiff",
            bin: skiff_bin(),
        },
    ])
}

/// `#[test]` body: the scenario against runc, then skiff.
macro_rules! each_runtime {
    ($scenario:ident) => {{
        crate::common::require_root!();
        let Some(rts) = crate::criu::runtimes() else {
            return;
        };
        for rt in rts {
            eprintln!("--- {} with {}", stringify!($scenario), rt.name);
            $scenario(rt);
        }
    }};
}

mod harness;
mod scenarios;
mod terminal;

use scenarios::*;

#[test]
fn checkpoint_and_restore_with_pipes() {
    each_runtime!(pipes)
}

#[test]
fn checkpoint_leave_running_then_restore_under_a_new_id() {
    each_runtime!(leave_running)
}

#[test]
fn pre_dump_then_dump_with_parent_path() {
    each_runtime!(pre_dump)
}

#[test]
fn memory_and_pids_limits_survive_restore() {
    each_runtime!(limits)
}

#[test]
fn tmpfs_and_bind_mounts_survive_restore() {
    each_runtime!(mounts)
}

#[test]
fn tcp_established_connection_survives_restore() {
    each_runtime!(tcp_established)
}

#[test]
fn tcp_established_in_the_containers_own_netns_fails_to_restore_and_leaves_nothing() {
    each_runtime!(tcp_in_own_netns)
}

#[test]
fn restore_from_a_missing_image_fails_and_leaves_nothing() {
    each_runtime!(missing_image)
}

#[test]
fn checkpoint_refuses_created_and_stopped_containers() {
    each_runtime!(not_running)
}
