//! Shared helpers for the UI tests: the demo runbook, a scripted executor, a ready harness.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use btsdr::app::driver::Opened;
use btsdr::app::harness::{Harness, t0};
use btsdr::engine::{Engine, EngineOptions, Variables};
use btsdr::journal::JournalWriter;
use btsdr::runbook::model::Runbook;
use btsdr::sql::executor::{ConnState, ExecEvent, Executor};
use btsdr_types::Role;
use btsdr_types::{Column, Progress, QueryOutput, ResultSet, SqlError, Statement, Value};
use tokio::sync::mpsc::UnboundedSender;

pub const DEMO: &str = include_str!("demo.toml");

pub fn demo_runbook() -> Arc<Runbook> {
    match btsdr::runbook::loader::parse("tests/ui_support/demo.toml", DEMO, None) {
        Ok(r) => Arc::new(r),
        Err(d) => panic!("demo runbook invalid: {d:?}"),
    }
}

/// What the fake answers for a statement containing a text.
#[derive(Clone)]
pub enum Reply {
    Ok(QueryOutput),
    Err(SqlError),
    /// Never answers (until cancelled).
    Hang,
    /// Progress events, then this output.
    Progress(Vec<f32>, QueryOutput),
}

/// A statement that never answers (until cancelled): its id and where its events go.
type Hanging = (u64, UnboundedSender<ExecEvent>);

/// A scripted executor: the first rule whose text the SQL contains answers (once per rule
/// if `once`).
#[derive(Default, Clone)]
pub struct FakeExec {
    pub rules: Arc<Mutex<VecDeque<(String, Reply, bool)>>>,
    pub sent: Arc<Mutex<Vec<Statement>>>,
    hanging: Arc<Mutex<Vec<Hanging>>>,
}

impl FakeExec {
    pub fn on(&self, contains: &str, reply: Reply) -> &Self {
        self.rules
            .lock()
            .unwrap()
            .push_back((contains.to_string(), reply, false));
        self
    }
    /// Answers once, then later rules apply.
    pub fn once(&self, contains: &str, reply: Reply) -> &Self {
        self.rules
            .lock()
            .unwrap()
            .push_front((contains.to_string(), reply, true));
        self
    }
}

impl Executor for FakeExec {
    fn submit(&self, id: u64, stmt: Statement, events: UnboundedSender<ExecEvent>) {
        self.sent.lock().unwrap().push(stmt.clone());
        let reply = {
            let mut rules = self.rules.lock().unwrap();
            let pos = rules
                .iter()
                .position(|(t, _, _)| stmt.sql.contains(t.as_str()));
            match pos {
                Some(i) => {
                    let r = rules[i].1.clone();
                    if rules[i].2 {
                        rules.remove(i);
                    }
                    r
                }
                None => Reply::Ok(QueryOutput::default()),
            }
        };
        let _ = events.send(ExecEvent::Started { id });
        match reply {
            Reply::Ok(q) => {
                let _ = events.send(ExecEvent::Finished { id, result: Ok(q) });
            }
            Reply::Err(e) => {
                let _ = events.send(ExecEvent::Finished { id, result: Err(e) });
            }
            Reply::Hang => self.hanging.lock().unwrap().push((id, events)),
            Reply::Progress(ps, q) => {
                for p in ps {
                    let _ = events.send(ExecEvent::Progress {
                        id,
                        progress: Progress {
                            percent: p,
                            eta_ms: Some(90_000),
                        },
                    });
                }
                let _ = events.send(ExecEvent::Finished { id, result: Ok(q) });
            }
        }
    }
    fn cancel(&self, id: u64) {
        let mut h = self.hanging.lock().unwrap();
        if let Some(i) = h.iter().position(|(x, _)| *x == id) {
            let (_, tx) = h.remove(i);
            let _ = tx.send(ExecEvent::Finished {
                id,
                result: Err(SqlError::Cancelled),
            });
        }
    }
    fn status(&self) -> Vec<(Role, ConnState)> {
        vec![(Role::Destination, ConnState::Connected)]
    }
}

pub fn set(cols: &[&str], rows: Vec<Vec<Value>>) -> QueryOutput {
    QueryOutput {
        sets: vec![ResultSet {
            not_kept: 0,
            columns: cols
                .iter()
                .map(|c| Column {
                    name: c.to_string(),
                    type_name: "nvarchar".into(),
                })
                .collect(),
            rows: rows.into(),
        }],
        rows_affected: vec![],
    }
}

pub fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// The usual happy answers for the demo runbook.
pub fn demo_exec() -> FakeExec {
    let f = FakeExec::default();
    f.on("@@VERSION", Reply::Ok(set(&["version", "edition"], vec![vec![
        text("Microsoft SQL Server 2022 (RTM-CU12) - 16.0.4125.3 (X64) Enterprise Edition: Core-based Licensing (64-bit) on Windows Server 2022 Datacenter"),
        text("Enterprise Edition: Core-based Licensing (64-bit)"),
    ]])));
    f.on("adm_BackupHistory", Reply::Ok(set(&["DatabaseName", "BackupFileName", "BackupSetId"], vec![
        vec![text("BizTalkMgmtDb"), text("\\\\backup01\\bts\\SQLPROD01_BizTalkMgmtDb_Full_BTS_2026_11_20_23_00_00_123.bak"), Value::Int(1042)],
        vec![text("BizTalkMsgBoxDb"), text("\\\\backup01\\bts\\SQLPROD01_BizTalkMsgBoxDb_Full_BTS_2026_11_20_23_00_00_456.bak"), Value::Int(1042)],
        vec![text("SSODB"), text("\\\\backup01\\bts\\SQLPROD01_SSODB_Full_BTS_2026_11_20_23_00_00_789.bak"), Value::Int(1042)],
    ])));
    f.on(
        "sys.databases",
        Reply::Ok(set(
            &["name", "state_desc"],
            vec![
                vec![text("BizTalkMgmtDb"), text("ONLINE")],
                vec![text("BizTalkMsgBoxDb"), text("ONLINE")],
            ],
        )),
    );
    f
}

pub fn options(drill: bool, dry_run: bool) -> EngineOptions {
    EngineOptions {
        security_warnings: Vec::new(),
        dry_run,
        two_person_rule: false,
        operator: "alice".into(),
        session_id: "20261121-0300-demo".into(),
        environment: "prod-dr".into(),
        drill,
        rto_minutes: Some(240),
        rpo_minutes: Some(15),
        declared_at: Some(t0() - chrono::Duration::minutes(42)),
        plan: None,
    }
}

pub fn demo_vars(rb: &Runbook) -> Variables {
    let mut v = Variables::from_runbook(rb);
    v.set("server", "SQLDR01");
    v
}

/// A harness with the demo session open (variables set, started) on `exec`.
pub fn demo_harness(w: u16, h: u16, dir: &Path, exec: Arc<dyn Executor>) -> Harness {
    let rb = demo_runbook();
    let engine = Engine::new(Arc::clone(&rb), demo_vars(&rb), options(true, false));
    open_engine(w, h, dir, exec, engine)
}

pub fn open_engine(w: u16, h: u16, dir: &Path, exec: Arc<dyn Executor>, engine: Engine) -> Harness {
    let mut h = Harness::new(w, h);
    let journal = JournalWriter::create(&dir.join("session.jsonl")).expect("journal");
    h.open(Opened {
        engine,
        journal,
        executor: exec,
        files_dir: dir.join("out"),
    });
    h
}
