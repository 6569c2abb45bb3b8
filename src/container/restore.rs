//! `restore`: CRIU brings a checkpointed container back from its image directory, as a new
//! container of the given id made from the bundle: its cgroup (with the bundle's limits),
//! its namespaces (new ones recreated, joined ones joined again), its mounts (the bundle's
//! bind sources bound where the dump found external mounts), and its stdio (the caller's, in
//! place of the pipes it had). Then, unless detached, skiff waits for it as `run` does.
//!
//! Crash consistency is create's: the record (W1) comes before the cgroup, the restored
//! init's pid (W2) is recorded when CRIU announces it, before CRIU lets it run, and the
//! config copy commits the record last. A restore that fails or dies leaves an uncommitted
//! record, which `delete` cleans (the cgroup's processes are killed: all CRIU restored is in
//! it). The rootfs bind mount CRIU needs is made in a mount namespace of skiff's own, so no
//! mount of ours is ever visible on the host.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxNamespaceType;

use super::checkpoint::{make_and_open, open_dir};
use super::create::{connect_console, record, write_pid_file};
use super::delete::{destroy, remove_cgroup, stop};
use super::{CreateOptions, Global};
use crate::bundle::Bundle;
use crate::cgroups::{self, driver::Placement};
use crate::criu::{self, rpc, swrk};
use crate::state::{self, Locked, State, Status, Store};

/// `restore` beyond what it shares with `checkpoint` (`criu`); of `create`'s options it
/// takes the bundle, the pid file and the console socket.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub criu: criu::Common,
    pub create: CreateOptions,
    pub detach: bool,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
}

/// Returns 0 when detached, else the restored container's exit status.
pub fn restore(g: &Global, id: &str, o: &RestoreOptions) -> Result<i32> {
    state::validate_id(id)?;
    if g.rootless || !nix::unistd::geteuid().is_root() {
        bail!("restore needs root: CRIU cannot restore a rootless container");
    }
    let bundle = crate::host::load_bundle(&o.create.bundle)?;
    let version = criu::check_version()?;
    // runc's wording; older CRIU ignores the new label.
    for (flag, given) in [
        ("--lsm-profile", &o.lsm_profile),
        ("--lsm-mount-context", &o.lsm_mount_context),
    ] {
        if given.is_some() && version < 31600 {
            bail!("{flag} requires at least CRIU 3.16");
        }
    }
    let c = &o.create.absolute()?;
    // Before any directory CRIU works in is opened: CRIU mounts in them, which the kernel
    // allows only on mounts of its own (our) mount namespace.
    private_mount_ns()?;
    let images = &o.criu.image_path;
    let images_fd = open_dir(images)?;
    let fds_path = images.join(criu::DESCRIPTORS);
    let descriptors: Vec<String> = serde_json::from_slice(
        &std::fs::read(&fds_path).with_context(|| format!("reading {}", fds_path.display()))?,
    )
    .with_context(|| format!("{}: expected a JSON array of strings", fds_path.display()))?;
    std::env::set_current_dir(&bundle.dir)
        .with_context(|| format!("entering the bundle directory {}", bundle.dir.display()))?;
    let terminal = bundle.process.terminal;
    if !terminal && c.console_socket.is_some() {
        bail!("--console-socket given but process.terminal is false: there is no terminal to send");
    }
    // In the foreground without --console-socket, skiff relays the terminal itself, as `run`.
    let (relay, console) = match (&c.console_socket, terminal) {
        (Some(p), true) => (None, Some(connect_console(p)?)),
        (None, true) if !o.detach => {
            let (ours, theirs) = crate::process::tty::relay_pair()?;
            (Some(ours), Some(theirs))
        }
        (None, true) => bail!(
            "process.terminal is true: pass --console-socket to receive the terminal \
             (or restore in the foreground)"
        ),
        _ => (None, None),
    };
    let joined = Joined::open(&bundle)?;
    let store = Store::new(&g.root);
    let locked = store.create(id)?;
    crate::failpoint!("restore.locked");
    let ctx = Ctx {
        g,
        o,
        pid_file: c.pid_file.as_deref(),
        bundle: &bundle,
        images_fd: images_fd.as_fd(),
        descriptors: &descriptors,
        console: console.as_ref().map(|c| c.as_fd()),
        joined: &joined,
    };
    let state = match restore_locked(&ctx, &locked, id) {
        Ok(s) => s,
        Err(e) => {
            if let Err(ce) = locked.remove() {
                crate::logging::warn(&format!("cleaning up after a failed restore: {ce:#}"));
            }
            return Err(e);
        }
    };
    crate::failpoint!("restore.done");
    if o.detach {
        return Ok(0);
    }
    let master = relay
        .as_ref()
        .map(|s| crate::process::tty::recv_fd(s.as_fd()))
        .transpose()?;
    let init = super::init_pidfd(&state)?.context("the restored container exited")?;
    drop(locked);
    let status = {
        let _raw = master.as_ref().map(|_| super::run::RawMode::enter());
        super::run::wait_forwarding(init.as_fd(), master.as_ref())?
    };
    let (locked, state) = store.open(id)?;
    stop(&state)?;
    destroy(&locked, &state)?;
    Ok(status)
}

