//! `exec`: build the process (from --process, or from the container's own process with the
//! command-line overrides, as runc does), check the container may take it, spawn it inside
//! (process::exec) and wait for it unless detached.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path};

use anyhow::{bail, Context, Result};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType as T, Process};

use super::run::{wait_forwarding, RawMode};
use super::{ExecOptions, Global};
use crate::process::exec::{spawn, Exec};
use crate::process::lsm::Host;
use crate::process::plan::ProcessPlan;
use crate::process::procattrs::ContainerAttrs;
use crate::process::spawn::{Attach, Birthplace};
use crate::seccomp::agent::Listener;
use crate::state::{Status, Store};

/// Exit status of the process (255 when it could not be started, as runc).
pub fn exec(g: &Global, id: &str, a: &ExecOptions) -> Result<i32> {
    match exec_inner(g, id, a) {
        Ok(code) => Ok(code),
        Err(e) => {
            crate::logging::error(&format!("exec failed: {e:#}"));
            if crate::logging::has_file() {
                eprintln!("skiff: exec failed: {e:#}");
            }
            Ok(255)
        }
    }
}

fn exec_inner(g: &Global, id: &str, a: &ExecOptions) -> Result<i32> {
    crate::logging::step("exec: start");
    // Before skiff opens anything of its own: the preserved fds must be the caller's.
    crate::process::fds::check_preserved(0, a.preserve_fds)?;
    let (locked, state) = Store::new(&g.root).open(id)?;
    crate::failpoint!("exec.locked");
    match locked.status(&state) {
        Status::Running | Status::Created => {}
        Status::Paused if a.ignore_paused => {}
        Status::Paused => bail!("cannot exec in a paused container (use --ignore-paused)"),
        _ => bail!("cannot exec in a stopped container"),
    }
    let spec = locked.load_spec()?;
    // The exec's plan: its own process, compiled as the init's was, and the container-wide
    // parts of the recorded config.
    let process = ProcessPlan::compile(build_process(a, &spec)?, Host::detect())?;
    let container = ContainerAttrs::compile(&spec)?;
    let seccomp = crate::bundle::seccomp(&spec)?;
    let listener = Listener::of(&spec);
    crate::logging::step("exec: container state and process loaded");
    if process.terminal && a.detach && a.console_socket.is_none() {
        bail!("a detached exec with a terminal needs --console-socket to receive it");
    }
    if !process.terminal && a.console_socket.is_some() {
        bail!("--console-socket given but the process has no terminal");
    }
    let init = super::init_pidfd(&state)?.context("cannot exec in a stopped container")?;
    // A rootless container without a cgroup of its own: the process is born in ours, as
    // its init was.
    let cgroup = match (&state.cgroup, a.cgroup.as_deref()) {
        (None, None) => None,
        _ => {
            let cg_path = cgroup_path(&state, a.cgroup.as_deref())?;
            let fd = std::fs::File::open(&cg_path)
                .map(OwnedFd::from)
                .with_context(|| format!("opening cgroup {}", cg_path.display()))?;
            Some(fd)
        }
    };
    // Where the process may not be born in the unit's cgroup (an unprivileged caller outside
    // the user's delegated subtree), the unit's systemd places it (not for --cgroup: a sub
    // cgroup is ours to name and systemd's to know nothing of).
    let unit = state
        .unit()
        .filter(|_| a.cgroup.is_none())
        .map(|(n, w)| (n.to_string(), w));
    let attach = |pid: i32| {
        let (name, which) = unit.as_ref().context("no systemd unit")?;
        crate::cgroups::driver::attach_to_unit((name, *which), pid)
    };
    let (relay_end, console) = console_for(a, process.terminal)?;
    // The seccomp agent (a host path): connected here, the exec process inherits it.
    let agent = match &seccomp {
        Some(f) => crate::seccomp::agent::connect(&listener, f)?,
        None => None,
    };
    let container_state = state.oci(locked.status(&state));
    let (join, join_pid) = namespaces_to_join(state.pid)?;
    let root = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(format!("/proc/{}/root", state.pid))
        .map(OwnedFd::from)
        .context("opening the container's root")?;
    // The root was opened by pid: it is the init's only if the init (held by our pidfd) is
    // still alive now, so the pid cannot have been reused meanwhile for another process
    // (whose root, e.g. the host's, the exec process would otherwise chroot into).
    crate::sys::pidfd::send_signal(init.as_fd(), 0)
        .context("the container's init exited while exec was starting")?;
    // Everything is held by fd from here on (the init's pidfd, its root, the cgroup): let go
    // of the container's lock before the process starts. It may be born into a frozen
    // cgroup (exec --ignore-paused) and only get to run once `resume` takes the lock.
    drop(locked);
    let mut e = Exec {
        init: init.as_fd(),
        root: root.as_fd(),
        process: &process,
        container: &container,
        seccomp: seccomp.as_ref(),
        join,
        join_pid,
        // Entering the container's pid namespace and returning to ours takes CAP_SYS_ADMIN
        // over both: not for a non-root user, nor for root of a user namespace (rootless
        // podman's) whose pid namespace is the host's.
        unprivileged: !nix::unistd::geteuid().is_root() || crate::host::in_user_namespace(),
        cgroup: cgroup.as_ref().map(|c| Birthplace {
            dir: c.as_fd(),
            attach: unit.is_some().then_some(&attach as Attach<'_>),
        }),
        console: console.as_ref().map(|c| c.as_fd()),
        seccomp_agent: agent.as_ref().map(|a| {
            let agent = crate::seccomp::Agent {
                socket: a.as_fd(),
                metadata: listener.metadata.as_deref(),
            };
            (agent, container_state.clone())
        }),
        preserve_fds: a.preserve_fds,
        setgroups_denied: join.contains(CloneFlags::CLONE_NEWUSER)
            && crate::process::identity::setgroups_denied(&state.pid.to_string()),
        close_in_child: cgroup.iter().map(|c| c.as_raw_fd()).collect(),
    };
    let child = spawn(&mut e)?;
    crate::failpoint!("exec.ready");
    drop(console);
    drop(agent);
    if let Some(p) = &a.pid_file {
        super::write_pid_file(p, child.pid)?;
    }
    if let Some(p) = &a.pidfd_socket {
        super::create::send_pidfd(p, child.pidfd.as_fd())?;
    }
    let master = match &relay_end {
        Some(s) => Some(crate::process::tty::recv_fd(s.as_fd())?),
        None => None,
    };
    crate::failpoint!("exec.pid-file");
    if a.detach {
        return Ok(0);
    }
    let _raw = master.as_ref().map(|_| RawMode::enter());
    wait_forwarding(child.pidfd.as_fd(), master.as_ref())
}

/// The process to run: --process FILE as given, or the container's process with the
/// command-line overrides.
fn build_process(a: &ExecOptions, spec: &oci_spec::runtime::Spec) -> Result<Process> {
    if let Some(path) = &a.process {
        let text = crate::host::read_limited(path).context("--process")?;
        let p =
            crate::bundle::parse_process(&text).with_context(|| format!("{}", path.display()))?;
        if p.args().as_deref().unwrap_or_default().is_empty() {
            bail!(
                "{}: args: must hold at least the program to run",
                path.display()
            );
        }
        return Ok(p);
    }
    if a.command.is_empty() {
        bail!("exec needs a command to run (or --process FILE)");
    }
    let mut p = spec
        .process()
        .clone()
        .context("the container has no process")?;
    p.set_args(Some(a.command.clone()));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    p.set_terminal(Some(a.tty));
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        let user = p.user_mut();
        user.set_uid(
            uid.parse()
                .with_context(|| format!("--user: {uid:?} is not a numeric uid"))?,
        );
        if let Some(g) = gid {
            user.set_gid(
                g.parse()
                    .with_context(|| format!("--user: {g:?} is not a numeric gid"))?,
            );
        }
    }
    if !a.additional_gids.is_empty() {
        let user = p.user_mut();
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        gids.extend(&a.additional_gids);
        user.set_additional_gids(Some(gids));
    }
    if !a.caps.is_empty() {
        add_caps(&mut p, &a.caps)?;
    }
    if let Some(ap) = &a.apparmor {
        p.set_apparmor_profile(Some(ap.clone()));
    }
    if let Some(l) = &a.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    Ok(p)
}

