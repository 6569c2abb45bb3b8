//! From the OCI `linux.seccomp` object to a [`Plan`]: per ABI, the ordered rules of every
//! syscall number, with actions encoded as seccomp return values. Every error names the
//! config field.

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Context, Result};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompFilterFlag as OciFlag,
    LinuxSeccompOperator as OciOp,
};

use super::ruletree::{self, Tree};
use super::{tables, Flags};

// Return values, from linux/seccomp.h.
pub(super) const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(super) const RET_KILL_THREAD: u32 = 0x0000_0000;
pub(super) const RET_TRAP: u32 = 0x0003_0000;
pub(super) const RET_ERRNO: u32 = 0x0005_0000;
pub(super) const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub(super) const RET_TRACE: u32 = 0x7ff0_0000;
pub(super) const RET_LOG: u32 = 0x7ffc_0000;
pub(super) const RET_ALLOW: u32 = 0x7fff_0000;

/// libseccomp refuses errno values from the kernel's MAX_ERRNO (4095) up.
const MAX_ERRNO: u32 = 4095;

pub(super) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub(super) const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub(super) const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
pub(super) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A syscall ABI the compiler has a table for. x32 shares AUDIT_ARCH_X86_64 with x86_64 and
/// is told apart by the X32 bit in the syscall number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Abi {
    X86_64,
    X32,
    X86,
    Aarch64,
}

impl Abi {
    pub(super) fn native() -> Option<Abi> {
        if cfg!(target_arch = "x86_64") {
            Some(Abi::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Abi::Aarch64)
        } else {
            None
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "SCMP_ARCH_X86_64",
            Abi::X32 => "SCMP_ARCH_X32",
            Abi::X86 => "SCMP_ARCH_X86",
            Abi::Aarch64 => "SCMP_ARCH_AARCH64",
        }
    }

    pub(super) fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::X86 => AUDIT_ARCH_I386,
            Abi::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// 32-bit ABIs pass 32-bit arguments: only the low word of each is compared, as
    /// libseccomp does.
    pub(super) fn wide_args(self) -> bool {
        matches!(self, Abi::X86_64 | Abi::Aarch64)
    }

    /// Where a rule for `name` goes on this ABI, as libseccomp places it. On i386 the socket
    /// and SysV IPC calls also exist multiplexed through socketcall(2) and ipc(2): their rules
    /// go there too, with argument 0 fixed to the call number, and to the direct syscall
    /// where the ABI has one.
    pub(super) fn resolve(self, name: &str) -> Vec<Target> {
        let direct = self.lookup(name).map(|nr| Target { nr, mux: None });
        if self != Abi::X86 {
            return direct.into_iter().collect();
        }
        let mux = if let Some(&(_, call)) = SOCKETCALLS.iter().find(|(n, _)| *n == name) {
            Some((I386_SOCKETCALL, call))
        } else {
            IPC_CALLS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|&(_, call)| (I386_IPC, call))
        };
        match mux {
            Some((nr, call)) => [
                Some(Target {
                    nr,
                    mux: Some(call),
                }),
                direct,
            ]
            .into_iter()
            .flatten()
            .collect(),
            None => direct.into_iter().collect(),
        }
    }

    pub(super) fn lookup(self, name: &str) -> Option<u32> {
        let table = match self {
            Abi::X86_64 => tables::X86_64,
            Abi::X32 => tables::X32,
            Abi::X86 => tables::X86,
            Abi::Aarch64 => tables::AARCH64,
        };
        table
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| table[i].1)
    }
}

/// Why skiff refuses rule sets that libseccomp gets wrong (the differential test looks for it).
pub(super) const MISCOMPILED: &str =
    "libseccomp (runc, crun) compiles this to a filter that does not do what the rules say";

/// A syscall number a rule is placed on; `mux` is the call number for a multiplexer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Target {
    pub nr: u32,
    pub mux: Option<u32>,
}

const I386_SOCKETCALL: u32 = 102;
const I386_IPC: u32 = 117;

/// socketcall(2)'s call numbers (SYS_* in linux/net.h).
const SOCKETCALLS: &[(&str, u32)] = &[
    ("socket", 1),
    ("bind", 2),
    ("connect", 3),
    ("listen", 4),
    ("accept", 5),
    ("getsockname", 6),
    ("getpeername", 7),
    ("socketpair", 8),
    ("send", 9),
    ("recv", 10),
    ("sendto", 11),
    ("recvfrom", 12),
    ("shutdown", 13),
    ("setsockopt", 14),
    ("getsockopt", 15),
    ("sendmsg", 16),
    ("recvmsg", 17),
    ("accept4", 18),
    ("recvmmsg", 19),
    ("sendmmsg", 20),
];

