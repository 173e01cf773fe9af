//! Stored procedures: a registry of definitions (home database, parameters with types and
//! defaults) and their handlers, which change the group as SQL Server and BizTalk would.

use std::collections::HashMap;

use super::exec::{Ctx, ErrMsg, Fail, R, cast};
use super::state::{DbState, Schedule};
use super::value::{as_i64, as_text, int, text, truth};
use super::{biztalk, jobs, logship};
use crate::backend::Reply;
use btsdr_types::{Column, ResultSet, Value};

/// Where a procedure lives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Home {
    /// BizTalkMgmtDb on the management instance.
    Mgmt,
    Msdb,
    /// System procedures in master, callable from any database.
    System,
    /// The BizTalk log-shipping procedures in master on a destination (once installed).
    LsMaster,
}

pub type Handler = fn(&mut Ctx, &Args) -> R<()>;

pub struct ProcDef {
    pub name: &'static str,
    pub home: Home,
    /// (name, type, required)
    pub params: &'static [(&'static str, &'static str, bool)],
    pub handler: Handler,
}

/// Bound arguments by lower-case name (without `@`); absent = default.
pub struct Args {
    pub proc: String,
    pub values: HashMap<String, Value>,
}

impl Args {
    pub fn get(&self, name: &str) -> Value {
        self.values
            .get(&name.to_ascii_lowercase())
            .cloned()
            .unwrap_or(Value::Null)
    }
    pub fn text(&self, name: &str) -> Option<String> {
        as_text(&self.get(name))
    }
    pub fn int(&self, name: &str) -> Option<i64> {
        as_i64(&self.get(name))
    }
    pub fn flag(&self, name: &str) -> bool {
        truth(&self.get(name)) == Some(true)
    }
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(&name.to_ascii_lowercase())
    }
}

const JOB: (&str, &str, bool) = ("job_name", "sysname", false);
const JOB_ID: (&str, &str, bool) = ("job_id", "uniqueidentifier", false);

