//! `linux.resources` → the cgroup v2 interface files to write, as a pure function of the spec
//! (no file system access: [`super::apply`] does the writing and the kernel-dependent checks).
//!
//! Conversions from the spec's cgroup-v1-shaped values, chosen to match runc, which is what
//! clients compute their values for:
//! - `memory.swap` is memory+swap (v1's memsw); v2's memory.swap.max is swap alone, so it
//!   gets `swap - limit` (runc's ConvertMemorySwapToCgroupV2Value, including its special
//!   cases: limit -1 with no swap → swap max; swap == limit → swap 0).
//! - `cpu.shares` (2..262144, default 1024) → cpu.weight (1..10000, default 100) with the
//!   formula runc uses since 1.3 / opencontainers/cgroups 0.0.2 (runc PR #4785): a quadratic
//!   in log2(shares) through (2, 1), (1024, 100) and (262144, 10000),
//!   `weight = ceil(10^((l² + 125·l) / 612 − 7/34))` with `l = log2(shares)`. The older
//!   linear mapping `1 + (shares − 2) · 9999 / 262142` turned the default 1024 shares into
//!   weight 39, below the default 100 of every other cgroup (kubernetes #131216).
//! - `blockIO.weight` (10..1000) → io.bfq.weight as is when the BFQ scheduler provides it,
//!   else io.weight as `1 + (weight − 10) · 9999 / 990`.
//!
//! Values 0 mean "not set" where runc treats them so (memory, pids, cpu quota/period,
//! shares); -1 means "max".

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Context, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::devices;

/// One value for one interface file of the container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The spec field it comes from, as errors name it (`linux.resources.memory.limit`).
    pub field: String,
    pub file: String,
    pub value: String,
    /// Used instead when `file` does not exist (io.bfq.weight → io.weight).
    pub fallback: Option<(String, String)>,
    /// Skipped when the file does not exist (an optional companion file).
    pub if_exists: bool,
    /// On EINVAL, tried again after the other writes (cpu.max.burst vs a new cpu.max).
    pub retry_late: bool,
}

impl Write {
    fn new(field: impl Into<String>, file: impl Into<String>, value: impl Into<String>) -> Write {
        Write {
            field: field.into(),
            file: file.into(),
            value: value.into(),
            fallback: None,
            if_exists: false,
            retry_late: false,
        }
    }

    /// The controller that provides the file (`None` for the core `cgroup.*` files).
    pub fn controller(&self) -> Option<&str> {
        controller_of(&self.file)
    }
}

/// The controller of an interface file name (`memory.max` → `memory`).
pub fn controller_of(file: &str) -> Option<&str> {
    let c = file.split('.').next()?;
    (c != "cgroup").then_some(c)
}

/// Everything to do to a cgroup for a `linux.resources`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub writes: Vec<Write>,
    /// The device rules to program (already with the defaults), when they are to be set.
    pub devices: Option<Vec<devices::Rule>>,
    /// checkBeforeUpdate: (what, limit) pairs that must be above memory.current.
    pub check_usage: Vec<(&'static str, u64)>,
}

/// Files skiff itself drives; a `unified` entry may not write them.
const RESERVED: &[&str] = &[
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.kill",
    "cgroup.freeze",
    "cgroup.type",
];

