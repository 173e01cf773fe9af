//! Every fault scenario of the backup runbook, fixed from inside the app: key-driven against
//! the REAL simulator over TCP (a drill on 127.0.0.1, the app's tiberius executor, a journal in
//! a temp dir), each ending with the failing check passing on a re-check.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
#![allow(clippy::too_many_lines)] // some tests tell a long story

use std::path::Path;
use std::sync::Arc;

use btsdr::app::Request;
use btsdr::app::driver::{Opened, Opener};
use btsdr::app::harness::{Harness, t0};
use btsdr::app::{Popup, StepMark};
use btsdr::batch::drill::follow_record;
use btsdr::config::{DrillConfig, SecretSource};
use btsdr::engine::Record;
use btsdr::engine::{Engine, EngineOptions, Variables};
use btsdr::journal::JournalWriter;
use btsdr::runbook::library::Library;
use btsdr::runbook::model::Runbook;
use btsdr::sql::executor::{Executor, TiberiusExecutor};
use btsdr_sim::drill::Drill;
use btsdr_sim::drill::DrillHands;

const SESSION: &str = "20261121-030000-backup";

fn backup_runbook() -> Arc<Runbook> {
    let lib = match Library::load(None) {
        Ok(l) => l,
        Err(d) => panic!("the shipped runbooks do not load: {d:?}"),
    };
    lib.get("backup").expect("the backup runbook ships")
}

fn options(scenario: &str) -> EngineOptions {
    EngineOptions {
        operator: "alice".into(),
        session_id: SESSION.into(),
        environment: format!("drill:{scenario}"),
        drill: true,
        declared_at: Some(t0()),
        ..EngineOptions::default()
    }
}

fn executor(drill: &Drill) -> Arc<dyn Executor> {
    let secrets = drill.secrets();
    let s: &dyn SecretSource = &secrets;
    match TiberiusExecutor::new(&drill.environment(), s) {
        Ok(e) => Arc::new(e),
        Err(e) => panic!("cannot build the executor for the drill: {e}"),
    }
}

/// The drill's simulator following the session as `btsdr drill`'s opener does: each record,
/// once durable, goes to `batch::drill::follow_record` (confirmed manual steps).
struct Follow(DrillHands, Arc<Runbook>);

impl Opener for Follow {
    fn open(&mut self, _req: Request) -> Result<Opened, String> {
        Err("this test opens its session itself".into())
    }
    fn journaled(&mut self, record: &Record) {
        follow_record(&self.0, &self.1, record);
    }
}

/// The app on the backup runbook against a running drill, as `btsdr drill` opens it.
async fn open(dir: &Path, scenario: &str) -> (Drill, Harness) {
    let drill = Drill::start(scenario).await.expect("drill starts");
    let rb = backup_runbook();
    let mut vars = Variables::from_runbook(&rb);
    for (k, v) in drill.variables() {
        vars.set(&k, v);
    }
    let engine = Engine::new(Arc::clone(&rb), vars, options(scenario));
    let journal = JournalWriter::create(&dir.join(format!("{SESSION}.jsonl"))).expect("journal");
    let mut h = Harness::with_opener(100, 30, Box::new(Follow(drill.hands(), Arc::clone(&rb))));
    h.open(Opened {
        engine,
        journal,
        executor: executor(&drill),
        files_dir: dir.join("files"),
    });
    h.settle().await;
    (drill, h)
}

fn mark(h: &Harness, id: &str) -> StepMark {
    let run = h.app.run.as_ref().expect("a run is open");
    run.steps[run.index_of(id).expect("step")].mark
}

/// Selects a step with the find popup (`/`, type, Enter), as an operator would.
fn go_to(h: &mut Harness, id: &str) {
    h.press("/");
    h.type_text(id);
    h.press("enter");
    assert_eq!(
        h.app.selected_step().map(|(r, _)| r.id.clone()).as_deref(),
        Some(id),
        "find did not select {id}:\n{}",
        h.screen()
    );
}

