//! The failpoint matrix: every command, killed (SIGKILL, by itself: `SKIFF_FAILPOINT`) at
//! every crash point it passes (learned from `SKIFF_FAILPOINT_TRACE`, so a new point is
//! covered without editing this file), in three container shapes. After each kill: `list`
//! works (and shows the container while state.json exists), `delete --force` succeeds, the
//! kernel holds nothing of the container, and the id takes a new container.

use std::fmt::Write as _;
use std::os::unix::process::ExitStatusExt;

use super::{
    assert_deleted_and_reusable, bundle_dir, leftovers, listed, marked, skiff, state_dir,
    with_hooks, with_userns,
};
use crate::common::{require_root, text, Bundle};

/// The commands, each with what must exist before it runs and its own arguments.
#[derive(Clone, Copy, Debug)]
enum Cmd {
    Create,
    Run,
    Start,
    Exec,
    Delete,
    Update,
    Pause,
    Resume,
}

const COMMANDS: [Cmd; 8] = [
    Cmd::Create,
    Cmd::Run,
    Cmd::Start,
    Cmd::Exec,
    Cmd::Delete,
    Cmd::Update,
    Cmd::Pause,
    Cmd::Resume,
];

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::Create => "create",
            Cmd::Run => "run",
            Cmd::Start => "start",
            Cmd::Exec => "exec",
            Cmd::Delete => "delete --force",
            Cmd::Update => "update",
            Cmd::Pause => "pause",
            Cmd::Resume => "resume",
        }
    }

    /// Brings the container to the state the command needs.
    fn prepare(self, b: &Bundle) {
        let dir = bundle_dir(b);
        let ok = |args: &[&str]| {
            let out = skiff(b, args, &[]);
            assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        };
        match self {
            Cmd::Create | Cmd::Run => {}
            Cmd::Start => ok(&["create", "--bundle", &dir, &b.id]),
            Cmd::Exec | Cmd::Delete | Cmd::Update | Cmd::Pause => {
                ok(&["run", "-d", "--bundle", &dir, &b.id])
            }
            Cmd::Resume => {
                ok(&["run", "-d", "--bundle", &dir, &b.id]);
                ok(&["pause", &b.id]);
            }
        }
    }

    fn args(self, b: &Bundle) -> Vec<String> {
        let dir = bundle_dir(b);
        let id = b.id.clone();
        let v: Vec<&str> = match self {
            Cmd::Create => vec!["create", "--bundle", &dir, &id],
            Cmd::Run => vec!["run", "--bundle", &dir, &id],
            Cmd::Start => vec!["start", &id],
            Cmd::Exec => vec!["exec", &id, "sh", "-c", "sleep 0.1", &id],
            Cmd::Delete => vec!["delete", "--force", &id],
            Cmd::Update => vec!["update", "--resources", "-", &id],
            Cmd::Pause => vec!["pause", &id],
            Cmd::Resume => vec!["resume", &id],
        };
        v.into_iter().map(String::from).collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    Plain,
    Hooks,
    Userns,
}

fn bundle(shape: Shape, cmd: Cmd) -> Bundle {
    // `run` in the foreground must see its container exit to pass its last points.
    let sleep = if matches!(cmd, Cmd::Run) {
        "0.05"
    } else {
        "3600"
    };
    let mut b = marked("fp", sleep);
    match shape {
        Shape::Plain => {}
        Shape::Hooks => with_hooks(&mut b),
        Shape::Userns => with_userns(&mut b),
    }
    b
}

/// Runs `cmd` (after preparing for it) with `env`; its output.
fn invoke(b: &Bundle, cmd: Cmd, env: &[(&str, &str)]) -> std::process::Output {
    cmd.prepare(b);
    let args = cmd.args(b);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if matches!(cmd, Cmd::Update) {
        // `--resources -`: an empty update from standard input.
        let file = b.dir.join("resources.json");
        std::fs::write(&file, "{}").unwrap();
        let mut c = b.command(&args);
        c.stdin(std::fs::File::open(&file).unwrap());
        for (k, v) in env {
            c.env(k, v);
        }
        return super::bounded(&mut c);
    }
    skiff(b, &args, env)
}

