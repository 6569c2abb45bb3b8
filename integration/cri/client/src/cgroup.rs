//! kubelet's side of pod cgroups: the CgroupParent a pod gets for the node's cgroup driver,
//! the pod cgroup kubelet creates (with pod-level limits) before RunPodSandbox, and its
//! removal once the pod is gone.
//!
//! cgroupfs: parents are directories (`/kubepods/burstable/pod<uid>`) kubelet makes itself.
//! systemd (containerd's SystemdCgroup = true, kubelet's --cgroup-driver=systemd): parents are
//! slices (`kubepods-burstable-pod<uid>.slice`, the uid's dashes as underscores), kubelet
//! has systemd make them, and a container lands in `<slice>/cri-containerd-<id>.scope`.

use crate::kernel::{cg_path, cg_read};
use anyhow::{bail, ensure, Context, Result};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Driver {
    Cgroupfs,
    Systemd,
}

/// Where systemd puts a slice: `a-b-c.slice` in `/a.slice/a-b.slice/a-b-c.slice`.
pub fn slice_path(slice: &str) -> String {
    let name = slice.strip_suffix(".slice").unwrap_or(slice);
    let parts: Vec<&str> = name.split('-').collect();
    (1..=parts.len())
        .map(|i| format!("/{}.slice", parts[..i].join("-")))
        .collect()
}

