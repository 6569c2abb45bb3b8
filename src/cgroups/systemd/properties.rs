//! The unit properties for a resources plan: every limit systemd has a property for, taken
//! from the same [`Plan`] the cgroup files are written from, so that what systemd re-applies
//! (after `daemon-reload`, a re-exec, a `set-property`) is what the files already say.
//! Limits systemd has no property for stay file writes only.
//!
//! Device rules: systemd's `DevicePolicy=strict` + `DeviceAllow` make it attach a device
//! program of its own, which it re-attaches after a reload or re-exec. Its list can only
//! allow, so it gets a superset of what the rules allow (every allow rule, widened where
//! systemd has no exact form), and skiff's own program, attached beside it, enforces the
//! rules exactly (a device must pass both). Rules that allow everything give
//! `DevicePolicy=auto`.

use anyhow::{Context, Result};

use super::wire::Value;
use crate::cgroups::devices::{Kind, Rule, ACC_MKNOD, ACC_READ, ACC_WRITE};
use crate::cgroups::resources::Plan;

/// A unit property: `(name, value)`, sent as D-Bus `(sv)`.
pub type Property = (String, Value);

fn prop(name: &str, v: Value) -> Property {
    (name.to_string(), v)
}

/// `max` is systemd's "infinity" (u64::MAX).
fn limit(v: &str) -> Result<u64> {
    if v == "max" {
        return Ok(u64::MAX);
    }
    v.parse().with_context(|| format!("{v:?} is not a number"))
}

/// `cpu.max` ("QUOTA PERIOD" or "max PERIOD") as systemd's quota per second, rounded up to
/// whole percents of a CPU as runc does (systemd keeps the quota as a percentage), and the
/// period.
fn cpu_max(v: &str) -> Result<(u64, Option<u64>)> {
    let mut it = v.split_whitespace();
    let quota = it.next().unwrap_or("max");
    let period = it.next().map(limit).transpose()?;
    if quota == "max" {
        return Ok((u64::MAX, period));
    }
    let quota = limit(quota)?;
    let per = period.unwrap_or(100_000).max(1);
    let mut per_sec = quota.saturating_mul(1_000_000) / per;
    if per_sec % 10_000 != 0 {
        per_sec = (per_sec / 10_000 + 1) * 10_000;
    }
    Ok((per_sec, period))
}

/// A cpuset list ("0-3,8") as the bitmask systemd's AllowedCPUs/AllowedMemoryNodes take.
fn bitmask(list: &str) -> Result<Vec<u8>> {
    let mut bytes: Vec<u8> = vec![];
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let a: usize = a
            .parse()
            .with_context(|| format!("{list:?}: bad entry {part:?}"))?;
        let b: usize = b
            .parse()
            .with_context(|| format!("{list:?}: bad entry {part:?}"))?;
        anyhow::ensure!(a <= b && b < 65536, "{list:?}: bad range {part:?}");
        for i in a..=b {
            if bytes.len() <= i / 8 {
                bytes.resize(i / 8 + 1, 0);
            }
            bytes[i / 8] |= 1 << (i % 8);
        }
    }
    Ok(bytes)
}

/// A D-Bus byte array (`ay`).
fn bytes(b: Vec<u8>) -> Value {
    Value::Array("y".into(), b.into_iter().map(Value::Byte).collect())
}

/// `io.max`/`io.weight` device lines ("MAJ:MIN k=v ...") as systemd's `a(st)` device lists.
fn device_list(name: &str, v: &str, key: Option<&str>) -> Result<Option<Property>> {
    let mut entries = vec![];
    for line in v.lines() {
        let mut words = line.split_whitespace();
        let Some(dev) = words.next() else { continue };
        if dev == "default" {
            continue;
        }
        let value = match key {
            None => words.next(),
            Some(k) => words.find_map(|w| w.strip_prefix(k)?.strip_prefix('=')),
        };
        let Some(value) = value else { continue };
        entries.push(Value::Struct(vec![
            Value::str(format!("/dev/block/{dev}")),
            Value::U64(limit(value)?),
        ]));
    }
    Ok((!entries.is_empty()).then(|| prop(name, Value::Array("(st)".into(), entries))))
}

