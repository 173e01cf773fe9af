//! The BizTalk model through the `Backend` trait: procedures change state as SQL Server and
//! BizTalk would, unknown statements error, the clock builds history.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::sync::{Arc, Mutex};

use btsdr_sim::backend::{Reply, Request, Session};
use btsdr_sim::model::state::InstanceRole;
use btsdr_sim::model::{SharedGroup, SimBackend, jobs, lock};
use btsdr_sim::scenario::{self, NAMES, Scenario};
use btsdr_types::{Param, ResultSet, ValueRef};

fn group(name: &str) -> SharedGroup {
    let mut sc = Scenario::load(name).unwrap_or_else(|e| panic!("{e}"));
    sc.clock_speed = 0.0;
    sc.min_restore_seconds = 0.05;
    sc.restore_seconds_per_gb = 0.05;
    Arc::new(Mutex::new(
        scenario::build(&sc).unwrap_or_else(|e| panic!("{e}")),
    ))
}

fn backend(g: &SharedGroup, role: InstanceRole) -> SimBackend {
    let i = lock(g).role_instance(role).expect("instance");
    SimBackend::new(g.clone(), i)
}

fn session(db: &str) -> Session {
    Session {
        spid: 60,
        login: "btsdr".into(),
        database: db.into(),
    }
}

async fn run(b: &SimBackend, db: &str, sql: &str, params: &[(&str, Param)]) -> Vec<Reply> {
    let mut s = session(db);
    let req = Request {
        sql: sql.into(),
        params: params
            .iter()
            .map(|(n, p)| (n.to_string(), Some(p.clone())))
            .collect(),
    };
    b.run(&mut s, req).await
}

