//! cgroup v2. skiff is cgroup-v2-only and never writes to a v1 hierarchy: on a hybrid host it
//! uses the cgroup2 mount it finds in mountinfo (`/sys/fs/cgroup/unified` there), and a limit
//! whose controller that hierarchy lacks is an error naming the spec field.
//!
//! - [`driver`]: the seam between the lifecycle and whoever makes the cgroup: cgroupfs
//!   directly, or systemd's transient units ([`systemd`], `--systemd-cgroup`).
//! - [`mount`]: finding the hierarchy and the container's path in it (`linux.cgroupsPath`).
//! - [`manager`]: the cgroup directory: create, processes, freeze, kill, destroy.
//! - [`resources`]: `linux.resources` → interface files and values (pure).
//! - [`devices`]: device rules → the BPF_PROG_TYPE_CGROUP_DEVICE program (pure).
//! - [`keys`]: field names matched ignoring case, as runc (Go's JSON) reads them.
//! - [`apply`]: carrying a plan out on a cgroup (controllers, writes, device program).
//! - [`stats`]: the statistics `events` reports.

pub mod apply;
pub mod devices;
pub mod driver;
pub mod keys;
pub mod manager;
pub mod mount;
pub mod resources;
pub mod stats;
pub mod systemd;

use std::os::fd::BorrowedFd;
use std::path::Path;

use anyhow::Result;
use oci_spec::runtime::{LinuxResources, Spec};

pub use manager::{
    accepts_processes, cgroup_of, check_unused, destroy, domain_controllers_enabled, freeze,
    kill_all, pids, remove, Cgroup,
};
pub use mount::{find_mount, host_layout, own_cgroup, resolve};

/// The `linux.devices` paths of a spec (the nodes that replace runc's default rules).
pub fn created_devices(spec: &Spec) -> Vec<&str> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
        .filter_map(|d| d.path().to_str())
        .collect()
}

/// The plan for a new container: its resources (if any) and always the device program, as
/// runc installs one (allowing only the default devices) for a spec without rules too.
pub fn create_plan(spec: &Spec) -> Result<resources::Plan> {
    let empty = LinuxResources::default();
    let r = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .unwrap_or(&empty);
    resources::plan(r, true, &created_devices(spec))
}

/// Applies `plan` to a container cgroup; `cgroup` is the cgroup directory's fd.
pub fn apply_plan(cg: &Path, cgroup: BorrowedFd<'_>, plan: &resources::Plan) -> Result<()> {
    let (mount, _) = host_layout()?;
    apply::apply(&mount, cg, cgroup, plan)
}

/// The huge page sizes a cgroup has `hugetlb.<size>.<file>` interface files for, sorted.
pub fn hugetlb_sizes(cg: &Path, file: &str) -> Vec<String> {
    let suffix = format!(".{file}");
    let mut sizes: Vec<String> = std::fs::read_dir(cg)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| {
            Some(
                n.strip_prefix("hugetlb.")?
                    .strip_suffix(suffix.as_str())?
                    .to_string(),
            )
        })
        .filter(|size| !size.contains('.'))
        .collect();
    sizes.sort();
    sizes
}

/// The kernel refused us the cgroup tree (not ours to write).
pub fn denied(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| {
            matches!(
                io.raw_os_error(),
                Some(libc::EACCES | libc::EPERM | libc::EROFS)
            )
        })
}
