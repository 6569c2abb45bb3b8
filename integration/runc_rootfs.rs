//! The rootfs behaviour runc's own integration tests check (tests/integration/mounts.bats,
//! mask.bats, dev.bats, run.bats "tmpfs", userns.bats "inaccessible mounts",
//! mounts_recursive.bats), each asserting what the bats test asserts, from inside the
//! container or on the host.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::common::{require_root, text, Bundle};

fn push_mount(b: &mut Bundle, m: Value) {
    b.config["mounts"].as_array_mut().unwrap().push(m);
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// The /proc/mounts lines (`source target fstype options ...`) mounted at `target`.
fn mount_lines<'a>(mounts: &'a str, target: &str) -> Vec<&'a str> {
    mounts
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(target))
        .collect()
}

fn options_of(line: &str) -> Vec<&str> {
    line.split_whitespace()
        .nth(3)
        .unwrap_or("")
        .split(',')
        .collect()
}

fn add_userns(b: &mut Bundle, uid: u32, gid: u32, size: u32) {
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": size}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": size}]);
    // remap_rootfs: the image belongs to the container's root.
    let st = Command::new("chown")
        .args(["-R", "-h", &format!("{uid}:{gid}")])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(st.success());
}

// ---- mounts.bats ----

/// mounts.bats "runc run [tmpcopyup]", and what "starts with a copy" means beyond the mode
/// of one directory: contents, owners, set-id bits, symlinks (not followed), nested
/// directories; the image's directory itself is untouched by writes in the container.
#[test]
fn tmpcopyup_tmpfs_starts_with_a_copy_of_the_directory() {
    require_root!();
    let mut b = Bundle::new("tmpcopyup");
    let d = b.rootfs().join("dir1");
    std::fs::create_dir_all(d.join("dir2/deep")).unwrap();
    chmod(&d.join("dir2"), 0o777);
    std::fs::write(d.join("dir2/deep/file"), "nested\n").unwrap();
    std::fs::write(d.join("owned"), "data\n").unwrap();
    std::os::unix::fs::chown(d.join("owned"), Some(1234), Some(5678)).unwrap();
    chmod(&d.join("owned"), 0o4755);
    std::os::unix::fs::symlink("/etc/passwd", d.join("link")).unwrap();
    std::os::unix::fs::chown(&d, Some(42), Some(43)).unwrap();
    chmod(&d, 0o1755);
    push_mount(
        &mut b,
        json!({"source": "tmpfs", "destination": "/dir1", "type": "tmpfs", "options": ["tmpcopyup"]}),
    );
    b.sh(
        "ls -ld /dir1/dir2; stat -c '%n %a %u:%g' /dir1 /dir1/owned /dir1/dir2/deep; \
          cat /dir1/dir2/deep/file /dir1/owned; readlink /dir1/link; \
          touch /dir1/new; grep ' /dir1 ' /proc/mounts",
    );
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{out}{err}");
    let l: Vec<&str> = out.lines().collect();
    assert!(l[0].starts_with("drwxrwxrwx"), "{out}{err}");
    assert_eq!(l[1], "/dir1 1755 42:43", "{out}");
    assert_eq!(l[2], "/dir1/owned 4755 1234:5678", "{out}");
    assert_eq!(l[3], "/dir1/dir2/deep 755 0:0", "{out}");
    assert_eq!(&l[4..6], ["nested", "data"], "{out}");
    assert_eq!(l[6], "/etc/passwd", "{out}");
    assert!(l[7].starts_with("tmpfs /dir1 tmpfs "), "{out}");
    // The kernel never saw `tmpcopyup`, and the copy is a tmpfs: the image is untouched.
    assert!(!b.rootfs().join("dir1/new").exists());
}

/// mounts.bats "runc run [bind mount]": a relative source is relative to the bundle.
#[test]
fn bind_mount_of_the_bundle_directory() {
    require_root!();
    let mut b = Bundle::new("bind-dot");
    push_mount(
        &mut b,
        json!({"source": ".", "destination": "/tmp/bind", "options": ["bind"]}),
    );
    b.args(&["ls", "/tmp/bind/config.json"]);
    assert!(b.run_ok().contains("/tmp/bind/config.json"));
}

