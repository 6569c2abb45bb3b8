//! The container process's scheduling and execution attributes: `process.ioPriority`,
//! `process.scheduler`, `process.execCPUAffinity`, `linux.personality` and
//! `linux.memoryPolicy`.
//!
//! Each field is turned into plain values by a `parse_*` function (used by bundle validation,
//! so a bad value fails `create` before anything exists, with the field named) and applied by
//! the init with the syscalls in `sys::sched`:
//!
//! * [`initial_affinity`]: first thing in the init, so all of the setup (and the hooks it
//!   runs) happens on the `initial` CPUs;
//! * [`apply`]: before the user switch drops capabilities (real-time policies and raising
//!   the I/O class need CAP_SYS_NICE / CAP_SYS_ADMIN);
//! * [`final_affinity`]: just before execve (and before a no_new_privs seccomp filter, which
//!   could forbid sched_setaffinity).

use anyhow::{bail, ensure, Context, Result};
use oci_spec::runtime::{
    IOPriorityClass, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Process,
    Scheduler, Spec,
};

use crate::sys::sched::{self, SchedAttr};

/// Parses a CPU or NUMA-node list ("0-3,7") into sorted, deduplicated numbers.
pub fn parse_list(s: &str) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let num = |x: &str| {
            x.trim()
                .parse::<usize>()
                .with_context(|| format!("{part:?} is not a number or a range N-M"))
        };
        let (a, b) = (num(a)?, num(b)?);
        ensure!(a <= b, "range {part:?} goes backwards");
        ensure!(b < 65536, "{b} is out of range");
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// (class, level) for ioprio_set.
pub fn parse_io_priority(p: &Process) -> Result<Option<(u32, u32)>> {
    let Some(io) = p.io_priority() else {
        return Ok(None);
    };
    let class = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    ensure!(
        (0..=7).contains(&io.priority()),
        "process.ioPriority.priority: {} is not in 0..7",
        io.priority()
    );
    Ok(Some((class, io.priority() as u32)))
}

fn policy_number(p: LinuxSchedulerPolicy) -> Result<u32> {
    Ok(match p {
        LinuxSchedulerPolicy::SchedOther => libc::SCHED_OTHER as u32,
        LinuxSchedulerPolicy::SchedFifo => libc::SCHED_FIFO as u32,
        LinuxSchedulerPolicy::SchedRr => libc::SCHED_RR as u32,
        LinuxSchedulerPolicy::SchedBatch => libc::SCHED_BATCH as u32,
        LinuxSchedulerPolicy::SchedIdle => libc::SCHED_IDLE as u32,
        LinuxSchedulerPolicy::SchedDeadline => 6,
        LinuxSchedulerPolicy::SchedIso => {
            bail!("process.scheduler.policy: SCHED_ISO is not implemented by Linux")
        }
    })
}

fn flag_bit(f: LinuxSchedulerFlag) -> u64 {
    match f {
        LinuxSchedulerFlag::SchedResetOnFork => 0x01,
        LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
        LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
        LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
        LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
        LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
        LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
    }
}

/// The sched_attr for process.scheduler, with runc's consistency rules checked.
pub fn parse_scheduler(s: &Scheduler) -> Result<SchedAttr> {
    use LinuxSchedulerPolicy as P;
    let policy = *s.policy();
    let nice = s.nice().unwrap_or(0);
    let prio = s.priority().unwrap_or(0);
    if matches!(policy, P::SchedOther | P::SchedBatch) {
        ensure!(
            (-20..=19).contains(&nice),
            "process.scheduler.nice: {nice} is not in -20..19"
        );
    }
    if prio != 0 {
        ensure!(
            matches!(policy, P::SchedFifo | P::SchedRr),
            "process.scheduler.priority: only SCHED_FIFO and SCHED_RR take a priority"
        );
        ensure!(
            (1..=99).contains(&prio),
            "process.scheduler.priority: {prio} is not in 1..99"
        );
    }
    let (runtime, deadline, period) = (
        s.runtime().unwrap_or(0),
        s.deadline().unwrap_or(0),
        s.period().unwrap_or(0),
    );
    if policy != P::SchedDeadline {
        ensure!(
            runtime == 0 && deadline == 0 && period == 0,
            "process.scheduler: runtime/deadline/period are only for SCHED_DEADLINE"
        );
    }
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= flag_bit(*f);
    }
    Ok(SchedAttr {
        policy: policy_number(policy)?,
        flags,
        nice,
        priority: prio as u32,
        runtime,
        deadline,
        period,
        ..Default::default()
    })
}

/// (initial, final) CPU lists of process.execCPUAffinity.
pub type Affinity = (Option<Vec<usize>>, Option<Vec<usize>>);

pub fn parse_affinity(p: &Process) -> Result<Affinity> {
    let Some(a) = p.exec_cpu_affinity() else {
        return Ok((None, None));
    };
    let list = |v: &Option<String>, field: &str| -> Result<Option<Vec<usize>>> {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(parse_list)
            .transpose()
            .with_context(|| format!("process.execCPUAffinity.{field}"))
    };
    Ok((
        list(a.initial(), "initial")?,
        list(a.cpu_affinity_final(), "final")?,
    ))
}