fn systemctl(args: &[&str]) -> Result<()> {
    let out = std::process::Command::new("systemctl")
        .args(args)
        .output()
        .context("running systemctl")?;
    ensure!(
        out.status.success(),
        "systemctl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// A pod's QoS class: kubelet groups pod cgroups by it.
#[derive(Clone, Copy)]
pub enum Qos {
    Burstable,
    BestEffort,
}

impl Driver {
    pub fn parse(s: &str) -> Result<Driver> {
        match s {
            "cgroupfs" => Ok(Driver::Cgroupfs),
            "systemd" => Ok(Driver::Systemd),
            _ => bail!("--driver: unknown cgroup driver {s:?} (cgroupfs or systemd)"),
        }
    }

    /// The CgroupParent kubelet passes in LinuxPodSandboxConfig for a pod.
    pub fn pod_parent(self, qos: Qos, uid: &str) -> String {
        match (self, qos) {
            (Driver::Cgroupfs, Qos::Burstable) => format!("/kubepods/burstable/pod{uid}"),
            (Driver::Cgroupfs, Qos::BestEffort) => format!("/kubepods/besteffort/pod{uid}"),
            (Driver::Systemd, Qos::Burstable) => {
                format!("kubepods-burstable-pod{}.slice", uid.replace('-', "_"))
            }
            (Driver::Systemd, Qos::BestEffort) => {
                format!("kubepods-besteffort-pod{}.slice", uid.replace('-', "_"))
            }
        }
    }

    /// The cgroup (relative to the cgroup root) of the pod whose CgroupParent is `parent`.
    pub fn pod_cgroup(self, parent: &str) -> String {
        match self {
            Driver::Cgroupfs => parent.to_string(),
            Driver::Systemd => slice_path(parent),
        }
    }

    /// The `linux.cgroupsPath` containerd writes for `id` under `parent`.
    pub fn cgroups_path(self, parent: &str, id: &str) -> String {
        match self {
            Driver::Cgroupfs => format!("{parent}/{id}"),
            Driver::Systemd => format!("{parent}:cri-containerd:{id}"),
        }
    }

    /// The cgroup (relative to the cgroup root) of a container or sandbox `id` under `parent`.
    pub fn container_cgroup(self, parent: &str, id: &str) -> String {
        match self {
            Driver::Cgroupfs => format!("{parent}/{id}"),
            Driver::Systemd => format!("{}/cri-containerd-{id}.scope", slice_path(parent)),
        }
    }

    /// Creates the pod cgroup as kubelet's cgroupfs manager does: every missing level, the
    /// available controllers enabled in each ancestor (not in the pod cgroup itself: the
    /// runtime enables what the containers need), and the pod-level limits.
    /// With systemd: the slice unit (its parents follow), and the limits as its properties.
    pub fn create_pod_cgroup(self, parent: &str, memory_max: Option<u64>) -> Result<()> {
        match self {
            Driver::Systemd => {
                systemctl(&["start", parent])?;
                if let Some(m) = memory_max {
                    systemctl(&[
                        "set-property",
                        "--runtime",
                        parent,
                        &format!("MemoryMax={m}"),
                    ])?;
                }
                Ok(())
            }
            Driver::Cgroupfs => {
                let mut cur = String::new();
                let parts: Vec<&str> = parent.split('/').filter(|p| !p.is_empty()).collect();
                for (i, part) in parts.iter().enumerate() {
                    let controllers = cg_read(&cur, "cgroup.controllers")?;
                    let sub = cg_path(&cur).join("cgroup.subtree_control");
                    for c in controllers.split_whitespace() {
                        std::fs::write(&sub, format!("+{c}"))
                            .with_context(|| format!("enable {c} in {}", sub.display()))?;
                    }
                    cur = format!("{cur}/{part}");
                    let dir = cg_path(&cur);
                    if !dir.exists() {
                        std::fs::create_dir(&dir)
                            .with_context(|| format!("mkdir {}", dir.display()))?;
                    }
                    if i == parts.len() - 1 {
                        if let Some(m) = memory_max {
                            let f = dir.join("memory.max");
                            std::fs::write(&f, m.to_string())
                                .with_context(|| format!("write {}", f.display()))?;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Removes the pod cgroup once the pod is gone; it must be empty by then (the runtime
    /// removed its sandbox's and containers' cgroups).
    pub fn remove_pod_cgroup(self, parent: &str) -> Result<()> {
        match self {
            Driver::Cgroupfs | Driver::Systemd => {
                let dir = cg_path(&self.pod_cgroup(parent));
                if !dir.exists() {
                    return Ok(());
                }
                let left: Vec<String> = std::fs::read_dir(&dir)?
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                if !left.is_empty() {
                    bail!(
                        "pod cgroup {} still has child cgroups: {}",
                        dir.display(),
                        left.join(" ")
                    );
                }
                if self == Driver::Systemd {
                    return systemctl(&["stop", parent]);
                }
                std::fs::remove_dir(&dir).with_context(|| format!("rmdir {}", dir.display()))
            }
        }
    }

    /// kubelet's QoS-level cgroups, which hold the pods' cgroups.
    pub fn qos_cgroups(self) -> [&'static str; 2] {
        match self {
            Driver::Cgroupfs => ["/kubepods/burstable", "/kubepods/besteffort"],
            Driver::Systemd => [
                "/kubepods.slice/kubepods-burstable.slice",
                "/kubepods.slice/kubepods-besteffort.slice",
            ],
        }
    }

    /// Removes a pod cgroup a failed step left (`dir`: its directory), whatever is in it.
    pub fn remove_leftover(self, dir: &std::path::Path) {
        match self {
            Driver::Cgroupfs => {
                let _ = std::fs::remove_dir(dir);
            }
            Driver::Systemd => {
                if let Some(unit) = dir.file_name().and_then(|n| n.to_str()) {
                    let _ = systemctl(&["stop", unit]);
                }
            }
        }
    }

    /// Removes kubelet's QoS levels when the replay ends (kubelet keeps them; the test
    /// leaves nothing behind).
    pub fn remove_qos_cgroups(self) {
        match self {
            Driver::Cgroupfs => {
                for d in ["/kubepods/burstable", "/kubepods/besteffort", "/kubepods"] {
                    let _ = std::fs::remove_dir(cg_path(d));
                }
            }
            Driver::Systemd => {
                for s in [
                    "kubepods-burstable.slice",
                    "kubepods-besteffort.slice",
                    "kubepods.slice",
                ] {
                    let _ = systemctl(&["stop", s]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slices_nest_by_their_dashes() {
        assert_eq!(
            super::slice_path("kubepods-burstable-pod1_2.slice"),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1_2.slice"
        );
    }
}
