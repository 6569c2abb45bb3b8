//! The main pod ("web"): two containers on the pod network, one with limits, a hardened
//! securityContext and an emptyDir, the other with defaults; exec (sync and streaming),
//! status, list, stats, update, logs, a crash-and-restart, both kinds of stop, removal.

use crate::cgroup::{Driver, Qos};
use crate::kernel::{self, alive, cg_read, cgroup_of, ns, status};
use crate::replay::{has_log_line, run_sandbox, stop_and_remove, Ctx};
use crate::report::{expect_eq, need, Report};
use crate::spec::{self, container, resources, runtime_default, security, volume, Pod};
use crate::stream;
use anyhow::{ensure, Context, Result};
use k8s_cri::v1::*;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The app container: a SIGTERM handler, log lines on both streams, a file in the volume.
const APP_SCRIPT: &str = "trap 'echo got-TERM; exit 7' TERM
echo app-started
echo app-stderr >&2
echo \"hello from app\" > /data/hello
while :; do sleep 1 & wait $!; done";

const MEMORY: i64 = 64 << 20;
const MEMORY_UPDATED: i64 = 96 << 20;

/// cpu.weight for CRI cpu_shares: the value of either conversion a runc-compatible runtime
/// uses, runc ≤ 1.2's linear one or the quadratic one of runc ≥ 1.3 and crun (runc PR #4785).
fn weights(shares: i64) -> Vec<String> {
    let linear = 1 + ((shares - 2) * 9999) / 262142;
    let l = (shares as f64).log2();
    let quadratic = 10f64.powf((l * l + 125.0 * l) / 612.0 - 7.0 / 34.0).ceil() as i64;
    vec![linear.to_string(), quadratic.to_string()]
}

/// Fails unless the cgroup's cpu.weight is what cpu_shares converts to.
fn check_weight(cg: &str, shares: i64) -> Result<()> {
    let w = cg_read(cg, "cpu.weight")?;
    ensure!(
        weights(shares).contains(&w),
        "cpu.weight {w} for cpu_shares {shares}: expected one of {:?} (linear, quadratic)",
        weights(shares)
    );
    Ok(())
}

fn app_config(pod: &Pod) -> ContainerConfig {
    let mut app = container("app", 0, &["/bin/sh", "-c", APP_SCRIPT]);
    app.labels.insert("role".into(), "app".into());
    app.envs.push(KeyValue {
        key: "GREETING".into(),
        value: "hello-from-env".into(),
    });
    app.mounts.push(volume(
        &pod.vol_dir.join("data"),
        "/data",
        MountPropagation::PropagationPrivate,
    ));
    let s = security(&mut app);
    s.run_as_user = Some(Int64Value { value: 1000 });
    s.run_as_group = Some(Int64Value { value: 1000 });
    s.supplemental_groups = vec![3000];
    s.readonly_rootfs = true;
    s.no_new_privs = true;
    s.seccomp = Some(runtime_default());
    s.capabilities = Some(Capability {
        drop_capabilities: vec!["NET_RAW".into(), "CHOWN".into(), "SYS_CHROOT".into()],
        ..Default::default()
    });
    let res = resources(&mut app);
    res.memory_limit_in_bytes = MEMORY;
    res.cpu_period = 100_000;
    res.cpu_quota = 50_000;
    res.cpu_shares = 512;
    res.oom_score_adj = 900;
    app
}

