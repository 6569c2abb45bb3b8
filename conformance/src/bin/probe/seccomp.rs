//! linux.seccomp checked from inside: every named syscall is made (with harmless arguments)
//! and its result compared with the rule's action; a syscall no rule names shows the default.

use std::collections::HashMap;

use serde_json::Value;

use super::{errno, unverified, verdict};

/// Invoke a syscall by name with harmless arguments (args overridden by `over`).
/// Returns (ret, errno) or None if the probe does not know the syscall.
fn invoke(name: &str, over: &[(usize, u64)]) -> Option<(i64, i32)> {
    let mut buf = [0u8; 512];
    let path = b"/nonexistent-probe-dir/x\0";
    let mut a: [u64; 6] = [0; 6];
    let nr = match name {
        "getcwd" => {
            a[0] = buf.as_mut_ptr() as u64;
            a[1] = buf.len() as u64;
            libc::SYS_getcwd
        }
        "uname" => {
            a[0] = buf.as_mut_ptr() as u64;
            libc::SYS_uname
        }
        "getpriority" => {
            a[0] = libc::PRIO_PROCESS as u64;
            libc::SYS_getpriority
        }
        "mkdir" => {
            a[0] = path.as_ptr() as u64;
            a[1] = 0o755;
            libc::SYS_mkdir
        }
        "mkdirat" => {
            a[0] = libc::AT_FDCWD as i64 as u64;
            a[1] = path.as_ptr() as u64;
            a[2] = 0o755;
            libc::SYS_mkdirat
        }
        "chmod" => {
            a[0] = path.as_ptr() as u64;
            libc::SYS_chmod
        }
        "fchmodat" => {
            a[0] = libc::AT_FDCWD as i64 as u64;
            a[1] = path.as_ptr() as u64;
            libc::SYS_fchmodat
        }
        "personality" => {
            a[0] = 0xffffffff;
            libc::SYS_personality
        }
        "getppid" => libc::SYS_getppid,
        "getpgid" => libc::SYS_getpgid,
        "getsid" => libc::SYS_getsid,
        "acct" => libc::SYS_acct,
        "sched_yield" => libc::SYS_sched_yield,
        "getuid" => libc::SYS_getuid,
        _ => match harmless(name) {
            Some((nr, args)) => {
                a = args;
                nr
            }
            None => return None,
        },
    };
    for (i, v) in over {
        if *i < 6 {
            a[*i] = *v;
        }
    }
    // SAFETY: the syscalls above with these arguments only query or fail.
    let r = unsafe {
        *libc::__errno_location() = 0;
        libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5])
    };
    Some((r, if r == -1 { errno() } else { 0 }))
}

