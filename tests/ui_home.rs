//! Home → "Something failed?" → a failure class → its plan → start → the run screen on the
//! first step of the plan's first listed section, with the plan shown. The opener builds an
//! engine for the real embedded runbook over a scripted executor.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

mod ui_support;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use btsdr::app::driver::{Opened, Opener};
use btsdr::app::harness::Harness;
use btsdr::app::{HomeItem, Popup, Request, Screen};
use btsdr::engine::{Engine, EngineOptions, Variables};
use btsdr::guide::Plan;
use btsdr::journal::JournalWriter;
use btsdr::runbook::library::Library;
use ui_support::FakeExec;

/// Opens `Request::Start` sessions of embedded runbooks; remembers the requests.
struct FakeOpener {
    lib: Library,
    dir: PathBuf,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Opener for FakeOpener {
    fn open(&mut self, req: Request) -> Result<Opened, String> {
        self.requests.lock().unwrap().push(req.clone());
        let Request::Start {
            runbook_id,
            environment,
            operator,
            rto_minutes,
            rpo_minutes,
            ..
        } = req
        else {
            return Err("only Start in this test".into());
        };
        let rb = self.lib.get(&runbook_id).ok_or("no such runbook")?;
        let vars = valid_variables(&rb);
        let n = self.requests.lock().unwrap().len();
        let session_id = format!("20261121-0300-{runbook_id}-{n}");
        let journal = JournalWriter::create(&self.dir.join(format!("{session_id}.jsonl")))
            .map_err(|e| e.to_string())?;
        let opts = EngineOptions {
            operator,
            environment,
            session_id,
            rto_minutes,
            rpo_minutes,
            ..EngineOptions::default()
        };
        Ok(Opened {
            engine: Engine::new(rb, vars, opts),
            journal,
            executor: Arc::new(FakeExec::default()),
            files_dir: self.dir.join("out"),
        })
    }
}

/// Every variable the runbook needs, with a value its own rules accept.
fn valid_variables(rb: &btsdr::runbook::model::Runbook) -> Variables {
    let mut vars = Variables::from_runbook(rb);
    for v in &rb.variables {
        if btsdr::engine::validate_value(v, vars.get(&v.name).unwrap_or("")).is_ok() {
            continue;
        }
        let candidates =
            v.choices
                .iter()
                .map(String::as_str)
                .chain(["SQL01", "BizTalkMgmtDb", "false", "x"]);
        for c in candidates {
            if btsdr::engine::validate_value(v, c).is_ok() {
                vars.set(&v.name, c.to_string());
                break;
            }
        }
    }
    vars
}

/// An 80x24 harness on Home listing the failure classes, operator `alice`, `envs`
/// configured, with a [`FakeOpener`] whose requests are returned.
fn plan_harness(
    dir: &std::path::Path,
    envs: &[&str],
) -> (Harness, Arc<Mutex<Vec<Request>>>, Library) {
    let lib = Library::load(None).unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let opener = FakeOpener {
        lib: Library::load(None).unwrap(),
        dir: dir.to_path_buf(),
        requests: Arc::clone(&requests),
    };
    let mut h = Harness::with_opener(80, 24, Box::new(opener));
    h.app.operator = "alice".into();
    h.app.environments = envs.iter().map(|e| e.to_string()).collect();
    h.app.home = Plan::all(&lib)
        .unwrap()
        .into_iter()
        .map(HomeItem::Failure)
        .collect();
    (h, requests, lib)
}

fn selected_id(h: &Harness) -> String {
    h.app
        .selected_step()
        .map(|(r, _)| r.id.clone())
        .unwrap_or_default()
}

/// Answers the runbook-variables popup (the paths the opener cannot make up) with a UNC path.
async fn fill_paths(h: &mut Harness) {
    let n = match h.app.popups.last() {
        Some(Popup::Variables { names, .. }) => names.len(),
        _ => return,
    };
    for _ in 0..n {
        h.press("ctrl-u");
        h.type_text(r"\\backup01\bts\");
        h.press("tab");
    }
    h.press("enter");
    h.settle().await;
}

/// The id of the first step of `section` in `runbook`.
fn first_step(lib: &Library, runbook: &str, section: &str) -> String {
    let rb = lib.get(runbook).unwrap();
    let sec = rb.sections.iter().find(|s| s.id == section).unwrap();
    sec.steps[0].id.clone()
}

#[tokio::test]
async fn something_failed_sql_computer_starts_restore_at_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, requests, lib) = plan_harness(dir.path(), &["prod"]);
    h.app.home.push(HomeItem::Start {
        runbook_id: "restore".into(),
        title: "Restore BizTalk Server".into(),
    });

