//! linux.resources read back from the container's own cgroup v2 directory.

use std::collections::HashMap;
use std::fs;

use serde_json::Value;

use crate::attrs::parse_cpulist;
use crate::mountinfo::read_mountinfo;
use crate::{fail, unverified, verdict};

fn cgroup_dir() -> Result<String, String> {
    let cg = fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
    let p = cg
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no cgroup v2 entry in /proc/self/cgroup")?;
    let mi = read_mountinfo();
    let m = mi
        .iter()
        .rev()
        .find(|m| m.fstype == "cgroup2")
        .ok_or("no cgroup2 mount in the container")?;
    // The mount root (cgroup ns root or bind) corresponds to m.root.
    let rel = if m.root == "/" {
        p.to_string()
    } else {
        p.strip_prefix(m.root.as_str()).unwrap_or(p).to_string()
    };
    Ok(format!(
        "{}/{}",
        m.point.trim_end_matches('/'),
        rel.trim_start_matches('/')
    )
    .trim_end_matches('/')
    .to_string())
}

fn cg_read(dir: &str, file: &str) -> Result<String, String> {
    fs::read_to_string(format!("{dir}/{file}"))
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("{file}: {e}"))
}

fn cg_expect(check: &str, dir: &str, file: &str, want: &str) {
    match cg_read(dir, file) {
        Ok(got) => verdict(
            check,
            got == want,
            format!("{file}: want {want:?} got {got:?}"),
        ),
        Err(e) => fail(check, e),
    }
}

