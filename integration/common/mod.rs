//! Test harness: busybox bundles, a private state root per test, the real skiff binary, and
//! a leak check after every test (state directory, cgroup, processes).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

pub fn skiff_bin() -> &'static str {
    env!("CARGO_BIN_EXE_skiff")
}

/// A test that cannot verify what it is about must say so. With `CI=true` that is a failure,
/// unless `key` is in `SKIFF_TEST_EXPECTED_SKIPS` (comma-separated): each runner lists, with
/// its reason, what its machine cannot do (scripts/test: the hybrid host has no cgroup v2
/// controllers, those tests run in the guest). Otherwise the test prints SKIP and passes,
/// and the skip is appended to the log `scripts/test` counts (`skip_log`).
pub fn skipped(key: &str, why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed)")
        .to_string();
    let expected = std::env::var("SKIFF_TEST_EXPECTED_SKIPS").unwrap_or_default();
    let expected = expected.split(',').any(|k| k.trim() == key);
    if std::env::var("CI").as_deref() == Ok("true") && !expected {
        panic!(
            "{test} cannot verify ({key}): {why}; with CI=true a missing prerequisite is a failure"
        );
    }
    eprintln!("SKIP ({key}): {why}");
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(skip_log())
    {
        let _ = writeln!(f, "{key}\t{test}\t{why}");
    }
}

/// Where skips are recorded: `SKIFF_TEST_SKIP_LOG`, else `target/tmp/skips.log`.
pub fn skip_log() -> PathBuf {
    std::env::var_os("SKIFF_TEST_SKIP_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("skips.log"))
}

/// `skip!(key, "why {}", x)`: record the skip (see `skipped`) and return from the test.
macro_rules! skip {
    ($key:expr, $($why:tt)+) => {{
        $crate::common::skipped($key, &format!($($why)+));
        return;
    }};
}
pub(crate) use skip;

/// Tests need root (namespaces, mounts, cgroups). Returns false (after `skipped`) otherwise.
pub fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    skipped("root", "integration tests need root");
    false
}

pub fn busybox() -> Option<&'static str> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

macro_rules! require_root {
    () => {
        if !$crate::common::is_root() {
            return;
        }
        if $crate::common::busybox().is_none() {
            $crate::common::skip!(
                "busybox",
                "busybox-static is not installed (apt-get install busybox-static)"
            );
        }
    };
}
pub(crate) use require_root;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A bundle in a fresh temp directory: rootfs with busybox and its applets, a config.json
/// derived from `skiff spec`, and a state root only this test uses.
pub struct Bundle {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub id: String,
    pub config: Value,
    /// The OCI runtime binary `command` runs (skiff unless `with_runtime` said otherwise).
    pub runtime: String,
}

const APPLETS: &[&str] = &[
    "sh",
    "cat",
    "echo",
    "id",
    "ls",
    "mount",
    "sleep",
    "true",
    "false",
    "hostname",
    "grep",
    "stat",
    "touch",
    "readlink",
    "ps",
    "test",
    "mkdir",
    "umask",
    "head",
    "wc",
    "kill",
    "env",
    "pwd",
    "domainname",
    "dd",
    "rm",
    "sed",
    "tr",
    "nproc",
    "seq",
    "date",
    "mknod",
    "chmod",
    "ln",
    "printf",
    "uname",
    "cut",
    "sort",
    "tee",
    "timeout",
    "nc",
    "ip",
    "uptime",
    "ulimit",
    "tty",
    "stty",
];

