//! SCMP_ACT_NOTIFY with linux.seccomp.listenerPath: a seccomp agent written here (a thread
//! with a UnixListener) receives the listener fd and the container process state, answers the
//! container's notified syscalls, and the container sees exactly those answers. For the init
//! (`run`, with and without noNewPrivileges) and for `exec`.

use std::collections::VecDeque;
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{require_root, text, Bundle};

/// How the agent answers one notification.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// The syscall fails with this errno.
    Errno(i32),
    /// The syscall "succeeds" with this return value without running.
    Value(i64),
}

/// What the agent saw: the process state JSON of each connection, and the syscall number of
/// each notification it answered.
#[derive(Debug, Default)]
struct Seen {
    states: Vec<Value>,
    answered: Vec<i32>,
}

struct Agent {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Seen>>,
}

impl Agent {
    /// Listens on `path`; answers notifications, in order, from `answers`.
    fn start(path: &Path, answers: &[Answer]) -> Agent {
        let listener = UnixListener::bind(path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let mut answers: VecDeque<Answer> = answers.iter().copied().collect();
        let thread = std::thread::spawn(move || {
            let mut seen = Seen::default();
            let mut fds: Vec<OwnedFd> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                if let Ok((conn, _)) = listener.accept() {
                    let (state, fd) = receive(conn);
                    seen.states.push(state);
                    fds.push(fd);
                }
                let mut polls: Vec<libc::pollfd> = fds
                    .iter()
                    .map(|f| libc::pollfd {
                        fd: f.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    })
                    .collect();
                // SAFETY: `polls` is a valid array of pollfd for its length.
                let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as _, 20) };
                if n <= 0 {
                    if fds.is_empty() {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    continue;
                }
                for (i, p) in polls.iter().enumerate() {
                    if p.revents & libc::POLLIN == 0 {
                        continue;
                    }
                    let Ok(n) = skiff::sys::seccomp::notif_recv(fds[i].as_fd()) else {
                        continue;
                    };
                    let (val, errno) = match answers.pop_front() {
                        Some(Answer::Errno(e)) => (0, e),
                        Some(Answer::Value(v)) => (v, 0),
                        None => (0, libc::ENOSYS),
                    };
                    // The target may have died meanwhile (ENOENT): nothing to answer.
                    let _ = skiff::sys::seccomp::notif_send(fds[i].as_fd(), n.id, val, errno);
                    seen.answered.push(n.nr);
                }
                // Filters whose processes are all gone report POLLHUP: drop them.
                let hung: Vec<usize> = polls
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.revents & (libc::POLLHUP | libc::POLLERR) != 0)
                    .map(|(i, _)| i)
                    .collect();
                for i in hung.into_iter().rev() {
                    fds.remove(i);
                }
            }
            seen
        });
        Agent {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One connection: the fd arrives with the first bytes, the rest of the JSON follows until
/// the runtime closes the connection.
fn receive(conn: UnixStream) -> (Value, OwnedFd) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let (n, fds) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .unwrap();
        let mut fds = Vec::new();
        for c in msg.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(r) = c {
                fds.extend(r);
            }
        }
        (msg.bytes, fds)
    };
    assert_eq!(fds.len(), 1, "expected exactly the seccomp fd");
    // SAFETY: the kernel installed this fd for us with the message; we adopt it once.
    let fd = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    let mut data = buf[..n].to_vec();
    (&conn).read_to_end(&mut data).unwrap();
    (serde_json::from_slice(&data).unwrap(), fd)
}

fn notify_profile(sock: &Path) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "listenerPath": sock,
        "listenerMetadata": "agent-metadata-42",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })
}

fn check_state(v: &Value, b: &Bundle, status: &str) {
    assert_eq!(v["fds"], json!(["seccompFd"]), "{v}");
    assert_eq!(v["metadata"], "agent-metadata-42", "{v}");
    assert!(v["ociVersion"].as_str().unwrap().starts_with("1."), "{v}");
    assert!(v["pid"].as_i64().unwrap() > 1, "{v}");
    let s = &v["state"];
    assert_eq!(s["id"], b.id.as_str(), "{v}");
    assert_eq!(s["status"], status, "{v}");
    assert_eq!(
        s["bundle"],
        std::fs::canonicalize(&b.dir).unwrap().to_str().unwrap(),
        "{v}"
    );
}