/// The first name `/proc/devices` (its text: `proc_devices`) gives the major in the section
/// for `kind` ("Character devices:" / "Block devices:").
fn major_name<'a>(proc_devices: &'a str, kind: &str, major: u32) -> Option<&'a str> {
    let header = if kind == "char" {
        "Character devices:"
    } else {
        "Block devices:"
    };
    proc_devices
        .split("\n\n")
        .find(|section| section.trim_start().starts_with(header))?
        .lines()
        .skip(1)
        .find_map(|l| {
            let (m, name) = l.trim().split_once(' ')?;
            (m.parse() == Ok(major)).then_some(name.trim())
        })
}

/// The `DeviceAllow` path for `major:minor` of `kind` ("char" or "block"): the node's
/// `/dev/<kind>/M:m`, the major's group `<kind>-<name>` for any minor, `<kind>-*` for any
/// major (and wherever systemd has no narrower form: a superset, see the module doc).
fn device_allow_path(kind: &str, r: &Rule, proc_devices: &str) -> String {
    match (r.major, r.minor) {
        (Some(ma), Some(mi)) => format!("/dev/{kind}/{ma}:{mi}"),
        (Some(ma), None) => match major_name(proc_devices, kind, ma) {
            // systemd matches the name as a glob; a name that is one is not used.
            Some(name) if !name.contains(['*', '?', '[']) => format!("{kind}-{name}"),
            _ => format!("{kind}-*"),
        },
        (None, _) => format!("{kind}-*"),
    }
}

