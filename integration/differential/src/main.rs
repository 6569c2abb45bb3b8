//! differential: one static multicall binary.
//!   differential run [options]      the driver (see `usage`)
//!   differential show SEED INDEX    print config INDEX of run SEED
//!   differential show matrix CELL   print the propagation matrix's container CELL
//!   differential contract-markdown FILE   the README table from contract.json
//!   differential update-readme FILE README  rewrite the README's table from it
//!   /observe observe                the observer, inside a container
//!   dfh-hook hook NAME LOG | fail   the hook recorder

mod compare;
mod console;
mod contract;
mod driver;
mod gen;
mod hook;
mod host;
mod observe;
mod outside;
mod propagation;
mod rng;
mod runner;
mod sys;

const USAGE: &str = "usage: differential run [--reference PATH] [--candidate PATH] [--seed N] [--count N] [--start N]
                        [--only I,J,…] [--jobs N] [--contract FILE] [--readme FILE] [--save DIR]
                        [--timeout SECS] [--budget SECS] [--mutate FIELD]
                        [--matrix on|off|only|CELL,CELL,…]
       differential show SEED INDEX
       differential show matrix CELL
       differential contract-markdown CONTRACT
       differential update-readme CONTRACT README
Environment: DIFFERENTIAL_SEED, DIFFERENTIAL_COUNT, DIFFERENTIAL_BUDGET override the defaults
(random seed, 300 configs, no time budget).
--matrix: the propagation matrix's 24 containers (every rootfsPropagation × volume option ×
source mount × direction) run first; on by default, off with --only; `only` runs the matrix
alone, a list runs those containers alone.";

fn parse_run(args: &[String]) -> Result<driver::Options, String> {
    let env_num = |k: &str| {
        std::env::var(k)
            .ok()
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<u64>()
                    .map_err(|_| format!("{k}={s}: not a number"))
            })
            .transpose()
    };
    let mut o = driver::Options {
        reference: "/usr/sbin/runc".into(),
        candidate: String::new(),
        seed: env_num("DIFFERENTIAL_SEED")?.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 % 1_000_000_007)
                .unwrap_or(1)
        }),
        indices: vec![],
        jobs: 2,
        contract: String::new(),
        readme: None,
        save: None,
        timeout: 180,
        mutate: None,
        budget: env_num("DIFFERENTIAL_BUDGET")?,
        matrix: vec![],
    };
    let mut matrix: Option<String> = None;
    let mut count = env_num("DIFFERENTIAL_COUNT")?.unwrap_or(300);
    let mut first = 0;
    let mut only: Option<Vec<u64>> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        let num = |s: String| {
            s.parse::<u64>()
                .map_err(|_| format!("{a} {s}: not a number"))
        };
        match a.as_str() {
            "--reference" => o.reference = val()?,
            "--candidate" => o.candidate = val()?,
            "--seed" => o.seed = num(val()?)?,
            "--count" => count = num(val()?)?,
            "--start" => first = num(val()?)?,
            "--only" => {
                only = Some(
                    val()?
                        .split(',')
                        .map(|s| {
                            s.trim()
                                .parse::<u64>()
                                .map_err(|_| format!("--only: {s:?} is not an index"))
                        })
                        .collect::<Result<_, _>>()?,
                )
            }
            "--jobs" => o.jobs = num(val()?)? as usize,
            "--contract" => o.contract = val()?,
            "--readme" => o.readme = Some(val()?),
            "--save" => o.save = Some(val()?),
            "--timeout" => o.timeout = num(val()?)?,
            "--mutate" => o.mutate = Some(val()?),
            "--budget" => o.budget = Some(num(val()?)?),
            "--matrix" => matrix = Some(val()?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.candidate.is_empty() || o.contract.is_empty() {
        return Err("--candidate and --contract are required".into());
    }
    let all: Vec<usize> = (0..gen::matrix::CELLS).collect();
    let generated = only.is_none();
    o.indices = only.unwrap_or_else(|| (first..first + count).collect());
    match matrix.as_deref() {
        None if generated => o.matrix = all,
        None | Some("off") => {}
        Some("on") => o.matrix = all,
        Some("only") => {
            o.matrix = all;
            o.indices.clear();
        }
        Some(list) => {
            o.matrix = list
                .split(',')
                .map(|s| {
                    s.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|c| *c < gen::matrix::CELLS)
                        .ok_or_else(|| {
                            format!(
                                "--matrix: {s:?} is not on, off, only or a container number below {}",
                                gen::matrix::CELLS
                            )
                        })
                })
                .collect::<Result<_, _>>()?;
            o.indices.clear();
        }
    }
    Ok(o)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match args.get(1).map(String::as_str) {
        Some("observe") => observe::main(),
        Some("hook") | Some("fail") => hook::main(&args),
        Some("run") => match parse_run(&args[2..]) {
            Ok(o) => driver::run(o),
            Err(e) => {
                eprintln!("differential: {e}\n{USAGE}");
                2
            }
        },
        Some("show") => match (
            args.get(2).and_then(|s| s.parse().ok()),
            args.get(3).and_then(|s| s.parse::<u64>().ok()),
        ) {
            (seed, Some(index))
                if seed.is_some() || (args[2] == "matrix" && index < gen::matrix::CELLS as u64) =>
            {
                let c = match seed {
                    Some(seed) => gen::generate(seed, index),
                    None => gen::matrix::case(index as usize),
                };
                println!(
                    "{}",
                    serde_json::to_string_pretty(&c.config).unwrap_or_default()
                );
                println!(
                    "tags: {}\nplan: {}\nhost: {:?}",
                    c.tags.join(" "),
                    c.plan,
                    c.host
                );
                0
            }
            _ => {
                eprintln!("{USAGE}");
                2
            }
        },
        Some("update-readme") => match (args.get(2).map(|p| contract::load(p)), args.get(3)) {
            (Some(Ok(entries)), Some(readme)) => match contract::update_readme(&entries, readme) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("differential: {e}");
                    2
                }
            },
            (Some(Err(e)), _) => {
                eprintln!("differential: {e}");
                2
            }
            _ => {
                eprintln!("{USAGE}");
                2
            }
        },
        Some("contract-markdown") => match args.get(2).map(|p| contract::load(p)) {
            Some(Ok(entries)) => {
                println!(
                    "{}\n{}{}",
                    contract::BEGIN,
                    contract::markdown(&entries),
                    contract::END
                );
                0
            }
            Some(Err(e)) => {
                eprintln!("differential: {e}");
                2
            }
            None => {
                eprintln!("{USAGE}");
                2
            }
        },
        _ => {
            eprintln!("{USAGE}");
            2
        }
    };
    std::process::exit(code);
}
