//! The contract: every deliberate difference between skiff and runc, from contract.json
//! (next to this crate). A difference the harness finds is explained when an entry's
//! condition holds for the config and the field matches one of the entry's patterns;
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
}

/// The conditions an entry may name, each a predicate over the generated config.
const CONDITIONS: [(&str, &str); 9] = [
    ("always", "any config"),
    ("no-mount-namespace", "the config has no mount namespace"),
    ("cgroup-v1-host", "the host is not a pure cgroup v2 host"),
    ("cpu-shares", "the config sets linux.resources.cpu.shares"),
    ("populated-cgroup", "linux.cgroupsPath names an existing cgroup that holds processes"),
    ("device-access-letters", "a linux.resources.devices rule has access letters other than r, w, m"),
    ("time-namespace", "the config has a time namespace"),
    ("cpu-burst", "the config sets linux.resources.cpu.burst"),
    ("cgroup-v1-only-resource", "the config sets memory.swappiness, memory.disableOOMKiller: true, cpu.realtimeRuntime/realtimePeriod, a blockIO leafWeight or network"),
];

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
        };
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
        "cpu-burst" => c.pointer("/linux/resources/cpu/burst").is_some(),
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
        _ => false,
    }
}

fn matches(pattern: &str, field: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => field.starts_with(prefix),
        None => pattern == field,
    }
}

/// The id of the entry that explains a difference in `field` for this config.
pub fn explain<'a>(entries: &'a [Entry], case: &Case, field: &str) -> Option<&'a str> {
    entries
        .iter()
        .find(|e| e.fields.iter().any(|f| matches(f, field)) && holds(&e.when, case))
        .map(|e| e.id.as_str())
}

pub const BEGIN: &str = "<!-- differences-from-runc: generated from integration/differential/contract.json by `integration/differential/run --update-readme`; edit the JSON, not this table -->";
pub const END: &str = "<!-- end differences-from-runc -->";

pub fn markdown(entries: &[Entry]) -> String {
    let mut s = String::from(
        "| difference | why | when (harness condition) | fields | id |\n|---|---|---|---|---|\n",
    );
    for e in entries {
        let cond = CONDITIONS
            .iter()
            .find(|(c, _)| *c == e.when)
            .map(|(_, d)| *d)
            .unwrap_or("");
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
