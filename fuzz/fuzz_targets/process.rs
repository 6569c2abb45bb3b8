//! The process file of `exec --process`: parsed (a missing user is root, depth limit) and
//! checked for the LSM labels as exec does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = skiff::bundle::parse_process(data) else {
        return;
    };
    let _ = skiff::process::lsm::validate_process(&p, skiff::process::lsm::Host::detect());
    let _ = serde_json::to_vec(&p).unwrap();
});
