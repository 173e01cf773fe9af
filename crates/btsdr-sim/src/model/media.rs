//! BACKUP and RESTORE: writing files to the simulated share, SQL Server's log-chain rules on
//! restore, and the msdb history both leave behind.

use chrono::NaiveDateTime;

use super::exec::{Ctx, ErrMsg, Fail, LongWork, R, Scope};
use super::parse::{BackupStmt, Expr, RestoreStmt};
use super::state::{
    BackupFile, BackupSet, Database, DbState, Group, InstanceId, MarkRow, RestoreHistory,
};
use super::value::{as_text, dt, int, text};
use crate::backend::Reply;
use btsdr_types::{Column, ResultSet, Value};

fn terminating(kind: &str) -> ErrMsg {
    ErrMsg::new(3013, format!("{kind} is terminating abnormally."))
}

/// The key files are stored under: case-insensitive, one kind of slash.
pub fn file_key(path: &str) -> String {
    path.trim().replace('/', "\\").to_lowercase()
}

/// `<path>\<server>_<db>_<Full|Log>_<mark>.bak`, as the BizTalk procedures name files.
pub fn biztalk_file(path: &str, server: &str, db: &str, kind: &str, mark: &str) -> String {
    let url = path.starts_with("https://") || path.starts_with("http://");
    let sep = if url { "/" } else { "\\" };
    let joiner = if path.ends_with('\\') || path.ends_with('/') {
        ""
    } else {
        sep
    };
    format!(
        "{path}{joiner}{}_{db}_{kind}_{mark}.bak",
        server.replace('\\', "_")
    )
}

/// Writes one backup of `db` on instance `inst`; on success records msdb history and returns the file.
#[allow(clippy::too_many_arguments)]
// TODO(issue 16): split (header, file list and media set writing).
#[allow(clippy::too_many_lines)]
pub fn write_backup(
    g: &mut Group,
    inst: InstanceId,
    db: &str,
    log: bool,
    device: &str,
    compress: bool,
    checksum: bool,
    name: &str,
) -> Result<BackupFile, Fail> {
    let what = if log { "BACKUP LOG" } else { "BACKUP DATABASE" };
    let now = g.now();
    let server = g.instances[inst].server_name.clone();
    let Some(d) = g.instances[inst].db(db).map(Database::without_marklog) else {
        return Err(Fail(vec![
            ErrMsg::new(
                911,
                format!(
                    "Database '{db}' does not exist. Make sure that the name is entered correctly."
                ),
            ),
            terminating(what),
        ]));
    };
    if d.state != DbState::Online {
        return Err(Fail(vec![
            ErrMsg::new(
                927,
                format!(
                    "Database '{}' cannot be opened. It is in the middle of a restore.",
                    d.name
                ),
            ),
            terminating(what),
        ]));
    }
    if device.contains('<')
        || device.contains('>')
        || device.contains('|')
        || device.trim().is_empty()
    {
        return Err(Fail(vec![
            ErrMsg::new(
                3201,
                format!(
                    "Cannot open backup device '{device}'. Operating system error 123(The filename, directory name, or volume label syntax is incorrect.)."
                ),
            ),
            terminating(what),
        ]));
    }
    if log && d.recovery.desc() == "SIMPLE" {
        return Err(Fail(vec![
            ErrMsg::new(
                4208,
                "The statement BACKUP LOG is not allowed while the recovery model is SIMPLE. Use BACKUP DATABASE or change the recovery model using ALTER DATABASE.",
            ),
            terminating(what),
        ]));
    }
    if log && d.log_backed_to.is_none() {
        return Err(Fail(vec![
            ErrMsg::new(
                4214,
                "BACKUP LOG cannot be performed because there is no current database backup.",
            ),
            terminating(what),
        ]));
    }
    if g.faults.share_full {
        return Err(Fail(vec![
            ErrMsg::new(
                3202,
                format!(
                    "Write on \"{device}\" failed: 112(There is not enough space on the disk.)"
                ),
            ),
            terminating(what),
        ]));
    }
    let (first, last, dblsn) = if log {
        let from = d.log_backed_to.unwrap_or(d.lsn);
        (from, d.lsn.max(from + 1), from)
    } else {
        (d.lsn, d.lsn + 1, d.lsn)
    };
    let marks: Vec<(String, u64, NaiveDateTime)> = if log {
        g.instances[inst]
            .msdb
            .logmarks
            .iter()
            .filter(|m| {
                m.database_name.eq_ignore_ascii_case(&d.name) && m.lsn > first && m.lsn <= last
            })
            .map(|m| (m.mark_name.clone(), m.lsn, m.mark_time))
            .collect()
    } else {
        Vec::new()
    };
    let size_mb = if log {
        (d.size_mb / 50).max(1)
    } else {
        d.size_mb
    };
    let file = BackupFile {
        path: device.to_string(),
        database_name: d.name.clone(),
        server_name: server.clone(),
        kind: if log { 'L' } else { 'D' },
        first_lsn: first,
        last_lsn: last,
        database_backup_lsn: dblsn,
        marks,
        start: now,
        finish: now,
        damaged: false,
        size_mb,
        compressed: compress,
        has_checksums: checksum,
    };
    {
        let inst_ref = &mut g.instances[inst];
        if let Some(dm) = inst_ref.db_mut(db) {
            if log {
                dm.log_backed_to = Some(last);
            } else if dm.log_backed_to.is_none() {
                dm.log_backed_to = Some(first);
            }
            dm.lsn = last + 1;
        }
        let id = inst_ref.msdb.new_id();
        inst_ref.msdb.backupsets.push(BackupSet {
            backup_set_id: id,
            media_set_id: id,
            database_name: d.name.clone(),
            server_name: server,
            kind: file.kind,
            start: now,
            finish: now,
            first_lsn: first,
            last_lsn: last,
            database_backup_lsn: dblsn,
            is_damaged: false,
            has_checksums: checksum,
            size_bytes: (size_mb * 1024 * 1024) as i64,
            compressed: compress,
            device: device.to_string(),
            name: name.to_string(),
        });
    }
    g.files.insert(file_key(device), file.clone());
    Ok(file)
}

