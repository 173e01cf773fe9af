//! The catalog views a preflight reads (`sys.all_objects`, `sys.objects`, `sys.tables`,
//! `sys.schemas`, `sys.all_columns`, `sys.columns`, `sys.all_parameters`, `sys.parameters`),
//! built from what the model actually serves: an object is listed only when a query naming
//! it would find it on this instance, with the columns it would return, so the catalog and
//! execution never disagree. Also `BizTalkDBVersion` (the BizTalk version) and the
//! `schema-drift` knobs (columns and procedure parameters a version does not have).
//!
//! Sources: Microsoft's catalog view pages ("sys.objects", "sys.all_objects", "sys.columns",
//! "sys.parameters", "sys.schemas": learn.microsoft.com/sql/relational-databases/
//! system-catalog-views/). `sys.objects` lists user-schema objects of the current database;
//! `sys.all_objects` adds the system objects (schema `sys`). schema_id 1 is `dbo`, 4 `sys`.
//! Not modelled: principal_id, create/modify dates, types and nullability of columns.

use super::exec::{Ctx, Fail, R};
use super::procs::{Home, PROCS};
use super::tables::{Table, object_id, resolve};
use super::value::{int, text};
use btsdr_types::Value;

const DBO: i64 = 1;
const SYS: i64 = 4;

/// The catalog views this module answers (lower case, schema `sys`).
pub const VIEWS: &[&str] = &[
    "all_objects",
    "objects",
    "tables",
    "schemas",
    "all_columns",
    "columns",
    "all_parameters",
    "parameters",
];

/// System views of the model (schema `sys`), as `tables::resolve` serves them.
const SYS_VIEWS: &[&str] = &[
    "databases",
    "master_files",
    "configurations",
    "server_principals",
    "syslogins",
    "sql_logins",
    "server_role_members",
    "dm_server_services",
    "dm_exec_requests",
    "dm_exec_sessions",
    "servers",
    "database_principals",
    "database_role_members",
];

/// msdb tables and views of the model (`sysjobs_view` is a view in msdb).
const MSDB: &[&str] = &[
    "sysjobs",
    "sysjobs_view",
    "sysjobsteps",
    "sysschedules",
    "sysjobschedules",
    "sysjobhistory",
    "syssessions",
    "sysjobactivity",
    "backupset",
    "backupmediafamily",
    "logmarkhistory",
    "restorehistory",
];

/// BizTalkMgmtDb tables and views of the model (as BizTalk spells them).
const MGMT: &[&str] = &[
    "adm_BackupHistory",
    "admv_BackupDatabases",
    "adm_OtherBackupDatabases",
    "adm_BackupSettings",
    "adm_ForceFullBackup",
    "adm_Group",
    "adm_MessageBox",
    "BizTalkDBVersion",
];

/// Log-shipping tables BizTalk's LogShipping_Destination_Schema.sql creates in master.
const LS_MASTER: &[&str] = &[
    "bts_LogShippingDatabases",
    "bts_LogShippingHistory",
    "bts_LogShippingLastRestoreSet",
];

/// One object of a database's catalog.
struct Obj {
    id: i64,
    schema_id: i64,
    name: String,
    /// `U` table, `V` view, `P` procedure, `X` extended procedure.
    ty: &'static str,
    shipped: bool,
    columns: Vec<String>,
    params: Vec<String>,
}

fn type_desc(ty: &str) -> &'static str {
    match ty {
        "U" => "USER_TABLE",
        "V" => "VIEW",
        "P" => "SQL_STORED_PROCEDURE",
        "X" => "EXTENDED_STORED_PROCEDURE",
        _ => "SYSTEM_TABLE",
    }
}

/// The BizTalk product version `BizTalkDBVersion` reports: BizTalk Server 2020 (3.13.717.0,
/// the RTM build as "About BizTalk Server Administration" shows it; not checked against a
/// CU). The database version columns are left at 0: their values are unknown here.
pub const BIZTALK_PRODUCT: (i64, i64, i64, i64) = (3, 13, 717, 0);

