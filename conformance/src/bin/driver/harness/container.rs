//! A container under test, the probe's report, and the console socket.

use serde_json::Value;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::*;

/// A container under test. Drop deletes it with --force.
pub struct Ctr<'a> {
    pub cx: &'a Ctx,
    pub id: String,
    pub b: Bundle,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub extra_create: Vec<String>,
}

impl<'a> Ctr<'a> {
    pub fn new(cx: &'a Ctx, b: Bundle) -> Ctr<'a> {
        let stdout = b.dir.join("ctr.stdout");
        let stderr = b.dir.join("ctr.stderr");
        Ctr {
            cx,
            id: cx.new_id(),
            b,
            stdout,
            stderr,
            extra_create: vec![],
        }
    }
    pub fn create(&self) -> Out {
        self.b.write();
        self.create_raw(&self.id)
    }
    pub fn create_raw(&self, id: &str) -> Out {
        let root = self.cx.root.display().to_string();
        let bp = self.b.path();
        let mut a: Vec<&str> = vec!["--root", &root];
        a.extend(self.cx.rt_flags.iter().map(String::as_str));
        a.extend(["create", "--bundle", &bp]);
        for e in &self.extra_create {
            a.push(e);
        }
        a.push(id);
        self.cx
            .exec_io(&self.cx.rt, &a, &self.stdout, &self.stderr, self.cx.timeout)
    }
    pub fn start(&self) -> Out {
        self.cx.rt(&["start", &self.id])
    }
    pub fn state(&self) -> Result<Value, String> {
        self.cx.state(&self.id)
    }
    pub fn status(&self) -> String {
        self.state()
            .ok()
            .and_then(|s| s["status"].as_str().map(String::from))
            .unwrap_or_else(|| "<no state>".into())
    }
    pub fn pid(&self) -> Option<i32> {
        self.state()
            .ok()
            .and_then(|s| s["pid"].as_i64())
            .map(|p| p as i32)
    }
    pub fn kill(&self, sig: &str) -> Out {
        self.cx.rt(&["kill", &self.id, sig])
    }
    pub fn delete(&self) -> Out {
        self.cx.rt(&["delete", &self.id])
    }
    pub fn wait_status(&self, want: &str, secs: u64) -> Result<Value, String> {
        let t0 = Instant::now();
        let mut last = String::new();
        while t0.elapsed() < Duration::from_secs(secs) {
            match self.state() {
                Ok(s) if s["status"] == want => return Ok(s),
                Ok(s) => last = s.to_string(),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "status did not become {want:?} within {secs}s; last state: {last}"
        ))
    }
    pub fn output(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }
    pub fn errout(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
    /// create + start, error text on failure.
    pub fn up(&self) -> Result<(), String> {
        let o = self.create();
        if !o.ok() {
            return Err(format!(
                "create failed: {}; container stderr: {}",
                o.brief(),
                self.errout().trim()
            ));
        }
        let o = self.start();
        if !o.ok() {
            return Err(format!(
                "start failed: {}; container stderr: {}",
                o.brief(),
                self.errout().trim()
            ));
        }
        Ok(())
    }
    pub fn started_count(&self) -> usize {
        fs::read_to_string(self.b.rootfs.join("started"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
    pub fn signals(&self) -> Vec<String> {
        fs::read_to_string(self.b.rootfs.join("signals"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
    pub fn wait_started(&self, secs: u64) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(secs) {
            if self.started_count() > 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for Ctr<'_> {
    fn drop(&mut self) {
        if self.cx.state(&self.id).is_ok() {
            let _ = self.cx.rt(&["delete", "--force", &self.id]);
        }
    }
}

pub struct Report {
    pub checks: Vec<(String, Option<bool>, String)>,
    pub done: bool,
    pub raw: String,
}

impl Report {
    pub fn judge(&self, focus: &[&str]) -> V {
        if !self.done {
            return V::Fail(format!(
                "probe did not run to completion; output:\n{}",
                self.raw.chars().take(3000).collect::<String>()
            ));
        }
        let sel: Vec<&(String, Option<bool>, String)> = self
            .checks
            .iter()
            .filter(|(n, _, _)| {
                focus.iter().any(|f| {
                    n == f || n.starts_with(&format!("{f}.")) || n.starts_with(&format!("{f}["))
                })
            })
            .collect();
        if sel.is_empty() {
            return V::Fail(format!("probe reported no check for {focus:?}"));
        }
        let bad: Vec<String> = sel
            .iter()
            .filter(|c| c.1 == Some(false))
            .map(|c| format!("{}: {}", c.0, c.2))
            .collect();
        if !bad.is_empty() {
            return V::Fail(bad.join("\n"));
        }
        let unv: Vec<String> = sel
            .iter()
            .filter(|c| c.1.is_none())
            .map(|c| format!("{}: {}", c.0, c.2))
            .collect();
        if !unv.is_empty() {
            return V::Skip(format!("probe could not verify: {}", unv.join("; ")));
        }
        V::Pass
    }
    #[allow(dead_code)]
    pub fn find(&self, name: &str) -> Option<&(String, Option<bool>, String)> {
        self.checks.iter().find(|c| c.0 == name)
    }
}

pub fn parse_report(raw: &str) -> Report {
    let mut checks = vec![];
    let mut done = false;
    for l in raw.lines() {
        let Ok(v) = serde_json::from_str::<Value>(l) else {
            continue;
        };
        let name = v["check"].as_str().unwrap_or("").to_string();
        if name == "probe.done" {
            done = true;
            continue;
        }
        checks.push((
            name,
            v["ok"].as_bool(),
            v["detail"].as_str().unwrap_or("").to_string(),
        ));
    }
    Report {
        checks,
        done,
        raw: raw.to_string(),
    }
}

impl Ctx {
    /// Create, start, wait for exit, collect the probe's report, delete.
    pub fn run_probe(&self, b: Bundle) -> Result<Report, String> {
        let c = Ctr::new(self, b);
        c.up()?;
        c.wait_status("stopped", 20)?;
        let rep = parse_report(&c.output());
        let d = c.delete();
        if !d.ok() {
            return Err(format!("delete of stopped container failed: {}", d.brief()));
        }
        if !rep.done {
            return Err(format!(
                "probe did not complete. stdout:\n{}\nstderr:\n{}",
                c.output(),
                c.errout()
            ));
        }
        Ok(rep)
    }
}

pub fn is_alive(pid: i32) -> bool {
    // Zombies count as gone.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

pub fn ns_inode(pid: i32, f: &str) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/ns/{f}"))
        .ok()
        .map(|m| m.ino())
}

/// A --console-socket listener: receives the pty master from the runtime
/// and collects everything the container writes to its terminal.
pub struct Console {
    pub path: PathBuf,
    thread: Option<std::thread::JoinHandle<Result<String, String>>>,
}

impl Console {
    pub fn new(dir: &Path) -> Result<Console, String> {
        use std::os::unix::net::UnixListener;
        let path = dir.join("console.sock");
        let l = UnixListener::bind(&path).map_err(|e| format!("console socket: {e}"))?;
        let thread = std::thread::spawn(move || -> Result<String, String> {
            use std::os::unix::io::AsRawFd;
            let (s, _) = l.accept().map_err(|e| e.to_string())?;
            let fd = recv_fd(s.as_raw_fd())?;
            let mut out = vec![];
            let mut buf = [0u8; 4096];
            loop {
                // SAFETY: reading into our buffer from the received fd.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
                if n <= 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n as usize]);
            }
            // SAFETY: our fd.
            unsafe { libc::close(fd) };
            Ok(String::from_utf8_lossy(&out).replace('\r', ""))
        });
        Ok(Console {
            path,
            thread: Some(thread),
        })
    }
    pub fn output(mut self, secs: u64) -> Result<String, String> {
        let t = self.thread.take().unwrap();
        let t0 = Instant::now();
        while !t.is_finished() {
            if t0.elapsed() > Duration::from_secs(secs) {
                return Err("terminal output did not end (pty master never hung up)".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        t.join()
            .map_err(|_| "console thread panicked".to_string())?
    }
}

fn recv_fd(sock: i32) -> Result<i32, String> {
    let mut data = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cbuf = [0u64; 16];
    // SAFETY: a zeroed msghdr pointing at our buffers; CMSG macros walk cbuf.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        if libc::recvmsg(sock, &mut msg, 0) < 0 {
            return Err(format!("recvmsg: {}", std::io::Error::last_os_error()));
        }
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
            return Err("no SCM_RIGHTS fd on the console socket".into());
        }
        Ok(*(libc::CMSG_DATA(c) as *const i32))
    }
}
