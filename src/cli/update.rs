//! `update`'s flags (runc's, one per resource, or `--resources FILE|-` with a JSON
//! LinuxResources as containerd and podman send it) and the value syntaxes the flags share
//! with runc: memory sizes as docker/go-units reads them, Go durations for `events`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// JSON LinuxResources to apply, from FILE or from standard input with "-"; the other
    /// flags are then ignored
    #[arg(short = 'r', long, value_name = "FILE|-")]
    pub resources: Option<PathBuf>,
    /// Block IO weight (10 to 1000)
    #[arg(long, value_name = "N")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period in microseconds (0: the kernel's default)
    #[arg(long, value_name = "USEC")]
    pub cpu_period: Option<String>,
    /// CPU CFS quota in microseconds per period (-1: no limit)
    #[arg(long, value_name = "USEC")]
    pub cpu_quota: Option<String>,
    /// CPU CFS burst in microseconds
    #[arg(long, value_name = "USEC")]
    pub cpu_burst: Option<String>,
    /// CPU shares (relative weight; converted to cpu.weight)
    #[arg(long, value_name = "N")]
    pub cpu_share: Option<String>,
    /// CPU realtime period (cgroup v1 only: refused)
    #[arg(long, value_name = "USEC")]
    pub cpu_rt_period: Option<String>,
    /// CPU realtime runtime (cgroup v1 only: refused)
    #[arg(long, value_name = "USEC")]
    pub cpu_rt_runtime: Option<String>,
    /// CPUs the container may run on (e.g. 0-2,4)
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may allocate from
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Obsolete, ignored
    #[arg(long, hide = true)]
    pub kernel_memory: Option<String>,
    /// Obsolete, ignored
    #[arg(long, hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit (bytes, or with a unit: 64m, 1g; -1: no limit)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// SCHED_IDLE for the cgroup: 1, or 0 for the default
    #[arg(long, value_name = "0|1")]
    pub cpu_idle: Option<String>,
    /// Memory reservation, the soft limit (memory.low)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Total memory + swap limit (-1: unlimited swap)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of processes (-1: no limit)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT L3 cache schema (not supported)
    #[arg(long, value_name = "SCHEMA")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported)
    #[arg(long, value_name = "SCHEMA")]
    pub mem_bw_schema: Option<String>,
    /// Container id
    pub id: String,
}

/// The LinuxResources an `update` asks for.
pub fn requested(a: &UpdateArgs) -> Result<LinuxResources> {
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        bail!("--l3-cache-schema, --mem-bw-schema: Intel RDT is not supported by skiff");
    }
    if let Some(src) = &a.resources {
        let text = if src.as_os_str() == "-" {
            crate::host::read_limited_from(std::io::stdin().lock(), "standard input")
        } else {
            crate::host::read_limited(src)
        }
        .context("--resources")?;
        crate::bundle::check_depth(&text).context("--resources")?;
        // runc reads the file with Go's case-insensitive field matching ("CPU": {"Cpus"}).
        let mut value: Value = serde_json::from_slice(&text)
            .map_err(|e| anyhow::anyhow!("--resources: invalid JSON: {e}"))?;
        crate::cgroups::keys::canonicalize(&mut value);
        return serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            anyhow::anyhow!("--resources: {path}: {}", e.into_inner())
        });
    }
    let mut memory = Map::new();
    let mut cpu = Map::new();
    let uint = |flag: &str, v: &str| -> Result<Value> {
        v.parse::<u64>()
            .map(Value::from)
            .with_context(|| format!("invalid value for --{flag}: {v:?}"))
    };
    let int = |flag: &str, v: &str| -> Result<Value> {
        v.parse::<i64>()
            .map(Value::from)
            .with_context(|| format!("invalid value for --{flag}: {v:?}"))
    };
    for (flag, key, v) in [
        ("cpu-period", "period", &a.cpu_period),
        ("cpu-burst", "burst", &a.cpu_burst),
        ("cpu-share", "shares", &a.cpu_share),
        ("cpu-rt-period", "realtimePeriod", &a.cpu_rt_period),
    ] {
        if let Some(v) = v {
            cpu.insert(key.into(), uint(flag, v)?);
        }
    }
    for (flag, key, v) in [
        ("cpu-quota", "quota", &a.cpu_quota),
        ("cpu-rt-runtime", "realtimeRuntime", &a.cpu_rt_runtime),
        ("cpu-idle", "idle", &a.cpu_idle),
    ] {
        if let Some(v) = v {
            cpu.insert(key.into(), int(flag, v)?);
        }
    }
    for (key, v) in [("cpus", &a.cpuset_cpus), ("mems", &a.cpuset_mems)] {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            cpu.insert(key.into(), v.as_str().into());
        }
    }
    for (flag, key, v) in [
        ("memory", "limit", &a.memory),
        ("memory-swap", "swap", &a.memory_swap),
        ("memory-reservation", "reservation", &a.memory_reservation),
    ] {
        if let Some(v) = v {
            let bytes = if v == "-1" {
                -1
            } else {
                ram_in_bytes(v).with_context(|| format!("invalid value for --{flag}"))?
            };
            memory.insert(key.into(), bytes.into());
        }
    }
    for (flag, v) in [
        ("kernel-memory", &a.kernel_memory),
        ("kernel-memory-tcp", &a.kernel_memory_tcp),
    ] {
        if v.is_some() {
            crate::logging::warn(&format!("--{flag} is ignored (obsolete)"));
        }
    }
    let mut r = Map::new();
    if !memory.is_empty() {
        r.insert("memory".into(), memory.into());
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), cpu.into());
    }
    if let Some(w) = a.blkio_weight.filter(|&w| w != 0) {
        r.insert("blockIO".into(), json!({ "weight": w }));
    }
    if let Some(l) = a.pids_limit {
        r.insert("pids".into(), json!({ "limit": l }));
    }
    Ok(serde_json::from_value(Value::Object(r))?)
}