fn rows(replies: &[Reply]) -> ResultSet {
    for r in replies {
        if let Reply::Error {
            number, message, ..
        } = r
        {
            panic!("unexpected error {number}: {message}");
        }
    }
    replies
        .iter()
        .rev()
        .find_map(|r| match r {
            Reply::Rows(rs) => Some(rs.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no result set in {replies:?}"))
}

fn error(replies: &[Reply]) -> (u32, String) {
    replies
        .iter()
        .find_map(|r| match r {
            Reply::Error {
                number, message, ..
            } => Some((*number, message.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("expected an error, got {replies:?}"))
}

fn int(rs: &ResultSet, row: usize, col: &str) -> i64 {
    match rs.get(row, col) {
        Some(ValueRef::Int(i)) => i,
        Some(ValueRef::Bool(b)) => i64::from(b),
        other => panic!("{col}: {other:?}"),
    }
}

#[test]
fn every_scenario_loads_and_builds() {
    for n in NAMES {
        let sc = Scenario::load(n).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&sc.name, n);
        assert!(!sc.description.is_empty());
        scenario::build(&sc).unwrap_or_else(|e| panic!("{n}: {e}"));
    }
    assert!(Scenario::load("nope").unwrap_err().contains("healthy"));
}

#[tokio::test]
async fn clock_builds_three_days_of_history() {
    let g = group("healthy");
    let src = backend(&g, InstanceRole::Source);
    let rs = rows(&run(&src, "BizTalkMgmtDb", "SELECT BackupType, COUNT(DISTINCT BackupSetId) AS sets, MIN(CAST(SetComplete AS int)) AS all_complete FROM dbo.adm_BackupHistory GROUP BY BackupType ORDER BY BackupType", &[]).await);
    // 4 daily full sets (the first run, then 02:00 on three days) and a log set every 15 minutes.
    assert_eq!(rs.get(0, "BackupType"), Some(ValueRef::Text("db")));
    assert_eq!(int(&rs, 0, "sets"), 4);
    assert_eq!(int(&rs, 1, "sets"), 3 * 96);
    assert_eq!(int(&rs, 1, "all_complete"), 1);
    // Mark names follow <MarkName>_<yyyy_MM_dd_HH_mm_ss_fff> and files <server>_<db>_Log_<mark>.bak.
    let rs = rows(&run(&src, "BizTalkMgmtDb", "SELECT TOP (1) MarkName, BackupFileName FROM dbo.adm_BackupHistory WHERE BackupType = 'lg' AND DatabaseName = N'BizTalkMsgBoxDb' ORDER BY BackupId DESC", &[]).await);
    let mark = rs.get(0, "MarkName").expect("mark").to_string();
    assert_eq!(mark, "BTS_2026_11_21_02_30_00_000");
    assert_eq!(
        rs.get(0, "BackupFileName").expect("file").to_string(),
        format!("SQLBTS02_BizTalkMsgBoxDb_Log_{mark}.bak")
    );
    // The mark is in every database's MarkLog, on both instances.
    let mb = backend(&g, InstanceRole::Msgbox);
    let rs = rows(
        &run(
            &mb,
            "BizTalkMsgBoxDb",
            "SELECT COUNT(*) AS n FROM dbo.MarkLog WHERE MarkName = @m",
            &[("m", Param::Text(mark.clone()))],
        )
        .await,
    );
    assert_eq!(int(&rs, 0, "n"), 1);
    // The destination restored everything but the newest set.
    let dst = backend(&g, InstanceRole::Destination);
    let rs = rows(&run(&dst, "master", "SELECT COUNT(DISTINCT BackupSetId) AS waiting FROM dbo.bts_LogShippingHistory WHERE Restored = 0", &[]).await);
    assert_eq!(int(&rs, 0, "waiting"), 1);
    let rs = rows(
        &run(
            &dst,
            "master",
            "SELECT COUNT(*) AS n FROM sys.databases WHERE state_desc = 'RESTORING'",
            &[],
        )
        .await,
    );
    assert_eq!(int(&rs, 0, "n"), 7);
}

#[tokio::test]
async fn force_full_then_start_job_takes_a_full_set_and_clears_the_flag() {
    let g = group("healthy");
    let src = backend(&g, InstanceRole::Source);
    let before = rows(
        &run(
            &src,
            "BizTalkMgmtDb",
            "SELECT MAX(BackupSetId) AS s FROM dbo.adm_BackupHistory WHERE BackupType = 'db'",
            &[],
        )
        .await,
    );
    let r = run(&src, "msdb", "EXEC BizTalkMgmtDb.dbo.sp_ForceFullBackup; SELECT ForceFull FROM BizTalkMgmtDb.dbo.adm_BackupSettings", &[]).await;
    assert_eq!(rows(&r).get(0, "ForceFull"), Some(ValueRef::Bool(true)));
    let r = run(
        &src,
        "msdb",
        "EXEC msdb.dbo.sp_start_job @job_name = @j",
        &[(
            "j",
            Param::Text("Backup BizTalk Server (BizTalkMgmtDb)".into()),
        )],
    )
    .await;
    assert!(
        r.iter().any(
            |x| matches!(x, Reply::Info { message, .. } if message.contains("started successfully"))
        ),
        "{r:?}"
    );
    let after = rows(&run(&src, "BizTalkMgmtDb", "SELECT MAX(BackupSetId) AS s, (SELECT CAST(ForceFull AS int) FROM dbo.adm_BackupSettings) AS flag FROM dbo.adm_BackupHistory WHERE BackupType = 'db' AND SetComplete = 1", &[]).await);
    assert!(int(&after, 0, "s") > int(&before, 0, "s"));
    assert_eq!(int(&after, 0, "flag"), 0);
    // Running it again in the same day only backs up the logs.
    run(
        &src,
        "msdb",
        "EXEC msdb.dbo.sp_start_job N'Backup BizTalk Server (BizTalkMgmtDb)'",
        &[],
    )
    .await;
    let again = rows(
        &run(
            &src,
            "BizTalkMgmtDb",
            "SELECT MAX(BackupSetId) AS s FROM dbo.adm_BackupHistory WHERE BackupType = 'db'",
            &[],
        )
        .await,
    );
    assert_eq!(int(&again, 0, "s"), int(&after, 0, "s"));
    let hist = rows(
        &run(
            &src,
            "msdb",
            "SELECT TOP (5) step_id, run_status FROM dbo.sysjobhistory ORDER BY instance_id DESC",
            &[],
        )
        .await,
    );
    assert_eq!(int(&hist, 0, "step_id"), 0);
    assert_eq!(int(&hist, 0, "run_status"), 1);
}

#[tokio::test]
async fn share_full_fails_backups_with_the_real_errors() {
    let g = group("share-full");
    let src = backend(&g, InstanceRole::Source);
    let r = run(
        &src,
        "master",
        r"BACKUP DATABASE [BizTalkDTADb] TO DISK = N'\\FS01\BizTalkBackup\x.bak'",
        &[],
    )
    .await;
    let errs: Vec<u32> = r
        .iter()
        .filter_map(|x| {
            if let Reply::Error { number, .. } = x {
                Some(*number)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(errs, vec![3202, 3013]);
    assert!(
        error(&r)
            .1
            .contains("112(There is not enough space on the disk.)")
    );
    let hist = rows(&run(&src, "msdb", "SELECT TOP (1) run_status, message FROM dbo.sysjobhistory WHERE step_id = 0 ORDER BY instance_id DESC", &[]).await);
    assert_eq!(int(&hist, 0, "run_status"), 0);
    let partial = rows(
        &run(
            &src,
            "BizTalkMgmtDb",
            "SELECT COUNT(*) AS n FROM dbo.adm_BackupHistory WHERE SetComplete = 0",
            &[],
        )
        .await,
    );
    // sp_MarkAll inserts a history row only after a backup succeeded and stops at the first
    // failure (BizTalk 2020 BTS_Administration_Logic.sql): a full share leaves no row at all.
    assert_eq!(int(&partial, 0, "n"), 0);
}

/// A run that cannot reach the MessageBox server: the databases before it in the cursor's
/// order (ORDER BY ServerName) have their log backup and history row, SetComplete = 0; the
/// MessageBox has none; full rows have no MarkName.
#[tokio::test]
async fn a_partial_set_holds_the_databases_backed_up_before_the_failure() {
    let g = group("partial-set");
    let src = backend(&g, InstanceRole::Source);
    let partial = rows(
        &run(
            &src,
            "BizTalkMgmtDb",
            "SELECT DatabaseName, ServerName, BackupType FROM dbo.adm_BackupHistory WHERE SetComplete = 0 ORDER BY DatabaseName",
            &[],
        )
        .await,
    );
    let names: Vec<String> = (0..partial.rows.len())
        .map(|i| {
            partial
                .get(i, "DatabaseName")
                .map(|v| v.to_string())
                .unwrap_or_default()
        })
        .collect();
    assert!(names.contains(&"BizTalkMgmtDb".to_string()), "{names:?}");
    assert!(!names.contains(&"BizTalkMsgBoxDb".to_string()), "{names:?}");
    let full = rows(
        &run(
            &src,
            "BizTalkMgmtDb",
            "SELECT COUNT(*) AS n FROM dbo.adm_BackupHistory WHERE BackupType = 'db' AND MarkName IS NOT NULL",
            &[],
        )
        .await,
    );
    assert_eq!(int(&full, 0, "n"), 0);
}

#[tokio::test]
async fn unknown_statements_error_and_name_themselves() {
    let g = group("healthy");
    let src = backend(&g, InstanceRole::Source);
    let (n, m) = error(&run(&src, "master", "EXEC dbo.sp_NoSuchProc 1", &[]).await);
    assert_eq!(n, 2812);
    assert!(m.contains("sp_NoSuchProc"));
    let (n, m) = error(&run(&src, "master", "SELECT * FROM dbo.NoSuchTable", &[]).await);
    assert_eq!(n, 208);
    assert!(m.contains("NoSuchTable"));
    let (n, m) = error(
        &run(
            &src,
            "master",
            "MERGE INTO x USING y ON 1 = 1 WHEN MATCHED THEN DELETE;",
            &[],
        )
        .await,
    );
    assert_eq!(n, 40100);
    assert!(m.contains("MERGE INTO x"));
    // msdb procedures are not found from master, as on SQL Server.
    assert_eq!(
        error(&run(&src, "master", "EXEC sp_start_job @job_name = N'x'", &[]).await).0,
        2812
    );
    assert_eq!(
        error(&run(&src, "msdb", "EXEC sp_start_job @job_name = N'x'", &[]).await).0,
        14262
    );
    assert_eq!(
        error(&run(&src, "master", "SELECT 1 FROM", &[]).await).0,
        102
    );
}

/// A client's deeply nested T-SQL (issue 14: the simulator's parser recursed without a
/// limit) gets SQL Server's error 191 instead of overflowing the server's stack; the test
/// runs on a 2 MiB thread like the server's tokio workers, and the server keeps answering.
#[test]
fn deep_nesting_is_error_191_not_a_crash() {
    let big = |n: usize, s: &str| s.repeat(n);
    let batches = [
        format!("SELECT {}1{}", big(10_000, "("), big(10_000, ")")),
        format!("SELECT 1{}", big(100_000, " + 1")),
        format!("SELECT {}1", big(100_000, "- ")),
        format!("IF {}1 = 1 SELECT 1", big(100_000, "NOT ")),
        format!("SELECT 1 WHERE 1 = 1{}", big(100_000, " AND 1 = 1")),
        format!("{}SELECT 1", big(10_000, "IF 1 = 1 ")),
        format!("{}SELECT 1{}", big(10_000, "BEGIN "), big(10_000, " END")),
        format!(
            "SELECT 1 WHERE EXISTS {}SELECT 1{}",
            big(10_000, "(SELECT 1 WHERE EXISTS "),
            big(10_000, ")")
        ),
    ];
    let child = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let g = group("healthy");
                let src = backend(&g, InstanceRole::Source);
                for sql in &batches {
                    let (n, m) = error(&run(&src, "master", sql, &[]).await);
                    assert_eq!(n, 191, "{}: {m}", &sql[..40]);
                    assert!(m.contains("nested too deeply"), "{m}");
                }
                // Well inside the limit, and the server still answers.
                let ok = format!("SELECT {}1{} AS one", big(20, "("), big(20, ")"));
                assert_eq!(
                    int(&rows(&run(&src, "master", &ok, &[]).await), 0, "one"),
                    1
                );
            });
        })
        .unwrap();
    child.join().unwrap();
}

#[tokio::test]
async fn restore_chain_rules_and_stopatmark() {
    let g = group("healthy");
    let dst = backend(&g, InstanceRole::Destination);
    // Pick the last full of BizTalkRuleEngineDb and the logs after it from the source history.
    let src = backend(&g, InstanceRole::Source);
    let files = rows(&run(&src, "BizTalkMgmtDb", "SELECT BackupType, BackupFileLocation + BackupFileName AS f, MarkName FROM dbo.adm_BackupHistory WHERE DatabaseName = N'BizTalkRuleEngineDb' AND BackupSetId >= (SELECT MAX(BackupSetId) FROM dbo.adm_BackupHistory WHERE BackupType = 'db') ORDER BY BackupSetId", &[]).await);
    let f = |i: usize| Param::Text(files.get(i, "f").expect("f").to_string());
    // Restoring over the standby copy needs REPLACE only when ONLINE; it is RESTORING here.
    let r = run(
        &dst,
        "master",
        "RESTORE DATABASE [BizTalkRuleEngineDb] FROM DISK = @f WITH NORECOVERY, REPLACE",
        &[("f", f(0))],
    )
    .await;
    assert!(!r.iter().any(|x| matches!(x, Reply::Error { .. })), "{r:?}");
    // Skipping a log breaks the chain: 4305.
    assert_eq!(
        error(
            &run(
                &dst,
                "master",
                "RESTORE LOG [BizTalkRuleEngineDb] FROM DISK = @f WITH NORECOVERY",
                &[("f", f(2))]
            )
            .await
        )
        .0,
        4305
    );
    run(
        &dst,
        "master",
        "RESTORE LOG [BizTalkRuleEngineDb] FROM DISK = @f WITH NORECOVERY",
        &[("f", f(1))],
    )
    .await;
    let mark = Param::Text(files.get(2, "MarkName").expect("m").to_string());
    let r = run(
        &dst,
        "master",
        "RESTORE LOG [BizTalkRuleEngineDb] FROM DISK = @f WITH RECOVERY, STOPATMARK = @m",
        &[("f", f(2)), ("m", mark.clone())],
    )
    .await;
    assert!(!r.iter().any(|x| matches!(x, Reply::Error { .. })), "{r:?}");
    let rs = rows(&run(&dst, "msdb", "SELECT TOP (1) d.state_desc, r.stop_at_mark_name, CAST(r.recovery AS int) AS rec FROM dbo.restorehistory AS r JOIN sys.databases AS d ON d.name = r.destination_database_name WHERE r.destination_database_name = N'BizTalkRuleEngineDb' ORDER BY r.restore_history_id DESC", &[]).await);
    assert_eq!(rs.get(0, "state_desc"), Some(ValueRef::Text("ONLINE")));
    assert_eq!(
        rs.get(0, "stop_at_mark_name").map(|v| v.to_string()),
        Some(match mark {
            Param::Text(m) => m,
            _ => unreachable!(),
        })
    );
    assert_eq!(int(&rs, 0, "rec"), 1);
    // A missing file: 3201 then 3013.
    assert_eq!(
        error(
            &run(
                &dst,
                "master",
                r"RESTORE VERIFYONLY FROM DISK = N'\\FS01\nope.bak'",
                &[]
            )
            .await
        )
        .0,
        3201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_restore_shows_progress_and_cancel_keeps_state_consistent() {
    let g = group("healthy");
    {
        let mut gg = lock(&g);
        gg.min_restore_secs = 1.5;
    }
    let dst = backend(&g, InstanceRole::Destination);
    let src = backend(&g, InstanceRole::Source);
    let files = rows(&run(&src, "BizTalkMgmtDb", "SELECT TOP (1) BackupFileLocation + BackupFileName AS f FROM dbo.adm_BackupHistory WHERE DatabaseName = N'SSODB' AND BackupType = 'db' ORDER BY BackupSetId DESC", &[]).await);
    let f = Param::Text(files.get(0, "f").expect("f").to_string());
    let d2 = dst.clone();
    let f2 = f.clone();
    let task = tokio::spawn(async move {
        let mut s = Session {
            spid: 77,
            login: "btsdr".into(),
            database: "master".into(),
        };
        d2.run(
            &mut s,
            Request {
                sql: "RESTORE DATABASE [SSODB] FROM DISK = @f WITH NORECOVERY, REPLACE".into(),
                params: vec![("f".into(), Some(f2))],
            },
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let rs = rows(&run(&dst, "master", "SELECT session_id, command, percent_complete, estimated_completion_time FROM sys.dm_exec_requests WHERE session_id = 77", &[]).await);
    assert_eq!(rs.rows.len(), 1);
    assert_eq!(
        rs.get(0, "command"),
        Some(ValueRef::Text("RESTORE DATABASE"))
    );
    let pct = rs
        .get(0, "percent_complete")
        .and_then(ValueRef::as_f64)
        .unwrap_or(0.0);
    assert!(pct > 10.0 && pct < 100.0, "{pct}");
    // Attention: the server drops the future; the request disappears, the database stays RESTORING
    // and no restore is recorded.
    task.abort();
    let _ = task.await;
    let rs = rows(
        &run(
            &dst,
            "master",
            "SELECT COUNT(*) AS n FROM sys.dm_exec_requests WHERE session_id = 77",
            &[],
        )
        .await,
    );
    assert_eq!(int(&rs, 0, "n"), 0);
    let rs = rows(
        &run(
            &dst,
            "master",
            "SELECT state_desc FROM sys.databases WHERE name = N'SSODB'",
            &[],
        )
        .await,
    );
    assert_eq!(rs.get(0, "state_desc"), Some(ValueRef::Text("RESTORING")));
    let _ = jobs::advance;
}

#[tokio::test]
async fn drop_during_restore_disconnects_once() {
    let g = group("drop-during-restore");
    let dst = backend(&g, InstanceRole::Destination);
    let src = backend(&g, InstanceRole::Source);
    let files = rows(&run(&src, "BizTalkMgmtDb", "SELECT TOP (1) BackupFileLocation + BackupFileName AS f FROM dbo.adm_BackupHistory WHERE DatabaseName = N'SSODB' AND BackupType = 'db' ORDER BY BackupSetId DESC", &[]).await);
    let f = Param::Text(files.get(0, "f").expect("f").to_string());
    let sql = "RESTORE DATABASE [SSODB] FROM DISK = @f WITH NORECOVERY, REPLACE";
    let r = run(&dst, "master", sql, &[("f", f.clone())]).await;
    assert_eq!(r.last(), Some(&Reply::Disconnect));
    let r = run(&dst, "master", sql, &[("f", f)]).await;
    assert!(
        !r.iter()
            .any(|x| matches!(x, Reply::Error { .. } | Reply::Disconnect)),
        "{r:?}"
    );
}

#[tokio::test]
async fn msdb_procedures_change_jobs_and_schedules() {
    let g = group("healthy");
    let src = backend(&g, InstanceRole::Source);
    let j = (
        "j",
        Param::Text("Backup BizTalk Server (BizTalkMgmtDb)".into()),
    );
    run(
        &src,
        "msdb",
        "EXEC msdb.dbo.sp_update_job @job_name = @j, @enabled = 0",
        std::slice::from_ref(&j),
    )
    .await;
    run(&src, "msdb", "EXEC msdb.dbo.sp_update_jobstep @job_name = @j, @step_id = 3, @command = N'exec [dbo].[sp_MarkAll] N''BTS'', N''\\\\FS02\\b\\'', 1'", std::slice::from_ref(&j)).await;
    let rs = rows(&run(&src, "msdb", "SELECT j.enabled, s.command FROM dbo.sysjobs AS j JOIN dbo.sysjobsteps AS s ON s.job_id = j.job_id WHERE j.name = @j AND s.step_id = 3", std::slice::from_ref(&j)).await);
    assert_eq!(int(&rs, 0, "enabled"), 0);
    assert!(
        rs.get(0, "command")
            .expect("c")
            .to_string()
            .contains(r"\\FS02\b\")
    );
    // A disabled job does not run on its schedule.
    let before = lock(&g).mgmt.history.len();
    jobs::advance(&mut lock(&g), chrono::Duration::hours(1));
    assert_eq!(lock(&g).mgmt.history.len(), before);
    let (n, _) = error(&run(&src, "msdb", "EXEC msdb.dbo.sp_update_schedule @schedule_id = 1, @freq_subday_type = 4, @freq_subday_interval = 0", &[]).await);
    assert_eq!(n, 14278);
    // sp_configure needs 'show advanced options' for advanced options, and RECONFIGURE to apply.
    let (n, _) = error(
        &run(
            &src,
            "master",
            "EXEC sp_configure 'Ad Hoc Distributed Queries', 1",
            &[],
        )
        .await,
    );
    assert_eq!(n, 15123);
    run(&src, "master", "EXEC sp_configure 'show advanced options', 1; RECONFIGURE; EXEC sp_configure 'Ad Hoc Distributed Queries', 1", &[]).await;
    let rs = rows(&run(&src, "master", "SELECT value, value_in_use FROM sys.configurations WHERE name = N'Ad Hoc Distributed Queries'", &[]).await);
    assert_eq!((int(&rs, 0, "value"), int(&rs, 0, "value_in_use")), (1, 0));
    run(&src, "master", "RECONFIGURE", &[]).await;
    let rs = rows(&run(&src, "master", "SELECT value_in_use FROM sys.configurations WHERE name = N'Ad Hoc Distributed Queries'", &[]).await);
    assert_eq!(int(&rs, 0, "value_in_use"), 1);
}

#[tokio::test]
async fn restore_to_mark_job_brings_every_database_online_at_one_mark() {
    let g = group("healthy");
    let dst = backend(&g, InstanceRole::Destination);
    let r = run(
        &dst,
        "msdb",
        "EXEC dbo.sp_start_job @job_name = N'BTS Log Shipping Restore To Mark'",
        &[],
    )
    .await;
    assert!(!r.iter().any(|x| matches!(x, Reply::Error { .. })), "{r:?}");
    let rs = rows(&run(&dst, "msdb", "SELECT COUNT(DISTINCT r.stop_at_mark_name) AS marks, COUNT(*) AS n, MIN(d.state_desc) AS lo, MAX(d.state_desc) AS hi FROM dbo.restorehistory AS r JOIN sys.databases AS d ON d.name = r.destination_database_name WHERE r.stop_at_mark_name IS NOT NULL", &[]).await);
    assert_eq!(int(&rs, 0, "marks"), 1);
    assert_eq!(int(&rs, 0, "n"), 7);
    assert_eq!(rs.get(0, "lo"), Some(ValueRef::Text("ONLINE")));
    assert_eq!(rs.get(0, "hi"), Some(ValueRef::Text("ONLINE")));
    // The source's jobs were recreated and the restored BizTalkMgmtDb answers on the destination.
    let rs = rows(&run(&dst, "msdb", "SELECT COUNT(*) AS n FROM dbo.sysjobs WHERE name = N'Backup BizTalk Server (BizTalkMgmtDb)'", &[]).await);
    assert_eq!(int(&rs, 0, "n"), 1);
    let rs = rows(
        &run(
            &dst,
            "master",
            "SELECT COUNT(*) AS n FROM BizTalkMgmtDb.dbo.adm_MessageBox",
            &[],
        )
        .await,
    );
    assert_eq!(int(&rs, 0, "n"), 1);
}

#[tokio::test]
async fn restore_to_mark_fails_when_the_newest_mark_is_missing() {
    // The standby restored every set but the newest, whose mark is missing in BizTalkDTADb:
    // there is no mark left that every database can stop at.
    let g = group("missing-mark");
    let dst = backend(&g, InstanceRole::Destination);
    run(
        &dst,
        "msdb",
        "EXEC dbo.sp_start_job @job_name = N'BTS Log Shipping Restore To Mark'",
        &[],
    )
    .await;
    let rs = rows(&run(&dst, "msdb", "SELECT TOP (1) h.run_status, h.message FROM dbo.sysjobhistory AS h JOIN dbo.sysjobs AS j ON j.job_id = h.job_id WHERE j.name LIKE N'%Restore To Mark%' AND h.step_id = 1 ORDER BY h.instance_id DESC", &[]).await);
    assert_eq!(int(&rs, 0, "run_status"), 0);
    assert!(
        rs.get(0, "message")
            .expect("m")
            .to_string()
            .contains("mark in every database")
    );
}

/// The join index only narrows what the ON condition sees: an equi-join over enough rows to
/// use it returns exactly what a scanned join (same condition through UPPER) returns,
/// including case and trailing-space differences, NULL keys and LEFT JOIN misses.
#[tokio::test]
async fn indexed_equi_join_matches_a_scanned_join() {
    let g = group("healthy");
    let b = backend(&g, InstanceRole::Source);
    let setup = "DECLARE @l TABLE (id int, k nvarchar(20));
        DECLARE @r TABLE (n int, k nvarchar(20));
        DECLARE @i int = 0;
        WHILE @i < 40
        BEGIN
            INSERT INTO @l (id, k) VALUES (@i, CASE WHEN @i % 7 = 0 THEN NULL ELSE N'Key' + CAST(@i % 5 AS nvarchar(5)) END);
            INSERT INTO @r (n, k) VALUES (@i, CASE WHEN @i % 11 = 0 THEN NULL WHEN @i % 2 = 0 THEN N'KEY' + CAST(@i % 6 AS nvarchar(5)) + N'  ' ELSE N'key' + CAST(@i % 6 AS nvarchar(5)) END);
            SET @i = @i + 1;
        END;";
    let q = |on: &str| {
        format!(
            "{setup} SELECT l.id, r.n FROM @l AS l LEFT JOIN @r AS r ON {on} ORDER BY l.id, r.n;"
        )
    };
    let indexed = rows(&run(&b, "master", &q("r.k = l.k AND l.id >= 0"), &[]).await);
    let scanned = rows(
        &run(
            &b,
            "master",
            &q("UPPER(r.k) = UPPER(l.k) AND l.id >= 0"),
            &[],
        )
        .await,
    );
    assert_eq!(indexed.rows, scanned.rows);
    // Some matched, some did not (NULL keys and Key4 have no partner).
    let misses = indexed
        .rows
        .iter()
        .filter(|r| r.get(1).is_some_and(|v| v.is_null()))
        .count();
    assert!(misses > 0 && misses < indexed.rows.len(), "{indexed:?}");
    assert!(indexed.rows.len() > 40, "one-to-many matches expected");
}

/// Catalog tables shared between statements (`tables::source_hash`) follow every change:
/// after an hour of scheduled backups each one has more rows on the next statement.
#[tokio::test]
async fn shared_catalog_tables_follow_new_backups() {
    let g = group("healthy");
    let src = backend(&g, InstanceRole::Source);
    let counts = |rs: ResultSet| {
        ["h", "b", "m", "f"]
            .iter()
            .map(|c| int(&rs, 0, c))
            .collect::<Vec<_>>()
    };
    let q = "SELECT (SELECT COUNT(*) FROM BizTalkMgmtDb.dbo.adm_BackupHistory) AS h, \
             (SELECT COUNT(*) FROM msdb.dbo.backupset) AS b, \
             (SELECT COUNT(*) FROM msdb.dbo.logmarkhistory) AS m, \
             (SELECT COUNT(*) FROM msdb.dbo.backupmediafamily) AS f";
    let before = counts(rows(&run(&src, "master", q, &[]).await));
    // Again, unchanged: served from the shared tables.
    assert_eq!(counts(rows(&run(&src, "master", q, &[]).await)), before);
    jobs::advance(&mut lock(&g), chrono::Duration::hours(1));
    let after = counts(rows(&run(&src, "master", q, &[]).await));
    for (b, a) in before.iter().zip(&after) {
        assert!(a > b, "before {before:?} after {after:?}");
    }
    assert!(!lock(&g).shared_tables.is_empty());
}

#[tokio::test]
async fn union_keeps_every_member() {
    let g = group("healthy");
    let b = backend(&g, InstanceRole::Source);
    // Three or more members: each one counts (a chained member used to be dropped).
    let rs = rows(
        &run(
            &b,
            "master",
            "SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4",
            &[],
        )
        .await,
    );
    assert_eq!(rs.rows.len(), 4);
    assert_eq!(int(&rs, 3, "n"), 4);
}

/// BizTalk's own table scripts: adm_MessageBox.IsMasterMsgBox is an int and the master is -1;
/// adm_Group has the location columns UpdateDatabase.vbs updates, '' when not configured.
#[tokio::test]
async fn mgmt_tables_have_biztalks_columns() {
    let g = group("healthy");
    let b = backend(&g, InstanceRole::Source);
    let rs = rows(
        &run(
            &b,
            "BizTalkMgmtDb",
            "SELECT DBName, IsMasterMsgBox FROM dbo.adm_MessageBox ORDER BY DBName",
            &[],
        )
        .await,
    );
    assert_eq!(int(&rs, 0, "IsMasterMsgBox"), -1);
    let rs = rows(
        &run(
            &b,
            "BizTalkMgmtDb",
            "SELECT SubscriptionDBServerName, SubscriptionDBName, RuleEngineDBServerName, BamDBServerName, \
             TrackAnalysisServerName, TrackAnalysisDBName, SSOServerName FROM dbo.adm_Group",
            &[],
        )
        .await,
    );
    let cell = |c: &str| rs.get(0, c).map(|v| v.to_string()).unwrap_or_default();
    assert_eq!(cell("SubscriptionDBServerName"), "SQLBTS02");
    assert_eq!(cell("SubscriptionDBName"), "BizTalkMsgBoxDb");
    assert_eq!(cell("RuleEngineDBServerName"), "SQLBTS01");
    assert_eq!(cell("BamDBServerName"), "SQLBTS01");
    assert_eq!(cell("TrackAnalysisServerName"), "");
    assert_eq!(cell("SSOServerName"), "SQLBTS01");
}
