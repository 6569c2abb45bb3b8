//! One config under one runtime: prepare the host, start the container (`run` in the
//! foreground; `create` + `start` + `delete` for terminal and invalid configs), talk to the
//! observer, look from outside while it waits, then collect exit status, hook records and
//! leftovers. The result is one JSON observation, already normalised.

use crate::console;
use crate::gen::Case;
use crate::host::{self, Prepared};
use crate::outside;
use crate::sys;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Runtime {
    /// "ref" or "cand": names the run directory and the state root.
    pub side: &'static str,
    pub path: String,
    pub root: String,
}

pub struct Ctx {
    pub bin: PathBuf,
    pub own_cgroup: String,
    pub host_ns: BTreeMap<&'static str, u64>,
    pub timeout: Duration,
}

/// `state` of a running container is compared for one config in this many (and for every
/// terminal or invalid config, which run create/start/delete).
const STATE_EVERY: u64 = 3;

enum Msg {
    Line(String),
    Eof,
}

impl Runtime {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.path);
        c.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", "/root")
            .env("DFH_RUNTIME_ENV", "1")
            .arg("--root")
            .arg(&self.root);
        c
    }

    /// A lifecycle step: "ok", or "failed: <stderr>".
    fn step(&self, args: &[&str], timeout: Duration) -> Value {
        match self.call(args, timeout) {
            (0, _, _) => json!("ok"),
            (_, _, err) => json!(format!("failed: {}", err.trim())),
        }
    }

    /// Run a short subcommand to completion: (exit code, stdout, stderr).
    fn call(&self, args: &[&str], timeout: Duration) -> (i32, String, String) {
        let child = self
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => return (-1, String::new(), format!("spawn {}: {e}", self.path)),
        };
        let out = drain(child.stdout.take());
        let err = drain(child.stderr.take());
        let code = wait_timeout(&mut child, timeout).map(code_of).unwrap_or(-2);
        (
            code,
            out.get(Duration::from_secs(5)),
            err.get(Duration::from_secs(5)),
        )
    }
}

/// Everything a reader yields, collected by a thread; `get` waits at most `timeout` (a
/// process the runtime left behind may hold the pipe open).
struct Drain(mpsc::Receiver<String>);

impl Drain {
    fn get(self, timeout: Duration) -> String {
        self.0
            .recv_timeout(timeout)
            .unwrap_or_else(|_| "(output still open: a process holds the pipe)".into())
    }
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> Drain {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![];
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    Drain(rx)
}

fn code_of(st: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

/// Wait for a child with a deadline; kill it when the deadline passes.
fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Lines of a reader into the channel, '\r' dropped (a terminal's ONLCR), then Eof.
fn lines_into<R: Read + Send + 'static>(r: R, tx: mpsc::Sender<Msg>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(Msg::Line(line.replace('\r', ""))).is_err() {
                return;
            }
        }
        let _ = tx.send(Msg::Eof);
    });
}

/// The next observer message (a JSON line with `key`), skipping anything else (echoed
/// commands on a terminal); None on EOF or timeout.
fn next_msg(rx: &mpsc::Receiver<Msg>, key: &str, end: Instant) -> Option<Value> {
    loop {
        let left = end.checked_duration_since(Instant::now())?;
        match rx.recv_timeout(left) {
            Ok(Msg::Line(l)) => {
                if let Ok(v) = serde_json::from_str::<Value>(l.trim()) {
                    if let Some(x) = v.get(key) {
                        return Some(x.clone());
                    }
                }
            }
            Ok(Msg::Eof) | Err(_) => return None,
        }
    }
}

/// With DIFFERENTIAL_TRACE set: how long each phase of a run took (the guest is slow).
fn trace(case: &Case, rt: &Runtime, what: &str, t: &mut Instant) {
    if std::env::var_os("DIFFERENTIAL_TRACE").is_some() {
        eprintln!(
            "trace #{} {} {what}: {} ms",
            case.index,
            rt.side,
            t.elapsed().as_millis()
        );
    }
    *t = Instant::now();
}

