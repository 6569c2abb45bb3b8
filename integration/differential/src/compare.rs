//! Observations flattened into fields ("group" or "group:key") and compared. Values were
//! normalised where they were taken (runner, outside); here equal means equal.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub type Flat = BTreeMap<String, Value>;

/// Objects whose members become fields of their own ("inside.ids", "outside.mounts", …).
const NESTED: [&str; 3] = ["inside", "outside", "hooks"];

/// Objects whose members become "group:member" fields (compared one by one).
const KEYED: [&str; 16] = [
    "inside.rlimits",
    "inside.caps",
    "inside.paths",
    "inside.dev",
    "inside.devaccess",
    "inside.sysctls",
    "inside.net",
    "outside.ns",
    "outside.status",
    "outside.cgroup.files",
    "outside.mounts",
    "hooks.records",
    "state",
    "state.created",
    "propagation",
    "leftovers",
];

/// Members that are for the report only (a refusal's wording may differ).
const NOT_COMPARED: [&str; 5] = [
    "stderr.text",
    "create.status",
    "run.status",
    "harness_error",
    "start",
];

fn put(f: &mut Flat, key: &str, v: &Value) {
    match v {
        Value::Object(m) if NESTED.contains(&key) => {
            for (k, sub) in m {
                put(f, &format!("{key}.{k}"), sub);
            }
        }
        Value::Object(m) if KEYED.contains(&key) => {
            for (k, sub) in m {
                f.insert(format!("{key}:{k}"), sub.clone());
            }
        }
        _ => {
            f.insert(key.to_string(), v.clone());
        }
    }
}

/// The fields of one observation. A refused create has only `create` and the leftovers.
pub fn flatten(obs: &Value) -> Flat {
    let mut f = Flat::new();
    let Some(m) = obs.as_object() else { return f };
    let ok = obs["create"] == "ok";
    for (k, v) in m {
        if NOT_COMPARED.contains(&k.as_str()) || (!ok && k != "create" && k != "leftovers") {
            continue;
        }
        put(&mut f, k, v);
    }
    f
}

pub fn group(field: &str) -> &str {
    field.split_once(':').map(|(g, _)| g).unwrap_or(field)
}

pub struct Diff {
    pub field: String,
    pub reference: Option<Value>,
    pub candidate: Option<Value>,
    pub explained_by: Option<String>,
}

/// Fields compared and the differences. When create differs only that is compared: the
/// rest exists on one side alone.
pub fn compare(a: &Flat, b: &Flat) -> (Vec<String>, Vec<Diff>) {
    if a.get("create") != b.get("create") {
        let d = Diff {
            field: "create".into(),
            reference: a.get("create").cloned(),
            candidate: b.get("create").cloned(),
            explained_by: None,
        };
        return (vec!["create".into()], vec![d]);
    }
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut compared = vec![];
    let mut diffs = vec![];
    for k in keys {
        compared.push(k.clone());
        let (x, y) = (a.get(k), b.get(k));
        if x != y && !leaves_less(k, x, y) {
            diffs.push(Diff {
                field: k.clone(),
                reference: x.cloned(),
                candidate: y.cloned(),
                explained_by: None,
            });
        }
    }
    (compared, diffs)
}

/// What the candidate left behind is a subset of what the reference left: not a
/// difference (runc 1.1.5 leaves the parent cgroups of a nested cgroupsPath, skiff removes
/// the directories it made). The other way round — the candidate leaving something the
/// reference did not — always is one.
fn leaves_less(field: &str, reference: Option<&Value>, candidate: Option<&Value>) -> bool {
    if !field.starts_with("leftovers:") {
        return false;
    }
    let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned();
    match (list(reference), list(candidate)) {
        (Some(r), Some(c)) => c.iter().all(|x| r.contains(x)),
        (_, Some(c)) => c.is_empty(),
        _ => false,
    }
}

#[derive(Default)]
pub struct GroupStat {
    pub configs: u64,
    pub differed: u64,
    pub unexplained: u64,
}

#[derive(Default)]
pub struct Stats {
    pub groups: BTreeMap<String, GroupStat>,
    pub fields: BTreeSet<String>,
    pub comparisons: u64,
}

impl Stats {
    pub fn add(&mut self, compared: &[String], diffs: &[Diff]) {
        let groups: BTreeSet<&str> = compared.iter().map(|f| group(f)).collect();
        let differed: BTreeSet<&str> = diffs.iter().map(|d| group(&d.field)).collect();
        let unexplained: BTreeSet<&str> = diffs
            .iter()
            .filter(|d| d.explained_by.is_none())
            .map(|d| group(&d.field))
            .collect();
        for g in groups {
            let s = self.groups.entry(g.to_string()).or_default();
            s.configs += 1;
            s.differed += differed.contains(g) as u64;
            s.unexplained += unexplained.contains(g) as u64;
        }
        self.comparisons += compared.len() as u64;
        self.fields.extend(compared.iter().cloned());
    }
}

/// Every field of `a` changed in a copy must be reported as a difference in that field
/// alone: the comparator cannot miss a broken observation. Returns the fields it missed.
pub fn self_check(a: &Flat) -> Vec<String> {
    let mut missed = vec![];
    for k in a.keys() {
        let mut b = a.clone();
        b.insert(
            k.clone(),
            serde_json::json!({"deliberately broken": b[k].clone()}),
        );
        let (_, diffs) = compare(a, &b);
        if diffs.len() != 1 || diffs[0].field != *k {
            missed.push(k.clone());
        }
    }
    missed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_refused_create_compares_only_create_and_leftovers() {
        let f = flatten(
            &json!({"create": "refused", "stderr.text": "x", "leftovers": {"state_dir": false}, "exit": 1}),
        );
        assert_eq!(
            f.keys().cloned().collect::<Vec<_>>(),
            vec!["create", "leftovers:state_dir"]
        );
    }

    #[test]
    fn nested_and_keyed_members_become_fields() {
        let f = flatten(
            &json!({"create": "ok", "inside": {"caps": {"effective": "1"}, "cwd": "/"}, "outside": {"mounts": {"/proc": ["proc"]}}}),
        );
        assert!(f.contains_key("inside.caps:effective"));
        assert!(f.contains_key("inside.cwd"));
        assert!(f.contains_key("outside.mounts:/proc"));
    }

    #[test]
    fn a_create_difference_hides_the_rest() {
        let a = flatten(&json!({"create": "ok", "inside": {"cwd": "/"}}));
        let b = flatten(&json!({"create": "refused"}));
        let (c, d) = compare(&a, &b);
        assert_eq!((c.len(), d.len(), d[0].field.as_str()), (1, 1, "create"));
    }

    #[test]
    fn every_broken_field_is_caught_and_a_missing_one_too() {
        let a = flatten(
            &json!({"create": "ok", "exit": 0, "inside": {"env": ["A=1"], "caps": {"bounding": "ff"}}}),
        );
        assert!(self_check(&a).is_empty());
        let mut b = a.clone();
        b.remove("inside.env");
        let (_, d) = compare(&a, &b);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].candidate, None);
    }
}
