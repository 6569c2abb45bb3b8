//! Runtime invocation, bundle generation, container handles, probe reports.

use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) => {}
                Err(_) => break None,
            }
            if t0.elapsed() > timeout {
                timed_out = true;
                // Our own child, by pid.
                let _ = child.kill();
                break child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Out {
            code: status.and_then(|s| s.code()),
            stdout: fs::read_to_string(of).unwrap_or_default(),
            stderr: fs::read_to_string(ef).unwrap_or_default(),
            timed_out,
            cmd,
        }
    }

    pub fn rt(&self, args: &[&str]) -> Out {
        let root = self.root.display().to_string();
        let mut a = vec!["--root", root.as_str()];
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

    pub fn bundle(&self, name: &str) -> Bundle {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let dir = self
            .work
            .join(format!("b{n}-{}", &safe[safe.len().saturating_sub(40)..]));
        let rootfs = dir.join("rootfs");
        for d in [
            "bin",
            "proc",
            "sys",
            "dev",
            "tmp",
            "etc",
            "hooks",
            "hooklog.d",
            "work-dir",
        ] {
            fs::create_dir_all(rootfs.join(d)).expect("mkdir rootfs");
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).ok();
        fs::set_permissions(rootfs.join("hooklog.d"), fs::Permissions::from_mode(0o777)).ok();
        link_or_copy(&self.probe, &rootfs.join("probe"));
        link_or_copy(&self.busybox, &rootfs.join("bin/busybox"));
        for a in APPLETS {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
        }
        fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
        )
        .ok();
        fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").ok();
        let hook = rootfs.join("hooks/hook.sh");
        fs::write(&hook, HOOK_SCRIPT).expect("hook script");
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).ok();
        let cfg = base_config(self);
        Bundle { dir, rootfs, cfg }
    }
}

fn link_or_copy(src: &Path, dst: &Path) {
    if fs::hard_link(src, dst).is_err() {
        fs::copy(src, dst).expect("copy into rootfs");
    }
}

/// Hook used for every hook kind: `hook.sh NAME LOGDIR [EXIT] [SLEEP]`.
/// LOGDIR is the host path of rootfs/hooklog.d; inside the container (where
/// that path does not exist) it falls back to /hooklog.d.
pub const HOOK_SCRIPT: &str = r#"#!/bin/sh
name=$1; d=$2; rc=${3:-0}
[ -d "$d" ] || d=/hooklog.d
cat > "$d/$name.stdin"
readlink /proc/self/ns/mnt > "$d/$name.mntns" 2>/dev/null
readlink /proc/self/ns/pid > "$d/$name.pidns" 2>/dev/null
for a in "$@"; do printf '%s\n' "$a"; done > "$d/$name.args"
env > "$d/$name.env"
pid=$(sed -n 's/.*"pid"[^0-9]*\([0-9][0-9]*\).*/\1/p' "$d/$name.stdin")
if [ -n "$pid" ]; then
  c=$(tr '\000' ' ' < "/proc/$pid/cmdline" 2>/dev/null)
  # An empty cmdline is a zombie: the process is gone.
  if [ -n "$c" ]; then echo "$c" > "$d/$name.cmdline"; else echo gone > "$d/$name.cmdline"; fi
fi
if [ -e "$d/../started" ]; then echo yes > "$d/$name.user-started"; else echo no > "$d/$name.user-started"; fi
echo "$name" >> "$d/log"
[ -n "$4" ] && exec sleep "$4"
exit $rc
"#;

pub fn base_config(cx: &Ctx) -> Value {
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        "TERM=xterm".to_string(),
        format!("PROBE_PARENT_OOM={}", cx.host.oom),
    ];
    for (k, v) in &cx.host.ns {
        env.push(format!("PROBE_HOST_NS_{k}={v}"));
    }
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/probe"],
            "env": env,
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "conformance",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                            "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub cfg: Value,
}