impl Bundle {
    pub fn new(name: &str) -> Bundle {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{name}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("skiff-it-{tag}"));
        let root = PathBuf::from(format!("/run/skiff-test/{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "root"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        // Copied by cp, not by this (multi-threaded) process: a child another test thread
        // forks while we hold the copy open for writing keeps that fd until its execve, and
        // the container executing busybox meanwhile would fail with ETXTBSY.
        let st = Command::new("cp")
            .arg(busybox().unwrap())
            .arg(rootfs.join("bin/busybox"))
            .status()
            .unwrap();
        assert!(st.success(), "copying busybox into {}", rootfs.display());
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
        let out = Command::new(skiff_bin())
            .args(["spec", "--bundle"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skiff spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        config["process"]["terminal"] = json!(false);
        Bundle {
            dir,
            root,
            id: format!("it-{tag}"),
            config,
            runtime: skiff_bin().to_string(),
        }
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// Runs a shell script as the container process.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// Atomically (a concurrent skiff may be reading it).
    pub fn write_config(&self) {
        let tmp = self.dir.join(".config.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.config).unwrap()).unwrap();
        std::fs::rename(&tmp, self.dir.join("config.json")).unwrap();
    }

    /// `skiff --root <ours> ARGS...`, config written first; stdin closed. stdout and stderr
    /// go through files, not pipes: a created init inherits them and would keep a pipe open
    /// (and `output()` waiting) until the container exits.
    pub fn skiff(&self, args: &[&str]) -> Output {
        self.write_config();
        output_via_files(self.command(args).stdin(Stdio::null()))
    }

    /// Runs this bundle's commands (`command` and all that use it, the cleanup on drop
    /// included) with another runtime binary, e.g. runc to prove a test against it first.
    pub fn with_runtime(&mut self, bin: &str) -> &mut Self {
        self.runtime = bin.to_string();
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.runtime);
        c.arg("--root").arg(&self.root).args(args);
        c
    }

    /// `run` with the bundle; returns (status code, stdout, stderr).
    pub fn run(&self) -> (i32, String, String) {
        let b = self.dir.to_str().unwrap().to_string();
        let out = self.skiff(&["run", "--bundle", &b, &self.id]);
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    /// `run`, asserting success; returns stdout.
    pub fn run_ok(&self) -> String {
        let (code, out, err) = self.run();
        assert_eq!(code, 0, "skiff run failed\nstdout: {out}\nstderr: {err}");
        out
    }

    pub fn create(&self) -> Output {
        let b = self.dir.to_str().unwrap().to_string();
        self.skiff(&["create", "--bundle", &b, &self.id])
    }

    pub fn create_ok(&self) {
        let out = self.create();
        assert!(out.status.success(), "create failed: {}", text(&out.stderr));
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.skiff(args);
        assert!(
            out.status.success(),
            "skiff {args:?} failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    pub fn state(&self) -> Value {
        let out = self.skiff(&["state", &self.id]);
        assert!(out.status.success(), "state failed: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn status(&self) -> String {
        self.state()["status"].as_str().unwrap().to_string()
    }

    /// Sets `linux.resources`.
    pub fn resources(&mut self, r: Value) -> &mut Self {
        self.config["linux"]["resources"] = r;
        self
    }

    /// Drops every `linux.namespaces` entry of type `typ`.
    pub fn without_namespace(&mut self, typ: &str) -> &mut Self {
        if let Some(nss) = self.config["linux"]["namespaces"].as_array_mut() {
            nss.retain(|n| n["type"] != typ);
        }
        self
    }

    /// Appends a `linux.namespaces` entry.
    pub fn add_namespace(&mut self, ns: Value) -> &mut Self {
        match self.config["linux"]["namespaces"].as_array_mut() {
            Some(nss) => nss.push(ns),
            None => self.config["linux"]["namespaces"] = json!([ns]),
        }
        self
    }

    /// create + start, asserting both succeed.
    pub fn start_ok(&self) {
        self.create_ok();
        self.ok(&["start", &self.id]);
    }

    /// create with `--console-socket` (a receiver listening on a socket in the bundle),
    /// then start, asserting both succeed. The receiver returns everything the container
    /// writes to its terminal.
    pub fn start_with_console(&self) -> std::thread::JoinHandle<String> {
        let sock = self.dir.join("console.sock");
        let receiver = console_receiver(&sock);
        let bundle = self.dir.to_str().unwrap().to_string();
        let out = self.skiff(&[
            "create",
            "--bundle",
            &bundle,
            "--console-socket",
            sock.to_str().unwrap(),
            &self.id,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        self.ok(&["start", &self.id]);
        receiver
    }

    /// `start_with_console`, then waits for the container to stop: its terminal output.
    pub fn run_with_console(&self) -> String {
        let receiver = self.start_with_console();
        assert!(
            wait_for(30_000, || self.status() == "stopped"),
            "the container did not stop"
        );
        receiver.join().unwrap()
    }

    /// Reads an interface file of the container's (default) cgroup, trimmed.
    pub fn cg_read(&self, file: &str) -> String {
        let p = self.default_cgroup().join(file);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
            .trim()
            .to_string()
    }

    /// The cgroup v2 directory skiff uses by default for this container.
    pub fn default_cgroup(&self) -> PathBuf {
        cgroup2_mount()
            .join(cgroup_base().trim_start_matches('/'))
            .join(&self.id)
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Best effort, then check nothing of ours is left (a leak fails the test).
        let _ = self.command(&["delete", "--force", &self.id]).output();
        let leftovers = std::fs::read_dir(&self.root)
            .map(|d| d.count())
            .unwrap_or(0);
        let cg = self.default_cgroup();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir(&self.root);
        if !std::thread::panicking() {
            assert_eq!(
                leftovers,
                0,
                "state directory {} not cleaned up",
                self.root.display()
            );
            assert!(!cg.exists(), "cgroup {} left behind", cg.display());
            assert!(
                !mounts().contains(self.dir.to_str().unwrap()),
                "mounts left behind"
            );
        }
    }
}

/// Writes an executable script through `sh`, not from this process: tests run in threads,
/// and a child another thread forks while we hold the file open for writing keeps that fd
/// until its execve, so executing the script at once could fail with ETXTBSY.
pub fn write_script(path: &Path, text: &str) {
    use std::io::Write;
    let mut sh = Command::new("sh")
        .args(["-c", "cat > \"$0\" && chmod 755 \"$0\""])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    sh.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    assert!(sh.wait().unwrap().success(), "writing {}", path.display());
}

/// A small deterministic generator (xorshift64*): the same cases on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Runs `cmd` with stdout/stderr captured through temporary files.
pub fn output_via_files(cmd: &mut Command) -> Output {
    output_via_files_within(cmd, None)
}

/// As `output_via_files`; with a limit, a command still running after it is killed (by its
/// pid: it is our child) and the test fails.
pub fn output_via_files_within(cmd: &mut Command, limit: Option<std::time::Duration>) -> Output {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let base = std::env::temp_dir().join(format!("skiff-it-out-{}-{n}", std::process::id()));
    let (o, e) = (base.with_extension("out"), base.with_extension("err"));
    let mut child = cmd
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .unwrap();
    // On the child's pidfd, not by polling: tests run thousands of commands.
    let pidfd = skiff::sys::pidfd::open(child.id() as i32).unwrap();
    let ms = limit.map_or(-1, |l| i32::try_from(l.as_millis()).unwrap_or(i32::MAX));
    if !skiff::sys::pidfd::wait_exit(std::os::fd::AsFd::as_fd(&pidfd), ms).unwrap() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{cmd:?} still running after {limit:?}");
    }
    let status = child.wait().unwrap();
    let out = Output {
        status,
        stdout: std::fs::read(&o).unwrap(),
        stderr: std::fs::read(&e).unwrap(),
    };
    let _ = std::fs::remove_file(&o);
    let _ = std::fs::remove_file(&e);
    out
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

pub fn cgroup2_mount() -> PathBuf {
    let mi = mounts();
    mi.lines()
        .find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mnt = pre.split_whitespace().nth(4)?;
            (post.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(mnt))
        })
        .expect("a cgroup2 mount")
}

/// The controllers of the cgroup v2 hierarchy (its root's cgroup.controllers).
pub fn controllers() -> Vec<String> {
    std::fs::read_to_string(cgroup2_mount().join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// A key of a flat-keyed cgroup file ("populated 1", "oom_kill 2").
pub fn key(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// Where a relative cgroupsPath goes: the parent of the test's own cgroup (runc's rule,
/// which skiff follows).
pub fn cgroup_base() -> String {
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .unwrap();
    std::path::Path::new(&own)
        .parent()
        .map_or("/".into(), |p| p.to_string_lossy().into_owned())
}

pub fn host_ns(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

pub fn pid_alive(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
}

/// Waits up to `ms` for `f` to hold.
pub fn wait_for(ms: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_millis(ms);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    f()
}

/// A console socket at `path` (runc's protocol: one fd by SCM_RIGHTS) whose thread returns
/// everything the container writes to the terminal, until the container's side closes it.
pub fn console_receiver(path: &Path) -> std::thread::JoinHandle<String> {
    use std::io::Read;
    use std::os::fd::AsFd;
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let master = skiff::process::tty::recv_fd(conn.as_fd()).unwrap();
        let mut f = std::fs::File::from(master);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the container's side is closed.
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    })
}
