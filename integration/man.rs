//! The man pages in man/ are generated from the clap definition; this test fails when they
//! are stale. Regenerate with `SKIFF_UPDATE_MAN=1 cargo test --test integration man_pages`.

use clap::CommandFactory;

fn render(cmd: &clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section("8")
        .render(&mut out)
        .unwrap();
    out
}

#[test]
fn man_pages_match_the_cli() {
    let mut root = skiff::cli::Cli::command();
    root.build();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let mut pages = vec![("skiff.8".to_string(), render(&root))];
    for sub in root.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("skiff-{}", sub.get_name());
        let sub = sub.clone().name(name.clone().leak() as &str);
        pages.push((format!("{name}.8"), render(&sub)));
    }
    let update = std::env::var_os("SKIFF_UPDATE_MAN").is_some();
    let mut stale = Vec::new();
    for (file, text) in &pages {
        let path = dir.join(file);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, text).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(text.as_slice()) {
            stale.push(file.clone());
        }
    }
    let expected: std::collections::BTreeSet<_> = pages.iter().map(|p| p.0.clone()).collect();
    let present: std::collections::BTreeSet<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".8"))
                .collect()
        })
        .unwrap_or_default();
    if update {
        for extra in present.difference(&expected) {
            std::fs::remove_file(dir.join(extra)).unwrap();
        }
        return;
    }
    assert!(
        stale.is_empty(),
        "stale man pages {stale:?}: run SKIFF_UPDATE_MAN=1 cargo test --test integration man_pages"
    );
    let extra: Vec<_> = present.difference(&expected).collect();
    assert!(
        extra.is_empty(),
        "man pages for commands that no longer exist: {extra:?}"
    );
}
