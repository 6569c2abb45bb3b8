//! The contract: every deliberate difference between skiff and runc, from contract.json
//! (next to this crate). A difference the harness finds is explained when an entry's
//! condition holds for the config, the field matches one of the entry's patterns and, for
//! an entry that names a value check, the two values differ only as that check allows;
//! anything else fails the run. The README's "Differences from runc" table is generated
//! from the same file and checked against it.

use crate::gen::Case;
use serde_json::Value;
use std::fs;

pub struct Entry {
    pub id: String,
    pub summary: String,
    pub reason: String,
    pub when: String,
    pub fields: Vec<String>,
    /// A value check (see VALUE_CHECKS): the difference itself must be the one described.
    pub values: Option<String>,
}

/// The conditions an entry may name, each a predicate over the generated config.
const CONDITIONS: [(&str, &str); 27] = [
    ("always", "any config"),
    ("no-mount-namespace", "the config has no mount namespace"),
    ("cgroup-v1-host", "the host is not a pure cgroup v2 host"),
    ("cpu-shares", "the config sets linux.resources.cpu.shares"),
    ("populated-cgroup", "linux.cgroupsPath names an existing cgroup that holds processes"),
    ("device-access-letters", "a linux.resources.devices rule has access letters other than r, w, m"),
    ("explicit-deny-of-default-device", "after its last `type: a` device rule the config denies a default device (1:3, 1:5, 1:7, 1:8, 1:9, 5:0, 5:2, 136:*) or mknod"),
    ("time-namespace", "the config has a time namespace"),
    ("id-maps-without-userns", "linux.uidMappings or gidMappings without a user namespace"),
    ("cpu-burst", "the config sets linux.resources.cpu.burst"),
    ("cgroup-v1-only-resource", "the config sets memory.swappiness, memory.disableOOMKiller: true, cpu.realtimeRuntime/realtimePeriod, a blockIO leafWeight or network"),
    ("no-nofile-rlimit", "process.rlimits does not set RLIMIT_NOFILE"),
    ("domainname", "the config sets domainname"),
    ("poststart-hooks", "the config has poststart hooks"),
    ("new-user-namespace", "the config creates a user namespace"),
    ("joined-user-namespace", "the config joins a user namespace by path"),
    ("user-namespace-with-bind", "the config creates a user namespace and has a bind mount"),
    ("hugepage-limits", "the config sets linux.resources.hugepageLimits"),
    ("cgroup-mount-without-cgroup-namespace", "a cgroup mount, and no cgroup namespace (new or joined)"),
    ("rootfs-propagation-unbindable", "linux.rootfsPropagation is unbindable or runbindable"),
    ("tmpcopyup", "a tmpfs mount with the tmpcopyup option"),
    ("preserve-fds-gap", "--preserve-fds N while the caller has fewer than N fds open from 3 on"),
    ("dev-null-in-devices", "linux.devices lists /dev/null"),
    ("no-proc-mount", "no proc mount at /proc"),
    ("rootfs-propagation-on-root", "linux.rootfsPropagation is shared, rshared, private, unbindable or runbindable"),
    ("unknown-capability", "a process.capabilities list names a capability the kernel does not know"),
    ("cpu-idle", "the config sets linux.resources.cpu.idle to a value other than 0"),
];

/// Value checks an entry may name: predicates over (config, field, runc's value, skiff's).
const VALUE_CHECKS: [(&str, &str); 1] = [(
    "root-propagation-only",
    "and the mount entries differ only in their propagation: `/` is private under runc and shared (a peer group of its own) or unbindable under skiff, as rootfsPropagation says; under shared/rshared a masked or read-only path mounted later is private under runc and in a peer group of its own under skiff",
)];

