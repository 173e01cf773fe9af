//! The BizTalkMgmtDb backup procedures (semantics from the BizTalk Server 2020 scripts as
//! summarised in the reference, §2 B4): full-backup scheduling, marks and log backups.

use chrono::{Datelike, Duration, NaiveDateTime, Timelike};

use super::exec::{Ctx, Fail, R};
use super::media::{biztalk_file, write_backup};
use super::procs::Args;
use super::state::{Group, HistoryRow, LogMark, MarkRow};
use super::value::text;
use crate::backend::Reply;
use btsdr_types::{Column, ResultSet};

pub fn set_compression(ctx: &mut Ctx, a: &Args) -> R<()> {
    ctx.g.mgmt.use_compression = a.flag("bCompression");
    Ok(())
}

pub fn force_full(ctx: &mut Ctx, _: &Args) -> R<()> {
    ctx.g.mgmt.force_full = true;
    Ok(())
}

fn job_time(g: &Group, local: bool) -> NaiveDateTime {
    if local { g.local_now() } else { g.now() }
}

/// `<MarkName>_<yyyy_MM_dd_HH_mm_ss_fff>`
pub fn full_mark(mark: &str, t: NaiveDateTime) -> String {
    format!(
        "{mark}_{}_{:03}",
        t.format("%Y_%m_%d_%H_%M_%S"),
        t.and_utc().timestamp_subsec_millis()
    )
}

fn same_period(freq: &str, a: NaiveDateTime, b: NaiveDateTime) -> bool {
    match freq {
        "h" => a.date() == b.date() && a.hour() == b.hour(),
        "d" => a.date() == b.date(),
        "w" => a.iso_week() == b.iso_week(),
        "m" => a.year() == b.year() && a.month() == b.month(),
        _ => a.year() == b.year(),
    }
}

/// The decision rules of sp_BackupAllFull_Schedule; `Some(reason)` when a full backup is due.
pub fn full_due(
    g: &Group,
    freq: &str,
    force_after_partial: bool,
    hour: Option<i64>,
    local: bool,
) -> Option<&'static str> {
    let m = &g.mgmt;
    if m.force_full {
        return Some("ForceFull flag set");
    }
    if force_after_partial {
        let last_partial = m
            .history
            .iter()
            .filter(|h| !h.set_complete)
            .map(|h| h.backup_set_id)
            .max();
        let last_full = m
            .history
            .iter()
            .filter(|h| h.set_complete && h.backup_type == "db")
            .map(|h| h.backup_set_id)
            .max();
        if let Some(p) = last_partial
            && last_full.is_none_or(|f| f < p)
        {
            return Some("partial set not followed by a full set");
        }
    }
    let fulls: Vec<&HistoryRow> = m.history.iter().filter(|h| h.backup_type == "db").collect();
    if fulls.is_empty() {
        return Some("no full backup in the history");
    }
    let now = job_time(g, local);
    if fulls.iter().any(|h| same_period(freq, h.at, now)) {
        return None;
    }
    if let Some(hh) = hour
        && freq != "h"
    {
        let hh = if (0..=23).contains(&hh) { hh } else { 0 };
        if i64::from(g.local_now().hour()) != hh {
            return None;
        }
    }
    Some("first run in a new period")
}

pub fn backup_full_schedule(ctx: &mut Ctx, a: &Args) -> R<()> {
    let freq = a.text("Frequency").unwrap_or_default().to_lowercase();
    if !["h", "d", "w", "m", "y"].contains(&freq.as_str()) {
        return Err(Fail::one(
            50000,
            "Unknown value for the parameter @Frequency",
        ));
    }
    let local = a.flag("UseLocalTime");
    if full_due(
        ctx.g,
        &freq,
        a.flag("ForceFullBackupAfterPartialSetFailure"),
        a.int("BackupHour"),
        local,
    )
    .is_none()
    {
        return Ok(());
    }
    full_set(
        ctx,
        &a.text("MarkName").unwrap_or_default(),
        &a.text("BackupPath").unwrap_or_default(),
        local,
    )
}

pub fn backup_full_now(ctx: &mut Ctx, a: &Args) -> R<()> {
    full_set(
        ctx,
        &a.text("MarkName").unwrap_or_default(),
        &a.text("BackupPath").unwrap_or_default(),
        a.flag("UseLocalTime"),
    )
}

/// One `adm_BackupHistory` row: BackupFileLocation is the job's @BackupPath, BackupFileName the
/// file's name (sp_GetFileNameFromFilePath), as sp_MarkAll / sp_BackupAllFull insert them.
#[allow(clippy::too_many_arguments)]
fn add_history(
    g: &mut Group,
    set_id: i64,
    mark: &str,
    server: &str,
    db: &str,
    path: &str,
    file: &str,
    kind: &str,
    at: NaiveDateTime,
) {
    g.mgmt.next_backup_id += 1;
    let name = match file.rfind(['\\', '/']) {
        Some(i) => file[i + 1..].to_string(),
        None => file.to_string(),
    };
    g.mgmt.history.push(HistoryRow {
        backup_id: g.mgmt.next_backup_id,
        backup_set_id: set_id,
        mark_name: mark.to_string(),
        database_name: db.to_string(),
        server_name: server.to_string(),
        file_name: name,
        file_location: path.to_string(),
        backup_type: kind.to_string(),
        at,
        set_complete: false,
    });
}

