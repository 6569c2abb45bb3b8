//! linux.resources: memory, cpu, pids, blockIO, hugepageLimits, unified, devices.

use super::Case;
use crate::rng::Rng;
use serde_json::{json, Map, Value};

pub fn resources(r: &mut Rng, case: &mut Case, linux: &mut Value) {
    let mut res = Map::new();
    if r.chance(40) {
        if r.chance(40) {
            res.insert("memory".into(), memory(r, case));
        }
        if r.chance(45) {
            res.insert("cpu".into(), cpu(r, case));
        }
        if r.chance(35) {
            res.insert(
                "pids".into(),
                json!({"limit": *r.pick(&[-1i64, 0, 32, 100, 4096])}),
            );
            case.tag("res.pids");
        }
        if r.chance(20) {
            let mut b = json!({"weight": *r.pick(&[10, 100, 500, 1000])});
            if r.chance(10) {
                b["leafWeight"] = json!(300);
                case.tag("res.blkio.leafWeight");
            }
            res.insert("blockIO".into(), b);
            case.tag("res.blkio");
        }
        if r.chance(10) {
            res.insert(
                "hugepageLimits".into(),
                json!([{"pageSize": "2MB", "limit": 2097152 * r.range(0, 8)}]),
            );
            case.tag("res.hugetlb");
        }
        if r.chance(15) {
            let pool = [
                ("pids.max", "77"),
                ("memory.high", "134217728"),
                ("cpu.weight", "77"),
                ("memory.oom.group", "1"),
                ("cpu.max", "30000 100000"),
            ];
            let mut u = Map::new();
            for (k, v) in r.subset(&pool, 40) {
                u.insert(k.into(), json!(v));
            }
            if !u.is_empty() {
                res.insert("unified".into(), Value::Object(u));
                case.tag("res.unified");
            }
        }
    }
    if r.chance(35) {
        res.insert("devices".into(), device_rules(r, case));
    }
    if !res.is_empty() {
        linux["resources"] = Value::Object(res);
    }
}

fn memory(r: &mut Rng, case: &mut Case) -> Value {
    let limit = *r.pick(&[33554432i64, 67108864, 268435456, 1073741824, -1]);
    let mut m = json!({"limit": limit});
    if r.chance(50) {
        m["reservation"] = json!(16777216);
    }
    if r.chance(40) {
        let swap = match r.below(3) {
            0 => limit,
            1 if limit > 0 => limit * 2,
            _ => -1,
        };
        m["swap"] = json!(swap);
    }
    if r.chance(4) {
        m["swappiness"] = json!(10);
        case.tag("res.memory.swappiness");
    }
    if r.chance(4) {
        m["disableOOMKiller"] = json!(true);
        case.tag("res.memory.disableOOMKiller");
    }
    case.tag("res.memory");
    m
}

fn cpu(r: &mut Rng, case: &mut Case) -> Value {
    let mut c = json!({});
    if r.chance(45) {
        let shares = if r.chance(60) {
            *r.pick(&[2u64, 256, 512, 1024, 2048, 262144])
        } else {
            r.range(2, 262144)
        };
        c["shares"] = json!(shares);
        case.tag("res.cpu.shares");
    }
    if r.chance(40) {
        c["quota"] = json!(*r.pick(&[-1i64, 10000, 50000, 200000]));
        if r.chance(50) {
            c["period"] = json!(*r.pick(&[50000u64, 100000, 250000]));
        }
        case.tag("res.cpu.quota");
    }
    if r.chance(20) {
        c["cpus"] = json!(*r.pick(&["0", "0-1", "1"]));
    }
    if r.chance(15) {
        c["mems"] = json!("0");
    }
    if r.chance(6) {
        c["burst"] = json!(10000);
        if c.get("quota").is_none() {
            c["quota"] = json!(50000);
        }
        case.tag("res.cpu.burst");
    }
    if r.chance(6) {
        c["idle"] = json!(*r.pick(&[0, 1]));
        case.tag("res.cpu.idle");
    }
    if r.chance(3) {
        c["realtimeRuntime"] = json!(1000);
        c["realtimePeriod"] = json!(1000000);
        case.tag("res.cpu.realtime");
    }
    c
}

/// Device cgroup rules: mostly runc's deny-all then allows, sometimes allow-all, rarely
/// access letters beyond r, w, m.
fn device_rules(r: &mut Rng, case: &mut Case) -> Value {
    let mut rules = vec![];
    if r.chance(75) {
        rules.push(json!({"allow": false, "access": "rwm"}));
    } else if r.chance(50) {
        rules.push(json!({"allow": true, "access": "rwm"}));
    }
    let pool = [
        ("c", 1, 3),
        ("c", 1, 5),
        ("c", 10, 229),
        ("c", 10, 200),
        ("c", 1, 11),
        ("b", 7, 0),
        ("c", 1, 1),
        ("c", 136, -1),
    ];
    for _ in 0..r.range(0, 4) {
        let (t, maj, min) = *r.pick(&pool);
        let access = *r.pick(&["rwm", "rw", "r", "w", "m"]);
        let mut rule = json!({"allow": r.chance(75), "type": t, "major": maj, "access": access});
        if min >= 0 {
            rule["minor"] = json!(min);
        }
        rules.push(rule);
    }
    if r.chance(3) {
        rules.push(json!({"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwx"}));
        case.tag("res.devices.bad-access");
    }
    case.tag("res.devices");
    Value::Array(rules)
}
