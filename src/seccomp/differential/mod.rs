//! Differential test: skiff's compiler against runc 1.1.5's use of libseccomp 2.5.4.
//!
//! Every profile is compiled by skiff and by the real libseccomp (translated as runc does,
//! see [`runc`]); both programs run in the test's BPF interpreter over many `seccomp_data`
//! inputs and must return the same value. Profiles: the Docker, containerd and Podman
//! default shapes, issue 13's cases, and seeded random ones.
//!
//! `SKIFF_SECCOMP_DIFF_SEED=<n>` and `SKIFF_SECCOMP_DIFF_PROFILES=<n>` override the seed and
//! the number of random profiles (`SKIFF_SECCOMP_DIFF_INPUTS=<n>`: inputs per random
//! profile) for longer runs.
//!
//! Deliberate differences, skipped here and listed in the README:
//! * names libseccomp 2.5.4 does not know (Linux 6.8+ syscalls) are applied by skiff and
//!   ignored by runc: the test drops them from the profile first (for runc that changes
//!   nothing);
//! * rule sets libseccomp mis-compiles or hangs on are refused by skiff: counted, and never
//!   handed to libseccomp;
//! * conflicts (EEXIST) that libseccomp's pruning of redundant rules avoids are refused by
//!   skiff: counted;
//! * results changed by libseccomp's two code-generation bugs ([`explain`]): counted.

mod explain;
mod gen;
mod profiles;
pub(super) mod runc;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxSeccomp;
use serde_json::Value;

use super::bpf_eval::{run, Data};
use super::profile::MISCOMPILED;
use gen::Rng;

/// Outcome of one profile under both compilers.
enum Compared {
    /// Both refused it.
    BothRefused,
    /// skiff refused a rule set libseccomp gets wrong (deliberate).
    Miscompiled,
    /// skiff found conflicting rules (EEXIST) where libseccomp's pruning of redundant rules,
    /// which skiff does not model, avoided the conflict (deliberate, fail-closed).
    UnprunedConflict,
    /// One refused, the other did not.
    Refusal(String),
    /// Both compiled: the inputs that disagree (with skiff's and runc's results), and how
    /// many differences libseccomp's missing syscall-number load and its stale accumulator
    /// explain (see [`explain`]).
    Ran {
        diffs: Vec<(Data, u32, u32)>,
        no_nr_load: usize,
        stale_acc: usize,
    },
}

fn parse(v: &Value) -> LinuxSeccomp {
    serde_json::from_value(v.clone()).expect("test profile parses")
}

fn compare(v: &Value, inputs: &[Data]) -> Compared {
    let p = parse(v);
    let skiff = super::compile(&p);
    if let Err(e) = &skiff {
        if format!("{e:#}").contains(MISCOMPILED) {
            return Compared::Miscompiled;
        }
    }
    match (skiff, runc::build(&p)) {
        (Err(_), Err(_)) => Compared::BothRefused,
        (Err(e), Ok(_)) if format!("{e:#}").contains("(EEXIST)") => Compared::UnprunedConflict,
        (Err(e), Ok(_)) => Compared::Refusal(format!("skiff refuses ({e:#}), runc does not")),
        (Ok(_), Err(e)) => Compared::Refusal(format!("runc refuses ({e}), skiff does not")),
        (Ok(s), Ok(r)) => {
            let plan = super::profile::plan(&p).expect("compiled once already");
            let (mut no_nr_load, mut stale_acc) = (0, 0);
            let mut diffs = Vec::new();
            for d in inputs {
                let (mine, (theirs, loaded_nr)) = (run(s.instructions(), d), r.eval(d));
                if mine == theirs {
                } else if !loaded_nr {
                    no_nr_load += 1;
                } else if explain::with_stale_accumulator(&plan, d) == Some(theirs) {
                    stale_acc += 1;
                } else {
                    diffs.push((*d, mine, theirs));
                }
            }
            Compared::Ran {
                diffs,
                no_nr_load,
                stale_acc,
            }
        }
    }
}