/// The points a command passes, in order (an undisturbed run with tracing).
fn points(shape: Shape, cmd: Cmd) -> Vec<String> {
    let b = bundle(shape, cmd);
    let trace = b.dir.join("trace");
    let out = invoke(
        &b,
        cmd,
        &[("SKIFF_FAILPOINT_TRACE", trace.to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "{shape:?} {}: {}",
        cmd.name(),
        text(&out.stderr)
    );
    let mut seen: Vec<String> = vec![];
    for p in std::fs::read_to_string(&trace).unwrap_or_default().lines() {
        if !seen.iter().any(|s| s == p) {
            seen.push(p.to_string());
        }
    }
    seen
}

/// Kills `cmd` at `point` and checks what is left; a line of the matrix. `b` is clean
/// before and after.
fn cell(b: &Bundle, shape: Shape, cmd: Cmd, point: &str) -> String {
    let t0 = std::time::Instant::now();
    let what = format!("{shape:?} {} killed at {point}", cmd.name());
    let out = invoke(b, cmd, &[("SKIFF_FAILPOINT", point)]);
    if out.status.signal() != Some(9) {
        let state = std::fs::read_to_string(state_dir(b).join("state.json")).unwrap_or_default();
        let pid = serde_json::from_str::<serde_json::Value>(&state).unwrap_or_default()["pid"]
            .as_i64()
            .unwrap_or(0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        panic!(
            "{what}: not killed (point not reached?): {}\nstate.json: {state}\n/proc/{pid}/stat: \
             {stat}\nstate dir: {:?}",
            text(&out.stderr),
            std::fs::read_dir(state_dir(b))
                .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        );
    }
    // Whatever it left, `list` works; it shows the container while its record exists.
    let listed = listed(b);
    let shown = listed
        .iter()
        .find(|(id, _)| *id == b.id)
        .map(|(_, s)| s.clone());
    if state_dir(b).join("state.json").exists() {
        assert!(shown.is_some(), "{what}: not listed: {listed:?}");
    }
    let before = leftovers(b).len();
    assert_deleted_and_reusable(b, &what);
    format!(
        "| {:?} | {} | {point} | {} | {before} | clean, id reused | {} |",
        shape,
        cmd.name(),
        shown.as_deref().unwrap_or("-"),
        t0.elapsed().as_millis()
    )
}

type Required = [(Cmd, &'static [&'static str])];

/// One shape and command: its points, checked against the ones it must have.
fn points_checked(shape: Shape, cmd: Cmd, required: &Required) -> Vec<String> {
    let pts = points(shape, cmd);
    let want = required
        .iter()
        .find(|(c, _)| c.name() == cmd.name())
        .unwrap()
        .1;
    for w in want {
        assert!(
            pts.iter().any(|p| p == w),
            "{shape:?} {}: no point {w} in {pts:?}",
            cmd.name()
        );
    }
    let extra = match (shape, cmd) {
        (Shape::Hooks, Cmd::Create) => Some("spawn.hooks"),
        (Shape::Userns, Cmd::Create) => Some("spawn.maps"),
        _ => None,
    };
    if let Some(w) = extra {
        assert!(pts.iter().any(|p| p == w), "{shape:?}: no {w} in {pts:?}");
    }
    pts
}

/// Runs `work` over `items` with `n` threads; the results in the items' order.
fn parallel<T: Sync, R: Send>(items: &[T], n: usize, work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    let mut done = vec![];
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some(item) = items.get(i) else {
                            return done;
                        };
                        done.push((i, work(item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// The matrix as step × command: for each crash point, the shapes in which each command
/// was killed there and came out clean.
fn grid(cells: &[(Shape, Cmd, String)]) -> String {
    // Steps in protocol order: each command's points are in the order it passed them, so
    // a new one goes right after the point before it (or before the first later one).
    let mut steps: Vec<&str> = vec![];
    for (i, (shape, cmd, p)) in cells.iter().enumerate() {
        if steps.contains(&p.as_str()) {
            continue;
        }
        let same = |j: usize| {
            cells
                .get(j)
                .filter(|(s, c, _)| s == shape && c.name() == cmd.name())
                .map(|(_, _, q)| q.as_str())
        };
        let before = i.checked_sub(1).and_then(same);
        let at = match before.and_then(|q| steps.iter().position(|s| *s == q)) {
            Some(k) => k + 1,
            None => (i + 1..)
                .map_while(same)
                .find_map(|q| steps.iter().position(|s| *s == q))
                .unwrap_or(steps.len()),
        };
        steps.insert(at, p);
    }
    let mut out = String::from("| step |");
    for c in COMMANDS {
        let _ = write!(out, " {} |", c.name());
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(COMMANDS.len()));
    for step in steps {
        let _ = write!(out, "\n| `{step}` |");
        for c in COMMANDS {
            let shapes: Vec<String> = cells
                .iter()
                .filter(|(_, cmd, p)| cmd.name() == c.name() && p == step)
                .map(|(s, _, _)| format!("{s:?}").to_lowercase())
                .collect();
            let mark = if shapes.is_empty() {
                String::new()
            } else {
                format!("clean ({})", shapes.join(", "))
            };
            let _ = write!(out, " {mark} |");
        }
    }
    out
}

/// Every shape × command × point. The points each command must at least have are checked,
/// so a crash point cannot silently disappear.
#[test]
fn every_command_killed_at_every_crash_point_is_cleaned_by_delete_force() {
    require_root!();
    let required: &Required = &[
        (
            Cmd::Create,
            &[
                "create.locked",
                "create.recorded",
                "create.fifo",
                "create.cgroup",
                "create.resources",
                "spawn.cloned",
                "spawn.recorded",
                "spawn.go",
                "spawn.ready",
                "create.pid-file",
                "create.committed",
                "create.done",
            ],
        ),
        (
            Cmd::Run,
            &[
                "create.done",
                "start.fifo-removed",
                "run.started",
                "run.exited",
                "delete.state-removed",
            ],
        ),
        (
            Cmd::Start,
            &[
                "start.locked",
                "start.fifo-held",
                "start.fifo-removed",
                "start.released",
                "start.poststart-run",
            ],
        ),
        (
            Cmd::Exec,
            &[
                "exec.locked",
                "exec.cloned",
                "exec.go",
                "exec.ready",
                "exec.pid-file",
            ],
        ),
        (
            Cmd::Delete,
            &[
                "delete.locked",
                "delete.stopped",
                "delete.cgroup-removed",
                "delete.hooks-run",
                "delete.state-removed",
            ],
        ),
        (Cmd::Update, &["update.locked", "update.applied"]),
        (Cmd::Pause, &["pause.locked", "freeze.written"]),
        (Cmd::Resume, &["resume.locked", "freeze.written"]),
    ];
    // Hooks change the steps of the commands that run them; a user namespace those that
    // make or enter one. Every other command is the same in every shape.
    let mut jobs: Vec<(Shape, Cmd)> = COMMANDS.iter().map(|&c| (Shape::Plain, c)).collect();
    for c in [Cmd::Create, Cmd::Run, Cmd::Start, Cmd::Delete] {
        jobs.push((Shape::Hooks, c));
    }
    for c in [Cmd::Create, Cmd::Run, Cmd::Exec, Cmd::Delete] {
        jobs.push((Shape::Userns, c));
    }
    // Most of a cell is waiting (on the kernel, on pid 1 reaping a killed exec's orphan,
    // which the container's pid namespace waits for): three workers, one cell each.
    let points = parallel(&jobs, 3, |&(shape, cmd)| {
        points_checked(shape, cmd, required)
    });
    let cells: Vec<(Shape, Cmd, String)> = jobs
        .iter()
        .zip(points)
        .flat_map(|(&(shape, cmd), pts)| pts.into_iter().map(move |p| (shape, cmd, p)))
        .collect();
    let rows = parallel(&cells, 3, |(shape, cmd, p)| {
        cell(&bundle(*shape, *cmd), *shape, *cmd, p)
    });
    eprintln!("{}", grid(&cells));
    let mut table = String::from(
        "| shape | command | killed at | `list` shows | leftovers before delete | after `delete --force` | ms |\n|---|---|---|---|---|---|--:|\n",
    );
    let cells = rows.len();
    for line in rows {
        let _ = writeln!(table, "{line}");
    }
    eprintln!("failpoint matrix: {cells} cells, all clean\n{table}");
}
