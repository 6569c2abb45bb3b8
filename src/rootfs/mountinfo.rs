//! /proc/<pid>/mountinfo (proc(5)), as much of it as skiff reads: each mount's root within
//! its filesystem, where it is mounted, and the filesystem type.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The directory of the filesystem that forms the mount's root ("/" for a full mount).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    pub fstype: String,
    /// In a peer group (`shared:N` among the optional fields).
    pub shared: bool,
    pub unbindable: bool,
}

/// The entries of a mountinfo text, in its order (parents before their children); lines
/// that do not have mountinfo's shape are skipped.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let mut pre = pre.split_whitespace();
            let root = pre.nth(3)?;
            let mount_point = pre.next()?;
            let _options = pre.next()?;
            let optional: Vec<&str> = pre.collect();
            let fstype = post.split_whitespace().next()?;
            Some(Entry {
                root: PathBuf::from(unescape(root)),
                mount_point: PathBuf::from(unescape(mount_point)),
                fstype: fstype.to_string(),
                shared: optional.iter().any(|o| o.starts_with("shared:")),
                unbindable: optional.contains(&"unbindable"),
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_escapes() {
        let mi = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
                  31 30 0:27 /a\\040b /sys/fs/cgroup/my\\040dir rw shared:5 master:1 - cgroup2 cgroup2 rw\n\
                  garbage\n";
        let e = parse(mi);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].root, PathBuf::from("/"));
        assert_eq!(e[0].mount_point, PathBuf::from("/proc"));
        assert_eq!(e[0].fstype, "proc");
        assert_eq!(e[1].root, PathBuf::from("/a b"));
        assert_eq!(e[1].mount_point, PathBuf::from("/sys/fs/cgroup/my dir"));
        assert!(!e[0].shared && e[1].shared && !e[1].unbindable);
    }
}
