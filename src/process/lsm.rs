//! Linux security module labels: `process.selinuxLabel`, `process.apparmorProfile` and
//! `linux.mountLabel`.
//!
//! When the LSM is enabled, the process label is requested for the next execve by writing
//! the init's own attr file through the private procfs handle (never the container's /proc):
//! `attr/exec` with the SELinux context, `attr/apparmor/exec` (or, on kernels without the
//! per-LSM directory, `attr/exec`) with `exec <profile>`. The mount label goes into the data
//! of every filesystem the init mounts as `context="<label>"`.
//!
//! When the LSM is not enabled, asking for one of its labels is an error naming the field:
//! running the container without the confinement it asked for would be silent weakening.

use std::path::Path;

use anyhow::{bail, Result};
use oci_spec::runtime::{Process, Spec};

use crate::process::procfs::Proc;

/// Which LSMs this host has enabled (and where AppArmor takes exec requests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Host {
    pub selinux: bool,
    pub apparmor: bool,
    /// /proc/self/attr/apparmor exists (Linux 5.8+): AppArmor's own attr directory.
    pub apparmor_dir: bool,
}

impl Host {
    /// Looks at this host: /sys/kernel/security/lsm when securityfs is mounted, otherwise
    /// the LSMs' own markers (/sys/fs/selinux, /sys/module/apparmor/parameters/enabled).
    pub fn detect() -> Host {
        Host::detect_at(Path::new("/"))
    }

    fn detect_at(root: &Path) -> Host {
        let read = |p: &str| std::fs::read_to_string(root.join(p)).ok();
        let list = read("sys/kernel/security/lsm").unwrap_or_default();
        let listed = |name: &str| list.trim().split(',').any(|l| l == name);
        let selinux = listed("selinux") || root.join("sys/fs/selinux/enforce").exists();
        let apparmor = listed("apparmor")
            || read("sys/module/apparmor/parameters/enabled").is_some_and(|s| s.trim() == "Y");
        Host {
            selinux,
            apparmor,
            apparmor_dir: root.join("proc/self/attr/apparmor").is_dir(),
        }
    }
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fn check_label(field: &str, s: &str) -> Result<()> {
    if s.contains(['\n', '\0', '"']) {
        bail!("{field}: {s:?} contains a newline, NUL or quote");
    }
    Ok(())
}

/// The LSM fields of a process (the container's, or one given to `exec`).
pub fn validate_process(p: &Process, host: Host) -> Result<()> {
    if let Some(l) = nonempty(p.selinux_label()) {
        if !host.selinux {
            bail!("process.selinuxLabel: SELinux is not enabled on this host");
        }
        check_label("process.selinuxLabel", l)?;
    }
    if let Some(l) = nonempty(p.apparmor_profile()) {
        if !host.apparmor {
            bail!("process.apparmorProfile: AppArmor is not enabled on this host");
        }
        check_label("process.apparmorProfile", l)?;
    }
    Ok(())
}

/// linux.mountLabel checked against the host (the process's labels are checked as the
/// process plan is compiled, `exec_writes`).
pub fn validate(spec: &Spec, host: Host) -> Result<()> {
    if let Some(l) = spec
        .linux()
        .as_ref()
        .and_then(|l| nonempty(l.mount_label()))
    {
        if !host.selinux {
            bail!("linux.mountLabel: SELinux is not enabled on this host");
        }
        check_label("linux.mountLabel", l)?;
    }
    Ok(())
}

/// The writes (file below /proc/<self>/, data) that request the exec labels.
pub fn exec_writes(p: &Process, host: Host) -> Result<Vec<(&'static str, String)>> {
    validate_process(p, host)?;
    let mut out = Vec::new();
    if let Some(label) = nonempty(p.selinux_label()) {
        out.push(("attr/exec", label.to_string()));
    }
    if let Some(profile) = nonempty(p.apparmor_profile()) {
        let file = if host.apparmor_dir {
            "attr/apparmor/exec"
        } else {
            "attr/exec"
        };
        out.push((file, format!("exec {profile}")));
    }
    Ok(out)
}

/// Requests the exec labels (`exec_writes`, compiled into the process plan) through the
/// private procfs handle, while the process still has its capabilities.
pub fn apply_labels(labels: &[(&'static str, String)], proc: &Proc) -> Result<()> {
    for (file, data) in labels {
        let field = if data.starts_with("exec ") {
            "process.apparmorProfile"
        } else {
            "process.selinuxLabel"
        };
        proc.write_self(file, data)
            .map_err(|e| e.context(format!("{field}: requesting the label for exec")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(process: &str, linux: &str) -> Spec {
        let j = format!(
            r#"{{"ociVersion":"1.2.0","process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}{process}}},"linux":{{{linux}}}}}"#
        );
        serde_json::from_str(&j).unwrap()
    }

    const NONE: Host = Host {
        selinux: false,
        apparmor: false,
        apparmor_dir: false,
    };

    #[test]
    fn absent_lsm_is_a_clear_error_naming_the_field() {
        let s = spec(r#","selinuxLabel":"system_u:system_r:container_t:s0""#, "");
        let e = validate_process(s.process().as_ref().unwrap(), NONE)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "process.selinuxLabel: SELinux is not enabled on this host"
        );
        let s = spec(r#","apparmorProfile":"runc-default""#, "");
        let e = validate_process(s.process().as_ref().unwrap(), NONE)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("process.apparmorProfile:"), "{e}");
        let e = validate(&spec("", r#""mountLabel":"system_u:object_r:x:s0""#), NONE)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("linux.mountLabel:"), "{e}");
        assert!(validate(&spec("", ""), NONE).is_ok());
    }

    #[test]
    fn exec_label_writes() {
        let s = spec(
            r#","selinuxLabel":"system_u:system_r:container_t:s0","apparmorProfile":"prof""#,
            "",
        );
        let all = Host {
            selinux: true,
            apparmor: true,
            apparmor_dir: true,
        };
        assert_eq!(
            exec_writes(s.process().as_ref().unwrap(), all).unwrap(),
            vec![
                ("attr/exec", "system_u:system_r:container_t:s0".to_string()),
                ("attr/apparmor/exec", "exec prof".to_string()),
            ]
        );
        let old = Host {
            apparmor_dir: false,
            ..all
        };
        assert_eq!(
            exec_writes(s.process().as_ref().unwrap(), old).unwrap()[1],
            ("attr/exec", "exec prof".into())
        );
    }

    #[test]
    fn detection_reads_the_lsm_list_and_markers() {
        let d = std::env::temp_dir().join(format!("skiff-lsm-{}", std::process::id()));
        std::fs::create_dir_all(d.join("sys/kernel/security")).unwrap();
        std::fs::write(
            d.join("sys/kernel/security/lsm"),
            "lockdown,capability,apparmor\n",
        )
        .unwrap();
        let h = Host::detect_at(&d);
        assert!(h.apparmor && !h.selinux);
        std::fs::remove_dir_all(&d).unwrap();
        assert_eq!(Host::detect_at(Path::new("/nonexistent")), NONE);
    }
}