/// mounts.bats "runc run [ro tmpfs mount]".
#[test]
fn read_only_tmpfs_mount() {
    require_root!();
    let mut b = Bundle::new("ro-tmpfs");
    push_mount(
        &mut b,
        json!({"source": "tmpfs", "destination": "/mnt", "type": "tmpfs",
               "options": ["ro", "nodev", "nosuid", "mode=755"]}),
    );
    b.args(&["grep", "^tmpfs /mnt", "/proc/mounts"]);
    let out = b.run_ok();
    assert!(out.lines().next().unwrap().contains("ro,"), "{out}");
}

/// mounts.bats "runc run [ro /dev mount]": /dev is still populated (default devices,
/// /dev/pts, /dev/shm, symlinks) and read-only at the end.
#[test]
fn read_only_dev_still_gets_its_devices_and_submounts() {
    require_root!();
    let mut b = Bundle::new("ro-dev");
    for m in b.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            m["options"].as_array_mut().unwrap().push(json!("ro"));
        }
    }
    b.sh("grep '^tmpfs /dev ' /proc/mounts; stat -c '%n %t:%T' /dev/null /dev/zero /dev/tty; \
          readlink /dev/ptmx; grep -c ' /dev/pts devpts ' /proc/mounts; \
          touch /dev/x 2>/dev/null && echo writable || echo refused; echo ok > /dev/null && echo null-works");
    let out = b.run_ok();
    let l: Vec<&str> = out.lines().collect();
    assert!(l[0].contains("ro,"), "{out}");
    assert_eq!(
        &l[1..4],
        ["/dev/null 1:3", "/dev/zero 1:5", "/dev/tty 5:0"],
        "{out}"
    );
    assert_eq!(l[4], "pts/ptmx", "{out}");
    assert_eq!(l[5], "1", "{out}");
    assert_eq!(l[6], "refused", "{out}");
    assert_eq!(l[7], "null-works", "{out}");
}

