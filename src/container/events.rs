//! `events`: JSON lines in runc's shape. `--stats` prints one `stats` event and exits;
//! otherwise a `stats` event every interval and an `oom` event each time the kernel's OOM
//! killer kills in the container (memory.events oom_kill goes up), until the container's
//! cgroup is empty. The container's lock is not held meanwhile, so other commands proceed.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::Global;
use crate::cgroups::manager::parse_key;
use crate::cgroups::stats::{read_stats, Event};
use crate::state::{Status, Store};

pub fn events(g: &Global, id: &str, interval: Duration, stats: bool) -> Result<()> {
    if interval.is_zero() {
        bail!("duration interval must be greater than 0");
    }
    let (locked, state) = Store::new(&g.root).open(id)?;
    if locked.status(&state) == Status::Stopped {
        bail!("container with id {id} is not running");
    }
    let cg = state
        .cgroup
        .clone()
        .context("the container has no cgroup to report on")?;
    drop(locked);
    let stats_event = || Event {
        typ: "stats",
        id,
        data: Some(read_stats(&cg)),
    };
    if stats {
        return emit(&stats_event());
    }
    let cgroup_events = open(&cg, "cgroup.events")?.context("the container's cgroup is gone")?;
    let memory_events = open(&cg, "memory.events")?;
    let mut oom_kills = memory_events.as_ref().map_or(0, |f| count(f, "oom_kill"));
    let mut next = Instant::now() + interval;
    loop {
        if count(&cgroup_events, "populated") == 0 {
            return Ok(());
        }
        let mut fds: Vec<libc::pollfd> = [Some(&cgroup_events), memory_events.as_ref()]
            .into_iter()
            .flatten()
            .map(|f| libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLPRI,
                revents: 0,
            })
            .collect();
        let left = next.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis() + 1).unwrap_or(i32::MAX);
        crate::sys::misc::poll(&mut fds, ms).context("waiting for container events")?;
        if let Some(f) = &memory_events {
            let n = count(f, "oom_kill");
            if n > oom_kills {
                emit(&Event {
                    typ: "oom",
                    id,
                    data: None,
                })?;
            }
            oom_kills = n;
        }
        if Instant::now() >= next {
            if !cg.exists() {
                return Ok(());
            }
            emit(&stats_event())?;
            next += interval;
        }
    }
}

fn open(cg: &Path, file: &str) -> Result<Option<File>> {
    match File::open(cg.join(file)) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("opening {}/{file}", cg.display())),
    }
}

/// Reads `key` through the polled fd (which re-arms its notification); a vanished cgroup
/// reads as 0.
fn count(f: &File, key: &str) -> u64 {
    let mut buf = [0u8; 512];
    let n = f.read_at(&mut buf, 0).unwrap_or(0);
    parse_key(&String::from_utf8_lossy(&buf[..n]), key).unwrap_or(0)
}

fn emit(ev: &Event<'_>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, ev)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}
