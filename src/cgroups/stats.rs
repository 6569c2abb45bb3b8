//! Container statistics from the cgroup v2 files, in the JSON shape of runc's `events`
//! (runc `types/events.go`: field names, which zero values are omitted, v1-compatible
//! units: nanoseconds for CPU time, memory+swap for swap usage).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Serialize;

/// `{"type": ..., "id": ..., "data": ...}`, one JSON line per event.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub typ: &'a str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

fn zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    pub network_interfaces: Option<Vec<()>>,
}

#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Default, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

#[derive(Debug, Default, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "zero")]
    pub value: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Blkio {
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<Psi>,
}

#[derive(Debug, Default, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct IntelRdt {}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct PsiData {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total: u64,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Psi {
    pub some: PsiData,
    pub full: PsiData,
}

fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok()
}

/// "max" → u64::MAX (runc reports an unlimited value so), else the number.
fn limit(dir: &Path, file: &str) -> Option<u64> {
    let s = read(dir, file)?;
    match s.trim() {
        "max" => Some(u64::MAX),
        v => v.parse().ok(),
    }
}

fn num(dir: &Path, file: &str) -> u64 {
    read(dir, file)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// A flat-keyed file ("key value" lines) as a map.
pub fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// A *.pressure file: "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" and a "full" line.
pub fn psi(text: &str) -> Option<Psi> {
    let mut out = Psi::default();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let d = match parts.next()? {
            "some" => &mut out.some,
            "full" => &mut out.full,
            _ => continue,
        };
        for kv in parts {
            let (k, v) = kv.split_once('=')?;
            match k {
                "avg10" => d.avg10 = v.parse().ok()?,
                "avg60" => d.avg60 = v.parse().ok()?,
                "avg300" => d.avg300 = v.parse().ok()?,
                "total" => d.total = v.parse().ok()?,
                _ => {}
            }
        }
    }
    Some(out)
}

/// A cpuset list ("0-3,5") as the numbers it names.
pub fn cpu_list(s: &str) -> Vec<u16> {
    let mut out = vec![];
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u16>().ok()),
        }
    }
    out
}

/// io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...") as runc's v1-named tables.
pub fn io_stat(text: &str, b: &mut Blkio) {
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let Some((major, minor)) = parts.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for kv in parts {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let (table, op) = match k {
                "rbytes" => (&mut b.io_service_bytes, "Read"),
                "wbytes" => (&mut b.io_service_bytes, "Write"),
                "rios" => (&mut b.io_serviced, "Read"),
                "wios" => (&mut b.io_serviced, "Write"),
                _ => continue,
            };
            table.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value: v.parse().unwrap_or(0),
            });
        }
    }
}

