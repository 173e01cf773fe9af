//! The virtual tables and views the model exposes, built from the state on each read, and
//! the few writes the runbooks make to them.

use super::exec::{Ctx, Fail, R, Scope, cast};
use super::parse::Expr;
use super::state::{DbState, HistoryRow, InstanceRole, guid};
use super::value::{agent_date, agent_time, dt, int, opt_text, text, truth};
use btsdr_types::Value;

/// Rows with named, typed columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub cols: Vec<(String, String)>,
    pub rows: Vec<Vec<Value>>,
    /// Index of an IDENTITY column (table variables).
    pub identity: Option<usize>,
}

fn t(cols: &[(&str, &str)], rows: Vec<Vec<Value>>) -> Table {
    Table {
        cols: cols
            .iter()
            .map(|(n, ty)| (n.to_string(), ty.to_string()))
            .collect(),
        rows,
        identity: None,
    }
}

fn bit(b: bool) -> Value {
    Value::Bool(b)
}

/// Splits a name into (database, schema, object) against the session's database.
fn split<'a>(ctx: &Ctx, parts: &'a [String]) -> R<(String, String, &'a str)> {
    let n = parts.len();
    if n > 3 {
        return Err(Fail::one(
            7202,
            format!(
                "Could not find server '{}' in sys.servers. (btsdr simulator: linked-server queries are not simulated)",
                parts[0]
            ),
        ));
    }
    let obj = parts[n - 1].as_str();
    let schema = if n >= 2 && !parts[n - 2].is_empty() {
        parts[n - 2].clone()
    } else {
        "dbo".into()
    };
    let db = if n == 3 {
        parts[0].clone()
    } else {
        ctx.b.db.clone()
    };
    Ok((db, schema, obj))
}

fn invalid(parts: &[String]) -> Fail {
    Fail::one(208, format!("Invalid object name '{}'.", parts.join(".")))
}

/// Resolves a FROM name to its rows.
pub fn resolve(ctx: &mut Ctx, parts: &[String]) -> R<Table> {
    let (db, schema, obj) = split(ctx, parts)?;
    let inst = ctx.instance();
    let Some(d) = inst.db(&db) else {
        return Err(invalid(parts));
    };
    let db = d.name.clone();
    if d.state != DbState::Online {
        return Err(Fail::one(
            927,
            format!("Database '{db}' cannot be opened. It is in the middle of a restore."),
        ));
    }
    let schema = schema.to_ascii_lowercase();
    let obj_l = obj.to_ascii_lowercase();
    let found = match schema.as_str() {
        "sys" if super::catalog::VIEWS.contains(&obj_l.as_str()) => {
            return super::catalog::view(ctx, &db, &obj_l);
        }
        "sys" => sys_table(ctx, &db, &obj_l),
        "dbo" => {
            if db.eq_ignore_ascii_case("msdb") {
                msdb_table(ctx, &obj_l)
            } else if db.eq_ignore_ascii_case(&ctx.g.mgmt.db_name)
                && obj_l != "marklog"
                && mgmt_of(ctx).is_some()
            {
                mgmt_table(ctx, &obj_l).or_else(|| {
                    (obj_l == "biztalkdbversion")
                        .then(|| super::catalog::biztalk_db_version(&ctx.g.mgmt.db_name))
                })
            } else if db.eq_ignore_ascii_case("master") {
                master_table(ctx, &obj_l)
            } else if obj_l == "marklog" {
                marklog(ctx, &db)
            } else {
                None
            }
        }
        _ => None,
    };
    let mut table = found.ok_or_else(|| invalid(parts))?;
    drop_missing_columns(ctx, &obj_l, &mut table);
    Ok(super::catalog::drift_table(ctx, &obj_l, table))
}

/// Schema drift (scenario `schema_drift`): the columns this version does not have.
fn drop_missing_columns(ctx: &Ctx, obj: &str, table: &mut Table) {
    for (o, c) in &ctx.g.missing_columns {
        if o != obj {
            continue;
        }
        if let Some(i) = table
            .cols
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(c))
        {
            table.cols.remove(i);
            for r in &mut table.rows {
                if i < r.len() {
                    r.remove(i);
                }
            }
        }
    }
}

/// For the big catalog tables that only change when backups, marks or log shipping happen:
/// a key and a hash of the rows they are built from. A statement reuses the table an earlier
/// one built while the hash is the same, instead of building thousands of rows again. `None`
/// for every other table (and for a database that is not online: `resolve` says why).
pub fn source_hash(ctx: &Ctx, parts: &[String]) -> Option<(String, u64)> {
    use std::hash::{BuildHasher, Hash, Hasher};
    let (db, schema, obj) = split(ctx, parts).ok()?;
    if !schema.eq_ignore_ascii_case("dbo") {
        return None;
    }
    let inst = ctx.instance();
    let d = inst.db(&db)?;
    if d.state != DbState::Online {
        return None;
    }
    let db = d.name.to_ascii_lowercase();
    let obj = obj.to_ascii_lowercase();
    // foldhash: several times faster than SipHash over thousands of rows; no adversary here.
    let mut h = foldhash::fast::FixedState::with_seed(0).build_hasher();
    match (db.as_str(), obj.as_str()) {
        ("msdb", "backupset" | "backupmediafamily") => inst.msdb.backupsets.hash(&mut h),
        ("msdb", "logmarkhistory") => inst.msdb.logmarks.hash(&mut h),
        ("master", "bts_logshippinghistory") if inst.ls_procs_installed => {
            inst.log_shipping.history.hash(&mut h)
        }
        (_, "adm_backuphistory") if db.eq_ignore_ascii_case(&ctx.g.mgmt.db_name) => {
            mgmt_of(ctx)?.history.hash(&mut h)
        }
        _ => return None,
    }
    Some((format!("{db}.{obj}"), h.finish()))
}

