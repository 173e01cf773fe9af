//! `btsdr preflight`: proves the runbooks' statements on the operator's own servers without
//! running them. For every sql and check step, on the server of its role: the objects,
//! columns, procedure parameters and job names it names are looked up in the catalog views
//! (`sys.all_objects`, `sys.schemas`, `sys.all_columns`, `sys.all_parameters`,
//! `msdb.dbo.sysjobs`), and the statement is compiled under `SET NOEXEC ON`. Nothing is
//! changed and no step's statement runs. What each check catches, and what it cannot, is in
//! `docs/PREFLIGHT.md`; the `--json` lines too.

pub mod cli;
pub mod names;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde::Serialize;

use crate::batch::answers::{Answers, resolve_variables};
use crate::batch::{Target, could_not_run};
use crate::engine::Variables;
use crate::runbook::expr::{Part, parse_template, quote_ident};
use crate::runbook::model::{Runbook, StepBody, VarKind};
use crate::sql::executor::run_once;
use btsdr_types::{Param, QueryOutput, ResultSet, Role, SqlError, Statement};
use names::{JobRef, Names, Use};

/// Version of the JSON line layout (bumped only on incompatible changes).
pub const SCHEMA_VERSION: u32 = 1;

/// Exit codes: 0 every step ok (or not applicable / cannot tell for a reason in the runbook's
/// values), 1 a step would fail, 2 preflight could not run (setup, or a server unreachable).
pub mod exit {
    pub const OK: u8 = 0;
    pub const WOULD_FAIL: u8 = 1;
    pub const COULD_NOT_RUN: u8 = 2;
}

/// How one step came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    WouldFail,
    CannotTell,
    NotApplicable,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "[ OK ]",
            Verdict::WouldFail => "[FAIL]",
            Verdict::CannotTell => "[ ?? ]",
            Verdict::NotApplicable => "[N/A ]",
        }
    }
}

/// An error SQL Server gave, or would give (from the catalog), for a step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// SQL Server's error number (from the server, or the one it raises for that case).
    pub number: Option<u32>,
    pub message: String,
    /// `compile` (SET NOEXEC ON on the server) or `catalog` (the name is not in it).
    pub source: &'static str,
}

/// One step's preflight: one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepResult {
    pub schema_version: u32,
    #[serde(rename = "type")]
    pub kind_of_line: &'static str,
    pub runbook: String,
    pub step: String,
    pub title: String,
    /// `sql` or `check`.
    pub kind: &'static str,
    pub server_role: String,
    pub server: String,
    pub database: String,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    /// Why it cannot tell or does not apply; names a statement checks for itself.
    pub notes: Vec<String>,
    /// What was checked: `compiled`, and the names looked up.
    pub checked: Checked,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Checked {
    pub compiled: bool,
    pub objects: Vec<String>,
    pub columns: Vec<String>,
    pub parameters: Vec<String>,
    pub jobs: Vec<String>,
}

/// Versions found on one server role.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerVersion {
    pub server_role: String,
    pub server: String,
    /// `SERVERPROPERTY('ProductVersion')`, e.g. `15.0.4385.2`.
    pub sql_server: Option<String>,
    pub edition: Option<String>,
    /// `ProductMajor.Minor.Build.Revision` of BizTalkDBVersion in the management database
    /// (source role only).
    pub biztalk: Option<String>,
    /// Why a version is missing.
    pub error: Option<String>,
}

impl ServerVersion {
    /// `SQL Server 15.0.4385.2 (SQL Server 2019) · BizTalk 3.13.717.0`.
    pub fn describe(&self) -> String {
        let mut s = match &self.sql_server {
            Some(v) => match sql_server_name(v) {
                Some(n) => format!("SQL Server {v} ({n})"),
                None => format!("SQL Server {v}"),
            },
            None => "SQL Server version unknown".into(),
        };
        if let Some(b) = &self.biztalk {
            s.push_str(&format!(" · BizTalk {b}"));
            if let Some(n) = biztalk_name(b) {
                s.push_str(&format!(" ({n})"));
            }
        }
        s
    }
}

