//! The walls of docs/ARCHITECTURE.md, checked: which crate may depend on which, what the
//! engine and the journal may import, and no new import cycle between top-level modules.
//! Reads the repository's manifests and sources; builds nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn manifest(dir: &Path) -> toml::Table {
    let path = dir.join("Cargo.toml");
    read(&path)
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every dependency a manifest names (normal, dev, build, and per target), by package name.
fn dependencies(m: &toml::Table) -> BTreeSet<String> {
    fn from_tables(t: &toml::Table, out: &mut BTreeSet<String>) {
        for key in ["dependencies", "dev-dependencies", "build-dependencies"] {
            for (name, spec) in t.get(key).and_then(|d| d.as_table()).into_iter().flatten() {
                let package = spec.get("package").and_then(|p| p.as_str()).unwrap_or(name);
                out.insert(package.to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    from_tables(m, &mut out);
    for (_, t) in m
        .get("target")
        .and_then(|t| t.as_table())
        .into_iter()
        .flatten()
    {
        if let Some(t) = t.as_table() {
            from_tables(t, &mut out);
        }
    }
    out
}

/// What each workspace crate may depend on among the workspace's crates.
const CRATE_RULES: &[(&str, &[&str])] = &[
    // The leaf: shared domain types.
    ("btsdr-types", &[]),
    // The simulator is a witness: it never sees engine, journal, runbook or app code.
    ("btsdr-sim", &["btsdr-types"]),
    ("btsdr", &["btsdr-types", "btsdr-sim"]),
];

fn string_list(t: &toml::Table, key: &str) -> Vec<String> {
    t.get(key)
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn crates_depend_only_on_the_layers_below() {
    let root_manifest = manifest(&root());
    let ws = root_manifest
        .get("workspace")
        .and_then(|w| w.as_table())
        .expect("the root Cargo.toml has a [workspace]");
    let members = string_list(ws, "members");
    // CI runs `cargo test --all-targets` from the root: every member must be a default member.
    let defaults: BTreeSet<String> = string_list(ws, "default-members").into_iter().collect();
    let members_set: BTreeSet<String> = members.iter().cloned().collect();
    assert_eq!(
        defaults, members_set,
        "[workspace] default-members must list every member, or CI skips its tests"
    );
    let mut names = BTreeMap::new();
    for dir in &members {
        let m = manifest(&root().join(dir));
        let name = m
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or_else(|| panic!("{dir}/Cargo.toml has no package name"))
            .to_string();
        names.insert(name, dependencies(&m));
    }
    let mut problems = Vec::new();
    for dir in &members {
        let m = manifest(&root().join(dir));
        let inherits = m
            .get("lints")
            .and_then(|l| l.get("workspace"))
            .and_then(|w| w.as_bool())
            == Some(true);
        if !inherits {
            problems.push(format!(
                "{dir}/Cargo.toml: add `[lints] workspace = true` (the workspace's lints hold every crate)"
            ));
        }
    }
    for (name, deps) in &names {
        let Some((_, allowed)) = CRATE_RULES.iter().find(|(n, _)| n == name) else {
            problems.push(format!(
                "crate `{name}` has no rule in CRATE_RULES (tests/architecture.rs): say what it may depend on"
            ));
            continue;
        };
        for dep in deps {
            // A package's dev-dependency on itself turns on its `test-support` feature for its
            // own integration tests; it is not a dependency on another layer.
            if dep == name {
                continue;
            }
            if names.contains_key(dep) && !allowed.contains(&dep.as_str()) {
                problems.push(format!("crate `{name}` must not depend on `{dep}`"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", d.display()))
            .flatten()
        {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The code of a file without `//` comments (doc comments may name anything).
fn code(path: &Path) -> String {
    read(path)
        .lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `(file:line, matched text)` of every match of `pattern` in the code under `dir`.
fn find(dir: &str, pattern: &Regex) -> Vec<String> {
    let mut hits = Vec::new();
    for f in rust_files(&root().join(dir)) {
        for (i, line) in code(&f).lines().enumerate() {
            if let Some(m) = pattern.find(line) {
                let rel = f.strip_prefix(root()).unwrap_or(&f).display().to_string();
                hits.push(format!("{rel}:{}: `{}`", i + 1, m.as_str()));
            }
        }
    }
    hits
}

/// The modules `crate::X` a line refers to, including `crate::{a, b::c}`.
fn crate_refs(line: &str) -> Vec<String> {
    static SINGLE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\bcrate::(\w+)").expect("regex"));
    static GROUP: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\bcrate::\{([^}]*)").expect("regex"));
    let mut out: Vec<String> = SINGLE
        .captures_iter(line)
        .map(|c| c[1].to_string())
        .collect();
    for c in GROUP.captures_iter(line) {
        for part in c[1].split(',') {
            if let Some(first) = part.trim().split("::").next().filter(|s| !s.is_empty()) {
                out.push(first.to_string());
            }
        }
    }
    out
}

#[test]
fn the_engine_is_pure_and_imports_no_layer_above_it() {
    // The engine decides; drivers perform. It may use the runbook model and the shared types.
    let allowed = ["engine", "runbook"];
    let mut problems = Vec::new();
    for f in rust_files(&root().join("src/engine")) {
        for (i, line) in code(&f).lines().enumerate() {
            for m in crate_refs(line) {
                if !allowed.contains(&m.as_str()) {
                    let rel = f.strip_prefix(root()).unwrap_or(&f).display().to_string();
                    problems.push(format!("{rel}:{}: imports `crate::{m}`", i + 1));
                }
            }
        }
    }
    let io = Regex::new(
        r"\b(tokio|tiberius|ratatui|crossterm|btsdr_sim|std::fs|std::net|std::process|std::thread|Utc::now|Local::now|SystemTime::now|Instant::now)\b",
    )
    .expect("regex");
    problems.extend(
        find("src/engine", &io)
            .into_iter()
            .map(|h| format!("{h}: no I/O, async or clock reads in the engine")),
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_journal_stores_events_and_knows_nothing_of_the_app() {
    let above = Regex::new(r"\bcrate::(ui|app|tui|launch|batch|cli|report)\b|\bbtsdr_sim\b")
        .expect("regex");
    let hits = find("src/journal", &above);
    assert!(
        hits.is_empty(),
        "the journal depends on the engine only:\n{}",
        hits.join("\n")
    );
}

/// Known cycles between top-level modules of `src`. Remove an entry when its cycle is gone;
/// never add one. (Issue 16 removed the last, app/tui/ui: the update's view-model is
/// `app::view`, the `Driver` trait is `app::driver`'s.)
const KNOWN_CYCLES: &[&[&str]] = &[];

/// Test support, compiled only for tests (`test_support_does_not_ship_in_the_binary`): it
/// drives the whole stack (the harness draws through `ui`), so its imports are not layering.
const TEST_SUPPORT_FILES: &[&str] = &["app/harness.rs", "engine/fixture.rs"];

#[test]
fn no_new_import_cycle_between_top_level_modules() {
    let src = root().join("src");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in rust_files(&src) {
        let rel = f.strip_prefix(&src).unwrap_or(&f);
        let Some(first) = rel.components().next() else {
            continue;
        };
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let targets = edges.entry(module.clone()).or_default();
        if TEST_SUPPORT_FILES.iter().any(|t| rel == Path::new(t)) {
            continue;
        }
        for line in code(&f).lines() {
            targets.extend(crate_refs(line).into_iter().filter(|m| *m != module));
        }
    }
    let modules: Vec<String> = edges.keys().cloned().collect();
    // Reachability by fixed point (a few dozen modules).
    let mut reach = edges.clone();
    loop {
        let mut changed = false;
        for m in &modules {
            let next: BTreeSet<String> = reach[m]
                .iter()
                .flat_map(|t| reach.get(t).cloned().unwrap_or_default())
                .collect();
            let entry = reach.get_mut(m).expect("module");
            let before = entry.len();
            entry.extend(next);
            changed |= entry.len() != before;
        }
        if !changed {
            break;
        }
    }
    let mut cycles: BTreeSet<Vec<String>> = BTreeSet::new();
    for m in &modules {
        if reach[m].contains(m) {
            let group: Vec<String> = modules
                .iter()
                .filter(|o| reach[m].contains(*o) && reach[*o].contains(m))
                .cloned()
                .collect();
            cycles.insert(group);
        }
    }
    let known: BTreeSet<Vec<String>> = KNOWN_CYCLES
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
    assert_eq!(
        cycles, known,
        "modules that import each other (directly or around a loop) changed; a new cycle means a misplaced type \
         (move it down a layer); a cycle gone means KNOWN_CYCLES should shrink"
    );
}

/// What each top-level module of `src` may import (`crate::X`), from the bottom up. The top
/// (app, ui, tui, launch, cli) may use everything below it; a new module needs a line here.
const MODULE_RULES: &[(&str, &[&str])] = &[
    // Utilities: no module of the crate.
    ("embedded", &[]),
    ("paths", &[]),
    ("plain", &[]),
    ("table", &[]),
    ("logging", &["paths"]),
    // Time guidance: pure arithmetic on history rows (no I/O, no crate module).
    ("estimate", &[]),
    // The runbook model: what a runbook says, validated.
    ("runbook", &["embedded"]),
    // The engine decides (pure); its events are its own vocabulary.
    ("engine", &["runbook"]),
    ("config", &["paths", "plain", "runbook"]),
    // The journal stores the engine's events; SQL reaches the servers the config names.
    ("journal", &["engine"]),
    ("sql", &["config"]),
    ("guide", &["embedded", "runbook"]),
    (
        "report",
        &["engine", "journal", "paths", "plain", "runbook"],
    ),
    // What both drivers do alike with the engine's effects (write-ahead, generated files).
    ("effects", &["engine", "journal"]),
    (
        "batch",
        &[
            "config", "effects", "engine", "journal", "paths", "plain", "runbook", "sql", "table",
        ],
    ),
    // Read-only proofs on the operator's servers, and the restore from the backup files.
    (
        "preflight",
        &["batch", "engine", "paths", "plain", "runbook", "sql"],
    ),
    ("restore", &["batch", "plain", "sql"]),
    // The top: sessions, screens, the terminal loop and the command line.
    ("app", &["*"]),
    ("ui", &["*"]),
    ("tui", &["*"]),
    ("launch", &["*"]),
    ("cli", &["*"]),
];

#[test]
fn modules_import_only_the_layers_below() {
    let src = root().join("src");
    let modules: BTreeSet<String> = std::fs::read_dir(&src)
        .expect("src")
        .flatten()
        .map(|e| {
            e.file_name()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut problems = Vec::new();
    for m in &modules {
        if !MODULE_RULES.iter().any(|(n, _)| n == m) {
            problems.push(format!(
                "src/{m}: no rule in MODULE_RULES (tests/architecture.rs): say which layers it may import"
            ));
        }
    }
    for f in rust_files(&src) {
        let rel = f.strip_prefix(&src).unwrap_or(&f);
        let Some(first) = rel.components().next() else {
            continue;
        };
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some((_, allowed)) = MODULE_RULES.iter().find(|(n, _)| *n == module) else {
            continue;
        };
        if allowed.contains(&"*") {
            continue;
        }
        for (i, line) in code(&f).lines().enumerate() {
            for target in crate_refs(line) {
                // Exported macros (`crate::errln!`) are not modules.
                if target == module || !modules.contains(&target) {
                    continue;
                }
                if !allowed.contains(&target.as_str()) {
                    problems.push(format!(
                        "src/{}:{}: `{module}` imports `crate::{target}`, a layer it may not use",
                        rel.display(),
                        i + 1
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn test_support_does_not_ship_in_the_binary() {
    // The harness and the fixture are compiled for tests and the `test-support` feature only.
    for (file, module) in [
        ("src/app/mod.rs", "pub mod harness;"),
        ("src/engine/mod.rs", "pub mod fixture;"),
    ] {
        let text = read(&root().join(file));
        let lines: Vec<&str> = text.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.trim() == module)
            .unwrap_or_else(|| panic!("{file} no longer declares `{module}`: update this test"));
        let gated = lines[..at]
            .iter()
            .rev()
            .take_while(|l| l.trim_start().starts_with("#[") || l.trim_start().starts_with("///"))
            .any(|l| l.contains(r#"cfg(any(test, feature = "test-support"))"#));
        assert!(
            gated,
            "{file}: `{module}` must sit behind #[cfg(any(test, feature = \"test-support\"))]"
        );
    }
    let m = manifest(&root());
    let feature = m
        .get("features")
        .and_then(|f| f.get("test-support"))
        .is_some();
    let default_on = m
        .get("features")
        .and_then(|f| f.get("default"))
        .and_then(|d| d.as_array())
        .is_some_and(|d| d.iter().any(|v| v.as_str() == Some("test-support")));
    assert!(
        feature && !default_on,
        "Cargo.toml: a `test-support` feature, not on by default"
    );
}
