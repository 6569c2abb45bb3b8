//! The replay for one RuntimeClass handler: the node checks, then the main pod (web.rs),
//! then the special pods (pods.rs), then a check that nothing of the replay is left; and the
//! sandbox lifecycle every pod goes through (RunPodSandbox, StopPodSandbox, RemovePodSandbox
//! with what the kernel must show after each).

use crate::cgroup::Driver;
use crate::cri::Cri;
use crate::kernel::{self, alive, cgroup_of};
use crate::report::{expect_eq, need, Report};
use crate::spec::{self, Pod};
use crate::{pods, web, Args};
use anyhow::{ensure, Context, Result};
use k8s_cri::v1::*;
use std::path::PathBuf;

/// What every scenario needs.
pub struct Ctx<'a> {
    pub cri: &'a Cri,
    pub handler: String,
    pub driver: Driver,
    pub work: PathBuf,
    /// The runtime's --root for the k8s.io namespace: a container's state lives in <root>/<id>.
    pub runtime_root: Option<PathBuf>,
}

/// A running sandbox as the kernel shows it.
pub struct Sandbox {
    pub id: String,
    pub pid: u32,
}

pub async fn replay(cri: &Cri, a: &Args) -> Result<usize> {
    let x = Ctx {
        cri,
        handler: a.handlers[0].clone(),
        driver: a.driver,
        work: a.work.join(&a.handlers[0]),
        runtime_root: a.runtime_root.clone(),
    };
    std::fs::create_dir_all(&x.work).with_context(|| format!("mkdir {}", x.work.display()))?;
    let mut r = Report::new(&x.handler, a.results.clone());

    r.step("Version: containerd speaks CRI v1", async {
        let v = cri.version().await?;
        expect_eq("runtime_name", v.runtime_name.as_str(), "containerd")?;
        expect_eq("runtime_api_version", v.runtime_api_version.as_str(), "v1")?;
        Ok(())
    })
    .await;
    r.step("Status: RuntimeReady and NetworkReady", async {
        let st = cri.status().await?.status.context("no status")?;
        for want in ["RuntimeReady", "NetworkReady"] {
            let c = st.conditions.iter().find(|c| c.r#type == want);
            ensure!(
                c.is_some_and(|c| c.status),
                "{want} not true: {:?}",
                st.conditions
            );
        }
        Ok(())
    })
    .await;
    r.step("ImageStatus: local app and pause images present", async {
        for img in [spec::APP_IMAGE, spec::PAUSE_IMAGE] {
            cri.image_status(img)
                .await?
                .with_context(|| format!("{img} not in containerd's k8s.io namespace"))?;
        }
        Ok(())
    })
    .await;

    web::web(&x, &mut r).await;
    pods::shared_pid(&x, &mut r).await;
    pods::host_network(&x, &mut r).await;
    pods::propagation(&x, &mut r).await;
    pods::slice_parent(&x, &mut r).await;
    pods::cleanup(&x, &mut r).await;
    r.summary();
    Ok(r.failed)
}

/// A `.slice` CgroupParent under the cgroupfs driver (pods::slice_parent): no pod cgroup of
/// kubelet's, and the runtime's cgroup is checked there.
fn literal_slice(x: &Ctx<'_>, pod: &Pod) -> bool {
    x.driver == Driver::Cgroupfs && pod.parent.ends_with(".slice")
}

/// Runs a sandbox for `pod` as kubelet does (pod cgroup and log dir first) and checks that
/// its pause process sits in the pod's cgroup.
pub async fn run_sandbox(x: &Ctx<'_>, pod: &Pod, memory_max: Option<u64>) -> Result<Sandbox> {
    if !literal_slice(x, pod) {
        x.driver.create_pod_cgroup(&pod.parent, memory_max)?;
    }
    pod.make_dirs()?;
    let id = x.cri.run_pod(&pod.config, &x.handler).await?;
    let (st, info) = x.cri.pod_status(&id).await?;
    expect_eq(
        "sandbox state",
        st.state,
        PodSandboxState::SandboxReady as i32,
    )?;
    let pid = info["pid"]
        .as_u64()
        .context("sandbox: no pid in the verbose status")? as u32;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))?;
    expect_eq(
        "sandbox process",
        exe.to_string_lossy().as_ref(),
        "/catatonit",
    )?;
    if !literal_slice(x, pod) {
        expect_eq(
            "sandbox cgroup",
            cgroup_of(pid)?,
            x.driver.container_cgroup(&pod.parent, &id),
        )?;
    }
    Ok(Sandbox { id, pid })
}

/// StopPodSandbox and RemovePodSandbox as separate steps, with what the kernel must show
/// after each.
pub async fn stop_and_remove(
    x: &Ctx<'_>,
    r: &mut Report,
    what: &str,
    sb: &Option<Sandbox>,
    pod: &Pod,
) {
    let cri = x.cri;
    r.step(
        &format!("StopPodSandbox ({what}): pause gone, netns released"),
        async {
            let sb = need(sb, "ran the sandbox")?;
            let (_, info) = cri.pod_status(&sb.id).await?;
            let netns = info["runtimeSpec"]["linux"]["namespaces"]
                .as_array()
                .and_then(|v| v.iter().find(|n| n["type"] == "network"))
                .and_then(|n| n["path"].as_str())
                .map(String::from);
            cri.stop_pod(&sb.id).await?;
            let (st, _) = cri.pod_status(&sb.id).await?;
            expect_eq("state", st.state, PodSandboxState::SandboxNotready as i32)?;
            ensure!(!alive(sb.pid), "pause {} still running", sb.pid);
            if let Some(p) = netns {
                ensure!(
                    !std::path::Path::new(&p).exists(),
                    "network namespace {p} still there"
                );
            }
            Ok(())
        },
    )
    .await;
    r.step(
        &format!("RemovePodSandbox ({what}): gone, pod cgroup empty"),
        async {
            let sb = need(sb, "ran the sandbox")?;
            cri.remove_pod(&sb.id).await?;
            let pods = cri.list_pods((spec::LABEL, &x.handler)).await?;
            ensure!(!pods.iter().any(|p| p.id == sb.id), "sandbox still listed");
            if literal_slice(x, pod) {
                return Ok(());
            }
            let cg = kernel::cg_path(&x.driver.container_cgroup(&pod.parent, &sb.id));
            ensure!(!cg.exists(), "sandbox cgroup {} still exists", cg.display());
            x.driver.remove_pod_cgroup(&pod.parent)
        },
    )
    .await;
}

/// A CRI log line: `<RFC 3339 time> <stream> <F|P> <text>`.
pub fn has_log_line(log: &str, stream: &str, text: &str) -> bool {
    log.lines().any(|l| {
        let mut f = l.splitn(4, ' ');
        let (t, s, tag, msg) = (f.next(), f.next(), f.next(), f.next());
        t.is_some_and(|t| t.contains('T') && t.len() > 20)
            && s == Some(stream)
            && tag == Some("F")
            && msg == Some(text)
    })
}