/// The persona value for linux.personality.
pub fn parse_personality(p: &LinuxPersonality) -> Result<u64> {
    let mut v: u64 = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    for f in p.flags().iter().flatten() {
        v |= match f.as_str() {
            "UNAME26" => 0x0020000,
            "ADDR_NO_RANDOMIZE" => 0x0040000,
            "FDPIC_FUNCPTRS" => 0x0080000,
            "MMAP_PAGE_ZERO" => 0x0100000,
            "ADDR_COMPAT_LAYOUT" => 0x0200000,
            "READ_IMPLIES_EXEC" => 0x0400000,
            "ADDR_LIMIT_32BIT" => 0x0800000,
            "SHORT_INODE" => 0x1000000,
            "WHOLE_SECONDS" => 0x2000000,
            "STICKY_TIMEOUTS" => 0x4000000,
            "ADDR_LIMIT_3GB" => 0x8000000,
            other => bail!("linux.personality.flags: unknown flag {other:?}"),
        };
    }
    Ok(v)
}

/// (mode | flags, nodes) for set_mempolicy, with the spec's rules on nodes checked.
pub fn parse_memory_policy(m: &LinuxMemoryPolicy) -> Result<(i32, Vec<usize>)> {
    use MemoryPolicyModeType as M;
    let (mode, needs_nodes, takes_nodes) = match m.mode() {
        M::MpolDefault => (0, false, false),
        M::MpolPreferred => (1, false, true),
        M::MpolBind => (2, true, true),
        M::MpolInterleave => (3, true, true),
        M::MpolLocal => (4, false, false),
        M::MpolPreferredMany => (5, true, true),
        M::MpolWeightedInterleave => (6, true, true),
    };
    let nodes = match m.nodes().as_deref().filter(|n| !n.is_empty()) {
        Some(n) => parse_list(n).context("linux.memoryPolicy.nodes")?,
        None => Vec::new(),
    };
    ensure!(
        takes_nodes || nodes.is_empty(),
        "linux.memoryPolicy.nodes: {} takes no nodes",
        m.mode()
    );
    ensure!(
        !needs_nodes || !nodes.is_empty(),
        "linux.memoryPolicy.nodes: {} needs at least one node",
        m.mode()
    );
    let mut flags = 0;
    for f in m.flags().iter().flatten() {
        flags |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        };
    }
    Ok((mode | flags, nodes))
}

/// The per-process fields compiled: ioPriority, scheduler, execCPUAffinity. The init's
/// come from config.json, an `exec` process's from its own process.
#[derive(Debug, Clone, Default)]
pub struct ProcessAttrs {
    io_priority: Option<(u32, u32)>,
    /// The attributes, and the policy's name for errors.
    scheduler: Option<(SchedAttr, String)>,
    affinity: Affinity,
}

impl ProcessAttrs {
    pub fn compile(p: &Process) -> Result<ProcessAttrs> {
        Ok(ProcessAttrs {
            io_priority: parse_io_priority(p)?,
            scheduler: p
                .scheduler()
                .as_ref()
                .map(|s| Ok::<_, anyhow::Error>((parse_scheduler(s)?, s.policy().to_string())))
                .transpose()?,
            affinity: parse_affinity(p)?,
        })
    }

    /// execCPUAffinity.initial, at the start of the process's setup.
    pub fn initial_affinity(&self) -> Result<()> {
        if let (Some(cpus), _) = &self.affinity {
            sched::sched_setaffinity(cpus)
                .with_context(|| format!("process.execCPUAffinity.initial: setting {cpus:?}"))?;
        }
        Ok(())
    }

    /// execCPUAffinity.final, just before execve.
    /// Without one, the affinity skiff was started with is not passed on: the process may
    /// run on every CPU its cgroup allows (the kernel intersects the mask with the cpuset),
    /// as runc resets it — a runtime started under `taskset` must not pin its containers.
    pub fn final_affinity(&self) -> Result<()> {
        if let (_, Some(cpus)) = &self.affinity {
            sched::sched_setaffinity(cpus)
                .with_context(|| format!("process.execCPUAffinity.final: setting {cpus:?}"))?;
            return Ok(());
        }
        let all: Vec<usize> = (0..possible_cpus()).collect();
        // EINVAL only if no CPU is left at all, which the cgroup's cpuset then decides anyway.
        let _ = sched::sched_setaffinity(&all);
        Ok(())
    }

    /// ioPriority and scheduler, while the process still has its capabilities.
    pub fn apply(&self) -> Result<()> {
        if let Some((class, level)) = self.io_priority {
            sched::ioprio_set(class, level).context("process.ioPriority: ioprio_set")?;
        }
        if let Some((attr, policy)) = &self.scheduler {
            sched::sched_setattr(attr)
                .with_context(|| format!("process.scheduler: sched_setattr({policy})"))?;
        }
        Ok(())
    }
}

