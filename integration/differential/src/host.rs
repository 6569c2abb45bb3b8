//! The host side of one run: the run directory (bundle, rootfs, volumes, namespace files,
//! propagation source, hook log), a pre-created cgroup, and tearing all of it down.

use crate::gen::{Case, SourceMode, HOLDER_UID_MAP};
use crate::sys;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const BASE: &str = "/tmp/dfh";
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Spec namespace name → /proc/<pid>/ns name and clone flag.
pub fn ns_proc_name(kind: &str) -> (&'static str, i32) {
    match kind {
        "network" => ("net", libc::CLONE_NEWNET),
        "ipc" => ("ipc", libc::CLONE_NEWIPC),
        "uts" => ("uts", libc::CLONE_NEWUTS),
        "cgroup" => ("cgroup", libc::CLONE_NEWCGROUP),
        "user" => ("user", libc::CLONE_NEWUSER),
        "pid" => ("pid", libc::CLONE_NEWPID),
        "mount" => ("mnt", libc::CLONE_NEWNS),
        _ => ("time", 0x80),
    }
}

pub struct Prepared {
    pub run: PathBuf,
    /// The token in every path of this run ("<index>.<side>"), normalised away.
    pub token: String,
    pub bundle: PathBuf,
    /// Joined namespaces: /proc ns name → the inode of the file at @RUN@/ns/<kind>.
    pub joined: Vec<(&'static str, u64)>,
    /// Host-side mounts this harness made under the run directory (not leftovers).
    pub own_mounts: Vec<String>,
    /// The propagation volumes: name and where the host mounts its probe (the source, or
    /// the source's master).
    pub probes: Vec<(String, PathBuf)>,
    pid_holders: Vec<(i32, i32)>,
    /// A process in the pre-created cgroup.
    sleeper: Option<Child>,
    /// The cgroup tree of this config (`<own>/dfh<index>`), removed at teardown.
    pub cgroup_tree: PathBuf,
}

fn io<T>(what: impl std::fmt::Display, r: std::io::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn mount(src: &str, dst: &Path, fstype: &str, flags: u64, data: &str) -> Result<(), String> {
    sys::mount(src, &dst.display().to_string(), fstype, flags, data)
        .map_err(|e| format!("mount {fstype} {src} on {}: errno {e}", dst.display()))
}

/// The rootfs every run starts from: the static observer, passwd/group, a symlink for
/// mount destinations through links, a self-looping symlink, a tmpcopyup source.
fn rootfs(root: &Path, bin: &Path, case: &Case) -> Result<(), String> {
    for d in [
        "proc",
        "sys",
        "dev",
        "tmp",
        "etc",
        "mnt/real",
        "copyup/sub",
        "root",
        "home/u",
    ] {
        io(d, fs::create_dir_all(root.join(d)))?;
    }
    io(
        "chmod tmp",
        fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)),
    )?;
    io("observe", fs::hard_link(bin, root.join("observe")))?;
    let files = [
        ("observe-plan.json", case.plan.to_string()),
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000:u:/home/u:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n".into()),
        ("etc/group", "root:x:0:\ntty:x:5:\nwheel:x:10:\nusers:x:100:\nu:x:1000:\nnogroup:x:65534:\n".into()),
        ("etc/secret", "secret\n".into()),
        ("copyup/a", "a\n".into()),
        ("copyup/sub/b", "b\n".into()),
    ];
    for (f, content) in files {
        io(f, fs::write(root.join(f), content))?;
    }
    io("lnk", symlink("/mnt/real", root.join("lnk")))?;
    io("loop", symlink("/loop", root.join("loop")))?;
    Ok(())
}

/// The host ids of container root, when the config has a user namespace.
fn mapped_root(case: &Case) -> Option<(u32, u32)> {
    let linux = &case.config["linux"];
    if !linux["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|n| n["type"] == "user")
    {
        return None;
    }
    let host_of = |maps: &serde_json::Value| {
        maps.as_array()
            .into_iter()
            .flatten()
            .find(|m| m["containerID"] == 0)
            .and_then(|m| m["hostID"].as_u64())
            .map(|h| h as u32)
    };
    let holder: u32 = HOLDER_UID_MAP
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Some((
        host_of(&linux["uidMappings"]).unwrap_or(holder),
        host_of(&linux["gidMappings"]).unwrap_or(holder),
    ))
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) -> Result<(), String> {
    io(
        format!("chown {}", dir.display()),
        std::os::unix::fs::lchown(dir, Some(uid), Some(gid)),
    )?;
    for e in io("read rootfs", fs::read_dir(dir))?.flatten() {
        let path = e.path();
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            chown_tree(&path, uid, gid)?;
        } else if e.file_name() != "observe" {
            io(
                format!("chown {}", path.display()),
                std::os::unix::fs::lchown(&path, Some(uid), Some(gid)),
            )?;
        }
    }
    Ok(())
}

