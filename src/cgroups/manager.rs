//! The container's cgroup directory: creation (undone on drop until kept), the processes in
//! it, freezing, killing and removal. Waits on cgroup.events use the kernel's notification
//! (poll POLLPRI on the file) rather than sleeping.

use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A container cgroup that has been created (and is removed again on drop unless kept).
#[derive(Debug)]
pub struct Cgroup {
    pub path: PathBuf,
    /// Directories created, deepest first.
    pub created: Vec<PathBuf>,
    pub dirfd: OwnedFd,
    keep: bool,
}

impl Cgroup {
    /// Creates `<mount>/<rel>` (and missing parents).
    pub fn create(mount: &Path, rel: &Path) -> Result<Self> {
        let path = mount.join(rel);
        let mut created = vec![];
        let mut cur = mount.to_path_buf();
        for c in rel.components() {
            cur.push(c);
            match fs::create_dir(&cur) {
                Ok(()) => created.push(cur.clone()),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => {
                    let _ = remove_dirs(&created);
                    return Err(e).with_context(|| format!("creating cgroup {}", cur.display()));
                }
            }
        }
        created.reverse();
        let dirfd = fs::File::open(&path)
            .map(OwnedFd::from)
            .with_context(|| format!("opening cgroup {}", path.display()));
        let dirfd = match dirfd {
            Ok(fd) => fd,
            Err(e) => {
                let _ = remove_dirs(&created);
                return Err(e);
            }
        };
        Ok(Cgroup {
            path,
            created,
            dirfd,
            keep: false,
        })
    }

    /// The container now owns the cgroup: do not remove it on drop.
    pub fn keep(mut self) -> (PathBuf, Vec<PathBuf>) {
        self.keep = true;
        (
            std::mem::take(&mut self.path),
            std::mem::take(&mut self.created),
        )
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if !self.keep {
            let _ = destroy(&self.path, &self.created);
        }
    }
}

/// runc's checks on the container's cgroup before anything is made (so a refused cgroup is
/// left exactly as it was): an existing one must hold no process (in it or below it), and
/// neither it nor, for one still to be made, its nearest existing ancestor may be frozen —
/// an init born into a frozen cgroup would never run, and `create` would wait forever.
pub fn check_unused(mount: &Path, rel: &Path) -> Result<()> {
    let path = mount.join(rel);
    if path.is_dir() {
        let pids = match pids(&path) {
            Ok(p) => p,
            // Removed meanwhile: nothing is in it.
            Err(_) if !path.exists() => vec![],
            Err(e) => return Err(e),
        };
        if !pids.is_empty() {
            bail!(
                "container's cgroup is not empty: {} process(es) found in {} (or below it)",
                pids.len(),
                path.display()
            );
        }
        let freeze = fs::read_to_string(path.join("cgroup.freeze")).unwrap_or_default();
        if freeze.trim() == "1" || read_key(&path, "cgroup.events", "frozen") == Some(1) {
            bail!(
                "container's cgroup unexpectedly frozen: {} (cgroup.freeze {}); thaw it or \
                 choose another linux.cgroupsPath",
                path.display(),
                freeze.trim()
            );
        }
        return Ok(());
    }
    // A new cgroup inherits the frozen state of its parent.
    let mut dir = path.as_path();
    while let Some(parent) = dir.parent().filter(|p| p.starts_with(mount) && *p != mount) {
        if parent.is_dir() {
            if read_key(parent, "cgroup.events", "frozen") == Some(1) {
                bail!(
                    "container's cgroup unexpectedly frozen: its parent {} is frozen, so a \
                     cgroup made in it would be too",
                    parent.display()
                );
            }
            break;
        }
        dir = parent;
    }
    Ok(())
}

/// The controllers that cgroup v2 lets a cgroup with processes enable for its children
/// ("threaded" controllers); every other one is a domain controller.
const THREADED: &[&str] = &["cpu", "cpuset", "perf_event", "pids"];

