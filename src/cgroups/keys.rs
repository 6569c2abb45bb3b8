//! Case-insensitive field names for `linux.resources`, as runc reads them. runc decodes the
//! JSON with Go's encoding/json, which matches an object key to a struct field ignoring
//! case (an exact match first), so clients and runc's own tests send `"CPU": {"Cpus": "1"}`
//! to `update --resources` and `{"pagesize": ...}` in a config's hugepageLimits. serde
//! matches names exactly, so [`canonicalize`] renames such keys to the runtime-spec's spelling
//! before deserializing. The names are only the spec's fields: the keys of `rdma` (device
//! names) and `unified` (file names) are data, left as they are, and an unknown key stays
//! unknown.

use serde_json::Value;

/// The JSON shape below a field.
enum Shape {
    /// A value with no renamable keys inside.
    Leaf,
    /// An object with these fields.
    Fields(&'static [(&'static str, Shape)]),
    /// An array of the shape.
    List(&'static Shape),
    /// An object whose keys are data, with values of the shape.
    Map(&'static Shape),
}

use Shape::{Fields, Leaf, List, Map};

const DEVICE: Shape = Fields(&[
    ("allow", Leaf),
    ("type", Leaf),
    ("major", Leaf),
    ("minor", Leaf),
    ("access", Leaf),
]);

const WEIGHT_DEVICE: Shape = Fields(&[
    ("major", Leaf),
    ("minor", Leaf),
    ("weight", Leaf),
    ("leafWeight", Leaf),
]);

const THROTTLE_DEVICE: Shape = Fields(&[("major", Leaf), ("minor", Leaf), ("rate", Leaf)]);

const RESOURCES: Shape = Fields(&[
    ("devices", List(&DEVICE)),
    (
        "memory",
        Fields(&[
            ("limit", Leaf),
            ("reservation", Leaf),
            ("swap", Leaf),
            ("kernel", Leaf),
            ("kernelTCP", Leaf),
            ("swappiness", Leaf),
            ("disableOOMKiller", Leaf),
            ("useHierarchy", Leaf),
            ("checkBeforeUpdate", Leaf),
        ]),
    ),
    (
        "cpu",
        Fields(&[
            ("shares", Leaf),
            ("quota", Leaf),
            ("burst", Leaf),
            ("period", Leaf),
            ("realtimeRuntime", Leaf),
            ("realtimePeriod", Leaf),
            ("cpus", Leaf),
            ("mems", Leaf),
            ("idle", Leaf),
        ]),
    ),
    ("pids", Fields(&[("limit", Leaf)])),
    (
        "blockIO",
        Fields(&[
            ("weight", Leaf),
            ("leafWeight", Leaf),
            ("weightDevice", List(&WEIGHT_DEVICE)),
            ("throttleReadBpsDevice", List(&THROTTLE_DEVICE)),
            ("throttleWriteBpsDevice", List(&THROTTLE_DEVICE)),
            ("throttleReadIOPSDevice", List(&THROTTLE_DEVICE)),
            ("throttleWriteIOPSDevice", List(&THROTTLE_DEVICE)),
        ]),
    ),
    (
        "hugepageLimits",
        List(&Fields(&[("pageSize", Leaf), ("limit", Leaf)])),
    ),
    (
        "network",
        Fields(&[
            ("classID", Leaf),
            (
                "priorities",
                List(&Fields(&[("name", Leaf), ("priority", Leaf)])),
            ),
        ]),
    ),
    (
        "rdma",
        Map(&Fields(&[("hcaHandles", Leaf), ("hcaObjects", Leaf)])),
    ),
    ("unified", Leaf),
]);

/// Renames the keys of a LinuxResources JSON value that match a field only when case is
/// ignored. Where a key matches exactly, its case variants are left alone (and so ignored
/// as unknown); of several case variants alone, the last one in the object is kept.
pub fn canonicalize(resources: &mut Value) {
    walk(resources, &RESOURCES);
}

fn walk(v: &mut Value, shape: &Shape) {
    match (shape, v) {
        (Leaf, _) => {}
        (List(item), Value::Array(items)) => items.iter_mut().for_each(|i| walk(i, item)),
        (Map(value), Value::Object(map)) => map.values_mut().for_each(|v| walk(v, value)),
        (Fields(fields), Value::Object(map)) => {
            for (name, inner) in fields.iter() {
                if !map.contains_key(*name) {
                    let variants: Vec<String> = map
                        .keys()
                        .filter(|k| k.eq_ignore_ascii_case(name))
                        .cloned()
                        .collect();
                    let mut found = None;
                    for k in variants {
                        found = map.remove(&k);
                    }
                    if let Some(val) = found {
                        map.insert(name.to_string(), val);
                    }
                }
                if let Some(val) = map.get_mut(*name) {
                    walk(val, inner);
                }
            }
        }
        // A type mismatch is the deserializer's to report.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_differing_in_case_get_the_spec_spelling() {
        let mut v = json!({
            "CPU": {"Cpus": "1", "MEMS": "0"},
            "Memory": {"Limit": 1, "kerneltcp": 2, "CheckBeforeUpdate": true},
            "hugepagelimits": [{"pagesize": "2MB", "LIMIT": 4}],
            "blockio": {"weightdevice": [{"Major": 8, "minor": 0, "Weight": 10}],
                        "throttlereadiopsdevice": [{"major": 8, "minor": 0, "Rate": 1}]},
            "RDMA": {"MLX4_0": {"hcahandles": 1}},
            "Unified": {"Memory.High": "5"},
            "Devices": [{"Allow": true, "Access": "rwm"}],
            "pids": {"LIMIT": 3},
            "other": {"Cpus": "x"}
        });
        canonicalize(&mut v);
        assert_eq!(
            v,
            json!({
                "cpu": {"cpus": "1", "mems": "0"},
                "memory": {"limit": 1, "kernelTCP": 2, "checkBeforeUpdate": true},
                "hugepageLimits": [{"pageSize": "2MB", "limit": 4}],
                "blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 10}],
                            "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 1}]},
                "rdma": {"MLX4_0": {"hcaHandles": 1}},
                "unified": {"Memory.High": "5"},
                "devices": [{"allow": true, "access": "rwm"}],
                "pids": {"limit": 3},
                "other": {"Cpus": "x"}
            })
        );
        let r: oci_spec::runtime::LinuxResources = serde_json::from_value(v).unwrap();
        assert_eq!(r.cpu().as_ref().unwrap().cpus().as_deref(), Some("1"));
    }

    #[test]
    fn an_exact_match_wins() {
        let mut v = json!({"cpu": {"cpus": "0"}, "CPU": {"cpus": "1"}});
        canonicalize(&mut v);
        assert_eq!(v, json!({"cpu": {"cpus": "0"}, "CPU": {"cpus": "1"}}));
    }
}
