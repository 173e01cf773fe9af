//! The record an auditor signs: reopening a skipped step, closing a session, signing with
//! exceptions, a complete review closing, and the reports' N/A, controls and review framing.
//! Flows are key-driven against the simulator over TCP; report snapshots are built from
//! records the engine wrote (fixed times).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
#![allow(clippy::too_many_lines)] // some tests tell a long story

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use btsdr::app::driver::Opened;
use btsdr::app::harness::Harness;
use btsdr::app::{Popup, StepMark};
use btsdr::config::{DrillConfig, SecretSource};
use btsdr::engine::{Effect, Engine, EngineOptions, Event, Input, Record, Resolution, Variables};
use btsdr::journal::sessions::{SessionStatus, list_sessions};
use btsdr::journal::{JournalWriter, read_records};
use btsdr::report;
use btsdr::runbook::model::Runbook;
use btsdr::sql::executor::{Executor, TiberiusExecutor};
use btsdr_sim::drill::Drill;
use btsdr_types::{Column, QueryOutput, ResultSet, Value};

/// A small review: a confirmation, a check that waits for it, and a section that does not
/// apply (no BAM). Its `kind` makes it a review.
const REVIEW: &str = r#"
id = "team-review"
title = "Quarterly recovery readiness review"
summary = "The plan and the permissions, signed by a reviewer."
version = "1.0.0"
kind = "review"

[[variables]]
name = "source_sql_server"
label = "SQL Server instance hosting BizTalkMgmtDb"
kind = "server"
required = true

[[variables]]
name = "plan_document"
label = "Where the written plan is"
kind = "text"
default = "\\\\fs01\\dr\\plan-v7.docx"
required = true

[[variables]]
name = "use_bam"
label = "BAM is deployed"
kind = "bool"
default = false

[[sections]]
id = "plan"
title = "A written backup and restore plan"

[[sections.steps]]
id = "plan.document"
title = "Confirm the plan covers the five required points"
why = "Someone else must be able to restore from it."
kind = "manual"
run_on = "reviewer"
instructions = """
Open {{plan_document}} and confirm it states where backups are stored, the programs used, \
the computers backed up, the schedule and the off-site location."""
evidence = "Plan version and date."

[[sections.steps]]
id = "plan.sysadmin"
title = "Check the reviewer's login is sysadmin on the source"
why = "The review's checks read msdb."
kind = "check"
after = ["plan.document"]
server = "source"
database = "master"
sql = '''
SELECT SUSER_SNAME() AS login_name,
       IS_SRVROLEMEMBER('sysadmin') AS is_sysadmin;
'''

[[sections.steps.assert]]
each = "is_sysadmin == 1"
message = "The login is not sysadmin: use an account that is."

[[sections]]
id = "bam"
title = "BAM"
when = "use_bam"

[[sections.steps]]
id = "bam.confirm"
title = "Confirm the BAM databases are in the plan"
why = "BAM is backed up outside the job."
kind = "manual"
run_on = "reviewer"
instructions = "Find BAMStarSchema in the plan."
"#;

fn review_runbook() -> Arc<Runbook> {
    match btsdr::runbook::loader::parse("test:team-review.toml", REVIEW, None) {
        Ok(rb) => Arc::new(rb),
        Err(d) => panic!("the test review runbook does not load: {d:?}"),
    }
}

const SESSION: &str = "20261121-030000-team-review";

fn executor(drill: &Drill) -> Arc<dyn Executor> {
    let secrets = drill.secrets();
    let s: &dyn SecretSource = &secrets;
    match TiberiusExecutor::new(&drill.environment(), s) {
        Ok(e) => Arc::new(e),
        Err(e) => panic!("cannot build the executor for the drill: {e}"),
    }
}

