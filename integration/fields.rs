//! The remaining process and rootfs fields: sysctls, idmapped mounts, ownership under a user
//! namespace, LSM labels (absent on the test host), ioPriority, scheduler, execCPUAffinity,
//! personality, memoryPolicy, netDevices, socket activation, and the spec's impossible
//! combinations. Each asserts what the kernel shows inside the container or on the host.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use serde_json::json;

use crate::common::{output_via_files, require_root, text, wait_for, Bundle};

fn create_err(b: &Bundle) -> String {
    let out = b.create();
    assert!(!out.status.success(), "create should have failed");
    text(&out.stderr)
}

fn userns(b: &mut Bundle) {
    b.add_namespace(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
}

fn host_file(path: &str) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

#[test]
fn sysctls_apply_inside_and_leave_the_host_alone() {
    require_root!();
    let fwd = host_file("/proc/sys/net/ipv4/ip_forward");
    let shmmax = host_file("/proc/sys/kernel/shmmax");
    let want_fwd = if fwd == "1" { "0" } else { "1" };
    let mut b = Bundle::new("sysctl");
    b.config["linux"]["sysctl"] = json!({
        "net.ipv4.ip_forward": want_fwd,
        "kernel.shmmax": "123456789",
        "net/ipv4/conf/lo/forwarding": want_fwd,
    });
    b.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/net/ipv4/conf/lo/forwarding");
    assert_eq!(b.run_ok(), format!("{want_fwd}\n123456789\n{want_fwd}\n"));
    assert_eq!(host_file("/proc/sys/net/ipv4/ip_forward"), fwd);
    assert_eq!(host_file("/proc/sys/kernel/shmmax"), shmmax);
}

#[test]
fn sysctls_outside_the_containers_namespaces_are_refused() {
    require_root!();
    let cases = [
        ("ipc", "kernel.shmmax", "ipc namespace"),
        ("ipc", "fs.mqueue.msg_max", "ipc namespace"),
        ("network", "net.ipv4.ip_forward", "network namespace"),
        ("uts", "kernel.domainname", "uts namespace"),
        ("", "vm.swappiness", "not a namespaced sysctl"),
        ("", "kernel.hostname", "hostname field"),
    ];
    for (drop, key, why) in cases {
        let mut b = Bundle::new("sysctl-no");
        if !drop.is_empty() {
            b.without_namespace(drop);
        }
        if drop == "uts" {
            b.config.as_object_mut().unwrap().remove("hostname");
        }
        b.config["linux"]["sysctl"] = json!({ key: "1" });
        let err = create_err(&b);
        assert!(
            err.contains(&format!("linux.sysctl.{key}")) && err.contains(why),
            "{key}: {err}"
        );
    }
    // A network namespace joined by path that is the runtime's own is the host's.
    let mut b = Bundle::new("sysctl-hostnet");
    b.without_namespace("network");
    b.add_namespace(json!({"type": "network", "path": "/proc/self/ns/net"}));
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    assert!(create_err(&b).contains("linux.sysctl.net.ipv4.ip_forward"));
}

#[test]
fn impossible_combinations_are_refused() {
    require_root!();
    let mut b = Bundle::new("combo-time");
    b.config["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 10}});
    let err = create_err(&b);
    assert!(
        err.contains("linux.timeOffsets") && err.contains("time namespace"),
        "{err}"
    );

    let mut b = Bundle::new("combo-time-path");
    b.add_namespace(json!({"type": "time", "path": "/proc/self/ns/time"}));
    b.config["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 10}});
    assert!(create_err(&b).contains("linux.timeOffsets"));

    let mut b = Bundle::new("combo-maps");
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1}]);
    assert!(create_err(&b).contains("user namespace"));

    let mut b = Bundle::new("combo-netdev");
    b.without_namespace("network");
    b.config["linux"]["netDevices"] = json!({"lo": {}});
    assert!(create_err(&b).contains("linux.netDevices"));

    let mut b = Bundle::new("combo-idmap-tmpfs");
    userns(&mut b);
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
    );
    assert!(create_err(&b).contains("only supported for bind mounts"));

    let mut b = Bundle::new("combo-sched");
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "priority": 5});
    assert!(create_err(&b).contains("process.scheduler.priority"));

    let mut b = Bundle::new("combo-ioprio");
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 9});
    assert!(create_err(&b).contains("process.ioPriority.priority"));

    let mut b = Bundle::new("combo-mempol");
    b.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND"});
    assert!(create_err(&b).contains("linux.memoryPolicy.nodes"));
    // Nothing of any of these was left behind (checked by each Bundle's drop).
}