/// The plan for `r`. `devices`: whether to program the device rules (always at create, as
/// runc does even for a spec without rules; on update only when the update lists rules).
/// `created` are the `linux.devices` paths (see [`devices::effective`]).
pub fn plan(r: &LinuxResources, program_devices: bool, created: &[&str]) -> Result<Plan> {
    let mut p = Plan::default();
    if let Some(m) = r.memory() {
        memory(m, &mut p)?;
    }
    if let Some(c) = r.cpu() {
        cpu(c, &mut p)?;
    }
    if let Some(pids) = r.pids() {
        if let Some(v) = limit_str(pids.limit(), "linux.resources.pids.limit")? {
            p.writes
                .push(Write::new("linux.resources.pids.limit", "pids.max", v));
        }
    }
    if let Some(b) = r.block_io() {
        block_io(b, &mut p)?;
    }
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let field = format!("linux.resources.hugepageLimits[{i}]");
        let size = h.page_size();
        ensure!(
            valid_page_size(size),
            "{field}.pageSize: {size:?} is not a page size like \"2MB\" or \"1GB\""
        );
        ensure!(h.limit() >= 0, "{field}.limit: {} is negative", h.limit());
        let limit = h.limit().to_string();
        p.writes
            .push(Write::new(&field, format!("hugetlb.{size}.max"), &limit));
        p.writes.push(Write {
            if_exists: true,
            ..Write::new(&field, format!("hugetlb.{size}.rsvd.max"), &limit)
        });
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|v| !v.is_empty()) {
            bail!(
                "linux.resources.network: classID and priorities need the net_cls and net_prio \
                 controllers, which exist only in cgroup v1; skiff uses cgroup v2 only"
            );
        }
    }
    let rdma: BTreeMap<_, _> = r.rdma().iter().flatten().collect();
    for (dev, l) in rdma {
        let field = format!("linux.resources.rdma[{dev:?}]");
        ensure!(
            !dev.is_empty() && !dev.contains(char::is_whitespace),
            "{field}: not a device name"
        );
        let mut v = dev.clone();
        if let Some(h) = l.hca_handles() {
            v += &format!(" hca_handle={h}");
        }
        if let Some(o) = l.hca_objects() {
            v += &format!(" hca_object={o}");
        }
        if v.len() > dev.len() {
            p.writes.push(Write::new(field, "rdma.max", v));
        }
    }
    let unified: BTreeMap<_, _> = r.unified().iter().flatten().collect();
    for (key, value) in unified {
        let field = format!("linux.resources.unified[{key:?}]");
        check_unified_key(key).with_context(|| field.clone())?;
        let lines: Vec<&str> = value.lines().filter(|l| !l.is_empty()).collect();
        if lines.is_empty() {
            p.writes.push(Write::new(&field, key, value.as_str()));
        }
        for l in lines {
            p.writes.push(Write::new(&field, key, l));
        }
    }
    if program_devices {
        let rules = devices::from_spec(r.devices().as_deref().unwrap_or_default())?;
        p.devices = Some(devices::effective(rules, created));
    }
    Ok(p)
}

fn check_unified_key(key: &str) -> Result<()> {
    ensure!(
        !key.contains('/') && !key.contains('\0') && key != "." && key != "..",
        "must be a file name in the container's cgroup (no '/', not \".\" or \"..\")"
    );
    ensure!(
        key.split_once('.')
            .is_some_and(|(c, rest)| !c.is_empty() && !rest.is_empty()),
        "must be an interface file name of the form <controller>.<name>"
    );
    ensure!(
        !RESERVED.contains(&key),
        "{key} is managed by skiff (use the pause, resume, kill and delete commands)"
    );
    Ok(())
}

/// "2MB", "1GB", "64KB": what hugetlb.<size>.max is named with.
fn valid_page_size(s: &str) -> bool {
    let digits = s.trim_end_matches(['K', 'M', 'G', 'B']);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && ["KB", "MB", "GB"].contains(&&s[digits.len()..])
}

/// runc's numToStr for limits: 0 → not set, -1 → "max", positive → itself.
fn limit_str(v: i64, field: &str) -> Result<Option<String>> {
    match v {
        0 => Ok(None),
        -1 => Ok(Some("max".into())),
        n if n > 0 => Ok(Some(n.to_string())),
        n => bail!("{field}: {n} is neither a limit nor -1 (unlimited)"),
    }
}

/// memory+swap (spec) → swap alone (v2), as runc converts it. `None`: leave unset.
pub fn swap_v2(swap: i64, limit: i64) -> Result<Option<String>> {
    let f = "linux.resources.memory.swap";
    if limit == -1 && swap == 0 {
        return Ok(Some("max".into()));
    }
    match swap {
        0 => return Ok(None),
        -1 => return Ok(Some("max".into())),
        s if s < -1 => bail!("{f}: {s} is neither a limit nor -1 (unlimited)"),
        _ => {}
    }
    ensure!(
        limit > 0,
        "{f}: a memory+swap limit needs a memory limit (linux.resources.memory.limit)"
    );
    ensure!(
        swap >= limit,
        "{f}: the memory+swap limit {swap} is below the memory limit {limit}"
    );
    Ok(Some((swap - limit).to_string()))
}