struct Ctx<'a> {
    g: &'a Global,
    o: &'a RestoreOptions,
    /// `--pid-file`, absolute (skiff works from the bundle directory).
    pid_file: Option<&'a Path>,
    bundle: &'a Bundle,
    images_fd: BorrowedFd<'a>,
    descriptors: &'a [String],
    console: Option<BorrowedFd<'a>>,
    joined: &'a Joined,
}

/// The namespaces the container joins by path, as CRIU takes them: network and pid as
/// inherited fds under the keys the dump gave them, the others by path.
struct Joined {
    inherit: Vec<(String, OwnedFd)>,
    join: Vec<(String, String)>,
}

impl Joined {
    fn open(b: &Bundle) -> Result<Joined> {
        let mut j = Joined {
            inherit: Vec::new(),
            join: Vec::new(),
        };
        for w in &b.namespaces {
            let Some(path) = &w.path else { continue };
            let (name, key) = match w.typ {
                LinuxNamespaceType::Network => ("network", Some("extRootNetNS")),
                LinuxNamespaceType::Pid => ("pid", Some("extRootPidNS")),
                LinuxNamespaceType::Mount => ("mnt", None),
                LinuxNamespaceType::Ipc => ("ipc", None),
                LinuxNamespaceType::Uts => ("uts", None),
                LinuxNamespaceType::User => ("user", None),
                LinuxNamespaceType::Time => ("time", None),
                LinuxNamespaceType::Cgroup => {
                    bail!(
                        "linux.namespaces: CRIU cannot join a cgroup namespace by path on restore"
                    )
                }
            };
            match key {
                Some(key) => {
                    let fd = std::fs::File::open(path)
                        .map(OwnedFd::from)
                        .with_context(|| {
                            format!("linux.namespaces: the {name} namespace {}", path.display())
                        })?;
                    j.inherit.push((key.into(), fd));
                }
                None => j
                    .join
                    .push((name.into(), path.to_string_lossy().into_owned())),
            }
        }
        Ok(j)
    }
}

fn restore_locked(x: &Ctx<'_>, locked: &Locked, id: &str) -> Result<State> {
    let b = x.bundle;
    let place = Placement::new(x.g.cgroup_driver, b.cgroups_path.as_deref(), id)?;
    place.check_unused()?;
    let own_pid_ns = b
        .namespaces
        .iter()
        .any(|w| w.typ == LinuxNamespaceType::Pid && w.path.is_none());
    let mut state = record(id, b, &place, own_pid_ns);
    locked.save(&state)?;
    crate::failpoint!("restore.recorded");
    let r = (|| -> Result<()> {
        let mut made = place.make(id, &b.resources)?;
        if made.created != state.cgroup_created {
            state.cgroup_created = std::mem::take(&mut made.created);
            locked.save(&state)?;
        }
        cgroups::apply::apply(&place.mount, &place.dir(), made.dirfd.as_fd(), &b.resources)?;
        crate::failpoint!("restore.cgroup");
        crate::logging::step("restore: cgroup made, limits applied");
        run_criu(x, locked, &mut state, &place)?;
        // The restored init holds the cgroup now.
        made.born();
        if let Some(p) = x.pid_file {
            write_pid_file(p, state.pid)?;
        }
        locked.save_spec(b.config())?;
        crate::failpoint!("restore.committed");
        Ok(())
    })();
    if let Err(e) = r {
        // Whatever CRIU restored is in the cgroup: it goes with it.
        let _ = stop(&state);
        if let Some(cg) = state.cgroup.as_ref().filter(|c| c.exists()) {
            let _ = cgroups::kill_all(cg);
        }
        if let Err(ce) = remove_cgroup(&state) {
            crate::logging::warn(&format!("cleaning up after a failed restore: {ce:#}"));
        }
        return Err(e);
    }
    Ok(state)
}

