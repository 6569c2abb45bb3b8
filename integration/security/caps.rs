//! CVE-2022-29162 (runc: `exec --cap` added the capability to the inheritable set, and the
//! container process kept whatever inheritable set the runtime had, so a non-root program
//! with file capabilities gained capabilities at execve beyond the spec's).
//!
//! The attack: the runtime itself runs with a hostile inheritable and ambient set
//! (CAP_SYS_ADMIN and CAP_NET_RAW, raised by us before exec'ing skiff), the spec's
//! inheritable set is empty or small, and the container runs, as a non-root user, a copy of
//! busybox carrying file capabilities (inheritable CAP_SYS_ADMIN|CAP_NET_RAW|CAP_KILL, the
//! effective bit): at execve it gains pI & fI. Its permitted set must stay within the spec's
//! inheritable set, for the init (create) and for `exec`, with and without `--cap`.

use std::os::unix::process::CommandExt;
use std::process::Stdio;

use serde_json::json;

use crate::common::{output_via_files, require_root, text, Bundle};

const CAP_KILL: u32 = 5;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// In the forked child before exec'ing skiff: raise `caps` in our inheritable and ambient
/// sets. Raw syscalls only (no allocation after fork).
fn hostile_runtime_caps(cmd: &mut std::process::Command, caps: &'static [u32]) {
    // SAFETY: the closure makes only raw syscalls on stack data, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let mut hdr = CapHeader {
                version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
                pid: 0,
            };
            let mut data = [CapData::default(); 2];
            if libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for &c in caps {
                data[(c / 32) as usize].inheritable |= 1 << (c % 32);
            }
            if libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for &c in caps {
                let r = libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    c as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                );
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// /fcap/busybox: busybox with file capabilities fI = SYS_ADMIN|NET_RAW|KILL and the effective
/// bit (a VFS_CAP_REVISION_2 security.capability xattr).
fn install_fcap_busybox(b: &Bundle) {
    // Named busybox (in its own directory) so that it takes the applet from argv[1].
    std::fs::create_dir_all(b.rootfs().join("fcap")).unwrap();
    let path = b.rootfs().join("fcap/busybox");
    std::fs::copy(b.rootfs().join("bin/busybox"), &path).unwrap();
    let fi: u32 = (1 << CAP_SYS_ADMIN) | (1 << CAP_NET_RAW) | (1 << CAP_KILL);
    let mut xattr = Vec::new();
    for word in [0x0200_0000u32 | 1, 0, fi, 0, 0] {
        xattr.extend_from_slice(&word.to_le_bytes());
    }
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: NUL-terminated path and name, and a buffer of the length passed.
    let r = unsafe {
        libc::setxattr(
            c.as_ptr(),
            c"security.capability".as_ptr(),
            xattr.as_ptr().cast(),
            xattr.len(),
            0,
        )
    };
    assert_eq!(r, 0, "setxattr: {}", std::io::Error::last_os_error());
}

/// The Cap* lines of a /proc/<pid>/status text, as numbers.
fn caps_of(status: &str, set: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{set}:")))
        .unwrap_or_else(|| panic!("no {set} in {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

/// The container's own status (the shell, as the spec's user) and that of the file-caps
/// program it runs (`/fcap/busybox grep ...`), separated by a marker line.
const SCRIPT: &str =
    "grep Cap /proc/self/status; echo ---; /fcap/busybox grep Cap /proc/self/status";

fn check(out: &str, spec_inheritable: u64, what: &str) {
    let (own, fcap) = out
        .split_once("---\n")
        .unwrap_or_else(|| panic!("{what}: {out}"));
    assert_eq!(
        caps_of(own, "CapInh"),
        spec_inheritable,
        "{what}: inheritable is not the spec's: {out}"
    );
    assert_eq!(
        caps_of(own, "CapAmb") & !spec_inheritable,
        0,
        "{what}: ambient beyond the spec's inheritable: {out}"
    );
    // pP' = (pI & fI) | (fP & bounding) | pA': only what the spec made inheritable.
    assert_eq!(
        caps_of(fcap, "CapPrm") & !spec_inheritable,
        0,
        "{what}: a file-capability program gained capabilities beyond the spec: {out}"
    );
    assert_eq!(caps_of(fcap, "CapInh"), spec_inheritable, "{what}: {out}");
    // And the mechanism is live: what the spec does make inheritable is gained (fI covers
    // every set used here), so the assertions above are not vacuous.
    assert_eq!(caps_of(fcap, "CapPrm"), spec_inheritable, "{what}: {out}");
}

fn bundle(inheritable: &[&str]) -> Bundle {
    let mut b = Bundle::new("cve-2022-29162");
    install_fcap_busybox(&b);
    let all = json!([
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
        "CAP_SETGID"
    ]);
    b.config["process"]["capabilities"] = json!({
        "bounding": all, "effective": all, "permitted": all,
        "inheritable": inheritable, "ambient": inheritable,
    });
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    // File capabilities only apply without no_new_privs.
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["process"]["env"] = json!(["PATH=/bin"]);
    b
}

fn skiff_hostile(b: &Bundle, args: &[&str]) -> std::process::Output {
    b.write_config();
    let mut cmd = b.command(args);
    cmd.stdin(Stdio::null());
    hostile_runtime_caps(&mut cmd, &[CAP_SYS_ADMIN, CAP_NET_RAW]);
    output_via_files(&mut cmd)
}

#[test]
fn create_never_gives_inheritable_capabilities_beyond_the_spec() {
    require_root!();
    for (inh, mask) in [(vec![], 0u64), (vec!["CAP_KILL"], 1u64 << CAP_KILL)] {
        let mut b = bundle(&inh);
        b.sh(SCRIPT);
        let bundle_dir = b.dir.to_str().unwrap().to_string();
        let out = skiff_hostile(&b, &["run", "--bundle", &bundle_dir, &b.id]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        check(
            &text(&out.stdout),
            mask,
            &format!("run, inheritable {inh:?}"),
        );
    }
}

#[test]
fn exec_never_gives_inheritable_capabilities_beyond_the_spec() {
    require_root!();
    for (inh, mask) in [(vec![], 0u64), (vec!["CAP_KILL"], 1u64 << CAP_KILL)] {
        let mut b = bundle(&inh);
        b.args(&["sleep", "60"]);
        b.create_ok();
        b.ok(&["start", &b.id]);
        for extra in [
            &[][..],
            &["--cap", "CAP_SYS_ADMIN", "--cap", "CAP_NET_RAW"][..],
        ] {
            let mut args = vec!["exec"];
            args.extend_from_slice(extra);
            args.extend([b.id.as_str(), "sh", "-c", SCRIPT]);
            let out = skiff_hostile(&b, &args);
            let what = format!("exec {extra:?}, inheritable {inh:?}");
            assert!(out.status.success(), "{what}: {}", text(&out.stderr));
            let out = text(&out.stdout);
            check(&out, mask, &what);
            if !extra.is_empty() {
                // --cap still works where it should: bounding and permitted.
                let own = out.split_once("---\n").unwrap().0;
                assert_ne!(
                    caps_of(own, "CapBnd") & (1 << CAP_SYS_ADMIN),
                    0,
                    "{what}: {out}"
                );
            }
        }
    }
}
