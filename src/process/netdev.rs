//! `linux.netDevices`: host interfaces moved into the container's network namespace, under
//! the name the entry gives (or their own), as runc does: the interface is taken down, moved
//! and renamed in one RTM_NEWLINK request, its permanent global addresses (which the kernel
//! drops on the move) are added again inside, and it is brought up there.
//!
//! The parent does it as soon as the container's network namespace exists and before the
//! init is told to go on, so the hooks and the init's sysctls see the device. Nothing is
//! moved back on delete: when the namespace goes away with the container the kernel returns
//! physical devices to the host's initial namespace and destroys virtual ones (runc leaves it
//! to the kernel the same way).

use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{bail, Context, Result};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::process::namespaces::Plan;
use crate::sys::netlink::{Addr, Link, Route};

/// (host name, name in the container), sorted by host name.
fn devices(spec: &Spec) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.net_devices().as_ref())
        .into_iter()
        .flatten()
        .map(|(host, d)| {
            let inside = d
                .name()
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(host);
            (host.clone(), inside.to_string())
        })
        .collect();
    v.sort();
    v
}

fn check_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name.contains(['/', ':', '\0'])
        || name.chars().any(char::is_whitespace)
    {
        bail!("{field}: {name:?} is not a valid interface name (1-15 characters, no '/', ':' or spaces)");
    }
    Ok(())
}

/// linux.netDevices as (host name, name in the container), sorted by host name, checked:
/// names valid, no two devices with one name inside, and a network namespace to move into.
pub fn compile(spec: &Spec) -> Result<Vec<(String, String)>> {
    let devs = devices(spec);
    if devs.is_empty() {
        return Ok(devs);
    }
    if !crate::process::sysctl::Scope::of(spec)?.net {
        bail!(
            "linux.netDevices: moving network devices needs a network namespace (other than \
             the runtime's) in linux.namespaces"
        );
    }
    let mut seen = HashSet::new();
    for (host, inside) in &devs {
        let field = format!("linux.netDevices.{host}");
        check_name(&field, host)?;
        check_name(&format!("{field}.name"), inside)?;
        if !seen.insert(inside.clone()) {
            bail!("{field}.name: {inside:?} is the container name of two devices");
        }
    }
    Ok(devs)
}

/// The moments in `process::parent` at which the network namespace may first be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Right after clone3 (no extra fork).
    Cloned,
    /// The forked init reported its pid (all namespaces are set up by then).
    Forked,
    /// The init is ready (the namespace was unshared by the child after clone3).
    Ready,
}

/// Devices moved into a container's network namespace. Unless [`Attached::keep`] is
/// called, dropping it moves them back to the runtime's namespace under their host names
/// (the spec requires reverting the move when creation fails; a virtual device would
/// otherwise die with the namespace).
#[derive(Debug)]
pub struct Attached {
    netns: OwnedFd,
    /// (host name, name inside, addresses to restore), in the order they were moved.
    moved: Vec<(String, String, Vec<Addr>)>,
}

impl Attached {
    /// Creation succeeded: the devices stay in the container.
    pub fn keep(mut self) {
        self.moved.clear();
    }

    fn revert(&mut self) -> Result<()> {
        if self.moved.is_empty() {
            return Ok(());
        }
        let host = std::fs::File::open("/proc/self/ns/net").context("opening our netns")?;
        let mut inside = Route::open_in(self.netns.as_fd())?;
        let mut outside = Route::open()?;
        for (name, new, addrs) in self.moved.drain(..).rev() {
            let index = inside.index_of(&new)?;
            inside.set_up(Link::Index(index), false)?;
            inside.move_to(index, host.as_fd(), &name)?;
            let index = outside.index_of(&name)?;
            for a in &addrs {
                outside.add_address(index, a)?;
            }
            outside.set_up(Link::Index(index), true)?;
        }
        Ok(())
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Err(e) = self.revert() {
            crate::logging::warn(&format!(
                "linux.netDevices: moving devices back after a failed create: {e:#}"
            ));
        }
    }
}

