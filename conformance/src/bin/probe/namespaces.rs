//! Namespaces (inodes compared with the runtime's or the joined path's), hostname and
//! domainname, uid/gid mappings and time namespace offsets.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;

use serde_json::Value;

use crate::{unverified, verdict};

pub(crate) fn uts() -> libc::utsname {
    // SAFETY: zeroed utsname is valid; uname fills it.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        libc::uname(&mut u);
        u
    }
}
pub(crate) fn cstr(b: &[libc::c_char]) -> String {
    let v: Vec<u8> = b
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&v).into_owned()
}

pub(crate) fn check_uts(cfg: &Value) {
    let u = uts();
    if let Some(h) = cfg.get("hostname").and_then(Value::as_str) {
        let got = cstr(&u.nodename);
        verdict("hostname", got == h, format!("want {h:?} got {got:?}"));
    }
    if let Some(d) = cfg.get("domainname").and_then(Value::as_str) {
        let got = cstr(&u.domainname);
        verdict("domainname", got == d, format!("want {d:?} got {got:?}"));
    }
}

fn ns_file(ty: &str) -> &str {
    match ty {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    }
}

pub(crate) fn check_namespaces(cfg: &Value, env: &HashMap<String, String>) {
    let list: Vec<Value> = cfg
        .pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for ty in [
        "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time",
    ] {
        let f = ns_file(ty);
        let check = format!("linux.namespaces.{ty}");
        let host = env
            .get(&format!("PROBE_HOST_NS_{f}"))
            .and_then(|v| v.parse::<u64>().ok());
        let got = match fs::metadata(format!("/proc/self/ns/{f}")) {
            Ok(m) => m.ino(),
            Err(e) => {
                if list
                    .iter()
                    .any(|n| n.get("type").and_then(Value::as_str) == Some(ty))
                {
                    unverified(&check, format!("/proc/self/ns/{f}: {e}"));
                }
                continue;
            }
        };
        let Some(host) = host else {
            unverified(&check, format!("driver did not pass PROBE_HOST_NS_{f}"));
            continue;
        };
        let entry = list
            .iter()
            .find(|n| n.get("type").and_then(Value::as_str) == Some(ty));
        match entry {
            None => verdict(
                &check,
                got == host,
                format!("not listed: must inherit the runtime's ({host}), got {got}"),
            ),
            Some(n) => match n.get("path").and_then(Value::as_str) {
                Some(_) => match env
                    .get(&format!("PROBE_EXPECT_NS_{f}"))
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    Some(want) => verdict(
                        &check,
                        got == want,
                        format!("path given: must join {want}, got {got}"),
                    ),
                    None => unverified(&check, "path given but driver passed no expected inode"),
                },
                None => verdict(
                    &check,
                    got != host,
                    format!("no path: must be new (runtime's is {host}), got {got}"),
                ),
            },
        }
        if ty == "cgroup" && entry.is_some() && entry.and_then(|n| n.get("path")).is_none() {
            let cg = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
            let root = cg
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .unwrap_or("?")
                .to_string();
            verdict(
                "linux.namespaces.cgroup.root",
                root == "/",
                format!("/proc/self/cgroup unified path {root:?} (must be / in a new cgroup ns)"),
            );
        }
    }
}

pub(crate) fn check_idmaps(cfg: &Value) {
    let userns = cfg
        .pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .any(|n| n.get("type").and_then(Value::as_str) == Some("user"))
        })
        .unwrap_or(false);
    if !userns {
        return;
    }
    for (key, file) in [("uidMappings", "uid_map"), ("gidMappings", "gid_map")] {
        let Some(list) = cfg
            .pointer(&format!("/linux/{key}"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        let mut want: Vec<(u64, u64, u64)> = list
            .iter()
            .map(|m| {
                (
                    m["containerID"].as_u64().unwrap_or(0),
                    m["hostID"].as_u64().unwrap_or(0),
                    m["size"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        want.sort();
        let txt = fs::read_to_string(format!("/proc/self/{file}")).unwrap_or_default();
        let mut got: Vec<(u64, u64, u64)> = txt
            .lines()
            .filter_map(|l| {
                let v: Vec<u64> = l
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                (v.len() == 3).then(|| (v[0], v[1], v[2]))
            })
            .collect();
        got.sort();
        verdict(
            &format!("linux.{key}"),
            want == got,
            format!("want {want:?} got {got:?}"),
        );
    }
}

pub(crate) fn check_time_offsets(cfg: &Value) {
    let Some(map) = cfg.pointer("/linux/timeOffsets").and_then(Value::as_object) else {
        return;
    };
    let txt = match fs::read_to_string("/proc/self/timens_offsets") {
        Ok(t) => t,
        Err(e) => {
            unverified(
                "linux.timeOffsets",
                format!("/proc/self/timens_offsets: {e}"),
            );
            return;
        }
    };
    for (clock, v) in map {
        let secs = v.get("secs").and_then(Value::as_i64).unwrap_or(0);
        let nsecs = v.get("nanosecs").and_then(Value::as_i64).unwrap_or(0);
        let line = txt
            .lines()
            .find(|l| l.split_whitespace().next() == Some(clock.as_str()));
        let got = line
            .map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .map(String::from)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        verdict(
            &format!("linux.timeOffsets.{clock}"),
            got == format!("{secs} {nsecs}"),
            format!("want {secs} {nsecs} got {got:?}"),
        );
    }
}
