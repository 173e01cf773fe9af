//! What foreign clients send at connect and in ordinary queries, answered by the simulator's
//! T-SQL interpreter as SQL Server documents it (issue 15).

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
