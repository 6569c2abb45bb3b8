//! `checkpoint`: CRIU dumps the running container into an image directory. Unless asked to
//! leave it running (or only pre-dumping its memory), the container is then gone: CRIU ends
//! its processes and skiff deletes it, as runc does. A failed checkpoint leaves the
//! container as it was: CRIU resumes the processes it stopped.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxNamespaceType;

use super::delete::{destroy, stop};
use super::Global;
use crate::criu::{self, rpc, swrk};
use crate::state::{Status, Store};

/// `checkpoint` beyond what it shares with `restore` (`criu`).
#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    pub criu: criu::Common,
    /// A previous (pre-)dump, relative to the image directory: only the memory that changed
    /// since is dumped.
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub pre_dump: bool,
    /// With lazy pages: written a NUL byte once the page server is ready.
    pub status_fd: Option<i32>,
    /// `ADDRESS:PORT` of a CRIU page server that receives the memory.
    pub page_server: Option<(String, i32)>,
}

pub fn checkpoint(g: &Global, id: &str, o: &CheckpointOptions) -> Result<()> {
    let (locked, state) = Store::new(&g.root).open(id)?;
    crate::failpoint!("checkpoint.locked");
    match locked.status(&state) {
        Status::Running | Status::Paused => {}
        // runc's wording.
        s => bail!("Container cannot be checkpointed in {s} state"),
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("checkpoint needs root: CRIU cannot dump a rootless container");
    }
    criu::check_version()?;
    let b = crate::host::compile_recorded(locked.load_spec()?, &state.bundle)?;
    let images = &o.criu.image_path;
    make_dir(images)?;
    if let Some(p) = &o.parent_path {
        check_parent(images, p)?;
    }
    let images_fd = open_dir(images)?;
    let work_fd = o.criu.work_path.as_deref().map(make_and_open).transpose()?;
    let mut opts = criu::base_opts(
        &o.criu,
        images_fd.as_raw_fd(),
        work_fd.as_ref().map(|f| f.as_raw_fd()),
        "dump.log",
    );
    opts.pid = Some(state.pid);
    opts.root = Some(state.rootfs.to_string_lossy().into_owned());
    opts.leave_running = o.leave_running;
    opts.config_file = criu::config_file(&b);
    // A network or pid namespace the container joined by path is not the container's to
    // save: CRIU records it as external, and a restore finds it again by the same key.
    for w in &b.namespaces {
        let (name, key) = match w.typ {
            LinuxNamespaceType::Network => ("net", "extRootNetNS"),
            LinuxNamespaceType::Pid => ("pid", "extRootPidNS"),
            _ => continue,
        };
        if let Some(p) = &w.path {
            let ino = std::fs::metadata(p)
                .with_context(|| format!("namespace {}", p.display()))?
                .ino();
            opts.external.push(format!("{name}[{ino}]:{key}"));
        }
    }
    // CRIU stops the tree with the cgroup v2 freezer rather than with ptrace.
    opts.freeze_cgroup = state
        .cgroup
        .as_ref()
        .filter(|c| c.exists())
        .map(|c| c.to_string_lossy().into_owned());
    if let Some(p) = &o.parent_path {
        opts.parent_img = Some(p.to_string_lossy().into_owned());
        opts.track_mem = true;
    }
    if let Some((address, port)) = &o.page_server {
        opts.page_server = Some((address.clone(), *port));
    }
    let want = rpc::Features {
        mem_track: o.pre_dump,
        lazy_pages: o.criu.lazy_pages,
    };
    if want != rpc::Features::default() {
        let missing = swrk::missing_features(want)?;
        if !missing.is_empty() {
            bail!("criu is missing features: {missing:?}");
        }
    }
    if let Some(fd) = o.status_fd {
        check_status_fd(fd)?;
    }
    let t = if o.pre_dump {
        rpc::ReqType::PreDump
    } else {
        // The final dump also saves how the container's mounts and stdio are bound to
        // the host.
        opts.ext_mnt = criu::dump_mounts(&b, state.pid);
        let fds = serde_json::to_vec(&criu::descriptors(state.pid))?;
        let path = images.join(criu::DESCRIPTORS);
        std::fs::write(&path, fds).with_context(|| format!("writing {}", path.display()))?;
        rpc::ReqType::Dump
    };
    crate::logging::step("checkpoint: CRIU asked to dump");
    let session = swrk::Session::start(swrk::Stdio3::Null, &[])?;
    let mut status_fd = o.status_fd;
    let r = session.call(t, Some(&opts), None, &mut |script, _, _| {
        if script == "status-ready" {
            if let Some(fd) = status_fd.take() {
                crate::sys::misc::write_and_close(fd, &[0]);
            }
        }
        Ok(())
    });
    if let Err(e) = r {
        let log = o
            .criu
            .work_path
            .as_deref()
            .unwrap_or(images)
            .join("dump.log");
        return Err(criu::failed(
            &format!("checkpointing container {id}"),
            e,
            &log,
        ));
    }
    crate::logging::step("checkpoint: CRIU dumped the container");
    crate::failpoint!("checkpoint.dumped");
    if !(o.leave_running || o.pre_dump) {
        // CRIU has ended the processes; what is left of the container goes.
        stop(&state)?;
        destroy(&locked, &state)?;
    }
    Ok(())
}

/// runc's checks: relative, and an existing directory.
fn check_parent(images: &Path, parent: &Path) -> Result<()> {
    if parent.is_absolute() {
        bail!("--parent-path must be relative");
    }
    let real = images.join(parent);
    match std::fs::metadata(&real) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!("invalid --parent-path: {}: not a directory", real.display()),
        Err(e) => bail!("invalid --parent-path: {}: {e}", real.display()),
    }
}

/// The caller's `--status-fd` must be open for writing.
fn check_status_fd(fd: i32) -> Result<()> {
    let flags = crate::sys::misc::fd_flags(fd)
        .with_context(|| format!("invalid --status-fd argument {fd}"))?;
    if flags & (libc::O_WRONLY | libc::O_RDWR) == 0 {
        bail!("invalid --status-fd argument {fd}: not writable");
    }
    Ok(())
}

/// A directory for images or CRIU's work files (it may exist: a container can be
/// checkpointed again into the same place), private to root.
pub(super) fn make_dir(p: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .with_context(|| format!("creating {}", p.display()))
}

pub(super) fn open_dir(p: &Path) -> Result<OwnedFd> {
    std::fs::File::open(p)
        .map(OwnedFd::from)
        .with_context(|| format!("opening {}", p.display()))
}

pub(super) fn make_and_open(p: &Path) -> Result<OwnedFd> {
    make_dir(p)?;
    open_dir(p)
}
