//! The parent side of `create`: clone3 the init and serve its requests until it is ready
//! (the sequence is in `sync.rs`). On any failure the init is killed and reaped before the
//! error is returned, so the caller only has to undo its own files and cgroup.

use std::io::Write;

use anyhow::{Context, Result};
use nix::sched::CloneFlags;

pub use super::spawn::Init;
use super::spawn::{self, Cloned};
use super::sync::{self, ParentSide, Request};
use super::{child, Launch};

/// An init that reported `Ready` and waits for [`Spawned::commit`] before it may outlive us
/// (dropping this instead makes it exit: EOF on its socket).
#[derive(Debug)]
pub struct Spawned {
    pub init: Init,
    side: ParentSide,
}

impl Spawned {
    /// Tells the init the container is recorded; from now on it waits on the exec fifo.
    pub fn commit(self) -> Result<Init> {
        self.side
            .commit()
            .context("telling the container init it is recorded")?;
        Ok(self.init)
    }
}

/// Spawns the init into `cgroup` and drives it to `Ready`. `record` is called with the
/// init's pid as soon as it is let go (`Go`), while it sets up: a crash of ours then leaves
/// an init that state.json names (and that dies with us anyway, process::sync).
pub fn spawn(
    l: &mut Launch<'_>,
    cgroup: Option<spawn::Birthplace<'_>>,
    record: &mut dyn FnMut(i32) -> Result<()>,
) -> Result<Spawned> {
    let (pend, cend) = sync::pair()?;
    l.close_in_child.push(pend.raw_fd());
    let plan = l.plan;
    let enter = plan.join_pid.as_ref().map(|j| move || j.enter());
    let enter = enter.as_ref().map(|e| e as &dyn Fn() -> Result<()>);
    if plan.unprivileged {
        super::inherit_oom_score_adj(&l.bundle.process)?;
    }
    let flags = plan.clone.bits() as u64;
    let (cloned, attach) = spawn::clone_into("container init", flags, cgroup, enter)?;
    let mut child = match cloned {
        Cloned::Child => {
            drop(pend);
            child::main(l, cend)
        }
        Cloned::Parent(guard) => guard,
    };
    let pid = child.pid();
    if let Some(attach) = attach {
        // Before it hears from us: it makes its cgroup namespace, and forks the init, only
        // once its id maps are written.
        attach(pid)?;
        crate::logging::step("create: init attached to the unit's cgroup by systemd");
    }
    crate::failpoint!("spawn.cloned");
    drop(cend);
    crate::logging::step("create: init cloned");
    let mut side = ParentSide::new(pend, plan.unshare_user, plan.fork);
    let b = l.bundle;
    if plan.clone.contains(CloneFlags::CLONE_NEWUSER) {
        write_id_maps(pid, &b.id_maps)?;
        crate::failpoint!("spawn.maps");
    }
    // linux.netDevices, as soon as the network namespace exists (netdev.rs); declared after
    // `child` so a failure moves the devices back before the init is killed.
    let mut netdevs = crate::process::netdev::attach(
        &b.net_devices,
        plan,
        pid,
        crate::process::netdev::Stage::Cloned,
    )?;
    let process = &b.process;
    if !plan.fork {
        if !plan.unprivileged {
            super::set_oom_score_adj(pid, process)?;
        }
        side.go(pid)?;
        crate::failpoint!("spawn.go");
        record(pid)?;
        crate::failpoint!("spawn.recorded");
    }
    loop {
        match side.next_request()? {
            Request::MapIds => {
                write_id_maps(pid, &b.id_maps)?;
                crate::failpoint!("spawn.maps");
                side.maps_done()?;
            }
            Request::InitPid(p) => {
                child.adopt(p, "init")?;
                if let Some(a) = crate::process::netdev::attach(
                    &b.net_devices,
                    plan,
                    p,
                    crate::process::netdev::Stage::Forked,
                )? {
                    netdevs = Some(a);
                }
                if !plan.unprivileged {
                    super::set_oom_score_adj(p, process)?;
                }
                side.go(p)?;
                crate::failpoint!("spawn.go");
                record(p)?;
                crate::failpoint!("spawn.recorded");
            }
            Request::RunHooks => {
                crate::failpoint!("spawn.hooks");
                let pid = child.pid();
                let state = l.oci_state(crate::state::Status::Creating, pid);
                crate::hooks::run_all("prestart", b.hooks.prestart().as_ref(), &state)?;
                crate::hooks::run_all("createRuntime", b.hooks.create_runtime().as_ref(), &state)?;
                crate::logging::step("create: prestart and createRuntime hooks run");
                crate::failpoint!("spawn.hooks-done");
                side.hooks_done()?;
            }
            Request::Ready => {
                crate::failpoint!("spawn.ready");
                let pid = child.pid();
                if let Some(a) = crate::process::netdev::attach(
                    &b.net_devices,
                    plan,
                    pid,
                    crate::process::netdev::Stage::Ready,
                )? {
                    netdevs = Some(a);
                }
                break;
            }
        }
    }
    if let Some(a) = netdevs {
        a.keep();
    }
    Ok(Spawned {
        init: child.disarm(),
        side,
    })
}

/// Writes /proc/<pid>/{uid,gid}_map from linux.uidMappings/gidMappings: directly, or for
/// an unprivileged caller's subordinate ranges through newuidmap/newgidmap (compiled into
/// `maps`); an unprivileged caller mapping only its own gid denies setgroups first, which
/// the kernel requires of it.
fn write_id_maps(pid: i32, maps: &crate::process::namespaces::IdMaps) -> Result<()> {
    let uid = ("uid_map", "linux.uidMappings", &maps.uid, &maps.uid_helper);
    let gid = ("gid_map", "linux.gidMappings", &maps.gid, &maps.gid_helper);
    write_map(pid, uid)?;
    if maps.deny_setgroups {
        let path = format!("/proc/{pid}/setgroups");
        std::fs::write(&path, "deny").with_context(|| {
            format!(
                "linux.gidMappings: writing \"deny\" to {path} (needed to map a gid unprivileged)"
            )
        })?;
    }
    write_map(pid, gid)
}

fn write_map(
    pid: i32,
    (file, field, text, helper): (&str, &str, &String, &Option<std::path::PathBuf>),
) -> Result<()> {
    if let Some(helper) = helper {
        return run_map_helper(pid, field, text, helper);
    }
    let path = format!("/proc/{pid}/{file}");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .with_context(|| format!("{field}: opening {path}"))?;
    // The kernel takes the whole map in a single write.
    f.write_all(text.as_bytes())
        .with_context(|| format!("{field}: writing {:?} to {path}", text.trim_end()))?;
    Ok(())
}

/// `newuidmap PID ID HOSTID COUNT...` (or newgidmap): the setuid helper that writes ranges
/// /etc/subuid (subgid) grants the caller.
fn run_map_helper(pid: i32, field: &str, text: &str, helper: &std::path::Path) -> Result<()> {
    let mut cmd = std::process::Command::new(helper);
    cmd.arg(pid.to_string()).args(text.split_whitespace());
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("{field}: running {}", helper.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "{field}: {} {pid} {} failed ({}): {}",
            helper.display(),
            text.split_whitespace().collect::<Vec<_>>().join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