/// A history row's file: BackupFileLocation, the separator sp_BackupBizTalk uses ('/' when the
/// location starts with `http`, else '\\') unless it ends with one, then BackupFileName.
pub fn join_location(loc: &str, name: &str) -> String {
    let sep = if loc.is_empty() || loc.ends_with('\\') || loc.ends_with('/') {
        ""
    } else if loc.trim_start().starts_with("http") {
        "/"
    } else {
        "\\"
    };
    format!("{loc}{sep}{name}")
}

fn complete_set(g: &mut Group, set_id: i64) {
    for h in g
        .mgmt
        .history
        .iter_mut()
        .filter(|h| h.backup_set_id == set_id)
    {
        h.set_complete = true;
    }
}

fn check_path(path: &str) -> R<()> {
    if path.trim().is_empty() {
        return Err(Fail::one(50000, "The backup path (@BackupPath) is empty."));
    }
    Ok(())
}

/// Simulated activity since the last backup: every database's log grows.
pub fn activity(g: &mut Group) {
    let dbs = g.backup_databases();
    for (server, db) in dbs {
        if let Some(i) = g.find_instance(&server)
            && let Some(d) = g.instances[i].db_mut(&db)
        {
            d.lsn += 500;
        }
    }
}

/// Fails the backup of a database on `g.faults.unreachable_server` as a network error would
/// (a partial set: sp_BackupAllFull / sp_MarkAll stop at the first failure, `goto FAILED`).
fn unreachable(g: &Group, server: &str, file: &str) -> R<()> {
    match &g.faults.unreachable_server {
        Some(s) if s.eq_ignore_ascii_case(server) => Err(Fail::one(
            3201,
            format!(
                "Cannot open backup device '{file}'. Operating system error 64(The specified network name is no longer available.)."
            ),
        )),
        _ => Ok(()),
    }
}

/// The databases in the order BizTalk 2020's cursor reads `admv_BackupDatabases`
/// (sp_MarkAll: `ORDER BY ServerName`; sp_BackupAllFull has no ORDER BY: the same order here).
fn cursor_order(g: &Group) -> Vec<(String, String)> {
    let mut dbs = g.backup_databases();
    dbs.sort_by_key(|(s, _)| s.to_lowercase());
    dbs
}

/// sp_BackupAllFull (BTS_Administration_Logic.sql): one `adm_BackupHistory` row per database
/// after its backup succeeded (MarkName NULL, BackupFileLocation = @BackupPath), SetComplete = 1
/// for the set only when every database succeeded.
fn full_set(ctx: &mut Ctx, mark: &str, path: &str, local: bool) -> R<()> {
    check_path(path)?;
    let g = &mut *ctx.g;
    activity(g);
    let at = job_time(g, local);
    let fm = full_mark(mark, at);
    g.mgmt.next_set_id += 1;
    let set_id = g.mgmt.next_set_id;
    for (server, db) in cursor_order(g) {
        let Some(inst) = g.find_instance(&server) else {
            return Err(Fail::one(
                7202,
                format!("Could not find server '{server}' in sys.servers."),
            ));
        };
        // The file is named by the instance's own SERVERPROPERTY('servername'), not the
        // configured name (sp_BackupBizTalkFull).
        let real = g.instances[inst].server_name.clone();
        let file = biztalk_file(path, &real, &db, "Full", &fm);
        let compress = g.mgmt.use_compression && !db.eq_ignore_ascii_case("SSODB");
        unreachable(g, &server, &file)?;
        write_backup(
            g,
            inst,
            &db,
            false,
            &file,
            compress,
            false,
            &format!("{db}_Full_{fm}"),
        )?;
        add_history(g, set_id, &fm, &server, &db, path, &file, "db", at);
    }
    complete_set(g, set_id);
    g.mgmt.force_full = false;
    Ok(())
}

