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
        Some((st, start)) if start == state.start_time && st != 'Z' && st != 'X' => {}
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
    proc_stat(pid).map(|(_, t)| t)
}

/// (state letter, start time) from /proc/<pid>/stat. The command name (field 2) may contain
/// spaces and parentheses, so parsing starts after its last ')'.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let st = fields.next()?.chars().next()?;
    // `rest` starts at field 3; the start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((st, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_parsed() {
        let (st, start) = proc_stat(std::process::id() as i32).unwrap();
        assert!(st == 'R' || st == 'S');
        assert!(start > 0);
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
            resources: None,
            own_pid_ns: true,
            hooks: None,
        };
        assert_eq!(derive(&s, Path::new("/nonexistent")), Status::Stopped);
    }
}
