//! OCI `linux.seccomp`: the profile compiled to a classic-BPF seccomp filter, and its loader.
//!
//! [`compile`] is pure: it checks the profile (errors name the config field) and builds a
//! [`Filter`]. Call it early (bundle validation does) and again, or hand the result over, in
//! the container's init, which calls [`load`] as the last step before execve, after
//! no_new_privs is set (or while it still holds CAP_SYS_ADMIN).
//!
//! Semantics: those of runc 1.1.5 with libseccomp 2.5.4 (what runc, crun and youki users
//! write their profiles against), checked instruction-for-result against the real libseccomp
//! by the differential test (`differential/`):
//! * The native architecture is always covered; `architectures` adds more. x86_64, x32, i386
//!   and aarch64 have syscall tables; other architectures are skipped with a debug line, so
//!   their syscalls hit the bad-architecture action, KILL_THREAD as in libseccomp. x86_64
//!   and x32 share AUDIT_ARCH_X86_64: without x32 in the profile an x32 call (any number
//!   with the X32 bit but -1) is a bad architecture; with it, any number no rule names gets
//!   the default action.
//! * Every name of an entry is a rule of its own, in profile order. A rule whose action
//!   (errno included) equals the default action is dropped first. A name is resolved per
//!   architecture; one unknown everywhere is skipped with a warning. On i386 the socket and
//!   SysV IPC calls also go to socketcall(2)/ipc(2) with argument 0 fixed to the call
//!   number. Conditions on different arguments are ANDed; several on the same argument
//!   become separate, ORed rules, as runc does.
//! * Per syscall, the first unconditional rule decides alone. Conditional rules are merged
//!   into libseccomp's decision tree ([`ruletree`]): when several match, the tree's order
//!   decides (higher argument first, ...), not the profile's. Rules libseccomp refuses
//!   (same conditions, different actions: EEXIST, so runc fails) are refused, naming the
//!   syscall; so are the rule sets libseccomp compiles into a filter that does not do what
//!   they say, or hangs on (see [`ruletree`]).
//! * 64-bit ABIs compare the full 64-bit argument (both 32-bit halves); 32-bit ABIs (i386,
//!   x32) its low 32 bits. SCMP_CMP_MASKED_EQ compares `arg & mask` with `value & mask`.
//! * runc's -ENOSYS stub: unless the default action is ALLOW, LOG or TRACE, syscall numbers
//!   above the largest one the profile names return ENOSYS, on each architecture the profile
//!   lists (not on the native one unless listed), so programs probing for newer syscalls
//!   than the profile knows fall back instead of failing with EPERM.
//! * errno values go up to 4094 (libseccomp refuses 4095). NOTIFY cannot be the default
//!   action nor apply to write(2), as in runc, nor to sendmsg(2), which hands the listener
//!   fd to the agent at `listenerPath` after loading ([`agent`]); NOTIFY needs a
//!   `listenerPath`. `flags` are honoured (runc 1.1.5 refuses them).
//!
//! Where skiff deliberately differs from runc + libseccomp 2.5.4 (README, "seccomp"):
//! names of syscalls newer than libseccomp's table are applied (runc ignores them); two
//! libseccomp code-generation bugs are not reproduced (a section that forgets to load the
//! syscall number when a pseudo syscall heads it, and a comparison that reuses a stale
//! accumulator); libseccomp's pruning of redundant rules is not modelled, so a conflict it
//! prunes away is still refused.
//!
//! Why skiff compiles profiles itself, with neither libseccomp nor seccompiler at run time:
//! it compiles and loads the Docker-like profile in a fraction of libseccomp's time (figures
//! in the README; `cargo test --release --lib bench_docker_like -- --ignored --nocapture`),
//! the release binary stays static with no C library to link, and the semantics above are
//! pinned by the differential test rather than by whichever libseccomp a host has.
//! seccompiler does not fit: its `SeccompFilter` has a single match action for all rules
//! (OCI gives every entry its own), targets exactly one architecture per program and only
//! x86_64, aarch64 and riscv64 (no i386, no x32 handling of the X32 bit), has no
//! user-notification action, and kills the process on an architecture mismatch with no way
//! to cover a second one.