/// `BizTalkDBVersion` in BizTalkMgmtDb (columns as BizTalk's table script defines them: an
/// SSDT import of BizTalkMgmtDb, `CREATE TABLE [dbo].[BizTalkDBVersion]`).
pub fn biztalk_db_version(db_name: &str) -> Table {
    let (a, b, c, d) = BIZTALK_PRODUCT;
    Table {
        cols: [
            ("BizTalkDBName", "nvarchar"),
            ("DatabaseMajor", "int"),
            ("DatabaseMinor", "int"),
            ("DatabaseBuildNumber", "int"),
            ("DatabaseRevision", "int"),
            ("ProductMajor", "int"),
            ("ProductMinor", "int"),
            ("ProductBuildNumber", "int"),
            ("ProductRevision", "int"),
            ("ProductLanguage", "nvarchar"),
            ("Description", "nvarchar"),
        ]
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect(),
        rows: vec![vec![
            text(db_name),
            int(0),
            int(0),
            int(0),
            int(0),
            int(a),
            int(b),
            int(c),
            int(d),
            text("en-US"),
            text("BizTalk Management Database"),
        ]],
        identity: None,
    }
}

/// Removes the columns a `schema-drift` scenario says this version does not have.
pub fn drift_table(ctx: &Ctx, obj: &str, mut t: Table) -> Table {
    let drop: Vec<usize> = t
        .cols
        .iter()
        .enumerate()
        .filter(|(_, (c, _))| {
            ctx.g
                .faults
                .drop_columns
                .iter()
                .any(|(o, dc)| o.eq_ignore_ascii_case(obj) && dc.eq_ignore_ascii_case(c))
        })
        .map(|(i, _)| i)
        .collect();
    if drop.is_empty() {
        return t;
    }
    for i in drop.iter().rev() {
        t.cols.remove(*i);
        for r in &mut t.rows {
            if *i < r.len() {
                r.remove(*i);
            }
        }
    }
    t
}

/// True when a `schema-drift` scenario removed `param` from procedure `proc`.
pub fn param_dropped(ctx: &Ctx, proc: &str, param: &str) -> bool {
    let param = param.trim_start_matches('@');
    ctx.g
        .faults
        .drop_params
        .iter()
        .any(|(p, n)| p.eq_ignore_ascii_case(proc) && n.eq_ignore_ascii_case(param))
}

fn table_obj(ctx: &mut Ctx, db: &str, schema: &str, name: &str, ty: &'static str) -> Option<Obj> {
    let parts = [db.to_string(), schema.to_string(), name.to_string()];
    let saved = ctx.b.error.clone();
    let found = resolve(ctx, &parts).ok();
    ctx.b.error = saved;
    let t = found?;
    Some(Obj {
        id: object_id(&parts.join(".")),
        schema_id: if schema == "sys" { SYS } else { DBO },
        name: name.to_string(),
        ty,
        shipped: schema == "sys" || db.eq_ignore_ascii_case("msdb"),
        columns: t.cols.into_iter().map(|(c, _)| c).collect(),
        params: Vec::new(),
    })
}

/// Every object of database `db` on this instance that the model serves.
fn objects(ctx: &mut Ctx, db: &str) -> Vec<Obj> {
    let mut out = Vec::new();
    for v in SYS_VIEWS {
        out.extend(table_obj(ctx, db, "sys", v, "V"));
    }
    let is_mgmt = db.eq_ignore_ascii_case(&ctx.g.mgmt.db_name);
    let names: &[&str] = if db.eq_ignore_ascii_case("msdb") {
        MSDB
    } else if is_mgmt {
        MGMT
    } else if db.eq_ignore_ascii_case("master") {
        LS_MASTER
    } else {
        &[]
    };
    for v in VIEWS {
        out.push(Obj {
            id: object_id(&format!("{db}.sys.{v}")),
            schema_id: SYS,
            name: v.to_string(),
            ty: "V",
            shipped: true,
            columns: view_columns(v).iter().map(|(c, _)| c.to_string()).collect(),
            params: Vec::new(),
        });
    }
    for n in names {
        let ty = if n.eq_ignore_ascii_case("sysjobs_view") || n.starts_with("admv_") {
            "V"
        } else {
            "U"
        };
        out.extend(table_obj(ctx, db, "dbo", n, ty));
    }
    if !is_mgmt {
        out.extend(table_obj(ctx, db, "dbo", "MarkLog", "U"));
    }
    for p in PROCS {
        let (schema, ty) = match p.home {
            Home::System
                if p.name.eq_ignore_ascii_case("sp_executesql")
                    || p.name.eq_ignore_ascii_case("xp_dirtree") =>
            {
                ("sys", "X")
            }
            Home::System => ("sys", "P"),
            _ => ("dbo", "P"),
        };
        let parts = [db.to_string(), schema.to_string(), p.name.to_string()];
        if super::procs::find(ctx, &parts).is_none() {
            continue;
        }
        // sp_ procedures of master (log shipping) are reachable from every database by a
        // one-part name, but they are objects of master only.
        if p.home == Home::LsMaster && !db.eq_ignore_ascii_case("master") {
            continue;
        }
        out.push(Obj {
            id: object_id(&parts.join(".")),
            schema_id: if schema == "sys" { SYS } else { DBO },
            name: p.name.to_string(),
            ty,
            shipped: schema == "sys" || p.home == Home::Msdb,
            columns: Vec::new(),
            params: p
                .params
                .iter()
                .filter(|(n, _, _)| !param_dropped(ctx, p.name, n))
                .map(|(n, _, _)| format!("@{n}"))
                .collect(),
        });
    }
    out
}

