//! Attacks from every container-escape class that hit runc, crun or youki, each of which
//! must fail against skiff. One file per class; each names the CVE it reproduces and asserts
//! the host-side effect (a scratch host file unchanged, a scratch host dir empty, nothing
//! mounted on the host, the host binary unchanged). The targets are always scratch files in
//! the test's own temp directory, never real system files, so even a vulnerable runtime
//! would only touch those.

mod binary;
mod caps;
mod console;
mod devnull;
mod fds;
mod paths;
mod proc_redirect;
mod procfs;
mod symlink_race;

use std::path::{Path, PathBuf};

use crate::common::text;

/// A directory on the host, next to the bundle, that an attack tries to reach.
pub fn scratch_dir(b: &crate::common::Bundle, name: &str) -> PathBuf {
    let d = b.dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The entries of a host directory (an attack that worked leaves something there).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Host mount points at or below `dir`.
pub fn host_mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_str().unwrap();
    crate::common::mounts()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| *m == d || m.starts_with(&format!("{d}/")))
        .map(str::to_string)
        .collect()
}

/// What must not change about a scratch host file: its bytes and its inode metadata.
#[derive(Debug, PartialEq, Eq)]
pub struct Fingerprint {
    data: Vec<u8>,
    ino: u64,
    mode: u32,
    mtime: (i64, i64),
}

pub fn fingerprint(path: &Path) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).unwrap();
    Fingerprint {
        data: std::fs::read(path).unwrap(),
        ino: m.ino(),
        mode: m.mode(),
        mtime: (m.mtime(), m.mtime_nsec()),
    }
}

/// A network namespace only one test uses, held by a `sleep` it starts (and kills): a
/// place where a vulnerable runtime's procfs write would land harmlessly but visibly.
pub struct ScratchNetns(std::process::Child);

impl ScratchNetns {
    pub fn new() -> ScratchNetns {
        let child = std::process::Command::new("unshare")
            .args(["-n", "sleep", "60"])
            .spawn()
            .unwrap();
        let ns = format!("/proc/{}/ns/net", child.id());
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        assert!(
            crate::common::wait_for(5000, || std::fs::read_link(&ns).is_ok_and(|l| l != ours)),
            "unshare -n did not make a network namespace"
        );
        ScratchNetns(child)
    }

    pub fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.0.id())
    }

    /// A sysctl of that namespace, read from inside it.
    pub fn sysctl(&self, rel: &str) -> String {
        let out = std::process::Command::new("nsenter")
            .args(["-t", &self.0.id().to_string(), "-n", "cat"])
            .arg(format!("/proc/sys/{rel}"))
            .output()
            .unwrap();
        text(&out.stdout).trim().to_string()
    }
}

impl Drop for ScratchNetns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