    // "Something failed?" → the SQL Server computer.
    let sql = h
        .app
        .home
        .iter()
        .position(|i| {
            matches!(i, HomeItem::Failure(p)
                if p.label == "The SQL Server computer (the BizTalk databases) failed")
        })
        .expect("the SQL Server computer class is on Home");
    for _ in 0..sql {
        h.press("j");
    }
    h.press("enter");
    assert!(
        matches!(h.app.popups.last(), Some(Popup::Plan { part: 0, .. })),
        "Enter on a failure class shows its plan"
    );
    let screen = h.screen();
    assert!(
        screen.contains("1. restore — Restore BizTalk Server"),
        "{screen}"
    );
    assert!(
        screen.contains("2. backup — Back up BizTalk Server"),
        "{screen}"
    );
    assert!(screen.contains("Restore your databases"), "{screen}");

    // Enter: the Start popup for `restore`, name and environment filled in; Enter starts.
    h.press("enter");
    assert!(matches!(
        h.app.popups.last(),
        Some(Popup::Start { target, plan: Some(_), .. }) if target == "restore"
    ));
    h.type_text("240");
    h.press("enter");
    h.settle().await;
    assert_eq!(
        requests.lock().unwrap().last(),
        Some(&Request::Start {
            runbook_id: "restore".into(),
            environment: "prod".into(),
            operator: "alice".into(),
            rto_minutes: Some(240),
            rpo_minutes: None,
            repoint: false,
        })
    );
    assert_eq!(h.app.screen, Screen::Run);
    // restore asks for the one value the opener could not make up; the plan's selection
    // is placed again once the variables decide which steps apply.
    assert!(
        matches!(h.app.popups.last(), Some(Popup::Variables { names, .. }) if names == &["dr_store"]),
        "{:?}",
        h.app.popups
    );
    fill_paths(&mut h).await;
    assert!(h.app.popups.is_empty(), "{:?}", h.app.popups);
    let run = h.app.run.as_ref().unwrap();
    assert_eq!(run.runbook.id, "restore");
    assert_eq!(selected_id(&h), first_step(&lib, "restore", "db"));
    let screen = h.screen();
    let plan_line = screen.lines().nth(1).unwrap_or("");
    assert!(
        plan_line.starts_with(" Plan 1/2 restore → Restore your databases"),
        "{screen}"
    );
    insta::assert_snapshot!("plan_run_restore_80x24", screen);

    // Home again: the same class now offers the next part, backup, whose first listed
    // section (`job`) is not the runbook's first (`prep`).
    h.press("H");
    assert_eq!(h.app.screen, Screen::Home);
    h.press("enter");
    assert!(matches!(
        h.app.popups.last(),
        Some(Popup::Plan { part: 1, .. })
    ));
    h.press("enter");
    h.press("enter");
    h.settle().await;
    fill_paths(&mut h).await;
    assert!(h.app.popups.is_empty(), "{:?}", h.app.popups);
    let run = h.app.run.as_ref().unwrap();
    assert_eq!(run.runbook.id, "backup");
    assert_ne!(run.runbook.sections[0].id, "job");
    assert_eq!(selected_id(&h), first_step(&lib, "backup", "job"));
    let screen = h.screen();
    assert!(
        screen
            .lines()
            .nth(1)
            .unwrap_or("")
            .starts_with(" Plan 2/2 backup → Configure the Backup BizTalk Server job"),
        "{screen}"
    );
    insta::assert_snapshot!("plan_run_backup_100x30", {
        h.resize(100, 30);
        h.screen()
    });