/// Calls that neither change the probe's state nor block: a bad fd (-1), a NULL pointer, a
/// zero length or an out-of-range argument make the kernel reject them after seccomp has let
/// them through, and none of those rejections is ESRCH (the suite's usual defaultErrnoRet), so
/// "allowed" and "filtered" stay distinguishable. Calls that would end, fork or block the probe
/// (exit, fork, pause, rt_sigreturn, ...) are not here: the caller reports them unexercised.
fn harmless(name: &str) -> Option<(i64, [u64; 6])> {
    static ZERO_TS: [i64; 2] = [0, 0];
    let bad = u64::MAX; // fd -1, uid -1, ...
    let ts = ZERO_TS.as_ptr() as u64;
    let me = std::process::id() as u64;
    let z = [0u64; 6];
    let with = |nr: i64, first: &[u64]| {
        let mut a = z;
        a[..first.len()].copy_from_slice(first);
        Some((nr, a))
    };
    use libc::*;
    match name {
        // fd -1: EBADF
        "read" | "write" | "close" | "fstat" | "fstatfs" | "lseek" | "ioctl" | "pread64"
        | "pwrite64" | "readv" | "writev" | "dup" | "fchdir" | "fcntl" | "flock" | "getdents"
        | "getdents64" | "fsync" | "fdatasync" | "ftruncate" | "fchmod" | "fchown" | "connect"
        | "sendto" | "recvfrom" | "sendmsg" | "recvmsg" | "getsockopt" | "setsockopt"
        | "epoll_ctl" | "epoll_wait" | "epoll_pwait" | "setns" => {
            let nr = match name {
                "read" => SYS_read,
                "write" => SYS_write,
                "close" => SYS_close,
                "fstat" => SYS_fstat,
                "fstatfs" => SYS_fstatfs,
                "lseek" => SYS_lseek,
                "ioctl" => SYS_ioctl,
                "pread64" => SYS_pread64,
                "pwrite64" => SYS_pwrite64,
                "readv" => SYS_readv,
                "writev" => SYS_writev,
                "dup" => SYS_dup,
                "fchdir" => SYS_fchdir,
                "fcntl" => SYS_fcntl,
                "flock" => SYS_flock,
                "getdents" => SYS_getdents,
                "getdents64" => SYS_getdents64,
                "fsync" => SYS_fsync,
                "fdatasync" => SYS_fdatasync,
                "ftruncate" => SYS_ftruncate,
                "fchmod" => SYS_fchmod,
                "fchown" => SYS_fchown,
                "connect" => SYS_connect,
                "sendto" => SYS_sendto,
                "recvfrom" => SYS_recvfrom,
                "sendmsg" => SYS_sendmsg,
                "recvmsg" => SYS_recvmsg,
                "getsockopt" => SYS_getsockopt,
                "setsockopt" => SYS_setsockopt,
                "epoll_ctl" => SYS_epoll_ctl,
                "epoll_wait" => SYS_epoll_wait,
                "epoll_pwait" => SYS_epoll_pwait,
                _ => SYS_setns,
            };
            with(nr, &[bad])
        }
        "dup2" => with(SYS_dup2, &[bad, bad]),
        "dup3" => with(SYS_dup3, &[bad, bad]),
        "close_range" => with(SYS_close_range, &[2, 1]), // first > last: EINVAL
        // NULL path: EFAULT
        "open" => with(SYS_open, &[]),
        "stat" => with(SYS_stat, &[]),
        "lstat" => with(SYS_lstat, &[]),
        "statfs" => with(SYS_statfs, &[]),
        "access" => with(SYS_access, &[]),
        "chdir" => with(SYS_chdir, &[]),
        "readlink" => with(SYS_readlink, &[]),
        "execve" => with(SYS_execve, &[]),
        "unlink" => with(SYS_unlink, &[]),
        "rename" => with(SYS_rename, &[]),
        "symlink" => with(SYS_symlink, &[]),
        "link" => with(SYS_link, &[]),
        "chroot" => with(SYS_chroot, &[]),
        "umount2" => with(SYS_umount2, &[]),
        "pivot_root" => with(SYS_pivot_root, &[]),
        "mount" => with(SYS_mount, &[]),
        "pipe" => with(SYS_pipe, &[]),
        "pipe2" => with(SYS_pipe2, &[]),
        // dirfd -1 and a NULL path: EFAULT or EBADF
        "openat" => with(SYS_openat, &[bad]),
        "openat2" => with(SYS_openat2, &[bad]),
        "newfstatat" => with(SYS_newfstatat, &[bad]),
        "statx" => with(SYS_statx, &[bad]),
        "faccessat" => with(SYS_faccessat, &[bad]),
        "faccessat2" => with(SYS_faccessat2, &[bad]),
        "readlinkat" => with(SYS_readlinkat, &[bad]),
        "execveat" => with(SYS_execveat, &[bad]),
        "unlinkat" => with(SYS_unlinkat, &[bad]),
        "renameat" => with(SYS_renameat, &[bad]),
        "renameat2" => with(SYS_renameat2, &[bad]),
        "fchownat" => with(SYS_fchownat, &[bad]),
        "symlinkat" => with(SYS_symlinkat, &[0, bad]),
        "linkat" => with(SYS_linkat, &[bad]),
        "utimensat" => with(SYS_utimensat, &[bad]),
        // queries and no-ops
        "getpid" => with(SYS_getpid, &[]),
        "gettid" => with(SYS_gettid, &[]),
        "geteuid" => with(SYS_geteuid, &[]),
        "getgid" => with(SYS_getgid, &[]),
        "getegid" => with(SYS_getegid, &[]),
        "getpgrp" => with(SYS_getpgrp, &[]),
        "getgroups" => with(SYS_getgroups, &[]),
        "brk" => with(SYS_brk, &[]),
        "getresuid" => with(SYS_getresuid, &[]),
        "getresgid" => with(SYS_getresgid, &[]),
        "sched_getscheduler" => with(SYS_sched_getscheduler, &[]),
        "sched_getparam" => with(SYS_sched_getparam, &[]),
        "sched_getaffinity" => with(SYS_sched_getaffinity, &[]),
        "sched_setaffinity" => with(SYS_sched_setaffinity, &[]),
        "sched_getattr" => with(SYS_sched_getattr, &[]),
        "sched_setattr" => with(SYS_sched_setattr, &[]),
        "ioprio_get" => with(SYS_ioprio_get, &[1, 0]),
        "prctl" => with(SYS_prctl, &[PR_GET_DUMPABLE as u64]),
        "prlimit64" => with(SYS_prlimit64, &[0, RLIMIT_NOFILE as u64]),
        "getrlimit" => with(SYS_getrlimit, &[RLIMIT_NOFILE as u64]),
        "setrlimit" => with(SYS_setrlimit, &[RLIMIT_NOFILE as u64]),
        "sigaltstack" => with(SYS_sigaltstack, &[]),
        "rt_sigprocmask" => with(SYS_rt_sigprocmask, &[SIG_BLOCK as u64, 0, 0, 8]),
        "rt_sigaction" => with(SYS_rt_sigaction, &[]),
        "getrandom" => with(SYS_getrandom, &[]),
        "clock_gettime" => with(SYS_clock_gettime, &[]),
        "clock_getres" => with(SYS_clock_getres, &[]),
        "gettimeofday" => with(SYS_gettimeofday, &[]),
        "time" => with(SYS_time, &[]),
        "sysinfo" => with(SYS_sysinfo, &[]),
        "nanosleep" => with(SYS_nanosleep, &[]),
        "clock_nanosleep" => with(SYS_clock_nanosleep, &[]),
        "poll" => with(SYS_poll, &[]),
        "ppoll" => with(SYS_ppoll, &[0, 0, ts]),
        "select" => with(SYS_select, &[0, 0, 0, 0, ts]),
        "pselect6" => with(SYS_pselect6, &[0, 0, 0, 0, ts]),
        "mmap" => with(SYS_mmap, &[]),
        "mprotect" => with(SYS_mprotect, &[]),
        "munmap" => with(SYS_munmap, &[]),
        "mremap" => with(SYS_mremap, &[]),
        "msync" => with(SYS_msync, &[]),
        "mincore" => with(SYS_mincore, &[]),
        "madvise" => with(SYS_madvise, &[]),
        "mlock" => with(SYS_mlock, &[]),
        "munlock" => with(SYS_munlock, &[]),
        "wait4" => with(SYS_wait4, &[999_999_999]),
        "waitid" => with(SYS_waitid, &[P_PID as u64, 999_999_999, 0, WEXITED as u64]),
        // signal 0 to ourselves: existence check only (a missing pid would answer ESRCH)
        "kill" => with(SYS_kill, &[me]),
        "tkill" => with(SYS_tkill, &[me]),
        "tgkill" => with(SYS_tgkill, &[me, me]),
        "set_robust_list" => with(SYS_set_robust_list, &[]),
        "get_robust_list" => with(SYS_get_robust_list, &[]),
        "rseq" => with(SYS_rseq, &[]),
        "futex" => with(SYS_futex, &[0, FUTEX_WAKE as u64]),
        "arch_prctl" => with(SYS_arch_prctl, &[]),
        "capget" => with(SYS_capget, &[]),
        "capset" => with(SYS_capset, &[]),
        "setuid" => with(SYS_setuid, &[u32::MAX as u64]),
        "setgid" => with(SYS_setgid, &[u32::MAX as u64]),
        "setresuid" => with(SYS_setresuid, &[bad, bad, bad]),
        "setresgid" => with(SYS_setresgid, &[bad, bad, bad]),
        "setgroups" => with(SYS_setgroups, &[1 << 20]),
        "socket" => with(SYS_socket, &[9999]),
        "epoll_create1" => with(SYS_epoll_create1, &[bad]),
        "eventfd2" => with(SYS_eventfd2, &[0, bad]),
        "timerfd_create" => with(SYS_timerfd_create, &[bad]),
        "signalfd4" => with(SYS_signalfd4, &[bad]),
        "setpgid" => with(SYS_setpgid, &[bad]),
        "seccomp" => with(SYS_seccomp, &[9999]),
        "membarrier" => with(SYS_membarrier, &[]),
        "sethostname" => with(SYS_sethostname, &[0, 4096]),
        "setdomainname" => with(SYS_setdomainname, &[0, 4096]),
        "unshare" => with(SYS_unshare, &[]),
        "sync" => with(SYS_sync, &[]),
        "restart_syscall" => with(SYS_restart_syscall, &[]),
        "clone" => with(SYS_clone, &[CLONE_SIGHAND as u64]),
        "clone3" => with(SYS_clone3, &[]),
        _ => None,
    }
}

