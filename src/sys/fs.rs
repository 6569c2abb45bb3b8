//! openat2(2): path resolution that the kernel confines to a directory tree.
//!
//! Every path that comes from config.json and points into the container's rootfs is resolved
//! with RESOLVE_IN_ROOT, so a symlink inside the rootfs (even one swapped in during setup by a
//! hostile image or a shared volume) can never lead outside it (CVE-2021-30465, CVE-2024-45310
//! classes), and with RESOLVE_NO_MAGICLINKS so /proc/self/fd/N tricks are refused.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// openat2(dirfd, path, {flags, mode, resolve}). O_CLOEXEC is always added.
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let c = super::cstr(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    let ret = super::cvt_retry(|| {
        // SAFETY: valid dirfd, NUL-terminated path and an open_how of the size we pass.
        unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        }
    })?;
    Ok(super::owned_fd(ret))
}

/// Opens `path` inside the tree rooted at `root` (symlinks resolved as if `root` were `/`).
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    openat2(root, rel, flags, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
}
