//! What the scenarios stand on: a runtime session on one bundle (its cleanup and leak
//! checks on drop), a detached container's pipes, and readers of what the kernel shows.

use crate::common::{cgroup2_mount, output_via_files_within, pid_alive, text, wait_for, Bundle};
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

/// One runtime on one bundle: its commands under the bundle's state root, and on drop the
/// cleanup of every container id it used (kill -9, delete --force), then the leak checks
/// (each pid seen gone, each cgroup seen gone; the bundle's own drop checks the state root).
pub(super) struct Session {
    pub(super) rt: Rt,
    pub(super) ids: Vec<String>,
    pub(super) pids: Vec<(i64, PathBuf)>,
    pub(super) b: Bundle,
}

impl Session {
    pub(super) fn new(rt: Rt, name: &str, configure: impl FnOnce(&mut Bundle)) -> Session {
        let mut b = Bundle::new(&format!("criu-{name}-{}", rt.name));
        b.with_runtime(rt.bin);
        configure(&mut b);
        b.write_config();
        Session {
            rt,
            ids: vec![b.id.clone()],
            pids: Vec::new(),
            b,
        }
    }

    /// The bundle directory, as a string for the command line.
    pub(super) fn bundle(&self) -> String {
        self.b.dir.to_str().unwrap().to_string()
    }

    /// A path in the bundle directory, as a string for the command line.
    pub(super) fn path(&self, rel: &str) -> String {
        self.b.dir.join(rel).to_str().unwrap().to_string()
    }

    /// The runtime's ARGS under our root, stdin closed, with a time limit.
    pub(super) fn out(&self, args: &[&str]) -> Output {
        output_via_files_within(self.b.command(args).stdin(Stdio::null()), Some(LIMIT))
    }

