//! Fault injection over real TCP: a scripted `Backend` behind `sim::tds::TdsServer`, the app's
//! own tiberius executor, the engine and the UI (`Harness`). The server drops the connection
//! mid-statement, refuses the login, answers slowly, stops answering, goes away; each time the
//! step fails with a clear message within its timeout, the journal keeps everything, and a
//! retry works once the server is back. Plus the `drop-during-restore` drill scenario.
//! docs/RELIABILITY.md describes each class.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use btsdr::app::driver::Opened;
use btsdr::app::harness::{Harness, t0};
use btsdr::app::{Popup, StepMark};
use btsdr::config::{DrillConfig, Encrypt, Environment, MapSecrets, SecretSource, ServerProfile};
use btsdr::engine::{Engine, EngineOptions, Variables};
use btsdr::engine::{Event, Outcome};
use btsdr::journal::{JournalWriter, read_records, verify};
use btsdr::runbook::model::Runbook;
use btsdr::sql::executor::{Executor, TiberiusExecutor};
use btsdr_sim::backend::{Backend, Reply, ReplyFuture, Request, Session};
use btsdr_sim::tds::TdsServer;
use btsdr_types::Role;
use btsdr_types::{Column, ResultSet, Value};

/// What the scripted server does with the next statements.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Normal,
    /// Sends a progress message, then closes the socket (no DONE).
    DropMidStatement,
    RefuseLogin,
    Slow(Duration),
    /// Never answers (the statement hangs until the client gives up).
    Silent,
    /// Accepts the login, then never answers anything (not even the executor's `@@SPID`).
    SilentAfterLogin,
}

#[derive(Clone)]
struct Scripted {
    mode: Arc<Mutex<Mode>>,
}

impl Scripted {
    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn set(&self, m: Mode) {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner()) = m;
    }
}

fn one(name: &str, v: i64) -> Reply {
    Reply::Rows(ResultSet {
        not_kept: 0,
        columns: vec![Column {
            name: name.into(),
            type_name: "int".into(),
        }],
        rows: vec![vec![Value::Int(v)]].into(),
    })
}

impl Backend for Scripted {
    fn login(&self, user: &str, _password: &str) -> Result<(), String> {
        if self.mode() == Mode::RefuseLogin {
            Err(format!(
                "Login failed for user '{user}'. Reason: Password did not match that for the login provided."
            ))
        } else {
            Ok(())
        }
    }

    fn execute<'a>(&'a self, session: &'a mut Session, request: Request) -> ReplyFuture<'a> {
        let mode = self.mode();
        Box::pin(async move {
            // The executor asks for the session id right after login.
            if mode == Mode::SilentAfterLogin {
                std::future::pending::<()>().await;
            }
            if request.sql.contains("@@SPID") {
                return vec![one("spid", i64::from(session.spid))];
            }
            match mode {
                Mode::Normal | Mode::RefuseLogin => vec![one("n", 1)],
                Mode::DropMidStatement => vec![
                    Reply::Info {
                        number: 3211,
                        message: "10 percent processed.".into(),
                    },
                    Reply::Disconnect,
                ],
                Mode::Slow(d) => {
                    tokio::time::sleep(d).await;
                    vec![one("n", 1)]
                }
                Mode::Silent | Mode::SilentAfterLogin => {
                    std::future::pending::<()>().await;
                    vec![]
                }
            }
        })
    }
}

const RUNBOOK: &str = r#"
id = "faults"
title = "Fault injection"
summary = "One check against the scripted server."
version = "1.0.0"

[[sections]]
id = "s"
title = "Checks"

[[sections.steps]]
id = "s.one"
title = "Ask the server for one row"
why = "A statement to break."
kind = "check"
server = "destination"
database = "master"
sql = "SELECT 1 AS n"
timeout_secs = 2
[[sections.steps.assert]]
rows = "== 1"
message = "The server did not answer one row."

[[sections.steps]]
id = "s.two"
title = "Ask again"
why = "A second statement on the same connection."
kind = "check"
server = "destination"
database = "master"
sql = "SELECT 1 AS n"
timeout_secs = 2
[[sections.steps.assert]]
rows = "== 1"
message = "The server did not answer one row."
"#;

