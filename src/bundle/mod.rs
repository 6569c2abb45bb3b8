//! An OCI bundle's config.json into oci-spec types, with every error naming the JSON field,
//! then validation (against the facts `host` gathered) into a [`Bundle`] the rest of skiff
//! can trust. Nothing here touches the host: `host::load_bundle` reads and probes.

mod validate;

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Result};
use oci_spec::runtime::{Hooks, LinuxResources, Spec};

pub use validate::validate;

/// A bundle compiled into the plan every later step applies (runc's specconv idea): each
/// part is built, and so checked, by the module that applies it, before anything is
/// created. Paths are absolute. Nothing after [`compile`] reads the spec itself: it is kept
/// only to be copied into the state directory ([`Bundle::config`]).
#[derive(Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    config: Spec,
    /// `process`, compiled (also the shape `exec` compiles its process into).
    pub process: crate::process::plan::ProcessPlan,
    /// `linux.namespaces`; opened into a `namespaces::Plan` by `create`.
    pub namespaces: Vec<crate::process::namespaces::Want>,
    pub id_maps: crate::process::namespaces::IdMaps,
    /// `linux.timeOffsets` as written to timens_offsets.
    pub time_offsets: String,
    /// `root`, `mounts`, `linux.devices`, masked and read-only paths, propagation.
    pub fs: crate::rootfs::Plan,
    pub hooks: Hooks,
    /// `linux.seccomp` compiled (so a profile that cannot be honoured fails before anything
    /// is created, and the init inherits the program ready to load).
    pub seccomp: Option<crate::seccomp::Filter>,
    pub seccomp_listener: crate::seccomp::agent::Listener,
    /// `linux.resources` compiled into cgroup file writes and the device program.
    pub resources: crate::cgroups::resources::Plan,
    /// `linux.resources` as given (recorded in the state for `update`).
    pub resources_spec: Option<LinuxResources>,
    pub cgroups_path: Option<PathBuf>,
    pub annotations: HashMap<String, String>,
    pub uts: crate::process::identity::Uts,
    /// `linux.sysctl`, sorted by key.
    pub sysctls: Vec<(String, String)>,
    /// `linux.personality` and `linux.memoryPolicy`.
    pub container_attrs: crate::process::procattrs::ContainerAttrs,
    /// `linux.netDevices` as (host name, name inside), sorted.
    pub net_devices: Vec<(String, String)>,
}

impl Bundle {
    /// The config as given, for the state directory's copy (which `exec` reads back).
    pub fn config(&self) -> &Spec {
        &self.config
    }
}

pub const CONFIG: &str = "config.json";

/// The runtime-spec version skiff implements.
pub const SPEC_VERSION: &str = "1.3.0";

/// The largest JSON document skiff reads (config.json, an exec process file, state.json):
/// generous for any real config (seccomp profiles and annotations included) and small
/// enough that a hostile file (`--process /dev/zero`) is refused in a moment.
pub const MAX_JSON_BYTES: u64 = 64 << 20;

/// The deepest nesting of arrays and objects accepted in those documents; real configs stay
/// under ten levels.
pub const MAX_JSON_DEPTH: usize = 64;

