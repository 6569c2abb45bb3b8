//! config-linux.md, checked from inside by the probe (and from outside for
//! cgroup placement).

use super::*;
use std::os::unix::fs::MetadataExt;

const S_NS: &str = "config-linux.md#namespaces";
const S_MAP: &str = "config-linux.md#user-namespace-mappings";
const S_TIME: &str = "config-linux.md#offset-for-time-namespace";
const S_DEV: &str = "config-linux.md#devices";
const S_DEFDEV: &str = "config-linux.md#default-devices";
const S_CGPATH: &str = "config-linux.md#cgroups-path";
const S_CGDEV: &str = "config-linux.md#allowed-device-list";
const S_MEM: &str = "config-linux.md#memory";
const S_CPU: &str = "config-linux.md#cpu";
const S_BLKIO: &str = "config-linux.md#block-io";
const S_HUGE: &str = "config-linux.md#huge-page-limits";
const S_PIDS: &str = "config-linux.md#pids";
const S_UNIFIED: &str = "config-linux.md#unified";
const S_SYSCTL: &str = "config-linux.md#sysctl";
const S_SECCOMP: &str = "config-linux.md#seccomp";
const S_PROP: &str = "config-linux.md#rootfs-mount-propagation";
const S_MASK: &str = "config-linux.md#masked-paths";
const S_RO: &str = "config-linux.md#readonly-paths";
const S_LABEL: &str = "config-linux.md#mount-label";
const S_PERS: &str = "config-linux.md#personality";
const S_RDT: &str = "config-linux.md#intelrdt";

const NS_TYPES: [&str; 8] = [
    "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time",
];

fn nsf(ty: &str) -> &'static str {
    match ty {
        "network" => "net",
        "mount" => "mnt",
        "pid" => "pid",
        "ipc" => "ipc",
        "uts" => "uts",
        "user" => "user",
        "cgroup" => "cgroup",
        "time" => "time",
        _ => "?",
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}
fn focus1(s: String) -> &'static [&'static str] {
    Box::leak(vec![leak(s)].into_boxed_slice())
}

fn userns(b: &mut Bundle) {
    b.add_ns("user", None);
    b.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    b.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
}

/// A helper process holding fresh namespaces, started (and killed) by us.
/// Returns (unshare pid, map type -> ns path).
fn ns_holder(cx: &Ctx) -> Result<(i32, Vec<(String, String)>), String> {
    let child = std::process::Command::new("unshare")
        .args([
            "--net", "--ipc", "--uts", "--cgroup", "--pid", "--fork", "--time", "--", "sleep",
            "600",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("unshare: {e}"))?;
    let pid = child.id() as i32;
    cx.defer(move || {
        let mut child = child;
        // Its forked child (pid 1 of the new pid ns) first, then unshare itself.
        if let Ok(s) = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
            for c in s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()) {
                // SAFETY: signalling a process we started (our grandchild).
                unsafe { libc::kill(c, libc::SIGKILL) };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    });
    let host_net = cx.host.ns.get("net").copied();
    let ok = wait_until(5, || {
        ns_inode(pid, "net") != host_net
            && fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .map(|s| !s.trim().is_empty())
                .unwrap_or(false)
    });
    ensure(ok, "namespace holder did not come up")?;
    let mut m = vec![];
    for (ty, f) in [
        ("network", "net"),
        ("ipc", "ipc"),
        ("uts", "uts"),
        ("cgroup", "cgroup"),
        ("pid", "pid_for_children"),
        ("time", "time_for_children"),
    ] {
        m.push((ty.to_string(), format!("/proc/{pid}/ns/{f}")));
    }
    Ok((pid, m))
}

fn cgroup_mount(b: &mut Bundle) {
    b.add_ns("cgroup", None);
    b.push("/mounts", json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
}

fn res_case(
    id: &str,
    section: &'static str,
    spec: &'static str,
    ctrls: &'static [&'static str],
    focus: &'static [&'static str],
    res: impl Fn(&Ctx) -> Value + 'static,
) -> Case {
    probe_case(
        id,
        section,
        spec,
        Needs::Cgroup(ctrls),
        focus,
        move |cx, b| {
            cgroup_mount(b);
            b.set("/linux/resources", res(cx));
            Ok(())
        },
    )
}

