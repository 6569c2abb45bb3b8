//! Seeded random profiles and the `seccomp_data` inputs that exercise them.

use serde_json::{json, Value};

use super::super::bpf_eval::Data;
use super::super::profile::{Abi, AUDIT_ARCH_AARCH64, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};

const X32_BIT: u32 = 0x4000_0000;

/// splitmix64: small, seedable, good enough to spread test cases.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

/// Syscall names the random profiles draw from: ones that behave alike everywhere, ones
/// that differ per ABI (i386-only, multiplexed socket and IPC calls, x32's own numbers),
/// a high number for runc's -ENOSYS stub, number 0, and a name nobody knows.
pub(super) const NAMES: &[&str] = &[
    "getpgid",
    "mkdir",
    "mkdirat",
    "getpid",
    "read",
    "personality",
    "clone",
    "socket",
    "connect",
    "accept",
    "recv",
    "semop",
    "shmget",
    "socketcall",
    "ipc",
    "mmap2",
    "arch_prctl",
    "execve",
    "rt_sigaction",
    "preadv2",
    "futex_waitv",
    "futex_requeue",
    "vm86",
    "write",
    "no_such_syscall",
];

const VALUES: &[u64] = &[
    0,
    1,
    2,
    5,
    7,
    0x7f,
    0xff,
    0x1ff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0005,
    0x1_0000_0010,
    0xffff_ffff_0000_0000,
    0x8000_0000_0000_0000,
    u64::MAX,
];

const MASKS: &[u64] = &[
    0,
    0xf0,
    0xff,
    0xffff_ffff,
    0xffff_ffff_0000_0000,
    0x1_0000_00ff,
    u64::MAX,
];

const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

fn value(rng: &mut Rng) -> u64 {
    match rng.below(10) {
        0 => rng.next(),
        1 => rng.next() % 16,
        _ => rng.pick(VALUES),
    }
}

/// An action with its errnoRet, if it takes one; NOTIFY only when `notify` is allowed.
fn action(rng: &mut Rng, notify: bool) -> (&'static str, Option<u32>) {
    let errno = |rng: &mut Rng| match rng.below(6) {
        0 => None,
        _ => Some(rng.pick(&[0, 1, 13, 38, 77, 4094])),
    };
    match rng.below(20) {
        0..=6 => ("SCMP_ACT_ALLOW", None),
        7..=10 => ("SCMP_ACT_ERRNO", errno(rng)),
        11 => ("SCMP_ACT_KILL", None),
        12 => ("SCMP_ACT_KILL_THREAD", None),
        13 => ("SCMP_ACT_KILL_PROCESS", None),
        14 => ("SCMP_ACT_TRAP", None),
        15 => ("SCMP_ACT_TRACE", errno(rng)),
        16 if notify => ("SCMP_ACT_NOTIFY", None),
        _ => ("SCMP_ACT_LOG", None),
    }
}

fn with_errno(mut v: Value, errno: Option<u32>, key: &str) -> Value {
    if let Some(e) = errno {
        v[key] = json!(e);
    }
    v
}

/// A random profile over `names`.
pub(super) fn profile(rng: &mut Rng, names: &[&str]) -> Value {
    let (default, default_errno) = action(rng, false);
    let mut p = with_errno(
        json!({ "defaultAction": default }),
        default_errno,
        "defaultErrnoRet",
    );
    if rng.chance(70) {
        let archs: Vec<&str> = (0..rng.below(4) + 1)
            .map(|_| {
                rng.pick(&[
                    "SCMP_ARCH_X86_64",
                    "SCMP_ARCH_X86",
                    "SCMP_ARCH_X32",
                    "SCMP_ARCH_X32",
                    "SCMP_ARCH_X86",
                    "SCMP_ARCH_NATIVE",
                    "SCMP_ARCH_AARCH64",
                ])
            })
            .collect();
        p["architectures"] = json!(archs);
    }
    let mut notify = false;
    let entries: Vec<Value> =
        (0..rng.below(6) + 1)
            .map(|_| {
                let (act, errno) = if rng.chance(15) {
                    (default, default_errno)
                } else {
                    action(rng, true)
                };
                notify |= act == "SCMP_ACT_NOTIFY";
                let n: Vec<&str> = (0..rng.below(3) + 1).map(|_| rng.pick(names)).collect();
                let mut e = with_errno(json!({ "names": n, "action": act }), errno, "errnoRet");
                let args: Vec<Value> = (0..rng.pick(&[0, 0, 1, 1, 1, 2, 2, 3]))
                .map(|_| {
                    let index = if rng.chance(85) {
                        rng.below(3)
                    } else {
                        rng.below(6)
                    };
                    let op = rng.pick(OPS);
                    if op == "SCMP_CMP_MASKED_EQ" {
                        let mask = if rng.chance(80) { rng.pick(MASKS) } else { rng.next() };
                        json!({ "index": index, "op": op, "value": mask, "valueTwo": value(rng) })
                    } else {
                        json!({ "index": index, "op": op, "value": value(rng) })
                    }
                })
                .collect();
                if !args.is_empty() {
                    e["args"] = json!(args);
                }
                e
            })
            .collect();
    p["syscalls"] = json!(entries);
    if notify {
        p["listenerPath"] = json!("/run/skiff-test-agent.sock");
    }
    p
}