    // A plain Start from Home carries no plan.
    h.press("H");
    h.press("G");
    h.press("enter");
    h.press("enter");
    h.settle().await;
    fill_paths(&mut h).await;
    let screen = h.screen();
    assert!(h.app.plan.is_none(), "{:?}\n{screen}", h.app.popups);
    assert_eq!(
        h.screen().lines().nth(1).map(|l| l.contains("Plan ")),
        Some(false)
    );
}

/// The plan a session was started from is in its first journal record and comes back when
/// the session is resumed (after a crash the operator still sees "Plan 1/2 restore").
#[tokio::test]
async fn the_plan_is_journaled_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let lib = Library::load(None).unwrap();
    let opener = FakeOpener {
        lib: Library::load(None).unwrap(),
        dir: dir.path().to_path_buf(),
        requests: Arc::new(Mutex::new(Vec::new())),
    };
    let home: Vec<HomeItem> = Plan::all(&lib)
        .unwrap()
        .into_iter()
        .map(HomeItem::Failure)
        .collect();
    let mut h = Harness::with_opener(80, 24, Box::new(opener));
    h.app.operator = "alice".into();
    h.app.environments = vec!["prod".into()];
    h.app.home = home.clone();
    let sql = h
        .app
        .home
        .iter()
        .position(|i| matches!(i, HomeItem::Failure(p) if p.parts.first().is_some_and(|x| x.runbook == "restore")))
        .expect("a class whose plan starts with restore");
    for _ in 0..sql {
        h.press("j");
    }
    h.press("enter");
    h.press("enter");
    h.press("enter");
    h.settle().await;
    fill_paths(&mut h).await;
    let want = h.app.plan.clone().expect("following the plan");
    let session = h.app.run.as_ref().unwrap().session_id.clone();

    let path = dir.path().join(format!("{session}.jsonl"));
    let read = btsdr::journal::read_records(&path).unwrap();
    let Some(btsdr::engine::Event::SessionStarted { plan: Some(p), .. }) =
        read.entries.first().map(|r| &r.event)
    else {
        panic!("no plan in {:?}", read.entries.first());
    };
    assert_eq!(
        (p.id.as_str(), p.part, p.parts),
        (want.plan.id.as_str(), 0, want.plan.parts.len())
    );

    // A new process resumes it: the engine is replayed from the journal, Home lists the
    // failure classes, and the plan line is back.
    drop(h); // the first process ends (it held the journal's lock)
    let rb = lib.get("restore").unwrap();
    let engine = Engine::replay(
        Arc::clone(&rb),
        Variables::from_runbook(&rb),
        EngineOptions::default(),
        &read.entries,
    )
    .unwrap();
    let (journal, _) = JournalWriter::open_append(&path).unwrap();
    let mut h2 = Harness::new(80, 24);
    h2.app.home = home;
    h2.open(Opened {
        engine,
        journal,
        executor: Arc::new(FakeExec::default()),
        files_dir: dir.path().join("out"),
    });
    assert_eq!(
        h2.app.plan.as_ref().map(|p| (&p.plan.id, p.part)),
        Some((&want.plan.id, 0))
    );
    let screen = h2.screen();
    assert!(
        screen.lines().nth(1).unwrap_or("").starts_with(" Plan 1/"),
        "{screen}"
    );
}

/// Home from a run keeps the run: Esc goes back to it, and its own Resume entry does too
/// (instead of reopening a journal this process holds).
#[tokio::test]
async fn home_keeps_the_open_run() {
    let dir = tempfile::tempdir().unwrap();
    let opener = FakeOpener {
        lib: Library::load(None).unwrap(),
        dir: dir.path().to_path_buf(),
        requests: Arc::new(Mutex::new(Vec::new())),
    };
    let mut h = Harness::with_opener(80, 24, Box::new(opener));
    h.app.operator = "alice".into();
    h.app.environments = vec!["prod".into()];
    h.app.home = vec![HomeItem::Start {
        runbook_id: "restore".into(),
        title: "Restore BizTalk Server".into(),
    }];
    h.press("enter");
    h.press("enter");
    h.settle().await;
    fill_paths(&mut h).await;
    assert_eq!(h.app.screen, Screen::Run);
    let session = h.app.run.as_ref().unwrap().session_id.clone();
    h.press("j");
    h.press("j");
    let selected = selected_id(&h);

    h.press("H");
    assert_eq!(h.app.screen, Screen::Home);
    let screen = h.screen();
    assert!(
        screen.contains("Esc: back to the open run (restore)"),
        "{screen}"
    );
    h.press("esc");
    assert_eq!(h.app.screen, Screen::Run);
    assert_eq!(selected_id(&h), selected, "the cursor is where it was");

    // Home lists this very session as resumable (a second process would): Enter goes back.
    h.app.home.insert(
        0,
        HomeItem::Resume {
            session_id: session.clone(),
            runbook: "restore".into(),
            started: String::new(),
            summary: String::new(),
        },
    );
    h.press("H");
    h.app.home_selected = 0;
    h.press("enter");
    h.settle().await;
    assert_eq!(h.app.screen, Screen::Run);
    assert!(h.app.popups.is_empty(), "{:?}", h.app.popups);
    assert_eq!(h.app.run.as_ref().unwrap().session_id, session);
}

