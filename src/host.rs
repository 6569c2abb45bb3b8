//! What skiff reads from the host before it plans a container, in one place: the JSON
//! documents it is given (size- and depth-bounded), and [`HostFacts`], the one probe of the
//! host a bundle's validation needs (the rootfs, joined namespaces, LSMs, resctrl). The
//! bundle module itself only reasons over the spec and these facts: it makes no syscalls.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::bundle::{self, Bundle, CONFIG, MAX_JSON_BYTES};
use crate::process::lsm;

/// Reads a JSON document of at most [`MAX_JSON_BYTES`]; a larger one (or an endless one, a
/// device or a pipe) is refused after reading one byte more than the limit.
pub fn read_limited(path: &Path) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    read_limited_from(f, &path.display().to_string())
}

/// [`read_limited`] from any reader (`what` names it in errors).
pub fn read_limited_from(r: impl std::io::Read, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut text = Vec::new();
    r.take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut text)
        .with_context(|| format!("reading {what}"))?;
    if text.len() as u64 > MAX_JSON_BYTES {
        bail!(
            "{what}: larger than {} MiB, the most skiff reads",
            MAX_JSON_BYTES >> 20
        );
    }
    Ok(text)
}

/// Reads `<dir>/config.json`, probes the host for it and validates it.
pub fn load_bundle(dir: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(dir)
        .with_context(|| format!("bundle directory {}", dir.display()))?;
    let path = dir.join(CONFIG);
    let text = read_limited(&path)?;
    let spec = bundle::parse(&text).with_context(|| format!("{}", path.display()))?;
    let facts = HostFacts::probe(&spec, &dir);
    bundle::compile(spec, dir, &facts).with_context(|| format!("{}", path.display()))
}

/// What the host says about a spec's references to it, gathered once before validation.
/// Failures are kept (as the message validation reports) rather than returned, so that
/// validation still reports problems in the order it checks the fields.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// `root.path` resolved against the bundle (symlinks followed) and whether it is a
    /// directory; `None` without a root.
    pub rootfs: Option<Result<(PathBuf, bool), String>>,
    /// For each namespace path the spec names: whether it exists.
    pub namespace_paths: HashMap<PathBuf, bool>,
    /// The uid_map and gid_map of the user namespace the spec joins by path, when the spec
    /// gives mappings too (they must match).
    pub joined_user_maps: Option<Result<(String, String), String>>,
    pub lsm: lsm::Host,
    /// Whether the host has a resctrl filesystem (Intel RDT / AMD QoS).
    pub resctrl: bool,
}

impl HostFacts {
    /// Probes the host for `spec`, a bundle at `dir`.
    pub fn probe(spec: &Spec, dir: &Path) -> HostFacts {
        let rootfs = spec
            .root()
            .as_ref()
            .filter(|r| !r.path().as_os_str().is_empty())
            .map(|r| {
                let path = dir.join(r.path());
                std::fs::canonicalize(&path)
                    .map(|p| {
                        let is_dir = p.is_dir();
                        (p, is_dir)
                    })
                    .map_err(|e| format!("root.path: {}: {e}", path.display()))
            });
        let linux = spec.linux().as_ref();
        let namespaces = linux.and_then(|l| l.namespaces().as_ref());
        let namespace_paths = namespaces
            .into_iter()
            .flatten()
            .filter_map(|n| n.path().clone())
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| {
                let exists = p.exists();
                (p, exists)
            })
            .collect();
        let maps = linux.is_some_and(|l| {
            l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
                || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        });
        let joined_user = namespaces
            .into_iter()
            .flatten()
            .find(|n| n.typ() == LinuxNamespaceType::User)
            .and_then(|n| n.path().clone())
            .filter(|p| !p.as_os_str().is_empty());
        let joined_user_maps = joined_user.filter(|_| maps).map(|p| user_maps(&p));
        HostFacts {
            rootfs,
            namespace_paths,
            joined_user_maps,
            lsm: lsm::Host::detect(),
            resctrl: Path::new("/sys/fs/resctrl/schemata").exists(),
        }
    }
}

fn user_maps(path: &Path) -> Result<(String, String), String> {
    let ns = std::fs::File::open(path).map_err(|e| {
        format!(
            "linux.namespaces: opening user namespace {}: {e}",
            path.display()
        )
    })?;
    crate::sys::userns::maps_of(std::os::fd::AsFd::as_fd(&ns)).map_err(|e| {
        format!(
            "linux.namespaces: reading the maps of {}: {e}",
            path.display()
        )
    })
}