/// Whether a process can be moved into (or born in) the cgroup: it exists and the
/// no-internal-processes rule allows it — no domain controller is enabled in its
/// cgroup.subtree_control (a threaded cgroup does not have the rule). The kernel refuses
/// anything else with EBUSY (EOPNOTSUPP for an invalid domain).
pub fn accepts_processes(path: &Path) -> bool {
    let Ok(enabled) = fs::read_to_string(path.join("cgroup.subtree_control")) else {
        return false;
    };
    match fs::read_to_string(path.join("cgroup.type"))
        .as_deref()
        .map(str::trim)
    {
        Ok("threaded") => true,
        Ok("domain invalid") => false,
        _ => enabled.split_whitespace().all(|c| THREADED.contains(&c)),
    }
}

/// The domain controllers enabled in a cgroup's cgroup.subtree_control.
pub fn domain_controllers_enabled(path: &Path) -> Vec<String> {
    fs::read_to_string(path.join("cgroup.subtree_control"))
        .unwrap_or_default()
        .split_whitespace()
        .filter(|c| !THREADED.contains(c))
        .map(str::to_string)
        .collect()
}

/// The cgroup v2 directory a process is in now (its /proc/<pid>/cgroup "0::" line, under
/// the hierarchy mounted at `mount`); `None` once it is gone.
pub fn cgroup_of(mount: &Path, pid: i32) -> Option<PathBuf> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let rel = super::mount::own_cgroup(&text)?;
    let rel = rel.strip_prefix("/").unwrap_or(&rel);
    // " (deleted)" marks a removed cgroup the process is still in (a zombie's).
    if rel.to_str().is_some_and(|s| s.ends_with(" (deleted)")) {
        return None;
    }
    Some(mount.join(rel))
}

/// Kills every process in the cgroup and its descendants: cgroup.kill where the kernel has
/// it (5.14+), else SIGKILL to each pid.
pub fn kill_all(path: &Path) -> Result<()> {
    match fs::write(path.join("cgroup.kill"), "1") {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("writing {}/cgroup.kill", path.display())),
    }
    for pid in pids(path)? {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
    Ok(())
}

/// The pids in cgroup.procs of the cgroup and of its descendants (empty if it is gone).
pub fn pids(path: &Path) -> Result<Vec<i32>> {
    let mut out: Vec<i32> = match fs::read_to_string(path.join("cgroup.procs")) {
        Ok(s) => s.lines().filter_map(|l| l.trim().parse().ok()).collect(),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => {
            return Err(e).with_context(|| format!("reading {}/cgroup.procs", path.display()))
        }
    };
    for child in children(path) {
        out.extend(pids(&child)?);
    }
    Ok(out)
}

/// The child cgroups (subdirectories) of a cgroup.
fn children(path: &Path) -> Vec<PathBuf> {
    fs::read_dir(path)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Reads one key of a flat-keyed file such as cgroup.events or memory.events.
pub fn read_key(path: &Path, file: &str, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path.join(file)).ok()?;
    parse_key(&text, key)
}

