//! Pod startup latency as kubelet sees it: RunPodSandbox + CreateContainer + StartContainer
//! of a one-container pod on the pod network, per handler, the handlers interleaved round by
//! round (after one unmeasured warm-up each) so that drift of the (emulated) machine hits
//! them alike. Prints each round, the medians and each handler's ratio to the first.

use crate::cgroup::Qos;
use crate::cri::Cri;
use crate::spec::{container, Pod};
use crate::Args;
use anyhow::{Context, Result};
use std::io::Write;
use std::time::Instant;

/// Milliseconds of (RunPodSandbox, CreateContainer, StartContainer).
async fn one(cri: &Cri, a: &Args, handler: &str, name: &str) -> Result<[f64; 3]> {
    let pod = Pod::new(
        &a.work.join("latency"),
        handler,
        name,
        a.driver,
        Qos::BestEffort,
    );
    a.driver.create_pod_cgroup(&pod.parent, None)?;
    pod.make_dirs()?;
    let c = container("c", 0, &["sleep", "3600"]);
    let t0 = Instant::now();
    let sb = cri.run_pod(&pod.config, handler).await?;
    let t1 = Instant::now();
    let id = cri.create(&sb, &c, &pod.config).await?;
    let t2 = Instant::now();
    cri.start(&id).await?;
    let t3 = Instant::now();
    cri.teardown_pod(&sb, 0)
        .await
        .with_context(|| format!("tearing down {name}"))?;
    a.driver.remove_pod_cgroup(&pod.parent)?;
    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
    Ok([ms(t0, t1), ms(t1, t2), ms(t2, t3)])
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

pub async fn run(cri: &Cri, a: &Args) -> Result<usize> {
    for h in &a.handlers {
        one(cri, a, h, "warmup")
            .await
            .with_context(|| format!("warm-up pod with {h}"))?;
    }
    let mut samples: Vec<Vec<[f64; 3]>> = vec![Vec::new(); a.handlers.len()];
    for round in 0..a.rounds {
        for (i, h) in a.handlers.iter().enumerate() {
            let t = one(cri, a, h, &format!("lat{round}"))
                .await
                .with_context(|| format!("round {round} with {h}"))?;
            println!(
                "round {round} {h:<16} {:7.0} ms (RunPodSandbox {:.0}, CreateContainer {:.0}, StartContainer {:.0})",
                t.iter().sum::<f64>(),
                t[0],
                t[1],
                t[2]
            );
            samples[i].push(t);
        }
    }
    a.driver.remove_qos_cgroups();
    let mut lines = Vec::new();
    let total = |s: &Vec<[f64; 3]>| median(&s.iter().map(|t| t.iter().sum()).collect::<Vec<_>>());
    let base = total(&samples[0]);
    for (h, s) in a.handlers.iter().zip(&samples) {
        let part = |k: usize| median(&s.iter().map(|t| t[k]).collect::<Vec<_>>());
        let m = total(s);
        lines.push(format!(
            "pod startup {h}: median {m:.0} ms over {} rounds (RunPodSandbox {:.0}, CreateContainer {:.0}, StartContainer {:.0}); ratio to {}: {:.2}",
            s.len(),
            part(0),
            part(1),
            part(2),
            a.handlers[0],
            m / base
        ));
    }
    for l in &lines {
        println!("{l}");
    }
    if let Some(results) = &a.results {
        let path = results.with_file_name("latency.txt");
        let mut f =
            std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
        for l in &lines {
            writeln!(f, "{l}")?;
        }
    }
    Ok(0)
}
