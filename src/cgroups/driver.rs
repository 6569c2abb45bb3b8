//! The cgroup driver seam: how a container's cgroup is placed, made, changed and removed.
//! `Fs` makes the directory itself (cgroupfs, the default); `Systemd` (`--systemd-cgroup`)
//! has systemd make a transient unit for it and keeps systemd's view of the limits in step
//! with the files. Everything after the cgroup exists (the init born into it, exec, pause,
//! kill, ps, stats) works on the directory and does not care which driver made it.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::resources::Plan;
use super::systemd::bus::Which;
use super::systemd::{manager::Systemd, properties, unit, unit::Unit};
use super::{check_unused, denied, host_layout, resolve, Cgroup};
use crate::sys::clone::Placeholder;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Driver {
    #[default]
    Fs,
    /// The system's systemd, or (rootless) the user's own manager.
    Systemd(Which),
}

/// Where a new container's cgroup goes, decided before anything is made.
#[derive(Debug)]
pub struct Placement {
    /// The cgroup2 hierarchy's mount point.
    pub mount: PathBuf,
    /// The container's cgroup, relative to the mount.
    pub rel: PathBuf,
    /// The systemd unit that owns it, and whose systemd (systemd driver).
    pub unit: Option<(Unit, Which)>,
}

/// A cgroup just made: its directory fd (to clone the init into) and the directories the
/// runtime itself created. With systemd, a placeholder process keeps the unit's cgroup alive
/// (a scope cannot start empty) until the init is born there: `born` (or drop) ends it.
pub struct Made {
    pub dirfd: OwnedFd,
    pub created: Vec<PathBuf>,
    placeholder: Option<Placeholder>,
}

impl Made {
    /// The init is in the cgroup: the placeholder goes.
    pub fn born(&mut self) {
        self.placeholder = None;
    }
}

impl Placement {
    /// Resolves `cgroups_path` (linux.cgroupsPath) for container `id` under `driver`.
    pub fn new(driver: Driver, cgroups_path: Option<&Path>, id: &str) -> Result<Placement> {
        let (mount, own) = host_layout()?;
        let (rel, unit) = match driver {
            Driver::Fs => (resolve(cgroups_path, &own, id)?, None),
            Driver::Systemd(which) => {
                let p = cgroups_path.map(|p| p.to_string_lossy().into_owned());
                let (default_slice, base) = match which {
                    Which::System => (unit::DEFAULT_SLICE, PathBuf::new()),
                    // A user's manager keeps its units below its own cgroup.
                    Which::User => {
                        let cg = Systemd::connect(which)?.control_group()?;
                        (unit::USER_SLICE, PathBuf::from(cg.trim_start_matches('/')))
                    }
                };
                let unit = Unit::from_cgroups_path(p.as_deref(), id, default_slice)?;
                (base.join(&unit.rel), Some((unit, which)))
            }
        };
        Ok(Placement { mount, rel, unit })
    }

    pub fn dir(&self) -> PathBuf {
        self.mount.join(&self.rel)
    }

    /// runc's refusals (a cgroup in use, or frozen), before anything is made or changed.
    pub fn check_unused(&self) -> Result<()> {
        check_unused(&self.mount, &self.rel)
    }

    /// The directories skiff will make, deepest first: what the record names before they
    /// exist (systemd makes a unit's cgroup itself).
    pub fn to_make(&self) -> Vec<PathBuf> {
        if self.unit.is_some() {
            return vec![];
        }
        let mut out = Vec::new();
        let mut cur = self.mount.clone();
        for c in self.rel.components() {
            cur.push(c);
            if !cur.exists() {
                out.push(cur.clone());
            }
        }
        out.reverse();
        out
    }

    /// Makes the cgroup: the directories, or the systemd unit with the properties for
    /// `resources` (the files are written afterwards either way: `apply`).
    pub fn make(&self, id: &str, resources: &Plan) -> Result<Made> {
        let Some((unit, which)) = &self.unit else {
            let cg = Cgroup::create(&self.mount, &self.rel)?;
            let dirfd = cg.dirfd.try_clone().context("duplicating the cgroup fd")?;
            let (_, created) = cg.keep();
            return Ok(Made {
                dirfd,
                created,
                placeholder: None,
            });
        };
        let props = properties::from_plan(resources, &proc_devices())?;
        let placeholder = Placeholder::spawn().context("spawning the unit's placeholder")?;
        let pid = u32::try_from(placeholder.pid()).context("the placeholder's pid")?;
        Systemd::connect(*which)?.start(unit, id, pid, props)?;
        let dir = self.dir();
        let dirfd = std::fs::File::open(&dir)
            .map(OwnedFd::from)
            .with_context(|| format!("opening the cgroup {} of {}", dir.display(), unit.name))?;
        Ok(Made {
            dirfd,
            created: vec![],
            placeholder: Some(placeholder),
        })
    }
}

impl Placement {
    /// [`Placement::make`] for `--rootless`: where the caller may not make the cgroup
    /// (EACCES, EPERM, EROFS), a container with neither a cgroupsPath nor a limit runs in the
    /// caller's cgroup (`Ok(None)`), and any other fails saying what it lacks; runc's rule.
    pub fn make_rootless(
        &self,
        id: &str,
        resources: &Plan,
        has_path: bool,
    ) -> Result<Option<Made>> {
        match self.make(id, resources) {
            Ok(made) => Ok(Some(made)),
            Err(e) if !denied(&e) => Err(e),
            Err(e) if has_path => Err(e.context(
                "rootless: linux.cgroupsPath names a cgroup this user may not make (delegate \
                 that subtree to the user, or leave cgroupsPath out)",
            )),
            Err(e) if !resources.writes.is_empty() => Err(e.context(
                "rootless: linux.resources sets limits, which need a cgroup this user may \
                 make (a delegated cgroup v2 subtree, e.g. systemd's user@.service with \
                 Delegate=yes)",
            )),
            Err(_) => Ok(None),
        }
    }
}

/// Tells the unit (if any) about changed limits, before their files are written.
pub fn update_unit(unit: Option<(&str, Which)>, plan: &Plan) -> Result<()> {
    let Some((name, which)) = unit else {
        return Ok(());
    };
    Systemd::connect(which)?.set(name, properties::from_plan(plan, &proc_devices())?)
}

/// `/proc/devices`, for the names of device majors in `DeviceAllow` (empty if unreadable:
/// every group is then widened to all devices of its type, and skiff's program still
/// enforces the rules).
fn proc_devices() -> String {
    crate::host::read_limited(std::path::Path::new("/proc/devices"))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

/// Stops the container's unit (if any) once its processes are gone: systemd removes the
/// unit's cgroup.
pub fn remove_unit(unit: Option<(&str, Which)>) -> Result<()> {
    let Some((name, which)) = unit else {
        return Ok(());
    };
    Systemd::connect(which)?.stop(name)
}

/// Puts `pid` into the unit's cgroup through its systemd (a user's manager that may not move
/// it asks the system's, which checks that the process is the user's): for a process that
/// could not be born there.
pub fn attach_to_unit(unit: (&str, Which), pid: i32) -> Result<()> {
    let pid = u32::try_from(pid).context("pid")?;
    Systemd::connect(unit.1)?.attach(unit.0, pid)
}
