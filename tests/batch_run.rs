//! `btsdr run RUNBOOK --batch` over real TCP against the simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::sync::Arc;

use btsdr::batch::run::{RunOptions, RunSummary, run_batch};
use btsdr::batch::{Answers, Target};
use btsdr::runbook::library::Library;
use btsdr::runbook::model::StepBody;
use btsdr::sql::run_once;
use btsdr_sim::drill::Drill;
use btsdr_types::Role;
use btsdr_types::Statement;

/// Manual steps before the first destructive step of the backup runbook.
const SKIP_EARLY: &str = r#"
[skip]
"prep.change-record" = "recorded in CHG-1"
"prep.learn" = "team trained"
"#;

fn opts(
    target: Target,
    dir: &std::path::Path,
    answers: &str,
    dry_run: bool,
    allow: bool,
) -> RunOptions {
    RunOptions {
        runbook: Library::load(None).unwrap().get("backup").unwrap(),
        target,
        data_dir: dir.to_path_buf(),
        operator: "batcher".into(),
        answers: Answers::parse(answers).unwrap(),
        sets: vec![],
        dry_run,
        allow_destructive: allow,
    }
}

async fn run(o: RunOptions) -> (RunSummary, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let s = run_batch(o, &mut out, &mut err).await;
    (
        s,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// What the backup runbook's statements change: the job, its steps and schedules.
async fn state(target: &Target) -> String {
    let q = |sql: &str| Statement {
        role: Role::Source,
        database: "msdb".into(),
        sql: sql.into(),
        params: vec![],
        timeout_secs: 30,
        long_running: false,
    };
    let mut s = String::new();
    for sql in [
        "SELECT j.name, j.enabled FROM msdb.dbo.sysjobs AS j ORDER BY j.name",
        "SELECT s.step_id, s.step_name, s.command FROM msdb.dbo.sysjobs AS j JOIN msdb.dbo.sysjobsteps AS s ON s.job_id = j.job_id ORDER BY j.name, s.step_id",
    ] {
        let out = run_once(target.executor.as_ref(), q(sql))
            .await
            .expect("state query runs");
        s.push_str(&format!("{:?}\n", out.sets));
    }
    s
}

#[tokio::test]
async fn dry_run_prints_every_statement_and_changes_nothing() {
    let drill = Drill::start("healthy").await.unwrap();
    let target = Target::from_drill(&drill).unwrap();
    let before = state(&target).await;
    let dir = tempfile::tempdir().unwrap();
    let rb = Library::load(None).unwrap().get("backup").unwrap();
    let (s, out, err) = run(opts(target, dir.path(), "", true, true)).await;
    assert_eq!(s.code, 0, "{out}{err}");
    let target = Target::from_drill(&drill).unwrap();
    assert_eq!(
        state(&target).await,
        before,
        "a dry run changed the simulator"
    );
    // Every applicable sql/check step was printed with its parameters.
    let read = btsdr::journal::read_records(s.journal.as_deref().unwrap()).unwrap();
    let engine = btsdr::engine::Engine::replay(
        Arc::clone(&rb),
        btsdr::engine::Variables::from_runbook(&rb),
        Default::default(),
        &read.entries,
    )
    .unwrap();
    let mut shown = 0;
    for (_, st) in rb.steps() {
        let Some((_, _, _, params, _)) = st.statement() else {
            continue;
        };
        if matches!(
            engine.step_state(&st.id),
            Some(btsdr::engine::StepState::NotApplicable { .. })
        ) {
            continue;
        }
        assert!(
            out.contains(&format!("would run {}:", st.id)),
            "{} not printed:\n{out}",
            st.id
        );
        for p in params {
            assert!(
                out.contains(&format!("-- @{p} = ")),
                "@{p} of {} not printed",
                st.id
            );
        }
        shown += 1;
    }
    assert!(shown > 10, "{out}");
    assert!(
        !read
            .entries
            .iter()
            .any(|r| r.event.name() == "step_started"),
        "a dry run started a step"
    );
    drill.shutdown().await;
}

#[tokio::test]
async fn stops_before_the_first_destructive_step_without_allow() {
    let drill = Drill::start("healthy").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rb = Library::load(None).unwrap().get("backup").unwrap();
    let first_destructive = rb
        .steps()
        .map(|(_, s)| s)
        .find(|s| s.is_destructive())
        .unwrap()
        .id
        .clone();
    let (s, out, err) = run(opts(
        Target::from_drill(&drill).unwrap(),
        dir.path(),
        SKIP_EARLY,
        false,
        false,
    ))
    .await;
    assert_eq!(s.code, 3, "{out}{err}");
    assert_eq!(
        s.stopped_at.as_deref(),
        Some(first_destructive.as_str()),
        "{out}{err}"
    );
    assert!(
        out.contains("--allow-destructive") && out.contains("resume session"),
        "{out}"
    );
    let read = btsdr::journal::read_records(s.journal.as_deref().unwrap()).unwrap();
    assert!(read.report.is_intact());
    assert!(
        !read
            .entries
            .iter()
            .any(|r| r.step.as_deref() == Some(first_destructive.as_str())),
        "the destructive step was journaled"
    );
    // Checks before it ran for real; skipped steps carry the answers file's reason.
    assert!(
        read.entries
            .iter()
            .any(|r| r.event.name() == "step_finished")
    );
    assert!(out.contains("recorded in CHG-1"), "{out}");
    drill.shutdown().await;
}

#[tokio::test]
async fn manual_step_stops_with_exit_3_and_says_what_it_needs() {
    let drill = Drill::start("healthy").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rb = Library::load(None).unwrap().get("backup").unwrap();
    let first = rb.steps().map(|(_, s)| s).next().unwrap();
    assert!(matches!(first.body, StepBody::Manual(_)));
    let (s, out, err) = run(opts(
        Target::from_drill(&drill).unwrap(),
        dir.path(),
        "",
        false,
        false,
    ))
    .await;
    assert_eq!(s.code, 3, "{out}{err}");
    assert_eq!(s.stopped_at.as_deref(), Some(first.id.as_str()));
    assert!(
        out.contains(&format!("manual step {}: {}", first.id, first.title)),
        "{out}"
    );
    assert!(
        out.contains("run on:") && out.contains("resume session"),
        "{out}"
    );
    drill.shutdown().await;
}

#[tokio::test]
async fn bad_answers_are_exit_2() {
    let drill = Drill::start("healthy").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (s, _, err) = run(opts(
        Target::from_drill(&drill).unwrap(),
        dir.path(),
        "log_interval_minutes = 999",
        false,
        false,
    ))
    .await;
    assert_eq!(s.code, 2);
    assert!(err.contains("log_interval_minutes"), "{err}");
    assert!(
        s.session_id.is_none(),
        "no session is created for bad input"
    );
    drill.shutdown().await;
}

#[tokio::test]
async fn allow_destructive_confirms_and_journals_who() {
    let drill = Drill::start("healthy").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // RESTORE VERIFYONLY is slow in the simulator: skip it.
    let answers = format!("{SKIP_EARLY}\"verify.verifyonly\" = \"verified separately\"\n");
    let (s, out, err) = run(opts(
        Target::from_drill(&drill).unwrap(),
        dir.path(),
        &answers,
        false,
        true,
    ))
    .await;
    assert!(s.code == 0 || s.code == 3, "{out}{err}");
    let read = btsdr::journal::read_records(s.journal.as_deref().unwrap()).unwrap();
    let confirmed: Vec<_> = read
        .entries
        .iter()
        .filter(|r| r.event.name() == "destructive_confirmed")
        .collect();
    assert!(!confirmed.is_empty(), "{out}");
    assert!(read.entries.iter().any(|r| matches!(&r.event, btsdr::engine::Event::Note { text } if text.contains("--allow-destructive"))));
    drill.shutdown().await;
}