fn host_cgroup_of(pid: i32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(String::from))
}

/// The allowlist for a defaultAction ERRNO filter: what the probe and a
/// runtime's last steps before execve need.
const SECCOMP_ALLOW: &[&str] = &[
    "read",
    "write",
    "open",
    "openat",
    "openat2",
    "close",
    "close_range",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "poll",
    "ppoll",
    "lseek",
    "mmap",
    "mprotect",
    "munmap",
    "brk",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "ioctl",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "access",
    "faccessat",
    "faccessat2",
    "pipe",
    "pipe2",
    "select",
    "pselect6",
    "sched_yield",
    "mremap",
    "msync",
    "mincore",
    "madvise",
    "dup",
    "dup2",
    "dup3",
    "nanosleep",
    "clock_nanosleep",
    "getpid",
    "gettid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "getcwd",
    "chdir",
    "fchdir",
    "readlink",
    "readlinkat",
    "uname",
    "fcntl",
    "flock",
    "getdents",
    "getdents64",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "kill",
    "tgkill",
    "tkill",
    "clone",
    "clone3",
    "fork",
    "vfork",
    "set_tid_address",
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "futex",
    "arch_prctl",
    "prctl",
    "prlimit64",
    "getrlimit",
    "setrlimit",
    "sigaltstack",
    "getrandom",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getscheduler",
    "sched_getparam",
    "ioprio_get",
    "capget",
    "capset",
    "setuid",
    "setgid",
    "setresuid",
    "setresgid",
    "setgroups",
    "umask",
    "socket",
    "connect",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "getsockopt",
    "setsockopt",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "eventfd2",
    "timerfd_create",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "sysinfo",
    "personality",
    "getppid",
    "getpgrp",
    "setsid",
    "getsid",
    "setpgid",
    "mkdir",
    "mkdirat",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchownat",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "sethostname",
    "setdomainname",
    "seccomp",
    "membarrier",
    "mlock",
    "munlock",
    "signalfd4",
    "restart_syscall",
    "pause",
    "sync",
    "fsync",
    "fdatasync",
    "ftruncate",
    "symlink",
    "symlinkat",
    "link",
    "linkat",
    "utimensat",
    "setns",
    "unshare",
    "sched_getattr",
    "sched_setattr",
];