#[test]
fn lsm_labels_are_a_clear_error_without_the_lsm() {
    require_root!();
    let has = |p: &str| std::path::Path::new(p).exists();
    if has("/sys/fs/selinux/enforce") || has("/sys/module/apparmor/parameters/enabled") {
        crate::common::skip!("lsm-enabled", "this host has an LSM enabled");
    }
    let cases = [
        (
            "process",
            "selinuxLabel",
            "system_u:system_r:container_t:s0",
            "SELinux",
        ),
        ("process", "apparmorProfile", "skiff-default", "AppArmor"),
        (
            "linux",
            "mountLabel",
            "system_u:object_r:container_file_t:s0",
            "SELinux",
        ),
    ];
    for (section, field, value, lsm) in cases {
        let mut b = Bundle::new("lsm");
        b.config[section][field] = json!(value);
        let err = create_err(&b);
        assert!(
            err.contains(&format!(
                "{section}.{field}: {lsm} is not enabled on this host"
            )),
            "{err}"
        );
    }
}

#[test]
fn io_priority_scheduler_personality_and_memory_policy() {
    require_root!();
    let mut b = Bundle::new("procattrs");
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    b.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    // set_mempolicy needs a NUMA kernel (node 0 exists on any of those).
    let numa = std::path::Path::new("/sys/devices/system/node/node0").exists();
    if numa {
        b.config["linux"]["memoryPolicy"] =
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]});
    }
    b.sh(
        "ionice; cat /proc/self/personality; uname -m; cut -d' ' -f19,41 /proc/self/stat; \
          head -1 /proc/self/numa_maps",
    );
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "best-effort: prio 6", "{out}");
    assert_eq!(lines[1], "00000008", "{out}");
    assert_eq!(lines[2], "i686", "{out}");
    // field 19 is nice, 41 the policy (SCHED_BATCH = 3)
    assert_eq!(lines[3], "7 3", "{out}");
    if numa {
        assert!(lines[4].contains(" bind=static:0 "), "{out}");
    }
}

#[test]
fn exec_cpu_affinity_initial_during_setup_and_final_at_exec() {
    require_root!();
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        crate::common::skip!("two-cpus", "needs two CPUs");
    }
    let mut b = Bundle::new("affinity");
    let log = b.dir.join("hook-affinity");
    b.config["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "1"});
    b.config["hooks"] = json!({"createContainer": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("grep Cpus_allowed_list /proc/self/status > {}", log.display())],
    }]});
    b.sh("grep Cpus_allowed_list /proc/self/status");
    let out = b.run_ok();
    assert_eq!(out.split_whitespace().last(), Some("1"), "{out}");
    let during = std::fs::read_to_string(&log).unwrap();
    assert_eq!(during.split_whitespace().last(), Some("0"), "{during}");
}

/// A host directory for a bind mount, removed on drop.
struct HostDir(std::path::PathBuf);

