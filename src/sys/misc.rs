//! Small process-attribute syscalls without a safe wrapper in nix.

use std::io;

/// close_range(first, ~0, CLOSE_RANGE_CLOEXEC): marks every fd >= `first` close-on-exec so no
/// runtime fd reaches the container process (CVE-2024-21626 class), while fds the process
/// must keep (stdio, --preserve-fds) stay below `first`.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: integer arguments only; marking fds close-on-exec invalidates no Rust-owned fd.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    super::cvt(ret).map(drop)
}

/// Clears close-on-exec on fds `first..first + count` (the ones passed to the container:
/// socket activation and --preserve-fds), ignoring numbers that are not open.
pub fn keep_across_exec(first: u32, count: u32) {
    for fd in first..first.saturating_add(count) {
        // SAFETY: F_SETFD on an integer fd changes only its close-on-exec flag; an fd that is
        // not open fails with EBADF, which is ignored.
        unsafe { libc::fcntl(fd as libc::c_int, libc::F_SETFD, 0) };
    }
}

/// Whether `fd` is an open file descriptor of this process (fcntl F_GETFD).
pub fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD on an integer only reads the fd's flags; EBADF when it is not open.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): a fresh session keyring, so containers do not
/// share the runtime's (and each other's) keys.
pub fn join_session_keyring(name: &str) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    let c = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in keyring name"))?;
    // SAFETY: NUL-terminated name; returns a key serial, no memory is written.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, c.as_ptr()) };
    super::cvt(ret).map(drop)
}

/// setdomainname(2).
pub fn setdomainname(name: &str) -> io::Result<()> {
    // SAFETY: pointer and length of a live byte slice.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    super::cvt(ret as libc::c_long).map(drop)
}

/// setrlimit(2) with a raw resource number (the OCI names map 1:1 onto RLIMIT_*).
pub fn setrlimit(resource: u32, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: valid rlimit pointer; the resource number is checked by the kernel.
    let ret = unsafe { libc::setrlimit(resource as _, &lim) };
    super::cvt(ret as libc::c_long).map(drop)
}

/// getrlimit(2): (soft, hard).
pub fn getrlimit(resource: u32) -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out pointer.
    let ret = unsafe { libc::getrlimit(resource as _, &mut lim) };
    super::cvt(ret as libc::c_long)?;
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// umask(2); returns the previous mask.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// setgroups(2) with the given supplementary groups (may be empty).
pub fn setgroups(gids: &[u32]) -> io::Result<()> {
    // SAFETY: pointer and length of a live slice of gid_t.
    let ret = unsafe { libc::setgroups(gids.len(), gids.as_ptr()) };
    super::cvt(ret as libc::c_long).map(drop)
}

/// getcwd(2) as a raw syscall: unlike libc's wrapper it reports ENOENT-style
/// "(unreachable)" cwds as an error we can check for (CVE-2024-21626).
pub fn getcwd() -> io::Result<std::path::PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: buf is writable for its full length.
    let ret = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    let n = super::cvt(ret)? as usize;
    buf.truncate(n.saturating_sub(1));
    if !buf.starts_with(b"/") {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    Ok(std::ffi::OsString::from_vec(buf).into())
}

/// poll(2), retrying on EINTR; returns how many fds have events.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    let n = super::cvt_retry(|| {
        // SAFETY: `fds` is a live, writable slice of pollfd of the length we pass.
        unsafe {
            libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) as libc::c_long
        }
    })?;
    Ok(n as usize)
}

/// Gives the process `cmd` spawns the parent-death signal SIGKILL: it dies with the process
/// that spawned it (a hook with the runtime killed while it runs). A parent already gone by
/// the time the child sets it up fails the spawn instead.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // syscalls (prctl, getppid) on plain integers; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// _exit(2): ends the process at once, without running atexit handlers or flushing stdio
/// buffers that belong to the parent's copy of the address space (we are a clone of it).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust-owned state.
    unsafe { libc::_exit(code) }
}

/// capset(2) of the calling thread's effective, permitted and inheritable sets in one call
/// (bit N = capability N). One syscall rather than a capget/capset per set: it is what runs
/// after a seccomp filter the container's profile may have narrowed to the bare minimum.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let half = |v: u64, hi: bool| if hi { (v >> 32) as u32 } else { v as u32 };
    let data = [false, true].map(|hi| Data {
        effective: half(effective, hi),
        permitted: half(permitted, hi),
        inheritable: half(inheritable, hi),
    });
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: a version-3 header and the two data structs version 3 reads, both live for the
    // call; pid 0 is the calling thread.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capset,
            std::ptr::addr_of_mut!(header),
            data.as_ptr(),
        )
    };
    super::cvt(ret).map(drop)
}

