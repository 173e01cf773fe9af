//! Hostile input: random and mutated runbook and config files never panic the loaders and
//! every diagnostic points inside the file; hostile operator text in every prompt and any
//! terminal size (1x1 .. 300x100, random resize sequences) never panic the UI.
//! docs/RELIABILITY.md describes each class.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

#[path = "ui_support/mod.rs"]
mod ui_support;

use std::sync::Arc;

use btsdr::app::Popup;
use btsdr::app::harness::Harness;
use btsdr::config::{Config, ConfigError};
use btsdr::engine::{Engine, Variables};
use btsdr::runbook::diag::Diagnostic;
use proptest::prelude::*;
use ui_support::*;

// ------------------------------------------------------------------ files

const SHIPPED: &[&str] = &[
    include_str!("../runbooks/backup.toml"),
    include_str!("../runbooks/restore.toml"),
    include_str!("../runbooks/readiness.toml"),
    include_str!("../runbooks/disaster-recovery.toml"),
    ui_support::DEMO,
];

const CONFIG: &str = r#"
[environments.prod]
description = "Production group"

[environments.prod.source]
server = 'sql01\BIZTALK,1500'
auth = "sql"
user = "btsdr"
password_env = "BTSDR_TEST_PROD_PW"
database = "BizTalkMgmtDb"
connect_timeout_secs = 5
statement_timeout_secs = 900

[[environments.prod.msgbox]]
server = "sql02"
auth = "sql"
user = "btsdr"

[environments.prod.destination]
server = "drsql"
auth = "windows"
user = 'CONTOSO\svc-btsdr'
encrypt = "off"
trust_server_certificate = true
"#;

/// Fragments that break TOML and the runbook rules in interesting ways.
const TOKENS: &[&str] = &[
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "[",
    "]",
    "[[",
    "]]",
    "=",
    "\n",
    "\r\n",
    "#",
    "{{",
    "}}",
    "{{ident:",
    "@",
    ",",
    "{",
    "}",
    "\\",
    "\\u{",
    "\u{0}",
    "\u{feff}",
    "é",
    "数据",
    "🔥",
    "\u{202e}",
    "id = \"x\"",
    "kind = \"sql\"",
    "destructive = true",
    "after = [\"nope\"]",
    "[[sections.steps]]",
    "[[variables]]",
    "sql = \"DROP DATABASE x\"",
    "9999999999999999999999",
    "-1",
    "true",
    "\t",
    " ",
];

/// Checks that every diagnostic names the file and a position inside it.
fn in_bounds(file: &str, text: &str, diags: &[Diagnostic]) -> Result<(), String> {
    if diags.is_empty() {
        return Err("an error without any diagnostic".into());
    }
    let lines: Vec<&str> = text.split('\n').collect();
    for d in diags {
        if d.file != file {
            return Err(format!("diagnostic names {} not {file}: {d}", d.file));
        }
        if d.line == 0 || d.line > lines.len() {
            return Err(format!("line out of bounds ({} lines): {d}", lines.len()));
        }
        let width = lines[d.line - 1].chars().count();
        if d.col == 0 || d.col > width + 1 {
            return Err(format!(
                "column out of bounds (line has {width} chars): {d}"
            ));
        }
        if d.message.trim().is_empty() {
            return Err(format!("empty message at {}:{}", d.line, d.col));
        }
    }
    Ok(())
}

fn check_runbook(text: &str) -> Result<(), String> {
    match btsdr::runbook::loader::parse("fuzz.toml", text, None) {
        Ok(_) => Ok(()),
        Err(d) => in_bounds("fuzz.toml", text, &d),
    }
}

