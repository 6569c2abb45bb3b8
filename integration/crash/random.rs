//! The second net under the failpoint matrix: commands SIGKILLed by the test at random
//! moments (issue 14's reproduction: `create` killed 0–10 ms in, then `delete --force` as
//! containerd does). Seeded, so a failure names a case that can be replayed.

use std::time::Duration;

use super::{bundle_dir, delete_force_and_check, kill_after, marked, skiff, with_hooks};
use crate::common::{require_root, text, Bundle, Rng};

/// One kill: `args` for `b`, SIGKILLed after `delay`; then `delete --force` and the check.
fn kill_once(b: &Bundle, args: &[&str], delay: Duration, what: &str) -> bool {
    b.write_config();
    let killed = kill_after(b.command(args), delay);
    delete_force_and_check(b, what);
    killed
}

/// How long an undisturbed `create` of `b` takes here (the quickest of three), so the kills
/// spread over the command whatever the build and the machine's load.
fn calibrate(b: &Bundle) -> Duration {
    let dir = bundle_dir(b);
    (0..3)
        .map(|_| {
            let t = std::time::Instant::now();
            let out = skiff(b, &["create", "--bundle", &dir, &b.id], &[]);
            assert!(out.status.success(), "{}", text(&out.stderr));
            let took = t.elapsed();
            let out = skiff(b, &["delete", "--force", &b.id], &[]);
            assert!(out.status.success(), "{}", text(&out.stderr));
            took
        })
        .min()
        .unwrap()
}

/// 200 kills: `create` (with and without hooks) and `run` at a random moment of an
/// undisturbed create's duration (issue 14 used 0–10 ms against a release build), plus
/// `exec`, `delete --force` and `pause` of running containers in their first 3 ms. The
/// count of kills that landed while the command still ran is printed.
#[test]
fn commands_killed_at_random_moments_leave_nothing_after_delete_force() {
    require_root!();
    let mut rng = Rng(0x5eed_0fc4_a5e5);
    let (mut runs, mut landed) = (0, 0);
    let plain = marked("rnd", "3600");
    let mut hooked = marked("rnd-hooks", "3600");
    with_hooks(&mut hooked);
    plain.write_config();
    hooked.write_config();
    let span = calibrate(&hooked).as_micros() as u64 + 1;
    for i in 0..200 {
        let r = rng.next();
        let us = (r >> 8) % span;
        let b = if r & 1 == 0 { &plain } else { &hooked };
        let dir = bundle_dir(b);
        let what = format!("case {i} (r={r:#x})");
        let killed = match (r >> 1) % 6 {
            0 | 1 => kill_once(
                b,
                &["create", "--bundle", &dir, &b.id],
                Duration::from_micros(us),
                &what,
            ),
            2 => kill_once(
                b,
                &["run", "--bundle", &dir, &b.id],
                Duration::from_micros(us),
                &what,
            ),
            n => {
                let out = skiff(b, &["run", "-d", "--bundle", &dir, &b.id], &[]);
                assert!(out.status.success(), "{what}: {}", text(&out.stderr));
                let delay = Duration::from_micros(us % 3000);
                match n {
                    3 => kill_once(
                        b,
                        &["exec", &b.id, "sh", "-c", "sleep 1", &b.id],
                        delay,
                        &what,
                    ),
                    4 => kill_once(b, &["delete", "--force", &b.id], delay, &what),
                    _ => kill_once(b, &["pause", &b.id], delay, &what),
                }
            }
        };
        runs += 1;
        landed += usize::from(killed);
    }
    // Most kills must land inside a command, or this proves little.
    assert!(landed * 2 > runs, "only {landed} of {runs} kills landed");
    eprintln!(
        "random kills: {runs} commands over 0..{span} us, {landed} killed while running, all clean"
    );
    drop(plain);
    drop(hooked);
}
