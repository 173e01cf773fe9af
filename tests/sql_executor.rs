//! The tiberius executor over real TCP against the simulator's TDS server, with a scripted
//! backend: typed values, parameters, errors, timeout, cancel, dropped connections,
//! progress, login and connect failures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
#![allow(clippy::too_many_lines)] // some tests tell a long story

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use btsdr::config::{Encrypt, Environment, MapSecrets, ServerProfile};
use btsdr::sql::executor::statement_text;
use btsdr::sql::{ConnState, ExecEvent, Executor, TiberiusExecutor, run_once};
use btsdr_sim::backend::{Backend, Reply, ReplyFuture, Request, Session};
use btsdr_sim::tds::TdsServer;
use btsdr_types::Role;
use btsdr_types::{Column, Param, QueryOutput, ResultSet, SqlError, Statement, Value, ValueRef};
use tokio::sync::mpsc;

#[derive(Default)]
struct Scripted {
    requests: Mutex<Vec<Request>>,
    /// Models `sys.dm_exec_requests`: spid → (percent_complete, estimated_completion_time).
    running: Mutex<HashMap<i64, (f64, i64)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap()
}

fn rows(cols: &[(&str, &str)], rows: Vec<Vec<Value>>) -> Reply {
    Reply::Rows(ResultSet {
        not_kept: 0,
        columns: cols
            .iter()
            .map(|(n, t)| Column {
                name: n.to_string(),
                type_name: t.to_string(),
            })
            .collect(),
        rows: rows.into(),
    })
}

impl Backend for Scripted {
    fn login(&self, user: &str, password: &str) -> Result<(), String> {
        if user == "sa" && password == "Pa55w0rd!" {
            Ok(())
        } else {
            Err(format!("Login failed for user '{user}'."))
        }
    }

    fn execute<'a>(&'a self, session: &'a mut Session, request: Request) -> ReplyFuture<'a> {
        Box::pin(async move {
            lock(&self.requests).push(request.clone());
            let sql = request.sql.as_str();
            let spid = i64::from(session.spid);
            if sql.contains("@@SPID") {
                return vec![rows(&[("spid", "smallint")], vec![vec![Value::Int(spid)]])];
            }
            if sql.contains("sys.dm_exec_requests") {
                let target = match request.params.first() {
                    Some((_, Some(Param::Int(i)))) => *i,
                    _ => -1,
                };
                let found = lock(&self.running).get(&target).copied();
                let data = found
                    .map(|(p, eta)| vec![vec![Value::Float(p), Value::Int(eta)]])
                    .unwrap_or_default();
                return vec![rows(
                    &[
                        ("percent_complete", "float"),
                        ("estimated_completion_time", "bigint"),
                    ],
                    data,
                )];
            }
            if sql.contains("TYPES") {
                return vec![rows(
                    &[
                        ("i", "int"),
                        ("bi", "bigint"),
                        ("b", "bit"),
                        ("s", "nvarchar"),
                        ("dt", "datetime"),
                        ("dt2", "datetime2"),
                        ("g", "uniqueidentifier"),
                        ("d", "decimal(18,4)"),
                        ("bin", "varbinary"),
                        ("n", "int"),
                    ],
                    vec![vec![
                        Value::Int(-42),
                        Value::Int(9_000_000_000),
                        Value::Bool(true),
                        Value::Text("BizTalkMsgBoxDb ✓".into()),
                        Value::DateTime("2026-11-21 23:04:05.123".into()),
                        Value::DateTime("2026-11-21 23:04:05.1234567".into()),
                        Value::Guid("6F9619FF-8B86-D011-B42D-00C04FC964FF".into()),
                        Value::Decimal("12345.6789".into()),
                        Value::Binary(vec![0xDE, 0xAD, 0x00, 0xFF]),
                        Value::Null,
                    ]],
                )];
            }
            if sql.contains("TWOSETS") {
                return vec![
                    rows(
                        &[("a", "int")],
                        vec![vec![Value::Int(1)], vec![Value::Int(2)]],
                    ),
                    Reply::Done {
                        rows_affected: Some(3),
                    },
                    rows(&[("b", "nvarchar")], vec![vec![Value::Text("x".into())]]),
                ];
            }
            if sql.contains("ECHO") {
                let cols: Vec<(String, &str)> = request
                    .params
                    .iter()
                    .map(|(n, v)| {
                        let t = match v {
                            Some(Param::Int(_)) => "bigint",
                            Some(Param::Bool(_)) => "bit",
                            _ => "nvarchar",
                        };
                        (n.clone(), t)
                    })
                    .collect();
                let values = request
                    .params
                    .iter()
                    .map(|(_, v)| match v {
                        Some(Param::Text(s)) => Value::Text(s.clone()),
                        Some(Param::Int(i)) => Value::Int(*i),
                        Some(Param::Bool(b)) => Value::Bool(*b),
                        None => Value::Null,
                    })
                    .collect();
                let cols: Vec<(&str, &str)> = cols.iter().map(|(n, t)| (n.as_str(), *t)).collect();
                return vec![rows(&cols, vec![values])];
            }
            if sql.contains("FAIL") {
                return vec![Reply::Error {
                    number: 50000,
                    severity: 16,
                    state: 3,
                    message: "The backup job is disabled.".into(),
                    procedure: "sp_CheckJob".into(),
                    line: 7,
                }];
            }
            if sql.contains("SLEEP") {
                tokio::time::sleep(Duration::from_secs(30)).await;
                return vec![Reply::Done {
                    rows_affected: None,
                }];
            }
            if sql.contains("DROPME") {
                tokio::time::sleep(Duration::from_millis(200)).await;
                return vec![Reply::Disconnect];
            }
            if sql.contains("RESTORE") {
                for step in 1..=5 {
                    lock(&self.running).insert(
                        spid,
                        (f64::from(step) * 20.0 - 10.0, (5 - i64::from(step)) * 700),
                    );
                    tokio::time::sleep(Duration::from_millis(700)).await;
                }
                lock(&self.running).remove(&spid);
                return vec![Reply::Done {
                    rows_affected: None,
                }];
            }
            vec![rows(&[("one", "int")], vec![vec![Value::Int(1)]])]
        })
    }
}

