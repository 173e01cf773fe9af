//! Key-driven flows end to end against the REAL simulator over TCP: a drill scenario served
//! on 127.0.0.1, the app's own tiberius executor, a journal in a temp dir, the `backup`
//! runbook from the library, all driven through the `Harness` with key presses.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
#![allow(clippy::too_many_lines)] // some tests tell a long story

use std::path::Path;
use std::sync::Arc;

use btsdr::app::driver::Opened;
use btsdr::app::harness::{Harness, t0};
use btsdr::app::{Popup, StepMark};
use btsdr::config::{DrillConfig, SecretSource};
use btsdr::engine::{Engine, EngineOptions, Variables};
use btsdr::engine::{Event, Outcome};
use btsdr::journal::{JournalWriter, read_records};
use btsdr::runbook::library::Library;
use btsdr::runbook::model::Runbook;
use btsdr::sql::executor::{Executor, TiberiusExecutor, run_once};
use btsdr_sim::drill::Drill;
use btsdr_types::Role;
use btsdr_types::Statement;

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
        security_warnings: Vec::new(),
        dry_run: false,
        two_person_rule: false,
        operator: "alice".into(),
        session_id: SESSION.into(),
        environment: format!("drill:{scenario}"),
        drill: true,
        rto_minutes: Some(60),
        rpo_minutes: Some(15),
        declared_at: Some(t0()),
        plan: None,
    }
}

/// Runbook defaults overlaid with the drill's values (as `btsdr drill` does).
fn variables(rb: &Runbook, drill: &Drill) -> Variables {
    let mut v = Variables::from_runbook(rb);
    for (k, val) in drill.variables() {
        v.set(&k, val);
    }
    v
}

fn executor(drill: &Drill) -> Arc<dyn Executor> {
    let secrets = drill.secrets();
    let s: &dyn SecretSource = &secrets;
    match TiberiusExecutor::new(&drill.environment(), s) {
        Ok(e) => Arc::new(e),
        Err(e) => panic!("cannot build the executor for the drill: {e}"),
    }
}

fn mark(h: &Harness, id: &str) -> StepMark {
    let run = h.app.run.as_ref().expect("a run is open");
    run.steps[run.index_of(id).expect("step")].mark
}

/// Selects a step by id with the find popup (`/`, type, Enter), as an operator would.
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

/// The screen without what changes between runs (ports, wall-clock times).
fn stable(screen: &str) -> String {
    let port = regex::Regex::new(r"127\.0\.0\.1[:,]\d+").unwrap();
    let time = regex::Regex::new(r"\b\d{2}:\d{2}:\d{2}\b").unwrap();
    let ms = regex::Regex::new(r"\b\d+ ?ms\b").unwrap();
    let s = port.replace_all(screen, "127.0.0.1:PORT");
    let s = time.replace_all(&s, "HH:MM:SS");
    ms.replace_all(&s, "N ms").into_owned()
}