fn check_config(text: &str) -> Result<(), String> {
    match Config::parse(text, "fuzz-config.toml") {
        Ok(_) => Ok(()),
        Err(ConfigError::Invalid(d)) => in_bounds("fuzz-config.toml", text, &d),
        Err(e @ ConfigError::Io { .. }) => Err(format!("parse gave an I/O error: {e}")),
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, usize),
    DupLine(usize),
    SwapLines(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(a, t)| Edit::Insert(a, t)),
        any::<usize>().prop_map(Edit::DupLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// Applies edits on characters (never splitting one).
fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let n = chars.len().max(1);
        match e {
            Edit::Delete(at, len) => {
                let a = at % n;
                let b = (a + len).min(chars.len());
                if a < b {
                    chars.drain(a..b);
                }
            }
            Edit::Insert(at, t) => {
                let a = (at % (chars.len() + 1)).min(chars.len());
                for (i, c) in TOKENS[*t].chars().enumerate() {
                    chars.insert(a + i, c);
                }
            }
            Edit::DupLine(i) | Edit::SwapLines(i, _) => {
                let s: String = chars.iter().collect();
                let mut lines: Vec<String> = s.split('\n').map(str::to_string).collect();
                let k = lines.len();
                let a = i % k;
                if let Edit::SwapLines(_, j) = e {
                    lines.swap(a, j % k);
                } else {
                    let l = lines[a].clone();
                    lines.insert(a, l);
                }
                chars = lines.join("\n").chars().collect();
            }
            Edit::Truncate(at) => chars.truncate(at % n),
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics_the_runbook_loader(s in "(?s).{0,300}") {
        prop_assert_eq!(check_runbook(&s), Ok(()));
    }

    #[test]
    fn random_bytes_never_panic_the_loaders(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        let s = String::from_utf8_lossy(&b);
        prop_assert_eq!(check_runbook(&s), Ok(()));
        prop_assert_eq!(check_config(&s), Ok(()));
    }

    #[test]
    fn mutated_shipped_runbooks_never_panic_and_point_inside(
        which in 0..SHIPPED.len(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let text = mutate(SHIPPED[which], &edits);
        prop_assert_eq!(check_runbook(&text), Ok(()));
    }

    #[test]
    fn mutated_configs_never_panic_and_point_inside(
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let text = mutate(CONFIG, &edits);
        prop_assert_eq!(check_config(&text), Ok(()));
    }

    #[test]
    fn random_config_text_never_panics(s in "(?s)\\[environments\\.[a-z]{1,3}(\\.source)?\\]\n.{0,200}") {
        prop_assert_eq!(check_config(&s), Ok(()));
    }
}

#[test]
fn the_unmutated_files_load() {
    // Each must load (it used to pass when a file failed with in-bounds diagnostics).
    for (i, t) in SHIPPED.iter().enumerate() {
        if let Err(d) = btsdr::runbook::loader::parse("x.toml", t, None) {
            let d: Vec<String> = d.iter().map(ToString::to_string).collect();
            panic!("shipped file #{i} does not load:\n{}", d.join("\n"));
        }
    }
    if let Err(e) = Config::parse(CONFIG, "c.toml") {
        panic!("{e}");
    }
}

#[test]
fn diagnostics_at_the_very_end_of_a_file_are_in_bounds() {
    for t in [
        "",
        "\n",
        "id = ",
        "id = \"x\"\n[[sections]]\n",
        "[[sections.steps]]",
        "\u{feff}",
        "a = 1\nb = [",
        "é = 1",
    ] {
        assert_eq!(check_runbook(t), Ok(()), "{t:?}");
        assert_eq!(check_config(t), Ok(()), "{t:?}");
    }
}

// ------------------------------------------------------------------ operator input

fn hostile() -> Vec<String> {
    vec![
        "x".repeat(10_000),
        String::new(),
        "   ".into(),
        "'; DROP DATABASE BizTalkMgmtDb; --".into(),
        "]".into(),
        "Biz]; DROP DATABASE [x".into(),
        "\"double\" 'single' `back`".into(),
        "\u{0}\u{7}\u{8}\u{1b}[31mred\u{1b}[0m\r\n\t\u{7f}".into(),
        "Ωmega 数据库 🔥 e\u{301} \u{202e}txet lrt\u{200b}".into(),
        "{{ident:mgmt_db}} @backup_path $(rm -rf /) %s %n".into(),
        "\u{ffff}\u{10ffff}".into(),
    ]
}

/// The first characters of a value, for messages.
fn short(s: &str) -> String {
    format!(
        "{:?} ({} chars)",
        s.chars().take(40).collect::<String>(),
        s.chars().count()
    )
}

/// Types (short) or pastes (long) the text into the focused field, after clearing it.
fn enter_text(h: &mut Harness, s: &str) {
    h.press("ctrl-u");
    if s.chars().count() > 200 {
        h.paste(s);
    } else {
        h.type_text(s);
    }
}

fn close_popups(h: &mut Harness) {
    for _ in 0..5 {
        if h.app.popups.is_empty() {
            break;
        }
        h.press("esc");
    }
}

/// Draws at a few sizes (the value may be on screen).
fn draw_everywhere(h: &mut Harness) {
    for (w, hh) in [(100, 30), (20, 6), (1, 1), (300, 100), (100, 30)] {
        h.resize(w, hh);
        let s = h.screen();
        assert_eq!(s.lines().count(), hh as usize);
    }
}

#[test]
fn hostile_text_in_the_variables_popup_is_validated() {
    let rb = demo_runbook();
    let server = rb.variable("server").expect("server variable").clone();
    for s in hostile() {
        let dir = tempfile::tempdir().unwrap();
        // `server` (required, kind server) is not set: the session opens on the variables popup.
        let engine = Engine::new(
            Arc::clone(&rb),
            Variables::from_runbook(&rb),
            options(true, false),
        );
        let mut h = open_engine(100, 30, dir.path(), Arc::new(demo_exec()), engine);
        assert!(
            matches!(h.app.popups.last(), Some(Popup::Variables { .. })),
            "{}",
            h.screen()
        );
        enter_text(&mut h, &s);
        h.press("enter");
        draw_everywhere(&mut h);
        let accepted = btsdr::engine::validate_value(&server, &s).is_ok();
        match h.app.popups.last() {
            Some(Popup::Variables { form, .. }) => {
                assert!(!accepted, "a valid value was refused: {}", short(&s));
                let err = form.error.clone().unwrap_or_default();
                assert!(!err.trim().is_empty(), "no message for {}", short(&s));
                let head: String = err.chars().take(20).collect();
                let screen = h.screen();
                assert!(
                    screen.contains(&head),
                    "the message is not on screen for {}: {err}\n{screen}",
                    short(&s)
                );
            }
            _ => {
                // Accepted: the engine's own rule agreed, and the value is stored as typed.
                assert!(
                    accepted,
                    "{} passed the popup but not the engine's rule",
                    short(&s)
                );
                // Stored as typed (a field may cap the length).
                let stored = h
                    .app
                    .run
                    .as_ref()
                    .and_then(|r| r.vars.get("server").cloned());
                let stored = stored.unwrap_or_default();
                assert!(
                    !stored.is_empty() && s.contains(stored.trim()),
                    "stored {} chars, typed {}",
                    stored.len(),
                    s.len()
                );
            }
        }
        // Whatever was refused, a good value goes through.
        if !h.app.popups.is_empty() {
            enter_text(&mut h, "SQLDR01");
            h.press("enter");
            assert!(h.app.popups.is_empty(), "{}", h.screen());
        }
    }
    // Quotes, brackets, statement separators and pasted walls of text are never valid server
    // names (values only reach SQL as parameters or through quote_ident in any case).
    let wall = "S".repeat(10_000);
    for bad in [
        "'; DROP DATABASE BizTalkMgmtDb; --",
        "Biz]; DROP DATABASE [x",
        "]",
        wall.as_str(),
    ] {
        assert!(
            btsdr::engine::validate_value(&server, bad).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn hostile_text_in_every_prompt_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let exec = demo_exec();
    let mut h = demo_harness(100, 30, dir.path(), Arc::new(exec.clone()));
    let go = |h: &mut Harness, id: &str| {
        let i = h
            .app
            .run
            .as_ref()
            .and_then(|r| r.index_of(id))
            .expect("step");
        h.press("g");
        for _ in 0..i {
            h.press("j");
        }
    };
    for s in hostile() {
        // Find.
        h.press("/");
        enter_text(&mut h, &s);
        draw_everywhere(&mut h);
        h.press("enter");
        close_popups(&mut h);
        // The destructive step's typed word: never accepted unless it is the word.
        go(&mut h, "restore.mgmt");
        h.press("enter");
        if matches!(h.app.popups.last(), Some(Popup::TypedConfirm { .. })) {
            enter_text(&mut h, &s);
            h.press("enter");
            draw_everywhere(&mut h);
            assert!(
                matches!(h.app.popups.last(), Some(Popup::TypedConfirm { .. })),
                "{} was taken for the confirm word",
                short(&s)
            );
        }
        close_popups(&mut h);
        // Manual step: note and evidence.
        go(&mut h, "prep.stop-hosts");
        h.press("c");
        enter_text(&mut h, &s);
        h.press("tab");
        enter_text(&mut h, &s);
        draw_everywhere(&mut h);
        h.press("enter");
        close_popups(&mut h);
        // Skip with a reason.
        go(&mut h, "restore.verify");
        h.press("s");
        enter_text(&mut h, &s);
        draw_everywhere(&mut h);
        h.press("enter");
        close_popups(&mut h);
        // Sign-off.
        h.press("S");
        enter_text(&mut h, &s);
        h.press("tab");
        enter_text(&mut h, &s);
        draw_everywhere(&mut h);
        h.press("enter");
        close_popups(&mut h);
    }
    assert!(
        !exec
            .sent
            .lock()
            .unwrap()
            .iter()
            .any(|st| st.sql.contains("RESTORE")),
        "a hostile confirm word ran the destructive step"
    );
    let journal = dir.path().join("session.jsonl");
    let read = btsdr::journal::read_records(&journal).unwrap();
    assert!(read.report.is_intact(), "{}", read.report);
}

// ------------------------------------------------------------------ terminal sizes

#[test]
fn every_size_from_1x1_to_300x100_draws() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = demo_harness(100, 30, dir.path(), Arc::new(demo_exec()));
    let mut home = Harness::new(100, 30);
    let ws = [
        1u16, 2, 3, 5, 8, 13, 20, 30, 40, 59, 60, 79, 80, 100, 120, 200, 300,
    ];
    let hs = [1u16, 2, 3, 4, 6, 10, 15, 19, 20, 23, 24, 30, 50, 60, 100];
    for popup in ["", "?", "/", "S"] {
        if !popup.is_empty() {
            h.press(popup);
        }
        for &w in &ws {
            for &hh in &hs {
                h.resize(w, hh);
                assert_eq!(h.screen().lines().count(), hh as usize);
                home.resize(w, hh);
                let _ = home.screen();
            }
        }
        close_popups(&mut h);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_resize_sequences_never_panic(
        sizes in proptest::collection::vec((1u16..=300, 1u16..=100), 1..25),
        keys in proptest::collection::vec(
            prop::sample::select(vec!["j", "k", "G", "g", "tab", "pgdn", "pgup", "?", "esc", "/", "l", "h"]),
            0..25,
        ),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut h = demo_harness(100, 30, dir.path(), Arc::new(demo_exec()));
        for (i, (w, hh)) in sizes.iter().enumerate() {
            h.resize(*w, *hh);
            if let Some(k) = keys.get(i) {
                h.press(k);
            }
            prop_assert_eq!(h.screen().lines().count(), *hh as usize);
        }
    }
}