/// --cap adds to bounding, effective and permitted, and to ambient only when the process
/// already has inheritable capabilities: never to inheritable (CVE-2022-29162).
fn add_caps(p: &mut Process, names: &[String]) -> Result<()> {
    let mut caps = p.capabilities().clone().unwrap_or_default();
    let has_inheritable = caps.inheritable().as_ref().is_some_and(|s| !s.is_empty());
    for n in names {
        let name = if n.starts_with("CAP_") {
            n.clone()
        } else {
            format!("CAP_{}", n.to_uppercase())
        };
        let c: oci_spec::runtime::Capability =
            serde_json::from_value(serde_json::Value::String(name))
                .map_err(|_| anyhow::anyhow!("--cap: unknown capability {n:?}"))?;
        let with = |set: &Option<oci_spec::runtime::Capabilities>| {
            let mut set = set.clone().unwrap_or_default();
            set.insert(c);
            Some(set)
        };
        caps.set_bounding(with(caps.bounding()));
        caps.set_effective(with(caps.effective()));
        caps.set_permitted(with(caps.permitted()));
        if has_inheritable {
            caps.set_ambient(with(caps.ambient()));
        }
    }
    p.set_capabilities(Some(caps));
    Ok(())
}

/// The cgroup the exec process is born in. Without --cgroup: the container's cgroup, unless
/// it cannot take a process — it is gone, or (the init having moved into a child cgroup)
/// domain controllers are enabled in it — and then, as runc falls back, the cgroup the init
/// is in now. With --cgroup: that cgroup below the container's, with no fallback.
fn cgroup_path(state: &crate::state::State, sub: Option<&str>) -> Result<std::path::PathBuf> {
    let base = state
        .cgroup
        .clone()
        .context("the container has no cgroup")?;
    let Some(sub) = sub.filter(|s| !s.is_empty()) else {
        if crate::cgroups::accepts_processes(&base) {
            return Ok(base);
        }
        let (mount, _) = crate::cgroups::host_layout()?;
        return match crate::cgroups::cgroup_of(&mount, state.pid) {
            Some(init_cg) => Ok(init_cg),
            // The init is gone too: opening the container's cgroup reports what is wrong.
            None => Ok(base),
        };
    };
    // runc also accepts "controller:path" for cgroup v1; on v2 only the path matters.
    let sub = sub.rsplit_once(':').map_or(sub, |(_, p)| p);
    let rel = Path::new(sub.trim_start_matches('/'));
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        bail!(
            "--cgroup: bad sub cgroup path {sub:?}: it must be a path below the container's cgroup"
        );
    }
    let path = base.join(rel);
    if !path.is_dir() {
        bail!(
            "--cgroup {sub:?}: opening cgroup {}: {}",
            path.display(),
            std::io::Error::from_raw_os_error(libc::ENOENT)
        );
    }
    if !crate::cgroups::accepts_processes(&path) {
        let domain = crate::cgroups::domain_controllers_enabled(&path);
        let why = if domain.is_empty() {
            "its cgroup.type is \"domain invalid\"".to_string()
        } else {
            format!(
                "cgroup v2's no-internal-processes rule: it has the domain controllers {} \
                 enabled for its children",
                domain.join(" ")
            )
        };
        bail!(
            "--cgroup {sub:?}: exec: adding pid of the new process to cgroups: {}: {} ({why})",
            path.join("cgroup.procs").display(),
            std::io::Error::from_raw_os_error(libc::EBUSY),
        );
    }
    Ok(path)
}

