//! Running from a sealed copy of our own binary (CVE-2019-5736).
//!
//! Every process skiff puts into a container is a clone of skiff until it execs, so its
//! /proc/<pid>/exe is skiff's binary. A container that gets a process of its own to execute
//! that link (an entrypoint `#!/proc/self/exe`, or `exec /proc/self/exe`) could keep an fd to
//! the binary and reopen it for writing once it is no longer busy, replacing the host's
//! runtime. So the commands that create container processes first re-execute skiff from an
//! anonymous memfd copy sealed against writes, shrinking and growing: /proc/<pid>/exe then
//! names that copy, which no one can modify, and the host binary is never reachable.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

const MFD_CLOEXEC: libc::c_uint = 0x1;
const MFD_ALLOW_SEALING: libc::c_uint = 0x2;
const MFD_EXEC: libc::c_uint = 0x10;
const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// True when `fd` is a memfd carrying all of [`SEALS`].
fn is_sealed(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: F_GET_SEALS takes no argument and only reads the file's seal set.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

fn memfd(name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name and flags; returns a new fd we own.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_memfd_create,
            name.as_ptr(),
            MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC,
        )
    };
    match super::cvt(ret) {
        Ok(fd) => Ok(super::owned_fd(fd)),
        // Kernels before 6.3 do not know MFD_EXEC (every memfd is executable there).
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // SAFETY: as above.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_memfd_create,
                    name.as_ptr(),
                    MFD_CLOEXEC | MFD_ALLOW_SEALING,
                )
            };
            super::cvt(ret).map(super::owned_fd)
        }
        Err(e) => Err(e),
    }
}

/// Set in the environment of the re-executed copy, so it checks the seal instead of looping.
const MARK: &str = "_SKIFF_SEALED";