/// The product name of a SQL Server major version (Microsoft: "Determine the version,
/// edition, and update level of SQL Server").
pub fn sql_server_name(product_version: &str) -> Option<&'static str> {
    Some(match product_version.split('.').next()? {
        "10" => "SQL Server 2008/2008 R2",
        "11" => "SQL Server 2012",
        "12" => "SQL Server 2014",
        "13" => "SQL Server 2016",
        "14" => "SQL Server 2017",
        "15" => "SQL Server 2019",
        "16" => "SQL Server 2022",
        "17" => "SQL Server 2025",
        _ => return None,
    })
}

/// The BizTalk release of a product version (3.13 = 2020, 3.12 = 2016, 3.11 = 2013 R2,
/// 3.10 = 2013, 3.9 = 2010: the major.minor BizTalk's registry key and About box show).
pub fn biztalk_name(v: &str) -> Option<&'static str> {
    let mut it = v.split('.');
    let (maj, min) = (it.next()?, it.next()?);
    Some(match (maj, min) {
        ("3", "13") => "BizTalk Server 2020",
        ("3", "12") => "BizTalk Server 2016",
        ("3", "11") => "BizTalk Server 2013 R2",
        ("3", "10") => "BizTalk Server 2013",
        ("3", "9") => "BizTalk Server 2010",
        _ => return None,
    })
}

/// The last JSON line: counts and versions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryLine {
    pub schema_version: u32,
    #[serde(rename = "type")]
    pub kind_of_line: &'static str,
    pub environment: String,
    pub runbooks: Vec<String>,
    pub ok: usize,
    pub would_fail: usize,
    pub cannot_tell: usize,
    pub not_applicable: usize,
    pub round_trips: usize,
    pub duration_ms: u64,
    pub versions: Vec<ServerVersion>,
    pub exit_code: u8,
}

pub struct PreflightOptions {
    pub runbooks: Vec<Arc<Runbook>>,
    pub target: Target,
    pub sets: Vec<(String, String)>,
    pub answers: Answers,
    pub json: bool,
}

#[derive(Debug, Clone)]
pub struct PreflightSummary {
    pub code: u8,
    pub results: Vec<StepResult>,
    pub versions: Vec<ServerVersion>,
    pub round_trips: usize,
    pub elapsed: Duration,
}

/// A step ready to check.
struct Prepared {
    idx: usize,
    role: Role,
    database: String,
    sql: String,
    params: Vec<(String, Param)>,
    timeout: u64,
    names: Names,
    vars: Arc<Variables>,
}

/// Catalog rows of one (role, database): (schema, name) lower case -> object.
#[derive(Debug, Default)]
struct Catalog {
    objects: HashMap<(String, String), CatObj>,
    /// Read on the source server: the database is restoring on the step's own server.
    from_source: bool,
}

#[derive(Debug, Default)]
struct CatObj {
    columns: BTreeSet<String>,
    params: BTreeSet<String>,
}

type CatKey = (Role, String);

fn text_of(rs: &ResultSet, row: usize, col: &str) -> Option<String> {
    rs.get(row, col)
        .filter(|v| !v.is_null())
        .map(|v| v.to_string())
}

/// A parameter's value, or a typed stand-in when the runbook has none yet or it is a secret:
/// under `SET NOEXEC ON` the value is never used, only its type.
fn param_for(vars: &Variables, name: &str) -> Result<Param, String> {
    // A secret is never sent for a statement that will not run.
    if vars.is_secret(name) {
        return Ok(Param::Text(String::new()));
    }
    match vars.param(name) {
        Ok(p) => Ok(p),
        Err(e) => match vars.entry(name) {
            None => Err(e),
            Some(v) => Ok(match v.kind {
                VarKind::Number => Param::Int(0),
                VarKind::Bool => Param::Bool(false),
                _ => Param::Text(String::new()),
            }),
        },
    }
}

fn render(src: &str, vars: &Variables, quote: bool) -> Result<String, String> {
    let mut out = String::new();
    for p in parse_template(src)? {
        match p {
            Part::Lit(s) => out.push_str(&s),
            Part::Ident(v) | Part::Var(v) => {
                let val = vars.get(&v).filter(|s| !s.is_empty()).ok_or_else(|| {
                    format!("variable `{v}` has no value: give it with --set {v}=VALUE")
                })?;
                if quote {
                    out.push_str(&quote_ident(val));
                } else {
                    out.push_str(val);
                }
            }
            Part::Each(..) => return Err("`{{#each}}` cannot be checked".into()),
        }
    }
    Ok(out)
}

