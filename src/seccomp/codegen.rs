//! From a [`Plan`] to the BPF program.
//!
//! Layout:
//!
//! ```text
//!   ld arch; jeq AUDIT_ARCH_* -> section ...; ret KILL_PROCESS        (bad architecture)
//! section x86_64:
//!   ld nr; jge X32_SYSCALL_BIT -> x32 part (or kill if x32 is not in the profile)
//!   x86_64 part: binary search over syscall-number intervals
//!   x32 part:    binary search over syscall-number intervals
//! section i386 / aarch64:
//!   ld nr; binary search over syscall-number intervals
//! ```
//!
//! Each ABI's number line is cut into intervals that each end in one leaf: a `ret` (the
//! default action in gaps, a syscall's action when its first rule is unconditional, -ENOSYS
//! above the largest number the profile names), or the argument checks of one syscall. Runs of
//! neighbouring syscalls with the same unconditional action share one interval, so a
//! Docker-style allow list needs about log2(#intervals) comparisons per syscall.

use anyhow::Result;

use super::bpf::{Asm, Cmp, Label};
use super::profile::{
    Abi, AbiPlan, Cond, Op, Plan, Rule, AUDIT_ARCH_X86_64, RET_ERRNO, RET_KILL_PROCESS,
    X32_SYSCALL_BIT,
};
use crate::sys::seccomp::SockFilter;

/// What a syscall from an ABI the filter does not cover gets. libseccomp's default is to kill
/// the thread; killing the process avoids leaving the rest of it running in a broken state.
pub(super) const RET_BAD_ARCH: u32 = RET_KILL_PROCESS;

// Offsets into struct seccomp_data.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

fn arg_lo(index: u32) -> u32 {
    OFF_ARGS + 8 * index + if cfg!(target_endian = "big") { 4 } else { 0 }
}

fn arg_hi(index: u32) -> u32 {
    OFF_ARGS + 8 * index + if cfg!(target_endian = "big") { 0 } else { 4 }
}

