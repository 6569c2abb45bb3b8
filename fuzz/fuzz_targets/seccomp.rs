//! linux.seccomp through skiff's own compiler (`skiff::seccomp::compile`): any profile is
//! compiled or refused, never a panic, and a compiled program fits the kernel's limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if skiff::bundle::check_depth(data).is_err() {
        return;
    }
    let Ok(profile) = serde_json::from_slice::<oci_spec::runtime::LinuxSeccomp>(data) else {
        return;
    };
    if let Ok(filter) = skiff::seccomp::compile(&profile) {
        assert!(!filter.instructions().is_empty());
        assert!(filter.instructions().len() <= skiff::seccomp::MAX_INSNS);
    }
});
