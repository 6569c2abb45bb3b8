//! systemd socket activation passed through to the container, as runc does: when skiff was
//! started with `LISTEN_FDS=N` and `LISTEN_PID` equal to its own pid, fds 3..3+N are the
//! activated sockets. They reach the container at the same numbers (before any
//! `--preserve-fds`, which then follow them), and the container's environment gets
//! `LISTEN_FDS=N` and `LISTEN_PID=1` (the container process is pid 1 of its namespace).

/// How many activated fds skiff was given (0 when the variables are absent, malformed or
/// meant for another process).
pub fn listen_fds() -> u32 {
    from_env(
        std::env::var("LISTEN_PID").ok().as_deref(),
        std::env::var("LISTEN_FDS").ok().as_deref(),
        std::process::id(),
    )
}

fn from_env(pid: Option<&str>, fds: Option<&str>, own: u32) -> u32 {
    let Some(pid) = pid.and_then(|p| p.trim().parse::<u32>().ok()) else {
        return 0;
    };
    if pid != own {
        return 0;
    }
    fds.and_then(|n| n.trim().parse::<u32>().ok())
        .filter(|&n| n < 65536)
        .unwrap_or(0)
}

/// Adds the variables to the container's environment (replacing any the spec had).
pub fn environment(env: &mut Vec<String>, n: u32) {
    if n == 0 {
        return;
    }
    env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
    env.push(format!("LISTEN_FDS={n}"));
    env.push("LISTEN_PID=1".to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_for_our_pid() {
        assert_eq!(from_env(Some("42"), Some("2"), 42), 2);
        assert_eq!(from_env(Some("41"), Some("2"), 42), 0);
        assert_eq!(from_env(None, Some("2"), 42), 0);
        assert_eq!(from_env(Some("42"), Some("x"), 42), 0);
    }

    #[test]
    fn env_gets_the_container_view() {
        let mut env = vec!["PATH=/bin".to_string(), "LISTEN_PID=7".to_string()];
        environment(&mut env, 2);
        assert_eq!(env, ["PATH=/bin", "LISTEN_FDS=2", "LISTEN_PID=1"]);
        let mut env = vec!["A=b".to_string()];
        environment(&mut env, 0);
        assert_eq!(env, ["A=b"]);
    }
}