pub(crate) fn check_cgroups(cfg: &Value, env: &HashMap<String, String>) {
    let res = cfg.pointer("/linux/resources");
    let wants_cg = res.is_some() || env.contains_key("PROBE_CGROUP_EXPECT");
    if !wants_cg {
        return;
    }
    let dir = match cgroup_dir() {
        Ok(d) => d,
        Err(e) => {
            unverified("linux.resources", format!("cannot locate own cgroup: {e}"));
            return;
        }
    };
    let Some(res) = res else { return };
    if let Some(m) = res.get("memory") {
        let lim = m.get("limit").and_then(Value::as_i64);
        if let Some(l) = lim {
            cg_expect(
                "linux.resources.memory.limit",
                &dir,
                "memory.max",
                &if l < 0 { "max".into() } else { l.to_string() },
            );
        }
        if let Some(r) = m.get("reservation").and_then(Value::as_i64) {
            cg_expect(
                "linux.resources.memory.reservation",
                &dir,
                "memory.low",
                &if r < 0 { "max".into() } else { r.to_string() },
            );
        }
        if let Some(s) = m.get("swap").and_then(Value::as_i64) {
            let want = if s < 0 {
                "max".to_string()
            } else {
                (s - lim.unwrap_or(0)).to_string()
            };
            cg_expect(
                "linux.resources.memory.swap",
                &dir,
                "memory.swap.max",
                &want,
            );
        }
    }
    if let Some(c) = res.get("cpu") {
        if let Some(sh) = c.get("shares").and_then(Value::as_u64) {
            // runc ≤ 1.2's linear mapping, or the one runc uses since 1.3 (runc PR #4785,
            // opencontainers/cgroups): either is what some clients expect, as kubernetes'
            // e2e tests accept both.
            let old = if sh == 0 {
                100
            } else {
                1 + ((sh.saturating_sub(2)) * 9999) / 262142
            };
            let l = (sh.clamp(2, 262144) as f64).log2();
            let new = 10f64.powf((l * l + 125.0 * l) / 612.0 - 7.0 / 34.0).ceil() as u64;
            match cg_read(&dir, "cpu.weight") {
                Ok(got) => verdict(
                    "linux.resources.cpu.shares",
                    got == old.to_string() || got == new.to_string(),
                    format!("cpu.weight: want {old:?} or {new:?} got {got:?}"),
                ),
                Err(e) => fail("linux.resources.cpu.shares", e),
            }
        }
        if c.get("quota").is_some() || c.get("period").is_some() {
            let q = c.get("quota").and_then(Value::as_i64);
            let p = c.get("period").and_then(Value::as_u64).unwrap_or(100000);
            let qs = match q {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".into(),
            };
            cg_expect(
                "linux.resources.cpu.quota",
                &dir,
                "cpu.max",
                &format!("{qs} {p}"),
            );
        }
        if let Some(b) = c.get("burst").and_then(Value::as_u64) {
            cg_expect(
                "linux.resources.cpu.burst",
                &dir,
                "cpu.max.burst",
                &b.to_string(),
            );
        }
        if let Some(s) = c.get("cpus").and_then(Value::as_str) {
            match cg_read(&dir, "cpuset.cpus") {
                Ok(g) => verdict(
                    "linux.resources.cpu.cpus",
                    parse_cpulist(&g) == parse_cpulist(s),
                    format!("want {s} got {g}"),
                ),
                Err(e) => fail("linux.resources.cpu.cpus", e),
            }
        }
        if let Some(s) = c.get("mems").and_then(Value::as_str) {
            match cg_read(&dir, "cpuset.mems") {
                Ok(g) => verdict(
                    "linux.resources.cpu.mems",
                    parse_cpulist(&g) == parse_cpulist(s),
                    format!("want {s} got {g}"),
                ),
                Err(e) => fail("linux.resources.cpu.mems", e),
            }
        }
        if let Some(i) = c.get("idle").and_then(Value::as_i64) {
            cg_expect("linux.resources.cpu.idle", &dir, "cpu.idle", &i.to_string());
        }
    }
    if let Some(l) = res.pointer("/pids/limit").and_then(Value::as_i64) {
        cg_expect(
            "linux.resources.pids",
            &dir,
            "pids.max",
            &if l <= 0 { "max".into() } else { l.to_string() },
        );
    }
    if let Some(b) = res.get("blockIO") {
        if let Some(w) = b.get("weight").and_then(Value::as_u64) {
            let bfq = cg_read(&dir, "io.bfq.weight");
            let io = cg_read(&dir, "io.weight");
            let conv = 1 + (w.saturating_sub(10)) * 9999 / 990;
            let ok = matches!(&bfq, Ok(s) if s.split_whitespace().any(|x| x == w.to_string()))
                || matches!(&io, Ok(s) if s.split_whitespace().any(|x| x == conv.to_string() || x == w.to_string()));
            verdict(
                "linux.resources.blockIO.weight",
                ok,
                format!("weight {w}: io.bfq.weight {bfq:?} io.weight {io:?} (converted {conv})"),
            );
        }
        let iomax = cg_read(&dir, "io.max").unwrap_or_default();
        for (key, field) in [
            ("throttleReadBpsDevice", "rbps"),
            ("throttleWriteBpsDevice", "wbps"),
            ("throttleReadIOPSDevice", "riops"),
            ("throttleWriteIOPSDevice", "wiops"),
        ] {
            for d in b
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let (ma, mi, rate) = (
                    d["major"].as_u64().unwrap_or(0),
                    d["minor"].as_u64().unwrap_or(0),
                    d["rate"].as_u64().unwrap_or(0),
                );
                let line = iomax
                    .lines()
                    .find(|l| l.starts_with(&format!("{ma}:{mi} ")));
                let ok = line
                    .map(|l| l.split_whitespace().any(|x| x == format!("{field}={rate}")))
                    .unwrap_or(false);
                verdict(
                    &format!("linux.resources.blockIO.{key}"),
                    ok,
                    format!("want {ma}:{mi} {field}={rate}; io.max {iomax:?}"),
                );
            }
        }
    }
    for h in res
        .get("hugepageLimits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let size = h["pageSize"].as_str().unwrap_or("?");
        let lim = h["limit"].as_u64().unwrap_or(0);
        cg_expect(
            &format!("linux.resources.hugepageLimits[{size}]"),
            &dir,
            &format!("hugetlb.{size}.max"),
            &lim.to_string(),
        );
    }
    if let Some(u) = res.get("unified").and_then(Value::as_object) {
        for (k, v) in u {
            let want = v.as_str().unwrap_or("").trim();
            match cg_read(&dir, k) {
                Ok(g) => verdict(
                    &format!("linux.resources.unified[{k}]"),
                    g == want,
                    format!("want {want:?} got {g:?}"),
                ),
                Err(e) => fail(&format!("linux.resources.unified[{k}]"), e),
            }
        }
    }
}