// TODO(issue 16): split (one builder per catalog view).
#[allow(clippy::too_many_lines)]
fn sys_table(ctx: &Ctx, db: &str, obj: &str) -> Option<Table> {
    let inst = ctx.instance();
    Some(match obj {
        "databases" => t(
            &[
                ("name", "nvarchar"),
                ("database_id", "int"),
                ("state", "tinyint"),
                ("state_desc", "nvarchar"),
                ("recovery_model", "tinyint"),
                ("recovery_model_desc", "nvarchar"),
                ("create_date", "datetime"),
                ("compatibility_level", "tinyint"),
                ("is_read_only", "bit"),
                ("user_access_desc", "nvarchar"),
            ],
            inst.databases
                .iter()
                .map(|d| {
                    vec![
                        text(&d.name),
                        int(d.id),
                        int(d.state.code()),
                        text(d.state.desc()),
                        int(if d.recovery.desc() == "FULL" { 1 } else { 3 }),
                        text(d.recovery.desc()),
                        dt(ctx.g.now() - chrono::Duration::days(400)),
                        int(150),
                        bit(false),
                        text("MULTI_USER"),
                    ]
                })
                .collect(),
        ),
        "master_files" => {
            let mut rows = Vec::new();
            for d in &inst.databases {
                rows.push(vec![
                    int(d.id),
                    int(1),
                    int(0),
                    text("ROWS"),
                    text(&d.name),
                    text(format!("{}\\{}.mdf", d.data_dir, d.name)),
                    int((d.size_mb * 128) as i64),
                    text(d.state.desc()),
                ]);
                rows.push(vec![
                    int(d.id),
                    int(2),
                    int(1),
                    text("LOG"),
                    text(format!("{}_log", d.name)),
                    text(format!("{}\\{}_log.ldf", d.log_dir, d.name)),
                    int((d.size_mb * 32) as i64),
                    text(d.state.desc()),
                ]);
            }
            t(
                &[
                    ("database_id", "int"),
                    ("file_id", "int"),
                    ("type", "tinyint"),
                    ("type_desc", "nvarchar"),
                    ("name", "nvarchar"),
                    ("physical_name", "nvarchar"),
                    ("size", "int"),
                    ("state_desc", "nvarchar"),
                ],
                rows,
            )
        }
        "configurations" => t(
            &[
                ("configuration_id", "int"),
                ("name", "nvarchar"),
                ("value", "int"),
                ("minimum", "int"),
                ("maximum", "int"),
                ("value_in_use", "int"),
                ("description", "nvarchar"),
                ("is_dynamic", "bit"),
                ("is_advanced", "bit"),
            ],
            inst.configurations
                .iter()
                .map(|c| {
                    vec![
                        int(c.configuration_id),
                        text(&c.name),
                        int(c.value),
                        int(0),
                        int(1),
                        int(c.value_in_use),
                        text(&c.name),
                        bit(true),
                        bit(c.advanced),
                    ]
                })
                .collect(),
        ),
        "server_principals" | "syslogins" | "sql_logins" => t(
            &[
                ("name", "nvarchar"),
                ("principal_id", "int"),
                ("sid", "varbinary"),
                ("type", "nvarchar"),
                ("type_desc", "nvarchar"),
                ("is_disabled", "bit"),
                ("create_date", "datetime"),
                ("default_database_name", "nvarchar"),
            ],
            inst.logins
                .iter()
                .enumerate()
                .filter(|(_, l)| obj != "sql_logins" || l.kind == 'S')
                .map(|(i, l)| {
                    vec![
                        text(&l.name),
                        int(256 + i as i64),
                        Value::Binary(super::scenario_sid(&l.name)),
                        text(l.kind.to_string()),
                        text(l.type_desc()),
                        bit(l.disabled),
                        dt(ctx.g.now() - chrono::Duration::days(300)),
                        text("master"),
                    ]
                })
                .collect(),
        ),
        "server_role_members" => {
            let rows = inst
                .logins
                .iter()
                .enumerate()
                .filter(|(_, l)| l.sysadmin)
                .map(|(i, _)| vec![int(3), int(256 + i as i64)])
                .collect();
            t(
                &[("role_principal_id", "int"), ("member_principal_id", "int")],
                rows,
            )
        }
        "dm_server_services" => t(
            &[
                ("servicename", "nvarchar"),
                ("startup_type_desc", "nvarchar"),
                ("status_desc", "nvarchar"),
                ("service_account", "nvarchar"),
            ],
            vec![
                vec![
                    text("SQL Server (MSSQLSERVER)"),
                    text("Automatic"),
                    text("Running"),
                    text(inst.agent_account.replace("SQLAgent", "SQLServer")),
                ],
                vec![
                    text("SQL Server Agent (MSSQLSERVER)"),
                    text("Automatic"),
                    text("Running"),
                    text(&inst.agent_account),
                ],
            ],
        ),
        // learn.microsoft.com/sql/relational-databases/system-dynamic-management-views/
        // sys-dm-os-host-info-transact-sql: the host of @@VERSION (Windows Server 2022
        // Datacenter, 10.0; SKU 8 = Datacenter, language 1033 = en-US).
        "dm_os_host_info" => t(
            &[
                ("host_platform", "nvarchar"),
                ("host_distribution", "nvarchar"),
                ("host_release", "nvarchar"),
                ("host_service_pack_level", "nvarchar"),
                ("host_sku", "int"),
                ("os_language_version", "int"),
            ],
            vec![vec![
                text("Windows"),
                text("Windows Server 2022 Datacenter"),
                text("10.0"),
                text(""),
                int(8),
                int(1033),
            ]],
        ),
        "dm_exec_requests" => {
            let mut rows = vec![vec![
                int(i64::from(ctx.b.spid)),
                int(0),
                dt(ctx.g.now()),
                text("running"),
                text("SELECT"),
                int(inst.db(&ctx.b.db).map_or(1, |d| d.id)),
                Value::Float(0.0),
                int(0),
                int(0),
                Value::Null,
            ]];
            for r in ctx.g.running.iter().filter(|r| r.instance == ctx.inst) {
                let elapsed = r.started.elapsed().as_secs_f64();
                let total = r.total.as_secs_f64().max(0.001);
                let pct = (elapsed / total * 100.0).clamp(0.0, 99.9);
                let eta = ((total - elapsed).max(0.0) * 1000.0) as i64;
                rows.push(vec![
                    int(i64::from(r.spid)),
                    int(0),
                    dt(r.start_time),
                    text("suspended"),
                    text(&r.command),
                    int(inst.db(&r.database).map_or(1, |d| d.id)),
                    Value::Float((pct * 1000.0).round() / 1000.0),
                    int(eta),
                    int((elapsed * 1000.0) as i64),
                    text("BACKUPTHREAD"),
                ]);
            }
            t(
                &[
                    ("session_id", "smallint"),
                    ("request_id", "int"),
                    ("start_time", "datetime"),
                    ("status", "nvarchar"),
                    ("command", "nvarchar"),
                    ("database_id", "smallint"),
                    ("percent_complete", "float"),
                    ("estimated_completion_time", "bigint"),
                    ("total_elapsed_time", "int"),
                    ("wait_type", "nvarchar"),
                ],
                rows,
            )
        }
        "dm_exec_sessions" => t(
            &[
                ("session_id", "smallint"),
                ("login_name", "nvarchar"),
                ("host_name", "nvarchar"),
                ("program_name", "nvarchar"),
                ("database_id", "smallint"),
                ("status", "nvarchar"),
                ("is_user_process", "bit"),
            ],
            std::iter::once(vec![
                int(i64::from(ctx.b.spid)),
                text(&ctx.b.login),
                text("BTSDR-OPERATOR"),
                text("btsdr"),
                int(inst.db(&ctx.b.db).map_or(1, |d| d.id)),
                text("running"),
                bit(true),
            ])
            .chain(inst.client_sessions.iter().map(|(id, host, program, db)| {
                vec![
                    int(*id),
                    text(&inst.agent_account),
                    text(host),
                    text(program),
                    int(inst.db(db).map_or(1, |d| d.id)),
                    text("sleeping"),
                    bit(true),
                ]
            }))
            .collect(),
        ),
        "servers" => {
            let mut rows = vec![vec![
                int(0),
                text(&inst.server_name),
                text(&inst.server_name),
                bit(false),
                bit(true),
            ]];
            if inst.log_shipping.configured {
                rows.push(vec![
                    int(1),
                    text(&inst.log_shipping.mgmt_server),
                    text(&inst.log_shipping.mgmt_server),
                    bit(true),
                    bit(true),
                ]);
            }
            t(
                &[
                    ("server_id", "int"),
                    ("name", "nvarchar"),
                    ("data_source", "nvarchar"),
                    ("is_linked", "bit"),
                    ("is_rpc_out_enabled", "bit"),
                ],
                rows,
            )
        }
        "database_principals" => {
            let d = inst.db(db)?;
            let mut rows = vec![
                vec![
                    int(1),
                    text("dbo"),
                    text("S"),
                    text("SQL_USER"),
                    Value::Binary(vec![1]),
                    text("INSTANCE"),
                ],
                vec![
                    int(2),
                    text("guest"),
                    text("S"),
                    text("SQL_USER"),
                    Value::Binary(vec![0]),
                    text("NONE"),
                ],
                vec![
                    int(16384),
                    text("db_owner"),
                    text("R"),
                    text("DATABASE_ROLE"),
                    Value::Null,
                    text("NONE"),
                ],
            ];
            if d.has_marklog {
                rows.push(vec![
                    int(16400),
                    text("BTS_BACKUP_USERS"),
                    text("R"),
                    text("DATABASE_ROLE"),
                    Value::Null,
                    text("NONE"),
                ]);
            }
            for (i, (u, kind)) in d.users.iter().enumerate() {
                let desc = match kind {
                    'G' => "WINDOWS_GROUP",
                    'U' => "WINDOWS_USER",
                    _ => "SQL_USER",
                };
                let auth = if *kind == 'S' { "INSTANCE" } else { "WINDOWS" };
                rows.push(vec![
                    int(5 + i as i64),
                    text(u),
                    text(kind.to_string()),
                    text(desc),
                    Value::Binary(super::scenario_sid(u)),
                    text(auth),
                ]);
            }
            t(
                &[
                    ("principal_id", "int"),
                    ("name", "nvarchar"),
                    ("type", "nvarchar"),
                    ("type_desc", "nvarchar"),
                    ("sid", "varbinary"),
                    ("authentication_type_desc", "nvarchar"),
                ],
                rows,
            )
        }
        "database_role_members" => {
            let d = inst.db(db)?;
            let rows = d
                .backup_users
                .iter()
                .filter_map(|b| d.users.iter().position(|(u, _)| u.eq_ignore_ascii_case(b)))
                .map(|i| vec![int(16400), int(5 + i as i64)])
                .collect();
            t(
                &[("role_principal_id", "int"), ("member_principal_id", "int")],
                rows,
            )
        }
        _ => return None,
    })
}

