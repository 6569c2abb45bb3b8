//! Carrying out a [`Plan`] on a cgroup: check that the hierarchy has every controller the
//! plan needs (a clear error naming the spec field otherwise — never a silent skip), delegate
//! the controllers down the ancestors' cgroup.subtree_control (all that each offers, as runc
//! does; the needed ones must succeed), write the interface files, and attach the device
//! program.

use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Write as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::devices::{self, Rule};
use super::resources::{Plan, Write};
use crate::sys::bpf;

/// Applies `plan` to the cgroup at `cg` (inside the hierarchy mounted at `mount`).
pub fn apply(mount: &Path, cg: &Path, dirfd: BorrowedFd<'_>, plan: &Plan) -> Result<()> {
    let mut needed: BTreeMap<&str, &str> = BTreeMap::new();
    for w in &plan.writes {
        if let Some(c) = w.controller() {
            needed.entry(c).or_insert(&w.field);
        }
    }
    enable_controllers(mount, cg, &needed)?;
    check_usage(cg, plan)?;
    let mut late = vec![];
    for w in &plan.writes {
        match write_one(cg, w) {
            Err(e) if w.retry_late && e.raw_os_error() == Some(libc::EINVAL) => late.push(w),
            r => r.map_err(|e| describe(cg, w, e))?,
        }
    }
    for w in late {
        write_one(cg, w).map_err(|e| describe(cg, w, e))?;
    }
    if let Some(rules) = &plan.devices {
        program_devices(dirfd, rules).context("linux.resources.devices")?;
    }
    Ok(())
}

fn controllers(dir: &Path, file: &str) -> Result<Vec<String>> {
    let p = dir.join(file);
    let text = fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    Ok(text.split_whitespace().map(str::to_string).collect())
}

