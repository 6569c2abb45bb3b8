//! The special pods: shareProcessNamespace, host network, volume mount propagation (with a
//! privileged container), a `.slice` CgroupParent under the cgroupfs driver; and the final
//! check that the replay left nothing behind.

use crate::cgroup::Qos;
use crate::kernel::{self, alive, cgroup_of, ns, status};
use crate::replay::{run_sandbox, stop_and_remove, Ctx, Sandbox};
use crate::report::{expect_eq, need, Report};
use crate::spec::{self, container, security, volume, Pod};
use anyhow::{ensure, Result};
use k8s_cri::v1::*;

fn last_nspid(pid: u32) -> Result<String> {
    Ok(status(pid, "NSpid")?
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string())
}

pub async fn shared_pid(x: &Ctx<'_>, r: &mut Report) {
    let cri = x.cri;
    let mut pod = Pod::new(&x.work, &x.handler, "pidshare", x.driver, Qos::BestEffort);
    pod.ns_options().pid = NamespaceMode::Pod as i32;
    let mut cs = Vec::new();
    for (name, secs) in [("a", "3600"), ("b", "3601")] {
        let mut c = container(name, 0, &["sleep", secs]);
        security(&mut c)
            .namespace_options
            .get_or_insert_with(Default::default)
            .pid = NamespaceMode::Pod as i32;
        cs.push(c);
    }
    let got = r
        .step(
            "shareProcessNamespace: two containers in the sandbox's PID namespace",
            async {
                let sb = run_sandbox(x, &pod, None).await?;
                let mut ids = Vec::new();
                for c in &cs {
                    ids.push(cri.create_start(&sb.id, c, &pod.config).await?);
                }
                expect_eq("pause's pid in the pod", last_nspid(sb.pid)?.as_str(), "1")?;
                for id in &ids {
                    let pid = cri.container_pid(id).await?;
                    expect_eq("pid namespace", ns(pid, "pid")?, ns(sb.pid, "pid")?)?;
                    ensure!(
                        last_nspid(pid)? != "1",
                        "container init {pid} is PID 1 of the pod"
                    );
                }
                let ps = cri.exec_ok(&ids[1], &["ps", "-o", "pid,args"]).await?;
                let pid1 = ps
                    .lines()
                    .find(|l| l.split_whitespace().next() == Some("1"));
                ensure!(
                    pid1.is_some_and(|l| l.contains("/catatonit -P")),
                    "PID 1 is not the pause process:\n{ps}"
                );
                ensure!(
                    ps.contains("sleep 3600") && ps.contains("sleep 3601"),
                    "b does not see both sleeps:\n{ps}"
                );
                Ok((sb, ids))
            },
        )
        .await;
    r.step(
        "shareProcessNamespace: StopContainer's SIGTERM kills a non-init process (143)",
        async {
            let (_, ids) = need(&got, "started the pod")?;
            // 143: SIGTERM itself ended it (the SIGKILL after the grace period gives 137).
            let (st, _) = cri.stop_exited(&ids[0], 30).await?;
            expect_eq("exit code", st.exit_code, 143)?;
            Ok(())
        },
    )
    .await;
    finish(x, r, "pidshare", got, &pod).await;
}

