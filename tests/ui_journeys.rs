//! The journeys of issue 13 end to end, key-driven through the app's own opener (as Home and
//! `btsdr drill` open sessions) against the simulator over TCP: a trainee walks each runbook
//! on the healthy group doing what each step says; a drill resumed in a new process continues
//! on the group its session changed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
#![allow(clippy::too_many_lines)] // some tests tell a long story

use std::path::Path;

use btsdr::app::harness::Harness;
use btsdr::app::{Popup, Request, StepMark};
use btsdr::config::Config;
use btsdr::launch::LiveOpener;
use btsdr::runbook::library::Library;
use btsdr::runbook::model::StepBody;

fn library() -> Library {
    match Library::load(None) {
        Ok(l) => l,
        Err(d) => panic!("the shipped runbooks do not load: {d:?}"),
    }
}

fn opener(data: &Path, runbook: &str) -> LiveOpener {
    let mut o = LiveOpener::new(library(), Config::default(), data.to_path_buf());
    o.drill_runbook = runbook.to_string();
    o.operator = Some("trainee".into());
    o
}

fn drill(h: &mut Harness, scenario: &str) {
    h.request(Request::Drill {
        scenario: scenario.into(),
        operator: "trainee".into(),
        rto_minutes: Some(240),
    });
}

fn mark(h: &Harness, id: &str) -> StepMark {
    let run = h.app.run.as_ref().expect("a run is open");
    run.steps[run.index_of(id).expect("step")].mark
}

/// Selects a step with the find popup, as an operator would.
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

/// Answers the popups a step may raise the way the step asks: the typed word of a
/// destructive step, the runbook's values as they are.
async fn answer_popups(h: &mut Harness) {
    for _ in 0..6 {
        h.settle().await;
        match h.app.popups.last() {
            Some(Popup::TypedConfirm { word, .. }) => {
                let w = word.clone();
                h.type_text(&w);
                h.press("enter");
            }
            Some(Popup::Variables { .. }) => h.press("enter"),
            _ => return,
        }
    }
}

/// Does one step as it says; returns its mark afterwards.
async fn do_step(h: &mut Harness, id: &str) -> StepMark {
    go_to(h, id);
    let manual = h
        .app
        .selected_step()
        .is_some_and(|(_, st)| matches!(st.body, StepBody::Manual(_)));
    if manual {
        h.press("c");
        h.type_text("done as the step says (drill)");
        h.press("tab");
        h.type_text("drill evidence");
        h.press("enter");
    } else {
        h.press("enter");
    }
    answer_popups(h).await;
    mark(h, id)
}

/// Walks every step that applies, in order, until `stop` (included); a step that waits for a
/// later one is done after it (as the screen's `next:` says). Returns the steps that did not
/// pass, with what the screen said.
async fn walk(h: &mut Harness, stop: Option<&str>) -> Vec<String> {
    answer_popups(h).await;
    let ids: Vec<String> = h
        .app
        .run
        .as_ref()
        .expect("a run is open")
        .steps
        .iter()
        .map(|s| s.id.clone())
        .collect();
    let mut problems = Vec::new();
    let mut waited: Vec<String> = Vec::new();
    for _pass in 0..3 {
        let mut progressed = false;
        waited.clear();
        for id in &ids {
            let m = mark(h, id);
            if m == StepMark::Blocked {
                waited.push(id.clone());
            } else if m != StepMark::NotApplicable && !m.is_settled() {
                let got = do_step(h, id).await;
                match got {
                    StepMark::Passed | StepMark::Done => progressed = true,
                    StepMark::Blocked => waited.push(id.clone()),
                    _ => {
                        problems.push(format!("{id}: {got:?}\n{}", h.screen()));
                        eprintln!("NOT PASSED {id}: {got:?}");
                        return problems;
                    }
                }
            }
            if stop == Some(id.as_str()) {
                return problems;
            }
        }
        if waited.is_empty() || !progressed {
            break;
        }
    }
    problems.extend(
        waited
            .iter()
            .map(|id| format!("{id}: still waiting\n{}", h.screen())),
    );
    problems
}