/// Delegation, as runc does it: every controller an ancestor of the container cgroup has
/// (its cgroup.controllers) is enabled in its cgroup.subtree_control, top-down from the
/// hierarchy root, so the container's cgroup gets all of them even without limits (and can
/// hand them on to cgroups the container makes). Each is tried on its own and a refusal is
/// ignored — typically EBUSY for a domain controller in an ancestor with processes of its own
/// (cgroup v2's no-internal-processes rule) — except for the controllers the plan `needed`:
/// those must be in the hierarchy at all (an error naming the spec field otherwise) and
/// enabled at every level. (Controllers enabled in pre-existing ancestors stay enabled, as
/// with runc: other cgroups there may rely on them.)
fn enable_controllers(mount: &Path, cg: &Path, needed: &BTreeMap<&str, &str>) -> Result<()> {
    if !needed.is_empty() {
        let available = controllers(mount, "cgroup.controllers")?;
        for (c, field) in needed {
            if !available.iter().any(|a| a == c) {
                bail!(
                    "{field}: the cgroup v2 hierarchy at {} has no {c:?} controller (it has: \
                     {}); skiff uses cgroup v2 only and cannot apply this limit{}",
                    mount.display(),
                    if available.is_empty() {
                        "none".into()
                    } else {
                        available.join(" ")
                    },
                    if mount.ends_with("unified") {
                        " (on this hybrid host the controller is bound to a cgroup v1 hierarchy)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    let rel = cg.strip_prefix(mount).unwrap_or(Path::new(""));
    let mut dir = mount.to_path_buf();
    let mut chain: Vec<PathBuf> = vec![dir.clone()];
    for c in rel.parent().into_iter().flat_map(|p| p.components()) {
        dir.push(c);
        chain.push(dir.clone());
    }
    for dir in chain {
        let enabled = controllers(&dir, "cgroup.subtree_control")?;
        let mut offered = controllers(&dir, "cgroup.controllers")?;
        // A needed controller missing here is tried too, for the kernel's reason.
        for c in needed.keys() {
            if !offered.iter().any(|o| o == c) {
                offered.push(c.to_string());
            }
        }
        for c in offered.iter().filter(|c| !enabled.contains(c)) {
            let file = dir.join("cgroup.subtree_control");
            let r = fs::OpenOptions::new()
                .write(true)
                .open(&file)
                .and_then(|mut f| f.write_all(format!("+{c}").as_bytes()));
            let (Err(e), Some(field)) = (r, needed.get(c.as_str())) else {
                continue;
            };
            let hint = match e.raw_os_error() {
                Some(libc::EBUSY) => {
                    " (that cgroup has processes of its own, and cgroup v2 enables domain \
                     controllers only for cgroups without them: place the container \
                     elsewhere with an absolute linux.cgroupsPath)"
                }
                Some(libc::EOPNOTSUPP) => " (a threaded cgroup cannot have this controller)",
                Some(libc::ENOENT) => {
                    " (the parent cgroup does not offer it: it is not in its cgroup.controllers)"
                }
                _ => "",
            };
            bail!(
                "{field}: enabling the {c} controller in {}: {e}{hint}",
                file.display()
            );
        }
    }
    Ok(())
}

/// checkBeforeUpdate: refuse a memory limit at or below the current usage (runc's wording).
fn check_usage(cg: &Path, plan: &Plan) -> Result<()> {
    if plan.check_usage.is_empty() {
        return Ok(());
    }
    // Best effort, as runc: without memory.current there is nothing to compare with.
    let Some(usage) = fs::read_to_string(cg.join("memory.current"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    else {
        return Ok(());
    };
    for (what, limit) in &plan.check_usage {
        if *limit <= usage {
            bail!("linux.resources.memory: rejecting {what} {limit} <= usage {usage}");
        }
    }
    Ok(())
}

/// Writes the value in one write(2), as cgroup files require; ENOENT falls back or skips as
/// the write says.
fn write_one(cg: &Path, w: &Write) -> std::io::Result<()> {
    match write_file(&cg.join(&w.file), &w.value) {
        Err(e) if e.kind() == ErrorKind::NotFound => match &w.fallback {
            Some((file, value)) => write_file(&cg.join(file), value),
            None if w.if_exists => Ok(()),
            None => Err(e),
        },
        r => r,
    }
}

fn write_file(path: &Path, value: &str) -> std::io::Result<()> {
    // No O_CREAT: interface files exist or the kernel does not have them.
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    let n = f.write(value.as_bytes())?;
    if n != value.len() {
        return Err(std::io::Error::new(ErrorKind::WriteZero, "short write"));
    }
    Ok(())
}

fn describe(cg: &Path, w: &Write, e: std::io::Error) -> anyhow::Error {
    let target = match (&w.fallback, e.kind()) {
        (Some((file, _)), ErrorKind::NotFound) => format!("{} nor {file}", w.file),
        _ => w.file.clone(),
    };
    if e.kind() == ErrorKind::NotFound {
        let mut msg = format!(
            "{}: this kernel has no {target} in {} (the {} controller is enabled)",
            w.field,
            cg.display(),
            w.controller().unwrap_or("cgroup")
        );
        if w.file.starts_with("hugetlb.") {
            let sizes = super::hugetlb_sizes(cg, "max");
            msg += &format!("; huge page sizes here: {}", sizes.join(", "));
        }
        return anyhow!(msg);
    }
    anyhow!(
        "{}: writing {:?} to {}: {e}",
        w.field,
        w.value,
        cg.join(&w.file).display()
    )
}

/// The name skiff's device programs are loaded with.
const PROG_NAME: &str = "skiff_devices";

/// Loads the program for `rules` and makes it the cgroup's device program: it replaces the
/// one skiff attached before (atomically with BPF_F_REPLACE when there is exactly one), or
/// is attached before the old ones are detached, so the cgroup is never left unfiltered.
/// Programs of others stay: systemd's for a unit's `DevicePolicy` (all must allow).
fn program_devices(cg: BorrowedFd<'_>, rules: &[Rule]) -> Result<()> {
    let insns = devices::compile(rules);
    let prog = bpf::load_device_prog(&insns, c"Apache", PROG_NAME)
        .context("loading the device cgroup BPF program")?;
    let mut old: Vec<OwnedFd> = vec![];
    for id in
        bpf::query_device_progs(cg).context("listing the device programs attached to the cgroup")?
    {
        let fd = bpf::prog_fd_by_id(id).context("opening an attached device program")?;
        if bpf::prog_name(fd.as_fd()).context("reading an attached device program's name")?
            == PROG_NAME
        {
            old.push(fd);
        }
    }
    if let [one] = old.as_slice() {
        let r = bpf::attach_device_prog(
            cg,
            prog.as_fd(),
            bpf::F_ALLOW_MULTI | bpf::F_REPLACE,
            Some(one.as_fd()),
        );
        if r.is_ok() {
            return Ok(());
        }
    }
    bpf::attach_device_prog(cg, prog.as_fd(), bpf::F_ALLOW_MULTI, None)
        .context("attaching the device program to the cgroup")?;
    for o in &old {
        bpf::detach_device_prog(cg, o.as_fd()).context("detaching the previous device program")?;
    }
    Ok(())
}