pub async fn host_network(x: &Ctx<'_>, r: &mut Report) {
    let cri = x.cri;
    let mut pod = Pod::new(&x.work, &x.handler, "hostnet", x.driver, Qos::BestEffort);
    pod.ns_options().network = NamespaceMode::Node as i32;
    // kubelet leaves the hostname out for host-network pods: they keep the node's.
    pod.config.hostname.clear();
    let mut c = container("c", 0, &["sleep", "3600"]);
    security(&mut c)
        .namespace_options
        .get_or_insert_with(Default::default)
        .network = NamespaceMode::Node as i32;
    let me = std::process::id();
    let got = r
        .step(
            "host network pod: sandbox and container in the node's net and uts namespaces",
            async {
                let sb = run_sandbox(x, &pod, None).await?;
                let id = cri.create_start(&sb.id, &c, &pod.config).await?;
                let pid = cri.container_pid(&id).await?;
                for (what, p) in [("sandbox", sb.pid), ("container", pid)] {
                    for k in ["net", "uts"] {
                        expect_eq(&format!("{what} {k} namespace"), ns(p, k)?, ns(me, k)?)?;
                    }
                    ensure!(
                        ns(p, "ipc")? != ns(me, "ipc")?,
                        "{what} in the node's ipc namespace"
                    );
                }
                let node = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
                let seen = cri.exec_ok(&id, &["hostname"]).await?;
                expect_eq("hostname", seen.trim(), node.trim())?;
                let links = cri.exec_ok(&id, &["ip", "-o", "link"]).await?;
                ensure!(
                    links.contains("cri0"),
                    "the node's bridge cri0 not visible:\n{links}"
                );
                Ok((sb, vec![id]))
            },
        )
        .await;
    finish(x, r, "hostnet", got, &pod).await;
}

/// The three kinds of volume propagation, each on a directory of the node.
const PROPAGATIONS: [(&str, MountPropagation); 3] = [
    ("none", MountPropagation::PropagationPrivate),
    ("h2c", MountPropagation::PropagationHostToContainer),
    ("bidir", MountPropagation::PropagationBidirectional),
];

pub async fn propagation(x: &Ctx<'_>, r: &mut Report) {
    let cri = x.cri;
    let mut pod = Pod::new(&x.work, &x.handler, "prop", x.driver, Qos::BestEffort);
    pod.sandbox_security().privileged = true;
    let mut c = container("prop", 0, &["sleep", "3600"]);
    security(&mut c).privileged = true;
    for (name, p) in PROPAGATIONS {
        c.mounts
            .push(volume(&pod.vol_dir.join(name), &format!("/mnt/{name}"), p));
    }
    let vol = pod.vol_dir.clone();
    let me = std::process::id();
    let got = r
        .step(
            "privileged container with three volumes: all capabilities, no seccomp",
            async {
                for (name, _) in PROPAGATIONS {
                    for sub in ["sub", "fromc"] {
                        std::fs::create_dir_all(vol.join(name).join(sub))?;
                    }
                }
                let sb = run_sandbox(x, &pod, None).await?;
                let id = cri.create_start(&sb.id, &c, &pod.config).await?;
                let pid = cri.container_pid(&id).await?;
                expect_eq("CapEff", status(pid, "CapEff")?, status(me, "CapEff")?)?;
                expect_eq("Seccomp", status(pid, "Seccomp")?.as_str(), "0")?;
                Ok((sb, vec![id]))
            },
        )
        .await;
    let pid = async {
        let (_, ids) = need(&got, "started the container")?;
        cri.container_pid(&ids[0]).await
    };
    let pid = pid.await.ok();
    r.step(
        "volumes' propagation: None private, HostToContainer slave, Bidirectional shared",
        async {
            let pid = *need(&pid, "started the container")?;
            let mut bad = Vec::new();
            for (name, want) in [("none", ""), ("h2c", "master:"), ("bidir", "shared:")] {
                let Some(m) = kernel::mounted_at(pid, &format!("/mnt/{name}"))? else {
                    bad.push(format!("/mnt/{name} not mounted"));
                    continue;
                };
                let ok = if want.is_empty() {
                    m.propagation.is_empty()
                } else {
                    m.propagation.contains(want)
                };
                if !ok {
                    let want = if want.is_empty() { "private" } else { want };
                    bad.push(format!(
                        "/mnt/{name} has {:?}, expected {want}",
                        m.propagation
                    ));
                }
            }
            all_of(bad)
        },
    )
    .await;
    r.step("propagation node -> container: HostToContainer and Bidirectional see it, None not", async {
        let pid = *need(&pid, "started the container")?;
        for (name, _) in PROPAGATIONS {
            kernel::mount_tmpfs(&format!("cri-node-{name}"), &vol.join(name).join("sub"))?;
        }
        let mut bad = Vec::new();
        for (name, want) in [("none", false), ("h2c", true), ("bidir", true)] {
            // The node's tmpfs, by its source name (not some other mount at that place).
            let seen = kernel::mounted_at(pid, &format!("/mnt/{name}/sub"))?
                .is_some_and(|m| m.source == format!("cri-node-{name}"));
            if seen != want {
                bad.push(format!("/mnt/{name}/sub: the node's mount seen in the container: {seen}, expected {want}"));
            }
        }
        all_of(bad)
    })
    .await;
    r.step(
        "propagation container -> node: only Bidirectional reaches the node",
        async {
            let (_, ids) = need(&got, "started the container")?;
            let mut bad = Vec::new();
            for (name, want) in [("none", false), ("h2c", false), ("bidir", true)] {
                let dir = format!("/mnt/{name}/fromc");
                cri.exec_ok(
                    &ids[0],
                    &["mount", "-t", "tmpfs", &format!("cri-ctr-{name}"), &dir],
                )
                .await?;
                let at = vol.join(name).join("fromc");
                let seen = kernel::mounted_at(me, &at.to_string_lossy())?.is_some();
                if seen != want {
                    bad.push(format!(
                        "{}: the container's mount seen on the node: {seen}, expected {want}",
                        at.display()
                    ));
                }
            }
            all_of(bad)
        },
    )
    .await;
    finish(x, r, "prop", got, &pod).await;
    r.step(
        "propagation pod: the node keeps only its own and the Bidirectional mounts",
        async {
            let mut left = kernel::umount_below(&vol)?;
            left.sort();
            let mut want: Vec<String> = ["none/sub", "h2c/sub", "bidir/sub", "bidir/fromc"]
                .iter()
                .map(|p| vol.join(p).to_string_lossy().into_owned())
                .collect();
            want.sort();
            expect_eq("mounts under the volumes dir", left, want)
        },
    )
    .await;
}

