//! The second net under the failpoint matrix: commands SIGKILLed by the test at random
//! moments (issue 14's reproduction: `create` killed 0–10 ms in, then `delete --force` as
//! containerd does). Seeded, so a failure names a case that can be replayed.

use std::time::Duration;

use super::{bundle_dir, kill_after, leftovers, marked, skiff, with_hooks};
use crate::common::{require_root, text, wait_for, Bundle};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// One kill: `args` for `b`, SIGKILLed after `delay`; then `delete --force` and the check.
fn kill_once(b: &Bundle, args: &[&str], delay: Duration, what: &str) -> bool {
    b.write_config();
    let killed = kill_after(b.command(args), delay);
    let out = skiff(b, &["delete", "--force", &b.id], &[]);
    assert!(
        out.status.success(),
        "{what}: delete --force: {}",
        text(&out.stderr)
    );
    let mut left = vec![];
    assert!(
        wait_for(2000, || {
            left = leftovers(b);
            left.is_empty()
        }),
        "{what}: left behind: {left:#?}"
    );
    killed
}

/// 300 kills: `create` (with and without hooks) and `run`, each 0–10 ms in (a debug
/// `create` takes about 20 ms here, so most land inside it), plus `start`, `exec` and
/// `delete --force` of running containers 0–3 ms in. The count of kills that landed while
/// the command still ran is printed.
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
    for i in 0..300 {
        let r = rng.next();
        let us = (r >> 8) % 10_000;
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
    eprintln!("random kills: {runs} commands, {landed} killed while running, all clean");
    drop(plain);
    drop(hooked);
}
