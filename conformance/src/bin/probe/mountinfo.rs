//! /proc/self/mountinfo parsed, and the per-mount flags a list of mount options should
//! produce (applied in order, as the spec says).

use std::collections::BTreeMap;
use std::fs;

#[derive(Debug, Clone)]
pub(crate) struct MountEnt {
    pub(crate) idx: usize,
    pub(crate) root: String,
    pub(crate) point: String,
    pub(crate) opts: Vec<String>,
    pub(crate) optional: Vec<String>,
    pub(crate) fstype: String,
    pub(crate) source: String,
    pub(crate) superopts: Vec<String>,
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push(u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn read_mountinfo() -> Vec<MountEnt> {
    let txt = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v = vec![];
    for (idx, line) in txt.lines().enumerate() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if f.len() < 6 || sep + 3 > f.len() {
            continue;
        }
        v.push(MountEnt {
            idx,
            root: unescape(f[3]),
            point: unescape(f[4]),
            opts: f[5].split(',').map(String::from).collect(),
            optional: f[6..sep].iter().map(|s| s.to_string()).collect(),
            fstype: f[sep + 1].to_string(),
            source: unescape(f[sep + 2]),
            superopts: f
                .get(sep + 3)
                .map(|s| s.split(',').map(String::from).collect())
                .unwrap_or_default(),
        });
    }
    v
}

pub(crate) fn norm(p: &str) -> String {
    let mut parts: Vec<&str> = vec![];
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            x => parts.push(x),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Topmost mount at `point` (the last one in mountinfo order).
pub(crate) fn top_mount<'a>(mi: &'a [MountEnt], point: &str) -> Option<&'a MountEnt> {
    mi.iter().rev().find(|m| m.point == point)
}

pub(crate) fn propagation_matches(p: &str, optional: &[String]) -> (bool, &'static str) {
    let shared = optional.iter().any(|o| o.starts_with("shared:"));
    let master = optional.iter().any(|o| o.starts_with("master:"));
    let unb = optional.iter().any(|o| o == "unbindable");
    match p.trim_start_matches('r') {
        "shared" => (shared, "(want shared:N)"),
        "slave" => (master && !shared, "(want master:N, not shared)"),
        "private" => (
            !shared && !master && !unb,
            "(want no shared/master/unbindable)",
        ),
        "unbindable" => (unb, "(want unbindable)"),
        _ => (false, "(unknown propagation)"),
    }
}

/// Expected per-mount flags after applying the options in order.
/// Mount flags by name: true set, false cleared.
pub(crate) type Flags = BTreeMap<&'static str, bool>;

pub(crate) fn expected_flags(opts: &[String]) -> (Flags, Flags, Option<&'static str>, Vec<String>) {
    // (flag -> set?) for the mount; recursive flags; atime mode; data options
    let mut f: Flags = BTreeMap::new();
    let mut rec: Flags = BTreeMap::new();
    let mut atime: Option<&'static str> = None;
    let mut data = vec![];
    for o in opts {
        match o.as_str() {
            "ro" => {
                f.insert("ro", true);
            }
            "rw" => {
                f.insert("ro", false);
            }
            "nosuid" => {
                f.insert("nosuid", true);
            }
            "suid" => {
                f.insert("nosuid", false);
            }
            "nodev" => {
                f.insert("nodev", true);
            }
            "dev" => {
                f.insert("nodev", false);
            }
            "noexec" => {
                f.insert("noexec", true);
            }
            "exec" => {
                f.insert("noexec", false);
            }
            "nosymfollow" => {
                f.insert("nosymfollow", true);
            }
            "symfollow" => {
                f.insert("nosymfollow", false);
            }
            "nodiratime" => {
                f.insert("nodiratime", true);
            }
            "diratime" => {
                f.insert("nodiratime", false);
            }
            "noatime" => atime = Some("noatime"),
            "relatime" => atime = Some("relatime"),
            "strictatime" => atime = Some("strictatime"),
            "atime" | "norelatime" | "nostrictatime" => {}
            "defaults" => {
                f.insert("ro", false);
                f.insert("nosuid", false);
                f.insert("nodev", false);
                f.insert("noexec", false);
            }
            "rro" => {
                rec.insert("ro", true);
                f.insert("ro", true);
            }
            "rrw" => {
                rec.insert("ro", false);
                f.insert("ro", false);
            }
            "rnosuid" => {
                rec.insert("nosuid", true);
                f.insert("nosuid", true);
            }
            "rsuid" => {
                rec.insert("nosuid", false);
                f.insert("nosuid", false);
            }
            "rnodev" => {
                rec.insert("nodev", true);
                f.insert("nodev", true);
            }
            "rdev" => {
                rec.insert("nodev", false);
                f.insert("nodev", false);
            }
            "rnoexec" => {
                rec.insert("noexec", true);
                f.insert("noexec", true);
            }
            "rexec" => {
                rec.insert("noexec", false);
                f.insert("noexec", false);
            }
            "rnosymfollow" => {
                rec.insert("nosymfollow", true);
                f.insert("nosymfollow", true);
            }
            "rsymfollow" => {
                rec.insert("nosymfollow", false);
                f.insert("nosymfollow", false);
            }
            "rnodiratime" => {
                rec.insert("nodiratime", true);
                f.insert("nodiratime", true);
            }
            "rdiratime" => {
                rec.insert("nodiratime", false);
                f.insert("nodiratime", false);
            }
            "rnoatime" => {
                rec.insert("noatime", true);
                atime = Some("noatime");
            }
            "rstrictatime" => {
                rec.insert("strictatime", true);
                atime = Some("strictatime");
            }
            "rrelatime" => {
                rec.insert("relatime", true);
                atime = Some("relatime");
            }
            "bind" | "rbind" | "shared" | "rshared" | "slave" | "rslave" | "private"
            | "rprivate" | "unbindable" | "runbindable" | "async" | "sync" | "dirsync"
            | "remount" | "silent" | "loud" | "mand" | "nomand" | "iversion" | "noiversion"
            | "lazytime" | "nolazytime" | "tmpcopyup" | "idmap" | "ridmap" | "ratime"
            | "rnorelatime" | "rnostrictatime" => {}
            other => data.push(other.to_string()),
        }
    }
    (f, rec, atime, data)
}

pub(crate) fn flags_ok(m: &MountEnt, f: &Flags, atime: Option<&str>) -> Vec<String> {
    let mut bad = vec![];
    for (flag, want) in f {
        let has = if *flag == "ro" {
            m.opts.iter().any(|o| o == "ro")
        } else {
            m.opts.iter().any(|o| o == flag)
        };
        if has != *want {
            bad.push(format!("{}{flag}", if *want { "" } else { "not " }));
        }
    }
    if let Some(a) = atime {
        let has_noatime = m.opts.iter().any(|o| o == "noatime");
        let has_rel = m.opts.iter().any(|o| o == "relatime");
        let ok = match a {
            "noatime" => has_noatime,
            "relatime" => has_rel,
            "strictatime" => !has_noatime && !has_rel,
            _ => true,
        };
        if !ok {
            bad.push(a.to_string());
        }
    }
    bad
}