/// The same with a terminal: /dev/console is made under the read-only /dev before it
/// becomes read-only.
#[test]
fn read_only_dev_with_a_terminal() {
    require_root!();
    let mut b = Bundle::new("ro-dev-tty");
    for m in b.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            m["options"].as_array_mut().unwrap().push(json!("ro"));
        }
    }
    let sock = b.dir.join("console.sock");
    let console = crate::common::console_receiver(&sock);
    b.config["process"]["terminal"] = json!(true);
    b.sh("grep '^tmpfs /dev ' /proc/mounts; test -c /dev/console && echo console");
    let bundle = b.dir.to_str().unwrap().to_string();
    let s = sock.to_str().unwrap().to_string();
    let out = b.skiff(&["run", "--console-socket", &s, "--bundle", &bundle, &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seen = console.join().unwrap();
    assert!(seen.contains("ro,") && seen.contains("console"), "{seen}");
}

/// mounts.bats "runc run [tmpfs mount with absolute symlink]".
#[test]
fn tmpfs_under_an_absolute_symlink_lands_inside_the_rootfs() {
    require_root!();
    let mut b = Bundle::new("tmpfs-abs-link");
    std::fs::create_dir_all(b.rootfs().join("real/conf")).unwrap();
    std::os::unix::fs::symlink("/real/conf", b.rootfs().join("conf")).unwrap();
    push_mount(
        &mut b,
        json!({"type": "tmpfs", "source": "tmpfs", "destination": "/conf/stack",
               "options": ["ro", "nodev", "nosuid"]}),
    );
    b.args(&["grep", "-c", "^tmpfs /real/conf/stack ", "/proc/mounts"]);
    assert_eq!(b.run_ok().trim(), "1");
}

/// mounts.bats "runc run [/proc is a symlink]" and mask.bats "mask paths [prohibit symlink
/// /proc]": refused, in runc's words, with the field named.
#[test]
fn proc_symlink_must_be_mounted_on_ordinary_directory() {
    require_root!();
    for (name, target, make) in [
        ("proc-link", "/bad-proc", true),
        ("proc-dangling", "/symlink", false),
    ] {
        let mut b = Bundle::new(name);
        std::fs::remove_dir(b.rootfs().join("proc")).unwrap();
        if make {
            std::fs::create_dir(b.rootfs().join("bad-proc")).unwrap();
        }
        std::os::unix::fs::symlink(target, b.rootfs().join("proc")).unwrap();
        b.args(&["true"]);
        let (code, _, err) = b.run();
        assert_ne!(code, 0);
        assert!(
            err.contains("must be mounted on ordinary directory"),
            "{err}"
        );
        assert!(err.contains("mounts[0]"), "{err}");
        // Nothing was mounted through the link.
        assert!(!b.rootfs().join("bad-proc/self").exists());
    }
}

/// mounts.bats "runc run [setgid / + mkdirall]".
#[test]
fn created_mount_points_inherit_setgid() {
    require_root!();
    let mut b = Bundle::new("setgid-mkdirall");
    let d = b.rootfs().join("setgid");
    std::fs::create_dir(&d).unwrap();
    chmod(&d, 0o7755);
    push_mount(
        &mut b,
        json!({"type": "tmpfs", "source": "tmpfs", "destination": "/setgid/a/b/c",
               "options": ["ro", "nodev", "nosuid"]}),
    );
    b.args(&["true"]);
    b.run_ok();
    assert_eq!(mode_of(&d), 0o7755);
    for p in ["a", "a/b", "a/b/c"] {
        assert_eq!(mode_of(&d.join(p)), 0o2755, "{p}");
    }
}

fn tmpfs_at(b: &mut Bundle, dest: &str, options: Value) {
    push_mount(
        b,
        json!({"type": "tmpfs", "source": "tmpfs", "destination": dest, "options": options}),
    );
}

/// mounts.bats "runc run [tmpfs mount mode= inherit]".
#[test]
fn tmpfs_without_mode_inherits_the_directory_mode() {
    require_root!();
    let mut b = Bundle::new("tmpfs-mode-inherit");
    std::fs::create_dir(b.rootfs().join("tmpfs")).unwrap();
    chmod(&b.rootfs().join("tmpfs"), 0o710);
    tmpfs_at(&mut b, "/tmpfs", json!(["rw", "nodev", "nosuid"]));
    b.sh("stat -c %a /tmpfs; cat /proc/self/mounts");
    let out = b.run_ok();
    let (first, mounts) = out.split_once('\n').unwrap();
    assert_eq!(first, "710");
    let l = mount_lines(mounts, "/tmpfs");
    assert_eq!(l.len(), 1, "{mounts}");
    assert!(options_of(l[0]).contains(&"mode=710"), "{}", l[0]);
}

/// mounts.bats "runc run [tmpfs mount explicit mode=]".
#[test]
fn tmpfs_explicit_mode_wins_and_leaves_the_directory_alone() {
    require_root!();
    let mut b = Bundle::new("tmpfs-mode-explicit");
    std::fs::create_dir(b.rootfs().join("tmpfs")).unwrap();
    chmod(&b.rootfs().join("tmpfs"), 0o710);
    tmpfs_at(
        &mut b,
        "/tmpfs",
        json!(["rw", "nodev", "nosuid", "mode=1500"]),
    );
    b.sh("stat -c %a /tmpfs; cat /proc/self/mounts");
    let out = b.run_ok();
    let (first, mounts) = out.split_once('\n').unwrap();
    assert_eq!(first, "1500");
    let l = mount_lines(mounts, "/tmpfs");
    assert!(options_of(l[0]).contains(&"mode=1500"), "{}", l[0]);
    assert_eq!(mode_of(&b.rootfs().join("tmpfs")), 0o710);
}

/// mounts.bats "runc run [tmpfs mount mode=1777 default]": a created mount point gets no
/// `mode=` (tmpfs's own 1777), and the created directories are 0755.
#[test]
fn tmpfs_on_a_created_directory_keeps_the_tmpfs_default_mode() {
    require_root!();
    let mut b = Bundle::new("tmpfs-mode-default");
    tmpfs_at(
        &mut b,
        "/non-existent/foo/bar/baz",
        json!(["rw", "nodev", "nosuid"]),
    );
    b.sh("stat -c %a /non-existent/foo/bar/baz; cat /proc/self/mounts");
    let out = b.run_ok();
    let (first, mounts) = out.split_once('\n').unwrap();
    assert_eq!(first, "1777");
    let l = mount_lines(mounts, "/non-existent/foo/bar/baz");
    assert_eq!(l.len(), 1, "{mounts}");
    assert!(
        !options_of(l[0]).iter().any(|o| o.starts_with("mode=")),
        "{}",
        l[0]
    );
    let mut p = b.rootfs().join("non-existent");
    for next in ["foo", "bar", "baz", ""] {
        assert_eq!(mode_of(&p), 0o755, "{}", p.display());
        p = p.join(next);
    }
}

/// mounts.bats "runc run [ro /sys/fs/cgroup mounts]" (with and without a cgroup
/// namespace): every mount under /sys/fs/cgroup is read-only.
#[test]
fn sys_fs_cgroup_mounts_are_read_only() {
    require_root!();
    for cgroupns in [false, true] {
        let mut b = Bundle::new("ro-cgroup");
        let nss = b.config["linux"]["namespaces"].as_array_mut().unwrap();
        nss.retain(|n| n["type"] != "cgroup");
        if cgroupns {
            nss.push(json!({"type": "cgroup"}));
        }
        b.args(&["cat", "/proc/mounts"]);
        let out = b.run_ok();
        let cg: Vec<&str> = out
            .lines()
            .filter(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|t| t.starts_with("/sys/fs/cgroup"))
            })
            .collect();
        assert!(!cg.is_empty(), "{out}");
        for l in cg {
            assert!(options_of(l).contains(&"ro"), "cgroupns={cgroupns}: {l}");
        }
    }
}