pub(super) fn generate(plan: &Plan) -> Result<Vec<SockFilter>> {
    let mut a = Asm::default();
    // One section per AUDIT_ARCH value, in the order the ABIs were listed (native first).
    let mut sections: Vec<(u32, Label)> = Vec::new();
    for p in &plan.abis {
        let arch = p.abi.audit_arch();
        if !sections.iter().any(|(x, _)| *x == arch) {
            sections.push((arch, a.label()));
        }
    }
    a.ld(OFF_ARCH);
    for &(arch, section) in &sections {
        let next = a.label();
        a.jump(Cmp::Eq, arch, section, next);
        a.bind(next);
    }
    a.ret(RET_BAD_ARCH);

    let find = |abi| plan.abis.iter().find(|p| p.abi == abi);
    for &(arch, section) in &sections {
        a.bind(section);
        a.ld(OFF_NR);
        if arch == AUDIT_ARCH_X86_64 {
            let (x64, x32) = (a.label(), a.label());
            a.jump(Cmp::Ge, X32_SYSCALL_BIT, x32, x64);
            a.bind(x64);
            abi_part(&mut a, plan, find(Abi::X86_64), 0, X32_SYSCALL_BIT.into());
            a.bind(x32);
            abi_part(
                &mut a,
                plan,
                find(Abi::X32),
                X32_SYSCALL_BIT.into(),
                1 << 32,
            );
        } else {
            let p = plan.abis.iter().find(|p| p.abi.audit_arch() == arch);
            abi_part(&mut a, plan, p, 0, 1 << 32);
        }
    }
    a.finish()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaf<'a> {
    Ret(u32),
    Rules(&'a [Rule]),
}

/// The code for syscall numbers in `lo..hi` of one ABI; A holds the syscall number.
fn abi_part(a: &mut Asm, plan: &Plan, p: Option<&AbiPlan>, lo: u64, hi: u64) {
    let Some(p) = p else {
        a.ret(RET_BAD_ARCH);
        return;
    };
    let ivs = intervals(plan, p, lo, hi);
    tree(a, &ivs, p.abi, plan.default);
}

/// Cuts `lo..hi` into intervals, each given by its first number and its leaf.
fn intervals<'a>(plan: &Plan, p: &'a AbiPlan, lo: u64, hi: u64) -> Vec<(u64, Leaf<'a>)> {
    let mut out: Vec<(u64, Leaf<'a>)> = Vec::new();
    let mut set = |start: u64, leaf| {
        if start >= hi {
            return;
        }
        match out.last_mut() {
            Some(last) if last.0 == start => last.1 = leaf,
            _ => out.push((start, leaf)),
        }
    };
    set(lo, Leaf::Ret(plan.default));
    for (&nr, rules) in p.syscalls.range(lo as u32..) {
        if u64::from(nr) >= hi {
            break;
        }
        let leaf = match rules.first() {
            None => Leaf::Ret(plan.default),
            Some(r) if r.conds.is_empty() => Leaf::Ret(r.action),
            Some(_) => Leaf::Rules(rules),
        };
        set(nr.into(), leaf);
        set(u64::from(nr) + 1, Leaf::Ret(plan.default));
    }
    if plan.enosys {
        if let Some(max) = p.max_nr {
            set(
                u64::from(max) + 1,
                Leaf::Ret(RET_ERRNO | libc::ENOSYS as u32),
            );
        }
    }
    // Neighbours that return the same value are one interval.
    out.dedup_by(|next, prev| matches!((prev.1, next.1), (Leaf::Ret(x), Leaf::Ret(y)) if x == y));
    out
}

/// Binary search over the intervals: `jge start-of-upper-half`, recursively.
fn tree(a: &mut Asm, ivs: &[(u64, Leaf<'_>)], abi: Abi, default: u32) {
    if let [(_, leaf)] = ivs {
        match *leaf {
            Leaf::Ret(k) => a.ret(k),
            Leaf::Rules(rules) => emit_rules(a, rules, abi.wide_args(), default),
        }
        return;
    }
    let mid = ivs.len() / 2;
    let (lower, upper) = (a.label(), a.label());
    a.jump(Cmp::Ge, ivs[mid].0 as u32, upper, lower);
    a.bind(lower);
    tree(a, &ivs[..mid], abi, default);
    a.bind(upper);
    tree(a, &ivs[mid..], abi, default);
}

/// The rules of one syscall in order; the first whose conditions all hold returns its action.
fn emit_rules(a: &mut Asm, rules: &[Rule], wide: bool, default: u32) {
    for r in rules {
        let next = a.label();
        for c in &r.conds {
            emit_cond(a, c, wide, next);
        }
        a.ret(r.action);
        a.bind(next);
        if r.conds.is_empty() {
            return;
        }
    }
    a.ret(default);
}

/// Falls through when `c` holds, jumps to `fail` otherwise. 64-bit comparisons look at the
/// high words first: they decide unless equal, in which case the low words do.
fn emit_cond(a: &mut Asm, c: &Cond, wide: bool, fail: Label) {
    let pass = a.label();
    let (vhi, vlo) = ((c.value >> 32) as u32, c.value as u32);
    if !wide {
        a.ld(arg_lo(c.index));
        match c.op {
            Op::Eq => a.jump(Cmp::Eq, vlo, pass, fail),
            Op::Ne => a.jump(Cmp::Eq, vlo, fail, pass),
            Op::Gt => a.jump(Cmp::Gt, vlo, pass, fail),
            Op::Ge => a.jump(Cmp::Ge, vlo, pass, fail),
            Op::Lt => a.jump(Cmp::Ge, vlo, fail, pass),
            Op::Le => a.jump(Cmp::Gt, vlo, fail, pass),
            Op::MaskedEq { mask } => {
                a.and(mask as u32);
                a.jump(Cmp::Eq, vlo, pass, fail);
            }
        }
        a.bind(pass);
        return;
    }
    let low = a.label();
    a.ld(arg_hi(c.index));
    // (jump if the high words decide `true`, ... `false`) for the ordered comparisons.
    // With vhi = 0 the high word cannot be below it, with vhi = u32::MAX not above it: those
    // cases need one jump less.
    let ordered = |a: &mut Asm, hi_true: Label, hi_false: Label, cmp: Cmp, lo_t, lo_f| {
        if vhi == 0 {
            a.jump(Cmp::Gt, vhi, hi_true, low);
        } else if vhi == u32::MAX {
            a.jump(Cmp::Eq, vhi, low, hi_false);
        } else {
            let eq = a.label();
            a.jump(Cmp::Gt, vhi, hi_true, eq);
            a.bind(eq);
            a.jump(Cmp::Eq, vhi, low, hi_false);
        }
        a.bind(low);
        a.ld(arg_lo(c.index));
        a.jump(cmp, vlo, lo_t, lo_f);
    };
    match c.op {
        Op::Eq | Op::Ne => {
            let (t, f) = if c.op == Op::Eq {
                (pass, fail)
            } else {
                (fail, pass)
            };
            a.jump(Cmp::Eq, vhi, low, f);
            a.bind(low);
            a.ld(arg_lo(c.index));
            a.jump(Cmp::Eq, vlo, t, f);
        }
        Op::Gt => ordered(a, pass, fail, Cmp::Gt, pass, fail),
        Op::Ge => ordered(a, pass, fail, Cmp::Ge, pass, fail),
        Op::Lt => ordered(a, fail, pass, Cmp::Ge, fail, pass),
        Op::Le => ordered(a, fail, pass, Cmp::Gt, fail, pass),
        Op::MaskedEq { mask } => {
            a.and((mask >> 32) as u32);
            a.jump(Cmp::Eq, vhi, low, fail);
            a.bind(low);
            a.ld(arg_lo(c.index));
            a.and(mask as u32);
            a.jump(Cmp::Eq, vlo, pass, fail);
        }
    }
    a.bind(pass);
}