// TODO(issue 16): split (one builder per msdb table).
#[allow(clippy::too_many_lines)]
fn msdb_table(ctx: &Ctx, obj: &str) -> Option<Table> {
    let inst = ctx.instance();
    let m = &inst.msdb;
    Some(match obj {
        "sysjobs" | "sysjobs_view" => t(
            &[
                ("job_id", "uniqueidentifier"),
                ("name", "nvarchar"),
                ("enabled", "tinyint"),
                ("description", "nvarchar"),
                ("start_step_id", "int"),
                ("category_id", "int"),
                ("owner_sid", "varbinary"),
                ("date_created", "datetime"),
                ("date_modified", "datetime"),
            ],
            m.jobs
                .iter()
                .map(|j| {
                    vec![
                        Value::Guid(j.job_id.clone()),
                        text(&j.name),
                        int(i64::from(j.enabled)),
                        text(&j.description),
                        int(1),
                        int(if j.category.is_empty() { 0 } else { 3 }),
                        Value::Binary(vec![1]),
                        dt(j.created),
                        dt(j.created),
                    ]
                })
                .collect(),
        ),
        "sysjobsteps" => {
            let mut rows = Vec::new();
            for j in &m.jobs {
                for s in &j.steps {
                    rows.push(vec![
                        Value::Guid(j.job_id.clone()),
                        int(s.step_id),
                        text(&s.step_name),
                        text(&s.subsystem),
                        text(&s.command),
                        text(&s.database_name),
                        int(s.on_success_action),
                        int(s.on_fail_action),
                        Value::Null,
                    ]);
                }
            }
            t(
                &[
                    ("job_id", "uniqueidentifier"),
                    ("step_id", "int"),
                    ("step_name", "nvarchar"),
                    ("subsystem", "nvarchar"),
                    ("command", "nvarchar"),
                    ("database_name", "nvarchar"),
                    ("on_success_action", "tinyint"),
                    ("on_fail_action", "tinyint"),
                    ("server", "nvarchar"),
                ],
                rows,
            )
        }
        "sysschedules" => t(
            &[
                ("schedule_id", "int"),
                ("name", "nvarchar"),
                ("enabled", "int"),
                ("freq_type", "int"),
                ("freq_interval", "int"),
                ("freq_subday_type", "int"),
                ("freq_subday_interval", "int"),
                ("active_start_time", "int"),
            ],
            m.schedules
                .iter()
                .map(|s| {
                    vec![
                        int(s.schedule_id),
                        text(&s.name),
                        int(i64::from(s.enabled)),
                        int(s.freq_type),
                        int(s.freq_interval),
                        int(s.freq_subday_type),
                        int(s.freq_subday_interval),
                        int(s.active_start_time),
                    ]
                })
                .collect(),
        ),
        "sysjobschedules" => {
            let mut rows = Vec::new();
            for j in &m.jobs {
                for s in &j.schedule_ids {
                    rows.push(vec![int(*s), Value::Guid(j.job_id.clone()), int(0), int(0)]);
                }
            }
            t(
                &[
                    ("schedule_id", "int"),
                    ("job_id", "uniqueidentifier"),
                    ("next_run_date", "int"),
                    ("next_run_time", "int"),
                ],
                rows,
            )
        }
        "sysjobhistory" => t(
            &[
                ("instance_id", "int"),
                ("job_id", "uniqueidentifier"),
                ("step_id", "int"),
                ("step_name", "nvarchar"),
                ("sql_message_id", "int"),
                ("sql_severity", "int"),
                ("message", "nvarchar"),
                ("run_status", "int"),
                ("run_date", "int"),
                ("run_time", "int"),
                ("run_duration", "int"),
                ("server", "nvarchar"),
            ],
            m.history
                .iter()
                .map(|h| {
                    let d = h.duration_secs;
                    vec![
                        int(h.instance_id),
                        Value::Guid(h.job_id.clone()),
                        int(h.step_id),
                        text(&h.step_name),
                        int(h.sql_message_id),
                        int(h.sql_severity),
                        text(&h.message),
                        int(h.run_status),
                        int(agent_date(h.at)),
                        int(agent_time(h.at)),
                        int((d / 3600) * 10000 + (d / 60 % 60) * 100 + d % 60),
                        text(&inst.server_name),
                    ]
                })
                .collect(),
        ),
        "syssessions" => t(
            &[("session_id", "int"), ("agent_start_date", "datetime")],
            vec![vec![int(1), dt(ctx.g.now() - chrono::Duration::days(30))]],
        ),
        "sysjobactivity" => {
            let rows = m
                .jobs
                .iter()
                .map(|j| {
                    let a = &j.activity;
                    let d = |t: Option<chrono::NaiveDateTime>| t.map_or(Value::Null, dt);
                    let n = |x: Option<i64>| x.map_or(Value::Null, int);
                    vec![
                        int(1),
                        Value::Guid(j.job_id.clone()),
                        d(a.requested),
                        d(a.started),
                        n(a.last_step),
                        d(a.stopped),
                        n(a.history_id),
                    ]
                })
                .collect();
            // MS-sysjobactivity: one row per job in the current Agent session; the run's
            // outcome row in sysjobhistory is job_history_id once it stopped.
            t(
                &[
                    ("session_id", "int"),
                    ("job_id", "uniqueidentifier"),
                    ("run_requested_date", "datetime"),
                    ("start_execution_date", "datetime"),
                    ("last_executed_step_id", "int"),
                    ("stop_execution_date", "datetime"),
                    ("job_history_id", "int"),
                ],
                rows,
            )
        }
        "backupset" => t(
            &[
                ("backup_set_id", "int"),
                ("media_set_id", "int"),
                ("name", "nvarchar"),
                ("database_name", "nvarchar"),
                ("server_name", "nvarchar"),
                ("machine_name", "nvarchar"),
                ("type", "char"),
                ("backup_start_date", "datetime"),
                ("backup_finish_date", "datetime"),
                ("first_lsn", "decimal"),
                ("last_lsn", "decimal"),
                ("database_backup_lsn", "decimal"),
                ("is_damaged", "bit"),
                ("has_backup_checksums", "bit"),
                ("backup_size", "decimal"),
                ("compressed_backup_size", "decimal"),
                ("recovery_model", "nvarchar"),
                ("user_name", "nvarchar"),
            ],
            m.backupsets
                .iter()
                .map(|b| {
                    vec![
                        int(b.backup_set_id),
                        int(b.media_set_id),
                        text(&b.name),
                        text(&b.database_name),
                        text(&b.server_name),
                        text(&b.server_name),
                        text(b.kind.to_string()),
                        dt(b.start),
                        dt(b.finish),
                        Value::Decimal(b.first_lsn.to_string()),
                        Value::Decimal(b.last_lsn.to_string()),
                        Value::Decimal(b.database_backup_lsn.to_string()),
                        bit(b.is_damaged),
                        bit(b.has_checksums),
                        Value::Decimal(b.size_bytes.to_string()),
                        Value::Decimal(if b.compressed {
                            (b.size_bytes / 3).to_string()
                        } else {
                            b.size_bytes.to_string()
                        }),
                        text("FULL"),
                        text("CONTOSO\\svc-sqlagent"),
                    ]
                })
                .collect(),
        ),
        "backupmediafamily" => t(
            &[
                ("media_set_id", "int"),
                ("family_sequence_number", "tinyint"),
                ("physical_device_name", "nvarchar"),
                ("device_type", "tinyint"),
            ],
            m.backupsets
                .iter()
                .map(|b| {
                    vec![
                        int(b.media_set_id),
                        int(1),
                        text(&b.device),
                        int(if b.device.starts_with("https://") {
                            9
                        } else {
                            2
                        }),
                    ]
                })
                .collect(),
        ),
        "logmarkhistory" => t(
            &[
                ("database_name", "nvarchar"),
                ("mark_name", "nvarchar"),
                ("description", "nvarchar"),
                ("user_name", "nvarchar"),
                ("lsn", "decimal"),
                ("mark_time", "datetime"),
            ],
            m.logmarks
                .iter()
                .map(|l| {
                    vec![
                        text(&l.database_name),
                        text(&l.mark_name),
                        text(&l.description),
                        text(&l.user_name),
                        Value::Decimal(l.lsn.to_string()),
                        dt(l.mark_time),
                    ]
                })
                .collect(),
        ),
        "restorehistory" => t(
            &[
                ("restore_history_id", "int"),
                ("restore_date", "datetime"),
                ("destination_database_name", "nvarchar"),
                ("user_name", "nvarchar"),
                ("backup_set_id", "int"),
                ("restore_type", "nvarchar"),
                ("replace", "bit"),
                ("recovery", "bit"),
                ("restart", "bit"),
                ("stop_at", "datetime"),
                ("device_count", "tinyint"),
                ("stop_at_mark_name", "nvarchar"),
                ("stop_before", "bit"),
            ],
            m.restores
                .iter()
                .map(|r| {
                    vec![
                        int(r.restore_history_id),
                        dt(r.restore_date),
                        text(&r.destination_database_name),
                        text(&r.user_name),
                        int(r.backup_set_id),
                        text(r.restore_type.to_string()),
                        bit(r.replace),
                        bit(r.recovery),
                        bit(false),
                        Value::Null,
                        int(1),
                        opt_text(&r.stop_at_mark_name),
                        bit(r.stop_before),
                    ]
                })
                .collect(),
        ),
        _ => return None,
    })
}

