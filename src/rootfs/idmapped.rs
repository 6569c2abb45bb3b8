//! Mount trees the parent (host root, before clone3) prepares for the init, which only
//! attaches them (move_mount) at the targets it resolves inside the rootfs:
//!
//! - Idmapped bind mounts (runtime-spec 1.2): the `idmap`/`ridmap` options and a mount's own
//!   `uidMappings`/`gidMappings`. The mapping is given to mount_setattr(MOUNT_ATTR_IDMAP) as a
//!   user namespace fd, and the kernel only lets a process privileged over the *filesystem's*
//!   user namespace (the host's) idmap a mount. So the parent makes a user namespace with the
//!   mount's maps (`sys::userns`), clones the source tree detached (open_tree), sets the idmap
//!   and the mount's other attributes on it.
//! - With a user namespace (new or joined), every other bind mount too: the init opens paths
//!   as the namespace's root, which cannot reach a source only host root may (a directory
//!   of mode 0700 on the way, say), so the parent clones it while it still can.
//!
//! A source inside the rootfs (`$ROOTFS/mnt/x`) is left to the init: it must show what the
//! container's earlier mounts put there, which only exists in the init's mount namespace.
//! Without a user namespace the init idmaps such a tree itself (it is host root), with the
//! user namespace fd made here; with one, a helper forked here does it for the init
//! (`helper`).
//!
//! Which mapping (runc's rules): the mount's own `uidMappings`/`gidMappings` when given (both
//! are required); otherwise `idmap`/`ridmap` use the container's user namespace, i.e.
//! `linux.uidMappings`/`gidMappings` of a new one, or the joined one itself. `ridmap` maps
//! every mount of an `rbind` tree, `idmap` only its top.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use super::options::Options;
use crate::process::namespaces::map_text;
use crate::sys::mount::{self as m, MountAttr};

/// What the parent prepared, by index into `mounts`: detached trees ready to be attached
/// by the init, and user namespace fds for the idmapped mounts the init clones itself.
#[derive(Debug, Default)]
pub struct Idmapped {
    trees: HashMap<usize, OwnedFd>,
    userns: HashMap<usize, OwnedFd>,
    /// For idmapped mounts with their source in the rootfs and a user namespace.
    helper: Option<super::helper::Helper>,
}

impl Idmapped {
    pub fn get(&self, i: usize) -> Option<&OwnedFd> {
        self.trees.get(&i)
    }

    /// The mapping for an idmapped mount whose source is inside the rootfs.
    pub fn userns(&self, i: usize) -> Option<BorrowedFd<'_>> {
        self.userns.get(&i).map(|f| f.as_fd())
    }

    /// Whether mount `i`'s tree comes from the mount helper (see `helper`).
    pub fn helped(&self, i: usize) -> bool {
        self.helper.as_ref().is_some_and(|h| h.serves(i))
    }

    /// In the init: mount `i`'s tree, from the mount helper.
    pub fn request(&self, i: usize) -> Result<OwnedFd> {
        self.helper
            .as_ref()
            .context("no mount helper was started")?
            .request(i)
    }

    pub fn is_empty(&self) -> bool {
        self.trees.is_empty() && self.userns.is_empty() && self.helper.is_none()
    }
}

/// Where a mount's mapping comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Maps { uid: String, gid: String },
    Joined(PathBuf),
}

