//! Finding the cgroup v2 hierarchy and the container's place in it. skiff is
//! cgroup-v2-only and never touches a v1 hierarchy: on a hybrid host it uses the cgroup2
//! mount found in mountinfo (`/sys/fs/cgroup/unified` there).
//!
//! `linux.cgroupsPath` follows runc's cgroupfs semantics: absolute → from the hierarchy root;
//! relative → under the parent of skiff's own cgroup; empty → that parent's
//! `<container id>`. A systemd-style `slice:prefix:name` is, without the systemd driver,
//! just such a relative path.

use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Finds the cgroup2 mount point in a mountinfo file (injectable for tests).
pub fn find_mount(mountinfo: &str) -> Option<PathBuf> {
    crate::rootfs::mountinfo::parse(mountinfo)
        .into_iter()
        .find(|e| e.fstype == "cgroup2")
        .map(|e| e.mount_point)
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
    // A relative path goes under the *parent* of our own cgroup, as runc's cgroup v2 code
    // puts it: our own cgroup usually holds processes (the shim, a service's main process),
    // and the "no internal processes" rule then keeps domain controllers from being enabled
    // for a child of it (and a threaded-only one leaves the child "domain invalid", which
    // CLONE_INTO_CGROUP refuses).
    let base = if p.is_absolute() {
        Path::new("/")
    } else {
        own.parent().unwrap_or(Path::new("/"))
    };
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

/// Locates the cgroup2 mount and skiff's own cgroup, from /proc.
pub fn host_layout() -> Result<(PathBuf, PathBuf)> {
    let mi = fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let mount = find_mount(&mi)
        .context("no cgroup2 filesystem is mounted on this host (skiff supports cgroup v2 only)")?;
    let pc = fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
    let own = own_cgroup(&pc).context("/proc/self/cgroup has no cgroup v2 (0::) entry")?;
    Ok((mount, own))
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
        assert_eq!(r(None).unwrap(), PathBuf::from("own/c1"));
        assert_eq!(r(Some("")).unwrap(), PathBuf::from("own/c1"));
        assert_eq!(r(Some("/abs/x")).unwrap(), PathBuf::from("abs/x"));
        assert_eq!(r(Some("rel/x")).unwrap(), PathBuf::from("own/rel/x"));
        let e = r(Some("../../etc")).unwrap_err().to_string();
        assert!(e.contains("must not contain \"..\""), "{e}");
        let e = r(Some("/")).unwrap_err().to_string();
        assert!(e.contains("names the hierarchy root"), "{e}");
        // Without the systemd driver a slice:prefix:name path is a plain relative path, as
        // runc and crun take it (containerd 1.6 writes one for a pod whose parent is a slice).
        assert_eq!(
            r(Some("test.slice:cri-containerd:abc")).unwrap(),
            PathBuf::from("own/test.slice:cri-containerd:abc")
        );
    }
}
