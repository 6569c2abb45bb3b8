//! The bundle generator: config `index` of run `seed` is a runtime-spec config.json that
//! mixes the spec's fields (namespaces new/joined/absent, user namespaces with mappings,
//! mounts of every common type and option, propagation, devices, capabilities, rlimits,
//! resources, sysctls, hooks, terminal, seccomp, …), plus what the host must prepare for
//! it and what the observer inside must look at.
//!
//! Host paths in the config are written with tokens the runner replaces per runtime:
//! `@RUN@` (that runtime's run directory) and `@BIN@` (this binary, on the host).

use crate::rng::Rng;
use serde_json::{json, Value};

mod invalid;
mod linux;
pub mod matrix;
mod mounts;
mod process;
mod resources;

/// The id maps of the user namespace the host creates for a joined `user` namespace.
pub const HOLDER_UID_MAP: &str = "0 100000 65536";

/// How the host prepares the source of a propagation volume (@RUN@/<name>).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SourceMode {
    Shared,
    Private,
    /// @RUN@/<name> is a slave of @RUN@/<name>-m (shared): host events happen on the master.
    Slave,
}

#[derive(Clone, Debug, Default)]
pub struct HostSetup {
    /// Namespace kinds to create and bind at @RUN@/ns/<kind> (spec names: "network", …).
    pub joined: Vec<&'static str>,
    /// Directories @RUN@/vol/<name> (with a file inside; `true`: with a tmpfs submount `sub`).
    pub dirs: Vec<(String, bool)>,
    /// Files @RUN@/vol/<name>.
    pub files: Vec<String>,
    /// Propagation volumes: @RUN@/<name> (mounted at /mnt/<name>) and how its source
    /// mount is made; each is probed host→container and container→host.
    pub propagation: Vec<(String, SourceMode)>,
    /// A cgroup (relative to the harness's own) to make before the run; `true`: with a
    /// process in it.
    pub precreated_cgroup: Option<(String, bool)>,
    /// @RUN@/hooks/hooks.log for the hook recorder.
    pub hooks: bool,
}

pub struct Case {
    pub index: u64,
    pub id: String,
    /// config.json with @RUN@/@BIN@ tokens.
    pub config: Value,
    /// /observe-plan.json: what the observer checks and how it exits.
    pub plan: Value,
    pub host: HostSetup,
    /// `--preserve-fds N`, and how many fds (from 3 on) the runner really passes.
    pub preserve_fds: u32,
    pub preserve_given: u32,
    /// Short names of the dimensions drawn (for reports).
    pub tags: Vec<String>,
    /// The mutation that should make both runtimes refuse the config, if any.
    pub invalid: Option<String>,
    /// process.terminal, known before the mounts are drawn.
    pub terminal_drawn: bool,
    /// The propagation matrix's container number, for its configs (see `matrix`).
    pub matrix: Option<usize>,
}

impl Case {
    pub fn terminal(&self) -> bool {
        self.config
            .pointer("/process/terminal")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Whether this config mounts cgroup2 with options: from the initial cgroup namespace
    /// that sets the hierarchy's global flags, observable only while no other config
    /// mounts cgroup2 (the driver runs such configs alone).
    pub fn sets_cgroup2_flags(&self) -> bool {
        self.config["mounts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| {
                m["type"] == "cgroup"
                    && m["options"].as_array().into_iter().flatten().any(|o| {
                        o.as_str()
                            .map(|o| crate::outside::CGROUP2_ROOT_FLAGS.contains(&o))
                            .unwrap_or(false)
                    })
            })
    }

    pub fn tag(&mut self, t: impl Into<String>) {
        self.tags.push(t.into());
    }
}

/// Namespace kind → how the config has it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ns {
    Absent,
    New,
    Joined,
}

/// What the generators of one config share.
pub struct Draft {
    pub ns: Vec<(&'static str, Ns)>,
    /// Container ids that exist in the user namespace (all when there is none).
    pub mapped: Box<dyn Fn(u32) -> bool>,
}

impl Draft {
    pub fn has(&self, kind: &str) -> bool {
        self.ns.iter().any(|(k, s)| *k == kind && *s != Ns::Absent)
    }
    pub fn state(&self, kind: &str) -> Ns {
        self.ns
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, s)| *s)
            .unwrap_or(Ns::Absent)
    }
}

