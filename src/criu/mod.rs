//! Checkpoint and restore through CRIU: what of a container's plan CRIU must be told, and
//! the conversation with `criu swrk` (CRIU's RPC: [`rpc`] over [`wire`], driven by
//! [`swrk`]). The lifecycle steps are `container::checkpoint` and `container::restore`.
//!
//! CRIU is driven over RPC rather than its command line because a restore needs to talk
//! with it on the way: the restored init's pid comes as a notification before CRIU lets it
//! run (so the container is on record first), the pty master of a terminal comes as an fd,
//! and the runtime's hooks run when CRIU has made the namespaces.

pub mod rpc;
pub mod swrk;
pub mod wire;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::bundle::Bundle;

/// The file in the image directory that names the init's stdio as the dump saw it (runc's
/// name and format: a JSON array of the /proc/<pid>/fd/{0,1,2} link texts). A restore hands
/// its own stdio in place of the pipes among them.
pub const DESCRIPTORS: &str = "descriptors.json";

/// The least CRIU skiff works with: 3.15 dumps a pid namespace joined by path as external,
/// and 3.14 freezes a cgroup v2 tree.
pub const MIN_VERSION: u32 = 31500;

/// `--manage-cgroups-mode` and the like, shared by checkpoint and restore.
#[derive(Debug, Clone, Default)]
pub struct Common {
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: rpc::CgMode,
    /// The namespaces CRIU makes empty rather than restoring (CLONE_NEW* bits). The network
    /// namespace always: a runtime does not manage network devices (runc's rule), whoever
    /// set up the network sets it up again.
    pub empty_ns: u32,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
}

/// `--empty-ns`: runc accepts only `network`.
pub fn empty_ns(names: &[String]) -> Result<u32> {
    let mut mask = libc::CLONE_NEWNET as u32;
    for n in names {
        match n.as_str() {
            "network" => mask |= libc::CLONE_NEWNET as u32,
            _ => bail!("namespace {n:?} is not supported"),
        }
    }
    Ok(mask)
}

/// Checks CRIU is there and new enough; its version.
pub fn check_version() -> Result<u32> {
    let v = swrk::version().context("CRIU version check failed")?;
    if v < MIN_VERSION {
        bail!("CRIU version {v} must be {MIN_VERSION} or higher");
    }
    Ok(v)
}

/// The options every request starts from.
pub fn base_opts(c: &Common, images_fd: i32, work_fd: Option<i32>, log: &str) -> rpc::Opts {
    rpc::Opts {
        images_dir_fd: images_fd,
        work_dir_fd: work_fd,
        log_level: 4,
        log_file: log.into(),
        notify_scripts: true,
        manage_cgroups: true,
        manage_cgroups_mode: c.manage_cgroups_mode,
        shell_job: c.shell_job,
        tcp_established: c.tcp_established,
        ext_unix_sk: c.ext_unix_sk,
        file_locks: c.file_locks,
        empty_ns: c.empty_ns,
        orphan_pts_master: true,
        auto_dedup: c.auto_dedup,
        lazy_pages: c.lazy_pages,
        ..Default::default()
    }
}

/// The CRIU configuration file for the container: the `org.criu.config` annotation (empty:
/// none), else runc's `/etc/criu/runc.conf`, so a host's CRIU settings for runc apply to
/// skiff as a drop-in. CRIU ignores a file that does not exist.
pub fn config_file(b: &Bundle) -> Option<String> {
    match b.annotations.get("org.criu.config") {
        Some(f) if f.is_empty() => None,
        Some(f) => Some(f.clone()),
        None => Some("/etc/criu/runc.conf".into()),
    }
}

/// A mount's mount point as CRIU names it.
fn mount_key(b: &Bundle, dest: &Path) -> String {
    crate::rootfs::restore::mount_point(&b.fs, &b.dir, &b.rootfs, dest)
}