fn opt<'a>(opts: &'a [(String, Option<Expr>)], name: &str) -> Option<&'a Option<Expr>> {
    opts.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn eval_text(ctx: &mut Ctx, e: &Expr) -> R<String> {
    Ok(as_text(&ctx.eval(e, &Scope::EMPTY)?).unwrap_or_default())
}

/// `BACKUP DATABASE|LOG x TO DISK = ...`
pub fn backup(ctx: &mut Ctx, b: &BackupStmt) -> R<()> {
    let db = eval_text(ctx, &b.database)?;
    let Some(target) = b.targets.first() else {
        return Err(Fail::one(102, "Incorrect syntax near 'TO'."));
    };
    let device = eval_text(ctx, target)?;
    let compress = opt(&b.options, "COMPRESSION").is_some();
    let checksum = opt(&b.options, "CHECKSUM").is_some();
    let name = match opt(&b.options, "NAME") {
        Some(Some(e)) => eval_text(ctx, e)?,
        _ => String::new(),
    };
    let inst = ctx.inst;
    let f = write_backup(ctx.g, inst, &db, b.log, &device, compress, checksum, &name)?;
    let pages = f.size_mb * 128;
    let what = if b.log {
        "BACKUP LOG"
    } else {
        "BACKUP DATABASE"
    };
    ctx.b.out.push(Reply::Info {
        number: 4035,
        message: format!(
            "Processed {pages} pages for database '{}', file '{}' on file 1.",
            f.database_name, f.database_name
        ),
    });
    ctx.b.out.push(Reply::Info {
        number: 3014,
        message: format!(
            "{what} successfully processed {pages} pages in 1.000 seconds ({}.000 MB/sec).",
            f.size_mb
        ),
    });
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RestoreKind {
    Full,
    Log,
    RecoverOnly,
}

/// A validated RESTORE waiting to be applied.
#[derive(Debug, Clone)]
pub struct RestorePlan {
    pub inst: InstanceId,
    pub database: String,
    pub kind: RestoreKind,
    pub file: Option<BackupFile>,
    pub recovery: bool,
    pub stop_mark: Option<String>,
    pub stop_before: bool,
    pub replace: bool,
    pub user: String,
    pub size_mb: u64,
}

impl RestorePlan {
    pub fn command(&self) -> &'static str {
        match self.kind {
            RestoreKind::Full => "RESTORE DATABASE",
            RestoreKind::Log => "RESTORE LOG",
            RestoreKind::RecoverOnly => "RESTORE DATABASE",
        }
    }
}