fn memory(m: &LinuxMemory, p: &mut Plan) -> Result<()> {
    let f = |n: &str| format!("linux.resources.memory.{n}");
    let limit = m.limit().unwrap_or(0);
    let max = limit_str(limit, &f("limit"))?;
    if let Some(swap) = swap_v2(m.swap().unwrap_or(0), limit)? {
        // No memory.swap.max means the kernel does not account swap: "no limit" and "no
        // swap" are then already the case (runc skips them too); a real limit is an error.
        let optional = swap == "max" || swap == "0";
        p.writes.push(Write {
            if_exists: optional,
            ..Write::new(f("swap"), "memory.swap.max", swap)
        });
    }
    if let Some(v) = max {
        p.writes.push(Write::new(f("limit"), "memory.max", v));
    }
    if let Some(v) = limit_str(m.reservation().unwrap_or(0), &f("reservation"))? {
        p.writes.push(Write::new(f("reservation"), "memory.low", v));
    }
    #[allow(deprecated)]
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        // runc: "Kernel memory settings are ignored and will be removed"; the kernel
        // dropped kmem limits in 5.4 and v2 accounts kernel memory in memory.max.
        crate::logging::warn(
            "linux.resources.memory.kernel, kernelTCP: ignored (cgroup v2 counts kernel memory \
             in memory.max)",
        );
    }
    if m.swappiness().is_some() {
        bail!(
            "{}: cgroup v2 has no per-cgroup swappiness (memory.swappiness is cgroup v1 only)",
            f("swappiness")
        );
    }
    if m.disable_oom_killer() == Some(true) {
        bail!(
            "{}: cgroup v2 cannot disable the OOM killer for a cgroup (memory.oom_control is \
             cgroup v1 only)",
            f("disableOOMKiller")
        );
    }
    if m.use_hierarchy() == Some(false) {
        bail!(
            "{}: cgroup v2 accounting is always hierarchical",
            f("useHierarchy")
        );
    }
    if m.check_before_update() == Some(true) {
        // memory+swap first, as runc checks (and words) them.
        if let Some(s) = m.swap().filter(|&s| s > 0) {
            p.check_usage.push(("memory+swap limit", s as u64));
        }
        if limit > 0 {
            p.check_usage.push(("memory limit", limit as u64));
        }
    }
    Ok(())
}

