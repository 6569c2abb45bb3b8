//! `create`: validate the bundle, reserve the state directory, record the container, make
//! the exec fifo and the cgroup, spawn the init (process::parent) and commit the record. The
//! order is the crash-consistency argument of `process::sync`: everything is recorded before
//! it is made. Every step is undone when a later one fails: no process, cgroup, fifo or
//! state directory is left behind.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::{CreateOptions, Global};
use crate::bundle::Bundle;
use crate::cgroups::{self, driver::Placement, systemd::bus::Which};
use crate::process::namespaces::Plan;
use crate::process::spawn::{Attach, Birthplace};
use crate::process::{parent, Launch};
use crate::state::{self, Locked, State, Store};

/// A freshly created container, blocked on its exec fifo.
#[derive(Debug)]
pub struct Created {
    pub locked: Locked,
    pub state: State,
    pub init: parent::Init,
    /// process.terminal: the pty master went to the console socket.
    pub terminal: bool,
}

/// `console` is where the pty master goes when process.terminal is true: the connected
/// `--console-socket`, or (for a foreground `run`) the caller's own socketpair end.
pub fn create(
    g: &Global,
    o: &CreateOptions,
    id: &str,
    console: Option<OwnedFd>,
) -> Result<Created> {
    state::validate_id(id)?;
    crate::logging::step("create: start");
    // Before skiff opens anything of its own: the preserved fds must be the caller's.
    let listen_fds = crate::process::activation::listen_fds();
    crate::process::fds::check_preserved(listen_fds, o.preserve_fds)?;
    let bundle = crate::host::load_bundle(&o.bundle)?;
    crate::logging::step("create: bundle loaded and validated");
    // As runc, create and run work from the bundle directory (the runtime hooks they run
    // start there); the caller's relative paths keep meaning what they meant.
    let o = &o.absolute()?;
    std::env::set_current_dir(&bundle.dir)
        .with_context(|| format!("entering the bundle directory {}", bundle.dir.display()))?;
    check_supported(&bundle, o)?;
    let console = match console {
        Some(fd) => Some(fd),
        None => o
            .console_socket
            .as_deref()
            .map(connect_console)
            .transpose()?,
    };
    // The seccomp agent's socket is a host path: connect now, the init inherits the socket.
    let agent = seccomp_agent(&bundle)?;
    let plan = Plan::open(&bundle.namespaces, !nix::unistd::geteuid().is_root())?;
    let store = Store::new(&g.root);
    let locked = store.create(id)?;
    crate::failpoint!("create.locked");
    crate::logging::step("create: state directory reserved");
    let fds = Fds {
        console: console.as_ref(),
        agent: agent.as_ref(),
        listen: listen_fds,
    };
    match create_locked(g, &locked, &bundle, &plan, o, id, fds) {
        Ok((state, init)) => Ok(Created {
            locked,
            state,
            init,
            terminal: bundle.process.terminal,
        }),
        Err(e) => {
            if let Err(ce) = locked.remove() {
                crate::logging::warn(&format!("cleaning up after a failed create: {ce:#}"));
            }
            Err(e)
        }
    }
}

fn check_supported(b: &Bundle, o: &CreateOptions) -> Result<()> {
    if !b.process.terminal && o.console_socket.is_some() {
        bail!("--console-socket given but process.terminal is false: there is no terminal to send");
    }
    Ok(())
}

/// Connected sockets the init sends fds to, and how many activation fds it passes on.
#[derive(Clone, Copy)]
struct Fds<'a> {
    console: Option<&'a OwnedFd>,
    agent: Option<&'a OwnedFd>,
    listen: u32,
}

/// The connection to linux.seccomp.listenerPath when the filter uses SCMP_ACT_NOTIFY.
fn seccomp_agent(bundle: &Bundle) -> Result<Option<OwnedFd>> {
    match &bundle.seccomp {
        Some(f) => crate::seccomp::agent::connect(&bundle.seccomp_listener, f),
        None => Ok(None),
    }
}

