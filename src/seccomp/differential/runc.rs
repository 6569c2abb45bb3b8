//! The reference: what runc 1.1.5 loads for an OCI profile, built with the real libseccomp
//! (Debian bookworm's 2.5.4). This re-tells runc's steps in our words:
//!
//! 1. specconv: every name of an entry becomes a rule of its own, in profile order, carrying
//!    the entry's action, errnoRet and args. (runc 1.1.5 refuses `flags`; the generator
//!    never sets them.)
//! 2. InitSeccomp: the default action goes to seccomp_init; the listed architectures are
//!    added (an architecture already present is fine). SCMP_ACT_NOTIFY may not be the default
//!    nor apply to write(2). errnoRet goes through an int16, so only its low 16 bits count.
//! 3. Per rule: a rule whose action (errno included) equals the default one is skipped
//!    before anything else; a name seccomp_syscall_resolve_name() does not know (on the
//!    native architecture; pseudo numbers count as known) is skipped; no args → one
//!    unconditional rule; args on distinct indexes → one rule with all of them; two or more
//!    on one index → one rule per arg. Rules go in with seccomp_rule_add_array, the
//!    non-exact variant that lets libseccomp rewrite them per architecture. Any error fails
//!    the whole profile.
//! 4. patchbpf: unless the default action is ALLOW, LOG or TRACE, a stub placed before
//!    libseccomp's program returns -ENOSYS for syscall numbers above the largest one the
//!    profile names, per *listed* architecture (the native one only if listed), where x86_64
//!    and x32 are told apart by the X32 bit. The largest number is taken over every rule's
//!    name, skipped ones included, resolved with seccomp_syscall_resolve_name_arch (so
//!    pseudo numbers, e.g. i386's socket calls, do not count). runc's "defaultErrnoRet is
//!    ENOSYS" exception compares against SCMP_ACT_ERRNO(ENOSYS) and never fires.

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg, LinuxSeccompOperator as Op,
};

use super::super::bpf_eval::{run_traced, Data};
use crate::sys::seccomp::SockFilter;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const X32_BIT: u32 = 0x4000_0000;
const ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;

/// A profile as runc 1.1.5 would load it.
pub(in super::super) struct Runc {
    program: Vec<SockFilter>,
    /// Largest syscall number per listed ABI: (x86_64, x32, i386, aarch64).
    stub: Option<[Option<u32>; 4]>,
}

impl Runc {
    /// The filter's result for `d`, and whether libseccomp's program loaded the syscall
    /// number on the way (runc's stub answering counts as loaded).
    pub(in super::super) fn eval(&self, d: &Data) -> (u32, bool) {
        if let Some([x64, x32, i386, a64]) = self.stub {
            let max = match d.arch {
                AUDIT_ARCH_X86_64 if d.nr & X32_BIT != 0 => x32,
                AUDIT_ARCH_X86_64 => x64,
                AUDIT_ARCH_I386 => i386,
                AUDIT_ARCH_AARCH64 => a64,
                _ => None,
            };
            if max.is_some_and(|m| d.nr > m) {
                return (ENOSYS, true);
            }
        }
        run_traced(&self.program, d)
    }

    /// libseccomp's program (without runc's stub).
    pub(in super::super) fn program(&self) -> &[SockFilter] {
        &self.program
    }
}

fn scmp_arch(a: &Arch) -> Result<ScmpArch, String> {
    Ok(match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        other => return Err(format!("the test does not map {other:?}")),
    })
}

/// runc's getAction: errnoRet is cast to int16 and only its low 16 bits reach libseccomp.
fn scmp_action(a: Act, errno_ret: Option<u32>) -> ScmpAction {
    let code = errno_ret.map(|e| e as u16);
    match a {
        Act::ScmpActKill | Act::ScmpActKillThread => ScmpAction::KillThread,
        Act::ScmpActKillProcess => ScmpAction::KillProcess,
        Act::ScmpActTrap => ScmpAction::Trap,
        Act::ScmpActErrno => ScmpAction::Errno(i32::from(code.unwrap_or(libc::EPERM as u16))),
        Act::ScmpActTrace => ScmpAction::Trace(code.unwrap_or(libc::EPERM as u16)),
        Act::ScmpActLog => ScmpAction::Log,
        Act::ScmpActNotify => ScmpAction::Notify,
        Act::ScmpActAllow => ScmpAction::Allow,
    }
}