/// Home offers the newest open sessions to resume and reports of the newest ended ones,
/// from real journals in a data folder.
#[test]
fn home_lists_sessions_to_resume_and_recent_reports() {
    use btsdr::engine::{Effect, Input};
    use btsdr::engine::{Event, Record};
    use btsdr::journal::create_session;
    use chrono::{TimeZone, Utc};
    let lib = Library::load(None).unwrap();
    let rb = lib.get("backup").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut vars = valid_variables(&rb);
    for v in &rb.variables {
        if btsdr::engine::validate_value(v, vars.get(&v.name).unwrap_or("")).is_err() {
            vars.set(&v.name, r"\\backup01\biztalk".to_string());
        }
    }
    let session = |sec: u32, close: bool| {
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 3, 0, sec).unwrap();
        let (id, mut w) = create_session(dir.path(), now, "backup").unwrap();
        let mut e = Engine::new(
            Arc::clone(&rb),
            vars.clone(),
            EngineOptions {
                operator: "amy".into(),
                environment: "prod".into(),
                session_id: id.clone(),
                ..EngineOptions::default()
            },
        );
        for fx in e.handle(Input::Start, now) {
            if let Effect::Journal { record } = fx {
                w.append(record).unwrap();
            }
        }
        if close {
            w.append(Record::new(now, "amy", None, Event::SessionClosed {}))
                .unwrap();
        }
        id
    };
    let opened: Vec<String> = (0..7).map(|i| session(i, false)).collect();
    let closed: Vec<String> = (10..17).map(|i| session(i, true)).collect();
    let items = btsdr::launch::home_items(&lib, dir.path());
    let (mut resume, mut reports) = (Vec::new(), Vec::new());
    for item in &items {
        match item {
            HomeItem::Resume { session_id, .. } => resume.push(session_id.as_str()),
            HomeItem::Report { path, .. } => reports.push(path.as_str()),
            _ => {}
        }
    }
    let newest =
        |ids: &[String], n: usize| -> Vec<String> { ids.iter().rev().take(n).cloned().collect() };
    // Every open session, newest first (issue 18: 13 open, 5 offered); the 5 newest reports.
    assert_eq!(resume, newest(&opened, opened.len()));
    assert_eq!(reports, newest(&closed, 5));
    // Each names where it runs and who ran it.
    assert!(items.iter().any(
        |i| matches!(i, HomeItem::Resume { summary, .. } if summary.starts_with("on prod by amy"))
    ));
}