pub fn load(path: &str) -> Result<Vec<Entry>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let list = v["differences"]
        .as_array()
        .ok_or_else(|| format!("{path}: differences: expected an array"))?;
    let mut out = vec![];
    for (i, e) in list.iter().enumerate() {
        let s = |k: &str| {
            e[k].as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{path}: differences[{i}].{k}: expected a string"))
        };
        let entry = Entry {
            id: s("id")?,
            summary: s("summary")?,
            reason: s("reason")?,
            when: s("when")?,
            fields: e["fields"]
                .as_array()
                .ok_or_else(|| {
                    format!("{path}: differences[{i}].fields: expected an array of field patterns")
                })?
                .iter()
                .map(|f| {
                    f.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("{path}: differences[{i}].fields: expected strings"))
                })
                .collect::<Result<_, _>>()?,
            values: match &e["values"] {
                Value::Null => None,
                Value::String(v) => Some(v.clone()),
                _ => {
                    return Err(format!(
                        "{path}: differences[{i}].values: expected a string"
                    ))
                }
            },
        };
        if let Some(v) = &entry.values {
            if !VALUE_CHECKS.iter().any(|(c, _)| c == v) {
                let known: Vec<&str> = VALUE_CHECKS.iter().map(|(c, _)| *c).collect();
                return Err(format!(
                    "{path}: differences[{i}].values: unknown value check {v:?} (known: {})",
                    known.join(", ")
                ));
            }
        }
        if !CONDITIONS.iter().any(|(c, _)| *c == entry.when) {
            let known: Vec<&str> = CONDITIONS.iter().map(|(c, _)| *c).collect();
            return Err(format!(
                "{path}: differences[{i}].when: unknown condition {:?} (known: {})",
                entry.when,
                known.join(", ")
            ));
        }
        out.push(entry);
    }
    Ok(out)
}

fn is_cgroup2_host() -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(" /sys/fs/cgroup ") && l.contains(" - cgroup2 "))
}

pub fn holds(when: &str, case: &Case) -> bool {
    let c = &case.config;
    match when {
        "always" => true,
        "no-mount-namespace" => !c["linux"]["namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["type"] == "mount"),
        "cgroup-v1-host" => !is_cgroup2_host(),
        "cpu-shares" => c.pointer("/linux/resources/cpu/shares").is_some(),
        "populated-cgroup" => matches!(case.host.precreated_cgroup, Some((_, true))),
        "device-access-letters" => c
            .pointer("/linux/resources/devices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|r| {
                r["access"]
                    .as_str()
                    .unwrap_or("")
                    .chars()
                    .any(|ch| !"rwm".contains(ch))
            }),
        "time-namespace" => c["linux"]["namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["type"] == "time"),
        "id-maps-without-userns" => {
            let l = &c["linux"];
            let maps = ["uidMappings", "gidMappings"]
                .iter()
                .any(|k| l[*k].as_array().is_some_and(|a| !a.is_empty()));
            maps && !l["namespaces"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|n| n["type"] == "user")
        }
        "explicit-deny-of-default-device" => explicit_deny_of_default_device(c),
        "cpu-burst" => c.pointer("/linux/resources/cpu/burst").is_some(),
        "rootfs-propagation-on-root" => matches!(
            c["linux"]["rootfsPropagation"].as_str(),
            Some("shared" | "rshared" | "private" | "unbindable" | "runbindable")
        ),
        "unknown-capability" => [
            "bounding",
            "effective",
            "inheritable",
            "permitted",
            "ambient",
        ]
        .iter()
        .flat_map(|k| {
            c["process"]["capabilities"][*k]
                .as_array()
                .into_iter()
                .flatten()
        })
        .any(|n| n.as_str().is_some_and(|n| !KNOWN_CAPS.contains(&n))),
        "cpu-idle" => c
            .pointer("/linux/resources/cpu/idle")
            .and_then(Value::as_i64)
            .is_some_and(|i| i != 0),
        "cgroup-v1-only-resource" => {
            let r = &c["linux"]["resources"];
            r.pointer("/memory/swappiness").is_some()
                || r.pointer("/memory/disableOOMKiller") == Some(&Value::Bool(true))
                || r.pointer("/cpu/realtimeRuntime").is_some()
                || r.pointer("/cpu/realtimePeriod").is_some()
                || r.pointer("/blockIO/leafWeight").is_some()
                || r.pointer("/blockIO/weightDevice")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|d| d.get("leafWeight").is_some())
                || r.get("network").is_some()
        }
        "no-nofile-rlimit" => !c["process"]["rlimits"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["type"] == "RLIMIT_NOFILE"),
        "domainname" => c["domainname"].as_str().is_some_and(|d| !d.is_empty()),
        "poststart-hooks" => c
            .pointer("/hooks/poststart")
            .and_then(Value::as_array)
            .is_some_and(|h| !h.is_empty()),
        "new-user-namespace" => namespace(c, "user").is_some_and(|n| !has_path(n)),
        "joined-user-namespace" => namespace(c, "user").is_some_and(has_path),
        "user-namespace-with-bind" => {
            namespace(c, "user").is_some_and(|n| !has_path(n))
                && mounts(c).any(|m| {
                    m["type"] == "bind"
                        || m["options"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|o| o == "bind" || o == "rbind")
                })
        }
        "hugepage-limits" => c
            .pointer("/linux/resources/hugepageLimits")
            .and_then(Value::as_array)
            .is_some_and(|h| !h.is_empty()),
        "cgroup-mount-without-cgroup-namespace" => {
            namespace(c, "cgroup").is_none()
                && mounts(c).any(|m| m["type"] == "cgroup" || m["type"] == "cgroup2")
        }
        "rootfs-propagation-unbindable" => c["linux"]["rootfsPropagation"]
            .as_str()
            .is_some_and(|p| p.ends_with("unbindable")),
        "tmpcopyup" => mounts(c).any(|m| {
            m["options"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o == "tmpcopyup")
        }),
        "preserve-fds-gap" => case.preserve_given < case.preserve_fds,
        "dev-null-in-devices" => c
            .pointer("/linux/devices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|d| d["path"] == "/dev/null"),
        "no-proc-mount" => !mounts(c).any(|m| m["type"] == "proc" && m["destination"] == "/proc"),
        _ => false,
    }
}

fn namespace<'a>(c: &'a Value, typ: &str) -> Option<&'a Value> {
    c["linux"]["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["type"] == typ)
}

