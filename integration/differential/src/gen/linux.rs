//! linux.*: namespaces, id maps, devices, cgroupsPath, sysctls, seccomp; and hooks.

use super::{plan_push, Case, Draft, Ns, HOLDER_UID_MAP};
use crate::rng::Rng;
use serde_json::{json, Value};

/// (kind, % new, % joined); the rest absent. `mount` is joined never (a joined mount
/// namespace replaces the rootfs); `time` is new only.
const NAMESPACES: [(&str, u64, u64); 8] = [
    ("pid", 70, 8),
    ("network", 60, 12),
    ("ipc", 60, 10),
    ("uts", 60, 10),
    ("mount", 95, 0),
    ("cgroup", 40, 5),
    ("user", 15, 3),
    ("time", 3, 0),
];

pub fn namespaces(r: &mut Rng, case: &mut Case) -> (Value, Draft) {
    let mut ns = vec![];
    for (kind, new, joined) in NAMESPACES {
        let pick = r.weighted(&[new, joined, 100 - new - joined]);
        ns.push((kind, [Ns::New, Ns::Joined, Ns::Absent][pick]));
    }
    // A new user namespace can mount proc and mqueue only over pid and ipc namespaces it
    // owns: make those new too, mostly (the rest stays as drawn, to explore refusals).
    let userns = ns.iter().any(|(k, s)| *k == "user" && *s != Ns::Absent);
    if userns && r.chance(90) {
        for (k, s) in ns.iter_mut() {
            if matches!(*k, "pid" | "ipc") || (*k != "user" && *s == Ns::Joined) {
                *s = Ns::New;
            }
        }
    }
    let mut json = vec![];
    for (kind, state) in &ns {
        match state {
            Ns::Absent => {}
            Ns::New => json.push(json!({"type": kind})),
            Ns::Joined => {
                case.host.joined.push(kind);
                json.push(json!({"type": kind, "path": format!("@RUN@/ns/{kind}")}));
            }
        }
        case.tag(format!("ns.{kind}={state:?}").to_lowercase());
    }
    // Order in the config is not meaningful; shuffle sometimes to catch order dependence.
    if r.chance(20) {
        json.reverse();
    }
    let user = ns
        .iter()
        .find(|(k, _)| *k == "user")
        .map(|(_, s)| *s)
        .unwrap_or(Ns::Absent);
    let mapped: Box<dyn Fn(u32) -> bool> = match user {
        Ns::Absent => Box::new(|_| true),
        _ => Box::new(|id| id < 65536),
    };
    (Value::Array(json), Draft { ns, mapped })
}

/// uidMappings/gidMappings: for a new user namespace always, for a joined one sometimes
/// (runc 1.1 wants them; they must then match the namespace's own).
pub fn id_maps(r: &mut Rng, case: &mut Case, draft: &Draft, linux: &mut Value) {
    let maps = match draft.state("user") {
        Ns::Absent => return,
        Ns::Joined => {
            if !r.chance(70) {
                case.tag("userns.joined.nomaps");
                return;
            }
            let f: Vec<u64> = HOLDER_UID_MAP
                .split(' ')
                .map(|s| s.parse().unwrap_or(0))
                .collect();
            vec![json!({"containerID": f[0], "hostID": f[1], "size": f[2]})]
        }
        Ns::New => match r.below(3) {
            0 => vec![json!({"containerID": 0, "hostID": 100000, "size": 65536})],
            1 => vec![
                json!({"containerID": 0, "hostID": 200000, "size": 1000}),
                json!({"containerID": 1000, "hostID": 300000, "size": 64536}),
            ],
            _ => vec![json!({"containerID": 0, "hostID": 0, "size": 65536})],
        },
    };
    linux["uidMappings"] = Value::Array(maps.clone());
    linux["gidMappings"] = Value::Array(maps);
}

