//! Runtime invocation, bundle generation, container handles, probe reports.

use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod bundle;
mod container;

pub use bundle::*;
pub use container::*;

pub enum V {
    Pass,
    Fail(String),
    Skip(String),
    /// The runtime does what runc does where runc departs from the spec, and a real client
    /// depends on it (each one is written down in README.md). Reported as TAP `# TODO`:
    /// visible, but not a failure.
    Diverge(String),
}

pub type R = Result<V, String>;

#[allow(dead_code)]
pub enum Needs {
    None,
    /// Pure cgroup v2 host with these controllers enabled at the root.
    Cgroup(&'static [&'static str]),
    AppArmor,
    SELinux,
    /// A predicate on the host with a reason when false.
    Host(fn(&Host) -> Option<String>),
}

impl Needs {
    pub fn describe(&self) -> String {
        match self {
            Needs::None => String::new(),
            Needs::Cgroup(c) => format!("guest: cgroup v2 {}", c.join(",")),
            Needs::AppArmor => "AppArmor".into(),
            Needs::SELinux => "SELinux".into(),
            Needs::Host(_) => "host feature".into(),
        }
    }
    pub fn unmet(&self, h: &Host) -> Option<String> {
        match self {
            Needs::None => None,
            Needs::Cgroup(ctrls) => {
                if !h.pure_v2 {
                    return Some(format!(
                        "guest case: needs a pure cgroup v2 host (here: {}); run inside scripts/vm",
                        h.cgroup_layout
                    ));
                }
                let missing: Vec<&str> = ctrls
                    .iter()
                    .copied()
                    .filter(|c| !h.controllers.iter().any(|x| x == c))
                    .collect();
                if missing.is_empty() {
                    None
                } else {
                    Some(format!(
                        "cgroup2 root lacks controller(s) {} (has: {})",
                        missing.join(","),
                        h.controllers.join(" ")
                    ))
                }
            }
            Needs::AppArmor => {
                (!h.apparmor).then(|| "AppArmor is not enabled on this kernel".to_string())
            }
            Needs::SELinux => {
                (!h.selinux).then(|| "SELinux is not enabled on this kernel".to_string())
            }
            Needs::Host(f) => f(h),
        }
    }
}

pub struct Case {
    pub id: String,
    pub section: &'static str,
    /// The spec sentence(s) the case checks.
    pub spec: &'static str,
    pub needs: Needs,
    pub run: Box<dyn Fn(&Ctx) -> R>,
}

pub struct Host {
    pub ns: BTreeMap<String, u64>,
    pub pure_v2: bool,
    pub cgroup_layout: String,
    pub cg2_mount: Option<PathBuf>,
    pub controllers: Vec<String>,
    pub apparmor: bool,
    pub selinux: bool,
    pub resctrl: bool,
    pub oom: String,
    pub own_cgroup: String,
    pub hugepage_sizes: Vec<String>,
    pub ncpus: usize,
}