/// Opens the review on the drill's group; the journal goes where `btsdr sessions` looks.
fn open_review(data: &Path, drill: &Drill) -> (Harness, std::path::PathBuf) {
    let rb = review_runbook();
    let mut vars = Variables::from_runbook(&rb);
    for (k, v) in drill.variables() {
        vars.set(&k, v);
    }
    let opts = EngineOptions {
        operator: "alice".into(),
        session_id: SESSION.into(),
        environment: "drill:healthy".into(),
        drill: true,
        ..EngineOptions::default()
    };
    let engine = Engine::new(Arc::clone(&rb), vars, opts);
    let dir = data.join("sessions");
    std::fs::create_dir_all(&dir).expect("sessions dir");
    let path = dir.join(format!("{SESSION}.jsonl"));
    let journal = JournalWriter::create(&path).expect("journal");
    let mut h = Harness::new(100, 30);
    h.open(Opened {
        engine,
        journal,
        executor: executor(drill),
        files_dir: data.join("files"),
    });
    (h, path)
}

fn mark(h: &Harness, id: &str) -> StepMark {
    let run = h.app.run.as_ref().expect("a run is open");
    run.steps[run.index_of(id).expect("step")].mark
}

fn go_to(h: &mut Harness, id: &str) {
    h.press("/");
    h.type_text(id);
    h.press("enter");
    assert_eq!(
        h.app.selected_step().map(|(r, _)| r.id.clone()).as_deref(),
        Some(id),
        "find did not select {id}"
    );
}

fn confirm_plan(h: &mut Harness, done_by: &str) {
    go_to(h, "plan.document");
    h.press("c");
    h.type_text("all five points present");
    h.press("tab");
    h.type_text("plan v7, 2026-10-02");
    h.press("tab");
    h.type_text(done_by);
    h.press("enter");
    assert_eq!(mark(h, "plan.document"), StepMark::Done);
}

fn status(data: &Path) -> SessionStatus {
    let all = list_sessions(data).expect("sessions list");
    let s = all
        .iter()
        .find(|s| s.id == SESSION)
        .expect("the session is listed");
    s.status
}