/// Runs the preflight and writes its lines to `out` (table or JSON Lines); progress and
/// setup errors go to `err`.
// TODO(issue 16): split along its seams.
#[allow(clippy::too_many_lines)]
pub async fn preflight(
    opts: PreflightOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> PreflightSummary {
    let started = Instant::now();
    let exec = Arc::clone(&opts.target.executor);
    let mut results: Vec<StepResult> = Vec::new();
    let mut prepared: Vec<Prepared> = Vec::new();
    let mut setup_errors = Vec::new();
    // --set names any runbook declares; unknown to all of them is an error.
    for (n, _) in &opts.sets {
        if !opts.runbooks.iter().any(|rb| rb.variable(n).is_some()) {
            setup_errors.push(format!(
                "--set {n}: no selected runbook has a variable `{n}`"
            ));
        }
    }
    for rb in &opts.runbooks {
        let sets: Vec<(String, String)> = opts
            .sets
            .iter()
            .filter(|(n, _)| rb.variable(n).is_some())
            .cloned()
            .collect();
        let mut answers = opts.answers.clone();
        answers.values.retain(|n, _| rb.variable(n).is_some());
        let vars = match resolve_variables(rb, &answers, &sets, &opts.target.defaults) {
            Ok(v) => Arc::new(v),
            Err(e) => {
                setup_errors.push(format!("runbook `{}`: {e}", rb.id));
                continue;
            }
        };
        let get = |n: &str| vars.get(n).map(str::to_string);
        for (section, step) in rb.steps() {
            let (role, database, sql, params, timeout) = match step.statement() {
                Some(s) => s,
                None => continue,
            };
            let kind = match step.body {
                StepBody::Check(_) => "check",
                _ => "sql",
            };
            let mut r = StepResult {
                schema_version: SCHEMA_VERSION,
                kind_of_line: "step",
                runbook: rb.id.clone(),
                step: step.id.clone(),
                title: step.title.clone(),
                kind,
                server_role: role.to_string(),
                server: opts.target.server(role),
                database: String::new(),
                verdict: Verdict::Ok,
                findings: Vec::new(),
                notes: Vec::new(),
                checked: Checked::default(),
            };
            let when = section.when.iter().chain(step.when.iter());
            if let Some(c) = when.clone().find(|c| !c.eval(&get)) {
                r.verdict = Verdict::NotApplicable;
                r.notes.push(format!(
                    "does not apply: its condition ({}) is false for these values",
                    c.variables().join(", ")
                ));
                results.push(r);
                continue;
            }
            let db = match render(database, &vars, false) {
                Ok(d) => d,
                Err(e) => {
                    r.verdict = Verdict::CannotTell;
                    r.notes.push(format!("cannot name its database: {e}"));
                    results.push(r);
                    continue;
                }
            };
            r.database = db.clone();
            let text = match render(sql, &vars, true) {
                Ok(t) => t,
                Err(e) => {
                    r.verdict = Verdict::CannotTell;
                    r.notes.push(format!("cannot write its statement: {e}"));
                    results.push(r);
                    continue;
                }
            };
            let mut bound = Vec::new();
            let mut bad = None;
            for p in params {
                match param_for(&vars, p) {
                    Ok(v) => bound.push((p.clone(), v)),
                    Err(e) => bad = Some(e),
                }
            }
            if let Some(e) = bad {
                r.verdict = Verdict::CannotTell;
                r.notes.push(e);
                results.push(r);
                continue;
            }
            let names = names::names(&text);
            prepared.push(Prepared {
                idx: results.len(),
                role,
                database: db,
                sql: text,
                params: bound,
                timeout,
                names,
                vars: Arc::clone(&vars),
            });
            results.push(r);
        }
    }
    if !setup_errors.is_empty() {
        for e in &setup_errors {
            crate::wln!(err, "error: {e}");
        }
        return PreflightSummary {
            code: exit::COULD_NOT_RUN,
            results: Vec::new(),
            versions: Vec::new(),
            round_trips: 0,
            elapsed: started.elapsed(),
        };
    }

    // Phase 1: versions, catalog lookups and job lists, all read-only, side by side.
    let mut wanted: BTreeMap<CatKey, BTreeSet<String>> = BTreeMap::new();
    let mut job_roles: BTreeSet<Role> = BTreeSet::new();
    for p in &prepared {
        for o in &p.names.objects {
            let db = o.database().unwrap_or(&p.database).to_string();
            wanted
                .entry((p.role, db))
                .or_default()
                .insert(o.name().to_string());
        }
        if !p.names.jobs.is_empty() {
            job_roles.insert(p.role);
        }
    }
    let mgmt_db = opts
        .runbooks
        .iter()
        .find_map(|rb| {
            rb.variable("mgmt_db")
                .and_then(|_| {
                    resolve_variables(rb, &Answers::default(), &[], &opts.target.defaults).ok()
                })
                .and_then(|v| v.get("mgmt_db").map(str::to_string))
        })
        .unwrap_or_else(|| "BizTalkMgmtDb".to_string());
    let roles: Vec<Role> = opts.target.servers.keys().copied().collect();
    let version_futs = roles.iter().map(|role| {
        let exec = Arc::clone(&exec);
        let mgmt_db = mgmt_db.clone();
        let role = *role;
        let server = opts.target.server(role);
        async move { versions(&*exec, role, server, &mgmt_db).await }
    });
    let cat_futs = wanted.iter().map(|((role, db), names)| {
        let exec = Arc::clone(&exec);
        let stmt = catalog_statement(*role, db, names);
        let key = (*role, db.clone());
        async move { (key, run_once(&*exec, stmt).await) }
    });
    let job_futs = job_roles.iter().map(|role| {
        let exec = Arc::clone(&exec);
        let stmt = Statement {
            role: *role,
            database: "msdb".into(),
            sql: "SELECT j.name FROM msdb.dbo.sysjobs AS j;".into(),
            params: Vec::new(),
            timeout_secs: 60,
            long_running: false,
        };
        let role = *role;
        async move { (role, run_once(&*exec, stmt).await) }
    });
    let (versions_found, cats, jobs) = futures_util::join!(
        join_all(version_futs),
        join_all(cat_futs),
        join_all(job_futs)
    );
    let mut round_trips =
        versions_found.len() + usize::from(roles.contains(&Role::Source)) + cats.len() + jobs.len();
    let mut catalogs: HashMap<CatKey, Result<Catalog, SqlError>> = cats
        .into_iter()
        .map(|(k, r)| (k, r.map(|o| read_catalog(&o))))
        .collect();
    // A database restoring on the standby (the steps that use it run once it is recovered)
    // is a copy of the source's: its names are checked against the source's catalog.
    let restoring: Vec<(String, BTreeSet<String>)> = wanted
        .iter()
        .filter(|((role, db), _)| {
            *role != Role::Source
                && matches!(
                    catalogs.get(&(*role, db.clone())),
                    Some(Err(SqlError::Server { number: 927, .. }))
                )
        })
        .map(|((_, db), names)| (db.clone(), names.clone()))
        .collect();
    let copy_futs = restoring.iter().map(|(db, names)| {
        let exec = Arc::clone(&exec);
        let stmt = catalog_statement(Role::Source, db, names);
        let db = db.clone();
        async move { (db, run_once(&*exec, stmt).await) }
    });
    let copies = join_all(copy_futs).await;
    round_trips += copies.len();
    let mut source_copies: HashMap<String, Catalog> = HashMap::new();
    for (db, r) in copies {
        if let Ok(o) = r {
            source_copies.insert(db, read_catalog(&o));
        }
    }
    for (key, cat) in catalogs.iter_mut() {
        if let Err(SqlError::Server { number: 927, .. }) = cat
            && let Some(c) = source_copies.remove(&key.1)
        {
            *cat = Ok(Catalog {
                objects: c.objects,
                from_source: true,
            });
        }
    }
    let job_lists: HashMap<Role, Result<BTreeSet<String>, SqlError>> = jobs
        .into_iter()
        .map(|(role, r)| {
            (
                role,
                r.map(|o| {
                    o.first()
                        .map(|rs| {
                            (0..rs.rows.len())
                                .filter_map(|i| text_of(rs, i, "name"))
                                .map(|n| n.to_lowercase())
                                .collect()
                        })
                        .unwrap_or_default()
                }),
            )
        })
        .collect();

    // Phase 2: compile every statement under SET NOEXEC ON (after the catalog reads, so a
    // connection left in NOEXEC by a failed batch can only meet another NOEXEC batch).
    let compile_futs = prepared.iter().map(|p| {
        let exec = Arc::clone(&exec);
        let stmt = Statement {
            role: p.role,
            database: p.database.clone(),
            // On the statement's first line, so the server's line numbers stay the runbook's.
            sql: format!("SET NOEXEC ON; {}\n;SET NOEXEC OFF;", p.sql),
            params: p.params.clone(),
            timeout_secs: p.timeout.clamp(1, 120),
            long_running: false,
        };
        async move { run_once(&*exec, stmt).await }
    });
    let compiled = join_all(compile_futs).await;
    round_trips += compiled.len();
    let mut unreachable = false;
    for (p, res) in prepared.iter().zip(compiled) {
        let Some(r) = results.get_mut(p.idx) else {
            continue;
        };
        match res {
            Ok(_) => r.checked.compiled = true,
            Err(e) if could_not_run(&e) => {
                unreachable = true;
                r.notes.push(format!("could not compile it: {e}"));
            }
            Err(SqlError::Server {
                number, message, ..
            }) => {
                r.checked.compiled = true;
                r.findings.push(Finding {
                    number: Some(number),
                    message,
                    source: "compile",
                });
            }
            Err(e) => r.notes.push(format!("could not compile it: {e}")),
        }
        let complete = check_names(p, r, &catalogs, &job_lists, &mut unreachable);
        r.notes.dedup();
        r.verdict = if !r.findings.is_empty() {
            Verdict::WouldFail
        } else if !r.checked.compiled || !complete {
            Verdict::CannotTell
        } else {
            Verdict::Ok
        };
    }
    let count = |v: Verdict| results.iter().filter(|r| r.verdict == v).count();
    let code = if count(Verdict::WouldFail) > 0 {
        exit::WOULD_FAIL
    } else if unreachable {
        exit::COULD_NOT_RUN
    } else {
        exit::OK
    };
    let summary = PreflightSummary {
        code,
        results,
        versions: versions_found,
        round_trips,
        elapsed: started.elapsed(),
    };
    write_output(&opts, &summary, out);
    summary
}

// TODO(issue 16): split along its seams.
#[allow(clippy::too_many_lines)]
fn check_names(
    p: &Prepared,
    r: &mut StepResult,
    catalogs: &HashMap<CatKey, Result<Catalog, SqlError>>,
    job_lists: &HashMap<Role, Result<BTreeSet<String>, SqlError>>,
    unreachable: &mut bool,
) -> bool {
    let mut complete = true;
    let n = &p.names;
    for remote in &n.remote {
        r.notes
            .push(format!("`{remote}` is on a linked server: not checked"));
    }
    // object index -> catalog entry, when found
    let mut found: HashMap<usize, &CatObj> = HashMap::new();
    for (i, o) in n.objects.iter().enumerate() {
        if o.is_alias_in(n) {
            continue;
        }
        let db = o.database().unwrap_or(&p.database).to_string();
        let cat = match catalogs.get(&(p.role, db.clone())) {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                if could_not_run(e) {
                    *unreachable = true;
                }
                complete = false;
                r.notes.push(match e {
                    SqlError::Server { number: 927, .. } => format!(
                        "`{db}` is restoring on this server (the step runs once it is recovered): its names cannot be checked yet"
                    ),
                    _ => format!("could not read the catalog of `{db}`: {e}"),
                });
                continue;
            }
            None => continue,
        };
        if cat.from_source {
            r.notes.push(format!(
                "`{db}` is restoring on this server: its names were checked against the source server's copy"
            ));
        }
        r.checked.objects.push(o.display());
        let name = o.name().to_lowercase();
        let hit = match o.schema() {
            // `master.dbo.sp_who` runs sys.sp_who: an sp_ procedure not found in the schema
            // named is looked up among the system procedures (CREATE PROCEDURE, "sp_ prefix").
            Some(s) => cat
                .objects
                .get(&(s.to_lowercase(), name.clone()))
                .or_else(|| {
                    (o.used_as == Use::Proc
                        && name.starts_with("sp_")
                        && s.eq_ignore_ascii_case("dbo"))
                    .then(|| cat.objects.get(&("sys".to_string(), name.clone())))
                    .flatten()
                }),
            None => ["dbo", "sys"]
                .iter()
                .find_map(|s| cat.objects.get(&(s.to_string(), name.clone()))),
        };
        match hit {
            Some(c) => {
                found.insert(i, c);
            }
            None if n.guarded(o.name()) => r.notes.push(format!(
                "`{}` is not on this server; the statement checks for it before using it",
                o.display()
            )),
            None if o.used_as == Use::Proc && o.parts.len() == 1 && name.starts_with("sp_") => {
                r.notes.push(format!(
                    "`{}` is not in `{db}`: not checked (a system procedure resolves from master)",
                    o.display()
                ))
            }
            None => r.findings.push(match o.used_as {
                Use::Table => Finding {
                    number: Some(208),
                    message: format!("Invalid object name '{}'.", o.display()),
                    source: "catalog",
                },
                Use::Proc => Finding {
                    number: Some(2812),
                    message: format!("Could not find stored procedure '{}'.", o.display()),
                    source: "catalog",
                },
            }),
        }
    }
    for (i, col) in &n.columns {
        let Some(c) = found.get(i) else { continue };
        if c.columns.is_empty() {
            continue;
        }
        let obj = &n.objects[*i];
        r.checked.columns.push(format!("{}.{col}", obj.name()));
        if !c.columns.contains(&col.to_lowercase()) {
            r.findings.push(Finding {
                number: Some(207),
                message: format!("Invalid column name '{col}' (of {}).", obj.display()),
                source: "catalog",
            });
        }
    }
    for (i, param) in &n.params {
        let Some(c) = found.get(i) else { continue };
        let obj = &n.objects[*i];
        // sp_executesql takes the parameters its statement declares.
        if obj.name().eq_ignore_ascii_case("sp_executesql") {
            continue;
        }
        r.checked
            .parameters
            .push(format!("{} @{param}", obj.name()));
        if !c.params.contains(&format!("@{}", param.to_lowercase())) {
            r.findings.push(Finding {
                number: Some(8145),
                message: format!("@{param} is not a parameter for procedure {}.", obj.name()),
                source: "catalog",
            });
        }
    }
    for j in &n.jobs {
        let name = match j {
            JobRef::Literal(s) => s.clone(),
            JobRef::Var(v) => {
                let is_param = p.params.iter().any(|(n, _)| n.eq_ignore_ascii_case(v));
                match p.vars.get(v).filter(|s| !s.is_empty()) {
                    Some(s) if is_param => s.to_string(),
                    _ if is_param => {
                        complete = false;
                        r.notes.push(format!(
                            "the job name comes from `{v}`, which has no value: give it with --set {v}=VALUE"
                        ));
                        continue;
                    }
                    _ => {
                        r.notes.push(format!(
                            "a job name the statement computes (@{v}) is not checked"
                        ));
                        continue;
                    }
                }
            }
        };
        match job_lists.get(&p.role) {
            Some(Ok(list)) => {
                r.checked.jobs.push(name.clone());
                if !list.contains(&name.to_lowercase()) {
                    r.findings.push(Finding {
                        number: Some(14262),
                        message: format!("The specified @job_name ('{name}') does not exist."),
                        source: "catalog",
                    });
                }
            }
            Some(Err(e)) => {
                if could_not_run(e) {
                    *unreachable = true;
                }
                complete = false;
                r.notes
                    .push(format!("could not list the SQL Agent jobs: {e}"));
            }
            None => {}
        }
    }
    complete
}

