//! Key-driven flows end to end through the Harness: engine, journal, driver, executor.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
#![allow(clippy::too_many_lines)] // some tests tell a long story

mod ui_support;

use std::sync::Arc;

use btsdr::app::driver::Opened;
use btsdr::app::harness::Harness;
use btsdr::app::{Popup, StepMark};
use btsdr::engine::Engine;
use btsdr::journal::{JournalWriter, read_records};
use btsdr_types::SqlError;
use ui_support::*;

fn mark(h: &Harness, id: &str) -> StepMark {
    let run = h.app.run.as_ref().expect("a run is open");
    run.steps[run.index_of(id).expect("step")].mark
}

#[tokio::test]
async fn drill_fault_retry_manual_skip_crash_resume_signoff() {
    let dir = tempfile::tempdir().unwrap();
    let exec = demo_exec();
    let mut h = demo_harness(100, 30, dir.path(), Arc::new(exec.clone()));
    h.settle().await;
    assert!(h.screen().contains("DRILL"));

    // Run the first check.
    h.press("enter");
    h.settle().await;
    assert_eq!(mark(&h, "prep.version"), StepMark::Passed);
    // The selection moved on to the next open step, as after a manual confirm (issue 18: a
    // `j` here skipped a step).
    assert_eq!(h.app.selected_step().unwrap().0.id, "prep.stop-hosts");

    // Manual step: confirm with a note and evidence.
    h.press("c");
    h.type_text("stopped 4 host instances and ENTSSO");
    h.press("tab");
    h.type_text("ticket CHG-1234");
    h.press("enter");
    assert_eq!(mark(&h, "prep.stop-hosts"), StepMark::Done);
    // The selection moved on to the next open step.
    assert_eq!(h.app.selected_step().unwrap().0.id, "restore.files");

    // A fault: the server is unreachable. Read the error, then retry.
    exec.once(
        "adm_BackupHistory",
        Reply::Err(SqlError::Connect {
            server: "SQLDR01".into(),
            message: "connection refused".into(),
        }),
    );
    h.press("enter");
    h.settle().await;
    assert_eq!(mark(&h, "restore.files"), StepMark::Failed);
    let screen = h.screen();
    assert!(
        screen.contains("ERROR: cannot connect to SQLDR01"),
        "{screen}"
    );
    assert!(screen.contains("What to do next"), "{screen}");
    assert!(
        screen.contains("next: read the error, then r retry"),
        "{screen}"
    );
    h.press("r");
    h.settle().await;
    assert_eq!(mark(&h, "restore.files"), StepMark::Passed);

    // The destructive restore: typed confirmation, then it hangs... and btsdr "crashes".
    exec.once("RESTORE DATABASE", Reply::Hang);
    // The retry passed: the selection is already on the next step.
    h.press("enter");
    assert!(matches!(
        h.app.popups.last(),
        Some(Popup::TypedConfirm { .. })
    ));
    h.type_text("restore");
    h.press("enter");
    // Wrong case: still asking, with the reason on screen.
    assert!(h.screen().contains("type `RESTORE` exactly"));
    h.press("ctrl-u");
    h.type_text("RESTORE");
    h.press("enter");
    assert_eq!(mark(&h, "restore.mgmt"), StepMark::Running);
    let journal = dir.path().join("session.jsonl");
    drop(h);

    // Resume: replay the journal; the restore is in doubt and must be decided first.
    let rb = demo_runbook();
    let records = read_records(&journal).unwrap().entries;
    let engine = Engine::replay(
        Arc::clone(&rb),
        demo_vars(&rb),
        options(true, false),
        &records,
    )
    .unwrap();
    let (writer, _report) = JournalWriter::open_append(&journal).unwrap();
    let mut h = Harness::new(100, 30);
    h.open(Opened {
        engine,
        journal: writer,
        executor: Arc::new(exec.clone()),
        files_dir: dir.path().join("out"),
    });
    h.settle().await;
    assert_eq!(mark(&h, "restore.mgmt"), StepMark::InDoubt);
    assert!(matches!(h.app.popups.last(), Some(Popup::InDoubt { .. })));
    insta::assert_snapshot!("flow_resume_in_doubt", h.screen());
    // Mark done (choice 3) with how it was verified.
    h.press("3");
    assert!(
        matches!(h.app.popups.last(), Some(Popup::InDoubt { choice: 2, .. })),
        "a digit chooses, it does not apply"
    );
    h.press("enter");
    h.type_text("RESTORE HEADERONLY and sys.databases show BizTalkMgmtDb RESTORING at the mark");
    h.press("enter");
    assert_eq!(mark(&h, "restore.mgmt"), StepMark::Done);

    // Skip the last check with a reason.
    h.app.selected = h
        .app
        .run
        .as_ref()
        .unwrap()
        .index_of("restore.verify")
        .unwrap();
    h.press("s");
    h.press("enter"); // empty reason is refused
    assert!(matches!(h.app.popups.last(), Some(Popup::Skip { .. })));
    h.type_text("verified by the DBA in SSMS");
    h.press("enter"); // a reason alone does not commit a skip: the cursor moves to the word
    assert!(matches!(h.app.popups.last(), Some(Popup::Skip { .. })));
    assert_ne!(mark(&h, "restore.verify"), StepMark::Skipped);
    h.type_text("skip"); // the word is exact
    h.press("enter");
    assert_ne!(mark(&h, "restore.verify"), StepMark::Skipped);
    h.press("ctrl-u");
    h.type_text("SKIP");
    h.press("enter");
    assert_eq!(mark(&h, "restore.verify"), StepMark::Skipped);

    // Everything settled: the hint says sign off.
    assert!(h.screen().contains("sign off"), "{}", h.screen());
    h.press("S");
    // Name is prefilled with the operator; the cursor is on Role.
    h.type_text("DBA on call");
    h.press("enter");
    assert!(h.app.run.as_ref().unwrap().signed_off.is_some());
    insta::assert_snapshot!("flow_signed_off", h.screen());

    // Quit asks first and says the journal is safe.
    h.press("q");
    assert!(
        h.screen()
            .contains("The journal is always safe; you can resume with btsdr.")
    );
    h.press("y");
    assert!(h.quit_requested());

    // The journal holds all of it, chained.
    let text = std::fs::read_to_string(&journal).unwrap();
    for needle in [
        "session_started",
        "stopped 4 host instances and ENTSSO",
        "ticket CHG-1234",
        "connection refused",
        "destructive_confirmed",
        "resumed",
        "in_doubt_resolved",
        "RESTORE HEADERONLY",
        "verified by the DBA in SSMS",
        "signed_off",
        "DBA on call",
    ] {
        assert!(text.contains(needle), "journal lacks {needle:?}:\n{text}");
    }
    assert!(btsdr::journal::verify(&journal).unwrap().is_intact());
}