/// The first mkdir gets the agent's EXDEV, the second the agent's "success" although the
/// read-only root would have refused it (and no directory appears).
const SCRIPT: &str = "mkdir /tmp/a 2>&1; echo rc=$?; mkdir /tmp/b && echo made; \
                      test -d /tmp/b || echo no-b";
const ANSWERS: &[Answer] = &[Answer::Errno(libc::EXDEV), Answer::Value(0)];

fn assert_answers_seen(out: &str) {
    assert!(
        out.contains("Invalid cross-device link") && out.contains("rc=1"),
        "the agent's EXDEV did not reach the container: {out}"
    );
    assert!(
        out.contains("made\nno-b"),
        "the agent's success value did not reach the container: {out}"
    );
}

#[test]
fn the_agent_gets_the_fd_and_state_and_answers_the_init() {
    require_root!();
    for nnp in [false, true] {
        let mut b = Bundle::new("seccomp-notify");
        let sock = b.dir.join("agent.sock");
        b.config["linux"]["seccomp"] = notify_profile(&sock);
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.sh(SCRIPT);
        let agent = Agent::start(&sock, ANSWERS);
        let out = b.run_ok();
        let seen = agent.finish();
        assert_answers_seen(&out);
        assert_eq!(seen.states.len(), 1, "nnp={nnp}: {seen:?}");
        check_state(&seen.states[0], &b, "creating");
        assert_eq!(
            seen.states[0]["pid"], seen.states[0]["state"]["pid"],
            "the init's pid"
        );
        assert_eq!(seen.answered.len(), 2, "nnp={nnp}: {seen:?}");
    }
}

#[test]
fn exec_hands_its_own_listener_to_the_agent() {
    require_root!();
    for nnp in [false, true] {
        let mut b = Bundle::new("seccomp-notify-exec");
        let sock = b.dir.join("agent.sock");
        b.config["linux"]["seccomp"] = notify_profile(&sock);
        b.config["process"]["noNewPrivileges"] = json!(false);
        b.args(&["sleep", "60"]);
        let agent = Agent::start(&sock, ANSWERS);
        b.create_ok();
        b.ok(&["start", &b.id]);
        let mut args = vec!["exec"];
        if nnp {
            args.push("--no-new-privs");
        }
        args.extend([b.id.as_str(), "sh", "-c", SCRIPT]);
        let out = b.ok(&args);
        let init_pid = b.state()["pid"].as_i64().unwrap();
        b.ok(&["kill", &b.id, "KILL"]);
        let seen = agent.finish();
        assert_answers_seen(&out);
        // One connection for the init, one for the exec process.
        assert_eq!(seen.states.len(), 2, "nnp={nnp}: {seen:?}");
        check_state(&seen.states[0], &b, "creating");
        check_state(&seen.states[1], &b, "running");
        assert_eq!(seen.states[1]["state"]["pid"], init_pid);
        assert_ne!(
            seen.states[1]["pid"], init_pid,
            "the exec process's own pid"
        );
    }
}

#[test]
fn notify_needs_a_listener_and_a_reachable_agent() {
    require_root!();
    let mut b = Bundle::new("seccomp-notify-bad");
    let mut profile = notify_profile(&b.dir.join("nobody-listens.sock"));
    b.args(&["true"]);
    b.config["linux"]["seccomp"] = profile.clone();
    let out = b.create();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("linux.seccomp.listenerPath") && err.contains("connecting"),
        "{err}"
    );
    profile.as_object_mut().unwrap().remove("listenerPath");
    b.config["linux"]["seccomp"] = profile;
    let out = b.create();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("linux.seccomp.listenerPath: a rule uses SCMP_ACT_NOTIFY"),
        "{err}"
    );
}
