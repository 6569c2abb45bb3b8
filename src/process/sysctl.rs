//! Which `linux.sysctl` keys a container may set. /proc/sys is only partly namespaced: a key
//! is allowed only when the namespace that scopes it is the container's own (new, or joined
//! by path), otherwise the write would change the host. The rules are runc's:
//!
//! * the System V IPC keys (`kernel.msg*`, `kernel.sem`, `kernel.shm*`) and `fs.mqueue.*`
//!   need an ipc namespace;
//! * `net.*` needs a network namespace that is not the runtime's own;
//! * `kernel.domainname` needs a uts namespace, `kernel.hostname` is refused (the spec's
//!   `hostname` field sets it);
//! * everything else is not namespaced and is refused.
//!
//! Keys may be written with dots or, sysctl(8) style, with slashes (`net/ipv4/ip_forward`);
//! in the dotted form a slash stands for a dot inside a component (`net.ipv4.conf.eth0/100`).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The dotted form of a key (a slash-separated key has its dots and slashes swapped).
pub fn dotted(key: &str) -> String {
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'/' => key
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => key.to_string(),
    }
}

/// The path of a key below /proc/sys.
pub fn proc_path(key: &str) -> String {
    dotted(key)
        .chars()
        .map(|c| match c {
            '.' => '/',
            '/' => '.',
            c => c,
        })
        .collect()
}

/// The namespaces a container has, as far as sysctls care.
#[derive(Debug, Default, Clone, Copy)]
pub struct Scope {
    pub ipc: bool,
    pub uts: bool,
    /// A network namespace other than the runtime's.
    pub net: bool,
}

impl Scope {
    pub fn of(spec: &Spec) -> Result<Scope> {
        let mut s = Scope::default();
        let nss = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
        for ns in nss.into_iter().flatten() {
            let path = ns.path().as_deref().filter(|p| !p.as_os_str().is_empty());
            match ns.typ() {
                LinuxNamespaceType::Ipc => s.ipc = true,
                LinuxNamespaceType::Uts => s.uts = true,
                LinuxNamespaceType::Network => {
                    s.net = match path {
                        None => true,
                        Some(p) => !is_own_netns(p)?,
                    }
                }
                _ => {}
            }
        }
        Ok(s)
    }
}

fn is_own_netns(path: &Path) -> Result<bool> {
    let own = std::fs::metadata("/proc/self/ns/net").context("stat of /proc/self/ns/net")?;
    let other = std::fs::metadata(path)
        .with_context(|| format!("linux.namespaces: network namespace {}", path.display()))?;
    Ok(own.dev() == other.dev() && own.ino() == other.ino())
}

/// Checks one key against the container's namespaces.
pub fn check(key: &str, scope: Scope) -> Result<()> {
    let k = dotted(key);
    let field = format!("linux.sysctl.{key}");
    if IPC_KEYS.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
        if !scope.ipc {
            bail!(
                "{field}: needs an ipc namespace in linux.namespaces (it would change the host's)"
            );
        }
        return Ok(());
    }
    if k.starts_with("net.") {
        if !scope.net {
            bail!(
                "{field}: needs a network namespace other than the runtime's in linux.namespaces \
                 (it would change the host's)"
            );
        }
        return Ok(());
    }
    match k.as_str() {
        "kernel.domainname" if scope.uts => Ok(()),
        "kernel.domainname" => bail!("{field}: needs a uts namespace in linux.namespaces"),
        "kernel.hostname" => bail!("{field}: not allowed, set the spec's hostname field instead"),
        _ => bail!("{field}: not a namespaced sysctl (it would change the host)"),
    }
}

/// linux.sysctl as (key, value) sorted by key, every key checked.
pub fn compile(spec: &Spec) -> Result<Vec<(String, String)>> {
    let Some(map) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(Vec::new());
    };
    if map.is_empty() {
        return Ok(Vec::new());
    }
    let scope = Scope::of(spec)?;
    let mut pairs: Vec<(String, String)> =
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    pairs.sort();
    for (k, _) in &pairs {
        if k.is_empty() || k.contains("..") || k.starts_with(['.', '/']) {
            bail!("linux.sysctl.{k}: not a valid sysctl name");
        }
        check(k, scope)?;
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Scope = Scope {
        ipc: true,
        uts: true,
        net: true,
    };
    const NONE: Scope = Scope {
        ipc: false,
        uts: false,
        net: false,
    };

    #[test]
    fn slash_form_is_converted() {
        assert_eq!(
            dotted("net/ipv4/conf/eno2.100/rp_filter"),
            "net.ipv4.conf.eno2/100.rp_filter"
        );
        assert_eq!(dotted("net.ipv4.ip_forward"), "net.ipv4.ip_forward");
        assert_eq!(
            proc_path("net.ipv4.conf.eno2/100.rp_filter"),
            "net/ipv4/conf/eno2.100/rp_filter"
        );
        assert_eq!(
            proc_path("net/ipv4/conf/eno2.100/rp_filter"),
            "net/ipv4/conf/eno2.100/rp_filter"
        );
    }

    #[test]
    fn rules() {
        assert!(check("kernel.shmmax", ALL).is_ok());
        assert!(check("fs.mqueue.msg_max", ALL).is_ok());
        assert!(check("net.ipv4.ip_forward", ALL).is_ok());
        assert!(check("kernel.domainname", ALL).is_ok());
        let e = check("kernel.shmmax", NONE).unwrap_err().to_string();
        assert!(e.starts_with("linux.sysctl.kernel.shmmax:") && e.contains("ipc"));
        let e = check("net.ipv4.ip_forward", NONE).unwrap_err().to_string();
        assert!(
            e.contains("linux.sysctl.net.ipv4.ip_forward: needs a network namespace"),
            "{e}"
        );
        let e = check("kernel.hostname", ALL).unwrap_err().to_string();
        assert!(e.contains("set the spec's hostname field instead"), "{e}");
        let e = check("kernel.domainname", NONE).unwrap_err().to_string();
        assert!(
            e.contains("linux.sysctl.kernel.domainname: needs a uts namespace"),
            "{e}"
        );
        let e = check("vm.swappiness", ALL).unwrap_err().to_string();
        assert!(e.contains("not a namespaced sysctl"), "{e}");
    }
}
