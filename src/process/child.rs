//! The child side of `create`: everything the container init does between clone3 and
//! execve, as a straight line of named steps (the order is the protocol in `sync.rs`).
//! Never returns: it either execs the container process or exits after reporting the error.

use std::convert::Infallible;
use std::os::fd::{AsFd, BorrowedFd, RawFd};

use anyhow::{Context, Result};
use nix::sched::{unshare, CloneFlags};
use nix::sys::prctl;
use nix::sys::signal::Signal;

use super::sync::ChildEnd;
use super::tail::{self, Tail};
use super::{identity, Launch};
use crate::hooks;
use crate::process::procfs::Proc;
use crate::state::Status;

/// Runs the init sequence; exits the process on failure after telling the parent why.
pub fn main(l: &Launch<'_>, end: ChildEnd) -> ! {
    let ready_sent = std::cell::Cell::new(false);
    let result = init(l, &end, &ready_sent);
    fail(&end, result, ready_sent.get(), 1)
}

/// Reports why a child's setup failed, to the parent while it listens (until Ready) and to
/// the log after, then exits with `code`.
pub(super) fn fail(end: &ChildEnd, result: Result<Infallible>, ready_sent: bool, code: i32) -> ! {
    let err = match result {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let msg = format!("{err:#}");
    if ready_sent {
        // Nobody is listening on the sync socket any more: the message goes where the
        // container's own errors go, as one plain line (runc's shape), and to the log file.
        if crate::logging::has_file() {
            crate::logging::error(&msg);
        }
        eprintln!("{msg}");
    } else {
        end.error(msg);
    }
    crate::sys::misc::exit_now(code)
}

fn init(l: &Launch<'_>, end: &ChildEnd, ready_sent: &std::cell::Cell<bool>) -> Result<Infallible> {
    harden()?;
    close_parent_fds(&l.close_in_child);
    // process.execCPUAffinity.initial: the whole setup runs on those CPUs (procattrs.rs).
    let b = l.bundle;
    b.process.attrs.initial_affinity()?;
    enter_namespaces(l, end)?;
    let pid = end.wait_go()?;
    crate::logging::step("init: namespaces entered");
    // A joined user namespace needs it as much as a new one (our host ids are unmapped there).
    let in_userns = l.plan.in_user_ns();
    let setgroups_denied = in_userns && crate::process::identity::setgroups_denied("self");
    if in_userns {
        become_userns_root(setgroups_denied)?;
        // The id change cleared the parent-death signal (process::sync: crash consistency).
        rearm_parent_death(end)?;
    }
    if l.plan.new_net() {
        loopback_up()?;
    }
    let proc = Proc::open()?;
    if l.plan.new_time {
        time_namespace(l, &proc)?;
    }
    let prepared = crate::rootfs::prepare(&b.fs, &b.dir, &b.rootfs, l.idmapped, l.cgroup_view)?;
    crate::logging::step("init: mounts and devices made");
    let hooks = &b.hooks;
    if hooks.prestart().is_some() || hooks.create_runtime().is_some() {
        end.run_hooks()?;
    }
    // createContainer and startContainer hooks run in the container's namespaces: their pid
    // is the init's as the container sees it (runtime-spec "State"; runc does the same).
    let own_pid = nix::unistd::getpid().as_raw();
    let state = l.oci_state(Status::Creating, own_pid);
    hooks::run_all_in_rootfs(
        "createContainer",
        hooks.create_container().as_ref(),
        &state,
        &b.rootfs,
        b.process.process.env().as_deref().unwrap_or_default(),
    )?;
    crate::rootfs::enter(&prepared, l.no_pivot)?;
    crate::logging::step(if l.no_pivot {
        "init: rootfs entered (MS_MOVE + chroot)"
    } else {
        "init: rootfs entered (pivot_root)"
    });
    nix::unistd::setsid().context("setsid")?;
    let process = &b.process.process;
    if b.process.terminal {
        let socket = l
            .console
            .context("process.terminal is true but there is no console socket")?;
        crate::process::tty::setup_in_container(socket, process.console_size(), true)?;
    }
    crate::rootfs::finish(&b.fs, &prepared)?;
    drop(prepared);
    crate::rootfs::reopen_dev_null()?;
    crate::logging::step("init: masked and read-only paths, propagation");
    b.uts.apply()?;
    identity::sysctls(&b.sysctls, &proc)?;
    identity::rlimits(process)?;
    if !l.no_new_keyring {
        crate::sys::misc::join_session_keyring(&format!("_ses.{}", l.id))
            .context("creating a session keyring (use --no-new-keyring to skip)")?;
    }
    // ioPriority, scheduler, memoryPolicy, personality (procattrs.rs); LSM exec labels
    // (lsm.rs): while still privileged and before any seccomp filter.
    b.process.attrs.apply()?;
    b.container_attrs.apply()?;
    crate::process::lsm::apply_labels(&b.process.labels, &proc)?;
    let mut env = identity::environment(process);
    crate::process::activation::environment(&mut env, l.listen_fds);
    // For a NOTIFY filter: the container process state for the agent, built before loading.
    let agent = match &l.seccomp_agent {
        Some(a) => Some((
            a.socket,
            crate::seccomp::agent::process_state(
                pid,
                a.metadata,
                &l.oci_state(Status::Creating, pid),
            )?,
        )),
        None => None,
    };
    let mut armed = tail::prepare(Tail {
        process: &b.process,
        filter: b.seccomp.as_ref(),
        agent,
        env,
        kept_fds: l.listen_fds.saturating_add(l.preserve_fds),
        setgroups_denied,
    })?;
    crate::logging::step("init: identity switched, program found");
    prctl::set_pdeathsig(None).context("clearing the parent-death signal")?;
    end.ready()?;
    ready_sent.set(true);
    // Until skiff has recorded the container its death (EOF) is ours (process::sync).
    end.wait_commit()?;
    let barrier = wait_for_start(&proc, l.fifo)?;
    crate::logging::step("init: started");
    drop(proc);
    let state = l.oci_state(Status::Created, own_pid);
    // The filter goes on before the startContainer hooks (they are the container's own
    // programs, run as runc does: under its seccomp profile, with its environment).
    let started = armed.seal().and_then(|()| {
        hooks::run_all_in_container(
            "startContainer",
            hooks.start_container().as_ref(),
            &state,
            armed.env(),
        )
    });
    // `start` waits for our verdict on the fifo: a byte '0', or 'E' and why we failed.
    match &started {
        Ok(()) => nix::unistd::write(&barrier, b"0").map(drop),
        Err(e) => nix::unistd::write(&barrier, format!("E{e:#}").as_bytes()).map(drop),
    }
    .context("writing to the exec fifo")?;
    started?;
    armed.exec()
}

/// No one in the container may ptrace us or open our /proc files while we still hold host
/// resources (CVE-2016-9962); if the parent dies mid-setup we go too. execve resets both.
fn harden() -> Result<()> {
    prctl::set_pdeathsig(Signal::SIGKILL).context("setting the parent-death signal")?;
    prctl::set_dumpable(false).context("making the init non-dumpable")?;
    Ok(())
}

/// Sets the parent-death signal again after a credential change cleared it; a parent that
/// died before that shows as EOF on the socket.
fn rearm_parent_death(end: &ChildEnd) -> Result<()> {
    prctl::set_pdeathsig(Signal::SIGKILL).context("setting the parent-death signal")?;
    if end.parent_gone() {
        anyhow::bail!("skiff exited during container setup");
    }
    Ok(())
}

/// The state lock above all: a copy of its fd in the child would keep the container locked
/// for as long as the init lives.
fn close_parent_fds(fds: &[RawFd]) {
    for fd in fds {
        let _ = nix::unistd::close(*fd);
    }
}

fn enter_namespaces(l: &Launch<'_>, end: &ChildEnd) -> Result<()> {
    let plan = l.plan;
    for j in &plan.join {
        j.enter()?;
    }
    if plan.unshare_user {
        unshare(CloneFlags::CLONE_NEWUSER).context("creating the user namespace")?;
        if plan.unprivileged {
            prctl::set_dumpable(true).context("PR_SET_DUMPABLE")?;
        }
        end.map_ids()?;
        if plan.unprivileged {
            prctl::set_dumpable(false).context("PR_SET_DUMPABLE")?;
        }
    }
    if !plan.unshare.is_empty() {
        unshare(plan.unshare).with_context(|| format!("creating namespaces {:?}", plan.unshare))?;
    }
    if plan.fork {
        // The pid namespace we just unshared is only for our children: the init is one.
        super::spawn::fork_into_pid_ns(end, "init")?;
    }
    Ok(())
}

/// In a new user namespace we still carry the host's ids, which are unmapped there: files we
/// create would fail with EOVERFLOW. Become the namespace's root (the maps are written now).
fn become_userns_root(setgroups_denied: bool) -> Result<()> {
    let root = (nix::unistd::Gid::from_raw(0), nix::unistd::Uid::from_raw(0));
    // Denied where an unprivileged caller mapped only its own gid (the kernel's price for
    // that map): the host groups then stay, unmapped, as they do with runc.
    if !setgroups_denied {
        crate::sys::misc::setgroups(&[])
            .context("dropping supplementary groups in the user namespace")?;
    }
    nix::unistd::setresgid(root.0, root.0, root.0)
        .context("becoming gid 0 of the user namespace (is gid 0 in linux.gidMappings?)")?;
    nix::unistd::setresuid(root.1, root.1, root.1)
        .context("becoming uid 0 of the user namespace (is uid 0 in linux.uidMappings?)")
}

/// A new network namespace has only `lo`, and down: runc (its default "loopback" network)
/// and crun bring it up, and services listening on 127.0.0.1 count on it.
fn loopback_up() -> Result<()> {
    const LOOPBACK_INDEX: i32 = 1;
    crate::sys::netlink::Route::open()
        .and_then(|mut r| r.set_up(crate::sys::netlink::Link::Index(LOOPBACK_INDEX), true))
        .context("bringing up lo in the new network namespace")
}

/// linux.timeOffsets can only be written while no process is in the new time namespace, so
/// unshare it (which affects only our children), write the offsets, then move ourselves in.
fn time_namespace(l: &Launch<'_>, proc: &Proc) -> Result<()> {
    unshare(crate::process::namespaces::clone_flag(
        oci_spec::runtime::LinuxNamespaceType::Time,
    ))
    .context("creating the time namespace")?;
    let text = &l.bundle.time_offsets;
    if !text.is_empty() {
        // A non-dumpable process's /proc files belong to the host's root, which a new user
        // namespace's root is not: dumpable just for this write. Nothing of the container's
        // runs yet (its own processes only appear after start), so no one can use the window.
        prctl::set_dumpable(true).context("PR_SET_DUMPABLE")?;
        let written = proc
            .write_self("timens_offsets", text)
            .context("linux.timeOffsets");
        prctl::set_dumpable(false).context("PR_SET_DUMPABLE")?;
        written?;
    }
    let ns = proc.open_own_link("ns", "time_for_children", libc::O_RDONLY)?;
    nix::sched::setns(
        ns.as_fd(),
        CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    )
    .context("entering the time namespace")
}

/// The create/start barrier: opening the fifo for writing blocks until `skiff start` opens
/// it for reading. The caller then writes its verdict (see `start`).
fn wait_for_start(proc: &Proc, fifo: BorrowedFd<'_>) -> Result<std::os::fd::OwnedFd> {
    proc.reopen_own_fd(fifo, libc::O_WRONLY)
        .context("opening the exec fifo")
}
