//! Which namespaces the container gets and how, decided before anything is cloned.
//!
//! The user namespace owns every namespace created after it, and a namespace can only be
//! joined by a process privileged over its owner, so the order is forced:
//!
//! * Nothing joined by path (the common case): clone3 creates every new namespace in one
//!   call, the user namespace included (the kernel creates it first).
//! * Some namespace joined and no user namespace involved: clone3 still creates the new ones
//!   and the child joins the rest with setns.
//! * A user namespace joined: the child joins it first, then the others, then unshares the
//!   new ones, which are thereby owned by the joined user namespace.
//! * A new user namespace plus joined ones: the child joins while still privileged on the
//!   host, then unshares the user namespace, then the rest.
//!
//! In the last two cases a new pid namespace can only take effect for a child, so the child
//! forks once more and that grandchild becomes the container's init.
//!
//! Two namespaces are never part of clone3: the cgroup namespace (clone3 would root it at the
//! *parent's* cgroup even with CLONE_INTO_CGROUP, as copy_cgroup_ns looks at the caller) and
//! the time namespace (its offsets must be written before any process is in it).

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::LinuxNamespaceType;

mod compile;
pub use compile::{compile, map_text, time_offsets, IdMaps};

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

pub fn name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// The /proc/<pid>/ns/<file> name of a namespace type.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// A namespace to join, opened by the parent before clone so a bad path fails early and the
/// child joins exactly the namespace that was checked.
#[derive(Debug)]
pub struct Join {
    pub typ: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

impl Join {
    pub fn open(typ: LinuxNamespaceType, path: PathBuf) -> Result<Join> {
        let fd = File::open(&path).map(OwnedFd::from).with_context(|| {
            format!(
                "linux.namespaces: opening {} namespace {}",
                name(typ),
                path.display()
            )
        })?;
        Ok(Join { typ, path, fd })
    }

    pub fn enter(&self) -> Result<()> {
        setns(self.fd.as_fd(), clone_flag(self.typ)).with_context(|| {
            format!(
                "linux.namespaces: joining {} namespace {} (is it a {} namespace?)",
                name(self.typ),
                self.path.display(),
                name(self.typ)
            )
        })
    }
}

/// The namespace part of the launch plan. Pure data: see [`Plan::from_types`].
#[derive(Debug)]
pub struct Plan {
    /// Created by clone3 itself.
    pub clone: CloneFlags,
    /// Joined by the (first) child with setns, in this order (user first).
    pub join: Vec<Join>,
    /// A pid namespace the parent enters for its children just around clone3.
    pub join_pid: Option<Join>,
    /// The child creates a user namespace with unshare after joining (and asks the parent to
    /// write its id maps).
    pub unshare_user: bool,
    /// Created by the child with unshare, after joins and the user namespace.
    pub unshare: CloneFlags,
    /// The child forks once more so a pid namespace it unshared takes effect.
    pub fork: bool,
    /// A new time namespace (set up by the init itself, see process::child).
    pub new_time: bool,
    /// A new user namespace exists (created by clone3 or unshare): the parent writes maps.
    pub new_user: bool,
    /// The container has a pid namespace of its own: killing its init kills everything.
    pub own_pid_ns: bool,
    /// skiff runs unprivileged: the child makes the user namespace itself (`unshare_user`)
    /// and is dumpable while the parent writes its maps (an unprivileged parent may not open
    /// a non-dumpable process's /proc files; nothing of the container runs yet).
    pub unprivileged: bool,
}

/// One entry of linux.namespaces, reduced to what planning needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Want {
    pub typ: LinuxNamespaceType,
    pub path: Option<PathBuf>,
}

impl Plan {
    /// The container has a cgroup namespace other than the runtime's (new, or joined by
    /// path).
    pub fn own_cgroup_ns(&self) -> bool {
        (self.clone | self.unshare).contains(CloneFlags::CLONE_NEWCGROUP)
            || self
                .join
                .iter()
                .any(|j| j.typ == LinuxNamespaceType::Cgroup)
    }

    /// The container runs in a user namespace other than the runtime's (new, or joined).
    pub fn in_user_ns(&self) -> bool {
        self.new_user || self.join.iter().any(|j| j.typ == LinuxNamespaceType::User)
    }

    /// The container gets a network namespace of its own (not joined by path).
    pub fn new_net(&self) -> bool {
        (self.clone | self.unshare).contains(CloneFlags::CLONE_NEWNET)
    }

    /// Plans `wants`, opening the namespaces to join (which must exist now). `unprivileged`:
    /// for a caller that is not root, which can only create namespaces from inside a user
    /// namespace of its own, made by the child (see [`Plan::unprivileged`]).
    pub fn open(wants: &[Want], unprivileged: bool) -> Result<Plan> {
        let mut plan = Plan::from_wants(wants, Join::open)?;
        if unprivileged {
            plan.unprivileged();
        }
        Ok(plan)
    }

    fn unprivileged(&mut self) {
        self.unprivileged = true;
        if self.clone.contains(CloneFlags::CLONE_NEWUSER) {
            let rest = self.clone - CloneFlags::CLONE_NEWUSER;
            self.clone = CloneFlags::empty();
            self.unshare_user = true;
            self.unshare |= rest;
            self.fork = rest.contains(CloneFlags::CLONE_NEWPID);
        }
    }