/// runc's current shares → weight conversion (see the module doc).
pub fn cpu_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262144.. => 10000,
        s => {
            let l = (s as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

fn cpu(c: &LinuxCpu, p: &mut Plan) -> Result<()> {
    let f = |n: &str| format!("linux.resources.cpu.{n}");
    for (name, set) in [
        (
            "realtimeRuntime",
            c.realtime_runtime().is_some_and(|v| v != 0),
        ),
        (
            "realtimePeriod",
            c.realtime_period().is_some_and(|v| v != 0),
        ),
    ] {
        if set {
            bail!(
                "{}: cgroup v2 has no realtime CPU bandwidth control (cpu.rt_* is cgroup v1 \
                 only)",
                f(name)
            );
        }
    }
    if let Some(idle) = c.idle() {
        p.writes
            .push(Write::new(f("idle"), "cpu.idle", idle.to_string()));
    }
    if let Some(shares) = c.shares().filter(|&s| s != 0) {
        p.writes.push(Write::new(
            f("shares"),
            "cpu.weight",
            cpu_weight(shares).to_string(),
        ));
    }
    let (quota, period) = (c.quota().unwrap_or(0), c.period().unwrap_or(0));
    if let Some(burst) = c.burst() {
        p.writes.push(Write {
            retry_late: quota != 0 || period != 0,
            ..Write::new(f("burst"), "cpu.max.burst", burst.to_string())
        });
    }
    if quota != 0 || period != 0 {
        let q = if quota > 0 {
            quota.to_string()
        } else {
            "max".into()
        };
        // 100000 µs is the kernel's default period (cgroup-v2.rst, cpu.max).
        let period = if period == 0 { 100_000 } else { period };
        let field = if c.quota().is_some() {
            f("quota")
        } else {
            f("period")
        };
        p.writes
            .push(Write::new(field, "cpu.max", format!("{q} {period}")));
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        p.writes.push(Write::new(f("cpus"), "cpuset.cpus", cpus));
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        p.writes.push(Write::new(f("mems"), "cpuset.mems", mems));
    }
    Ok(())
}

/// blkio weight (10..1000) → io.weight (1..10000), runc's linear mapping.
pub fn io_weight(w: u16) -> u64 {
    1 + (u64::from(w) - 10) * 9999 / 990
}

fn block_io(b: &LinuxBlockIo, p: &mut Plan) -> Result<()> {
    let f = |n: &str| format!("linux.resources.blockIO.{n}");
    let weight = |w: u16, field: &str| -> Result<()> {
        ensure!((10..=1000).contains(&w), "{field}: {w} is not in 10..1000");
        Ok(())
    };
    let leaf = |field: String| -> Result<()> {
        bail!("{field}: leaf weights exist only in cgroup v1 (blkio.leaf_weight)")
    };
    if b.leaf_weight().is_some_and(|w| w != 0) {
        leaf(f("leafWeight"))?;
    }
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        weight(w, &f("weight"))?;
        p.writes.push(Write {
            fallback: Some(("io.weight".into(), io_weight(w).to_string())),
            ..Write::new(f("weight"), "io.bfq.weight", w.to_string())
        });
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let field = f(&format!("weightDevice[{i}]"));
        if d.leaf_weight().is_some_and(|w| w != 0) {
            leaf(format!("{field}.leafWeight"))?;
        }
        if let Some(w) = d.weight() {
            weight(w, &format!("{field}.weight"))?;
            let dev = format!("{}:{}", d.major(), d.minor());
            p.writes.push(Write {
                fallback: Some(("io.weight".into(), format!("{dev} {}", io_weight(w)))),
                ..Write::new(field, "io.bfq.weight", format!("{dev} {w}"))
            });
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "riops",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ];
    for (name, key, list) in throttles {
        for (i, t) in list.iter().flatten().enumerate() {
            // v1 semantics: a rate of 0 removes the limit.
            let rate = match t.rate() {
                0 => "max".to_string(),
                r => r.to_string(),
            };
            p.writes.push(Write::new(
                f(&format!("{name}[{i}]")),
                "io.max",
                format!("{}:{} {key}={rate}", t.major(), t.minor()),
            ));
        }
    }
    Ok(())
}

/// `update`: the stored resources with the new ones laid over them (objects merged key by
/// key, anything else replaced), because some values depend on others (swap on the memory
/// limit, cpu.max on quota and period). As runc does, a new memory limit of -1 without a
/// swap value makes swap unlimited too.
pub fn merge(old: &LinuxResources, new: &LinuxResources) -> Result<LinuxResources> {
    fn lay(base: &mut serde_json::Value, top: serde_json::Value) {
        match (base, top) {
            (serde_json::Value::Object(b), serde_json::Value::Object(t)) => {
                for (k, v) in t {
                    match b.get_mut(&k) {
                        Some(slot) => lay(slot, v),
                        None => {
                            b.insert(k, v);
                        }
                    }
                }
            }
            (slot, v) => *slot = v,
        }
    }
    let mut base = serde_json::to_value(old)?;
    let top = serde_json::to_value(new)?;
    lay(&mut base, top);
    let mut out: LinuxResources = serde_json::from_value(base)?;
    if let (Some(m), Some(om)) = (new.memory(), out.memory_mut()) {
        if m.limit() == Some(-1) && m.swap().is_none() {
            om.set_swap(Some(-1));
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "resources_tests.rs"]
mod tests;