pub fn run_side(case: &Case, rt: &Runtime, ctx: &Ctx) -> Value {
    let mut t = Instant::now();
    let p = match host::prepare(case, rt.side, &ctx.bin) {
        Ok(p) => p,
        Err(e) => return json!({"harness_error": format!("preparing the host: {e}")}),
    };
    trace(case, rt, "prepare", &mut t);
    let mut o = Map::new();
    // The propagation matrix also checks that the host's mount table is what it was once
    // the runtime has deleted the container (rootfsPropagation must not leak out).
    let before = case.matrix.map(|_| host_table(&p));
    if let Err(e) = drive(case, rt, ctx, &p, &mut o, &mut t) {
        o.insert("harness_error".into(), json!(e));
    }
    if let Some(before) = before {
        o.insert(
            "host_mounts_changed".into(),
            json!(table_changes(&before, &host_table(&p))),
        );
    }
    o.insert("leftovers".into(), leftovers(case, rt, &p));
    // Whatever the runtime left is removed before the other runtime's turn.
    if Path::new(&rt.root).join(&case.id).exists() {
        rt.call(&["delete", "--force", &case.id], ctx.timeout);
    }
    host::teardown(p);
    trace(case, rt, "leftovers+teardown", &mut t);
    Value::Object(o)
}

struct Io {
    rx: mpsc::Receiver<Msg>,
    writer: Option<Box<dyn Write + Send>>,
    _console: Option<console::Receiver>,
}

impl Io {
    fn send(&mut self, line: &str) {
        if let Some(w) = self.writer.as_mut() {
            let _ = w.write_all(format!("{line}\n").as_bytes());
            let _ = w.flush();
        }
    }
}

fn drive(
    case: &Case,
    rt: &Runtime,
    ctx: &Ctx,
    p: &Prepared,
    o: &mut Map<String, Value>,
    t: &mut Instant,
) -> Result<(), String> {
    let lifecycle = case.terminal() || case.invalid.is_some();
    let pidfile = p.run.join("pid");
    let bundle = p.bundle.display().to_string();
    let mut cmd = rt.cmd();
    let console = if case.terminal() {
        let sock = p.run.join("console.sock");
        let r = console::Receiver::listen(&sock)?;
        cmd.args(["create", "--bundle", &bundle, "--pid-file"])
            .arg(&pidfile)
            .arg("--console-socket")
            .arg(&sock);
        Some(r)
    } else if lifecycle {
        cmd.args(["create", "--bundle", &bundle, "--pid-file"])
            .arg(&pidfile);
        None
    } else {
        cmd.args(["run", "--bundle", &bundle, "--pid-file"])
            .arg(&pidfile);
        None
    };
    // --preserve-fds: /dev/null and files of the run directory from fd 3 on.
    let preserved: Vec<File> = (0..case.preserve_given)
        .map(|i| {
            if i == 0 {
                File::open("/dev/null")
            } else {
                File::create(p.run.join(format!("preserved{i}")))
            }
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("preserved fds: {e}"))?;
    if case.preserve_fds > 0 {
        cmd.arg("--preserve-fds").arg(case.preserve_fds.to_string());
        sys::preserve_fds_at_exec(&mut cmd, preserved.iter().map(|f| f.as_raw_fd()).collect());
    }
    if !case.config["linux"]["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|n| n["type"] == "mount")
    {
        sys::own_mount_namespace_at_exec(&mut cmd);
    }
    if case.sets_cgroup2_flags() {
        // Start from no flags: what the hierarchy has at ready is what the container's
        // mount set (the driver runs this config alone).
        let _ = sys::mount("none", host::CGROUP_ROOT, "", libc::MS_REMOUNT, "");
    }
    cmd.arg(&case.id)
        .current_dir(&p.run)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("spawn {}: {e}", rt.path))?;
    drop(preserved);
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let stdin = child.stdin.take().ok_or("no stdin pipe")?;
    let stderr = drain(child.stderr.take());
    if !case.terminal() {
        lines_into(stdout, tx.clone());
    }
    let mut io = Io {
        rx,
        writer: (!case.terminal()).then(|| Box::new(stdin) as Box<dyn Write + Send>),
        _console: None,
    };
    let end = started + ctx.timeout;
    if lifecycle {
        let st = wait_timeout(&mut child, ctx.timeout).ok_or("create did not return in time")?;
        let code = code_of(st);
        o.insert("create.status".into(), json!(code == 0));
        if code != 0 {
            o.insert("create".into(), json!("refused"));
            o.insert(
                "stderr.text".into(),
                json!(stderr.get(Duration::from_secs(5))),
            );
            return Ok(());
        }
        if let Some(r) = &console {
            let master = r.take(Duration::from_secs(10))?;
            let file = File::from(master);
            let w = file
                .try_clone()
                .map_err(|e| format!("dup the pty master: {e}"))?;
            lines_into(file, tx.clone());
            io.writer = Some(Box::new(w));
        }
        io._console = console;
        o.insert(
            "state.created".into(),
            state(rt, ctx, &case.id, &pidfile, p),
        );
        o.insert("start".into(), rt.step(&["start", &case.id], ctx.timeout));
    }
    drop(tx);
    let Some(inside) = next_msg(&io.rx, "inside", end) else {
        if lifecycle {
            return Err("the observer never reported (start failed?)".into());
        }
        // A foreground run that ends before the observer spoke: the runtime refused. (After
        // the deadline, a last few seconds before it counts as hung.)
        let left = end
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(10));
        let st = wait_timeout(&mut child, left);
        o.insert("create".into(), json!("refused"));
        o.insert("run.status".into(), json!(st.map(code_of)));
        o.insert(
            "stderr.text".into(),
            json!(stderr.get(Duration::from_secs(5))),
        );
        if st.is_none() {
            return Err("the runtime neither ran the observer nor exited".into());
        }
        return Ok(());
    };
    next_msg(&io.rx, "ready", end).ok_or("the observer did not get ready")?;
    trace(case, rt, "until the observer reported", t);
    o.insert("create".into(), json!("ok"));
    o.insert("inside".into(), normalise_inside(inside, p));
    let pid = pid_file(&pidfile, end)?;
    let container_ns = outside::read_ns(&pid);
    if case.sets_cgroup2_flags() {
        o.insert(
            "outside.cgroup2_root_flags".into(),
            json!(outside::cgroup2_root_flags()),
        );
    }
    o.insert(
        "outside".into(),
        outside::observe(&pid, p, &ctx.host_ns, &ctx.own_cgroup),
    );
    trace(case, rt, "outside", t);
    // `state` costs runc half a second in the emulated guest and depends on few fields
    // (status, pid, bundle, annotations): one config in STATE_EVERY asks for it.
    if lifecycle || case.index.is_multiple_of(STATE_EVERY) {
        o.insert("state".into(), state(rt, ctx, &case.id, &pidfile, p));
        trace(case, rt, "state", t);
    }
    if !p.probes.is_empty() {
        o.insert("propagation".into(), propagation(&mut io, &pid, p, end));
    }
    io.send("exit");
    io.writer = None;
    if lifecycle {
        let status = wait_container(&pid, ctx.timeout);
        o.insert("exit".into(), json!(status));
        o.insert("delete".into(), rt.step(&["delete", &case.id], ctx.timeout));
        let _ = wait_timeout(&mut child, Duration::from_secs(1));
    } else {
        let st = wait_timeout(&mut child, ctx.timeout)
            .ok_or("the runtime did not exit after the observer")?;
        o.insert("exit".into(), json!(code_of(st)));
    }
    trace(case, rt, "until exit", t);
    let err = stderr.get(Duration::from_secs(5));
    o.insert(
        "stderr".into(),
        json!(if err.trim().is_empty() {
            "empty"
        } else {
            "nonempty"
        }),
    );
    o.insert("stderr.text".into(), json!(err));
    if case.host.hooks {
        o.insert("hooks".into(), hooks(p, &pid, &container_ns));
    }
    Ok(())
}