pub fn cases() -> Vec<Case> {
    let mut v = vec![];
    // ---- namespaces
    for ty in NS_TYPES {
        let f = nsf(ty);
        v.push(probe_case(&format!("config-linux/namespaces/{ty}-new"), S_NS, "If path is not specified, the runtime MUST create a new container namespace of type type.", Needs::None, focus1(format!("linux.namespaces.{ty}")), move |_cx, b| {
            if ty == "user" {
                userns(b);
            } else {
                b.add_ns(ty, None);
            }
            let _ = f;
            Ok(())
        }));
    }
    for ty in ["pid", "network", "ipc", "uts", "user", "cgroup", "time"] {
        v.push(probe_case(&format!("config-linux/namespaces/{ty}-inherit"), S_NS, "If a namespace type is not specified in the namespaces array, the container MUST inherit the runtime namespace of that type.", Needs::None, focus1(format!("linux.namespaces.{ty}")), move |_cx, b| {
            b.remove_ns(ty);
            if ty == "uts" {
                b.cfg.as_object_mut().unwrap().remove("hostname");
            }
            if ty == "network" {
                // sysfs cannot be freshly mounted for the host's netns by every runtime: bind it.
                let m = b.cfg["mounts"].as_array_mut().unwrap();
                m.retain(|x| x["destination"] != "/sys");
                m.push(json!({"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}));
            }
            Ok(())
        }));
    }
    for ty in ["network", "ipc", "uts", "pid", "cgroup", "time"] {
        v.push(probe_case(&format!("config-linux/namespaces/{ty}-path"), S_NS, "path (string, OPTIONAL) namespace file. The runtime MUST place the container process in the namespace associated with that path.", Needs::None, focus1(format!("linux.namespaces.{ty}")), move |cx, b| {
            let (_pid, paths) = ns_holder(cx)?;
            let p = paths.iter().find(|(t, _)| t == ty).map(|(_, p)| p.clone()).unwrap();
            let ino = fs::metadata(&p).map_err(|e| format!("{p}: {e}"))?.ino();
            b.add_ns(ty, Some(&p));
            b.env(&format!("PROBE_EXPECT_NS_{}={ino}", nsf(ty)));
            Ok(())
        }));
    }
    v.push(reject_case("config-linux/namespaces/path-wrong-type-error", S_NS, "The runtime MUST generate an error if path is not associated with a namespace of type type.", Needs::None, |cx, b| {
        let (pid, _) = ns_holder(cx)?;
        b.add_ns("network", Some(&format!("/proc/{pid}/ns/ipc")));
        Ok(())
    }));
    v.push(reject_case("config-linux/namespaces/duplicate-error", S_NS, "If a namespaces field contains duplicated namespaces with same type, the runtime MUST generate an error.", Needs::None, |_cx, b| {
        b.push("/linux/namespaces", json!({"type": "ipc"}));
        Ok(())
    }));
    v.push(probe_case("config-linux/user-namespace-mappings", S_MAP, "uidMappings / gidMappings describe the user namespace uid/gid mappings from the host to the container.", Needs::None, &["linux.uidMappings", "linux.gidMappings"], |_cx, b| {
        userns(b);
        b.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 1000}, {"containerID": 1000, "hostID": 201000, "size": 64536}]));
        Ok(())
    }));
    v.push(probe_case("config-linux/time-offsets", S_TIME, "timeOffsets (object, OPTIONAL) sets the offset for Time Namespace.", Needs::None, &["linux.timeOffsets"], |_cx, b| {
        b.add_ns("time", None);
        b.set("/linux/timeOffsets", json!({"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 3600, "nanosecs": 500}}));
        Ok(())
    }));
    // ---- devices
    v.push(probe_case("config-linux/devices/char", S_DEV, "devices (array of objects, OPTIONAL) lists devices that MUST be available in the container (type, major/minor, fileMode, uid, gid).", Needs::None, &["linux.devices"], |_cx, b| {
        b.push("/linux/devices", json!({"path": "/dev/conf-char", "type": "c", "major": 1, "minor": 9, "fileMode": 0o640, "uid": 1, "gid": 2}));
        Ok(())
    }));
    v.push(probe_case("config-linux/devices/block", S_DEV, "devices ... type b (block)", Needs::None, &["linux.devices"], |_cx, b| {
        b.push("/linux/devices", json!({"path": "/dev/conf-blk", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600, "uid": 0, "gid": 6}));
        Ok(())
    }));
    v.push(probe_case(
        "config-linux/devices/fifo",
        S_DEV,
        "devices ... type p (FIFO); major, minor REQUIRED unless type is p",
        Needs::None,
        &["linux.devices"],
        |_cx, b| {
            b.push(
                "/linux/devices",
                json!({"path": "/dev/conf-fifo", "type": "p", "fileMode": 0o620}),
            );
            Ok(())
        },
    ));
    v.push(probe_case("config-linux/devices/unbuffered", S_DEV, "devices ... type u (unbuffered character device)", Needs::None, &["linux.devices"], |_cx, b| {
        b.push("/linux/devices", json!({"path": "/dev/conf-u", "type": "u", "major": 1, "minor": 5, "fileMode": 0o666}));
        Ok(())
    }));
    v.push(probe_case("config-linux/devices/outside-dev", S_DEV, "The path MAY be anywhere in the container filesystem, notably outside of /dev.", Needs::None, &["linux.devices"], |_cx, b| {
        b.push("/linux/devices", json!({"path": "/conformance-devs/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o644}));
        Ok(())
    }));
    v.push(reject_case("config-linux/devices/existing-mismatch-error", S_DEV, "If a file already exists at path that does not match the requested device, the runtime MUST generate an error.", Needs::None, |_cx, b| {
        write_file(&b.rootfs.join("conformance-existing"), "regular file")?;
        b.push("/linux/devices", json!({"path": "/conformance-existing", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}));
        Ok(())
    }));
    v.push(probe_case("config-linux/devices/defaults", S_DEFDEV, "In addition to any devices configured with this setting, the runtime MUST also supply: /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom, /dev/tty, /dev/ptmx", Needs::None, &["linux.defaultDevices"], |_cx, _b| Ok(())));
    // ---- cgroups
    v.push(case("config-linux/cgroups-path/absolute", S_CGPATH, "In the case of an absolute path (starting with /), the runtime MUST take the path to be relative to the cgroups mount point.", Needs::Cgroup(&[]), |cx| {
        let path = format!("/oc-conformance-{}/abs", std::process::id());
        cg_placement(cx, &path, true)
    }));
    v.push(case("config-linux/cgroups-path/relative", S_CGPATH, "In the case of a relative path (not starting with /), the runtime MAY interpret the path relative to a runtime-determined location in the cgroups hierarchy.", Needs::Cgroup(&[]), |cx| {
        let path = format!("oc-conformance-{}/rel", std::process::id());
        cg_placement(cx, &path, false)
    }));
    v.push(case("config-linux/cgroups-path/consistent", S_CGPATH, "If the value is specified, the runtime MUST consistently attach to the same place in the cgroups hierarchy given the same value of cgroupsPath.", Needs::Cgroup(&[]), |cx| {
        let path = format!("/oc-conformance-{}/same", std::process::id());
        let mut seen = vec![];
        for i in 0..2 {
            let mut b = cx.bundle(&format!("cg-consistent-{i}"));
            b.args(&["/probe", "wait", "/"]);
            b.set("/linux/cgroupsPath", json!(path));
            let c = Ctr::new(cx, b);
            c.up()?;
            let pid = c.pid().ok_or("no pid")?;
            seen.push(host_cgroup_of(pid).unwrap_or_default());
            c.kill("KILL");
            c.wait_status("stopped", 10)?;
            c.delete();
        }
        cg_cleanup(cx, &path);
        Ok(if seen[0] == seen[1] && !seen[0].is_empty() { V::Pass } else { V::Fail(format!("placements differ: {seen:?}")) })
    }));
    v.push(case("config-linux/cgroups-path/removed-on-delete", "runtime.md#delete", "Deleting a container MUST delete the resources that were created during the create step (the container's cgroup).", Needs::Cgroup(&[]), |cx| {
        let path = format!("/oc-conformance-{}/gone", std::process::id());
        let mut b = cx.bundle("cg-gone");
        b.args(&["/probe", "wait", "/"]);
        b.set("/linux/cgroupsPath", json!(path));
        let c = Ctr::new(cx, b);
        c.up()?;
        let pid = c.pid().ok_or("no pid")?;
        let cg = host_cgroup_of(pid).unwrap_or_default();
        let dir = cx.host.cg2_mount.clone().unwrap().join(cg.trim_start_matches('/'));
        c.kill("KILL");
        c.wait_status("stopped", 10)?;
        let o = c.delete();
        ensure(o.ok(), o.brief())?;
        let gone = !dir.exists();
        cg_cleanup(cx, &path);
        Ok(if gone { V::Pass } else { V::Fail(format!("{} still exists after delete", dir.display())) })
    }));
    v.push(res_case("config-linux/resources/memory", S_MEM, "memory (object, OPTIONAL) limit, reservation, swap: the runtime MUST apply the limits (cgroup v2: memory.max, memory.low, memory.swap.max)", &["memory"], &["linux.resources.memory"], |_| {
        json!({"memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728}})
    }));
    v.push(res_case("config-linux/resources/cpu-shares", S_CPU, "shares (uint64, OPTIONAL) specifies a relative share of CPU time (cgroup v2: cpu.weight by the runc conversion)", &["cpu"], &["linux.resources.cpu.shares"], |_| json!({"cpu": {"shares": 2048}})));
    v.push(res_case(
        "config-linux/resources/cpu-quota-period",
        S_CPU,
        "quota / period (cgroup v2: cpu.max)",
        &["cpu"],
        &["linux.resources.cpu.quota"],
        |_| json!({"cpu": {"quota": 50000, "period": 100000}}),
    ));
    v.push(res_case(
        "config-linux/resources/cpu-burst",
        S_CPU,
        "burst (uint64, OPTIONAL) (cgroup v2: cpu.max.burst)",
        &["cpu"],
        &["linux.resources.cpu.burst"],
        |_| json!({"cpu": {"quota": 50000, "period": 100000, "burst": 20000}}),
    ));
    v.push(res_case("config-linux/resources/cpu-idle", S_CPU, "idle (int64, OPTIONAL) cgroups are configured with minimum weight, 0: default behavior, 1: SCHED_IDLE.", &["cpu"], &["linux.resources.cpu.idle"], |_| json!({"cpu": {"idle": 1}})));
    v.push(res_case("config-linux/resources/cpuset", S_CPU, "cpus (string, OPTIONAL) list of CPUs the container will run in; mems (string, OPTIONAL) list of memory nodes", &["cpuset"], &["linux.resources.cpu.cpus", "linux.resources.cpu.mems"], |cx| {
        json!({"cpu": {"cpus": if cx.host.ncpus > 1 { "0-1" } else { "0" }, "mems": "0"}})
    }));
    v.push(res_case(
        "config-linux/resources/pids",
        S_PIDS,
        "limit (int64, REQUIRED) specifies the maximum number of tasks in the cgroup",
        &["pids"],
        &["linux.resources.pids"],
        |_| json!({"pids": {"limit": 42}}),
    ));
    v.push(res_case(
        "config-linux/resources/blockio-weight",
        S_BLKIO,
        "weight (uint16, OPTIONAL) specifies per-cgroup weight",
        &["io"],
        &["linux.resources.blockIO.weight"],
        |_| json!({"blockIO": {"weight": 500}}),
    ));
    v.push(res_case(
        "config-linux/resources/hugepage-limits",
        S_HUGE,
        "hugepageLimits: pageSize and limit (cgroup v2: hugetlb.<size>.max)",
        &["hugetlb"],
        &["linux.resources.hugepageLimits"],
        |cx| {
            let sz = cx
                .host
                .hugepage_sizes
                .first()
                .cloned()
                .unwrap_or("2MB".into());
            json!({"hugepageLimits": [{"pageSize": sz, "limit": 4194304 * 2}]})
        },
    ));
    v.push(res_case("config-linux/resources/unified", S_UNIFIED, "Each key in the map refers to a file in the cgroup unified hierarchy. Configuration unknown to the runtime MUST still be written to the relevant file.", &["pids", "memory"], &["linux.resources.unified"], |_| {
        json!({"unified": {"pids.max": "37", "memory.high": "104857600"}})
    }));
    v.push(reject_case("config-linux/resources/unified-missing-controller-error", S_UNIFIED, "The runtime MUST generate an error when the configuration refers to a cgroup controller that is not present or that cannot be enabled.", Needs::Cgroup(&[]), |_cx, b| {
        b.set("/linux/resources", json!({"unified": {"conformancebogus.max": "1"}}));
        Ok(())
    }));
    v.push(probe_case("config-linux/resources/devices-deny", S_CGDEV, "devices (array of objects, OPTIONAL) configures the allowed device list.", Needs::Cgroup(&[]), &["linux.resources.devices"], |_cx, b| {
        cgroup_mount(b);
        b.push("/linux/devices", json!({"path": "/dev/conf-denied", "type": "c", "major": 42, "minor": 0, "fileMode": 0o666}));
        b.push("/linux/devices", json!({"path": "/dev/conf-allowed", "type": "c", "major": 42, "minor": 1, "fileMode": 0o666}));
        b.set("/linux/resources", json!({"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 42, "minor": 1, "access": "rw"}]}));
        b.env("PROBE_DEVICE_DENIED=/dev/conf-denied");
        b.env("PROBE_DEVICE_ALLOWED=/dev/conf-allowed");
        Ok(())
    }));
    v.push(probe_case("config-linux/resources/devices-order", S_CGDEV, "The runtime MUST apply entries in the listed order.", Needs::Cgroup(&[]), &["linux.resources.devices"], |_cx, b| {
        cgroup_mount(b);
        b.push("/linux/devices", json!({"path": "/dev/conf-a", "type": "c", "major": 42, "minor": 2, "fileMode": 0o666}));
        b.push("/linux/devices", json!({"path": "/dev/conf-b", "type": "c", "major": 42, "minor": 3, "fileMode": 0o666}));
        b.set("/linux/resources", json!({"devices": [
            {"allow": true, "access": "rwm"},
            {"allow": false, "type": "c", "major": 42, "access": "rw"},
            {"allow": true, "type": "c", "major": 42, "minor": 3, "access": "r"}
        ]}));
        b.env("PROBE_DEVICE_DENIED=/dev/conf-a");
        b.env("PROBE_DEVICE_ALLOWED=/dev/conf-b");
        Ok(())
    }));
    // ---- sysctl
    v.push(probe_case("config-linux/sysctl", S_SYSCTL, "sysctl (object, OPTIONAL) allows kernel parameters to be modified at runtime for the container.", Needs::None, &["linux.sysctl"], |_cx, b| {
        b.set("/linux/sysctl", json!({"net.ipv4.ip_forward": "1", "kernel.msgmax": "4096", "net.ipv4.ping_group_range": "0 1000"}));
        Ok(())
    }));
    // ---- seccomp
    v.push(probe_case("config-linux/seccomp/errno-default-eperm", S_SECCOMP, "errnoRet (uint, OPTIONAL) the errno return code to use ... If not specified its default value is EPERM.", Needs::None, &["linux.seccomp"], |_cx, b| {
        b.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": [{"names": ["mkdir", "chmod"], "action": "SCMP_ACT_ERRNO"}]}));
        Ok(())
    }));
    v.push(probe_case("config-linux/seccomp/errnoRet", S_SECCOMP, "errnoRet (uint, OPTIONAL) the errno return code to use.", Needs::None, &["linux.seccomp"], |_cx, b| {
        b.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdirat", "fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]}));
        Ok(())
    }));
    v.push(probe_case("config-linux/seccomp/args", S_SECCOMP, "args (array of objects, OPTIONAL) the specific syscall in seccomp (index, value, op).", Needs::None, &["linux.seccomp"], |_cx, b| {
        b.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
        Ok(())
    }));
    v.push(probe_case("config-linux/seccomp/kill", S_SECCOMP, "action SCMP_ACT_KILL (the kernel kills the caller with SIGSYS)", Needs::None, &["linux.seccomp"], |_cx, b| {
        b.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_KILL"}]}));
        Ok(())
    }));
    v.push(probe_case("config-linux/seccomp/kill-process", S_SECCOMP, "action SCMP_ACT_KILL_PROCESS", Needs::None, &["linux.seccomp"], |_cx, b| {
        b.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_KILL_PROCESS"}]}));
        Ok(())
    }));
    v.push(probe_case("config-linux/seccomp/trap", S_SECCOMP, "action SCMP_ACT_TRAP (SIGSYS delivered)", Needs::None, &["linux.seccomp"], |_cx, b| {
        b.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getsid"], "action": "SCMP_ACT_TRAP"}]}));
        Ok(())
    }));
    v.push(probe_case("config-linux/seccomp/default-errno", S_SECCOMP, "defaultAction (string, REQUIRED) the default action for seccomp; defaultErrnoRet (uint, OPTIONAL) the errno return code to use.", Needs::None, &["linux.seccomp"], |_cx, b| {
        b.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 3, "syscalls": [{"names": SECCOMP_ALLOW, "action": "SCMP_ACT_ALLOW"}]}));
        Ok(())
    }));
    v.push(reject_case("config-linux/seccomp/errnoRet-unsupported-error", S_SECCOMP, "When the action doesn't support an errno, the runtime MUST print and error and fail.", Needs::None, |_cx, b| {
        b.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}));
        Ok(())
    }));
    v.push(reject_case("config-linux/seccomp/unknown-action-error", S_SECCOMP, "action (string, REQUIRED) the action for seccomp rules (Runtimes MUST generate an error when invalid values are encountered)", Needs::None, |_cx, b| {
        b.set("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_CONFORMANCE_BOGUS"}]}));
        Ok(())
    }));
    // ---- rootfs propagation
    for p in ["shared", "slave", "private", "unbindable"] {
        v.push(probe_case(&format!("config-linux/rootfs-propagation/{p}"), S_PROP, "rootfsPropagation (string, OPTIONAL) sets the rootfs's mount propagation. Its value is either shared, slave, private or unbindable.", Needs::None, &["linux.rootfsPropagation"], move |cx, b| {
            // The rootfs's own mount on the host is a slave of a shared one, so that slave
            // has a master to show. (A shared holder is made private before the rootfs is
            // bound: pivot_root refuses a shared parent; runc and crun do the same.)
            let r = b.rootfs.display().to_string();
            host_mount(cx, &["--bind", &r, &r], &b.rootfs)?;
            let o = cx.exec("mount", &["--make-shared", &r], Duration::from_secs(5));
            ensure(o.ok(), o.brief())?;
            host_mount(cx, &["--bind", &r, &r], &b.rootfs)?;
            let o = cx.exec("mount", &["--make-slave", &r], Duration::from_secs(5));
            ensure(o.ok(), o.brief())?;
            b.set("/linux/rootfsPropagation", json!(p));
            Ok(())
        }));
    }
    // ---- masked / readonly paths
    v.push(probe_case("config-linux/masked-paths/file", S_MASK, "maskedPaths (array of strings, OPTIONAL) will mask over the provided paths inside the container so that they cannot be read.", Needs::None, &["linux.maskedPaths"], |_cx, b| {
        write_file(&b.rootfs.join("conf-masked-file"), "secret")?;
        b.set("/linux/maskedPaths", json!(["/proc/kcore", "/conf-masked-file"]));
        Ok(())
    }));
    v.push(probe_case(
        "config-linux/masked-paths/directory",
        S_MASK,
        "maskedPaths ... so that they cannot be read (directories: an empty read-only mount)",
        Needs::None,
        &["linux.maskedPaths"],
        |_cx, b| {
            write_file(&b.rootfs.join("conf-masked-dir/secret"), "secret")?;
            b.set(
                "/linux/maskedPaths",
                json!(["/conf-masked-dir", "/sys/firmware", "/proc/acpi"]),
            );
            Ok(())
        },
    ));
    v.push(probe_case("config-linux/readonly-paths", S_RO, "readonlyPaths (array of strings, OPTIONAL) will set the provided paths as readonly inside the container.", Needs::None, &["linux.readonlyPaths"], |_cx, b| {
        write_file(&b.rootfs.join("conf-ro-dir/file"), "x")?;
        write_file(&b.rootfs.join("conf-ro-file"), "x")?;
        b.set("/linux/readonlyPaths", json!(["/proc/sys", "/proc/sysrq-trigger", "/conf-ro-dir", "/conf-ro-file"]));
        Ok(())
    }));
    v.push(probe_case("config-linux/mount-label", S_LABEL, "mountLabel (string, OPTIONAL) will set the Selinux context for the mounts in the container.", Needs::SELinux, &["linux.mountLabel"], |_cx, b| {
        b.set("/linux/mountLabel", json!("system_u:object_r:container_file_t:s0"));
        Ok(())
    }));
    v.push(probe_case("config-linux/personality/linux32", S_PERS, "personality (object, OPTIONAL) sets the Linux execution personality; LINUX32 will set the uname system call to show a 32 bit CPU type", Needs::None, &["linux.personality"], |_cx, b| {
        b.set("/linux/personality", json!({"domain": "LINUX32"}));
        Ok(())
    }));
    v.push(probe_case(
        "config-linux/personality/linux",
        S_PERS,
        "personality domain LINUX",
        Needs::None,
        &["linux.personality"],
        |_cx, b| {
            b.set("/linux/personality", json!({"domain": "LINUX"}));
            Ok(())
        },
    ));
    v.push(reject_case("config-linux/intelrdt/no-resctrl-error", S_RDT, "If no mounted resctrl pseudo-filesystem is available in the runtime mount namespace, the runtime MUST generate an error.", Needs::Host(|h| h.resctrl.then(|| "resctrl is mounted here; the case needs a host without it".to_string())), |_cx, b| {
        b.set("/linux/intelRdt", json!({"closID": "conformance", "l3CacheSchema": "L3:0=f"}));
        Ok(())
    }));
    v
}