pub fn prepare(case: &Case, side: &str, bin: &Path) -> Result<Prepared, String> {
    let token = format!("{}.{side}", case.index);
    let run = Path::new(BASE).join(&token);
    if run.exists() {
        teardown_mounts(&run);
        io("stale run dir", fs::remove_dir_all(&run))?;
    }
    let bundle = run.join("bundle");
    io("bundle", fs::create_dir_all(bundle.join("rootfs")))?;
    rootfs(&bundle.join("rootfs"), bin, case)?;
    if let Some((uid, gid)) = mapped_root(case) {
        // As with a real image for a user namespace: the rootfs belongs to the mapped root.
        chown_tree(&bundle.join("rootfs"), uid, gid)?;
    }
    let config = case
        .config
        .to_string()
        .replace("@RUN@", &run.display().to_string())
        .replace("@BIN@", &bin.display().to_string());
    io("config.json", fs::write(bundle.join("config.json"), config))?;
    let cgroup_tree = Path::new(CGROUP_ROOT)
        .join(own_cgroup().trim_start_matches('/'))
        .join(&case.id);
    remove_cgroup(&cgroup_tree);
    let mut p = Prepared {
        run: run.clone(),
        token,
        bundle,
        joined: vec![],
        own_mounts: vec![],
        probes: vec![],
        pid_holders: vec![],
        sleeper: None,
        cgroup_tree,
    };
    let result = fill(case, &mut p);
    if let Err(e) = result {
        teardown(p);
        return Err(e);
    }
    Ok(p)
}

fn fill(case: &Case, p: &mut Prepared) -> Result<(), String> {
    let run = p.run.clone();
    let vol = run.join("vol");
    io("vol", fs::create_dir_all(&vol))?;
    for (name, sub) in &case.host.dirs {
        let d = vol.join(name);
        io(name, fs::create_dir_all(d.join("sub")))?;
        io(name, fs::write(d.join("hello"), "hello\n"))?;
        if *sub {
            mount("dfh-sub", &d.join("sub"), "tmpfs", 0, "size=64k")?;
            p.own_mounts.push(d.join("sub").display().to_string());
            io("subfile", fs::write(d.join("sub/subfile"), "sub\n"))?;
        }
    }
    for name in &case.host.files {
        io(name, fs::write(vol.join(name), format!("file {name}\n")))?;
    }
    for (name, mode) in &case.host.propagation {
        propagation_source(&run, name, *mode, p)?;
    }
    namespaces(case, &run, p)?;
    if let Some((path, populated)) = &case.host.precreated_cgroup {
        let dir = Path::new(CGROUP_ROOT)
            .join(own_cgroup().trim_start_matches('/'))
            .join(path);
        io(format!("mkdir {}", dir.display()), fs::create_dir_all(&dir))?;
        p.sleeper = None;
        if *populated {
            let child = io(
                "sleep",
                Command::new("sleep")
                    .arg("600")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .spawn(),
            )?;
            let pid = child.id();
            p.sleeper = Some(child);
            io(
                "cgroup.procs",
                fs::write(dir.join("cgroup.procs"), pid.to_string()),
            )?;
        }
    }
    if case.host.hooks {
        let h = run.join("hooks");
        io("hooks", fs::create_dir_all(&h))?;
        io(
            "hooks",
            fs::set_permissions(&h, fs::Permissions::from_mode(0o777)),
        )?;
        io("hooks.log", fs::write(h.join("hooks.log"), ""))?;
        io(
            "hooks.log",
            fs::set_permissions(h.join("hooks.log"), fs::Permissions::from_mode(0o666)),
        )?;
    }
    Ok(())
}

