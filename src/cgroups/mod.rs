//! cgroup v2 placement. skiff is cgroup-v2-only and never touches a v1 hierarchy: on a hybrid
//! host it uses the cgroup2 mount found in mountinfo (`/sys/fs/cgroup/unified` there).
//!
//! `linux.cgroupsPath` follows runc's cgroupfs semantics: absolute → from the hierarchy root;
//! relative → under skiff's own cgroup; empty → `<own cgroup>/<container id>`.

use std::fs;
use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;

/// Finds the cgroup2 mount point in a mountinfo file (injectable for tests).
pub fn find_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        let fstype = post.split_whitespace().next()?;
        let mnt = pre.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(unescape(mnt)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The v2 entry ("0::/path") of a /proc/<pid>/cgroup file.
pub fn own_cgroup(proc_cgroup: &str) -> Option<PathBuf> {
    proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(PathBuf::from)
}

/// The container's cgroup path relative to the hierarchy root, refusing `..` so a config
/// cannot place a container outside the tree it names.
pub fn resolve(cgroups_path: Option<&Path>, own: &Path, id: &str) -> Result<PathBuf> {
    let p = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from(id),
    };
    if p.to_str().is_some_and(|s| s.contains(':')) {
        bail!(
            "linux.cgroupsPath: {:?} looks like a systemd slice:prefix:name path; \
             the systemd cgroup driver is not supported",
            p
        );
    }
    let base = if p.is_absolute() { Path::new("/") } else { own };
    let mut out = PathBuf::new();
    for c in base.join(&p).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            _ => bail!("linux.cgroupsPath: {:?} must not contain \"..\"", p),
        }
    }
    if out.as_os_str().is_empty() {
        bail!("linux.cgroupsPath: {:?} names the hierarchy root", p);
    }
    Ok(out)
}

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

/// Locates the cgroup2 mount and skiff's own cgroup, from /proc.
pub fn host_layout() -> Result<(PathBuf, PathBuf)> {
    let mi = fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let mount = find_mount(&mi)
        .context("no cgroup2 filesystem is mounted on this host (skiff supports cgroup v2 only)")?;
    let pc = fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
    let own = own_cgroup(&pc).context("/proc/self/cgroup has no cgroup v2 (0::) entry")?;
    Ok((mount, own))
}

/// Kills every process in the cgroup: cgroup.kill where the kernel has it (5.14+), else
/// SIGKILL to each pid in cgroup.procs.
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

/// The pids in cgroup.procs (empty if the cgroup is gone).
pub fn pids(path: &Path) -> Result<Vec<i32>> {
    match fs::read_to_string(path.join("cgroup.procs")) {
        Ok(s) => Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(e).with_context(|| format!("reading {}/cgroup.procs", path.display())),
    }
}

/// Removes the container cgroup (killing what is left in it) and the parents skiff created.
/// rmdir fails with EBUSY while exiting tasks are still being released, so retry briefly.
pub fn destroy(path: &Path, created: &[PathBuf]) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match fs::remove_dir(path) {
            Ok(()) => break,
            Err(e) if e.kind() == ErrorKind::NotFound => break,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                let _ = kill_all(path);
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e).with_context(|| format!("removing cgroup {}", path.display())),
        }
    }
    remove_dirs(created.iter().filter(|p| p.as_path() != path))
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

/// Resource limits are applied by the cgroups work that follows the foundation; until then a
/// config that asks for one is refused by name rather than run without the limit. Device
/// rules are accepted with a warning because every client sends runc's default deny-all +
/// allow-list and the container's devices are still limited to those skiff creates.
pub fn check_resources(r: &LinuxResources) -> Result<()> {
    let fields: [(&str, bool); 8] = [
        ("memory", r.memory().is_some()),
        ("cpu", r.cpu().is_some()),
        ("pids", r.pids().is_some()),
        ("blockIO", r.block_io().is_some()),
        (
            "hugepageLimits",
            r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()),
        ),
        ("network", r.network().is_some()),
        ("rdma", r.rdma().as_ref().is_some_and(|h| !h.is_empty())),
        (
            "unified",
            r.unified().as_ref().is_some_and(|h| !h.is_empty()),
        ),
    ];
    for (name, set) in fields {
        if set {
            bail!("linux.resources.{name}: cgroup resource limits are not supported by this version of skiff");
        }
    }
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        crate::logging::debug("linux.resources.devices: device cgroup rules are not enforced yet");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 1 0:23 / /sys rw,nosuid - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";

    #[test]
    fn finds_unified_mount_on_hybrid_host() {
        assert_eq!(
            find_mount(HYBRID),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(find_mount("1 0 0:1 / / rw - ext4 /dev/vda rw"), None);
    }

    #[test]
    fn own_cgroup_reads_the_v2_line() {
        let pc = "4:memory:/process_api/x\n0::/user.slice/a\n";
        assert_eq!(own_cgroup(pc), Some(PathBuf::from("/user.slice/a")));
    }

    #[test]
    fn cgroups_path_semantics_follow_runc() {
        let own = Path::new("/own/cg");
        let r = |p: Option<&str>| resolve(p.map(Path::new), own, "c1");
        assert_eq!(r(None).unwrap(), PathBuf::from("own/cg/c1"));
        assert_eq!(r(Some("")).unwrap(), PathBuf::from("own/cg/c1"));
        assert_eq!(r(Some("/abs/x")).unwrap(), PathBuf::from("abs/x"));
        assert_eq!(r(Some("rel/x")).unwrap(), PathBuf::from("own/cg/rel/x"));
        assert!(r(Some("../../etc")).is_err());
        assert!(r(Some("/")).is_err());
        assert!(r(Some("system.slice:docker:abc")).is_err());
    }
}