fn cannot_open(device: &str, what: &str) -> Fail {
    Fail(vec![
        ErrMsg::new(
            3201,
            format!(
                "Cannot open backup device '{device}'. Operating system error 2(The system cannot find the file specified.)."
            ),
        ),
        terminating(what),
    ])
}

/// Checks a RESTORE DATABASE/LOG against the files and the database's restore state.
pub fn plan_restore(
    g: &mut Group,
    inst: InstanceId,
    db: &str,
    kind: RestoreKind,
    device: Option<&str>,
    opts: &RestoreOpts,
    user: &str,
) -> R<RestorePlan> {
    let what = match kind {
        RestoreKind::Log => "RESTORE LOG",
        _ => "RESTORE DATABASE",
    };
    let existing = g.instances[inst].db(db).map(Database::without_marklog);
    let file = match device {
        Some(dev) => {
            let Some(f) = g.files.get(&file_key(dev)).cloned() else {
                return Err(cannot_open(dev, what));
            };
            if f.damaged {
                return Err(Fail(vec![
                    ErrMsg::new(
                        3183,
                        format!(
                            "RESTORE detected an error on page (1:4172) in database \"{}\" as read from the backup set.",
                            f.database_name
                        ),
                    ),
                    terminating(what),
                ]));
            }
            Some(f)
        }
        None => None,
    };
    let fail = |n: u32, m: String| Err(Fail(vec![ErrMsg::new(n, m), terminating(what)]));
    match kind {
        RestoreKind::RecoverOnly => match &existing {
            None => return fail(911, format!("Database '{db}' does not exist. Make sure that the name is entered correctly.")),
            Some(d) if d.state != DbState::Restoring => return fail(3153, "The database is already fully recovered.".into()),
            Some(d) if d.restored_to.is_none() => return fail(3117, "The log or differential backup cannot be restored because no files are ready to rollforward.".into()),
            _ => {}
        },
        RestoreKind::Full => {
            let Some(f) = &file else { return fail(3013, "RESTORE DATABASE needs FROM DISK".into()) };
            if f.kind != 'D' {
                return fail(3241, format!("The media family on device '{}' is incorrectly formed: it holds a log backup, not a database backup. SQL Server cannot process this media family.", f.path));
            }
            if let Some(d) = &existing {
                if !f.database_name.eq_ignore_ascii_case(&d.name) && !opts.replace {
                    return fail(3154, format!("The backup set holds a backup of a database other than the existing '{}' database.", d.name));
                }
                if d.state == DbState::Online && !opts.replace {
                    return fail(3159, format!("The tail of the log for the database \"{}\" has not been backed up. Use BACKUP LOG WITH NORECOVERY to backup the log if it contains work you do not want to lose. Use the WITH REPLACE or WITH STOPAT clause of the RESTORE statement to just overwrite the contents of the log.", d.name));
                }
            }
        }
        RestoreKind::Log => {
            let Some(f) = &file else { return fail(3013, "RESTORE LOG needs FROM DISK".into()) };
            if f.kind != 'L' {
                return fail(4326, format!("The file '{}' holds a database backup, not a log backup. Use RESTORE DATABASE.", f.path));
            }
            let Some(d) = &existing else {
                return fail(3117, "The log or differential backup cannot be restored because no files are ready to rollforward.".into());
            };
            let Some(at) = d.restored_to.filter(|_| d.state == DbState::Restoring) else {
                return fail(3117, "The log or differential backup cannot be restored because no files are ready to rollforward.".into());
            };
            if !f.database_name.eq_ignore_ascii_case(&d.name) {
                return fail(3154, format!("The backup set holds a backup of a database other than the existing '{}' database.", d.name));
            }
            if f.first_lsn > at {
                return fail(4305, format!("The log in this backup set begins at LSN {}, which is too recent to apply to the database. An earlier log backup that includes LSN {at} can be restored.", f.first_lsn));
            }
            if f.last_lsn <= at {
                return fail(4326, format!("The log in this backup set terminates at LSN {}, which is too early to apply to the database. A more recent log backup that includes LSN {at} can be restored.", f.last_lsn));
            }
        }
    }
    let size_mb = file.as_ref().map_or(1, |f| f.size_mb);
    Ok(RestorePlan {
        inst,
        database: existing.map_or_else(|| db.to_string(), |d| d.name),
        kind,
        file,
        recovery: opts.recovery,
        stop_mark: opts.stop_mark.clone(),
        stop_before: opts.stop_before,
        replace: opts.replace,
        user: user.to_string(),
        size_mb,
    })
}