fn propagation_source(
    run: &Path,
    name: &str,
    mode: SourceMode,
    p: &mut Prepared,
) -> Result<(), String> {
    let pv = run.join(name);
    io(name, fs::create_dir_all(&pv))?;
    let origin = match mode {
        SourceMode::Shared | SourceMode::Private => {
            mount("dfh-pv", &pv, "tmpfs", 0, "size=64k")?;
            p.own_mounts.push(pv.display().to_string());
            let flag = if mode == SourceMode::Shared {
                libc::MS_SHARED
            } else {
                libc::MS_PRIVATE
            };
            mount("none", &pv, "", flag, "")?;
            pv.join("h2c")
        }
        SourceMode::Slave => {
            let pvm = run.join(format!("{name}-m"));
            io("master", fs::create_dir_all(&pvm))?;
            mount("dfh-pvm", &pvm, "tmpfs", 0, "size=64k")?;
            p.own_mounts.push(pvm.display().to_string());
            mount("none", &pvm, "", libc::MS_SHARED, "")?;
            mount(&pvm.display().to_string(), &pv, "", libc::MS_BIND, "")?;
            p.own_mounts.push(pv.display().to_string());
            mount("none", &pv, "", libc::MS_SLAVE, "")?;
            pvm.join("h2c")
        }
    };
    for d in ["h2c", "c2h"] {
        io(d, fs::create_dir_all(pv.join(d)))?;
    }
    p.probes.push((name.to_string(), origin));
    Ok(())
}

fn namespaces(case: &Case, run: &Path, p: &mut Prepared) -> Result<(), String> {
    if case.host.joined.is_empty() {
        return Ok(());
    }
    let nsdir = run.join("ns");
    io("ns", fs::create_dir_all(&nsdir))?;
    let file = |kind: &str| nsdir.join(kind).display().to_string();
    for kind in &case.host.joined {
        io(kind, fs::write(file(kind), ""))?;
    }
    let plain: Vec<&str> = case
        .host
        .joined
        .iter()
        .copied()
        .filter(|k| !matches!(*k, "user" | "pid"))
        .collect();
    if !plain.is_empty() {
        let flags = plain.iter().fold(0, |f, k| f | ns_proc_name(k).1);
        let targets: Vec<(String, String)> = plain
            .iter()
            .map(|k| (ns_proc_name(k).0.to_string(), file(k)))
            .collect();
        let binds: Vec<(&str, &str)> = targets
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        sys::persistent_namespaces(flags, &binds, None)?;
    }
    if case.host.joined.contains(&"user") {
        let target = file("user");
        sys::persistent_namespaces(
            libc::CLONE_NEWUSER,
            &[("user", &target)],
            Some((HOLDER_UID_MAP, HOLDER_UID_MAP)),
        )?;
    }
    if case.host.joined.contains(&"pid") {
        let (outer, inner) = sys::pid_namespace_holder()?;
        p.pid_holders.push((outer, inner));
        mount(
            &format!("/proc/{inner}/ns/pid"),
            Path::new(&file("pid")),
            "",
            libc::MS_BIND,
            "",
        )?;
    }
    for kind in &case.host.joined {
        p.own_mounts.push(file(kind));
        let ino = io("stat ns file", fs::metadata(file(kind)))?;
        p.joined.push((
            ns_proc_name(kind).0,
            std::os::unix::fs::MetadataExt::ino(&ino),
        ));
    }
    Ok(())
}

/// The harness's own cgroup ("/" in the guest), from /proc/self/cgroup.
pub fn own_cgroup() -> String {
    fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .unwrap_or_else(|| "/".into())
}

/// Mount points under `dir` in our mount namespace, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    let mut out: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(crate::outside::unescape))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    out.sort_by_key(|m| std::cmp::Reverse(m.len()));
    out.dedup();
    out
}

fn teardown_mounts(dir: &Path) {
    for _ in 0..8 {
        let list = mounts_under(dir);
        if list.is_empty() {
            return;
        }
        for m in list {
            let _ = sys::umount_detach(&m);
        }
    }
}

/// Remove a cgroup directory tree (children first), killing what is left in it.
pub fn remove_cgroup(dir: &Path) {
    if !dir.is_dir() {
        return;
    }
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup(&e.path());
            }
        }
    }
    let _ = fs::write(dir.join("cgroup.kill"), "1");
    for _ in 0..200 {
        if fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

pub fn teardown(mut p: Prepared) {
    for (outer, inner) in p.pid_holders.drain(..) {
        sys::kill(inner, libc::SIGKILL);
        let _ = sys::waitpid(outer, false);
    }
    if let Some(mut child) = p.sleeper.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
    remove_cgroup(&p.cgroup_tree);
    teardown_mounts(&p.run);
    let _ = fs::remove_dir_all(&p.run);
}