pub async fn slice_parent(x: &Ctx<'_>, r: &mut Report) {
    if x.driver == crate::cgroup::Driver::Systemd {
        // Every pod's parent is a slice there, and means one.
        return;
    }
    let cri = x.cri;
    let probe = Pod::new(&x.work, &x.handler, "slice", x.driver, Qos::BestEffort);
    let slice = format!(
        "kubepods-besteffort-pod{}.slice",
        probe.uid.replace('-', "_")
    );
    let pod = Pod::with_parent(
        &x.work,
        &x.handler,
        "slice",
        probe.uid.clone(),
        slice.clone(),
    );
    let c = container("c", 0, &["sleep", "3600"]);
    let got = r
        .step(
            ".slice CgroupParent, cgroupfs: cgroupsPath slice:cri-containerd:<id>",
            async {
                let sb = run_sandbox(x, &pod, None).await?;
                let id = cri.create_start(&sb.id, &c, &pod.config).await?;
                let pid = cri.container_pid(&id).await?;
                let mut dirs = Vec::new();
                for (what, cid, p) in [("sandbox", &sb.id, sb.pid), ("container", &id, pid)] {
                    let info = if what == "sandbox" {
                        cri.pod_status(cid).await?.1
                    } else {
                        cri.container_status(cid).await?.1
                    };
                    let path = info["runtimeSpec"]["linux"]["cgroupsPath"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    expect_eq(
                        &format!("{what} cgroupsPath"),
                        path.clone(),
                        format!("{slice}:cri-containerd:{cid}"),
                    )?;
                    // Without the systemd driver the runtime takes the string as a directory
                    // name relative to its own cgroup's parent (runc's rule); the runtime's own
                    // cgroup is its caller's, the shim's: the process's parent.
                    let shim = cgroup_of(kernel::ppid(p)?)?;
                    let base = shim.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    let want = format!("{base}/{path}");
                    expect_eq(&format!("{what} cgroup"), cgroup_of(p)?, want.clone())?;
                    dirs.push(want);
                }
                Ok((sb, vec![id], dirs))
            },
        )
        .await;
    let dirs = got.as_ref().map(|g| g.2.clone());
    finish(x, r, "slice", got.map(|(s, i, _)| (s, i)), &pod).await;
    r.step(".slice pod: its cgroups removed", async {
        let dirs = need(&dirs, "ran the pod")?;
        for d in dirs {
            ensure!(!kernel::cg_path(d).exists(), "cgroup {d} still exists");
        }
        Ok(())
    })
    .await;
}

/// Fails with every mismatch found, not only the first.
fn all_of(bad: Vec<String>) -> Result<()> {
    ensure!(bad.is_empty(), "{}", bad.join("; "));
    Ok(())
}

/// The end of a pod: its containers stopped and removed (one step), then StopPodSandbox and
/// RemovePodSandbox.
async fn finish(
    x: &Ctx<'_>,
    r: &mut Report,
    what: &str,
    got: Option<(Sandbox, Vec<String>)>,
    pod: &Pod,
) {
    let (sb, ids) = match got {
        Some((s, ids)) => (Some(s), Some(ids)),
        None => (None, None),
    };
    r.step(
        &format!("{what} pod: stop and remove its containers"),
        remove_all(x, ids),
    )
    .await;
    stop_and_remove(x, r, what, &sb, pod).await;
}

/// StopContainer (if running) + RemoveContainer for each, checking their cgroups go.
async fn remove_all(x: &Ctx<'_>, ids: Option<Vec<String>>) -> Result<()> {
    let ids = need(&ids, "started the containers")?;
    for id in ids {
        let (st, info) = x.cri.container_status(id).await?;
        let pid = info["pid"].as_u64().unwrap_or(0) as u32;
        let cg = if pid > 0 && alive(pid) {
            Some(cgroup_of(pid)?)
        } else {
            None
        };
        if st.state == ContainerState::ContainerRunning as i32 {
            x.cri.stop_for_teardown(id, 2).await?;
        }
        x.cri.remove(id).await?;
        if let Some(cg) = cg {
            ensure!(
                !kernel::cg_path(&cg).exists(),
                "cgroup {cg} of {id} still exists"
            );
        }
    }
    Ok(())
}

/// The last step: no pod of this handler left in containerd, no mount under the work
/// directory, no pod cgroup. Whatever a failed step left is torn down here, so the next
/// handler starts clean, and the step fails.
pub async fn cleanup(x: &Ctx<'_>, r: &mut Report) {
    r.step(
        "cleanup: no pod, mount, pod cgroup or runtime state left",
        async {
            let mut left = Vec::new();
            for p in x.cri.list_pods((spec::LABEL, &x.handler)).await? {
                left.push(format!(
                    "pod {}",
                    p.metadata.map(|m| m.name).unwrap_or_default()
                ));
                x.cri.teardown_pod(&p.id, 0).await?;
            }
            for m in kernel::umount_below(&x.work)? {
                left.push(format!("mount {m}"));
            }
            for d in x.driver.qos_cgroups() {
                if let Ok(rd) = std::fs::read_dir(kernel::cg_path(d)) {
                    for e in rd.flatten().filter(|e| e.path().is_dir()) {
                        left.push(format!("cgroup {d}/{}", e.file_name().to_string_lossy()));
                        x.driver.remove_leftover(&e.path());
                    }
                }
            }
            x.driver.remove_qos_cgroups();
            if let Some(root) = &x.runtime_root {
                if let Ok(rd) = std::fs::read_dir(root) {
                    for e in rd.flatten() {
                        left.push(format!("runtime state {}", e.path().display()));
                    }
                }
            }
            ensure!(left.is_empty(), "left behind: {}", left.join(", "));
            Ok(())
        },
    )
    .await;
}
