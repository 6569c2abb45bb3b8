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
    /// Who runs skiff, for the id maps an unprivileged caller may write.
    pub caller: Caller,
}

/// The caller's ids and, when it is not root and the spec maps ids, the subordinate ranges
/// `/etc/subuid` and `/etc/subgid` grant it (what newuidmap/newgidmap allow).
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub euid: u32,
    pub egid: u32,
    /// skiff itself runs in a user namespace (rootless podman runs its runtime as root of
    /// one): device nodes cannot be made, only bound.
    pub in_userns: bool,
    /// (first, count) ranges.
    pub subuids: Vec<(u32, u32)>,
    pub subgids: Vec<(u32, u32)>,
    /// newuidmap and newgidmap, where found in $PATH.
    pub newuidmap: Option<PathBuf>,
    pub newgidmap: Option<PathBuf>,
}

impl Caller {
    pub fn probe(with_maps: bool) -> Caller {
        let euid = nix::unistd::geteuid().as_raw();
        let egid = nix::unistd::getegid().as_raw();
        let mut c = Caller {
            euid,
            egid,
            in_userns: in_user_namespace(),
            ..Caller::default()
        };
        if euid == 0 || !with_maps {
            return c;
        }
        let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(euid))
            .ok()
            .flatten()
            .map(|u| u.name);
        let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
        c.subuids = subordinate_ranges(&read("/etc/subuid"), euid, name.as_deref());
        c.subgids = subordinate_ranges(&read("/etc/subgid"), euid, name.as_deref());
        c.newuidmap = find_in_path("newuidmap");
        c.newgidmap = find_in_path("newgidmap");
        c
    }
}

/// The `name-or-uid:first:count` lines of a subuid(5)/subgid(5) file that are the user's.
pub fn subordinate_ranges(text: &str, uid: u32, name: Option<&str>) -> Vec<(u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().splitn(3, ':');
            let (who, first, count) = (f.next()?, f.next()?, f.next()?);
            let mine = Some(who) == name || who.parse::<u32>().ok() == Some(uid);
            mine.then_some((first.parse().ok()?, count.parse().ok()?))
        })
        .collect()
}

fn find_in_path(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
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
            caller: Caller::probe(maps),
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

/// Whether skiff runs in a user namespace other than the initial one (its uid_map is not
/// the identity over every id). Read once per process: several decisions ask.
pub fn in_user_namespace() -> bool {
    static IN_USERNS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN_USERNS.get_or_init(|| {
        std::fs::read_to_string("/proc/self/uid_map")
            .map(|m| {
                let f: Vec<&str> = m.split_whitespace().collect();
                f != ["0", "0", "4294967295"]
            })
            .unwrap_or(false)
    })
}

/// The state root without `--root`: `$XDG_RUNTIME_DIR/skiff` for a non-root user (or root
/// in a user namespace, unless `$USER` says root: rootless podman runs the runtime so),
/// else `/run/skiff`; runc's rule.
pub fn default_state_root() -> PathBuf {
    let honour_xdg = !nix::unistd::geteuid().is_root()
        || (in_user_namespace() && std::env::var("USER").map_or(true, |u| u != "root"));
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) if honour_xdg => Path::new(&dir).join("skiff"),
        _ => PathBuf::from("/run/skiff"),
    }
}

/// `--rootless auto`: not root; or root in a user namespace, unless with the systemd driver
/// the user bus belongs to root (a rootful systemd inside the namespace); runc's rule. runc
/// asks the bus (`busctl --user status`) for its owner; skiff takes the user its own euid
/// maps to, with a user bus at hand (without one, runc assumes root too).
pub fn rootless_by_default(systemd_cgroup: bool) -> bool {
    let euid = nix::unistd::geteuid().as_raw();
    if euid != 0 {
        return true;
    }
    if !in_user_namespace() {
        return false;
    }
    !systemd_cgroup
        || (outer_uid(euid) != 0
            && crate::cgroups::systemd::bus::user_bus_path().is_some_and(|p| p.exists()))
}

/// The uid that `uid` of our user namespace is in the parent namespace (itself outside any
/// user namespace, or when unmapped: the caller then learns it from the refusal).
pub fn outer_uid(uid: u32) -> u32 {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    map_outward(&map, uid).unwrap_or(uid)
}

fn map_outward(map: &str, id: u32) -> Option<u32> {
    map.lines().find_map(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let [inside, outside, count] = f[..] else {
            return None;
        };
        let id = u64::from(id);
        (id >= inside && id < inside + count)
            .then(|| u32::try_from(outside + (id - inside)).ok())
            .flatten()
    })
}

/// A container's config as its state directory recorded it at create, probed and compiled
/// again (checkpoint needs its mounts and namespaces as the container has them).
pub fn compile_recorded(spec: Spec, bundle_dir: &Path) -> Result<Bundle> {
    let facts = HostFacts::probe(&spec, bundle_dir);
    bundle::compile(spec, bundle_dir.to_path_buf(), &facts)
        .context("the container's recorded config")
}

#[cfg(test)]
mod tests {
    #[test]
    fn subordinate_ranges_by_name_or_uid() {
        let text = "alice:100000:65536\nbob:165536:65536\n1000:300000:10\n# x\nbad line\n";
        assert_eq!(
            super::subordinate_ranges(text, 1000, Some("alice")),
            [(100000, 65536), (300000, 10)]
        );
        assert_eq!(super::subordinate_ranges(text, 1001, None), []);
    }

    #[test]
    fn ids_map_outward_through_the_uid_map() {
        let map = "         0       2000          1\n         1     300000      65536\n";
        assert_eq!(super::map_outward(map, 0), Some(2000));
        assert_eq!(super::map_outward(map, 1), Some(300000));
        assert_eq!(super::map_outward(map, 65536), Some(365535));
        assert_eq!(super::map_outward(map, 65537), None);
        let init = "         0          0 4294967295\n";
        assert_eq!(super::map_outward(init, 4242), Some(4242));
    }
}
