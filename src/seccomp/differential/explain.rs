//! The two libseccomp 2.5.4 code-generation bugs skiff deliberately does not reproduce, and
//! how the test recognises a difference they cause (listed in the README):
//!
//! * **Missing syscall-number load.** In an architecture section that must load the syscall
//!   number itself (i386, aarch64, and x86_64 together with x32), libseccomp emits the load
//!   in the block of the first syscall of its priority order; when that syscall is a pseudo
//!   syscall (a name the architecture lacks, e.g. `mmap2` on x86_64) the block is dropped
//!   with the load, and every syscall of the section is compared against the architecture
//!   token instead: the whole section returns the default action. Recognised by the path
//!   through libseccomp's program never loading `seccomp_data.nr`.
//! * **Stale accumulator.** Nodes of one level that compare the same argument word reuse
//!   the loaded word, but when the earlier node's subtree loaded another word and fell
//!   through, the later node compares that one. Recognised by re-evaluating the rule tree
//!   with libseccomp's reuse of the accumulator and getting runc's result.

use super::super::bpf_eval::Data;
use super::super::profile::{
    Abi, Decision, Plan, AUDIT_ARCH_AARCH64, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64,
};
use super::super::ruletree::{Branch, Cmp, Node};

const X32_BIT: u32 = 0x4000_0000;

/// Which word the accumulator holds: `None` is the syscall number; and the mask applied.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Acc {
    word: Option<(u8, bool)>,
    mask: u32,
}

fn word(args: &[u64; 6], (arg, hi): (u8, bool)) -> u32 {
    let a = args[usize::from(arg)];
    if hi {
        (a >> 32) as u32
    } else {
        a as u32
    }
}

/// Evaluates `level` the way libseccomp's code does: a node reloads its word only if the
/// node before it in the level (or the parent, for the first) had another word or a mask
/// that does not cover its own; `value` is what the accumulator really holds.
fn stale(level: &[Node], args: &[u64; 6], entry: Acc, value: &mut u32) -> Option<u32> {
    let mut acc = entry;
    for n in level {
        let w = (n.arg, n.hi);
        if acc.word != Some(w) || n.mask & acc.mask != n.mask {
            *value = word(args, w);
            acc = Acc {
                word: Some(w),
                mask: u32::MAX,
            };
        }
        if n.mask != acc.mask {
            *value &= n.mask;
            acc.mask = n.mask;
        }
        let holds = match n.cmp {
            Cmp::Eq | Cmp::MaskedEq => *value == n.datum,
            Cmp::Gt => *value > n.datum,
            Cmp::Ge => *value >= n.datum,
        };
        match if holds { &n.t } else { &n.f } {
            Branch::Act(a) => return Some(*a),
            Branch::Next(sub) => {
                if let Some(a) = stale(sub, args, acc, value) {
                    return Some(a);
                }
            }
            Branch::None => {}
        }
    }
    None
}

/// libseccomp's result for `d` with its accumulator reuse, if `d` reaches a condition tree.
pub(super) fn with_stale_accumulator(plan: &Plan, d: &Data) -> Option<u32> {
    let abi = match d.arch {
        AUDIT_ARCH_X86_64 if d.nr & X32_BIT != 0 => Abi::X32,
        AUDIT_ARCH_X86_64 => Abi::X86_64,
        AUDIT_ARCH_I386 => Abi::X86,
        AUDIT_ARCH_AARCH64 => Abi::Aarch64,
        _ => return None,
    };
    let p = plan.abis.iter().find(|p| p.abi == abi)?;
    let Decision::Tree(t) = p.syscalls.get(&d.nr)? else {
        return None;
    };
    let entry = Acc {
        word: None,
        mask: u32::MAX,
    };
    let mut value = d.nr;
    Some(stale(&t.level, &d.args, entry, &mut value).unwrap_or(plan.default))
}