/// The tree of mounts.bats `test_mount_order`: binds from outside the rootfs, then binds
/// whose source *and* destination are given as `$ROOTFS/...` host paths and must see the
/// earlier mounts, then the whole tree bound onto /final.
fn mount_order(name: &str, userns: bool, idmap: bool) {
    let mut b = Bundle::new(name);
    if userns {
        add_userns(&mut b, 100000, 100000, 65536);
    }
    std::fs::create_dir_all(b.rootfs().join("mnt")).unwrap();
    std::fs::create_dir_all(b.rootfs().join("final")).unwrap();
    let src = b.dir.join("bind-src");
    for sub in ["a/x", "b/y", "c/z"] {
        std::fs::create_dir_all(src.join(sub)).unwrap();
        std::fs::write(src.join(sub).join("file"), format!("{sub}\n")).unwrap();
        let top = sub.split('/').next().unwrap();
        std::os::unix::fs::symlink(top, src.join(format!("sym-{top}"))).unwrap();
    }
    // In a user namespace only the parent (host root) can reach these.
    chmod(&src, 0o750);
    let rootfs = b.rootfs();
    let r = |p: &str| format!("{}{p}", rootfs.display());
    let s = |p: &str| format!("{}/{p}", src.display());
    let mut add = |source: String, dest: String, ctr: bool| {
        let mut m = json!({"source": source, "destination": dest, "type": "bind",
                           "options": [if ctr { "rbind" } else { "bind" }, "rprivate"]});
        if ctr && idmap {
            m["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            m["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        }
        push_mount(&mut b, m);
    };
    add(s("a"), "/mnt".into(), false);
    add(s("sym-b"), "/mnt/x".into(), false);
    add(s("c"), "/mnt/x/y".into(), false);
    add(s("sym-a"), "/mnt/x/y/z".into(), false);
    add(r("/mnt/x"), r("/mnt/x/y/z/x"), true);
    add(r("/mnt/x/y"), r("/mnt/x/y/z"), true);
    add(r("/mnt"), r("/final"), true);
    b.args(&["cat", "/final/x/y/z/z/x/y/z/x/file"]);
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("a/x"), "{out}");
    // Nothing was created on the host under a doubled rootfs path.
    assert!(!rootfs.join(rootfs.strip_prefix("/").unwrap()).exists());
}

/// mounts.bats "runc run [mount order, container bind-mount source]".
#[test]
fn mount_order_container_bind_mount_source() {
    require_root!();
    mount_order("order", false, false);
}