/// The mounts CRIU must treat as external at a dump, each keyed by its mount point: the
/// bind mounts (the host's, not the container's, to save), masked paths that are files
/// (/dev/null bound over them) and bound device nodes.
pub fn dump_mounts(b: &Bundle, init_pid: i32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in b.fs.mounts.iter().filter(|m| m.bind) {
        let k = mount_key(b, m.mount.destination());
        out.push((k.clone(), k));
    }
    for p in &b.fs.masked_paths {
        match std::fs::metadata(format!("/proc/{init_pid}/root/{p}")) {
            Ok(md) if !md.is_dir() => out.push((p.clone(), "/dev/null".into())),
            _ => {}
        }
    }
    for d in &b.fs.devices {
        let k = d.path.to_string_lossy().into_owned();
        out.push((k.clone(), k));
    }
    out
}

/// The same mounts at a restore, each key with the host path that stands for it now.
pub fn restore_mounts(b: &Bundle) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for m in b.fs.mounts.iter().filter(|m| m.bind) {
        let src = crate::rootfs::restore::bind_source(&b.dir, &m.mount)
            .with_context(|| format!("mounts[{}]", m.index))?;
        out.push((
            mount_key(b, m.mount.destination()),
            src.to_string_lossy().into_owned(),
        ));
    }
    if !b.fs.masked_paths.is_empty() {
        out.push(("/dev/null".into(), "/dev/null".into()));
    }
    for d in &b.fs.devices {
        let k = d.path.to_string_lossy().into_owned();
        out.push((k.clone(), k));
    }
    Ok(out)
}

/// The init's stdio as /proc names it, for [`DESCRIPTORS`].
pub fn descriptors(pid: i32) -> Vec<String> {
    (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect()
}

/// A failed CRIU request as skiff reports it: what was being done, CRIU's verdict, the path
/// of its log and the log's errors.
pub fn failed(doing: &str, e: anyhow::Error, log: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{doing}: {e:#} (CRIU's log: {}){}",
        log.display(),
        log_excerpt(log)
    )
}

/// The lines of CRIU's log around its errors: each "Error" line and the five before it; of
/// more than 30 such lines the first 20 (where the cause usually is) and the last 10.
pub fn log_excerpt(log: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(log) else {
        return format!("\n(CRIU's log {} could not be read)", log.display());
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut keep = vec![false; lines.len()];
    for (i, l) in lines.iter().enumerate() {
        if l.contains("Error") {
            for k in keep.iter_mut().take(i + 1).skip(i.saturating_sub(5)) {
                *k = true;
            }
        }
    }
    let mut picked: Vec<&str> = lines
        .iter()
        .zip(&keep)
        .filter_map(|(l, k)| k.then_some(*l))
        .collect();
    if picked.len() > 30 {
        picked.splice(20..picked.len() - 10, ["..."]);
    }
    if picked.is_empty() {
        String::new()
    } else {
        format!("\n{}", picked.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_network_namespace_may_be_left_empty() {
        let net = libc::CLONE_NEWNET as u32;
        assert_eq!(empty_ns(&[]).unwrap(), net);
        assert_eq!(empty_ns(&["network".into()]).unwrap(), net);
        let e = empty_ns(&["pid".into()]).unwrap_err().to_string();
        assert_eq!(e, "namespace \"pid\" is not supported");
    }

    #[test]
    fn the_log_excerpt_is_the_errors_and_what_led_to_them() {
        let dir = std::env::temp_dir().join(format!("skiff-criu-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("restore.log");
        let mut text: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
        text[20] = "Error (criu/mount.c:1): no such mount".into();
        std::fs::write(&log, text.join("\n")).unwrap();
        let x = log_excerpt(&log);
        assert!(x.contains("line 15") && x.contains("no such mount"), "{x}");
        assert!(!x.contains("line 14") && !x.contains("line 21"), "{x}");
        let many: Vec<String> = (0..100).map(|i| format!("Error {i}")).collect();
        std::fs::write(&log, many.join("\n")).unwrap();
        let x = log_excerpt(&log);
        assert!(
            x.contains("Error 0\n") && x.contains("Error 19\n...\nError 90"),
            "{x}"
        );
        assert!(!x.contains("Error 20\n"), "{x}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