const CANARIES: [&str; 4] = ["getpriority", "getpgid", "getsid", "sched_yield"];

pub fn check(cfg: &Value, env: &HashMap<String, String>) {
    let Some(sc) = cfg.pointer("/linux/seccomp") else {
        return;
    };
    let default_errno = sc
        .get("defaultErrnoRet")
        .and_then(Value::as_i64)
        .unwrap_or(libc::EPERM as i64);
    let rules: Vec<Value> = sc
        .get("syscalls")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut named: Vec<String> = vec![];
    for r in &rules {
        let action = r.get("action").and_then(Value::as_str).unwrap_or("");
        let errno_ret = r
            .get("errnoRet")
            .and_then(Value::as_i64)
            .unwrap_or(libc::EPERM as i64);
        let args: Vec<(usize, u64, String)> = r
            .get("args")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| {
                        (
                            x["index"].as_u64().unwrap_or(0) as usize,
                            x["value"].as_u64().unwrap_or(0),
                            x["op"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        for n in r
            .get("names")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let Some(n) = n.as_str() else { continue };
            named.push(n.to_string());
            let check = format!("linux.seccomp[{n}:{action}]");
            if args.iter().any(|(_, _, op)| op != "SCMP_CMP_EQ") {
                unverified(&check, "probe only exercises SCMP_CMP_EQ argument rules");
                continue;
            }
            let over: Vec<(usize, u64)> = args.iter().map(|(i, v, _)| (*i, *v)).collect();
            match action {
                "SCMP_ACT_ERRNO" => match invoke(n, &over) {
                    Some((r, e)) => verdict(
                        &check,
                        r == -1 && e as i64 == errno_ret,
                        format!("want -1/errno {errno_ret} got {r}/{e}"),
                    ),
                    None => unverified(&check, "probe cannot invoke this syscall"),
                },
                "SCMP_ACT_NOTIFY" => {
                    let want = env
                        .get("PROBE_SECCOMP_NOTIFY_ERRNO")
                        .and_then(|v| v.parse::<i32>().ok());
                    match (invoke(n, &over), want) {
                        (Some((r, e)), Some(w)) => verdict(
                            &check,
                            r == -1 && e == w,
                            format!("agent answers errno {w}; got {r}/{e}"),
                        ),
                        _ => unverified(&check, "no agent expectation"),
                    }
                }
                "SCMP_ACT_KILL"
                | "SCMP_ACT_KILL_PROCESS"
                | "SCMP_ACT_KILL_THREAD"
                | "SCMP_ACT_TRAP" => {
                    if invoke("getuid", &[]).is_none() {
                        continue;
                    }
                    let n2 = n.to_string();
                    // SAFETY: single-threaded process; the child only makes a syscall and exits.
                    let pid = unsafe { libc::fork() };
                    if pid == 0 {
                        let _ = invoke(&n2, &over);
                        // SAFETY: exit the child immediately.
                        unsafe { libc::_exit(0) };
                    }
                    let mut st = 0;
                    // SAFETY: wait for our own child.
                    unsafe { libc::waitpid(pid, &mut st, 0) };
                    let sig = if libc::WIFSIGNALED(st) {
                        libc::WTERMSIG(st)
                    } else {
                        0
                    };
                    verdict(
                        &check,
                        sig == libc::SIGSYS,
                        format!(
                            "child calling {n}: status {st:#x}, signal {sig} (want SIGSYS {})",
                            libc::SIGSYS
                        ),
                    );
                }
                "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG" => match invoke(n, &over) {
                    Some((r, e)) => verdict(
                        &check,
                        !(r == -1
                            && (e as i64 == default_errno)
                            && sc.get("defaultAction").and_then(Value::as_str)
                                == Some("SCMP_ACT_ERRNO")),
                        format!("got {r}/{e}"),
                    ),
                    // Calling exit, fork or pause would end or stall the probe. Allowing a
                    // syscall is the absence of an effect, so these are reported outside
                    // the case's checks rather than turning the whole case into a SKIP.
                    None => unverified(
                        &format!("unexercised.seccomp[{n}:{action}]"),
                        "calling it would end, fork or block the probe",
                    ),
                },
                _ => unverified(&check, "action not exercised by the probe"),
            }
            // For equality rules, a call with a different argument is not matched.
            if !args.is_empty()
                && ["getpriority", "getpgid", "getsid"].contains(&n)
                && action == "SCMP_ACT_ERRNO"
            {
                let over2: Vec<(usize, u64)> = args.iter().map(|(i, v, _)| (*i, *v ^ 1)).collect();
                if let Some((r, e)) = invoke(n, &over2) {
                    let hit = r == -1 && e as i64 == errno_ret;
                    verdict(
                        &format!("linux.seccomp[{n}:args-mismatch]"),
                        !hit,
                        format!("args not matching the rule must not be filtered: got {r}/{e}"),
                    );
                }
            }
        }
    }
    let da = sc
        .get("defaultAction")
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Some(c) = CANARIES.iter().find(|c| !named.iter().any(|n| n == *c)) {
        let check = format!("linux.seccomp.defaultAction[{c}]");
        match da {
            "SCMP_ACT_ERRNO" => {
                let (r, e) = invoke(c, &[]).unwrap();
                verdict(
                    &check,
                    r == -1 && e as i64 == default_errno,
                    format!("{c} not listed: want errno {default_errno} got {r}/{e}"),
                );
            }
            "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG" => {
                let (r, e) = invoke(c, &[]).unwrap();
                verdict(
                    &check,
                    r != -1,
                    format!("{c} not listed: want allowed, got {r}/{e}"),
                );
            }
            _ => {}
        }
    }
}
