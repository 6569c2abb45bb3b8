//! Pod and container configs as kubelet builds them from a pod spec: metadata, log
//! locations (/var/log/pods layout under the work dir), cgroup parent, namespaces, security
//! context. Scenarios start from these and change what they test.

use crate::cgroup::{Driver, Qos};
use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::*;
use std::path::{Path, PathBuf};

pub const APP_IMAGE: &str = "docker.io/library/busybox:local";
pub const PAUSE_IMAGE: &str = "localhost/cri-test/pause:local";
/// Every pod of a replay carries this label (value: the handler), so a cleanup after a
/// failed step finds them all.
pub const LABEL: &str = "cri-replay";
const NAMESPACE: &str = "cri-test";

/// One pod of the scenario and where kubelet would keep its things.
pub struct Pod {
    pub uid: String,
    /// The CgroupParent given to the runtime.
    pub parent: String,
    /// /var/log/pods/<namespace>_<name>_<uid> (kubelet's layout), under the work dir.
    pub log_dir: PathBuf,
    /// The pod's volumes (emptyDir, hostPath) on the node.
    pub vol_dir: PathBuf,
    pub config: PodSandboxConfig,
}

impl Pod {
    pub fn new(work: &Path, handler: &str, name: &str, driver: Driver, qos: Qos) -> Pod {
        let uid = uid_for(handler, name);
        let parent = driver.pod_parent(qos, &uid);
        Pod::with_parent(work, handler, name, uid, parent)
    }

    /// A pod whose CgroupParent is given verbatim (the `.slice` case).
    pub fn with_parent(work: &Path, handler: &str, name: &str, uid: String, parent: String) -> Pod {
        let log_dir = work.join("logs").join(format!("{NAMESPACE}_{name}_{uid}"));
        let vol_dir = work.join("volumes").join(&uid);
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: uid.clone(),
                namespace: NAMESPACE.into(),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: log_dir.to_string_lossy().into_owned(),
            labels: [(LABEL.to_string(), handler.to_string())].into(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: parent.clone(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(default_namespaces()),
                    seccomp: Some(runtime_default()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        Pod {
            uid,
            parent,
            log_dir,
            vol_dir,
            config,
        }
    }

    pub fn ns_options(&mut self) -> &mut NamespaceOption {
        self.sandbox_security()
            .namespace_options
            .get_or_insert_with(Default::default)
    }

    pub fn sandbox_security(&mut self) -> &mut LinuxSandboxSecurityContext {
        self.config
            .linux
            .get_or_insert_with(Default::default)
            .security_context
            .get_or_insert_with(Default::default)
    }

    pub fn sysctls(&mut self) -> &mut std::collections::HashMap<String, String> {
        &mut self
            .config
            .linux
            .get_or_insert_with(Default::default)
            .sysctls
    }

    /// Kubelet creates the pod's log directory; the runtime side creates the files.
    pub fn make_dirs(&self) -> anyhow::Result<()> {
        use anyhow::Context;
        for d in [&self.log_dir, &self.vol_dir] {
            std::fs::create_dir_all(d).with_context(|| format!("mkdir {}", d.display()))?;
        }
        Ok(())
    }

    /// A container's CRI log file: <log_dir>/<name>/<attempt>.log.
    pub fn log_file(&self, c: &ContainerConfig) -> PathBuf {
        self.log_dir.join(&c.log_path)
    }
}

/// A pod UID (kubelet's are UUIDs; any unique string does), stable per handler and pod.
fn uid_for(handler: &str, name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in handler.bytes().chain([0]).chain(name.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 20) & 0xfff,
        (h ^ u64::from(std::process::id())) & 0xffff_ffff_ffff
    )
}

/// kubelet's namespaces for a pod without hostNetwork, hostIPC or shareProcessNamespace:
/// network and IPC of the pod, a PID namespace per container.
fn default_namespaces() -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Pod as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

pub fn runtime_default() -> SecurityProfile {
    SecurityProfile {
        profile_type: ProfileType::RuntimeDefault as i32,
        ..Default::default()
    }
}

/// A busybox container running `cmd`, logging to <name>/<attempt>.log, no limits.
pub fn container(name: &str, attempt: u32, cmd: &[&str]) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt,
        }),
        image: Some(ImageSpec {
            image: APP_IMAGE.into(),
            ..Default::default()
        }),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}/{attempt}.log"),
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources::default()),
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(default_namespaces()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

pub fn security(c: &mut ContainerConfig) -> &mut LinuxContainerSecurityContext {
    c.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

pub fn resources(c: &mut ContainerConfig) -> &mut LinuxContainerResources {
    c.linux
        .get_or_insert_with(Default::default)
        .resources
        .get_or_insert_with(Default::default)
}

/// A bind volume as kubelet passes emptyDir and hostPath volumes.
pub fn volume(host: &Path, container_path: &str, propagation: MountPropagation) -> Mount {
    Mount {
        container_path: container_path.into(),
        host_path: host.to_string_lossy().into_owned(),
        propagation: propagation as i32,
        ..Default::default()
    }
}