/// The container's pid from `--pid-file`. `runc run` writes the file once the process has
/// started, so it may appear just after the observer has spoken: wait for it.
fn pid_file(path: &Path, end: Instant) -> Result<String, String> {
    loop {
        match fs::read_to_string(path) {
            Ok(s) if s.trim().parse::<i32>().is_ok() => return Ok(s.trim().to_string()),
            Ok(_) | Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
            Ok(s) => return Err(format!("pid file {}: {s:?} is no pid", path.display())),
            Err(e) => return Err(format!("pid file {}: {e}", path.display())),
        }
    }
}

/// The exit status of a container init that is no child of the runtime any more (after
/// `create` returned it was reparented to us, the subreaper).
fn wait_container(pid: &str, timeout: Duration) -> Value {
    let Ok(pid) = pid.parse::<i32>() else {
        return json!("no pid");
    };
    let _ = sys::wait_exit_pidfd(pid, timeout.as_millis() as i32);
    for _ in 0..200 {
        match sys::waitpid(pid, true) {
            Ok(Some(code)) => return json!(code),
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return json!(format!("not our child (errno {e})")),
        }
    }
    json!("still running")
}

fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && (s.ends_with('Z') || s[19..].contains(['+', '-']))
}

/// `state ID`, normalised: pid → PID, timestamps → TIME, the run directory → RUN.
fn state(rt: &Runtime, ctx: &Ctx, id: &str, pidfile: &Path, p: &Prepared) -> Value {
    let (code, out, err) = rt.call(&["state", id], ctx.timeout);
    if code != 0 {
        return json!(format!("state failed: {}", err.trim()));
    }
    let pid: i64 = fs::read_to_string(pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(-1);
    let mut v: Value = serde_json::from_str(&out).unwrap_or_else(|_| json!({"unparsed": out}));
    if let Some(m) = v.as_object_mut() {
        for (k, val) in m.iter_mut() {
            match val {
                Value::Number(n) if k == "pid" => {
                    *val = json!(if n.as_i64() == Some(pid) {
                        "PID".into()
                    } else {
                        format!("other pid {n}")
                    })
                }
                Value::String(s) if is_timestamp(s) => *val = json!("TIME"),
                Value::String(s) => *val = json!(outside::norm(s, p)),
                _ => {}
            }
        }
    }
    v
}

/// The propagation probes, once the container runs: the host mounts below each volume's
/// source (or the source's master), then the observer below each volume's destination;
/// who sees which. One member per volume and direction ("<volume>/h2c", "<volume>/c2h"),
/// each a logical case of the propagation matrix.
fn propagation(io: &mut Io, pid: &str, p: &Prepared, end: Instant) -> Value {
    let host_errno: Vec<i32> = p
        .probes
        .iter()
        .map(|(_, origin)| {
            sys::mount(
                "dfh-h2c",
                &origin.display().to_string(),
                "tmpfs",
                0,
                "size=64k",
            )
            .err()
            .unwrap_or(0)
        })
        .collect();
    let container_errno: Vec<Value> = p
        .probes
        .iter()
        .map(|(name, _)| {
            io.send(&format!("mount /mnt/{name}/c2h"));
            next_msg(&io.rx, "mounted", end)
                .map(|m| m["errno"].clone())
                .unwrap_or(Value::Null)
        })
        .collect();
    let inside = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    let inside = outside::parse_mountinfo(&inside);
    let host_points: Vec<String> = host::mounts_under(&p.run);
    let at = |rel: String| {
        host_points
            .iter()
            .any(|m| *m == p.run.join(&rel).display().to_string())
    };
    let mut out = Map::new();
    for (((name, _), h), c) in p.probes.iter().zip(host_errno).zip(container_errno) {
        let seen = inside.iter().any(|m| m.point == format!("/mnt/{name}/h2c"));
        out.insert(
            format!("{name}/h2c"),
            json!({"host_mount_errno": h, "seen_inside": seen}),
        );
        out.insert(
            format!("{name}/c2h"),
            json!({
                "container_mount_errno": c,
                "at_source": at(format!("{name}/c2h")),
                "at_master": at(format!("{name}-m/c2h")),
            }),
        );
    }
    Value::Object(out)
}

/// The harness's mount table as it matters for "the runtime left the host as it was":
/// every mount outside the run directories (with its options and propagation, peer group
/// numbers included: same namespace, same moment) and the mounts of this run directory
/// except the propagation probes (which propagate as the kernel decides and are compared
/// on their own). Other runs' directories are left out: they change concurrently.
pub fn host_table(p: &Prepared) -> Vec<String> {
    let base = format!("{}/", host::BASE);
    let own = format!("{}/", p.run.display());
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<String> = outside::parse_mountinfo(&mi)
        .into_iter()
        .filter(|m| !m.point.starts_with(&base) || m.point.starts_with(&own))
        .filter(|m| !(m.point.ends_with("/h2c") || m.point.ends_with("/c2h")))
        .map(|m| {
            outside::norm(
                &format!(
                    "{} {} {} {} [{}]",
                    m.point,
                    m.fstype,
                    m.source,
                    m.opts,
                    m.optional.join(" ")
                ),
                p,
            )
        })
        .collect();
    out.sort();
    out
}

/// What differs between two `host_table`s: "-" gone or changed, "+" new or changed.
fn table_changes(before: &[String], after: &[String]) -> Vec<String> {
    let gone = before.iter().filter(|m| !after.contains(m));
    let new = after.iter().filter(|m| !before.contains(m));
    gone.map(|m| format!("- {m}"))
        .chain(new.map(|m| format!("+ {m}")))
        .collect()
}

fn normalise_inside(mut v: Value, p: &Prepared) -> Value {
    if let Some(fds) = v.get_mut("fds").and_then(Value::as_array_mut) {
        for f in fds.iter_mut() {
            if let Some(w) = f.get("what").and_then(Value::as_str) {
                f["what"] = json!(outside::strip_inode(&outside::norm(w, p)));
            }
        }
    }
    v
}

/// The hook log: records by hook name (in invocation order), with the state's pid and the
/// hook's namespaces classified against the container's.
fn hooks(p: &Prepared, pid: &str, container_ns: &BTreeMap<&'static str, u64>) -> Value {
    let text = fs::read_to_string(p.run.join("hooks/hooks.log")).unwrap_or_default();
    let host_ns = outside::read_ns("self");
    let mut order = vec![];
    let mut versions = vec![];
    let mut by_name = Map::new();
    for line in text.lines() {
        let Ok(mut r) = serde_json::from_str::<Value>(line) else {
            order.push(json!(format!("unparsable: {line}")));
            continue;
        };
        let name = r["hook"].as_str().unwrap_or("?").to_string();
        // startContainer hooks run in the init while the runtime runs poststart: with
        // runc the two race, so their relative order is not compared (each kind's own
        // order is, through the records' "(2)" keys and the rest of this list).
        if !name.starts_with("startContainer") {
            order.push(json!(name));
        }
        if let Some(st) = r.get_mut("stdin").and_then(Value::as_object_mut) {
            // Compared on its own: the spec version is the runtime's (see the contract).
            if let Some(v) = st.remove("ociVersion") {
                if !versions.contains(&v) {
                    versions.push(v);
                }
            }
            if let Some(n) = st.get("pid").and_then(Value::as_i64) {
                st.insert(
                    "pid".into(),
                    json!(if n.to_string() == pid {
                        "PID".to_string()
                    } else {
                        format!("pid {n}")
                    }),
                );
            }
            for (_, val) in st.iter_mut() {
                if let Value::String(s) = val {
                    *val = json!(outside::norm(s, p));
                }
            }
        }
        if let Some(ns) = r.get_mut("ns").and_then(Value::as_object_mut) {
            for (k, val) in ns.iter_mut() {
                let ino = val
                    .as_str()
                    .and_then(|s| s.split_once('['))
                    .and_then(|(_, i)| i.trim_end_matches(']').parse::<u64>().ok());
                let kind = k.as_str();
                *val = json!(match ino {
                    None => "?",
                    Some(i)
                        if container_ns.get(kind) == Some(&i) && host_ns.get(kind) == Some(&i) =>
                        "host=container",
                    Some(i) if container_ns.get(kind) == Some(&i) => "container",
                    Some(i) if host_ns.get(kind) == Some(&i) => "host",
                    Some(_) => "other",
                });
            }
        }
        let text = outside::norm(&r.to_string(), p);
        let r: Value = serde_json::from_str(&text).unwrap_or(r);
        // One field per member (and per member of the state on stdin), so a report names
        // what differs; a hook run twice gets "(2)".
        let mut key = name.clone();
        let mut n = 1;
        while by_name.contains_key(&format!("{key}/cwd")) {
            n += 1;
            key = format!("{name}({n})");
        }
        if let Some(m) = r.as_object() {
            for (member, v) in m {
                match (member.as_str(), v) {
                    ("hook", _) => {}
                    ("stdin", Value::Object(st)) => {
                        for (k, sv) in st {
                            by_name.insert(format!("{key}/stdin.{k}"), sv.clone());
                        }
                    }
                    _ => {
                        by_name.insert(format!("{key}/{member}"), v.clone());
                    }
                }
            }
        }
    }
    json!({"order": order, "records": by_name, "ociVersion": versions})
}

/// What is left once the runtime is done: its state directory, cgroups under this
/// config's tree (except one the harness made), mounts under the run directory that the
/// harness did not make.
fn leftovers(case: &Case, rt: &Runtime, p: &Prepared) -> Value {
    let state = Path::new(&rt.root).join(&case.id).exists();
    let mut cgroups = vec![];
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                let r = format!("{rel}/{}", e.file_name().to_string_lossy());
                walk(&e.path(), &r, out);
                out.push(r);
            }
        }
    }
    if p.cgroup_tree.is_dir() {
        cgroups.push(String::from("/"));
        walk(&p.cgroup_tree, "", &mut cgroups);
    }
    let pre = case
        .host
        .precreated_cgroup
        .as_ref()
        .map(|(path, _)| path.trim_start_matches(&case.id).to_string());
    cgroups.retain(|c| Some(c) != pre.as_ref() && !(pre.is_some() && c == "/"));
    cgroups.sort();
    let mounts: Vec<String> = host::mounts_under(&p.run)
        .into_iter()
        .filter(|m| !p.own_mounts.contains(m))
        .map(|m| outside::norm(&m, p))
        .collect();
    json!({"state_dir": state, "cgroups": cgroups, "mounts": mounts})
}
