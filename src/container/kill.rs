//! `kill`: send a signal to the init (or with --all to every process of the container).

use std::os::fd::AsFd;
use std::str::FromStr;

use anyhow::{bail, Context, Result};

use super::Global;
use crate::cgroups;
use crate::state::{State, Status, Store};
use crate::sys::pidfd;

/// A signal by name (`KILL`, `SIGKILL`, `sigkill`) or number (`9`), as runc accepts them.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        // 0 sends nothing but still checks the container is running (kill(2)'s probe).
        if (0..=libc::SIGRTMAX()).contains(&n) {
            return Ok(n);
        }
        bail!(
            "invalid signal {s:?}: numbers go from 0 to {}",
            libc::SIGRTMAX()
        );
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.parse().unwrap_or(-1)
        };
        // `off` comes from the command line: no wrap (SIGRTMIN+2147483647).
        if let Some(n) = libc::SIGRTMIN().checked_add(off) {
            if off >= 0 && n <= libc::SIGRTMAX() {
                return Ok(n);
            }
        }
    }
    nix::sys::signal::Signal::from_str(&name)
        .map(|sig| sig as i32)
        .map_err(|_| anyhow::anyhow!("unknown signal {s:?}"))
}

pub fn kill(g: &Global, id: &str, signal: &str, all: bool) -> Result<()> {
    let sig = parse_signal(signal)?;
    let (locked, state) = Store::new(&g.root).open(id)?;
    // Without its own pid namespace, the init's death does not take the other processes
    // along, so SIGKILL goes to all of them — even once the init is gone (as runc does).
    if sig == libc::SIGKILL && !state.own_pid_ns {
        return signal_all(&state, sig);
    }
    if locked.status(&state) == Status::Stopped {
        // `kill --all` of a stopped container has nothing left to do: success, as runc.
        if all {
            return Ok(());
        }
        bail!("container not running");
    }
    if all {
        return signal_all(&state, sig);
    }
    let fd = super::init_pidfd(&state)?.context("container not running")?;
    match pidfd::send_signal(fd.as_fd(), sig) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => bail!("container not running"),
        r => r.with_context(|| format!("sending signal {sig} to the container init {}", state.pid)),
    }
}

/// Every process of the container (cgroup.kill for SIGKILL without a pid namespace of its
/// own). A container with its own pid namespace owns only the processes of that namespace:
/// another container sharing its cgroup is never signalled.
pub fn signal_all(state: &State, sig: i32) -> Result<()> {
    let Some(cg) = &state.cgroup else {
        // Rootless without a cgroup of its own.
        for pid in without_cgroup(state)? {
            if let Ok(fd) = pidfd::open(pid) {
                let _ = pidfd::send_signal(fd.as_fd(), sig);
            }
        }
        return Ok(());
    };
    let pids = if state.own_pid_ns {
        pids_in_namespace(state, cgroups::pids(cg)?)?
    } else if sig == libc::SIGKILL {
        return cgroups::kill_all(cg);
    } else {
        cgroups::pids(cg)?
    };
    // Through a pidfd of each: any signal number (real-time ones included), and a pid that
    // exited meanwhile cannot be confused with a new process.
    for pid in pids {
        if let Ok(fd) = pidfd::open(pid) {
            let _ = pidfd::send_signal(fd.as_fd(), sig);
        }
    }
    Ok(())
}

/// The processes of a container without a cgroup (rootless): those in its own pid
/// namespace (every /proc entry is looked at: only `ps` and `kill --all` do this), else the
/// init alone.
pub fn without_cgroup(state: &State) -> Result<Vec<i32>> {
    if !state.own_pid_ns {
        return Ok(match super::init_pidfd(state)? {
            Some(_) => vec![state.pid],
            None => vec![],
        });
    }
    let all: Vec<i32> = std::fs::read_dir("/proc")
        .context("reading /proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids_in_namespace(state, all)
}

/// The pids (of the container's cgroup) that are in the init's pid namespace; none once the
/// init is gone (the kernel has killed the namespace then).
fn pids_in_namespace(state: &State, pids: Vec<i32>) -> Result<Vec<i32>> {
    let Some(init) = super::init_pidfd(state)? else {
        return Ok(vec![]);
    };
    let ns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(theirs) = ns(state.pid) else {
        return Ok(vec![]);
    };
    // Read by pid: it is the init's only if the init (held by our pidfd) still runs now.
    if pidfd::send_signal(init.as_fd(), 0).is_err() {
        return Ok(vec![]);
    }
    Ok(pids
        .into_iter()
        .filter(|&p| ns(p).as_ref() == Some(&theirs))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("hup").unwrap(), 1);
        assert_eq!(parse_signal("SIGRTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert_eq!(parse_signal("0").unwrap(), 0);
        let e = parse_signal("-1").unwrap_err().to_string();
        assert!(e.contains("numbers go from 0 to"), "{e}");
        let e = parse_signal("SIGNOPE").unwrap_err().to_string();
        assert!(e.contains("unknown signal \"SIGNOPE\""), "{e}");
        let e = parse_signal("SIGRTMIN+2147483647").unwrap_err().to_string();
        assert!(e.contains("unknown signal \"SIGRTMIN+2147483647\""), "{e}");
        let e = parse_signal("RTMIN+-5").unwrap_err().to_string();
        assert!(e.contains("unknown signal \"RTMIN+-5\""), "{e}");
    }
}
