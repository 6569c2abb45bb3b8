//! The container's filesystem: the rootfs is `/`, the spec's mounts with their flags,
//! default devices and /dev symlinks, masked and read-only paths, a read-only root,
//! --no-pivot, and mount targets resolved inside the rootfs.

use serde_json::json;

use crate::common::{mounts, require_root, text, Bundle};

/// (mount point, options, fs type) rows of /proc/self/mountinfo text.
fn table(mi: &str) -> Vec<(String, String, String)> {
    mi.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = pre.split_whitespace().collect();
            let fstype = post.split_whitespace().next()?;
            Some((f[4].to_string(), f[5].to_string(), fstype.to_string()))
        })
        .collect()
}

fn find<'a>(t: &'a [(String, String, String)], at: &str) -> &'a (String, String, String) {
    t.iter()
        .rev()
        .find(|m| m.0 == at)
        .unwrap_or_else(|| panic!("no mount at {at}: {t:?}"))
}

#[test]
fn root_is_the_bundle_rootfs_and_default_mounts_have_their_flags() {
    require_root!();
    let mut b = Bundle::new("rootfs");
    std::fs::write(b.rootfs().join("marker"), "inside\n").unwrap();
    b.sh("cat /marker; cat /proc/self/mountinfo");
    let out = b.run_ok();
    let (first, mi) = out.split_once('\n').unwrap();
    assert_eq!(first, "inside");
    let t = table(mi);
    assert!(
        t.iter().all(|m| !m.0.starts_with("/tmp/skiff-it")),
        "host paths visible: {mi}"
    );
    assert_eq!(find(&t, "/proc").2, "proc");
    let sys = find(&t, "/sys");
    assert_eq!(sys.2, "sysfs");
    for f in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(
            sys.1.split(',').any(|o| o == f),
            "/sys lacks {f}: {}",
            sys.1
        );
    }
    let dev = find(&t, "/dev");
    assert_eq!(dev.2, "tmpfs");
    assert!(dev.1.contains("nosuid"));
    assert_eq!(find(&t, "/dev/pts").2, "devpts");
    assert_eq!(find(&t, "/dev/mqueue").2, "mqueue");
    let cg = find(&t, "/sys/fs/cgroup");
    assert_eq!(cg.2, "cgroup2");
    assert!(cg.1.split(',').any(|o| o == "ro"));
    // root.readonly: true in the default spec
    assert!(
        find(&t, "/").1.split(',').any(|o| o == "ro"),
        "root not read-only"
    );
}

#[test]
fn read_only_root_refuses_writes_and_a_writable_one_allows_them() {
    require_root!();
    let mut b = Bundle::new("ro");
    b.sh("touch /x 2>/dev/null && echo wrote || echo refused");
    assert_eq!(b.run_ok().trim(), "refused");
    b.config["root"]["readonly"] = json!(false);
    assert_eq!(b.run_ok().trim(), "wrote");
    assert!(b.rootfs().join("x").exists());
}

#[test]
fn default_devices_and_symlinks() {
    require_root!();
    let mut b = Bundle::new("devices");
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600, "uid": 0, "gid": 0}
    ]);
    b.sh("for d in null zero full random urandom tty fuse; do stat -c '%n %F %t:%T %a' /dev/$d; done; \
          for l in fd stdin stdout stderr ptmx; do echo $l=$(readlink /dev/$l); done");
    let out = b.run_ok();
    assert!(
        out.contains("/dev/null character special file 1:3 666"),
        "{out}"
    );
    assert!(
        out.contains("/dev/zero character special file 1:5 666"),
        "{out}"
    );
    assert!(
        out.contains("/dev/urandom character special file 1:9 666"),
        "{out}"
    );
    assert!(
        out.contains("/dev/tty character special file 5:0 666"),
        "{out}"
    );
    assert!(
        out.contains("/dev/fuse character special file a:e5 600"),
        "{out}"
    );
    assert!(
        out.contains("fd=/proc/self/fd") && out.contains("ptmx=pts/ptmx"),
        "{out}"
    );
    assert!(out.contains("stderr=/proc/self/fd/2"), "{out}");
}

