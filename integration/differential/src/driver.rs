//! `differential run`: generate configs, run each under the reference runtime (runc) and
//! the candidate (skiff), compare, explain what the contract explains, report the rest.

use crate::compare::{self, Diff, Stats};
use crate::contract::{self, Entry};
use crate::gen::{self, Case};
use crate::host;
use crate::outside;
use crate::propagation;
use crate::runner::{self, Ctx, Runtime};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

pub struct Options {
    pub reference: String,
    pub candidate: String,
    pub seed: u64,
    pub indices: Vec<u64>,
    pub jobs: usize,
    pub contract: String,
    pub readme: Option<String>,
    pub save: Option<String>,
    pub timeout: u64,
    /// Validation aid: break this field of every candidate observation (must be caught).
    pub mutate: Option<String>,
    /// Start no config after this many seconds (the run then reports what it has).
    pub budget: Option<u64>,
    /// The propagation matrix's containers to run (gen::matrix), before the generated ones.
    pub matrix: Vec<usize>,
}

enum Work {
    Generated(u64),
    Matrix(usize),
}

struct Outcome {
    case: Case,
    secs: f64,
    compared: Vec<String>,
    diffs: Vec<Diff>,
    harness_error: Option<String>,
    reference: Value,
    candidate: Value,
}

