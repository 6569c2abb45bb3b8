//! A container process compiled once, before anything is created: the init's from
//! config.json (bundle time), an `exec` process's from `--process` or from the container's
//! process with the command line's overrides. The init and the exec child only apply it.

use anyhow::{ensure, Context, Result};
use oci_spec::runtime::Process;

use super::capabilities::Sets;
use super::lsm;
use super::procattrs::ProcessAttrs;

#[derive(Debug, Clone)]
pub struct ProcessPlan {
    /// args, env, cwd, user, rlimits, noNewPrivileges, consoleSize, oomScoreAdj: checked,
    /// and applied as they stand.
    pub process: Process,
    /// ioPriority, scheduler, execCPUAffinity.
    pub attrs: ProcessAttrs,
    /// capabilities, converted to the kernel's.
    pub caps: Sets,
    /// The LSM exec labels to request: (file below /proc/self/, data).
    pub labels: Vec<(&'static str, String)>,
    /// process.terminal.
    pub terminal: bool,
}

impl ProcessPlan {
    /// The container's own process (config.json's `process`), checked and compiled.
    pub fn compile_init(process: Option<&Process>, host: lsm::Host) -> Result<ProcessPlan> {
        let p = process.context("process: missing")?;
        check_init(p)?;
        ProcessPlan::compile(p.clone(), host)
    }

    /// Checks and compiles `process`; `host` says which LSMs the labels may name.
    pub fn compile(process: Process, host: lsm::Host) -> Result<ProcessPlan> {
        Ok(ProcessPlan {
            attrs: ProcessAttrs::compile(&process)?,
            caps: Sets::from_spec(process.capabilities().as_ref())?,
            labels: lsm::exec_writes(&process, host)?,
            terminal: process.terminal().unwrap_or(false),
            process,
        })
    }
}

/// What the init's process must be beyond what any process must (an `exec` process file
/// is only required to have args, as runc requires).
fn check_init(p: &Process) -> Result<()> {
    let args = p.args().as_deref().unwrap_or_default();
    ensure!(
        !args.is_empty(),
        "process.args: must hold at least the program to run"
    );
    ensure!(
        p.cwd().is_absolute(),
        "process.cwd: must be an absolute path, got {:?}",
        p.cwd()
    );
    let mut seen = Vec::new();
    for r in p.rlimits().iter().flatten() {
        ensure!(
            !seen.contains(&r.typ()),
            "process.rlimits: {} given twice",
            r.typ()
        );
        seen.push(r.typ());
        ensure!(
            r.soft() <= r.hard(),
            "process.rlimits: {:?} soft limit {} is above its hard limit {}",
            r.typ(),
            r.soft(),
            r.hard()
        );
    }
    for e in p.env().iter().flatten() {
        ensure!(
            e.contains('='),
            "process.env: {e:?} is not of the form KEY=value"
        );
    }
    Ok(())
}
