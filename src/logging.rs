//! runc-shaped logging: `--log FILE` (default stderr) in `--log-format text|json`.
//!
//! containerd's shim reads `--log <bundle>/log.json` and shows the `msg` of the last line with
//! `"level":"error"` to its users, and rejects lines whose `time` is not RFC 3339. The JSON
//! shape is therefore exactly `{"level":..,"msg":..,"time":..}`, one object per line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

#[derive(Debug)]
struct Logger {
    file: Option<File>,
    json: bool,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets up logging once, from the global flags. A log file that cannot be opened is an
/// error the caller must stop at, before doing anything (as runc): a client reads its errors
/// from that file, and a container started without it would fail silently there.
pub fn init(path: Option<&Path>, json: bool, debug: bool) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = match path {
        Some(p) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .open(p)
                .map_err(|e| {
                    std::io::Error::new(e.kind(), format!("--log {}: {e}", p.display()))
                })?,
        ),
        None => None,
    };
    let _ = LOGGER.set(Logger { file, json, debug });
    Ok(())
}

/// True when a `--log` file is in use (errors then also go to stderr, as runc does).
pub fn has_file() -> bool {
    LOGGER.get().is_some_and(|l| l.file.is_some())
}

/// The `--log` file's descriptor: skiff's own, never one of the caller's fds to pass on.
pub fn file_fd() -> Option<std::os::fd::RawFd> {
    use std::os::fd::AsRawFd;
    LOGGER.get()?.file.as_ref().map(|f| f.as_raw_fd())
}

pub fn log(level: Level, msg: &str) {
    let Some(l) = LOGGER.get() else {
        eprintln!("{}: {msg}", level.as_str());
        return;
    };
    if level == Level::Debug && !l.debug {
        return;
    }
    let line = format_line(level, msg, l.json, now_rfc3339());
    match &l.file {
        // One write per line: O_APPEND keeps lines from concurrent writers whole.
        Some(f) => {
            let mut f: &File = f;
            let _ = f.write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

fn format_line(level: Level, msg: &str, json: bool, time: String) -> String {
    if json {
        let v = serde_json::json!({"level": level.as_str(), "msg": msg, "time": time});
        format!("{v}\n")
    } else {
        format!(
            "time=\"{time}\" level={} msg={}\n",
            level.as_str(),
            serde_json::Value::String(msg.to_string())
        )
    }
}

pub fn debug(msg: &str) {
    log(Level::Debug, msg)
}

/// True when `--debug` is on (callers skip building debug-only text otherwise).
pub fn debug_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.debug)
}

thread_local! {
    static LAST_STEP: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
}

/// With `--debug`: one line per step of a command, with the time since the previous step of
/// this process (the first step counts from process start as near as we can tell: from the
/// first call). A clone3 child inherits the last instant, so its first step counts from the
/// parent's last. Costs one check when debug is off.
pub fn step(what: &str) {
    if !debug_enabled() {
        return;
    }
    let now = std::time::Instant::now();
    let since = LAST_STEP.with(|c| c.replace(Some(now)));
    let ms = since.map_or(0.0, |t| (now - t).as_secs_f64() * 1000.0);
    debug(&format!("{what} (+{ms:.3} ms)"));
}
pub fn warn(msg: &str) {
    log(Level::Warning, msg)
}
pub fn error(msg: &str) {
    log(Level::Error, msg)
}

/// The current time as RFC 3339 with nanoseconds in UTC (runc's `created` and log format).
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's
/// well-known algorithm, which is exact for every date we can meet.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::new(1_709_210_096, 5);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.000000005Z");
    }

    #[test]
    fn json_line_has_exactly_level_msg_time() {
        let line = format_line(Level::Error, "bad \"x\"", true, "T".into());
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"level":"error","msg":"bad \"x\"","time":"T"})
        );
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    }

    #[test]
    fn text_line_is_logfmt() {
        let line = format_line(Level::Warning, "a b", false, "T".into());
        assert_eq!(line, "time=\"T\" level=warning msg=\"a b\"\n");
    }
}
