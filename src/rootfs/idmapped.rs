//! Idmapped bind mounts (runtime-spec 1.2): the `idmap`/`ridmap` options and a mount's own
//! `uidMappings`/`gidMappings`.
//!
//! The mapping is given to mount_setattr(MOUNT_ATTR_IDMAP) as a user namespace fd, and the
//! kernel only lets a process privileged over the *filesystem's* user namespace (the host's)
//! idmap a mount. So the parent does it, before clone3: it makes a user namespace with the
//! mount's maps (`sys::userns`), clones the source tree detached (open_tree), sets the idmap
//! and the mount's other attributes on it, and hands the detached tree to the init, which
//! only attaches it (move_mount) at the target it resolved inside the rootfs.
//!
//! Which mapping (runc's rules): the mount's own `uidMappings`/`gidMappings` when given (both
//! are required); otherwise `idmap`/`ridmap` use the container's user namespace, i.e.
//! `linux.uidMappings`/`gidMappings` of a new one, or the joined one itself. `ridmap` maps
//! every mount of an `rbind` tree, `idmap` only its top.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};

use super::options::Options;
use crate::sys::mount::{self as m, MountAttr};

/// Detached, idmapped mount trees by index into `mounts`, ready to be attached by the init.
#[derive(Debug, Default)]
pub struct Idmapped {
    trees: HashMap<usize, OwnedFd>,
}

impl Idmapped {
    pub fn get(&self, i: usize) -> Option<&OwnedFd> {
        self.trees.get(&i)
    }

    pub fn is_empty(&self) -> bool {
        self.trees.is_empty()
    }
}

fn is_idmapped(mnt: &Mount, o: &Options) -> bool {
    o.idmap || mnt.uid_mappings().is_some() || mnt.gid_mappings().is_some()
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Where a mount's mapping comes from.
#[derive(Debug, PartialEq)]
enum Source {
    Maps { uid: String, gid: String },
    Joined(PathBuf),
}

fn mapping_of(spec: &Spec, i: usize, mnt: &Mount) -> Result<Source> {
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

/// Checks the idmapped mounts of the spec (bind only, a mapping to use).
pub fn validate(spec: &Spec) -> Result<()> {
    for (i, mnt) in spec.mounts().iter().flatten().enumerate() {
        let o = Options::parse(mnt.options().as_deref().unwrap_or_default());
        if !is_idmapped(mnt, &o) {
            continue;
        }
        if !(o.bind || mnt.typ().as_deref() == Some("bind")) {
            bail!("mounts[{i}]: idmapped mounts are only supported for bind mounts");
        }
        mapping_of(spec, i, mnt)?;
    }
    Ok(())
}

/// Makes the detached idmapped trees for every idmapped mount of the spec (in the parent).
pub fn prepare(spec: &Spec, bundle: &Path) -> Result<Idmapped> {
    let mut out = Idmapped::default();
    let mut userns: Vec<(Source, OwnedFd)> = Vec::new();
    for (i, mnt) in spec.mounts().iter().flatten().enumerate() {
        let o = Options::parse(mnt.options().as_deref().unwrap_or_default());
        if !is_idmapped(mnt, &o) {
            continue;
        }
        let what = || {
            format!(
                "mounts[{i}] (idmapped bind on {})",
                mnt.destination().display()
            )
        };
        let src = mapping_of(spec, i, mnt)?;
        let ns = match userns.iter().position(|(s, _)| *s == src) {
            Some(k) => k,
            None => {
                let fd = match &src {
                    Source::Maps { uid, gid } => crate::sys::userns::with_maps(uid, gid)
                        .with_context(|| format!("{}: creating its user namespace", what()))?,
                    Source::Joined(p) => std::fs::File::open(p)
                        .map(OwnedFd::from)
                        .with_context(|| format!("{}: opening {}", what(), p.display()))?,
                };
                userns.push((src, fd));
                userns.len() - 1
            }
        };
        let tree = tree(bundle, mnt, &o, userns[ns].1.as_fd()).with_context(what)?;
        out.trees.insert(i, tree);
    }
    Ok(out)
}

fn tree(
    bundle: &Path,
    mnt: &Mount,
    o: &Options,
    userns: std::os::fd::BorrowedFd<'_>,
) -> Result<OwnedFd> {
    let src = mnt
        .source()
        .as_ref()
        .context("bind mount without a source")?;
    let src = if src.is_absolute() {
        src.clone()
    } else {
        bundle.join(src)
    };
    let mut flags = m::OPEN_TREE_CLONE;
    if o.recursive {
        flags |= m::AT_RECURSIVE;
    }
    let tree = m::open_tree(nix::fcntl::AT_FDCWD, &src, flags)
        .with_context(|| format!("cloning mount tree of {}", src.display()))?;
    let idmap = MountAttr {
        attr_set: m::MOUNT_ATTR_IDMAP,
        userns_fd: userns.as_raw_fd() as u64,
        ..Default::default()
    };
    m::mount_setattr(tree.as_fd(), o.idmap_recursive, &idmap).with_context(|| {
        format!(
            "mount_setattr(MOUNT_ATTR_IDMAP) on {} (does its filesystem support idmapped \
             mounts?)",
            src.display()
        )
    })?;
    // The init cannot change attributes of a tree that belongs to our mount namespace's
    // owner: set them all here.
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
        assert!(validate(&s).is_ok());
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
        assert!(validate(&s).unwrap_err().to_string().contains("both"));
    }

    #[test]
    fn refused_combinations() {
        let s = spec(
            r#"{"destination":"/d","type":"tmpfs","source":"tmpfs","options":["idmap"]}"#,
            USERNS,
        );
        assert!(validate(&s)
            .unwrap_err()
            .to_string()
            .contains("only supported for bind"));
        let s = spec(
            r#"{"destination":"/d","type":"bind","source":"/tmp","options":["bind","idmap"]}"#,
            r#""namespaces":[{"type":"mount"}]"#,
        );
        assert!(validate(&s)
            .unwrap_err()
            .to_string()
            .contains("user namespace"));
    }
}
