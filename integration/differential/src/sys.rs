//! The only `unsafe` of the harness: thin wrappers over the system calls the observer, the
//! hook recorder and the driver need that std does not offer. Each returns an errno as `Err`.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

fn check(rc: libc::c_long) -> Result<libc::c_long, i32> {
    if rc < 0 {
        Err(errno())
    } else {
        Ok(rc)
    }
}

pub fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap_or_else(|_| CString::new("/nonexistent-nul").expect("static"))
}

/// (effective, permitted, inheritable) capability masks of the calling thread.
pub fn capget() -> Result<(u64, u64, u64), i32> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget reads the header and writes two Data structs (version 3 layout).
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut Header, data.as_mut_ptr()) };
    check(rc)?;
    let join = |lo: u32, hi: u32| (hi as u64) << 32 | lo as u64;
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

pub fn prctl(option: libc::c_int, arg2: libc::c_ulong, arg3: libc::c_ulong) -> Result<i32, i32> {
    // SAFETY: the prctl options used here (CAPBSET_READ, CAP_AMBIENT IS_SET, GET_NO_NEW_PRIVS,
    // GET_SECCOMP, SET_CHILD_SUBREAPER) take integers only and write no memory.
    let rc = unsafe { libc::prctl(option, arg2, arg3, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    check(rc as libc::c_long).map(|v| v as i32)
}

pub fn getresuid() -> (u32, u32, u32) {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: writes three uid_t through valid pointers.
    unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    (r, e, s)
}

pub fn getresgid() -> (u32, u32, u32) {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: writes three gid_t through valid pointers.
    unsafe { libc::getresgid(&mut r, &mut e, &mut s) };
    (r, e, s)
}

pub fn getgroups() -> Vec<u32> {
    let mut buf = vec![0 as libc::gid_t; 1024];
    // SAFETY: the buffer holds 1024 gid_t.
    let n = unsafe { libc::getgroups(buf.len() as libc::c_int, buf.as_mut_ptr()) };
    buf.truncate(n.max(0) as usize);
    buf
}

/// The umask, read by setting one and putting it back.
pub fn umask() -> u32 {
    // SAFETY: umask cannot fail; the old value is restored at once.
    unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old
    }
}

pub fn getrlimit(resource: u32) -> Result<(u64, u64), i32> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: writes one rlimit struct.
    let rc = unsafe { libc::getrlimit(resource as _, &mut rl) };
    check(rc as libc::c_long)?;
    Ok((rl.rlim_cur, rl.rlim_max))
}

/// (nodename, domainname) from uname(2).
pub fn uname() -> (String, String) {
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a utsname.
    unsafe { libc::uname(&mut u) };
    let s = |f: &[libc::c_char]| {
        // SAFETY: the kernel NUL-terminates every utsname field.
        unsafe { CStr::from_ptr(f.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    (s(&u.nodename), s(&u.domainname))
}

/// Interface flags of `name` (SIOCGIFFLAGS on a datagram socket).
pub fn if_flags(name: &str) -> Result<u32, i32> {
    // SAFETY: socket takes integers only.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(fd as libc::c_long)?;
    // SAFETY: the fd was just opened and is owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *d = s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes ifru_flags inside the ifreq.
    let rc = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::SIOCGIFFLAGS,
            &mut req,
        )
    };
    check(rc as libc::c_long)?;
    // SAFETY: the kernel filled the flags member of the union.
    Ok(unsafe { req.ifr_ifru.ifru_flags } as u16 as u32)
}

/// Names of the network interfaces (if_nameindex, netlink based: works without /sys).
pub fn interfaces() -> Vec<String> {
    let mut out = vec![];
    // SAFETY: if_nameindex returns an array terminated by a zero entry, freed below.
    unsafe {
        let list = libc::if_nameindex();
        if list.is_null() {
            return out;
        }
        let mut p = list;
        while (*p).if_index != 0 && !(*p).if_name.is_null() {
            out.push(CStr::from_ptr((*p).if_name).to_string_lossy().into_owned());
            p = p.add(1);
        }
        libc::if_freenameindex(list);
    }
    out.sort();
    out
}

/// statvfs(path).f_flag.
pub fn statvfs_flags(path: &str) -> Result<u64, i32> {
    let c = cstr(path);
    // SAFETY: statvfs is plain data.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid out pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    check(rc as libc::c_long)?;
    Ok(st.f_flag)
}

pub fn mknod_char(path: &str, major: u32, minor: u32) -> Result<(), i32> {
    let c = cstr(path);
    // SAFETY: a NUL-terminated path; integers otherwise.
    let rc = unsafe {
        libc::mknod(
            c.as_ptr(),
            libc::S_IFCHR | 0o600,
            libc::makedev(major, minor),
        )
    };
    check(rc as libc::c_long).map(drop)
}

pub fn mount(source: &str, target: &str, fstype: &str, flags: u64, data: &str) -> Result<(), i32> {
    let (s, t, f, d) = (cstr(source), cstr(target), cstr(fstype), cstr(data));
    let fptr = if fstype.is_empty() {
        std::ptr::null()
    } else {
        f.as_ptr()
    };
    let dptr = if data.is_empty() {
        std::ptr::null()
    } else {
        d.as_ptr() as *const libc::c_void
    };
    // SAFETY: NUL-terminated strings (or null where the kernel allows it).
    let rc = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), fptr, flags as libc::c_ulong, dptr) };
    check(rc as libc::c_long).map(drop)
}

