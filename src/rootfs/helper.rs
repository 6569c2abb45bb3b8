//! The one case the parent cannot prepare before clone3: an idmapped bind mount whose source
//! is inside the rootfs (`$ROOTFS/mnt/x`) in a container with a user namespace. The source
//! must be cloned from the init's mount namespace after the earlier mounts (it shows them),
//! and idmapping it needs host root (privilege over the filesystem's user namespace), which
//! the init, root of its own user namespace, is not. Its messages are defined with the create
//! protocol (`process::sync::mount_helper`).
//!
//! So the parent forks a helper before clone3: host root, in the host's namespaces, holding
//! the mappings' user namespace fds. For each such mount the init sends it the mount's index
//! and an fd of its own mount namespace over a SOCK_SEQPACKET pair; the helper joins that
//! mount namespace, clones the source detached, idmaps it and sets its attributes, and
//! sends the tree back, which the init attaches at its in-root target like any prepared
//! tree. The helper serves only the spec's own mounts, by index; the init's end of the
//! socket is close-on-exec, so the container process never holds it; the parent kills and
//! reaps the helper once the init is ready (or gone).

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use anyhow::{Context, Result};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use super::options::Options;
use crate::process::sync::mount_helper;
use crate::sys::clone::{clone3, Forked};

/// What the helper does for one mount: clone `inside` (a path in `rootfs`), idmap it with
/// `userns`, give it `options`' attributes.
pub struct Job {
    pub rootfs: PathBuf,
    pub inside: PathBuf,
    pub options: Options,
    pub userns: OwnedFd,
}

/// The parent's handle on the helper, and the init's end of the socket.
#[derive(Debug)]
pub struct Helper {
    init_end: OwnedFd,
    pidfd: OwnedFd,
    indices: Vec<usize>,
}

impl Helper {
    /// Forks the helper (the caller must be single-threaded, as for any clone3).
    pub fn spawn(jobs: HashMap<usize, Job>) -> Result<Helper> {
        let (ours, init_end) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("creating the mount helper's socketpair")?;
        let mut indices: Vec<usize> = jobs.keys().copied().collect();
        indices.sort_unstable();
        match clone3(0, None, true).context("forking the mount helper")? {
            Forked::Child => {
                drop(init_end);
                let code = match serve(ours.as_fd(), &jobs) {
                    Ok(()) => 0,
                    Err(_) => 1,
                };
                crate::sys::misc::exit_now(code)
            }
            Forked::Parent { pidfd, .. } => Ok(Helper {
                init_end,
                pidfd: pidfd.context("clone3 returned no pidfd")?,
                indices,
            }),
        }
    }

    pub fn serves(&self, i: usize) -> bool {
        self.indices.contains(&i)
    }

    /// In the init: asks for mount `i`'s tree, cloned from our mount namespace.
    pub fn request(&self, i: usize) -> Result<OwnedFd> {
        let ns = std::fs::File::open("/proc/self/ns/mnt")
            .context("opening our mount namespace for the mount helper")?;
        mount_helper::request(self.init_end.as_fd(), i, ns.as_fd())
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // Only the parent drops it (the init execs or exits, the helper exits).
        let _ = crate::sys::pidfd::send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        let _ = crate::sys::pidfd::wait(self.pidfd.as_fd(), false);
    }
}

/// The helper's loop: one request at a time until the init's end closes.
fn serve(sock: BorrowedFd<'_>, jobs: &HashMap<usize, Job>) -> Result<()> {
    // Gone with the parent; nobody may ptrace or open the /proc files of a host-root process
    // that holds host fds while it works in the container's mount namespace.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    nix::sys::prctl::set_dumpable(false)?;
    let mut joined = false;
    while let Some((index, ns)) = mount_helper::next(sock)? {
        mount_helper::reply(sock, answer(index, ns, jobs, &mut joined))?;
    }
    Ok(())
}

fn answer(
    i: usize,
    ns: Option<OwnedFd>,
    jobs: &HashMap<usize, Job>,
    joined: &mut bool,
) -> Result<OwnedFd> {
    let job = jobs
        .get(&i)
        .with_context(|| format!("mount helper: mounts[{i}] is not one it serves"))?;
    if !*joined {
        let ns = ns.context("mount helper: no mount namespace in the request")?;
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNS)
            .context("mount helper: joining the container's mount namespace")?;
        *joined = true;
    }
    let root = std::fs::File::open(&job.rootfs)
        .with_context(|| format!("mount helper: opening {}", job.rootfs.display()))?;
    super::idmapped::clone_tree(
        &job.inside,
        Some(root.as_fd()),
        &job.options,
        Some(job.userns.as_fd()),
        None,
    )
}