#[test]
fn masked_and_readonly_paths() {
    require_root!();
    let mut b = Bundle::new("masked");
    b.sh("stat -c '%t:%T' /proc/keys; ls /sys/firmware | wc -l; \
          touch /sys/firmware/x 2>/dev/null && echo fw-writable || echo fw-ro; \
          echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo sys-writable || echo sys-ro");
    let out = b.run_ok();
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "1:3", "kcore not masked with /dev/null");
    assert_eq!(l[1], "0", "masked directory not empty");
    assert_eq!(l[2], "fw-ro");
    assert_eq!(l[3], "sys-ro");
}

#[test]
fn bind_mounts_with_options_and_tmpfs_data() {
    require_root!();
    let mut b = Bundle::new("binds");
    let src = b.dir.join("shared");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "from host\n").unwrap();
    let mut m = b.config["mounts"].as_array().unwrap().clone();
    m.push(json!({"destination": "/data", "type": "bind", "source": src, "options": ["rbind", "ro", "nosuid"]}));
    m.push(json!({"destination": "relative/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1777", "noexec"]}));
    b.config["mounts"] = json!(m);
    b.sh("cat /data/f; touch /data/g 2>/dev/null && echo rw || echo ro; stat -c %a /relative/scratch; cat /proc/self/mountinfo");
    let out = b.run_ok();
    let mut it = out.splitn(4, '\n');
    assert_eq!(it.next().unwrap(), "from host");
    assert_eq!(it.next().unwrap(), "ro");
    assert_eq!(it.next().unwrap(), "1777");
    let t = table(it.next().unwrap());
    let data = find(&t, "/data");
    assert!(
        data.1.contains("ro") && data.1.contains("nosuid"),
        "{data:?}"
    );
    let scratch = find(&t, "/relative/scratch");
    assert_eq!(scratch.2, "tmpfs");
    assert!(scratch.1.contains("noexec"));
    assert!(!src.join("g").exists());
}

#[test]
fn mount_targets_never_escape_through_symlinks() {
    require_root!();
    let mut b = Bundle::new("symlink-escape");
    let outside = b.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // A hostile image: /evil points at a host directory by absolute path and by "..".
    std::os::unix::fs::symlink(&outside, b.rootfs().join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", b.rootfs().join("up")).unwrap();
    let mut m = b.config["mounts"].as_array().unwrap().clone();
    m.push(json!({"destination": "/evil/t1", "type": "tmpfs", "source": "tmpfs"}));
    m.push(json!({"destination": "/up/tmp/t2", "type": "tmpfs", "source": "tmpfs"}));
    b.config["mounts"] = json!(m);
    b.config["root"]["readonly"] = json!(false);
    b.args(&["true"]);
    let (code, _, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert!(
        !outside.join("t1").exists(),
        "a mount target was created on the host"
    );
    // Resolved inside the rootfs instead: /evil -> <rootfs><outside path>
    let inside = b
        .rootfs()
        .join(outside.strip_prefix("/").unwrap())
        .join("t1");
    assert!(
        inside.exists(),
        "expected the target inside the rootfs at {}",
        inside.display()
    );
}

#[test]
fn proc_onto_a_symlink_is_refused() {
    require_root!();
    let mut b = Bundle::new("proc-symlink");
    std::fs::remove_dir(b.rootfs().join("proc")).unwrap();
    std::os::unix::fs::symlink("/tmp", b.rootfs().join("proc")).unwrap();
    b.args(&["true"]);
    let out = b.create();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("mounts[0]") && err.contains("symlink"),
        "{err}"
    );
}

#[test]
fn no_pivot_still_gives_the_rootfs_as_root() {
    require_root!();
    let mut b = Bundle::new("nopivot");
    std::fs::write(b.rootfs().join("marker"), "np\n").unwrap();
    b.sh("cat /marker; ls /tmp | wc -l");
    b.write_config();
    let bundle = b.dir.to_str().unwrap().to_string();
    let out = b.skiff(&["run", "--no-pivot", "--bundle", &bundle, &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "np\n0\n");
}

#[test]
fn nothing_is_mounted_on_the_host_after_a_run() {
    require_root!();
    let before = mounts().lines().count();
    let mut b = Bundle::new("hostmounts");
    b.args(&["true"]);
    b.run_ok();
    assert_eq!(mounts().lines().count(), before);
}