async fn healthy_reaches_the_end(runbook: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::with_opener(120, 40, Box::new(opener(dir.path(), runbook)));
    h.timeout = std::time::Duration::from_secs(120);
    drill(&mut h, "healthy");
    let problems = walk(&mut h, None).await;
    assert!(
        problems.is_empty(),
        "{runbook} on the healthy drill: {} step(s) did not pass:\n{}",
        problems.len(),
        problems
            .iter()
            .take(2)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n----\n")
    );
    let run = h.app.run.as_ref().expect("a run is open");
    assert!(run.all_settled(), "{}", h.screen());
    let (done, total) = run.progress(None);
    assert_eq!(done, total);
    assert!(total > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_reaches_the_end_of_restore() {
    healthy_reaches_the_end("restore").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_reaches_the_end_of_backup() {
    healthy_reaches_the_end("backup").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_reaches_the_end_of_disaster_recovery() {
    healthy_reaches_the_end("disaster-recovery").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_reaches_the_end_of_readiness() {
    healthy_reaches_the_end("readiness").await;
}

/// Quit right after Restore To Mark passed, resume in a new process: the simulated group is
/// the one the session left (the restored databases are online at the mark), so the run goes
/// on to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_resumed_after_restore_to_mark_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::with_opener(100, 30, Box::new(opener(dir.path(), "disaster-recovery")));
    h.timeout = std::time::Duration::from_secs(120);
    drill(&mut h, "healthy");
    let problems = walk(&mut h, Some("group.restore-to-mark-outcome")).await;
    assert!(problems.is_empty(), "{}", problems.join("\n----\n"));
    assert_eq!(mark(&h, "group.restore-to-mark-outcome"), StepMark::Passed);
    assert_eq!(mark(&h, "group.online"), StepMark::Pending);
    let session = h.app.run.as_ref().expect("a run").session_id.clone();
    h.press("q");
    h.press("y");
    assert!(h.quit_requested());
    drop(h);
    let snapshot = dir
        .path()
        .join("sessions")
        .join(format!("{session}.files"))
        .join(btsdr::launch::SIM_SNAPSHOT);
    assert!(
        snapshot.is_file(),
        "no simulator snapshot at {}",
        snapshot.display()
    );

    // A new process: a new opener, a new simulator, rebuilt from the snapshot.
    let mut h = Harness::with_opener(100, 30, Box::new(opener(dir.path(), "disaster-recovery")));
    h.timeout = std::time::Duration::from_secs(120);
    h.request(Request::Resume {
        session_id: session.clone(),
    });
    let resumed = h.app.run.as_ref().map(|r| r.session_id.clone());
    let said: Vec<String> = h.app.notices.iter().map(|n| n.text.clone()).collect();
    assert_eq!(resumed, Some(session.clone()), "{said:?}\n{}", h.screen());
    assert_eq!(resumed, Some(session.clone()), "{}", h.screen());
    assert_eq!(mark(&h, "group.restore-to-mark-outcome"), StepMark::Passed);
    // The outcome check still passes on the rebuilt group, and the rest of the run too.
    go_to(&mut h, "group.restore-to-mark-outcome");
    h.press("r");
    h.settle().await;
    assert_eq!(
        mark(&h, "group.restore-to-mark-outcome"),
        StepMark::Passed,
        "{}",
        h.screen()
    );
    let problems = walk(&mut h, None).await;
    assert!(
        problems.is_empty(),
        "after the resume: {}",
        problems
            .iter()
            .take(2)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n----\n")
    );
    assert_eq!(mark(&h, "group.online"), StepMark::Passed);
}

/// The SQL Server computer failed: restore then backup, chosen from Home on the healthy drill.
/// The two parts are one incident (part 2 keeps part 1's clock and targets), and part 2, after
/// the operator confirms the repoint, runs against the new source (SQLDR01), not the failed
/// SQLBTS01.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_plan_is_one_incident_and_part_2_targets_the_new_source() {
    use btsdr::app::HomeItem;
    use btsdr::engine::Event;
    let dir = tempfile::tempdir().unwrap();
    let lib = library();
    let mut h = Harness::with_opener(100, 30, Box::new(opener(dir.path(), "backup")));
    h.timeout = std::time::Duration::from_secs(120);
    h.app.operator = "trainee".into();
    // The opener declares incidents on the wall clock: the screen's clock follows it.
    h.send(btsdr::app::Msg::Tick(chrono::Utc::now()));
    h.app.home = btsdr::launch::home_items(&lib, dir.path());
    let class = h
        .app
        .home
        .iter()
        .position(|i| matches!(i, HomeItem::Failure(p) if p.id == "sql-computer"))
        .expect("the SQL Server computer class is on Home");
    for _ in 0..class {
        h.press("j");
    }
    h.press("enter");
    assert!(matches!(
        h.app.popups.last(),
        Some(Popup::Plan { part: 0, .. })
    ));
    h.press("enter");
    let s = h.screen();
    assert!(s.contains("drill:healthy"), "the drill is offered:\n{s}");
    assert!(!s.contains("Repoint"), "part 1 asks no repoint:\n{s}");
    h.type_text("240");
    h.press("enter");
    h.settle().await;
    let problems = walk(&mut h, None).await;
    assert!(problems.is_empty(), "{}", problems.join("\n----\n"));
    let part1 = h.app.run.as_ref().expect("a run").session_id.clone();

    // Some time later, part 2 from Home: the Start popup asks to repoint the roles.
    h.advance(600);
    h.press("H");
    h.press("enter");
    assert!(matches!(
        h.app.popups.last(),
        Some(Popup::Plan { part: 1, .. })
    ));
    h.press("enter");
    let s = h.screen();
    assert!(s.contains("Repoint roles to the new source"), "{s}");
    assert!(s.contains("same incident"), "{s}");
    assert!(s.contains("[240"), "the incident's RTO is shown:\n{s}");
    h.press("enter");
    h.settle().await;
    answer_popups(&mut h).await;
    let part2 = h.app.run.as_ref().expect("a run").session_id.clone();
    assert_ne!(part1, part2);
    assert_eq!(h.app.run.as_ref().unwrap().runbook.id, "backup");

    // The new source answers: SERVERPROPERTY('ServerName') is the DR instance.
    assert_eq!(do_step(&mut h, "prep.sql-version").await, StepMark::Passed);
    go_to(&mut h, "prep.sql-version");
    let s = h.screen();
    assert!(s.contains("SQLDR01"), "part 2 reads the new source:\n{s}");
    assert!(!s.contains("SQLBTS01 "), "{s}");

    // The journals: one clock (part 2 keeps part 1's declaration and RTO), the repoint
    // journaled with who confirmed it, the server variables naming the new source.
    let started = |id: &str| {
        let path = dir.path().join("sessions").join(format!("{id}.jsonl"));
        let read = btsdr::journal::read_records(&path).expect("journal");
        assert!(read.report.is_intact(), "{}", read.report);
        read.entries
    };
    let (r1, r2) = (started(&part1), started(&part2));
    let head = |rs: &[btsdr::engine::Record]| match &rs[0].event {
        Event::SessionStarted {
            declared_at,
            rto_minutes,
            variables,
            plan,
            ..
        } => (
            *declared_at,
            *rto_minutes,
            variables
                .iter()
                .find(|v| v.name == "source_sql_server")
                .map(|v| v.value.clone()),
            plan.clone(),
        ),
        other => panic!("first record: {other:?}"),
    };
    let (d1, rto1, src1, plan1) = head(&r1);
    let (d2, rto2, src2, plan2) = head(&r2);
    assert!(d1.is_some());
    assert_eq!(d1, d2, "one incident, one clock");
    assert_eq!(rto1, Some(240));
    assert_eq!(rto2, Some(240));
    assert_eq!(src1.as_deref(), Some("SQLBTS01"));
    assert_eq!(src2.as_deref(), Some("SQLDR01"));
    assert_eq!(
        plan1.map(|p| (p.id, p.part)),
        Some(("sql-computer".into(), 0))
    );
    assert_eq!(
        plan2.map(|p| (p.id, p.part)),
        Some(("sql-computer".into(), 1))
    );
    assert!(
        r2.iter().any(|r| matches!(&r.event, Event::Note { text } if text.contains("roles repointed") && text.contains("trainee"))),
        "{r2:#?}"
    );
    // The status bar counts from the declaration: 10 minutes in, not 0.
    let s = h.screen();
    assert!(s.contains("T+00:09:5") || s.contains("T+00:10:0"), "{s}");
}

/// Each fault scenario, walked through the backup runbook as a trainee would: a step that does
/// not pass is one its file lists (`expect_failing_checks` or `expect_failing_steps`), never
/// another. (stale-full,
/// partial-set and missing-mark reach the end: doing the steps in order forces the full
/// backup that repairs them before the checks that would fail run.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_scenario_first_fails_a_step_its_file_lists() {
    let mut wrong = Vec::new();
    for name in btsdr_sim::scenario::NAMES
        .iter()
        .filter(|n| **n != "healthy")
    {
        let sc = btsdr_sim::scenario::Scenario::load(name).expect("scenario");
        let expected: Vec<String> = sc
            .expect_failing_checks
            .iter()
            .chain(&sc.expect_failing_steps)
            .filter_map(|c| c.strip_prefix("backup:").map(str::to_string))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let mut h = Harness::with_opener(120, 40, Box::new(opener(dir.path(), "backup")));
        h.timeout = std::time::Duration::from_secs(120);
        drill(&mut h, name);
        let problems = walk(&mut h, None).await;
        let first = problems
            .first()
            .and_then(|p| p.split(':').next())
            .map(str::to_string);
        if let Some(id) = &first
            && !expected.contains(id)
        {
            wrong.push(format!("{name}: {id} failed, listed {expected:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Issue 18: a group configured without a destination was assumed to use log shipping and
/// every log-shipping step failed with "Add a server for role destination". Now the session
/// asks first; answering false makes those steps not apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_without_a_destination_is_asked_about_log_shipping() {
    use btsdr::config::DrillConfig;
    let drill = btsdr_sim::drill::Drill::start("healthy")
        .await
        .expect("drill starts");
    let mut env = drill.environment();
    env.name = "nodest".into();
    env.destination = None;
    let mut config = Config::default();
    config.environments.insert("nodest".into(), env);
    let dir = tempfile::tempdir().unwrap();
    let mut o = LiveOpener::new(library(), config, dir.path().to_path_buf());
    o.prompted = drill.secrets();
    let mut h = Harness::with_opener(100, 30, Box::new(o));
    h.request(Request::Start {
        runbook_id: "backup".into(),
        environment: "nodest".into(),
        operator: "alice".into(),
        rto_minutes: None,
        rpo_minutes: None,
        repoint: false,
    });
    let names = match h.app.popups.last() {
        Some(Popup::Variables { names, .. }) => names.clone(),
        other => panic!("no variables popup: {other:?}"),
    };
    assert_eq!(
        names.first().map(String::as_str),
        Some("use_log_shipping"),
        "{names:?}"
    );
    let s = h.screen();
    assert!(s.contains("log-shipping destination"), "{s}");
    // (The others this runbook asks here are paths.)
    for _ in names.iter().skip(1) {
        h.press("tab");
        h.type_text(r"\\FS01\BizTalkBackup");
    }
    // An empty answer is not a silent "no": Enter is refused and says why.
    h.press("tab");
    h.press("enter");
    h.settle().await;
    match h.app.popups.last() {
        Some(Popup::Variables { form, .. }) => {
            assert_eq!(form.focus, 0, "the unanswered question is focused");
            let e = form.error.clone().unwrap_or_default();
            assert!(e.contains("answer yes or no"), "{e}");
        }
        other => panic!("an empty answer was accepted: {other:?}"),
    }
    assert!(
        h.app
            .session
            .as_ref()
            .is_some_and(|s| !s.engine.is_started())
    );
    // "no" answers it.
    h.type_text("no");
    h.press("enter");
    h.settle().await;
    let left = format!("{:?}", h.app.popups);
    assert!(h.app.popups.is_empty(), "{left}\n{}", h.screen());
    assert_eq!(mark(&h, "store.dest-lag"), StepMark::NotApplicable);
    drill.shutdown().await;
}

/// Issue 13: part 2 of a plan joins the incident part 1 declared even when part 1 was opened
/// by another process: the earlier part is found in the journals (plan id), not in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_part_joins_an_incident_journaled_by_another_process() {
    use btsdr::app::HomeItem;
    use btsdr::engine::Event;
    let dir = tempfile::tempdir().unwrap();
    let lib = library();
    let choose_class = |h: &mut Harness| {
        h.app.home = btsdr::launch::home_items(&lib, dir.path());
        h.app.plan_history = btsdr::journal::incident::plan_parts(dir.path()).expect("journals");
        let class = h
            .app
            .home
            .iter()
            .position(|i| matches!(i, HomeItem::Failure(p) if p.id == "sql-computer"))
            .expect("the SQL Server computer class is on Home");
        for _ in 0..class {
            h.press("j");
        }
        h.press("enter");
    };
    // Process 1 starts part 1 with a 240-minute RTO, then quits.
    let part1 = {
        let mut h = Harness::with_opener(100, 30, Box::new(opener(dir.path(), "backup")));
        h.app.operator = "trainee".into();
        h.send(btsdr::app::Msg::Tick(chrono::Utc::now()));
        choose_class(&mut h);
        assert!(matches!(
            h.app.popups.last(),
            Some(Popup::Plan { part: 0, .. })
        ));
        h.press("enter");
        h.type_text("240");
        h.press("enter");
        h.settle().await;
        answer_popups(&mut h).await;
        h.app.run.as_ref().expect("a run").session_id.clone()
    };
    // Process 2: Home offers part 2, which says it joins the incident and shows its RTO.
    let mut h = Harness::with_opener(100, 30, Box::new(opener(dir.path(), "backup")));
    h.app.operator = "trainee".into();
    h.send(btsdr::app::Msg::Tick(chrono::Utc::now()));
    choose_class(&mut h);
    assert!(
        matches!(h.app.popups.last(), Some(Popup::Plan { part: 1, .. })),
        "{:?}",
        h.app.popups.last()
    );
    h.press("enter");
    let s = h.screen();
    assert!(s.contains("same incident"), "{s}");
    assert!(s.contains("[240"), "the incident's RTO is shown:\n{s}");
    h.press("enter");
    h.settle().await;
    answer_popups(&mut h).await;
    let part2 = h.app.run.as_ref().expect("a run").session_id.clone();
    assert_ne!(part1, part2);
    let head = |id: &str| {
        let path = dir.path().join("sessions").join(format!("{id}.jsonl"));
        let read = btsdr::journal::read_records(&path).expect("journal");
        match &read.entries[0].event {
            Event::SessionStarted {
                declared_at,
                rto_minutes,
                ..
            } => (*declared_at, *rto_minutes),
            other => panic!("first record: {other:?}"),
        }
    };
    let (d1, rto1) = head(&part1);
    let (d2, rto2) = head(&part2);
    assert!(d1.is_some());
    assert_eq!(d1, d2, "one incident, one clock");
    assert_eq!((rto1, rto2), (Some(240), Some(240)));
    let parts = btsdr::journal::incident::plan_parts(dir.path()).expect("journals");
    let ids: Vec<&str> = btsdr::journal::incident::incident_of(&parts, &part2)
        .iter()
        .map(|p| p.session_id.as_str())
        .collect();
    assert_eq!(ids, [part1.as_str(), part2.as_str()]);
    // One report across the parts: `btsdr report` of either part shows both on one clock.
    for id in [&part1, &part2] {
        let path = dir.path().join("sessions").join(format!("{id}.jsonl"));
        let (rep, _) = btsdr::report::from_journal(&path, Some(&lib)).expect("report");
        assert_eq!(rep.incident.len(), 2, "{id}");
        let md = btsdr::report::markdown(&rep);
        let incident = md.split("## Incident").nth(1).expect("an Incident section");
        assert!(incident.contains("2 parts on one clock"), "{incident}");
        assert!(incident.contains("RTO 240 min"), "{incident}");
        assert!(incident.contains(part1.as_str()) && incident.contains(part2.as_str()));
        assert!(incident.contains("(this report)"), "{incident}");
        let html = btsdr::report::html(&rep);
        assert!(
            html.contains("2 parts on one clock"),
            "the HTML says it too"
        );
    }
}

/// Issue 13, time guidance: a step run in an earlier session of the same group shows its
/// estimate and where it comes from; a step never run says "no estimate"; the status bar
/// projects the finish against the RTO (a lower bound while steps have no estimate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_show_estimates_from_earlier_sessions_and_the_run_its_projected_finish() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut h = Harness::with_opener(160, 40, Box::new(opener(dir.path(), "backup")));
        drill(&mut h, "healthy");
        h.settle().await;
        answer_popups(&mut h).await;
        assert!(
            !h.screen().contains("Time: "),
            "no history, nothing said about time"
        );
        assert!(!h.screen().contains("projected finish"));
        assert_eq!(do_step(&mut h, "prep.sql-version").await, StepMark::Passed);
    }
    let history = btsdr::journal::incident::step_durations(dir.path(), 100);
    assert_eq!(history.len(), 1, "{history:?}");
    let mut h = Harness::with_opener(160, 40, Box::new(opener(dir.path(), "backup")));
    h.app.step_history = history;
    drill(&mut h, "healthy");
    h.settle().await;
    answer_popups(&mut h).await;
    go_to(&mut h, "prep.sql-version");
    let s = h.screen();
    assert!(s.contains("Time: est. ~"), "{s}");
    assert!(s.contains("(from 1 earlier run)"), "{s}");
    let other = h
        .app
        .run
        .as_ref()
        .and_then(|r| {
            r.steps
                .iter()
                .find(|x| x.id != "prep.sql-version" && x.mark != StepMark::NotApplicable)
        })
        .map(|x| x.id.clone())
        .expect("another step");
    go_to(&mut h, &other);
    let s = h.screen();
    assert!(s.contains("Time: no estimate"), "{s}");
    // Every other open step is unknown: the finish is a lower bound, inside the 240 min RTO.
    assert!(s.contains("projected finish ≥"), "{s}");
    assert!(s.contains('✔'), "{s}");
    assert!(s.contains("steps without estimate"), "{s}");
    // At 100 columns, a shorter form.
    h.resize(100, 30);
    let s = h.screen();
    assert!(s.contains("finish ≥"), "{s}");
}
