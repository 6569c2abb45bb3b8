//! `state` and `list`: read-only views, with the status derived afresh from the kernel.

use std::io::Write;
use std::os::unix::fs::MetadataExt;

use anyhow::Result;

use crate::cli::{GlobalOpts, ListFormat};
use crate::state::{NotFound, Store};

pub fn state(g: &GlobalOpts, id: &str) -> Result<()> {
    let (locked, st) = Store::new(&g.root).open(id)?;
    let status = locked.status(&st);
    let text = serde_json::to_string_pretty(&st.public(status))?;
    println!("{text}");
    Ok(())
}

pub fn list(g: &GlobalOpts, format: ListFormat, quiet: bool) -> Result<()> {
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
        let mut public = serde_json::to_value(st.public(status))?;
        public["owner"] = owner.into();
        rows.push(public);
    }
    let mut out = std::io::stdout().lock();
    if quiet {
        for r in &rows {
            writeln!(out, "{}", r["id"].as_str().unwrap_or_default())?;
        }
        return Ok(());
    }
    match format {
        ListFormat::Json => writeln!(out, "{}", serde_json::Value::Array(rows))?,
        ListFormat::Table => {
            let mut table = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec()];
            for r in &rows {
                let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                table.push(vec![
                    s("id"),
                    r["pid"].to_string(),
                    s("status"),
                    s("bundle"),
                    s("created"),
                    s("owner"),
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

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("#{uid}"))
}

#[cfg(test)]
mod tests {
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
