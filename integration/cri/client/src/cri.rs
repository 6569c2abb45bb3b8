//! The CRI calls kubelet makes, over containerd's gRPC socket, one request at a time. Each
//! error names the call that failed and carries containerd's message (which holds the OCI
//! runtime's error when the runtime failed).

use anyhow::{anyhow, Context, Result};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint, Uri};

pub struct Cri {
    rt: RuntimeServiceClient<Channel>,
    img: ImageServiceClient<Channel>,
}

/// A CRI call's failure, named.
fn call<T>(name: &str, r: std::result::Result<tonic::Response<T>, tonic::Status>) -> Result<T> {
    r.map(|r| r.into_inner())
        .map_err(|s| anyhow!("CRI {name}: {} ({:?})", s.message(), s.code()))
}

/// The JSON containerd puts in a verbose status's info["info"]: pid, runtimeSpec, …
fn verbose_info(info: &std::collections::HashMap<String, String>) -> Result<Value> {
    let s = info
        .get("info")
        .context("verbose status without info[\"info\"]")?;
    serde_json::from_str(s).context("verbose status info is not JSON")
}

fn pid_in(info: &Value, what: &str) -> Result<u32> {
    info["pid"]
        .as_u64()
        .filter(|p| *p > 0)
        .map(|p| p as u32)
        .with_context(|| format!("{what}: no pid in the verbose status"))
}

impl Cri {
    pub async fn connect(socket: &Path) -> Result<Cri> {
        let path = socket.to_path_buf();
        let channel = Endpoint::try_from("http://[::]:0")?
            .timeout(Duration::from_secs(170))
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await
            .with_context(|| format!("connect to {}", socket.display()))?;
        Ok(Cri {
            rt: RuntimeServiceClient::new(channel.clone()),
            img: ImageServiceClient::new(channel),
        })
    }

    fn rt(&self) -> RuntimeServiceClient<Channel> {
        self.rt.clone()
    }

    pub async fn version(&self) -> Result<VersionResponse> {
        let req = VersionRequest {
            version: "v1".into(),
        };
        call("Version", self.rt().version(req).await)
    }

    pub async fn status(&self) -> Result<StatusResponse> {
        call(
            "Status",
            self.rt().status(StatusRequest { verbose: false }).await,
        )
    }

    /// kubelet asks for the image before every container (pull policy IfNotPresent).
    pub async fn image_status(&self, image: &str) -> Result<Option<Image>> {
        let req = ImageStatusRequest {
            image: Some(ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            verbose: false,
        };
        Ok(call("ImageStatus", self.img.clone().image_status(req).await)?.image)
    }

    pub async fn run_pod(&self, config: &PodSandboxConfig, handler: &str) -> Result<String> {
        let req = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        };
        Ok(call("RunPodSandbox", self.rt().run_pod_sandbox(req).await)?.pod_sandbox_id)
    }