/// mounts.bats "runc run [mount order, container bind-mount source] (userns)".
#[test]
fn mount_order_container_bind_mount_source_userns() {
    require_root!();
    mount_order("order-userns", true, false);
}

/// mounts.bats "runc run [mount order, container idmap source]".
#[test]
fn mount_order_container_idmap_source() {
    require_root!();
    mount_order("order-idmap", false, true);
}

/// mounts.bats "runc run [mount order, container idmap source] (userns)".
#[test]
fn mount_order_container_idmap_source_userns() {
    require_root!();
    mount_order("order-idmap-userns", true, true);
}

/// mounts.bats `test_mount_target`: `src` bound on `dst` shows up at `real`, as the same
/// inode, with a mount entry there.
fn mount_target(b: &mut Bundle, src: &Path, dst: &str, real: &str) {
    let saved = b.config.clone();
    push_mount(
        b,
        json!({"source": src, "destination": dst, "options": ["bind"]}),
    );
    b.sh(&format!(
        "stat -c '%n %d:%i' -- {real}; grep -c '^[^ ]* {real} ' /proc/self/mounts"
    ));
    let out = b.run_ok();
    let m = std::fs::metadata(src).unwrap();
    assert_eq!(
        out,
        format!("{real} {}:{}\n1\n", m.dev(), m.ino()),
        "{} on {dst}",
        src.display()
    );
    b.config = saved;
}

/// mounts.bats "runc run [bind mount through a dangling symlink component]".
#[test]
fn bind_mount_through_a_dangling_symlink_component() {
    require_root!();
    let mut b = Bundle::new("dangling-component");
    let _ = std::fs::remove_file(b.rootfs().join("etc/hosts"));
    std::os::unix::fs::symlink("/tmp/foo/bar", b.rootfs().join("jump")).unwrap();
    std::os::unix::fs::symlink("/jump/baz/hosts", b.rootfs().join("etc/hosts")).unwrap();
    let src = b.dir.join("config.json");
    b.write_config();
    mount_target(&mut b, &src, "/etc/hosts", "/tmp/foo/bar/baz/hosts");
    assert!(b.rootfs().join("tmp/foo/bar/baz/hosts").is_file());
}

/// mounts.bats "runc run [bind mount through a trailing dangling symlink]", for a file and
/// for a directory.
#[test]
fn bind_mount_through_a_trailing_dangling_symlink() {
    require_root!();
    let mut b = Bundle::new("dangling-trailing");
    let _ = std::fs::remove_file(b.rootfs().join("etc/hosts"));
    std::os::unix::fs::symlink("/tmp/hosts", b.rootfs().join("etc/hosts")).unwrap();
    b.write_config();
    let file = b.dir.join("config.json");
    mount_target(&mut b, &file, "/etc/hosts", "/tmp/hosts");
    assert!(b.rootfs().join("tmp/hosts").is_file());
    std::fs::remove_file(b.rootfs().join("tmp/hosts")).unwrap();
    let dir = b.dir.clone();
    mount_target(&mut b, &dir, "/etc/hosts", "/tmp/hosts");
    assert!(b.rootfs().join("tmp/hosts").is_dir());
}

// ---- mask.bats ----

fn masked(b: &mut Bundle, extra: &[&str]) {
    let l = b.config["linux"]["maskedPaths"].as_array_mut().unwrap();
    for p in extra {
        l.push(json!(p));
    }
}

fn mask_bundle(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    for d in ["testdir", "testdir2", "testdir3"] {
        std::fs::create_dir(b.rootfs().join(d)).unwrap();
        std::fs::write(b.rootfs().join(d).join("secret"), "x").unwrap();
    }
    std::fs::write(b.rootfs().join("testfile"), "Forbidden information!\n").unwrap();
    masked(&mut b, &["/testdir", "/testfile"]);
    // root.readonly stays true, as in runc's tests (rm of a masked path fails with EROFS).
    b
}