pub static PROCS: &[ProcDef] = &[
    // BizTalkMgmtDb
    ProcDef {
        name: "sp_SetBackupCompression",
        home: Home::Mgmt,
        params: &[("bCompression", "bit", true)],
        handler: biztalk::set_compression,
    },
    ProcDef {
        name: "sp_BackupAllFull_Schedule",
        home: Home::Mgmt,
        params: &[
            ("Frequency", "nchar(1)", true),
            ("MarkName", "nvarchar(8)", true),
            ("BackupPath", "nvarchar(128)", true),
            ("ForceFullBackupAfterPartialSetFailure", "bit", false),
            ("BackupHour", "int", false),
            ("UseLocalTime", "bit", false),
        ],
        handler: biztalk::backup_full_schedule,
    },
    ProcDef {
        name: "sp_BackupAllFull",
        home: Home::Mgmt,
        params: &[
            ("MarkName", "nvarchar(8)", true),
            ("BackupPath", "nvarchar(128)", true),
            ("UseLocalTime", "bit", false),
        ],
        handler: biztalk::backup_full_now,
    },
    ProcDef {
        name: "sp_MarkAll",
        home: Home::Mgmt,
        params: &[
            ("MarkName", "nvarchar(8)", true),
            ("BackupPath", "nvarchar(128)", true),
            ("UseLocalTime", "bit", false),
        ],
        handler: biztalk::mark_all,
    },
    ProcDef {
        name: "sp_ForceFullBackup",
        home: Home::Mgmt,
        params: &[],
        handler: biztalk::force_full,
    },
    ProcDef {
        name: "sp_DeleteBackupHistory",
        home: Home::Mgmt,
        params: &[
            ("DaysToKeep", "smallint", false),
            ("UseLocalTime", "bit", false),
        ],
        handler: biztalk::delete_history,
    },
    ProcDef {
        name: "sp_DeleteBackupHistoryAndFiles",
        home: Home::Mgmt,
        params: &[
            ("DaysToKeep", "smallint", false),
            ("UseLocalTime", "bit", false),
        ],
        handler: biztalk::delete_history_and_files,
    },
    ProcDef {
        name: "sp_GetBackupDatabasesForServer",
        home: Home::Mgmt,
        params: &[("ServerName", "sysname", false)],
        handler: biztalk::get_backup_databases,
    },
    ProcDef {
        name: "sp_GetBackupHistory",
        home: Home::Mgmt,
        params: &[("LastBackupSetId", "bigint", false)],
        handler: biztalk::get_backup_history,
    },
    // msdb
    ProcDef {
        name: "sp_update_job",
        home: Home::Msdb,
        params: &[
            JOB_ID,
            JOB,
            ("new_name", "sysname", false),
            ("enabled", "tinyint", false),
            ("description", "nvarchar(512)", false),
            ("start_step_id", "int", false),
            ("owner_login_name", "sysname", false),
        ],
        handler: update_job,
    },
    ProcDef {
        name: "sp_update_jobstep",
        home: Home::Msdb,
        params: &[
            JOB_ID,
            JOB,
            ("step_id", "int", true),
            ("step_name", "sysname", false),
            ("subsystem", "nvarchar(40)", false),
            ("command", "nvarchar(max)", false),
            ("database_name", "sysname", false),
            ("on_success_action", "tinyint", false),
            ("on_fail_action", "tinyint", false),
        ],
        handler: update_jobstep,
    },
    ProcDef {
        name: "sp_update_schedule",
        home: Home::Msdb,
        params: &[
            ("schedule_id", "int", false),
            ("name", "sysname", false),
            ("new_name", "sysname", false),
            ("enabled", "tinyint", false),
            ("freq_type", "int", false),
            ("freq_interval", "int", false),
            ("freq_subday_type", "int", false),
            ("freq_subday_interval", "int", false),
            ("freq_relative_interval", "int", false),
            ("freq_recurrence_factor", "int", false),
            ("active_start_date", "int", false),
            ("active_end_date", "int", false),
            ("active_start_time", "int", false),
            ("active_end_time", "int", false),
        ],
        handler: update_schedule,
    },
    ProcDef {
        name: "sp_start_job",
        home: Home::Msdb,
        params: &[
            JOB,
            JOB_ID,
            ("error_flag", "int", false),
            ("server_name", "sysname", false),
            ("step_name", "sysname", false),
            ("output_flag", "tinyint", false),
        ],
        handler: start_job,
    },
    ProcDef {
        name: "sp_stop_job",
        home: Home::Msdb,
        params: &[JOB, JOB_ID],
        handler: stop_job,
    },
    ProcDef {
        name: "sp_delete_backuphistory",
        home: Home::Msdb,
        params: &[("oldest_date", "datetime", true)],
        handler: delete_msdb_history,
    },
    // master (system)
    ProcDef {
        name: "sp_executesql",
        home: Home::System,
        params: &[
            ("stmt", "nvarchar(max)", true),
            ("params", "nvarchar(max)", false),
        ],
        handler: execute_sql,
    },
    ProcDef {
        name: "sp_grantlogin",
        home: Home::System,
        params: &[("loginame", "sysname", true)],
        handler: super::logins::grant_login,
    },
    ProcDef {
        name: "sp_configure",
        home: Home::System,
        params: &[
            ("configname", "varchar(35)", false),
            ("configvalue", "int", false),
        ],
        handler: configure,
    },
    ProcDef {
        name: "xp_dirtree",
        home: Home::System,
        params: &[
            ("directory", "nvarchar(4000)", true),
            ("depth", "int", false),
            ("file", "int", false),
        ],
        handler: super::media::dirtree,
    },
    // destination master (BizTalk log shipping)
    ProcDef {
        name: "bts_ConfigureBizTalkLogShipping",
        home: Home::LsMaster,
        params: &[
            ("nvcDescription", "nvarchar(max)", true),
            ("nvcMgmtDatabaseName", "sysname", true),
            ("nvcMgmtServerName", "sysname", true),
            ("SourceServerName", "sysname", false),
            ("fLinkServers", "bit", false),
        ],
        handler: logship::configure,
    },
    ProcDef {
        name: "sp_LogShippingClean",
        home: Home::LsMaster,
        params: &[("SourceServerName", "sysname", false)],
        handler: logship::clean,
    },
    ProcDef {
        name: "bts_LogShippingGetBackupHistory",
        home: Home::LsMaster,
        params: &[],
        handler: logship::get_history_step,
    },
    ProcDef {
        name: "bts_LogShippingRestoreDatabases",
        home: Home::LsMaster,
        params: &[],
        handler: logship::restore_databases_step,
    },
    ProcDef {
        name: "bts_LogShippingRestoreToMark",
        home: Home::LsMaster,
        params: &[],
        handler: logship::restore_to_mark_step,
    },
];

