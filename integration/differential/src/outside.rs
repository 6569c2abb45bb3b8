//! What the host sees of the container's process: /proc/<pid>/{ns,status,mountinfo,
//! cgroup,fd,oom_score_adj,uid_map,gid_map} and the container's cgroup files. Values are
//! normalised here, where the run's context is known: inode and peer-group numbers become
//! labels, the run directory becomes `RUN`.

use crate::host::{Prepared, CGROUP_ROOT};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

pub const NS_KINDS: [&str; 8] = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];

/// mountinfo escapes space, tab, newline and backslash as octal.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push(((b[i + 1] - b'0') << 6) | ((b[i + 2] - b'0') << 3) | (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn ns_inode(link: &str) -> Option<u64> {
    link.split_once('[')?.1.trim_end_matches(']').parse().ok()
}

pub fn read_ns(pid: &str) -> BTreeMap<&'static str, u64> {
    NS_KINDS
        .iter()
        .filter_map(|k| {
            fs::read_link(format!("/proc/{pid}/ns/{k}"))
                .ok()
                .and_then(|l| ns_inode(&l.display().to_string()))
                .map(|i| (*k, i))
        })
        .collect()
}

/// One parsed mountinfo line.
pub struct MountLine {
    pub id: String,
    pub parent: String,
    pub root: String,
    pub point: String,
    pub opts: String,
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    pub superopts: String,
}

pub fn parse_mountinfo(text: &str) -> Vec<MountLine> {
    let mut out = vec![];
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let Some(dash) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if f.len() < dash + 4 || dash < 6 {
            continue;
        }
        out.push(MountLine {
            id: f[0].into(),
            parent: f[1].into(),
            root: unescape(f[3]),
            point: unescape(f[4]),
            opts: f[5].into(),
            optional: f[6..dash].iter().map(|s| s.to_string()).collect(),
            fstype: f[dash + 1].into(),
            source: unescape(f[dash + 2]),
            superopts: f[dash + 3].into(),
        });
    }
    out
}

/// Peer group number → a label: where the host has a mount in that group, the host's
/// mount point (normalised), else where the container has one, the container's mount point
/// (`ctr(<point>)`; the shortest, so a label does not depend on the groups of other mounts);
/// a group neither table shows (a master elsewhere) gets `g<n>` by first use.
fn group_labels(
    host: &[MountLine],
    container: &[MountLine],
    token: &str,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for (table, wrap) in [(host, "host"), (container, "ctr")] {
        let mut here: BTreeMap<String, String> = BTreeMap::new();
        for m in table {
            for o in &m.optional {
                if let Some(g) = o.strip_prefix("shared:") {
                    let label = format!("{wrap}({})", norm_token(&m.point, token));
                    here.entry(g.to_string())
                        .and_modify(|l: &mut String| {
                            if (label.len(), &label) < (l.len(), l) {
                                *l = label.clone();
                            }
                        })
                        .or_insert(label);
                }
            }
        }
        for (g, l) in here {
            labels.entry(g).or_insert(l);
        }
    }
    labels
}

pub fn norm(s: &str, p: &Prepared) -> String {
    norm_token(s, &p.token)
}

fn norm_token(s: &str, token: &str) -> String {
    s.replace(token, "RUN")
}

/// cgroup2 options that are flags of the one cgroup2 hierarchy, not of a mount: any mount
/// of cgroup2 from the initial cgroup namespace sets or clears them for every mount, so
/// they say nothing about one container (see `cgroup2_root_flags`).
pub const CGROUP2_ROOT_FLAGS: [&str; 5] = [
    "nsdelegate",
    "favordynmods",
    "memory_localevents",
    "memory_recursiveprot",
    "memory_hugetlb_accounting",
];

fn superopts(m: &MountLine) -> String {
    if m.fstype != "cgroup2" {
        return m.superopts.clone();
    }
    m.superopts
        .split(',')
        .filter(|o| !CGROUP2_ROOT_FLAGS.contains(o))
        .collect::<Vec<_>>()
        .join(",")
}

