//! `linux.resources.devices` → a `BPF_PROG_TYPE_CGROUP_DEVICE` program (cgroup v2 has no
//! devices.allow file; the kernel asks an eBPF program attached to the cgroup instead).
//!
//! Semantics: the rules are applied in the listed order, a later rule overriding an earlier
//! one, for each access bit separately (mknod, read, write): a request is allowed when, for
//! every bit it asks for, the last rule that matches the device and names that bit is an
//! allow rule. Nothing matched means denied. This is what cgroup v1's devices.allow /
//! devices.deny sequence amounts to for the configs clients send (`deny a` then allows), and
//! it also honours a later deny inside an earlier wildcard allow, which v1 (and runc's v1
//! emulation) cannot express.
//!
//! Default devices: like runc, every container may mknod any node and use /dev/null, zero,
//! full, random, urandom, tty, ptmx and the pty slaves (136:*). runc appends them after the
//! spec's rules, so a config can never deny them; skiff inserts them right after the spec's
//! last `type: a` rule (the point where the list resets), so the common `deny a` + allows
//! behaves exactly as with runc, and an explicit deny rule after that point does take effect.
//! As runc does, a default is dropped when `linux.devices` creates a node at its path.

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::sys::bpf::Insn;

pub const ACC_MKNOD: u32 = 1;
pub const ACC_READ: u32 = 2;
pub const ACC_WRITE: u32 = 4;
const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// `BPF_DEVCG_DEV_*`, the device type the kernel passes in the low 16 bits of access_type.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    All,
    Char,
    Block,
}

/// One device rule; `None` major/minor is the `*` wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u32,
}

impl Rule {
    const fn chr(major: Option<u32>, minor: Option<u32>, access: u32) -> Rule {
        Rule {
            allow: true,
            kind: Kind::Char,
            major,
            minor,
            access,
        }
    }
}

/// The devices runc allows in every container, with the node path that makes a
/// `linux.devices` entry replace them.
pub const DEFAULTS: &[(Option<&str>, Rule)] = &[
    (None, Rule::chr(None, None, ACC_MKNOD)),
    (
        None,
        Rule {
            allow: true,
            kind: Kind::Block,
            major: None,
            minor: None,
            access: ACC_MKNOD,
        },
    ),
    (Some("/dev/null"), Rule::chr(Some(1), Some(3), ACC_ALL)),
    (Some("/dev/random"), Rule::chr(Some(1), Some(8), ACC_ALL)),
    (Some("/dev/full"), Rule::chr(Some(1), Some(7), ACC_ALL)),
    (Some("/dev/tty"), Rule::chr(Some(5), Some(0), ACC_ALL)),
    (Some("/dev/zero"), Rule::chr(Some(1), Some(5), ACC_ALL)),
    (Some("/dev/urandom"), Rule::chr(Some(1), Some(9), ACC_ALL)),
    (None, Rule::chr(Some(136), None, ACC_ALL)),
    (None, Rule::chr(Some(5), Some(2), ACC_ALL)),
];

/// Parses the spec's rules; errors name `linux.resources.devices[i].<field>`.
pub fn from_spec(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    rules
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let f = |name: &str| format!("linux.resources.devices[{i}].{name}");
            let kind = match d.typ().unwrap_or(LinuxDeviceType::A) {
                LinuxDeviceType::A => Kind::All,
                LinuxDeviceType::C => Kind::Char,
                LinuxDeviceType::B => Kind::Block,
                other => bail!(
                    "{}: {:?} is not a cgroup device type (a, b or c)",
                    f("type"),
                    other.as_str()
                ),
            };
            let num = |v: Option<i64>, name: &str| -> Result<Option<u32>> {
                match v {
                    None | Some(-1) => Ok(None),
                    Some(n) => match u32::try_from(n) {
                        Ok(n) => Ok(Some(n)),
                        Err(_) => bail!("{}: {n} is not a device number (or -1 for any)", f(name)),
                    },
                }
            };
            let access = d.access().as_deref().unwrap_or("");
            if access.is_empty() {
                bail!(
                    "{}: must not be empty (a combination of r, w and m)",
                    f("access")
                );
            }
            let mut bits = 0;
            for c in access.chars() {
                bits |= match c {
                    'm' => ACC_MKNOD,
                    'r' => ACC_READ,
                    'w' => ACC_WRITE,
                    _ => bail!("{}: {access:?} may only contain r, w and m", f("access")),
                };
            }
            Ok(Rule {
                allow: d.allow(),
                kind,
                major: num(d.major(), "major")?,
                minor: num(d.minor(), "minor")?,
                access: bits,
            })
        })
        .collect()
}