fn open(dir: &Path, drill: &Drill, scenario: &str, w: u16, hgt: u16) -> Harness {
    let rb = backup_runbook();
    let engine = Engine::new(Arc::clone(&rb), variables(&rb, drill), options(scenario));
    let journal = JournalWriter::create(&dir.join(format!("{SESSION}.jsonl"))).expect("journal");
    let mut h = Harness::new(w, hgt);
    h.open(Opened {
        engine,
        journal,
        executor: executor(drill),
        files_dir: dir.join("files"),
    });
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_disabled_drill_fault_retry_manual_skip_crash_resume_signoff() {
    let dir = tempfile::tempdir().unwrap();
    let drill = Drill::start("job-disabled").await.expect("drill starts");
    let mut h = open(dir.path(), &drill, "job-disabled", 100, 30);
    h.settle().await;
    let s = h.screen();
    assert!(s.contains("DRILL"), "{s}");
    assert!(s.contains("drill:job-disabled"), "{s}");

    // 1. Manual step first in the list: confirm it with a note and evidence.
    h.press("c");
    assert!(matches!(
        h.app.popups.last(),
        Some(Popup::ManualConfirm { .. })
    ));
    h.press("enter"); // an empty note is refused, the popup stays
    assert!(matches!(
        h.app.popups.last(),
        Some(Popup::ManualConfirm { .. })
    ));
    h.type_text("change log entry 2026-11-21 added; no changes since last week");
    h.press("tab");
    h.type_text("CHG-4711");
    h.press("enter");
    assert_eq!(mark(&h, "prep.change-record"), StepMark::Done);

    // 2. The first checks run against the simulator and pass.
    for id in ["prep.sql-version", "prep.sysadmin"] {
        go_to(&mut h, id);
        h.press("enter");
        h.settle().await;
        assert_eq!(mark(&h, id), StepMark::Passed, "{id}:\n{}", h.screen());
    }
    let s = h.screen();
    assert!(s.contains("[PASS]"), "{s}");

    // 3. Skip one with a reason.
    go_to(&mut h, "prep.agent-account");
    h.press("s");
    h.press("enter"); // empty reason refused
    assert!(matches!(h.app.popups.last(), Some(Popup::Skip { .. })));
    h.type_text("Agent account reviewed by the DBA yesterday (CHG-4700)");
    h.press("enter"); // then the word that makes it deliberate
    h.type_text("SKIP");
    h.press("enter");
    assert_eq!(mark(&h, "prep.agent-account"), StepMark::Skipped);

    // 4. The fault: the Backup job is disabled. The check fails and says why and what next.
    go_to(&mut h, "job.state");
    h.press("enter");
    h.settle().await;
    assert_eq!(mark(&h, "job.state"), StepMark::Failed);
    let s = h.screen();
    assert!(
        s.contains("The Backup BizTalk Server") && s.contains("job is disabled"),
        "the failed assertion's message is on screen:\n{s}"
    );
    assert!(s.contains("What to do next"), "{s}");
    assert!(s.contains("next: read the error, then r retry"), "{s}");
    insta::assert_snapshot!("sim_job_state_failed", stable(&s));

    // The steps that fix it do not wait for the failed check; a step that waits says what for.
    go_to(&mut h, "job.configure");
    let s = h.screen();
    assert!(!s.contains("waits for job.state"), "{s}");
    go_to(&mut h, "full.force-and-run");
    let s = h.screen();
    assert!(s.contains("full.force-and-run waits for job.state"), "{s}");
    go_to(&mut h, "job.state");

    // 5. Retry without fixing anything: still failing (the simulator is not fooled).
    h.press("r");
    h.settle().await;
    assert_eq!(mark(&h, "job.state"), StepMark::Failed);

    // The DBA enables the job in SSMS (out of band), then the operator retries: it passes.
    let fix = Statement {
        role: Role::Source,
        database: "msdb".into(),
        sql: "EXEC msdb.dbo.sp_update_job @job_name = N'Backup BizTalk Server (BizTalkMgmtDb)', @enabled = 1;".into(),
        params: vec![],
        timeout_secs: 30,
        long_running: false,
    };
    run_once(executor(&drill).as_ref(), fix)
        .await
        .expect("enable the job out of band");
    h.press("r");
    h.settle().await;
    assert_eq!(mark(&h, "job.state"), StepMark::Passed, "{}", h.screen());

    // 6. A destructive step asks for the typed word and shows the exact statement and server
    // (after its setup choices, submitted as they are).
    go_to(&mut h, "job.configure");
    h.press("enter");
    assert!(matches!(h.app.popups.last(), Some(Popup::Variables { .. })));
    h.press("enter");
    assert!(matches!(
        h.app.popups.last(),
        Some(Popup::TypedConfirm { .. })
    ));
    let s = h.screen();
    insta::assert_snapshot!("sim_destructive_confirm", stable(&s));
    assert!(s.contains("SQLBTS01"), "the server is named:\n{s}");
    assert!(
        s.contains("N'\\\\FS01\\BizTalkBackup\\'"),
        "the values are shown:\n{s}"
    );
    // The whole statement can be read before typing the word.
    for _ in 0..6 {
        if h.screen().contains("sp_update_jobstep") {
            break;
        }
        h.press("pgdn");
    }
    let s = h.screen();
    assert!(
        s.contains("sp_update_jobstep"),
        "the statement is shown:\n{s}"
    );
    // Near misses never start it: case, a letter short, a space, an extra character.
    for near in [
        "configure",
        "CONFIGUR",
        " CONFIGURE",
        "CONFIGURE!",
        "CONFIGURE CONFIGURE",
    ] {
        h.type_text(near);
        h.press("enter");
        assert!(
            matches!(h.app.popups.last(), Some(Popup::TypedConfirm { .. })),
            "`{near}` was accepted:\n{}",
            h.screen()
        );
        assert_eq!(mark(&h, "job.configure"), StepMark::Pending, "`{near}`");
        h.press("ctrl-u");
    }
    h.type_text("CONFIGURE");
    h.press("enter");
    assert_eq!(mark(&h, "job.configure"), StepMark::Running);

    // 7. btsdr "crashes" right after journaling StepStarted: nothing more is written.
    let journal = dir.path().join(format!("{SESSION}.jsonl"));
    drop(h);
    let records = read_records(&journal).unwrap().entries;
    assert!(
        matches!(
            records.last().map(|r| (&r.event, r.step.as_deref())),
            Some((
                Event::StepStarted {
                    statement: Some(_),
                    ..
                },
                Some("job.configure")
            ))
        ),
        "the journal ends with the statement's StepStarted: {:?}",
        records.last()
    );

    // 8. Resume: replay the journal on a fresh harness; the step is in doubt and asked first.
    let rb = backup_runbook();
    let engine = Engine::replay(
        Arc::clone(&rb),
        variables(&rb, &drill),
        options("job-disabled"),
        &records,
    )
    .expect("replay");
    let (writer, report) = JournalWriter::open_append(&journal).expect("reopen the journal");
    assert!(report.torn.is_none());
    let mut h = Harness::new(100, 30);
    h.open(Opened {
        engine,
        journal: writer,
        executor: executor(&drill),
        files_dir: dir.path().join("files"),
    });
    h.settle().await;
    assert_eq!(mark(&h, "job.configure"), StepMark::InDoubt);
    assert!(matches!(h.app.popups.last(), Some(Popup::InDoubt { .. })));
    let s = h.screen();
    assert!(
        s.contains("job.configure") || s.contains("Set the four job step commands"),
        "{s}"
    );
    insta::assert_snapshot!("sim_resume_in_doubt", stable(&s));
    // A step in doubt blocks every other changing step (checks may still run): put the
    // question aside, try another destructive step, and be refused before any confirmation.
    h.press("esc");
    go_to(&mut h, "store.dest-adhoc");
    h.press("enter");
    h.settle().await;
    assert!(
        !matches!(h.app.popups.last(), Some(Popup::TypedConfirm { .. })),
        "a destructive step was offered while another is in doubt:\n{}",
        h.screen()
    );
    assert_eq!(mark(&h, "store.dest-adhoc"), StepMark::Pending);
    let said: Vec<String> = h.app.notices.iter().map(|n| n.text.clone()).collect();
    assert!(
        said.iter()
            .any(|t| t.contains("job.configure") && t.contains("in doubt")),
        "{said:?}\n{}",
        h.screen()
    );
    go_to(&mut h, "job.configure");
    h.press("enter");
    assert!(
        matches!(h.app.popups.last(), Some(Popup::InDoubt { .. })),
        "{}",
        h.screen()
    );
    // Re-run it: destructive, so the word is asked again.
    h.press("2");
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

    // 9. Sign off (the name is prefilled with the operator).
    h.press("S");
    h.type_text("DBA on call");
    h.press("enter");
    assert!(
        h.app.run.as_ref().unwrap().signed_off.is_some(),
        "{}",
        h.screen()
    );
    h.press("q");
    h.press("y");
    assert!(h.quit_requested());
    drop(h);

    // 10. The journal holds all of it, hash-chained.
    let read = read_records(&journal).unwrap();
    assert!(read.report.is_intact(), "{}", read.report);
    assert!(btsdr::journal::verify(&journal).unwrap().is_intact());
    let ev = |step: &str| {
        read.entries
            .iter()
            .filter(|r| r.step.as_deref() == Some(step))
            .map(|r| &r.event)
            .collect::<Vec<_>>()
    };
    assert!(matches!(
        read.entries[0].event,
        Event::SessionStarted { drill: true, .. }
    ));
    assert!(ev("prep.change-record").iter().any(|e| matches!(e, Event::ManualConfirmed { note, evidence, by } if note.contains("change log entry") && evidence == "CHG-4711" && by == "alice")));
    assert!(ev("prep.agent-account").iter().any(
        |e| matches!(e, Event::Skipped { reason, .. } if reason.contains("reviewed by the DBA"))
    ));
    let started = |step: &str| {
        ev(step)
            .iter()
            .filter(|e| matches!(e, Event::StepStarted { .. }))
            .count()
    };
    let finished = |step: &str, pass: bool| {
        ev(step)
            .iter()
            .filter(|e| matches!(e, Event::StepFinished { outcome, .. } if matches!(outcome, Outcome::Passed) == pass))
            .count()
    };
    assert_eq!(started("prep.sql-version"), 1);
    assert_eq!(finished("prep.sql-version", true), 1);
    // job.state: failed, failed again on retry, passed after the fix.
    assert_eq!(started("job.state"), 3);
    assert_eq!(finished("job.state", false), 2);
    assert_eq!(finished("job.state", true), 1);
    // job.configure: confirmed, started, crash, resumed in doubt, re-run, confirmed, passed.
    assert_eq!(
        ev("job.configure")
            .iter()
            .filter(|e| matches!(e, Event::DestructiveConfirmed { .. }))
            .count(),
        2
    );
    assert_eq!(started("job.configure"), 2);
    assert_eq!(finished("job.configure", true), 1);
    assert!(
        ev("job.configure")
            .iter()
            .any(|e| matches!(e, Event::InDoubtResolved { .. }))
    );
    assert!(read.entries.iter().any(|r| matches!(&r.event, Event::Resumed { in_doubt } if in_doubt == &vec!["job.configure".to_string()])));
    assert!(read.entries.iter().any(|r| matches!(&r.event, Event::SignedOff { name, role, .. } if name == "alice" && role == "DBA on call")));

    // And the simulator really ran the statement: the job steps now use the backup path.
    let check = Statement {
        role: Role::Source,
        database: "msdb".into(),
        sql: "SELECT s.command FROM msdb.dbo.sysjobs AS j JOIN msdb.dbo.sysjobsteps AS s ON s.job_id = j.job_id WHERE s.step_id = 3;".into(),
        params: vec![],
        timeout_secs: 30,
        long_running: false,
    };
    let out = run_once(executor(&drill).as_ref(), check)
        .await
        .expect("read the job step");
    let cmd = format!("{:?}", out.first().map(|s| &s.rows));
    assert!(
        cmd.contains("sp_MarkAll") && cmd.contains("BizTalkBackup"),
        "{cmd}"
    );
    drill.shutdown().await;
}

/// The healthy drill at 80x24: help is complete (scrolls to its end), hostile text in a
/// prompt is cleaned before the journal, and odd terminal sizes never panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_drill_help_hostile_input_and_resizes() {
    let dir = tempfile::tempdir().unwrap();
    let drill = Drill::start("healthy").await.expect("drill starts");
    let mut h = open(dir.path(), &drill, "healthy", 80, 24);
    h.settle().await;

    // Every key is reachable in help: scroll to the end with j.
    h.press("?");
    let first = h.screen();
    assert!(first.contains("scroll"), "help says it scrolls:\n{first}");
    for _ in 0..80 {
        h.press("j");
    }
    let end = h.screen();
    for want in [
        "quit (the journal is always safe)",
        "go to the home screen",
        "Status labels",
    ] {
        assert!(end.contains(want), "help lacks {want:?} at its end:\n{end}");
    }
    h.press("esc");
    assert!(h.app.popups.is_empty());

    // Hostile input: escape sequences and control characters never reach the journal raw.
    go_to(&mut h, "prep.learn");
    h.press("s");
    h.paste("read it\u{1b}[2J\u{7} twice\r\nreally");
    h.press("enter");
    h.type_text("SKIP");
    h.press("enter");
    assert_eq!(mark(&h, "prep.learn"), StepMark::Skipped);
    let text = std::fs::read_to_string(dir.path().join(format!("{SESSION}.jsonl"))).unwrap();
    assert!(text.contains("read it[2J twice  really"), "{text}");
    assert!(!text.contains("\\u001b"), "{text}");

    // Run a check, then squeeze and grow the terminal.
    go_to(&mut h, "prep.sql-version");
    h.press("enter");
    h.settle().await;
    assert_eq!(mark(&h, "prep.sql-version"), StepMark::Passed);
    for (w, hh) in [(1, 1), (2, 40), (200, 3), (30, 8), (100, 30), (80, 24)] {
        h.resize(w, hh);
        let _ = h.screen();
    }
    let s = h.screen();
    assert!(s.contains("[PASS]"), "{s}");
    drill.shutdown().await;
}