/// memoryPolicy and personality compiled: container-wide, so `exec` processes get them too.
#[derive(Debug, Clone, Default)]
pub struct ContainerAttrs {
    /// Mode with flags, nodes, and the mode's name for errors.
    memory_policy: Option<(i32, Vec<usize>, String)>,
    personality: Option<u64>,
}

impl ContainerAttrs {
    pub fn compile(spec: &Spec) -> Result<ContainerAttrs> {
        let linux = spec.linux().as_ref();
        Ok(ContainerAttrs {
            memory_policy: linux
                .and_then(|l| l.memory_policy().as_ref())
                .map(|m| {
                    let (mode, nodes) = parse_memory_policy(m)?;
                    Ok::<_, anyhow::Error>((mode, nodes, m.mode().to_string()))
                })
                .transpose()?,
            personality: linux
                .and_then(|l| l.personality().as_ref())
                .map(parse_personality)
                .transpose()?,
        })
    }

    pub fn apply(&self) -> Result<()> {
        if let Some((mode, nodes, name)) = &self.memory_policy {
            sched::set_mempolicy(*mode, nodes)
                .with_context(|| format!("linux.memoryPolicy: set_mempolicy({name})"))?;
        }
        if let Some(v) = self.personality {
            sched::personality(v).with_context(|| format!("linux.personality: {v:#x}"))?;
        }
        Ok(())
    }
}

/// The number of CPU ids this kernel may use (from /sys/devices/system/cpu/possible).
fn possible_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| parse_list(s.trim()).ok())
        .and_then(|l| l.into_iter().max())
        .map_or(1024, |m| m + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ranges() {
        assert_eq!(parse_list("0-3,7").unwrap(), vec![0, 1, 2, 3, 7]);
        assert_eq!(parse_list("2,1,2").unwrap(), vec![1, 2]);
        let e = parse_list("3-1").unwrap_err().to_string();
        assert!(e.contains("range \"3-1\" goes backwards"), "{e}");
        let e = parse_list("a").unwrap_err().to_string();
        assert!(e.contains("\"a\" is not a number or a range N-M"), "{e}");
        let e = parse_list("").unwrap_err().to_string();
        assert!(e.contains("\"\" is not a number or a range N-M"), "{e}");
    }

    fn sched(json: &str) -> Result<SchedAttr> {
        parse_scheduler(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn scheduler_rules() {
        let a = sched(r#"{"policy":"SCHED_FIFO","priority":10}"#).unwrap();
        assert_eq!((a.policy, a.priority), (1, 10));
        let a = sched(r#"{"policy":"SCHED_BATCH","nice":5}"#).unwrap();
        assert_eq!((a.policy, a.nice), (3, 5));
        let e = sched(r#"{"policy":"SCHED_OTHER","priority":10}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("only SCHED_FIFO and SCHED_RR take a priority"),
            "{e}"
        );
        let e = sched(r#"{"policy":"SCHED_OTHER","nice":30}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("process.scheduler.nice: 30 is not in -20..19"),
            "{e}"
        );
        let e = sched(r#"{"policy":"SCHED_RR","runtime":5}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("runtime/deadline/period are only for SCHED_DEADLINE"),
            "{e}"
        );
        let a = sched(
            r#"{"policy":"SCHED_DEADLINE","runtime":1000000,"deadline":2000000,"period":2000000}"#,
        )
        .unwrap();
        assert_eq!((a.policy, a.runtime, a.period), (6, 1000000, 2000000));
    }

    #[test]
    fn memory_policy_rules() {
        let m = |j: &str| parse_memory_policy(&serde_json::from_str(j).unwrap());
        assert_eq!(
            m(r#"{"mode":"MPOL_BIND","nodes":"0","flags":["MPOL_F_STATIC_NODES"]}"#).unwrap(),
            (2 | 1 << 15, vec![0])
        );
        let e = m(r#"{"mode":"MPOL_BIND"}"#).unwrap_err().to_string();
        assert!(e.contains("MPOL_BIND needs at least one node"), "{e}");
        let e = m(r#"{"mode":"MPOL_LOCAL","nodes":"0"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("MPOL_LOCAL takes no nodes"), "{e}");
        assert_eq!(m(r#"{"mode":"MPOL_DEFAULT"}"#).unwrap(), (0, vec![]));
    }

    #[test]
    fn personality_values() {
        let p = |j: &str| parse_personality(&serde_json::from_str(j).unwrap());
        assert_eq!(p(r#"{"domain":"LINUX32"}"#).unwrap(), 8);
        assert_eq!(
            p(r#"{"domain":"LINUX","flags":["ADDR_NO_RANDOMIZE"]}"#).unwrap(),
            0x0040000
        );
        let e = p(r#"{"domain":"LINUX","flags":["BOGUS"]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linux.personality.flags: unknown flag \"BOGUS\""),
            "{e}"
        );
    }
}