/// The cgroup2 hierarchy's root flags as the host's /sys/fs/cgroup shows them.
pub fn cgroup2_root_flags() -> Vec<String> {
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parse_mountinfo(&mi)
        .iter()
        .find(|m| m.point == CGROUP_ROOT && m.fstype == "cgroup2")
        .map(|m| {
            m.superopts
                .split(',')
                .filter(|o| CGROUP2_ROOT_FLAGS.contains(o))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The container's mount table keyed by mount point (stacked mounts in order), each entry
/// "fstype source root=… opts=… super=… prop=… under=<parent's mount point>".
pub fn mount_table(text: &str, host_text: &str, token: &str) -> BTreeMap<String, Value> {
    let lines = parse_mountinfo(text);
    let host = parse_mountinfo(host_text);
    let mut labels = group_labels(&host, &lines, token);
    let by_id: BTreeMap<&str, &str> = lines
        .iter()
        .map(|m| (m.id.as_str(), m.point.as_str()))
        .collect();
    let mut sorted: Vec<&MountLine> = lines.iter().collect();
    sorted.sort_by(|a, b| a.point.cmp(&b.point));
    let mut next = 0;
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for m in sorted {
        let mut prop = vec![];
        for o in &m.optional {
            let (kind, g) = o.split_once(':').unwrap_or((o.as_str(), ""));
            if g.is_empty() {
                prop.push(kind.to_string());
                continue;
            }
            let label = labels.entry(g.to_string()).or_insert_with(|| {
                next += 1;
                format!("g{next}")
            });
            prop.push(format!("{kind}:{label}"));
        }
        let under = by_id
            .get(m.parent.as_str())
            .map(|s| norm_token(s, token))
            .unwrap_or_else(|| "(outside)".into());
        let entry = format!(
            "{} {} root={} opts={} super={} prop={} under={}",
            m.fstype,
            norm_token(&m.source, token),
            norm_token(&m.root, token),
            m.opts,
            norm_token(&superopts(m), token),
            if prop.is_empty() {
                "private".into()
            } else {
                prop.join(",")
            },
            under
        );
        let key = norm_token(&m.point, token);
        match out.get_mut(&key).and_then(Value::as_array_mut) {
            Some(a) => a.push(json!(entry)),
            None => {
                out.insert(key, json!([entry]));
            }
        }
    }
    out
}

fn status(pid: &str) -> Map<String, Value> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let keep = [
        "Uid",
        "Gid",
        "Groups",
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
        "Seccomp_filters",
    ];
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| keep.contains(k))
        .map(|(k, v)| {
            (
                k.to_string(),
                json!(v.split_whitespace().collect::<Vec<_>>().join(" ")),
            )
        })
        .collect()
}

/// Writable interface files of the container's cgroup (what a config can set), except
/// the ones that hold processes or trigger actions.
fn cgroup_files(dir: &Path) -> Map<String, Value> {
    let skip = [
        "cgroup.procs",
        "cgroup.threads",
        "cgroup.kill",
        "memory.reclaim",
        "cgroup.events",
    ];
    let mut out = Map::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(md) = e.metadata() else { continue };
        // PSI files are writable (for triggers) but read back as statistics.
        let stats = name.ends_with(".pressure") && name != "cgroup.pressure";
        if !md.is_file()
            || stats
            || skip.contains(&name.as_str())
            || std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o200 == 0
        {
            continue;
        }
        if let Ok(v) = fs::read_to_string(e.path()) {
            out.insert(
                name,
                json!(v
                    .trim_end()
                    .lines()
                    .map(str::trim_end)
                    .collect::<Vec<_>>()
                    .join("\n")),
            );
        }
    }
    out
}

/// Classify a namespace inode: the host's, one of the joined files', or new.
fn classify(kind: &str, ino: u64, host_ns: &BTreeMap<&'static str, u64>, p: &Prepared) -> String {
    if host_ns.get(kind) == Some(&ino) {
        return "host".into();
    }
    if p.joined.iter().any(|(k, i)| *k == kind && *i == ino) {
        return "joined".into();
    }
    "new".into()
}

/// The cgroup path of a process relative to the harness's own cgroup.
pub fn cgroup_of(pid: &str, own: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .to_string();
    let own = own.trim_end_matches('/');
    Some(
        path.strip_prefix(own)
            .map(str::to_string)
            .unwrap_or_else(|| format!("(outside own cgroup) {path}")),
    )
}