struct Fixture {
    server: TdsServer,
    backend: Arc<Scripted>,
    exec: TiberiusExecutor,
}

fn env_for(port: u16) -> Environment {
    let mut p = ServerProfile::sql_login("127.0.0.1", Some(port), "sa", Encrypt::NotSupported);
    p.connect_timeout_secs = 5;
    Environment {
        name: "test".into(),
        description: String::new(),
        source: Some(p),
        msgbox: Vec::new(),
        destination: None,
    }
}

async fn fixture() -> Fixture {
    fixture_with_password("Pa55w0rd!").await
}

async fn fixture_with_password(pw: &str) -> Fixture {
    let backend = Arc::new(Scripted::default());
    let server = TdsServer::bind("127.0.0.1:0".parse().unwrap(), backend.clone())
        .await
        .unwrap();
    let env = env_for(server.local_addr().port());
    let secrets = MapSecrets::new().with(Role::Source, "sa", pw);
    let exec = TiberiusExecutor::new(&env, &secrets).unwrap();
    Fixture {
        server,
        backend,
        exec,
    }
}

fn stmt(sql: &str) -> Statement {
    Statement {
        role: Role::Source,
        database: String::new(),
        sql: sql.into(),
        params: Vec::new(),
        timeout_secs: 10,
        long_running: false,
    }
}

/// Submits and collects every event up to `Finished`.
async fn run(
    exec: &dyn Executor,
    id: u64,
    s: Statement,
) -> (Vec<ExecEvent>, Result<QueryOutput, SqlError>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    exec.submit(id, s, tx);
    collect(&mut rx, id).await
}

async fn collect(
    rx: &mut mpsc::UnboundedReceiver<ExecEvent>,
    id: u64,
) -> (Vec<ExecEvent>, Result<QueryOutput, SqlError>) {
    let mut events = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("no Finished within 20 s")
            .expect("channel closed before Finished");
        if let ExecEvent::Finished { id: got, result } = &ev {
            assert_eq!(*got, id);
            return (events, result.clone());
        }
        events.push(ev);
    }
}

fn connecting(events: &[ExecEvent]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            ExecEvent::Conn {
                state: ConnState::Connecting,
                ..
            }
        )
    })
}

#[tokio::test]
async fn typed_values_arrive_as_values() {
    let f = fixture().await;
    let (events, r) = run(&f.exec, 1, stmt("SELECT TYPES")).await;
    assert!(
        matches!(events[0], ExecEvent::Started { id: 1 }),
        "{events:?}"
    );
    assert!(connecting(&events), "lazy connect on first statement");
    let out = r.unwrap();
    let set = out.first().unwrap();
    let types: Vec<&str> = set.columns.iter().map(|c| c.type_name.as_str()).collect();
    assert_eq!(
        types,
        [
            "int",
            "bigint",
            "bit",
            "nvarchar",
            "datetime",
            "datetime2",
            "uniqueidentifier",
            "decimal",
            "varbinary",
            "int"
        ]
    );
    assert_eq!(
        set.rows.first().expect("a row").to_vec(),
        vec![
            Value::Int(-42),
            Value::Int(9_000_000_000),
            Value::Bool(true),
            Value::Text("BizTalkMsgBoxDb ✓".into()),
            Value::DateTime("2026-11-21 23:04:05.123".into()),
            Value::DateTime("2026-11-21 23:04:05.1234567".into()),
            Value::Guid("6F9619FF-8B86-D011-B42D-00C04FC964FF".into()),
            Value::Decimal("12345.6789".into()),
            Value::Binary(vec![0xDE, 0xAD, 0x00, 0xFF]),
            Value::Null,
        ]
    );
    assert_eq!(f.exec.status(), vec![(Role::Source, ConnState::Connected)]);
    f.server.shutdown().await;
}

