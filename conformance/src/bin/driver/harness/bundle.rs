//! Bundles: the rootfs (probe, busybox, hook script), the base config and its editing.

use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;

impl Ctx {
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