/// Runs (Enter), retries (`r`) or re-verifies (`v`) a check and returns its mark.
async fn check(h: &mut Harness, id: &str) -> StepMark {
    go_to(h, id);
    let key = match mark(h, id) {
        StepMark::Failed => "r",
        StepMark::Passed => "v",
        _ => "enter",
    };
    h.press(key);
    h.settle().await;
    mark(h, id)
}

/// Runs a destructive step: Enter, the typed word, Enter; it must pass.
async fn destructive(h: &mut Harness, id: &str, word: &str) {
    go_to(h, id);
    h.press("enter");
    assert!(
        matches!(h.app.popups.last(), Some(Popup::TypedConfirm { .. })),
        "{id} asks for its word:\n{}",
        h.screen()
    );
    h.type_text(word);
    h.press("enter");
    h.settle().await;
    assert_eq!(mark(h, id), StepMark::Passed, "{id}:\n{}", h.screen());
}

/// Confirms a manual step with a note and evidence (a drill's simulator does it as soon as
/// the record is journaled).
async fn confirm(h: &mut Harness, id: &str, note: &str) {
    go_to(h, id);
    h.press("c");
    h.type_text(note);
    h.press("tab");
    h.type_text("CHG-5001");
    h.press("enter");
    assert_eq!(mark(h, id), StepMark::Done, "{}", h.screen());
}

