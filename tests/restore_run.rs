//! Running a restore plan from btsdr over real TCP against the simulator: one RESTORE per file
//! WITH NORECOVERY (STOPATMARK on the last log), progress from sys.dm_exec_requests, and
//! resuming from msdb.dbo.restorehistory / sys.databases after a crash or a dropped connection.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
#![allow(clippy::too_many_lines)] // some tests tell a long story

use btsdr::batch::Target;
use btsdr::restore::files::read_folder;
use btsdr::restore::plan::{PlanSource, RestorePlan, plan_from_headers};
use btsdr::restore::run::{RunError, RunEvent, run_plan};
use btsdr::sql::run_once;
use btsdr_sim::drill::Drill;
use btsdr_sim::scenario::Scenario;
use btsdr_types::{Param, Role, SqlError, Statement, ValueRef};

async fn drill(name: &str) -> Drill {
    let mut sc = Scenario::load(name).expect("scenario");
    sc.min_restore_seconds = 0.05;
    sc.restore_seconds_per_gb = 0.05;
    Drill::start_with(sc, None).await.expect("drill")
}

async fn plan(drill: &Drill, t: &Target) -> RestorePlan {
    let dir = drill.variables().get("backup_path").cloned().expect("path");
    let rows = read_folder(&*t.executor, Role::Destination, &dir, 30)
        .await
        .expect("headers");
    let source = PlanSource::Files {
        folder: dir,
        server: t.server(Role::Destination),
    };
    plan_from_headers(source, &rows, None).expect("plan")
}

/// (state_desc, stop_at_mark_name of the newest restore) of `db` on the destination.
async fn state(t: &Target, db: &str) -> (String, Option<String>) {
    let out = run_once(
        &*t.executor,
        Statement {
            role: Role::Destination,
            database: "master".into(),
            sql: "SELECT d.state_desc, (SELECT TOP (1) r.stop_at_mark_name FROM msdb.dbo.restorehistory AS r WHERE r.destination_database_name = d.name ORDER BY r.restore_history_id DESC) AS mark FROM sys.databases AS d WHERE d.name = @db".into(),
            params: vec![("db".into(), Param::Text(db.into()))],
            timeout_secs: 30,
            long_running: false,
        },
    )
    .await
    .expect("state");
    let rs = out.first().expect("rows");
    (
        rs.get(0, "state_desc")
            .and_then(ValueRef::as_str)
            .unwrap_or_default()
            .to_string(),
        rs.get(0, "mark")
            .and_then(ValueRef::as_str)
            .map(str::to_string),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_every_file_to_the_mark_and_resumes_after_a_crash() {
    let drill = drill("healthy").await;
    let t = Target::from_drill(&drill).expect("target");
    let plan = plan(&drill, &t).await;
    // The destination holds log-shipped copies of these names: not without confirmation.
    let err = run_plan(&*t.executor, Role::Destination, &plan, None, false, |_| {})
        .await
        .expect_err("needs confirmation");
    assert!(matches!(err, RunError::NotConfirmed { .. }), "{err}");
    // A crash after the full and one log of every database: a run of that much of the plan.
    let mut head = plan.clone();
    for d in &mut head.databases {
        d.files.truncate(2);
    }
    let mut events = Vec::new();
    run_plan(&*t.executor, Role::Destination, &head, None, true, |e| {
        events.push(e)
    })
    .await
    .expect("first part");
    let since = events
        .iter()
        .find_map(|e| match e {
            RunEvent::Started { since } => Some(since.clone()),
            _ => None,
        })
        .expect("started");
    // Resumed with the same start: every database goes on from its third file.
    let mut events = Vec::new();
    run_plan(
        &*t.executor,
        Role::Destination,
        &plan,
        Some(&since),
        true,
        |e| events.push(e),
    )
    .await
    .expect("resumed");
    for d in &plan.databases {
        assert!(
            events.contains(&RunEvent::Resumed {
                database: d.database.clone(),
                applied: 2,
                total: d.files.len()
            }),
            "{}: {events:?}",
            d.database
        );
        let started: Vec<usize> = events
            .iter()
            .filter_map(|e| match e {
                RunEvent::FileStarted {
                    database,
                    index,
                    bytes,
                    ..
                } if *database == d.database => {
                    assert!(*bytes > 0);
                    Some(*index)
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            started,
            (2..d.files.len()).collect::<Vec<_>>(),
            "{}",
            d.database
        );
        assert_eq!(
            state(&t, &d.database).await,
            ("RESTORING".into(), Some(plan.mark.clone()))
        );
    }
    drill.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_during_restore_is_reported_and_the_next_run_goes_on() {
    let drill = drill("drop-during-restore").await;
    let t = Target::from_drill(&drill).expect("target");
    let plan = plan(&drill, &t).await;
    let mut since: Option<String> = None;
    let mut drops = 0;
    loop {
        let mut events = Vec::new();
        let r = run_plan(
            &*t.executor,
            Role::Destination,
            &plan,
            since.as_deref(),
            true,
            |e| events.push(e),
        )
        .await;
        if since.is_none() {
            since = events.iter().find_map(|e| match e {
                RunEvent::Started { since } => Some(since.clone()),
                _ => None,
            });
        }
        match r {
            Ok(()) => break,
            Err(RunError::Restore {
                error: SqlError::Dropped { .. },
                ..
            }) => drops += 1,
            Err(e) => panic!("unexpected: {e}"),
        }
        assert!(drops <= plan.databases.len(), "no progress");
    }
    // The fault drops each database's first RESTORE DATABASE once.
    assert_eq!(drops, plan.databases.len());
    for d in &plan.databases {
        assert_eq!(
            state(&t, &d.database).await,
            ("RESTORING".into(), Some(plan.mark.clone()))
        );
    }
    drill.shutdown().await;
}