/// Asks CRIU to restore the tree into the container's cgroup, recording the init as it is
/// announced.
fn run_criu(x: &Ctx<'_>, locked: &Locked, state: &mut State, place: &Placement) -> Result<()> {
    let b = x.bundle;
    let c = &x.o.criu;
    bind_rootfs(&b.rootfs)?;
    crate::rootfs::restore::make_mount_points(&b.fs, &b.dir, &b.rootfs)?;
    let work_fd = c.work_path.as_deref().map(make_and_open).transpose()?;
    let mut opts = criu::base_opts(
        c,
        x.images_fd.as_raw_fd(),
        work_fd.as_ref().map(|f| f.as_raw_fd()),
        "restore.log",
    );
    opts.evasive_devices = true;
    // The restored init is born our child, as create's would be.
    opts.rst_sibling = true;
    opts.root = Some(b.rootfs.to_string_lossy().into_owned());
    opts.config_file = criu::config_file(b);
    opts.ext_mnt = criu::restore_mounts(b)?;
    opts.join_ns = x.joined.join.clone();
    opts.lsm_profile = x.o.lsm_profile.clone();
    opts.lsm_mount_context = x.o.lsm_mount_context.clone();
    // CRIU's fd table: 0-2 its stdio (ours), 3 the socket, then the joined namespaces.
    for (i, (key, _)) in x.joined.inherit.iter().enumerate() {
        opts.inherit_fd.push((key.clone(), 4 + i as i32));
    }
    // The pipes the init had as stdio are now ours (a client restoring it passes new ones).
    for (i, d) in x.descriptors.iter().enumerate() {
        if d.contains("pipe:") {
            opts.inherit_fd.push((d.clone(), i as i32));
        }
    }
    let extra: Vec<BorrowedFd<'_>> = x.joined.inherit.iter().map(|(_, f)| f.as_fd()).collect();
    let session = swrk::Session::start(swrk::Stdio3::Inherit, &extra)?;
    // CRIU restores into the cgroup it is in: it goes there before it is asked anything.
    enter_cgroup(state, place, session.pid())?;
    let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", session.pid()))
        .context("reading CRIU's cgroup")?;
    if let Some(p) = cg.lines().find_map(|l| l.strip_prefix("0::")) {
        opts.cg_root.push((String::new(), p.to_string()));
    }
    crate::logging::step("restore: CRIU asked to restore");
    let hooks = b.hooks.clone();
    let r = session.call(rpc::ReqType::Restore, Some(&opts), None, &mut |script, pid, fd| {
        match script {
            // The namespaces exist, nothing of the container runs yet: the runtime's hooks
            // (runc runs prestart and createRuntime here).
            "setup-namespaces" => {
                let s = state.oci(Status::Creating);
                let s = crate::state::OciState { pid: Some(pid), ..s };
                crate::hooks::run_all("prestart", hooks.prestart().as_ref(), &s)?;
                crate::hooks::run_all("createRuntime", hooks.create_runtime().as_ref(), &s)?;
            }
            // W2, before CRIU lets the tree run.
            "post-restore" => {
                state.record_init(pid)?;
                locked.save(state)?;
                crate::failpoint!("restore.pid-recorded");
            }
            "orphan-pts-master" => {
                let (Some(console), Some(master)) = (x.console, fd) else {
                    bail!("CRIU restored a terminal, but there is no console socket to send it to");
                };
                crate::process::tty::send_fd(console, master.as_fd(), "restored-console")?;
            }
            _ => {}
        }
        Ok(())
    });
    if let Err(e) = r {
        let log = c
            .work_path
            .as_deref()
            .unwrap_or(&c.image_path)
            .join("restore.log");
        return Err(criu::failed(
            &format!("restoring container {}", state.id),
            e,
            &log,
        ));
    }
    if state.pid <= 0 {
        bail!("CRIU restored the container without announcing its init");
    }
    crate::logging::step("restore: CRIU restored the container");
    Ok(())
}

/// A mount namespace of skiff's own (following the host's, propagating nothing back) for
/// the mounts CRIU needs: it ends with skiff and CRIU, so nothing is left mounted on the
/// host, even if skiff dies.
fn private_mount_ns() -> Result<()> {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .context("unsharing skiff's mount namespace for CRIU")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("making skiff's mounts slaves of the host's")
}

/// CRIU's root must be a mount point: the rootfs is bound onto itself (in skiff's own
/// mount namespace).
fn bind_rootfs(rootfs: &Path) -> Result<()> {
    nix::mount::mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("binding the rootfs {} onto itself", rootfs.display()))
}

/// Moves CRIU into the container's cgroup (through its systemd unit, for the systemd driver).
fn enter_cgroup(state: &State, place: &Placement, pid: i32) -> Result<()> {
    if let Some((name, which)) = state.unit() {
        return cgroups::driver::attach_to_unit((name, which), pid);
    }
    let procs = place.dir().join("cgroup.procs");
    std::fs::write(&procs, pid.to_string())
        .with_context(|| format!("moving CRIU (pid {pid}) into {}", procs.display()))
}
