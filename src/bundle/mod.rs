//! Loading an OCI bundle: config.json into oci-spec types, with every error naming the file
//! and the JSON field, then validation into a [`Bundle`] the rest of skiff can trust.

mod validate;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use oci_spec::runtime::Spec;

pub use validate::validate;

/// A loaded and validated bundle. Paths are absolute.
#[derive(Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// `linux.seccomp` compiled (so a profile that cannot be honoured fails before anything
    /// is created, and the init inherits the program ready to load).
    pub seccomp: Option<crate::seccomp::Filter>,
}

pub const CONFIG: &str = "config.json";

/// Reads `<dir>/config.json` and validates it.
pub fn load(dir: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(dir)
        .with_context(|| format!("bundle directory {}", dir.display()))?;
    let path = dir.join(CONFIG);
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let spec = parse(&text).with_context(|| format!("{}", path.display()))?;
    let rootfs = validate(&spec, &dir).with_context(|| format!("{}", path.display()))?;
    let seccomp = seccomp(&spec).with_context(|| format!("{}", path.display()))?;
    Ok(Bundle {
        dir,
        rootfs,
        spec,
        seccomp,
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
    let de = &mut serde_json::Deserializer::from_slice(text);
    match serde_path_to_error::deserialize::<_, Spec>(de) {
        Ok(spec) => Ok(spec),
        // A capability this build does not know (a newer kernel's, or a typo): runc warns
        // and carries on without it, so the config parses again without such names.
        Err(e) if e.path().to_string().starts_with("process.capabilities.") => {
            let mut v: serde_json::Value =
                serde_json::from_slice(text).map_err(|e| anyhow::anyhow!("invalid JSON: {e}"))?;
            drop_unknown_capabilities(&mut v["process"]["capabilities"]);
            from_value(v)
        }
        Err(e) => Err(describe(e)),
    }
}

/// A `process` object on its own (exec --process), parsed like config.json's.
pub fn parse_process(text: &[u8]) -> Result<oci_spec::runtime::Process> {
    let mut v: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| anyhow::anyhow!("invalid JSON: {e}"))?;
    drop_unknown_capabilities(&mut v["capabilities"]);
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
    anyhow::anyhow!("{path}: {inner}")
}

/// Removes (with a warning) the names in each capability set that are not capabilities.
pub fn drop_unknown_capabilities(caps: &mut serde_json::Value) {
    let Some(sets) = caps.as_object_mut() else {
        return;
    };
    for (set, list) in sets.iter_mut() {
        let Some(names) = list.as_array_mut() else {
            continue;
        };
        names.retain(|n| {
            let known = serde_json::from_value::<oci_spec::runtime::Capability>(n.clone()).is_ok();
            if !known {
                crate::logging::warn(&format!(
                    "process.capabilities.{set}: ignoring unknown capability {n}"
                ));
            }
            known
        });
    }
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
    fn syntax_error_is_reported_as_invalid_json() {
        let err = parse(b"{not json").unwrap_err().to_string();
        assert!(err.starts_with("invalid JSON"), "{err}");
    }
}
