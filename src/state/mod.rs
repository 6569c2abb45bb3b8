//! The container store: `<root>/<id>/` holds `state.json` and, until `start`, `exec.fifo`.
//!
//! Every command that touches a container takes an exclusive flock on its directory first, so
//! concurrent commands on one id serialise (runc does not lock across processes; we do).
//! state.json is replaced atomically (write to a temp file, then rename). The status is never
//! read from the file: it is derived from the kernel each time (see [`status`]).
//!
//! Crash consistency (the whole argument is in `process::sync`): `create` writes state.json
//! right after taking the directory, before it makes anything else, and writes the copy of
//! config.json last, when the container is complete: a record without it (and whose lock is
//! free) belongs to a create that died, and reads as a stopped container that `delete`
//! removes. A directory without state.json is the debris of a create that died before its
//! first write, or of a delete that died after its first removal (state.json goes first):
//! [`Store::open`] removes it under the locks that prove nobody is using it.

mod status;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

pub use status::{derive as derive_status, proc_start_time, Status};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";
pub const SPEC_FILE: &str = "config.json";

/// What skiff records about a container. Facts that can change (is it running?) are not
/// stored; they are derived from `pid` + `start_time` + the exec fifo + the cgroup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// Pid of the container's init in skiff's pid namespace.
    pub pid: i32,
    /// The init's start time (clock ticks since boot, /proc/<pid>/stat field 22): a pid that
    /// was reused by another process has another start time.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The container's cgroup v2 directory (absolute).
    pub cgroup: Option<PathBuf>,
    /// Directories skiff created for the cgroup, deepest first: what delete removes.
    #[serde(default)]
    pub cgroup_created: Vec<PathBuf>,
    /// The systemd unit that owns the cgroup (`--systemd-cgroup`): delete stops it, update
    /// sets its properties. Recorded before the unit is started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    /// The unit is the user's manager's (rootless), not the system's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub systemd_user: bool,
    /// The `linux.resources` in force (config.json's, with `update`s applied): `update`
    /// merges into them because some values depend on others (swap on memory, cpu.max).
    #[serde(default)]
    pub resources: Option<oci_spec::runtime::LinuxResources>,
    /// Whether the container has its own pid namespace (if not, killing init leaves the other
    /// processes alive and delete must kill the whole cgroup).
    pub own_pid_ns: bool,
    /// The init's pid namespace (`/proc/<pid>/ns/pid`, e.g. `pid:[4026532291]`): once the
    /// init is gone, a process still in the cgroup and in another namespace is someone
    /// else's, and `delete` says so at once instead of waiting for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_ns: Option<String>,
    /// Hooks still to run after create (poststart, poststop), copied from config.json so that
    /// later commands do not depend on the bundle staying unchanged.
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
}

/// The runtime-spec's "State" of a container (runtime.md): what hooks read on stdin and what
/// the seccomp agent gets inside the container process state. One type, serialised where it
/// is sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'static str,
    pub id: String,
    pub status: Status,
    /// As the reader sees it (the container's own pid namespace for hooks that run in it);
    /// absent once the container has stopped, as runc leaves it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub bundle: PathBuf,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

impl OciState {
    pub fn new(
        id: &str,
        status: Status,
        pid: i32,
        bundle: &Path,
        annotations: HashMap<String, String>,
    ) -> OciState {
        OciState {
            oci_version: crate::bundle::SPEC_VERSION,
            id: id.to_string(),
            status,
            pid: (status != Status::Stopped && pid > 0).then_some(pid),
            bundle: bundle.to_path_buf(),
            annotations,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a state always serialises")
    }
}

/// The state JSON that `skiff state` prints: runtime-spec's fields plus runc's extras
/// (rootfs, created, owner), in runc's field order.
#[derive(Debug, Serialize)]
pub struct PublicState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

impl State {
    /// The systemd unit that owns the cgroup, and whose manager it is under.
    pub fn unit(&self) -> Option<(&str, crate::cgroups::systemd::bus::Which)> {
        use crate::cgroups::systemd::bus::Which;
        let which = if self.systemd_user {
            Which::User
        } else {
            Which::System
        };
        self.systemd_unit.as_deref().map(|u| (u, which))
    }