pub(super) fn mapping_of(spec: &Spec, i: usize, mnt: &Mount) -> Result<Source> {
    let field = format!("mounts[{i}]");
    match (mnt.uid_mappings(), mnt.gid_mappings()) {
        (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => {
            return Ok(Source::Maps {
                uid: map_text(u),
                gid: map_text(g),
            })
        }
        (None, None) => {}
        _ => bail!("{field}: an idmapped mount needs both uidMappings and gidMappings"),
    }
    let linux = spec.linux().as_ref();
    let user = linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .find(|n| n.typ() == LinuxNamespaceType::User);
    match user {
        Some(ns) => match ns.path().as_ref().filter(|p| !p.as_os_str().is_empty()) {
            Some(p) => Ok(Source::Joined(p.clone())),
            None => {
                let l = linux.expect("namespaces come from linux");
                Ok(Source::Maps {
                    uid: map_text(l.uid_mappings().as_deref().unwrap_or_default()),
                    gid: map_text(l.gid_mappings().as_deref().unwrap_or_default()),
                })
            }
        },
        None => bail!(
            "{field}: `idmap`/`ridmap` without uidMappings/gidMappings on the mount use the \
             container's user namespace, and linux.namespaces has none"
        ),
    }
}

/// Prepares, in the parent, the trees and mappings described in the module documentation.
pub fn prepare(plan: &super::Plan, bundle: &Path) -> Result<Idmapped> {
    let mut out = Idmapped::default();
    let mut jobs = HashMap::new();
    let mut userns: Vec<(Source, OwnedFd)> = Vec::new();
    let rootfs = super::mounts::rootfs_paths(bundle, &plan.root_path, None);
    // A tree cloned from the host's namespace would still share the host's peer groups; in
    // the container's namespace the same mount would be a slave of them (a mount namespace
    // of a new user namespace gets slaves of shared mounts), or private when the whole tree
    // is made so (`rprivate`; plain `private` is for / only). It is given that propagation.
    let propagation = if plan.rprivate() {
        nix::mount::MsFlags::MS_PRIVATE
    } else {
        nix::mount::MsFlags::MS_SLAVE
    };
    for mp in &plan.mounts {
        let (i, mnt, o) = (mp.index, &mp.mount, &mp.options);
        let idmapped = mp.idmap.is_some();
        if !mp.bind || !(idmapped || (plan.user_ns && !plan.unprivileged)) {
            continue;
        }
        let what = || {
            format!(
                "mounts[{i}] ({}bind on {})",
                if idmapped { "idmapped " } else { "" },
                mnt.destination().display()
            )
        };
        let src = super::mounts::bind_source(bundle, mnt).with_context(what)?;
        let ns = if let Some(map) = mp.idmap.clone() {
            let k = match userns.iter().position(|(s, _)| *s == map) {
                Some(k) => k,
                None => {
                    let fd = match &map {
                        Source::Maps { uid, gid } => crate::sys::userns::with_maps(uid, gid)
                            .with_context(|| format!("{}: creating its user namespace", what()))?,
                        Source::Joined(p) => std::fs::File::open(p)
                            .map(OwnedFd::from)
                            .with_context(|| format!("{}: opening {}", what(), p.display()))?,
                    };
                    userns.push((map, fd));
                    userns.len() - 1
                }
            };
            Some(k)
        } else {
            None
        };
        if let Some(inside) = super::mounts::in_rootfs(&src, &rootfs) {
            if let Some(k) = ns {
                let fd = userns[k].1.try_clone().with_context(what)?;
                if plan.user_ns {
                    jobs.insert(
                        i,
                        super::helper::Job {
                            rootfs: rootfs[0].clone(),
                            inside,
                            options: o.clone(),
                            userns: fd,
                        },
                    );
                } else {
                    out.userns.insert(i, fd);
                }
            }
            continue;
        }
        let ns = ns.map(|k| userns[k].1.as_fd());
        let tree = clone_tree(&src, None, o, ns, Some(propagation)).with_context(what)?;
        out.trees.insert(i, tree);
    }
    if !jobs.is_empty() {
        out.helper = Some(super::helper::Helper::spawn(jobs)?);
    }
    Ok(out)
}

/// Clones the mount tree at `src` detached (recursively for `rbind`), idmaps it with `userns`
/// when given, sets the mount's attributes on it and, when given, its propagation. With
/// `root`, `src` is a path inside that rootfs, resolved there (RESOLVE_IN_ROOT: a symlink in
/// the image cannot make us clone a host tree); otherwise a host path.
pub(super) fn clone_tree(
    src: &Path,
    root: Option<BorrowedFd<'_>>,
    o: &Options,
    userns: Option<BorrowedFd<'_>>,
    propagation: Option<nix::mount::MsFlags>,
) -> Result<OwnedFd> {
    let mut flags = m::OPEN_TREE_CLONE;
    if o.recursive {
        flags |= m::AT_RECURSIVE;
    }
    let tree = match root {
        Some(root) => crate::sys::fs::open_in_root(root, src, libc::O_PATH)
            .and_then(|fd| m::open_tree(fd.as_fd(), Path::new(""), flags)),
        None => m::open_tree(nix::fcntl::AT_FDCWD, src, flags),
    }
    .with_context(|| format!("cloning mount tree of {}", src.display()))?;
    if let Some(p) = propagation {
        let attr = MountAttr {
            propagation: p.bits(),
            ..Default::default()
        };
        m::mount_setattr(tree.as_fd(), true, &attr)
            .context("making the cloned tree non-propagating")?;
    }
    if let Some(ns) = userns {
        let idmap = MountAttr {
            attr_set: m::MOUNT_ATTR_IDMAP,
            userns_fd: ns.as_raw_fd() as u64,
            ..Default::default()
        };
        m::mount_setattr(tree.as_fd(), o.idmap_recursive, &idmap).with_context(|| {
            format!(
                "mount_setattr(MOUNT_ATTR_IDMAP) on {} (does its filesystem support idmapped \
                 mounts?)",
                src.display()
            )
        })?;
    }
    // Set here, on the detached tree: the init cannot change attributes of a tree that
    // belongs to its mount namespace's owner.
    let attr = MountAttr {
        attr_set: o.attr_set,
        attr_clr: o.attr_clr,
        ..Default::default()
    };
    if attr != MountAttr::default() {
        m::mount_setattr(tree.as_fd(), false, &attr).context("setting mount attributes")?;
    }
    if o.rec_attr_set != 0 || o.rec_attr_clr != 0 {
        let attr = MountAttr {
            attr_set: o.rec_attr_set,
            attr_clr: o.rec_attr_clr,
            ..Default::default()
        };
        m::mount_setattr(tree.as_fd(), true, &attr)
            .context("setting recursive mount attributes")?;
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mounts: &str, linux: &str) -> Spec {
        serde_json::from_str(&format!(
            r#"{{"ociVersion":"1.2.0","mounts":[{mounts}],"linux":{{{linux}}}}}"#
        ))
        .unwrap()
    }

    const USERNS: &str = r#""namespaces":[{"type":"mount"},{"type":"user"}],
        "uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
        "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]"#;

    #[test]
    fn implied_mapping_is_the_containers() {
        let s = spec(
            r#"{"destination":"/d","type":"bind","source":"/tmp","options":["rbind","ridmap"]}"#,
            USERNS,
        );
        let m = &s.mounts().as_ref().unwrap()[0];
        assert_eq!(
            mapping_of(&s, 0, m).unwrap(),
            Source::Maps {
                uid: "0 100000 65536\n".into(),
                gid: "0 100000 65536\n".into()
            }
        );
        assert!(super::super::Plan::compile(&s, &Default::default())
            .map(drop)
            .is_ok());
    }

    #[test]
    fn explicit_mapping_wins_and_needs_both() {
        let s = spec(
            r#"{"destination":"/d","type":"bind","source":"/tmp","options":["bind"],
               "uidMappings":[{"containerID":0,"hostID":1000,"size":1}],
               "gidMappings":[{"containerID":0,"hostID":2000,"size":1}]}"#,
            r#""namespaces":[{"type":"mount"}]"#,
        );
        let m = &s.mounts().as_ref().unwrap()[0];
        assert_eq!(
            mapping_of(&s, 0, m).unwrap(),
            Source::Maps {
                uid: "0 1000 1\n".into(),
                gid: "0 2000 1\n".into()
            }
        );
        let s = spec(
            r#"{"destination":"/d","type":"bind","source":"/tmp","options":["bind"],
               "uidMappings":[{"containerID":0,"hostID":1000,"size":1}]}"#,
            r#""namespaces":[{"type":"mount"}]"#,
        );
        assert!(super::super::Plan::compile(&s, &Default::default())
            .map(drop)
            .unwrap_err()
            .to_string()
            .contains("both"));
    }

    #[test]
    fn refused_combinations() {
        let s = spec(
            r#"{"destination":"/d","type":"tmpfs","source":"tmpfs","options":["idmap"]}"#,
            USERNS,
        );
        assert!(super::super::Plan::compile(&s, &Default::default())
            .map(drop)
            .unwrap_err()
            .to_string()
            .contains("only supported for bind"));
        let s = spec(
            r#"{"destination":"/d","type":"bind","source":"/tmp","options":["bind","idmap"]}"#,
            r#""namespaces":[{"type":"mount"}]"#,
        );
        assert!(super::super::Plan::compile(&s, &Default::default())
            .map(drop)
            .unwrap_err()
            .to_string()
            .contains("user namespace"));
    }
}