/// `DevicePolicy` and `DeviceAllow` for the effective device rules (defaults included).
/// `DeviceAllow` is first sent empty: systemd adds entries to the list it has, and an empty
/// list resets it (so an update replaces the list).
pub fn devices(rules: &[Rule], proc_devices: &str) -> Vec<Property> {
    const ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;
    let mut allows: Vec<&Rule> = vec![];
    let mut everything = false;
    for r in rules {
        if r.kind == Kind::All && r.major.is_none() && r.minor.is_none() && r.access == ALL {
            // A full reset: nothing earlier matters any more.
            allows.clear();
            everything = r.allow;
        } else if r.allow && !everything {
            allows.push(r);
        }
    }
    let reset = prop("DeviceAllow", Value::Array("(ss)".into(), vec![]));
    if everything {
        return vec![prop("DevicePolicy", Value::str("auto")), reset];
    }
    let mut list: Vec<(String, u32)> = vec![];
    for r in allows {
        let kinds: &[&str] = match r.kind {
            Kind::Char => &["char"],
            Kind::Block => &["block"],
            Kind::All => &["char", "block"],
        };
        for kind in kinds {
            let path = device_allow_path(kind, r, proc_devices);
            // systemd replaces the access of a path it has: merge ours first.
            match list.iter_mut().find(|(p, _)| *p == path) {
                Some((_, acc)) => *acc |= r.access,
                None => list.push((path, r.access)),
            }
        }
    }
    let entries = list
        .into_iter()
        .map(|(path, acc)| {
            let perms: String = [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')]
                .iter()
                .filter(|(bit, _)| acc & bit != 0)
                .map(|(_, c)| c)
                .collect();
            Value::Struct(vec![Value::str(path), Value::str(perms)])
        })
        .collect();
    vec![
        prop("DevicePolicy", Value::str("strict")),
        reset,
        prop("DeviceAllow", Value::Array("(ss)".into(), entries)),
    ]
}

/// The properties for `plan`: its writes, and its device rules when it programs them
/// (`proc_devices`: the text of `/proc/devices`, for the names of majors).
pub fn from_plan(plan: &Plan, proc_devices: &str) -> Result<Vec<Property>> {
    let mut out = vec![];
    if let Some(rules) = &plan.devices {
        out.extend(devices(rules, proc_devices));
    }
    for w in &plan.writes {
        let v = w.value.trim();
        let ctx = || format!("{}: {} {:?} as a systemd property", w.field, w.file, v);
        let simple = |name: &str| -> Result<Property> { Ok(prop(name, Value::U64(limit(v)?))) };
        match w.file.as_str() {
            "memory.max" => out.push(simple("MemoryMax").with_context(ctx)?),
            "memory.low" => out.push(simple("MemoryLow").with_context(ctx)?),
            "memory.high" => out.push(simple("MemoryHigh").with_context(ctx)?),
            "memory.min" => out.push(simple("MemoryMin").with_context(ctx)?),
            "memory.swap.max" => out.push(simple("MemorySwapMax").with_context(ctx)?),
            "pids.max" => out.push(simple("TasksMax").with_context(ctx)?),
            "cpu.weight" => out.push(simple("CPUWeight").with_context(ctx)?),
            "cpu.max" => {
                let (per_sec, period) = cpu_max(v).with_context(ctx)?;
                out.push(prop("CPUQuotaPerSecUSec", Value::U64(per_sec)));
                if let Some(p) = period {
                    out.push(prop("CPUQuotaPeriodUSec", Value::U64(p)));
                }
            }
            "cpuset.cpus" => out.push(prop("AllowedCPUs", bytes(bitmask(v).with_context(ctx)?))),
            "cpuset.mems" => out.push(prop(
                "AllowedMemoryNodes",
                bytes(bitmask(v).with_context(ctx)?),
            )),
            "io.weight" | "io.bfq.weight" => {
                // systemd's IOWeight is io.weight's scale (1..10000), not BFQ's (10..1000).
                let v = match &w.fallback {
                    Some((f, fv)) if w.file == "io.bfq.weight" && f == "io.weight" => fv.trim(),
                    _ => v,
                };
                if let Some(d) = v
                    .strip_prefix("default ")
                    .or((!v.contains(':')).then_some(v))
                {
                    out.push(prop(
                        "IOWeight",
                        Value::U64(limit(d.trim()).with_context(ctx)?),
                    ));
                }
                out.extend(device_list("IODeviceWeight", v, None).with_context(ctx)?);
            }
            "io.max" => {
                for (name, key) in [
                    ("IOReadBandwidthMax", "rbps"),
                    ("IOWriteBandwidthMax", "wbps"),
                    ("IOReadIOPSMax", "riops"),
                    ("IOWriteIOPSMax", "wiops"),
                ] {
                    out.extend(device_list(name, v, Some(key)).with_context(ctx)?);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxResources;

    fn props(json: &str) -> Vec<Property> {
        let r: LinuxResources = serde_json::from_str(json).unwrap();
        let plan = crate::cgroups::resources::plan(&r, false, &[]).unwrap();
        from_plan(&plan, "").unwrap()
    }

    fn get<'a>(p: &'a [Property], name: &str) -> Option<&'a Value> {
        p.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    #[test]
    fn limits_become_the_properties_systemd_has() {
        let p = props(
            r#"{"memory":{"limit":67108864,"reservation":33554432,"swap":134217728},
                "pids":{"limit":42},
                "cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0-2,9","mems":"0"}}"#,
        );
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(67108864)));
        assert_eq!(get(&p, "MemoryLow"), Some(&Value::U64(33554432)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Value::U64(67108864)));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(42)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(100_000)));
        let weight = crate::cgroups::resources::cpu_weight(512);
        assert_eq!(get(&p, "CPUWeight"), Some(&Value::U64(weight)));
        assert_eq!(
            get(&p, "AllowedCPUs"),
            Some(&Value::Array(
                "y".into(),
                vec![Value::Byte(0b111), Value::Byte(0b10)]
            ))
        );
        assert_eq!(
            get(&p, "AllowedMemoryNodes"),
            Some(&Value::Array("y".into(), vec![Value::Byte(1)]))
        );
    }

    #[test]
    fn unlimited_is_infinity_and_a_fractional_percent_rounds_up() {
        let p = props(
            r#"{"memory":{"limit":-1},"pids":{"limit":-1},"cpu":{"quota":12345,"period":100000}}"#,
        );
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(130_000)));
    }

    #[test]
    fn io_limits_name_the_block_device() {
        let p = props(
            r#"{"blockIO":{"weight":300,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}]}}"#,
        );
        let weight = crate::cgroups::resources::io_weight(300);
        assert_eq!(get(&p, "IOWeight"), Some(&Value::U64(weight)));
        assert_eq!(
            get(&p, "IOReadBandwidthMax"),
            Some(&Value::Array(
                "(st)".into(),
                vec![Value::Struct(vec![
                    Value::str("/dev/block/8:0"),
                    Value::U64(1048576)
                ])]
            ))
        );
    }

    const PROC_DEVICES: &str = "Character devices:\n  1 mem\n  5 /dev/tty\n  5 /dev/console\n\
                                136 pts\n\nBlock devices:\n  7 loop\n  8 sd\n";

    fn allow_list(p: &[Property]) -> Vec<(String, String)> {
        let lists: Vec<_> = p.iter().filter(|(n, _)| n == "DeviceAllow").collect();
        let Some((_, Value::Array(_, entries))) = lists.last() else {
            panic!("no DeviceAllow in {p:?}")
        };
        entries
            .iter()
            .map(|e| match e {
                Value::Struct(f) => match (&f[0], &f[1]) {
                    (Value::Str(a), Value::Str(b)) => (a.clone(), b.clone()),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn device_props(json: &str) -> Vec<Property> {
        let r: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        let rules = crate::cgroups::devices::effective(
            crate::cgroups::devices::from_spec(&r).unwrap(),
            &[],
        );
        devices(&rules, PROC_DEVICES)
    }

    #[test]
    fn device_rules_become_a_strict_policy_with_a_superset_allow_list() {
        let p = device_props(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"b","major":8,"minor":0,"access":"rw"},
                {"allow":true,"type":"c","major":1,"access":"r"},
                {"allow":true,"type":"c","major":99,"access":"w"},
                {"allow":true,"type":"c","minor":3,"access":"r"},
                {"allow":false,"type":"c","major":1,"minor":5,"access":"rwm"}]"#,
        );
        assert_eq!(p[0], prop("DevicePolicy", Value::str("strict")));
        // The reset comes before the list.
        assert_eq!(
            p[1],
            prop("DeviceAllow", Value::Array("(ss)".into(), vec![]))
        );
        let l = allow_list(&p);
        let has = |path: &str, perms: &str| {
            assert!(
                l.contains(&(path.to_string(), perms.to_string())),
                "{path} {perms} not in {l:?}"
            )
        };
        has("/dev/block/8:0", "rw");
        has("char-mem", "r");
        // No name for major 99 and no form for "any major, minor 3": the group of all.
        // It also holds the defaults' mknod of any char device.
        has("char-*", "rwm");
        has("block-*", "m");
        has("/dev/char/1:3", "rwm");
        has("char-pts", "rwm");
        has("/dev/char/5:2", "rwm");
    }

    #[test]
    fn rules_allowing_everything_leave_the_policy_to_auto() {
        let p = device_props(r#"[{"allow":true,"access":"rwm"}]"#);
        assert_eq!(p[0], prop("DevicePolicy", Value::str("auto")));
        assert_eq!(p.len(), 2);
        // A deny of everything afterwards starts over.
        let p = device_props(r#"[{"allow":true,"access":"rwm"},{"allow":false,"access":"rwm"}]"#);
        assert_eq!(p[0], prop("DevicePolicy", Value::str("strict")));
    }

    #[test]
    fn a_major_is_named_from_its_section() {
        assert_eq!(major_name(PROC_DEVICES, "char", 5), Some("/dev/tty"));
        assert_eq!(major_name(PROC_DEVICES, "block", 8), Some("sd"));
        assert_eq!(major_name(PROC_DEVICES, "block", 1), None);
        assert_eq!(major_name(PROC_DEVICES, "char", 7), None);
    }
}