/// Still a difference, on `input` if given?
fn differs(v: &Value, input: Option<&Data>) -> bool {
    match compare(v, input.map(std::slice::from_ref).unwrap_or_default()) {
        Compared::Refusal(_) => true,
        Compared::Ran { diffs, .. } => !diffs.is_empty(),
        _ => false,
    }
}

/// Removes entries, names, arguments and architectures while the difference stays.
fn shrink(mut v: Value, input: Option<&Data>) -> Value {
    let mut changed = true;
    while changed {
        changed = false;
        let mut candidates = Vec::new();
        let entries = v["syscalls"].as_array().cloned().unwrap_or_default();
        for (i, e) in entries.iter().enumerate() {
            let mut c = v.clone();
            c["syscalls"].as_array_mut().unwrap().remove(i);
            candidates.push(c);
            for key in ["names", "args"] {
                let n = e[key].as_array().map_or(0, |a| a.len());
                for j in 0..n {
                    if key == "names" && n == 1 {
                        break;
                    }
                    let mut c = v.clone();
                    c["syscalls"][i][key].as_array_mut().unwrap().remove(j);
                    candidates.push(c);
                }
            }
        }
        for j in 0..v["architectures"].as_array().map_or(0, |a| a.len()) {
            let mut c = v.clone();
            c["architectures"].as_array_mut().unwrap().remove(j);
            candidates.push(c);
        }
        if let Some(c) = candidates.into_iter().find(|c| differs(c, input)) {
            v = c;
            changed = true;
        }
    }
    v
}

/// Drops the names whose numbers skiff and libseccomp disagree on (a listed difference:
/// mostly syscalls newer than libseccomp 2.5.4 knows). i386's multiplexed socket and IPC
/// calls, which libseccomp resolves to pseudo numbers, are compared by the test itself.
fn comparable(mut v: Value, dropped: &mut Vec<String>) -> Value {
    for e in v["syscalls"].as_array_mut().into_iter().flatten() {
        e["names"].as_array_mut().unwrap().retain(|n| {
            let n = n.as_str().unwrap();
            let same = tables_agree(n);
            if !same && !dropped.iter().any(|d| d == n) {
                dropped.push(n.to_string());
            }
            same
        });
    }
    v["syscalls"]
        .as_array_mut()
        .into_iter()
        .for_each(|s| s.retain(|e| !e["names"].as_array().unwrap().is_empty()));
    v
}

fn tables_agree(name: &str) -> bool {
    use super::profile::Abi;
    use libseccomp::{ScmpArch, ScmpSyscall};
    [
        (Abi::X86_64, ScmpArch::X8664),
        (Abi::X32, ScmpArch::X32),
        (Abi::X86, ScmpArch::X86),
        (Abi::Aarch64, ScmpArch::Aarch64),
    ]
    .iter()
    .all(|&(abi, arch)| {
        let theirs = ScmpSyscall::from_name_by_arch(name, arch)
            .ok()
            .map(|nr| nr.as_raw_syscall())
            .filter(|&nr| nr >= 0);
        let multiplexed = abi.resolve(name).iter().any(|t| t.mux.is_some());
        multiplexed || abi.lookup(name).map(|nr| nr as i32) == theirs
    })
}

#[derive(Default)]
struct Stats {
    profiles: usize,
    inputs: usize,
    evaluations: usize,
    both_refused: usize,
    miscompiled: usize,
    unpruned: usize,
    no_nr_load: usize,
    stale_acc: usize,
    dropped_names: Vec<String>,
    differences: Vec<String>,
}