/// Every datum and mask of the profile: the interesting argument values.
fn datums(p: &Value) -> Vec<u64> {
    let mut out = vec![0, u64::MAX];
    for e in p["syscalls"].as_array().into_iter().flatten() {
        for a in e["args"].as_array().into_iter().flatten() {
            for k in ["value", "valueTwo"] {
                if let Some(v) = a[k].as_u64() {
                    out.push(v);
                }
            }
        }
    }
    out
}

fn arg_near(rng: &mut Rng, datums: &[u64]) -> u64 {
    let d = rng.pick(datums);
    match rng.below(12) {
        0 => d.wrapping_add(1),
        1 => d.wrapping_sub(1),
        2 => d.rotate_left(32),
        3 => d ^ (1 << 32),
        4 => d & 0xffff_ffff,
        5 => d | (rng.next() & 0xffff_ffff_0000_0000),
        6 => d ^ (rng.next() & 0xff),
        7 => rng.next(),
        8 => (d & 0xffff_ffff) | (u64::from(rng.below(3) as u32) << 32),
        _ => d,
    }
}

/// `n` inputs for `p`: its syscalls' numbers on every ABI and their neighbours, numbers
/// around runc's -ENOSYS limit and the X32 bit, other architectures; argument values at and
/// around the profile's datums, in both halves.
pub(super) fn inputs(rng: &mut Rng, p: &Value, n: usize) -> Vec<Data> {
    let names: Vec<&str> = p["syscalls"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["names"].as_array().into_iter().flatten())
        .filter_map(|n| n.as_str())
        .collect();
    let datums = datums(p);
    let abis = [
        (Abi::X86_64, AUDIT_ARCH_X86_64),
        (Abi::X32, AUDIT_ARCH_X86_64),
        (Abi::X86, AUDIT_ARCH_I386),
        (Abi::Aarch64, AUDIT_ARCH_AARCH64),
    ];
    (0..n)
        .map(|_| {
            let (abi, arch) = abis[rng.pick(&[0, 0, 0, 0, 1, 1, 2, 2, 2, 3])];
            let nums: Vec<u32> = names
                .iter()
                .flat_map(|n| abi.resolve(n))
                .map(|t| t.nr)
                .collect();
            let base = if abi == Abi::X32 { X32_BIT } else { 0 };
            let top = nums.iter().copied().max().unwrap_or(base + 300);
            let nr = match rng.below(20) {
                0..=9 if !nums.is_empty() => rng.pick(&nums),
                10..=12 if !nums.is_empty() => rng.pick(&nums).wrapping_add(1),
                13 if !nums.is_empty() => rng.pick(&nums).wrapping_sub(1),
                14 => top.wrapping_add(1 + rng.below(3) as u32),
                15 => rng.pick(&[0, u32::MAX, X32_BIT - 1, X32_BIT, 0x8000_0000, 0xc000_0000]),
                16 => base + rng.below(600) as u32,
                17 => rng.next() as u32,
                _ => base + rng.below(480) as u32,
            };
            let arch = if rng.chance(3) {
                rng.pick(&[0x4000_0028, 0x8000_0016, 0])
            } else {
                arch
            };
            let mut args = [0u64; 6];
            for a in &mut args {
                *a = arg_near(rng, &datums);
            }
            Data {
                nr,
                arch,
                ip: 0,
                args,
            }
        })
        .collect()
}