/// The BizTalkMgmtDb tables this instance serves: the live ones on the management instance,
/// a restored copy's on a destination after recovery.
pub fn mgmt_of<'c>(ctx: &'c Ctx) -> Option<&'c super::state::Mgmt> {
    if ctx.inst == ctx.g.mgmt.instance {
        Some(&ctx.g.mgmt)
    } else {
        ctx.instance().restored_mgmt.as_ref()
    }
}

fn mgmt_table(ctx: &Ctx, obj: &str) -> Option<Table> {
    let mg = mgmt_of(ctx)?;
    Some(match obj {
        "adm_backuphistory" => t(
            &HistoryRow::COLUMNS,
            mg.history.iter().map(|h| h.values()).collect(),
        ),
        "admv_backupdatabases" => t(
            &[("ServerName", "nvarchar"), ("DatabaseName", "nvarchar")],
            mg.backup_databases()
                .into_iter()
                .map(|(s, d)| vec![text(s), text(d)])
                .collect(),
        ),
        "adm_otherbackupdatabases" => t(
            &[
                ("DefaultDatabaseName", "nvarchar"),
                ("DatabaseName", "nvarchar"),
                ("ServerName", "nvarchar"),
                ("BTSServerName", "nvarchar"),
            ],
            mg.others
                .iter()
                .map(|o| {
                    vec![
                        text(&o.default_name),
                        text(&o.database_name),
                        text(&o.server_name),
                        text(&o.bts_server_name),
                    ]
                })
                .collect(),
        ),
        "adm_backupsettings" if mg.has_backup_settings => t(
            &[("UseCompression", "bit"), ("ForceFull", "bit")],
            vec![vec![bit(mg.use_compression), bit(mg.force_full)]],
        ),
        "adm_forcefullbackup" if !mg.has_backup_settings => {
            t(&[("ForceFull", "bit")], vec![vec![bit(mg.force_full)]])
        }
        // adm_Group as BizTalk's table script defines it (every server/database column NOT NULL,
        // '' when the feature is not configured): SSDT import of BizTalkMgmtDb
        // (satyaveena/BT dbo/Tables/adm_Group.sql) and the column list UpdateDatabase.vbs
        // updates. Only the location columns are modelled.
        "adm_group" => {
            let find = |db: &str| {
                mg.core_dbs
                    .iter()
                    .find(|(_, d)| d.eq_ignore_ascii_case(db))
                    .map(|(s, d)| (s.clone(), d.clone()))
            };
            let (ts, td) = find("BizTalkDTADb").unwrap_or_default();
            let (rs, rd) = find("BizTalkRuleEngineDb").unwrap_or_default();
            let (bs, bd) = find("BAMPrimaryImport").unwrap_or_default();
            // Tracking Analysis is an Analysis Services database: no scenario configures it.
            let (ams, amd) = (String::new(), String::new());
            // SSOServerName: UpdateDatabase.vbs writes the SSO database's new server here.
            let ss = mg
                .others
                .iter()
                .find(|o| o.default_name.eq_ignore_ascii_case("SSO"))
                .map(|o| o.server_name.clone())
                .or_else(|| find("SSODB").map(|(s, _)| s))
                .unwrap_or_default();
            let master = mg.msgboxes.iter().find(|m| m.is_master);
            t(
                &[
                    ("Id", "int"),
                    ("Name", "nvarchar"),
                    ("TrackingDBServerName", "nvarchar"),
                    ("TrackingDBName", "nvarchar"),
                    ("SubscriptionDBServerName", "nvarchar"),
                    ("SubscriptionDBName", "nvarchar"),
                    ("TrackAnalysisServerName", "nvarchar"),
                    ("TrackAnalysisDBName", "nvarchar"),
                    ("BamDBServerName", "nvarchar"),
                    ("BamDBName", "nvarchar"),
                    ("RuleEngineDBServerName", "nvarchar"),
                    ("RuleEngineDBName", "nvarchar"),
                    ("SSOServerName", "nvarchar"),
                ],
                vec![vec![
                    int(1),
                    text(&mg.group_name),
                    text(ts),
                    text(td),
                    text(master.map(|m| m.server.clone()).unwrap_or_default()),
                    text(master.map(|m| m.db.clone()).unwrap_or_default()),
                    text(ams),
                    text(amd),
                    text(bs),
                    text(bd),
                    text(rs),
                    text(rd),
                    text(ss),
                ]],
            )
        }
        // adm_MessageBox: IsMasterMsgBox and DisableNewMsgPublication are INT; the master is -1
        // (BizTalk 2020 BTS_Administration_Logic.sql: "IsMasterMsgBox is set to -1 for Master
        // Message Box"; SSDT dbo/Tables/adm_MessageBox.sql).
        "adm_messagebox" => t(
            &[
                ("Id", "int"),
                ("DBServerName", "nvarchar"),
                ("DBName", "nvarchar"),
                ("DisableNewMsgPublication", "int"),
                ("IsMasterMsgBox", "int"),
            ],
            mg.msgboxes
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    vec![
                        int(i as i64 + 1),
                        text(&m.server),
                        text(&m.db),
                        int(0),
                        int(if m.is_master { -1 } else { 0 }),
                    ]
                })
                .collect(),
        ),
        _ => return None,
    })
}

