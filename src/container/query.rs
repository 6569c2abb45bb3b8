//! `state` and `list`: read-only views, with the status derived afresh from the kernel.

use std::io::Write;
use std::os::unix::fs::MetadataExt;

use anyhow::Result;

use super::{Format, Global};
use crate::state::{NotFound, PublicState, Store};

pub fn state(g: &Global, id: &str) -> Result<()> {
    let (locked, st) = Store::new(&g.root).open(id)?;
    let status = locked.status(&st);
    let text = serde_json::to_string_pretty(&st.public(status))?;
    // An error, not a panic, when the reader went away (`skiff state x | head -1`).
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

pub fn list(g: &Global, format: Format, quiet: bool) -> Result<()> {
    let store = Store::new(&g.root);
    let mut rows = Vec::new();
    for id in store.ids()? {
        let (locked, st) = match store.open(&id) {
            Ok(x) => x,
            // Deleted (or still being created) while we listed: not a container to show.
            Err(e) if e.is::<NotFound>() => continue,
            Err(e) => return Err(e),
        };
        let status = locked.status(&st);
        let owner = std::fs::metadata(&locked.dir)
            .map(|m| user_name(m.uid()))
            .unwrap_or_default();
        rows.push((st, status, owner));
    }
    let mut out = std::io::stdout().lock();
    if quiet {
        for (st, _, _) in &rows {
            writeln!(out, "{}", st.id)?;
        }
        return Ok(());
    }
    match format {
        // Serialised from the state struct, so the fields come in runc's order.
        Format::Json => {
            let list: Vec<_> = rows
                .iter()
                .map(|(st, status, owner)| PublicState {
                    owner,
                    ..st.public(*status)
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string(&list)?)?;
        }
        Format::Table => {
            let mut table = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec()];
            for (st, status, owner) in &rows {
                let p = st.public(*status);
                table.push(vec![
                    st.id.clone(),
                    p.pid.to_string(),
                    status.to_string(),
                    st.bundle.display().to_string(),
                    st.created.clone(),
                    owner.clone(),
                ]);
            }
            out.write_all(tabulate(&table).as_bytes())?;
        }
    }
    Ok(())
}

/// Columns padded like runc's tabwriter (minimum width 12, 3 spaces of padding).
fn tabulate(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut s = String::new();
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        s.push('\n');
    }
    s
}

/// The host's name for `uid`, from /etc/passwd (as runc's `list` shows it). Read directly
/// rather than through NSS: the release binary is linked statically.
fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| passwd_name(&p, uid))
        .unwrap_or_else(|| format!("#{uid}"))
}

fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    crate::process::identity::passwd_field(passwd, uid, 0).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwd_names_come_from_the_uid_column() {
        let p = "root:x:0:0:root:/root:/bin/sh\n#comment\nbad line\nsvc:x:1000:1000::/:/bin/sh\n";
        assert_eq!(super::passwd_name(p, 0).as_deref(), Some("root"));
        assert_eq!(super::passwd_name(p, 1000).as_deref(), Some("svc"));
        assert_eq!(super::passwd_name(p, 5), None);
    }

    #[test]
    fn table_pads_like_tabwriter() {
        let t = super::tabulate(&[
            vec!["ID".into(), "PID".into()],
            vec!["a-very-long-identifier".into(), "1".into()],
        ]);
        assert_eq!(
            t,
            "ID                       PID\na-very-long-identifier   1\n"
        );
    }
}
