//! The propagation matrix (issue 23): every `linux.rootfsPropagation` × every propagation
//! option of a bind volume × the kind of the volume's source mount × both directions
//! (the host mounts below the source after start: seen inside? the container mounts below
//! the destination: seen on the host?). Exhaustive, not drawn: 8 × 8 × 3 × 2 = 384
//! logical cases. One container per rootfsPropagation × source kind holds one volume per
//! option, each probed both ways, so they cost 24 containers per runtime, not 384.

use super::mounts::{DEFAULT_MASKED, DEFAULT_READONLY};
use super::{Case, HostSetup, SourceMode};
use serde_json::{json, Value};

/// `linux.rootfsPropagation` values ("" = unset).
pub const ROOT: [&str; 8] = [
    "",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
];

/// The volume's own propagation option ("" = none).
pub const OPTIONS: [&str; 8] = [
    "",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
];

pub const SOURCES: [SourceMode; 3] = [SourceMode::Private, SourceMode::Shared, SourceMode::Slave];

pub const DIRECTIONS: [&str; 2] = ["h2c", "c2h"];

/// Containers of the matrix (one per rootfsPropagation × source kind).
pub const CELLS: usize = ROOT.len() * SOURCES.len();

/// Logical cases: rootfsPropagation × option × source × direction.
pub const CASES: usize = CELLS * OPTIONS.len() * DIRECTIONS.len();

/// Matrix containers get indices from here on (run directories, reports), far above any
/// generated config's.
pub const BASE_INDEX: u64 = 1_000_000;

pub fn label(v: &str) -> &str {
    if v.is_empty() {
        "unset"
    } else {
        v
    }
}

pub fn source_name(s: SourceMode) -> &'static str {
    match s {
        SourceMode::Private => "private",
        SourceMode::Shared => "shared",
        SourceMode::Slave => "slave",
    }
}

/// The volume for one option: @RUN@/<name> mounted at /mnt/<name>.
pub fn volume(option: &str) -> String {
    format!("pv-{}", if option.is_empty() { "none" } else { option })
}

/// (rootfsPropagation, source kind) of container `cell`.
pub fn cell_of(cell: usize) -> (&'static str, SourceMode) {
    (ROOT[cell / SOURCES.len()], SOURCES[cell % SOURCES.len()])
}

/// The matrix container of `cell` (0..CELLS): runc spec's mounts and namespaces, the
/// observer with CAP_SYS_ADMIN (it mounts below its volumes), a mask on a file of the
/// root mount (mounted after rootfsPropagation is applied), and the eight volumes.
pub fn case(cell: usize) -> Case {
    let (root, source) = cell_of(cell);
    let index = BASE_INDEX + cell as u64;
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ];
    let mut host = HostSetup::default();
    for option in OPTIONS {
        let name = volume(option);
        let mut o = vec!["rbind".to_string()];
        if !option.is_empty() {
            o.push(option.to_string());
        }
        mounts.push(json!({"destination": format!("/mnt/{name}"), "type": "bind", "source": format!("@RUN@/{name}"), "options": o}));
        host.propagation.push((name, source));
    }
    let caps = [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_ADMIN",
    ];
    let mut masked: Vec<&str> = DEFAULT_MASKED.to_vec();
    masked.push("/etc/secret");
    let mut linux = json!({
        "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}],
        "maskedPaths": masked,
        "readonlyPaths": DEFAULT_READONLY,
    });
    if !root.is_empty() {
        linux["rootfsPropagation"] = json!(root);
    }
    let config = json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/observe", "observe"],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            // As `runc spec` writes it: without it runc 1.1.5 gives the container a soft
            // limit raised to the hard one (generated configs compare that; this need not).
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true,
        },
        "root": {"path": "rootfs"},
        "hostname": format!("prop{cell}"),
        "mounts": mounts,
        "linux": linux,
    });
    let mut paths: Vec<Value> = DEFAULT_MASKED
        .iter()
        .chain(DEFAULT_READONLY.iter())
        .map(|p| json!(p))
        .collect();
    paths.push(json!("/etc/secret"));
    Case {
        index,
        id: format!("dfhp{cell}"),
        config,
        plan: json!({"paths": paths, "sysctls": [], "devices": [], "seccomp_probe": false, "exit": 0}),
        host,
        preserve_fds: 0,
        preserve_given: 0,
        tags: vec![format!(
            "matrix:rootfsPropagation={},source={}",
            label(root),
            source_name(source)
        )],
        invalid: None,
        terminal_drawn: false,
        matrix: Some(cell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cells_cover_every_combination_once() {
        let mut seen = std::collections::BTreeSet::new();
        for cell in 0..CELLS {
            let c = case(cell);
            let root = c.config["linux"]["rootfsPropagation"]
                .as_str()
                .unwrap_or("")
                .to_string();
            assert_eq!(c.host.propagation.len(), OPTIONS.len());
            for (name, source) in &c.host.propagation {
                assert!(seen.insert((root.clone(), name.clone(), source_name(*source))));
            }
            // Each volume is in the config, its option last.
            for option in OPTIONS {
                let dest = format!("/mnt/{}", volume(option));
                let m = c.config["mounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|m| m["destination"] == dest.as_str())
                    .expect("volume mounted");
                let opts = m["options"].as_array().unwrap();
                assert_eq!(
                    opts.last().unwrap().as_str().unwrap(),
                    if option.is_empty() { "rbind" } else { option }
                );
            }
        }
        assert_eq!(seen.len() * DIRECTIONS.len(), CASES);
        assert_eq!(CASES, 384);
    }
}