fn has_path(n: &Value) -> bool {
    n["path"].as_str().is_some_and(|p| !p.is_empty())
}

fn mounts(c: &Value) -> impl Iterator<Item = &Value> {
    c["mounts"].as_array().into_iter().flatten()
}

/// Whether a device rule after the last `type: a` rule denies something runc allows every
/// container whatever the config says (it appends those rules after the config's).
/// capabilities(7) as of Linux 6.x.
const KNOWN_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

fn explicit_deny_of_default_device(c: &Value) -> bool {
    const DEFAULTS: [(i64, i64); 8] = [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 2),
        (136, -1),
    ];
    let rules: Vec<&Value> = c
        .pointer("/linux/resources/devices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let is_all = |r: &Value| {
        r.get("type")
            .and_then(Value::as_str)
            .is_none_or(|t| t == "a")
    };
    let start = rules
        .iter()
        .rposition(|r| is_all(r))
        .map(|i| i + 1)
        .unwrap_or(0);
    rules[start..]
        .iter()
        .filter(|r| r["allow"] == Value::Bool(false))
        .any(|r| {
            let wild = |v: &Value| v.as_i64().is_none_or(|n| n < 0);
            r["access"].as_str().unwrap_or("").contains('m')
                || (r["type"] == "c"
                    && DEFAULTS.iter().any(|(maj, min)| {
                        (wild(&r["major"]) || r["major"].as_i64() == Some(*maj))
                            && (wild(&r["minor"]) || *min < 0 || r["minor"].as_i64() == Some(*min))
                    }))
        })
}