/// Marks the start of a restore: a full restore puts the database in RESTORING at once (an
/// interrupted restore leaves it there, as SQL Server does).
pub fn begin_restore(g: &mut Group, plan: &RestorePlan) {
    if plan.kind == RestoreKind::Full {
        let inst = &mut g.instances[plan.inst];
        if let Some(d) = inst.db_mut(&plan.database) {
            d.state = DbState::Restoring;
            d.restored_to = None;
        } else {
            inst.next_db_id += 1;
            let mut d = Database::new(inst.next_db_id, &plan.database, plan.size_mb);
            d.state = DbState::Restoring;
            d.has_marklog = true;
            inst.databases.push(d);
        }
    }
}

/// The source's marks a restored copy takes: the ones after those it already holds, or all.
enum Marks {
    Append(Vec<MarkRow>),
    Replace(Vec<MarkRow>),
}

/// Applies a planned restore and records msdb.restorehistory; returns the informational messages.
// TODO(issue 16): split (per backup type (full, differential, log)).
#[allow(clippy::too_many_lines)]
pub fn apply_restore(g: &mut Group, plan: &RestorePlan) -> Vec<Reply> {
    begin_restore(g, plan);
    let now = g.now();
    let mut out = Vec::new();
    // What the copy takes from its source: the settings, and the source's marks. Log
    // shipping restores every 15 minutes, so a month of marks must not be copied each time:
    // when the copy already holds a prefix of the source's marks, only the rest is taken.
    let held: &[MarkRow] = g.instances[plan.inst]
        .db(&plan.database)
        .map_or(&[], |d| d.marklog.as_slice());
    let src: Option<(Database, Marks)> = plan.file.as_ref().and_then(|f| {
        let i = g.find_instance(&f.server_name)?;
        let s = g.instances[i].db(&f.database_name)?;
        let marks = match s.marklog.strip_prefix(held) {
            Some(rest) => Marks::Append(rest.to_vec()),
            None => Marks::Replace(s.marklog.clone()),
        };
        Some((s.without_marklog(), marks))
    });
    let is_mgmt = plan
        .file
        .as_ref()
        .is_some_and(|f| f.database_name.eq_ignore_ascii_case(&g.mgmt.db_name))
        && plan.inst != g.mgmt.instance;
    // The management database's contents matter only once the copy is recovered.
    let may_recover = plan.recovery || matches!(plan.kind, RestoreKind::RecoverOnly);
    let mgmt_copy = if is_mgmt && may_recover {
        Some(g.mgmt.clone())
    } else {
        None
    };
    let inst = &mut g.instances[plan.inst];
    let Some(d) = inst.db_mut(&plan.database) else {
        return out;
    };
    let mut recovered = false;
    let mut stop_mark_used = None;
    match plan.kind {
        RestoreKind::RecoverOnly => {
            d.state = DbState::Online;
            recovered = true;
        }
        RestoreKind::Full => {
            let f = plan.file.as_ref();
            d.restored_to = f.map(|f| f.last_lsn);
            d.lsn = f.map_or(d.lsn, |f| f.last_lsn + 1);
            d.size_mb = plan.size_mb.max(d.size_mb);
            if plan.recovery {
                d.state = DbState::Online;
                recovered = true;
            }
        }
        RestoreKind::Log => {
            let Some(f) = plan.file.as_ref() else {
                return out;
            };
            match &plan.stop_mark {
                Some(m) => match f.marks.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(m)) {
                    Some((name, lsn, _)) => {
                        d.restored_to = Some(if plan.stop_before { lsn - 1 } else { *lsn });
                        d.lsn = lsn + 1;
                        stop_mark_used = Some(name.clone());
                        if plan.recovery {
                            d.state = DbState::Online;
                            recovered = true;
                        }
                    }
                    None => {
                        d.restored_to = Some(f.last_lsn);
                        out.push(Reply::Info {
                            number: 4319,
                            message: "This log file contains records logged before the designated mark. The database is being left in the Restoring state so you can apply another log file.".into(),
                        });
                        stop_mark_used = Some(m.clone());
                    }
                },
                None => {
                    d.restored_to = Some(f.last_lsn);
                    d.lsn = f.last_lsn + 1;
                    if plan.recovery {
                        d.state = DbState::Online;
                        recovered = true;
                    }
                }
            }
        }
    }
    if let Some((src, marks)) = src {
        // The copy holds what the source held up to the restored point.
        let upto = d.restored_to.unwrap_or(0);
        match marks {
            Marks::Append(rest) => {
                d.marklog.retain(|m| m.lsn <= upto);
                d.marklog.extend(rest.into_iter().filter(|m| m.lsn <= upto));
            }
            Marks::Replace(all) => {
                d.marklog = all.into_iter().filter(|m| m.lsn <= upto).collect();
            }
        }
        d.users = src.users;
        d.backup_users = src.backup_users;
        d.has_marklog = src.has_marklog;
        d.data_dir = src.data_dir;
        d.log_dir = src.log_dir;
        d.restored_from = Some((
            plan.file
                .as_ref()
                .map(|f| f.server_name.clone())
                .unwrap_or_default(),
            src.name,
        ));
    }
    if recovered {
        d.log_backed_to = None;
        d.recovery = super::state::Recovery::Full;
    }
    let new_mgmt = match mgmt_copy {
        Some(mut m) if recovered => {
            if let Some(cut) = d.marklog.last().map(|x| x.at) {
                m.history.retain(|h| h.at <= cut);
            }
            Some(m)
        }
        _ => None,
    };
    let db_name = d.name.clone();
    if new_mgmt.is_some() {
        inst.restored_mgmt = new_mgmt;
    }
    let server = inst.server_name.clone();
    let m = &mut inst.msdb;
    let set_id = if let Some(f) = &plan.file {
        let id = m.new_id();
        m.backupsets.push(BackupSet {
            backup_set_id: id,
            media_set_id: id,
            database_name: f.database_name.clone(),
            server_name: f.server_name.clone(),
            kind: f.kind,
            start: f.start,
            finish: f.finish,
            first_lsn: f.first_lsn,
            last_lsn: f.last_lsn,
            database_backup_lsn: f.database_backup_lsn,
            is_damaged: false,
            has_checksums: f.has_checksums,
            size_bytes: (f.size_mb * 1024 * 1024) as i64,
            compressed: f.compressed,
            device: f.path.clone(),
            name: String::new(),
        });
        id
    } else {
        0
    };
    let rid = m.new_id();
    m.restores.push(RestoreHistory {
        restore_history_id: rid,
        restore_date: now,
        destination_database_name: db_name.clone(),
        user_name: plan.user.clone(),
        backup_set_id: set_id,
        restore_type: if plan.kind == RestoreKind::Log {
            'L'
        } else {
            'D'
        },
        replace: plan.replace,
        recovery: recovered,
        stop_at_mark_name: stop_mark_used,
        stop_before: plan.stop_before,
    });
    let _ = server;
    let pages = plan.size_mb * 128;
    if plan.kind != RestoreKind::RecoverOnly {
        out.push(Reply::Info {
            number: 4035,
            message: format!(
                "Processed {pages} pages for database '{db_name}', file '{db_name}' on file 1."
            ),
        });
        out.push(Reply::Info {
            number: 3014,
            message: format!("{} successfully processed {pages} pages.", plan.command()),
        });
    } else {
        out.push(Reply::Info {
            number: 3014,
            message:
                "RESTORE DATABASE successfully processed 0 pages in 0.010 seconds (0.000 MB/sec)."
                    .into(),
        });
    }
    out
}

