//! config.md (root, mounts, process, hostname, annotations, extensibility)
//! and runtime-linux.md, checked from inside by the probe.

use super::*;

const S_ROOT: &str = "config.md#root";
const S_MOUNTS: &str = "config.md#mounts";
const S_PROC: &str = "config.md#process";
const S_USER: &str = "config.md#user";
const S_HOST: &str = "config.md#hostname";
const S_DOM: &str = "config.md#domainname";
const S_ANN: &str = "config.md#annotations";
const S_EXT: &str = "config.md#extensibility";
const S_VALID: &str = "config.md#valid-values";
const S_RL_FD: &str = "runtime-linux.md#file-descriptors";
const S_RL_DEV: &str = "runtime-linux.md#dev-symbolic-links";

fn tmpfs(dest: &str, opts: &[&str]) -> Value {
    json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts})
}

fn mkdir(b: &Bundle, rel: &str) {
    let _ = fs::create_dir_all(b.rootfs.join(rel.trim_start_matches('/')));
}

fn opt_case(opt: &'static str) -> Case {
    let dest: &'static str = Box::leak(format!("/opt-{opt}").into_boxed_str());
    let focus: &'static [&'static str] = Box::leak(
        vec![&*Box::leak(
            format!("mounts[{dest}].flags").into_boxed_str(),
        )]
        .into_boxed_slice(),
    );
    probe_case(&format!("config/mounts/option-{opt}"), S_MOUNTS, "options (array of strings, OPTIONAL) Mount options of the filesystem to be used (mount(8) filesystem-independent options MUST be supported)", Needs::None, focus, move |_cx, b| {
        mkdir(b, dest);
        b.push("/mounts", tmpfs(dest, &[opt]));
        Ok(())
    })
}

/// Bind-mount a host dir that carries a host tmpfs submount, with a recursive option.
fn rec_case(opt: &'static str) -> Case {
    probe_case(&format!("config/mounts/recursive-{opt}"), S_MOUNTS, "recursive mount attributes (rro, rnosuid, rnodev, rnoexec, rnoatime, rnosymfollow, ...) MUST apply to the mount and all its submounts", Needs::None, &["mounts[/rec].recursive", "mounts[/rec].flags"], move |cx, b| {
        let src = b.dir.join("recsrc");
        fs::create_dir_all(src.join("sub")).map_err(|e| e.to_string())?;
        host_mount(cx, &["-t", "tmpfs", "-o", "size=1m", "tmpfs", &src.join("sub").display().to_string()], &src.join("sub"))?;
        mkdir(b, "/rec");
        b.push("/mounts", json!({"destination": "/rec", "type": "bind", "source": src.display().to_string(), "options": ["rbind", opt]}));
        Ok(())
    })
}

fn prop_case(p: &'static str) -> Case {
    probe_case(&format!("config/mounts/propagation-{p}"), S_MOUNTS, "mount propagation options (shared, slave, private, unbindable and r*) of mount(8) MUST be applied", Needs::None, &["mounts[/prop].propagation"], move |cx, b| {
        mkdir(b, "/prop");
        if p.ends_with("slave") {
            // A slave needs a master: bind from a shared host mount.
            let src = b.dir.join("propsrc");
            fs::create_dir_all(&src).map_err(|e| e.to_string())?;
            let s = src.display().to_string();
            host_mount(cx, &["-t", "tmpfs", "-o", "size=1m", "tmpfs", &s], &src)?;
            let o = cx.exec("mount", &["--make-shared", &s], Duration::from_secs(5));
            ensure(o.ok(), o.brief())?;
            b.push("/mounts", json!({"destination": "/prop", "type": "bind", "source": s, "options": ["rbind", p]}));
        } else {
            b.push("/mounts", tmpfs("/prop", &[p]));
        }
        Ok(())
    })
}

fn cap_case(set: &'static str) -> Case {
    let focus: &'static [&'static str] = Box::leak(
        vec![&*Box::leak(
            format!("process.capabilities.{set}").into_boxed_str(),
        )]
        .into_boxed_slice(),
    );
    probe_case(&format!("config/process/capabilities-{set}"), S_PROC, "capabilities (object, OPTIONAL) is an object containing arrays that specifies the sets of capabilities for the process.", Needs::None, focus, |_cx, b| {
        let caps = json!(["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN", "CAP_SETUID"]);
        b.set("/process/capabilities", json!({"bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": caps}));
        Ok(())
    })
}

