//! Test-only classic-BPF interpreter for seccomp programs: runs a program (ours or one that
//! libseccomp exported) on a hand-made `struct seccomp_data` and returns the filter's verdict.
//! It understands exactly the instructions seccomp filters use here and panics on anything
//! else, on reads outside seccomp_data and on jumps out of the program, so a malformed program
//! fails the test instead of being evaluated loosely.

use crate::sys::seccomp::SockFilter;

// From linux/bpf_common.h.
const LD_W_ABS: u16 = 0x20;
const ALU_AND_K: u16 = 0x54;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGT_K: u16 = 0x25;
const JMP_JGE_K: u16 = 0x35;
const JMP_JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

/// `struct seccomp_data`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Data {
    pub nr: u32,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

impl Data {
    fn word(&self, off: u32) -> u32 {
        let mut raw = [0u8; 64];
        raw[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        raw[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        raw[8..16].copy_from_slice(&self.ip.to_ne_bytes());
        for (i, a) in self.args.iter().enumerate() {
            raw[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let off = off as usize;
        assert!(
            off % 4 == 0 && off + 4 <= raw.len(),
            "load outside seccomp_data"
        );
        u32::from_ne_bytes(raw[off..off + 4].try_into().unwrap())
    }
}

/// The value the program returns for `d`.
pub(super) fn run(p: &[SockFilter], d: &Data) -> u32 {
    run_traced(p, d).0
}

/// The value the program returns for `d`, and whether it loaded the syscall number on the
/// way.
pub(super) fn run_traced(p: &[SockFilter], d: &Data) -> (u32, bool) {
    let (mut acc, mut pc, mut loaded_nr) = (0u32, 0usize, false);
    loop {
        assert!(pc < p.len(), "ran off the end of the program");
        let i = p[pc];
        pc += 1;
        let taken = match i.code {
            LD_W_ABS => {
                acc = d.word(i.k);
                loaded_nr |= i.k == 0;
                continue;
            }
            ALU_AND_K => {
                acc &= i.k;
                continue;
            }
            JMP_JA => {
                pc += i.k as usize;
                continue;
            }
            RET_K => return (i.k, loaded_nr),
            JMP_JEQ_K => acc == i.k,
            JMP_JGT_K => acc > i.k,
            JMP_JGE_K => acc >= i.k,
            JMP_JSET_K => acc & i.k != 0,
            code => panic!("unexpected BPF opcode {code:#x} at {}", pc - 1),
        };
        pc += usize::from(if taken { i.jt } else { i.jf });
    }
}