fn cols(names: &[(&str, &str)]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

const OBJECT_COLS: &[(&str, &str)] = &[
    ("name", "sysname"),
    ("object_id", "int"),
    ("schema_id", "int"),
    ("parent_object_id", "int"),
    ("type", "char(2)"),
    ("type_desc", "nvarchar(60)"),
    ("is_ms_shipped", "bit"),
];
const COLUMN_COLS: &[(&str, &str)] = &[
    ("object_id", "int"),
    ("name", "sysname"),
    ("column_id", "int"),
];
const PARAM_COLS: &[(&str, &str)] = &[
    ("object_id", "int"),
    ("name", "sysname"),
    ("parameter_id", "int"),
    ("is_output", "bit"),
];
const SCHEMA_COLS: &[(&str, &str)] = &[("name", "sysname"), ("schema_id", "int")];

fn view_columns(view: &str) -> &'static [(&'static str, &'static str)] {
    match view {
        "schemas" => SCHEMA_COLS,
        "all_columns" | "columns" => COLUMN_COLS,
        "all_parameters" | "parameters" => PARAM_COLS,
        _ => OBJECT_COLS,
    }
}

/// A catalog view of database `db` (`view` lower case, one of [`VIEWS`]).
pub fn view(ctx: &mut Ctx, db: &str, view: &str) -> R<Table> {
    if view == "schemas" {
        return Ok(Table {
            cols: cols(SCHEMA_COLS),
            rows: vec![vec![text("dbo"), int(DBO)], vec![text("sys"), int(SYS)]],
            identity: None,
        });
    }
    let all = view.starts_with("all_");
    let objs: Vec<Obj> = objects(ctx, db)
        .into_iter()
        .filter(|o| all || o.schema_id != SYS)
        .collect();
    let t = match view {
        "all_objects" | "objects" | "tables" => Table {
            cols: cols(OBJECT_COLS),
            rows: objs
                .iter()
                .filter(|o| view != "tables" || o.ty == "U")
                .map(|o| {
                    vec![
                        text(&o.name),
                        int(o.id),
                        int(o.schema_id),
                        int(0),
                        text(o.ty),
                        text(type_desc(o.ty)),
                        Value::Bool(o.shipped),
                    ]
                })
                .collect(),
            identity: None,
        },
        "all_columns" | "columns" => Table {
            cols: cols(COLUMN_COLS),
            rows: objs
                .iter()
                .flat_map(|o| {
                    o.columns
                        .iter()
                        .enumerate()
                        .map(|(i, c)| vec![int(o.id), text(c), int(i as i64 + 1)])
                })
                .collect(),
            identity: None,
        },
        "all_parameters" | "parameters" => Table {
            cols: cols(PARAM_COLS),
            rows: objs
                .iter()
                .flat_map(|o| {
                    o.params.iter().enumerate().map(|(i, p)| {
                        vec![int(o.id), text(p), int(i as i64 + 1), Value::Bool(false)]
                    })
                })
                .collect(),
            identity: None,
        },
        other => {
            return Err(Fail::one(
                208,
                format!("Invalid object name 'sys.{other}'."),
            ));
        }
    };
    Ok(t)
}