/// The argv and envp of an execve(2) built in the parent, so the child of a fork need not
/// allocate: the strings and the NULL-terminated pointer arrays into them.
struct ExecImage {
    _strings: Vec<std::ffi::CString>,
    path: *const libc::c_char,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into `_strings`, which the struct owns and never changes; the
// image is only read (by the forked child, which has its own copy of the memory).
unsafe impl Send for ExecImage {}
// SAFETY: as above: nothing mutates the image after it is built.
unsafe impl Sync for ExecImage {}

/// Makes `cmd` execve `path` with exactly `argv` and `envp`, in their order, once std has set
/// up its stdio, directory and process group (and after the earlier `pre_exec` closures).
/// std's own exec would sort the environment by name; a hook gets it in the order its
/// config lists it, as Go's exec (runc) passes it. Fails the spawn with execve's errno.
pub fn exec_exactly(
    cmd: &mut std::process::Command,
    path: std::ffi::CString,
    argv: Vec<std::ffi::CString>,
    envp: Vec<std::ffi::CString>,
) {
    use std::os::unix::process::CommandExt;
    let ptrs = |v: &[std::ffi::CString]| {
        let mut p: Vec<*const libc::c_char> = v.iter().map(|s| s.as_ptr()).collect();
        p.push(std::ptr::null());
        p
    };
    let (argv_p, envp_p) = (ptrs(&argv), ptrs(&envp));
    let path_p = path.as_ptr();
    let mut strings = argv;
    strings.extend(envp);
    strings.push(path);
    let image = ExecImage {
        _strings: strings,
        path: path_p,
        argv: argv_p,
        envp: envp_p,
    };
    // SAFETY: the closure runs between fork and exec; it only calls execve(2) (async-signal-
    // safe) on NUL-terminated strings and NULL-terminated arrays built before the fork, and
    // allocates nothing. On success it does not return.
    unsafe {
        cmd.pre_exec(move || Err(image.exec()));
    }
}

impl ExecImage {
    /// execve(2); returns only its error.
    ///
    /// # Safety
    /// Only in the child of a fork (it replaces the process image).
    unsafe fn exec(&self) -> io::Error {
        // SAFETY: `path` and both arrays point into `_strings`, owned by `self`; the arrays
        // are NULL-terminated.
        unsafe { libc::execve(self.path, self.argv.as_ptr(), self.envp.as_ptr()) };
        io::Error::last_os_error()
    }
}

/// Makes `fds` the fds 3, 4, ... (in this order) of the process `cmd` spawns, inherited
/// across its exec; every other fd stays as it is (skiff's own are close-on-exec). The
/// sources are first duplicated above the targets, so none is overwritten before it is
/// moved; the duplicates live in `cmd` until it is dropped.
pub fn pass_fds(
    cmd: &mut std::process::Command,
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> io::Result<()> {
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let base = 3 + fds.len() as libc::c_int;
    let high = fds
        .iter()
        .map(|fd| {
            // SAFETY: F_DUPFD_CLOEXEC on a borrowed, open fd; it returns a new fd or -1.
            let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, base) };
            super::cvt(r.into()).map(super::owned_fd)
        })
        .collect::<io::Result<Vec<OwnedFd>>>()?;
    // SAFETY: the closure runs between fork and exec and only calls dup2(2), which is
    // async-signal-safe, on fds the closure itself keeps open; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            for (i, fd) in high.iter().enumerate() {
                if libc::dup2(fd.as_raw_fd(), 3 + i as libc::c_int) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(())
}

/// The file status flags of `fd` (F_GETFL): whether it is open, and for what.
pub fn fd_flags(fd: i32) -> io::Result<i32> {
    // SAFETY: F_GETFL only reads the flags of whatever `fd` is; an fd that is not open
    // fails with EBADF.
    let r = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    super::cvt(r.into()).map(|r| r as i32)
}

/// Writes `data` to the caller-given fd `fd` and closes it, ignoring failures: a reader that
/// went away does not fail the operation it waits on.
pub fn write_and_close(fd: i32, data: &[u8]) {
    // SAFETY: `fd` was given to us by our caller for this one write (e.g. `--status-fd`);
    // nothing else in skiff owns or uses it, so it is closed exactly once, here.
    unsafe {
        libc::write(fd, data.as_ptr().cast(), data.len());
        libc::close(fd);
    }
}