fn condition(a: &LinuxSeccompArg) -> ScmpArgCompare {
    let op = match a.op() {
        Op::ScmpCmpNe => ScmpCompareOp::NotEqual,
        Op::ScmpCmpLt => ScmpCompareOp::Less,
        Op::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        Op::ScmpCmpEq => ScmpCompareOp::Equal,
        Op::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        Op::ScmpCmpGt => ScmpCompareOp::Greater,
        // runc passes (value, valueTwo); libseccomp takes the first as the mask.
        Op::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(a.value()),
    };
    let datum = match a.op() {
        Op::ScmpCmpMaskedEq => a.value_two().unwrap_or(0),
        _ => a.value(),
    };
    ScmpArgCompare::new(a.index() as u32, op, datum)
}

/// Builds the profile as runc does; `Err` is the message runc would fail with (roughly).
pub(in super::super) fn build(s: &LinuxSeccomp) -> Result<Runc, String> {
    let default = scmp_action(s.default_action(), s.default_errno_ret());
    if default == ScmpAction::Notify {
        return Err("SCMP_ACT_NOTIFY cannot be used as default action".into());
    }
    // specconv: one rule per name.
    let rules: Vec<(&str, &oci_spec::runtime::LinuxSyscall)> = s
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|sc| sc.names().iter().map(move |n| (n.as_str(), sc)))
        .collect();
    for (name, sc) in &rules {
        if sc.action() == Act::ScmpActNotify && *name == "write" {
            return Err("SCMP_ACT_NOTIFY cannot be used for the write syscall".into());
        }
    }
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| format!("new filter: {e}"))?;
    let archs: Vec<ScmpArch> = s
        .architectures()
        .iter()
        .flatten()
        .map(scmp_arch)
        .collect::<Result<_, _>>()?;
    for &a in &archs {
        ctx.add_arch(a).map_err(|e| format!("add arch: {e}"))?;
    }
    for (name, sc) in &rules {
        let act = scmp_action(sc.action(), sc.errno_ret());
        if act == default {
            continue;
        }
        let Ok(nr) = ScmpSyscall::from_name(name) else {
            continue;
        };
        let args = sc.args().as_deref().unwrap_or_default();
        let mut per_index = [0; 6];
        for a in args {
            if a.index() > 5 {
                return Err(format!("{name}: argument index {}", a.index()));
            }
            per_index[a.index()] += 1;
        }
        let conds: Vec<ScmpArgCompare> = args.iter().map(condition).collect();
        let res = if per_index.iter().any(|&c| c > 1) {
            conds
                .iter()
                .try_for_each(|c| ctx.add_rule_conditional(act, nr, &[*c]).map(drop))
        } else {
            ctx.add_rule_conditional(act, nr, &conds).map(drop)
        };
        res.map_err(|e| format!("adding a rule for {name}: {e}"))?;
    }
    let mut program = Vec::new();
    export(&ctx, &mut program)?;
    Ok(Runc {
        program,
        stub: stub(s, &archs, &rules),
    })
}

fn stub(
    s: &LinuxSeccomp,
    archs: &[ScmpArch],
    rules: &[(&str, &oci_spec::runtime::LinuxSyscall)],
) -> Option<[Option<u32>; 4]> {
    if matches!(
        s.default_action(),
        Act::ScmpActAllow | Act::ScmpActLog | Act::ScmpActTrace
    ) {
        return None;
    }
    let mut out = [None; 4];
    for &a in archs {
        let a = if a == ScmpArch::Native {
            ScmpArch::X8664
        } else {
            a
        };
        let slot = match a {
            ScmpArch::X8664 => 0,
            ScmpArch::X32 => 1,
            ScmpArch::X86 => 2,
            ScmpArch::Aarch64 => 3,
            _ => continue,
        };
        let largest = rules
            .iter()
            .filter_map(|(n, _)| ScmpSyscall::from_name_by_arch(n, a).ok())
            .map(|nr| nr.as_raw_syscall())
            .filter(|&nr| nr > 0)
            .max();
        out[slot] = largest.map(|n| n as u32);
    }
    Some(out)
}

/// seccomp_export_bpf into a memfd, read back as instructions.
fn export(ctx: &ScmpFilterContext, out: &mut Vec<SockFilter>) -> Result<(), String> {
    use std::io::{Read, Seek};
    let fd =
        nix::sys::memfd::memfd_create(c"skiff-seccomp-ref", nix::sys::memfd::MFdFlags::empty())
            .map_err(|e| format!("memfd: {e}"))?;
    let mut file = std::fs::File::from(fd);
    ctx.export_bpf(&file).map_err(|e| format!("export: {e}"))?;
    let mut raw = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut raw))
        .map_err(|e| e.to_string())?;
    for c in raw.chunks_exact(8) {
        out.push(SockFilter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        });
    }
    Ok(())
}
