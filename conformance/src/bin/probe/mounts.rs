//! root, mounts (flags, recursive flags, propagation, data options, idmapped mounts).

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use serde_json::Value;

use crate::mountinfo::{
    expected_flags, flags_ok, norm, propagation_matches, top_mount, Flags, MountEnt,
};
use crate::{fail, pass, unverified, verdict};

pub(crate) fn check_root(cfg: &Value, mi: &[MountEnt]) {
    if cfg.pointer("/root/readonly").and_then(Value::as_bool) == Some(true) {
        let flag = top_mount(mi, "/")
            .map(|m| m.opts.iter().any(|o| o == "ro"))
            .unwrap_or(false);
        let r = fs::write("/.probe-write-test", b"x");
        let erofs = matches!(&r, Err(e) if e.raw_os_error() == Some(libc::EROFS));
        if r.is_ok() {
            let _ = fs::remove_file("/.probe-write-test");
        }
        verdict(
            "root.readonly",
            flag && erofs,
            format!("mount flag ro: {flag}; write gives EROFS: {erofs} ({r:?})"),
        );
    } else if cfg.pointer("/root/readonly").and_then(Value::as_bool) == Some(false) {
        let r = fs::write("/.probe-write-test", b"x");
        let _ = fs::remove_file("/.probe-write-test");
        verdict("root.readwrite", r.is_ok(), format!("write to / : {r:?}"));
    }
    if let Some(p) = cfg
        .pointer("/linux/rootfsPropagation")
        .and_then(Value::as_str)
    {
        match top_mount(mi, "/") {
            Some(m) => {
                let (ok, why) = propagation_matches(p, &m.optional);
                verdict(
                    "linux.rootfsPropagation",
                    ok,
                    format!("{p}: optional fields {:?} {why}", m.optional),
                );
            }
            None => fail("linux.rootfsPropagation", "no / in mountinfo"),
        }
    }
}

pub(crate) fn check_mounts(cfg: &Value, mi: &[MountEnt]) {
    let Some(list) = cfg.get("mounts").and_then(Value::as_array) else {
        return;
    };
    let mut order: Vec<(String, usize)> = vec![];
    for m in list {
        let dest = norm(m.get("destination").and_then(Value::as_str).unwrap_or(""));
        let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
        let opts: Vec<String> = m
            .get("options")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let src = m.get("source").and_then(Value::as_str).unwrap_or("");
        let is_bind = ty == "bind" || opts.iter().any(|o| o == "bind" || o == "rbind");
        let base = format!("mounts[{dest}]");
        // Masked paths may legitimately cover a listed mount (e.g. /sys/firmware):
        // use the first mount at that point that is not a masking one.
        let cands: Vec<&MountEnt> = mi.iter().filter(|e| e.point == dest).collect();
        let Some(ent) = cands
            .iter()
            .rev()
            .find(|e| is_bind || e.fstype == ty || cands.len() == 1)
            .copied()
            .or(cands.last().copied())
        else {
            fail(
                &format!("{base}.present"),
                "no mount at destination in /proc/self/mountinfo",
            );
            continue;
        };
        pass(
            &format!("{base}.present"),
            format!("{} {} on {}", ent.fstype, ent.source, ent.point),
        );
        order.push((dest.clone(), ent.idx));
        if !is_bind && !ty.is_empty() {
            // cgroup on a v2 host shows as cgroup2.
            let ok = ent.fstype == ty
                || (ty == "cgroup" && ent.fstype == "cgroup2")
                || (ty == "cgroup" && ent.fstype == "tmpfs");
            verdict(
                &format!("{base}.type"),
                ok,
                format!("want {ty} got {}", ent.fstype),
            );
        }
        if is_bind {
            // mountinfo's root field is the bound path inside its filesystem:
            // it must be a suffix of the source path.
            let ok = src.ends_with(ent.root.as_str()) || ent.root == "/";
            verdict(
                &format!("{base}.source"),
                ok,
                format!("source {src} mount root {}", ent.root),
            );
        }
        let (f, rec, atime, data) = expected_flags(&opts);
        let bad = flags_ok(ent, &f, atime);
        verdict(
            &format!("{base}.flags"),
            bad.is_empty(),
            format!(
                "options {opts:?} mountinfo {:?}{}",
                ent.opts,
                if bad.is_empty() {
                    String::new()
                } else {
                    format!(" wrong: {bad:?}")
                }
            ),
        );
        if !rec.is_empty() {
            let subs: Vec<&MountEnt> = mi
                .iter()
                .filter(|e| {
                    e.point
                        .starts_with(&format!("{}/", dest.trim_end_matches('/')))
                })
                .collect();
            if subs.is_empty() {
                unverified(
                    &format!("{base}.recursive"),
                    "no submounts to check recursion on",
                );
            } else {
                let mut bad = vec![];
                let ratime = rec
                    .iter()
                    .find(|(k, _)| ["noatime", "strictatime", "relatime"].contains(k))
                    .map(|(k, _)| *k);
                let rflags: Flags = rec
                    .iter()
                    .filter(|(k, _)| !["noatime", "strictatime", "relatime"].contains(k))
                    .map(|(k, v)| (*k, *v))
                    .collect();
                for s in &subs {
                    let b = flags_ok(s, &rflags, ratime);
                    if !b.is_empty() {
                        bad.push(format!("{}: {b:?} ({:?})", s.point, s.opts));
                    }
                }
                verdict(
                    &format!("{base}.recursive"),
                    bad.is_empty(),
                    format!("{} submounts; {}", subs.len(), bad.join("; ")),
                );
            }
        }
        if let Some(p) = opts.iter().rev().find(|o| {
            [
                "shared",
                "rshared",
                "slave",
                "rslave",
                "private",
                "rprivate",
                "unbindable",
                "runbindable",
            ]
            .contains(&o.as_str())
        }) {
            let (ok, why) = propagation_matches(p, &ent.optional);
            verdict(
                &format!("{base}.propagation"),
                ok,
                format!("{p}: optional fields {:?} {why}", ent.optional),
            );
        }
        check_mount_data(&base, &dest, ty, ent, &data);
        if opts.iter().any(|o| o == "idmap" || o == "ridmap") || m.get("uidMappings").is_some() {
            check_idmapped(&base, &dest, m);
        }
    }
    if order.len() > 1 {
        let mut bad = vec![];
        for w in order.windows(2) {
            // A later mount nested in an earlier one or independent: mountinfo
            // lists mounts in creation order.
            if w[1].1 < w[0].1 {
                bad.push(format!("{} before {}", w[1].0, w[0].0));
            }
        }
        verdict(
            "mounts.order",
            bad.is_empty(),
            if bad.is_empty() {
                "mountinfo order follows config order".into()
            } else {
                bad.join("; ")
            },
        );
    }
}

