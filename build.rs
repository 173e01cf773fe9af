//! Embeds every `runbooks/*.toml` and `assets/**/*.toml` file (but `assets/scenarios`, the
//! simulator's): adding one needs no code change.
#![allow(clippy::expect_used)] // a build script fails by panicking

use std::fmt::Write as _;
use std::path::Path;

fn collect(dir: &Path, out: &mut Vec<(String, String)>, base: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            collect(&p, out, base);
        } else if p.extension().is_some_and(|e| e == "toml") {
            let rel = p
                .strip_prefix(base)
                .unwrap_or(&p)
                .to_string_lossy()
                .replace('\\', "/");
            out.push((
                rel,
                p.canonicalize()
                    .unwrap_or(p.clone())
                    .to_string_lossy()
                    .into_owned(),
            ));
        }
    }
}

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&root);
    let mut code = String::new();
    for (name, dir) in [("RUNBOOKS", "runbooks"), ("ASSETS", "assets")] {
        println!("cargo:rerun-if-changed={dir}");
        let base = root.join(dir);
        let mut files = Vec::new();
        collect(&base, &mut files, &base);
        // Scenarios belong to the simulator crate (crates/btsdr-sim/build.rs embeds them).
        files.retain(|(rel, _)| !rel.starts_with("scenarios/"));
        for (rel, _) in &files {
            println!("cargo:rerun-if-changed={dir}/{rel}");
        }
        let _ = writeln!(code, "pub static {name}: &[(&str, &str)] = &[");
        for (rel, abs) in files {
            let _ = writeln!(code, "    ({rel:?}, include_str!({abs:?})),");
        }
        let _ = writeln!(code, "];");
    }
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    std::fs::write(out, code).expect("write embedded.rs");
}
