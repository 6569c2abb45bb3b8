//! The propagation matrix's verdict: every logical case (rootfsPropagation × the volume's
//! option × its source mount × direction) with runc's answer and the candidate's, counted
//! as one difference when a field of that case differs; and the root checks: the container
//! runs pivoted into its rootfs under `rootfsPropagation: shared`/`rshared`, and the
//! host's mount table is as it was once each runtime has deleted its container.

use crate::compare::Diff;
use crate::gen::matrix::{self, CASES, CELLS, DIRECTIONS, OPTIONS};
use serde_json::Value;
use std::collections::BTreeMap;

pub struct Cell<'a> {
    pub cell: usize,
    pub reference: &'a Value,
    pub candidate: &'a Value,
    pub diffs: &'a [Diff],
}

#[derive(Default)]
pub struct Summary {
    /// Logical cases that ran (matrix::CASES when every container ran).
    pub cases: usize,
    /// Cases whose answers differ with no contract entry explaining it.
    pub unexplained: usize,
    /// Cases whose answers differ as a contract entry says (entry id → cases).
    pub explained: BTreeMap<String, usize>,
    /// Root checks that failed (each a sentence naming the container and the runtime).
    pub root_failures: Vec<String>,
    /// Root checks made: (pivot under shared/rshared, host table after delete).
    pub root_checks: (usize, usize),
    /// Matrix containers that did not run (time budget).
    pub missing: Vec<usize>,
    /// runc's answers as a table, the candidate's differences marked.
    pub table: String,
    /// Every case, both answers, one per line.
    pub list: String,
}

/// One side's answer to one case.
fn answer(obs: &Value, volume: &str, dir: &str) -> String {
    if obs.get("harness_error").is_some() {
        return "harness error".into();
    }
    if obs["create"] != "ok" {
        return "refused".into();
    }
    let v = &obs["propagation"][format!("{volume}/{dir}")];
    let errno = |k: &str| v[k].as_i64().filter(|e| *e != 0);
    if dir == "h2c" {
        return match (errno("host_mount_errno"), v["seen_inside"].as_bool()) {
            (Some(e), _) => format!("host mount failed (errno {e})"),
            (None, Some(true)) => "seen inside".into(),
            (None, Some(false)) => "not seen inside".into(),
            _ => "not probed".into(),
        };
    }
    if v["container_mount_errno"].is_null() {
        return "container mount unanswered".into();
    }
    if let Some(e) = errno("container_mount_errno") {
        return format!("container mount failed (errno {e})");
    }
    match (v["at_source"].as_bool(), v["at_master"].as_bool()) {
        (Some(true), Some(true)) => "at the source and its master".into(),
        (Some(true), _) => "at the source".into(),
        (_, Some(true)) => "at the source's master".into(),
        _ => "not on the host".into(),
    }
}

fn letter(answer: &str) -> char {
    match answer {
        "seen inside" => 'Y',
        "at the source" => 'S',
        "at the source's master" => 'M',
        "at the source and its master" => 'B',
        "not seen inside" | "not on the host" => '-',
        "refused" => 'R',
        a if a.contains("failed") => 'E',
        _ => '?',
    }
}