/// Refuses arrays and objects nested deeper than [`MAX_JSON_DEPTH`] with a message that
/// says so (serde_json would only say "recursion limit exceeded", deeper down).
pub fn check_depth(text: &[u8]) -> Result<()> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in text.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    bail!(
                        "invalid JSON: arrays and objects nested deeper than {MAX_JSON_DEPTH} \
                         levels (at byte {i})"
                    );
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Validates `spec` (of a bundle at `dir`, absolute) against what the host said about it,
/// and compiles it into the plan.
pub fn compile(spec: Spec, dir: PathBuf, facts: &crate::host::HostFacts) -> Result<Bundle> {
    use crate::process::{namespaces, netdev, procattrs, sysctl};
    let rootfs = validate(&spec, facts)?;
    let process =
        crate::process::plan::ProcessPlan::compile_init(spec.process().as_ref(), facts.lsm)?;
    let namespaces = namespaces::compile(&spec, facts)?;
    let hooks = crate::hooks::compile(&spec)?;
    let fs = crate::rootfs::Plan::compile(&spec, &facts.caller)?;
    let sysctls = sysctl::compile(&spec)?;
    let container_attrs = procattrs::ContainerAttrs::compile(&spec)?;
    let net_devices = netdev::compile(&spec)?;
    let seccomp = seccomp(&spec)?;
    let resources = crate::cgroups::create_plan(&spec)?;
    let linux = spec.linux().as_ref();
    Ok(Bundle {
        dir,
        rootfs,
        process,
        namespaces,
        id_maps: namespaces::IdMaps::compile(&spec, &facts.caller),
        time_offsets: namespaces::time_offsets(&spec),
        fs,
        hooks,
        seccomp,
        seccomp_listener: crate::seccomp::agent::Listener::of(&spec),
        resources,
        resources_spec: linux.and_then(|l| l.resources().clone()),
        cgroups_path: linux.and_then(|l| l.cgroups_path().clone()),
        annotations: spec.annotations().clone().unwrap_or_default(),
        uts: crate::process::identity::Uts::compile(&spec),
        sysctls,
        container_attrs,
        net_devices,
        config: spec,
    })
}

/// `linux.seccomp` compiled, if the spec has one.
pub fn seccomp(spec: &Spec) -> Result<Option<crate::seccomp::Filter>> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::seccomp::compile)
        .transpose()
}

/// Parses config.json; on a type error the message starts with the JSON path of the field
/// (`process.args: invalid type: ...`), which plain serde_json does not give.
pub fn parse(text: &[u8]) -> Result<Spec> {
    check_depth(text)?;
    let mut value: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| anyhow::anyhow!("invalid JSON: {e}"))?;
    // runc reads linux.resources with Go's case-insensitive field names (runc's own tests
    // write `hugepageLimits: [{pagesize: ...}]`).
    if let Some(r) = value.get_mut("linux").and_then(|l| l.get_mut("resources")) {
        crate::cgroups::keys::canonicalize(r);
    }
    if let Some(p) = value.get_mut("process") {
        scheduler_flag_names(p, "process")?;
    }
    from_value(value)
}

/// The runtime-spec's names for process.scheduler.flags, and the spelling oci-spec's parser
/// expects for each (it derives two of them from its Rust names: SCHED_RESET_ON_FORK,
/// SCHED_FLAG_D_L_OVERRUN). Its own spellings are accepted too: skiff writes the spec back
/// with them (state directory) and reads it again.
const SCHEDULER_FLAGS: [(&str, &str); 7] = [
    ("SCHED_FLAG_RESET_ON_FORK", "SCHED_RESET_ON_FORK"),
    ("SCHED_FLAG_RECLAIM", "SCHED_FLAG_RECLAIM"),
    ("SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_D_L_OVERRUN"),
    ("SCHED_FLAG_KEEP_POLICY", "SCHED_FLAG_KEEP_POLICY"),
    ("SCHED_FLAG_KEEP_PARAMS", "SCHED_FLAG_KEEP_PARAMS"),
    ("SCHED_FLAG_UTIL_CLAMP_MIN", "SCHED_FLAG_UTIL_CLAMP_MIN"),
    ("SCHED_FLAG_UTIL_CLAMP_MAX", "SCHED_FLAG_UTIL_CLAMP_MAX"),
];

/// Rewrites `<at>.scheduler.flags` of a process object from the spec's names to the parser's,
/// refusing an unknown flag with the spec's names.
fn scheduler_flag_names(process: &mut serde_json::Value, at: &str) -> Result<()> {
    let Some(flags) = process
        .get_mut("scheduler")
        .and_then(|s| s.get_mut("flags"))
        .and_then(|f| f.as_array_mut())
    else {
        return Ok(());
    };
    for (i, flag) in flags.iter_mut().enumerate() {
        let Some(name) = flag.as_str() else {
            continue; // the parser names the type error
        };
        match SCHEDULER_FLAGS
            .iter()
            .find(|(spec, ours)| name == *spec || name == *ours)
        {
            Some((_, ours)) => *flag = serde_json::Value::from(*ours),
            None => anyhow::bail!(
                "{at}.scheduler.flags[{i}]: unknown flag {name:?} (expected one of {})",
                SCHEDULER_FLAGS.map(|(spec, _)| spec).join(", ")
            ),
        }
    }
    Ok(())
}

