//! mounts, linux.rootfsPropagation, the propagation volume, maskedPaths and readonlyPaths.

use super::{plan_push, Case, Draft, SourceMode};
use crate::rng::Rng;
use serde_json::{json, Value};

const PROPAGATIONS: [&str; 8] = [
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

pub const DEFAULT_MASKED: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

pub const DEFAULT_READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The standard mounts of `runc spec`, each kept with some probability.
fn base(r: &mut Rng, draft: &Draft, terminal: bool) -> Vec<Value> {
    let mut devpts = vec![
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
    ];
    if (draft.mapped)(5) {
        devpts.push("gid=5");
    }
    let all = [
        (
            95,
            json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        ),
        (
            85,
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        ),
        (
            85,
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts}),
        ),
        (
            85,
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        ),
        (
            80,
            json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        ),
        (
            85,
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        ),
        (
            70,
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
        ),
    ];
    // A terminal needs /dev/ptmx: keep /dev and /dev/pts (almost always) when there is one.
    all.into_iter()
        .filter(|(p, m)| {
            r.chance(*p)
                || (terminal
                    && m["destination"].as_str().unwrap_or("").starts_with("/dev")
                    && r.chance(90))
        })
        .map(|(_, m)| m)
        .collect()
}

fn bind_options(r: &mut Rng) -> Vec<String> {
    let mut o = vec![if r.chance(50) { "rbind" } else { "bind" }.to_string()];
    if r.chance(35) {
        o.push(if r.chance(20) { "rro" } else { "ro" }.into());
    } else if r.chance(15) {
        o.push("rw".into());
    }
    for opt in ["nosuid", "nodev", "noexec"] {
        if r.chance(20) {
            o.push(opt.into());
        }
    }
    if r.chance(25) {
        o.push(r.pick(&PROPAGATIONS).to_string());
    }
    if r.chance(10) {
        o.push(
            r.pick(&["noatime", "strictatime", "relatime", "nodiratime"])
                .to_string(),
        );
    }
    o
}

