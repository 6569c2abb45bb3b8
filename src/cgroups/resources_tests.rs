use super::*;

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

/// (file, value) pairs of the plan, in order.
fn files(json: &str) -> Vec<(String, String)> {
    plan(&res(json), false, &[])
        .unwrap()
        .writes
        .into_iter()
        .map(|w| (w.file, w.value))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn err(json: &str) -> String {
    format!("{:#}", plan(&res(json), false, &[]).unwrap_err())
}

#[test]
fn cpu_shares_convert_with_runcs_current_formula() {
    // opencontainers/cgroups' table: min, just above, default, just below max, max.
    for (shares, weight) in [
        (0, 0),
        (1, 1),
        (2, 1),
        (3, 2),
        (1024, 100),
        (262143, 10000),
        (262144, 10000),
        (300000, 10000),
    ] {
        assert_eq!(cpu_weight(shares), weight, "shares {shares}");
    }
    // Monotonic over the range.
    let mut last = 0;
    for s in (2..262144).step_by(97) {
        let w = cpu_weight(s);
        assert!(w >= last && (1..=10000).contains(&w), "shares {s} → {w}");
        last = w;
    }
}

#[test]
fn memory_limits_and_swap_follow_runc() {
    assert_eq!(
        files(r#"{"memory":{"limit":67108864,"reservation":33554432,"swap":100663296}}"#),
        pairs(&[
            ("memory.swap.max", "33554432"),
            ("memory.max", "67108864"),
            ("memory.low", "33554432")
        ])
    );
    // swap == limit: no swap at all.
    assert_eq!(
        files(r#"{"memory":{"limit":1000,"swap":1000}}"#),
        pairs(&[("memory.swap.max", "0"), ("memory.max", "1000")])
    );
    // limit -1 without swap: both unlimited.
    assert_eq!(
        files(r#"{"memory":{"limit":-1}}"#),
        pairs(&[("memory.swap.max", "max"), ("memory.max", "max")])
    );
    assert_eq!(
        files(r#"{"memory":{"limit":1000,"swap":-1}}"#),
        pairs(&[("memory.swap.max", "max"), ("memory.max", "1000")])
    );
    assert_eq!(files(r#"{"memory":{"limit":0}}"#), pairs(&[]));
    assert!(err(r#"{"memory":{"swap":1000}}"#).contains("needs a memory limit"));
    assert!(err(r#"{"memory":{"limit":2000,"swap":1000}}"#).contains("below the memory limit"));
    assert!(err(r#"{"memory":{"limit":-5}}"#).starts_with("linux.resources.memory.limit"));
    assert!(err(r#"{"memory":{"swappiness":10}}"#).starts_with("linux.resources.memory.swappiness"));
    assert!(err(r#"{"memory":{"disableOOMKiller":true}}"#).contains("disableOOMKiller"));
    assert!(files(r#"{"memory":{"disableOOMKiller":false,"kernel":1}}"#).is_empty());
    // The swap file is optional only for "max" and "0".
    let p = plan(&res(r#"{"memory":{"limit":10,"swap":20}}"#), false, &[]).unwrap();
    assert!(!p.writes[0].if_exists);
    let p = plan(&res(r#"{"memory":{"limit":-1}}"#), false, &[]).unwrap();
    assert!(p.writes[0].if_exists);
}

#[test]
fn check_before_update_lists_the_limits_in_runcs_order() {
    let p = plan(
        &res(r#"{"memory":{"limit":100,"swap":300,"checkBeforeUpdate":true}}"#),
        false,
        &[],
    )
    .unwrap();
    assert_eq!(
        p.check_usage,
        vec![("memory+swap limit", 300), ("memory limit", 100)]
    );
}

#[test]
fn cpu_fields_map_to_weight_max_burst_idle_and_cpuset() {
    assert_eq!(
        files(
            r#"{"cpu":{"shares":1024,"quota":50000,"period":100000,"burst":1000,"idle":0,
                       "cpus":"0-1","mems":"0"}}"#
        ),
        pairs(&[
            ("cpu.idle", "0"),
            ("cpu.weight", "100"),
            ("cpu.max.burst", "1000"),
            ("cpu.max", "50000 100000"),
            ("cpuset.cpus", "0-1"),
            ("cpuset.mems", "0")
        ])
    );
    assert_eq!(
        files(r#"{"cpu":{"quota":20000}}"#),
        pairs(&[("cpu.max", "20000 100000")])
    );
    assert_eq!(
        files(r#"{"cpu":{"quota":-1,"period":50000}}"#),
        pairs(&[("cpu.max", "max 50000")])
    );
    assert_eq!(files(r#"{"cpu":{"cpus":""}}"#), pairs(&[]));
    assert!(err(r#"{"cpu":{"realtimeRuntime":950000}}"#)
        .starts_with("linux.resources.cpu.realtimeRuntime"));
    let p = plan(&res(r#"{"cpu":{"quota":1,"burst":5}}"#), false, &[]).unwrap();
    assert!(p.writes[0].retry_late);
}

#[test]
fn pids_hugetlb_rdma_and_io() {
    assert_eq!(
        files(r#"{"pids":{"limit":20}}"#),
        pairs(&[("pids.max", "20")])
    );
    assert_eq!(
        files(r#"{"pids":{"limit":-1}}"#),
        pairs(&[("pids.max", "max")])
    );
    assert_eq!(files(r#"{"pids":{"limit":0}}"#), pairs(&[]));
    let p = plan(
        &res(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#),
        false,
        &[],
    )
    .unwrap();
    assert_eq!(p.writes[0].file, "hugetlb.2MB.max");
    assert_eq!(p.writes[1].file, "hugetlb.2MB.rsvd.max");
    assert!(!p.writes[0].if_exists && p.writes[1].if_exists);
    assert!(err(r#"{"hugepageLimits":[{"pageSize":"../x","limit":1}]}"#).contains("pageSize"));
    assert_eq!(
        files(r#"{"rdma":{"mlx5_1":{"hcaHandles":3},"mlx4_0":{"hcaHandles":2,"hcaObjects":9}}}"#),
        pairs(&[
            ("rdma.max", "mlx4_0 hca_handle=2 hca_object=9"),
            ("rdma.max", "mlx5_1 hca_handle=3")
        ])
    );
    let p = plan(
        &res(
            r#"{"blockIO":{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":100}],
                "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
                "throttleWriteIOPSDevice":[{"major":8,"minor":16,"rate":0}]}}"#,
        ),
        false,
        &[],
    )
    .unwrap();
    let w = &p.writes;
    assert_eq!(
        (w[0].file.as_str(), w[0].value.as_str()),
        ("io.bfq.weight", "500")
    );
    assert_eq!(w[0].fallback, Some(("io.weight".into(), "4950".into())));
    assert_eq!(w[1].fallback, Some(("io.weight".into(), "8:0 910".into())));
    assert_eq!(w[2].value, "8:0 rbps=1048576");
    assert_eq!(w[3].value, "8:16 wiops=max");
    assert_eq!(io_weight(10), 1);
    assert_eq!(io_weight(1000), 10000);
    assert!(err(r#"{"blockIO":{"weight":5}}"#).starts_with("linux.resources.blockIO.weight"));
    assert!(err(r#"{"blockIO":{"leafWeight":50}}"#).contains("leafWeight"));
    assert!(err(r#"{"network":{"classID":1}}"#).starts_with("linux.resources.network"));
}

#[test]
fn unified_keys_are_validated_and_values_written_by_line() {
    assert_eq!(
        files(r#"{"unified":{"memory.high":"1000","io.max":"8:0 rbps=1\n8:16 wbps=2\n"}}"#),
        pairs(&[
            ("io.max", "8:0 rbps=1"),
            ("io.max", "8:16 wbps=2"),
            ("memory.high", "1000")
        ])
    );
    for bad in [
        "../../etc/passwd",
        "a/b",
        "..",
        "memory",
        ".max",
        "cgroup.procs",
        "cgroup.kill",
    ] {
        let e = err(&format!(r#"{{"unified":{{"{bad}":"1"}}}}"#));
        assert!(e.starts_with("linux.resources.unified["), "{bad}: {e}");
    }
    let p = plan(&res(r#"{"unified":{"memory.high":"5"}}"#), false, &[]).unwrap();
    assert_eq!(p.writes[0].controller(), Some("memory"));
    assert_eq!(controller_of("cgroup.max.depth"), None);
}

#[test]
fn devices_are_programmed_only_when_asked() {
    let r = res(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#);
    assert!(plan(&r, false, &[]).unwrap().devices.is_none());
    let rules = plan(&r, true, &[]).unwrap().devices.unwrap();
    assert_eq!(rules.len(), 1 + devices::DEFAULTS.len());
}

#[test]
fn update_merges_over_the_stored_resources() {
    let old = res(
        r#"{"memory":{"limit":100,"swap":200},"cpu":{"quota":1000,"period":5000},
                      "pids":{"limit":5}}"#,
    );
    let m = merge(
        &old,
        &res(r#"{"cpu":{"period":10000},"memory":{"reservation":50}}"#),
    )
    .unwrap();
    assert_eq!(m.cpu().as_ref().unwrap().quota(), Some(1000));
    assert_eq!(m.cpu().as_ref().unwrap().period(), Some(10000));
    assert_eq!(m.memory().as_ref().unwrap().limit(), Some(100));
    assert_eq!(m.memory().as_ref().unwrap().reservation(), Some(50));
    assert_eq!(m.pids().as_ref().unwrap().limit(), 5);
    // -1 without swap: unlimited swap as well (runc update).
    let m = merge(&old, &res(r#"{"memory":{"limit":-1}}"#)).unwrap();
    assert_eq!(m.memory().as_ref().unwrap().swap(), Some(-1));
}
