//! A journal that cannot be written (/dev/full): the session says so clearly, and no
//! destructive statement is ever sent (write-ahead), whatever the operator presses.
//! docs/RELIABILITY.md describes the class.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

#[path = "ui_support/mod.rs"]
mod ui_support;

use std::path::Path;
use std::sync::Arc;

use btsdr::app::driver::Opened;
use btsdr::app::harness::Harness;
use btsdr::engine::Engine;
use btsdr::journal::JournalWriter;
use ui_support::*;

#[test]
fn an_unwritable_journal_stops_everything_and_the_ui_says_so() {
    let full = Path::new("/dev/full");
    if !full.exists() {
        eprintln!("no /dev/full on this system: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = JournalWriter::open_append(full).expect("open /dev/full");
    let exec = demo_exec();
    let rb = demo_runbook();
    let engine = Engine::new(Arc::clone(&rb), demo_vars(&rb), options(true, false));
    let mut h = Harness::new(100, 30);
    h.open(Opened {
        engine,
        journal,
        executor: Arc::new(exec.clone()),
        files_dir: dir.path().join("out"),
    });
    let s = h.screen();
    assert!(
        s.contains("journal"),
        "the screen names the journal problem:\n{s}"
    );
    assert!(
        s.contains("/dev/full") || s.contains("No space left"),
        "the screen says which journal and why:\n{s}"
    );
    // Try everything: run every step, confirm the destructive one with its word.
    for _ in 0..6 {
        h.press("enter");
        h.type_text("RESTORE");
        h.press("enter");
        h.press("esc");
        h.press("j");
    }
    let sent = exec.sent.lock().unwrap().clone();
    assert!(
        sent.is_empty(),
        "statements were sent without a journal: {:?}",
        sent.iter().map(|s| &s.sql).collect::<Vec<_>>()
    );
    let s = h.screen();
    assert!(s.contains("journal"), "{s}");
}
