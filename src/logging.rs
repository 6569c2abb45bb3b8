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

/// Sets up logging once, from the global flags. A log file that cannot be opened is reported
/// on stderr and logging falls back to stderr, so the real error still reaches the user.
pub fn init(path: Option<&Path>, json: bool, debug: bool) {
    let file = path.and_then(
        |p| match OpenOptions::new().create(true).append(true).open(p) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("skiff: cannot open log file {}: {e}", p.display());
                None
            }
        },
    );
    let _ = LOGGER.set(Logger { file, json, debug });
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