/// A runbook started on `drill:SCENARIO` (how a failure plan is practised) runs on the
/// simulator; a plan's later part continues on the group the earlier part changed, while a
/// drill started from Home builds a fresh group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runbooks_started_on_a_drill_environment_share_its_simulator() {
    use btsdr::app::Request;
    use btsdr::app::driver::Opener;
    let dir = tempfile::tempdir().unwrap();
    let lib = Library::load(None).unwrap();
    let mut opener =
        btsdr::launch::LiveOpener::new(lib, btsdr::config::Config::default(), dir.path().into());
    let start = |runbook: &str| Request::Start {
        runbook_id: runbook.into(),
        environment: "drill:job-disabled".into(),
        operator: "amy".into(),
        rto_minutes: Some(120),
        rpo_minutes: None,
        repoint: false,
    };
    // The runbook's default job name, which the scenario's job carries.
    let job = "Backup BizTalk Server (BizTalkMgmtDb)";
    let sql = |text: String| Statement {
        role: Role::Source,
        database: "msdb".into(),
        sql: text,
        params: vec![],
        timeout_secs: 30,
        long_running: false,
    };
    let enabled = |exec: Arc<dyn Executor>| {
        let stmt = sql(format!(
            "SELECT enabled FROM msdb.dbo.sysjobs WHERE name = N'{job}'"
        ));
        async move {
            let out = run_once(&*exec, stmt).await.expect("the simulator answers");
            out.sets[0]
                .rows
                .first()
                .and_then(|r| r.get(0))
                .map(|v| v.to_string())
        }
    };

    let first = opener
        .open(start("restore"))
        .expect("restore opens on the drill");
    let o = first.engine.options();
    assert!(o.drill, "a drill session");
    assert_eq!(o.environment, "drill:job-disabled");
    assert_eq!(
        enabled(Arc::clone(&first.executor)).await.as_deref(),
        Some("0")
    );
    run_once(
        &*first.executor,
        sql(format!(
            "EXEC msdb.dbo.sp_update_job @job_name = N'{job}', @enabled = 1"
        )),
    )
    .await
    .expect("the job is enabled");

    let second = opener
        .open(start("backup"))
        .expect("backup opens on the same drill");
    assert_eq!(
        enabled(Arc::clone(&second.executor)).await.as_deref(),
        Some("1")
    );

    let fresh = opener
        .open(Request::Drill {
            scenario: "job-disabled".into(),
            operator: "amy".into(),
            rto_minutes: None,
        })
        .expect("a new drill");
    assert_eq!(
        enabled(Arc::clone(&fresh.executor)).await.as_deref(),
        Some("0")
    );
}