impl Host {
    fn detect() -> Host {
        let mut ns = BTreeMap::new();
        for f in ["pid", "net", "mnt", "ipc", "uts", "user", "cgroup", "time"] {
            if let Ok(m) = fs::metadata(format!("/proc/self/ns/{f}")) {
                ns.insert(f.to_string(), m.ino());
            }
        }
        let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut cg2 = None;
        let mut v1 = false;
        for l in mi.lines() {
            let f: Vec<&str> = l.split(' ').collect();
            let Some(sep) = f.iter().position(|x| *x == "-") else {
                continue;
            };
            let fstype = f.get(sep + 1).copied().unwrap_or("");
            if fstype == "cgroup2" && cg2.is_none() {
                cg2 = Some(PathBuf::from(f[4]));
            }
            if fstype == "cgroup" {
                v1 = true;
            }
        }
        let pure_v2 = cg2.as_deref() == Some(Path::new("/sys/fs/cgroup")) && !v1;
        let layout = match (&cg2, v1) {
            (Some(p), true) => {
                format!("hybrid: cgroup v1 controllers + cgroup2 at {}", p.display())
            }
            (Some(p), false) => format!("cgroup2 at {}", p.display()),
            (None, _) => "cgroup v1 only".into(),
        };
        let controllers = cg2
            .as_ref()
            .and_then(|p| fs::read_to_string(p.join("cgroup.controllers")).ok())
            .map(|s| s.split_whitespace().map(String::from).collect())
            .unwrap_or_default();
        let own = fs::read_to_string("/proc/self/cgroup")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(String::from))
            .unwrap_or_default();
        let hp = fs::read_dir("/sys/kernel/mm/hugepages")
            .map(|r| {
                r.flatten()
                    .filter_map(|e| {
                        let n = e.file_name().to_string_lossy().to_string();
                        let kb: u64 = n
                            .strip_prefix("hugepages-")?
                            .strip_suffix("kB")?
                            .parse()
                            .ok()?;
                        Some(if kb >= 1048576 {
                            format!("{}GB", kb / 1048576)
                        } else if kb >= 1024 {
                            format!("{}MB", kb / 1024)
                        } else {
                            format!("{kb}KB")
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let lsm = fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
        Host {
            ns,
            pure_v2,
            cgroup_layout: layout,
            cg2_mount: cg2,
            controllers,
            apparmor: lsm.contains("apparmor")
                && Path::new("/sys/kernel/security/apparmor").exists(),
            selinux: lsm.contains("selinux") && Path::new("/sys/fs/selinux/enforce").exists(),
            resctrl: mi.lines().any(|l| l.contains(" - resctrl ")),
            oom: fs::read_to_string("/proc/self/oom_score_adj")
                .unwrap_or_default()
                .trim()
                .to_string(),
            own_cgroup: own,
            hugepage_sizes: hp,
            ncpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }
    pub fn describe(&self) -> String {
        format!(
            "{}; controllers [{}]; apparmor {}; selinux {}; cpus {}",
            self.cgroup_layout,
            self.controllers.join(" "),
            self.apparmor,
            self.selinux,
            self.ncpus
        )
    }
}

pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub cmd: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
    pub fn brief(&self) -> String {
        let mut s = format!(
            "`{}` -> {}",
            self.cmd,
            if self.timed_out {
                "TIMED OUT".to_string()
            } else {
                format!("exit {:?}", self.code)
            }
        );
        let e = self.stderr.trim();
        if !e.is_empty() {
            s += &format!("; stderr: {}", e.chars().take(600).collect::<String>());
        }
        let o = self.stdout.trim();
        if !o.is_empty() {
            s += &format!("; stdout: {}", o.chars().take(300).collect::<String>());
        }
        s
    }
}

pub struct Ctx {
    pub rt: String,
    /// Global flags given to the runtime on every call (`--runtime-flag`, e.g.
    /// `--systemd-cgroup`).
    pub rt_flags: Vec<String>,
    pub root: PathBuf,
    pub work: PathBuf,
    pub probe: PathBuf,
    pub busybox: PathBuf,
    pub host: Host,
    pub keep: bool,
    pub timeout: Duration,
    seq: Cell<u32>,
    /// Cleanup actions registered by the current case (run after it).
    pub cleanups: RefCell<Vec<Box<dyn FnOnce()>>>,
}

pub const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "sleep", "readlink", "tr", "sed", "ls", "true", "false", "env", "id",
    "mkdir", "touch", "grep", "printf", "test", "[",
];

impl Ctx {
    pub fn new(
        rt: &str,
        probe: &str,
        busybox: &str,
        keep: bool,
        timeout: u64,
    ) -> Result<Ctx, String> {
        let rt = fs::canonicalize(rt)
            .map_err(|e| format!("runtime {rt}: {e}"))?
            .display()
            .to_string();
        let base = std::env::var("CONFORMANCE_WORKDIR").unwrap_or_else(|_| "/tmp".into());
        let work = PathBuf::from(base).join(format!("oci-conformance.{}", std::process::id()));
        fs::create_dir_all(work.join("bin")).map_err(|e| format!("{}: {e}", work.display()))?;
        fs::set_permissions(&work, fs::Permissions::from_mode(0o755)).ok();
        let root = work.join("state");
        fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        let p = work.join("bin/probe");
        fs::copy(probe, &p).map_err(|e| format!("probe {probe}: {e}"))?;
        let b = work.join("bin/busybox");
        fs::copy(busybox, &b).map_err(|e| format!("busybox {busybox}: {e}"))?;
        Ok(Ctx {
            rt,
            rt_flags: vec![],
            root,
            work,
            probe: p,
            busybox: b,
            host: Host::detect(),
            keep,
            timeout: Duration::from_secs(timeout),
            seq: Cell::new(0),
            cleanups: RefCell::new(vec![]),
        })
    }

    pub fn runtime_version(&self) -> String {
        let o = self.exec(&self.rt, &["--version"], Duration::from_secs(10));
        o.stdout.lines().next().unwrap_or("?").to_string()
    }

    pub fn finish(&self) {
        // Anything the runtime still lists under our private root is a leak.
        if let Ok(rd) = fs::read_dir(&self.root) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().to_string();
                if id.starts_with("oc-") {
                    let _ = self.rt(&["delete", "--force", &id]);
                }
            }
        }
        if !self.keep {
            let _ = fs::remove_dir_all(&self.work);
        }
    }

    pub fn run_case(&self, c: &Case) -> V {
        let r = (c.run)(self);
        let cl: Vec<Box<dyn FnOnce()>> = self.cleanups.borrow_mut().drain(..).collect();
        for f in cl.into_iter().rev() {
            f();
        }
        match r {
            Ok(v) => v,
            Err(e) => V::Fail(e),
        }
    }

    pub fn defer(&self, f: impl FnOnce() + 'static) {
        self.cleanups.borrow_mut().push(Box::new(f));
    }

    pub fn new_id(&self) -> String {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        format!("oc-{}-{n}", std::process::id())
    }

    /// Run a command with stdin /dev/null and stdout/stderr captured through files
    /// (never pipes: a container may inherit them).
    pub fn exec(&self, prog: &str, args: &[&str], timeout: Duration) -> Out {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        let of = self.work.join(format!("out.{n}"));
        let ef = self.work.join(format!("err.{n}"));
        let r = self.exec_io(prog, args, &of, &ef, timeout);
        let _ = fs::remove_file(&of);
        let _ = fs::remove_file(&ef);
        r
    }

    pub fn exec_io(
        &self,
        prog: &str,
        args: &[&str],
        of: &Path,
        ef: &Path,
        timeout: Duration,
    ) -> Out {
        let cmd = format!("{} {}", prog, args.join(" "));
        let (o, e) = match (fs::File::create(of), fs::File::create(ef)) {
            (Ok(o), Ok(e)) => (o, e),
            _ => {
                return Out {
                    code: None,
                    stdout: String::new(),
                    stderr: "cannot create output files".into(),
                    timed_out: false,
                    cmd,
                }
            }
        };
        let child = Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(o)
            .stderr(e)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                return Out {
                    code: None,
                    stdout: String::new(),
                    stderr: format!("spawn: {e}"),
                    timed_out: false,
                    cmd,
                }
            }
        };
        let t0 = Instant::now();
        let mut timed_out = false;
        let mut stuck = String::new();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) => {}
                Err(_) => break None,
            }
            if t0.elapsed() > timeout {
                timed_out = true;
                // Where it was stuck, for the report (the kernel stack says more than "timed
                // out" when a runtime hangs in a syscall).
                stuck = where_stuck(child.id());
                // Our own child, by pid.
                let _ = child.kill();
                // A process stuck in the kernel may not die at once: never wait forever.
                let t1 = Instant::now();
                break loop {
                    match child.try_wait() {
                        Ok(Some(s)) => break Some(s),
                        Ok(None) if t1.elapsed() < Duration::from_secs(10) => {
                            std::thread::sleep(Duration::from_millis(20))
                        }
                        _ => {
                            stuck += "; still alive 10 s after SIGKILL";
                            break None;
                        }
                    }
                };
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut stderr = fs::read_to_string(ef).unwrap_or_default();
        if !stuck.is_empty() {
            stderr += &format!("\n[timed out: {stuck}]");
        }
        Out {
            code: status.and_then(|s| s.code()),
            stdout: fs::read_to_string(of).unwrap_or_default(),
            stderr,
            timed_out,
            cmd,
        }
    }

    pub fn rt(&self, args: &[&str]) -> Out {
        let root = self.root.display().to_string();
        let mut a = vec!["--root", root.as_str()];
        a.extend(self.rt_flags.iter().map(String::as_str));
        a.extend_from_slice(args);
        self.exec(&self.rt, &a, self.timeout)
    }

    pub fn state(&self, id: &str) -> Result<Value, String> {
        let o = self.rt(&["state", id]);
        if !o.ok() {
            return Err(o.brief());
        }
        serde_json::from_str(&o.stdout)
            .map_err(|e| format!("state output is not JSON ({e}): {}", o.stdout))
    }
}

/// A process's state, wait channel and kernel stack (root may read it), in one line.
fn where_stuck(pid: u32) -> String {
    let read = |f: &str| fs::read_to_string(format!("/proc/{pid}/{f}")).unwrap_or_default();
    let state = read("status")
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .unwrap_or("")
        .trim()
        .to_string();
    let stack: Vec<String> = read("stack")
        .lines()
        .take(8)
        .map(|l| l.split_whitespace().nth(1).unwrap_or(l).to_string())
        .collect();
    format!(
        "pid {pid} state {state:?}, wchan {:?}, kernel stack [{}]",
        read("wchan"),
        stack.join(" < ")
    )
}