pub fn parse_key(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// Waits until `key` in cgroup.events has the value `want`; false on timeout.
pub fn wait_event(path: &Path, key: &str, want: u64, timeout: Duration) -> Result<bool> {
    let file_path = path.join("cgroup.events");
    let file = match fs::File::open(&file_path) {
        Ok(f) => f,
        // A removed cgroup is neither populated nor frozen.
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(want == 0),
        Err(e) => return Err(e).with_context(|| format!("opening {}", file_path.display())),
    };
    let deadline = Instant::now() + timeout;
    loop {
        // Reading through the fd we poll arms the next notification (kernfs_generic_poll).
        let mut buf = [0u8; 256];
        let n = file
            .read_at(&mut buf, 0)
            .with_context(|| format!("reading {}", file_path.display()))?;
        if parse_key(&String::from_utf8_lossy(&buf[..n]), key) == Some(want) {
            return Ok(true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let mut pfd = [libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        }];
        // Bounded so a missed notification costs at most 100 ms.
        let ms = left.as_millis().min(100) as i32;
        crate::sys::misc::poll(&mut pfd, ms.max(1))
            .with_context(|| format!("waiting on {}", file_path.display()))?;
    }
}

/// Freezes (or thaws) the cgroup and waits until cgroup.events reports it done. A freeze
/// that does not complete in time is undone, so a failed `pause` leaves the container
/// running.
pub fn freeze(path: &Path, frozen: bool) -> Result<()> {
    let file = path.join("cgroup.freeze");
    match fs::write(&file, if frozen { "1" } else { "0" }) {
        Err(e) if e.kind() == ErrorKind::NotFound && !path.exists() => {
            bail!(
                "container not running: its cgroup {} is gone",
                path.display()
            )
        }
        Err(e) if e.kind() == ErrorKind::NotFound => bail!(
            "the cgroup {} has no cgroup.freeze (the cgroup v2 freezer needs Linux 5.2)",
            path.display()
        ),
        r => r.with_context(|| format!("writing {}", file.display()))?,
    }
    crate::failpoint!("freeze.written");
    if wait_event(path, "frozen", u64::from(frozen), Duration::from_secs(10))? {
        return Ok(());
    }
    if frozen {
        let _ = fs::write(&file, "0");
        bail!("timed out after 10s waiting for the container's cgroup to freeze");
    }
    bail!("timed out after 10s waiting for the container's cgroup to thaw")
}

/// Removes the container cgroup and the parents skiff created. Whatever is still running is
/// killed first; removal waits for the cgroup to empty (`populated 0`) and retries while the
/// kernel is still releasing exited tasks (EBUSY). Child cgroups the container made are
/// removed too.
pub fn destroy(path: &Path, created: &[PathBuf]) -> Result<()> {
    if path.exists() {
        kill_all(path)?;
        // Fatal signals reach frozen tasks, but thawing lets the kernel release them sooner.
        if fs::read_to_string(path.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1") {
            let _ = fs::write(path.join("cgroup.freeze"), "0");
        }
        if !wait_event(path, "populated", 0, Duration::from_secs(10))? {
            bail!(
                "cgroup {} still has processes 10s after they were killed",
                path.display()
            );
        }
    }
    remove_cgroup(path, created, true)
}

/// Removes the cgroup, its child cgroups and the parents skiff created, killing nothing
/// (the processes in it may be another container's): a cgroup that still holds a process
/// is an error naming it and them.
pub fn remove(path: &Path, created: &[PathBuf]) -> Result<()> {
    remove_cgroup(path, created, false)
}

fn remove_cgroup(path: &Path, created: &[PathBuf], kill: bool) -> Result<()> {
    if path.exists() {
        remove_tree(path, Instant::now() + Duration::from_secs(10), kill)?;
    }
    remove_dirs(created.iter().filter(|p| p.as_path() != path))
}

fn remove_tree(path: &Path, deadline: Instant, kill: bool) -> Result<()> {
    for child in children(path) {
        remove_tree(&child, deadline, kill)?;
    }
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                if kill {
                    let _ = kill_all(path);
                } else if let Ok(p) = pids(path).map(|p| p.into_iter().take(8).collect::<Vec<_>>())
                {
                    if !p.is_empty() {
                        bail!(
                            "unable to remove container's cgroup {}: it still holds processes \
                             (pids {p:?}) that are not this container's",
                            path.display()
                        );
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e).with_context(|| format!("removing cgroup {}", path.display())),
        }
    }
}

fn remove_dirs<'a>(dirs: impl IntoIterator<Item = &'a PathBuf>) -> Result<()> {
    for d in dirs {
        match fs::remove_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            // A parent shared with other containers is still in use: leave it.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {}
            Err(e) => return Err(e).with_context(|| format!("removing cgroup {}", d.display())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_files_parse() {
        let ev = "populated 1\nfrozen 0\n";
        assert_eq!(parse_key(ev, "populated"), Some(1));
        assert_eq!(parse_key(ev, "frozen"), Some(0));
        assert_eq!(parse_key(ev, "froze"), None);
    }

    #[test]
    fn wait_event_on_a_missing_cgroup() {
        let p = Path::new("/nonexistent/skiff-cgroup");
        assert!(wait_event(p, "populated", 0, Duration::ZERO).unwrap());
        assert!(!wait_event(p, "frozen", 1, Duration::ZERO).unwrap());
    }
}
