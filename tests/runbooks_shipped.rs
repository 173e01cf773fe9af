//! The shipped runbooks load and validate, and together cover every row of Microsoft's
//! checklists (the seed pages, Microsoft's checklists as fetched, are the spec; a copy is
//! kept in tests/fixtures/seeds so the tests need nothing outside the repository).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::collections::HashSet;
use std::path::PathBuf;

use btsdr::runbook::checklists;
use btsdr::runbook::library::Library;

fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seeds")
}

fn seed(prefix: &str) -> String {
    let dir = seeds_dir();
    let entry = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the spec pages must be at {}: {e}", dir.display()))
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("seed {prefix}_* missing"));
    std::fs::read_to_string(entry.path()).unwrap()
}

/// Data rows of each markdown table, per `## ` heading.
fn table_rows(text: &str) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    let mut heading = String::new();
    let mut in_table = false;
    for line in text.lines() {
        let l = line.trim();
        if let Some(h) = l.strip_prefix("## ") {
            heading = h.trim().to_string();
            in_table = false;
        } else if l.starts_with('|') {
            let first = l
                .trim_matches('|')
                .split('|')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            if first.starts_with("---") {
                in_table = true;
            } else if in_table {
                match out.last_mut() {
                    Some((h, n)) if *h == heading => *n += 1,
                    _ => out.push((heading.clone(), 1)),
                }
            }
        }
    }
    out
}

#[test]
fn every_shipped_runbook_loads() {
    let lib = Library::load(None).unwrap_or_else(|d| {
        panic!(
            "{}",
            d.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let ids: HashSet<&str> = lib.ids().into_iter().collect();
    for want in ["backup", "restore", "disaster-recovery", "readiness"] {
        assert!(ids.contains(want), "runbook {want} missing; have {ids:?}");
    }
    for rb in &lib.runbooks {
        assert!(rb.step_count() > 0, "{} has no steps", rb.id);
        for (_, st) in rb.steps() {
            assert!(
                !st.covers.is_empty() || !st.references.is_empty(),
                "{}: step {} neither covers a row nor cites a reference",
                rb.id,
                st.id
            );
        }
    }
}

#[test]
fn every_checklist_row_is_covered() {
    let lib = Library::load(None).expect("runbooks load");
    let missing: Vec<String> = lib
        .uncovered_rows()
        .iter()
        .map(|r| format!("{} {}", r.id, r.text))
        .collect();
    assert!(
        missing.is_empty(),
        "rows not covered by any step:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_covering_step_cites_the_rows_page() {
    let lib = Library::load(None).expect("runbooks load");
    for rb in &lib.runbooks {
        for (_, st) in rb.steps() {
            for c in &st.covers {
                let row = lib.rows.iter().find(|r| &r.id == c).expect("validated");
                let cited = st
                    .references
                    .iter()
                    .any(|u| u.starts_with("https://learn.microsoft.com/"));
                assert!(
                    cited,
                    "{}: step {} covers {} but cites no learn.microsoft.com page ({})",
                    rb.id, st.id, row.id, row.url
                );
            }
        }
    }
}

#[test]
fn fixture_lists_every_seed_table_row() {
    let rows = checklists::embedded().expect("checklists.toml parses");
    let count = |prefix: &str| rows.iter().filter(|r| r.id.starts_with(prefix)).count();
    // Checklist: Backup and Restore (004) and Checklist: Increasing Availability with DR (001).
    for (seed_prefix, doc) in [("004", "CBR"), ("001", "CDR")] {
        let tables = table_rows(&seed(seed_prefix));
        assert_eq!(
            tables.len(),
            2,
            "{doc}: expected a back-up table and a restore table, got {tables:?}"
        );
        for ((heading, n), part) in tables.iter().zip(["backup", "restore"]) {
            assert_eq!(
                count(&format!("{doc}.{part}.")),
                *n,
                "{doc} table `{heading}` has {n} rows"
            );
        }
    }
    // Best Practices for Backup and Restore (000): one row per bold bullet.
    let bullets = seed("000")
        .lines()
        .filter(|l| l.trim_start().starts_with("-   **"))
        .count();
    let top = rows
        .iter()
        .filter(|r| r.id.starts_with("BPBR.") && r.id.matches('.').count() == 1)
        .count();
    assert_eq!(top, bullets, "BPBR top-level bullets");
    // Every row's text comes from its seed page.
    for r in &rows {
        let text = seed(&r.doc[..3]);
        let words: Vec<&str> = r
            .text
            .split_whitespace()
            .filter(|w| w.len() > 3)
            .take(4)
            .collect();
        let plain = text.replace(['*', '\n'], " ");
        let plain: String = plain.split_whitespace().collect::<Vec<_>>().join(" ");
        for w in words {
            assert!(
                plain.contains(w.trim_matches(|c: char| !c.is_alphanumeric())),
                "{}: `{w}` not in {}",
                r.id,
                r.doc
            );
        }
    }
}

#[test]
fn user_folder_overrides_and_extends_embedded_runbooks() {
    let dir = tempfile::tempdir().unwrap();
    let mine = r#"id = "backup"
title = "Our backup runbook"
summary = "Site-specific."
version = "9.0.0"

[[sections]]
id = "s"
title = "S"

[[sections.steps]]
id = "s.one"
title = "Call the DBA on duty"
why = "Our policy."
kind = "manual"
run_on = "phone"
instructions = "Call +1 555 0100."
references = ["https://learn.microsoft.com/en-us/biztalk/core/checklist-backup-and-restore"]
"#;
    std::fs::write(dir.path().join("backup.toml"), mine).unwrap();
    std::fs::write(
        dir.path().join("extra.toml"),
        mine.replace("id = \"backup\"", "id = \"extra\""),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("broken.toml"),
        "id = \"restore\"\n[[sections]\n",
    )
    .unwrap();
    let lib = Library::load(Some(dir.path())).expect("embedded runbooks still load");
    assert_eq!(lib.get("backup").unwrap().version, "9.0.0", "same id wins");
    assert!(lib.get("extra").is_some(), "new ids are added");
    assert_ne!(
        lib.get("restore").unwrap().origin,
        dir.path().join("broken.toml").display().to_string(),
        "a broken user file keeps the embedded one"
    );
    assert_eq!(lib.warnings.len(), 1);
    let w = lib.warnings[0].to_string();
    assert!(w.contains("broken.toml:2:"), "{w}");
}

/// `btsdr recover --failure ID` names the sections in order, counts steps in good English and
/// ends with how to start (or practise) the first runbook.
#[test]
fn recover_prints_the_plan_and_how_to_start_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_btsdr"))
        .args(["recover", "--failure", "sql-computer"])
        .env("BTSDR_DATA_DIR", dir.path())
        .env("BTSDR_CONFIG_DIR", dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    let restore = text.find("1. Runbook `restore`").expect(&text);
    let backup = text.find("2. Runbook `backup`").expect(&text);
    assert!(restore < backup, "{text}");
    assert!(
        text.contains("Restore the master secret (1 step)\n"),
        "{text}"
    );
    assert!(!text.contains("(1 steps)"), "{text}");
    assert!(
        text.contains("`btsdr run restore --drill healthy`"),
        "{text}"
    );
}
