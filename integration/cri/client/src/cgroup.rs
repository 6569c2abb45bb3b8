//! kubelet's side of pod cgroups: the CgroupParent a pod gets for the node's cgroup driver,
//! the pod cgroup kubelet creates (with pod-level limits) before RunPodSandbox, and its
//! removal once the pod is gone.
//!
//! Only the cgroupfs driver exists so far. The systemd driver (containerd's SystemdCgroup =
//! true, kubelet's --cgroup-driver=systemd) slots in as a second variant: parents become
//! slices (`kubepods-burstable-pod<uid>.slice`), kubelet creates them as systemd units, and a
//! container lands in `<slice>/cri-containerd-<id>.scope`; it needs systemd as the guest's
//! init.

use crate::kernel::{cg_path, cg_read};
use anyhow::{bail, Context, Result};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Driver {
    Cgroupfs,
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
            "systemd" => bail!(
                "--driver systemd: not yet (needs systemd as the guest's init, SystemdCgroup = true and slice parents)"
            ),
            _ => bail!("--driver: unknown cgroup driver {s:?} (cgroupfs or systemd)"),
        }
    }

    /// The CgroupParent kubelet passes in LinuxPodSandboxConfig for a pod.
    pub fn pod_parent(self, qos: Qos, uid: &str) -> String {
        match (self, qos) {
            (Driver::Cgroupfs, Qos::Burstable) => format!("/kubepods/burstable/pod{uid}"),
            (Driver::Cgroupfs, Qos::BestEffort) => format!("/kubepods/besteffort/pod{uid}"),
        }
    }

    /// The cgroup (relative to the cgroup root) of a container or sandbox `id` under `parent`.
    pub fn container_cgroup(self, parent: &str, id: &str) -> String {
        match self {
            Driver::Cgroupfs => format!("{parent}/{id}"),
        }
    }

    /// Creates the pod cgroup as kubelet's cgroupfs manager does: every missing level, the
    /// available controllers enabled in each ancestor (not in the pod cgroup itself: the
    /// runtime enables what the containers need), and the pod-level limits.
    pub fn create_pod_cgroup(self, parent: &str, memory_max: Option<u64>) -> Result<()> {
        match self {
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
            Driver::Cgroupfs => {
                let dir = cg_path(parent);
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
                std::fs::remove_dir(&dir).with_context(|| format!("rmdir {}", dir.display()))
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
        }
    }
}
