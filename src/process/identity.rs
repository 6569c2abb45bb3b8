//! The process's identity and limits, applied by the init after pivot_root: hostname,
//! sysctls, rlimits, user and groups, capabilities, no_new_privs, umask, cwd, and finally the
//! program lookup and execve.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::prctl;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process, Spec};

use crate::process::capabilities::Sets;
use crate::process::procfs::Proc;
use crate::sys::misc;

/// Whether setgroups(2) is denied in the user namespace of `pid` ("self", or a container's
/// init): read from the host's /proc, before a process pivots away from it.
pub fn setgroups_denied(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/setgroups")).is_ok_and(|s| s.trim() == "deny")
}

/// hostname and domainname (the empty string is "not set", as runc reads it).
#[derive(Debug, Clone, Default)]
pub struct Uts {
    pub hostname: Option<String>,
    pub domainname: Option<String>,
}

impl Uts {
    pub fn compile(spec: &Spec) -> Uts {
        let set = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        Uts {
            hostname: set(spec.hostname()),
            domainname: set(spec.domainname()),
        }
    }

    pub fn apply(&self) -> Result<()> {
        if let Some(h) = &self.hostname {
            nix::unistd::sethostname(h).with_context(|| format!("hostname: setting {h:?}"))?;
        }
        if let Some(d) = &self.domainname {
            misc::setdomainname(d).with_context(|| format!("domainname: setting {d:?}"))?;
        }
        Ok(())
    }
}

/// linux.sysctl (checked and sorted by `sysctl::compile`), written through the private
/// procfs handle (never the container's /proc, which the container controls).
pub fn sysctls(pairs: &[(String, String)], proc: &Proc) -> Result<()> {
    for (k, v) in pairs {
        proc.write_sysctl(k, v)
            .with_context(|| format!("linux.sysctl: {k}"))?;
    }
    Ok(())
}