/// One batch per (role, database): the objects named, their columns and parameters. Names
/// are bound as parameters; the database is a quoted identifier.
fn catalog_statement(role: Role, db: &str, names: &BTreeSet<String>) -> Statement {
    let prefix = if db.is_empty() {
        String::new()
    } else {
        format!("{}.", quote_ident(db))
    };
    let list: Vec<String> = (1..=names.len()).map(|i| format!("@n{i}")).collect();
    let list = list.join(", ");
    let sql = format!(
        "SELECT s.name AS schema_name, o.name AS object_name, o.object_id, o.type \
         FROM {prefix}sys.all_objects AS o JOIN {prefix}sys.schemas AS s ON s.schema_id = o.schema_id \
         WHERE o.name IN ({list});\n\
         SELECT c.object_id, c.name FROM {prefix}sys.all_columns AS c \
         WHERE c.object_id IN (SELECT o.object_id FROM {prefix}sys.all_objects AS o WHERE o.name IN ({list}));\n\
         SELECT p.object_id, p.name FROM {prefix}sys.all_parameters AS p \
         WHERE p.object_id IN (SELECT o.object_id FROM {prefix}sys.all_objects AS o WHERE o.name IN ({list}));"
    );
    Statement {
        role,
        database: String::new(),
        sql,
        params: names
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("n{}", i + 1), Param::Text(n.clone())))
            .collect(),
        timeout_secs: 60,
        long_running: false,
    }
}