/// mask.bats "mask paths [file]" and "[directory]".
#[test]
fn masked_file_and_directory() {
    require_root!();
    let mut b = mask_bundle("mask-basic");
    b.sh("echo \"[$(cat /testfile)]\"; ls /testdir | wc -l; \
          rm -f /testfile 2>&1; touch /testdir/foo 2>&1; rm -rf /testdir 2>&1; true");
    let out = b.run_ok();
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "[]", "{out}");
    assert_eq!(l[1], "0", "{out}");
    assert_eq!(
        out.matches("Read-only file system").count(),
        3,
        "rm/touch/rm -rf must all fail with EROFS: {out}"
    );
    assert!(b.rootfs().join("testfile").exists());
}

/// mask.bats "mask paths [duplicate paths]": one mount per path.
#[test]
fn masked_paths_listed_twice_are_masked_once() {
    require_root!();
    let mut b = mask_bundle("mask-dup");
    masked(&mut b, &["/testdir", "/testfile"]);
    b.args(&["cat", "/proc/self/mounts"]);
    let out = b.run_ok();
    assert_eq!(mount_lines(&out, "/testdir").len(), 1, "{out}");
    assert_eq!(mount_lines(&out, "/testfile").len(), 1, "{out}");
}

/// mask.bats "mask paths [directories share tmpfs]".
#[test]
fn masked_directories_share_one_tmpfs() {
    require_root!();
    let mut b = mask_bundle("mask-share");
    masked(&mut b, &["/testdir2", "/testdir3"]);
    b.sh("stat -c %d /testdir /testdir2 /testdir3; touch /testdir2/foo 2>&1; true");
    let out = b.run_ok();
    let l: Vec<&str> = out.lines().collect();
    assert!(l[0] == l[1] && l[1] == l[2], "{out}");
    assert!(l[3].contains("Read-only file system"), "{out}");
}

/// mask.bats "mask paths [directory with read-only rootfs]".
#[test]
fn masked_directory_with_a_read_only_root() {
    require_root!();
    let mut b = mask_bundle("mask-ro-root");
    masked(&mut b, &["/testdir2", "/testdir3"]);
    b.config["root"]["readonly"] = json!(true);
    b.sh("ls /testdir | wc -l");
    assert_eq!(b.run_ok().trim(), "0");
}

// ---- dev.bats ----

/// dev.bats "runc run [redundant default /dev/tty]" and "[redundant default /dev/ptmx]".
#[test]
fn redundant_default_devices() {
    require_root!();
    for (path, major, minor) in [("/dev/tty", 5, 0), ("/dev/ptmx", 5, 2)] {
        let mut b = Bundle::new("redundant-dev");
        b.config["linux"]["devices"] =
            json!([{"path": path, "type": "c", "major": major, "minor": minor}]);
        b.args(&["stat", "-L", "-c", "%A %u %g %t,%T %n", path]);
        assert_eq!(
            b.run_ok(),
            format!("crw-rw-rw- 0 0 {major:x},{minor:x} {path}\n")
        );
    }
}

/// dev.bats "runc run [existing device node matches]" and "[existing device node
/// conflicts]" (runc's wording in the errors).
#[test]
fn existing_device_nodes_match_or_conflict() {
    require_root!();
    let mut b = Bundle::new("dev-existing");
    std::fs::create_dir(b.rootfs().join("data")).unwrap();
    let mk = |p: &Path, minor: &str| {
        assert!(Command::new("mknod")
            .arg(p)
            .args(["c", "1", minor])
            .status()
            .unwrap()
            .success());
    };
    mk(&b.rootfs().join("data/null"), "3");
    b.config["linux"]["devices"] =
        json!([{"path": "/data/null", "type": "c", "major": 1, "minor": 3}]);
    b.args(&["stat", "-c", "%F %t:%T", "/data/null"]);
    assert_eq!(b.run_ok(), "character special file 1:3\n");

    b.config["linux"]["devices"] =
        json!([{"path": "/data/conflict", "type": "c", "major": 1, "minor": 3}]);
    let conflict = b.rootfs().join("data/conflict");
    std::fs::write(&conflict, "").unwrap();
    let (code, _, err) = b.run();
    assert_ne!(code, 0);
    assert!(err.contains("/data/conflict has incorrect ftype"), "{err}");
    std::fs::remove_file(&conflict).unwrap();
    mk(&conflict, "5");
    let (code, _, err) = b.run();
    assert_ne!(code, 0);
    assert!(
        err.contains("/data/conflict has incorrect major:minor: 1:5 doesn't match expected 1:3"),
        "{err}"
    );
}

