//! Plan from what survives (issue 11), over real TCP against the simulator: the instance that
//! restores lists the backup folder (xp_dirtree) and reads each file's RESTORE HEADERONLY;
//! the plan is built from those alone, with the source instance gone, and agrees with
//! adm_BackupHistory read from the source while it was up.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
#![allow(clippy::too_many_lines)] // some tests tell a long story

use btsdr::batch::Target;
use btsdr::restore::files::{list_backup_files, read_folder, read_header};
use btsdr::restore::plan::{FileKind, PlanError, PlanSource, plan_from_headers};
use btsdr::sql::run_once;
use btsdr_sim::drill::Drill;
use btsdr_types::{Param, Role, SqlError, Statement, ValueRef};

fn stmt(role: Role, db: &str, sql: &str) -> Statement {
    Statement {
        role,
        database: db.into(),
        sql: sql.into(),
        params: vec![],
        timeout_secs: 30,
        long_running: false,
    }
}

fn folder(drill: &Drill) -> String {
    drill
        .variables()
        .get("backup_path")
        .cloned()
        .expect("backup_path")
}

/// (latest complete log mark, per database the file of the latest complete full set), from
/// adm_BackupHistory on the source: the independent witness.
async fn history(drill: &Drill) -> (String, Vec<(String, String)>) {
    let t = Target::from_drill(drill).expect("target");
    let out = run_once(
        &*t.executor,
        stmt(
            Role::Source,
            "BizTalkMgmtDb",
            "SELECT TOP (1) MarkName FROM dbo.adm_BackupHistory WHERE BackupType = 'lg' AND SetComplete = 1 ORDER BY BackupSetId DESC",
        ),
    )
    .await
    .expect("history");
    let rs = out.first().expect("rows");
    let mark = rs
        .get(0, "MarkName")
        .and_then(ValueRef::as_str)
        .expect("mark")
        .to_string();
    let out = run_once(
        &*t.executor,
        stmt(
            Role::Source,
            "BizTalkMgmtDb",
            "SELECT DatabaseName, BackupFileLocation + BackupFileName AS f FROM dbo.adm_BackupHistory WHERE BackupType = 'db' AND BackupSetId = (SELECT MAX(BackupSetId) FROM dbo.adm_BackupHistory WHERE BackupType = 'db' AND SetComplete = 1) ORDER BY DatabaseName",
        ),
    )
    .await
    .expect("fulls");
    let rs = out.first().expect("rows");
    let fulls = (0..rs.rows.len())
        .map(|i| {
            (
                rs.get(i, "DatabaseName")
                    .and_then(ValueRef::as_str)
                    .unwrap_or_default()
                    .to_string(),
                rs.get(i, "f")
                    .and_then(ValueRef::as_str)
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    (mark, fulls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_down_the_plan_comes_from_the_files_and_matches_the_history() {
    let mut drill = Drill::start("healthy").await.expect("drill");
    let (mark, fulls) = history(&drill).await;
    assert!(!fulls.is_empty());
    drill.stop(Role::Source).await;
    let t = Target::from_drill(&drill).expect("target");
    // The source is gone: adm_BackupHistory cannot be read.
    let err = run_once(
        &*t.executor,
        stmt(Role::Source, "BizTalkMgmtDb", "SELECT 1"),
    )
    .await
    .expect_err("source is down");
    assert!(matches!(err, SqlError::Connect { .. }), "{err:?}");

    let dir = folder(&drill);
    let rows = read_folder(&*t.executor, Role::Destination, &dir, 30)
        .await
        .expect("headers");
    assert!(rows.len() > fulls.len(), "{} files", rows.len());
    let source = PlanSource::Files {
        folder: dir.clone(),
        server: t.server(Role::Destination),
    };
    let plan = plan_from_headers(source, &rows, None).expect("plan");
    assert_eq!(
        plan.mark, mark,
        "the latest complete mark, as adm_BackupHistory says"
    );
    assert!(
        plan.source
            .to_string()
            .starts_with(&format!("backup files in {dir}"))
    );
    let mut planned_fulls: Vec<(String, String)> = plan
        .databases
        .iter()
        .map(|d| (d.database.clone(), d.files[0].file.clone()))
        .collect();
    planned_fulls.sort();
    assert_eq!(planned_fulls, fulls);
    for d in &plan.databases {
        assert_eq!(d.files[0].kind, FileKind::Full);
        let last = d.files.last().expect("files");
        assert_eq!(
            last.stop_at_mark.as_deref(),
            Some(mark.as_str()),
            "{}",
            d.database
        );
        assert!(d.files[1..].iter().all(|f| f.kind == FileKind::Log));
        assert!(d.total_bytes() > 0);
    }
    drill.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_set_scenario_is_not_planned_across() {
    // partial-set: one run backed up the databases before the MessageBox and stopped, as
    // sp_BackupBizTalk does, so its mark has files for some databases only. Microsoft
    // ("Partial Backup Sets"): ignore that set and every log set after it up to the next full.
    let drill = Drill::start("partial-set").await.expect("drill");
    let t = Target::from_drill(&drill).expect("target");
    let out = run_once(
        &*t.executor,
        stmt(
            Role::Source,
            "BizTalkMgmtDb",
            "SELECT TOP (1) MarkName FROM dbo.adm_BackupHistory WHERE SetComplete = 0 ORDER BY BackupSetId DESC",
        ),
    )
    .await
    .expect("history");
    let partial = out
        .first()
        .and_then(|rs| rs.get(0, "MarkName"))
        .and_then(ValueRef::as_str)
        .expect("a partial set")
        .to_string();
    let (latest, _) = history(&drill).await;
    let dir = folder(&drill);
    let rows = read_folder(&*t.executor, Role::Destination, &dir, 30)
        .await
        .expect("headers");
    let source = PlanSource::Files {
        folder: dir,
        server: t.server(Role::Destination),
    };
    let plan = plan_from_headers(source.clone(), &rows, None).expect("plan");
    assert!(latest > partial);
    assert!(plan.mark < partial, "{} is not before {partial}", plan.mark);
    assert!(!plan.reachable.contains(&partial), "{:?}", plan.reachable);
    assert!(!plan.reachable.contains(&latest), "{:?}", plan.reachable);
    match plan_from_headers(source, &rows, Some(&partial)) {
        Err(e @ PlanError::MarkNotReachable { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("log set {partial} is partial")),
                "{msg}"
            );
            // The marks it offers are the ones before the partial set.
            assert!(!msg.contains(&latest), "{msg}");
            assert!(msg.contains(&plan.mark), "{msg}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    drill.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_missing_one_file_is_not_planned_past() {
    let drill = Drill::start("healthy").await.expect("drill");
    let t = Target::from_drill(&drill).expect("target");
    let dir = folder(&drill);
    let rows = read_folder(&*t.executor, Role::Destination, &dir, 30)
        .await
        .expect("headers");
    let source = PlanSource::Files {
        folder: dir.clone(),
        server: t.server(Role::Destination),
    };
    let full = plan_from_headers(source.clone(), &rows, None).expect("plan");
    let n = full.reachable.len();
    assert!(n >= 3, "{:?}", full.reachable);
    // One database's log file of the second-to-last set is gone from the share.
    let lost = full
        .databases
        .iter()
        .find(|d| d.database == "SSODB")
        .and_then(|d| d.files.iter().find(|f| f.mark == full.reachable[n - 2]))
        .expect("SSODB log of that set")
        .file
        .clone();
    btsdr_sim::model::lock(&drill.group)
        .files
        .remove(&btsdr_sim::model::media::file_key(&lost));
    let rows = read_folder(&*t.executor, Role::Destination, &dir, 30)
        .await
        .expect("headers");
    let plan = plan_from_headers(source.clone(), &rows, None).expect("an earlier mark");
    assert_eq!(plan.mark, full.reachable[n - 3]);
    let err = plan_from_headers(source, &rows, Some(&full.mark)).expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "log set {} is partial (no file for SSODB)",
            full.reachable[n - 2]
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("Marks that can be reached: {}", full.reachable[0])),
        "{msg}"
    );
    drill.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_and_headers_are_parameters_and_fail_as_sql_server_does() {
    let drill = Drill::start("healthy").await.expect("drill");
    let t = Target::from_drill(&drill).expect("target");
    // A folder that does not exist lists nothing (xp_dirtree does not raise an error).
    let none = list_backup_files(
        &*t.executor,
        Role::Destination,
        r"\\nowhere\x'; DROP TABLE t; --",
        30,
    )
    .await
    .expect("empty listing");
    assert!(none.is_empty());
    // A file that is not there: 3201 from RESTORE HEADERONLY, naming the file.
    let err = read_header(&*t.executor, Role::Destination, r"\\FS01\none.bak", 30)
        .await
        .expect_err("missing file");
    let msg = err.to_string();
    assert!(
        msg.contains("3201") || msg.contains("Cannot open backup device"),
        "{msg}"
    );
    assert!(msg.contains(r"\\FS01\none.bak"), "{msg}");
    // xp_dirtree's columns: subdirectory, depth, file.
    let out = run_once(
        &*t.executor,
        Statement {
            params: vec![("d".into(), Param::Text(folder(&drill)))],
            ..stmt(
                Role::Destination,
                "master",
                "EXEC master.sys.xp_dirtree @d, 1, 1;",
            )
        },
    )
    .await
    .expect("dirtree");
    let rs = out.first().expect("rows");
    let names: Vec<_> = rs.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["subdirectory", "depth", "file"]);
    assert!(rs.rows.len() > 10);
    assert_eq!(rs.get(0, "depth").and_then(ValueRef::as_f64), Some(1.0));
    drill.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_plan_prints_the_source_the_mark_and_each_file() {
    let drill = Drill::start("healthy").await.expect("drill");
    let t = Target::from_drill(&drill).expect("target");
    let dir = folder(&drill);
    let (mark, _) = history(&drill).await;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = btsdr::restore::cli::restore_plan(&t, &dir, None, &mut out, &mut err).await;
    let out = String::from_utf8_lossy(&out);
    assert_eq!(code, 0, "{out}{}", String::from_utf8_lossy(&err));
    assert!(
        out.starts_with(&format!(
            "Plan from backup files in {dir} (headers read on SQLDR01"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("Mark: {mark} (reachable: ")), "{out}");
    assert!(out.contains(&format!("STOPATMARK = {mark})")), "{out}");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = btsdr::restore::cli::restore_plan(&t, &dir, Some("nope"), &mut out, &mut err).await;
    assert_eq!(code, 1);
    assert!(String::from_utf8_lossy(&err).contains("no plan: mark nope cannot be reached"));
    drill.shutdown().await;
}