/// A field pattern: `*` stands for any run of characters (`hooks.records:poststart#*/env`).
fn matches(pattern: &str, field: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = field.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// `prop=…` of one mount table entry (outside::mount_table), and the entry without it.
fn split_prop(entry: &str) -> (&str, String) {
    let prop = entry
        .split(' ')
        .find_map(|t| t.strip_prefix("prop="))
        .unwrap_or("");
    let rest = entry
        .split(' ')
        .filter(|t| !t.starts_with("prop="))
        .collect::<Vec<_>>()
        .join(" ");
    (prop, rest)
}

/// `root-propagation-only`: skiff applies rootfsPropagation to `/` after pivot_root (not
/// recursively), runc 1.1.5 leaves `/` private. The stacked entries at the field's mount
/// point must be the same but for `prop=`, and each one that differs must be `/`, private
/// → shared in a group of its own (`ctr(/)`) or unbindable as rootfsPropagation asks; or,
/// under shared/rshared, a masked or read-only path (mounted after `/` became shared),
/// private → a group of its own.
fn root_propagation_only(case: &Case, field: &str, a: Option<&Value>, b: Option<&Value>) -> bool {
    let c = &case.config["linux"];
    let kind = match c["rootfsPropagation"].as_str() {
        Some("shared" | "rshared") => "shared",
        Some("private") => "private",
        Some("unbindable" | "runbindable") => "unbindable",
        _ => return false,
    };
    let (Some(point), Some(a), Some(b)) = (
        field.strip_prefix("outside.mounts:"),
        a.and_then(Value::as_array),
        b.and_then(Value::as_array),
    ) else {
        return false;
    };
    let listed = ["maskedPaths", "readonlyPaths"]
        .iter()
        .flat_map(|k| c[*k].as_array().into_iter().flatten())
        .any(|p| p.as_str() == Some(point));
    let group = format!("shared:ctr({point})");
    let wanted = |prop: &str| match (point == "/", kind) {
        (true, "unbindable") => prop == "unbindable",
        (true, "private") => prop == "private",
        (true, _) => prop == group,
        (false, "shared") => listed && prop == group,
        _ => false,
    };
    // runc leaves `/` as the tree made it: private, or (in a user namespace, whose mount
    // namespace holds slaves of shared mounts) a slave of the host.
    let runcs_root = |prop: &str| {
        point == "/"
            && (prop == "private" || prop.split(',').all(|t| t.starts_with("master:host(")))
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            let (Some(x), Some(y)) = (x.as_str(), y.as_str()) else {
                return false;
            };
            let ((px, rx), (py, ry)) = (split_prop(x), split_prop(y));
            rx == ry && (px == py || ((px == "private" || runcs_root(px)) && wanted(py)))
        })
}

fn values_agree(
    check: &str,
    case: &Case,
    field: &str,
    a: Option<&Value>,
    b: Option<&Value>,
) -> bool {
    match check {
        "root-propagation-only" => root_propagation_only(case, field, a, b),
        _ => false,
    }
}

/// The id of the entry that explains a difference in `field` (runc's value `a`, skiff's
/// `b`) for this config.
pub fn explain<'a>(
    entries: &'a [Entry],
    case: &Case,
    field: &str,
    a: Option<&Value>,
    b: Option<&Value>,
) -> Option<&'a str> {
    entries
        .iter()
        .find(|e| {
            e.fields.iter().any(|f| matches(f, field))
                && holds(&e.when, case)
                && e.values
                    .as_ref()
                    .is_none_or(|v| values_agree(v, case, field, a, b))
        })
        .map(|e| e.id.as_str())
}

pub const BEGIN: &str = "<!-- differences-from-runc: generated from integration/differential/contract.json by `integration/differential/run --update-readme`; edit the JSON, not this table -->";
pub const END: &str = "<!-- end differences-from-runc -->";

pub fn markdown(entries: &[Entry]) -> String {
    let mut s = String::from(
        "| difference | why | when (harness condition) | fields | id |\n|---|---|---|---|---|\n",
    );
    for e in entries {
        let mut cond = CONDITIONS
            .iter()
            .find(|(c, _)| *c == e.when)
            .map(|(_, d)| d.to_string())
            .unwrap_or_default();
        if let Some((_, d)) = VALUE_CHECKS
            .iter()
            .find(|(c, _)| Some(*c) == e.values.as_deref())
        {
            cond = format!("{cond}, {d}");
        }
        let fields: Vec<String> = e.fields.iter().map(|f| format!("`{f}`")).collect();
        s.push_str(&format!(
            "| {} | {} | {} | {} | `{}` |\n",
            e.summary,
            e.reason,
            cond,
            fields.join(", "),
            e.id
        ));
    }
    s
}