/// Finds a procedure from its (possibly qualified) name in the session's context.
pub fn find(ctx: &Ctx, parts: &[String]) -> Option<&'static ProcDef> {
    let name = parts.last()?;
    let db = if parts.len() >= 3 {
        parts[parts.len() - 3].clone()
    } else {
        ctx.b.db.clone()
    };
    let def = PROCS.iter().find(|p| p.name.eq_ignore_ascii_case(name))?;
    let inst = ctx.instance();
    let in_db = |d: &str| db.eq_ignore_ascii_case(d);
    let ok = match def.home {
        Home::Mgmt => in_db(&ctx.g.mgmt.db_name) && ctx.inst == ctx.g.mgmt.instance,
        Home::Msdb => in_db("msdb"),
        Home::System => true,
        Home::LsMaster => {
            (in_db("master") || (parts.len() < 3 && name.to_ascii_lowercase().starts_with("sp_")))
                && inst.ls_procs_installed
        }
    };
    ok.then_some(def)
}

/// EXEC: binds arguments to the definition and runs the handler.
pub fn call(ctx: &mut Ctx, parts: &[String], args: Vec<(Option<String>, Value)>) -> R<()> {
    let full = parts.join(".");
    if parts.len() >= 3 {
        let db = &parts[parts.len() - 3];
        match ctx.instance().db(db) {
            None => {
                return Err(Fail::one(
                    2812,
                    format!("Could not find stored procedure '{full}'."),
                ));
            }
            Some(d) if d.state != DbState::Online => {
                return Err(Fail::one(
                    927,
                    format!(
                        "Database '{}' cannot be opened. It is in the middle of a restore.",
                        d.name
                    ),
                ));
            }
            _ => {}
        }
    }
    let Some(def) = find(ctx, parts) else {
        return Err(Fail::one(
            2812,
            format!("Could not find stored procedure '{full}'."),
        ));
    };
    let mut values = HashMap::new();
    let mut pos = 0usize;
    for (name, v) in args {
        let (pname, ty) = match name {
            Some(n) => match def
                .params
                .iter()
                .find(|(p, _, _)| p.eq_ignore_ascii_case(&n))
                .filter(|(p, _, _)| !super::catalog::param_dropped(ctx, def.name, p))
            {
                Some((p, ty, _)) => (*p, *ty),
                None => {
                    return Err(Fail::one(
                        8145,
                        format!("@{n} is not a parameter for procedure {}.", def.name),
                    ));
                }
            },
            None => {
                let Some((p, ty, _)) = def.params.get(pos) else {
                    return Err(Fail::one(
                        8144,
                        format!(
                            "Procedure or function {} has too many arguments specified.",
                            def.name
                        ),
                    ));
                };
                pos += 1;
                (*p, *ty)
            }
        };
        let v = cast(v, ty).map_err(|f| {
            Fail(
                f.0.into_iter()
                    .map(|mut e| {
                        e.number = 8114;
                        e.message = format!(
                            "Error converting data type nvarchar to {}.",
                            ty.split('(').next().unwrap_or(ty)
                        );
                        e
                    })
                    .collect(),
            )
        })?;
        values.insert(pname.to_ascii_lowercase(), v);
    }
    for (p, _, required) in def.params {
        if *required && !values.contains_key(&p.to_ascii_lowercase()) {
            return Err(Fail::one(
                201,
                format!(
                    "Procedure or function '{}' expects parameter '@{p}', which was not supplied.",
                    def.name
                ),
            ));
        }
    }
    let a = Args {
        proc: def.name.to_string(),
        values,
    };
    (def.handler)(ctx, &a).map_err(|f| {
        Fail(
            f.0.into_iter()
                .map(|mut e| {
                    if e.procedure.is_empty() {
                        e.procedure = def.name.to_string();
                    }
                    e
                })
                .collect(),
        )
    })
}