impl Bundle {
    pub fn write(&self) {
        let s = serde_json::to_string_pretty(&self.cfg).unwrap();
        fs::write(self.dir.join("config.json"), &s).expect("write config.json");
        let _ = fs::write(self.rootfs.join("probe-config.json"), &s);
    }
    pub fn path(&self) -> String {
        self.dir.display().to_string()
    }
    pub fn hooklog(&self) -> PathBuf {
        self.rootfs.join("hooklog.d")
    }
    pub fn set(&mut self, ptr: &str, v: Value) {
        set_ptr(&mut self.cfg, ptr, v);
    }
    pub fn env(&mut self, kv: &str) {
        self.cfg["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!(kv));
    }
    pub fn args(&mut self, a: &[&str]) {
        self.cfg["process"]["args"] = json!(a);
    }
    pub fn push(&mut self, ptr: &str, v: Value) {
        if self.cfg.pointer(ptr).is_none() {
            set_ptr(&mut self.cfg, ptr, json!([]));
        }
        self.cfg
            .pointer_mut(ptr)
            .unwrap()
            .as_array_mut()
            .unwrap()
            .push(v);
    }
    pub fn remove_ns(&mut self, ty: &str) {
        if let Some(a) = self
            .cfg
            .pointer_mut("/linux/namespaces")
            .and_then(Value::as_array_mut)
        {
            a.retain(|n| n["type"] != ty);
        }
    }
    pub fn add_ns(&mut self, ty: &str, path: Option<&str>) {
        self.remove_ns(ty);
        let v = match path {
            Some(p) => json!({"type": ty, "path": p}),
            None => json!({"type": ty}),
        };
        self.push("/linux/namespaces", v);
    }
    /// A hook entry running hook.sh with the given name (logging to hooklog.d).
    pub fn hook(&self, name: &str, extra: &[&str]) -> Value {
        let path = self.rootfs.join("hooks/hook.sh").display().to_string();
        let log = self.hooklog().display().to_string();
        let mut args = vec!["hook.sh".to_string(), name.to_string(), log];
        args.extend(extra.iter().map(|s| s.to_string()));
        json!({"path": path, "args": args, "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "timeout": 20})
    }
    pub fn hook_log(&self) -> Vec<String> {
        fs::read_to_string(self.hooklog().join("log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
    pub fn hook_file(&self, name: &str, ext: &str) -> Option<String> {
        fs::read_to_string(self.hooklog().join(format!("{name}.{ext}"))).ok()
    }
}

pub fn set_ptr(root: &mut Value, ptr: &str, v: Value) {
    let parts: Vec<&str> = ptr.trim_start_matches('/').split('/').collect();
    let mut cur = root;
    for (i, p) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            if let Some(arr) = cur.as_array_mut() {
                let idx: usize = p.parse().expect("array index");
                arr[idx] = v;
            } else {
                cur.as_object_mut()
                    .expect("object")
                    .insert(p.to_string(), v);
            }
            return;
        }
        if cur.is_array() {
            let idx: usize = p.parse().expect("array index");
            cur = &mut cur.as_array_mut().unwrap()[idx];
        } else {
            let o = cur.as_object_mut().expect("object on path");
            cur = o.entry(p.to_string()).or_insert_with(|| json!({}));
        }
    }
}

/// A container under test. Drop deletes it with --force.
pub struct Ctr<'a> {
    pub cx: &'a Ctx,
    pub id: String,
    pub b: Bundle,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub extra_create: Vec<String>,
}

impl<'a> Ctr<'a> {
    pub fn new(cx: &'a Ctx, b: Bundle) -> Ctr<'a> {
        let stdout = b.dir.join("ctr.stdout");
        let stderr = b.dir.join("ctr.stderr");
        Ctr {
            cx,
            id: cx.new_id(),
            b,
            stdout,
            stderr,
            extra_create: vec![],
        }
    }
    pub fn create(&self) -> Out {
        self.b.write();
        self.create_raw(&self.id)
    }
    pub fn create_raw(&self, id: &str) -> Out {
        let root = self.cx.root.display().to_string();
        let bp = self.b.path();
        let mut a: Vec<&str> = vec!["--root", &root, "create", "--bundle", &bp];
        for e in &self.extra_create {
            a.push(e);
        }
        a.push(id);
        self.cx
            .exec_io(&self.cx.rt, &a, &self.stdout, &self.stderr, self.cx.timeout)
    }
    pub fn start(&self) -> Out {
        self.cx.rt(&["start", &self.id])
    }
    pub fn state(&self) -> Result<Value, String> {
        self.cx.state(&self.id)
    }
    pub fn status(&self) -> String {
        self.state()
            .ok()
            .and_then(|s| s["status"].as_str().map(String::from))
            .unwrap_or_else(|| "<no state>".into())
    }
    pub fn pid(&self) -> Option<i32> {
        self.state()
            .ok()
            .and_then(|s| s["pid"].as_i64())
            .map(|p| p as i32)
    }
    pub fn kill(&self, sig: &str) -> Out {
        self.cx.rt(&["kill", &self.id, sig])
    }
    pub fn delete(&self) -> Out {
        self.cx.rt(&["delete", &self.id])
    }
    pub fn wait_status(&self, want: &str, secs: u64) -> Result<Value, String> {
        let t0 = Instant::now();
        let mut last = String::new();
        while t0.elapsed() < Duration::from_secs(secs) {
            match self.state() {
                Ok(s) if s["status"] == want => return Ok(s),
                Ok(s) => last = s.to_string(),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "status did not become {want:?} within {secs}s; last state: {last}"
        ))
    }
    pub fn output(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }
    pub fn errout(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
    /// create + start, error text on failure.
    pub fn up(&self) -> Result<(), String> {
        let o = self.create();
        if !o.ok() {
            return Err(format!(
                "create failed: {}; container stderr: {}",
                o.brief(),
                self.errout().trim()
            ));
        }
        let o = self.start();
        if !o.ok() {
            return Err(format!(
                "start failed: {}; container stderr: {}",
                o.brief(),
                self.errout().trim()
            ));
        }
        Ok(())
    }
    pub fn started_count(&self) -> usize {
        fs::read_to_string(self.b.rootfs.join("started"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
    pub fn signals(&self) -> Vec<String> {
        fs::read_to_string(self.b.rootfs.join("signals"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
    pub fn wait_started(&self, secs: u64) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(secs) {
            if self.started_count() > 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for Ctr<'_> {
    fn drop(&mut self) {
        if self.cx.state(&self.id).is_ok() {
            let _ = self.cx.rt(&["delete", "--force", &self.id]);
        }
    }
}

pub struct Report {
    pub checks: Vec<(String, Option<bool>, String)>,
    pub done: bool,
    pub raw: String,
}

impl Report {
    pub fn judge(&self, focus: &[&str]) -> V {
        if !self.done {
            return V::Fail(format!(
                "probe did not run to completion; output:\n{}",
                self.raw.chars().take(3000).collect::<String>()
            ));
        }
        let sel: Vec<&(String, Option<bool>, String)> = self
            .checks
            .iter()
            .filter(|(n, _, _)| {
                focus.iter().any(|f| {
                    n == f || n.starts_with(&format!("{f}.")) || n.starts_with(&format!("{f}["))
                })
            })
            .collect();
        if sel.is_empty() {
            return V::Fail(format!("probe reported no check for {focus:?}"));
        }
        let bad: Vec<String> = sel
            .iter()
            .filter(|c| c.1 == Some(false))
            .map(|c| format!("{}: {}", c.0, c.2))
            .collect();
        if !bad.is_empty() {
            return V::Fail(bad.join("\n"));
        }
        let unv: Vec<String> = sel
            .iter()
            .filter(|c| c.1.is_none())
            .map(|c| format!("{}: {}", c.0, c.2))
            .collect();
        if !unv.is_empty() {
            return V::Skip(format!("probe could not verify: {}", unv.join("; ")));
        }
        V::Pass
    }
    #[allow(dead_code)]
    pub fn find(&self, name: &str) -> Option<&(String, Option<bool>, String)> {
        self.checks.iter().find(|c| c.0 == name)
    }
}

pub fn parse_report(raw: &str) -> Report {
    let mut checks = vec![];
    let mut done = false;
    for l in raw.lines() {
        let Ok(v) = serde_json::from_str::<Value>(l) else {
            continue;
        };
        let name = v["check"].as_str().unwrap_or("").to_string();
        if name == "probe.done" {
            done = true;
            continue;
        }
        checks.push((
            name,
            v["ok"].as_bool(),
            v["detail"].as_str().unwrap_or("").to_string(),
        ));
    }
    Report {
        checks,
        done,
        raw: raw.to_string(),
    }
}

impl Ctx {
    /// Create, start, wait for exit, collect the probe's report, delete.
    pub fn run_probe(&self, b: Bundle) -> Result<Report, String> {
        let c = Ctr::new(self, b);
        c.up()?;
        c.wait_status("stopped", 20)?;
        let rep = parse_report(&c.output());
        let d = c.delete();
        if !d.ok() {
            return Err(format!("delete of stopped container failed: {}", d.brief()));
        }
        if !rep.done {
            return Err(format!(
                "probe did not complete. stdout:\n{}\nstderr:\n{}",
                c.output(),
                c.errout()
            ));
        }
        Ok(rep)
    }
}

pub fn is_alive(pid: i32) -> bool {
    // Zombies count as gone.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

pub fn ns_inode(pid: i32, f: &str) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/ns/{f}"))
        .ok()
        .map(|m| m.ino())
}

/// A --console-socket listener: receives the pty master from the runtime
/// and collects everything the container writes to its terminal.
pub struct Console {
    pub path: PathBuf,
    thread: Option<std::thread::JoinHandle<Result<String, String>>>,
}

impl Console {
    pub fn new(dir: &Path) -> Result<Console, String> {
        use std::os::unix::net::UnixListener;
        let path = dir.join("console.sock");
        let l = UnixListener::bind(&path).map_err(|e| format!("console socket: {e}"))?;
        let thread = std::thread::spawn(move || -> Result<String, String> {
            use std::os::unix::io::AsRawFd;
            let (s, _) = l.accept().map_err(|e| e.to_string())?;
            let fd = recv_fd(s.as_raw_fd())?;
            let mut out = vec![];
            let mut buf = [0u8; 4096];
            loop {
                // SAFETY: reading into our buffer from the received fd.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
                if n <= 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n as usize]);
            }
            // SAFETY: our fd.
            unsafe { libc::close(fd) };
            Ok(String::from_utf8_lossy(&out).replace('\r', ""))
        });
        Ok(Console {
            path,
            thread: Some(thread),
        })
    }
    pub fn output(mut self, secs: u64) -> Result<String, String> {
        let t = self.thread.take().unwrap();
        let t0 = Instant::now();
        while !t.is_finished() {
            if t0.elapsed() > Duration::from_secs(secs) {
                return Err("terminal output did not end (pty master never hung up)".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        t.join()
            .map_err(|_| "console thread panicked".to_string())?
    }
}

fn recv_fd(sock: i32) -> Result<i32, String> {
    let mut data = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cbuf = [0u64; 16];
    // SAFETY: a zeroed msghdr pointing at our buffers; CMSG macros walk cbuf.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        if libc::recvmsg(sock, &mut msg, 0) < 0 {
            return Err(format!("recvmsg: {}", std::io::Error::last_os_error()));
        }
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
            return Err("no SCM_RIGHTS fd on the console socket".into());
        }
        Ok(*(libc::CMSG_DATA(c) as *const i32))
    }
}
