//! The BizTalk log-shipping destination: configuration, and the three SQL Agent jobs (Get
//! Backup History, Restore Databases, Restore To Mark) that copy the source's backup
//! history and restore its files. Procedure names of the job steps are the simulator's own
//! (the real LogShipping_Destination_Logic.sql is not public).

use std::collections::BTreeMap;

use super::exec::{Ctx, ErrMsg, Fail, R};
use super::media::{RestoreKind, RestoreOpts, apply_restore, plan_restore};
use super::procs::Args;
use super::state::{DbState, InstanceId, LsDatabase, LsHistory};
use super::{jobs, tables};

pub const JOB_GET_HISTORY: &str = "BTS Log Shipping Get Backup History";
pub const JOB_RESTORE: &str = "BTS Server Log Shipping Restore Databases";
pub const JOB_TO_MARK: &str = "BTS Log Shipping Restore To Mark";

fn must_be_destination(ctx: &Ctx) -> R<()> {
    if !tables::is_destination(ctx) {
        return Err(Fail::one(
            50000,
            "btsdr simulator: log shipping can only be configured on the destination instance",
        ));
    }
    Ok(())
}

pub fn configure(ctx: &mut Ctx, a: &Args) -> R<()> {
    must_be_destination(ctx)?;
    if ctx
        .instance()
        .config("Ad Hoc Distributed Queries")
        .is_none_or(|c| c.value_in_use != 1)
    {
        return Err(Fail::one(
            15281,
            "SQL Server blocked access to STATEMENT 'OpenRowset/OpenDatasource' of component 'Ad Hoc Distributed Queries' because this component is turned off as part of the security configuration for this server. A system administrator can enable the use of 'Ad Hoc Distributed Queries' by using sp_configure. For more information about enabling 'Ad Hoc Distributed Queries', search for 'Ad Hoc Distributed Queries' in SQL Server Books Online.",
        ));
    }
    let server = a.text("nvcMgmtServerName").unwrap_or_default();
    let db = a.text("nvcMgmtDatabaseName").unwrap_or_default();
    let mgmt_inst = ctx.g.mgmt.instance;
    let mgmt_server = ctx.g.instances[mgmt_inst].server_name.clone();
    if !server.eq_ignore_ascii_case(&mgmt_server) {
        return Err(Fail::one(
            53,
            format!(
                "Named Pipes Provider: Could not open a connection to SQL Server [53]. OLE DB provider \"MSOLEDBSQL\" for linked server \"{server}\" returned message \"Login timeout expired\"."
            ),
        ));
    }
    if !db.eq_ignore_ascii_case(&ctx.g.mgmt.db_name) {
        return Err(Fail::one(
            4060,
            format!("Cannot open database \"{db}\" requested by the login. The login failed."),
        ));
    }
    let filter = a.text("SourceServerName").filter(|s| !s.is_empty());
    let dbs: Vec<LsDatabase> = ctx
        .g
        .backup_databases()
        .into_iter()
        .filter(|(s, _)| filter.as_ref().is_none_or(|f| f.eq_ignore_ascii_case(s)))
        .map(|(s, d)| LsDatabase {
            database_name: d,
            server_name: s,
            db_file_location: None,
            log_file_location: None,
        })
        .collect();
    let desc = a.text("nvcDescription").unwrap_or_default();
    let ls = &mut ctx.instance_mut().log_shipping;
    ls.configured = true;
    ls.description = desc;
    ls.mgmt_server = mgmt_server;
    ls.mgmt_db = db;
    ls.source_filter = filter;
    ls.databases = dbs;
    let inst = ctx.inst;
    jobs::ensure_ls_jobs(ctx.g, inst);
    Ok(())
}

pub fn clean(ctx: &mut Ctx, a: &Args) -> R<()> {
    must_be_destination(ctx)?;
    let filter = a.text("SourceServerName");
    let inst = ctx.instance_mut();
    let names: Vec<String> = inst
        .log_shipping
        .databases
        .iter()
        .filter(|d| {
            filter
                .as_ref()
                .is_none_or(|f| f.eq_ignore_ascii_case(&d.server_name))
        })
        .map(|d| d.database_name.clone())
        .collect();
    inst.databases
        .retain(|d| !names.iter().any(|n| n.eq_ignore_ascii_case(&d.name)));
    inst.log_shipping.last_restore_set = None;
    inst.log_shipping.last_restore_mark = None;
    for h in &mut inst.log_shipping.history {
        h.restored = false;
        h.restored_at = None;
    }
    Ok(())
}

/// Copies new `adm_BackupHistory` rows from the source into `bts_LogShippingHistory`.
pub fn get_history_step(ctx: &mut Ctx, _: &Args) -> R<()> {
    must_be_destination(ctx)?;
    let inst = ctx.inst;
    copy_history(ctx.g, inst);
    Ok(())
}