pub fn rlimit_resource(t: PosixRlimitType) -> u32 {
    use PosixRlimitType as R;
    match t {
        R::RlimitCpu => libc::RLIMIT_CPU,
        R::RlimitFsize => libc::RLIMIT_FSIZE,
        R::RlimitData => libc::RLIMIT_DATA,
        R::RlimitStack => libc::RLIMIT_STACK,
        R::RlimitCore => libc::RLIMIT_CORE,
        R::RlimitRss => libc::RLIMIT_RSS,
        R::RlimitNproc => libc::RLIMIT_NPROC,
        R::RlimitNofile => libc::RLIMIT_NOFILE,
        R::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        R::RlimitAs => libc::RLIMIT_AS,
        R::RlimitLocks => libc::RLIMIT_LOCKS,
        R::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        R::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        R::RlimitNice => libc::RLIMIT_NICE,
        R::RlimitRtprio => libc::RLIMIT_RTPRIO,
        R::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub fn rlimits(p: &Process) -> Result<()> {
    for r in p.rlimits().iter().flatten() {
        let res = rlimit_resource(r.typ());
        if let Err(e) = misc::setrlimit(res, r.soft(), r.hard()) {
            let (_, cur_hard) = misc::getrlimit(res).unwrap_or((0, 0));
            if e.raw_os_error() == Some(libc::EPERM) && r.hard() > cur_hard {
                bail!(
                    "process.rlimits: {} hard limit {} is above the current hard limit {} \
                     (raising a hard limit needs CAP_SYS_RESOURCE)",
                    r.typ(),
                    r.hard(),
                    cur_hard
                );
            }
            return Err(e).with_context(|| {
                format!(
                    "process.rlimits: setting {} to {}/{}",
                    r.typ(),
                    r.soft(),
                    r.hard()
                )
            });
        }
    }
    Ok(())
}

/// process.env, plus HOME from the container's /etc/passwd when the spec does not set it
/// (as runc does), so shells and tools find a home.
pub fn environment(p: &Process) -> Vec<String> {
    let mut env = dedup_env(p.env().as_deref().unwrap_or_default());
    // An empty HOME is as good as none (runc fills both in).
    env.retain(|e| e != "HOME=");
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = passwd_home(p.user().uid()).unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    env
}

/// Each variable once, the last setting winning, in the order of first appearance (what
/// execve's caller sees with runc, which goes through Go's os.Setenv).
fn dedup_env(env: &[String]) -> Vec<String> {
    let key = |e: &String| e.split_once('=').map_or(e.clone(), |(k, _)| k.to_string());
    let mut out: Vec<String> = Vec::with_capacity(env.len());
    for e in env {
        let k = key(e);
        match out.iter_mut().find(|o| key(o) == k) {
            Some(slot) => *slot = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

fn passwd_home(uid: u32) -> Option<String> {
    passwd_field(&std::fs::read_to_string("/etc/passwd").ok()?, uid, 5)
}

/// Field `field` (0 = name, 5 = home) of the first passwd(5) line for `uid`.
pub fn passwd_field(passwd: &str, uid: u32, field: usize) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[field].to_string())
    })
}

/// Groups, gid, uid, then capabilities: the bounding set is cut while we still have
/// CAP_SETPCAP, PR_SET_KEEPCAPS keeps the permitted set across setuid, and the final sets
/// are applied last (with `extra` kept on top, see [`Sets::apply_rest`]). no_new_privs and
/// the umask follow.
/// `setgroups_denied`: see [`setgroups_denied`] (then only no additional gids will do).
pub fn switch_user(
    p: &Process,
    caps: &Sets,
    extra: Option<caps::Capability>,
    setgroups_denied: bool,
) -> Result<()> {
    chown_stdio(p)?;
    caps.apply_bounding()?;
    let u = p.user();
    prctl::set_keepcaps(true).context("PR_SET_KEEPCAPS")?;
    let groups = u.additional_gids().clone().unwrap_or_default();
    if !setgroups_denied {
        misc::setgroups(&groups)
            .with_context(|| format!("process.user.additionalGids: {groups:?}"))?;
    } else if !groups.is_empty() {
        bail!(
            "process.user.additionalGids: {groups:?} cannot be set: setgroups is denied in \
             this user namespace (an unprivileged caller mapped only its own gid; map \
             /etc/subgid ranges through newgidmap to use more groups)"
        );
    }
    let gid = Gid::from_raw(u.gid());
    nix::unistd::setresgid(gid, gid, gid)
        .with_context(|| format!("process.user.gid: {}", u.gid()))?;
    let uid = Uid::from_raw(u.uid());
    nix::unistd::setresuid(uid, uid, uid)
        .with_context(|| format!("process.user.uid: {}", u.uid()))?;
    prctl::set_keepcaps(false).context("PR_SET_KEEPCAPS")?;
    caps.apply_rest(extra)?;
    if p.no_new_privileges().unwrap_or(false) {
        prctl::set_no_new_privs().context("process.noNewPrivileges")?;
    }
    misc::umask(u.umask().unwrap_or(0o022));
    Ok(())
}

/// The cwd is entered while we still have our capabilities (a directory only root may
/// enter, e.g. /root, stays reachable for a process that runs as another user, as in runc),
/// and again after the switch if that first try was refused.
pub fn switch_user_and_chdir(
    p: &Process,
    caps: &Sets,
    extra: Option<caps::Capability>,
    setgroups_denied: bool,
) -> Result<()> {
    let early = chdir(p);
    switch_user(p, caps, extra, setgroups_denied)?;
    match early {
        Ok(()) => Ok(()),
        Err(_) => chdir(p),
    }
}

/// chdir into process.cwd and check that it really is inside the container: a cwd reached
/// through a leaked host fd reads back as unreachable (CVE-2024-21626).
pub fn chdir(p: &Process) -> Result<()> {
    let cwd = p.cwd();
    nix::unistd::chdir(cwd).with_context(|| format!("process.cwd: chdir to {}", cwd.display()))?;
    misc::getcwd()
        .with_context(|| format!("process.cwd: {} is outside the container", cwd.display()))?;
    Ok(())
}

/// Resolves args[0] now, so a missing program fails `create` rather than `start`.
pub fn lookup(p: &Process, env: &[String]) -> Result<PathBuf> {
    let args = p.args().as_deref().unwrap_or_default();
    let prog = args.first().context("process.args: empty")?;
    let ok = |path: &Path| {
        // With the effective ids and capabilities (as execve itself checks): a program with
        // no exec bit for the user still runs with CAP_DAC_OVERRIDE, as in runc.
        nix::unistd::faccessat(
            nix::fcntl::AT_FDCWD,
            path,
            nix::unistd::AccessFlags::X_OK,
            nix::fcntl::AtFlags::AT_EACCESS,
        )
        .is_ok()
            && std::fs::metadata(path).is_ok_and(|m| m.is_file())
    };
    if prog.contains('/') {
        let path = PathBuf::from(prog);
        if ok(&path) {
            return Ok(path);
        }
        bail!("exec: {prog:?}: no such executable file in the container (process.args[0])");
    }
    let search = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("");
    for dir in search.split(':').filter(|d| !d.is_empty()) {
        let path = Path::new(dir).join(prog);
        if ok(&path) {
            return Ok(path);
        }
    }
    bail!("exec: {prog:?}: executable file not found in $PATH (process.args[0])")
}

/// The execve(2) arguments, built before the seccomp filter goes on (building them later
/// would allocate, and allocating may need brk or mmap, which a profile may not allow).
#[derive(Debug)]
pub struct Execve {
    exe: PathBuf,
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
}

impl Execve {
    pub fn new(exe: PathBuf, p: &Process, env: &[String]) -> Result<Execve> {
        let c = |s: &str| CString::new(s).with_context(|| format!("NUL byte in {s:?}"));
        let path =
            CString::new(exe.as_os_str().as_encoded_bytes()).context("NUL byte in program path")?;
        let args = p
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|a| c(a))
            .collect::<Result<Vec<_>>>()?;
        let env = env.iter().map(|e| c(e)).collect::<Result<Vec<_>>>()?;
        Ok(Execve {
            exe,
            path,
            args,
            env,
        })
    }

    pub fn run(&self) -> Result<Infallible> {
        let e = nix::unistd::execve(&self.path, &self.args, &self.env).unwrap_err();
        // The wording runc (and Go) use, which users and runc's tests look for:
        // "exec /run.sh: no such file or directory".
        let why = std::io::Error::from_raw_os_error(e as i32).to_string();
        let why = why
            .split(" (os error")
            .next()
            .unwrap_or(&why)
            .to_lowercase();
        anyhow::bail!("exec {}: {why}", self.exe.display())
    }
}

/// The container user owns its stdio, as runc arranges: a shell as uid 1000 on a terminal
/// allocated by root could not otherwise use it. /dev/null and fds already owned by the user
/// are left alone, and so are fds whose owner cannot be changed from here (unmapped ids,
/// read-only filesystems): that is not worth failing the container over.
pub fn chown_stdio(p: &Process) -> Result<()> {
    let uid = p.user().uid();
    let null = nix::sys::stat::stat("/dev/null").ok().map(|s| s.st_rdev);
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    for (fd, borrowed) in [(0, stdin.as_fd()), (1, stdout.as_fd()), (2, stderr.as_fd())] {
        let Ok(st) = nix::sys::stat::fstat(borrowed) else {
            continue;
        };
        if st.st_uid == uid || (st.st_rdev != 0 && Some(st.st_rdev) == null) {
            continue;
        }
        match nix::unistd::fchown(
            borrowed,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(st.st_gid)),
        ) {
            Ok(())
            | Err(
                nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM | nix::errno::Errno::EROFS,
            ) => {}
            Err(e) => return Err(e).with_context(|| format!("giving fd {fd} to uid {uid}")),
        }
    }
    Ok(())
}