#[derive(Debug, Clone, Default)]
pub struct RestoreOpts {
    pub recovery: bool,
    pub stop_mark: Option<String>,
    pub stop_before: bool,
    pub replace: bool,
}

/// `RESTORE DATABASE|LOG|VERIFYONLY|HEADERONLY|FILELISTONLY`
// TODO(issue 16): split (option checks, plan, apply).
#[allow(clippy::too_many_lines)]
pub fn restore(ctx: &mut Ctx, r: &RestoreStmt) -> R<()> {
    let device = match r.sources.first() {
        Some(e) => Some(eval_text(ctx, e)?),
        None => None,
    };
    match r.kind.as_str() {
        "VERIFYONLY" => {
            let dev = device.unwrap_or_default();
            let Some(f) = ctx.g.files.get(&file_key(&dev)) else {
                return Err(Fail(vec![
                    ErrMsg::new(
                        3201,
                        format!(
                            "Cannot open backup device '{dev}'. Operating system error 2(The system cannot find the file specified.)."
                        ),
                    ),
                    terminating("VERIFY DATABASE"),
                ]));
            };
            if f.damaged {
                return Err(Fail(vec![
                    ErrMsg::new(3189, "Damage to the backup set was detected."),
                    terminating("VERIFY DATABASE"),
                ]));
            }
            ctx.b.out.push(Reply::Info {
                number: 3262,
                message: "The backup set on file 1 is valid.".into(),
            });
            Ok(())
        }
        "HEADERONLY" | "FILELISTONLY" | "LABELONLY" => {
            let dev = device.unwrap_or_default();
            let Some(f) = ctx.g.files.get(&file_key(&dev)).cloned() else {
                return Err(Fail(vec![
                    ErrMsg::new(
                        3201,
                        format!(
                            "Cannot open backup device '{dev}'. Operating system error 2(The system cannot find the file specified.)."
                        ),
                    ),
                    terminating("RESTORE HEADERONLY"),
                ]));
            };
            let rs = if r.kind == "FILELISTONLY" {
                rs(
                    &[
                        ("LogicalName", "nvarchar"),
                        ("PhysicalName", "nvarchar"),
                        ("Type", "nvarchar"),
                        ("Size", "bigint"),
                    ],
                    vec![
                        vec![
                            text(&f.database_name),
                            text(format!("D:\\SQLData\\{}.mdf", f.database_name)),
                            text("D"),
                            int((f.size_mb * 1024 * 1024) as i64),
                        ],
                        vec![
                            text(format!("{}_log", f.database_name)),
                            text(format!("L:\\SQLLogs\\{}_log.ldf", f.database_name)),
                            text("L"),
                            int((f.size_mb * 256 * 1024) as i64),
                        ],
                    ],
                )
            } else {
                // The documented columns the tools read, in the documented order
                // (learn.microsoft.com/sql/t-sql/statements/restore-statements-headeronly-transact-sql).
                // There is no mark column: marks are in msdb.dbo.logmarkhistory on the server
                // that took the backup; BizTalk puts the mark in the file's name.
                rs(
                    &[
                        ("BackupName", "nvarchar"),
                        ("BackupType", "smallint"),
                        ("Compressed", "bit"),
                        ("Position", "smallint"),
                        ("ServerName", "nvarchar"),
                        ("DatabaseName", "nvarchar"),
                        ("BackupSize", "numeric"),
                        ("FirstLSN", "numeric"),
                        ("LastLSN", "numeric"),
                        ("DatabaseBackupLSN", "numeric"),
                        ("BackupStartDate", "datetime"),
                        ("BackupFinishDate", "datetime"),
                        ("HasBackupChecksums", "bit"),
                        ("IsDamaged", "bit"),
                        ("BackupTypeDescription", "nvarchar"),
                    ],
                    vec![vec![
                        Value::Null,
                        int(if f.kind == 'D' { 1 } else { 2 }),
                        Value::Bool(f.compressed),
                        int(1),
                        text(&f.server_name),
                        text(&f.database_name),
                        Value::Decimal((f.size_mb * 1024 * 1024).to_string()),
                        Value::Decimal(f.first_lsn.to_string()),
                        Value::Decimal(f.last_lsn.to_string()),
                        Value::Decimal(f.database_backup_lsn.to_string()),
                        dt(f.start),
                        dt(f.finish),
                        Value::Bool(f.has_checksums),
                        Value::Bool(f.damaged),
                        text(if f.kind == 'D' {
                            "Database"
                        } else {
                            "Transaction Log"
                        }),
                    ]],
                )
            };
            ctx.b.out.push(Reply::Rows(rs));
            Ok(())
        }
        _ => {
            let Some(dbe) = &r.database else {
                return Err(Fail::one(102, "Incorrect syntax near 'RESTORE'."));
            };
            let db = eval_text(ctx, dbe)?;
            let mut o = RestoreOpts {
                recovery: true,
                ..Default::default()
            };
            for (name, v) in &r.options {
                match name.as_str() {
                    "NORECOVERY" | "STANDBY" => o.recovery = false,
                    "RECOVERY" => o.recovery = true,
                    "REPLACE" => o.replace = true,
                    "STOPATMARK" | "STOPBEFOREMARK" => {
                        let m = match v {
                            Some(e) => eval_text(ctx, e)?,
                            None => String::new(),
                        };
                        o.stop_mark = Some(m.strip_prefix("lsn:").map(str::to_string).unwrap_or(m));
                        o.stop_before = name == "STOPBEFOREMARK";
                    }
                    "STOPAT" => {
                        return Err(Fail::one(
                            40100,
                            "btsdr simulator: RESTORE ... STOPAT (point in time) is not simulated: BizTalk databases are restored to a mark (STOPATMARK)",
                        ));
                    }
                    "MOVE"
                    | "STATS"
                    | "CHECKSUM"
                    | "NO_CHECKSUM"
                    | "FILE"
                    | "CONTINUE_AFTER_ERROR"
                    | "BUFFERCOUNT"
                    | "MAXTRANSFERSIZE"
                    | "NOUNLOAD"
                    | "NOREWIND"
                    | "KEEP_REPLICATION"
                    | "ENABLE_BROKER"
                    | "NEW_BROKER"
                    | "ERROR_BROKER_CONVERSATIONS" => {}
                    other => {
                        return Err(Fail::one(
                            40100,
                            format!("btsdr simulator: RESTORE option {other} is not simulated"),
                        ));
                    }
                }
            }
            let kind = match (r.kind.as_str(), &device) {
                ("LOG", _) => RestoreKind::Log,
                (_, None) => RestoreKind::RecoverOnly,
                _ => RestoreKind::Full,
            };
            let inst = ctx.inst;
            let user = ctx.b.login.clone();
            let plan = plan_restore(ctx.g, inst, &db, kind, device.as_deref(), &o, &user)?;
            let long_ok = !ctx.b.in_job && ctx.depth <= 1 && kind != RestoreKind::RecoverOnly;
            if long_ok {
                let gb = plan.size_mb as f64 / 1024.0;
                let secs = (gb * ctx.g.restore_secs_per_gb).max(ctx.g.min_restore_secs);
                let secs = if kind == RestoreKind::Log {
                    secs.min(ctx.g.min_restore_secs.max(0.05) * 2.0)
                } else {
                    secs
                };
                begin_restore(ctx.g, &plan);
                ctx.b.long = Some(LongWork {
                    command: plan.command().to_string(),
                    database: plan.database.clone(),
                    secs,
                    plan,
                });
            } else {
                let replies = apply_restore(ctx.g, &plan);
                ctx.b.out.extend(replies);
            }
            Ok(())
        }
    }
}