pub fn umount_detach(target: &str) -> Result<(), i32> {
    let t = cstr(target);
    // SAFETY: a NUL-terminated path.
    let rc = unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
    check(rc as libc::c_long).map(drop)
}

/// Session, process group and controlling-terminal facts of the caller:
/// (session leader, group leader, foreground group of fd 0's terminal is ours).
pub fn session() -> (bool, bool, bool) {
    // SAFETY: getpid/getsid/getpgrp/tcgetpgrp take integers only.
    unsafe {
        let pid = libc::getpid();
        let pgrp = libc::getpgrp();
        (
            libc::getsid(0) == pid,
            pgrp == pid,
            libc::tcgetpgrp(0) == pgrp,
        )
    }
}

pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: isatty takes an integer.
    unsafe { libc::isatty(fd) == 1 }
}

pub fn getpid() -> i32 {
    // SAFETY: no arguments.
    unsafe { libc::getpid() }
}

pub fn getppid() -> i32 {
    // SAFETY: no arguments.
    unsafe { libc::getppid() }
}

/// Whether fd is open (F_GETFD), and its close-on-exec flag.
pub fn fd_flags(fd: RawFd) -> Option<bool> {
    // SAFETY: F_GETFD on any integer is harmless.
    let rc = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    (rc >= 0).then_some(rc & libc::FD_CLOEXEC != 0)
}

/// getpriority(PRIO_PROCESS, 0): the syscall a generated seccomp profile may deny.
pub fn getpriority_errno() -> i32 {
    // SAFETY: integers only; errno is reset first so a legitimate -1 is told apart.
    unsafe {
        *libc::__errno_location() = 0;
        let rc = libc::getpriority(libc::PRIO_PROCESS, 0);
        if rc == -1 {
            errno()
        } else {
            0
        }
    }
}

pub fn raise(sig: i32) {
    // SAFETY: sends a signal to the caller.
    unsafe { libc::kill(libc::getpid(), sig) };
}

pub fn kill(pid: i32, sig: i32) {
    // SAFETY: signals a process this harness created.
    unsafe { libc::kill(pid, sig) };
}

pub fn set_child_subreaper() -> Result<(), i32> {
    prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0).map(drop)
}

/// Blocking waitpid for one pid: its exit status as a shell would print it (128+signal).
pub fn waitpid(pid: i32, nohang: bool) -> Result<Option<i32>, i32> {
    let mut status = 0;
    // SAFETY: waits for a specific pid and writes its status.
    let rc = unsafe { libc::waitpid(pid, &mut status, if nohang { libc::WNOHANG } else { 0 }) };
    check(rc as libc::c_long)?;
    if rc == 0 {
        return Ok(None);
    }
    Ok(Some(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }))
}

/// In a child forked without exec: close every fd but `keep` (and stdio). The driver's
/// other threads have pipes open (to runtimes, to other helpers); a helper that kept copies
/// would hold them open: two helpers forked at once each held the other's pipe and waited
/// for an EOF that never came.
fn keep_only_fd(keep: libc::c_int) {
    // SAFETY: close_range takes integers; it is async-signal-safe.
    unsafe {
        if keep > 3 {
            libc::syscall(libc::SYS_close_range, 3u32, (keep - 1) as u32, 0u32);
        }
        libc::syscall(
            libc::SYS_close_range,
            (keep.max(2) + 1) as u32,
            u32::MAX,
            0u32,
        );
    }
}

/// A close-on-exec pipe as raw fds (read, write), for the forked helpers below.
fn pipe() -> Result<[libc::c_int; 2], String> {
    let mut p = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe2: errno {}", errno()));
    }
    Ok(p)
}

