//! `btsdr preflight` over real TCP against the simulator: the healthy group passes every
//! statement, schema-drift names the steps that would fail, nothing is changed, and the
//! simulator answers SET NOEXEC / SET PARSEONLY and the catalog views as SQL Server does.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
#![allow(clippy::too_many_lines)] // some tests tell a long story

use std::collections::BTreeSet;
use std::sync::Arc;

use btsdr::batch::{Answers, Target};
use btsdr::preflight::{PreflightOptions, PreflightSummary, Verdict, preflight};
use btsdr::runbook::library::Library;
use btsdr::sql::run_once;
use btsdr_sim::drill::Drill;
use btsdr_types::{Role, SqlError, Statement};

fn all_runbooks() -> Vec<Arc<btsdr::runbook::model::Runbook>> {
    let lib = Library::load(None).expect("embedded runbooks load");
    lib.ids()
        .iter()
        .map(|id| lib.get(id).expect("listed runbook"))
        .collect()
}

async fn run(drill: &Drill, json: bool) -> (PreflightSummary, String, String) {
    let opts = PreflightOptions {
        runbooks: all_runbooks(),
        target: Target::from_drill(drill).expect("target"),
        sets: vec![],
        answers: Answers::default(),
        json,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let s = preflight(opts, &mut out, &mut err).await;
    (
        s,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_checks_every_statement_and_exits_0() {
    let drill = Drill::start("healthy").await.unwrap();
    let (s, out, err) = run(&drill, false).await;
    assert_eq!(s.code, 0, "{out}{err}");
    // Every sql and check step of every runbook is listed, once.
    let expected: usize = all_runbooks()
        .iter()
        .map(|rb| {
            rb.steps()
                .filter(|(_, st)| st.statement().is_some())
                .count()
        })
        .sum();
    assert_eq!(s.results.len(), expected);
    assert!(s.results.iter().all(|r| r.verdict != Verdict::WouldFail));
    let ok = s
        .results
        .iter()
        .filter(|r| r.verdict == Verdict::Ok)
        .count();
    assert!(ok > expected / 2, "only {ok} of {expected} ok:\n{out}");
    for r in s.results.iter().filter(|r| r.verdict == Verdict::Ok) {
        assert!(
            r.checked.compiled,
            "{}:{} ok without compiling",
            r.runbook, r.step
        );
        assert!(
            out.contains(&format!("[ OK ] {}:{} ", r.runbook, r.step)),
            "{}:{} not listed",
            r.runbook,
            r.step
        );
    }
    // The names were looked up, not only compiled: the job configuration step names the
    // Backup job and msdb's procedures with their parameters.
    let cfg = s
        .results
        .iter()
        .find(|r| r.runbook == "backup" && r.step == "job.configure")
        .expect("backup:job.configure");
    assert!(
        cfg.checked
            .objects
            .iter()
            .any(|o| o == "msdb.dbo.sp_update_jobstep")
    );
    assert!(
        cfg.checked
            .parameters
            .iter()
            .any(|p| p == "sp_update_jobstep @step_id")
    );
    assert!(!cfg.checked.jobs.is_empty(), "{cfg:?}");
    // Steps on the standby's restoring BizTalkMgmtDb are checked against the source's copy.
    let upd = s
        .results
        .iter()
        .find(|r| r.runbook == "disaster-recovery" && r.step == "group.update-info")
        .expect("disaster-recovery:group.update-info");
    assert_eq!(upd.verdict, Verdict::Ok, "{upd:?}");
    assert!(
        upd.notes.iter().any(|n| n.contains("source server's copy")),
        "{upd:?}"
    );
    assert!(!upd.checked.columns.is_empty(), "{upd:?}");
    // Versions, from SERVERPROPERTY and BizTalkDBVersion.
    let src = s
        .versions
        .iter()
        .find(|v| v.server_role == "source")
        .unwrap();
    assert_eq!(src.sql_server.as_deref(), Some("15.0.4385.2"));
    assert_eq!(src.biztalk.as_deref(), Some("3.13.717.0"));
    assert!(
        out.contains(
            "SQL Server 15.0.4385.2 (SQL Server 2019) · BizTalk 3.13.717.0 (BizTalk Server 2020)"
        ),
        "{out}"
    );
    drill.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_drift_names_the_steps_that_would_fail() {
    let drill = Drill::start("schema-drift").await.unwrap();
    let (s, out, err) = run(&drill, true).await;
    assert_eq!(s.code, 1, "{out}{err}");
    let failing: BTreeSet<String> = s
        .results
        .iter()
        .filter(|r| r.verdict == Verdict::WouldFail)
        .map(|r| format!("{}:{}", r.runbook, r.step))
        .collect();
    // The scenario's failing checks and procedure steps, and the sql steps that configure
    // log shipping (the dropped parameter).
    let mut want: BTreeSet<String> = drill
        .scenario
        .expect_failing_checks
        .iter()
        .chain(&drill.scenario.expect_failing_steps)
        .cloned()
        .collect();
    want.insert("backup:store.dest-configure".into());
    want.insert("disaster-recovery:logship.configure".into());
    assert_eq!(failing, want, "{out}");
    let r = s
        .results
        .iter()
        .find(|r| r.step == "store.dest-configure")
        .unwrap();
    assert_eq!(r.findings[0].number, Some(8145));
    assert!(r.findings[0].message.contains("@fLinkServers"), "{r:?}");
    // JSON Lines: one per step, then the summary.
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), s.results.len() + 1);
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(last["exit_code"], 1);
    assert_eq!(last["would_fail"], want.len());
    assert!(lines.iter().any(|l| l["verdict"] == "would_fail"
        && l["findings"][0]["number"] == 207
        && l["server_role"] == "destination"));
    drill.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_changes_nothing() {
    let drill = Drill::start("healthy").await.unwrap();
    let t = Target::from_drill(&drill).unwrap();
    let snapshot = "SELECT j.name, j.enabled, (SELECT COUNT(*) FROM msdb.dbo.backupset) AS sets \
                    FROM msdb.dbo.sysjobs AS j ORDER BY j.name;";
    let before = run_once(&*t.executor, stmt(Role::Source, "msdb", snapshot))
        .await
        .unwrap();
    let (s, out, _) = run(&drill, false).await;
    assert_eq!(s.code, 0, "{out}");
    let after = run_once(&*t.executor, stmt(Role::Source, "msdb", snapshot))
        .await
        .unwrap();
    assert_eq!(before, after);
    drill.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_noexec_and_parseonly_run_nothing_but_report_syntax() {
    let drill = Drill::start("healthy").await.unwrap();
    let t = Target::from_drill(&drill).unwrap();
    let ex = &*t.executor;
    let o = run_once(
        ex,
        stmt(
            Role::Source,
            "msdb",
            "SELECT j.name FROM msdb.dbo.sysjobs AS j WHERE j.name LIKE N'Backup BizTalk Server%';",
        ),
    )
    .await
    .unwrap();
    let job = o.first().unwrap().get(0, "name").unwrap().to_string();
    let enabled = |job: String| {
        let mut s = stmt(
            Role::Source,
            "msdb",
            "SELECT j.enabled FROM msdb.dbo.sysjobs AS j WHERE j.name = @job;",
        );
        s.params = vec![("job".into(), btsdr_types::Param::Text(job))];
        s
    };
    for mode in ["NOEXEC", "PARSEONLY"] {
        let mut s = stmt(
            Role::Source,
            "msdb",
            &format!(
                "SET {mode} ON; EXEC msdb.dbo.sp_update_job @job_name = @job, @enabled = 0; SET {mode} OFF;"
            ),
        );
        s.params = vec![("job".into(), btsdr_types::Param::Text(job.clone()))];
        run_once(ex, s).await.unwrap();
        let o = run_once(ex, enabled(job.clone())).await.unwrap();
        assert_eq!(
            o.first().unwrap().get(0, "enabled").unwrap().to_string(),
            "1",
            "{mode}"
        );
        // A SELECT under the mode returns no rows; the OFF runs again.
        let o = run_once(
            ex,
            stmt(
                Role::Source,
                "msdb",
                &format!("SET {mode} ON; SELECT 1 AS a; SET {mode} OFF; SELECT 2 AS b;"),
            ),
        )
        .await
        .unwrap();
        assert_eq!(o.sets.len(), 1, "{mode}: {o:?}");
        assert_eq!(o.sets[0].columns[0].name, "b");
        // A syntax error fails the batch before anything runs.
        let e = run_once(
            ex,
            stmt(
                Role::Source,
                "msdb",
                &format!("SET {mode} ON; SELECT (1 + ; SET {mode} OFF;"),
            ),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, SqlError::Server { number: 102, .. }),
            "{mode}: {e:?}"
        );
    }
    drill.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_catalog_lists_what_it_serves() {
    let drill = Drill::start("schema-drift").await.unwrap();
    let t = Target::from_drill(&drill).unwrap();
    let ex = &*t.executor;
    let q = "SELECT s.name AS schema_name, o.name, o.type FROM msdb.sys.all_objects AS o \
             JOIN msdb.sys.schemas AS s ON s.schema_id = o.schema_id \
             WHERE o.name IN (N'sysjobs', N'sp_start_job', N'databases', N'no_such_thing');";
    let o = run_once(ex, stmt(Role::Source, "master", q)).await.unwrap();
    let rs = o.first().unwrap();
    let got: BTreeSet<String> = (0..rs.rows.len())
        .map(|i| {
            format!(
                "{}.{}:{}",
                rs.get(i, "schema_name").unwrap(),
                rs.get(i, "name").unwrap(),
                rs.get(i, "type").unwrap()
            )
        })
        .collect();
    let want: BTreeSet<String> = ["dbo.sysjobs:U", "dbo.sp_start_job:P", "sys.databases:V"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, want);
    // sys.objects leaves out the system views.
    let o = run_once(
        ex,
        stmt(
            Role::Source,
            "msdb",
            "SELECT o.name FROM sys.objects AS o WHERE o.name = N'databases';",
        ),
    )
    .await
    .unwrap();
    assert_eq!(o.first().unwrap().rows.len(), 0);
    // The drifted column is neither listed nor readable; the parameter neither listed nor accepted.
    let cols = "SELECT c.name FROM master.sys.all_columns AS c WHERE c.object_id IN \
                (SELECT o.object_id FROM master.sys.all_objects AS o WHERE o.name = N'bts_LogShippingHistory');";
    let o = run_once(ex, stmt(Role::Destination, "master", cols))
        .await
        .unwrap();
    let names: Vec<String> = (0..o.sets[0].rows.len())
        .map(|i| o.sets[0].get(i, "name").unwrap().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "DatabaseName"), "{names:?}");
    assert!(!names.iter().any(|n| n == "BackupSetId"), "{names:?}");
    let e = run_once(
        ex,
        stmt(
            Role::Destination,
            "master",
            "SELECT h.BackupSetId FROM master.dbo.bts_LogShippingHistory AS h;",
        ),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, SqlError::Server { number: 207, .. }), "{e:?}");
    let params = "SELECT p.name FROM master.sys.all_parameters AS p WHERE p.object_id IN \
                  (SELECT o.object_id FROM master.sys.all_objects AS o WHERE o.name = N'bts_ConfigureBizTalkLogShipping');";
    let o = run_once(ex, stmt(Role::Destination, "master", params))
        .await
        .unwrap();
    let names: Vec<String> = (0..o.sets[0].rows.len())
        .map(|i| o.sets[0].get(i, "name").unwrap().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "@nvcDescription"), "{names:?}");
    assert!(!names.iter().any(|n| n == "@fLinkServers"), "{names:?}");
    drill.shutdown().await;
}

mod cli_support;

#[test]
fn the_binary_exits_0_1_2_and_check_runs_it_on_request() {
    let home = cli_support::home();
    let r = cli_support::btsdr(home.path(), &["preflight", "--drill", "healthy"]);
    cli_support::expect(&r, 0, "preflight --drill healthy");
    assert!(r.out.contains("[ OK ] backup:job.state "), "{}", r.out);
    assert!(r.out.contains(" 0 would fail "), "{}", r.out);
    let r = cli_support::btsdr(
        home.path(),
        &[
            "preflight",
            "--drill",
            "schema-drift",
            "--runbook",
            "readiness",
        ],
    );
    cli_support::expect(&r, 1, "preflight --drill schema-drift");
    assert!(
        r.out.contains("[FAIL] readiness:daily.dest-lag "),
        "{}",
        r.out
    );
    assert!(
        !r.out.contains(" backup:"),
        "--runbook readiness only: {}",
        r.out
    );
    let r = cli_support::btsdr(
        home.path(),
        &["preflight", "--drill", "healthy", "--runbook", "nope"],
    );
    cli_support::expect(&r, 2, "unknown runbook");
    assert!(r.err.contains("no runbook `nope`"), "{}", r.err);
    // check --preflight: opt-in; the higher exit code of the two.
    let r = cli_support::btsdr(home.path(), &["check", "--drill", "healthy", "--preflight"]);
    cli_support::expect(&r, 0, "check --preflight on healthy");
    assert!(r.out.contains("[ OK ] readiness:daily."), "{}", r.out);
    let r = cli_support::btsdr(home.path(), &["check", "--drill", "schema-drift"]);
    assert!(
        !r.out.contains("would fail"),
        "preflight is opt-in: {}",
        r.out
    );
}