pub fn generate(seed: u64, index: u64) -> Case {
    let mut r = Rng::for_config(seed, index);
    let mut case = Case {
        index,
        id: format!("dfh{index}"),
        config: Value::Null,
        plan: Value::Null,
        host: HostSetup::default(),
        preserve_fds: 0,
        preserve_given: 0,
        tags: vec![],
        invalid: None,
        terminal_drawn: false,
        matrix: None,
    };
    let (ns_json, draft) = linux::namespaces(&mut r, &mut case);
    let mut plan =
        json!({"paths": [], "sysctls": [], "devices": [], "seccomp_probe": false, "c2h": null});
    let process = process::process(&mut r, &mut case, &draft, &mut plan);
    let mut linux = json!({"namespaces": ns_json});
    linux::id_maps(&mut r, &mut case, &draft, &mut linux);
    let mounts = mounts::mounts(&mut r, &mut case, &draft, &mut linux, &mut plan);
    linux::devices(&mut r, &mut case, &draft, &mut linux, &mut plan);
    resources::resources(&mut r, &mut case, &mut linux);
    linux::cgroups_path(&mut r, &mut case, &mut linux);
    linux::sysctls(&mut r, &mut case, &draft, &mut linux, &mut plan);
    linux::seccomp(&mut r, &mut case, &mut linux, &mut plan);
    let mut config = json!({
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": {"path": "rootfs", "readonly": r.chance(25)},
        "mounts": mounts,
        "linux": linux,
    });
    if draft.has("uts") {
        if r.chance(70) {
            config["hostname"] = json!(format!("ctr-{index}"));
        }
        if r.chance(30) {
            config["domainname"] = json!(format!("dom{index}.example"));
        }
    }
    if r.chance(25) {
        config["annotations"] =
            json!({"org.example.index": index.to_string(), "org.example.empty": ""});
    }
    linux::hooks(&mut r, &mut case, &mut config);
    if config["root"]["readonly"] == json!(true) {
        case.tag("root.readonly");
    }
    if r.chance(8) {
        invalid::mutate(&mut r, &mut case, &draft, &mut config);
    }
    case.config = config;
    case.plan = plan;
    case
}

/// Append `item` to the JSON array at `plan[key]`.
pub fn plan_push(plan: &mut Value, key: &str, item: Value) {
    if let Some(a) = plan[key].as_array_mut() {
        if !a.contains(&item) {
            a.push(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_and_index_give_the_same_config_every_time() {
        for i in 0..50 {
            let (a, b) = (generate(42, i), generate(42, i));
            assert_eq!(a.config, b.config);
            assert_eq!(a.plan, b.plan);
            assert_eq!(a.tags, b.tags);
        }
        assert_ne!(generate(42, 1).config, generate(43, 1).config);
    }

    #[test]
    fn every_dimension_is_drawn_in_a_few_hundred_configs() {
        let mut tags = std::collections::BTreeSet::new();
        for i in 0..400 {
            let c = generate(7, i);
            for t in &c.tags {
                tags.insert(t.split(['=', ':', '(']).next().unwrap_or("").to_string());
            }
            // Host paths only through the runner's tokens.
            let text = c.config.to_string();
            assert!(!text.contains("/tmp/dfh"), "{text}");
        }
        for want in [
            "terminal",
            "rlimits",
            "caps.ambient",
            "mount.bind",
            "mount.tmpfs",
            "mount.cgroup2",
            "propagation",
            "rootfsPropagation",
            "devices",
            "res.devices",
            "res.memory",
            "sysctl",
            "seccomp",
            "hooks",
            "preserve-fds",
            "invalid",
            "masked/readonly",
            "cgroup.existing.populated",
        ] {
            assert!(tags.contains(want), "no config drew {want}: {tags:?}");
        }
    }
}