/// `master.sys.xp_dirtree @directory, @depth, @file`: the names under a folder of the
/// simulated backup share. xp_dirtree is undocumented; what is modelled is its widely
/// described behaviour (SQL Server 2005 onwards): columns `subdirectory` (the name, not the
/// path), `depth` (1 = directly in the folder) and, when `@file` is not 0, `file` (1 for a
/// file); `@depth` 0 = every level; a folder that does not exist gives no rows, not an error.
/// Unknown here: its parameter names (callers pass them by position).
pub fn dirtree(ctx: &mut Ctx, a: &super::procs::Args) -> R<()> {
    let dir = file_key(&a.text("directory").unwrap_or_default());
    let dir = dir.trim_end_matches('\\').to_string();
    let max = a.int("depth").unwrap_or(0);
    let with_files = a.int("file").unwrap_or(0) != 0;
    let mut entries: std::collections::BTreeMap<(i64, String), bool> = Default::default();
    if !dir.is_empty() {
        for f in ctx.g.files.values() {
            let path = f.path.trim().replace('/', "\\");
            let Some(rest) = path
                .get(..dir.len())
                .filter(|p| p.eq_ignore_ascii_case(&dir))
                .and_then(|_| path.get(dir.len()..))
                .and_then(|r| r.strip_prefix('\\'))
            else {
                continue;
            };
            let parts: Vec<&str> = rest.split('\\').filter(|p| !p.is_empty()).collect();
            for (i, name) in parts.iter().enumerate() {
                let depth = i as i64 + 1;
                if max > 0 && depth > max {
                    break;
                }
                let is_file = i + 1 == parts.len();
                if is_file && !with_files {
                    continue;
                }
                entries.insert((depth, (*name).to_string()), is_file);
            }
        }
    }
    let mut cols = vec![("subdirectory", "nvarchar"), ("depth", "int")];
    if with_files {
        cols.push(("file", "int"));
    }
    let rows = entries
        .into_iter()
        .map(|((depth, name), is_file)| {
            let mut r = vec![text(name), int(depth)];
            if with_files {
                r.push(int(i64::from(is_file)));
            }
            r
        })
        .collect();
    ctx.b.out.push(Reply::Rows(rs(&cols, rows)));
    Ok(())
}

fn rs(cols: &[(&str, &str)], rows: Vec<Vec<Value>>) -> ResultSet {
    ResultSet {
        not_kept: 0,
        columns: cols
            .iter()
            .map(|(n, t)| Column {
                name: n.to_string(),
                type_name: t.to_string(),
            })
            .collect(),
        rows: rows.into(),
    }
}