fn runbook() -> Arc<Runbook> {
    match btsdr::runbook::loader::parse("faults.toml", RUNBOOK, None) {
        Ok(r) => Arc::new(r),
        Err(d) => panic!("test runbook invalid: {d:?}"),
    }
}

fn options() -> EngineOptions {
    EngineOptions {
        operator: "alice".into(),
        session_id: "20261121-030000-faults".into(),
        environment: "faults".into(),
        drill: true,
        declared_at: Some(t0()),
        ..EngineOptions::default()
    }
}

fn executor(addr: SocketAddr) -> Arc<dyn Executor> {
    let mut p = ServerProfile::sql_login(
        &addr.ip().to_string(),
        Some(addr.port()),
        "btsdr",
        Encrypt::NotSupported,
    );
    p.connect_timeout_secs = 2;
    p.statement_timeout_secs = 2;
    let env = Environment {
        name: "faults".into(),
        description: "scripted server".into(),
        source: None,
        msgbox: vec![],
        destination: Some(p),
    };
    let secrets = MapSecrets::new().with(Role::Destination, "btsdr", "pw");
    let s: &dyn SecretSource = &secrets;
    match TiberiusExecutor::new(&env, s) {
        Ok(e) => Arc::new(e),
        Err(e) => panic!("executor: {e}"),
    }
}

struct Rig {
    h: Harness,
    backend: Scripted,
    server: Option<TdsServer>,
    addr: SocketAddr,
    journal: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let backend = Scripted {
        mode: Arc::new(Mutex::new(Mode::Normal)),
    };
    let server = TdsServer::bind(([127, 0, 0, 1], 0).into(), Arc::new(backend.clone()))
        .await
        .expect("bind");
    let addr = server.local_addr();
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = dir.path().join("faults.jsonl");
    let rb = runbook();
    let engine = Engine::new(Arc::clone(&rb), Variables::from_runbook(&rb), options());
    let mut h = Harness::new(100, 30);
    // Nothing may take longer than the timeouts above plus the attention grace period.
    h.timeout = Duration::from_secs(15);
    h.open(Opened {
        engine,
        journal: JournalWriter::create(&journal).expect("journal"),
        executor: executor(addr),
        files_dir: dir.path().join("files"),
    });
    h.settle().await;
    Rig {
        h,
        backend,
        server: Some(server),
        addr,
        journal,
        _dir: dir,
    }
}

fn mark(h: &Harness) -> StepMark {
    h.app.run.as_ref().expect("run").steps[0].mark
}

/// Runs (or retries) the step and waits for it to settle; returns how long it took.
async fn run_step(h: &mut Harness, key: &str) -> Duration {
    let t = Instant::now();
    h.press(key);
    h.settle().await;
    t.elapsed()
}

/// Every attempt is in the journal: `starts` StepStarted, one StepFinished each, the chain intact.
fn journal_has(path: &std::path::Path, starts: usize, passed: usize) {
    let read = read_records(path).expect("read journal");
    assert!(read.report.is_intact(), "{}", read.report);
    assert!(verify(path).expect("verify").is_intact());
    let on = |f: &dyn Fn(&Event) -> bool| {
        read.entries
            .iter()
            .filter(|r| r.step.as_deref() == Some("s.one") && f(&r.event))
            .count()
    };
    assert_eq!(on(&|e| matches!(e, Event::StepStarted { .. })), starts);
    assert_eq!(on(&|e| matches!(e, Event::StepFinished { .. })), starts);
    assert_eq!(
        on(&|e| matches!(
            e,
            Event::StepFinished {
                outcome: Outcome::Passed,
                ..
            }
        )),
        passed
    );
}