// ---- run.bats ----

/// run.bats "runc run with tmpfs": every mode bit of the image's /tmp (set-id, sticky) is
/// the tmpfs's too.
#[test]
fn tmpfs_over_tmp_keeps_every_mode_bit() {
    require_root!();
    let mut b = Bundle::new("tmpfs-bits");
    chmod(&b.rootfs().join("tmp"), 0o7777);
    push_mount(
        &mut b,
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
               "options": ["noexec", "nosuid", "nodev", "rprivate"]}),
    );
    b.args(&["stat", "-c", "%A", "/tmp"]);
    assert_eq!(b.run_ok(), "drwsrwsrwt\n");
}

/// run.bats "runc run with tmpfs perms".
#[test]
fn tmpfs_perms() {
    require_root!();
    let mut b = Bundle::new("tmpfs-perms");
    tmpfs_at(&mut b, "/tmp/test", json!(["mode=0444"]));
    b.args(&["stat", "-c", "%a", "/tmp/test"]);
    // Created by skiff, then again with the directory already there.
    assert_eq!(b.run_ok(), "444\n");
    assert_eq!(b.run_ok(), "444\n");
    // No mode: the directory's.
    let last = b.config["mounts"].as_array().unwrap().len() - 1;
    b.config["mounts"][last]["options"] = json!([]);
    chmod(&b.rootfs().join("tmp/test"), 0o710);
    assert_eq!(b.run_ok(), "710\n");
    b.config["mounts"][last]["options"] = json!(["mode=0410"]);
    assert_eq!(b.run_ok(), "410\n");
}

// ---- userns.bats ----

fn inaccessible_sources(b: &mut Bundle) {
    for d in [
        "source-accessible",
        "source-inaccessible-1",
        "source-inaccessible-2",
    ] {
        std::fs::create_dir_all(b.dir.join(d).join("dir")).unwrap();
        std::fs::write(b.dir.join(d).join("dir/foo.txt"), "").unwrap();
    }
    for d in ["source-inaccessible-1", "source-inaccessible-2"] {
        chmod(&b.dir.join(d), 0o700);
    }
    for d in ["mount-1", "mount-2"] {
        std::fs::create_dir_all(b.rootfs().join("tmp").join(d)).unwrap();
    }
    add_userns(b, 100000, 200000, 65534);
    for (i, s) in ["source-inaccessible-1/dir", "source-inaccessible-2/dir"]
        .iter()
        .enumerate()
    {
        push_mount(
            b,
            json!({"source": s, "destination": format!("/tmp/mount-{}", i + 1), "options": ["bind"]}),
        );
    }
}

/// userns.bats "userns with simple mount".
#[test]
fn userns_with_simple_mount() {
    require_root!();
    let mut b = Bundle::new("userns-simple");
    inaccessible_sources(&mut b);
    let n = b.config["mounts"].as_array().unwrap().len();
    b.config["mounts"].as_array_mut().unwrap().truncate(n - 2);
    push_mount(
        &mut b,
        json!({"source": "source-accessible/dir", "destination": "/tmp/mount-1", "options": ["bind"]}),
    );
    b.args(&["stat", "-c", "%n", "/tmp/mount-1/foo.txt"]);
    assert_eq!(b.run_ok(), "/tmp/mount-1/foo.txt\n");
}

/// userns.bats "userns with 2 inaccessible mounts": the init (the user namespace's root)
/// cannot reach the sources; the parent cloned them.
#[test]
fn userns_with_two_inaccessible_mounts() {
    require_root!();
    let mut b = Bundle::new("userns-inaccessible");
    inaccessible_sources(&mut b);
    b.args(&[
        "stat",
        "-c",
        "%n",
        "/tmp/mount-1/foo.txt",
        "/tmp/mount-2/foo.txt",
    ]);
    assert_eq!(b.run_ok(), "/tmp/mount-1/foo.txt\n/tmp/mount-2/foo.txt\n");
}

