//! From a [`Plan`] to the BPF program.
//!
//! Layout:
//!
//! ```text
//!   ld arch; jeq AUDIT_ARCH_* -> section ...; ret KILL_THREAD         (bad architecture)
//! section (one per AUDIT_ARCH value; x86_64 and x32 share one):
//!   ld nr; binary search over syscall-number intervals
//! ```
//!
//! Each section's number line is cut into intervals that each end in one leaf: a `ret` (the
//! default action in gaps, a syscall's action when it has an unconditional rule, -ENOSYS in
//! runc's stub range, the bad-architecture action for numbers of an ABI the profile does not
//! cover) or the condition tree of one syscall. Runs of neighbouring numbers with the same
//! `ret` share one interval, so a Docker-style allow list needs about log2(#intervals)
//! comparisons per syscall.
//!
//! What the x86_64 section does with the X32 bit follows libseccomp and runc: with x32 in the
//! profile, x86_64 and x32 syscalls are both looked up and any other number gets the default
//! action; without it, numbers with the bit (other than -1, which tracers use to skip a
//! syscall) are a bad architecture. runc's -ENOSYS stub runs first and splits the number line
//! by bit 30 into an x86_64 and an x32 half.

use std::collections::BTreeMap;

use anyhow::Result;

use super::bpf::{Asm, Cmp, Label};
use super::profile::{
    Abi, AbiPlan, Decision, Plan, AUDIT_ARCH_X86_64, RET_ERRNO, RET_KILL_THREAD, X32_SYSCALL_BIT,
};
use super::ruletree::{self, Branch, Node};
use crate::sys::seccomp::SockFilter;

/// What a syscall from an ABI the filter does not cover gets: libseccomp's default, which
/// runc keeps.
pub(super) const RET_BAD_ARCH: u32 = RET_KILL_THREAD;

const RET_ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;
/// One past the largest syscall number.
const END: u64 = 1 << 32;

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

    for &(arch, section) in &sections {
        a.bind(section);
        a.ld(OFF_NR);
        let ivs = intervals(plan, arch);
        tree(&mut a, &ivs, plan.default);
    }
    a.finish()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaf<'a> {
    Ret(u32),
    Rules(&'a [Node]),
}

/// The number line of one AUDIT_ARCH section as painted layers: the later layer wins.
struct Line<'a>(BTreeMap<u64, Leaf<'a>>);

impl<'a> Line<'a> {
    fn new(leaf: Leaf<'a>) -> Self {
        Line(BTreeMap::from([(0, leaf)]))
    }

    fn paint(&mut self, lo: u64, hi: u64, leaf: Leaf<'a>) {
        if lo >= hi {
            return;
        }
        let after = *self.0.range(..=hi).next_back().expect("0 is a key").1;
        let inside: Vec<u64> = self.0.range(lo..hi).map(|(k, _)| *k).collect();
        for k in inside {
            self.0.remove(&k);
        }
        self.0.insert(lo, leaf);
        if hi < END {
            self.0.entry(hi).or_insert(after);
        }
    }

    fn syscalls(&mut self, p: &'a AbiPlan) {
        for (&nr, d) in &p.syscalls {
            let leaf = match d {
                Decision::Ret(k) => Leaf::Ret(*k),
                Decision::Tree(t) => Leaf::Rules(&t.level),
            };
            self.paint(nr.into(), u64::from(nr) + 1, leaf);
        }
    }
}

/// Cuts one section's number line into intervals, each given by its first number and leaf.
fn intervals(plan: &Plan, arch: u32) -> Vec<(u64, Leaf<'_>)> {
    let find = |abi| plan.abis.iter().find(|p| p.abi == abi);
    let default = Leaf::Ret(plan.default);
    let enosys = Leaf::Ret(RET_ENOSYS);
    let bit = u64::from(X32_SYSCALL_BIT);
    let mut line = Line::new(default);
    if arch == AUDIT_ARCH_X86_64 {
        let (x64, x32) = (find(Abi::X86_64), find(Abi::X32));
        if x32.is_none() {
            line.paint(bit, END - 1, Leaf::Ret(RET_BAD_ARCH));
        }
        for p in [x64, x32].into_iter().flatten() {
            line.syscalls(p);
        }
        // runc's stub tells the halves apart by bit 30 alone.
        if let Some(max) = x64.and_then(|p| p.enosys_above) {
            line.paint(u64::from(max) + 1, bit, enosys);
            line.paint(2 * bit, 3 * bit, enosys);
        }
        if let Some(max) = x32.and_then(|p| p.enosys_above) {
            line.paint(u64::from(max) + 1, 2 * bit, enosys);
            line.paint(3 * bit, END, enosys);
        }
    } else {
        for p in plan.abis.iter().filter(|p| p.abi.audit_arch() == arch) {
            line.syscalls(p);
            if let Some(max) = p.enosys_above {
                line.paint(u64::from(max) + 1, END, enosys);
            }
        }
    }
    let mut out: Vec<(u64, Leaf<'_>)> = line.0.into_iter().collect();
    // Neighbours that return the same value are one interval.
    out.dedup_by(|next, prev| matches!((prev.1, next.1), (Leaf::Ret(x), Leaf::Ret(y)) if x == y));
    out
}

/// Binary search over the intervals: `jge start-of-upper-half`, recursively.
fn tree(a: &mut Asm, ivs: &[(u64, Leaf<'_>)], default: u32) {
    if let [(_, leaf)] = ivs {
        match *leaf {
            Leaf::Ret(k) => a.ret(k),
            Leaf::Rules(level) => {
                let fail = a.label();
                emit_level(a, level, fail);
                a.bind(fail);
                a.ret(default);
            }
        }
        return;
    }
    let mid = ivs.len() / 2;
    let (lower, upper) = (a.label(), a.label());
    a.jump(Cmp::Ge, ivs[mid].0 as u32, upper, lower);
    a.bind(lower);
    tree(a, &ivs[..mid], default);
    a.bind(upper);
    tree(a, &ivs[mid..], default);
}

/// One level of a condition tree: each node's outcome returns, descends into the level below
/// or moves on to the next node; when the level runs out, control goes to `fail`.
fn emit_level(a: &mut Asm, level: &[Node], fail: Label) {
    for (k, node) in level.iter().enumerate() {
        let next = if k + 1 == level.len() {
            fail
        } else {
            a.label()
        };
        a.ld(if node.hi {
            arg_hi(node.arg.into())
        } else {
            arg_lo(node.arg.into())
        });
        if node.mask != u32::MAX {
            a.and(node.mask);
        }
        let target = |a: &mut Asm, b: &Branch| match b {
            Branch::None => next,
            _ => a.label(),
        };
        let (t, f) = (target(a, &node.t), target(a, &node.f));
        let cmp = match node.cmp {
            ruletree::Cmp::Eq | ruletree::Cmp::MaskedEq => Cmp::Eq,
            ruletree::Cmp::Gt => Cmp::Gt,
            ruletree::Cmp::Ge => Cmp::Ge,
        };
        a.jump(cmp, node.datum, t, f);
        for (b, l) in [(&node.t, t), (&node.f, f)] {
            match b {
                Branch::None => {}
                Branch::Act(k) => {
                    a.bind(l);
                    a.ret(*k);
                }
                Branch::Next(sub) => {
                    a.bind(l);
                    emit_level(a, sub, next);
                }
            }
        }
        if k + 1 < level.len() {
            a.bind(next);
        }
    }
}