fn master_table(ctx: &Ctx, obj: &str) -> Option<Table> {
    let inst = ctx.instance();
    if !inst.ls_procs_installed {
        return None;
    }
    let ls = &inst.log_shipping;
    Some(match obj {
        "bts_logshippingdatabases" => t(
            &[
                ("DatabaseName", "nvarchar"),
                ("ServerName", "nvarchar"),
                ("DBFileLocation", "nvarchar"),
                ("LogFileLocation", "nvarchar"),
            ],
            ls.databases
                .iter()
                .map(|d| {
                    vec![
                        text(&d.database_name),
                        text(&d.server_name),
                        opt_text(&d.db_file_location),
                        opt_text(&d.log_file_location),
                    ]
                })
                .collect(),
        ),
        "bts_logshippinghistory" => t(
            &[
                &HistoryRow::COLUMNS[..],
                &[("Restored", "bit"), ("RestoredDateTime", "datetime")],
            ]
            .concat(),
            ls.history
                .iter()
                .map(|r| {
                    let mut v = r.h.values();
                    v.extend([bit(r.restored), r.restored_at.map_or(Value::Null, dt)]);
                    v
                })
                .collect(),
        ),
        "bts_logshippinglastrestoreset" => t(
            &[
                ("LastRestoreSetId", "int"),
                ("MarkName", "nvarchar"),
                ("RestoreDateTime", "datetime"),
            ],
            match ls.last_restore_set {
                Some(id) => vec![vec![
                    int(id),
                    opt_text(&ls.last_restore_mark),
                    ls.last_restore_at.map_or(Value::Null, dt),
                ]],
                None => vec![],
            },
        ),
        _ => return None,
    })
}

