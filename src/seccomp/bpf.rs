//! A tiny classic-BPF assembler with symbolic labels.
//!
//! Conditional jumps have 8-bit offsets (at most 255 instructions forward); `ja` has a 32-bit
//! one. [`Asm::finish`] lays the program out and, for each conditional jump whose target ended
//! up too far away, routes that side through a `ja` trampoline placed right after the jump.
//! Adding trampolines only ever lengthens the program, so marking jumps "far" until nothing
//! changes reaches a fixed point.

use anyhow::{bail, ensure, Result};

use crate::sys::seccomp::SockFilter;

// Opcode parts, from linux/bpf_common.h.
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_AND: u16 = 0x50;
const BPF_JA: u16 = 0x00;
const BPF_K: u16 = 0x00;

pub(super) const LD_W_ABS: u16 = BPF_LD | BPF_W | BPF_ABS;
pub(super) const ALU_AND_K: u16 = BPF_ALU | BPF_AND | BPF_K;
pub(super) const JMP_JA: u16 = BPF_JMP | BPF_JA;
pub(super) const RET_K: u16 = BPF_RET | BPF_K;

/// The kernel's BPF_MAXINSNS.
pub const MAX_INSNS: usize = 4096;

/// Conditional jumps on the accumulator against a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cmp {
    Eq = 0x10,
    Gt = 0x20,
    Ge = 0x30,
}

impl Cmp {
    pub(super) fn code(self) -> u16 {
        BPF_JMP | self as u16 | BPF_K
    }
}

pub(super) type Label = usize;

#[derive(Debug)]
enum Op {
    Ld(u32),
    And(u32),
    Jmp {
        cmp: Cmp,
        k: u32,
        jt: Label,
        jf: Label,
    },
    Ret(u32),
    Bind(Label),
}

#[derive(Default)]
pub(super) struct Asm {
    ops: Vec<Op>,
    labels: usize,
}

impl Asm {
    pub(super) fn label(&mut self) -> Label {
        self.labels += 1;
        self.labels - 1
    }

    /// Places `l` at the current position. Every label is bound exactly once, after all the
    /// jumps to it (classic BPF only jumps forward).
    pub(super) fn bind(&mut self, l: Label) {
        self.ops.push(Op::Bind(l));
    }

    /// A = 32-bit word at offset `off` of seccomp_data.
    pub(super) fn ld(&mut self, off: u32) {
        self.ops.push(Op::Ld(off));
    }

    pub(super) fn and(&mut self, k: u32) {
        self.ops.push(Op::And(k));
    }

    pub(super) fn jump(&mut self, cmp: Cmp, k: u32, jt: Label, jf: Label) {
        self.ops.push(Op::Jmp { cmp, k, jt, jf });
    }

    pub(super) fn ret(&mut self, k: u32) {
        self.ops.push(Op::Ret(k));
    }

    /// Resolves labels (adding trampolines where needed) and encodes the program.
    pub(super) fn finish(self) -> Result<Vec<SockFilter>> {
        // Trampolines only add instructions: give up early on programs already too long.
        let real = self
            .ops
            .iter()
            .filter(|op| !matches!(op, Op::Bind(_)))
            .count();
        too_long(real)?;
        let n = self.ops.len();
        let mut far_t = vec![false; n];
        let mut far_f = vec![false; n];
        let (start, at) = loop {
            let (start, at) = self.layout(&far_t, &far_f)?;
            let mut changed = false;
            for (i, op) in self.ops.iter().enumerate() {
                let Op::Jmp { jt, jf, .. } = *op else {
                    continue;
                };
                let next = start[i] + 1;
                if !far_t[i] && at[jt] - next > 255 {
                    far_t[i] = true;
                    changed = true;
                }
                if !far_f[i] && at[jf] - next > 255 {
                    far_f[i] = true;
                    changed = true;
                }
            }
            if !changed {
                break (start, at);
            }
        };

        let mut out = Vec::with_capacity(n);
        let insn = |code, jt, jf, k| SockFilter { code, jt, jf, k };
        for (i, op) in self.ops.iter().enumerate() {
            let next = start[i] + 1;
            match *op {
                Op::Bind(_) => {}
                Op::Ld(off) => out.push(insn(LD_W_ABS, 0, 0, off)),
                Op::And(k) => out.push(insn(ALU_AND_K, 0, 0, k)),
                Op::Ret(k) => out.push(insn(RET_K, 0, 0, k)),
                Op::Jmp { cmp, k, jt, jf } => {
                    let (ft, ff) = (far_t[i], far_f[i]);
                    // Trampolines follow the jump: `ja jt` first (if far), then `ja jf`.
                    let off_t = if ft { 0 } else { at[jt] - next };
                    let off_f = if ff { usize::from(ft) } else { at[jf] - next };
                    out.push(insn(cmp.code(), off_t as u8, off_f as u8, k));
                    if ft {
                        out.push(insn(JMP_JA, 0, 0, (at[jt] - (next + 1)) as u32));
                    }
                    if ff {
                        let here = next + usize::from(ft) + 1;
                        out.push(insn(JMP_JA, 0, 0, (at[jf] - here) as u32));
                    }
                }
            }
        }
        too_long(out.len())?;
        Ok(out)
    }

