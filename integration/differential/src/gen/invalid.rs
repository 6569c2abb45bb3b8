//! Mutations that make a config invalid: both runtimes must refuse it at create (their
//! wording may differ) and leave nothing behind.

use super::{Case, Draft};
use crate::rng::Rng;
use serde_json::{json, Value};

pub fn mutate(r: &mut Rng, case: &mut Case, draft: &Draft, config: &mut Value) {
    let name = match r.below(16) {
        0 => {
            config["process"]["args"] = json!([]);
            "process.args empty"
        }
        1 => {
            config["root"]["path"] = json!("no-such-rootfs");
            "root.path missing"
        }
        2 => {
            push_mount(
                config,
                json!({"destination": "/mnt/bad", "type": "nosuchfs", "source": "none"}),
            );
            "mount of an unknown filesystem type"
        }
        3 => {
            push_ns(config, json!({"type": "bogus"}));
            "unknown namespace type"
        }
        4 => {
            let first = config["linux"]["namespaces"].get(0).cloned();
            match first {
                Some(ns) => push_ns(config, ns),
                None => push_ns(config, json!({"type": "ipc", "path": "/nonexistent/ns"})),
            }
            "duplicate namespace"
        }
        5 => {
            config["linux"]["namespaces"] = json!(config["linux"]["namespaces"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter(|n| n["type"] != json!("network"))
                    .cloned()
                    .collect::<Vec<_>>())
                .unwrap_or_default());
            push_ns(
                config,
                json!({"type": "network", "path": "/nonexistent/ns/net"}),
            );
            "namespace path that does not exist"
        }
        6 if !draft.has("user") => {
            config["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 1}]);
            config["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 1}]);
            "id mappings without a user namespace"
        }
        7 if !draft.has("uts") => {
            config["hostname"] = json!("no-uts");
            "hostname without a UTS namespace"
        }
        8 if !draft.has("network") => {
            config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
            "network sysctl without a network namespace"
        }
        9 => {
            push_rlimit(
                config,
                json!({"type": "RLIMIT_NOSUCH", "soft": 1, "hard": 1}),
            );
            "unknown rlimit"
        }
        10 => {
            config["process"]["cwd"] = json!("relative/dir");
            "relative cwd"
        }
        11 => {
            config["hooks"] = json!({"prestart": [{"path": "/nonexistent/hook"}]});
            "prestart hook that does not exist"
        }
        12 => {
            config["hooks"] =
                json!({"createRuntime": [{"path": "@BIN@", "args": ["dfh-hook", "fail"]}]});
            "createRuntime hook that fails"
        }
        13 => {
            config["linux"]["devices"] =
                json!([{"path": "/dev/bad", "type": "x", "major": 1, "minor": 3}]);
            "device of an unknown type"
        }
        14 => {
            config["linux"]["resources"] = json!({"unified": {"nosuch.file": "1"}});
            "unified key naming no cgroup file"
        }
        _ => {
            config["process"]["args"] = json!(["/no/such/binary"]);
            "process.args[0] does not exist"
        }
    };
    case.invalid = Some(name.to_string());
    case.tag(format!("invalid:{name}"));
}

fn push_mount(config: &mut Value, m: Value) {
    if let Some(a) = config["mounts"].as_array_mut() {
        a.push(m);
    }
}

fn push_ns(config: &mut Value, ns: Value) {
    if let Some(a) = config["linux"]["namespaces"].as_array_mut() {
        a.push(ns);
    }
}

fn push_rlimit(config: &mut Value, rl: Value) {
    match config["process"]["rlimits"].as_array_mut() {
        Some(a) => a.push(rl),
        None => config["process"]["rlimits"] = json!([rl]),
    }
}