pub fn mark_all(ctx: &mut Ctx, a: &Args) -> R<()> {
    let mark = a.text("MarkName").unwrap_or_default();
    let path = a.text("BackupPath").unwrap_or_default();
    check_path(&path)?;
    let local = a.flag("UseLocalTime");
    let g = &mut *ctx.g;
    activity(g);
    let at = job_time(g, local);
    let fm = full_mark(&mark, at);
    let dbs = g.backup_databases();
    // Phase 1: the marked transaction in every database (MarkLog row + logmarkhistory).
    for (server, db) in &dbs {
        let Some(inst) = g.find_instance(server) else {
            return Err(Fail::one(
                7202,
                format!("Could not find server '{server}' in sys.servers."),
            ));
        };
        let now = g.now();
        let i = &mut g.instances[inst];
        let Some(d) = i.db_mut(db) else {
            return Err(Fail::one(
                911,
                format!(
                    "Database '{db}' does not exist. Make sure that the name is entered correctly."
                ),
            ));
        };
        d.lsn += 10;
        let lsn = d.lsn;
        d.marklog.push(MarkRow {
            mark_name: fm.clone(),
            at: now,
            lsn,
        });
        let name = d.name.clone();
        i.msdb.logmarks.push(LogMark {
            database_name: name,
            mark_name: fm.clone(),
            description: String::new(),
            user_name: i.agent_account.clone(),
            lsn,
            mark_time: now,
        });
    }
    // Phase 2: BACKUP LOG of each database into the new set, in the cursor's order; the
    // history row follows each successful backup (sp_MarkAll).
    g.mgmt.next_set_id += 1;
    let set_id = g.mgmt.next_set_id;
    for (server, db) in cursor_order(g) {
        let inst = g.find_instance(&server).unwrap_or(0);
        let real = g.instances[inst].server_name.clone();
        let file = biztalk_file(&path, &real, &db, "Log", &fm);
        let compress = g.mgmt.use_compression && !db.eq_ignore_ascii_case("SSODB");
        unreachable(g, &server, &file)?;
        write_backup(
            g,
            inst,
            &db,
            true,
            &file,
            compress,
            false,
            &format!("{db}_Log_{fm}"),
        )?;
        add_history(g, set_id, &fm, &server, &db, &path, &file, "lg", at);
    }
    complete_set(g, set_id);
    Ok(())
}

fn cutoff(ctx: &Ctx, a: &Args) -> NaiveDateTime {
    let days = a.int("DaysToKeep").unwrap_or(14).max(1);
    job_time(ctx.g, a.flag("UseLocalTime")) - Duration::days(days)
}

pub fn delete_history(ctx: &mut Ctx, a: &Args) -> R<()> {
    let before = cutoff(ctx, a);
    ctx.g.mgmt.history.retain(|h| h.at >= before);
    let dbs = ctx.g.backup_databases();
    for (server, db) in dbs {
        if let Some(i) = ctx.g.find_instance(&server)
            && let Some(d) = ctx.g.instances[i].db_mut(&db)
        {
            d.marklog.retain(|m| m.at >= before);
        }
    }
    Ok(())
}

pub fn delete_history_and_files(ctx: &mut Ctx, a: &Args) -> R<()> {
    let before = cutoff(ctx, a);
    let old: Vec<String> = ctx
        .g
        .mgmt
        .history
        .iter()
        .filter(|h| h.at < before)
        .map(|h| super::media::file_key(&join_location(&h.file_location, &h.file_name)))
        .collect();
    for k in old {
        ctx.g.files.remove(&k);
    }
    delete_history(ctx, a)
}

pub fn get_backup_databases(ctx: &mut Ctx, a: &Args) -> R<()> {
    let filter = a.text("ServerName");
    let rows = ctx
        .g
        .backup_databases()
        .into_iter()
        .filter(|(s, _)| filter.as_ref().is_none_or(|f| f.eq_ignore_ascii_case(s)))
        .map(|(s, d)| vec![text(s), text(d)])
        .collect();
    ctx.b.out.push(Reply::Rows(ResultSet {
        not_kept: 0,
        columns: vec![
            Column {
                name: "ServerName".into(),
                type_name: "nvarchar".into(),
            },
            Column {
                name: "DatabaseName".into(),
                type_name: "nvarchar".into(),
            },
        ],
        rows,
    }));
    Ok(())
}

pub fn get_backup_history(ctx: &mut Ctx, a: &Args) -> R<()> {
    let after = a.int("LastBackupSetId").unwrap_or(0);
    let rows = ctx
        .g
        .mgmt
        .history
        .iter()
        .filter(|h| h.backup_set_id > after)
        .map(|h| h.values())
        .collect();
    let cols = [
        "BackupId",
        "BackupSetId",
        "MarkName",
        "DatabaseName",
        "ServerName",
        "BackupFileName",
        "BackupFileLocation",
        "BackupType",
        "BackupDateTime",
        "SetComplete",
    ];
    let types = [
        "bigint", "bigint", "nvarchar", "nvarchar", "nvarchar", "nvarchar", "nvarchar", "char",
        "datetime", "bit",
    ];
    ctx.b.out.push(Reply::Rows(ResultSet {
        not_kept: 0,
        columns: cols
            .iter()
            .zip(types)
            .map(|(c, t)| Column {
                name: c.to_string(),
                type_name: t.to_string(),
            })
            .collect(),
        rows,
    }));
    Ok(())
}
