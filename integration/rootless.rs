//! Rootless: skiff run by an unprivileged user (uid 4242 here, with no /etc/passwd or
//! /etc/subuid entry), on a bundle that user owns, with the config `skiff spec --rootless`
//! writes for it. What the kernel shows is checked from the host: the user namespace and its
//! map, the init's host uid, no cgroup of its own (this host delegates none), and what the
//! container's root may not do outside its namespace. Multi-range maps through
//! newuidmap/newgidmap and delegated cgroups need /etc/subuid and a delegated subtree, which
//! the guest provides (`guest.rs`).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

use crate::common::{output_via_files, skiff_bin, text, Bundle};

pub const UID: u32 = 4242;

/// A bundle owned by [`UID`] with its rootless config, and a state root it owns.
pub struct Rootless {
    pub b: Bundle,
    /// $XDG_RUNTIME_DIR of the user (the default state root is `<xdg>/skiff`).
    pub xdg: PathBuf,
    /// The mounts of the root template (`skiff spec` without --rootless).
    root_mounts: Value,
}

impl Rootless {
    pub fn new(name: &str) -> Rootless {
        let mut b = Bundle::new(name);
        let xdg = b.dir.join("xdg");
        std::fs::create_dir_all(&xdg).unwrap();
        // A state root the user can reach (/run/skiff-test is root's).
        b.root = b.dir.join("state");
        std::fs::create_dir_all(&b.root).unwrap();
        chown(&xdg);
        // The config the user gets from `skiff spec --rootless`, with the test's process.
        let out = as_user(Command::new(skiff_bin()).args(["spec", "--rootless", "--bundle"]))
            .arg(&xdg)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "spec --rootless: {}",
            text(&out.stderr)
        );
        let spec: Value =
            serde_json::from_slice(&std::fs::read(xdg.join("config.json")).unwrap()).unwrap();
        std::fs::remove_file(xdg.join("config.json")).unwrap();
        let process = b.config["process"].clone();
        let root_mounts = b.config["mounts"].clone();
        b.config = spec;
        b.config["process"] = process;
        b.config["process"]["terminal"] = json!(false);
        chown(&b.dir);
        chown(&b.root);
        Rootless {
            b,
            xdg,
            root_mounts,
        }
    }

    /// `skiff --root <ours> ARGS` as the user, config written first.
    pub fn skiff(&self, args: &[&str]) -> Output {
        self.b.write_config();
        chown(&self.b.dir.join("config.json"));
        let mut c = self.command(args);
        output_via_files(c.stdin(Stdio::null()))
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = as_user(&mut Command::new(skiff_bin()));
        c.env("XDG_RUNTIME_DIR", &self.xdg)
            .arg("--root")
            .arg(&self.b.root)
            .args(args);
        c
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.skiff(args);
        assert!(
            out.status.success(),
            "skiff {args:?} as uid {UID} failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn run(&self) -> Output {
        let dir = self.b.dir.to_str().unwrap().to_string();
        self.skiff(&["run", "--bundle", &dir, &self.b.id])
    }

    fn create_ok(&self) {
        let dir = self.b.dir.to_str().unwrap().to_string();
        self.ok(&["create", "--bundle", &dir, &self.b.id]);
    }

    fn pid(&self) -> i64 {
        let st: Value = serde_json::from_str(&self.ok(&["state", &self.b.id])).unwrap();
        st["pid"].as_i64().unwrap()
    }
}

/// `setpriv` to [`UID`]:[`UID`] with no supplementary groups and a clean environment.
fn as_user(c: &mut Command) -> Command {
    let mut s = Command::new("setpriv");
    s.args([
        "--reuid",
        &UID.to_string(),
        "--regid",
        &UID.to_string(),
        "--clear-groups",
        "--",
    ])
    .arg(c.get_program())
    .args(c.get_args())
    .env_clear()
    .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    .env("HOME", "/");
    s
}

fn chown(p: &std::path::Path) {
    let st = Command::new("chown")
        .args(["-R", &format!("{UID}:{UID}")])
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success(), "chown {}", p.display());
}

fn status_field(pid: i64, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap()
}