pub mod agent;
mod bpf;
mod codegen;
mod profile;
mod ruletree;
mod tables;

// The tests use x86_64 syscall numbers and ABIs.
#[cfg(all(test, target_arch = "x86_64"))]
mod bpf_eval;
#[cfg(all(test, target_arch = "x86_64"))]
mod differential;
#[cfg(all(test, target_arch = "x86_64"))]
mod kernel_tests;
#[cfg(all(test, target_arch = "x86_64"))]
mod tests;

use std::ops::{BitOr, BitOrAssign};
use std::os::fd::OwnedFd;

use anyhow::{ensure, Context, Result};
use oci_spec::runtime::LinuxSeccomp;

pub use crate::sys::seccomp::SockFilter;
pub use agent::{install, Agent};
pub use bpf::MAX_INSNS;

/// A compiled filter: the BPF program plus how it must be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    program: Vec<SockFilter>,
    flags: Flags,
    notify: bool,
}

impl Filter {
    /// The BPF instructions, in the kernel's `struct sock_filter` layout.
    pub fn instructions(&self) -> &[SockFilter] {
        &self.program
    }

    /// The seccomp(2) flags the profile asks for; includes NEW_LISTENER when a rule uses
    /// SCMP_ACT_NOTIFY. Pass them to [`load`].
    pub fn flags(&self) -> Flags {
        self.flags
    }

    /// True when a rule uses SCMP_ACT_NOTIFY: [`load`] then returns the listener fd.
    pub fn uses_notify(&self) -> bool {
        self.notify
    }
}

/// SECCOMP_FILTER_FLAG_* bits for seccomp(2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(u32);

impl Flags {
    pub const TSYNC: Flags = Flags(1 << 0);
    pub const LOG: Flags = Flags(1 << 1);
    pub const SPEC_ALLOW: Flags = Flags(1 << 2);
    pub const NEW_LISTENER: Flags = Flags(crate::sys::seccomp::FLAG_NEW_LISTENER);
    pub const TSYNC_ESRCH: Flags = Flags(1 << 4);
    pub const WAIT_KILLABLE_RECV: Flags = Flags(1 << 5);

    pub const fn empty() -> Flags {
        Flags(0)
    }

    pub const fn bits(self) -> u32 {
        self.0
    }

    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

/// Compiles an OCI seccomp profile. Warns (through [`crate::logging`]) about syscall names and
/// architectures it has to skip; fails, naming the field, on anything it cannot honour.
pub fn compile(s: &LinuxSeccomp) -> Result<Filter> {
    let plan = profile::plan(s)?;
    let program = codegen::generate(&plan)?;
    Ok(Filter {
        program,
        flags: plan.flags,
        notify: plan.notify,
    })
}

/// Installs `filter` on the calling thread with seccomp(2), normally with
/// `flags = filter.flags()`. Returns the user-notification listener fd when `flags` contains
/// [`Flags::NEW_LISTENER`] (required when the filter uses SCMP_ACT_NOTIFY), `None` otherwise.
///
/// The caller must have set no_new_privs or hold CAP_SYS_ADMIN. On success nothing is
/// allocated, so this is safe to call in a child of fork().
pub fn load(filter: &Filter, flags: Flags) -> Result<Option<OwnedFd>> {
    ensure!(
        !filter.notify || flags.contains(Flags::NEW_LISTENER),
        "linux.seccomp: the filter uses SCMP_ACT_NOTIFY and must be loaded with \
         SECCOMP_FILTER_FLAG_NEW_LISTENER"
    );
    crate::sys::seccomp::set_mode_filter(&filter.program, flags.bits()).with_context(|| {
        format!(
            "linux.seccomp: loading the filter ({} instructions, flags {:#x})",
            filter.program.len(),
            flags.bits()
        )
    })
}