    /// The runtime-spec state of this container in `status`.
    /// The container's init is `pid` (W2 of `process::sync`): its start time, so a reused
    /// pid is never taken for it, and its pid namespace.
    pub fn record_init(&mut self, pid: i32) -> Result<()> {
        self.pid = pid;
        self.start_time = proc_start_time(pid).context("reading the init's start time")?;
        self.pid_ns = std::fs::read_link(format!("/proc/{pid}/ns/pid"))
            .ok()
            .map(|l| l.to_string_lossy().into_owned());
        Ok(())
    }

    pub fn oci(&self, status: Status) -> OciState {
        OciState::new(
            &self.id,
            status,
            self.pid,
            &self.bundle,
            self.annotations.clone(),
        )
    }

    pub fn public(&self, status: Status) -> PublicState<'_> {
        PublicState {
            oci_version: crate::bundle::SPEC_VERSION,
            id: &self.id,
            // runc reports pid 0 once the container is stopped: the number may already
            // belong to an unrelated process.
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            annotations: &self.annotations,
        }
    }
}

/// Rejects ids that could escape the state root or confuse the clients that print them.
pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        bail!("invalid container id: must not be empty");
    }
    if id == "." || id == ".." || id.contains('/') {
        bail!("invalid container id {id:?}: must not be \".\", \"..\" or contain '/'");
    }
    if id.chars().any(|c| c.is_control()) {
        bail!("invalid container id {id:?}: must not contain control characters");
    }
    if id.len() > 1024 {
        bail!("invalid container id: longer than 1024 bytes");
    }
    Ok(())
}

/// "container X does not exist": clients match the words `does not exist`, and
/// `delete --force` treats it as success.
#[derive(Debug)]
pub struct NotFound(pub String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "container {} does not exist", self.0)
    }
}

impl std::error::Error for NotFound {}

#[derive(Debug)]
pub struct Store {
    root: PathBuf,
}

/// A container directory held under its exclusive lock (released on drop).
#[derive(Debug)]
pub struct Locked {
    pub dir: PathBuf,
    lock: Flock<File>,
}

impl Store {
    pub fn new(root: &Path) -> Self {
        Store {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates and locks the directory of a new container; fails if the id is taken. The
    /// directory is made and locked under the root's lock, so whoever holds the root's lock
    /// and a container's sees no create between its mkdir and its flock (see [`Store::open`]).
    pub fn create(&self, id: &str) -> Result<Locked> {
        validate_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .with_context(|| format!("creating state root {}", self.root.display()))?;
        let _root = lock_root(&self.root)?;
        let dir = self.root.join(id);
        loop {
            match fs::DirBuilder::new().mode(0o711).create(&dir) {
                Ok(()) => return lock(dir),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Debris of a create or delete that died (nobody holds its lock and it
                    // has no state.json) does not keep the id.
                    match try_lock(&dir) {
                        Ok(Some(l)) if !l.dir.join(STATE_FILE).exists() => l.remove_debris()?,
                        // Deleted meanwhile: try again.
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(e),
                        Ok(_) => bail!("container with id {id} already exists"),
                    }
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("creating state directory {}", dir.display()))
                }
            }
        }
    }

    /// Locks an existing container and loads its state.
    pub fn open(&self, id: &str) -> Result<(Locked, State)> {
        validate_id(id)?;
        let dir = self.root.join(id);
        let locked = lock_existing(&dir, id)?;
        if let Some(state) = locked.read_state()? {
            return Ok((locked, state));
        }
        // No state.json. Either the creator failed and removed the directory while we waited
        // for the lock, or a create or a delete died: retry under the root's lock, which no
        // live create holds between its mkdir and its flock, so that a directory still
        // without state.json now is debris, removed as if it never existed.
        drop(locked);
        let _root = lock_root(&self.root)?;
        let locked = lock_existing(&dir, id)?;
        match locked.read_state()? {
            Some(state) => Ok((locked, state)),
            None => {
                locked.remove_debris()?;
                Err(NotFound(id.to_string()).into())
            }
        }
    }

    /// The ids of all containers (directories) under the root, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.root.display())),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    })
}

fn open_dir(dir: &Path) -> Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .with_context(|| format!("opening {}", dir.display()))
}

