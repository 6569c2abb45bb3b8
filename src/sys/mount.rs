//! The fd-based mount API (open_tree, move_mount, mount_setattr, fsopen/fsconfig/fsmount)
//! and pivot_root. Mounting onto an already-opened, verified fd leaves no window in which a
//! path component could be swapped for a symlink.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

pub const OPEN_TREE_CLONE: u32 = 1;
pub const AT_RECURSIVE: u32 = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;

pub const MOUNT_ATTR_RDONLY: u64 = 0x01;
pub const MOUNT_ATTR_NOSUID: u64 = 0x02;
pub const MOUNT_ATTR_NODEV: u64 = 0x04;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x08;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x00;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` from linux/mount.h.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

/// open_tree(2) of `path` relative to `dirfd` (or of `dirfd` itself when `path` is empty).
pub fn open_tree(dirfd: BorrowedFd<'_>, path: &Path, flags: u32) -> io::Result<OwnedFd> {
    let c = super::cstr(path)?;
    let mut flags = flags | libc::O_CLOEXEC as u32;
    if path.as_os_str().is_empty() {
        flags |= libc::AT_EMPTY_PATH as u32;
    }
    // SAFETY: valid dirfd and NUL-terminated path; returns a new fd.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, dirfd.as_raw_fd(), c.as_ptr(), flags) };
    super::cvt(ret).map(super::owned_fd)
}

/// move_mount(2) of the detached or existing mount `from` onto the file or directory `to`.
pub fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let empty = c"";
    // SAFETY: two valid fds with empty paths and the matching *_EMPTY_PATH flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            empty.as_ptr(),
            to.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    super::cvt(ret).map(drop)
}

/// mount_setattr(2) on the mount `fd` refers to (and, with `recursive`, every mount below).
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, attr: &MountAttr) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: valid fd, empty path with AT_EMPTY_PATH, and a mount_attr of the size we pass.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    super::cvt(ret).map(drop)
}

/// fsopen(2): a new, unconfigured filesystem context of type `fstype`.
pub fn fsopen(fstype: &str) -> io::Result<OwnedFd> {
    let c = std::ffi::CString::new(fstype)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in fs type"))?;
    // SAFETY: NUL-terminated string and FSOPEN_CLOEXEC (1).
    let ret = unsafe { libc::syscall(libc::SYS_fsopen, c.as_ptr(), 1u32) };
    super::cvt(ret).map(super::owned_fd)
}

const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_SET_FD: u32 = 5;
const FSCONFIG_CMD_CREATE: u32 = 6;

/// fsconfig(FSCONFIG_SET_FD): sets `key` to an open file (e.g. an overlay layer, Linux 6.8+).
pub fn fsconfig_set_fd(fs: BorrowedFd<'_>, key: &str, fd: BorrowedFd<'_>) -> io::Result<()> {
    let k = std::ffi::CString::new(key)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in mount option"))?;
    // SAFETY: valid fs context fd, NUL-terminated key, NULL value and the fd as `aux`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FD,
            k.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            fd.as_raw_fd(),
        )
    };
    super::cvt(ret).map(drop)
}

/// fsconfig(2): sets `key` (to `value`, or as a flag when `None`) on a filesystem context.
pub fn fsconfig_set(fs: BorrowedFd<'_>, key: &str, value: Option<&str>) -> io::Result<()> {
    let bad = |_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in mount option");
    let k = std::ffi::CString::new(key).map_err(bad)?;
    let v = value.map(std::ffi::CString::new).transpose().map_err(bad)?;
    let (cmd, vptr) = match &v {
        Some(v) => (FSCONFIG_SET_STRING, v.as_ptr()),
        None => (FSCONFIG_SET_FLAG, std::ptr::null()),
    };
    // SAFETY: valid fs context fd, NUL-terminated key and value (or NULL for a flag).
    let ret =
        unsafe { libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), cmd, k.as_ptr(), vptr, 0) };
    super::cvt(ret).map(drop)
}

/// fsconfig(FSCONFIG_CMD_CREATE) then fsmount(2): the configured filesystem as a detached mount.
pub fn fsmount(fs: BorrowedFd<'_>, attrs: u64) -> io::Result<OwnedFd> {
    // SAFETY: valid fs context fd; NULL key/value as FSCONFIG_CMD_CREATE requires.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    super::cvt(ret)?;
    // SAFETY: valid fs context fd, FSMOUNT_CLOEXEC (1) and MOUNT_ATTR_* bits.
    let ret = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), 1u32, attrs) };
    super::cvt(ret).map(super::owned_fd)
}

/// pivot_root(2) with both arguments ".": the old root ends up stacked under the new one at
/// "/", where a lazy umount of "." removes it, so no old-root directory is needed in the image.
pub fn pivot_root_dot() -> io::Result<()> {
    let dot = c".";
    // SAFETY: two NUL-terminated paths.
    let ret = unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) };
    super::cvt(ret).map(drop)
}