fn cg_cleanup(cx: &Ctx, path: &str) {
    let Some(m) = cx.host.cg2_mount.clone() else {
        return;
    };
    // Remove the parents the runtime created for our absolute paths (only ours, only if empty).
    let mut p = m.join(path.trim_start_matches('/'));
    while p != m && p.starts_with(&m) {
        if p.file_name()
            .map(|n| {
                n.to_string_lossy().starts_with("oc-conformance-")
                    || p.parent()
                        .map(|x| {
                            x.file_name()
                                .map(|n| n.to_string_lossy().starts_with("oc-conformance-"))
                                .unwrap_or(false)
                        })
                        .unwrap_or(false)
            })
            .unwrap_or(false)
        {
            let _ = fs::remove_dir(&p);
        }
        if !p.pop() {
            break;
        }
    }
}

fn cg_placement(cx: &Ctx, path: &str, absolute: bool) -> R {
    let mut b = cx.bundle("cg-place");
    b.args(&["/probe", "wait", "/"]);
    b.set("/linux/cgroupsPath", json!(path));
    let c = Ctr::new(cx, b);
    c.up()?;
    let pid = c.pid().ok_or("no pid")?;
    let got = host_cgroup_of(pid).unwrap_or_default();
    c.kill("KILL");
    let _ = c.wait_status("stopped", 10);
    c.delete();
    cg_cleanup(cx, path);
    if !cx.host.own_cgroup.is_empty() && !absolute {
        let _ = &cx.host.own_cgroup;
    }
    let ok = if absolute {
        got == path
    } else {
        got.ends_with(&format!("/{path}")) || got == format!("/{path}")
    };
    Ok(if ok {
        V::Pass
    } else {
        V::Fail(format!(
            "cgroupsPath {path:?}: container process is in {got:?}"
        ))
    })
}