pub fn copy_history(g: &mut super::state::Group, inst: InstanceId) {
    // Both histories are ordered by BackupId.
    let max = g.instances[inst]
        .log_shipping
        .history
        .last()
        .map_or(0, |h| h.h.backup_id);
    let from = g.mgmt.history.partition_point(|h| h.backup_id <= max);
    let new: Vec<LsHistory> = g.mgmt.history[from..]
        .iter()
        .map(|h| LsHistory {
            h: h.clone(),
            restored: false,
            restored_at: None,
        })
        .collect();
    // Sets that were incomplete when copied may have been completed since.
    let ls_incomplete: Vec<i64> = g.instances[inst]
        .log_shipping
        .history
        .iter()
        .filter(|h| !h.h.set_complete)
        .map(|h| h.h.backup_set_id)
        .collect();
    let complete: Vec<i64> = if ls_incomplete.is_empty() {
        Vec::new()
    } else {
        g.mgmt
            .history
            .iter()
            .filter(|h| h.set_complete && ls_incomplete.contains(&h.backup_set_id))
            .map(|h| h.backup_set_id)
            .collect()
    };
    let ls = &mut g.instances[inst].log_shipping;
    for h in ls.history.iter_mut().filter(|h| !h.h.set_complete) {
        if complete.contains(&h.h.backup_set_id) {
            h.h.set_complete = true;
        }
    }
    ls.history.extend(new);
}

fn file_of(ls: &super::state::LogShipping, h: &super::state::HistoryRow) -> String {
    let over = ls.databases.iter().find(|d| {
        d.database_name.eq_ignore_ascii_case(&h.database_name)
            && d.server_name.eq_ignore_ascii_case(&h.server_name)
    });
    let loc = match (h.backup_type.as_str(), over) {
        ("db", Some(d)) if d.db_file_location.is_some() => {
            d.db_file_location.clone().unwrap_or_default()
        }
        ("lg", Some(d)) if d.log_file_location.is_some() => {
            d.log_file_location.clone().unwrap_or_default()
        }
        _ => h.file_location.clone(),
    };
    super::biztalk::join_location(&loc, &h.file_name)
}

fn in_scope(ls: &super::state::LogShipping, h: &super::state::HistoryRow) -> bool {
    ls.databases.iter().any(|d| {
        d.database_name.eq_ignore_ascii_case(&h.database_name)
            && d.server_name.eq_ignore_ascii_case(&h.server_name)
    })
}

/// Pending sets (not restored, in scope), ascending: set id -> row indexes.
fn pending(ls: &super::state::LogShipping) -> BTreeMap<i64, Vec<usize>> {
    let mut sets: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    let from = ls.last_restore_set.map_or(0, |l| {
        ls.history.partition_point(|h| h.h.backup_set_id <= l)
    });
    for (i, h) in ls.history.iter().enumerate().skip(from) {
        if !h.restored && in_scope(ls, &h.h) {
            sets.entry(h.h.backup_set_id).or_default().push(i);
        }
    }
    sets
}

fn restore_rows(ctx: &mut Ctx, rows: &[usize], log: bool, last: Option<&str>) -> R<()> {
    let inst = ctx.inst;
    for &i in rows {
        let (h, file) = {
            let ls = &ctx.instance().log_shipping;
            (ls.history[i].h.clone(), file_of(ls, &ls.history[i].h))
        };
        let opts = RestoreOpts {
            recovery: last.is_some(),
            stop_mark: last.map(str::to_string),
            stop_before: false,
            replace: !log,
        };
        let kind = if log {
            RestoreKind::Log
        } else {
            RestoreKind::Full
        };
        let user = ctx.instance().agent_account.clone();
        let plan = plan_restore(
            ctx.g,
            inst,
            &h.database_name,
            kind,
            Some(&file),
            &opts,
            &user,
        )?;
        apply_restore(ctx.g, &plan);
        let now = ctx.g.now();
        let ls = &mut ctx.instance_mut().log_shipping;
        ls.history[i].restored = true;
        ls.history[i].restored_at = Some(now);
    }
    Ok(())
}

fn set_done(ctx: &mut Ctx, set_id: i64, mark: &str) {
    let now = ctx.g.now();
    let ls = &mut ctx.instance_mut().log_shipping;
    ls.last_restore_set = Some(set_id);
    ls.last_restore_mark = Some(mark.to_string());
    ls.last_restore_at = Some(now);
}

