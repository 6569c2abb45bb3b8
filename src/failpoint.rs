//! Crash points for the fault-injection tests (`integration/crash/`).
//!
//! `failpoint!("create.cgroup")` marks a step of a command where the tests kill the runtime
//! with SIGKILL, to prove that whatever a crash there leaves, the next `delete --force`
//! cleans (the guarantee `process::sync` documents). In builds with debug assertions (what
//! `cargo test` builds) the macro calls [`hit`]; in the release profile it expands to
//! nothing, so neither the code nor the names are in the shipped binary (`scripts/test`
//! checks that).
//!
//! [`hit`] reads two variables once:
//! - `SKIFF_FAILPOINT=NAME`: on reaching the point NAME the runtime sends itself SIGKILL.
//! - `SKIFF_FAILPOINT_TRACE=FILE`: every point reached is appended to FILE, one name a line,
//!   which is how the tests learn the steps of each command.
//!
//! Only the runtime process itself reacts: a clone of it (the container init before its
//! execve, an exec process) carries the same code and variables but never fires.

/// Marks a crash point (see the module documentation). Compiles to nothing without debug
/// assertions.
#[macro_export]
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(debug_assertions)]
        $crate::failpoint::hit($name);
    };
}

#[cfg(debug_assertions)]
struct Config {
    pid: u32,
    kill_at: Option<String>,
    trace: Option<std::path::PathBuf>,
}

/// Reaching the point `name`: trace it, and die there if asked to.
#[cfg(debug_assertions)]
pub fn hit(name: &str) {
    use std::io::Write;
    static CONFIG: std::sync::OnceLock<Config> = std::sync::OnceLock::new();
    let c = CONFIG.get_or_init(|| Config {
        pid: std::process::id(),
        kill_at: std::env::var("SKIFF_FAILPOINT").ok(),
        trace: std::env::var_os("SKIFF_FAILPOINT_TRACE").map(Into::into),
    });
    if c.pid != std::process::id() {
        return;
    }
    if let Some(path) = &c.trace {
        let line = format!("{name}\n");
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
    if c.kill_at.as_deref() == Some(name) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::SIGKILL);
        // SIGKILL to ourselves is delivered before kill(2) returns; never go on regardless.
        loop {
            std::thread::park();
        }
    }
}
