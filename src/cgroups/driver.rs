//! The cgroup driver seam: how a container's cgroup is placed, made, changed and removed.
//! `Fs` makes the directory itself (cgroupfs, the default); `Systemd` (`--systemd-cgroup`)
//! has systemd make a transient unit for it and keeps systemd's view of the limits in step
//! with the files. Everything after the cgroup exists (the init born into it, exec, pause,
//! kill, ps, stats) works on the directory and does not care which driver made it.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::resources::Plan;
use super::systemd::{manager::Systemd, properties, unit::Unit};
use super::{check_unused, host_layout, resolve, Cgroup};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Driver {
    #[default]
    Fs,
    Systemd,
}

/// Where a new container's cgroup goes, decided before anything is made.
#[derive(Debug)]
pub struct Placement {
    /// The cgroup2 hierarchy's mount point.
    pub mount: PathBuf,
    /// Our own cgroup, relative to the mount.
    own: PathBuf,
    /// The container's cgroup, relative to the mount.
    pub rel: PathBuf,
    /// The systemd unit that owns it (systemd driver).
    pub unit: Option<Unit>,
}

/// A cgroup just made: its directory fd (to clone the init into) and the directories the
/// runtime itself created. With systemd, skiff itself is in the unit until the init is born
/// there (a scope cannot start empty); `born` (or drop) takes it back to its own cgroup.
pub struct Made {
    pub dirfd: OwnedFd,
    pub created: Vec<PathBuf>,
    home: Option<PathBuf>,
}

impl Made {
    /// The init is in the cgroup: skiff's own process leaves it.
    pub fn born(&mut self) -> Result<()> {
        match self.home.take() {
            Some(home) => go_home(&home),
            None => Ok(()),
        }
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            let _ = go_home(&home);
        }
    }
}

fn go_home(home: &Path) -> Result<()> {
    let procs = home.join("cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string())
        .with_context(|| format!("moving skiff back to its own cgroup ({})", procs.display()))
}

impl Placement {
    /// Resolves `cgroups_path` (linux.cgroupsPath) for container `id` under `driver`.
    pub fn new(driver: Driver, cgroups_path: Option<&Path>, id: &str) -> Result<Placement> {
        let (mount, own) = host_layout()?;
        let (rel, unit) = match driver {
            Driver::Fs => (resolve(cgroups_path, &own, id)?, None),
            Driver::Systemd => {
                let p = cgroups_path.map(|p| p.to_string_lossy().into_owned());
                let unit = Unit::from_cgroups_path(p.as_deref(), id)?;
                (unit.rel.clone(), Some(unit))
            }
        };
        Ok(Placement {
            mount,
            own,
            rel,
            unit,
        })
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
        let Some(unit) = &self.unit else {
            let cg = Cgroup::create(&self.mount, &self.rel)?;
            let dirfd = cg.dirfd.try_clone().context("duplicating the cgroup fd")?;
            let (_, created) = cg.keep();
            return Ok(Made {
                dirfd,
                created,
                home: None,
            });
        };
        let props = properties::from_plan(resources, &proc_devices())?;
        let home = self
            .mount
            .join(self.own.strip_prefix("/").unwrap_or(&self.own));
        // From the start of the unit skiff may be in it: every way out takes it back.
        let dirfd = Systemd::connect()?
            .start(unit, id, std::process::id(), props)
            .and_then(|()| {
                let dir = self.dir();
                std::fs::File::open(&dir)
                    .map(OwnedFd::from)
                    .with_context(|| {
                        format!("opening the cgroup {} of {}", dir.display(), unit.name)
                    })
            });
        match dirfd {
            Ok(dirfd) => Ok(Made {
                dirfd,
                created: vec![],
                home: Some(home),
            }),
            Err(e) => {
                let _ = go_home(&home);
                Err(e)
            }
        }
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

/// The kernel refused us the cgroup tree (not ours to write).
fn denied(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| {
            matches!(
                io.raw_os_error(),
                Some(libc::EACCES | libc::EPERM | libc::EROFS)
            )
        })
}

/// Tells the unit (if any) about changed limits, before their files are written.
pub fn update_unit(unit: Option<&str>, plan: &Plan) -> Result<()> {
    let Some(name) = unit else { return Ok(()) };
    Systemd::connect()?.set(name, properties::from_plan(plan, &proc_devices())?)
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
pub fn remove_unit(unit: Option<&str>) -> Result<()> {
    let Some(name) = unit else { return Ok(()) };
    Systemd::connect()?.stop(name)
}