/// A connected console socket (--console-socket), or for a foreground -t our own pair:
/// (our end to receive the master on, the end the process sends it through).
fn console_for(a: &ExecOptions, terminal: bool) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    if !terminal {
        return Ok((None, None));
    }
    if let Some(path) = &a.console_socket {
        let s = std::os::unix::net::UnixStream::connect(path)
            .with_context(|| format!("--console-socket: connecting to {}", path.display()))?;
        return Ok((None, Some(s.into())));
    }
    let (x, y) = crate::process::tty::relay_pair()?;
    Ok((Some(x), Some(y)))
}

/// The init's namespaces that are not ours, as setns flags (pid separately).
fn namespaces_to_join(pid: i32) -> Result<(CloneFlags, bool)> {
    let mut flags = CloneFlags::empty();
    let mut pid_ns = false;
    for t in [
        T::User,
        T::Mount,
        T::Network,
        T::Ipc,
        T::Uts,
        T::Cgroup,
        T::Time,
        T::Pid,
    ] {
        let name = crate::process::namespaces::proc_name(t);
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{name}"));
        let ours = std::fs::read_link(format!("/proc/self/ns/{name}"));
        match (theirs, ours) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(_), Ok(_)) if t == T::Pid => pid_ns = true,
            (Ok(_), Ok(_)) => flags |= crate::process::namespaces::clone_flag(t),
            // A namespace type this kernel lacks: nothing to join.
            (Err(_), Err(_)) => {}
            (Err(e), _) | (_, Err(e)) => {
                return Err(e)
                    .with_context(|| format!("reading the {name} namespace of the container"))
            }
        }
    }
    Ok((flags, pid_ns))
}
