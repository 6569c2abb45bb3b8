//! The container's filesystem, compiled from the spec once (bundle time): the mounts with
//! their options parsed and their idmap source decided, the device nodes, the paths to mask
//! and make read-only, the propagation. The parent (`idmapped::prepare`) and the init
//! (`prepare`, `finish`) apply it; neither reads the spec.

use std::path::PathBuf;

use anyhow::{bail, ensure, Result};
use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use super::devices::{self, Dev};
use super::idmapped::{self, Source};
use super::options::Options;

/// What `rootfs` makes of a spec.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// `root.path` as the spec gives it: a destination or bind source may start with it
    /// joined to the bundle (`mounts::rootfs_paths`).
    pub root_path: PathBuf,
    /// `root.readonly`.
    pub readonly_root: bool,
    pub mounts: Vec<MountPlan>,
    /// The default devices with `linux.devices` replacing them by path.
    pub devices: Vec<Dev>,
    /// `process.cwd`, made inside the rootfs.
    pub cwd: Option<PathBuf>,
    pub readonly_paths: Vec<String>,
    /// `linux.maskedPaths`, each once (runc mounts one mask per path).
    pub masked_paths: Vec<String>,
    /// `linux.rootfsPropagation`.
    pub propagation: Option<MsFlags>,
    /// The `context=` option `linux.mountLabel` adds to a masking tmpfs.
    pub tmpfs_context: Option<String>,
    /// The container has a user namespace (new or joined): every bind source is cloned by
    /// the parent (`idmapped`).
    pub user_ns: bool,
    /// skiff runs unprivileged (rootless): it may not clone mount trees of the host's mount
    /// namespace, so the init binds what the caller can reach itself.
    pub unprivileged: bool,
    /// Device nodes are bound from the host, not made: the container or skiff itself is in
    /// a user namespace, where mknod is not allowed (runc decides the same).
    pub bind_devices: bool,
}

/// One entry of `mounts`.
#[derive(Debug, Clone)]
pub struct MountPlan {
    /// Its index in `mounts` (errors name `mounts[i]`).
    pub index: usize,
    pub mount: Mount,
    /// `options`, with `linux.mountLabel`'s context added to the data where it applies.
    pub options: Options,
    /// `type`, empty when not given.
    pub fstype: String,
    /// A bind mount (`type: bind`, or `bind`/`rbind` in the options).
    pub bind: bool,
    /// For an idmapped mount, where its mapping comes from.
    pub idmap: Option<Source>,
}

impl Plan {
    /// Compiles (and so checks) the spec's filesystem fields for `caller`.
    pub fn compile(spec: &Spec, caller: &crate::host::Caller) -> Result<Plan> {
        let unprivileged = caller.euid != 0;
        let linux = spec.linux().as_ref();
        let namespaces = linux.and_then(|l| l.namespaces().as_ref());
        let user_ns = namespaces
            .into_iter()
            .flatten()
            .any(|n| n.typ() == LinuxNamespaceType::User);
        let label = linux.and_then(|l| nonempty(l.mount_label()));
        let mut mounts = Vec::new();
        for (i, m) in spec.mounts().iter().flatten().enumerate() {
            let mp = MountPlan::compile(spec, i, m, label)?;
            if unprivileged && mp.idmap.is_some() {
                bail!(
                    "mounts[{i}]: idmapped mounts need root (the kernel lets only a process \
                     privileged over the filesystem's user namespace idmap a mount)"
                );
            }
            mounts.push(mp);
        }
        let mut devs = devices::defaults();
        for (i, d) in linux
            .and_then(|l| l.devices().as_ref())
            .into_iter()
            .flatten()
            .enumerate()
        {
            let d = devices::from_spec(i, d)?;
            devs.retain(|x| x.path != d.path);
            devs.push(d);
        }
        let mut masked_paths: Vec<String> = Vec::new();
        for p in linux
            .and_then(|l| l.masked_paths().as_ref())
            .into_iter()
            .flatten()
        {
            if !masked_paths.contains(p) {
                masked_paths.push(p.clone());
            }
        }
        let propagation = linux
            .and_then(|l| l.rootfs_propagation().as_deref())
            .filter(|p| !p.is_empty())
            .map(propagation_flag)
            .transpose()?;
        Ok(Plan {
            root_path: spec
                .root()
                .as_ref()
                .map(|r| r.path().clone())
                .unwrap_or_default(),
            readonly_root: spec
                .root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
            mounts,
            devices: devs,
            cwd: spec.process().as_ref().map(|p| p.cwd().clone()),
            readonly_paths: linux
                .and_then(|l| l.readonly_paths().clone())
                .unwrap_or_default(),
            masked_paths,
            propagation,
            tmpfs_context: mount_context(label, "tmpfs"),
            bind_devices: user_ns || caller.in_userns,
            user_ns,
            unprivileged,
        })
    }