fn events(path: &Path) -> Vec<Record> {
    read_records(path).expect("journal reads").entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skip_makes_dependants_wait_reopen_runs_it_and_a_complete_review_closes() {
    let data = tempfile::tempdir().unwrap();
    let drill = Drill::start("healthy").await.expect("drill starts");
    let (mut h, path) = open_review(data.path(), &drill);
    h.settle().await;
    assert_eq!(mark(&h, "bam.confirm"), StepMark::NotApplicable);

    // Skip the confirmation: its dependant waits (as the popup promises).
    go_to(&mut h, "plan.document");
    h.press("s");
    h.type_text("plan is with legal");
    h.press("enter");
    h.type_text("SKIP");
    h.press("enter");
    assert_eq!(mark(&h, "plan.document"), StepMark::Skipped);
    go_to(&mut h, "plan.sysadmin");
    h.press("enter");
    h.settle().await;
    assert_eq!(mark(&h, "plan.sysadmin"), StepMark::Blocked);

    // Reopen it, with why: journaled with who.
    go_to(&mut h, "plan.document");
    h.press("R");
    assert!(matches!(h.app.popups.last(), Some(Popup::Reopen { .. })));
    h.press("enter"); // no reason: refused, the popup stays
    assert!(matches!(h.app.popups.last(), Some(Popup::Reopen { .. })));
    h.type_text("legal returned the plan");
    h.press("enter");
    assert_eq!(mark(&h, "plan.document"), StepMark::Pending);
    let reopened = events(&path).into_iter().find_map(|r| match r.event {
        Event::Reopened { by, reason } => Some((r.step, by, reason)),
        _ => None,
    });
    assert_eq!(
        reopened,
        Some((
            Some("plan.document".into()),
            "alice".into(),
            "legal returned the plan".into()
        ))
    );

    // Now it can be done (by the plan's owner, alice at the keyboard), and the check after
    // it runs against the simulator.
    confirm_plan(&mut h, "Dora Owner");
    go_to(&mut h, "plan.sysadmin");
    h.press("enter");
    h.settle().await;
    assert_eq!(
        mark(&h, "plan.sysadmin"),
        StepMark::Passed,
        "{}",
        h.screen()
    );
    assert_eq!(status(data.path()), SessionStatus::Open);

    // Everything applicable settled: signing closes the review.
    h.press("S");
    h.type_text("BizTalk administrator");
    h.press("tab");
    h.type_text("no findings");
    h.press("tab");
    h.type_text("2027-03-31");
    h.press("enter");
    assert!(h.app.popups.is_empty(), "{}", h.screen());
    let s = h.app.session.as_ref().expect("session");
    assert!(s.engine.is_over(), "a complete signed review is closed");
    assert_eq!(status(data.path()), SessionStatus::Closed);
    let recs = events(&path);
    let signed = recs.iter().find_map(|r| match &r.event {
        Event::SignedOff {
            exceptions,
            next_review,
            ..
        } => Some((exceptions.clone(), next_review.clone())),
        _ => None,
    });
    assert_eq!(signed, Some((vec![], "2027-03-31".to_string())));

    let r = report::build(&recs, Some(&review_runbook()), "OK", "h", true);
    let md = report::markdown(&r);
    for want in [
        "| Verdict | **READY: every applicable item passed or was confirmed; signed** |",
        "| Next review | 2027-03-31 |",
        "| Scope | Quarterly recovery readiness review on drill:healthy",
        "1 not applicable",
        "| done | 03:00:00 | — | alice, Dora Owner |",
        "Attested (alice, Dora Owner)",
        "reopened by alice",
        "Open \\\\\\\\fs01\\\\dr\\\\plan-v7.docx and confirm",
    ] {
        assert!(md.contains(want), "report lacks {want:?}:\n{md}");
    }
    for never in ["Disaster declared", "RTO", "RPO"] {
        assert!(!md.contains(never), "a review has no {never:?}:\n{md}");
        assert!(!report::html(&r).contains(never), "html has {never:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_with_exceptions_stays_open_a_second_signer_types_their_name_close_asks_why() {
    let data = tempfile::tempdir().unwrap();
    let drill = Drill::start("healthy").await.expect("drill starts");
    let (mut h, path) = open_review(data.path(), &drill);
    h.settle().await;
    confirm_plan(&mut h, "");

    // plan.sysadmin is not run: the sign-off lists it as an exception and the review stays open.
    h.press("S");
    h.type_text("BizTalk administrator");
    h.press("tab");
    h.type_text("the DBA was not available for the permission check");
    h.press("enter");
    assert!(h.app.popups.is_empty());
    assert!(
        !h.app.session.as_ref().unwrap().engine.is_over(),
        "open steps keep it open"
    );
    assert_eq!(status(data.path()), SessionStatus::Open);

    // The second signer's name is theirs to type.
    h.press("S");
    let Some(Popup::SignOff { form }) = h.app.popups.last() else {
        panic!("sign-off popup: {}", h.screen());
    };
    assert_eq!(
        form.value(0),
        "",
        "the second signer's name is not pre-filled"
    );
    h.type_text("Bob Auditor");
    h.press("tab");
    h.type_text("internal audit");
    h.press("enter");

    // Closing with a step open asks why, and keeps the popup until it has a reason.
    h.press("C");
    assert!(
        h.screen().contains("plan.sysadmin: pending"),
        "{}",
        h.screen()
    );
    h.press("enter");
    assert!(matches!(h.app.popups.last(), Some(Popup::Close { .. })));
    h.type_text("permission check moved to next quarter");
    h.press("enter"); // a reason alone does not close it: the word makes it deliberate
    assert!(matches!(h.app.popups.last(), Some(Popup::Close { .. })));
    assert!(!h.app.session.as_ref().unwrap().engine.is_over());
    h.type_text("CLOSE");
    h.press("enter");
    assert!(h.app.session.as_ref().unwrap().engine.is_over());
    assert_eq!(status(data.path()), SessionStatus::Closed);
    // The clock stopped at the close.
    let at_close = h.app.elapsed();
    assert!(at_close.is_some());
    h.advance(600);
    assert_eq!(
        h.app.elapsed(),
        at_close,
        "the clock stops when the session closes"
    );

    let recs = events(&path);
    let signers: Vec<(String, Vec<String>)> = recs
        .iter()
        .filter_map(|r| match &r.event {
            Event::SignedOff {
                name, exceptions, ..
            } => Some((name.clone(), exceptions.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        signers,
        vec![
            ("alice".into(), vec!["plan.sysadmin: pending".into()]),
            ("Bob Auditor".into(), vec!["plan.sysadmin: pending".into()]),
        ]
    );
    let close = recs
        .iter()
        .find(|r| r.event == Event::SessionClosed {})
        .expect("closed");
    assert!(
        close.details.contains("plan.sysadmin: pending")
            && close
                .details
                .contains("permission check moved to next quarter"),
        "{}",
        close.details
    );
    let md = report::markdown(&report::build(
        &recs,
        Some(&review_runbook()),
        "OK",
        "h",
        true,
    ));
    for want in [
        "REVIEW INCOMPLETE: 1 item(s) not reviewed; signed with 1 exception(s) by alice",
        "**signed with exceptions**: plan.sysadmin: pending",
        "## Reviewer comments",
        "the DBA was not available for the permission check",
        "## Findings and exceptions",
    ] {
        assert!(md.contains(want), "report lacks {want:?}:\n{md}");
    }
}

// ----- report snapshots from engine-written records -------------------------------------

fn at(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 2, 0, 0).unwrap() + Duration::minutes(min)
}

/// Feeds inputs, keeps the journal records; returns the request id of a RunSql if any.
fn feed(e: &mut Engine, recs: &mut Vec<Record>, input: Input, min: i64) -> Option<u64> {
    let fx = e.handle(input, at(min));
    let mut rid = None;
    for f in fx {
        match f {
            Effect::Journal { record } => recs.push(record),
            Effect::RunSql { request_id, .. } => rid = Some(request_id),
            Effect::Refused { text } => panic!("refused at {min}: {text}"),
            _ => {}
        }
    }
    rid
}

fn one_row(cols: &[&str], vals: Vec<Value>) -> QueryOutput {
    QueryOutput {
        sets: vec![ResultSet {
            columns: cols
                .iter()
                .map(|c| Column {
                    name: (*c).into(),
                    type_name: "nvarchar".into(),
                })
                .collect(),
            rows: vec![vals].into_iter().collect(),
            not_kept: 0,
        }],
        rows_affected: vec![],
    }
}

/// An incident on the fixture runbook with the two-person rule: N/A steps, a destructive
/// step confirmed and approved by two people, a crash while it ran, resolved after the
/// restart by a third, a skip, a reopening, and a close with a step open.
#[test]
fn report_shows_not_applicable_and_the_controls() {
    let rb = Arc::new(btsdr::engine::fixture::sample_runbook());
    let mut vars = Variables::from_runbook(&rb);
    vars.set("pwd", "s3cret-Passw0rd");
    let opts = EngineOptions {
        operator: "alice".into(),
        session_id: "20261121-020000-sample".into(),
        environment: "prod".into(),
        two_person_rule: true,
        rto_minutes: Some(60),
        rpo_minutes: Some(15),
        declared_at: Some(at(0)),
        ..EngineOptions::default()
    };
    let mut e = Engine::new(Arc::clone(&rb), vars.clone(), opts.clone());
    let mut recs = Vec::new();
    feed(&mut e, &mut recs, Input::Start, 1);
    let confirm = |step: &str, by: &str| Input::ConfirmManual {
        step: step.into(),
        by: by.into(),
        note: "stopped on every host".into(),
        evidence: "Get-Service output attached to CHG-7".into(),
    };
    feed(&mut e, &mut recs, confirm("stop-hosts", "alice"), 2);
    let skip = Input::Skip {
        step: "stop-hosts".into(),
        reason: "x".into(),
        by: "alice".into(),
    };
    // Done steps cannot be skipped; reopen first (who and why), then skip with a reason.
    assert!(
        e.handle(skip, at(3))
            .iter()
            .any(|f| matches!(f, Effect::Refused { .. }))
    );
    let reopen = Input::Reopen {
        step: "stop-hosts".into(),
        reason: "one host was still running".into(),
        by: "bob".into(),
    };
    feed(&mut e, &mut recs, reopen, 4);
    feed(&mut e, &mut recs, confirm("stop-hosts", "bob"), 6);
    let rid = feed(&mut e, &mut recs, Input::Run("check-jobs".into()), 7).expect("runs");
    let ok = one_row(
        &["name", "age_hours"],
        vec![Value::Text("BizTalkMgmtDb".into()), Value::Int(3)],
    );
    let done = |step: &str, request_id: u64, result| Input::SqlFinished {
        step: step.into(),
        request_id,
        result,
    };
    feed(&mut e, &mut recs, done("check-jobs", rid, Ok(ok)), 8);
    feed(&mut e, &mut recs, Input::Run("drop-db".into()), 9);
    let word = Input::ConfirmDestructive {
        step: "drop-db".into(),
        typed: "RESTORE".into(),
        by: "alice".into(),
    };
    feed(&mut e, &mut recs, word, 10);
    let second = Input::SecondOperatorConfirm {
        step: "drop-db".into(),
        by: "bob".into(),
    };
    feed(&mut e, &mut recs, second, 11).expect("runs after the approval");
    // The program stops while DROP DATABASE runs: replay, resume, resolve.
    let mut opts2 = opts.clone();
    opts2.operator = "carol".into();
    let mut e = Engine::replay(Arc::clone(&rb), vars, opts2, &recs).expect("replays");
    feed(&mut e, &mut recs, Input::Resume, 20);
    let mark_done = Input::ResolveInDoubt {
        step: "drop-db".into(),
        resolution: Resolution::MarkDone {
            note: "sys.databases no longer lists BizTalkMgmtDb".into(),
        },
    };
    feed(&mut e, &mut recs, mark_done, 22);
    let skip = Input::Skip {
        step: "wipe-db".into(),
        reason: "the database is already gone".into(),
        by: "carol".into(),
    };
    feed(&mut e, &mut recs, skip, 23);
    let sign = Input::SignOffWith {
        name: "Carol Shift".into(),
        role: "DBA on call".into(),
        comment: "set-pwd left for the morning shift".into(),
        next_review: String::new(),
        at: at(30),
    };
    feed(&mut e, &mut recs, sign, 30);
    let close = Input::CloseWithReason {
        reason: "handed over; see CHG-7".into(),
    };
    feed(&mut e, &mut recs, close, 31);

    let r = report::build(&recs, Some(&rb), "<STATUS>", "<HEAD>", true);
    let bam = r.steps.iter().find(|l| l.id == "bam-step").unwrap();
    assert_eq!(bam.status, report::StepStatus::NotApplicable);
    let md = report::markdown(&r);
    assert!(!md.contains("s3cret"), "no secret in the report");
    insta::assert_snapshot!("record_na_and_controls_md", md);
    let html = report::html(&r);
    for want in [
        "Two-person rule: ON",
        "typed word &quot;RESTORE&quot;; confirmed by alice; approved by bob",
        "in doubt after a restart; carol marked it done",
        "reopened by bob",
        "not applicable",
    ] {
        assert!(html.contains(want), "html lacks {want:?}");
    }
    insta::assert_snapshot!("record_na_and_controls_html", html);
}

/// A review's report: what each confirmation attested, who did each item, findings,
/// verdict, reviewer comments and next review date; no incident framing.
#[test]
fn review_report_shows_attestations_verdict_and_no_incident_framing() {
    let rb = review_runbook();
    let mut vars = Variables::from_runbook(&rb);
    vars.set("source_sql_server", "SQLBTS01");
    let opts = EngineOptions {
        operator: "rita".into(),
        session_id: SESSION.into(),
        environment: "prod".into(),
        ..EngineOptions::default()
    };
    let mut e = Engine::new(Arc::clone(&rb), vars, opts);
    let mut recs = Vec::new();
    feed(&mut e, &mut recs, Input::Start, 0);
    let confirm = Input::ConfirmManual {
        step: "plan.document".into(),
        by: "rita".into(),
        note: "points 1-4 present; off-site location missing".into(),
        evidence: "plan v7, 2026-10-02".into(),
    };
    feed(&mut e, &mut recs, confirm, 5);
    let rid = feed(&mut e, &mut recs, Input::Run("plan.sysadmin".into()), 6).expect("runs");
    let not_sysadmin = one_row(
        &["login_name", "is_sysadmin"],
        vec![Value::Text("CORP\\rita".into()), Value::Int(0)],
    );
    let finished = Input::SqlFinished {
        step: "plan.sysadmin".into(),
        request_id: rid,
        result: Ok(not_sysadmin),
    };
    feed(&mut e, &mut recs, finished, 7);
    let sign = Input::SignOffWith {
        name: "Rita Reviewer".into(),
        role: "internal audit".into(),
        comment: "off-site archive not in the plan; reviewer lacks sysadmin".into(),
        next_review: "2027-03-31".into(),
        at: at(10),
    };
    feed(&mut e, &mut recs, sign, 10);

    let r = report::build(&recs, Some(&rb), "<STATUS>", "<HEAD>", true);
    let md = report::markdown(&r);
    for never in ["Disaster declared", "RTO", "RPO", "disaster declared"] {
        assert!(!md.contains(never), "{never:?} in a review:\n{md}");
    }
    insta::assert_snapshot!("record_review_md", md);
    let html = report::html(&r);
    for never in ["Disaster declared", "RTO", "disaster declared"] {
        assert!(!html.contains(never), "{never:?} in a review's html");
    }
    assert!(html.contains("NOT READY: 1 item(s) failed or in doubt"));
    assert!(html.contains("<blockquote>Open \\\\fs01\\dr\\plan-v7.docx and confirm"));
}

/// One destructive step, for the two-person rule.
const JOBS: &str = r#"
id = "jobs-off"
title = "Disable the Backup job"
summary = "One destructive step."
version = "1.0.0"

[[variables]]
name = "source_sql_server"
label = "SQL Server instance hosting BizTalkMgmtDb"
kind = "server"
required = true

[[variables]]
name = "backup_job_name"
label = "Backup job name"
kind = "text"
default = "Backup BizTalk Server (BizTalkMgmtDb)"
required = true

[[sections]]
id = "job"
title = "The Backup job"

[[sections.steps]]
id = "job.disable"
title = "Disable the Backup job"
why = "A test of the two-person rule."
kind = "sql"
server = "source"
database = "msdb"
destructive = true
confirm_word = "DISABLE"
undo = "enable the job again (sp_update_job with @enabled = 1)"
params = ["backup_job_name"]
sql = '''
EXEC msdb.dbo.sp_update_job @job_name = @backup_job_name, @enabled = 0;
'''
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_person_sees_what_they_approve_types_the_word_and_a_rejection_keeps_the_popup() {
    let data = tempfile::tempdir().unwrap();
    let drill = Drill::start("healthy").await.expect("drill starts");
    let rb = match btsdr::runbook::loader::parse("test:jobs-off.toml", JOBS, None) {
        Ok(rb) => Arc::new(rb),
        Err(d) => panic!("{d:?}"),
    };
    let mut vars = Variables::from_runbook(&rb);
    for (k, v) in drill.variables() {
        vars.set(&k, v);
    }
    let opts = EngineOptions {
        operator: "alice".into(),
        session_id: "20261121-030000-jobs-off".into(),
        environment: "drill:healthy".into(),
        drill: true,
        two_person_rule: true,
        ..EngineOptions::default()
    };
    let engine = Engine::new(Arc::clone(&rb), vars, opts);
    let path = data.path().join("s.jsonl");
    let journal = JournalWriter::create(&path).expect("journal");
    let mut h = Harness::new(100, 30);
    h.open(Opened {
        engine,
        journal,
        executor: executor(&drill),
        files_dir: data.path().join("files"),
    });
    h.settle().await;
    h.press("enter");
    // A reversible step says how to undo it, not "cannot be undone".
    let s = h.screen();
    assert!(s.contains("To undo: enable the job"), "{s}");
    assert!(!s.contains("cannot be undone"), "{s}");
    h.type_text("DISABLE");
    h.press("enter");
    assert!(
        matches!(h.app.popups.last(), Some(Popup::SecondOperator { .. })),
        "{}",
        h.screen()
    );
    let s = h.screen();
    for want in ["sp_update_job", "msdb", "DISABLE", "alice confirmed it"] {
        assert!(s.contains(want), "the second person sees {want:?}:\n{s}");
    }
    // The same person again: refused, and the popup stays with the reason.
    h.type_text("Alice");
    h.press("tab");
    h.type_text("DISABLE");
    h.press("enter");
    assert!(matches!(
        h.app.popups.last(),
        Some(Popup::SecondOperator { .. })
    ));
    assert!(h.screen().contains("different person"), "{}", h.screen());
    // A different person who has not typed the word cannot approve either.
    h.press("ctrl-u");
    h.press("backtab");
    h.press("ctrl-u");
    h.type_text("bob");
    h.press("enter");
    assert!(matches!(
        h.app.popups.last(),
        Some(Popup::SecondOperator { .. })
    ));
    assert_eq!(mark(&h, "job.disable"), StepMark::Pending);
    h.type_text("DISABLE");
    h.press("enter");
    h.settle().await;
    assert_eq!(mark(&h, "job.disable"), StepMark::Passed, "{}", h.screen());
    let approvals: Vec<(String, bool, Option<String>)> = events(&path)
        .into_iter()
        .filter_map(|r| match r.event {
            Event::DestructiveConfirmed { by, second, word } => Some((by, second, word)),
            _ => None,
        })
        .collect();
    assert_eq!(
        approvals,
        vec![
            ("alice".into(), false, Some("DISABLE".into())),
            ("bob".into(), true, Some("DISABLE".into())),
        ]
    );
}

/// `kind` decides what a runbook is, not its title: the same file without it is framed as
/// an incident, with it as a review (no RTO on the status bar, none in the report); an
/// unknown kind is refused with its position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kind_review_not_the_title_makes_a_review() {
    let data = tempfile::tempdir().unwrap();
    let drill = Drill::start("healthy").await.expect("drill starts");
    let (mut h, _) = open_review(data.path(), &drill);
    h.app.rto = Some(chrono::Duration::minutes(120));
    let screen = h.screen();
    let status = screen.lines().last().unwrap_or_default().to_string();
    assert!(status.contains("review T+"), "{screen}");
    assert!(!status.contains("RTO"), "{status}");

    let plain = REVIEW.replace("kind = \"review\"\n", "");
    assert_ne!(plain, REVIEW);
    let rb = btsdr::runbook::loader::parse("test:team-review.toml", &plain, None)
        .expect("loads without kind");
    assert!(!rb.is_review(), "a title with \"review\" is not a review");
    assert!(review_runbook().is_review());

    let bad = REVIEW.replace("kind = \"review\"", "kind = \"audit\"");
    let err = btsdr::runbook::loader::parse("test:team-review.toml", &bad, None)
        .expect_err("an unknown kind is refused");
    let text = format!("{err:?}");
    assert!(
        text.contains("audit") && text.contains("team-review.toml"),
        "{text}"
    );
    drill.shutdown().await;
}