/// ipc(2)'s call numbers (SEMOP... in the kernel's ipc/syscall.c).
const IPC_CALLS: &[(&str, u32)] = &[
    ("semop", 1),
    ("semget", 2),
    ("semctl", 3),
    ("semtimedop", 4),
    ("msgsnd", 11),
    ("msgrcv", 12),
    ("msgget", 13),
    ("msgctl", 14),
    ("shmat", 21),
    ("shmdt", 22),
    ("shmget", 23),
    ("shmctl", 24),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == value`.
    MaskedEq {
        mask: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Cond {
    pub index: u32,
    pub op: Op,
    pub value: u64,
}

/// What a syscall number of one ABI gets: a fixed return value, or the merged argument
/// conditions of its rules (falling back to the default action).
#[derive(Debug)]
pub(super) enum Decision {
    Ret(u32),
    Tree(Tree),
}

#[derive(Debug)]
pub(super) struct AbiPlan {
    pub abi: Abi,
    pub syscalls: BTreeMap<u32, Decision>,
    /// Rules for names libseccomp knows but this ABI lacks (pseudo syscalls): never in the
    /// filter, but libseccomp merges them all the same and may refuse them (EEXIST).
    pub pseudo: BTreeMap<String, Decision>,
    /// runc's stub: syscall numbers above this one (in this ABI's half of the number line,
    /// for x86_64 and x32) return -ENOSYS before anything else is looked at.
    pub enosys_above: Option<u32>,
}

#[derive(Debug)]
pub(super) struct Plan {
    pub default: u32,
    pub abis: Vec<AbiPlan>,
    pub flags: Flags,
    pub notify: bool,
}

pub(super) fn plan(s: &LinuxSeccomp) -> Result<Plan> {
    let default = action(
        s.default_action(),
        s.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )?;
    ensure!(
        default != RET_USER_NOTIF,
        "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action (the \
         runtime needs write(2) to hand the listener fd over after loading the filter)"
    );
    let (abis, listed) = abis(s.architectures().as_deref().unwrap_or_default())?;
    let mut plans: Vec<AbiPlan> = abis
        .iter()
        .map(|&abi| AbiPlan {
            abi,
            syscalls: BTreeMap::new(),
            pseudo: BTreeMap::new(),
            enosys_above: None,
        })
        .collect();
    // runc's stub only for a non-permissive default, and only on listed architectures.
    let stub = !matches!(default & 0xffff_0000, RET_ALLOW | RET_LOG | RET_TRACE);
    let mut largest = vec![0u32; plans.len()];

    let mut unknown: Vec<&str> = Vec::new();
    let mut notify = false;
    let entries = s.syscalls().as_deref().unwrap_or_default();
    for (i, sc) in entries.iter().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        ensure!(
            !sc.names().is_empty(),
            "{field}.names: must name at least one syscall"
        );
        let act = action(sc.action(), sc.errno_ret(), &format!("{field}.errnoRet"))?;
        let rules = rules(sc.args().as_deref().unwrap_or_default(), &field)?;
        for name in sc.names() {
            ensure!(!name.is_empty(), "{field}.names: empty syscall name");
            if act == RET_USER_NOTIF {
                ensure!(
                    name != "write",
                    "{field}: SCMP_ACT_NOTIFY cannot be used for write(2) (the runtime \
                     needs it to hand the listener fd over after loading the filter)"
                );
                // The fd goes to the agent with sendmsg(2) from under the new filter: a
                // notified sendmsg would wait for an agent that has no fd yet.
                ensure!(
                    name != "sendmsg",
                    "{field}: SCMP_ACT_NOTIFY cannot be used for sendmsg(2) (the runtime \
                     sends the listener fd to linux.seccomp.listenerPath with it)"
                );
                notify = true;
            }
            let mut found = false;
            for (p, top) in plans.iter_mut().zip(&mut largest) {
                let targets = p.abi.resolve(name);
                found |= !targets.is_empty();
                // Multiplexed calls do not count, not even their direct syscall:
                // libseccomp resolves their names to pseudo numbers, which runc's stub
                // ignores.
                if targets.iter().all(|t| t.mux.is_none()) {
                    for t in &targets {
                        *top = (*top).max(t.nr);
                    }
                }
                // runc drops a rule whose action is the default one before anything else.
                if act == default {
                    continue;
                }
                // A name without a number here (or an i386 multiplexed call without a direct
                // syscall) is a pseudo syscall to libseccomp if it knows the name at all.
                let pseudo = (targets.iter().all(|t| t.mux.is_some()) && known(name))
                    .then(|| Slot::Pseudo(name.clone()));
                let slots = targets.iter().map(|t| (Slot::Nr(t.nr), t.mux));
                for (slot, mux) in slots.chain(pseudo.map(|s| (s, None))) {
                    for conds in &rules {
                        let conds = match mux {
                            Some(call) => multiplexed(conds, call),
                            None => conds.clone(),
                        };
                        add_rule(p, &slot, &conds, act)
                            .with_context(|| format!("{field}: rules for {name}"))?;
                    }
                }
            }
            if !found && !unknown.contains(&name.as_str()) {
                unknown.push(name);
            }
        }
    }
    if !unknown.is_empty() {
        crate::logging::warn(&format!(
            "linux.seccomp.syscalls: ignoring syscalls unknown on {}: {}",
            abis.iter().map(|a| a.name()).collect::<Vec<_>>().join(", "),
            unknown.join(", ")
        ));
    }
    // Not one name known: runc still loads a filter that applies the default action to
    // everything, and so do we (with the warning above); for an allow-by-default profile
    // that is simply no restriction.
    for (p, top) in plans.iter_mut().zip(largest) {
        if stub && listed.contains(&p.abi) && top > 0 {
            p.enosys_above = Some(top);
        }
    }

    listener(s, notify)?;
    let flags = flags(s.flags().as_deref().unwrap_or_default(), notify);
    Ok(Plan {
        default,
        abis: plans,
        flags,
        notify,
    })
}

/// The rule as libseccomp rewrites it for a multiplexer (i386 socketcall or ipc): argument
/// 0 is the call number, whatever the rule said about it.
fn multiplexed(conds: &[Cond], call: u32) -> Vec<Cond> {
    let mut out = vec![Cond {
        index: 0,
        op: Op::Eq,
        value: call.into(),
    }];
    out.extend(conds.iter().filter(|c| c.index != 0).copied());
    out
}

/// Whether libseccomp knows the name (on some architecture we have a table for).
fn known(name: &str) -> bool {
    SOCKETCALLS.iter().chain(IPC_CALLS).any(|(n, _)| *n == name)
        || [Abi::X86_64, Abi::X32, Abi::X86, Abi::Aarch64]
            .iter()
            .any(|a| a.lookup(name).is_some())
}

/// Where a rule goes: a syscall number, or a pseudo syscall (by name).
enum Slot {
    Nr(u32),
    Pseudo(String),
}

/// Adds one rule (conditions on distinct arguments) for a syscall of `p.abi`, as libseccomp
/// does: the first unconditional rule decides alone; conditional rules merge.
fn add_rule(p: &mut AbiPlan, slot: &Slot, conds: &[Cond], act: u32) -> Result<()> {
    let chain = ruletree::chain(conds, p.abi.wide_args(), act);
    let abi = p.abi.name();
    match slot {
        Slot::Nr(nr) => merge_rule(p.syscalls.entry(*nr), chain, act, abi, true),
        // libseccomp never emits code for a pseudo syscall, so it cannot miscompile one.
        Slot::Pseudo(name) => merge_rule(p.pseudo.entry(name.clone()), chain, act, abi, false),
    }
}

fn merge_rule<K: Ord>(
    slot: std::collections::btree_map::Entry<'_, K, Decision>,
    chain: Option<(ruletree::Node, bool)>,
    act: u32,
    abi: &str,
    emitted: bool,
) -> Result<()> {
    use std::collections::btree_map::Entry;
    let existing = match slot {
        Entry::Vacant(v) => {
            v.insert(match chain {
                None => Decision::Ret(act),
                Some((node, shared)) => Decision::Tree(Tree::new(node, shared)),
            });
            return Ok(());
        }
        Entry::Occupied(o) => o.into_mut(),
    };
    match (existing, chain) {
        (Decision::Ret(_), _) => {}
        (d @ Decision::Tree(_), None) => *d = Decision::Ret(act),
        (Decision::Tree(t), Some((node, shared))) => {
            t.add(node, shared).map_err(|_| {
                anyhow::anyhow!(
                    "{abi}: two rules with the same conditions (or one a prefix of the other) \
                     have different actions; libseccomp, which runc and crun use, refuses \
                     this profile (EEXIST)"
                )
            })?;
            ensure!(
                !(emitted && t.tainted),
                "{abi}: a 64-bit <, <=, >, >= or != comparison followed by more argument \
                 conditions, together with another conditional rule for the same syscall: \
                 {MISCOMPILED}, or hangs; give the syscall a single conditional rule of that \
                 kind, or compare each argument in a rule of its own"
            );
        }
    }
    Ok(())
}

/// config-linux.md: the notification fd goes to the agent at listenerPath, so NOTIFY needs
/// one; listenerMetadata "MUST NOT be set if listenerPath is not set".
fn listener(s: &LinuxSeccomp, notify: bool) -> Result<()> {
    let path = s
        .listener_path()
        .as_ref()
        .filter(|p| !p.as_os_str().is_empty());
    ensure!(
        !notify || path.is_some(),
        "linux.seccomp.listenerPath: a rule uses SCMP_ACT_NOTIFY, which needs a seccomp agent \
         listening on a unix socket there to receive the notification fd"
    );
    ensure!(
        path.is_some() || s.listener_metadata().as_deref().unwrap_or("").is_empty(),
        "linux.seccomp.listenerMetadata: set without linux.seccomp.listenerPath"
    );
    Ok(())
}

/// The seccomp return value of an OCI action.
fn action(a: Act, errno_ret: Option<u32>, field: &str) -> Result<u32> {
    // config-linux.md: "When the action doesn't support an errno, the runtime MUST print an
    // error and fail."
    if errno_ret.is_some() && !matches!(a, Act::ScmpActErrno | Act::ScmpActTrace) {
        bail!("{field}: {a:?} takes no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)");
    }
    Ok(match a {
        Act::ScmpActKill | Act::ScmpActKillThread => RET_KILL_THREAD,
        Act::ScmpActKillProcess => RET_KILL_PROCESS,
        Act::ScmpActTrap => RET_TRAP,
        Act::ScmpActErrno => {
            let e = errno_ret.unwrap_or(libc::EPERM as u32);
            ensure!(
                e < MAX_ERRNO,
                "{field}: {e} is not an errno value (0-{})",
                MAX_ERRNO - 1
            );
            RET_ERRNO | e
        }
        Act::ScmpActTrace => {
            let msg = errno_ret.unwrap_or(libc::EPERM as u32);
            ensure!(
                msg <= 0xffff,
                "{field}: {msg} does not fit the 16-bit SCMP_ACT_TRACE message"
            );
            RET_TRACE | msg
        }
        Act::ScmpActLog => RET_LOG,
        Act::ScmpActNotify => RET_USER_NOTIF,
        Act::ScmpActAllow => RET_ALLOW,
    })
}

/// The supported ABIs among `archs`, native first, without duplicates, and the ones `archs`
/// names (runc's -ENOSYS stub covers only those). Architectures without a table are left
/// out with a debug line: their syscalls then get the bad-architecture action (kill), which
/// is stricter, never looser, than what the profile asked for.
fn abis(archs: &[Arch]) -> Result<(Vec<Abi>, Vec<Abi>)> {
    let native = Abi::native()
        .context("linux.seccomp: seccomp filters are not supported on this architecture")?;
    let mut out = vec![native];
    let mut listed = Vec::new();
    let mut skipped = Vec::new();
    for a in archs {
        let abi = match a {
            Arch::ScmpArchNative => native,
            Arch::ScmpArchX86_64 => Abi::X86_64,
            Arch::ScmpArchX32 => Abi::X32,
            Arch::ScmpArchX86 => Abi::X86,
            Arch::ScmpArchAarch64 => Abi::Aarch64,
            other => {
                skipped.push(other.to_string());
                continue;
            }
        };
        if !out.contains(&abi) {
            out.push(abi);
        }
        if !listed.contains(&abi) {
            listed.push(abi);
        }
    }
    // Docker's and Podman's profiles list every architecture of their build; one this CPU
    // cannot execute (ARM on x86) never makes a syscall here, so it is only worth a debug line.
    if !skipped.is_empty() {
        crate::logging::debug(&format!(
            "linux.seccomp.architectures: no syscall table for {}; syscalls made through \
             them will be killed",
            skipped.join(", ")
        ));
    }
    Ok((out, listed))
}

/// The condition sets one OCI entry makes, each becoming a rule. Comparisons on different
/// arguments are ANDed into one rule. When several compare the same argument, each becomes a
/// rule of its own (ORed), as runc does: libseccomp cannot compare an argument twice in one
/// rule and profiles rely on it.
fn rules(args: &[oci_spec::runtime::LinuxSeccompArg], field: &str) -> Result<Vec<Vec<Cond>>> {
    let mut conds = Vec::with_capacity(args.len());
    for (j, a) in args.iter().enumerate() {
        ensure!(
            a.index() < 6,
            "{field}.args[{j}].index: {} is out of range (syscalls have arguments 0-5)",
            a.index()
        );
        let (op, value) = match a.op() {
            OciOp::ScmpCmpNe => (Op::Ne, a.value()),
            OciOp::ScmpCmpLt => (Op::Lt, a.value()),
            OciOp::ScmpCmpLe => (Op::Le, a.value()),
            OciOp::ScmpCmpEq => (Op::Eq, a.value()),
            OciOp::ScmpCmpGe => (Op::Ge, a.value()),
            OciOp::ScmpCmpGt => (Op::Gt, a.value()),
            OciOp::ScmpCmpMaskedEq => (
                Op::MaskedEq { mask: a.value() },
                a.value_two().unwrap_or_default(),
            ),
        };
        conds.push(Cond {
            index: a.index() as u32,
            op,
            value,
        });
    }
    let mut seen = [false; 6];
    let repeated = conds
        .iter()
        .any(|c| std::mem::replace(&mut seen[c.index as usize], true));
    Ok(if repeated {
        conds.into_iter().map(|c| vec![c]).collect()
    } else {
        vec![conds]
    })
}

/// The seccomp(2) flags for the profile's `flags`. WAIT_KILLABLE_RECV only means something
/// (and is only accepted by the kernel) together with a listener.
fn flags(oci: &[OciFlag], notify: bool) -> Flags {
    let mut f = Flags::empty();
    for flag in oci {
        f |= match flag {
            OciFlag::SeccompFilterFlagLog => Flags::LOG,
            OciFlag::SeccompFilterFlagSpecAllow => Flags::SPEC_ALLOW,
            OciFlag::SeccompFilterFlagTsync => Flags::TSYNC,
            OciFlag::SeccompFilterFlagWaitKillableRecv if notify => Flags::WAIT_KILLABLE_RECV,
            OciFlag::SeccompFilterFlagWaitKillableRecv => {
                crate::logging::debug(
                    "linux.seccomp.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored: no \
                     rule uses SCMP_ACT_NOTIFY",
                );
                Flags::empty()
            }
        };
    }
    if notify {
        f |= Flags::NEW_LISTENER;
        // The kernel refuses TSYNC with NEW_LISTENER unless TSYNC failures report ESRCH.
        if f.contains(Flags::TSYNC) {
            f |= Flags::TSYNC_ESRCH;
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_resolve() {
        for t in [tables::X86_64, tables::X32, tables::X86, tables::AARCH64] {
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        }
        assert_eq!(Abi::X86_64.lookup("getpid"), Some(39));
        assert_eq!(Abi::X86.lookup("getpid"), Some(20));
        assert_eq!(Abi::X32.lookup("getpid"), Some(X32_SYSCALL_BIT | 39));
        assert_eq!(Abi::X32.lookup("execve"), Some(X32_SYSCALL_BIT | 520));
        assert_eq!(Abi::Aarch64.lookup("getpid"), Some(172));
        assert_eq!(Abi::X86_64.lookup("socketcall"), None);
        assert_eq!(Abi::X86.lookup("socketcall"), Some(102));
        assert_eq!(Abi::X86_64.lookup("listns"), Some(470));
    }

    #[test]
    fn i386_socket_and_ipc_calls_also_go_through_their_multiplexer() {
        let t = |nr, mux| Target { nr, mux };
        assert_eq!(Abi::X86.resolve("socket"), [t(102, Some(1)), t(359, None)]);
        assert_eq!(Abi::X86.resolve("accept"), [t(102, Some(5))]);
        assert_eq!(Abi::X86.resolve("semop"), [t(117, Some(1))]);
        assert_eq!(Abi::X86.resolve("shmget"), [t(117, Some(23)), t(395, None)]);
        assert_eq!(Abi::X86.resolve("socketcall"), [t(102, None)]);
        assert_eq!(Abi::X86_64.resolve("socket"), [t(41, None)]);
        assert_eq!(Abi::X86_64.resolve("send"), []);
    }
}