#[tokio::test]
async fn every_result_set_is_collected() {
    let f = fixture().await;
    let out = run_once(&f.exec, stmt("SELECT TWOSETS")).await.unwrap();
    assert_eq!(out.sets.len(), 2);
    assert_eq!(
        out.sets[0].rows,
        vec![vec![Value::Int(1)], vec![Value::Int(2)]]
    );
    assert_eq!(out.sets[1].get(0, "b"), Some(ValueRef::Text("x")));
    f.server.shutdown().await;
}

#[tokio::test]
async fn hostile_parameters_arrive_unchanged() {
    let f = fixture().await;
    let long = "ж'".repeat(5_000); // 10,000 characters
    let hostile = [
        ("quote", Param::Text("O'Brien''s".into())),
        ("bracket", Param::Text("x]; SELECT 1; --".into())),
        ("drop", Param::Text("; DROP DATABASE x".into())),
        ("uni", Param::Text("Ünïcødé ✓ 𝄞 中文".into())),
        ("long", Param::Text(long.clone())),
        ("n", Param::Int(-9_000_000_000)),
        ("flag", Param::Bool(true)),
    ];
    let sql = "SELECT ECHO @quote, @bracket, @drop, @uni, @long, @n, @flag";
    let mut s = stmt(sql);
    s.database = "Biz]Talk".into();
    s.params = hostile
        .iter()
        .map(|(n, p)| (n.to_string(), p.clone()))
        .collect();
    let out = run_once(&f.exec, s.clone()).await.unwrap();

    let reqs = lock(&f.backend.requests).clone();
    let req = reqs.iter().find(|r| r.sql.contains("ECHO")).unwrap();
    // The text is the prefix plus the SQL exactly as written: no value was spliced in.
    assert_eq!(req.sql, statement_text(&s).unwrap());
    assert!(req.sql.ends_with(sql));
    assert!(req.sql.contains("USE [Biz]]Talk]; "), "{}", req.sql);
    assert!(!req.sql.contains("DROP DATABASE") && !req.sql.contains("O'Brien"));
    let sent: Vec<Option<Param>> = req.params.iter().map(|(_, v)| v.clone()).collect();
    let want: Vec<Option<Param>> = hostile.iter().map(|(_, p)| Some(p.clone())).collect();
    assert_eq!(sent, want);
    let row = out.first().unwrap().rows.first().unwrap().to_vec();
    assert_eq!(row[4], Value::Text(long));
    assert_eq!(row[5], Value::Int(-9_000_000_000));
    f.server.shutdown().await;
}

#[tokio::test]
async fn server_error_fields_and_connection_kept() {
    let f = fixture().await;
    let (_, r) = run(&f.exec, 1, stmt("EXEC FAIL")).await;
    assert_eq!(
        r,
        Err(SqlError::Server {
            number: 50000,
            severity: 16,
            state: 3,
            procedure: "sp_CheckJob".into(),
            line: 7,
            message: "The backup job is disabled.".into(),
        })
    );
    let (events, r) = run(&f.exec, 2, stmt("SELECT 1")).await;
    assert!(r.is_ok());
    assert!(
        !connecting(&events),
        "a server error keeps the connection: {events:?}"
    );
    f.server.shutdown().await;
}

#[tokio::test]
async fn statement_timeout_fires_and_next_statement_reconnects() {
    let f = fixture().await;
    let mut s = stmt("WAITFOR SLEEP");
    s.timeout_secs = 1;
    let t0 = Instant::now();
    let (events, r) = run(&f.exec, 1, s).await;
    assert_eq!(r, Err(SqlError::Timeout { secs: 1 }));
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    assert!(events.iter().any(|e| matches!(
        e,
        ExecEvent::Conn {
            state: ConnState::Disconnected,
            ..
        }
    )));
    let (events, r) = run(&f.exec, 2, stmt("SELECT 1")).await;
    assert!(r.is_ok(), "{r:?}");
    assert!(connecting(&events), "reconnected after the timeout");
    f.server.shutdown().await;
}