/// Namespace files that outlive their creator: a forked child unshares `flags` and waits;
/// we write its id maps (`maps`: uid_map, gid_map) for a user namespace, bind-mount each
/// `/proc/<child>/ns/<name>` onto the matching (existing, empty) file, and let it exit.
/// The mounts are ours to make: a child in a new user namespace could not.
pub fn persistent_namespaces(
    flags: i32,
    binds: &[(&str, &str)],
    maps: Option<(&str, &str)>,
) -> Result<(), String> {
    let first = binds
        .first()
        .map(|(n, _)| n.to_string())
        .ok_or("no namespace to hold")?;
    let sync = pipe()?;
    // SAFETY: the child only calls async-signal-safe functions (close, unshare, read, _exit).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            keep_only_fd(sync[0]);
            if libc::unshare(flags) != 0 {
                libc::_exit(10);
            }
            let mut b = 0u8;
            // Until the parent is done with our namespaces (it closes the pipe).
            libc::read(sync[0], &mut b as *mut u8 as *mut libc::c_void, 1);
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the read end.
    unsafe { libc::close(sync[0]) };
    if pid < 0 {
        // SAFETY: closing the write end we own.
        unsafe { libc::close(sync[1]) };
        return Err(format!("fork: errno {}", errno()));
    }
    let result = hold(pid, &first, binds, maps);
    // SAFETY: closing the write end lets the child exit.
    unsafe { libc::close(sync[1]) };
    let status = waitpid(pid, false);
    result?;
    match status {
        Ok(Some(0)) => Ok(()),
        other => Err(format!(
            "namespace holder ended with {other:?} (10: unshare failed)"
        )),
    }
}

fn hold(
    pid: i32,
    first: &str,
    binds: &[(&str, &str)],
    maps: Option<(&str, &str)>,
) -> Result<(), String> {
    // The child has unshared once its namespace differs from ours.
    let own = std::fs::read_link(format!("/proc/self/ns/{first}")).ok();
    let mut changed = false;
    for _ in 0..5000 {
        match std::fs::read_link(format!("/proc/{pid}/ns/{first}")) {
            Ok(l) if Some(&l) != own.as_ref() => {
                changed = true;
                break;
            }
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
            Err(_) => break,
        }
    }
    if !changed {
        return Err(format!(
            "the namespace holder never left our {first} namespace"
        ));
    }
    if let Some((uid_map, gid_map)) = maps {
        for (file, map) in [("uid_map", uid_map), ("gid_map", gid_map)] {
            std::fs::write(format!("/proc/{pid}/{file}"), map)
                .map_err(|e| format!("writing /proc/{pid}/{file}: {e}"))?;
        }
    }
    for (name, target) in binds {
        mount(
            &format!("/proc/{pid}/ns/{name}"),
            target,
            "",
            libc::MS_BIND,
            "",
        )
        .map_err(|e| format!("bind-mounting /proc/{pid}/ns/{name} on {target}: errno {e}"))?;
    }
    Ok(())
}

/// A process in a new pid namespace (as its pid 1, via an extra fork) that sleeps until
/// killed; returns (the outer child's pid, the sleeper's pid). Kill the sleeper, then reap
/// the outer child.
pub fn pid_namespace_holder() -> Result<(i32, i32), String> {
    let p = pipe()?;
    // SAFETY: the children call only async-signal-safe functions.
    let outer = unsafe { libc::fork() };
    if outer == 0 {
        // SAFETY: see above.
        unsafe {
            keep_only_fd(p[1]);
            if libc::unshare(libc::CLONE_NEWPID) != 0 {
                libc::_exit(10);
            }
            let inner = libc::fork();
            if inner == 0 {
                keep_only_fd(-1);
                loop {
                    libc::pause();
                }
            }
            let v = inner as i32;
            libc::write(p[1], &v as *const i32 as *const libc::c_void, 4);
            let mut st = 0;
            libc::waitpid(inner, &mut st, 0);
            libc::_exit(0);
        }
    }
    // SAFETY: we own both ends; read the inner pid the child reports.
    unsafe { libc::close(p[1]) };
    let mut v: i32 = 0;
    // SAFETY: reads four bytes into v.
    let n = unsafe { libc::read(p[0], &mut v as *mut i32 as *mut libc::c_void, 4) };
    // SAFETY: closing the read end we own.
    unsafe { libc::close(p[0]) };
    if outer < 0 || n != 4 || v <= 0 {
        return Err(format!(
            "pid namespace holder did not start (fork {outer}, read {n})"
        ));
    }
    Ok((outer, v))
}

/// A pidfd for `pid`, and a poll until it is readable (the process exited) or `ms` passed.
pub fn wait_exit_pidfd(pid: i32, ms: i32) -> Result<bool, i32> {
    // SAFETY: pidfd_open takes integers and returns a new fd, owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = check(fd)? as RawFd;
    // SAFETY: we own the new fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut pfd = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    check(rc as libc::c_long)?;
    Ok(rc > 0)
}