/// Every cell of a step's result sets, joined (what the output pane and `o` show).
fn cells(h: &Harness, id: &str) -> String {
    let run = h.app.run.as_ref().expect("a run is open");
    let Some(o) = run.outputs.get(id) else {
        return String::new();
    };
    let mut out = String::new();
    for set in &o.sets {
        for row in &set.rows {
            for i in 0..set.columns.len() {
                if let Some(v) = row.get(i) {
                    out.push_str(&v.to_string());
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// Walks the output pane's cells with the keys (Tab, j, l) and opens each with `o`; true when
/// one shows `want` whole.
fn inspect_any_cell(h: &mut Harness, want: &str) -> bool {
    for _ in 0..3 {
        if h.app.focus == btsdr::app::Focus::Output {
            break;
        }
        h.press("tab");
    }
    for _ in 0..20 {
        for _ in 0..10 {
            h.press("o");
            let found = matches!(h.app.popups.last(),
                Some(Popup::Inspect { text, .. }) if text.contains(want));
            if !h.app.popups.is_empty() {
                h.press("esc");
            }
            if found {
                h.press("esc");
                return true;
            }
            h.press("l");
        }
        for _ in 0..10 {
            h.press("h");
        }
        h.press("j");
    }
    h.press("esc");
    false
}

/// The failure messages of a step's assertions.
fn failures(h: &Harness, id: &str) -> String {
    let run = h.app.run.as_ref().expect("a run is open");
    run.outputs
        .get(id)
        .map(|o| {
            o.asserts
                .iter()
                .filter(|a| !a.passed)
                .map(|a| format!("{} — {}", a.source, a.detail))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The job set-up steps a forced full backup must not wait for.
const SET_UP: &[&str] = &[
    "prep.sysadmin",
    "job.configure",
    "job.schedule",
    "job.enable",
];

/// Force a full backup straight after job.state: the `untouched` set-up steps stay unrun.
async fn force_full(h: &mut Harness, untouched: &[&str]) {
    assert_eq!(
        check(h, "job.state").await,
        StepMark::Passed,
        "{}",
        h.screen()
    );
    for setup in untouched {
        assert!(
            matches!(mark(h, setup), StepMark::Pending | StepMark::Blocked),
            "{setup} was not needed: {:?}",
            mark(h, setup)
        );
    }
    destructive(h, "full.force-and-run", "msdb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_full_is_found_freed_and_forced_to_a_passing_recheck() {
    let dir = tempfile::tempdir().unwrap();
    let (drill, mut h) = open(dir.path(), "share-full").await;

    // The failed step's own error is in the result, not only the job outcome.
    assert_eq!(check(&mut h, "job.last-outcome").await, StepMark::Failed);
    let c = cells(&h, "job.last-outcome");
    assert!(c.contains("There is not enough space on the disk"), "{c}");
    assert!(c.contains("112") && c.contains("3013"), "{c}");
    let f = failures(&h, "job.last-outcome");
    assert!(f.contains("store.free-space"), "{f}");
    // The whole message is reachable in the TUI: the output pane, a cell, `o`.
    assert!(
        inspect_any_cell(&mut h, "There is not enough space on the disk"),
        "no cell shows the step's error:\n{}",
        h.screen()
    );
    assert!(!f.contains("cancelled"), "no count-like text: {f}");

    // The trainee frees space on the share, then forces a full backup.
    confirm(
        &mut h,
        "store.free-space",
        "moved files older than the last full set to the archive: 2 TB free",
    )
    .await;
    force_full(&mut h, SET_UP).await;

    for id in [
        "job.last-outcome",
        "full.flag-cleared",
        "full.latest-set",
        "verify.partial-sets",
    ] {
        assert_eq!(
            check(&mut h, id).await,
            StepMark::Passed,
            "{id}: {}\n{}",
            failures(&h, id),
            h.screen()
        );
    }
    drill.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_force_on_a_full_share_leaves_the_flag_set() {
    // Forced while the share is still full: the job fails again, the flag stays set, and the
    // advice names the flag. (A full set older than a partial set failing full.latest-set is
    // the partial-set scenario's expectation in tests/sim_runbooks.rs.)
    let dir = tempfile::tempdir().unwrap();
    let (drill, mut h) = open(dir.path(), "share-full").await;
    force_full(&mut h, SET_UP).await;
    assert_eq!(check(&mut h, "full.flag-cleared").await, StepMark::Failed);
    let f = failures(&h, "full.flag-cleared");
    // What was asserted is shown with its values, never a raw placeholder.
    assert!(!f.contains("{{"), "{f}");
    drill.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_disabled_is_enabled_and_forced_without_the_set_up_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (drill, mut h) = open(dir.path(), "job-disabled").await;
    assert_eq!(check(&mut h, "job.state").await, StepMark::Failed);
    // Enabling needs nothing but the job: it is not behind job.configure.
    destructive(&mut h, "job.enable", "msdb").await;
    force_full(&mut h, &SET_UP[..3]).await;
    for id in ["full.latest-set", "verify.freshness", "job.last-outcome"] {
        assert_eq!(
            check(&mut h, id).await,
            StepMark::Passed,
            "{id}: {}",
            failures(&h, id)
        );
    }
    // The schedule check names the interval it compared with, filled in.
    assert_eq!(check(&mut h, "job.schedule-check").await, StepMark::Passed);
    assert_eq!(check(&mut h, "job.settings").await, StepMark::Passed);
    assert_eq!(
        cells(&h, "job.settings").lines().collect::<Vec<_>>(),
        ["0", "2", "14"],
        "compression, hour, days read from the job's step commands"
    );
    let run = h.app.run.as_ref().unwrap();
    let sources: Vec<String> = run.outputs["job.schedule-check"]
        .asserts
        .iter()
        .map(|a| a.source.clone())
        .collect();
    assert!(
        sources.iter().any(|s| s.contains("interval_minutes <= 15")),
        "{sources:?}"
    );
    drill.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_partial_and_missing_mark_are_healed_by_a_forced_full() {
    for (scenario, failing) in [
        ("stale-full", "verify.freshness"),
        ("partial-set", "verify.partial-sets"),
        ("missing-mark", "verify.marks"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (drill, mut h) = open(dir.path(), scenario).await;
        assert_eq!(check(&mut h, failing).await, StepMark::Failed, "{scenario}");
        force_full(&mut h, SET_UP).await;
        for id in [failing, "full.latest-set"] {
            assert_eq!(
                check(&mut h, id).await,
                StepMark::Passed,
                "{scenario} {id}: {}",
                failures(&h, id)
            );
        }
        drill.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_missing_is_created_on_the_destination() {
    let dir = tempfile::tempdir().unwrap();
    let (drill, mut h) = open(dir.path(), "login-missing").await;
    assert_eq!(check(&mut h, "store.dest-logins").await, StepMark::Failed);
    let f = failures(&h, "store.dest-logins");
    assert!(f.contains("store.dest-create-logins"), "{f}");
    destructive(&mut h, "store.dest-create-logins", "master").await;
    let c = cells(&h, "store.dest-create-logins");
    assert_eq!(
        c.trim(),
        "CONTOSO\\BizTalk Application Users",
        "only the missing one"
    );
    assert_eq!(
        check(&mut h, "store.dest-logins").await,
        StepMark::Passed,
        "{}",
        failures(&h, "store.dest-logins")
    );
    drill.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_lagging_shows_the_job_history_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let (drill, mut h) = open(dir.path(), "restore-lagging").await;
    assert_eq!(check(&mut h, "store.dest-lag").await, StepMark::Failed);
    assert!(
        failures(&h, "store.dest-lag").contains("store.dest-restore-history"),
        "{}",
        failures(&h, "store.dest-lag")
    );
    assert_eq!(
        check(&mut h, "store.dest-restore-history").await,
        StepMark::Failed
    );
    let c = cells(&h, "store.dest-restore-history");
    assert!(c.contains("Access is denied"), "{c}");
    confirm(
        &mut h,
        "store.dest-share-access",
        "granted read to CONTOSO\\svc-sqlagent-dr",
    )
    .await;
    destructive(&mut h, "store.dest-restore-now", "msdb").await;
    for id in ["store.dest-restore-history", "store.dest-lag"] {
        assert_eq!(
            check(&mut h, id).await,
            StepMark::Passed,
            "{id}: {}",
            failures(&h, id)
        );
    }
    drill.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_choices_are_asked_with_discovered_values_before_job_configure() {
    let dir = tempfile::tempdir().unwrap();
    let (drill, mut h) = open(dir.path(), "job-disabled").await;
    assert_eq!(mark(&h, "bam.order"), StepMark::NotApplicable);
    // The inventory finds BAMPrimaryImport in the job; the schedule check reads the interval.
    assert_eq!(check(&mut h, "prep.inventory").await, StepMark::Passed);
    assert_eq!(check(&mut h, "job.schedule-check").await, StepMark::Passed);
    assert_eq!(check(&mut h, "job.settings").await, StepMark::Passed);
    assert_eq!(
        cells(&h, "job.settings").lines().collect::<Vec<_>>(),
        ["0", "2", "14"],
        "compression, hour, days read from the job's step commands"
    );
    assert_eq!(check(&mut h, "prep.sysadmin").await, StepMark::Passed);
    go_to(&mut h, "job.configure");
    h.press("enter");
    let Some(Popup::Variables { form, names }) = h.app.popups.last() else {
        panic!(
            "job.configure asks its setup choices first:\n{}",
            h.screen()
        );
    };
    let value = |n: &str| {
        let i = names.iter().position(|x| x == n).expect(n);
        form.fields[i].value.clone()
    };
    assert_eq!(
        value("use_bam"),
        "true",
        "discovered, not the default false"
    );
    assert_eq!(value("log_interval_minutes"), "15");
    assert_eq!(value("backup_hour"), "2");
    for n in ["use_compression", "full_frequency", "days_to_keep"] {
        assert!(names.iter().any(|x| x == n), "{n} is asked");
    }
    let s = h.screen();
    assert!(s.contains("Setup choices") && s.contains("BAM"), "{s}");
    h.press("enter");
    assert!(
        matches!(h.app.popups.last(), Some(Popup::TypedConfirm { .. })),
        "{}",
        h.screen()
    );
    h.type_text("CONFIGURE");
    h.press("enter");
    h.settle().await;
    assert_eq!(
        mark(&h, "job.configure"),
        StepMark::Passed,
        "{}",
        h.screen()
    );
    // The choice is journaled and takes effect: the BAM sections now apply.
    assert_ne!(mark(&h, "bam.order"), StepMark::NotApplicable);
    let text = std::fs::read_to_string(dir.path().join(format!("{SESSION}.jsonl"))).unwrap();
    assert!(
        text.contains("\"variable_set\"") && text.contains("use_bam"),
        "{text}"
    );
    drill.shutdown().await;
}
