//! cri-replay — replays, one call at a time, what kubelet asks of a container runtime over
//! the CRI (containerd's CRI plugin in front of an OCI runtime), and checks what the kernel
//! shows for every step: namespaces, cgroups, credentials, mounts, processes.
//!
//! Usage (as root, inside the guest set up by integration/cri/guest):
//!   cri-replay replay  --socket S --handler H [--driver cgroupfs] --work DIR
//!                      [--runtime-root DIR] [--results FILE]
//!   cri-replay latency --socket S --handler H... [--rounds N] --work DIR [--results FILE]
//!
//! `replay` runs the whole scenario with RuntimeClass handler H and prints PASS/FAIL per step,
//! ending with "N passed, N failed"; its exit status is the number of failed steps (≤ 100).
//! `latency` times RunPodSandbox + CreateContainer + StartContainer for each handler, the
//! handlers interleaved round by round, and prints the medians and their ratios.

mod cgroup;
mod cri;
mod kernel;
mod latency;
mod pods;
mod replay;
mod report;
mod spec;
mod stream;
mod web;

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

pub struct Args {
    pub socket: PathBuf,
    pub handlers: Vec<String>,
    pub driver: cgroup::Driver,
    pub work: PathBuf,
    pub runtime_root: Option<PathBuf>,
    pub results: Option<PathBuf>,
    pub rounds: usize,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<(String, Args)> {
    let cmd = argv.next().context("no subcommand (replay or latency)")?;
    let mut a = Args {
        socket: PathBuf::from("/run/containerd/containerd.sock"),
        handlers: Vec::new(),
        driver: cgroup::Driver::Cgroupfs,
        work: PathBuf::new(),
        runtime_root: None,
        results: None,
        rounds: 5,
    };
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--socket" => a.socket = value()?.into(),
            "--handler" => a.handlers.push(value()?),
            "--driver" => a.driver = cgroup::Driver::parse(&value()?)?,
            "--work" => a.work = value()?.into(),
            "--runtime-root" => a.runtime_root = Some(value()?.into()),
            "--results" => a.results = Some(value()?.into()),
            "--rounds" => {
                a.rounds = value()?
                    .parse()
                    .context("--rounds needs a positive number")?
            }
            _ => bail!("unknown argument {flag}"),
        }
    }
    if a.handlers.is_empty() {
        bail!("no --handler given");
    }
    if !a.work.is_absolute() {
        bail!("--work needs an absolute directory");
    }
    if cmd == "replay" && a.handlers.len() != 1 {
        bail!("replay takes exactly one --handler");
    }
    if a.rounds == 0 {
        bail!("--rounds needs a positive number");
    }
    Ok((cmd, a))
}

fn main() {
    let code = match parse(std::env::args().skip(1)) {
        Err(e) => {
            eprintln!("cri-replay: {e:#}");
            2
        }
        Ok((cmd, args)) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            let run = async {
                let cri = cri::Cri::connect(&args.socket).await?;
                match cmd.as_str() {
                    "replay" => replay::replay(&cri, &args).await,
                    "latency" => latency::run(&cri, &args).await,
                    _ => bail!("unknown subcommand {cmd} (replay or latency)"),
                }
            };
            match rt.block_on(run) {
                Ok(failed) => failed.min(100) as i32,
                Err(e) => {
                    eprintln!("cri-replay: {e:#}");
                    2
                }
            }
        }
    };
    std::process::exit(code);
}
