//! The stand-in TDS server, driven over real TCP by tiberius (the client the app uses).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use btsdr_sim::backend::{Backend, Reply, ReplyFuture, Request, Session};
use btsdr_sim::tds::TdsServer;
use btsdr_types::{Column, Param, ResultSet, Value};
use chrono::{NaiveDate, NaiveDateTime};
use tiberius::error::Error;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

const PASSWORD: &str = "Pa$$w0rd'é";
const GUID: &str = "6F9619FF-8B86-D011-B42D-00C04FC964FF";

/// Answers by statement text and records what it saw.
#[derive(Default)]
struct Scripted {
    requests: Mutex<Vec<Request>>,
    disconnected: Mutex<Vec<u16>>,
    cancelled: Arc<AtomicBool>,
}

/// Sets the flag when the backend future is dropped before it finished.
struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn set(columns: &[(&str, &str)], rows: Vec<Vec<Value>>) -> Reply {
    Reply::Rows(ResultSet {
        not_kept: 0,
        columns: columns
            .iter()
            .map(|(n, t)| Column {
                name: n.to_string(),
                type_name: t.to_string(),
            })
            .collect(),
        rows: rows.into(),
    })
}

const TYPES: [(&str, &str); 16] = [
    ("i", "int"),
    ("bi", "bigint"),
    ("si", "smallint"),
    ("ti", "tinyint"),
    ("b", "bit"),
    ("f", "float"),
    ("d", "decimal(18,2)"),
    ("nv", "nvarchar"),
    ("v", "varchar"),
    ("dt", "datetime"),
    ("dt2", "datetime2"),
    ("da", "date"),
    ("g", "uniqueidentifier"),
    ("vb", "varbinary"),
    ("nvmax", "nvarchar(max)"),
    ("dn", "decimal"),
];

fn type_rows() -> Vec<Vec<Value>> {
    let values = vec![
        Value::Int(-2_000_000_000),
        Value::Int(9_000_000_000_000),
        Value::Int(-300),
        Value::Int(255),
        Value::Bool(true),
        Value::Float(2.5),
        Value::Decimal("-1234.5".into()),
        Value::Text("Grüße ✓ 'quoted'".into()),
        Value::Text("café".into()),
        Value::DateTime("2026-11-21 23:04:05.500".into()),
        Value::DateTime("2026-11-21T23:04:05.1234567".into()),
        Value::DateTime("2026-11-21".into()),
        Value::Guid(GUID.into()),
        Value::Binary(vec![0, 1, 0xFE, 0xFF]),
        Value::Text("y".repeat(5000)),
        Value::Decimal("0.001".into()),
    ];
    vec![values, vec![Value::Null; TYPES.len()]]
}

impl Backend for Scripted {
    fn login(&self, user: &str, password: &str) -> Result<(), String> {
        if user == "sa" && password == PASSWORD {
            Ok(())
        } else {
            Err(format!("Login failed for user '{user}'."))
        }
    }

