//! `--preserve-fds N` (create, run, exec): the caller's fds 3+L .. 3+L+N-1 (after the L
//! socket-activation fds) go to the container process. They must all be open, and be the
//! caller's: checked before skiff opens anything of its own, so every fd skiff opens later
//! lands above the range and none of them can reach the container.

use anyhow::{bail, Result};

/// Refuses a count the fd limit cannot hold and, as runc, a preserved fd that is not open
/// ("unable to stat preserved-fd I (of N)"). skiff's own `--log` file, opened before this
/// check at the lowest free number, counts as not open: it filled a hole in the caller's fds.
pub fn check_preserved(listen: u32, n: u32) -> Result<()> {
    let first = 3u64 + u64::from(listen);
    // The activated sockets are not checked (runc does not), but skiff's log is no socket.
    if let Some(log) = crate::logging::file_fd().and_then(|fd| u64::try_from(fd).ok()) {
        if (3..first).contains(&log) {
            bail!(
                "LISTEN_FDS={listen}: fd {log} is not one of the caller's (socket activation \
                 passes fds 3..{})",
                first - 1
            );
        }
    }
    if n == 0 {
        return Ok(());
    }
    let (soft, _) = crate::sys::misc::getrlimit(libc::RLIMIT_NOFILE)
        .map_err(|e| anyhow::anyhow!("--preserve-fds: reading RLIMIT_NOFILE: {e}"))?;
    let end = first + u64::from(n);
    if end > soft {
        bail!(
            "--preserve-fds {n}: fds {first}..{} cannot exist, the open file limit \
             (RLIMIT_NOFILE) is {soft}",
            end - 1
        );
    }
    let ours = crate::logging::file_fd();
    for (i, fd) in (first..end).enumerate() {
        // `end` is at most the fd limit, which the kernel keeps below i32::MAX.
        let fd = i32::try_from(fd).unwrap_or(i32::MAX);
        if Some(fd) == ours || !crate::sys::misc::is_open(fd) {
            bail!(
                "unable to stat preserved-fd {i} (of {n}): fd {fd} is not open \
                 (--preserve-fds {n} passes the caller's fds {first}..{})",
                end - 1
            );
        }
    }
    Ok(())
}