/// The README's table must be exactly what contract.json generates.
pub fn check_readme(entries: &[Entry], readme: &str) -> Result<(), String> {
    let text = fs::read_to_string(readme).map_err(|e| format!("{readme}: {e}"))?;
    let start = text.find(BEGIN).ok_or_else(|| {
        format!("{readme}: no generated \"Differences from runc\" table (marker {BEGIN})")
    })?;
    let body_start = start + BEGIN.len();
    let end = text[body_start..]
        .find(END)
        .ok_or_else(|| format!("{readme}: the generated table has no end marker {END}"))?
        + body_start;
    let want = markdown(entries);
    if text[body_start..end].trim() != want.trim() {
        return Err(format!(
            "{readme}: the \"Differences from runc\" table does not match integration/differential/contract.json; \
             regenerate it with `integration/differential/run --update-readme`"
        ));
    }
    Ok(())
}

/// Rewrite the README's table from the contract (between the markers).
pub fn update_readme(entries: &[Entry], readme: &str) -> Result<(), String> {
    let text = fs::read_to_string(readme).map_err(|e| format!("{readme}: {e}"))?;
    let start = text
        .find(BEGIN)
        .ok_or_else(|| format!("{readme}: no marker {BEGIN}"))?;
    let end = text[start..]
        .find(END)
        .ok_or_else(|| format!("{readme}: no marker {END}"))?
        + start;
    let new = format!(
        "{}{BEGIN}\n{}{}",
        &text[..start],
        markdown(entries),
        &text[end..]
    );
    fs::write(readme, new).map_err(|e| format!("{readme}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_patterns_take_stars_anywhere() {
        assert!(matches(
            "hooks.records:poststart#*/stdin.status",
            "hooks.records:poststart#1/stdin.status"
        ));
        assert!(!matches(
            "hooks.records:poststart#*/stdin.status",
            "hooks.records:poststart#1/env"
        ));
        assert!(matches(
            "outside.mounts:/mnt/cg*",
            "outside.mounts:/mnt/cg3"
        ));
        assert!(matches("create", "create"));
        assert!(!matches("create", "created"));
        assert!(matches(
            "outside.cgroup.files:hugetlb.*.rsvd.max",
            "outside.cgroup.files:hugetlb.2MB.rsvd.max"
        ));
    }

    fn path(rel: &str) -> String {
        format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn the_readme_table_is_the_one_contract_json_generates() {
        let entries = load(&path("contract.json")).expect("contract.json loads");
        assert!(entries.len() >= 5);
        check_readme(&entries, &path("../../README.md"))
            .expect("README in sync with contract.json");
    }

    #[test]
    fn an_explicit_deny_after_the_last_all_rule_is_told_apart() {
        let case = |rules: Value| serde_json::json!({"linux": {"resources": {"devices": rules}}});
        let deny_all = serde_json::json!({"allow": false, "access": "rwm"});
        let allow_null = serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"});
        let deny_null = serde_json::json!({"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rw"});
        let deny_tun = serde_json::json!({"allow": false, "type": "c", "major": 10, "minor": 200, "access": "rw"});
        let deny_pts =
            serde_json::json!({"allow": false, "type": "c", "major": 136, "access": "r"});
        let deny_mknod =
            serde_json::json!({"allow": false, "type": "b", "major": 7, "minor": 0, "access": "m"});
        assert!(!explicit_deny_of_default_device(&case(serde_json::json!(
            [deny_all, allow_null]
        ))));
        assert!(!explicit_deny_of_default_device(&case(serde_json::json!(
            [deny_tun]
        ))));
        assert!(!explicit_deny_of_default_device(&case(serde_json::json!(
            [deny_null, deny_all]
        ))));
        assert!(explicit_deny_of_default_device(&case(serde_json::json!([
            deny_all, deny_null
        ]))));
        assert!(explicit_deny_of_default_device(&case(serde_json::json!([
            deny_pts
        ]))));
        assert!(explicit_deny_of_default_device(&case(serde_json::json!([
            deny_mknod
        ]))));
    }

    #[test]
    fn only_the_root_propagation_difference_is_explained_by_its_entry() {
        let entries = load(&path("contract.json")).expect("contract.json loads");
        let mut case = crate::gen::matrix::case(0);
        let entry = |prop: &str, under: &str| {
            serde_json::json!([format!(
                "tmpfs tmpfs root=/x opts=rw super=rw prop={prop} under={under}"
            )])
        };
        let ex = |case: &Case, field: &str, a: &Value, b: &Value| {
            explain(&entries, case, field, Some(a), Some(b))
        };
        let root = "outside.mounts:/";
        let private = entry("private", "(outside)");
        let shared = entry("shared:ctr(/)", "(outside)");
        // rootfsPropagation unset: nothing explained.
        assert_eq!(ex(&case, root, &private, &shared), None);
        case.config["linux"]["rootfsPropagation"] = serde_json::json!("rshared");
        assert_eq!(
            ex(&case, root, &private, &shared),
            Some("rootfs-propagation-on-root")
        );
        // Anything else that differs, or another propagation, stays unexplained.
        let other = serde_json::json!([
            "tmpfs tmpfs root=/x opts=ro super=rw prop=shared:ctr(/) under=(outside)"
        ]);
        assert_eq!(ex(&case, root, &private, &other), None);
        assert_eq!(
            ex(&case, root, &private, &entry("unbindable", "(outside)")),
            None
        );
        assert_eq!(
            ex(
                &case,
                root,
                &private,
                &entry("shared:host(/tmp)", "(outside)")
            ),
            None
        );
        // A masked path on the shared root: explained; a volume: not.
        let secret = "outside.mounts:/etc/secret";
        let (p, s) = (entry("private", "/"), entry("shared:ctr(/etc/secret)", "/"));
        assert_eq!(
            ex(&case, secret, &p, &s),
            Some("rootfs-propagation-on-root")
        );
        let vol = "outside.mounts:/mnt/pv-none";
        let s = entry("shared:ctr(/mnt/pv-none)", "/");
        assert_eq!(ex(&case, vol, &p, &s), None);
        case.config["linux"]["rootfsPropagation"] = serde_json::json!("unbindable");
        assert_eq!(
            ex(&case, root, &private, &entry("unbindable", "(outside)")),
            Some("rootfs-propagation-on-root")
        );
        assert_eq!(ex(&case, root, &private, &shared), None);
    }

    #[test]
    fn a_difference_is_explained_only_under_its_condition_and_for_its_fields() {
        let entries = load(&path("contract.json")).expect("contract.json loads");
        let mut with = crate::gen::generate(1, 0);
        with.config["linux"]["resources"] = serde_json::json!({"cpu": {"shares": 1024}});
        let mut without = crate::gen::generate(1, 0);
        without.config["linux"]["resources"] = serde_json::json!({});
        let ex = |case, field| explain(&entries, case, field, None, None);
        assert!(ex(&with, "outside.cgroup.files:cpu.weight").is_some());
        assert_eq!(ex(&with, "inside.cwd"), None);
        // On a hybrid host (the development machine) cgroup-v2-only explains every cgroup
        // field; the harness itself runs in the pure cgroup v2 guest.
        if is_cgroup2_host() {
            assert_eq!(
                ex(&with, "outside.cgroup.files:cpu.weight"),
                Some("cpu-shares-quadratic")
            );
            assert_eq!(ex(&without, "outside.cgroup.files:cpu.weight"), None);
            assert_eq!(ex(&with, "outside.cgroup.files:cpu.max"), None);
        }
    }
}
