//! Running a [`RestorePlan`] on the instance that restores: one RESTORE per file, every one
//! `WITH NORECOVERY` (the last log also `STOPATMARK`), with progress, and resumable: before
//! each database it reads `sys.databases` and `msdb.dbo.restorehistory` to find the files
//! already applied and goes on after them. Recovery (`RESTORE DATABASE ... WITH RECOVERY`) is
//! left to the runbook's own step, after every database reached the mark.
//!
//! Values are bound as parameters (`RESTORE DATABASE @db FROM DISK = @file`, documented
//! forms; `STOPATMARK = @mark` is accepted by the simulator, not verified on SQL Server).

use tokio::sync::mpsc;

use btsdr_types::{Param, Progress, QueryOutput, Role, SqlError, Statement, ValueRef};

use super::plan::{DatabasePlan, FileKind, PlannedFile, RestorePlan};
use crate::sql::{ExecEvent, Executor, run_once};

/// What the runner reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// The run's start on the server's clock: keep it, and pass it again to resume.
    Started {
        since: String,
    },
    /// `applied` files of this database were already restored (read from msdb).
    Resumed {
        database: String,
        applied: usize,
        total: usize,
    },
    /// A file's RESTORE was sent (`index` from 0, of `total`; `bytes` from its header).
    FileStarted {
        database: String,
        file: String,
        index: usize,
        total: usize,
        bytes: u64,
    },
    /// From `sys.dm_exec_requests` while a RESTORE runs.
    FileProgress {
        database: String,
        file: String,
        progress: Progress,
    },
    FileDone {
        database: String,
        file: String,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    #[error(
        "{database} exists on the server and would be overwritten by its full backup: confirm the restore (WITH REPLACE) first"
    )]
    NotConfirmed { database: String },
    #[error("reading the restore state of {database} failed: {error}")]
    State { database: String, error: SqlError },
    #[error("restoring {database} from {file} failed: {error}")]
    Restore {
        database: String,
        file: String,
        error: SqlError,
    },
}

/// Whether the database exists, and how many of its plan files this run applied: it must be
/// RESTORING, and the newest restore of it since `since` (the run's start, server time) is
/// one of the plan's files. Restores before `since` (log shipping's, an earlier attempt's)
/// do not count; an interrupted RESTORE leaves no restorehistory row (SQL Server writes it
/// when the restore completes), so that file is restored again.
pub async fn applied_files(
    exec: &dyn Executor,
    role: Role,
    db: &DatabasePlan,
    since: &str,
) -> Result<(bool, usize), RunError> {
    let p = vec![
        ("db".to_string(), Param::Text(db.database.clone())),
        ("since".to_string(), Param::Text(since.into())),
    ];
    let q = |sql: &str| Statement {
        role,
        database: "master".into(),
        sql: sql.into(),
        params: p.clone(),
        timeout_secs: 60,
        long_running: false,
    };
    let err = |error| RunError::State {
        database: db.database.clone(),
        error,
    };
    let out = run_once(
        exec,
        q("SELECT state_desc FROM sys.databases WHERE name = @db;"),
    )
    .await
    .map_err(err)?;
    let state = first_text(&out, "state_desc");
    let exists = state.is_some();
    if state.as_deref() != Some("RESTORING") {
        return Ok((exists, 0));
    }
    let out = run_once(
        exec,
        // Nested single-row lookups rather than a three-table join: msdb's history tables
        // hold months of rows.
        q(
            "SELECT TOP (1) physical_device_name FROM msdb.dbo.backupmediafamily \
           WHERE media_set_id = (SELECT bs.media_set_id FROM msdb.dbo.backupset AS bs \
             WHERE bs.backup_set_id = (SELECT TOP (1) r.backup_set_id \
               FROM msdb.dbo.restorehistory AS r \
               WHERE r.destination_database_name = @db AND r.restore_date >= @since \
               ORDER BY r.restore_history_id DESC));",
        ),
    )
    .await
    .map_err(err)?;
    let last = first_text(&out, "physical_device_name");
    // The newest restore of this database is one of the plan's files: those up to it are applied.
    let applied = last
        .and_then(|dev| {
            db.files
                .iter()
                .position(|f| f.file.eq_ignore_ascii_case(dev.trim()))
        })
        .map_or(0, |i| i + 1);
    Ok((true, applied))
}