pub fn observe(
    pid: &str,
    p: &Prepared,
    host_ns: &BTreeMap<&'static str, u64>,
    own_cgroup: &str,
) -> Value {
    let ns = read_ns(pid);
    let mut nsv = Map::new();
    for (k, ino) in &ns {
        nsv.insert(k.to_string(), json!(classify(k, *ino, host_ns, p)));
    }
    let mut o = Map::new();
    if nsv.get("user") == Some(&json!("new")) || nsv.get("user") == Some(&json!("joined")) {
        for f in ["uid_map", "gid_map", "setgroups"] {
            let v = fs::read_to_string(format!("/proc/{pid}/{f}")).unwrap_or_default();
            o.insert(
                format!("user.{f}"),
                json!(v
                    .lines()
                    .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                    .collect::<Vec<_>>()),
            );
        }
    }
    o.insert("ns".into(), Value::Object(nsv));
    o.insert("status".into(), Value::Object(status(pid)));
    o.insert(
        "oom_score_adj".into(),
        json!(fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .unwrap_or_default()
            .trim()),
    );
    let cg = cgroup_of(pid, own_cgroup);
    if let Some(rel) = &cg {
        let dir = Path::new(CGROUP_ROOT)
            .join(own_cgroup.trim_start_matches('/'))
            .join(rel.trim_start_matches('/'));
        o.insert("cgroup.files".into(), Value::Object(cgroup_files(&dir)));
    }
    o.insert("cgroup.path".into(), json!(cg));
    let mi = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    let host_mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    o.insert("mounts".into(), json!(mount_table(&mi, &host_mi, &p.token)));
    o.insert("fds".into(), fds(pid, p));
    Value::Object(o)
}

/// The container process's open fds as the host sees them, inode numbers dropped.
fn fds(pid: &str, p: &Prepared) -> Value {
    let mut out = BTreeMap::new();
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            let n: u32 = e.file_name().to_string_lossy().parse().unwrap_or(u32::MAX);
            let what = fs::read_link(e.path())
                .map(|l| l.display().to_string())
                .unwrap_or_default();
            out.insert(n, json!(strip_inode(&norm(&what, p))));
        }
    }
    json!(out
        .into_iter()
        .map(|(n, w)| json!([n, w]))
        .collect::<Vec<_>>())
}

/// "pipe:[1234]" → "pipe:[N]".
pub fn strip_inode(s: &str) -> String {
    match (s.find('['), s.ends_with(']')) {
        (Some(i), true) if s[i + 1..s.len() - 1].bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}[N]", &s[..i])
        }
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "30 1 0:25 / / rw,relatime shared:1 - overlay overlay rw\n\
31 30 0:28 / /tmp rw,relatime shared:10 - tmpfs tmpfs rw,inode64\n";

    const CONTAINER: &str = "500 400 0:28 /dfh/7.ref/bundle/rootfs / rw,relatime shared:77 master:10 - tmpfs tmpfs rw,inode64\n\
501 500 0:5 / /proc rw,nosuid master:5 - proc proc rw\n\
502 500 0:6 / /mnt/a\\040b ro shared:99 - tmpfs none rw\n\
503 500 0:7 / /mnt/c ro shared:99 - tmpfs none rw\n\
504 500 0:8 / /sys/fs/cgroup ro - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot\n";

    #[test]
    fn peer_groups_become_labels_and_the_run_directory_run() {
        let t = mount_table(CONTAINER, HOST, "7.ref");
        assert_eq!(t["/"], serde_json::json!(["tmpfs tmpfs root=/dfh/RUN/bundle/rootfs opts=rw,relatime super=rw,inode64 prop=shared:ctr(/),master:host(/tmp) under=(outside)"]));
        // The same group number gets the same label (the group's shortest mount point, not
        // a number that depends on other groups); escapes are undone.
        assert!(t["/mnt/a b"][0]
            .as_str()
            .unwrap()
            .contains("prop=shared:ctr(/mnt/c)"));
        assert!(t["/mnt/c"][0]
            .as_str()
            .unwrap()
            .contains("prop=shared:ctr(/mnt/c)"));
        // A master neither table shows.
        assert!(t["/proc"][0]
            .as_str()
            .unwrap()
            .contains("prop=master:g1 under=/"));
        // cgroup2's hierarchy-wide flags are not a mount's.
        assert!(t["/sys/fs/cgroup"][0]
            .as_str()
            .unwrap()
            .contains("super=rw prop"));
    }

    #[test]
    fn inode_numbers_are_dropped() {
        assert_eq!(strip_inode("pipe:[12345]"), "pipe:[N]");
        assert_eq!(strip_inode("/dev/null"), "/dev/null");
        assert_eq!(strip_inode("anon_inode:[eventfd]"), "anon_inode:[eventfd]");
    }
}