fn marklog(ctx: &Ctx, db: &str) -> Option<Table> {
    let d = ctx.instance().db(db)?;
    if !d.has_marklog {
        return None;
    }
    Some(t(
        &[("MarkName", "nvarchar"), ("DateTime", "datetime")],
        d.marklog
            .iter()
            .map(|m| vec![text(&m.mark_name), dt(m.at)])
            .collect(),
    ))
}

/// `OBJECT_ID(name[, type])`: tables/views (type U/V or none) and procedures (P).
pub fn object_exists(ctx: &mut Ctx, name: &str, ty: Option<&str>) -> bool {
    let Ok(toks) = super::lex::lex(name) else {
        return false;
    };
    let parts: Vec<String> = toks
        .iter()
        .filter_map(|t| t.word().map(str::to_string))
        .collect();
    if parts.is_empty() {
        return false;
    }
    let want_proc = ty.is_some_and(|t| t.trim().eq_ignore_ascii_case("P"));
    let want_table = ty.is_none_or(|t| matches!(t.trim().to_ascii_uppercase().as_str(), "U" | "V"));
    if (want_proc || ty.is_none()) && super::procs::find(ctx, &parts).is_some() {
        return true;
    }
    if want_table {
        let saved = ctx.b.error.clone();
        let ok = resolve(ctx, &parts).is_ok();
        ctx.b.error = saved;
        return ok;
    }
    false
}