    /// Plans from the wanted namespaces; `open` opens a namespace to join (injectable so the
    /// planning rules can be tested without real namespace files).
    pub fn from_wants(
        wants: &[Want],
        mut open: impl FnMut(LinuxNamespaceType, PathBuf) -> Result<Join>,
    ) -> Result<Plan> {
        use LinuxNamespaceType as T;
        let mut new = CloneFlags::empty();
        let mut join = Vec::new();
        let mut join_pid = None;
        let (mut new_user, mut user_joined, mut new_time, mut mount) = (false, false, false, false);
        let mut own_pid_ns = false;
        for w in wants {
            match &w.path {
                Some(path) => {
                    let j = open(w.typ, path.clone())?;
                    match w.typ {
                        T::Pid => join_pid = Some(j),
                        T::User => {
                            user_joined = true;
                            join.insert(0, j);
                        }
                        _ => join.push(j),
                    }
                }
                None => match w.typ {
                    T::Time => new_time = true,
                    T::User => new_user = true,
                    t => new |= clone_flag(t),
                },
            }
            if w.typ == T::Pid {
                own_pid_ns = w.path.is_none();
            }
            if w.typ == T::Mount {
                mount = true;
            }
        }
        if !mount {
            bail!(
                "linux.namespaces: a mount namespace (new or joined by path) is required to set \
                 up the container's root filesystem"
            );
        }
        let cgroup = new & CloneFlags::CLONE_NEWCGROUP;
        let new = new - cgroup;
        let mut plan = Plan {
            clone: CloneFlags::empty(),
            join,
            join_pid,
            unshare_user: false,
            unshare: cgroup,
            fork: false,
            new_time,
            new_user,
            own_pid_ns,
            unprivileged: false,
        };
        if plan.join.is_empty() || (!new_user && !user_joined) {
            // Everything new can be born in one clone3 call.
            plan.clone = new;
            if new_user {
                plan.clone |= CloneFlags::CLONE_NEWUSER;
            }
        } else {
            // Joins must happen first; what is new is unshared afterwards.
            plan.unshare_user = new_user;
            plan.unshare |= new;
            plan.fork = new.contains(CloneFlags::CLONE_NEWPID);
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinuxNamespaceType as T;

    fn fake(typ: T, path: PathBuf) -> Result<Join> {
        let fd = File::open("/dev/null")?.into();
        Ok(Join { typ, path, fd })
    }

    fn want(t: T) -> Want {
        Want { typ: t, path: None }
    }

    fn joined(t: T) -> Want {
        Want {
            typ: t,
            path: Some(format!("/proc/1/ns/{}", proc_name(t)).into()),
        }
    }

    #[test]
    fn all_new_namespaces_are_one_clone3() {
        let p = Plan::from_wants(
            &[
                want(T::Pid),
                want(T::Network),
                want(T::Mount),
                want(T::User),
                want(T::Cgroup),
            ],
            fake,
        )
        .unwrap();
        assert!(p.clone.contains(
            CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWNET
                | CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWUSER
        ));
        assert!(
            !p.clone.contains(CloneFlags::CLONE_NEWCGROUP),
            "cgroup ns must be unshared"
        );
        assert_eq!(p.unshare, CloneFlags::CLONE_NEWCGROUP);
        assert!(!p.fork && !p.unshare_user && p.own_pid_ns && p.new_user);
    }

    #[test]
    fn joined_user_namespace_comes_first_and_forces_unshare() {
        let p = Plan::from_wants(
            &[
                joined(T::Network),
                joined(T::User),
                want(T::Pid),
                want(T::Mount),
            ],
            fake,
        )
        .unwrap();
        assert_eq!(p.join[0].typ, T::User);
        assert!(p.clone.is_empty());
        assert!(p
            .unshare
            .contains(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS));
        assert!(p.fork, "a pid namespace unshared by the child needs a fork");
    }

    #[test]
    fn new_user_with_joined_netns_unshares_user_after_join() {
        let p =
            Plan::from_wants(&[joined(T::Network), want(T::User), want(T::Mount)], fake).unwrap();
        assert!(p.clone.is_empty() && p.unshare_user && !p.fork);
        assert_eq!(p.join.len(), 1);
    }

    #[test]
    fn joins_without_user_ns_keep_clone3() {
        let p =
            Plan::from_wants(&[joined(T::Network), want(T::Pid), want(T::Mount)], fake).unwrap();
        assert!(p
            .clone
            .contains(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS));
        assert!(!p.fork);
    }

    #[test]
    fn joined_pid_namespace_is_entered_by_the_parent() {
        let p = Plan::from_wants(&[joined(T::Pid), want(T::Mount)], fake).unwrap();
        assert!(p.join_pid.is_some() && p.join.is_empty() && !p.own_pid_ns);
    }

    #[test]
    fn time_namespace_is_never_cloned() {
        let p = Plan::from_wants(&[want(T::Time), want(T::Mount)], fake).unwrap();
        assert!(p.new_time && !p.clone.contains(clone_flag(T::Time)));
    }

    #[test]
    fn no_mount_namespace_is_refused() {
        let e = Plan::from_wants(&[want(T::Pid)], fake)
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux.namespaces"), "{e}");
    }
}