    fn execute<'a>(&'a self, session: &'a mut Session, request: Request) -> ReplyFuture<'a> {
        Box::pin(async move {
            self.requests.lock().unwrap().push(request.clone());
            let sql = request.sql.as_str();
            match sql {
                "SESSION" => vec![set(
                    &[
                        ("spid", "smallint"),
                        ("db", "nvarchar"),
                        ("login", "sysname"),
                    ],
                    vec![vec![
                        Value::Int(i64::from(session.spid)),
                        Value::Text(session.database.clone()),
                        Value::Text(session.login.clone()),
                    ]],
                )],
                "TYPES" => vec![set(&TYPES, type_rows())],
                s if s.starts_with("USE ") => {
                    session.database = s[4..].to_string();
                    vec![Reply::Done {
                        rows_affected: None,
                    }]
                }
                "MULTI" => vec![
                    set(
                        &[("a", "int")],
                        vec![vec![Value::Int(1)], vec![Value::Int(2)]],
                    ),
                    Reply::Done {
                        rows_affected: Some(5),
                    },
                    set(&[("b", "nvarchar")], vec![vec![Value::Text("x".into())]]),
                ],
                "COUNTS" => vec![
                    Reply::Done {
                        rows_affected: Some(3),
                    },
                    Reply::Info {
                        number: 0,
                        message: "progress".into(),
                    },
                    Reply::Done {
                        rows_affected: Some(2),
                    },
                ],
                "FAIL" => vec![Reply::Error {
                    number: 2627,
                    severity: 14,
                    state: 1,
                    message: "Violation of PRIMARY KEY constraint.".into(),
                    procedure: "bts_Proc".into(),
                    line: 7,
                }],
                "BIG" => vec![set(
                    &[("n", "int"), ("text", "nvarchar")],
                    (0..2000)
                        .map(|i| vec![Value::Int(i), Value::Text("z".repeat(100))])
                        .collect(),
                )],
                "BIGVALUE" => vec![set(
                    &[("t", "nvarchar")],
                    vec![vec![Value::Text("w".repeat(50_000))]],
                )],
                "SLEEP" => {
                    let flag = DropFlag(self.cancelled.clone());
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    std::mem::forget(flag);
                    vec![Reply::Done {
                        rows_affected: None,
                    }]
                }
                "DISCONNECT" => vec![
                    set(&[("a", "int")], vec![vec![Value::Int(1)]]),
                    Reply::Disconnect,
                ],
                "BADTYPE" => vec![set(&[("g", "geography")], vec![vec![Value::Int(1)]])],
                _ => vec![set(
                    &[("len", "int")],
                    vec![vec![Value::Int(request.sql.chars().count() as i64)]],
                )],
            }
        })
    }

    fn disconnected(&self, spid: u16) {
        self.disconnected.lock().unwrap().push(spid);
    }
}

type Tds = Client<Compat<TcpStream>>;

async fn start() -> (TdsServer, Arc<Scripted>) {
    let backend = Arc::new(Scripted::default());
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = TdsServer::bind(addr, backend.clone()).await.unwrap();
    (server, backend)
}

async fn connect_as(addr: SocketAddr, user: &str, password: &str) -> Result<Tds, Error> {
    let mut config = Config::new();
    config.host("127.0.0.1");
    config.port(addr.port());
    config.database("BizTalkMgmtDb");
    config.authentication(AuthMethod::sql_server(user, password));
    config.encryption(EncryptionLevel::NotSupported);
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    Client::connect(config, tcp.compat_write()).await
}

async fn connect(server: &TdsServer) -> Tds {
    connect_as(server.local_addr(), "sa", PASSWORD)
        .await
        .unwrap()
}

/// A batch's result sets; a server error may surface at the first or the last token.
async fn try_rows(client: &mut Tds, sql: &str) -> Result<Vec<Vec<tiberius::Row>>, Error> {
    client.simple_query(sql).await?.into_results().await
}

async fn rows(client: &mut Tds, sql: &str) -> Vec<Vec<tiberius::Row>> {
    try_rows(client, sql).await.unwrap()
}

#[tokio::test]
async fn login_sets_up_the_session_and_a_wrong_password_is_error_18456() {
    let (server, backend) = start().await;
    let mut client = connect(&server).await;
    let sets = rows(&mut client, "SESSION").await;
    let row = &sets[0][0];
    assert_eq!(row.get::<i16, _>(0), Some(51));
    assert_eq!(row.get::<&str, _>(1), Some("BizTalkMgmtDb"));
    assert_eq!(row.get::<&str, _>(2), Some("sa"));
    assert!(rows(&mut client, "USE BizTalkDTADb").await.is_empty());
    let sets = rows(&mut client, "SESSION").await;
    assert_eq!(sets[0][0].get::<&str, _>(1), Some("BizTalkDTADb"));

    match connect_as(server.local_addr(), "sa", "wrong").await {
        Err(Error::Server(e)) => {
            assert_eq!((e.code(), e.class()), (18456, 14));
            assert_eq!(e.message(), "Login failed for user 'sa'.");
        }
        other => panic!("expected a login error, got {:?}", other.map(|_| ())),
    }
    drop(client);
    server.shutdown().await;
    assert_eq!(
        *backend.disconnected.lock().unwrap(),
        vec![51],
        "refused logins are not sessions"
    );
}