fn read_catalog(o: &QueryOutput) -> Catalog {
    let mut cat = Catalog::default();
    let mut by_id: HashMap<String, (String, String)> = HashMap::new();
    if let Some(rs) = o.sets.first() {
        for i in 0..rs.rows.len() {
            let (Some(s), Some(n), Some(id)) = (
                text_of(rs, i, "schema_name"),
                text_of(rs, i, "object_name"),
                text_of(rs, i, "object_id"),
            ) else {
                continue;
            };
            let key = (s.to_lowercase(), n.to_lowercase());
            cat.objects.entry(key.clone()).or_default();
            by_id.insert(id, key);
        }
    }
    for (set, is_col) in [(1usize, true), (2, false)] {
        let Some(rs) = o.sets.get(set) else { continue };
        for i in 0..rs.rows.len() {
            let (Some(id), Some(n)) = (text_of(rs, i, "object_id"), text_of(rs, i, "name")) else {
                continue;
            };
            if let Some(key) = by_id.get(&id)
                && let Some(obj) = cat.objects.get_mut(key)
            {
                if is_col {
                    obj.columns.insert(n.to_lowercase());
                } else {
                    obj.params.insert(n.to_lowercase());
                }
            }
        }
    }
    cat
}

/// Reads one role's versions: `SERVERPROPERTY('ProductVersion')` and `Edition`, and on the
/// source the BizTalk product version from `<mgmt_db>.dbo.BizTalkDBVersion` (for the status
/// bar and the report as well as preflight; read-only, 1-2 round trips).
pub async fn detect_versions(
    exec: &dyn crate::sql::executor::Executor,
    role: Role,
    server: String,
    mgmt_db: &str,
) -> ServerVersion {
    versions(exec, role, server, mgmt_db).await
}