#[test]
fn lifecycle_runs_as_the_user_in_its_own_user_namespace_without_a_cgroup() {
    let mut r = Rootless::new("rl-life");
    r.b.args(&["sleep", "100"]);
    r.create_ok();
    let pid = r.pid();
    // The init runs as the user on the host, as root inside a user namespace of its own.
    let uids = status_field(pid, "Uid");
    assert!(
        uids.split_whitespace().all(|u| u == UID.to_string()),
        "{uids}"
    );
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/user")).unwrap();
    assert_ne!(
        ns(&pid.to_string()),
        ns("self"),
        "no user namespace of its own"
    );
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", &UID.to_string(), "1"]
    );
    // No cgroup of its own: the caller may make none here, and the config asks for no limit.
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let init = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let unified = |t: &str| t.lines().find(|l| l.starts_with("0::")).map(str::to_string);
    assert_eq!(
        unified(&init),
        unified(&own),
        "the init left the caller's cgroup"
    );
    let st: Value = serde_json::from_str(&r.ok(&["state", &r.b.id])).unwrap();
    assert_eq!(st["status"], "created");
    r.ok(&["start", &r.b.id]);
    // exec joins every namespace, the user and pid ones included, and sees the same map.
    let out = r.ok(&[
        "exec",
        &r.b.id,
        "sh",
        "-c",
        "id -u; echo $$; cat /proc/self/uid_map",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    assert!(lines[1].parse::<u32>().unwrap() > 1, "{out}");
    assert!(lines[2].contains(&UID.to_string()), "{out}");
    // ps finds the container's processes without a cgroup (its pid namespace).
    let ps = r.ok(&["ps", "--format", "json", &r.b.id]);
    let pids: Vec<i64> = serde_json::from_str(&ps).unwrap();
    assert!(pids.contains(&pid), "{ps}");
    let out = r.skiff(&["pause", &r.b.id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no cgroup to freeze"),
        "{}",
        text(&out.stderr)
    );
    r.ok(&["kill", "--all", &r.b.id, "KILL"]);
    assert!(crate::common::wait_for(5000, || !crate::common::pid_alive(
        pid
    )));
    r.ok(&["delete", &r.b.id]);
    assert_eq!(std::fs::read_dir(&r.b.root).unwrap().count(), 0);
}

#[test]
fn state_root_defaults_to_xdg_runtime_dir() {
    let mut r = Rootless::new("rl-xdg");
    r.b.sh("echo hi");
    r.b.write_config();
    chown(&r.b.dir.join("config.json"));
    let dir = r.b.dir.to_str().unwrap().to_string();
    let mut c = as_user(Command::new(skiff_bin()).args(["create", "--bundle", &dir, &r.b.id]));
    c.env("XDG_RUNTIME_DIR", &r.xdg);
    let out = output_via_files(c.stdin(Stdio::null()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        r.xdg.join("skiff").join(&r.b.id).is_dir(),
        "not under $XDG_RUNTIME_DIR/skiff"
    );
    let mut c = as_user(Command::new(skiff_bin()).args(["delete", "--force", &r.b.id]));
    c.env("XDG_RUNTIME_DIR", &r.xdg);
    assert!(c.status().unwrap().success());
    assert!(!r.xdg.join("skiff").join(&r.b.id).exists());
}

#[test]
fn what_needs_privilege_is_refused_naming_the_field() {
    let cases: [(&str, Value, &str); 5] = [
        (
            "limits",
            json!({"/linux/resources": {"memory": {"limit": 33554432}}}),
            "rootless: linux.resources sets limits",
        ),
        (
            "map",
            json!({"/linux/uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}),
            "linux.uidMappings[0]: host ids 100000-165535 are not this user's to map",
        ),
        (
            "userns",
            json!({"/linux/namespaces": [{"type": "pid"}, {"type": "mount"}]}),
            "needs a user namespace in linux.namespaces",
        ),
        (
            "groups",
            json!({"/process/user/additionalGids": [5]}),
            "process.user.additionalGids: [5] cannot be set: setgroups is denied",
        ),
        (
            "oom",
            json!({"/process/oomScoreAdj": -500}),
            "process.oomScoreAdj: -500: a non-root user may raise it",
        ),
    ];
    for (what, patch, want) in cases {
        let mut r = Rootless::new(&format!("rl-refuse-{what}"));
        r.b.sh("echo should-not-run");
        for (ptr, v) in patch.as_object().unwrap() {
            let (parent, key) = ptr.rsplit_once('/').unwrap();
            r.b.config.pointer_mut(parent).unwrap()[key] = v.clone();
        }
        let out = r.run();
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{what}: ran: {}", text(&out.stdout));
        assert!(err.contains(want), "{what}: {err}");
        assert!(!text(&out.stdout).contains("should-not-run"), "{what}");
        assert_eq!(
            std::fs::read_dir(&r.b.root).unwrap().count(),
            0,
            "{what}: state left behind"
        );
    }
}

#[test]
fn the_containers_root_has_no_privilege_outside_its_namespace() {
    let mut r = Rootless::new("rl-sec");
    // A host-root file, visible through a bind mount: the container's root is not its owner.
    let host = r.b.dir.join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("rootfile"), "root's\n").unwrap();
    Command::new("chown")
        .args(["-R", "0:0"])
        .arg(&host)
        .status()
        .unwrap();
    r.b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/host", "type": "bind",
                     "source": host.to_str().unwrap(), "options": ["rbind", "rw"]}));
    std::os::unix::fs::symlink("busybox", r.b.rootfs().join("bin/insmod")).unwrap();
    std::fs::write(r.b.rootfs().join("x.ko"), "not a module").unwrap();
    r.b.sh("echo changed > /host/rootfile && echo WROTE; \
         insmod /x.ko 2>&1; \
         echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo SYSRQ; \
         ls /proc | grep -c '^[0-9]'");
    let out = r.run();
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(!stdout.contains("WROTE"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(host.join("rootfile")).unwrap(),
        "root's\n"
    );
    assert!(
        stderr.contains("Permission denied") || stderr.contains("Read-only"),
        "{stderr}"
    );
    if std::path::Path::new("/proc/modules").exists() {
        assert!(
            stdout.contains("Operation not permitted"),
            "insmod: {stdout}"
        );
    } else {
        crate::common::skipped(
            "kernel-modules",
            "this kernel has no module support (no /proc/modules): loading one cannot be \
             attempted here (the guest's kernel has it)",
        );
    }
    assert!(!stdout.contains("SYSRQ"), "{stdout}");
    // Its own pid namespace: only its own processes (sh and the pipeline) are in /proc.
    let procs: u32 = stdout.lines().last().unwrap().trim().parse().unwrap();
    assert!(procs <= 4, "sees {procs} processes: {stdout}");
}

#[test]
fn hooks_run_as_the_user() {
    let mut r = Rootless::new("rl-hooks");
    let out_file = r.xdg.join("hook.out");
    let hook = r.b.dir.join("hook.sh");
    crate::common::write_script(
        &hook,
        &format!("#!/bin/sh\nid -u > {}\n", out_file.display()),
    );
    chown(&r.b.dir);
    r.b.config["hooks"] = json!({"prestart": [{"path": hook.to_str().unwrap()}]});
    r.b.sh("true");
    let out = r.run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap().trim(),
        UID.to_string()
    );
}

#[test]
fn subordinate_ranges_are_mapped_through_newuidmap() {
    let Some(helper) = ["/usr/bin/newuidmap", "/usr/sbin/newuidmap"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        crate::common::skipped("uidmap", "newuidmap is not installed (Debian's uidmap)");
        return;
    };
    let mut r = Rootless::new("rl-subid");
    let maps = json!([{"containerID": 0, "hostID": UID, "size": 1},
                      {"containerID": 1, "hostID": 200000, "size": 65536}]);
    r.b.config["linux"]["uidMappings"] = maps.clone();
    r.b.config["linux"]["gidMappings"] = maps;
    r.b.config["process"]["user"] = json!({"uid": 0, "gid": 0, "additionalGids": [100]});
    let caps = json!(["CAP_CHOWN"]);
    r.b.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    r.b.sh("cat /proc/self/uid_map /proc/self/gid_map; id -G; \
         touch /dev/shm/f && chown 1000:1000 /dev/shm/f && stat -c 'owner %u %g' /dev/shm/f");
    r.b.write_config();
    chown(&r.b.dir.join("config.json"));
    // /etc/subuid and /etc/subgid granting the user 200000-265535 (and a passwd entry:
    // newuidmap wants a name), in a copy of /etc bound over it in a mount namespace of the
    // test's own: the host's files are not touched.
    let etc = r.b.dir.join("etc");
    let st = Command::new("cp")
        .args(["-a", "/etc"])
        .arg(&etc)
        .status()
        .unwrap();
    assert!(st.success(), "copying /etc");
    let grant = format!("{UID}:200000:65536\n");
    std::fs::write(etc.join("subuid"), &grant).unwrap();
    std::fs::write(etc.join("subgid"), &grant).unwrap();
    let mut users = std::fs::read_to_string("/etc/passwd").unwrap();
    users.push_str(&format!("rltest:x:{UID}:{UID}::/:/bin/sh\n"));
    std::fs::write(etc.join("passwd"), users).unwrap();
    let dir = r.b.dir.to_str().unwrap().to_string();
    let inner = r.command(&["run", "--bundle", &dir, &r.b.id]);
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg("mount --bind \"$0\" /etc && exec \"$@\"")
        .arg(&etc)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let out = output_via_files(c.stdin(Stdio::null()));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{helper}: {}", text(&out.stderr));
    let lines: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(lines.contains(&vec!["1", "200000", "65536"]), "{stdout}");
    assert!(
        lines.contains(&vec!["0", &UID.to_string(), "1"]),
        "{stdout}"
    );
    // Supplementary groups work where setgroups is allowed (a newgidmap map).
    assert!(
        stdout.contains("\n100\n") || stdout.contains(" 100\n"),
        "{stdout}"
    );
    assert!(stdout.contains("owner 1000 1000"), "{stdout}");
}

/// A cgroup v2 subtree delegated to the user (owned by it, with memory and pids enabled
/// for its children), as systemd's user@.service delegates one: a config with limits then
/// gets a cgroup of its own there. Needs the controllers (the guest).
#[test]
fn a_delegated_subtree_takes_limits() {
    let have = crate::common::controllers();
    if !["memory", "pids"]
        .iter()
        .all(|c| have.iter().any(|h| h == c))
    {
        crate::common::skipped(
            "cgroup-v2-controllers",
            "delegating memory and pids needs a cgroup v2 hierarchy with them (the guest)",
        );
        return;
    }
    let mount = crate::common::cgroup2_mount();
    let mut r = Rootless::new("rl-deleg");
    let top = format!("skiff-rl-{}", r.b.id);
    let delegated = mount.join(&top);
    std::fs::create_dir(&delegated).unwrap();
    let cleanup = Cleanup(vec![delegated.join("caller"), delegated.clone()]);
    std::fs::write(delegated.join("cgroup.subtree_control"), "+memory +pids").unwrap();
    std::fs::create_dir(delegated.join("caller")).unwrap();
    for f in [
        "",
        "cgroup.procs",
        "cgroup.subtree_control",
        "cgroup.threads",
    ] {
        chown(&delegated.join(f));
    }
    chown(&delegated.join("caller"));
    let cg = format!("/{top}/ctr");
    r.b.config["linux"]["cgroupsPath"] = json!(cg);
    r.b.config["linux"]["resources"] =
        json!({"memory": {"limit": 67108864}, "pids": {"limit": 64}});
    r.b.args(&["sleep", "100"]);
    r.b.write_config();
    chown(&r.b.dir.join("config.json"));
    // The user's skiff starts in its own leaf of the subtree, as a user session does: moving
    // the init to the container's cgroup needs write access to their common ancestor.
    let dir = r.b.dir.to_str().unwrap().to_string();
    let inner = r.command(&["create", "--bundle", &dir, &r.b.id]);
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("echo $$ > \"$0\" && exec \"$@\"")
        .arg(delegated.join("caller/cgroup.procs"))
        .arg(inner.get_program())
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    let out = output_via_files(c.stdin(Stdio::null()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid = r.pid();
    let ctr = mount.join(cg.trim_start_matches('/'));
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(own.contains(&format!("0::{cg}")), "{own}");
    let read = |f: &str| {
        std::fs::read_to_string(ctr.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("memory.max"), "67108864");
    assert_eq!(read("pids.max"), "64");
    r.ok(&["delete", "--force", &r.b.id]);
    assert!(!ctr.exists(), "the container's cgroup was left behind");
    drop(cleanup);
}

/// Removes the test's delegated cgroups (deepest first) however the test ends.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// The mounts of a root template (`skiff spec` without --rootless: sysfs, devpts with
/// `gid=5`, a cgroup mount) in a rootless container without a network namespace: sysfs is
/// the host's /sys bound read-only, devpts comes without the unmapped gid, as runc and crun
/// make them.
#[test]
fn a_root_templates_mounts_work_rootless() {
    let mut r = Rootless::new("rl-rootmounts");
    r.b.config["mounts"] = r.root_mounts.clone();
    r.b.sh(
        "grep -E ' /sys | /dev/pts ' /proc/self/mountinfo; ls /sys/class >/dev/null && echo SYS",
    );
    let out = r.run();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = |mp: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().nth(4) == Some(mp))
            .unwrap_or_else(|| panic!("no {mp} mount: {stdout}"))
            .to_string()
    };
    let sys = line("/sys");
    assert!(sys.contains(" - sysfs "), "{sys}");
    assert!(
        sys.split_whitespace()
            .nth(5)
            .unwrap()
            .split(',')
            .any(|o| o == "ro"),
        "{sys}"
    );
    let pts = line("/dev/pts");
    assert!(
        pts.contains(" - devpts ") && !pts.contains("gid=5"),
        "{pts}"
    );
    assert!(stdout.contains("SYS"), "{stdout}");
}