/// Moves the devices if `stage` is the one at which this plan's network namespace exists
/// (exactly one stage is, for any plan). On failure, what was already moved is moved back.
pub fn attach(
    devs: &[(String, String)],
    plan: &Plan,
    pid: i32,
    stage: Stage,
) -> Result<Option<Attached>> {
    if devs.is_empty() {
        return Ok(None);
    }
    let joined = plan
        .join
        .iter()
        .find(|j| j.typ == LinuxNamespaceType::Network);
    let now = match stage {
        Stage::Cloned => {
            !plan.fork && (joined.is_some() || plan.clone.contains(CloneFlags::CLONE_NEWNET))
        }
        Stage::Forked => plan.fork,
        Stage::Ready => !plan.fork && plan.unshare.contains(CloneFlags::CLONE_NEWNET),
    };
    if !now {
        return Ok(None);
    }
    let netns = match joined {
        Some(j) => j.fd.try_clone(),
        None => std::fs::File::open(format!("/proc/{pid}/ns/net")).map(OwnedFd::from),
    }
    .context("linux.netDevices: opening the container's network namespace")?;
    let mut done = Attached {
        netns,
        moved: Vec::new(),
    };
    let mut host = Route::open().context("linux.netDevices: opening a netlink socket")?;
    let mut inside = Route::open_in(done.netns.as_fd())
        .context("linux.netDevices: opening a netlink socket in the container")?;
    for (name, new) in devs {
        let field = format!("linux.netDevices.{name}");
        let index = nix::net::if_::if_nametoindex(name.as_str())
            .with_context(|| format!("{field}: no such interface on the host"))?
            as i32;
        let addrs = host
            .addresses(index)
            .with_context(|| format!("{field}: listing its addresses"))?;
        host.set_up(Link::Index(index), false)
            .with_context(|| format!("{field}: taking it down"))?;
        host.move_to(index, done.netns.as_fd(), new)
            .with_context(|| format!("{field}: moving it into the container as {new:?}"))?;
        let addrs: Vec<Addr> = addrs
            .into_iter()
            .filter(|a| a.is_permanent_global())
            .collect();
        done.moved.push((name.clone(), new.clone(), addrs.clone()));
        let index = inside
            .index_of(new)
            .with_context(|| format!("{field}: finding {new:?} in the container"))?;
        for a in &addrs {
            inside
                .add_address(index, a)
                .with_context(|| format!("{field}: adding its address back in the container"))?;
        }
        inside
            .set_up(Link::Name(new), true)
            .with_context(|| format!("{field}: bringing {new:?} up in the container"))?;
    }
    Ok(Some(done))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(linux: &str) -> Spec {
        serde_json::from_str(&format!(r#"{{"ociVersion":"1.2.0","linux":{{{linux}}}}}"#)).unwrap()
    }

    #[test]
    fn rules() {
        let ok = spec(
            r#""namespaces":[{"type":"network"}],"netDevices":{"eth9":{"name":"ctr0"},"eth8":{}}"#,
        );
        assert!(compile(&ok).is_ok());
        assert_eq!(
            devices(&ok),
            vec![
                ("eth8".into(), "eth8".into()),
                ("eth9".into(), "ctr0".into())
            ]
        );
        let e = compile(&spec(r#""netDevices":{"eth9":{}}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("network namespace"), "{e}");
        let e = compile(&spec(
            r#""namespaces":[{"type":"network"}],"netDevices":{"eth9":{"name":"a/b"}}"#,
        ))
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("linux.netDevices.eth9.name:"), "{e}");
        let e = compile(&spec(
            r#""namespaces":[{"type":"network"}],"netDevices":{"a":{"name":"x"},"b":{"name":"x"}}"#,
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("two devices"), "{e}");
    }
}
