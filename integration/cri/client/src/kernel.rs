//! What the kernel shows about a process and the node: namespaces, cgroup, credentials,
//! mounts. The replay runs in the node's (the guest's) root namespaces, so /proc/<pid> of
//! every container process is visible from here.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The namespace a process is in, as the kernel names it (`net:[4026532281]`).
pub fn ns(pid: u32, kind: &str) -> Result<String> {
    let p = format!("/proc/{pid}/ns/{kind}");
    let target = std::fs::read_link(&p).with_context(|| format!("readlink {p}"))?;
    Ok(target.to_string_lossy().into_owned())
}

/// The cgroup v2 path of a process, relative to the cgroup root (`/kubepods/…`).
pub fn cgroup_of(pid: u32) -> Result<String> {
    let p = format!("/proc/{pid}/cgroup");
    let s = std::fs::read_to_string(&p).with_context(|| format!("read {p}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
        .with_context(|| format!("{p} has no cgroup v2 line: {s:?}"))
}

/// A field of /proc/<pid>/status (`Uid`, `CapBnd`, `NoNewPrivs`, `Seccomp`, `NSpid`, …).
pub fn status(pid: u32, field: &str) -> Result<String> {
    let p = format!("/proc/{pid}/status");
    let s = std::fs::read_to_string(&p).with_context(|| format!("read {p}"))?;
    let key = format!("{field}:");
    s.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|v| v.trim().to_string())
        .with_context(|| format!("{p} has no {field}"))
}

pub fn ppid(pid: u32) -> Result<u32> {
    status(pid, "PPid")?
        .parse()
        .with_context(|| format!("PPid of {pid}"))
}

pub fn alive(pid: u32) -> bool {
    // A zombie still has /proc/<pid>: only a running (or sleeping) process counts.
    match status(pid, "State") {
        Ok(s) => !s.starts_with('Z') && !s.starts_with('X'),
        Err(_) => false,
    }
}

/// Whether bit `cap` is set in a hexadecimal capability mask from /proc/<pid>/status.
pub fn has_cap(mask: &str, cap: u32) -> Result<bool> {
    let m = u64::from_str_radix(mask, 16).with_context(|| format!("capability mask {mask:?}"))?;
    Ok(m & (1 << cap) != 0)
}

/// One cgroup interface file, trimmed; `cg` is relative to the cgroup root.
pub fn cg_read(cg: &str, file: &str) -> Result<String> {
    let p = cg_path(cg).join(file);
    let s = std::fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
    Ok(s.trim().to_string())
}

/// A counter of a cgroup's memory.events (`oom`, `oom_kill`, …; hierarchical).
pub fn memory_event(cg: &str, key: &str) -> Result<u64> {
    let s = cg_read(cg, "memory.events")?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("{cg}/memory.events has no {key}: {s:?}"))
}

/// Whether the shim `shim` has an inotify watch on `cg`'s memory.events (how containerd's
/// runc shim learns of OOM kills on cgroup v2), as a sentence for a failure message.
pub fn shim_watch(shim: u32, cg: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let file = cg_path(cg).join("memory.events");
    let Ok(ino) = std::fs::metadata(&file).map(|m| m.ino()) else {
        return format!("{} unreadable", file.display());
    };
    let mut watched = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{shim}/fdinfo"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let info = std::fs::read_to_string(e.path()).unwrap_or_default();
        for l in info.lines().filter(|l| l.starts_with("inotify ")) {
            if let Some(hex) = l.split_whitespace().find_map(|f| f.strip_prefix("ino:")) {
                watched.push(u64::from_str_radix(hex, 16).unwrap_or(0));
            }
        }
    }
    format!(
        "shim {shim} watches inodes {watched:?} with inotify; {} is inode {ino}",
        file.display()
    )
}

pub fn cg_path(cg: &str) -> PathBuf {
    Path::new(CGROUP_ROOT).join(cg.trim_start_matches('/'))
}

pub struct MountEntry {
    pub mount_point: String,
    pub options: String,
    /// The optional fields: `shared:N`, `master:N`, … (empty for a private mount).
    pub propagation: String,
    pub source: String,
}

/// The mount table a process sees (/proc/<pid>/mountinfo).
pub fn mounts(pid: u32) -> Result<Vec<MountEntry>> {
    let p = format!("/proc/{pid}/mountinfo");
    let s = std::fs::read_to_string(&p).with_context(|| format!("read {p}"))?;
    let mut v = Vec::new();
    for line in s.lines() {
        let (pre, post) = line
            .split_once(" - ")
            .with_context(|| format!("{p}: odd line {line:?}"))?;
        let f: Vec<&str> = pre.split(' ').collect();
        let g: Vec<&str> = post.split(' ').collect();
        if f.len() < 6 || g.len() < 2 {
            bail!("{p}: odd line {line:?}");
        }
        v.push(MountEntry {
            mount_point: f[4].to_string(),
            options: f[5].to_string(),
            propagation: f[6..].join(" "),
            source: g[1].to_string(),
        });
    }
    Ok(v)
}

pub fn mounted_at(pid: u32, path: &str) -> Result<Option<MountEntry>> {
    Ok(mounts(pid)?
        .into_iter()
        .rev()
        .find(|m| m.mount_point == path))
}

/// Runs a program on the node (mount, umount, ip); fails with its output when it fails.
pub fn run(prog: &str, args: &[&str]) -> Result<String> {
    let o = Command::new(prog)
        .args(args)
        .output()
        .with_context(|| format!("run {prog}"))?;
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    if !o.status.success() {
        bail!("{prog} {}: {} ({})", args.join(" "), o.status, text.trim());
    }
    Ok(text)
}

/// A tmpfs mounted on the node, named so the test's mounts can be told apart.
pub fn mount_tmpfs(name: &str, at: &Path) -> Result<()> {
    run("mount", &["-t", "tmpfs", name, &at.to_string_lossy()]).map(|_| ())
}

/// Unmounts everything at or below `dir` on the node, deepest first.
pub fn umount_below(dir: &Path) -> Result<Vec<String>> {
    let prefix = dir.to_string_lossy().into_owned();
    let mut found: Vec<String> = mounts(std::process::id())?
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.len()));
    found.dedup();
    for m in &found {
        run("umount", &["-l", m])?;
    }
    Ok(found)
}

/// Polls `f` until it yields a value or `secs` pass.
pub async fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{what}: not seen within {secs}s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