/// With no environment configured, a failure plan is practised on the simulator: the Start
/// popup offers `drill:SCENARIO` (the first of Home's drills filled in), refuses a name that is
/// neither, and sends the scenario's spelling whatever case was typed.
#[tokio::test]
async fn a_plan_without_environments_is_practised_on_a_drill() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, requests, _) = plan_harness(dir.path(), &[]);
    for scenario in ["healthy", "job-disabled"] {
        h.app.home.push(HomeItem::Drill {
            scenario: scenario.into(),
            title: String::new(),
        });
    }
    // The first failure class, its plan, its first part's Start popup.
    h.press("enter");
    h.press("enter");
    let env = |h: &Harness| match h.app.popups.last() {
        Some(Popup::Start { form, .. }) => form.value(1).to_string(),
        other => panic!("no Start popup: {other:?}"),
    };
    assert_eq!(env(&h), "drill:healthy");
    // Back to the environment field (the RTO is focused): its help says what it takes.
    h.press("backtab");
    let screen = h.screen();
    assert!(screen.contains("drill:SCENARIO"), "{screen}");

    // Something that is neither configured nor a drill is refused in the popup.
    for _ in 0.."drill:healthy".len() {
        h.press("backspace");
    }
    h.type_text("prod");
    h.press("enter");
    assert!(requests.lock().unwrap().is_empty());
    let screen = h.screen();
    assert!(
        screen.contains("one of: drill:healthy, drill:job-disabled"),
        "{screen}"
    );

    for _ in 0.."prod".len() {
        h.press("backspace");
    }
    h.type_text("DRILL:Job-Disabled");
    h.press("enter");
    h.settle().await;
    match requests.lock().unwrap().last() {
        Some(Request::Start { environment, .. }) => assert_eq!(environment, "drill:job-disabled"),
        other => panic!("{other:?}"),
    }
}

/// Enter on a recent report writes it and says where, in a popup that stays until dismissed
/// (not as an error); a report that cannot be written says why, as a problem.
#[tokio::test]
async fn a_recent_report_is_written_and_its_path_stays_on_screen() {
    struct Reports;
    impl Opener for Reports {
        fn open(&mut self, _: Request) -> Result<Opened, String> {
            Err("not in this test".into())
        }
        fn report(&mut self, id: &str) -> Result<String, String> {
            match id {
                "good" => Ok("Report written to /data/reports/good.html".into()),
                _ => Err(format!("cannot read {id}")),
            }
        }
    }
    let mut h = Harness::with_opener(80, 24, Box::new(Reports));
    h.app.home = ["good", "bad"]
        .iter()
        .map(|id| HomeItem::Report {
            path: id.to_string(),
            title: format!("review {id}"),
        })
        .collect();
    h.press("enter");
    h.settle().await;
    match h.app.popups.last() {
        Some(Popup::Message { title, text, error }) => {
            assert_eq!((title.as_str(), *error), ("Report written", false));
            assert!(text.contains("/data/reports/good.html"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    let screen = h.screen();
    assert!(
        screen.contains("good.html") && !screen.contains("[ERROR]"),
        "{screen}"
    );
    h.press("esc");
    h.press("j");
    h.press("enter");
    h.settle().await;
    assert!(
        matches!(h.app.popups.last(), Some(Popup::Message { error: true, text, .. }) if text.contains("cannot read bad")),
        "{:?}",
        h.app.popups
    );
}

/// Issue 18: Esc on "Runbook variables" put the values aside and left a session that could
/// never start (Enter said "start it first", `c` took a note and threw it away). Now every
/// key that acts on a step asks for the values again, and the session starts once they are
/// given.
#[tokio::test]
async fn values_put_aside_are_asked_again_before_any_step() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, _requests, _lib) = plan_harness(dir.path(), &["prod"]);
    let sql = h
        .app
        .home
        .iter()
        .position(|i| matches!(i, HomeItem::Failure(p) if p.id == "sql-computer"))
        .expect("the SQL Server computer class is on Home");
    for _ in 0..sql {
        h.press("j");
    }
    h.press("enter");
    h.press("enter");
    h.press("enter");
    h.settle().await;
    assert!(matches!(h.app.popups.last(), Some(Popup::Variables { .. })));
    h.press("esc");
    assert!(h.app.popups.is_empty());
    let said: Vec<String> = h.app.notices.iter().map(|n| n.text.clone()).collect();
    assert!(
        said.iter().any(|t| t.contains("has not started")),
        "{said:?}"
    );
    for key in ["enter", "c", "s", "r", "S"] {
        h.press(key);
        assert!(
            matches!(h.app.popups.last(), Some(Popup::Variables { .. })),
            "`{key}` did not ask for the values again: {:?}",
            h.app.popups
        );
        h.press("esc");
    }
    h.press("enter");
    fill_paths(&mut h).await;
    assert!(h.app.popups.is_empty(), "{:?}", h.app.popups);
    assert!(
        h.app
            .session
            .as_ref()
            .is_some_and(|s| s.engine.is_started()),
        "the session started once its values were given"
    );
}