/// Reads the statistics of the cgroup at `dir`. Files of controllers the cgroup does not
/// have are left out, as runc does.
pub fn read_stats(dir: &Path) -> Stats {
    let mut s = Stats::default();
    // cpu.stat exists without the cpu controller (usage only).
    if let Some(t) = read(dir, "cpu.stat") {
        let m = flat_keyed(&t);
        let g = |k: &str| m.get(k).copied().unwrap_or(0);
        s.cpu.usage.total = g("usage_usec") * 1000;
        s.cpu.usage.user = g("user_usec") * 1000;
        s.cpu.usage.kernel = g("system_usec") * 1000;
        s.cpu.throttling.periods = g("nr_periods");
        s.cpu.throttling.throttled_periods = g("nr_throttled");
        s.cpu.throttling.throttled_time = g("throttled_usec") * 1000;
    }
    s.cpu.psi = read(dir, "cpu.pressure").and_then(|t| psi(&t));
    if let Some(t) = read(dir, "cpuset.cpus.effective") {
        s.cpuset.cpus = cpu_list(&t);
    }
    if let Some(t) = read(dir, "cpuset.mems.effective") {
        s.cpuset.mems = cpu_list(&t);
    }
    if let Some(t) = read(dir, "memory.stat") {
        s.memory.raw = flat_keyed(&t);
        s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
        let mem = &mut s.memory.usage;
        mem.usage = num(dir, "memory.current");
        mem.limit = limit(dir, "memory.max").unwrap_or(u64::MAX);
        mem.max = num(dir, "memory.peak");
        // v1 reported swap as memory+swap: so does runc on v2.
        if let Some(swap_limit) = limit(dir, "memory.swap.max") {
            let swap = &mut s.memory.swap;
            swap.usage = num(dir, "memory.swap.current") + mem.usage;
            swap.limit = if swap_limit == u64::MAX {
                u64::MAX
            } else {
                swap_limit.saturating_add(mem.limit)
            };
        }
        s.memory.psi = read(dir, "memory.pressure").and_then(|t| psi(&t));
    }
    match read(dir, "pids.current") {
        Some(t) => {
            s.pids.current = t.trim().parse().unwrap_or(0);
            // "max" is reported as 0, "no limit".
            s.pids.limit = limit(dir, "pids.max")
                .filter(|&l| l != u64::MAX)
                .unwrap_or(0);
        }
        None => s.pids.current = super::pids(dir).map(|p| p.len() as u64).unwrap_or(0),
    }
    if let Some(t) = read(dir, "io.stat") {
        io_stat(&t, &mut s.blkio);
        s.blkio.psi = read(dir, "io.pressure").and_then(|t| psi(&t));
    }
    let sizes = super::hugetlb_sizes(dir, "current");
    for size in sizes {
        let h = Hugetlb {
            usage: num(dir, &format!("hugetlb.{size}.current")),
            max: 0,
            failcnt: read(dir, &format!("hugetlb.{size}.events"))
                .and_then(|t| flat_keyed(&t).get("max").copied())
                .unwrap_or(0),
        };
        s.hugetlb.insert(size, h);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_from_a_fake_cgroup_directory() {
        let dir = std::env::temp_dir().join(format!("skiff-stats-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let w = |f: &str, v: &str| fs::write(dir.join(f), v).unwrap();
        w("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 4\nthrottled_usec 20\n");
        w("cpu.pressure", "some avg10=1.71 avg60=2.36 avg300=2.57 total=230548833\nfull avg10=1.00 avg60=1.01 avg300=1.00 total=157622356\n");
        w("memory.stat", "anon 4096\nfile 8192\n");
        w("memory.current", "12288\n");
        w("memory.max", "max\n");
        w("memory.swap.max", "1000\n");
        w("memory.swap.current", "10\n");
        w("pids.current", "3\n");
        w("pids.max", "max\n");
        w(
            "io.stat",
            "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        w("hugetlb.2MB.current", "0\n");
        w("hugetlb.2MB.events", "max 2\n");
        w("hugetlb.2MB.rsvd.current", "0\n");
        w("cpuset.cpus.effective", "0-2,5\n");
        let s = read_stats(&dir);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(s.cpu.usage.total, 1_500_000);
        assert_eq!(s.cpu.usage.kernel, 500_000);
        assert_eq!(s.cpu.throttling.throttled_periods, 4);
        assert_eq!(s.cpu.psi.as_ref().unwrap().some.avg60, 2.36);
        assert_eq!(s.memory.cache, 8192);
        assert_eq!(s.memory.usage.limit, u64::MAX);
        assert_eq!(s.memory.swap.usage, 12298);
        assert_eq!(s.memory.swap.limit, u64::MAX);
        assert_eq!((s.pids.current, s.pids.limit), (3, 0));
        assert_eq!(s.blkio.io_service_bytes.len(), 2);
        assert_eq!(s.blkio.io_serviced[1].op, "Write");
        assert_eq!(s.hugetlb.keys().collect::<Vec<_>>(), ["2MB"]);
        assert_eq!(s.hugetlb["2MB"].failcnt, 2);
        assert_eq!(s.cpuset.cpus, vec![0, 1, 2, 5]);
        let j = serde_json::to_value(&Event {
            typ: "stats",
            id: "c1",
            data: Some(s),
        })
        .unwrap();
        assert_eq!(j["type"], "stats");
        assert_eq!(j["data"]["cpu"]["throttling"]["throttledPeriods"], 4);
        assert_eq!(j["data"]["memory"]["kernelTCP"]["limit"], 0);
        assert!(j["data"]["pids"].get("limit").is_none());
        assert_eq!(
            j["data"]["blkio"]["ioServiceBytesRecursive"][0]["op"],
            "Read"
        );
        assert_eq!(j["data"]["hugetlb"]["2MB"]["failcnt"], 2);
        assert!(j["data"]["network_interfaces"].is_null());
        let oom = serde_json::to_string(&Event {
            typ: "oom",
            id: "c1",
            data: None,
        })
        .unwrap();
        assert_eq!(oom, r#"{"type":"oom","id":"c1"}"#);
    }
}
