//! The five capability sets of process.capabilities, applied in the only order that works:
//! bounding set first (needs CAP_SETPCAP, which we still have), then — after the uid switch,
//! done with PR_SET_KEEPCAPS so the permitted set survives — inheritable, permitted,
//! effective, and finally ambient (which must be a subset of permitted ∩ inheritable).
//! Inheritable is never widened beyond what the spec lists (CVE-2022-29162).

use std::str::FromStr;

use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

fn convert(set: &Option<Capabilities>) -> Result<CapsHashSet> {
    let mut out = CapsHashSet::new();
    for c in set.iter().flatten() {
        let name = serde_json::to_value(c)?;
        let name = name.as_str().unwrap_or_default();
        match Capability::from_str(name) {
            Ok(cap) => {
                out.insert(cap);
            }
            // Known to the spec crate but not to this kernel's caps list: runc warns too.
            Err(_) => crate::logging::warn(&format!("capability {name} is unknown, ignoring it")),
        }
    }
    Ok(out)
}

/// The sets to apply, converted once (with the process plan, before anything is created).
#[derive(Debug, Default, Clone)]
pub struct Sets {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

impl Sets {
    pub fn from_spec(c: Option<&LinuxCapabilities>) -> Result<Self> {
        let Some(c) = c else {
            return Ok(Sets::default());
        };
        Ok(Sets {
            bounding: convert(c.bounding())?,
            effective: convert(c.effective())?,
            permitted: convert(c.permitted())?,
            inheritable: convert(c.inheritable())?,
            ambient: convert(c.ambient())?,
        })
    }

    /// Drops every capability not in the bounding set.
    pub fn apply_bounding(&self) -> Result<()> {
        for cap in caps::all() {
            if !self.bounding.contains(&cap)
                && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false)
            {
                caps::drop(None, CapSet::Bounding, cap)
                    .with_context(|| format!("process.capabilities.bounding: dropping {cap}"))?;
            }
        }
        Ok(())
    }

    /// Sets inheritable, permitted, effective and ambient (after the uid switch). `extra`
    /// stays effective and permitted on top of the spec's sets: CAP_SYS_ADMIN for loading a
    /// seccomp filter without no_new_privs, dropped right after it by [`Sets::finish`].
    pub fn apply_rest(&self, extra: Option<Capability>) -> Result<()> {
        let mut effective = self.effective.clone();
        let mut permitted = self.permitted.clone();
        effective.extend(extra);
        permitted.extend(extra);
        // Effective must be a subset of permitted, so lower effective while permitted is still
        // full, then narrow permitted, then set the final effective set.
        caps::set(None, CapSet::Inheritable, &self.inheritable)
            .context("process.capabilities.inheritable")?;
        caps::set(None, CapSet::Effective, &(&effective & &permitted))
            .context("process.capabilities.effective")?;
        caps::set(None, CapSet::Permitted, &permitted).context("process.capabilities.permitted")?;
        caps::set(None, CapSet::Effective, &effective).context(
            "process.capabilities.effective: must be a subset of process.capabilities.permitted",
        )?;
        caps::clear(None, CapSet::Ambient).context("clearing ambient capabilities")?;
        // The kernel only lets a capability be ambient when it is both permitted and
        // inheritable; runc (1.1) skips the others without a word, and so do we: a warning
        // here would land in the middle of the container's own output.
        for cap in &self.ambient {
            if let Err(e) = caps::raise(None, CapSet::Ambient, *cap) {
                crate::logging::debug(&format!("not raising ambient capability {cap}: {e}"));
            }
        }
        Ok(())
    }

    /// Whether `cap` is in the effective set the spec asks for.
    pub fn effective_has(&self, cap: Capability) -> bool {
        self.effective.contains(&cap)
    }

    /// Drops what [`Sets::apply_rest`] kept beyond the spec: one capset(2), the spec's
    /// effective, permitted and inheritable sets exactly (ambient capabilities that were
    /// raised stay, as they are all permitted).
    pub fn finish(&self) -> Result<()> {
        let mask = |set: &CapsHashSet| set.iter().fold(0u64, |m, c| m | c.bitmask());
        crate::sys::misc::capset(
            mask(&self.effective),
            mask(&self.permitted),
            mask(&self.inheritable),
        )
        .context("process.capabilities: dropping CAP_SYS_ADMIN after loading the seccomp filter")
    }
}