    /// The sandbox's status and containerd's verbose info (pid, runtimeSpec).
    pub async fn pod_status(&self, id: &str) -> Result<(PodSandboxStatus, Value)> {
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: true,
        };
        let r = call("PodSandboxStatus", self.rt().pod_sandbox_status(req).await)?;
        let st = r.status.context("PodSandboxStatus without status")?;
        Ok((st, verbose_info(&r.info)?))
    }

    pub async fn list_pods(&self, label: (&str, &str)) -> Result<Vec<PodSandbox>> {
        let req = ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                label_selector: [(label.0.to_string(), label.1.to_string())].into(),
                ..Default::default()
            }),
        };
        Ok(call("ListPodSandbox", self.rt().list_pod_sandbox(req).await)?.items)
    }

    pub async fn stop_pod(&self, id: &str) -> Result<()> {
        let req = StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        call("StopPodSandbox", self.rt().stop_pod_sandbox(req).await).map(|_| ())
    }

    pub async fn remove_pod(&self, id: &str) -> Result<()> {
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        call("RemovePodSandbox", self.rt().remove_pod_sandbox(req).await).map(|_| ())
    }

    pub async fn create(
        &self,
        pod_id: &str,
        config: &ContainerConfig,
        pod: &PodSandboxConfig,
    ) -> Result<String> {
        let req = CreateContainerRequest {
            pod_sandbox_id: pod_id.into(),
            config: Some(config.clone()),
            sandbox_config: Some(pod.clone()),
        };
        Ok(call("CreateContainer", self.rt().create_container(req).await)?.container_id)
    }

    pub async fn start(&self, id: &str) -> Result<()> {
        let req = StartContainerRequest {
            container_id: id.into(),
        };
        call("StartContainer", self.rt().start_container(req).await).map(|_| ())
    }

    /// CreateContainer + StartContainer, as kubelet does for each container of a pod.
    pub async fn create_start(
        &self,
        pod_id: &str,
        config: &ContainerConfig,
        pod: &PodSandboxConfig,
    ) -> Result<String> {
        let id = self.create(pod_id, config, pod).await?;
        self.start(&id).await?;
        Ok(id)
    }

    pub async fn container_status(&self, id: &str) -> Result<(ContainerStatus, Value)> {
        let req = ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        };
        let r = call("ContainerStatus", self.rt().container_status(req).await)?;
        let st = r.status.context("ContainerStatus without status")?;
        Ok((st, verbose_info(&r.info)?))
    }

    pub async fn container_pid(&self, id: &str) -> Result<u32> {
        pid_in(&self.container_status(id).await?.1, "container")
    }

    /// Waits until the container reaches `state` (kubelet's PLEG polls ContainerStatus too).
    pub async fn wait_state(
        &self,
        id: &str,
        state: ContainerState,
        secs: u64,
    ) -> Result<ContainerStatus> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let (st, _) = self.container_status(id).await?;
            if st.state == state as i32 {
                return Ok(st);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(anyhow!(
                    "container {id} still {:?} after {secs}s (waiting for {state:?})",
                    ContainerState::try_from(st.state)
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn list_containers(&self, filter: ContainerFilter) -> Result<Vec<Container>> {
        let req = ListContainersRequest {
            filter: Some(filter),
        };
        Ok(call("ListContainers", self.rt().list_containers(req).await)?.containers)
    }

    pub async fn stats(&self, id: &str) -> Result<ContainerStats> {
        let req = ContainerStatsRequest {
            container_id: id.into(),
        };
        call("ContainerStats", self.rt().container_stats(req).await)?
            .stats
            .context("ContainerStats without stats")
    }

    pub async fn list_stats(&self, pod_id: &str) -> Result<Vec<ContainerStats>> {
        let req = ListContainerStatsRequest {
            filter: Some(ContainerStatsFilter {
                pod_sandbox_id: pod_id.into(),
                ..Default::default()
            }),
        };
        Ok(call(
            "ListContainerStats",
            self.rt().list_container_stats(req).await,
        )?
        .stats)
    }

    pub async fn update(&self, id: &str, r: LinuxContainerResources) -> Result<()> {
        let req = UpdateContainerResourcesRequest {
            container_id: id.into(),
            linux: Some(r),
            ..Default::default()
        };
        call(
            "UpdateContainerResources",
            self.rt().update_container_resources(req).await,
        )
        .map(|_| ())
    }

    /// ExecSync: (exit code, stdout, stderr).
    pub async fn exec_sync(&self, id: &str, cmd: &[&str]) -> Result<(i32, String, String)> {
        let req = ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 60,
        };
        let r = call("ExecSync", self.rt().exec_sync(req).await)
            .with_context(|| format!("exec {cmd:?}"))?;
        Ok((
            r.exit_code,
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        ))
    }

    /// ExecSync that must exit 0; its stdout.
    pub async fn exec_ok(&self, id: &str, cmd: &[&str]) -> Result<String> {
        let (rc, out, err) = self.exec_sync(id, cmd).await?;
        if rc != 0 {
            return Err(anyhow!(
                "exec {cmd:?}: exit code {rc}, stdout {out:?}, stderr {err:?}"
            ));
        }
        Ok(out)
    }

    /// Exec: the streaming server's URL for the session.
    pub async fn exec_url(&self, req: ExecRequest) -> Result<String> {
        Ok(call("Exec", self.rt().exec(req).await)?.url)
    }

    pub async fn stop(&self, id: &str, timeout: i64) -> Result<()> {
        let req = StopContainerRequest {
            container_id: id.into(),
            timeout,
        };
        call("StopContainer", self.rt().stop_container(req).await).map(|_| ())
    }

    /// StopContainer in a teardown, as kubelet's pod worker makes it: the container counts
    /// as stopped once its CRI state is EXITED, which kubelet waits for before its garbage
    /// collector removes it. A call that fails because containerd lost its shim connection
    /// mid-call (containerd 1.6's `ttrpc: closed`, seen with runc under the systemd driver in
    /// a pod sharing its pid namespace), or that returns while the container still shows
    /// RUNNING (the dead shim's exit not yet processed), is made again on the next sync, as
    /// kubelet would, up to three times; the caller still checks that the container and its
    /// cgroup are gone. Any other error fails at once.
    pub async fn stop_for_teardown(&self, id: &str, timeout: i64) -> Result<()> {
        const TRIES: u32 = 3;
        for n in 1..=TRIES {
            let why = match self.stop(id, timeout).await {
                Err(e) if format!("{e:#}").contains("ttrpc: closed") => format!("{e:#}"),
                Err(e) => return Err(e),
                Ok(()) => match self
                    .wait_state(id, ContainerState::ContainerExited, 10)
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(e) => format!("{e:#}"),
                },
            };
            if n == TRIES {
                return Err(anyhow!("StopContainer {id}, {TRIES} times: {why}"));
            }
            println!("     | StopContainer {id}: {why}; made again, as kubelet would");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        unreachable!("the loop returns on its last try")
    }

    /// StopContainer with grace period `timeout`; the container's status once EXITED and how
    /// long the call took. Its process must be gone by then.
    pub async fn stop_exited(&self, id: &str, timeout: i64) -> Result<(ContainerStatus, f64)> {
        let pid = self.container_pid(id).await?;
        let t0 = std::time::Instant::now();
        self.stop(id, timeout).await?;
        let took = t0.elapsed().as_secs_f64();
        let st = self
            .wait_state(id, ContainerState::ContainerExited, 10)
            .await?;
        if crate::kernel::alive(pid) {
            return Err(anyhow!("process {pid} still running after StopContainer"));
        }
        Ok((st, took))
    }

    pub async fn remove(&self, id: &str) -> Result<()> {
        let req = RemoveContainerRequest {
            container_id: id.into(),
        };
        call("RemoveContainer", self.rt().remove_container(req).await).map(|_| ())
    }

    /// Stops and removes a pod with all its containers, as kubelet does when a pod is
    /// deleted: containers first (grace period `grace`), then the sandbox.
    pub async fn teardown_pod(&self, pod_id: &str, grace: i64) -> Result<()> {
        let cs = self
            .list_containers(ContainerFilter {
                pod_sandbox_id: pod_id.into(),
                ..Default::default()
            })
            .await?;
        for c in &cs {
            if c.state == ContainerState::ContainerRunning as i32 {
                self.stop_for_teardown(&c.id, grace).await?;
            }
        }
        for c in &cs {
            self.remove(&c.id).await?;
        }
        self.stop_pod(pod_id).await?;
        self.remove_pod(pod_id).await
    }
}