/// Resumed by someone else (`BTSDR_OPERATOR=bob`): what follows is bob's, and the hand-over
/// is journaled, never bob's confirmations under the first operator's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_by_another_operator_is_journaled_as_a_hand_over() {
    use btsdr::app::Request;
    use btsdr::app::driver::Opener;
    let dir = tempfile::tempdir().unwrap();
    let lib = Library::load(None).unwrap();
    let mut opener =
        btsdr::launch::LiveOpener::new(lib, btsdr::config::Config::default(), dir.path().into());
    let mut first = opener
        .open(Request::Start {
            runbook_id: "restore".into(),
            environment: "drill:healthy".into(),
            operator: "amy".into(),
            rto_minutes: None,
            rpo_minutes: None,
            repoint: false,
        })
        .expect("restore opens on the drill");
    for fx in first
        .engine
        .handle(btsdr::engine::Input::Start, chrono::Utc::now())
    {
        if let btsdr::engine::Effect::Journal { record } = fx {
            first.journal.append(record).expect("journaled");
        }
    }
    let id = first.engine.options().session_id.clone();
    let path = first.journal.path().to_path_buf();
    drop(first);
    opener.operator = Some("bob".into());
    let resumed = opener
        .open(Request::Resume {
            session_id: id.clone(),
        })
        .expect("the session resumes");
    assert_eq!(resumed.engine.options().operator, "bob");
    drop(resumed);
    let records = btsdr::journal::read_records(&path).unwrap().entries;
    let last = records.last().expect("records");
    assert_eq!(last.operator, "bob");
    assert!(
        matches!(&last.event, btsdr::engine::Event::Note { text } if text.contains("amy hands the session to bob")),
        "{last:?}"
    );
    // The same operator again: no second hand-over.
    let again = opener
        .open(Request::Resume { session_id: id })
        .expect("resumes again");
    drop(again);
    let n = btsdr::journal::read_records(&path).unwrap().entries.len();
    assert_eq!(n, records.len());
}
