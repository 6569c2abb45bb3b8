//! Scheduling and execution-domain attributes of the calling process: I/O priority, the
//! scheduler policy (sched_setattr), CPU affinity, personality and the NUMA memory policy.
//! None of these has a safe wrapper in nix with the full set of parameters the spec allows.

use std::io;

/// ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level) for the calling process.
pub fn ioprio_set(class: u32, level: u32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    const IOPRIO_CLASS_SHIFT: u32 = 13;
    let prio = (class << IOPRIO_CLASS_SHIFT) | (level & 0x1fff);
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
    super::cvt(ret).map(drop)
}

/// `struct sched_attr` from linux/sched/types.h (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// sched_setattr(0, attr, 0) for the calling thread (the init is single-threaded).
pub fn sched_setattr(attr: &SchedAttr) -> io::Result<()> {
    let mut a = *attr;
    a.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: a valid sched_attr whose size field matches the struct we pass.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &a as *const SchedAttr, 0u32) };
    super::cvt(ret).map(drop)
}

/// sched_setaffinity(0, cpus) with the CPUs given by number.
pub fn sched_setaffinity(cpus: &[usize]) -> io::Result<()> {
    let max = cpus.iter().copied().max().unwrap_or(0);
    let mut mask = vec![0u64; max / 64 + 1];
    for &c in cpus {
        mask[c / 64] |= 1 << (c % 64);
    }
    // SAFETY: pointer and byte length of a live, initialised buffer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            0,
            mask.len() * 8,
            mask.as_ptr(),
        )
    };
    super::cvt(ret).map(drop)
}

/// personality(2) with the full persona value (domain | flags).
pub fn personality(persona: u64) -> io::Result<()> {
    // SAFETY: integer argument only; returns the previous persona.
    let ret = unsafe { libc::syscall(libc::SYS_personality, persona) };
    super::cvt(ret).map(drop)
}

/// set_mempolicy(mode | flags, nodes) for the calling thread; `nodes` are node numbers.
pub fn set_mempolicy(mode: i32, nodes: &[usize]) -> io::Result<()> {
    let ret = if nodes.is_empty() {
        // SAFETY: a NULL node mask with maxnode 0 is the documented "no nodes" form.
        unsafe {
            libc::syscall(
                libc::SYS_set_mempolicy,
                mode,
                std::ptr::null::<u64>(),
                0usize,
            )
        }
    } else {
        let max = nodes.iter().copied().max().unwrap_or(0);
        let mut mask = vec![0u64; max / 64 + 1];
        for &n in nodes {
            mask[n / 64] |= 1 << (n % 64);
        }
        // The kernel reads maxnode - 1 bits: pass one more than the bits in the buffer.
        let maxnode = mask.len() * 64 + 1;
        // SAFETY: the mask buffer holds maxnode - 1 bits and outlives the call.
        unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, mask.as_ptr(), maxnode) }
    };
    super::cvt(ret).map(drop)
}