fn check_mount_data(base: &str, dest: &str, ty: &str, ent: &MountEnt, data: &[String]) {
    if data.is_empty() {
        return;
    }
    let mut bad = vec![];
    let mut unv = vec![];
    for d in data {
        let (k, v) = d
            .split_once('=')
            .map(|(a, b)| (a, Some(b)))
            .unwrap_or((d.as_str(), None));
        if ty == "tmpfs" && k == "mode" {
            let want = u32::from_str_radix(v.unwrap_or(""), 8).unwrap_or(0);
            let got = fs::metadata(dest)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(u32::MAX);
            if want != got {
                bad.push(format!("mode want {want:o} got {got:o}"));
            }
            continue;
        }
        if ty == "tmpfs" && k == "size" {
            let want = parse_size(v.unwrap_or(""));
            // SAFETY: statvfs into a zeroed struct.
            let got = unsafe {
                let mut s: libc::statvfs = std::mem::zeroed();
                let p = CString::new(dest).unwrap();
                if libc::statvfs(p.as_ptr(), &mut s) == 0 {
                    Some(s.f_blocks as u64 * s.f_frsize as u64)
                } else {
                    None
                }
            };
            if want.is_some() && got != want {
                bad.push(format!("size want {want:?} got {got:?}"));
            }
            continue;
        }
        let sup = ent
            .superopts
            .iter()
            .find(|s| s.split_once('=').map(|(a, _)| a).unwrap_or(s) == k);
        match (sup, v) {
            (Some(s), Some(v)) => {
                let sv = s.split_once('=').map(|(_, b)| b).unwrap_or("");
                let nz = |x: &str| x.trim_start_matches('0').to_string();
                if nz(sv) != nz(v) {
                    bad.push(format!("{k} want {v} got {sv}"));
                }
            }
            (Some(_), None) => {}
            (None, _) => unv.push(d.clone()),
        }
    }
    let check = format!("{base}.data");
    if !bad.is_empty() {
        fail(&check, format!("{bad:?} superopts {:?}", ent.superopts));
    } else if !unv.is_empty() {
        unverified(
            &check,
            format!(
                "not visible in mountinfo: {unv:?} (superopts {:?})",
                ent.superopts
            ),
        );
    } else {
        pass(&check, format!("{data:?}"));
    }
}

fn parse_size(s: &str) -> Option<u64> {
    let (num, mul) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1024),
        'm' | 'M' => (&s[..s.len() - 1], 1024 * 1024),
        'g' | 'G' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mul)
}

fn check_idmapped(base: &str, dest: &str, m: &Value) {
    // The driver puts a file owned by 0:0 (host) at the root of the source.
    // Through an idmapped mount whose mapping maps containerID c -> hostID h,
    // an on-disk id h is shown as c... we check the mapping for id 0 in both
    // directions the spec allows and report what is seen.
    let p = format!("{}/idmap-probe-file", dest.trim_end_matches('/'));
    let Ok(md) = fs::metadata(&p) else {
        unverified(&format!("{base}.idmap"), format!("{p} missing"));
        return;
    };
    let want_uid = m.get("uidMappings").and_then(|a| a.get(0)).and_then(|e| {
        let c = e["containerID"].as_u64()?;
        let h = e["hostID"].as_u64()?;
        // file on disk is owned by host uid 0 (== hostID when hostID is 0)
        if h == 0 {
            Some(c)
        } else if c == 0 {
            Some(h)
        } else {
            None
        }
    });
    let want_gid = m.get("gidMappings").and_then(|a| a.get(0)).and_then(|e| {
        let c = e["containerID"].as_u64()?;
        let h = e["hostID"].as_u64()?;
        if h == 0 {
            Some(c)
        } else if c == 0 {
            Some(h)
        } else {
            None
        }
    });
    let ok = want_uid.map(|u| u == md.uid() as u64).unwrap_or(true)
        && want_gid.map(|g| g == md.gid() as u64).unwrap_or(true);
    verdict(
        &format!("{base}.idmap"),
        ok,
        format!(
            "file owned {}:{} want {want_uid:?}:{want_gid:?}",
            md.uid(),
            md.gid()
        ),
    );
}