    /// Start position of every op and position of every label, given which jump sides use a
    /// trampoline. Fails on an internal error (label unbound, bound twice or jumped back to).
    fn layout(&self, far_t: &[bool], far_f: &[bool]) -> Result<(Vec<usize>, Vec<usize>)> {
        let mut start = Vec::with_capacity(self.ops.len());
        let mut at = vec![usize::MAX; self.labels];
        let mut pos = 0;
        for (i, op) in self.ops.iter().enumerate() {
            start.push(pos);
            pos += match op {
                Op::Bind(l) => {
                    ensure!(
                        at[*l] == usize::MAX,
                        "seccomp: internal error: label bound twice"
                    );
                    at[*l] = pos;
                    0
                }
                Op::Jmp { .. } => 1 + usize::from(far_t[i]) + usize::from(far_f[i]),
                _ => 1,
            };
        }
        for (i, op) in self.ops.iter().enumerate() {
            let Op::Jmp { jt, jf, .. } = *op else {
                continue;
            };
            let targets = [jt, jf];
            for l in targets {
                if at[l] == usize::MAX || at[l] <= start[i] {
                    bail!("seccomp: internal error: jump to an unbound or earlier label");
                }
            }
        }
        Ok((start, at))
    }
}

fn too_long(len: usize) -> Result<()> {
    ensure!(
        len <= MAX_INSNS,
        "linux.seccomp: the compiled filter has at least {len} instructions, more than the \
         kernel's limit of {MAX_INSNS}; shorten the profile"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_jumps_are_direct() {
        let mut a = Asm::default();
        let (t, f) = (a.label(), a.label());
        a.jump(Cmp::Eq, 7, t, f);
        a.bind(f);
        a.ret(1);
        a.bind(t);
        a.ret(2);
        let p = a.finish().unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].jt, p[0].jf, p[0].k), (1, 0, 7));
    }

    #[test]
    fn far_jumps_go_through_trampolines() {
        let mut a = Asm::default();
        let (t, f) = (a.label(), a.label());
        a.jump(Cmp::Ge, 5, t, f);
        a.bind(f);
        for _ in 0..300 {
            a.ret(1);
        }
        a.bind(t);
        a.ret(2);
        let p = a.finish().unwrap();
        // jge, ja (trampoline), 300 x ret 1, ret 2
        assert_eq!(p.len(), 303);
        assert_eq!((p[0].jt, p[0].jf), (0, 1));
        assert_eq!(p[1].code, JMP_JA);
        assert_eq!(2 + p[1].k as usize, 302);
        assert_eq!(p[302].k, 2);
    }

    #[test]
    fn too_long_program_is_an_error() {
        let mut a = Asm::default();
        for _ in 0..=MAX_INSNS {
            a.ret(0);
        }
        let err = a.finish().unwrap_err().to_string();
        assert!(
            err.contains("4097 instructions") && err.contains("4096"),
            "{err}"
        );
    }
}