pub fn info(ctx: &mut Ctx, number: u32, message: impl Into<String>) {
    ctx.b.out.push(Reply::Info {
        number,
        message: message.into(),
    });
}

// ---- msdb ----------------------------------------------------------------------------------

/// Finds a job by `@job_name` or `@job_id`; error 14262 as SQL Server says it.
pub fn job_index(ctx: &Ctx, a: &Args) -> R<usize> {
    let m = &ctx.instance().msdb;
    if let Some(name) = a.text("job_name") {
        return m.job_index(&name).ok_or_else(|| {
            Fail::one(
                14262,
                format!("The specified @job_name ('{name}') does not exist."),
            )
        });
    }
    if let Some(id) = a.text("job_id") {
        return m
            .jobs
            .iter()
            .position(|j| j.job_id.eq_ignore_ascii_case(&id))
            .ok_or_else(|| {
                Fail::one(
                    14262,
                    format!("The specified @job_id ('{id}') does not exist."),
                )
            });
    }
    Err(Fail::one(
        14294,
        "Supply either @job_id or @job_name to identify the job.",
    ))
}

fn update_job(ctx: &mut Ctx, a: &Args) -> R<()> {
    let i = job_index(ctx, a)?;
    let job = &mut ctx.instance_mut().msdb.jobs[i];
    if let Some(e) = a.int("enabled") {
        job.enabled = e != 0;
    }
    if let Some(n) = a.text("new_name") {
        job.name = n;
    }
    if let Some(d) = a.text("description") {
        job.description = d;
    }
    Ok(())
}

fn update_jobstep(ctx: &mut Ctx, a: &Args) -> R<()> {
    let i = job_index(ctx, a)?;
    let step_id = a.int("step_id").unwrap_or(0);
    let job = &mut ctx.instance_mut().msdb.jobs[i];
    let job_name = job.name.clone();
    let Some(step) = job.steps.iter_mut().find(|s| s.step_id == step_id) else {
        return Err(Fail::one(
            14262,
            format!("The specified @step_id ('{step_id}') does not exist. (job '{job_name}')"),
        ));
    };
    if let Some(c) = a.text("command") {
        step.command = c;
    }
    if let Some(n) = a.text("step_name") {
        step.step_name = n;
    }
    if let Some(d) = a.text("database_name") {
        step.database_name = d;
    }
    if let Some(x) = a.int("on_success_action") {
        step.on_success_action = x;
    }
    if let Some(x) = a.int("on_fail_action") {
        step.on_fail_action = x;
    }
    Ok(())
}