fn executable(path: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    match fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err(format!("{path}: not an executable file")),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

/// Prerequisites: both runtimes, a pure cgroup v2 host with every controller, root.
fn preflight(o: &Options) -> Result<(), String> {
    executable(&o.reference).map_err(|e| format!("reference runtime: {e}"))?;
    executable(&o.candidate).map_err(|e| format!("candidate runtime: {e}"))?;
    let controllers = fs::read_to_string(Path::new(host::CGROUP_ROOT).join("cgroup.controllers"))
        .unwrap_or_default();
    if !controllers.contains("memory") || !controllers.contains("pids") {
        return Err(format!(
            "{}/cgroup.controllers is {:?}: not a pure cgroup v2 host; run this in the guest (integration/differential/run does)",
            host::CGROUP_ROOT,
            controllers.trim()
        ));
    }
    if crate::sys::getresuid().1 != 0 {
        return Err("must run as root".into());
    }
    Ok(())
}

/// A copy of this (static) binary where every run directory can hard-link it.
fn install_self() -> Result<PathBuf, String> {
    let dir = Path::new(host::BASE).join("bin");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let bin = dir.join("differential");
    let _ = fs::remove_file(&bin);
    fs::copy("/proc/self/exe", &bin)
        .map_err(|e| format!("copying /proc/self/exe to {}: {e}", bin.display()))?;
    Ok(bin)
}

fn run_case(
    case: Case,
    rts: &[Runtime; 2],
    ctx: &Ctx,
    contract: &[Entry],
    mutate: Option<&str>,
) -> Outcome {
    let t = Instant::now();
    let reference = runner::run_side(&case, &rts[0], ctx);
    let candidate = runner::run_side(&case, &rts[1], ctx);
    let a = compare::flatten(&reference);
    let mut b = compare::flatten(&candidate);
    if let Some(k) = mutate {
        if let Some(v) = b.get(k).cloned() {
            b.insert(k.to_string(), json!({"deliberately broken": v}));
        }
    }
    let harness_error = [("reference", &reference), ("candidate", &candidate)]
        .iter()
        .filter_map(|(side, o)| o["harness_error"].as_str().map(|e| format!("{side}: {e}")))
        .collect::<Vec<_>>();
    let (compared, mut diffs) = if harness_error.is_empty() {
        compare::compare(&a, &b)
    } else {
        (vec![], vec![])
    };
    for d in diffs.iter_mut() {
        d.explained_by = contract::explain(
            contract,
            &case,
            &d.field,
            d.reference.as_ref(),
            d.candidate.as_ref(),
        )
        .map(str::to_string);
    }
    Outcome {
        case,
        secs: t.elapsed().as_secs_f64(),
        compared,
        diffs,
        harness_error: (!harness_error.is_empty()).then(|| harness_error.join("; ")),
        reference,
        candidate,
    }
}

fn short(v: &Option<Value>) -> String {
    let s = match v {
        None => "(absent)".to_string(),
        Some(v) => v.to_string(),
    };
    if s.len() > 400 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(400).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}

/// How reports name a config: `#index` for generated ones, `matrix #cell` for the
/// propagation matrix's.
fn name(case: &Case) -> String {
    match case.matrix {
        Some(cell) => format!("matrix #{cell}"),
        None => format!("#{}", case.index),
    }
}

/// The command that runs this config again alone.
fn replay(case: &Case, seed: u64) -> String {
    match case.matrix {
        Some(cell) => format!("integration/differential/run --matrix {cell}"),
        None => format!(
            "integration/differential/run --seed {seed} --only {}",
            case.index
        ),
    }
}

fn save(dir: &str, o: &Outcome, seed: u64) {
    let d = Path::new(dir).join(match o.case.matrix {
        Some(cell) => format!("matrix-{cell}"),
        None => format!("{seed}-{}", o.case.index),
    });
    let _ = fs::create_dir_all(&d);
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let _ = fs::write(d.join("config.json"), pretty(&o.case.config));
    let _ = fs::write(d.join("observe-plan.json"), pretty(&o.case.plan));
    let _ = fs::write(d.join("reference.json"), pretty(&o.reference));
    let _ = fs::write(d.join("candidate.json"), pretty(&o.candidate));
    let mut text = String::new();
    for x in &o.diffs {
        text.push_str(&format!(
            "{}{}\n  reference: {}\n  candidate: {}\n",
            x.field,
            x.explained_by
                .as_ref()
                .map(|e| format!(" (explained: {e})"))
                .unwrap_or_default(),
            short(&x.reference),
            short(&x.candidate)
        ));
    }
    let _ = fs::write(d.join("differences.txt"), text);
}

pub fn run(o: Options) -> i32 {
    // scripts/vm runs its command chrooted, and a chrooted process may not create user
    // namespaces: the runtimes would refuse every config with one.
    if crate::sys::chrooted() {
        match crate::sys::leave_chroot() {
            Ok(()) => println!("differential: left the guest's chroot (own mount namespace; user namespaces need a real root)"),
            Err(e) => {
                eprintln!("differential: leaving the chroot: {e}");
                return 2;
            }
        }
    }
    let contract = match contract::load(&o.contract) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("differential: {e}");
            return 2;
        }
    };
    if let Some(readme) = &o.readme {
        if let Err(e) = contract::check_readme(&contract, readme) {
            eprintln!("differential: {e}");
            return 2;
        }
    }
    if let Err(e) = preflight(&o) {
        eprintln!("differential: {e}");
        return 2;
    }
    let bin = match install_self() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("differential: {e}");
            return 2;
        }
    };
    // Inits of created containers are reparented to us when `create` returns.
    if let Err(e) = crate::sys::set_child_subreaper() {
        eprintln!("differential: PR_SET_CHILD_SUBREAPER: errno {e}");
        return 2;
    }
    let rts = [
        Runtime {
            side: "ref",
            path: o.reference.clone(),
            root: "/run/dfh/ref".into(),
        },
        Runtime {
            side: "cand",
            path: o.candidate.clone(),
            root: "/run/dfh/cand".into(),
        },
    ];
    let ctx = Ctx {
        bin,
        own_cgroup: host::own_cgroup(),
        host_ns: outside::read_ns("self"),
        timeout: Duration::from_secs(o.timeout),
    };
    println!(
        "differential: seed {} ({} configs and {} propagation matrix containers, {} jobs), reference {}, candidate {}",
        o.seed,
        o.indices.len(),
        o.matrix.len(),
        o.jobs,
        o.reference,
        o.candidate
    );
    // The matrix first: the time budget may cut generated configs, not the matrix.
    let work: Vec<Work> = o
        .matrix
        .iter()
        .map(|c| Work::Matrix(*c))
        .chain(o.indices.iter().map(|i| Work::Generated(*i)))
        .collect();
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    // Configs that set the cgroup2 hierarchy's global flags run alone (write lock).
    let exclusive = RwLock::new(());
    let outcomes: Mutex<Vec<Outcome>> = Mutex::new(vec![]);
    let total = work.len();
    std::thread::scope(|s| {
        for _ in 0..o.jobs.max(1) {
            s.spawn(|| loop {
                if o.budget
                    .is_some_and(|b| start.elapsed() > Duration::from_secs(b))
                {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let case = match work.get(i) {
                    None => break,
                    Some(Work::Generated(index)) => gen::generate(o.seed, *index),
                    Some(Work::Matrix(cell)) => gen::matrix::case(*cell),
                };
                let out = if case.sets_cgroup2_flags() {
                    let _alone = exclusive.write().unwrap_or_else(|e| e.into_inner());
                    let out = run_case(case, &rts, &ctx, &contract, o.mutate.as_deref());
                    // Back to the guest's flags (scripts/vm.d/init mounts cgroup2 with these).
                    let _ = crate::sys::mount(
                        "none",
                        host::CGROUP_ROOT,
                        "",
                        libc::MS_REMOUNT,
                        "nsdelegate,memory_recursiveprot",
                    );
                    out
                } else {
                    let _shared = exclusive.read().unwrap_or_else(|e| e.into_inner());
                    run_case(case, &rts, &ctx, &contract, o.mutate.as_deref())
                };
                let unexplained = out
                    .diffs
                    .iter()
                    .filter(|d| d.explained_by.is_none())
                    .count();
                let mut done = outcomes.lock().unwrap_or_else(|e| e.into_inner());
                let verdict = match (&out.harness_error, unexplained, out.diffs.len()) {
                    (Some(e), _, _) => format!("HARNESS ERROR: {e}"),
                    (None, 0, 0) => "same".into(),
                    (None, 0, n) => format!("{n} explained"),
                    (None, u, _) => format!(
                        "{u} UNEXPLAINED: {}",
                        out.diffs
                            .iter()
                            .filter(|d| d.explained_by.is_none())
                            .map(|d| d.field.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                };
                let refused = if out.reference["create"] == "refused" {
                    let why = out.reference["stderr.text"]
                        .as_str()
                        .unwrap_or("")
                        .lines()
                        .last()
                        .unwrap_or("")
                        .chars()
                        .skip(60)
                        .take(400)
                        .collect::<String>();
                    format!(" (reference refused: {why})")
                } else {
                    String::new()
                };
                println!(
                    "[{:>3}/{total}] {} {:.1}s {} — {verdict}{refused}",
                    done.len() + 1,
                    name(&out.case),
                    out.secs,
                    out.case
                        .invalid
                        .as_deref()
                        .map(|i| format!("invalid ({i})"))
                        .unwrap_or_else(|| "valid".into()),
                );
                if let Some(dir) = &o.save {
                    if out.harness_error.is_some() || unexplained > 0 {
                        save(dir, &out, o.seed);
                    }
                }
                done.push(out);
            });
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    outcomes.sort_by_key(|o| (o.case.matrix.is_none(), o.case.index));
    report(&o, &contract, &outcomes, start.elapsed())
}

fn report(o: &Options, contract: &[Entry], outcomes: &[Outcome], took: Duration) -> i32 {
    let mut stats = Stats::default();
    let mut unexplained = 0;
    let mut harness = 0;
    let mut by_field: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut explained: std::collections::BTreeMap<String, u64> = Default::default();
    for out in outcomes {
        stats.add(&out.compared, &out.diffs);
        harness += out.harness_error.is_some() as u64;
        for d in &out.diffs {
            match &d.explained_by {
                None => {
                    unexplained += 1;
                    by_field
                        .entry(d.field.clone())
                        .or_default()
                        .push(name(&out.case));
                }
                Some(id) => *explained.entry(id.clone()).or_default() += 1,
            }
        }
    }
    println!(
        "\n{:<34} {:>8} {:>8} {:>12}",
        "field", "configs", "differed", "unexplained"
    );
    for (g, s) in &stats.groups {
        println!(
            "{g:<34} {:>8} {:>8} {:>12}",
            s.configs, s.differed, s.unexplained
        );
    }
    if !explained.is_empty() {
        println!("\nexplained by the contract ({}):", o.contract);
        for (id, n) in &explained {
            println!("  {id}: {n}");
        }
    }
    let _ = contract;
    if !by_field.is_empty() {
        println!("\nunexplained differences by field (configs):");
        for (f, idx) in &by_field {
            let list: Vec<&str> = idx.iter().take(12).map(String::as_str).collect();
            println!(
                "  {f}: {} ({}{})",
                idx.len(),
                list.join(" "),
                if idx.len() > 12 { " …" } else { "" }
            );
        }
        println!("\nunexplained differences in detail:");
        for out in outcomes
            .iter()
            .filter(|x| x.diffs.iter().any(|d| d.explained_by.is_none()))
        {
            println!(
                "{} [{}]  replay: {}",
                name(&out.case),
                out.case.tags.join(" "),
                replay(&out.case, o.seed)
            );
            for d in out.diffs.iter().filter(|d| d.explained_by.is_none()) {
                println!(
                    "  {}\n    reference: {}\n    candidate: {}",
                    d.field,
                    short(&d.reference),
                    short(&d.candidate)
                );
                if d.field == "create" {
                    for (side, obs) in
                        [("reference", &out.reference), ("candidate", &out.candidate)]
                    {
                        if obs["create"] != "ok" {
                            let why = obs["stderr.text"]
                                .as_str()
                                .unwrap_or("")
                                .trim()
                                .lines()
                                .last()
                                .unwrap_or("")
                                .to_string();
                            println!("    {side} said: {}", short(&Some(json!(why))));
                        }
                    }
                }
            }
        }
    }
    for out in outcomes.iter().filter(|x| x.harness_error.is_some()) {
        println!(
            "{} harness error: {}",
            name(&out.case),
            out.harness_error.as_deref().unwrap_or("")
        );
    }
    if let Some(first) = outcomes
        .iter()
        .find(|x| x.harness_error.is_none() && x.reference["create"] == "ok")
    {
        let missed = compare::self_check(&compare::flatten(&first.reference));
        if missed.is_empty() {
            println!(
                "\ncomparator self-check: a change in each of the {} fields of {} is caught",
                compare::flatten(&first.reference).len(),
                name(&first.case)
            );
        } else {
            println!(
                "\ncomparator self-check FAILED: changes not caught in {}",
                missed.join(", ")
            );
            harness += 1;
        }
    }
    if let Some(dir) = &o.save {
        println!("failing configs saved under {dir}/<seed>-<index>/");
    }
    println!("took {:.0}s, seed {}", took.as_secs_f64(), o.seed);
    let planned = o.indices.len() + o.matrix.len();
    if outcomes.len() < planned {
        println!(
            "differential: stopped early by the time budget ({}s): {} of {} configs ran",
            o.budget.unwrap_or(0),
            outcomes.len(),
            planned
        );
    }
    println!("{} field comparisons in all", stats.comparisons);
    let matrix = (!o.matrix.is_empty()).then(|| matrix_summary(o, outcomes));
    if let Some(m) = &matrix {
        println!("{}", propagation::line(m));
    }
    println!(
        "differential: {} configs, {} fields compared, {} unexplained differences",
        outcomes.len(),
        stats.fields.len(),
        unexplained
    );
    if harness > 0 {
        println!("differential: {harness} configs hit a harness error");
    }
    i32::from(unexplained > 0 || harness > 0 || matrix.as_ref().is_some_and(propagation::failed))
}

/// The propagation matrix's table, root checks and per-case count (its list of every
/// case's answers goes to the results directory).
fn matrix_summary(o: &Options, outcomes: &[Outcome]) -> propagation::Summary {
    let cells: Vec<propagation::Cell> = outcomes
        .iter()
        .filter_map(|out| {
            out.case.matrix.map(|cell| propagation::Cell {
                cell,
                reference: &out.reference,
                candidate: &out.candidate,
                diffs: &out.diffs,
            })
        })
        .collect();
    let s = propagation::summarise(&cells, &o.matrix, &o.candidate);
    propagation::print(&s);
    if let Some(dir) = &o.save {
        let path = Path::new(dir).join("propagation-matrix.txt");
        if fs::write(&path, &s.list).is_ok() {
            println!("every case's answers: {}", path.display());
        }
    }
    s
}
