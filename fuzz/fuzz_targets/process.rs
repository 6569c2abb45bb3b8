//! The process file of `exec --process`: parsed (a missing user is root, depth limit) and
//! compiled into a process plan as exec does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = skiff::bundle::parse_process(data) else {
        return;
    };
    let _ = serde_json::to_vec(&p).unwrap();
    let _ = skiff::process::plan::ProcessPlan::compile(p, skiff::process::lsm::Host::detect());
});