    pub(super) fn ok(&self, args: &[&str]) -> String {
        let out = self.out(args);
        assert!(
            out.status.success(),
            "{} {args:?} failed: {}",
            self.rt.name,
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    pub(super) fn state(&self, id: &str) -> Option<Value> {
        let out = self.out(&["state", id]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    pub(super) fn status(&self, id: &str) -> Option<String> {
        self.state(id)
            .map(|s| s["status"].as_str().unwrap_or_default().to_string())
    }

    pub(super) fn pid(&self, id: &str) -> i64 {
        let st = self
            .state(id)
            .unwrap_or_else(|| panic!("{}: no state for {id}", self.rt.name));
        st["pid"].as_i64().unwrap()
    }

    /// Asserts `id` is running with a live pid; (pid, its cgroup directory), remembered for
    /// the cleanup.
    pub(super) fn running(&mut self, id: &str) -> (i64, PathBuf) {
        let st = self
            .state(id)
            .unwrap_or_else(|| panic!("{}: no state for {id}", self.rt.name));
        assert_eq!(st["status"], "running", "{}: {st}", self.rt.name);
        let pid = st["pid"].as_i64().unwrap();
        assert!(
            pid_alive(pid),
            "{}: pid {pid} of {id} is not alive",
            self.rt.name
        );
        let cg =
            cgroup_of(pid).unwrap_or_else(|| panic!("{}: no cgroup for pid {pid}", self.rt.name));
        self.pids.push((pid, cg.clone()));
        (pid, cg)
    }

    /// `run -d` with the container's stdio from `io`.
    pub(super) fn run_detached(&mut self, io: &mut Pipes) {
        let bundle = self.bundle();
        let id = self.b.id.clone();
        let st = self.with_stdio(&["run", "-d", "--bundle", &bundle, &id], io);
        assert!(
            st.success(),
            "{} run -d: {st:?}: {}",
            self.rt.name,
            io.err()
        );
    }

    /// Runs ARGS with stdin, stdout and stderr from `io` (after which only what the runtime
    /// started holds them), within LIMIT.
    pub(super) fn with_stdio(&self, args: &[&str], io: &mut Pipes) -> ExitStatus {
        let mut cmd = self.b.command(args);
        io.attach(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        drop(cmd);
        let pidfd = skiff::sys::pidfd::open(child.id() as i32).unwrap();
        let ms = LIMIT.as_millis() as i32;
        if !skiff::sys::pidfd::wait_exit(pidfd.as_fd(), ms).unwrap() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} {args:?} still running after {LIMIT:?}", self.rt.name);
        }
        child.wait().unwrap()
    }

    pub(super) fn checkpoint_ok(&self, id: &str, args: &[&str], work: &str) {
        let started = Instant::now();
        let out = self.out(&[&["checkpoint"], args, &[id]].concat());
        assert!(
            out.status.success(),
            "{} checkpoint {args:?} failed: {}\n{}",
            self.rt.name,
            text(&out.stderr),
            criu_errors(work, "dump.log")
        );
        eprintln!(
            "{}: checkpoint {args:?} took {:?}",
            self.rt.name,
            started.elapsed()
        );
    }

    /// `restore -d --image-path IMG --work-path WORK --bundle B EXTRA... ID` with the
    /// container's stdio from `io`.
    pub(super) fn restore_ok(
        &self,
        id: &str,
        img: &str,
        work: &str,
        extra: &[&str],
        io: &mut Pipes,
    ) {
        let bundle = self.bundle();
        let args = [
            &[
                "restore",
                "-d",
                "--image-path",
                img,
                "--work-path",
                work,
                "--bundle",
                &bundle,
            ],
            extra,
            &[id],
        ]
        .concat();
        let started = Instant::now();
        let st = self.with_stdio(&args, io);
        assert!(
            st.success(),
            "{} {args:?}: {st:?}: {}\n{}",
            self.rt.name,
            io.err(),
            criu_errors(work, "restore.log")
        );
        eprintln!("{}: restore took {:?}", self.rt.name, started.elapsed());
    }

    /// After a checkpoint (or delete): no state, not listed, the process and its cgroup gone.
    pub(super) fn assert_gone(&self, id: &str, pid: i64, cg: &Path) {
        let name = self.rt.name;
        assert!(self.state(id).is_none(), "{name}: {id} still has a state");
        let list = self.ok(&["list", "-q"]);
        assert!(!list.lines().any(|l| l == id), "{name}: {id} still listed");
        assert!(
            !self.b.root.join(id).exists(),
            "{name}: state directory of {id} left"
        );
        assert!(
            wait_for(PATIENCE_MS, || !pid_alive(pid)),
            "{name}: pid {pid} of {id} still alive"
        );
        assert!(
            wait_for(PATIENCE_MS, || !cg.exists()),
            "{name}: cgroup {} of {id} left",
            cg.display()
        );
    }
}

impl Session {
    /// After a failed restore of `id`: no state, no state directory, no cgroup named after
    /// it, no process in such a cgroup.
    pub(super) fn assert_nothing_left(&self, id: &str) {
        let name = self.rt.name;
        assert!(self.status(id).is_none(), "{name}: {id} has a state");
        assert!(
            !self.b.root.join(id).exists(),
            "{name}: state directory of {id} left behind"
        );
        let cg = cgroup2_mount()
            .join(crate::common::cgroup_base().trim_start_matches('/'))
            .join(id);
        assert!(!cg.exists(), "{name}: cgroup {} left behind", cg.display());
        let left = processes_in_cgroups_named(id);
        assert!(left.is_empty(), "{name}: processes left: {left:?}");
    }
}

/// A named network namespace (`ip netns add`) with its loopback up, for a container to
/// join by path; deleted on drop.
pub(super) struct NetNs {
    pub(super) name: String,
}

impl NetNs {
    pub(super) fn new(tag: &str) -> NetNs {
        let name = format!("skiff-criu-{tag}-{}", std::process::id());
        for args in [
            vec!["netns", "add", &name],
            vec!["-n", &name, "link", "set", "lo", "up"],
        ] {
            let out = Command::new("ip").args(&args).output().unwrap();
            assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
        }
        NetNs { name }
    }

    pub(super) fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Removes CRIU's network lock from the namespace, if it is there: the chain CRIU adds
    /// for a dump or restore (`-A INPUT -j CRIU`, `-A OUTPUT -j CRIU`, all but its own
    /// packets dropped). CRIU 3.17's unlock at the end of a restore fails with Debian's
    /// iptables-nft ("CHAIN_DEL failed (Device or resource busy): chain CRIU" in
    /// restore.log), leaving the lock in place. Which tables had it.
    pub(super) fn lift_criu_lock(&self) -> Vec<&'static str> {
        let ipt = |bin: &str, args: &[&str]| {
            Command::new("ip")
                .args(["netns", "exec", &self.name, bin])
                .args(args)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let mut had = Vec::new();
        for bin in ["iptables", "ip6tables"] {
            if !ipt(bin, &["-S", "CRIU"]) {
                continue;
            }
            had.push(bin);
            // The dump's lock and the restore's: as many jumps as there were locks.
            for chain in ["INPUT", "OUTPUT"] {
                while ipt(bin, &["-D", chain, "-j", "CRIU"]) {}
            }
            ipt(bin, &["-F", "CRIU"]);
            assert!(
                ipt(bin, &["-X", "CRIU"]),
                "{bin}: cannot remove CRIU's chain: {}",
                text(
                    &Command::new("ip")
                        .args(["netns", "exec", &self.name, bin, "-S"])
                        .output()
                        .map(|o| o.stdout)
                        .unwrap_or_default()
                )
            );
        }
        had
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self
                .b
                .command(&["kill", id, "KILL"])
                .stdin(Stdio::null())
                .output();
            let _ = self
                .b
                .command(&["delete", "--force", id])
                .stdin(Stdio::null())
                .output();
        }
        // What a failed runtime may have left: its processes (only while still in the cgroup
        // we saw them in), then the cgroups.
        let mut leaks = Vec::new();
        for (pid, cg) in &self.pids {
            if !wait_for(10_000, || !pid_alive(*pid)) {
                leaks.push(format!("pid {pid}"));
                if cgroup_of(*pid).as_ref() == Some(cg) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(*pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        for (_, cg) in &self.pids {
            if !wait_for(5_000, || !cg.exists()) {
                leaks.push(format!("cgroup {}", cg.display()));
                let _ = std::fs::remove_dir(cg);
            }
        }
        if !std::thread::panicking() {
            assert!(leaks.is_empty(), "{}: left behind: {leaks:?}", self.rt.name);
        }
    }
}

/// Stdio for a detached container: stdin a pipe whose write end we keep (the process never
/// reads EOF), stdout a pipe whose lines arrive on `lines`, stderr a pipe gathered in `err`
/// (the runtime's own messages land there too).
pub(super) struct Pipes {
    pub(super) theirs: Option<[OwnedFd; 3]>,
    /// What /proc/PID/fd/1 of the process writing to our stdout pipe reads.
    pub(super) stdout_link: String,
    pub(super) _stdin: OwnedFd,
    pub(super) lines: Receiver<String>,
    pub(super) err: Arc<Mutex<String>>,
}

impl Pipes {
    pub(super) fn new() -> Pipes {
        let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let (in_r, in_w) = pipe();
        let (out_r, out_w) = pipe();
        let (err_r, err_w) = pipe();
        let stdout_link = format!("pipe:[{}]", nix::sys::stat::fstat(&out_w).unwrap().st_ino);
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(File::from(out_r)).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err = Arc::new(Mutex::new(String::new()));
        let sink = err.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(File::from(err_r)).lines() {
                let Ok(line) = line else { break };
                let mut e = sink.lock().unwrap();
                e.push_str(&line);
                e.push('\n');
            }
        });
        Pipes {
            theirs: Some([in_r, out_w, err_w]),
            stdout_link,
            _stdin: in_w,
            lines,
            err,
        }
    }

    /// Hands the container's ends to `cmd`, once.
    pub(super) fn attach(&mut self, cmd: &mut Command) {
        let [i, o, e] = self.theirs.take().expect("these pipes were used already");
        cmd.stdin(Stdio::from(i))
            .stdout(Stdio::from(o))
            .stderr(Stdio::from(e));
    }

    /// What came on stderr so far (after a moment for it to arrive).
    pub(super) fn err(&self) -> String {
        wait_for(1000, || !self.err.lock().unwrap().is_empty());
        self.err.lock().unwrap().clone()
    }

    /// The next number on stdout within `ms`; None at EOF or on timeout.
    pub(super) fn next_value(&self, ms: u64) -> Option<u64> {
        let end = Instant::now() + Duration::from_millis(ms);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if let Ok(n) = l.trim().parse() {
                        return Some(n);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Reads `n` more numbers, asserting each is one more than the last: the last one.
    pub(super) fn values(&self, n: usize, rt: Rt) -> u64 {
        let mut last = None;
        for _ in 0..n {
            let v = self.next_value(PATIENCE_MS).unwrap_or_else(|| {
                panic!(
                    "{}: the counter stopped after {last:?}: {}",
                    rt.name,
                    self.err()
                )
            });
            if let Some(l) = last {
                assert_eq!(v, l + 1, "{}: the counter skipped", rt.name);
            }
            last = Some(v);
        }
        last.unwrap()
    }

    /// Everything left until EOF (the writers gone).
    pub(super) fn drain(&self) -> Vec<u64> {
        let mut v = Vec::new();
        while let Some(n) = self.next_value(10_000) {
            v.push(n);
        }
        v
    }
}

/// The cgroup v2 directory of `pid`.
pub(super) fn cgroup_of(pid: i64) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(cgroup2_mount().join(rel.trim_start_matches('/')))
}

/// Processes whose cgroup path mentions `name`.
pub(super) fn processes_in_cgroups_named(name: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| {
            let cg = std::fs::read_to_string(e.path().join("cgroup")).ok()?;
            cg.contains(name)
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

pub(super) fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// The last complete number in a file of lines.
pub(super) fn last_number(p: &Path) -> Option<u64> {
    let t = std::fs::read_to_string(p).ok()?;
    let complete = &t[..t.rfind('\n')?];
    complete.lines().last()?.trim().parse().ok()
}

/// The names in a directory, sorted.
pub(super) fn listing(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The lines of a CRIU log around its errors (what `grep -B5 Error` shows), for a failure
/// message.
pub(super) fn criu_errors(work: &str, log: &str) -> String {
    let p = Path::new(work).join(log);
    let Ok(t) = std::fs::read_to_string(&p) else {
        return format!("({} unreadable)", p.display());
    };
    let lines: Vec<&str> = t.lines().collect();
    let mut keep = vec![false; lines.len()];
    for (i, l) in lines.iter().enumerate() {
        if l.contains("Error") {
            keep[i.saturating_sub(5)..=i]
                .iter_mut()
                .for_each(|k| *k = true);
        }
    }
    let picked: Vec<&str> = lines
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(l, _)| *l)
        .collect();
    format!("{}:\n{}", p.display(), picked.join("\n"))
}
