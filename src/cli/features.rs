//! `skiff features`: the runtime-spec features document (features.md, features-linux.md).
//! Honest by construction: each list comes from the code that implements it (mount options
//! from rootfs::options, seccomp from the compiler's tables), and what skiff does not do is
//! reported as disabled.

use serde_json::{json, Value};

pub fn document() -> Value {
    let caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    let mut caps = caps;
    caps.sort();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": super::SPEC_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": crate::rootfs::options::KNOWN,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": false, "v2": true, "systemd": true, "systemdUser": true, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                            "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                               "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                   "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}},
            "netDevices": {"enabled": true}
        },
        "annotations": {
            "io.github.skiff.version": env!("CARGO_PKG_VERSION"),
            "io.github.skiff.rootless": "user namespace (own id, or /etc/subuid ranges through newuidmap); cgroupfs in a delegated subtree, the user's own systemd manager with --systemd-cgroup, or no cgroup without limits",
            "io.github.skiff.checkpoint.enabled": "true (CRIU 3.15 or newer, through criu swrk; root only)"
        },
        // org.criu.config names a file CRIU reads with the runtime's privileges.
        "potentiallyUnsafeConfigAnnotations": ["org.criu.config"]
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn document_parses_as_the_spec_features_type() {
        let v = super::document();
        let f: oci_spec::runtime::Features = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(f.oci_version_max(), super::super::SPEC_VERSION);
        assert!(v["mountOptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "rro"));
    }
}
