//! seccomp(2) SECCOMP_SET_MODE_FILTER: installs a classic-BPF program built by
//! [`crate::seccomp`]; the user-notification ioctls a seccomp agent makes on the listener fd
//! (skiff's tests play the agent). Plus, for the tests only, the few raw calls they make in a
//! forked child.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// `struct sock_filter` from linux/filter.h: one classic-BPF instruction.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `struct sock_fprog` from linux/filter.h.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const SockFilter,
}

/// SECCOMP_FILTER_FLAG_NEW_LISTENER: the call returns a user-notification fd.
pub const FLAG_NEW_LISTENER: u32 = 1 << 3;

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog). With [`FLAG_NEW_LISTENER`] in `flags` the
/// kernel hands back the notification fd, returned as `Some`. The caller must have set
/// no_new_privs or hold CAP_SYS_ADMIN. Allocates nothing on success, so it is fine in a child
/// of fork().
pub fn set_mode_filter(prog: &[SockFilter], flags: u32) -> io::Result<Option<OwnedFd>> {
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    let len = libc::c_ushort::try_from(prog.len())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let fprog = SockFprog {
        len,
        filter: prog.as_ptr(),
    };
    // SAFETY: `fprog` points at `len` live, properly laid out sock_filter instructions that
    // outlive the call; the kernel copies the program and does not keep the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &fprog as *const SockFprog,
        )
    };
    let ret = super::cvt(ret)?;
    Ok((flags & FLAG_NEW_LISTENER != 0).then(|| super::owned_fd(ret)))
}

/// One user notification (`struct seccomp_notif`): a syscall of `pid` waiting for an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notif {
    /// The cookie to answer with.
    pub id: u64,
    /// The caller, as the listener's pid namespace sees it.
    pub pid: u32,
    /// Syscall number, for `arch`.
    pub nr: i32,
    /// AUDIT_ARCH_* of the call.
    pub arch: u32,
    pub args: [u64; 6],
}

/// SECCOMP_IOCTL_NOTIF_RECV: waits for the next notification on a listener fd (what a
/// seccomp agent does; skiff itself only hands the fd over).
pub fn notif_recv(listener: BorrowedFd<'_>) -> io::Result<Notif> {
    // SAFETY: seccomp_notif is plain data; all-zero is the input the kernel requires.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: `req` is a writable seccomp_notif, the size this ioctl is defined with.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV as _,
            &mut req as *mut libc::seccomp_notif,
        )
    };
    super::cvt(ret as libc::c_long)?;
    Ok(Notif {
        id: req.id,
        pid: req.pid,
        nr: req.data.nr,
        arch: req.data.arch,
        args: req.data.args,
    })
}

/// SECCOMP_IOCTL_NOTIF_SEND: answers notification `id`. With `errno` 0 the syscall returns
/// `val` in the target; otherwise it fails with `errno` (a positive errno number).
pub fn notif_send(listener: BorrowedFd<'_>, id: u64, val: i64, errno: i32) -> io::Result<()> {
    let mut resp = libc::seccomp_notif_resp {
        id,
        val,
        error: -errno,
        flags: 0,
    };
    // SAFETY: `resp` is a valid seccomp_notif_resp, the size this ioctl is defined with.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND as _,
            &mut resp as *mut libc::seccomp_notif_resp,
        )
    };
    super::cvt(ret as libc::c_long).map(drop)
}