/// A `process` object on its own (exec --process), parsed like config.json's. Without a
/// `user` it runs as uid 0 and gid 0, as runc's (Go's zero value).
pub fn parse_process(text: &[u8]) -> Result<oci_spec::runtime::Process> {
    check_depth(text)?;
    let mut v: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| anyhow::anyhow!("invalid JSON: {e}"))?;
    if let Some(p) = v.as_object_mut() {
        p.entry("user")
            .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    }
    scheduler_flag_names(&mut v, "process")?;
    from_value(v)
}

fn from_value<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(describe)
}

fn describe(e: serde_path_to_error::Error<serde_json::Error>) -> anyhow::Error {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if path == "." || path == "?" || path.is_empty() || inner.is_syntax() || inner.is_eof() {
        return anyhow::anyhow!("invalid JSON: {inner}");
    }
    let msg = inner.to_string();
    // oci-spec's capability names fail as "no variant for CAP_X (converted to X)".
    if path.starts_with("process.capabilities.") && msg.starts_with("no variant for ") {
        let name = msg["no variant for ".len()..]
            .split(' ')
            .next()
            .unwrap_or("");
        return anyhow::anyhow!("{path}: unknown capability {name:?} (expected a CAP_* name the kernel knows, as in capabilities(7))");
    }
    anyhow::anyhow!("{path}: {msg}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_error_names_the_field() {
        let err = parse(br#"{"ociVersion":"1.0.2","process":{"cwd":"/","args":"x"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("process.args:"), "{err}");
    }

    #[test]
    fn unknown_capability_is_named() {
        let err = parse(br#"{"ociVersion":"1.0.2","process":{"cwd":"/","args":["x"],"capabilities":{"bounding":["CAP_KILL","CAP_TEST"]}}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("process.capabilities.bounding[1]: unknown capability \"CAP_TEST\""),
            "{err}"
        );
    }

    #[test]
    fn scheduler_flags_take_the_specs_names() {
        let spec = |flags: &str| {
            parse(format!(r#"{{"ociVersion":"1.0.2","process":{{"cwd":"/","args":["x"],"user":{{"uid":0,"gid":0}},"scheduler":{{"policy":"SCHED_OTHER","flags":{flags}}}}}}}"#).as_bytes())
        };
        let s =
            spec(r#"["SCHED_FLAG_RESET_ON_FORK","SCHED_FLAG_DL_OVERRUN","SCHED_FLAG_RECLAIM"]"#)
                .unwrap();
        use oci_spec::runtime::LinuxSchedulerFlag as F;
        let got = s
            .process()
            .as_ref()
            .unwrap()
            .scheduler()
            .as_ref()
            .unwrap()
            .flags()
            .clone();
        assert_eq!(
            got,
            Some(vec![
                F::SchedResetOnFork,
                F::SchedFlagDLOverrun,
                F::SchedFlagReclaim
            ])
        );
        let err = spec(r#"["SCHED_FLAG_BOGUS"]"#).unwrap_err().to_string();
        assert!(
            err.starts_with("process.scheduler.flags[0]: unknown flag \"SCHED_FLAG_BOGUS\"")
                && err.contains("SCHED_FLAG_RESET_ON_FORK"),
            "{err}"
        );
    }

    #[test]
    fn nesting_is_bounded_but_brackets_in_strings_do_not_count() {
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH + 1),
            "]".repeat(MAX_JSON_DEPTH + 1)
        );
        let err = parse(deep.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("nested deeper than 64 levels"), "{err}");
        let ok = format!("[{}]", serde_json::json!("[[[[\\\"{{".repeat(40)));
        check_depth(ok.as_bytes()).unwrap();
    }

    #[test]
    fn a_process_without_user_is_root() {
        let p = parse_process(br#"{"cwd":"/","args":["true"]}"#).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
    }

    #[test]
    fn syntax_error_is_reported_as_invalid_json() {
        let err = parse(b"{not json").unwrap_err().to_string();
        assert!(err.starts_with("invalid JSON"), "{err}");
    }
}