impl HostDir {
    fn new(name: &str, owner: u32) -> HostDir {
        let d = std::env::temp_dir().join(format!("skiff-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("f"), "x").unwrap();
        for p in [d.join("f"), d.clone()] {
            std::os::unix::fs::chown(&p, Some(owner), Some(owner)).unwrap();
        }
        HostDir(d)
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn push_mount(b: &mut Bundle, m: serde_json::Value) {
    b.config["mounts"].as_array_mut().unwrap().push(m);
}

#[test]
fn idmap_uses_the_containers_mapping() {
    require_root!();
    let dir = HostDir::new("idmap-ctr", 0);
    let mut b = Bundle::new("idmap-ctr");
    userns(&mut b);
    // The (host-root-owned) image has the mount point, as an image for a userns would.
    std::fs::create_dir(b.rootfs().join("data")).unwrap();
    push_mount(
        &mut b,
        json!({"destination": "/data", "type": "bind", "source": dir.0, "options": ["bind", "idmap"]}),
    );
    b.sh("stat -c '%u:%g' /data /data/f; touch /data/new; id -u");
    let out = b.run_ok();
    // Host-root files are the container root's through the mount, though uid 0 on the host is
    // not mapped in the container's user namespace...
    assert_eq!(out, "0:0\n0:0\n0\n");
    // ...and what the container root creates lands as host uid 0, not 100000.
    let m = std::fs::metadata(dir.0.join("new")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0));
}

#[test]
fn mount_mappings_idmap_without_a_user_namespace() {
    require_root!();
    let dir = HostDir::new("idmap-explicit", 100000);
    let mut b = Bundle::new("idmap-explicit");
    push_mount(
        &mut b,
        json!({"destination": "/data", "type": "bind", "source": dir.0, "options": ["rbind", "ro"],
               "uidMappings": [{"containerID": 100000, "hostID": 0, "size": 65536}],
               "gidMappings": [{"containerID": 100000, "hostID": 0, "size": 65536}]}),
    );
    b.sh("stat -c '%u:%g' /data /data/f; touch /data/ro 2>/dev/null && echo writable; readlink /proc/self/ns/user");
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["0:0", "0:0"], "{out}");
    assert_eq!(lines[2], crate::common::host_ns("user"), "{out}");
    assert!(!dir.0.join("ro").exists(), "ro was not applied");
}

#[test]
fn idmapped_mount_creates_files_as_the_mapped_host_id() {
    require_root!();
    let dir = HostDir::new("idmap-write", 100000);
    let mut b = Bundle::new("idmap-write");
    push_mount(
        &mut b,
        json!({"destination": "/data", "type": "bind", "source": dir.0, "options": ["bind"],
               "uidMappings": [{"containerID": 100000, "hostID": 0, "size": 65536}],
               "gidMappings": [{"containerID": 100000, "hostID": 0, "size": 65536}]}),
    );
    b.sh("touch /data/new && stat -c '%u:%g' /data/new");
    assert_eq!(b.run_ok(), "0:0\n");
    let m = std::fs::metadata(dir.0.join("new")).unwrap();
    assert_eq!((m.uid(), m.gid()), (100000, 100000));
}

#[test]
fn user_namespace_ownership_of_what_skiff_creates() {
    require_root!();
    let mut b = Bundle::new("userns-owner");
    userns(&mut b);
    // The image belongs to the container's root, as with any user-namespaced rootfs.
    let st = Command::new("chown")
        .args(["-R", "-h", "100000:100000"])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(st.success());
    let src = HostDir::new("userns-owner-src", 100000);
    push_mount(
        &mut b,
        json!({"destination": "/new/deep/target", "type": "bind", "source": src.0, "options": ["bind"]}),
    );
    push_mount(
        &mut b,
        json!({"destination": "/made/file", "type": "bind", "source": src.0.join("f"), "options": ["bind"]}),
    );
    b.config["process"]["cwd"] = json!("/work/dir");
    b.config["linux"]["devices"] =
        json!([{"path": "/dev/zero", "type": "c", "major": 1, "minor": 5, "uid": 0}]);
    b.sh(
        "stat -c '%n %u:%g' /new /new/deep /made /work/dir /dev /dev/pts /dev/shm; \
          stat -c '%n %t:%T %u' /dev/null /dev/zero",
    );
    let out = b.run_ok();
    for dir in [
        "/new",
        "/new/deep",
        "/made",
        "/work/dir",
        "/dev",
        "/dev/shm",
    ] {
        assert!(
            out.contains(&format!("{dir} 0:0\n")),
            "{dir} not root-owned inside: {out}"
        );
    }
    // Devices are the host's, bind-mounted (mknod is not allowed in a user namespace): their
    // host owner (root) is unmapped here and shows as the overflow id.
    for (dev, num) in [("/dev/null", "1:3"), ("/dev/zero", "1:5")] {
        let host = std::fs::metadata(dev).unwrap().uid();
        let inside = if (100000..165536).contains(&host) {
            host - 100000
        } else {
            65534
        };
        assert!(out.contains(&format!("{dev} {num} {inside}\n")), "{out}");
    }
    // On the host, what skiff created belongs to the mapped root.
    let m = std::fs::metadata(b.rootfs().join("new/deep")).unwrap();
    assert_eq!((m.uid(), m.gid()), (100000, 100000));
}

/// A virtual interface on the host: a dummy, or (on kernels without the dummy driver) one
/// end of a veth pair. Removed on drop if it is still there.
struct Virtual(&'static str);

impl Virtual {
    fn create(name: &'static str) -> Virtual {
        let ip = |args: &[&str]| Command::new("ip").args(args).output().unwrap();
        let _ = ip(&["link", "del", name]);
        if !ip(&["link", "add", name, "type", "dummy"]).status.success() {
            let out = ip(&[
                "link",
                "add",
                name,
                "type",
                "veth",
                "peer",
                "name",
                &format!("{name}p"),
            ]);
            assert!(out.status.success(), "ip link add: {}", text(&out.stderr));
        }
        Virtual(name)
    }
}

impl Drop for Virtual {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", self.0]).output();
    }
}

fn host_has_link(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

#[test]
fn net_devices_move_into_the_container_and_die_with_it() {
    require_root!();
    if Command::new("ip").arg("-V").output().is_err() {
        crate::common::skip!("iproute2", "iproute2 is not installed");
    }
    let dummy = Virtual::create("dummy-skiff0");
    let out = Command::new("ip")
        .args(["addr", "add", "10.213.7.1/24", "dev", dummy.0])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut b = Bundle::new("netdev");
    b.config["linux"]["netDevices"] = json!({"dummy-skiff0": {"name": "ctr0"}});
    b.args(&["sleep", "30"]);
    b.create_ok();
    let pid = b.state()["pid"].as_i64().unwrap();
    assert!(!host_has_link(dummy.0), "still on the host");
    let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap();
    assert!(dev.contains("ctr0:"), "{dev}");
    let flags = std::fs::read_to_string(format!("/proc/{pid}/root/sys/class/net/ctr0/flags"))
        .unwrap_or_default();
    let up = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0) & 1;
    assert_eq!(up, 1, "ctr0 is not up inside: {flags:?}");
    b.ok(&["start", &b.id]);
    // The permanent global address came along (the kernel drops addresses on a move).
    let addr = b.ok(&["exec", &b.id, "ip", "-o", "-4", "addr", "show", "ctr0"]);
    assert!(addr.contains("inet 10.213.7.1/24"), "{addr}");
    b.ok(&["delete", "--force", &b.id]);
    // A virtual device goes with its namespace (the kernel destroys it; a veth takes its
    // peer with it), as with runc.
    assert!(wait_for(5000, || !host_has_link(dummy.0)
        && !host_has_link("dummy-skiff0p")));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!host_has_link(dummy.0), "the dummy came back to the host");
}

#[test]
fn net_device_missing_on_the_host_fails_create_cleanly() {
    require_root!();
    let mut b = Bundle::new("netdev-missing");
    b.config["linux"]["netDevices"] = json!({"nosuch-skiff9": {}});
    let err = create_err(&b);
    assert!(
        err.contains("linux.netDevices.nosuch-skiff9: no such interface"),
        "{err}"
    );
}

#[test]
fn socket_activation_fds_pass_with_listen_env() {
    require_root!();
    let mut b = Bundle::new("listen");
    b.sh("ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; env | grep ^LISTEN_ | sort");
    b.write_config();
    let bundle = b.dir.to_str().unwrap().to_string();
    let run = |pid_expr: &str, preserve: &str| {
        let script = format!(
            "LISTEN_PID={pid_expr} LISTEN_FDS=2 exec {} --root {} run --preserve-fds {preserve} \
             --bundle {bundle} {} 3</etc/hostname 4</etc/hostname 5</etc/hostname 8</etc/hostname",
            crate::common::skiff_bin(),
            b.root.display(),
            b.id
        );
        let out = output_via_files(Command::new("sh").args(["-c", &script]));
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let out = run("$$", "1");
    let mut lines = out.lines();
    let fds: Vec<i32> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    // 0-2, the two activated sockets, the one preserved fd after them, and ls's own.
    assert!(fds.starts_with(&[0, 1, 2, 3, 4, 5]), "{fds:?}");
    assert!(fds.len() <= 7 && !fds.contains(&8), "{fds:?}");
    assert_eq!(lines.collect::<Vec<_>>(), ["LISTEN_FDS=2", "LISTEN_PID=1"]);
    // Meant for another process: nothing passes.
    let out = run("1", "0");
    let first: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert!(first.len() <= 4, "{out}");
    assert!(!out.contains("LISTEN_FDS=2"), "{out}");
}

#[test]
fn user_namespace_console_belongs_to_the_container() {
    require_root!();
    let mut b = Bundle::new("userns-console");
    userns(&mut b);
    b.config["process"]["terminal"] = json!(true);
    b.sh("stat -c '%n %u:%g %t' /dev/console /dev/pts/0 /dev/pts");
    b.write_config();
    let bundle = b.dir.to_str().unwrap().to_string();
    let out = b
        .command(&["run", "--bundle", &bundle, &b.id])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout).replace('\r', "");
    // The pty is the container devpts's (major 136 = 0x88), owned by the container's root and
    // its tty group (devpts gid=5), all mapped ids.
    assert!(s.contains("/dev/console 0:5 88"), "{s}");
    assert!(s.contains("/dev/pts/0 0:5 88"), "{s}");
    assert!(s.contains("/dev/pts 0:0"), "{s}");
}

#[test]
fn exec_process_gets_its_cpu_affinity_io_priority_and_label_check() {
    require_root!();
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        crate::common::skip!("two-cpus", "needs two CPUs");
    }
    let mut b = Bundle::new("exec-attrs");
    b.args(&["sleep", "60"]);
    b.create_ok();
    b.ok(&["start", &b.id]);
    let p = b.dir.join("process.json");
    let process = |extra: serde_json::Value| {
        let mut v = json!({
            "args": ["sh", "-c", "grep Cpus_allowed_list /proc/self/status; ionice"],
            "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "execCPUAffinity": {"initial": "0", "final": "1"},
            "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        std::fs::write(&p, v.to_string()).unwrap();
    };
    process(json!({}));
    let out = b.ok(&["exec", "--process", p.to_str().unwrap(), &b.id]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].split_whitespace().last(), Some("1"), "{out}");
    assert_eq!(lines[1], "idle", "{out}");
    if !std::path::Path::new("/sys/module/apparmor/parameters/enabled").exists() {
        process(json!({"apparmorProfile": "skiff-test"}));
        let out = b.skiff(&["exec", "--process", p.to_str().unwrap(), &b.id]);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("process.apparmorProfile: AppArmor is not enabled"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_failed_create_moves_net_devices_back() {
    require_root!();
    if Command::new("ip").arg("-V").output().is_err() {
        crate::common::skip!("iproute2", "iproute2 is not installed");
    }
    let dev = Virtual::create("dummy-skiff1");
    let ip = |args: &[&str]| Command::new("ip").args(args).output().unwrap();
    assert!(ip(&["addr", "add", "10.213.8.1/24", "dev", dev.0])
        .status
        .success());
    let mut b = Bundle::new("netdev-revert");
    b.config["linux"]["netDevices"] = json!({"dummy-skiff1": {"name": "ctr1"}});
    b.config["hooks"] = json!({"createContainer": [{"path": "/bin/false"}]});
    let err = create_err(&b);
    assert!(err.contains("createContainer"), "{err}");
    assert!(
        host_has_link(dev.0),
        "the device was not moved back to the host"
    );
    assert!(!host_has_link("ctr1"));
}

#[test]
fn mappings_with_a_joined_user_namespace_must_match_it() {
    require_root!();
    let mut owner = Bundle::new("userns-owner-join");
    userns(&mut owner);
    owner.args(&["sleep", "30"]);
    owner.create_ok();
    let pid = owner.state()["pid"].as_i64().unwrap();
    let join = |b: &mut Bundle, host: u32| {
        b.without_namespace("user");
        b.add_namespace(json!({"type": "user", "path": format!("/proc/{pid}/ns/user")}));
        b.config["linux"]["uidMappings"] =
            json!([{"containerID": 0, "hostID": host, "size": 65536}]);
        b.config["linux"]["gidMappings"] =
            json!([{"containerID": 0, "hostID": host, "size": 65536}]);
    };
    let mut b = Bundle::new("userns-join-other");
    join(&mut b, 200000);
    let err = create_err(&b);
    assert!(
        err.contains("linux.uidMappings: the user namespace joined at"),
        "{err}"
    );
    let mut b = Bundle::new("userns-join-same");
    join(&mut b, 100000);
    b.sh("cat /proc/self/uid_map");
    let out = b.run_ok();
    assert!(out.split_whitespace().eq(["0", "100000", "65536"]), "{out}");
}

#[test]
fn ridmap_maps_the_whole_rbind_tree_and_idmap_only_its_top() {
    require_root!();
    let dir = HostDir::new("ridmap", 0);
    let sub = dir.0.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "mode=755", "skiff-it-ridmap"])
        .arg(&sub)
        .status()
        .unwrap();
    assert!(st.success());
    struct Umount(std::path::PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _umount = Umount(sub.clone());
    for (opt, want_sub) in [("ridmap", "0"), ("idmap", "65534")] {
        let mut b = Bundle::new("ridmap");
        userns(&mut b);
        std::fs::create_dir(b.rootfs().join("data")).unwrap();
        push_mount(
            &mut b,
            json!({"destination": "/data", "type": "bind", "source": dir.0, "options": ["rbind", opt]}),
        );
        b.sh("stat -c '%u' /data /data/sub");
        assert_eq!(b.run_ok(), format!("0\n{want_sub}\n"), "{opt}");
    }
}

#[test]
fn intel_rdt_without_resctrl_is_a_clear_error() {
    require_root!();
    if std::path::Path::new("/sys/fs/resctrl/schemata").exists() {
        crate::common::skip!("resctrl", "this host has resctrl");
    }
    let mut b = Bundle::new("rdt");
    b.config["linux"]["intelRdt"] = json!({"closID": "skiff", "l3CacheSchema": "L3:0=f"});
    let err = create_err(&b);
    assert!(
        err.contains("linux.intelRdt: this host has no resctrl filesystem"),
        "{err}"
    );
}