#[allow(clippy::too_many_arguments)]
fn create_locked(
    g: &Global,
    locked: &Locked,
    bundle: &Bundle,
    plan: &Plan,
    o: &CreateOptions,
    id: &str,
    fds: Fds<'_>,
) -> Result<(State, parent::Init)> {
    if bundle.process.terminal && fds.console.is_none() {
        bail!(
            "process.terminal is true: pass --console-socket to receive the terminal \
             (or use `run` in the foreground)"
        );
    }
    let place = Placement::new(g.cgroup_driver, bundle.cgroups_path.as_deref(), id)?;
    // runc's refusals (a cgroup in use, or frozen) come before anything is made or changed.
    place.check_unused()?;
    // W1: the cgroup is on record before it exists, with the directories we are about to
    // make (the ones missing now).
    let mut state = record(id, bundle, &place, plan.own_pid_ns);
    locked.save(&state)?;
    crate::failpoint!("create.recorded");
    let fifo = make_fifo(&locked.fifo())?;
    crate::failpoint!("create.fifo");
    // Rootless, no device program: an unprivileged user cannot load one, and a user
    // namespace cannot make device nodes (the host's are bound, with their permissions).
    let rootless_resources;
    let resources = if g.rootless {
        rootless_resources = cgroups::resources::Plan {
            devices: None,
            ..bundle.resources.clone()
        };
        &rootless_resources
    } else {
        &bundle.resources
    };
    let made = if g.rootless {
        place.make_rootless(id, resources, bundle.cgroups_path.is_some())
    } else {
        place.make(id, resources).map(Some)
    };
    crate::failpoint!("create.cgroup");
    let made = made.and_then(|mut made| {
        let (mount, dir) = match &mut made {
            Some(made) => {
                // From here the cgroup is removed as the container's (never killing another
                // container's processes in it).
                if made.created != state.cgroup_created {
                    // Someone else made or removed a parent meanwhile: record what is ours.
                    state.cgroup_created = std::mem::take(&mut made.created);
                    locked.save(&state)?;
                }
                // Limits and the device program are in place before the init is born into
                // the cgroup (CLONE_INTO_CGROUP).
                let dir = place.dir();
                cgroups::apply::apply(&place.mount, &dir, made.dirfd.as_fd(), resources)?;
                crate::failpoint!("create.resources");
                crate::logging::step("create: cgroup made, limits and device program applied");
                (place.mount.clone(), dir)
            }
            None => {
                // Rootless without a cgroup of its own: the init stays in ours.
                state.cgroup = None;
                state.cgroup_created.clear();
                locked.save(&state)?;
                crate::logging::step("create: rootless, no cgroup of its own");
                let (mount, own) = cgroups::host_layout()?;
                let dir = mount.join(own.strip_prefix("/").unwrap_or(&own));
                (mount, dir)
            }
        };
        let view = crate::rootfs::CgroupView {
            hierarchy: mount,
            dir,
            own_ns: plan.own_cgroup_ns(),
        };
        // A unit's process that may not be born in its cgroup is placed by its systemd.
        let unit = state.unit().map(|(n, w)| (n.to_string(), w));
        let attach = |pid: i32| {
            let (name, which) = unit.as_ref().context("no systemd unit")?;
            cgroups::driver::attach_to_unit((name, *which), pid)
        };
        let cgroup = made.as_ref().map(|m| Birthplace {
            dir: m.dirfd.as_fd(),
            attach: unit.is_some().then_some(&attach as Attach<'_>),
        });
        let init = launch(
            locked,
            bundle,
            plan,
            o,
            fds,
            fifo.as_fd(),
            cgroup,
            &view,
            &mut state,
        )?;
        // The init holds the cgroup now: the placeholder that kept a new unit alive goes.
        if let Some(made) = &mut made {
            made.born();
        }
        Ok(init)
    });
    match made {
        Ok(init) => Ok((state, init)),
        Err(e) => {
            // The init is gone (or never was): what is left is the cgroup.
            if let Err(ce) = super::delete::remove_cgroup(&state) {
                crate::logging::warn(&format!("cleaning up after a failed create: {ce:#}"));
            }
            Err(e)
        }
    }
}

/// A new container's first record (W1): no init yet, the cgroup it is about to get, with the
/// directories about to be made (the ones missing now).
pub(super) fn record(id: &str, bundle: &Bundle, place: &Placement, own_pid_ns: bool) -> State {
    State {
        id: id.to_string(),
        pid: 0,
        start_time: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: crate::logging::now_rfc3339(),
        owner: String::new(),
        annotations: bundle.annotations.clone(),
        cgroup: Some(place.dir()),
        cgroup_created: place.to_make(),
        systemd_unit: place.unit.as_ref().map(|(u, _)| u.name.clone()),
        systemd_user: matches!(place.unit, Some((_, Which::User))),
        resources: bundle.resources_spec.clone(),
        own_pid_ns,
        pid_ns: None,
        hooks: Some(bundle.hooks.clone()).filter(|h| *h != Default::default()),
    }
}

/// Spawns the init and records it: W2 (its pid) as it starts, then, once it is ready, the
/// pid file, the pidfd, W3 (the config copy, which commits the record) and the commit
/// message.
#[allow(clippy::too_many_arguments)]
fn launch(
    locked: &Locked,
    bundle: &Bundle,
    plan: &Plan,
    o: &CreateOptions,
    fds: Fds<'_>,
    fifo: BorrowedFd<'_>,
    cgroup: Option<Birthplace<'_>>,
    cgroup_view: &crate::rootfs::CgroupView,
    state: &mut State,
) -> Result<parent::Init> {
    let idmapped = crate::rootfs::idmapped::prepare(&bundle.fs, &bundle.dir)?;
    let id = state.id.clone();
    let mut launch = Launch {
        id: &id,
        bundle,
        plan,
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        preserve_fds: o.preserve_fds,
        listen_fds: fds.listen,
        idmapped: &idmapped,
        fifo,
        console: fds.console.map(|c| c.as_fd()),
        seccomp_agent: fds.agent.map(|a| crate::seccomp::Agent {
            socket: a.as_fd(),
            metadata: bundle.seccomp_listener.metadata.as_deref(),
        }),
        cgroup_view,
        close_in_child: std::iter::once(locked.lock_fd().as_raw_fd())
            .chain(cgroup.map(|c| c.dir.as_raw_fd()))
            .collect(),
    };
    let spawned = {
        let mut record = |pid: i32| {
            state.record_init(pid)?;
            locked.save(state)
        };
        parent::spawn(&mut launch, cgroup, &mut record)
    };
    let spawned = match spawned {
        Ok(s) => s,
        Err(e) => {
            // The init is gone (spawn reaps it); hooks may have run: destroying the
            // container includes its poststop hooks (runtime-spec lifecycle steps 12-13).
            let hooks = bundle.hooks.poststop().as_ref();
            let state = launch.oci_state(crate::state::Status::Stopped, 0);
            crate::hooks::run_all_warn("poststop", hooks, &state);
            return Err(e);
        }
    };
    crate::logging::step("create: the init is ready");
    let init = &spawned.init;
    let recorded = (|| -> Result<()> {
        if let Some(p) = &o.pid_file {
            write_pid_file(p, init.pid)?;
        }
        if let Some(p) = &o.pidfd_socket {
            send_pidfd(p, init.pidfd.as_fd())?;
        }
        crate::failpoint!("create.pid-file");
        locked.save_spec(bundle.config())?;
        crate::failpoint!("create.committed");
        crate::logging::step("create: the pid file and the config copy written");
        Ok(())
    })();
    if let Err(e) = recorded {
        let _ = crate::sys::pidfd::send_signal(init.pidfd.as_fd(), libc::SIGKILL);
        let _ = crate::sys::pidfd::wait(init.pidfd.as_fd(), false);
        return Err(e);
    }
    let pidfd = init.pidfd.try_clone();
    match spawned.commit() {
        Ok(init) => {
            crate::failpoint!("create.done");
            Ok(init)
        }
        Err(e) => {
            // The init died after Ready: reap it.
            if let Ok(fd) = pidfd {
                let _ = crate::sys::pidfd::send_signal(fd.as_fd(), libc::SIGKILL);
                let _ = crate::sys::pidfd::wait(fd.as_fd(), false);
            }
            Err(e)
        }
    }
}

pub(super) fn connect_console(path: &Path) -> Result<OwnedFd> {
    let s = std::os::unix::net::UnixStream::connect(path)
        .with_context(|| format!("--console-socket: connecting to {}", path.display()))?;
    Ok(s.into())
}

/// The exec fifo, world-writable so an init that switched to any uid can still open it; the
/// init gets an O_PATH fd and reopens it through its private procfs.
fn make_fifo(path: &Path) -> Result<OwnedFd> {
    let old = crate::sys::misc::umask(0);
    let r = nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o622));
    crate::sys::misc::umask(old);
    r.with_context(|| format!("creating {}", path.display()))?;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
        .map(OwnedFd::from)
        .with_context(|| format!("opening {}", path.display()))
}

/// `--pidfd-socket`: the process's pidfd, sent as one fd with SCM_RIGHTS (as runc does).
pub fn send_pidfd(path: &Path, pidfd: std::os::fd::BorrowedFd<'_>) -> Result<()> {
    let s = std::os::unix::net::UnixStream::connect(path)
        .with_context(|| format!("--pidfd-socket: connecting to {}", path.display()))?;
    crate::process::tty::send_fd(s.as_fd(), pidfd, "pidfd")
        .with_context(|| format!("--pidfd-socket: sending the pidfd to {}", path.display()))
}

/// Written atomically (temp file + rename): the shim reads it as soon as create returns.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().context("--pid-file: not a file path")?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, pid.to_string())
        .with_context(|| format!("--pid-file: writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("--pid-file: renaming to {}", path.display()))
}
