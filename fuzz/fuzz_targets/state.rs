//! state.json as every command reads it: parse, derive the status (from /proc, for whatever
//! pid it names), print it as `state` does, and read back what `save` would write.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff::state::State;

fuzz_target!(|data: &[u8]| {
    if skiff::bundle::check_depth(data).is_err() {
        return;
    }
    let Ok(state) = serde_json::from_slice::<State>(data) else {
        return;
    };
    let status = skiff::state::derive_status(&state, std::path::Path::new("/nonexistent"));
    let _ = serde_json::to_string_pretty(&state.public(status)).unwrap();
    // Compared as JSON values: annotations are a HashMap, whose order is not kept.
    let saved = serde_json::to_vec(&state).unwrap();
    let again: State = serde_json::from_slice(&saved).expect("a saved state reads back");
    assert_eq!(
        serde_json::to_value(&again).unwrap(),
        serde_json::to_value(&state).unwrap()
    );
});