#[tokio::test]
async fn cancel_running_and_queued_statements() {
    let f = fixture().await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    f.exec.submit(1, stmt("WAITFOR SLEEP"), tx.clone());
    f.exec.submit(2, stmt("SELECT 1"), tx.clone());
    // Wait until 1 runs, then cancel the queued 2 and the running 1.
    loop {
        match rx.recv().await.unwrap() {
            ExecEvent::Conn {
                state: ConnState::Connected,
                ..
            } => break,
            ExecEvent::Finished { .. } => panic!("finished too early"),
            _ => {}
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    f.exec.cancel(2);
    f.exec.cancel(1);
    let (_, r1) = collect(&mut rx, 1).await;
    assert_eq!(r1, Err(SqlError::Cancelled));
    assert!(t0.elapsed() < Duration::from_secs(7), "{:?}", t0.elapsed());
    let (events2, r2) = collect(&mut rx, 2).await;
    assert_eq!(r2, Err(SqlError::Cancelled));
    assert!(
        events2.is_empty(),
        "a queued statement never starts: {events2:?}"
    );
    // Cancelling something finished is a no-op; the next statement reconnects.
    f.exec.cancel(1);
    let (events, r) = run(&f.exec, 3, stmt("SELECT 1")).await;
    assert!(r.is_ok(), "{r:?}");
    assert!(connecting(&events));
    f.server.shutdown().await;
}

#[tokio::test]
async fn dropped_connection_is_reported_not_retried() {
    let f = fixture().await;
    let (_, r) = run(&f.exec, 1, stmt("EXEC DROPME")).await;
    assert!(matches!(r, Err(SqlError::Dropped { .. })), "{r:?}");
    let tries = lock(&f.backend.requests)
        .iter()
        .filter(|r| r.sql.contains("DROPME"))
        .count();
    assert_eq!(tries, 1, "never retried");
    let (events, r) = run(&f.exec, 2, stmt("SELECT 1")).await;
    assert!(r.is_ok(), "{r:?}");
    assert!(connecting(&events), "the next statement reconnects");
    f.server.shutdown().await;
}

#[tokio::test]
async fn long_statements_report_progress() {
    let f = fixture().await;
    let mut s = stmt("RESTORE DATABASE x");
    s.long_running = true;
    let (events, r) = run(&f.exec, 7, s).await;
    assert!(r.is_ok(), "{r:?}");
    let progress: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ExecEvent::Progress { id: 7, progress } => Some(*progress),
            _ => None,
        })
        .collect();
    assert!(progress.len() >= 2, "{events:?}");
    assert!(
        progress
            .iter()
            .all(|p| p.percent > 0.0 && p.percent <= 100.0)
    );
    assert!(
        progress.windows(2).all(|w| w[0].percent <= w[1].percent),
        "{progress:?}"
    );
    assert!(progress.iter().any(|p| p.eta_ms.is_some()));
    // A short statement gets none.
    let (events, _) = run(&f.exec, 8, stmt("SELECT 1")).await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ExecEvent::Progress { .. }))
    );
    f.server.shutdown().await;
}

#[tokio::test]
async fn wrong_password_is_a_login_error() {
    let f = fixture_with_password("wrong").await;
    let (events, r) = run(&f.exec, 1, stmt("SELECT 1")).await;
    match r {
        Err(SqlError::Login { message, .. }) => {
            assert!(message.contains("Login failed"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(events.iter().any(|e| matches!(
        e,
        ExecEvent::Conn {
            state: ConnState::Failed(_),
            ..
        }
    )));
    assert!(matches!(f.exec.status()[0].1, ConnState::Failed(_)));
    f.server.shutdown().await;
}

#[tokio::test]
async fn unreachable_port_fails_fast() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let secrets = MapSecrets::new().with(Role::Source, "sa", "x");
    let exec = TiberiusExecutor::new(&env_for(port), &secrets).unwrap();
    let t0 = Instant::now();
    let r = run_once(&exec, stmt("SELECT 1")).await;
    assert!(matches!(r, Err(SqlError::Connect { .. })), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn unconfigured_role_and_missing_password() {
    let f = fixture().await;
    let mut s = stmt("SELECT 1");
    s.role = Role::Destination;
    assert_eq!(
        run_once(&f.exec, s).await,
        Err(SqlError::NoServer {
            role: "destination".into()
        })
    );

    let env = env_for(f.server.local_addr().port());
    let exec = TiberiusExecutor::new(&env, &MapSecrets::new()).unwrap();
    match run_once(&exec, stmt("SELECT 1")).await {
        Err(SqlError::Login { message, .. }) => {
            assert!(message.contains("no password"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    f.server.shutdown().await;
}