/// A memory size as docker/go-units' RAMInBytes reads it: a number with an optional
/// binary unit (k, m, g, t, p; optionally followed by "i" and/or "b"; any case).
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, mut unit) = t.split_at(num_end);
    unit = unit.strip_prefix(' ').unwrap_or(unit);
    let value: f64 = match num.parse() {
        Ok(v) if !num.starts_with('.') => v,
        _ => bail!("invalid size {s:?}: expected a number with an optional unit (k, m, g, t, p)"),
    };
    let lower = unit.to_ascii_lowercase();
    let mut rest = lower.as_str();
    let mut mult: f64 = 1.0;
    if let Some(i) = "kmgtp".find(rest.chars().next().unwrap_or(' ')) {
        mult = 1024f64.powi(i as i32 + 1);
        rest = &rest[1..];
    }
    rest = rest.strip_prefix('i').unwrap_or(rest);
    rest = rest.strip_prefix('b').unwrap_or(rest);
    if !rest.is_empty() {
        bail!("invalid size {s:?}: expected a number with an optional unit (k, m, g, t, p)");
    }
    Ok((value * mult) as i64)
}

/// A Go duration ("5s", "1m30s", "250ms", "1.5h"), as `events --interval` takes it.
pub fn parse_duration(s: &str) -> Result<Duration> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        bail!("duration interval must be greater than 0");
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        bail!("invalid duration {s:?}");
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n]
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid duration {s:?}"))?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => bail!("invalid duration {s:?}: missing unit"),
            unit => bail!("invalid duration {s:?}: unknown unit {unit:?}"),
        };
        rest = &rest[u..];
        total += value * secs;
    }
    // A value no Duration can hold (or 400 digits of hours) is refused, not a panic.
    Duration::try_from_secs_f64(total)
        .map_err(|_| anyhow::anyhow!("invalid duration {s:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_read_like_go_units() {
        assert_eq!(ram_in_bytes("1024").unwrap(), 1024);
        assert_eq!(ram_in_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("64MB").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("1GiB").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1.5k").unwrap(), 1536);
        assert_eq!(ram_in_bytes("10 k").unwrap(), 10240);
        for bad in ["", "m", "12x", "1.2.3", "-5"] {
            let e = ram_in_bytes(bad).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("invalid size {bad:?}: expected a number")),
                "{e}"
            );
        }
    }

    #[test]
    fn durations_read_like_go() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        let huge = format!("{}h", "9".repeat(400));
        for (bad, want) in [
            ("", "invalid duration \"\""),
            ("5", "missing unit"),
            ("5x", "unknown unit \"x\""),
            ("s", "invalid duration \"s\""),
            ("-1s", "must be greater than 0"),
            ("99999999999999999999h", "too large"),
            (&huge, "too large"),
        ] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