fn update_schedule(ctx: &mut Ctx, a: &Args) -> R<()> {
    let m = &mut ctx.instance_mut().msdb;
    let idx = if let Some(id) = a.int("schedule_id") {
        m.schedules
            .iter()
            .position(|s| s.schedule_id == id)
            .ok_or_else(|| {
                Fail::one(
                    14262,
                    format!("The specified @schedule_id ('{id}') does not exist."),
                )
            })?
    } else if let Some(n) = a.text("name") {
        let hits: Vec<usize> = m
            .schedules
            .iter()
            .enumerate()
            .filter(|(_, s)| s.name.eq_ignore_ascii_case(&n))
            .map(|(i, _)| i)
            .collect();
        match hits.as_slice() {
            [one] => *one,
            [] => {
                return Err(Fail::one(
                    14262,
                    format!("The specified @schedule_name ('{n}') does not exist."),
                ));
            }
            _ => {
                return Err(Fail::one(
                    14371,
                    format!(
                        "There are two or more schedules named \"{n}\". Specify @schedule_id instead of @schedule_name to uniquely identify the schedule."
                    ),
                ));
            }
        }
    } else {
        return Err(Fail::one(
            14273,
            "You must provide either @schedule_id or @schedule_name.",
        ));
    };
    let s: &mut Schedule = &mut m.schedules[idx];
    if let Some(v) = a.int("enabled") {
        s.enabled = v != 0;
    }
    if let Some(v) = a.text("new_name") {
        s.name = v;
    }
    let ft = a.int("freq_type").unwrap_or(s.freq_type);
    let fst = a.int("freq_subday_type").unwrap_or(s.freq_subday_type);
    let fsi = a
        .int("freq_subday_interval")
        .unwrap_or(s.freq_subday_interval);
    if ![1, 4, 8, 16, 32, 64, 128].contains(&ft) {
        return Err(Fail::one(
            14266,
            format!(
                "The specified '@freq_type' is invalid (valid values are: 1, 4, 8, 16, 32, 64, 128). Value given: {ft}"
            ),
        ));
    }
    if ![1, 2, 4, 8].contains(&fst) || (fst == 4 && !(1..=1440).contains(&fsi)) {
        return Err(Fail::one(
            14278,
            format!(
                "The schedule for this job is invalid (reason: The specified @freq_subday_interval {fsi} is invalid for @freq_subday_type {fst})."
            ),
        ));
    }
    s.freq_type = ft;
    s.freq_subday_type = fst;
    s.freq_subday_interval = fsi;
    if let Some(v) = a.int("freq_interval") {
        s.freq_interval = v;
    }
    if let Some(v) = a.int("active_start_time") {
        s.active_start_time = v;
    }
    Ok(())
}

fn start_job(ctx: &mut Ctx, a: &Args) -> R<()> {
    let i = job_index(ctx, a)?;
    let job = ctx.instance().msdb.jobs[i].clone();
    if job.running {
        return Err(Fail::one(
            22022,
            format!(
                "SQLServerAgent Error: Request to run job {} (from User {}) refused because the job is already running from a request by User {}.",
                job.name, ctx.b.login, ctx.b.login
            ),
        ));
    }
    let start = match a.text("step_name") {
        Some(sn) => job
            .steps
            .iter()
            .position(|s| s.step_name.eq_ignore_ascii_case(&sn))
            .ok_or_else(|| {
                Fail::one(
                    14262,
                    format!("The specified @step_name ('{sn}') does not exist."),
                )
            })?,
        None => 0,
    };
    let who = ctx.b.login.clone();
    let inst = ctx.inst;
    jobs::request_run(ctx.g, inst, i, start, &format!("User {who}"));
    info(ctx, 0, format!("Job '{}' started successfully.", job.name));
    Ok(())
}

fn stop_job(ctx: &mut Ctx, a: &Args) -> R<()> {
    let i = job_index(ctx, a)?;
    let job = &ctx.instance().msdb.jobs[i];
    if !job.running {
        // SQL Server reports this as an error (22022) when the job is idle.
        return Err(Fail::one(
            22022,
            format!(
                "SQLServerAgent Error: Request to stop job {} (from User {}) refused because the job is not currently running.",
                job.name, ctx.b.login
            ),
        ));
    }
    let name = job.name.clone();
    let inst = ctx.inst;
    ctx.g
        .pending_runs
        .retain(|r| !(r.inst == inst && r.job == i));
    let now = ctx.g.now();
    let j = &mut ctx.instance_mut().msdb.jobs[i];
    j.running = false;
    j.activity.stopped = Some(now);
    info(ctx, 0, format!("Job '{name}' stopped successfully."));
    Ok(())
}

