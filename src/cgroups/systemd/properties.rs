//! The unit properties for a resources plan: every limit systemd has a property for, taken
//! from the same [`Plan`] the cgroup files are written from, so that what systemd re-applies
//! (after `daemon-reload`, a re-exec, a `set-property`) is what the files already say.
//! Limits systemd has no property for stay file writes only; the device rules stay skiff's
//! BPF program (no `DevicePolicy`/`DeviceAllow`: systemd would attach a program of its own).

use anyhow::{Context, Result};

use super::wire::Value;
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

/// The properties for `plan`'s writes.
pub fn from_plan(plan: &Plan) -> Result<Vec<Property>> {
    let mut out = vec![];
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
        from_plan(&plan).unwrap()
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
}