fn lock(dir: PathBuf) -> Result<Locked> {
    let lock = Flock::lock(open_dir(&dir)?, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("locking {}", dir.display()))?;
    Ok(Locked { dir, lock })
}

/// The container's lock if nobody holds it now.
fn try_lock(dir: &Path) -> Result<Option<Locked>> {
    match Flock::lock(open_dir(dir)?, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(Locked {
            dir: dir.to_path_buf(),
            lock,
        })),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e).with_context(|| format!("locking {}", dir.display())),
    }
}

fn lock_existing(dir: &Path, id: &str) -> Result<Locked> {
    match lock(dir.to_path_buf()) {
        Err(e) if is_not_found(&e) => Err(NotFound(id.to_string()).into()),
        other => other,
    }
}

/// The state root's own lock: held by `create` from its mkdir to its flock, and by a reader
/// that must know no such create is under way.
fn lock_root(root: &Path) -> Result<Flock<File>> {
    Flock::lock(open_dir(root)?, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("locking {}", root.display()))
}

impl Locked {
    pub fn fifo(&self) -> PathBuf {
        self.dir.join(EXEC_FIFO)
    }

    /// The lock's fd, which a forked child must close so the lock dies with the parent.
    pub fn lock_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.lock.as_fd()
    }

    /// state.json, or `None` when there is none.
    fn read_state(&self) -> Result<Option<State>> {
        let path = self.dir.join(STATE_FILE);
        let text = match crate::host::read_limited(&path) {
            Ok(t) => t,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let state =
            serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(Some(state))
    }

    /// Writes state.json atomically.
    pub fn save(&self, state: &State) -> Result<()> {
        self.replace(STATE_FILE, &serde_json::to_vec(state)?)
    }

    /// Writes `name` in the directory atomically (a temporary file renamed over it).
    fn replace(&self, name: &str, data: &[u8]) -> Result<()> {
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(name);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(data)
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
        Ok(())
    }

    /// Whether `create` finished this container: it writes the config copy last. A record
    /// without it is an aborted create (stopped, and `delete` cleans it).
    pub fn committed(&self) -> bool {
        self.dir.join(SPEC_FILE).exists()
    }

    /// Derives the current status from the kernel (see [`status::derive`]); an aborted
    /// create is stopped (its init, if it still runs, is on its way out).
    pub fn status(&self, state: &State) -> Status {
        if !self.committed() {
            return Status::Stopped;
        }
        status::derive(state, &self.fifo())
    }

    /// Keeps the container's config as it was at create: later commands (exec) use it, not
    /// the bundle's config.json, which may have changed since (runtime-spec: changes after
    /// create must not affect the container). Written atomically and last: it commits the
    /// record (see [`Locked::committed`]).
    pub fn save_spec(&self, spec: &oci_spec::runtime::Spec) -> Result<()> {
        self.replace(SPEC_FILE, &serde_json::to_vec(spec)?)
    }

    pub fn load_spec(&self) -> Result<oci_spec::runtime::Spec> {
        let path = self.dir.join(SPEC_FILE);
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        crate::bundle::parse(&text).with_context(|| format!("{}", path.display()))
    }

    /// Removes the container directory (the lock stays held until drop). state.json goes
    /// first, in one step: if we die halfway, what is left is debris, not a container.
    pub fn remove(&self) -> Result<()> {
        let path = self.dir.join(STATE_FILE);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
        }
        crate::failpoint!("delete.state-removed");
        self.remove_debris()
    }

    fn remove_debris(&self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", self.dir.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_escape_or_confuse_are_rejected() {
        for (bad, want) in [
            ("", "must not be empty"),
            (".", "must not be \".\", \"..\" or contain '/'"),
            ("..", "must not be \".\", \"..\" or contain '/'"),
            ("a/b", "must not be \".\", \"..\" or contain '/'"),
            ("/abs", "must not be \".\", \"..\" or contain '/'"),
            ("a\nb", "must not contain control characters"),
            ("a\u{7f}", "must not contain control characters"),
        ] {
            let e = validate_id(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
        for good in ["a", "abc-123_x.y", "64hex0123456789abcdef"] {
            validate_id(good).unwrap();
        }
    }
}