#[tokio::test]
async fn parameters_arrive_decoded_with_names() {
    let (server, backend) = start().await;
    let mut client = connect(&server).await;
    let long = "é".repeat(10_000);
    let none: Option<&str> = None;
    let result = client
        .query(
            "SELECT @P1, @P2, @P3, @P4, @P5, @P6, @P7",
            &[
                &"O'Brien; --",
                &"日本語 ✓ 🎉",
                &none,
                &long.as_str(),
                &42i32,
                &-7i64,
                &true,
            ],
        )
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    assert_eq!(result[0][0].get::<i32, _>(0), Some(40));
    let seen = backend.requests.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.sql, "SELECT @P1, @P2, @P3, @P4, @P5, @P6, @P7");
    let text = |s: &str| Some(Param::Text(s.to_string()));
    let expected = vec![
        ("P1".to_string(), text("O'Brien; --")),
        ("P2".to_string(), text("日本語 ✓ 🎉")),
        ("P3".to_string(), None),
        ("P4".to_string(), text(&long)),
        ("P5".to_string(), Some(Param::Int(42))),
        ("P6".to_string(), Some(Param::Int(-7))),
        ("P7".to_string(), Some(Param::Bool(true))),
    ];
    assert_eq!(seen.params, expected);

    // A query without parameters is still an RPC with an empty declaration list.
    client
        .query("SELECT 1", &[])
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    let seen = backend.requests.lock().unwrap().last().cloned().unwrap();
    assert_eq!((seen.sql.as_str(), seen.params.len()), ("SELECT 1", 0));
    server.shutdown().await;
}

#[tokio::test]
async fn every_column_type_round_trips_including_nulls() {
    let (server, _) = start().await;
    let mut client = connect(&server).await;
    let sets = rows(&mut client, "TYPES").await;
    let (r, n) = (&sets[0][0], &sets[0][1]);
    let names: Vec<&str> = r.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, TYPES.map(|(n, _)| n));

    assert_eq!(r.get::<i32, _>("i"), Some(-2_000_000_000));
    assert_eq!(r.get::<i64, _>("bi"), Some(9_000_000_000_000));
    assert_eq!(r.get::<i16, _>("si"), Some(-300));
    assert_eq!(r.get::<u8, _>("ti"), Some(255));
    assert_eq!(r.get::<bool, _>("b"), Some(true));
    assert_eq!(r.get::<f64, _>("f"), Some(2.5));
    let d = r.get::<tiberius::numeric::Numeric, _>("d").unwrap();
    assert_eq!((d.to_string().as_str(), d.scale()), ("-1234.50", 2));
    assert_eq!(r.get::<&str, _>("nv"), Some("Grüße ✓ 'quoted'"));
    assert_eq!(r.get::<&str, _>("v"), Some("café"));
    let at = |s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
    assert_eq!(
        r.get::<NaiveDateTime, _>("dt"),
        Some(at("2026-11-21 23:04:05.5"))
    );
    assert_eq!(
        r.get::<NaiveDateTime, _>("dt2"),
        Some(at("2026-11-21 23:04:05.1234567"))
    );
    assert_eq!(
        r.get::<NaiveDate, _>("da"),
        NaiveDate::from_ymd_opt(2026, 11, 21)
    );
    let g = r.get::<tiberius::Uuid, _>("g").unwrap();
    assert_eq!(g.to_string().to_uppercase(), GUID);
    assert_eq!(r.get::<&[u8], _>("vb"), Some(&[0u8, 1, 0xFE, 0xFF][..]));
    assert_eq!(r.get::<&str, _>("nvmax").map(str::len), Some(5000));
    assert_eq!(
        r.get::<tiberius::numeric::Numeric, _>("dn")
            .unwrap()
            .to_string(),
        "0.001"
    );

    assert_eq!(n.get::<i32, _>("i"), None);
    assert_eq!(n.get::<i64, _>("bi"), None);
    assert_eq!(n.get::<bool, _>("b"), None);
    assert_eq!(n.get::<f64, _>("f"), None);
    assert!(n.get::<tiberius::numeric::Numeric, _>("d").is_none());
    assert_eq!(n.get::<&str, _>("nv"), None);
    assert_eq!(n.get::<&str, _>("v"), None);
    assert_eq!(n.get::<NaiveDateTime, _>("dt"), None);
    assert_eq!(n.get::<NaiveDateTime, _>("dt2"), None);
    assert_eq!(n.get::<NaiveDate, _>("da"), None);
    assert_eq!(n.get::<tiberius::Uuid, _>("g"), None);
    assert_eq!(n.get::<&[u8], _>("vb"), None);
    assert_eq!(n.get::<&str, _>("nvmax"), None);

    // A value the server cannot encode becomes a server error, not a broken stream.
    let err = try_rows(&mut client, "BADTYPE").await.unwrap_err();
    assert!(
        matches!(&err, Error::Server(e) if e.message().contains("geography")),
        "{err}"
    );
    assert_eq!(
        rows(&mut client, "ok").await[0][0].get::<i32, _>(0),
        Some(2)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn several_result_sets_and_rows_affected() {
    let (server, _) = start().await;
    let mut client = connect(&server).await;
    let sets = rows(&mut client, "MULTI").await;
    assert_eq!(sets.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 1]);
    assert_eq!(sets[1][0].get::<&str, _>("b"), Some("x"));

    let done = client.execute("COUNTS", &[]).await.unwrap();
    assert_eq!(done.rows_affected(), &[3, 2]);
    let done = client.execute("MULTI", &[&1i32]).await.unwrap();
    assert_eq!(done.rows_affected(), &[2, 5, 1]);
    server.shutdown().await;
}