/// The root checks of one side of one container.
fn root_checks(cell: usize, side: &str, obs: &Value, s: &mut Summary) {
    let (root, source) = matrix::cell_of(cell);
    let name = format!(
        "container {cell} (rootfsPropagation {}, source {}) under {side}",
        matrix::label(root),
        matrix::source_name(source)
    );
    if obs.get("harness_error").is_some() {
        return;
    }
    s.root_checks.1 += 1;
    match obs["host_mounts_changed"].as_array() {
        Some(c) if c.is_empty() => {}
        Some(c) => s.root_failures.push(format!(
            "{name}: the host's mount table changed after delete: {}",
            c.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        )),
        None => s
            .root_failures
            .push(format!("{name}: the host's mount table was not checked")),
    }
    if root != "shared" && root != "rshared" {
        return;
    }
    s.root_checks.0 += 1;
    if obs["create"] != "ok" {
        s.root_failures
            .push(format!("{name}: the container did not run"));
        return;
    }
    let at_root: Vec<&str> = obs["outside"]["mounts"]["/"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let pivoted = at_root.len() == 1
        && at_root[0]
            .split(' ')
            .any(|t| t.starts_with("root=") && t.ends_with("/RUN/bundle/rootfs"));
    if !pivoted {
        s.root_failures.push(format!(
            "{name}: / is not the bundle's rootfs alone: {at_root:?}"
        ));
    }
}

pub fn summarise(cells: &[Cell], wanted: &[usize], candidate: &str) -> Summary {
    let mut s = Summary {
        missing: wanted
            .iter()
            .filter(|w| !cells.iter().any(|c| c.cell == **w))
            .copied()
            .collect(),
        ..Default::default()
    };
    let width = 11;
    s.table
        .push_str(&format!("{:<28}", "rootfsPropagation/source"));
    for o in OPTIONS {
        s.table.push_str(&format!(
            "{:>width$}",
            matrix::label(o).replace("unset", "none")
        ));
    }
    s.table.push('\n');
    for cell in 0..CELLS {
        let Some(c) = cells.iter().find(|c| c.cell == cell) else {
            continue;
        };
        let (root, source) = matrix::cell_of(cell);
        s.table.push_str(&format!(
            "{:<28}",
            format!("{}/{}", matrix::label(root), matrix::source_name(source))
        ));
        for option in OPTIONS {
            let volume = matrix::volume(option);
            let mut shown = String::new();
            for dir in DIRECTIONS {
                s.cases += 1;
                let field = format!("propagation:{volume}/{dir}");
                let diff = c
                    .diffs
                    .iter()
                    .find(|d| d.field == field || d.field == "create");
                let (a, b) = (
                    answer(c.reference, &volume, dir),
                    answer(c.candidate, &volume, dir),
                );
                let mark = match diff.map(|d| &d.explained_by) {
                    None => "",
                    Some(None) => {
                        s.unexplained += 1;
                        "!"
                    }
                    Some(Some(id)) => {
                        *s.explained.entry(id.clone()).or_default() += 1;
                        "?"
                    }
                };
                shown.push(letter(&a));
                shown.push_str(mark);
                s.list.push_str(&format!(
                    "rootfsPropagation={} option={} source={} {dir}: runc {a}; {candidate} {b}{}\n",
                    matrix::label(root),
                    matrix::label(option).replace("unset", "none"),
                    matrix::source_name(source),
                    match mark {
                        "!" => " (DIFFERS)",
                        "?" => " (differs, explained)",
                        _ => "",
                    }
                ));
                if dir == DIRECTIONS[0] {
                    shown.push(' ');
                }
            }
            s.table.push_str(&format!("{shown:>width$}"));
        }
        s.table.push('\n');
        root_checks(cell, "the reference", c.reference, &mut s);
        root_checks(cell, "the candidate", c.candidate, &mut s);
    }
    s
}

/// The report's lines (the summary line itself is printed last, by the driver).
pub fn print(s: &Summary) {
    println!(
        "\npropagation matrix, the reference's answers (rows: rootfsPropagation/source mount; \
         columns: the volume's option; each cell host→container then container→host):\n\
         Y seen inside, S at the source, M at its master, B both, - neither, E the probe's \
         mount failed, R refused; ! the candidate differs, ? differs as the contract explains"
    );
    print!("{}", s.table);
    println!(
        "propagation root checks: pivot_root under rootfsPropagation shared/rshared ({} runs), \
         host mount table unchanged after delete ({} runs): {}",
        s.root_checks.0,
        s.root_checks.1,
        if s.root_failures.is_empty() {
            "all passed".to_string()
        } else {
            format!("{} FAILED", s.root_failures.len())
        }
    );
    for f in &s.root_failures {
        println!("  {f}");
    }
    if !s.missing.is_empty() {
        println!(
            "propagation: {} matrix containers did not run (time budget): {:?}",
            s.missing.len(),
            s.missing
        );
    }
}

/// `propagation: N cases, M differences from runc` (and the explained ones).
pub fn line(s: &Summary) -> String {
    let mut l = format!(
        "propagation: {} cases, {} differences from runc",
        s.cases, s.unexplained
    );
    if s.cases < CASES {
        l.push_str(&format!(" (of {CASES}: not every container ran)"));
    }
    if !s.explained.is_empty() {
        let ids: Vec<String> = s
            .explained
            .iter()
            .map(|(id, n)| format!("{id}: {n}"))
            .collect();
        l.push_str(&format!(
            " (and {} explained by the contract: {})",
            s.explained.values().sum::<usize>(),
            ids.join(", ")
        ));
    }
    l
}

/// Whether the matrix failed: an unexplained difference, a root check, a container that
/// did not run.
pub fn failed(s: &Summary) -> bool {
    s.unexplained > 0 || !s.root_failures.is_empty() || !s.missing.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obs(seen: bool, at_source: bool) -> Value {
        let mut p = serde_json::Map::new();
        for o in OPTIONS {
            let v = matrix::volume(o);
            p.insert(
                format!("{v}/h2c"),
                json!({"host_mount_errno": 0, "seen_inside": seen}),
            );
            p.insert(
                format!("{v}/c2h"),
                json!({"container_mount_errno": 0, "at_source": at_source, "at_master": false}),
            );
        }
        json!({"create": "ok", "propagation": p, "host_mounts_changed": [],
               "outside": {"mounts": {"/": ["tmpfs tmpfs root=/dfh/RUN/bundle/rootfs opts=rw prop=private under=(outside)"]}}})
    }

    #[test]
    fn a_differing_field_counts_one_case_and_a_refusal_every_case_of_its_container() {
        let (a, b) = (obs(true, false), obs(true, false));
        let diffs = vec![Diff {
            field: "propagation:pv-rshared/c2h".into(),
            reference: None,
            candidate: None,
            explained_by: None,
        }];
        let cells: Vec<Cell> = (0..CELLS)
            .map(|cell| Cell {
                cell,
                reference: &a,
                candidate: &b,
                diffs: if cell == 4 { &diffs } else { &[] },
            })
            .collect();
        let all: Vec<usize> = (0..CELLS).collect();
        let s = summarise(&cells, &all, "skiff");
        assert_eq!((s.cases, s.unexplained), (384, 1));
        assert!(s.root_failures.is_empty(), "{:?}", s.root_failures);
        assert_eq!(s.root_checks, (12, 48));
        assert!(line(&s).starts_with("propagation: 384 cases, 1 differences from runc"));
        let refused = vec![Diff {
            field: "create".into(),
            reference: None,
            candidate: None,
            explained_by: None,
        }];
        let one = [Cell {
            cell: 0,
            reference: &a,
            candidate: &b,
            diffs: &refused,
        }];
        let s = summarise(&one, &all, "skiff");
        assert_eq!((s.cases, s.unexplained, s.missing.len()), (16, 16, 23));
        assert!(failed(&s));
    }

    #[test]
    fn root_checks_catch_a_changed_host_table_and_a_root_that_is_not_the_rootfs() {
        let good = obs(false, false);
        let mut changed = good.clone();
        changed["host_mounts_changed"] = json!(["- /tmp tmpfs tmpfs rw [shared:3]"]);
        let mut unpivoted = good.clone();
        unpivoted["outside"]["mounts"]["/"] = json!(["overlay overlay root=/ opts=rw"]);
        // Container 15 is rootfsPropagation shared, source private.
        assert_eq!(matrix::cell_of(15).0, "shared");
        let cells = [Cell {
            cell: 15,
            reference: &changed,
            candidate: &unpivoted,
            diffs: &[],
        }];
        let s = summarise(&cells, &[15], "skiff");
        assert_eq!(s.root_failures.len(), 2, "{:?}", s.root_failures);
        assert!(s.root_failures[0].contains("mount table changed"));
        assert!(s.root_failures[1].contains("not the bundle's rootfs"));
    }
}