/// Receive one fd passed with SCM_RIGHTS on a connected unix socket.
pub fn recv_fd(sock: RawFd) -> Result<OwnedFd, i32> {
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cbuf = [0u64; 64];
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: a valid msghdr; the kernel writes into the buffers it points to.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    check(n as libc::c_long)?;
    // SAFETY: walking the control messages the kernel wrote, with the libc macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const RawFd);
                return Ok(OwnedFd::from_raw_fd(fd));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Err(libc::EBADMSG)
}

/// Have `cmd` find `fds[i]` at fd 3+i when it starts (for `--preserve-fds`).
pub fn preserve_fds_at_exec(cmd: &mut std::process::Command, fds: Vec<RawFd>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and calls only fcntl and dup2, which
    // are async-signal-safe, on fds the parent keeps open until the spawn returned.
    unsafe {
        cmd.pre_exec(move || place_fds(&fds));
    }
}

/// Have `cmd` start in a copy of our mount namespace, so that what it does to its own
/// mount namespace (runc, given a config without one, sets up the rootfs and the mount
/// propagation of "/" in the caller's) cannot reach the harness and the runs after it.
pub fn own_mount_namespace_at_exec(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: unshare is async-signal-safe and the child is single-threaded after fork.
    unsafe {
        cmd.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNS) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
}

/// In a forked child before exec: put `fds[i]` at fd 3+i.
fn place_fds(fds: &[RawFd]) -> io::Result<()> {
    // First out of the way (above every target), so that no dup2 clobbers a later source.
    let mut high = Vec::with_capacity(fds.len());
    for &fd in fds {
        // SAFETY: F_DUPFD on an fd the caller owns; async-signal-safe.
        let h = unsafe { libc::fcntl(fd, libc::F_DUPFD, 64) };
        if h < 0 {
            return Err(io::Error::last_os_error());
        }
        high.push(h);
    }
    for (i, &fd) in high.iter().enumerate() {
        // SAFETY: dup2 onto the target; the new fd has no close-on-exec flag.
        if unsafe { libc::dup2(fd, 3 + i as RawFd) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether this process is chrooted relative to PID 1 (the guest of scripts/vm runs its
/// command with chroot, and the kernel refuses user namespaces to chrooted processes).
pub fn chrooted() -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata("/"), std::fs::metadata("/proc/1/root/")) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) != (b.dev(), b.ino()),
        _ => false,
    }
}

/// Make this process's root the real root of a mount namespace of its own: unshare the
/// mount namespace, climb out of the chroot, move our root mount onto the namespace's
/// root (what switch_root does) and enter it. The harness and the runtimes then live in
/// that namespace; the guest's own namespace is untouched. Must run before any thread.
pub fn leave_chroot() -> Result<(), String> {
    let cwd = std::env::current_dir().map_err(|e| format!("getcwd: {e}"))?;
    let root = cstr("/");
    let dotdot = cstr("..");
    let dot = cstr(".");
    let step = cstr("/run/.dfh-escape");
    // SAFETY: plain syscalls on NUL-terminated paths; the fd is owned and closed below.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(format!("unshare(CLONE_NEWNS): errno {}", errno()));
        }
        let fd = libc::open(
            root.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return Err(format!("open /: errno {}", errno()));
        }
        let fail = |what: &str| {
            let e = errno();
            libc::close(fd);
            Err(format!("{what}: errno {e}"))
        };
        libc::mkdir(step.as_ptr(), 0o700);
        if libc::chdir(root.as_ptr()) != 0 || libc::chroot(step.as_ptr()) != 0 {
            return fail("chroot into a subdirectory");
        }
        for _ in 0..64 {
            libc::chdir(dotdot.as_ptr());
        }
        if libc::chroot(dot.as_ptr()) != 0 {
            return fail("chroot to the real root");
        }
        let empty = cstr("");
        let rc = libc::syscall(
            libc::SYS_move_mount,
            fd,
            empty.as_ptr(),
            libc::AT_FDCWD,
            root.as_ptr(),
            0x4, /* MOVE_MOUNT_F_EMPTY_PATH */
        );
        if rc != 0 {
            return fail("move_mount of our root onto /");
        }
        if libc::fchdir(fd) != 0 || libc::chroot(dot.as_ptr()) != 0 {
            return fail("entering the moved root");
        }
        libc::close(fd);
    }
    std::env::set_current_dir(&cwd).map_err(|e| format!("chdir {}: {e}", cwd.display()))?;
    let _ = std::fs::remove_dir("/run/.dfh-escape");
    Ok(())
}