async fn versions(
    exec: &dyn crate::sql::executor::Executor,
    role: Role,
    server: String,
    mgmt_db: &str,
) -> ServerVersion {
    let mut v = ServerVersion {
        server_role: role.to_string(),
        server,
        ..ServerVersion::default()
    };
    let stmt = Statement {
        role,
        database: String::new(),
        sql: "SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS product_version, \
              CAST(SERVERPROPERTY('Edition') AS nvarchar(128)) AS edition;"
            .into(),
        params: Vec::new(),
        timeout_secs: 30,
        long_running: false,
    };
    match run_once(exec, stmt).await {
        Ok(o) => {
            if let Some(rs) = o.first() {
                v.sql_server = text_of(rs, 0, "product_version");
                v.edition = text_of(rs, 0, "edition");
            }
        }
        Err(e) => v.error = Some(e.to_string()),
    }
    if role != Role::Source || v.error.is_some() {
        return v;
    }
    let stmt = Statement {
        role,
        database: mgmt_db.to_string(),
        sql: "SELECT TOP (1) v.ProductMajor, v.ProductMinor, v.ProductBuildNumber, v.ProductRevision \
              FROM dbo.BizTalkDBVersion AS v \
              ORDER BY v.ProductMajor DESC, v.ProductMinor DESC, v.ProductBuildNumber DESC, v.ProductRevision DESC;"
            .into(),
        params: Vec::new(),
        timeout_secs: 30,
        long_running: false,
    };
    match run_once(exec, stmt).await {
        Ok(o) => {
            if let Some(rs) = o.first() {
                let parts: Vec<String> = [
                    "ProductMajor",
                    "ProductMinor",
                    "ProductBuildNumber",
                    "ProductRevision",
                ]
                .iter()
                .filter_map(|c| text_of(rs, 0, c))
                .collect();
                if parts.len() == 4 {
                    v.biztalk = Some(parts.join("."));
                }
            }
        }
        Err(e) => {
            v.error = Some(format!(
                "BizTalk version from {mgmt_db}.dbo.BizTalkDBVersion: {e}"
            ))
        }
    }
    v
}

