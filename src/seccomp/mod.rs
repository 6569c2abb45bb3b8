//! OCI `linux.seccomp`: the profile compiled to a classic-BPF seccomp filter, and its loader.
//!
//! [`compile`] is pure: it checks the profile (errors name the config field) and builds a
//! [`Filter`]. Call it early (bundle validation does) and again, or hand the result over, in
//! the container's init, which calls [`load`] as the last step before execve, after
//! no_new_privs is set (or while it still holds CAP_SYS_ADMIN).
//!
//! Semantics, following runc where the spec is silent:
//! * The native architecture is always covered; `architectures` adds more. x86_64, x32, i386
//!   and aarch64 have syscall tables; other architectures are skipped with a warning, so their
//!   syscalls hit the bad-architecture action (kill the process).
//! * Syscall names are resolved per architecture; a name unknown on every one of them is
//!   skipped with a warning. A profile none of whose names resolves is an error.
//! * For one syscall the entries apply in profile order: the first whose argument conditions
//!   all hold decides. Conditions on different arguments are ANDed; several conditions on the
//!   same argument become separate, ORed rules, as in runc.
//! * 64-bit ABIs compare the full 64-bit argument (both 32-bit halves); 32-bit ABIs (i386,
//!   x32) compare its low 32 bits, as libseccomp does.
//! * If the default action is not permissive (ALLOW/LOG/TRACE), syscall numbers above the
//!   largest one the profile names return ENOSYS (runc's patch), so programs probing for
//!   newer syscalls than the profile knows fall back instead of failing with EPERM.
//! * NOTIFY cannot be the default action nor apply to write(2), as in runc, nor to sendmsg(2),
//!   which hands the listener fd to the agent at `listenerPath` after loading ([`agent`]);
//!   NOTIFY needs a `listenerPath`.
//!
//! Why not the seccompiler crate: its `SeccompFilter` has a single match action for all
//! rules (OCI gives every entry its own), targets exactly one architecture per program and
//! only x86_64, aarch64 and riscv64 (no i386, no x32 handling of the X32 bit), has no
//! user-notification action, and kills the process on an architecture mismatch with no way
//! to cover a second one. Wrapping it would mean compiling one program per (architecture,
//! action) pair and re-linking their jumps, which is more code than the generator here.

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
