//! Thin, safe wrappers over the raw syscalls skiff needs and that `nix` does not cover
//! (clone3, pidfds, openat2, the new mount API, close_range, keyctl, bpf, ...).
//!
//! This is the only module with `unsafe`. Every wrapper takes owned or borrowed fds and plain
//! Rust values, checks the return value, and turns failures into `io::Error`s. Callers add the
//! context (which path, which spec field).

pub mod bpf;
pub mod clone;
pub mod exe;
pub mod fdpass;
pub mod fs;
pub mod misc;
pub mod mount;
pub mod netlink;
pub mod pidfd;
pub mod sched;
pub mod seccomp;
pub mod tty;
pub mod userns;

use std::io;

/// Converts a raw syscall return value (`-1` + errno on failure) into a `Result`.
fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like [`cvt`] but retries on EINTR, for calls that may block.
fn cvt_retry(mut f: impl FnMut() -> libc::c_long) -> io::Result<libc::c_long> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Converts a path to a C string, rejecting interior NULs with a clear error.
fn cstr(path: &std::path::Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path contains a NUL byte: {}", path.display()),
        )
    })
}

/// Takes ownership of a freshly returned fd.
fn owned_fd(ret: libc::c_long) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: callers only pass the non-negative return value of a syscall that returns a new
    // file descriptor, which nothing else owns yet.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(ret as libc::c_int) }
}
