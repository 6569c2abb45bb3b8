//! The hook recorder: every generated hook runs this binary as
//! `dfh-hook hook KIND#N LOGFILE` and appends one JSON line to LOGFILE: its argv, env,
//! stdin (the state JSON), cwd, ids and namespaces. `dfh-hook fail` exits 1.

use serde_json::{json, Value};
use std::fs;
use std::io::{Read, Write};

const NAMESPACES: [&str; 8] = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];

pub fn main(args: &[String]) -> i32 {
    if args.get(1).map(String::as_str) == Some("fail") {
        eprintln!("dfh-hook: failing as asked");
        return 1;
    }
    let (Some(name), Some(log)) = (args.get(2), args.get(3)) else {
        eprintln!("usage: dfh-hook hook NAME LOGFILE");
        return 2;
    };
    let mut stdin = String::new();
    let _ = std::io::stdin().read_to_string(&mut stdin);
    let state: Value = serde_json::from_str(&stdin).unwrap_or(json!({"unparsed": stdin}));
    let ns: serde_json::Map<String, Value> = NAMESPACES
        .iter()
        .map(|n| {
            (
                n.to_string(),
                json!(fs::read_link(format!("/proc/self/ns/{n}"))
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "?".into())),
            )
        })
        .collect();
    let (_, euid, _) = crate::sys::getresuid();
    let record = json!({
        "hook": name,
        "argv": args,
        "env": std::env::vars_os().map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy())).collect::<Vec<_>>(),
        "stdin": state,
        "cwd": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_else(|e| format!("error {e}")),
        "euid": euid,
        "ns": ns,
    });
    let line = format!("{record}\n");
    match fs::OpenOptions::new().append(true).open(log) {
        Ok(mut f) => {
            // One write: O_APPEND keeps concurrent records whole.
            if let Err(e) = f.write_all(line.as_bytes()) {
                eprintln!("dfh-hook: writing {log}: {e}");
                return 1;
            }
            0
        }
        Err(e) => {
            eprintln!("dfh-hook: opening {log}: {e}");
            1
        }
    }
}