pub async fn web(x: &Ctx<'_>, r: &mut Report) {
    let cri = x.cri;
    let mut pod = Pod::new(&x.work, &x.handler, "web", x.driver, Qos::Burstable);
    pod.sysctls()
        .insert("net.ipv4.ping_group_range".into(), "0 2000".into());
    pod.sysctls()
        .insert("kernel.shm_rmid_forced".into(), "1".into());
    let app = app_config(&pod);
    let side = container("side", 0, &["sleep", "3600"]);
    let data = pod.vol_dir.join("data");
    let node_net = ns(std::process::id(), "net").unwrap_or_default();

    let sb = r
        .step("RunPodSandbox: pod network, pod cgroup, sysctls", async {
            let sb = run_sandbox(x, &pod, Some(256 << 20)).await?;
            let (st, _) = cri.pod_status(&sb.id).await?;
            let ip = st.network.map(|n| n.ip).unwrap_or_default();
            ensure!(
                ip.starts_with("10.88.0."),
                "pod IP {ip:?} not from the CNI range 10.88.0.0/24"
            );
            ensure!(
                ns(sb.pid, "net")? != node_net,
                "sandbox in the node's network namespace"
            );
            Ok((sb, ip))
        })
        .await;
    let (sb, ip) = match sb {
        Some((s, ip)) => (Some(s), ip),
        None => (None, String::new()),
    };

    let app_id = r
        .step(
            "CreateContainer + StartContainer: app (limits, securityContext, emptyDir)",
            async {
                let sb = need(&sb, "ran the sandbox")?;
                std::fs::create_dir_all(&data)?;
                std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777))?;
                cri.image_status(spec::APP_IMAGE)
                    .await?
                    .context("app image missing")?;
                let id = cri.create_start(&sb.id, &app, &pod.config).await?;
                cri.wait_state(&id, ContainerState::ContainerRunning, 30)
                    .await?;
                Ok(id)
            },
        )
        .await;
    let side_id = r
        .step(
            "CreateContainer + StartContainer: side (defaults, no SIGTERM handler)",
            async {
                let sb = need(&sb, "ran the sandbox")?;
                let id = cri.create_start(&sb.id, &side, &pod.config).await?;
                cri.wait_state(&id, ContainerState::ContainerRunning, 30)
                    .await?;
                Ok(id)
            },
        )
        .await;
    let both = || -> Result<[(&str, &String); 2]> {
        Ok([
            ("app", need(&app_id, "started app")?),
            ("side", need(&side_id, "started side")?),
        ])
    };

    r.step(
        "namespaces: net, ipc, uts shared with the sandbox; pid, mnt own",
        async {
            let sb = need(&sb, "ran the sandbox")?;
            for (name, id) in both()? {
                let pid = cri.container_pid(id).await?;
                for k in ["net", "ipc", "uts"] {
                    expect_eq(
                        &format!("{name} {k} namespace"),
                        ns(pid, k)?,
                        ns(sb.pid, k)?,
                    )?;
                }
                for k in ["pid", "mnt"] {
                    ensure!(
                        ns(pid, k)? != ns(sb.pid, k)?,
                        "{name} shares the sandbox's {k} namespace"
                    );
                }
            }
            Ok(())
        },
    )
    .await;
    r.step("cgroups: each container in its pod's cgroup", async {
        for (name, id) in both()? {
            let pid = cri.container_pid(id).await?;
            let want = x.driver.container_cgroup(&pod.parent, id);
            expect_eq(&format!("{name} cgroup"), cgroup_of(pid)?, want.clone())?;
            let (_, info) = cri.container_status(id).await?;
            let path = info["runtimeSpec"]["linux"]["cgroupsPath"]
                .as_str()
                .unwrap_or("");
            expect_eq(
                &format!("{name} spec cgroupsPath"),
                path,
                x.driver.cgroups_path(&pod.parent, id).as_str(),
            )?;
        }
        Ok(())
    })
    .await;
    r.step(
        "limits: memory.max, cpu.max, cpu.weight, oom_score_adj",
        async {
            let id = need(&app_id, "started app")?;
            let cg = cgroup_of(cri.container_pid(id).await?)?;
            expect_eq(
                "memory.max",
                cg_read(&cg, "memory.max")?,
                MEMORY.to_string(),
            )?;
            expect_eq("cpu.max", cg_read(&cg, "cpu.max")?.as_str(), "50000 100000")?;
            check_weight(&cg, 512)?;
            let pid = cri.container_pid(id).await?;
            let adj = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))?;
            expect_eq("oom_score_adj", adj.trim(), "900")?;
            expect_eq(
                "pod memory.max",
                cg_read(&x.driver.pod_cgroup(&pod.parent), "memory.max")?,
                (256u64 << 20).to_string(),
            )?;
            Ok(())
        },
    )
    .await;
    r.step(
        "sysctls: the pod's values in its net and ipc namespaces only",
        async {
            let id = need(&app_id, "started app")?;
            let ping = cri
                .exec_ok(id, &["cat", "/proc/sys/net/ipv4/ping_group_range"])
                .await?;
            expect_eq(
                "ping_group_range",
                ping.split_whitespace().collect::<Vec<_>>(),
                vec!["0", "2000"],
            )?;
            let shm = cri
                .exec_ok(id, &["cat", "/proc/sys/kernel/shm_rmid_forced"])
                .await?;
            expect_eq("shm_rmid_forced", shm.trim(), "1")?;
            let node = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")?;
            ensure!(
                node.split_whitespace().collect::<Vec<_>>() != ["0", "2000"],
                "the node's ping_group_range changed too"
            );
            Ok(())
        },
    )
    .await;
    r.step(
        "ExecSync: exit code, stdout, stderr, the container's user and env",
        async {
            let id = need(&app_id, "started app")?;
            let (rc, out, err) = cri
                .exec_sync(id, &["sh", "-c", "echo out; echo err >&2; exit 3"])
                .await?;
            expect_eq("exit code", rc, 3)?;
            expect_eq("stdout", out.as_str(), "out\n")?;
            expect_eq("stderr", err.as_str(), "err\n")?;
            let id_out = cri.exec_ok(id, &["id"]).await?;
            ensure!(
                id_out.starts_with("uid=1000 gid=1000"),
                "exec runs as {id_out:?}, not uid 1000 gid 1000"
            );
            let env = cri.exec_ok(id, &["sh", "-c", "echo $GREETING"]).await?;
            expect_eq("env GREETING", env.trim(), "hello-from-env")?;
            Ok(())
        },
    )
    .await;
    r.step(
        "Exec streaming (WebSocket v4.channel.k8s.io): stdin, stdout, stderr, exit 5",
        async {
            let id = need(&app_id, "started app")?;
            let url = cri
                .exec_url(ExecRequest {
                    container_id: id.clone(),
                    cmd: [
                        "sh",
                        "-c",
                        "read l; echo \"got:$l\"; echo to-stderr >&2; exit 5",
                    ]
                    .map(String::from)
                    .to_vec(),
                    tty: false,
                    stdin: true,
                    stdout: true,
                    stderr: true,
                })
                .await?;
            let s = tokio::task::spawn_blocking(move || stream::exec(&url, b"ping\n")).await??;
            expect_eq("stdout", s.stdout.as_str(), "got:ping\n")?;
            expect_eq("stderr", s.stderr.as_str(), "to-stderr\n")?;
            expect_eq("exit code", s.exit_code()?, 5)
        },
    )
    .await;
    r.step(
        "runAsUser/runAsGroup/supplementalGroups: the process's credentials",
        async {
            let pid = cri.container_pid(need(&app_id, "started app")?).await?;
            expect_eq(
                "Uid",
                status(pid, "Uid")?.split_whitespace().collect::<Vec<_>>(),
                vec!["1000"; 4],
            )?;
            expect_eq(
                "Gid",
                status(pid, "Gid")?.split_whitespace().collect::<Vec<_>>(),
                vec!["1000"; 4],
            )?;
            let groups = status(pid, "Groups")?;
            ensure!(
                groups.split_whitespace().any(|g| g == "3000"),
                "Groups {groups:?} lacks 3000"
            );
            Ok(())
        },
    )
    .await;
    r.step(
        "capabilities: NET_RAW, CHOWN, SYS_CHROOT dropped from the bounding set",
        async {
            let app_pid = cri.container_pid(need(&app_id, "started app")?).await?;
            let side_pid = cri.container_pid(need(&side_id, "started side")?).await?;
            let (bnd, side_bnd) = (status(app_pid, "CapBnd")?, status(side_pid, "CapBnd")?);
            for (cap, bit) in [("NET_RAW", 13), ("CHOWN", 0), ("SYS_CHROOT", 18)] {
                ensure!(
                    !kernel::has_cap(&bnd, bit)?,
                    "app's CapBnd {bnd} still has {cap}"
                );
                ensure!(
                    kernel::has_cap(&side_bnd, bit)?,
                    "side's CapBnd {side_bnd} lacks {cap} (containerd's default set has it)"
                );
            }
            expect_eq(
                "app CapEff (uid 1000)",
                u64::from_str_radix(&status(app_pid, "CapEff")?, 16)?,
                0,
            )?;
            Ok(())
        },
    )
    .await;
    r.step(
        "RuntimeDefault seccomp: filter on, add_key refused (side: none)",
        async {
            let app = need(&app_id, "started app")?;
            let side = need(&side_id, "started side")?;
            expect_eq(
                "app Seccomp",
                status(cri.container_pid(app).await?, "Seccomp")?.as_str(),
                "2",
            )?;
            expect_eq(
                "side Seccomp",
                status(cri.container_pid(side).await?, "Seccomp")?.as_str(),
                "0",
            )?;
            let (rc, out, _) = cri.exec_sync(app, &["sysprobe", "add_key"]).await?;
            ensure!(
                rc != 0 && out.contains("Operation not permitted"),
                "add_key in app: exit {rc}, {out:?}"
            );
            let out = cri.exec_ok(side, &["sysprobe", "add_key"]).await?;
            ensure!(out.contains("add_key: ok"), "add_key in side: {out:?}");
            Ok(())
        },
    )
    .await;
    r.step(
        "allowPrivilegeEscalation: false: NoNewPrivs 1 (side: 0)",
        async {
            let app = cri.container_pid(need(&app_id, "started app")?).await?;
            let side = cri.container_pid(need(&side_id, "started side")?).await?;
            expect_eq("app NoNewPrivs", status(app, "NoNewPrivs")?.as_str(), "1")?;
            expect_eq("side NoNewPrivs", status(side, "NoNewPrivs")?.as_str(), "0")
        },
    )
    .await;
    r.step(
        "readOnlyRootFilesystem: / read-only, emptyDir shared with the node",
        async {
            let id = need(&app_id, "started app")?;
            let pid = cri.container_pid(id).await?;
            let root = kernel::mounted_at(pid, "/")?.context("no / in the app's mountinfo")?;
            ensure!(
                root.options.split(',').any(|o| o == "ro"),
                "/ mounted {}",
                root.options
            );
            let (rc, _, err) = cri.exec_sync(id, &["touch", "/probe"]).await?;
            ensure!(
                rc != 0 && err.contains("Read-only file system"),
                "touch /probe: exit {rc}, {err:?}"
            );
            let hello = kernel::wait_for(10, "/data/hello on the node", || {
                std::fs::read_to_string(data.join("hello")).ok()
            })
            .await?;
            expect_eq("hello", hello.as_str(), "hello from app\n")?;
            std::fs::write(data.join("from-node"), "node\n")?;
            expect_eq(
                "/data/from-node",
                cri.exec_ok(id, &["cat", "/data/from-node"]).await?.as_str(),
                "node\n",
            )
        },
    )
    .await;
    r.step(
        "pod network: pod IP on eth0, gateway 10.88.0.1 reachable",
        async {
            let id = need(&side_id, "started side")?;
            let addr = cri
                .exec_ok(id, &["ip", "-4", "-o", "addr", "show", "eth0"])
                .await?;
            ensure!(
                addr.contains(&format!("inet {ip}/")),
                "eth0 {addr:?} lacks the pod IP {ip}"
            );
            cri.exec_ok(id, &["ping", "-c", "1", "-W", "5", "10.88.0.1"])
                .await
                .map(|_| ())
        },
    )
    .await;
    r.step(
        "ContainerStatus: RUNNING, pid, mounts, log path, image",
        async {
            let id = need(&app_id, "started app")?;
            let (st, info) = cri.container_status(id).await?;
            expect_eq("state", st.state, ContainerState::ContainerRunning as i32)?;
            ensure!(
                st.started_at > st.created_at && st.created_at > 0,
                "timestamps {} {}",
                st.created_at,
                st.started_at
            );
            expect_eq("log_path", PathBuf::from(&st.log_path), pod.log_file(&app))?;
            ensure!(
                st.mounts.iter().any(|m| m.container_path == "/data"),
                "mounts {:?}",
                st.mounts
            );
            let img = st.image.map(|i| i.image).unwrap_or_default();
            ensure!(img.contains("busybox"), "image {img:?}");
            let pid = info["pid"].as_u64().context("no pid")? as u32;
            ensure!(alive(pid), "reported pid {pid} is not running");
            expect_eq(
                "pid's cgroup",
                cgroup_of(pid)?,
                x.driver.container_cgroup(&pod.parent, id),
            )
        },
    )
    .await;
    r.step("ListContainers: by pod, by state, by label", async {
        let sb = need(&sb, "ran the sandbox")?;
        let [(_, app), (_, side)] = both()?;
        let by_pod = ContainerFilter {
            pod_sandbox_id: sb.id.clone(),
            ..Default::default()
        };
        let mut ids: Vec<String> = cri
            .list_containers(by_pod)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        ids.sort();
        let mut want = vec![app.clone(), side.clone()];
        want.sort();
        expect_eq("containers of the pod", ids, want)?;
        let running = ContainerFilter {
            pod_sandbox_id: sb.id.clone(),
            state: Some(ContainerStateValue {
                state: ContainerState::ContainerRunning as i32,
            }),
            ..Default::default()
        };
        expect_eq("running", cri.list_containers(running).await?.len(), 2)?;
        let labelled = ContainerFilter {
            label_selector: [("role".to_string(), "app".to_string())].into(),
            ..Default::default()
        };
        let l: Vec<String> = cri
            .list_containers(labelled)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        expect_eq("role=app", l, vec![app.clone()])
    })
    .await;
    r.step(
        "ContainerStats, ListContainerStats: cpu and memory from the cgroup",
        async {
            let sb = need(&sb, "ran the sandbox")?;
            let id = need(&app_id, "started app")?;
            let s = cri.stats(id).await?;
            let cpu = s
                .cpu
                .and_then(|c| c.usage_core_nano_seconds)
                .map(|v| v.value)
                .unwrap_or(0);
            let mem = s
                .memory
                .and_then(|m| m.working_set_bytes)
                .map(|v| v.value)
                .unwrap_or(0);
            ensure!(cpu > 0, "cpu usage {cpu}");
            ensure!(
                mem > 0 && mem <= MEMORY as u64,
                "memory working set {mem} (limit {MEMORY})"
            );
            let all = cri.list_stats(&sb.id).await?;
            expect_eq("stats entries for the pod", all.len(), 2)
        },
    )
    .await;
    r.step(
        "UpdateContainerResources: new memory.max, cpu.max, cpu.weight",
        async {
            let id = need(&app_id, "started app")?;
            let res = LinuxContainerResources {
                memory_limit_in_bytes: MEMORY_UPDATED,
                cpu_period: 100_000,
                cpu_quota: 20_000,
                cpu_shares: 256,
                oom_score_adj: 900,
                ..Default::default()
            };
            cri.update(id, res).await?;
            let cg = cgroup_of(cri.container_pid(id).await?)?;
            expect_eq(
                "memory.max",
                cg_read(&cg, "memory.max")?,
                MEMORY_UPDATED.to_string(),
            )?;
            expect_eq("cpu.max", cg_read(&cg, "cpu.max")?.as_str(), "20000 100000")?;
            check_weight(&cg, 256)
        },
    )
    .await;
    r.step(
        "container log: stdout and stderr lines in the CRI log file",
        async {
            need(&app_id, "started app")?;
            let f = pod.log_file(&app);
            kernel::wait_for(10, "both log lines", || {
                let s = std::fs::read_to_string(&f).ok()?;
                (has_log_line(&s, "stdout", "app-started")
                    && has_log_line(&s, "stderr", "app-stderr"))
                .then_some(())
            })
            .await
            .with_context(|| {
                format!(
                    "{}: {:?}",
                    f.display(),
                    std::fs::read_to_string(&f).unwrap_or_default()
                )
            })
        },
    )
    .await;
    r.step(
        "OOM: over its 32 MiB memory.max, killed (137, the kernel's count); reason OOMKilled",
        async {
            let sb = need(&sb, "ran the sandbox")?;
            // dd's 64 MiB block buffer is filled from /dev/zero: every page is touched. It
            // starts 2 s late: the shim watches memory.events only once StartContainer
            // returned, so an OOM kill before that can go unreported (a race of the shim).
            let mut c = container(
                "hog",
                0,
                &[
                    "sh",
                    "-c",
                    "sleep 2; exec dd if=/dev/zero of=/dev/null bs=64M count=1",
                ],
            );
            resources(&mut c).memory_limit_in_bytes = 32 << 20;
            let kills = || kernel::memory_event(&x.driver.pod_cgroup(&pod.parent), "oom_kill");
            let before = kills()?;
            let id = cri.create_start(&sb.id, &c, &pod.config).await?;
            // While it sleeps: its cgroup, and what the shim (its parent) watches there.
            let pid = cri.container_pid(&id).await?;
            let cg = cgroup_of(pid)?;
            expect_eq(
                "memory.max",
                cg_read(&cg, "memory.max")?.as_str(),
                "33554432",
            )?;
            let watch = kernel::shim_watch(kernel::ppid(pid)?, &cg);
            let st = cri
                .wait_state(&id, ContainerState::ContainerExited, 60)
                .await?;
            expect_eq("exit code", st.exit_code, 137)?;
            let after = kills()?;
            ensure!(
                after > before,
                "the pod's memory.events shows no OOM kill ({before} -> {after})"
            );
            // The shim's OOM event (from the cgroup's memory.events) may land after the exit.
            let mut reason = st.reason;
            for _ in 0..50 {
                if reason == "OOMKilled" {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                reason = cri.container_status(&id).await?.0.reason;
            }
            cri.remove(&id).await?;
            if reason == "Error" && x.driver == Driver::Systemd {
                // containerd 1.6's shim reads memory.events only after inotify says it
                // changed; systemd removes an emptied scope's cgroup at once, and when that
                // comes first the shim reports no OOM (runc#5071, containerd#12260; the fix
                // is in containerd 2.x only, whose own CI skips this case under systemd).
                // The kill itself is verified above: exit 137 and the kernel's count.
                println!(
                    "     | reason Error, not OOMKilled: systemd removed {cg} before containerd's \
                     shim read its memory.events (containerd 1.6's race, not the runtime's); {watch}"
                );
                return Ok(());
            }
            expect_eq("reason", reason.as_str(), "OOMKilled")
                .with_context(|| format!("the kernel OOM-killed it in {cg}; {watch}"))
        },
    )
    .await;
    r.step(
        "restart: exit 3, CreateContainer again (attempt 1) in the same sandbox",
        async {
            let sb = need(&sb, "ran the sandbox")?;
            let mut ids = Vec::new();
            for attempt in 0..2 {
                let c = container("crash", attempt, &["sh", "-c", "echo crash-run; exit 3"]);
                let id = cri.create_start(&sb.id, &c, &pod.config).await?;
                let st = cri
                    .wait_state(&id, ContainerState::ContainerExited, 60)
                    .await?;
                expect_eq(&format!("attempt {attempt} exit code"), st.exit_code, 3)?;
                expect_eq(
                    &format!("attempt {attempt} reason"),
                    st.reason.as_str(),
                    "Error",
                )?;
                let f = pod.log_file(&c);
                kernel::wait_for(10, &format!("crash-run in {}", f.display()), || {
                    let log = std::fs::read_to_string(&f).ok()?;
                    has_log_line(&log, "stdout", "crash-run").then_some(())
                })
                .await?;
                ids.push(id);
            }
            let (st, _) = cri.pod_status(&sb.id).await?;
            expect_eq(
                "sandbox state",
                st.state,
                PodSandboxState::SandboxReady as i32,
            )?;
            for id in &ids {
                cri.remove(id).await?;
            }
            Ok(())
        },
    )
    .await;
    r.step(
        "StopContainer with a SIGTERM handler: handler runs, exit 7, within grace",
        async {
            let id = need(&app_id, "started app")?;
            let (st, _) = cri.stop_exited(id, 30).await?;
            // 7 comes from the handler: a SIGKILL after the grace period would give 137.
            expect_eq("exit code", st.exit_code, 7)?;
            // containerd copies the container's output to the log file on its own time: the
            // handler's last line may land after the exit is reported.
            let f = pod.log_file(&app);
            kernel::wait_for(10, &format!("got-TERM in {}", f.display()), || {
                let log = std::fs::read_to_string(&f).ok()?;
                has_log_line(&log, "stdout", "got-TERM").then_some(())
            })
            .await?;
            Ok(())
        },
    )
    .await;
    r.step(
        "StopContainer without a handler: SIGKILL after the 2 s grace (137)",
        async {
            let id = need(&side_id, "started side")?;
            let (st, took) = cri.stop_exited(id, 2).await?;
            expect_eq("exit code", st.exit_code, 137)?;
            ensure!(
                took >= 1.9,
                "stop took {took:.1}s: PID 1 without a handler should ignore SIGTERM"
            );
            Ok(())
        },
    )
    .await;
    r.step(
        "RemoveContainer: containers, their cgroups and runtime state gone",
        async {
            let sb = need(&sb, "ran the sandbox")?;
            for (name, id) in both()? {
                cri.remove(id).await?;
                let cg = kernel::cg_path(&x.driver.container_cgroup(&pod.parent, id));
                ensure!(
                    !cg.exists(),
                    "{name}'s cgroup {} still exists",
                    cg.display()
                );
                if let Some(root) = &x.runtime_root {
                    ensure!(
                        !root.join(id).exists(),
                        "{name}'s runtime state {} still exists",
                        root.join(id).display()
                    );
                }
            }
            let left = cri
                .list_containers(ContainerFilter {
                    pod_sandbox_id: sb.id.clone(),
                    ..Default::default()
                })
                .await?;
            ensure!(left.is_empty(), "containers left in the pod: {left:?}");
            Ok(())
        },
    )
    .await;
    stop_and_remove(x, r, "web", &sb, &pod).await;
}