fn first_text(out: &QueryOutput, col: &str) -> Option<String> {
    out.first()
        .and_then(|rs| rs.get(0, col))
        .and_then(ValueRef::as_str)
        .map(str::to_string)
}

/// The RESTORE for one file of the plan.
pub fn restore_statement(role: Role, db: &str, f: &PlannedFile, replace: bool) -> Statement {
    let mut params = vec![
        ("db".to_string(), Param::Text(db.into())),
        ("file".to_string(), Param::Text(f.file.clone())),
    ];
    let sql = match f.kind {
        FileKind::Full if replace => {
            "RESTORE DATABASE @db FROM DISK = @file WITH NORECOVERY, REPLACE;".to_string()
        }
        FileKind::Full => "RESTORE DATABASE @db FROM DISK = @file WITH NORECOVERY;".to_string(),
        FileKind::Log => match &f.stop_at_mark {
            Some(m) => {
                params.push(("mark".to_string(), Param::Text(m.clone())));
                "RESTORE LOG @db FROM DISK = @file WITH NORECOVERY, STOPATMARK = @mark;".to_string()
            }
            None => "RESTORE LOG @db FROM DISK = @file WITH NORECOVERY;".to_string(),
        },
    };
    Statement {
        role,
        database: "master".into(),
        sql,
        params,
        // A full restore of a large database takes hours; the operator can cancel.
        timeout_secs: 0,
        long_running: true,
    }
}

/// Runs `plan` on `role`'s server, database after database, going on after the files msdb
/// says are applied. `replace_confirmed`: the operator typed the confirmation that existing
/// databases of these names may be overwritten.
pub async fn run_plan(
    exec: &dyn Executor,
    role: Role,
    plan: &RestorePlan,
    since: Option<&str>,
    replace_confirmed: bool,
    mut report: impl FnMut(RunEvent),
) -> Result<(), RunError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(3 << 62);
    let since = match since {
        Some(s) => s.to_string(),
        None => {
            let out = run_once(
                exec,
                Statement {
                    role,
                    database: "master".into(),
                    sql: "SELECT GETDATE() AS now;".into(),
                    params: vec![],
                    timeout_secs: 60,
                    long_running: false,
                },
            )
            .await
            .map_err(|error| RunError::State {
                database: "(server clock)".into(),
                error,
            })?;
            // ISO 8601 with `T`: read the same under every DATEFORMAT.
            let now = out
                .first()
                .and_then(|rs| rs.get(0, "now"))
                .and_then(|v| match v {
                    ValueRef::DateTime(s) | ValueRef::Text(s) => Some(s.replacen(' ', "T", 1)),
                    _ => None,
                })
                .unwrap_or_default();
            report(RunEvent::Started { since: now.clone() });
            now
        }
    };
    for db in &plan.databases {
        let (exists, applied) = applied_files(exec, role, db, &since).await?;
        let total = db.files.len();
        if applied > 0 {
            report(RunEvent::Resumed {
                database: db.database.clone(),
                applied,
                total,
            });
        }
        if applied == 0 && exists && !replace_confirmed {
            return Err(RunError::NotConfirmed {
                database: db.database.clone(),
            });
        }
        for (index, f) in db.files.iter().enumerate().skip(applied) {
            report(RunEvent::FileStarted {
                database: db.database.clone(),
                file: f.file.clone(),
                index,
                total,
                bytes: f.size_bytes,
            });
            let stmt = restore_statement(role, &db.database, f, exists && index == 0);
            let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (tx, mut rx) = mpsc::unbounded_channel();
            exec.submit(id, stmt, tx);
            let mut result = Err(SqlError::Protocol {
                message: "the executor stopped without an answer".into(),
            });
            while let Some(ev) = rx.recv().await {
                match ev {
                    ExecEvent::Progress { id: got, progress } if got == id => {
                        report(RunEvent::FileProgress {
                            database: db.database.clone(),
                            file: f.file.clone(),
                            progress,
                        })
                    }
                    ExecEvent::Finished { id: got, result: r } if got == id => {
                        result = r.map(|_| ());
                        break;
                    }
                    _ => {}
                }
            }
            result.map_err(|error| RunError::Restore {
                database: db.database.clone(),
                file: f.file.clone(),
                error,
            })?;
            report(RunEvent::FileDone {
                database: db.database.clone(),
                file: f.file.clone(),
            });
        }
    }
    Ok(())
}