fn write_output(opts: &PreflightOptions, s: &PreflightSummary, out: &mut dyn Write) {
    let count = |v: Verdict| s.results.iter().filter(|r| r.verdict == v).count();
    if opts.json {
        for r in &s.results {
            if let Ok(line) = serde_json::to_string(r) {
                crate::wln!(out, "{line}");
            }
        }
        let line = SummaryLine {
            schema_version: SCHEMA_VERSION,
            kind_of_line: "summary",
            environment: opts.target.environment.clone(),
            runbooks: opts.runbooks.iter().map(|r| r.id.clone()).collect(),
            ok: count(Verdict::Ok),
            would_fail: count(Verdict::WouldFail),
            cannot_tell: count(Verdict::CannotTell),
            not_applicable: count(Verdict::NotApplicable),
            round_trips: s.round_trips,
            duration_ms: s.elapsed.as_millis() as u64,
            versions: s.versions.clone(),
            exit_code: s.code,
        };
        if let Ok(l) = serde_json::to_string(&line) {
            crate::wln!(out, "{l}");
        }
        return;
    }
    crate::wln!(
        out,
        "preflight · {} · runbooks {} · read-only: nothing was run or changed",
        opts.target.environment,
        opts.runbooks
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for v in &s.versions {
        match &v.error {
            Some(e) => crate::wln!(
                out,
                "  {} {}: {} — {e}",
                v.server_role,
                v.server,
                v.describe()
            ),
            None => crate::wln!(out, "  {} {}: {}", v.server_role, v.server, v.describe()),
        }
    }
    for r in &s.results {
        let what = if r.database.is_empty() {
            r.server_role.clone()
        } else {
            format!("{} · {}", r.server_role, r.database)
        };
        let mut checked = Vec::new();
        if r.checked.compiled {
            checked.push("compiled".to_string());
        }
        for (n, label) in [
            (r.checked.objects.len(), "objects"),
            (r.checked.columns.len(), "columns"),
            (r.checked.parameters.len(), "parameters"),
            (r.checked.jobs.len(), "jobs"),
        ] {
            if n > 0 {
                checked.push(format!("{n} {label}"));
            }
        }
        crate::wln!(
            out,
            "{} {}:{}  {what}  {}",
            r.verdict.label(),
            r.runbook,
            r.step,
            checked.join(", ")
        );
        for f in &r.findings {
            match f.number {
                Some(n) => crate::wln!(
                    out,
                    "       would fail: Msg {n}: {} ({})",
                    f.message,
                    f.source
                ),
                None => crate::wln!(out, "       would fail: {} ({})", f.message, f.source),
            }
        }
        for n in &r.notes {
            crate::wln!(out, "       {n}");
        }
    }
    crate::wln!(
        out,
        "{} ok · {} would fail · {} cannot tell · {} not applicable · {} round trips · {:.1} s",
        count(Verdict::Ok),
        count(Verdict::WouldFail),
        count(Verdict::CannotTell),
        count(Verdict::NotApplicable),
        s.round_trips,
        s.elapsed.as_secs_f64()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_missing_values_are_bound_as_typed_stand_ins() {
        let mut v = Variables::new();
        v.declare("pw", VarKind::Secret, Some("hunter2".into()));
        v.declare("n", VarKind::Number, None);
        v.declare("flag", VarKind::Bool, None);
        v.declare("job", VarKind::Text, Some("Backup".into()));
        assert_eq!(param_for(&v, "pw"), Ok(Param::Text(String::new())));
        assert_eq!(param_for(&v, "n"), Ok(Param::Int(0)));
        assert_eq!(param_for(&v, "flag"), Ok(Param::Bool(false)));
        assert_eq!(param_for(&v, "job"), Ok(Param::Text("Backup".into())));
        assert!(param_for(&v, "undeclared").is_err());
    }

    #[test]
    fn version_names() {
        assert_eq!(sql_server_name("15.0.4385.2"), Some("SQL Server 2019"));
        assert_eq!(sql_server_name("9.0.1"), None);
        assert_eq!(biztalk_name("3.13.717.0"), Some("BizTalk Server 2020"));
        assert_eq!(biztalk_name("3"), None);
    }
}