fn delete_msdb_history(ctx: &mut Ctx, a: &Args) -> R<()> {
    let Some(before) = super::value::as_dt(&a.get("oldest_date")) else {
        return Err(Fail::one(
            201,
            "Procedure or function 'sp_delete_backuphistory' expects parameter '@oldest_date', which was not supplied.",
        ));
    };
    let m = &mut ctx.instance_mut().msdb;
    m.backupsets.retain(|b| b.finish >= before);
    m.restores.retain(|r| r.restore_date >= before);
    Ok(())
}

// ---- configuration -------------------------------------------------------------------------

fn configure(ctx: &mut Ctx, a: &Args) -> R<()> {
    let show_adv = ctx
        .instance()
        .config("show advanced options")
        .is_some_and(|c| c.value_in_use == 1);
    let Some(name) = a.text("configname") else {
        let rs = config_rows(ctx, None, show_adv);
        ctx.b.out.push(Reply::Rows(rs));
        return Ok(());
    };
    let matches: Vec<usize> = ctx
        .instance()
        .configurations
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.name.to_lowercase().contains(&name.to_lowercase()) && (show_adv || !c.advanced)
        })
        .map(|(i, _)| i)
        .collect();
    let exact = ctx
        .instance()
        .configurations
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(&name) && (show_adv || !c.advanced));
    let idx = match (exact, matches.as_slice()) {
        (Some(i), _) => i,
        (None, [one]) => *one,
        (None, []) => {
            return Err(Fail::one(
                15123,
                format!(
                    "The configuration option '{name}' does not exist, or it may be an advanced option."
                ),
            ));
        }
        (None, _) => {
            return Err(Fail::one(
                15125,
                format!("The configuration option '{name}' is not unique."),
            ));
        }
    };
    match a.int("configvalue") {
        None => {
            let c = ctx.instance().configurations[idx].name.clone();
            let rs = config_rows(ctx, Some(&c), true);
            ctx.b.out.push(Reply::Rows(rs));
        }
        Some(v) => {
            let c = &mut ctx.instance_mut().configurations[idx];
            if !(0..=1).contains(&v) {
                return Err(Fail::one(
                    15129,
                    format!(
                        "'{v}' is not a valid value for configuration option '{}'.",
                        c.name
                    ),
                ));
            }
            let old = c.value;
            c.value = v;
            let n = c.name.clone();
            info(
                ctx,
                15457,
                format!(
                    "Configuration option '{n}' changed from {old} to {v}. Run the RECONFIGURE statement to install."
                ),
            );
        }
    }
    Ok(())
}

fn config_rows(ctx: &Ctx, only: Option<&str>, show_adv: bool) -> ResultSet {
    let cols = ["name", "minimum", "maximum", "config_value", "run_value"];
    ResultSet {
        not_kept: 0,
        columns: cols
            .iter()
            .enumerate()
            .map(|(i, c)| Column {
                name: c.to_string(),
                type_name: if i == 0 {
                    "nvarchar".into()
                } else {
                    "int".into()
                },
            })
            .collect(),
        rows: ctx
            .instance()
            .configurations
            .iter()
            .filter(|c| {
                only.is_none_or(|o| c.name.eq_ignore_ascii_case(o)) && (show_adv || !c.advanced)
            })
            .map(|c| {
                vec![
                    text(&c.name),
                    int(0),
                    int(1),
                    int(c.value),
                    int(c.value_in_use),
                ]
            })
            .collect(),
    }
}

pub fn reconfigure(ctx: &mut Ctx) {
    for c in &mut ctx.instance_mut().configurations {
        c.value_in_use = c.value;
    }
}

/// An error as the SQL Agent step message shows it.
pub fn step_message(e: &ErrMsg) -> String {
    format!("{}  [SQLSTATE 42000] (Error {})", e.message, e.number)
}

fn execute_sql(ctx: &mut Ctx, a: &Args) -> R<()> {
    let text = a.text("stmt").unwrap_or_default();
    ctx.run_text(&text).map(|_| ())
}