/// True when writing to the binary `fd` is impossible: a memfd with all of [`SEALS`], or a
/// file on a read-only filesystem or mount.
fn write_proof(fd: BorrowedFd<'_>) -> bool {
    is_sealed(fd)
        || nix::sys::statvfs::fstatvfs(fd)
            .is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// Re-executes the running binary from a copy that cannot be written to, with the same argv
/// and environment, unless it already runs from one. Returns (Ok) only when nothing needed
/// doing; otherwise it does not return unless it fails.
///
/// The copy is, by preference, the same file seen through a private read-only overlay mount
/// that is attached nowhere (no data is copied; an overlay without an upper layer can never
/// be made writable), and otherwise an anonymous memfd copy sealed against writes.
pub fn reexec_sealed() -> io::Result<()> {
    let exe: OwnedFd = std::fs::File::open("/proc/self/exe")?.into();
    let fd = std::os::fd::AsFd::as_fd(&exe);
    if std::env::var_os(MARK).is_some() {
        // SAFETY-free but process-global: we are still single-threaded at startup.
        std::env::remove_var(MARK);
        return if write_proof(fd) {
            Ok(())
        } else {
            Err(io::Error::other("the re-executed binary is still writable"))
        };
    }
    if write_proof(fd) {
        return Ok(());
    }
    let path = std::fs::read_link("/proc/self/exe")?;
    let copy = match overlay_view(&path) {
        Ok(fd) => fd,
        Err(_) => memfd_copy(fd)?,
    };
    execveat_self(copy.as_fd_borrow())
}

trait Borrow {
    fn as_fd_borrow(&self) -> BorrowedFd<'_>;
}

impl Borrow for OwnedFd {
    fn as_fd_borrow(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}

/// The binary at `path`, opened through a fresh read-only overlay of its directory, mounted
/// nowhere. overlayfs wants two lower layers when there is no upper one; the second is empty.
fn overlay_view(path: &std::path::Path) -> io::Result<OwnedFd> {
    use super::mount::{
        fsconfig_set, fsconfig_set_fd, fsmount, fsopen, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID,
        MOUNT_ATTR_RDONLY,
    };
    use std::os::fd::AsFd;
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(d), Some(n)) => (d, n),
        _ => return Err(io::Error::from(io::ErrorKind::InvalidInput)),
    };
    let dir = dir
        .to_str()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let fs = fsopen("overlay")?;
    // Linux 6.8+: each layer by its own "lowerdir+" call (no escaping), the empty one as the
    // root of a fresh read-only tmpfs attached nowhere, given by fd. Older kernels get the
    // colon-separated list with an empty directory made for the purpose.
    let by_fd = (|| {
        fsconfig_set(fs.as_fd(), "lowerdir+", Some(dir))?;
        let tmp = fsopen("tmpfs")?;
        let empty = fsmount(tmp.as_fd(), MOUNT_ATTR_RDONLY)?;
        fsconfig_set_fd(fs.as_fd(), "lowerdir+", empty.as_fd())?;
        fsmount(
            fs.as_fd(),
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID,
        )
    })();
    let mounted = by_fd.or_else(|_| overlay_with_empty_dir(dir));
    let mnt = mounted?;
    let file = nix::fcntl::openat(
        &mnt,
        name,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    Ok(file)
}

/// The overlay for kernels without "lowerdir+": `dir:<an empty directory>`, the directory
/// made for the purpose and removed at once (the overlay keeps it).
fn overlay_with_empty_dir(dir: &str) -> io::Result<OwnedFd> {
    use super::mount::{
        fsconfig_set, fsmount, fsopen, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY,
    };
    use std::os::fd::AsFd;
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let empty = std::env::temp_dir().join(format!(".skiff-seal-{}-{nonce}", std::process::id()));
    std::fs::DirBuilder::new().mode_0700().create(&empty)?;
    let mounted = (|| {
        let empty = empty
            .to_str()
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        if dir.contains([':', ',', '\\']) || empty.contains([':', ',', '\\']) {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let fs = fsopen("overlay")?;
        fsconfig_set(fs.as_fd(), "lowerdir", Some(&format!("{dir}:{empty}")))?;
        fsmount(
            fs.as_fd(),
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID,
        )
    })();
    let _ = std::fs::remove_dir(&empty);
    mounted
}

trait Mode0700 {
    fn mode_0700(&mut self) -> &mut Self;
}

impl Mode0700 for std::fs::DirBuilder {
    fn mode_0700(&mut self) -> &mut Self {
        std::os::unix::fs::DirBuilderExt::mode(self, 0o700)
    }
}

/// An anonymous memfd copy of `exe`, sealed.
fn memfd_copy(exe: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let copy = memfd(c"skiff")?;
    let mut left = nix::sys::stat::fstat(exe)?.st_size as usize;
    let mut off: libc::off_t = 0;
    while left > 0 {
        // SAFETY: two valid fds and a valid offset pointer (the input's own offset is kept).
        let n = unsafe { libc::sendfile(copy.as_raw_fd(), exe.as_raw_fd(), &mut off, left) };
        match super::cvt(n as libc::c_long) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "binary shrank while copying",
                ))
            }
            Ok(n) => left -= n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // SAFETY: F_ADD_SEALS with a plain integer seal set.
    super::cvt(unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } as libc::c_long)?;
    Ok(copy)
}

fn execveat_self(bin: BorrowedFd<'_>) -> io::Result<()> {
    let bad = || io::Error::from(io::ErrorKind::InvalidInput);
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| bad()))
        .collect::<io::Result<_>>()?;
    let mut env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).map_err(|_| bad())
        })
        .collect::<io::Result<_>>()?;
    env.push(CString::new(format!("{MARK}=1")).map_err(|_| bad())?);
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: argv and envp are NULL-terminated arrays of pointers into CStrings that live
    // across the call; an empty path with AT_EMPTY_PATH executes the fd itself.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_execveat,
            bin.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    super::cvt(ret).map(drop)
}
