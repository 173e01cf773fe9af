//! What foreign clients send at connect and in ordinary queries, answered by the simulator's
//! T-SQL interpreter as SQL Server documents it (issue 15).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
#![allow(clippy::too_many_lines)] // some tests tell a long story

use std::sync::{Arc, Mutex};

use btsdr_sim::backend::{Reply, Request, Session};
use btsdr_sim::model::state::InstanceRole;
use btsdr_sim::model::{SimBackend, lock};
use btsdr_sim::scenario::{self, Scenario};
use btsdr_types::{ResultSet, Value};

async fn query(sql: &str) -> Vec<Reply> {
    let mut sc = Scenario::load("healthy").unwrap();
    sc.clock_speed = 0.0;
    let g = Arc::new(Mutex::new(scenario::build(&sc).unwrap()));
    let i = lock(&g).role_instance(InstanceRole::Source).unwrap();
    let b = SimBackend::new(g.clone(), i);
    let mut s = Session {
        spid: 60,
        login: "btsdr".into(),
        database: "master".into(),
    };
    let req = Request {
        sql: sql.into(),
        params: Vec::new(),
    };
    b.run(&mut s, req).await
}

async fn rows(sql: &str) -> ResultSet {
    let replies = query(sql).await;
    replies
        .iter()
        .find_map(|r| match r {
            Reply::Rows(rs) => Some(rs.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no rows for {sql}: {replies:?}"))
}

#[tokio::test]
async fn top_without_parentheses_takes_a_constant() {
    assert_eq!(
        rows("SELECT TOP 2 * FROM sys.databases").await.rows.len(),
        2
    );
    assert_eq!(
        rows("SELECT TOP 3 name FROM sys.databases")
            .await
            .rows
            .len(),
        3
    );
    assert_eq!(
        rows("SELECT TOP (1 + 1) name FROM sys.databases")
            .await
            .rows
            .len(),
        2
    );
}

#[tokio::test]
async fn connect_time_globals_and_replicate() {
    let rs = rows("SELECT @@MICROSOFTVERSION, @@LANGUAGE, SERVERPROPERTY('ProductVersion'), REPLICATE('ab', 3)").await;
    let row: Vec<Value> = rs
        .rows
        .first()
        .unwrap()
        .iter()
        .map(|v| v.to_value())
        .collect();
    let Value::Text(version) = &row[2] else {
        panic!("{row:?}")
    };
    let mut part = version.split('.').map(|p| p.parse::<i64>().unwrap());
    let (major, minor, build) = (
        part.next().unwrap(),
        part.next().unwrap(),
        part.next().unwrap(),
    );
    assert_eq!(row[0], Value::Int((major << 24) | (minor << 16) | build));
    assert_eq!(row[1], Value::Text("us_english".into()));
    assert_eq!(row[3], Value::Text("ababab".into()));
}

fn backend() -> SimBackend {
    let mut sc = Scenario::load("healthy").unwrap();
    sc.clock_speed = 0.0;
    let g = Arc::new(Mutex::new(scenario::build(&sc).unwrap()));
    let i = lock(&g).role_instance(InstanceRole::Source).unwrap();
    SimBackend::new(g.clone(), i)
}

async fn on(b: &SimBackend, spid: u16, sql: &str) -> Vec<Reply> {
    let mut s = Session {
        spid,
        login: "btsdr".into(),
        database: "msdb".into(),
    };
    let req = Request {
        sql: sql.into(),
        params: Vec::new(),
    };
    b.run(&mut s, req).await
}

fn first_value(replies: &[Reply]) -> Value {
    replies
        .iter()
        .find_map(|r| match r {
            Reply::Rows(rs) => rs.rows.first().and_then(|r| r.get(0)).map(|v| v.to_value()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no value in {replies:?}"))
}

fn error_number(replies: &[Reply]) -> Option<u32> {
    replies.iter().find_map(|r| match r {
        Reply::Error { number, .. } => Some(*number),
        _ => None,
    })
}

/// BEGIN TRAN spans requests (@@TRANCOUNT), ROLLBACK undoes, COMMIT keeps, a COMMIT without
/// BEGIN is SQL Server's 3902, and a session that leaves with an open transaction is rolled back.
#[tokio::test]
async fn transactions_span_requests_and_rollback_undoes() {
    let b = backend();
    let Value::Text(job) = first_value(
        &on(
            &b,
            60,
            "SELECT TOP 1 name FROM msdb.dbo.sysjobs WHERE enabled = 1",
        )
        .await,
    ) else {
        panic!("no enabled job")
    };
    let enabled = format!("SELECT enabled FROM msdb.dbo.sysjobs WHERE name = N'{job}'");
    let disable = format!("EXEC msdb.dbo.sp_update_job @job_name = N'{job}', @enabled = 0");

    on(&b, 60, &format!("BEGIN TRAN; {disable}")).await;
    assert_eq!(
        first_value(&on(&b, 60, "SELECT @@TRANCOUNT").await),
        Value::Int(1)
    );
    assert_eq!(
        first_value(&on(&b, 61, "SELECT @@TRANCOUNT").await),
        Value::Int(0)
    );
    assert_eq!(first_value(&on(&b, 60, &enabled).await), Value::Int(0));
    on(&b, 60, "ROLLBACK TRANSACTION").await;
    assert_eq!(first_value(&on(&b, 60, &enabled).await), Value::Int(1));
    assert_eq!(
        first_value(&on(&b, 60, "SELECT @@TRANCOUNT").await),
        Value::Int(0)
    );

    on(
        &b,
        60,
        &format!("BEGIN TRANSACTION; BEGIN TRAN; {disable}; COMMIT; COMMIT TRANSACTION"),
    )
    .await;
    assert_eq!(first_value(&on(&b, 60, &enabled).await), Value::Int(0));
    assert_eq!(error_number(&on(&b, 60, "COMMIT").await), Some(3902));
    assert_eq!(error_number(&on(&b, 60, "ROLLBACK").await), Some(3903));

    on(
        &b,
        62,
        &format!("BEGIN TRAN; EXEC msdb.dbo.sp_update_job @job_name = N'{job}', @enabled = 1"),
    )
    .await;
    assert_eq!(first_value(&on(&b, 60, &enabled).await), Value::Int(1));
    btsdr_sim::backend::Backend::disconnected(&b, 62);
    assert_eq!(first_value(&on(&b, 60, &enabled).await), Value::Int(0));
}

/// WAITFOR DELAY waits (the TDS server drops the wait on an attention); a bad time is Msg 148.
#[tokio::test]
async fn waitfor_delay_waits_and_checks_its_time() {
    let b = backend();
    let start = std::time::Instant::now();
    let r = on(&b, 60, "WAITFOR DELAY '00:00:00.300'; SELECT 1").await;
    assert!(start.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(first_value(&r), Value::Int(1));
    assert_eq!(
        error_number(&on(&b, 60, "WAITFOR DELAY '00:61'").await),
        Some(148)
    );
}

/// A query that would build more values than the simulator's memory bound is refused with an
/// error naming the bound, instead of growing without limit (docs/PERFORMANCE.md).
#[tokio::test]
async fn a_query_past_the_memory_bound_is_refused() {
    let b = backend();
    let join = |n: usize| {
        let from: Vec<String> = (0..n)
            .map(|i| format!("(SELECT name FROM sys.databases) t{i}"))
            .collect();
        format!("SELECT COUNT(*) FROM {}", from.join(" CROSS JOIN "))
    };
    assert_eq!(first_value(&on(&b, 60, &join(3)).await), Value::Int(1000));
    let r = on(&b, 60, &join(6)).await;
    assert_eq!(error_number(&r), Some(40100), "{r:?}");
    assert!(format!("{r:?}").contains("PERFORMANCE.md"));
}

/// `EXEC sp_executesql` written as T-SQL text, with a declaration list and named or positional
/// values (was Msg 8145); an undeclared name is still 8145.
#[tokio::test]
async fn sp_executesql_as_text_takes_declared_parameters() {
    let b = backend();
    let named = "EXEC sp_executesql N'SELECT name FROM sys.databases WHERE name = @n', \
                 N'@n nvarchar(128)', @n = N'msdb'";
    assert_eq!(
        first_value(&on(&b, 60, named).await),
        Value::Text("msdb".into())
    );
    let positional = "EXEC sp_executesql N'SELECT @a + @b', N'@a int, @b int', 2, 3";
    assert_eq!(first_value(&on(&b, 60, positional).await), Value::Int(5));
    let wrong = "EXEC sp_executesql N'SELECT 1', N'@a int', @zz = 1";
    assert_eq!(error_number(&on(&b, 60, wrong).await), Some(8145));
}

/// SET NOCOUNT marks where DONE counts stop (the TDS server clears DONE_COUNT from there and
/// remembers it for the session); SET FMTONLY lasts for the session: columns without rows.
#[tokio::test]
async fn nocount_and_fmtonly_last_for_the_session() {
    let b = backend();
    let mut s = Session {
        spid: 61,
        login: "btsdr".into(),
        database: "master".into(),
    };
    let mut run = async |sql: &str| {
        let req = Request {
            sql: sql.into(),
            params: Vec::new(),
        };
        b.run(&mut s, req).await
    };
    let r = run("SET NOCOUNT ON").await;
    assert!(r.contains(&Reply::Counts(false)), "{r:?}");
    let r = run("SET FMTONLY ON; SELECT name, database_id FROM sys.databases").await;
    let Some(Reply::Rows(rs)) = r.iter().find(|r| matches!(r, Reply::Rows(_))) else {
        panic!("no result set: {r:?}");
    };
    assert_eq!(rs.columns.len(), 2);
    assert_eq!(rs.rows.len(), 0, "FMTONLY ON sends no rows");
    let r = run("SET FMTONLY OFF; SET NOCOUNT OFF; SELECT name FROM sys.databases").await;
    assert!(r.contains(&Reply::Counts(true)), "{r:?}");
    let Some(Reply::Rows(rs)) = r.iter().find(|r| matches!(r, Reply::Rows(_))) else {
        panic!("no result set: {r:?}");
    };
    assert!(rs.rows.len() > 3, "rows again after FMTONLY OFF");
}

/// Errors carry the line of their statement in the batch (SQL Server counts from 1), a
/// syntax error the line it is on, and RAISERROR substitutes its arguments.
#[tokio::test]
async fn errors_carry_their_line_and_raiserror_substitutes() {
    let b = backend();
    let line = |r: &[Reply]| {
        r.iter()
            .find_map(|r| match r {
                Reply::Error { line, .. } => Some(*line),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no error in {r:?}"))
    };
    let r = on(
        &b,
        62,
        "SELECT 1\n\n-- a comment\nSELECT * FROM dbo.no_such_table",
    )
    .await;
    assert_eq!(line(&r), 4, "{r:?}");
    let r = on(&b, 62, "SELECT 1\nSELECT 2\nSELECT FROM WHERE").await;
    assert_eq!(line(&r), 3, "{r:?}");
    let r = on(
        &b,
        62,
        "SELECT 1\nRAISERROR('db %s: %d of %5.2s|%-4i|%u', 16, 2, N'msdb', 7, 'abc', 3, -1)",
    )
    .await;
    assert_eq!(line(&r), 2);
    assert!(
        r.iter().any(
            |x| matches!(x, Reply::Error { message, number: 50000, severity: 16, state: 2, .. }
            if message == "db msdb: 7 of    ab|3   |4294967295")
        ),
        "{r:?}"
    );
}

/// Binary literals are bytes (an odd digit count padded on the left, as SQL Server does),
/// datetime2(7) keeps seven decimals, and a CAST to a MAX type stays a MAX column.
#[tokio::test]
async fn binary_literals_datetime2_and_max_types() {
    let rs = rows(
        "SELECT 0x0A0B AS b, 0xABC AS odd, CAST('2024-01-02 03:04:05.1234567' AS datetime2(7)) AS t, \
         CAST(N'x' AS nvarchar(max)) AS m",
    )
    .await;
    let row: Vec<Value> = (0..4)
        .map(|i| {
            rs.rows
                .first()
                .and_then(|r| r.get(i))
                .map(|v| v.to_value())
                .unwrap()
        })
        .collect();
    assert_eq!(row[0], Value::Binary(vec![0x0a, 0x0b]));
    assert_eq!(row[1], Value::Binary(vec![0x0a, 0xbc]));
    assert_eq!(
        row[2],
        Value::DateTime("2024-01-02 03:04:05.1234567".into())
    );
    assert_eq!(rs.columns[3].type_name, "nvarchar(max)");
}
