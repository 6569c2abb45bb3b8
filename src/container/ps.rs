//! `ps`: the container's processes (every pid in its cgroup and the cgroups below). JSON is
//! the bare array of pids containerd's shim parses; the table is ps(1)'s output (with the
//! given options, default `-ef`) filtered to those pids, as runc prints it.

use std::io::Write;

use anyhow::{bail, Context, Result};

use super::{Format, Global};
use crate::cgroups;
use crate::state::Store;

pub fn ps(g: &Global, id: &str, format: Format, ps_args: &[String]) -> Result<()> {
    let (locked, state) = Store::new(&g.root).open(id)?;
    let pids = match &state.cgroup {
        Some(cg) => cgroups::pids(cg)?,
        None => super::kill::without_cgroup(&state)?,
    };
    drop(locked);
    let mut out = std::io::stdout().lock();
    if format == Format::Json {
        writeln!(out, "{}", serde_json::to_string(&pids)?)?;
        return Ok(());
    }
    let default = ["-ef".to_string()];
    let args = if ps_args.is_empty() {
        &default[..]
    } else {
        ps_args
    };
    let res = std::process::Command::new("ps")
        .args(args)
        .output()
        .context("running ps")?;
    if !res.status.success() {
        bail!(
            "ps {}: {}: {}{}",
            args.join(" "),
            res.status,
            String::from_utf8_lossy(&res.stdout),
            String::from_utf8_lossy(&res.stderr)
        );
    }
    let text = String::from_utf8_lossy(&res.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("couldn't find PID field in ps output")?;
    writeln!(out, "{header}")?;
    for line in lines.filter(|l| !l.is_empty()) {
        let pid: i32 = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("unable to parse pid in ps output: {line:?}"))?;
        if pids.contains(&pid) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}