/// The spec's rules with the defaults inserted after the last `type: a` rule (see the module
/// doc); `created` are the paths of `linux.devices`, whose defaults are dropped.
pub fn effective(spec: Vec<Rule>, created: &[&str]) -> Vec<Rule> {
    let at = spec
        .iter()
        .rposition(|r| r.kind == Kind::All)
        .map_or(0, |i| i + 1);
    let defaults = DEFAULTS
        .iter()
        .filter(|(path, _)| path.map_or(true, |p| !created.contains(&p)))
        .map(|(_, r)| r.clone());
    let mut out = spec;
    out.splice(at..at, defaults);
    // Everything before a full `a *:* rwm` rule is overridden by it.
    if let Some(i) = out.iter().rposition(|r| {
        r.kind == Kind::All && r.major.is_none() && r.minor.is_none() && r.access == ACC_ALL
    }) {
        out.drain(..i);
    }
    out
}

// eBPF encoding (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X (32-bit)
const ALU_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JMP32_JNE_K: u8 = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K
const JMP32_JSET_K: u8 = 0x46; // BPF_JMP32 | BPF_JSET | BPF_K
const JMP_JA: u8 = 0x05; // BPF_JMP | BPF_JA
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// Registers: r1 = ctx (struct bpf_cgroup_dev_ctx {u32 access_type, major, minor}), w2 = the
// access bits still undecided, w3 = device type, w4 = major, w5 = minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

fn verdict(v: i32) -> [Insn; 2] {
    [ins(ALU64_MOV_K, R0, 0, 0, v), ins(JMP_EXIT, 0, 0, 0, 0)]
}

/// Compiles `rules` (already [`effective`]) into the program: rules are checked from last
/// to first; an allow rule clears the bits it grants and allows once none is left; a deny
/// rule denies if it names a bit still undecided; no decision means deny.
pub fn compile(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        ins(LDX_MEM_W, R2, R1, 0, 0),
        ins(ALU_MOV_X, R3, R2, 0, 0),
        ins(ALU_AND_K, R3, 0, 0, 0xffff),
        ins(ALU_RSH_K, R2, 0, 0, 16),
        ins(LDX_MEM_W, R4, R1, 4, 0),
        ins(LDX_MEM_W, R5, R1, 8, 0),
    ];
    for r in rules.iter().rev() {
        // Each `Some(insn)` in `skip` jumps to the end of this rule's block.
        let mut block: Vec<(Insn, bool)> = vec![];
        let mut cond = |reg: u8, v: Option<i32>| {
            if let Some(v) = v {
                block.push((ins(JMP32_JNE_K, reg, 0, 0, v), true));
            }
        };
        cond(
            R3,
            match r.kind {
                Kind::All => None,
                Kind::Char => Some(DEV_CHAR),
                Kind::Block => Some(DEV_BLOCK),
            },
        );
        cond(R4, r.major.map(|m| m as i32));
        cond(R5, r.minor.map(|m| m as i32));
        if r.allow {
            block.push((ins(ALU_AND_K, R2, 0, 0, !(r.access as i32)), false));
            block.push((ins(JMP32_JNE_K, R2, 0, 0, 0), true));
            block.extend(verdict(1).map(|i| (i, false)));
        } else {
            block.push((ins(JMP32_JSET_K, R2, 0, 1, r.access as i32), false));
            block.push((ins(JMP_JA, 0, 0, 0, 0), true));
            block.extend(verdict(0).map(|i| (i, false)));
        }
        let len = block.len();
        p.extend(block.into_iter().enumerate().map(|(i, (mut insn, skip))| {
            if skip {
                insn.off = (len - i - 1) as i16;
            }
            insn
        }));
    }
    p.extend(verdict(0));
    p
}

#[cfg(test)]
#[path = "devices_tests.rs"]
mod tests;