/// Restores every complete pending set except the newest log set.
pub fn restore_databases_step(ctx: &mut Ctx, _: &Args) -> R<()> {
    must_be_destination(ctx)?;
    if ctx.g.faults.restore_failing {
        let ls = &ctx.instance().log_shipping;
        let next = pending(ls)
            .into_iter()
            .next()
            .and_then(|(_, rows)| rows.first().map(|&i| file_of(ls, &ls.history[i].h)));
        if let Some(f) = next {
            return Err(Fail(vec![
                ErrMsg::new(
                    3201,
                    format!(
                        "Cannot open backup device '{f}'. Operating system error 5(Access is denied.)."
                    ),
                ),
                ErrMsg::new(3013, "RESTORE LOG is terminating abnormally."),
            ]));
        }
        return Ok(());
    }
    let sets = pending(&ctx.instance().log_shipping);
    let newest_log = {
        let ls = &ctx.instance().log_shipping;
        ls.history
            .iter()
            .rev()
            .find(|h| h.h.backup_type == "lg" && h.h.set_complete && in_scope(ls, &h.h))
            .map(|h| h.h.backup_set_id)
    };
    let mut broken = false;
    let ids: Vec<i64> = sets.keys().copied().collect();
    for (n, set_id) in ids.iter().enumerate() {
        let rows = &sets[set_id];
        let (complete, kind, mark) = {
            let ls = &ctx.instance().log_shipping;
            let first = &ls.history[rows[0]].h;
            (
                rows.iter().all(|&i| ls.history[i].h.set_complete),
                first.backup_type.clone(),
                first.mark_name.clone(),
            )
        };
        if !complete {
            broken = true;
            continue;
        }
        if kind == "db" {
            restore_rows(ctx, rows, false, None)?;
            set_done(ctx, *set_id, &mark);
            broken = false;
            continue;
        }
        if Some(*set_id) == newest_log {
            break;
        }
        let needs_full = {
            let inst = ctx.instance();
            let ls = &inst.log_shipping;
            rows.iter().any(|&i| {
                inst.db(&ls.history[i].h.database_name)
                    .is_none_or(|d| d.state != DbState::Restoring || d.restored_to.is_none())
            })
        };
        if broken || needs_full {
            let later_full = ids[n + 1..].iter().any(|s| {
                let ls = &ctx.instance().log_shipping;
                sets[s].iter().all(|&i| ls.history[i].h.set_complete)
                    && ls.history[sets[s][0]].h.backup_type == "db"
            });
            if later_full {
                continue;
            }
            return Err(Fail::one(
                50000,
                format!(
                    "Backup set {set_id} cannot be restored: an earlier backup set is incomplete (partial) or no full backup has been restored. Waiting for the next complete full backup set (force one on the source with sp_ForceFullBackup)."
                ),
            ));
        }
        restore_rows(ctx, rows, true, None)?;
        set_done(ctx, *set_id, &mark);
    }
    Ok(())
}

/// Restores the remaining log sets, the last one to its mark WITH RECOVERY, and recreates the
/// source's SQL Agent jobs.
pub fn restore_to_mark_step(ctx: &mut Ctx, _: &Args) -> R<()> {
    must_be_destination(ctx)?;
    if ctx.g.faults.restore_to_mark_fails {
        return Err(Fail::one(
            4305,
            "The log in this backup set begins at LSN 1000500000000001, which is too recent to apply to the database. An earlier log backup that includes LSN 1000400000000001 can be restored. RESTORE LOG is terminating abnormally.",
        ));
    }
    let sets = pending(&ctx.instance().log_shipping);
    // Newest complete log set whose mark is in every database's log file.
    let target = {
        let g = &*ctx.g;
        let ls = &g.instances[ctx.inst].log_shipping;
        sets.iter()
            .rev()
            .filter(|(_, rows)| {
                rows.iter()
                    .all(|&i| ls.history[i].h.set_complete && ls.history[i].h.backup_type == "lg")
            })
            .find(|(_, rows)| {
                rows.iter().all(|&i| {
                    let h = &ls.history[i].h;
                    g.files
                        .get(&super::media::file_key(&file_of(ls, h)))
                        .is_some_and(|f| {
                            f.marks
                                .iter()
                                .any(|(m, _, _)| m.eq_ignore_ascii_case(&h.mark_name))
                        })
                }) && rows.len() == ls.databases.len()
            })
            .map(|(id, _)| *id)
    };
    let Some(target) = target else {
        return Err(Fail::one(
            50000,
            "No complete log backup set with a mark in every database is waiting to be restored: nothing to restore to. Check bts_LogShippingHistory and the Restore Databases job.",
        ));
    };
    for (set_id, rows) in &sets {
        if *set_id > target {
            break;
        }
        let (complete, kind, mark) = {
            let ls = &ctx.instance().log_shipping;
            let first = &ls.history[rows[0]].h;
            (
                rows.iter().all(|&i| ls.history[i].h.set_complete),
                first.backup_type.clone(),
                first.mark_name.clone(),
            )
        };
        if !complete {
            continue;
        }
        if kind == "db" {
            restore_rows(ctx, rows, false, None)?;
        } else if *set_id == target {
            restore_rows(ctx, rows, true, Some(&mark))?;
        } else {
            restore_rows(ctx, rows, true, None)?;
        }
        set_done(ctx, *set_id, &mark);
    }
    let inst = ctx.inst;
    jobs::copy_source_jobs(ctx.g, inst);
    Ok(())
}