pub fn cases() -> Vec<Case> {
    let mut v = vec![
        probe_case("config/root/readonly", S_ROOT, "readonly (bool, OPTIONAL) If true then the root filesystem MUST be read-only inside the container, defaults to false.", Needs::None, &["root.readonly"], |_cx, b| {
            b.set("/root/readonly", json!(true));
            Ok(())
        }),
        probe_case("config/root/readwrite", S_ROOT, "readonly defaults to false (root filesystem writable)", Needs::None, &["root.readwrite"], |_cx, b| {
            b.set("/root/readonly", json!(false));
            Ok(())
        }),
        probe_case("config/root/absolute-path", S_ROOT, "path (string, REQUIRED) Specifies the path to the root filesystem for the container ... either an absolute path or a relative path to the bundle.", Needs::None, &["process.args"], |_cx, b| {
            let p = b.rootfs.display().to_string();
            b.set("/root/path", json!(p));
            Ok(())
        }),
        reject_case("config/root/missing-path-error", S_ROOT, "A directory MUST exist at the path declared by the field. (create MUST generate an error otherwise)", Needs::None, |_cx, b| {
            b.set("/root/path", json!("no-such-rootfs"));
            Ok(())
        }),
        probe_case("config/mounts/order", S_MOUNTS, "The runtime MUST mount entries in the listed order.", Needs::None, &["mounts.order"], |_cx, b| {
            for d in ["/ord-a", "/ord-b"] {
                mkdir(b, d);
            }
            b.push("/mounts", tmpfs("/ord-a", &["size=1m"]));
            b.push("/mounts", tmpfs("/ord-a/inner", &["size=1m"]));
            b.push("/mounts", tmpfs("/ord-b", &["size=1m"]));
            b.push("/mounts", tmpfs("/ord-a/inner/deeper", &["size=1m"]));
            Ok(())
        }),
        probe_case("config/mounts/create-destination", S_MOUNTS, "destination ... path inside container (the runtime creates a missing mount point)", Needs::None, &["mounts[/not/yet/there].present"], |_cx, b| {
            b.push("/mounts", tmpfs("/not/yet/there", &["size=1m"]));
            Ok(())
        }),
        probe_case("config/mounts/tmpfs-data-options", S_MOUNTS, "options: filesystem-specific options (mode=, size=) are passed to mount(2) data", Needs::None, &["mounts[/data-tmpfs]"], |_cx, b| {
            mkdir(b, "/data-tmpfs");
            b.push("/mounts", tmpfs("/data-tmpfs", &["nosuid", "nodev", "mode=1770", "size=2m"]));
            Ok(())
        }),
        probe_case("config/mounts/bind", S_MOUNTS, "source ... For bind mounts, a path on the host; options bind/rbind", Needs::None, &["mounts[/bound]"], |_cx, b| {
            let src = b.dir.join("bindsrc");
            write_file(&src.join("marker"), "x")?;
            mkdir(b, "/bound");
            b.push("/mounts", json!({"destination": "/bound", "type": "bind", "source": src.display().to_string(), "options": ["rbind"]}));
            Ok(())
        }),
        probe_case("config/mounts/bind-readonly", S_MOUNTS, "options ro on a bind mount MUST make the mount read-only", Needs::None, &["mounts[/bound-ro]"], |_cx, b| {
            let src = b.dir.join("bindsrc");
            write_file(&src.join("marker"), "x")?;
            mkdir(b, "/bound-ro");
            b.push("/mounts", json!({"destination": "/bound-ro", "type": "bind", "source": src.display().to_string(), "options": ["bind", "ro", "nosuid", "nodev"]}));
            Ok(())
        }),
        probe_case("config/mounts/bind-without-type", S_MOUNTS, "type (string, OPTIONAL) ... For bind mounts (when options include either bind or rbind), the type is a dummy, often \"none\" (not meaningful; may be omitted)", Needs::None, &["mounts[/bound-notype]"], |_cx, b| {
            let src = b.dir.join("bindsrc");
            write_file(&src.join("marker"), "x")?;
            mkdir(b, "/bound-notype");
            b.push("/mounts", json!({"destination": "/bound-notype", "source": src.display().to_string(), "options": ["rbind", "ro"]}));
            Ok(())
        }),
        probe_case("config/mounts/bind-file", S_MOUNTS, "bind mounts of a single file", Needs::None, &["mounts[/bound-file]"], |_cx, b| {
            let src = b.dir.join("bindfile");
            write_file(&src, "file")?;
            b.push("/mounts", json!({"destination": "/bound-file", "type": "bind", "source": src.display().to_string(), "options": ["bind", "ro"]}));
            Ok(())
        }),
        probe_case("config/mounts/relative-destination", S_MOUNTS, "destination ... For compatibility with old tools and configurations, it MAY be a relative path, in which case it MUST be interpreted as relative to \"/\".", Needs::None, &["mounts[/rel-dest]"], |_cx, b| {
            mkdir(b, "/rel-dest");
            b.push("/mounts", tmpfs("rel-dest", &["size=1m"]));
            Ok(())
        }),
        probe_case("config/mounts/idmap", S_MOUNTS, "uidMappings/gidMappings (OPTIONAL): the mapping to convert UIDs/GIDs from the source file system to the destination mount point (idmapped mount, runtime-spec 1.2)", Needs::None, &["mounts[/idmapped].idmap"], |_cx, b| {
            let src = b.dir.join("idsrc");
            write_file(&src.join("idmap-probe-file"), "x")?;
            mkdir(b, "/idmapped");
            b.push("/mounts", json!({"destination": "/idmapped", "type": "bind", "source": src.display().to_string(), "options": ["rbind", "idmap"],
                "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}], "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 1}]}));
            Ok(())
        }),
        // ---- process
        probe_case("config/process/cwd", S_PROC, "cwd (string, REQUIRED) is the working directory that will be set for the executable. This value MUST be an absolute path.", Needs::None, &["process.cwd"], |_cx, b| {
            b.set("/process/cwd", json!("/work-dir"));
            Ok(())
        }),
        reject_case("config/process/cwd-relative-error", S_VALID, "cwd ... This value MUST be an absolute path. Runtimes MUST generate an error when invalid or unsupported values are encountered.", Needs::None, |_cx, b| {
            b.set("/process/cwd", json!("work-dir"));
            Ok(())
        }),
        probe_case("config/process/env", S_PROC, "env (array of strings, OPTIONAL) with the same semantics as IEEE Std 1003.1-2008's environ.", Needs::None, &["process.env"], |_cx, b| {
            b.env("CONFORMANCE_A=1");
            b.env("CONFORMANCE_EMPTY=");
            b.env("CONFORMANCE_EQ=a=b=c");
            b.env("CONFORMANCE_SPACE=with space");
            Ok(())
        }),
        probe_case("config/process/args", S_PROC, "args (array of strings, OPTIONAL) with similar semantics to IEEE Std 1003.1-2008 execvp's argv.", Needs::None, &["process.args"], |_cx, b| {
            b.args(&["/probe", "check", "", "arg with space"]);
            Ok(())
        }),
        probe_case("config/process/args-path-lookup", S_PROC, "args ... the first entry is used with the same semantics as execvp's file (PATH lookup in the container).", Needs::None, &["process.args"], |_cx, b| {
            b.args(&["probe"]);
            b.cfg["process"]["env"][0] = json!("PATH=/bin:/");
            Ok(())
        }),
        probe_case("config/process/user-uid-gid", S_USER, "uid (int, REQUIRED) specifies the user ID in the container namespace. gid (int, REQUIRED) specifies the group ID in the container namespace.", Needs::None, &["process.user.uid", "process.user.gid"], |_cx, b| {
            b.set("/process/user", json!({"uid": 1000, "gid": 1001}));
            Ok(())
        }),
        probe_case("config/process/additionalGids", S_USER, "additionalGids (array of ints, OPTIONAL) specifies additional group IDs in the container namespace to be added to the process.", Needs::None, &["process.user.additionalGids"], |_cx, b| {
            b.set("/process/user", json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 1002, 65534]}));
            Ok(())
        }),
        probe_case("config/process/umask", S_USER, "umask (int, OPTIONAL) specifies the umask of the user.", Needs::None, &["process.user.umask"], |_cx, b| {
            b.set("/process/user/umask", json!(0o027));
            Ok(())
        }),
        cap_case("bounding"),
        cap_case("effective"),
        cap_case("permitted"),
        cap_case("inheritable"),
        cap_case("ambient"),
        probe_case("config/process/capabilities-non-root", S_PROC, "capabilities ... the sets apply to the process also when user.uid is not 0", Needs::None, &["process.capabilities"], |_cx, b| {
            let caps = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
            b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
            b.set("/process/capabilities", json!({"bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": caps}));
            Ok(())
        }),
        probe_case("config/process/capabilities-empty", S_PROC, "capabilities: empty sets mean no capabilities", Needs::None, &["process.capabilities"], |_cx, b| {
            b.set("/process/capabilities", json!({"bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []}));
            Ok(())
        }),
        reject_case("config/process/capabilities-unknown-error", S_PROC, "Any value which cannot be mapped to a relevant kernel interface, or cannot be granted otherwise MUST cause the runtime to generate an error.", Needs::None, |_cx, b| {
            b.cfg["process"]["capabilities"]["bounding"].as_array_mut().unwrap().push(json!("CAP_CONFORMANCE_BOGUS"));
            b.cfg["process"]["capabilities"]["effective"].as_array_mut().unwrap().push(json!("CAP_CONFORMANCE_BOGUS"));
            Ok(())
        }),
        probe_case("config/process/rlimits", S_PROC, "For each entry in rlimits, a getrlimit(3) on type MUST succeed; rlim.rlim_cur MUST match the configured soft value; rlim.rlim_max MUST match the configured hard value.", Needs::None, &["process.rlimits"], |_cx, b| {
            b.set("/process/rlimits", json!([
                {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
                {"type": "RLIMIT_NPROC", "soft": 2048, "hard": 4096},
                {"type": "RLIMIT_MSGQUEUE", "soft": 8192, "hard": 16384},
                {"type": "RLIMIT_STACK", "soft": 4194304, "hard": 8388608}
            ]));
            Ok(())
        }),
        reject_case("config/process/rlimits-unknown-type-error", S_PROC, "type (string, REQUIRED) the platform resource being limited ... The runtime MUST generate an error for any values which cannot be mapped to a relevant kernel interface.", Needs::None, |_cx, b| {
            b.push("/process/rlimits", json!({"type": "RLIMIT_CONFORMANCE", "soft": 1, "hard": 1}));
            Ok(())
        }),
        reject_case("config/process/rlimits-duplicate-error", S_PROC, "If rlimits contains duplicated entries with same type, the runtime MUST generate an error.", Needs::None, |_cx, b| {
            b.push("/process/rlimits", json!({"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512}));
            Ok(())
        }),
        probe_case("config/process/noNewPrivileges", S_PROC, "noNewPrivileges (bool, OPTIONAL) setting noNewPrivileges to true prevents the process from gaining additional privileges.", Needs::None, &["process.noNewPrivileges"], |_cx, b| {
            b.set("/process/noNewPrivileges", json!(true));
            Ok(())
        }),
        probe_case("config/process/oomScoreAdj", S_PROC, "If oomScoreAdj is set, the runtime MUST set oom_score_adj to the given value.", Needs::None, &["process.oomScoreAdj"], |_cx, b| {
            b.set("/process/oomScoreAdj", json!(423));
            Ok(())
        }),
        probe_case("config/process/oomScoreAdj-unset", S_PROC, "If oomScoreAdj is not set, the runtime MUST NOT change the value of oom_score_adj.", Needs::None, &["process.oomScoreAdj.unset"], |_cx, _b| Ok(())),
        probe_case("config/process/apparmorProfile", S_PROC, "apparmorProfile (string, OPTIONAL) specifies the name of the AppArmor profile for the process.", Needs::AppArmor, &["process.apparmorProfile"], |_cx, b| {
            b.set("/process/apparmorProfile", json!("unconfined"));
            Ok(())
        }),
        probe_case("config/process/selinuxLabel", S_PROC, "selinuxLabel (string, OPTIONAL) specifies the SELinux label for the process.", Needs::SELinux, &["process.selinuxLabel"], |_cx, b| {
            b.set("/process/selinuxLabel", json!("system_u:system_r:container_t:s0"));
            Ok(())
        }),
        probe_case("config/process/ioPriority", S_PROC, "ioPriority (object, OPTIONAL) configures the I/O priority settings for the container's processes (runtime-spec 1.1)", Needs::None, &["process.ioPriority"], |_cx, b| {
            b.set("/process/ioPriority", json!({"class": "IOPRIO_CLASS_BE", "priority": 6}));
            Ok(())
        }),
        probe_case("config/process/scheduler", S_PROC, "scheduler (object, OPTIONAL) is an object describing the scheduler properties for the process (runtime-spec 1.2)", Needs::None, &["process.scheduler"], |_cx, b| {
            b.set("/process/scheduler", json!({"policy": "SCHED_BATCH", "nice": 7}));
            Ok(())
        }),
        probe_case("config/process/execCPUAffinity", S_PROC, "execCPUAffinity (object, OPTIONAL) specifies CPU affinity used to execute the process; final: the affinity the process runs with (runtime-spec 1.2)", Needs::None, &["process.execCPUAffinity"], |_cx, b| {
            b.set("/process/execCPUAffinity", json!({"initial": "0", "final": "0"}));
            Ok(())
        }),
        case("config/process/terminal", S_PROC, "terminal (bool, OPTIONAL) specifies whether a terminal is attached to the process; /dev/console is set up if terminal is enabled (config-linux default devices); consoleSize (object, OPTIONAL)", Needs::None, |cx| {
            let mut b = cx.bundle("terminal");
            b.set("/process/terminal", json!(true));
            b.set("/process/consoleSize", json!({"height": 33, "width": 101}));
            let con = Console::new(&b.dir)?;
            let mut c = Ctr::new(cx, b);
            c.extra_create = vec!["--console-socket".into(), con.path.display().to_string()];
            c.up()?;
            c.wait_status("stopped", 20)?;
            let out = con.output(10)?;
            let r = parse_report(&out);
            Ok(r.judge(&["process.terminal", "process.consoleSize", "linux.defaultDevices[/dev/console]"]))
        }),
        probe_case("config/hostname", S_HOST, "hostname (string, OPTIONAL) specifies the container's hostname as seen by processes running inside the container.", Needs::None, &["hostname"], |_cx, b| {
            b.set("/hostname", json!("conformance-host"));
            Ok(())
        }),
        probe_case("config/domainname", S_DOM, "domainname (string, OPTIONAL) specifies the container's domainname as seen by processes running inside the container (runtime-spec 1.2)", Needs::None, &["domainname"], |_cx, b| {
            b.set("/domainname", json!("conformance.example"));
            Ok(())
        }),
        accept_case("config/annotations/unknown-keys", S_ANN, "Implementations that are reading/processing this configuration file MUST NOT generate an error if they encounter an unknown annotation key.", |_cx, b| {
            b.set("/annotations", json!({"org.opencontainers.conformance.unknown": "x", "com.example.whatever/key": "{\"nested\": true}"}));
            Ok(())
        }),
        accept_case("config/extensibility/unknown-properties", S_EXT, "Runtimes that are reading or processing this configuration file MUST NOT generate an error if they encounter an unknown property. Instead they MUST ignore unknown properties.", |_cx, b| {
            b.set("/conformanceUnknown", json!({"a": 1}));
            b.set("/process/conformanceUnknown", json!("x"));
            b.set("/linux/conformanceUnknown", json!([1, 2]));
            b.set("/root/conformanceUnknown", json!(true));
            Ok(())
        }),
        probe_case("runtime-linux/file-descriptors", S_RL_FD, "By default, only the stdin, stdout and stderr file descriptors are kept open for the application by the runtime.", Needs::None, &["runtime-linux.fds"], |_cx, _b| Ok(())),
        probe_case("runtime-linux/dev-symlinks", S_RL_DEV, "While creating the container (step 2 in the lifecycle), runtimes MUST create the following symlinks if the source file exists after processing mounts: /dev/fd -> /proc/self/fd, /dev/stdin -> /proc/self/fd/0, /dev/stdout -> /proc/self/fd/1, /dev/stderr -> /proc/self/fd/2", Needs::None, &["runtime-linux.devSymlinks"], |_cx, _b| Ok(())),
    ];
    for o in [
        "ro",
        "rw",
        "nosuid",
        "nodev",
        "noexec",
        "noatime",
        "strictatime",
        "relatime",
        "nodiratime",
        "nosymfollow",
        "defaults",
    ] {
        v.push(opt_case(o));
    }
    for o in [
        "rro",
        "rnosuid",
        "rnodev",
        "rnoexec",
        "rnoatime",
        "rnosymfollow",
    ] {
        v.push(rec_case(o));
    }
    for p in [
        "shared",
        "private",
        "slave",
        "unbindable",
        "rshared",
        "rprivate",
        "rslave",
        "runbindable",
    ] {
        v.push(prop_case(p));
    }
    v
}
