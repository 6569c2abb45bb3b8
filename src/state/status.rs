//! Container status, derived from facts each time it is asked for.

use std::path::Path;

use serde::Serialize;

use super::State;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// The init is alive and still the same process (start time matches, so a reused pid does
/// not count), and not a zombie; then: cgroup frozen (cgroup.freeze is 1, as `pause` leaves
/// it) → paused, as runc checks that first; exec fifo still there → created (it is blocked
/// on the barrier); else running. Anything else is stopped.
pub fn derive(state: &State, fifo: &Path) -> Status {
    match proc_stat(state.pid) {
        Some(s) if s.start == state.start_time && !s.gone() => {}
        _ => return Status::Stopped,
    }
    if let Some(cg) = &state.cgroup {
        if std::fs::read_to_string(cg.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1") {
            return Status::Paused;
        }
    }
    if fifo.exists() {
        return Status::Created;
    }
    Status::Running
}

/// The start time of `pid` (field 22 of /proc/<pid>/stat), if it exists.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|s| s.start)
}

/// What /proc/<pid>/stat says about a process.
struct Stat {
    state: char,
    flags: u64,
    start: u64,
}

impl Stat {
    /// Dead, a zombie, or on its way out: PF_EXITING is set from the moment it starts to
    /// exit, which for the init of a pid namespace can last while the kernel kills and
    /// reaps the rest of the namespace — the container is stopped by then.
    fn gone(&self) -> bool {
        const PF_EXITING: u64 = 0x4;
        matches!(self.state, 'Z' | 'X' | 'x') || self.flags & PF_EXITING != 0
    }
}

/// The command name (field 2) may contain spaces and parentheses, so parsing starts after
/// its last ')'.
fn proc_stat(pid: i32) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    // `rest` starts at field 3 (state); flags is field 9, the start time field 22.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        flags: fields.get(6)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_parsed() {
        let s = proc_stat(std::process::id() as i32).unwrap();
        assert!(s.state == 'R' || s.state == 'S');
        assert!(s.start > 0 && !s.gone());
    }

    #[test]
    fn missing_pid_is_stopped() {
        let s = State {
            id: "x".into(),
            pid: i32::MAX,
            start_time: 1,
            bundle: "/".into(),
            rootfs: "/".into(),
            created: String::new(),
            owner: String::new(),
            annotations: Default::default(),
            cgroup: None,
            cgroup_created: vec![],
            systemd_unit: None,
            systemd_user: false,
            resources: None,
            own_pid_ns: true,
            pid_ns: None,
            hooks: None,
        };
        assert_eq!(derive(&s, Path::new("/nonexistent")), Status::Stopped);
    }
}