pub fn object_id(name: &str) -> i64 {
    let mut h: i64 = 1_000_003;
    for c in name
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !"[]".contains(*c))
    {
        h = (h.wrapping_mul(31).wrapping_add(c as i64)) % 2_000_000_000;
    }
    h.abs() + 1
}

fn table_key(ctx: &Ctx, parts: &[String]) -> R<(String, String)> {
    let (db, _, obj) = split(ctx, parts)?;
    Ok((db.to_ascii_lowercase(), obj.to_ascii_lowercase()))
}

/// INSERT into a model table (only the ones operators legitimately write).
pub fn insert(
    ctx: &mut Ctx,
    target: &[String],
    columns: &[String],
    rows: Vec<Vec<Value>>,
) -> R<()> {
    let (db, obj) = table_key(ctx, target)?;
    let base = resolve(ctx, target)?;
    let mgmt = db == ctx.g.mgmt.db_name.to_ascii_lowercase() && ctx.inst == ctx.g.mgmt.instance;
    if !(mgmt && obj == "adm_otherbackupdatabases") {
        return Err(Fail::one(
            40100,
            format!(
                "btsdr simulator: writes to {} are not simulated",
                target.join(".")
            ),
        ));
    }
    for r in rows {
        let mut full = vec![Value::Null; base.cols.len()];
        let idx: Vec<usize> = if columns.is_empty() {
            (0..base.cols.len()).collect()
        } else {
            columns
                .iter()
                .map(|c| {
                    base.cols
                        .iter()
                        .position(|(n, _)| n.eq_ignore_ascii_case(c))
                        .ok_or_else(|| Fail::one(207, format!("Invalid column name '{c}'.")))
                })
                .collect::<R<_>>()?
        };
        if idx.len() != r.len() {
            return Err(Fail::one(
                213,
                "Column name or number of supplied values does not match table definition.",
            ));
        }
        for (i, v) in idx.into_iter().zip(r) {
            full[i] = v;
        }
        let s = |i: usize| full[i].to_string();
        if full.iter().any(Value::is_null) {
            return Err(Fail::one(
                515,
                "Cannot insert the value NULL into a column of adm_OtherBackupDatabases; column does not allow nulls. INSERT fails.",
            ));
        }
        ctx.g.mgmt.others.push(super::state::OtherBackupDb {
            default_name: s(0),
            database_name: s(1),
            server_name: s(2),
            bts_server_name: s(3),
        });
    }
    Ok(())
}

fn matching(ctx: &mut Ctx, table: &Table, qual: &str, where_: Option<&Expr>) -> R<Vec<usize>> {
    let cols: Vec<(String, String)> = table
        .cols
        .iter()
        .map(|(c, _)| (qual.to_string(), c.clone()))
        .collect();
    let mut out = Vec::new();
    for (i, r) in table.rows.iter().enumerate() {
        let hit = match where_ {
            Some(w) => {
                truth(&ctx.eval(
                    w,
                    &Scope {
                        cols: &cols,
                        vals: r,
                        group: None,
                        out: None,
                        parent: None,
                    },
                )?) == Some(true)
            }
            None => true,
        };
        if hit {
            out.push(i);
        }
    }
    Ok(out)
}

