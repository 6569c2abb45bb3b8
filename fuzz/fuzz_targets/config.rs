//! config.json as `create` takes it: parse (field-naming errors, depth limit), then validate
//! and compile it into the plan against a bundle directory with a rootfs (the process, the
//! filesystem, linux.seccomp, the cgroup resources and device program, sysctls, network
//! devices...). Any input may be refused; none may panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn bundle() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        // One bundle for every run, in the fuzz workspace's (ignored) target directory.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-bundle");
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = skiff::bundle::parse(data) else {
        return;
    };
    // The probe reads the fuzz bundle's own directory: the rootfs, and namespace paths
    // the input names (existence only).
    let facts = skiff::host::HostFacts::probe(&spec, bundle());
    let _ = skiff::bundle::compile(spec, bundle().to_path_buf(), &facts);
});