impl Stats {
    fn check(&mut self, label: &str, v: Value, inputs: &[Data], current: &Mutex<String>) {
        let v = comparable(v, &mut self.dropped_names);
        *current.lock().unwrap() = format!("{label}: {v}");
        self.profiles += 1;
        match compare(&v, inputs) {
            Compared::BothRefused => self.both_refused += 1,
            Compared::Miscompiled => self.miscompiled += 1,
            Compared::UnprunedConflict => self.unpruned += 1,
            Compared::Refusal(why) => {
                let min = shrink(v, None);
                self.differences
                    .push(format!("{label}: {why}\n  minimal profile: {min}"));
            }
            Compared::Ran {
                diffs,
                no_nr_load,
                stale_acc,
            } => {
                self.no_nr_load += no_nr_load;
                self.stale_acc += stale_acc;
                self.inputs += inputs.len();
                self.evaluations += 2 * inputs.len();
                if let Some(&(d, s, r)) = diffs.first() {
                    let min = shrink(v, Some(&d));
                    self.differences.push(format!(
                        "{label}: {} of {} inputs differ; first: {d:x?}\n  skiff {s:#x}, \
                         runc {r:#x}\n  minimal profile: {min}",
                        diffs.len(),
                        inputs.len()
                    ));
                }
            }
        }
    }
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|s| {
        let s = s.trim();
        s.strip_prefix("0x")
            .map_or_else(|| s.parse(), |h| u64::from_str_radix(h, 16))
            .unwrap_or_else(|_| panic!("{name}: not a number: {s}"))
    })
}

/// A hang in either compiler must fail the run, not stall CI: abort with the profile.
fn watchdog(limit: Duration, current: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!(
            "seccomp differential test: no result after {limit:?}; last profile: {}",
            current.lock().unwrap()
        );
        std::process::abort();
    });
}

#[test]
fn skiff_agrees_with_runc_and_libseccomp() {
    const DEFAULT_SEED: u64 = 0x5ecc_0de1_3000_0013;
    let seed = env("SKIFF_SECCOMP_DIFF_SEED").unwrap_or(DEFAULT_SEED);
    let random_profiles = env("SKIFF_SECCOMP_DIFF_PROFILES").unwrap_or(3000) as usize;
    let per_profile = env("SKIFF_SECCOMP_DIFF_INPUTS").unwrap_or(48) as usize;
    let current = Arc::new(Mutex::new(String::new()));
    watchdog(Duration::from_secs(900), current.clone());
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let mut stats = Stats::default();

    let fixed = [
        ("docker default", profiles::docker()),
        ("containerd default", profiles::containerd()),
        ("podman default", profiles::podman()),
    ];
    for (label, v) in fixed.into_iter().chain(profiles::issue13()) {
        let inputs = gen::inputs(&mut rng, &v, 4000);
        stats.check(label, v, &inputs, &current);
    }
    let names: Vec<&str> = gen::NAMES.to_vec();
    for i in 0..random_profiles {
        let v = gen::profile(&mut rng, &names);
        let inputs = gen::inputs(&mut rng, &v, per_profile);
        stats.check(&format!("random profile {i}"), v, &inputs, &current);
    }

    println!(
        "seccomp differential: seed {seed:#x}: {} profiles ({} both refused, {} refused by \
         skiff as miscompiled by libseccomp, {} refused by skiff for conflicts libseccomp \
         prunes away), {} inputs, {} evaluations, {} differences \
         (explained, libseccomp bugs: {} missing syscall-number load, {} stale accumulator); \
         names dropped as skiff's and libseccomp's tables differ: {}; in {:.1?}",
        stats.profiles,
        stats.both_refused,
        stats.miscompiled,
        stats.unpruned,
        stats.inputs,
        stats.evaluations,
        stats.differences.len(),
        stats.no_nr_load,
        stats.stale_acc,
        stats.dropped_names.join(" "),
        started.elapsed()
    );
    for d in stats.differences.iter().take(5) {
        println!("DIFFERENCE {d}");
    }
    assert!(
        stats.differences.is_empty(),
        "{} profiles behave differently (seed {seed:#x})",
        stats.differences.len()
    );
    assert!(
        stats.evaluations >= 100_000 || env("SKIFF_SECCOMP_DIFF_PROFILES").is_some(),
        "too few evaluations"
    );
}