/// Fails the step under `fault`, checks the message and the time it took, then retries
/// after the server is back to normal.
async fn fail_then_recover(fault: Mode, expect: &[&str], within: Duration) {
    let mut r = rig().await;
    r.backend.set(fault);
    let took = run_step(&mut r.h, "enter").await;
    assert_eq!(mark(&r.h), StepMark::Failed, "{}", r.h.screen());
    assert!(took < within, "{fault:?}: took {took:?}");
    let s = r.h.screen();
    let out =
        r.h.app
            .run
            .as_ref()
            .and_then(|run| run.outputs.get("s.one"))
            .and_then(|o| o.error.clone())
            .map(|e| e.message)
            .unwrap_or_default();
    for e in expect {
        assert!(
            out.contains(e) || s.contains(e),
            "{fault:?}: `{e}` not in the error `{out}` nor on screen:\n{s}"
        );
    }
    r.backend.set(Mode::Normal);
    run_step(&mut r.h, "r").await;
    assert_eq!(mark(&r.h), StepMark::Passed, "{}", r.h.screen());
    drop(r.h);
    journal_has(&r.journal, 2, 1);
    if let Some(s) = r.server.take() {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_dropped_mid_statement() {
    fail_then_recover(
        Mode::DropMidStatement,
        &["connection lost", "outcome on the server is unknown"],
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refused() {
    fail_then_recover(
        Mode::RefuseLogin,
        &["login failed", "Password did not match"],
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answer_past_the_statement_timeout() {
    fail_then_recover(
        Mode::Slow(Duration::from_secs(30)),
        &["timed out after 2 s"],
        // 2 s timeout + attention (the server drops the request at once).
        Duration::from_secs(9),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answer_within_the_timeout_passes() {
    let mut r = rig().await;
    r.backend.set(Mode::Slow(Duration::from_millis(600)));
    let took = run_step(&mut r.h, "enter").await;
    assert_eq!(mark(&r.h), StepMark::Passed, "{}", r.h.screen());
    assert!(took >= Duration::from_millis(600), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stops_answering() {
    fail_then_recover(
        Mode::Silent,
        &["timed out after 2 s"],
        Duration::from_secs(9),
    )
    .await;
}

/// A server that accepts the login and then stalls: the executor's `SELECT @@SPID` after the
/// login is bounded by the connect timeout, so the step fails instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stops_answering_right_after_login() {
    fail_then_recover(Mode::SilentAfterLogin, &["2 s"], Duration::from_secs(9)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_still_work_while_a_statement_hangs() {
    let mut r = rig().await;
    r.backend.set(Mode::Silent);
    r.h.press("enter");
    // The UI never waits on the network: keys are answered while the statement is stuck.
    let t = Instant::now();
    for _ in 0..50 {
        r.h.press("j");
        r.h.press("k");
        let _ = r.h.screen();
    }
    assert!(r.h.busy());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // The operator cancels it: ctrl-c asks, `y` confirms.
    r.h.press("ctrl-c");
    r.h.press("y");
    r.h.settle().await;
    // A cancelled check failed (it is not destructive, so not in doubt), says why, and the
    // session is free for the next action.
    assert_eq!(mark(&r.h), StepMark::Failed, "{}", r.h.screen());
    assert!(!r.h.busy(), "{}", r.h.screen());
    let err =
        r.h.app
            .run
            .as_ref()
            .and_then(|run| run.outputs.get("s.one"))
            .and_then(|o| o.error.clone())
            .map(|e| e.message)
            .unwrap_or_default();
    assert!(err.to_lowercase().contains("cancel"), "{err}");
    // Put right, a retry passes.
    r.backend.set(Mode::Normal);
    run_step(&mut r.h, "r").await;
    assert_eq!(mark(&r.h), StepMark::Passed, "{}", r.h.screen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_goes_away_and_comes_back_on_the_same_port() {
    let mut r = rig().await;
    run_step(&mut r.h, "enter").await;
    assert_eq!(mark(&r.h), StepMark::Passed);
    // The server process dies; the executor still holds the old connection. The next step
    // fails (lost connection or refused connect) within its timeout.
    if let Some(s) = r.server.take() {
        s.shutdown().await;
    }
    r.h.press("j");
    let took = run_step(&mut r.h, "enter").await;
    let two = |h: &Harness| h.app.run.as_ref().expect("run").steps[1].mark;
    assert_eq!(two(&r.h), StepMark::Failed, "{}", r.h.screen());
    assert!(took < Duration::from_secs(5), "{took:?}");
    let err =
        r.h.app
            .run
            .as_ref()
            .and_then(|run| run.outputs.get("s.two"))
            .and_then(|o| o.error.clone())
            .map(|e| e.message)
            .unwrap_or_default();
    assert!(
        err.contains("cannot connect") || err.contains("connection lost"),
        "{err}"
    );
    // It comes back on the same address: a retry reconnects and passes.
    let server = TdsServer::bind(r.addr, Arc::new(r.backend.clone()))
        .await
        .expect("rebind the same port");
    let mut passed = false;
    // The first retry may still meet the dead connection; the next one must pass.
    for _ in 0..2 {
        run_step(&mut r.h, "r").await;
        if two(&r.h) == StepMark::Passed {
            passed = true;
            break;
        }
    }
    assert!(passed, "{}", r.h.screen());
    drop(r.h);
    let read = read_records(&r.journal).expect("journal");
    assert!(read.report.is_intact());
    server.shutdown().await;
}

/// The drill scenario: the simulator drops each database's first RESTORE half-way. The step
/// does not pass, the operator is told the outcome is unknown, and a retry restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_drop_during_restore_then_retry() {
    use btsdr_sim::drill::Drill;
    let drill = Drill::start("drop-during-restore").await.expect("drill");
    let full = {
        let g = btsdr_sim::model::lock(&drill.group);
        g.files
            .values()
            .filter(|f| f.kind == 'D' && f.database_name.eq_ignore_ascii_case("SSODB"))
            .max_by_key(|f| f.finish)
            .map(|f| f.path.clone())
            .expect("a full backup of SSODB")
    };
    let text = r#"
id = "drop"
title = "Restore SSODB"
summary = "One restore."
version = "1.0.0"

[[variables]]
name = "full"
label = "Full backup"
kind = "path"
required = true

[[sections]]
id = "r"
title = "Restore"

[[sections.steps]]
id = "r.ssodb"
title = "Restore SSODB"
why = "The drill drops it half-way."
kind = "sql"
server = "destination"
database = "master"
sql = "RESTORE DATABASE [SSODB] FROM DISK = @full WITH NORECOVERY, REPLACE, STATS = 10"
params = ["full"]
destructive = true
confirm_word = "RESTORE"
long_running = true
timeout_secs = 60
"#;
    let rb = Arc::new(btsdr::runbook::loader::parse("drop.toml", text, None).expect("runbook"));
    let mut vars = Variables::from_runbook(&rb);
    vars.set("full", full);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("drop.jsonl");
    let secrets = drill.secrets();
    let s: &dyn SecretSource = &secrets;
    let exec: Arc<dyn Executor> = Arc::new(TiberiusExecutor::new(&drill.environment(), s).unwrap());
    let mut h = Harness::new(100, 30);
    h.timeout = Duration::from_secs(30);
    h.open(Opened {
        engine: Engine::new(Arc::clone(&rb), vars, options()),
        journal: JournalWriter::create(&journal).unwrap(),
        executor: exec,
        files_dir: dir.path().join("files"),
    });
    h.settle().await;
    h.press("enter");
    h.type_text("RESTORE");
    h.press("enter");
    h.settle().await;
    // The outcome on the server is unknown: the step is in doubt, never "passed".
    let m = h.app.run.as_ref().unwrap().steps[0].mark;
    let s = h.screen();
    assert_eq!(m, StepMark::InDoubt, "{s}");
    assert!(s.contains("in doubt"), "{s}");
    // The operator decides: Enter opens the in-doubt choices, 2 re-runs it (destructive, so
    // the word is asked again); the second RESTORE is not dropped.
    h.press("enter");
    assert!(
        matches!(h.app.popups.last(), Some(Popup::InDoubt { .. })),
        "{}",
        h.screen()
    );
    h.press("2");
    h.press("enter");
    assert!(
        matches!(h.app.popups.last(), Some(Popup::TypedConfirm { .. })),
        "{}",
        h.screen()
    );
    h.type_text("RESTORE");
    h.press("enter");
    h.settle().await;
    let m = h.app.run.as_ref().unwrap().steps[0].mark;
    assert_eq!(m, StepMark::Passed, "{}", h.screen());
    drop(h);
    let read = read_records(&journal).unwrap();
    assert!(read.report.is_intact());
    let starts = read
        .entries
        .iter()
        .filter(|r| matches!(r.event, Event::StepStarted { .. }))
        .count();
    assert_eq!(starts, 2);
    drill.shutdown().await;
}