    /// The whole tree's propagation is exactly `rprivate`: the trees the parent clones are
    /// made private rather than slaves (`idmapped::prepare`).
    pub fn rprivate(&self) -> bool {
        self.propagation == Some(MsFlags::MS_PRIVATE | MsFlags::MS_REC)
    }
}

impl MountPlan {
    fn compile(spec: &Spec, i: usize, m: &Mount, label: Option<&str>) -> Result<MountPlan> {
        ensure!(
            !m.destination().as_os_str().is_empty(),
            "mounts[{i}].destination: must not be empty"
        );
        let fstype = m.typ().clone().unwrap_or_default();
        let mut options = Options::parse(m.options().as_deref().unwrap_or_default());
        let bind = options.bind || fstype == "bind";
        let idmapped = options.idmap || m.uid_mappings().is_some() || m.gid_mappings().is_some();
        let idmap = if idmapped {
            if !bind {
                bail!("mounts[{i}]: idmapped mounts are only supported for bind mounts");
            }
            Some(idmapped::mapping_of(spec, i, m)?)
        } else {
            None
        };
        if let Some(c) = mount_context(label, &fstype) {
            options.data.push(c);
        }
        Ok(MountPlan {
            index: i,
            mount: m.clone(),
            options,
            fstype,
            bind,
            idmap,
        })
    }
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// `context="<label>"` for a filesystem mount's data, when linux.mountLabel is set and the
/// filesystem takes a context (not proc, sysfs, cgroup or mqueue, which runc leaves alone).
fn mount_context(label: Option<&str>, fstype: &str) -> Option<String> {
    let label = label?;
    if matches!(fstype, "proc" | "sysfs" | "cgroup" | "cgroup2" | "mqueue") {
        return None;
    }
    Some(format!("context=\"{label}\""))
}

fn propagation_flag(p: &str) -> Result<MsFlags> {
    Ok(match p {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        other => bail!(
            "linux.rootfsPropagation: {other:?} is not one of private, rprivate, slave, rslave, \
             shared, rshared, unbindable, runbindable"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn labels_devices_masks_and_propagation() {
        let s = spec(
            r#"{"ociVersion":"1.2.0","root":{"path":"rootfs","readonly":true},
               "mounts":[{"destination":"/t","type":"tmpfs","source":"tmpfs"},
                         {"destination":"/proc","type":"proc","source":"proc"}],
               "linux":{"mountLabel":"system_u:object_r:c","rootfsPropagation":"rprivate",
                        "maskedPaths":["/a","/b","/a"],
                        "devices":[{"path":"/dev/null","type":"c","major":1,"minor":3},
                                   {"path":"/dev/fuse","type":"c","major":10,"minor":229}]}}"#,
        );
        let p = Plan::compile(&s, &Default::default()).unwrap();
        assert!(p.readonly_root && p.rprivate() && !p.user_ns);
        assert_eq!(p.masked_paths, ["/a", "/b"]);
        assert_eq!(
            p.mounts[0].options.data,
            ["context=\"system_u:object_r:c\""]
        );
        assert!(p.mounts[1].options.data.is_empty(), "proc takes no context");
        assert_eq!(
            p.tmpfs_context.as_deref(),
            Some("context=\"system_u:object_r:c\"")
        );
        let paths: Vec<_> = p.devices.iter().map(|d| d.path.to_str().unwrap()).collect();
        assert_eq!(paths.iter().filter(|p| **p == "/dev/null").count(), 1);
        assert_eq!(paths.last(), Some(&"/dev/fuse"));
        let p = Plan::compile(&spec(r#"{"ociVersion":"1.2.0"}"#), &Default::default()).unwrap();
        assert_eq!(p.tmpfs_context, None);
    }

    #[test]
    fn refusals_name_the_field() {
        let e = Plan::compile(
            &spec(r#"{"ociVersion":"1.2.0","linux":{"rootfsPropagation":"sideways"}}"#),
            &Default::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("linux.rootfsPropagation: \"sideways\""), "{e}");
        let e = Plan::compile(
            &spec(r#"{"ociVersion":"1.2.0","mounts":[{"destination":"","type":"tmpfs"}]}"#),
            &Default::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("mounts[0].destination: must not be empty"),
            "{e}"
        );
    }
}