#[tokio::test]
async fn server_errors_surface_with_details_and_the_connection_stays_usable() {
    let (server, _) = start().await;
    let mut client = connect(&server).await;
    for _ in 0..2 {
        let err = try_rows(&mut client, "FAIL").await.unwrap_err();
        let Error::Server(e) = err else {
            panic!("expected a server error, got {err}")
        };
        assert_eq!((e.code(), e.class(), e.state()), (2627, 14, 1));
        assert_eq!(e.message(), "Violation of PRIMARY KEY constraint.");
        assert_eq!(
            (e.procedure(), e.line(), e.server()),
            ("bts_Proc", 7, "BTSDR-SIM")
        );
        assert!(client.execute("FAIL", &[]).await.is_err());
        assert_eq!(
            rows(&mut client, "abc").await[0][0].get::<i32, _>(0),
            Some(3)
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn large_replies_and_large_requests_span_packets() {
    let (server, _) = start().await;
    let mut client = connect(&server).await;
    let sets = rows(&mut client, "BIG").await;
    assert_eq!(sets[0].len(), 2000);
    assert_eq!(sets[0][1999].get::<i32, _>("n"), Some(1999));
    assert!(
        sets[0]
            .iter()
            .all(|r| r.get::<&str, _>("text").map(str::len) == Some(100))
    );

    let sets = rows(&mut client, "BIGVALUE").await;
    assert_eq!(
        sets[0][0].get::<&str, _>(0),
        Some("w".repeat(50_000).as_str())
    );

    let batch = format!("SELECT '{}'", "ü".repeat(20_000));
    let sets = rows(&mut client, &batch).await;
    assert_eq!(sets[0][0].get::<i32, _>(0), Some(20_009));
    server.shutdown().await;
}

#[tokio::test]
async fn transactions_via_the_transaction_manager() {
    let (server, backend) = start().await;
    let mut client = connect(&server).await;
    client.begin_transaction().await.unwrap();
    client.execute("UPDATE x", &[&1i32]).await.unwrap();
    client.commit_transaction().await.unwrap();
    client.begin_transaction().await.unwrap();
    client.rollback_transaction().await.unwrap();
    let err = client.commit_transaction().await.unwrap_err();
    assert!(
        matches!(&err, Error::Server(e) if e.code() == 3902),
        "{err}"
    );
    let seen: Vec<String> = backend
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.sql.clone())
        .collect();
    assert_eq!(
        seen,
        [
            "BEGIN TRANSACTION",
            "UPDATE x",
            "COMMIT TRANSACTION",
            "BEGIN TRANSACTION",
            "ROLLBACK TRANSACTION"
        ]
    );
    assert_eq!(
        rows(&mut client, "ok").await[0][0].get::<i32, _>(0),
        Some(2)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn two_clients_at_once_get_their_own_sessions() {
    let (server, _) = start().await;
    let addr = server.local_addr();
    let task = |n: usize| {
        tokio::spawn(async move {
            let mut client = connect_as(addr, "sa", PASSWORD).await.unwrap();
            let spid = rows(&mut client, "SESSION").await[0][0]
                .get::<i16, _>(0)
                .unwrap();
            for i in 0..25 {
                let sql = "q".repeat(n * 100 + i);
                assert_eq!(
                    rows(&mut client, &sql).await[0][0].get::<i32, _>(0),
                    Some(sql.len() as i32)
                );
            }
            spid
        })
    };
    let (a, b) = (task(1), task(2));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_ne!(a, b);
    assert!(a >= 51 && b >= 51);
    server.shutdown().await;
}

#[tokio::test]
async fn attention_cancels_a_running_request_and_late_attention_is_answered() {
    let (server, backend) = start().await;
    let mut client = connect(&server).await;
    let started = std::time::Instant::now();
    assert!(
        timeout(Duration::from_millis(300), client.simple_query("SLEEP"))
            .await
            .is_err()
    );
    // The cancelled request's reply ends as one message and the acknowledgement comes in the
    // next (what tedious reads); tiberius 0.13 looks for the acknowledgement in the first
    // message only, so it reports an error here: the app closes the connection after a
    // cancel anyway (sql::executor::abandon).
    let cancel = timeout(Duration::from_secs(5), client.cancel_query())
        .await
        .unwrap();
    assert!(
        matches!(&cancel, Err(Error::Protocol(m)) if m.contains("Attention")),
        "{cancel:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        backend.cancelled.load(Ordering::SeqCst),
        "the backend future was dropped"
    );
    let mut client = connect(&server).await;
    assert_eq!(
        rows(&mut client, "after").await[0][0].get::<i32, _>(0),
        Some(5)
    );

    // Attention after the reply was complete (read or not) still gets its DONE.
    rows(&mut client, "done").await;
    timeout(Duration::from_secs(5), client.cancel_query())
        .await
        .unwrap()
        .unwrap();
    drop(client.simple_query("unread").await.unwrap());
    timeout(Duration::from_secs(5), client.cancel_query())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rows(&mut client, "again").await[0][0].get::<i32, _>(0),
        Some(5)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn disconnect_reply_drops_the_client_but_not_the_server() {
    let (server, backend) = start().await;
    let mut client = connect(&server).await;
    let result = try_rows(&mut client, "DISCONNECT").await;
    assert!(matches!(result, Err(Error::Io { .. })), "{result:?}");
    let mut other = connect(&server).await;
    assert_eq!(rows(&mut other, "ok").await[0][0].get::<i32, _>(0), Some(2));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(*backend.disconnected.lock().unwrap(), vec![51]);
    server.shutdown().await;
}

/// Raw bytes: hostile input closes that connection only.
#[tokio::test]
async fn malformed_packets_close_the_connection() {
    let (server, _) = start().await;
    let hostile: [&[u8]; 3] = [
        &[0x12, 0x01, 0xFF, 0xFF, 0, 0, 1, 0], // length over the limit
        &[0x12, 0x01, 0x00, 0x03, 0, 0, 1, 0], // length under the header
        &[0x01, 0x01, 0x00, 0x0C, 0, 0, 1, 0, 1, 2, 3, 4], // SQL batch before login
    ];
    for bytes in hostile {
        let mut raw = TcpStream::connect(server.local_addr()).await.unwrap();
        raw.write_all(bytes).await.unwrap();
        let mut buf = [0u8; 64];
        let n = timeout(Duration::from_secs(5), raw.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "the server closed the connection");
    }
    let mut client = connect(&server).await;
    assert_eq!(
        rows(&mut client, "ok").await[0][0].get::<i32, _>(0),
        Some(2)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_is_prompt_with_clients_connected_and_busy() {
    let (server, backend) = start().await;
    let idle = connect(&server).await;
    let mut busy = connect(&server).await;
    let running = tokio::spawn(async move { busy.simple_query("SLEEP").await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    timeout(Duration::from_secs(2), server.shutdown())
        .await
        .expect("shutdown within 2 s");
    let result = timeout(Duration::from_secs(2), running)
        .await
        .unwrap()
        .unwrap();
    assert!(
        result.is_err(),
        "the running query fails when the server goes away"
    );
    let mut spids = backend.disconnected.lock().unwrap().clone();
    spids.sort();
    assert_eq!(spids, vec![51, 52]);
    drop(idle);
}
