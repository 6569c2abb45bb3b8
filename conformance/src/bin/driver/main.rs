//! driver: generates one bundle per case, drives the runtime under test only
//! through the OCI operations (create, start, state, kill, delete), and
//! reports TAP version 13 plus a closing `N passed, N failed, N skipped`.
//! `--strict` (where the machine has everything a case needs, as the guest does) makes a
//! skip a failure, except for cases matching `--allow-skip REGEX`. `--runtime-flag FLAG`
//! (repeatable) passes a global flag to every runtime call (`--systemd-cgroup`).

mod cases;
mod harness;

use harness::*;
use regex::Regex;

fn usage() -> ! {
    eprintln!("usage: driver --runtime PATH --probe PATH [--busybox PATH] [--filter REGEX] [--list] [--keep] [--timeout SECS] [--strict [--allow-skip REGEX]] [--runtime-flag FLAG]...");
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut runtime = None;
    let mut probe = None;
    let mut busybox = "/bin/busybox".to_string();
    let mut filter = None;
    let mut list = false;
    let mut keep = false;
    let mut timeout = 30u64;
    let mut strict = false;
    let mut rt_flags = vec![];
    let mut allow_skip = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runtime" => runtime = args.next(),
            "--probe" => probe = args.next(),
            "--busybox" => busybox = args.next().unwrap_or_else(|| usage()),
            "--filter" => filter = args.next(),
            "--list" => list = true,
            "--keep" => keep = true,
            "--strict" => strict = true,
            "--runtime-flag" => rt_flags.push(args.next().unwrap_or_else(|| usage())),
            "--allow-skip" => allow_skip = args.next(),
            "--timeout" => {
                timeout = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    let all = cases::all();
    let re = filter.map(|f| {
        Regex::new(&f).unwrap_or_else(|e| {
            eprintln!("bad --filter: {e}");
            std::process::exit(2)
        })
    });
    let selected: Vec<&Case> = all
        .iter()
        .filter(|c| re.as_ref().map(|r| r.is_match(&c.id)).unwrap_or(true))
        .collect();
    if list {
        for c in &selected {
            let g = match &c.needs {
                Needs::None => String::new(),
                n => format!("  [{}]", n.describe()),
            };
            println!("{}  ({}){g}", c.id, c.section);
        }
        return;
    }
    let allow_skip = allow_skip.map(|f| {
        Regex::new(&f).unwrap_or_else(|e| {
            eprintln!("bad --allow-skip: {e}");
            std::process::exit(2)
        })
    });
    let Some(runtime) = runtime else { usage() };
    let Some(probe) = probe else { usage() };
    let cx = match Ctx::new(&runtime, &probe, &busybox, keep, timeout) {
        Ok(mut c) => {
            c.rt_flags = rt_flags;
            c
        }
        Err(e) => {
            eprintln!("driver: setup failed: {e}");
            std::process::exit(2)
        }
    };
    println!("TAP version 13");
    println!(
        "# runtime: {} {} ({})",
        runtime,
        cx.rt_flags.join(" "),
        cx.runtime_version()
    );
    println!("# host: {}", cx.host.describe());
    println!("1..{}", selected.len());
    let (mut p, mut f, mut s, mut d) = (0, 0, 0, 0);
    for (i, c) in selected.iter().enumerate() {
        let n = i + 1;
        let v = match c.needs.unmet(&cx.host) {
            Some(reason) => V::Skip(reason),
            None => cx.run_case(c),
        };
        let v = match v {
            V::Skip(r) if strict && !allow_skip.as_ref().is_some_and(|a| a.is_match(&c.id)) => {
                V::Fail(format!("--strict: this machine should run it, but: {r}"))
            }
            v => v,
        };
        match v {
            V::Pass => {
                p += 1;
                println!("ok {n} - {} ({})", c.id, c.section);
            }
            V::Skip(r) => {
                s += 1;
                println!(
                    "ok {n} - {} ({}) # SKIP {}",
                    c.id,
                    c.section,
                    r.replace('\n', " ")
                );
            }
            V::Diverge(why) => {
                d += 1;
                println!(
                    "not ok {n} - {} ({}) # TODO {}",
                    c.id,
                    c.section,
                    why.replace('\n', " ")
                );
            }
            V::Fail(msg) => {
                f += 1;
                println!("not ok {n} - {} ({})", c.id, c.section);
                println!("  ---");
                println!("  spec: {:?}", c.spec);
                println!("  message: |");
                for l in msg.lines().take(60) {
                    println!("    {l}");
                }
                println!("  ...");
            }
        }
    }
    cx.finish();
    if d > 0 {
        println!("# {d} documented divergence(s) from the spec, following runc (TODO lines above)");
    }
    println!("{p} passed, {f} failed, {s} skipped");
    std::process::exit(if f > 0 { 1 } else { 0 });
}
