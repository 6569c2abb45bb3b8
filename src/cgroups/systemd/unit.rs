//! Which unit a container gets under `--systemd-cgroup`, from its `cgroupsPath`, with runc's
//! rules: `"<slice>:<prefix>:<name>"` is the transient scope `<prefix>-<name>.scope` in
//! `<slice>` (a name ending in `.slice` is a slice unit of that name instead); an empty
//! slice is `system.slice` (`user.slice` for a user's manager), an empty path is
//! `<that slice>:<runtime>:<id>`. The cgroup is where systemd puts such a unit:
//! `a-b.slice` lives in `a.slice/a-b.slice/`, below the manager's own cgroup.

use std::path::PathBuf;

use anyhow::{bail, Result};

/// The prefix of a scope for an empty `cgroupsPath` (runc's is "runc"; this runtime's name).
pub const DEFAULT_PREFIX: &str = "skiff";
pub const DEFAULT_SLICE: &str = "system.slice";
/// The default slice under a user's manager (runc's too).
pub const USER_SLICE: &str = "user.slice";

/// A container's systemd unit and where its cgroup is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// `prefix-name.scope`, or `name.slice`.
    pub name: String,
    /// The slice the unit goes into (`Slice=` of a scope).
    pub slice: String,
    /// The unit's cgroup, relative to its manager's cgroup (the hierarchy's root for the
    /// system's manager).
    pub rel: PathBuf,
}

impl Unit {
    pub fn is_slice(&self) -> bool {
        self.name.ends_with(".slice")
    }

    /// The unit for `cgroups_path` (linux.cgroupsPath) of container `id`; an empty slice is
    /// `default_slice`.
    pub fn from_cgroups_path(
        cgroups_path: Option<&str>,
        id: &str,
        default_slice: &str,
    ) -> Result<Unit> {
        let path = cgroups_path.unwrap_or("");
        let (slice, prefix, name) = if path.is_empty() {
            (default_slice, DEFAULT_PREFIX, id)
        } else {
            match path.split(':').collect::<Vec<_>>()[..] {
                [s, p, n] => (s, p, n),
                _ => bail!(
                    "linux.cgroupsPath: expected cgroupsPath to be of format \
                     \"slice:prefix:name\" for systemd cgroups, got {path:?} instead"
                ),
            }
        };
        let slice = if slice.is_empty() {
            default_slice
        } else {
            slice
        };
        let name = if name.is_empty() { id } else { name };
        for (what, v) in [("slice", slice), ("prefix", prefix), ("name", name)] {
            if v.contains('/') || v.chars().any(char::is_control) {
                bail!("linux.cgroupsPath: the {what} {v:?} of {path:?} is not a unit name part");
            }
        }
        if name.ends_with(".slice") {
            // systemd places a slice by its name, whatever slice it was asked for.
            return Ok(Unit {
                name: name.to_string(),
                slice: slice.to_string(),
                rel: expand_slice(name)?,
            });
        }
        let unit = if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        Ok(Unit {
            rel: expand_slice(slice)?.join(&unit),
            name: unit,
            slice: slice.to_string(),
        })
    }
}

/// Where systemd puts a slice's cgroup: `a-b-c.slice` → `a.slice/a-b.slice/a-b-c.slice`;
/// `-.slice` is the root.
pub fn expand_slice(slice: &str) -> Result<PathBuf> {
    let invalid = || anyhow::anyhow!("linux.cgroupsPath: invalid slice name {slice:?}");
    let base = slice.strip_suffix(".slice").ok_or_else(invalid)?;
    if base.is_empty() || slice.contains('/') {
        return Err(invalid());
    }
    if base == "-" {
        return Ok(PathBuf::new());
    }
    let mut path = PathBuf::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return Err(invalid());
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
        prefix.push('-');
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(p: &str) -> Unit {
        Unit::from_cgroups_path(Some(p), "c1", DEFAULT_SLICE).unwrap()
    }

    #[test]
    fn path_forms_name_the_unit_and_its_cgroup_as_runc_does() {
        let u = unit("system.slice:docker:abc");
        assert_eq!(u.name, "docker-abc.scope");
        assert_eq!(u.slice, "system.slice");
        assert_eq!(u.rel, PathBuf::from("system.slice/docker-abc.scope"));
        let u = unit("machine-smoke.slice:runc:c4");
        assert_eq!(
            u.rel,
            PathBuf::from("machine.slice/machine-smoke.slice/runc-c4.scope")
        );
        // Empty parts: runc's defaults.
        let u = Unit::from_cgroups_path(None, "c5", DEFAULT_SLICE).unwrap();
        assert_eq!(u.name, "skiff-c5.scope");
        assert_eq!(u.rel, PathBuf::from("system.slice/skiff-c5.scope"));
        let u = Unit::from_cgroups_path(None, "c5", USER_SLICE).unwrap();
        assert_eq!(u.rel, PathBuf::from("user.slice/skiff-c5.scope"));
        let u = unit(":p:");
        assert_eq!(u.name, "p-c1.scope");
        assert_eq!(u.slice, "system.slice");
        assert_eq!(unit("-.slice::n").rel, PathBuf::from("n.scope"));
        // A name ending in .slice is a slice unit, placed by its own name.
        let u = unit("system.slice:x:kubepods-burstable.slice");
        assert!(u.is_slice());
        assert_eq!(
            u.rel,
            PathBuf::from("kubepods.slice/kubepods-burstable.slice")
        );
    }

    #[test]
    fn other_forms_are_refused_with_runcs_wording() {
        for bad in ["/smoke/c6", "a:b", "a:b:c:d"] {
            let e = Unit::from_cgroups_path(Some(bad), "c", DEFAULT_SLICE)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("\"slice:prefix:name\" for systemd cgroups"),
                "{e}"
            );
        }
        for bad in ["system:p:n", "a--b.slice:p:n", "-a.slice:p:n", ".slice:p:n"] {
            let e = Unit::from_cgroups_path(Some(bad), "c", DEFAULT_SLICE)
                .unwrap_err()
                .to_string();
            assert!(e.contains("invalid slice name"), "{bad}: {e}");
        }
    }
}