fn extra(r: &mut Rng, case: &mut Case, draft: &Draft, k: usize, out: &mut Vec<Value>) {
    let bind_type = || -> Value { json!("bind") };
    match r.below(11) {
        0 | 1 => {
            let name = format!("d{k}");
            let sub = r.chance(50);
            case.host.dirs.push((name.clone(), sub));
            let mut m = json!({"destination": format!("/mnt/{name}"), "source": format!("@RUN@/vol/{name}"), "options": bind_options(r)});
            if r.chance(80) {
                m["type"] = bind_type();
            }
            case.tag(format!("mount.bind{}", if sub { "+submount" } else { "" }));
            out.push(m);
        }
        2 => {
            let name = format!("f{k}");
            case.host.files.push(name.clone());
            let dest = if r.chance(50) {
                format!("/etc/{name}")
            } else {
                format!("/mnt/{name}")
            };
            out.push(json!({"destination": dest, "type": "bind", "source": format!("@RUN@/vol/{name}"), "options": bind_options(r)}));
            case.tag("mount.bindfile");
        }
        3 | 4 => {
            let mut o: Vec<String> = r
                .subset(
                    &["nosuid", "nodev", "noexec", "ro", "strictatime", "noatime"],
                    25,
                )
                .into_iter()
                .map(String::from)
                .collect();
            if r.chance(40) {
                o.push(r.pick(&["size=1m", "size=65536k", "size=10%"]).to_string());
            }
            if r.chance(40) {
                o.push(
                    r.pick(&["mode=700", "mode=1777", "mode=755", "mode=0311"])
                        .to_string(),
                );
            }
            if r.chance(15) && (draft.mapped)(1000) {
                o.push("uid=1000".into());
                o.push("gid=1000".into());
            }
            let dest = if r.chance(15) {
                o.push("tmpcopyup".into());
                case.tag("mount.tmpcopyup");
                "/copyup".to_string()
            } else {
                format!("/mnt/t{k}")
            };
            out.push(
                json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": o}),
            );
            case.tag("mount.tmpfs");
        }
        5 => {
            out.push(json!({"destination": format!("/mnt/proc{k}"), "type": "proc", "source": "proc", "options": ["nosuid", "nodev", "noexec"]}));
            case.tag("mount.proc2");
        }
        6 => {
            out.push(json!({"destination": format!("/mnt/sys{k}"), "type": "sysfs", "source": "sysfs", "options": ["nosuid", "nodev", "noexec", "ro"]}));
            case.tag("mount.sysfs2");
        }
        7 => {
            let mut o = vec!["nosuid", "nodev", "noexec"];
            if r.chance(30) {
                o.push("nsdelegate");
                case.tag("mount.cgroup.data");
            }
            if r.chance(50) {
                o.push("ro");
            }
            out.push(json!({"destination": format!("/mnt/cg{k}"), "type": "cgroup", "source": "cgroup", "options": o}));
            case.tag("mount.cgroup2");
        }
        8 => {
            // Destination through a symlink of the image (/lnk → /mnt/real): resolved in-root.
            out.push(json!({"destination": "/lnk/t", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]}));
            case.tag("mount.via-symlink");
        }
        9 => {
            out.push(json!({"destination": format!("/mnt/n{k}"), "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]}));
            let name = format!("d{k}");
            case.host.dirs.push((name.clone(), false));
            out.push(json!({"destination": format!("/mnt/n{k}/in"), "type": "bind", "source": format!("@RUN@/vol/{name}"), "options": bind_options(r)}));
            case.tag("mount.nested");
        }
        _ => {
            out.push(json!({"destination": format!("/mnt/mq{k}"), "type": "mqueue", "source": "mqueue", "options": ["nosuid", "nodev", "noexec"]}));
            case.tag("mount.mqueue2");
        }
    }
}

pub fn mounts(
    r: &mut Rng,
    case: &mut Case,
    draft: &Draft,
    linux: &mut Value,
    plan: &mut Value,
) -> Value {
    let terminal = case.terminal_drawn;
    let mut out = base(r, draft, terminal);
    for k in 0..r.range(0, 4) as usize {
        extra(r, case, draft, k, &mut out);
    }
    if r.chance(35) {
        let all = [
            "private",
            "rprivate",
            "slave",
            "rslave",
            "shared",
            "rshared",
            "unbindable",
            "runbindable",
        ];
        let p = all[r.weighted(&[14, 14, 14, 14, 14, 14, 3, 3])];
        linux["rootfsPropagation"] = json!(p);
        case.tag(format!("rootfsPropagation={p}"));
    }
    if r.chance(25) {
        // The propagation volume: source mount shared/private/slave × the bind's own
        // propagation option; the runner mounts on the host side, the observer inside.
        let mode = *r.pick(&[SourceMode::Shared, SourceMode::Private, SourceMode::Slave]);
        case.host.propagation.push(("pv".into(), mode));
        let mut o = vec!["rbind".to_string()];
        let opt = *r.pick(&[
            "", "private", "rprivate", "shared", "rshared", "slave", "rslave",
        ]);
        if !opt.is_empty() {
            o.push(opt.into());
        }
        out.push(
            json!({"destination": "/mnt/pv", "type": "bind", "source": "@RUN@/pv", "options": o}),
        );
        plan["c2h"] = json!("/mnt/pv/c2h");
        case.tag(
            format!(
                "propagation:source={mode:?},option={}",
                if opt.is_empty() { "none" } else { opt }
            )
            .to_lowercase(),
        );
    }
    masked(r, case, linux, plan);
    Value::Array(out)
}

fn masked(r: &mut Rng, case: &mut Case, linux: &mut Value, plan: &mut Value) {
    for p in DEFAULT_MASKED.iter().chain(DEFAULT_READONLY.iter()) {
        plan_push(plan, "paths", json!(p));
    }
    if !r.chance(75) {
        return;
    }
    let mut masked: Vec<String> = r
        .subset(&DEFAULT_MASKED, 85)
        .into_iter()
        .map(String::from)
        .collect();
    let mut readonly: Vec<String> = r
        .subset(&DEFAULT_READONLY, 85)
        .into_iter()
        .map(String::from)
        .collect();
    for (p, path) in [
        (15, "/etc/secret"),
        (10, "/mnt/nonexistent"),
        (10, "/tmp"),
        (5, "/etc"),
    ] {
        if r.chance(p) {
            masked.push(path.into());
        }
    }
    if r.chance(4) {
        masked.push("/loop".into());
        case.tag("masked.symlink-loop");
    }
    for (p, path) in [(10, "/etc"), (10, "/etc/secret"), (5, "/mnt/nonexistent")] {
        if r.chance(p) {
            readonly.push(path.into());
        }
    }
    for p in masked.iter().chain(readonly.iter()) {
        plan_push(plan, "paths", json!(p));
    }
    linux["maskedPaths"] = json!(masked);
    linux["readonlyPaths"] = json!(readonly);
    case.tag("masked/readonly");
}
