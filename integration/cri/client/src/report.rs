//! PASS/FAIL per step: each step is an async block with a time limit; its result line goes to
//! stdout and, as `<handler> PASS|FAIL <secs> <step>`, to the results file the runner reads.

use anyhow::{anyhow, Result};
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long one step may take: a CRI call the runtime never answers fails its step
/// instead of hanging the run (the guest is slow: TCG emulation).
const STEP_LIMIT: Duration = Duration::from_secs(180);

pub struct Report {
    handler: String,
    results: Option<PathBuf>,
    pub passed: usize,
    pub failed: usize,
    /// The failed steps with the first line of their error: the summary repeats them, so
    /// that a log cut to its tail still says what failed.
    failures: Vec<String>,
}

impl Report {
    pub fn new(handler: &str, results: Option<PathBuf>) -> Self {
        Report {
            handler: handler.to_string(),
            results,
            passed: 0,
            failed: 0,
            failures: Vec::new(),
        }
    }

    /// Runs one step; its value is kept for the steps that depend on it.
    pub async fn step<T>(&mut self, name: &str, f: impl Future<Output = Result<T>>) -> Option<T> {
        let t0 = Instant::now();
        let r = match tokio::time::timeout(STEP_LIMIT, f).await {
            Ok(r) => r,
            Err(_) => Err(anyhow!("step timed out after {}s", STEP_LIMIT.as_secs())),
        };
        let secs = t0.elapsed().as_secs_f64();
        let verdict = if r.is_ok() { "PASS" } else { "FAIL" };
        println!("{verdict} {:<10} {name:<62} {secs:5.1}s", self.handler);
        if let Err(e) = &r {
            for line in format!("{e:#}").lines() {
                println!("     | {line}");
            }
        }
        if let Some(path) = &self.results {
            let line = format!("{} {verdict} {secs:.1} {name}\n", self.handler);
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("results file");
            f.write_all(line.as_bytes()).expect("write results file");
            if let Err(e) = &r {
                // Beside the results: the runner repeats it at the end of its output.
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path.with_file_name("failures.txt"))
                    .expect("failures file");
                let text = format!("{e:#}");
                let detail: Vec<&str> = text.lines().take(6).collect();
                let entry = format!("{} {name}\n  | {}\n", self.handler, detail.join("\n  | "));
                f.write_all(entry.as_bytes()).expect("write failures file");
            }
        }
        match r {
            Ok(v) => {
                self.passed += 1;
                Some(v)
            }
            Err(e) => {
                self.failed += 1;
                let first = format!("{e:#}");
                let first = first.lines().next().unwrap_or("").to_string();
                self.failures.push(format!("{name}: {first}"));
                None
            }
        }
    }

    pub fn summary(&self) {
        for f in &self.failures {
            println!("FAILED {}: {f}", self.handler);
        }
        println!(
            "{}: {} passed, {} failed",
            self.handler, self.passed, self.failed
        );
    }
}

/// A value an earlier step should have produced: its absence fails the dependent step.
pub fn need<'a, T>(v: &'a Option<T>, what: &str) -> Result<&'a T> {
    v.as_ref()
        .ok_or_else(|| anyhow!("not attempted: the step that {what} failed"))
}

/// Fails with `msg` and both sides when `got != want`.
pub fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(anyhow!("{what}: got {got:?}, expected {want:?}"))
    }
}