/// userns.bats "userns with inaccessible mount + exec".
#[test]
fn userns_with_inaccessible_mount_and_exec() {
    require_root!();
    let mut b = Bundle::new("userns-inaccessible-exec");
    inaccessible_sources(&mut b);
    b.args(&["sleep", "100"]);
    b.start_ok();
    let out = b.ok(&[
        "exec",
        &b.id,
        "stat",
        "-c",
        "%n",
        "/tmp/mount-1/foo.txt",
        "/tmp/mount-2/foo.txt",
    ]);
    assert_eq!(out, "/tmp/mount-1/foo.txt\n/tmp/mount-2/foo.txt\n");
}

/// A cloned host tree does not carry the host's propagation into the container: a mount
/// made under a (shared) host source after the container started does not appear... the
/// other way round, a mount the container makes under a bind does not reach the host.
#[test]
fn userns_bind_mounts_do_not_propagate_back_to_the_host() {
    require_root!();
    let mut b = Bundle::new("userns-propagation");
    inaccessible_sources(&mut b);
    // A shared host mount as the source.
    let vol = b.dir.join("shared-vol");
    std::fs::create_dir(&vol).unwrap();
    let guard = HostMount::tmpfs(&vol);
    assert!(Command::new("mount")
        .args(["--make-shared"])
        .arg(&vol)
        .status()
        .unwrap()
        .success());
    std::fs::create_dir(vol.join("sub")).unwrap();
    std::fs::create_dir_all(b.rootfs().join("vol")).unwrap();
    push_mount(
        &mut b,
        json!({"source": vol, "destination": "/vol", "options": ["rbind"]}),
    );
    // The container's own later mount under the bind.
    push_mount(
        &mut b,
        json!({"source": "tmpfs", "destination": "/vol/sub", "type": "tmpfs"}),
    );
    b.args(&["sleep", "100"]);
    b.start_ok();
    let host = crate::common::mounts();
    assert!(
        !host.contains(&format!(" {}/sub ", vol.display())),
        "a container mount propagated to the host: {host}"
    );
    b.ok(&["delete", "--force", &b.id]);
    drop(guard);
}

/// mounts_recursive.bats: `rbind,ro` is read-only only at the top, `rro` (with or without
/// `ro`) all the way down.
#[test]
fn rbind_ro_and_rro() {
    require_root!();
    for (opts, sub_ro) in [
        (json!(["rbind", "ro"]), false),
        (json!(["rbind", "rro"]), true),
        (json!(["rbind", "ro", "rro"]), true),
    ] {
        let mut b = Bundle::new("rro");
        let vol = b.dir.join("volume");
        std::fs::create_dir(&vol).unwrap();
        let outer = HostMount::tmpfs(&vol);
        std::fs::write(vol.join("foo"), "foo\n").unwrap();
        std::fs::create_dir(vol.join("subvol")).unwrap();
        let inner = HostMount::tmpfs(&vol.join("subvol"));
        std::fs::write(vol.join("subvol/bar"), "bar\n").unwrap();
        push_mount(
            &mut b,
            json!({"source": vol, "destination": "/mnt", "options": opts}),
        );
        b.sh("touch /mnt/foo 2>&1; touch /mnt/subvol/bar 2>&1 && echo sub-writable; true");
        let out = b.run_ok();
        let l: Vec<&str> = out.lines().collect();
        assert!(l[0].contains("Read-only file system"), "{opts}: {out}");
        if sub_ro {
            assert!(l[1].contains("Read-only file system"), "{opts}: {out}");
        } else {
            assert_eq!(l[1], "sub-writable", "{opts}: {out}");
        }
        drop(inner);
        drop(outer);
    }
}

/// A tmpfs mounted on the host for a test, unmounted on drop.
struct HostMount(std::path::PathBuf);

impl HostMount {
    fn tmpfs(p: &Path) -> HostMount {
        assert!(Command::new("mount")
            .args(["-t", "tmpfs", "skiff-it-vol"])
            .arg(p)
            .status()
            .unwrap()
            .success());
        HostMount(p.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