/// Raw calls for the seccomp tests, which run them in a forked child after loading a filter.
/// None of them allocates.
#[cfg(test)]
pub mod test_support {
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd};

    /// fork(2) through libc, whose atfork handlers keep malloc usable in the child even though
    /// the test binary is multi-threaded. `None` in the child.
    pub fn fork() -> io::Result<Option<libc::pid_t>> {
        // SAFETY: the children of the seccomp tests only make raw syscalls and then _exit.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => Err(io::Error::last_os_error()),
            0 => Ok(None),
            pid => Ok(Some(pid)),
        }
    }

    /// Makes syscall `nr` with plain integer arguments and returns the raw result or errno.
    fn int_syscall(nr: libc::c_long, a: [u64; 3]) -> Result<i64, i32> {
        // SAFETY: only reached from the wrappers below, whose syscalls take integers (or NULL
        // pointers) and cannot touch memory Rust owns.
        let ret = unsafe { libc::syscall(nr, a[0], a[1], a[2]) };
        if ret < 0 {
            Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(ret)
        }
    }

    pub fn personality(persona: u64) -> Result<i64, i32> {
        int_syscall(libc::SYS_personality, [persona, 0, 0])
    }

    pub fn getpid() -> Result<i64, i32> {
        int_syscall(libc::SYS_getpid, [0; 3])
    }

    pub fn socket(domain: i32, ty: i32) -> Result<i64, i32> {
        int_syscall(libc::SYS_socket, [domain as u64, ty as u64, 0])
    }

    /// kexec_load(0, 0, NULL, 0): fails with EPERM without CAP_SYS_BOOT, never loads anything.
    pub fn kexec_load_null() -> Result<i64, i32> {
        int_syscall(libc::SYS_kexec_load, [0; 3])
    }

    /// unshare(flags).
    pub fn unshare(flags: i32) -> Result<i64, i32> {
        int_syscall(libc::SYS_unshare, [flags as u64, 0, 0])
    }

    /// getpid through the x32 ABI (syscall number with __X32_SYSCALL_BIT set), as an x32
    /// process would make it; seccomp sees it before the kernel decides whether x32 exists.
    pub fn x32_getpid() -> Result<i64, i32> {
        int_syscall(0x4000_0000 + 39, [0; 3])
    }

    /// getpid through the i386 ABI (`int 0x80`, number 20): seccomp sees AUDIT_ARCH_I386. Needs
    /// the kernel's IA32 emulation; without it the child gets a signal instead.
    #[cfg(target_arch = "x86_64")]
    pub fn i386_getpid() -> Result<i64, i32> {
        let ret: i64;
        // SAFETY: i386 getpid takes no arguments and writes no memory; the kernel returns in
        // eax and may clobber r8-r11 on this path, which we declare.
        unsafe {
            std::arch::asm!(
                "int 0x80",
                inlateout("rax") 20i64 => ret,
                lateout("r8") _, lateout("r9") _, lateout("r10") _, lateout("r11") _,
                options(nostack),
            );
        }
        // The i386 ABI returns a 32-bit value; -4095..-1 are errors.
        let ret = i64::from(ret as i32);
        if (-4095..0).contains(&ret) {
            Err(-ret as i32)
        } else {
            Ok(ret)
        }
    }

    /// mkdirat(AT_FDCWD, path, 0o700) with a NUL-terminated path.
    pub fn mkdirat(path: &std::ffi::CStr) -> Result<i64, i32> {
        // SAFETY: `path` is a live NUL-terminated string for the duration of the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_mkdirat,
                libc::AT_FDCWD,
                path.as_ptr(),
                0o700 as libc::c_uint,
            )
        };
        if ret < 0 {
            Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(ret)
        }
    }

    /// getcwd(2) into a caller buffer.
    pub fn getcwd(buf: &mut [u8]) -> Result<i64, i32> {
        // SAFETY: `buf` is writable for its full length.
        let ret = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
        if ret < 0 {
            Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(ret)
        }
    }

    /// write(2) of a whole buffer in one call.
    pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> Result<i64, i32> {
        // SAFETY: `buf` is readable for its full length; the fd is borrowed, so open.
        let ret = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        if ret < 0 {
            Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(ret as i64)
        }
    }

    /// One pending notification from a listener fd: (id, syscall number).
    pub fn notif_recv(listener: BorrowedFd<'_>) -> io::Result<(u64, i32)> {
        super::notif_recv(listener).map(|n| (n.id, n.nr))
    }

    /// Answers notification `id`: the syscall fails with `errno` in the target.
    pub fn notif_send_error(listener: BorrowedFd<'_>, id: u64, errno: i32) -> io::Result<()> {
        super::notif_send(listener, id, 0, errno)
    }
}