/// UPDATE on a model table: `bts_LogShippingDatabases` locations, the force-full flag, job enablement.
pub fn update(
    ctx: &mut Ctx,
    target: &[String],
    alias: Option<&str>,
    sets: &[(String, Expr)],
    where_: Option<&Expr>,
) -> R<usize> {
    if let Some(name) = target.first().and_then(|t| t.strip_prefix('@')) {
        let key = name.to_ascii_lowercase();
        let Some(tv) = ctx.b.tvars.get(&key).cloned() else {
            return Err(Fail::one(
                1087,
                format!("Must declare the table variable \"@{name}\"."),
            ));
        };
        let hits = matching(ctx, &tv, alias.unwrap_or(&format!("@{name}")), where_)?;
        let mut tv2 = tv.clone();
        let cols: Vec<(String, String)> = tv
            .cols
            .iter()
            .map(|(c, _)| (format!("@{name}"), c.clone()))
            .collect();
        for &i in &hits {
            for (c, e) in sets {
                let ci = tv
                    .cols
                    .iter()
                    .position(|(n, _)| n.eq_ignore_ascii_case(c))
                    .ok_or_else(|| Fail::one(207, format!("Invalid column name '{c}'.")))?;
                let v = ctx.eval(
                    e,
                    &Scope {
                        cols: &cols,
                        vals: &tv.rows[i],
                        group: None,
                        out: None,
                        parent: None,
                    },
                )?;
                tv2.rows[i][ci] = cast(v, &tv.cols[ci].1)?;
            }
        }
        ctx.b.tvars.insert(key, tv2);
        return Ok(hits.len());
    }
    let (db, obj) = table_key(ctx, target)?;
    let table = resolve(ctx, target)?;
    let qual = alias
        .map(str::to_string)
        .unwrap_or_else(|| target.last().cloned().unwrap_or_default());
    let hits = matching(ctx, &table, &qual, where_)?;
    let cols: Vec<(String, String)> = table
        .cols
        .iter()
        .map(|(c, _)| (qual.clone(), c.clone()))
        .collect();
    let mut new_vals: Vec<(usize, Vec<(String, Value)>)> = Vec::new();
    for &i in &hits {
        let mut row_sets = Vec::new();
        for (c, e) in sets {
            if !table.cols.iter().any(|(n, _)| n.eq_ignore_ascii_case(c)) {
                return Err(Fail::one(207, format!("Invalid column name '{c}'.")));
            }
            let v = ctx.eval(
                e,
                &Scope {
                    cols: &cols,
                    vals: &table.rows[i],
                    group: None,
                    out: None,
                    parent: None,
                },
            )?;
            row_sets.push((c.to_ascii_lowercase(), v));
        }
        new_vals.push((i, row_sets));
    }
    let mgmt = db == ctx.g.mgmt.db_name.to_ascii_lowercase() && ctx.inst == ctx.g.mgmt.instance;
    match obj.as_str() {
        "bts_logshippingdatabases" if db == "master" => {
            let ls = &mut ctx.instance_mut().log_shipping;
            for (i, sets) in new_vals {
                let Some(d) = ls.databases.get_mut(i) else {
                    continue;
                };
                for (c, v) in sets {
                    match c.as_str() {
                        "dbfilelocation" => d.db_file_location = super::value::as_text(&v),
                        "logfilelocation" => d.log_file_location = super::value::as_text(&v),
                        _ => {
                            return Err(Fail::one(
                                40100,
                                format!(
                                    "btsdr simulator: updating bts_LogShippingDatabases.{c} is not simulated"
                                ),
                            ));
                        }
                    }
                }
            }
        }
        "adm_backupsettings" | "adm_forcefullbackup" if mgmt => {
            for (_, sets) in new_vals {
                for (c, v) in sets {
                    match c.as_str() {
                        "forcefull" => ctx.g.mgmt.force_full = truth(&v) == Some(true),
                        "usecompression" => ctx.g.mgmt.use_compression = truth(&v) == Some(true),
                        _ => {}
                    }
                }
            }
        }
        _ => {
            return Err(Fail::one(
                40100,
                format!(
                    "btsdr simulator: writes to {} are not simulated",
                    target.join(".")
                ),
            ));
        }
    }
    Ok(hits.len())
}

pub fn delete(ctx: &mut Ctx, target: &[String], where_: Option<&Expr>) -> R<usize> {
    let (db, obj) = table_key(ctx, target)?;
    let table = resolve(ctx, target)?;
    let qual = target.last().cloned().unwrap_or_default();
    let hits = matching(ctx, &table, &qual, where_)?;
    let mgmt = db == ctx.g.mgmt.db_name.to_ascii_lowercase() && ctx.inst == ctx.g.mgmt.instance;
    if mgmt && obj == "adm_otherbackupdatabases" {
        let mut i = 0;
        ctx.g.mgmt.others.retain(|_| {
            let keep = !hits.contains(&i);
            i += 1;
            keep
        });
        return Ok(hits.len());
    }
    Err(Fail::one(
        40100,
        format!(
            "btsdr simulator: deleting from {} is not simulated",
            target.join(".")
        ),
    ))
}

/// Helper for other modules: is this instance the log-shipping destination?
pub fn is_destination(ctx: &Ctx) -> bool {
    ctx.instance().role == InstanceRole::Destination
}

/// The job id text for a new job.
pub fn new_job_id(n: i64) -> String {
    guid(n)
}