#[tokio::test]
async fn cancel_running_statement_asks_first() {
    let dir = tempfile::tempdir().unwrap();
    let exec = demo_exec();
    exec.once("@@VERSION", Reply::Hang);
    let mut h = demo_harness(100, 30, dir.path(), Arc::new(exec.clone()));
    h.settle().await;
    h.press("enter");
    assert_eq!(mark(&h, "prep.version"), StepMark::Running);
    h.press("ctrl-c");
    assert!(matches!(
        h.app.popups.last(),
        Some(Popup::CancelRunning { .. })
    ));
    h.press("n");
    assert!(h.app.popups.is_empty());
    assert_eq!(mark(&h, "prep.version"), StepMark::Running);
    h.press("ctrl-c");
    h.press("y");
    h.settle().await;
    assert_eq!(mark(&h, "prep.version"), StepMark::Failed);
    assert!(h.screen().contains("cancelled by the operator"));
}

#[tokio::test]
async fn copy_uses_osc52_text_of_the_command_and_the_sql() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = demo_harness(100, 30, dir.path(), Arc::new(demo_exec()));
    h.settle().await;
    h.press("j");
    h.press("y");
    assert_eq!(
        h.clipboard().last().map(String::as_str),
        Some("Get-Service BTSSvc* | Stop-Service -Force")
    );
    h.press("k");
    h.press("enter");
    h.settle().await;
    // The check passed and the selection moved on: back to it.
    h.press("k");
    h.press("y");
    let sql = h.clipboard().last().cloned().unwrap();
    assert!(sql.contains("SELECT @@VERSION"), "{sql}");
    // In the output pane, y copies the whole cell under the cursor.
    h.press("tab");
    h.press("tab");
    for _ in 0..4 {
        h.press("j");
    }
    h.press("y");
    assert!(
        h.clipboard()
            .last()
            .unwrap()
            .starts_with("Microsoft SQL Server 2022"),
        "{:?}",
        h.clipboard()
    );
}

#[tokio::test]
async fn dry_run_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let exec = demo_exec();
    let rb = demo_runbook();
    let engine = Engine::new(Arc::clone(&rb), demo_vars(&rb), options(false, true));
    let mut h = open_engine(100, 30, dir.path(), Arc::new(exec.clone()), engine);
    h.settle().await;
    h.press("enter");
    h.settle().await;
    assert_eq!(mark(&h, "prep.version"), StepMark::WouldRun);
    assert!(exec.sent.lock().unwrap().is_empty());
    let screen = h.screen();
    assert!(screen.contains("DRY-RUN"), "{screen}");
    assert!(screen.contains("[DRY ]"), "{screen}");
}

/// A manual step that asks for evidence keeps its form open (and the typed note) until the
/// evidence is given, instead of closing and losing the note to a refused confirmation.
#[tokio::test]
async fn manual_step_asks_for_its_evidence_in_the_form() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = demo_harness(80, 24, dir.path(), Arc::new(demo_exec()));
    h.settle().await;
    h.press("j");
    h.press("c");
    h.type_text("stopped the hosts");
    h.press("enter");
    assert!(
        matches!(h.app.popups.last(), Some(Popup::ManualConfirm { .. })),
        "the form stays open"
    );
    let s = h.screen();
    assert!(s.contains("required"), "{s}");
    assert!(s.contains("stopped the hosts"), "the note is kept:\n{s}");
    assert_eq!(mark(&h, "prep.stop-hosts"), StepMark::Pending);
    h.type_text("Get-Service output saved to CHG-7");
    h.press("enter");
    assert_eq!(mark(&h, "prep.stop-hosts"), StepMark::Done);
}