/// linux.devices (nodes created in the container) and the observer's list of paths to open.
pub fn devices(r: &mut Rng, case: &mut Case, draft: &Draft, linux: &mut Value, plan: &mut Value) {
    if !r.chance(30) {
        return;
    }
    let pool = [
        json!({"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}),
        json!({"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 438}),
        json!({"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 416}),
        json!({"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 384, "uid": 1000, "gid": 1000}),
        json!({"path": "/dev/myloop", "type": "b", "major": 7, "minor": 0, "fileMode": 432}),
        json!({"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 420}),
        json!({"path": "/dev/full", "type": "c", "major": 1, "minor": 7}),
        json!({"path": "/dev/myfifo", "type": "p", "major": 0, "minor": 0, "fileMode": 420}),
        json!({"path": "/dev/myunbuf", "type": "u", "major": 1, "minor": 5, "fileMode": 438}),
    ];
    // With a user namespace the runtime bind-mounts the host's node (it may not mknod):
    // only nodes the guest has.
    let usable: Vec<Value> = if draft.has("user") {
        pool.iter()
            .filter(|d| {
                matches!(
                    d["path"].as_str(),
                    Some("/dev/null" | "/dev/full" | "/dev/kmsg")
                )
            })
            .cloned()
            .collect()
    } else {
        pool.to_vec()
    };
    let n = r.range(1, 3);
    let mut out = vec![];
    for _ in 0..n {
        let d = r.pick(&usable).clone();
        if !out.contains(&d) {
            plan_push(plan, "devices", d["path"].clone());
            out.push(d);
        }
    }
    case.tag("devices");
    linux["devices"] = Value::Array(out);
}

/// linux.cgroupsPath: absent, relative, absolute, or an existing cgroup (empty or not).
/// Every path lies under `dfh<index>` (the default path of container `dfh<index>` too),
/// so each run starts from a fresh parent and the teardown removes one tree.
pub fn cgroups_path(r: &mut Rng, case: &mut Case, linux: &mut Value) {
    let i = case.index;
    match r.weighted(&[40, 25, 25, 6, 4]) {
        0 => return,
        1 => linux["cgroupsPath"] = json!(format!("dfh{i}/c")),
        2 => linux["cgroupsPath"] = json!(format!("/dfh{i}/c")),
        n => {
            let populated = n == 4;
            let path = format!("dfh{i}/pre");
            case.host.precreated_cgroup = Some((path.clone(), populated));
            linux["cgroupsPath"] = json!(format!("/{path}"));
            case.tag(if populated {
                "cgroup.existing.populated"
            } else {
                "cgroup.existing.empty"
            });
            return;
        }
    }
    case.tag("cgroupsPath");
}

/// Namespaced sysctls, only for namespaces the config has (one outside them is a mutation).
pub const SYSCTLS: [(&str, &str, &str); 7] = [
    ("net.ipv4.ip_forward", "1", "network"),
    ("net.core.somaxconn", "256", "network"),
    ("net.ipv4.ping_group_range", "0 2147483647", "network"),
    ("kernel.shmmax", "68719476736", "ipc"),
    ("kernel.msgmax", "16384", "ipc"),
    ("fs.mqueue.msg_max", "20", "ipc"),
    ("kernel.domainname", "sysctl.example", "uts"),
];

pub fn sysctls(r: &mut Rng, case: &mut Case, draft: &Draft, linux: &mut Value, plan: &mut Value) {
    for (key, _, _) in SYSCTLS {
        plan_push(plan, "sysctls", json!(key));
    }
    if !r.chance(25) {
        return;
    }
    let mut map = serde_json::Map::new();
    for (key, value, ns) in SYSCTLS {
        if draft.has(ns) && r.chance(40) {
            map.insert(key.into(), json!(value));
        }
    }
    if !map.is_empty() {
        case.tag("sysctl");
        linux["sysctl"] = Value::Object(map);
    }
}

/// A small profile that denies one syscall the observer probes (getpriority).
pub fn seccomp(r: &mut Rng, case: &mut Case, linux: &mut Value, plan: &mut Value) {
    if !r.chance(8) {
        return;
    }
    let mut rule = json!({"names": ["getpriority"], "action": "SCMP_ACT_ERRNO"});
    if r.chance(50) {
        rule["errnoRet"] = json!(38);
    }
    let mut profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]});
    if r.chance(50) {
        profile["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    }
    plan["seccomp_probe"] = json!(true);
    case.tag("seccomp");
    linux["seccomp"] = profile;
}

pub const HOOK_KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Where the in-container hooks (startContainer) find the hook log.
pub const HOOK_LOG_IN_CONTAINER: &str = "/.dfh-hooks";

/// Hooks that record their invocation (argv, env, stdin, cwd, namespaces) in the hook log.
pub fn hooks(r: &mut Rng, case: &mut Case, config: &mut Value) {
    if !r.chance(25) {
        return;
    }
    let mut hooks = serde_json::Map::new();
    for kind in HOOK_KINDS {
        if !r.chance(45) {
            continue;
        }
        let mut list = vec![];
        for n in 0..r.range(1, 2) {
            // startContainer runs in the container: its path resolves there.
            let (path, log) = if kind == "startContainer" {
                (
                    "/observe".to_string(),
                    format!("{HOOK_LOG_IN_CONTAINER}/hooks.log"),
                )
            } else {
                ("@BIN@".to_string(), "@RUN@/hooks/hooks.log".to_string())
            };
            let mut h =
                json!({"path": path, "args": ["dfh-hook", "hook", format!("{kind}#{n}"), log]});
            if r.chance(50) {
                h["env"] = json!([format!("HOOK_KIND={kind}"), "HOOK_EXTRA=1"]);
            }
            if r.chance(30) {
                h["timeout"] = json!(60);
            }
            list.push(h);
        }
        hooks.insert(kind.into(), Value::Array(list));
    }
    if hooks.is_empty() {
        return;
    }
    case.host.hooks = true;
    if hooks.contains_key("startContainer") {
        let m = json!({"destination": HOOK_LOG_IN_CONTAINER, "type": "bind", "source": "@RUN@/hooks", "options": ["rbind", "rw"]});
        if let Some(a) = config["mounts"].as_array_mut() {
            a.push(m);
        }
    }
    case.tag(format!(
        "hooks:{}",
        hooks.keys().cloned().collect::<Vec<_>>().join(",")
    ));
    config["hooks"] = Value::Object(hooks);
}
