//! Executes parsed statements against the group: control flow, expressions, SELECT over the
//! virtual tables, and dispatch of EXEC / BACKUP / RESTORE to the handler modules.

use std::collections::HashMap;

use chrono::{Datelike, Duration, NaiveDateTime, Timelike};

use super::lex::excerpt;
use super::parse::{
    BinOp, Decl, Expr, InsertSource, JoinKind, SelItem, Select, Stmt, TableRef, TranOp,
};
use super::state::{Group, InstanceId};
use super::tables::{self, Table};
use super::value::{as_dt, as_i64, as_text, compare, dt, infer_type, like, truth};
use super::{media, procs};
use crate::backend::Reply;
use btsdr_types::{Column, ResultSet, Value};
use std::sync::Arc;

/// One SQL Server error message.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrMsg {
    pub number: u32,
    pub severity: u8,
    pub state: u8,
    pub message: String,
    pub procedure: String,
    pub line: u32,
}

impl ErrMsg {
    pub fn new(number: u32, message: impl Into<String>) -> ErrMsg {
        ErrMsg {
            number,
            severity: 16,
            state: 1,
            message: message.into(),
            procedure: String::new(),
            line: 1,
        }
    }
    pub fn reply(&self) -> Reply {
        Reply::Error {
            number: self.number,
            severity: self.severity,
            state: self.state,
            message: self.message.clone(),
            procedure: self.procedure.clone(),
            line: self.line,
        }
    }
}

/// A failed statement: the messages in order; TRY/CATCH sees the last one.
#[derive(Debug, Clone, PartialEq)]
pub struct Fail(pub Vec<ErrMsg>);

impl Fail {
    pub fn one(number: u32, message: impl Into<String>) -> Fail {
        Fail(vec![ErrMsg::new(number, message)])
    }
    pub fn last(&self) -> Option<&ErrMsg> {
        self.0.last()
    }
}

impl From<ErrMsg> for Fail {
    fn from(e: ErrMsg) -> Fail {
        Fail(vec![e])
    }
}

pub type R<T> = Result<T, Fail>;

/// Syntax error (102) naming the statement.
pub fn syntax(msg: &str, sql: &str) -> Fail {
    Fail::one(
        if msg == super::parse::TOO_DEEP {
            191
        } else {
            102
        },
        format!("{msg} (simulator, statement: {})", excerpt(sql)),
    )
}

/// A statement the simulator does not model: never a silent success.
pub fn not_simulated(what: &str) -> Fail {
    Fail::one(
        40100,
        format!(
            "btsdr simulator: this statement is not simulated: {}",
            excerpt(what)
        ),
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Flow {
    Normal,
    Break,
    Continue,
    Return,
}

/// A RESTORE that takes real time; the caller waits, then applies it.
#[derive(Debug, Clone)]
pub struct LongWork {
    pub command: String,
    pub database: String,
    pub secs: f64,
    pub plan: media::RestorePlan,
}

/// Session-level state that lives across the statements of one request.
#[derive(Debug, Clone, Default)]
pub struct BatchState {
    pub db: String,
    pub login: String,
    pub spid: u16,
    pub vars: HashMap<String, Value>,
    pub tvars: HashMap<String, Table>,
    pub out: Vec<Reply>,
    pub error: Option<ErrMsg>,
    /// Inside a SQL Agent job step or nested proc: no real-time waits.
    pub in_job: bool,
    pub long: Option<LongWork>,
    pub rowcount: i64,
    /// Common table expressions of the query being run.
    pub ctes: Vec<(String, Select)>,
    /// Per-statement caches (the state does not change inside one statement): virtual tables
    /// by name, and subquery results by (query id, outer values).
    pub tcache: HashMap<String, std::sync::Arc<Table>>,
    pub memo: HashMap<(u32, String), std::sync::Arc<Table>>,
    pub outer: HashMap<u32, Vec<Vec<String>>>,
    /// The session's open transaction (`@@TRANCOUNT` > 0), carried across requests.
    pub tran: Option<Transaction>,
    /// A WAITFOR DELAY the caller sleeps (outside the lock) after the current statement.
    pub delay: Option<std::time::Duration>,
    /// `SET NOEXEC ON`: later statements are compiled, not run (until `SET NOEXEC OFF`).
    pub noexec: bool,
    /// `SET PARSEONLY ON`: later statements are only parsed (until `SET PARSEONLY OFF`).
    pub parseonly: bool,
    /// `SET FMTONLY ON`, carried across requests (per session) by `SimBackend`.
    pub fmtonly: bool,
}

/// An open transaction: its nesting and the instance as it was at the outermost BEGIN.
/// ROLLBACK puts that copy back: the simulator has no locks, so changes other sessions made
/// meanwhile are undone too.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub count: u32,
    pub before: Box<super::state::Instance>,
}

pub struct Ctx<'g> {
    pub g: &'g mut Group,
    pub inst: InstanceId,
    pub b: &'g mut BatchState,
    /// Nesting depth of statements (0 = top level of the request).
    pub depth: usize,
}

/// Names visible to an expression: a row of a FROM clause, its group and an outer row.
#[derive(Clone, Copy)]
pub struct Scope<'s> {
    pub cols: &'s [(String, String)],
    pub vals: &'s [Value],
    pub group: Option<&'s [Vec<Value>]>,
    pub out: Option<(&'s [String], &'s [Value])>,
    pub parent: Option<&'s Scope<'s>>,
}

impl<'s> Scope<'s> {
    pub const EMPTY: Scope<'static> = Scope {
        cols: &[],
        vals: &[],
        group: None,
        out: None,
        parent: None,
    };

    fn lookup(&self, parts: &[String]) -> Option<Value> {
        self.lookup_ref(parts).cloned()
    }

    /// The value a column name refers to, without copying it.
    fn lookup_ref(&self, parts: &[String]) -> Option<&'s Value> {
        static NULL: Value = Value::Null;
        let name = parts.last()?;
        if parts.len() == 1
            && let Some((names, vals)) = self.out
            && let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(name))
        {
            return vals.get(i);
        }
        let qual = if parts.len() >= 2 {
            Some(&parts[parts.len() - 2])
        } else {
            None
        };
        let found = self.cols.iter().position(|(q, c)| {
            c.eq_ignore_ascii_case(name) && qual.is_none_or(|qq| q.eq_ignore_ascii_case(qq))
        });
        match found {
            Some(i) => Some(self.vals.get(i).unwrap_or(&NULL)),
            None => self.parent.and_then(|p| p.lookup_ref(parts)),
        }
    }
}

/// `hh:mm[:ss[.fff]]` of WAITFOR DELAY (at most 24 hours, as SQL Server allows).
fn waitfor_delay(text: &str) -> Option<std::time::Duration> {
    let mut parts = text.trim().split(':');
    let h: u64 = parts.next()?.trim().parse().ok()?;
    let m: u64 = parts.next()?.trim().parse().ok()?;
    let s: f64 = match parts.next() {
        Some(s) => s.trim().parse().ok()?,
        None => 0.0,
    };
    if parts.next().is_some() || m > 59 || !(0.0..60.0).contains(&s) || h > 24 {
        return None;
    }
    let secs = (h * 3600 + m * 60) as f64 + s;
    (secs <= 86_400.0).then(|| std::time::Duration::from_secs_f64(secs))
}

/// The most values (rows x columns) one FROM clause may build, joins included: the
/// simulator's memory bound (docs/PERFORMANCE.md, measured by `cargo bench --bench
/// sim_memory`). SQL Server has no such limit; the error says it is the simulator's.
pub const MAX_QUERY_CELLS: usize = 500_000;

fn too_many_rows() -> Fail {
    Fail::one(
        40100,
        format!(
            "btsdr simulator: the query builds more than {MAX_QUERY_CELLS} values (rows x \
             columns), the simulator's memory bound (docs/PERFORMANCE.md); SQL Server would \
             stream them"
        ),
    )
}

/// The longest string REPLICATE builds (16 M characters, 32 MB as nvarchar).
const MAX_REPLICATE_CHARS: usize = 16 * 1024 * 1024;

const AGGS: &[&str] = &[
    "count",
    "count_big",
    "max",
    "min",
    "sum",
    "avg",
    "string_agg",
];

fn has_agg(e: &Expr) -> bool {
    match e {
        Expr::Func { name, args, .. } => AGGS.contains(&name.as_str()) || args.iter().any(has_agg),
        Expr::Neg(a) | Expr::Not(a) | Expr::Cast(a, _) | Expr::IsNull(a, _) => has_agg(a),
        Expr::Bin(_, a, b) | Expr::Like(a, b, _) => has_agg(a) || has_agg(b),
        Expr::Between(a, b, c, _) => has_agg(a) || has_agg(b) || has_agg(c),
        Expr::InList(a, l, _) => has_agg(a) || l.iter().any(has_agg),
        Expr::InSelect(a, _, _) => has_agg(a),
        Expr::Case {
            operand,
            whens,
            default,
        } => {
            operand.as_deref().is_some_and(has_agg)
                || whens.iter().any(|(w, t)| has_agg(w) || has_agg(t))
                || default.as_deref().is_some_and(has_agg)
        }
        _ => false,
    }
}

impl<'g> Ctx<'g> {
    pub fn instance(&self) -> &super::state::Instance {
        &self.g.instances[self.inst]
    }
    pub fn instance_mut(&mut self) -> &mut super::state::Instance {
        &mut self.g.instances[self.inst]
    }
    pub fn server_name(&self) -> String {
        self.g.instances[self.inst].server_name.clone()
    }

    /// BEGIN / COMMIT / ROLLBACK over a copy of the instance (SQL Server's messages 3902/3903).
    fn transaction(&mut self, op: TranOp) -> R<()> {
        match (op, self.b.tran.as_mut()) {
            (TranOp::Begin, Some(t)) => t.count += 1,
            (TranOp::Begin, None) => {
                let before = Box::new(self.instance().clone());
                self.b.tran = Some(Transaction { count: 1, before });
            }
            (TranOp::Commit, Some(t)) => {
                t.count -= 1;
                if t.count == 0 {
                    self.b.tran = None;
                }
            }
            (TranOp::Rollback(true), Some(t)) if t.count > 1 => {
                return Err(Fail::one(
                    40100,
                    "btsdr simulator: rolling back to a named savepoint inside nested transactions is not simulated".to_string(),
                ));
            }
            (TranOp::Rollback(_), Some(_)) => {
                if let Some(t) = self.b.tran.take() {
                    *self.instance_mut() = *t.before;
                }
            }
            (TranOp::Commit, None) => {
                return Err(Fail::one(
                    3902,
                    "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.",
                ));
            }
            (TranOp::Rollback(_), None) => {
                return Err(Fail::one(
                    3903,
                    "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.",
                ));
            }
        }
        Ok(())
    }

    pub fn run_block(&mut self, stmts: &[Stmt]) -> R<Flow> {
        for s in stmts {
            let f = self.run(s)?;
            if f != Flow::Normal {
                return Ok(f);
            }
        }
        Ok(Flow::Normal)
    }

    pub fn run(&mut self, s: &Stmt) -> R<Flow> {
        self.depth += 1;
        let r = self.run_inner(s);
        self.depth -= 1;
        r
    }

    // TODO(issue 16): split (one function per statement kind).
    #[allow(clippy::too_many_lines)]
    fn run_inner(&mut self, s: &Stmt) -> R<Flow> {
        self.b.tcache.clear();
        self.b.memo.clear();
        if let Stmt::SetExecMode { parse_only, on } = s {
            // PARSEONLY takes effect at parse time, so under it a SET NOEXEC is not run;
            // NOEXEC OFF is honoured while NOEXEC is on (it is how a script turns it off).
            if *parse_only {
                self.b.parseonly = *on;
            } else if !self.b.parseonly {
                self.b.noexec = *on;
            }
            return Ok(Flow::Normal);
        }
        if self.b.noexec || self.b.parseonly {
            // The batch was parsed (a syntax error already failed it) and nothing else runs.
            // SQL Server also binds columns of existing tables under NOEXEC (error 207);
            // the simulator does not (docs/PREFLIGHT.md).
            return Ok(Flow::Normal);
        }
        match s {
            Stmt::Select(sel) => {
                if sel.items.iter().any(|i| matches!(i, SelItem::Assign(..))) {
                    self.select_assign(sel)?;
                } else {
                    let rs = self.select(sel, None)?;
                    self.b.rowcount = rs.rows.len() as i64;
                    self.b.out.push(Reply::Rows(to_result_set(rs)));
                }
            }
            Stmt::Declare(decls) => {
                for d in decls {
                    match d {
                        Decl::Scalar { name, ty, init } => {
                            let v = match init {
                                Some(e) => cast(self.eval(e, &Scope::EMPTY)?, ty)?,
                                None => Value::Null,
                            };
                            self.b.vars.insert(name.to_ascii_lowercase(), v);
                        }
                        Decl::Table { name, columns } => {
                            let t = Table {
                                cols: columns
                                    .iter()
                                    .map(|(n, ty, _)| (n.clone(), ty.clone()))
                                    .collect(),
                                rows: Vec::new(),
                                identity: columns.iter().position(|c| c.2),
                            };
                            self.b.tvars.insert(name.to_ascii_lowercase(), t);
                        }
                    }
                }
            }
            Stmt::Set(name, op, e) => {
                let key = name.to_ascii_lowercase();
                if !self.b.vars.contains_key(&key) {
                    return Err(Fail::one(
                        137,
                        format!("Must declare the scalar variable \"@{name}\"."),
                    ));
                }
                let mut v = self.eval(e, &Scope::EMPTY)?;
                if let Some(op) = op {
                    let cur = self.b.vars.get(&key).cloned().unwrap_or(Value::Null);
                    v = arith(*op, &cur, &v)?;
                }
                self.b.vars.insert(key, v);
            }
            Stmt::SetExecMode { .. } => {}
            Stmt::SetOption { options, on } => {
                for o in options {
                    match (o.as_str(), *on) {
                        ("nocount", Some(on)) => self.b.out.push(Reply::Counts(!on)),
                        ("fmtonly", Some(on)) => self.b.fmtonly = on,
                        _ => {}
                    }
                }
            }
            Stmt::Tran(op) => self.transaction(*op)?,
            Stmt::If(c, t, e) => {
                let v = self.eval(c, &Scope::EMPTY)?;
                if truth(&v) == Some(true) {
                    return self.run(t);
                } else if let Some(e) = e {
                    return self.run(e);
                }
            }
            Stmt::While(c, body) => {
                let mut guard = 0;
                while truth(&self.eval(c, &Scope::EMPTY)?) == Some(true) {
                    guard += 1;
                    if guard > 100_000 {
                        return Err(Fail::one(
                            40101,
                            "btsdr simulator: a WHILE loop ran more than 100,000 times",
                        ));
                    }
                    match self.run(body)? {
                        Flow::Break => break,
                        Flow::Return => return Ok(Flow::Return),
                        _ => {}
                    }
                }
            }
            Stmt::Block(stmts) => return self.run_block(stmts),
            Stmt::Try(body, catch) => match self.run(body) {
                Ok(f) => return Ok(f),
                Err(fail) => {
                    self.b.error = fail.last().cloned();
                    let f = self.run(catch)?;
                    return Ok(f);
                }
            },
            Stmt::Throw(None) => {
                return Err(match &self.b.error {
                    Some(e) => Fail(vec![e.clone()]),
                    None => Fail::one(
                        10704,
                        "To rethrow an error, a THROW statement must be used inside a CATCH block.",
                    ),
                });
            }
            Stmt::Throw(Some((n, m, st))) => {
                let n = as_i64(&self.eval(n, &Scope::EMPTY)?).unwrap_or(50000);
                let m = as_text(&self.eval(m, &Scope::EMPTY)?).unwrap_or_default();
                let st = as_i64(&self.eval(st, &Scope::EMPTY)?).unwrap_or(1);
                let mut e = ErrMsg::new(n.clamp(50000, i64::from(i32::MAX)) as u32, m);
                e.state = st.clamp(0, 255) as u8;
                return Err(Fail(vec![e]));
            }
            Stmt::Raiserror(m, sev, st, args) => {
                let m = as_text(&self.eval(m, &Scope::EMPTY)?).unwrap_or_default();
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.eval(a, &Scope::EMPTY)?);
                }
                let m = raiserror_format(&m, &vals);
                let sev = as_i64(&self.eval(sev, &Scope::EMPTY)?).unwrap_or(16);
                let st = as_i64(&self.eval(st, &Scope::EMPTY)?).unwrap_or(1);
                if sev <= 10 {
                    self.b.out.push(Reply::Info {
                        number: 50000,
                        message: m,
                    });
                } else {
                    let mut e = ErrMsg::new(50000, m);
                    e.severity = sev.clamp(0, 25) as u8;
                    e.state = st.clamp(0, 255) as u8;
                    return Err(Fail(vec![e]));
                }
            }
            Stmt::Exec { proc, args } => {
                let mut vals = Vec::new();
                for (n, e) in args {
                    vals.push((n.clone(), self.eval(e, &Scope::EMPTY)?));
                }
                let parameterised = vals.len() > 2
                    && proc
                        .last()
                        .is_some_and(|p| p.eq_ignore_ascii_case("sp_executesql"));
                if parameterised {
                    self.executesql_with_params(vals)?;
                } else {
                    procs::call(self, proc, vals)?;
                }
            }
            Stmt::ExecSql(e) => {
                let text = as_text(&self.eval(e, &Scope::EMPTY)?).unwrap_or_default();
                self.run_text(&text)?;
            }
            Stmt::Use(db) => {
                let Some(d) = self.instance().db(db).map(|d| (d.name.clone(), d.state)) else {
                    return Err(Fail::one(
                        911,
                        format!(
                            "Database '{db}' does not exist. Make sure that the name is entered correctly."
                        ),
                    ));
                };
                if d.1 != super::state::DbState::Online {
                    return Err(Fail::one(
                        927,
                        format!(
                            "Database '{}' cannot be opened. It is in the middle of a restore.",
                            d.0
                        ),
                    ));
                }
                self.b.db = d.0;
            }
            Stmt::Print(e) => {
                let m = as_text(&self.eval(e, &Scope::EMPTY)?).unwrap_or_default();
                self.b.out.push(Reply::Info {
                    number: 0,
                    message: m,
                });
            }
            Stmt::Return => return Ok(Flow::Return),
            Stmt::Break => return Ok(Flow::Break),
            Stmt::Continue => return Ok(Flow::Continue),
            Stmt::Reconfigure => procs::reconfigure(self),
            Stmt::WaitFor(e) => {
                let text = super::value::as_text(&self.eval(e, &Scope::EMPTY)?).unwrap_or_default();
                let Some(d) = waitfor_delay(&text) else {
                    return Err(Fail::one(
                        148,
                        format!("Incorrect time syntax in time string '{text}' used with WAITFOR."),
                    ));
                };
                // Job steps run on simulated time: no real wait there.
                if !self.b.in_job {
                    self.b.delay = Some(self.b.delay.unwrap_or_default() + d);
                }
            }
            Stmt::Insert {
                target,
                columns,
                source,
            } => self.insert(target, columns, source)?,
            Stmt::Update {
                target,
                alias,
                sets,
                where_,
            } => self.update(target, alias.as_deref(), sets, where_.as_ref())?,
            Stmt::Delete { target, where_ } => self.delete(target, where_.as_ref())?,
            Stmt::Backup(b) => media::backup(self, b)?,
            Stmt::Restore(r) => media::restore(self, r)?,
            Stmt::Other(text) => {
                return Err(not_simulated(text));
            }
        }
        Ok(Flow::Normal)
    }

    /// Runs T-SQL text (a job step command or dynamic SQL) in this context.
    /// `EXEC sp_executesql N'stmt', N'@a int, @b nvarchar(10)', @a = 1, N'x'`: the statement
    /// runs with only its declared parameters as variables (its own scope, as in SQL Server).
    fn executesql_with_params(&mut self, vals: Vec<(Option<String>, Value)>) -> R<()> {
        let mut vals = vals.into_iter();
        let stmt = vals
            .next()
            .and_then(|(_, v)| as_text(&v))
            .unwrap_or_default();
        let decl = vals
            .next()
            .and_then(|(_, v)| as_text(&v))
            .unwrap_or_default();
        let rest: Vec<(Option<String>, Value)> = vals.collect();
        let declared: Vec<String> = crate::tds::rpc::name_values(&decl, vec![None; rest.len()])
            .into_iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        let mut scope = HashMap::new();
        for (i, (name, v)) in rest.into_iter().enumerate() {
            let key = match name {
                Some(n) => n.trim_start_matches('@').to_ascii_lowercase(),
                None => declared.get(i).cloned().unwrap_or_default(),
            };
            if !declared.contains(&key) {
                return Err(Fail::one(
                    8145,
                    format!("@{key} is not a parameter for procedure sp_executesql."),
                ));
            }
            scope.insert(key, v);
        }
        for d in &declared {
            scope.entry(d.clone()).or_insert(Value::Null);
        }
        let outer = std::mem::replace(&mut self.b.vars, scope);
        let r = self.run_text(&stmt);
        self.b.vars = outer;
        r.map(|_| ())
    }

    pub fn run_text(&mut self, text: &str) -> R<Flow> {
        let toks = super::lex::lex(text).map_err(|e| syntax(&e, text))?;
        let stmts = super::parse::parse_batch(&toks).map_err(|e| syntax(&e, text))?;
        self.run_block(&stmts)
    }

    fn select_assign(&mut self, sel: &Select) -> R<()> {
        // SELECT @a = x, @b = y FROM ...: the last row wins.
        let mut plain = sel.clone();
        let mut targets = Vec::new();
        plain.items = sel
            .items
            .iter()
            .map(|i| match i {
                SelItem::Assign(v, e) => {
                    targets.push(v.to_ascii_lowercase());
                    SelItem::Expr(e.clone(), Some(v.clone()))
                }
                other => other.clone(),
            })
            .collect();
        let t = self.select(&plain, None)?;
        if let Some(row) = t.rows.last() {
            for (i, v) in targets.iter().enumerate() {
                let val = row.get(i).cloned().unwrap_or(Value::Null);
                self.b.vars.insert(v.clone(), val);
            }
        }
        self.b.rowcount = t.rows.len() as i64;
        Ok(())
    }

    // ---- tables --------------------------------------------------------------------------

    fn table(&mut self, tr: &TableRef, parent: Option<&Scope>) -> R<(String, Arc<Table>)> {
        match tr {
            TableRef::Named { parts, alias } => {
                if parts.len() == 1
                    && let Some((_, q)) = self
                        .b
                        .ctes
                        .iter()
                        .rev()
                        .find(|(n, _)| n.eq_ignore_ascii_case(&parts[0]))
                        .cloned()
                {
                    let t = Arc::new(self.select(&q, parent)?);
                    return Ok((alias.clone().unwrap_or_else(|| parts[0].clone()), t));
                }
                let key = parts.join(".").to_ascii_lowercase();
                let t = match self.b.tcache.get(&key) {
                    Some(t) => Arc::clone(t),
                    None => {
                        let t = self.shared_table(parts)?;
                        self.b.tcache.insert(key, Arc::clone(&t));
                        t
                    }
                };
                let q = alias
                    .clone()
                    .unwrap_or_else(|| parts.last().cloned().unwrap_or_default());
                Ok((q, t))
            }
            TableRef::Derived { select, alias } => {
                Ok((alias.clone(), Arc::new(self.select(select, parent)?)))
            }
            TableRef::Var { name, alias } => {
                let t = self
                    .b
                    .tvars
                    .get(&name.to_ascii_lowercase())
                    .cloned()
                    .ok_or_else(|| {
                        Fail::one(
                            1087,
                            format!("Must declare the table variable \"@{name}\"."),
                        )
                    })?;
                let t = Table {
                    cols: t
                        .cols
                        .into_iter()
                        .map(|(n, ty)| (n, base_type(&ty)))
                        .collect(),
                    ..t
                };
                Ok((
                    alias.clone().unwrap_or_else(|| format!("@{name}")),
                    Arc::new(t),
                ))
            }
        }
    }

    /// A named table, reused from an earlier statement when it is one of the big catalog
    /// tables and the rows it is built from are unchanged (`tables::source_hash`).
    fn shared_table(&mut self, parts: &[String]) -> R<Arc<Table>> {
        let Some((name, hash)) = tables::source_hash(self, parts) else {
            return Ok(Arc::new(tables::resolve(self, parts)?));
        };
        let slot = (self.inst, name);
        if let Some((h, t)) = self.g.shared_tables.get(&slot)
            && *h == hash
        {
            return Ok(Arc::clone(t));
        }
        // Out of date: freed before the new one is built, so two never coexist.
        self.g.shared_tables.remove(&slot);
        let t = Arc::new(tables::resolve(self, parts)?);
        self.g.shared_tables.insert(slot, (hash, Arc::clone(&t)));
        Ok(t)
    }

    /// Runs a SELECT; the result keeps the output column names and SQL types.
    pub fn select(&mut self, sel: &Select, parent: Option<&Scope>) -> R<Table> {
        let n = self.b.ctes.len();
        self.b.ctes.extend(sel.ctes.iter().cloned());
        let r = self.select_union(sel, parent);
        self.b.ctes.truncate(n);
        r
    }

    fn select_union(&mut self, sel: &Select, parent: Option<&Scope>) -> R<Table> {
        let mut t = self.select_core(sel, parent)?;
        for (all, next) in &sel.unions {
            let u = self.select_core(next, parent)?;
            if u.cols.len() != t.cols.len() {
                return Err(Fail::one(
                    205,
                    "All queries combined using a UNION, INTERSECT or EXCEPT operator must have an equal number of expressions in their target lists.",
                ));
            }
            for r in u.rows {
                if *all || !t.rows.iter().any(|x| keys_equal(x, &r)) {
                    t.rows.push(r);
                }
            }
        }
        Ok(t)
    }

    /// A subquery's rows, cached for the statement by its outer values.
    fn sub_select(&mut self, sel: &Select, sc: &Scope) -> R<std::sync::Arc<Table>> {
        let refs = match self.b.outer.get(&sel.id) {
            Some(r) => r.clone(),
            None => {
                let r = super::parse::outer_refs(sel);
                self.b.outer.insert(sel.id, r.clone());
                r
            }
        };
        let mut key = String::new();
        for r in &refs {
            match sc.lookup(r) {
                Some(v) => {
                    key.push_str(&format!("{v:?}"));
                    key.push('\u{1f}');
                }
                None => return Ok(std::sync::Arc::new(self.select(sel, Some(sc))?)),
            }
        }
        let k = (sel.id, key);
        if let Some(t) = self.b.memo.get(&k) {
            return Ok(t.clone());
        }
        let t = std::sync::Arc::new(self.select(sel, Some(sc))?);
        self.b.memo.insert(k, t.clone());
        Ok(t)
    }

    // TODO(issue 16): split (FROM/joins, WHERE, grouping and projection as steps).
    #[allow(clippy::too_many_lines)]
    fn select_core(&mut self, sel: &Select, parent: Option<&Scope>) -> R<Table> {
        // FROM: nested-loop joins. A row is copied only once it is kept; a query over one
        // table applies its WHERE before copying (the common case: filter a big catalog view).
        let mut cols: Vec<(String, String)> = Vec::new();
        let mut types: Vec<String> = Vec::new();
        let mut rows: Vec<Vec<Value>> = vec![Vec::new()];
        let single = sel.from.len() == 1;
        let mut scratch: Vec<Value> = Vec::new();
        for (kind, tr, on) in &sel.from {
            let (q, t) = self.table(tr, parent)?;
            let mut new_cols = cols.clone();
            new_cols.extend(t.cols.iter().map(|(c, _)| (q.clone(), c.clone())));
            let mut new_rows = Vec::new();
            let index = on.as_ref().and_then(|c| EquiIndex::build(c, &q, &t));
            for l in &rows {
                let mut matched = false;
                let lsc = Scope {
                    cols: &cols,
                    vals: l,
                    group: None,
                    out: None,
                    parent,
                };
                // The rows the index names, or every row.
                let hits = index.as_ref().and_then(|ix| ix.candidates(&lsc));
                for k in 0..hits.map_or(t.rows.len(), <[usize]>::len) {
                    let r = &t.rows[hits.map_or(k, |h| h[k])];
                    // The combined row: `r` itself while nothing is on the left.
                    let combined: &[Value] = if l.is_empty() {
                        r
                    } else {
                        scratch.clear();
                        scratch.extend_from_slice(l);
                        scratch.extend_from_slice(r);
                        &scratch
                    };
                    let sc = Scope {
                        cols: &new_cols,
                        vals: combined,
                        group: None,
                        out: None,
                        parent,
                    };
                    let keep = match on {
                        Some(cond) => truth(&self.eval(cond, &sc)?) == Some(true),
                        None => true,
                    };
                    if !keep {
                        continue;
                    }
                    matched = true;
                    if single
                        && let Some(w) = &sel.where_
                        && truth(&self.eval(w, &sc)?) != Some(true)
                    {
                        continue;
                    }
                    if (new_rows.len() + 1).saturating_mul(new_cols.len().max(1)) > MAX_QUERY_CELLS
                    {
                        return Err(too_many_rows());
                    }
                    new_rows.push(combined.to_vec());
                }
                if !matched && *kind == JoinKind::Left {
                    let mut row = l.clone();
                    row.extend(std::iter::repeat_n(Value::Null, t.cols.len()));
                    if single && let Some(w) = &sel.where_ {
                        let sc = Scope {
                            cols: &new_cols,
                            vals: &row,
                            group: None,
                            out: None,
                            parent,
                        };
                        if truth(&self.eval(w, &sc)?) != Some(true) {
                            continue;
                        }
                    }
                    new_rows.push(row);
                }
            }
            types.extend(t.cols.iter().map(|(_, ty)| ty.clone()));
            cols = new_cols;
            rows = new_rows;
        }
        // WHERE (unless applied during the scan above)
        if let Some(w) = sel.where_.as_ref().filter(|_| !single) {
            let mut kept = Vec::new();
            for r in rows {
                let sc = Scope {
                    cols: &cols,
                    vals: &r,
                    group: None,
                    out: None,
                    parent,
                };
                if truth(&self.eval(w, &sc)?) == Some(true) {
                    kept.push(r);
                }
            }
            rows = kept;
        }
        // Output column names and types.
        let mut names: Vec<String> = Vec::new();
        let mut out_types: Vec<Option<String>> = Vec::new();
        for item in &sel.items {
            match item {
                SelItem::Star(q) => {
                    for (i, (qq, c)) in cols.iter().enumerate() {
                        if q.as_ref().is_none_or(|q| q.eq_ignore_ascii_case(qq)) {
                            names.push(c.clone());
                            out_types.push(types.get(i).cloned());
                        }
                    }
                }
                SelItem::Expr(e, alias) => {
                    let (name, ty) = item_name(e, alias.clone(), &cols, &types);
                    names.push(name);
                    out_types.push(ty);
                }
                SelItem::Assign(v, e) => {
                    let (name, ty) = item_name(e, Some(v.clone()), &cols, &types);
                    names.push(name);
                    out_types.push(ty);
                }
            }
        }
        let grouped = !sel.group_by.is_empty()
            || sel
                .items
                .iter()
                .any(|i| matches!(i, SelItem::Expr(e, _) | SelItem::Assign(_, e) if has_agg(e)))
            || sel.having.as_ref().is_some_and(has_agg);
        // (output row, sort keys)
        let mut out: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
        if grouped {
            let mut groups: Vec<(Vec<Value>, Vec<Vec<Value>>)> = Vec::new();
            for r in rows {
                let sc = Scope {
                    cols: &cols,
                    vals: &r,
                    group: None,
                    out: None,
                    parent,
                };
                let mut key = Vec::new();
                for g in &sel.group_by {
                    key.push(self.eval(g, &sc)?);
                }
                match groups.iter_mut().find(|(k, _)| keys_equal(k, &key)) {
                    Some((_, rs)) => rs.push(r),
                    None => groups.push((key, vec![r])),
                }
            }
            if groups.is_empty() && sel.group_by.is_empty() {
                groups.push((Vec::new(), Vec::new()));
            }
            for (_, grows) in &groups {
                let nulls = vec![Value::Null; cols.len()];
                let first = grows.first().unwrap_or(&nulls);
                let sc = Scope {
                    cols: &cols,
                    vals: first,
                    group: Some(grows),
                    out: None,
                    parent,
                };
                if let Some(h) = &sel.having
                    && truth(&self.eval(h, &sc)?) != Some(true)
                {
                    continue;
                }
                let row = self.project(sel, &sc, &cols)?;
                let osc = Scope {
                    out: Some((&names, &row)),
                    ..sc
                };
                let mut keys = Vec::new();
                for (e, _) in &sel.order_by {
                    keys.push(self.eval(e, &osc)?);
                }
                out.push((row, keys));
            }
        } else {
            for r in &rows {
                let sc = Scope {
                    cols: &cols,
                    vals: r,
                    group: None,
                    out: None,
                    parent,
                };
                let row = self.project(sel, &sc, &cols)?;
                let osc = Scope {
                    out: Some((&names, &row)),
                    ..sc
                };
                let mut keys = Vec::new();
                for (e, _) in &sel.order_by {
                    let k = match e {
                        Expr::Lit(Value::Int(n)) => row
                            .get((*n as usize).saturating_sub(1))
                            .cloned()
                            .unwrap_or(Value::Null),
                        _ => self.eval(e, &osc)?,
                    };
                    keys.push(k);
                }
                out.push((row, keys));
            }
        }
        if sel.distinct {
            let mut seen: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
            for (r, k) in out {
                if !seen.iter().any(|(s, _)| keys_equal(s, &r)) {
                    seen.push((r, k));
                }
            }
            out = seen;
        }
        if !sel.order_by.is_empty() {
            let desc: Vec<bool> = sel.order_by.iter().map(|(_, d)| *d).collect();
            out.sort_by(|a, b| {
                for (i, d) in desc.iter().enumerate() {
                    let (x, y) = (&a.1[i], &b.1[i]);
                    let o = match (x.is_null(), y.is_null()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Less,
                        (false, true) => std::cmp::Ordering::Greater,
                        _ => compare(x, y).unwrap_or(std::cmp::Ordering::Equal),
                    };
                    let o = if *d { o.reverse() } else { o };
                    if o != std::cmp::Ordering::Equal {
                        return o;
                    }
                }
                std::cmp::Ordering::Equal
            });
        }
        if let Some(t) = &sel.top {
            let n = as_i64(&self.eval(t, &Scope::EMPTY)?).unwrap_or(0).max(0) as usize;
            out.truncate(n);
        }
        let rows: Vec<Vec<Value>> = out.into_iter().map(|(r, _)| r).collect();
        let cols = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let ty = out_types.get(i).cloned().flatten().unwrap_or_else(|| {
                    let vals: Vec<&Value> = rows.iter().filter_map(|r| r.get(i)).collect();
                    infer_type(&vals).to_string()
                });
                (n.clone(), ty)
            })
            .collect();
        Ok(Table {
            cols,
            rows,
            identity: None,
        })
    }

    fn project(&mut self, sel: &Select, sc: &Scope, cols: &[(String, String)]) -> R<Vec<Value>> {
        let mut row = Vec::new();
        for item in &sel.items {
            match item {
                SelItem::Star(q) => {
                    for (i, (qq, _)) in cols.iter().enumerate() {
                        if q.as_ref().is_none_or(|q| q.eq_ignore_ascii_case(qq)) {
                            row.push(sc.vals.get(i).cloned().unwrap_or(Value::Null));
                        }
                    }
                }
                SelItem::Expr(e, _) | SelItem::Assign(_, e) => row.push(self.eval(e, sc)?),
            }
        }
        Ok(row)
    }

    // ---- DML on table variables and a few model tables ------------------------------------

    fn insert(&mut self, target: &[String], columns: &[String], source: &InsertSource) -> R<()> {
        let rows: Vec<Vec<Value>> = match source {
            InsertSource::Values(rows) => {
                let mut out = Vec::new();
                for r in rows {
                    let mut vals = Vec::new();
                    for e in r {
                        vals.push(self.eval(e, &Scope::EMPTY)?);
                    }
                    out.push(vals);
                }
                out
            }
            InsertSource::Select(s) => self.select(s, None)?.rows,
        };
        let n = rows.len();
        if let Some(name) = target.first().and_then(|t| t.strip_prefix('@')) {
            let key = name.to_ascii_lowercase();
            let Some(t) = self.b.tvars.get_mut(&key) else {
                return Err(Fail::one(
                    1087,
                    format!("Must declare the table variable \"@{name}\"."),
                ));
            };
            for r in rows {
                let mut full = vec![Value::Null; t.cols.len()];
                let targets: Vec<usize> = if columns.is_empty() {
                    (0..t.cols.len())
                        .filter(|i| Some(*i) != t.identity)
                        .collect()
                } else {
                    columns
                        .iter()
                        .map(|c| {
                            t.cols
                                .iter()
                                .position(|(n, _)| n.eq_ignore_ascii_case(c))
                                .ok_or_else(|| {
                                    Fail::one(207, format!("Invalid column name '{c}'."))
                                })
                        })
                        .collect::<R<_>>()?
                };
                if targets.len() != r.len() {
                    return Err(Fail::one(
                        213,
                        "Column name or number of supplied values does not match table definition.",
                    ));
                }
                for (i, v) in targets.into_iter().zip(r) {
                    full[i] = cast(v, &t.cols[i].1)?;
                }
                if let Some(id) = t.identity {
                    full[id] = Value::Int(t.rows.len() as i64 + 1);
                }
                t.rows.push(full);
            }
        } else {
            tables::insert(self, target, columns, rows)?;
        }
        self.b.rowcount = n as i64;
        self.b.out.push(Reply::Done {
            rows_affected: Some(n as u64),
        });
        Ok(())
    }

    fn update(
        &mut self,
        target: &[String],
        alias: Option<&str>,
        sets: &[(String, Expr)],
        where_: Option<&Expr>,
    ) -> R<()> {
        let n = tables::update(self, target, alias, sets, where_)?;
        self.b.rowcount = n as i64;
        self.b.out.push(Reply::Done {
            rows_affected: Some(n as u64),
        });
        Ok(())
    }

    fn delete(&mut self, target: &[String], where_: Option<&Expr>) -> R<()> {
        let n = if let Some(name) = target.first().and_then(|t| t.strip_prefix('@')) {
            let key = name.to_ascii_lowercase();
            let Some(t) = self.b.tvars.get(&key).cloned() else {
                return Err(Fail::one(
                    1087,
                    format!("Must declare the table variable \"@{name}\"."),
                ));
            };
            let cols: Vec<(String, String)> = t
                .cols
                .iter()
                .map(|(c, _)| (format!("@{name}"), c.clone()))
                .collect();
            let mut kept = Vec::new();
            let mut n = 0;
            for r in t.rows {
                let hit = match where_ {
                    Some(w) => {
                        truth(&self.eval(
                            w,
                            &Scope {
                                cols: &cols,
                                vals: &r,
                                group: None,
                                out: None,
                                parent: None,
                            },
                        )?) == Some(true)
                    }
                    None => true,
                };
                if hit { n += 1 } else { kept.push(r) }
            }
            if let Some(t) = self.b.tvars.get_mut(&key) {
                t.rows = kept;
            }
            n
        } else {
            tables::delete(self, target, where_)?
        };
        self.b.rowcount = n as i64;
        self.b.out.push(Reply::Done {
            rows_affected: Some(n as u64),
        });
        Ok(())
    }

    // ---- expressions ---------------------------------------------------------------------

    /// An operand of a comparison: columns and literals are borrowed, not copied.
    fn operand<'a>(&mut self, e: &'a Expr, sc: &Scope<'a>) -> R<std::borrow::Cow<'a, Value>> {
        use std::borrow::Cow;
        Ok(match e {
            Expr::Lit(v) => Cow::Borrowed(v),
            Expr::Col(parts) => match sc.lookup_ref(parts) {
                Some(v) => Cow::Borrowed(v),
                None => Cow::Owned(self.eval(e, sc)?),
            },
            _ => Cow::Owned(self.eval(e, sc)?),
        })
    }

    // TODO(issue 16): split (one function per expression kind).
    #[allow(clippy::too_many_lines)]
    pub fn eval(&mut self, e: &Expr, sc: &Scope) -> R<Value> {
        Ok(match e {
            Expr::Lit(v) => v.clone(),
            Expr::Var(v) => self.var(v)?,
            Expr::Col(parts) => match sc.lookup(parts) {
                Some(v) => v,
                None => {
                    return Err(Fail::one(
                        207,
                        format!("Invalid column name '{}'.", parts.join(".")),
                    ));
                }
            },
            Expr::Star(_) => Value::Int(1),
            Expr::Neg(a) => match self.eval(a, sc)? {
                Value::Int(i) => Value::Int(-i),
                Value::Float(f) => Value::Float(-f),
                Value::Null => Value::Null,
                other => Value::Float(-other.as_f64().unwrap_or(0.0)),
            },
            Expr::Not(a) => match truth(&self.eval(a, sc)?) {
                Some(b) => Value::Bool(!b),
                None => Value::Null,
            },
            Expr::Bin(op, a, b) => {
                match op {
                    BinOp::And => {
                        let x = truth(&self.eval(a, sc)?);
                        if x == Some(false) {
                            return Ok(Value::Bool(false));
                        }
                        let y = truth(&self.eval(b, sc)?);
                        return Ok(match (x, y) {
                            (_, Some(false)) => Value::Bool(false),
                            (Some(true), Some(true)) => Value::Bool(true),
                            _ => Value::Null,
                        });
                    }
                    BinOp::Or => {
                        let x = truth(&self.eval(a, sc)?);
                        if x == Some(true) {
                            return Ok(Value::Bool(true));
                        }
                        let y = truth(&self.eval(b, sc)?);
                        return Ok(match (x, y) {
                            (_, Some(true)) => Value::Bool(true),
                            (Some(false), Some(false)) => Value::Bool(false),
                            _ => Value::Null,
                        });
                    }
                    _ => {}
                }
                let x = self.operand(a, sc)?;
                let y = self.operand(b, sc)?;
                match op {
                    BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                        match compare(&x, &y) {
                            None => Value::Null,
                            Some(o) => Value::Bool(match op {
                                BinOp::Eq => o.is_eq(),
                                BinOp::Ne => !o.is_eq(),
                                BinOp::Lt => o.is_lt(),
                                BinOp::Le => o.is_le(),
                                BinOp::Gt => o.is_gt(),
                                _ => o.is_ge(),
                            }),
                        }
                    }
                    _ => arith(*op, &x, &y)?,
                }
            }
            Expr::Cast(a, ty) => cast(self.eval(a, sc)?, ty)?,
            Expr::Case {
                operand,
                whens,
                default,
            } => {
                let op = match operand {
                    Some(o) => Some(self.eval(o, sc)?),
                    None => None,
                };
                for (w, t) in whens {
                    let hit = match &op {
                        Some(o) => compare(o, &self.eval(w, sc)?).is_some_and(|c| c.is_eq()),
                        None => truth(&self.eval(w, sc)?) == Some(true),
                    };
                    if hit {
                        return self.eval(t, sc);
                    }
                }
                match default {
                    Some(d) => self.eval(d, sc)?,
                    None => Value::Null,
                }
            }
            Expr::IsNull(a, neg) => Value::Bool(self.eval(a, sc)?.is_null() != *neg),
            Expr::InList(a, list, neg) => {
                let x = self.eval(a, sc)?;
                if x.is_null() {
                    return Ok(Value::Null);
                }
                let mut hit = false;
                for l in list {
                    if compare(&x, &self.eval(l, sc)?).is_some_and(|o| o.is_eq()) {
                        hit = true;
                        break;
                    }
                }
                Value::Bool(hit != *neg)
            }
            Expr::InSelect(a, s, neg) => {
                let x = self.eval(a, sc)?;
                if x.is_null() {
                    return Ok(Value::Null);
                }
                let t = self.sub_select(s, sc)?;
                let hit = t.rows.iter().any(|r| {
                    r.first()
                        .is_some_and(|v| compare(&x, v).is_some_and(|o| o.is_eq()))
                });
                Value::Bool(hit != *neg)
            }
            Expr::Like(a, p, neg) => {
                let x = self.eval(a, sc)?;
                let p = self.eval(p, sc)?;
                match (as_text(&x), as_text(&p)) {
                    (Some(x), Some(p)) => Value::Bool(like(&x, &p) != *neg),
                    _ => Value::Null,
                }
            }
            Expr::Between(a, lo, hi, neg) => {
                let x = self.eval(a, sc)?;
                let lo = self.eval(lo, sc)?;
                let hi = self.eval(hi, sc)?;
                match (compare(&x, &lo), compare(&x, &hi)) {
                    (Some(l), Some(h)) => Value::Bool((l.is_ge() && h.is_le()) != *neg),
                    _ => Value::Null,
                }
            }
            Expr::Exists(s) => Value::Bool(!self.sub_select(s, sc)?.rows.is_empty()),
            Expr::Subquery(s) => {
                let t = self.sub_select(s, sc)?;
                if t.rows.len() > 1 {
                    return Err(Fail::one(
                        512,
                        "Subquery returned more than 1 value. This is not permitted when the subquery follows =, !=, <, <= , >, >= or when the subquery is used as an expression.",
                    ));
                }
                t.rows
                    .first()
                    .and_then(|r| r.first().cloned())
                    .unwrap_or(Value::Null)
            }
            Expr::Func {
                name,
                args,
                distinct,
            } => {
                if AGGS.contains(&name.as_str()) {
                    return self.aggregate(name, args, *distinct, sc);
                }
                self.func(name, args, sc)?
            }
        })
    }

    fn var(&self, v: &str) -> R<Value> {
        let lower = v.to_ascii_lowercase();
        if let Some(g) = lower.strip_prefix('@') {
            let inst = self.instance();
            return Ok(match g {
                "servername" => Value::Text(inst.server_name.clone()),
                "spid" => Value::Int(i64::from(self.b.spid)),
                "version" => Value::Text(format!(
                    "Microsoft SQL Server 2019 (RTM-CU28) (KB5039747) - {} (X64) \n\t{} (64-bit) on Windows Server 2022 Datacenter 10.0 <X64> (Build 20348: ) (Hypervisor)\n\t(btsdr simulator)",
                    inst.version, inst.edition
                )),
                "rowcount" => Value::Int(self.b.rowcount),
                "error" => Value::Int(self.b.error.as_ref().map_or(0, |e| i64::from(e.number))),
                "trancount" => Value::Int(self.b.tran.as_ref().map_or(0, |t| i64::from(t.count))),
                "servicename" => Value::Text("MSSQLSERVER".into()),
                // major << 24 | minor << 16 | build, from the instance's ProductVersion.
                "microsoftversion" => {
                    let mut part = inst
                        .version
                        .split('.')
                        .map(|p| p.parse::<i64>().unwrap_or(0));
                    let (major, minor, build) = (
                        part.next().unwrap_or(0),
                        part.next().unwrap_or(0),
                        part.next().unwrap_or(0),
                    );
                    Value::Int((major << 24) | (minor << 16) | build)
                }
                "language" => Value::Text("us_english".into()),
                "langid" => Value::Int(0),
                _ => {
                    return Err(Fail::one(
                        40100,
                        format!("btsdr simulator: @@{} is not simulated", g.to_uppercase()),
                    ));
                }
            });
        }
        match self.b.vars.get(&lower) {
            Some(v) => Ok(v.clone()),
            None => Err(Fail::one(
                137,
                format!("Must declare the scalar variable \"@{v}\"."),
            )),
        }
    }

    fn aggregate(&mut self, name: &str, args: &[Expr], distinct: bool, sc: &Scope) -> R<Value> {
        let Some(rows) = sc.group else {
            return Err(Fail::one(
                40100,
                format!(
                    "btsdr simulator: aggregate {}() outside a grouped query",
                    name.to_uppercase()
                ),
            ));
        };
        let arg = args.first().cloned().unwrap_or(Expr::Star(None));
        let mut vals = Vec::new();
        for r in rows {
            let s = Scope {
                cols: sc.cols,
                vals: r,
                group: None,
                out: None,
                parent: sc.parent,
            };
            let v = match &arg {
                Expr::Star(_) => Value::Int(1),
                e => self.eval(e, &s)?,
            };
            if !v.is_null() {
                vals.push(v);
            }
        }
        if distinct {
            let mut d: Vec<Value> = Vec::new();
            for v in vals {
                if !d.iter().any(|x| compare(x, &v).is_some_and(|o| o.is_eq())) {
                    d.push(v);
                }
            }
            vals = d;
        }
        Ok(match name {
            "count" | "count_big" => Value::Int(vals.len() as i64),
            "max" => vals
                .into_iter()
                .reduce(|a, b| {
                    if compare(&b, &a).is_some_and(|o| o.is_gt()) {
                        b
                    } else {
                        a
                    }
                })
                .unwrap_or(Value::Null),
            "min" => vals
                .into_iter()
                .reduce(|a, b| {
                    if compare(&b, &a).is_some_and(|o| o.is_lt()) {
                        b
                    } else {
                        a
                    }
                })
                .unwrap_or(Value::Null),
            "sum" | "avg" => {
                if vals.is_empty() {
                    Value::Null
                } else if vals
                    .iter()
                    .all(|v| matches!(v, Value::Int(_) | Value::Bool(_)))
                {
                    let s: i64 = vals.iter().filter_map(as_i64).sum();
                    if name == "sum" {
                        Value::Int(s)
                    } else {
                        Value::Int(s / vals.len() as i64)
                    }
                } else {
                    let s: f64 = vals.iter().filter_map(Value::as_f64).sum();
                    if name == "sum" {
                        Value::Float(s)
                    } else {
                        Value::Float(s / vals.len() as f64)
                    }
                }
            }
            _ => {
                let sep = match args.get(1) {
                    Some(e) => as_text(&self.eval(e, sc)?).unwrap_or_default(),
                    None => String::new(),
                };
                if vals.is_empty() {
                    Value::Null
                } else {
                    Value::Text(
                        vals.iter()
                            .map(|v| v.to_string())
                            .collect::<Vec<_>>()
                            .join(&sep),
                    )
                }
            }
        })
    }

    // TODO(issue 16): split (a table of built-in functions by family).
    #[allow(clippy::too_many_lines)]
    fn func(&mut self, name: &str, args: &[Expr], sc: &Scope) -> R<Value> {
        let mut a = Vec::new();
        for e in args {
            a.push(self.eval(e, sc)?);
        }
        let arg = |i: usize| a.get(i).cloned().unwrap_or(Value::Null);
        let s = |i: usize| as_text(&a.get(i).cloned().unwrap_or(Value::Null));
        let n = |i: usize| as_i64(&a.get(i).cloned().unwrap_or(Value::Null));
        Ok(match name {
            "getdate" | "sysdatetime" => dt(self.g.local_now()),
            "getutcdate" | "sysutcdatetime" => dt(self.g.now()),
            "isnull" => {
                if arg(0).is_null() {
                    arg(1)
                } else {
                    arg(0)
                }
            }
            "coalesce" => a
                .iter()
                .find(|v| !v.is_null())
                .cloned()
                .unwrap_or(Value::Null),
            "nullif" => {
                if compare(&arg(0), &arg(1)).is_some_and(|o| o.is_eq()) {
                    Value::Null
                } else {
                    arg(0)
                }
            }
            "iif" => {
                if truth(&arg(0)) == Some(true) {
                    arg(1)
                } else {
                    arg(2)
                }
            }
            "len" => s(0).map_or(Value::Null, |x| {
                Value::Int(x.trim_end().chars().count() as i64)
            }),
            "datalength" => s(0).map_or(Value::Null, |x| Value::Int(x.chars().count() as i64 * 2)),
            "upper" => s(0).map_or(Value::Null, |x| Value::Text(x.to_uppercase())),
            "lower" => s(0).map_or(Value::Null, |x| Value::Text(x.to_lowercase())),
            "ltrim" => s(0).map_or(Value::Null, |x| Value::Text(x.trim_start().to_string())),
            "rtrim" => s(0).map_or(Value::Null, |x| Value::Text(x.trim_end().to_string())),
            "trim" => s(0).map_or(Value::Null, |x| Value::Text(x.trim().to_string())),
            "reverse" => s(0).map_or(Value::Null, |x| Value::Text(x.chars().rev().collect())),
            // SQL Server truncates at 8,000 bytes unless the input is (n)varchar(max); the
            // simulator has no max flag on values, so it only bounds its own memory.
            "replicate" => match (s(0), n(1)) {
                (Some(x), Some(k)) if k >= 0 => {
                    let chars = x.chars().count().saturating_mul(k as usize);
                    if chars > MAX_REPLICATE_CHARS {
                        return Err(Fail::one(
                            40100,
                            format!(
                                "btsdr simulator: REPLICATE of {chars} characters exceeds the \
                                 simulator's {MAX_REPLICATE_CHARS}-character limit"
                            ),
                        ));
                    }
                    Value::Text(x.repeat(k as usize))
                }
                _ => Value::Null,
            },
            "left" => match (s(0), n(1)) {
                (Some(x), Some(k)) => Value::Text(x.chars().take(k.max(0) as usize).collect()),
                _ => Value::Null,
            },
            "right" => match (s(0), n(1)) {
                (Some(x), Some(k)) => {
                    let c: Vec<char> = x.chars().collect();
                    let k = (k.max(0) as usize).min(c.len());
                    Value::Text(c[c.len() - k..].iter().collect())
                }
                _ => Value::Null,
            },
            "substring" => match (s(0), n(1), n(2)) {
                (Some(x), Some(st), Some(len)) => {
                    let start = st.max(1) as usize - 1;
                    let skip_neg = if st < 1 { (1 - st) as usize } else { 0 };
                    Value::Text(
                        x.chars()
                            .skip(start)
                            .take((len.max(0) as usize).saturating_sub(skip_neg))
                            .collect(),
                    )
                }
                _ => Value::Null,
            },
            "charindex" => match (s(0), s(1)) {
                (Some(needle), Some(hay)) => {
                    let h = hay.to_lowercase();
                    let nd = needle.to_lowercase();
                    let from = n(2).unwrap_or(1).max(1) as usize - 1;
                    let hc: Vec<char> = h.chars().collect();
                    let tail: String = hc.iter().skip(from).collect();
                    match tail.find(&nd) {
                        Some(byte) => Value::Int((tail[..byte].chars().count() + from + 1) as i64),
                        None => Value::Int(0),
                    }
                }
                _ => Value::Null,
            },
            "replace" => match (s(0), s(1), s(2)) {
                (Some(x), Some(f), Some(t)) if !f.is_empty() => Value::Text(replace_ci(&x, &f, &t)),
                (Some(x), _, _) => Value::Text(x),
                _ => Value::Null,
            },
            "concat" => Value::Text(
                a.iter()
                    .filter(|v| !v.is_null())
                    .map(|v| v.to_string())
                    .collect(),
            ),
            "nchar" | "char" => n(0)
                .and_then(|c| char::from_u32(c as u32))
                .map_or(Value::Null, |c| Value::Text(c.to_string())),
            "quotename" => {
                let q = s(1).unwrap_or_else(|| "[".into());
                match s(0) {
                    Some(x) if x.chars().count() <= 128 => match q.as_str() {
                        "'" => Value::Text(format!("'{}'", x.replace('\'', "''"))),
                        "\"" => Value::Text(format!("\"{}\"", x.replace('"', "\"\""))),
                        "[" | "]" => Value::Text(format!("[{}]", x.replace(']', "]]"))),
                        _ => Value::Null,
                    },
                    _ => Value::Null,
                }
            }
            "abs" => match arg(0) {
                Value::Int(i) => Value::Int(i.abs()),
                v => v.as_f64().map_or(Value::Null, |f| Value::Float(f.abs())),
            },
            "round" => match arg(0) {
                Value::Int(i) => Value::Int(i),
                v => v.as_f64().map_or(Value::Null, |f| {
                    let p = 10f64.powi(n(1).unwrap_or(0) as i32);
                    Value::Float((f * p).round() / p)
                }),
            },
            "datediff" | "datediff_big" => {
                let unit = s(0).unwrap_or_default();
                match (as_dt(&arg(1)), as_dt(&arg(2))) {
                    (Some(x), Some(y)) => Value::Int(datediff(&unit, x, y)?),
                    _ => Value::Null,
                }
            }
            "dateadd" => {
                let unit = s(0).unwrap_or_default();
                match (n(1), as_dt(&arg(2))) {
                    (Some(k), Some(t)) => dt(dateadd(&unit, k, t)?),
                    _ => Value::Null,
                }
            }
            "datepart" => {
                let unit = s(0).unwrap_or_default();
                match as_dt(&arg(1)) {
                    Some(t) => Value::Int(match unit.as_str() {
                        "year" | "yy" | "yyyy" => i64::from(t.year()),
                        "month" | "mm" | "m" => i64::from(t.month()),
                        "day" | "dd" | "d" => i64::from(t.day()),
                        "hour" | "hh" => i64::from(t.hour()),
                        "minute" | "mi" | "n" => i64::from(t.minute()),
                        "weekday" | "dw" => i64::from(t.weekday().num_days_from_sunday() + 1),
                        _ => {
                            return Err(Fail::one(
                                40100,
                                format!("btsdr simulator: DATEPART({unit}) is not simulated"),
                            ));
                        }
                    }),
                    None => Value::Null,
                }
            }
            "format" => match (as_dt(&arg(0)), s(1)) {
                (Some(t), Some(f)) => Value::Text(format_dt(t, &f)),
                _ => Value::Null,
            },
            "serverproperty" => self.server_property(&s(0).unwrap_or_default()),
            "suser_sname" | "suser_name" | "system_user" | "original_login" => {
                Value::Text(self.b.login.clone())
            }
            "user_name" => Value::Text("dbo".into()),
            "is_srvrolemember" => {
                let role = s(0).unwrap_or_default();
                let who = s(1).unwrap_or_else(|| self.b.login.clone());
                match self.instance().login(&who) {
                    Some(l) if role.eq_ignore_ascii_case("sysadmin") => {
                        Value::Int(i64::from(l.sysadmin))
                    }
                    Some(_) => Value::Int(0),
                    None if a.len() > 1 => Value::Null,
                    None => Value::Int(0),
                }
            }
            "is_member" => Value::Int(1),
            "has_dbaccess" => s(0).map_or(Value::Null, |d| match self.instance().db(&d) {
                Some(db) if db.state == super::state::DbState::Online => Value::Int(1),
                Some(_) => Value::Int(0),
                None => Value::Null,
            }),
            "db_name" => match n(0) {
                None if a.is_empty() => Value::Text(self.b.db.clone()),
                Some(id) => self
                    .instance()
                    .databases
                    .iter()
                    .find(|d| d.id == id)
                    .map_or(Value::Null, |d| Value::Text(d.name.clone())),
                None => Value::Null,
            },
            "db_id" => match s(0) {
                None if a.is_empty() => self
                    .instance()
                    .db(&self.b.db)
                    .map_or(Value::Null, |d| Value::Int(d.id)),
                Some(name) => self
                    .instance()
                    .db(&name)
                    .map_or(Value::Null, |d| Value::Int(d.id)),
                None => Value::Null,
            },
            "databasepropertyex" => match (s(0), s(1)) {
                (Some(d), Some(p)) => match self.instance().db(&d) {
                    Some(db) => match p.to_ascii_lowercase().as_str() {
                        "status" => Value::Text(db.state.desc().into()),
                        "recovery" => Value::Text(db.recovery.desc().into()),
                        "updateability" => Value::Text("READ_WRITE".into()),
                        _ => Value::Null,
                    },
                    None => Value::Null,
                },
                _ => Value::Null,
            },
            "object_id" => match s(0) {
                Some(obj) => {
                    let ty = s(1);
                    if tables::object_exists(self, &obj, ty.as_deref()) {
                        Value::Int(tables::object_id(&obj))
                    } else {
                        Value::Null
                    }
                }
                None => Value::Null,
            },
            "error_message" => self
                .b
                .error
                .as_ref()
                .map_or(Value::Null, |e| Value::Text(e.message.clone())),
            "error_number" => self
                .b
                .error
                .as_ref()
                .map_or(Value::Null, |e| Value::Int(i64::from(e.number))),
            "error_severity" => self
                .b
                .error
                .as_ref()
                .map_or(Value::Null, |e| Value::Int(i64::from(e.severity))),
            "error_state" => self
                .b
                .error
                .as_ref()
                .map_or(Value::Null, |e| Value::Int(i64::from(e.state))),
            "error_line" => self
                .b
                .error
                .as_ref()
                .map_or(Value::Null, |e| Value::Int(i64::from(e.line))),
            "error_procedure" => self.b.error.as_ref().map_or(Value::Null, |e| {
                if e.procedure.is_empty() {
                    Value::Null
                } else {
                    Value::Text(e.procedure.clone())
                }
            }),
            "newid" => Value::Guid(super::state::guid(self.g.mgmt.next_backup_id + 7919)),
            "host_name" => Value::Text("BTSDR-OPERATOR".into()),
            "app_name" => Value::Text("btsdr".into()),
            other => {
                return Err(Fail::one(
                    195,
                    format!(
                        "'{other}' is not a recognized built-in function name. (btsdr simulator)"
                    ),
                ));
            }
        })
    }

    fn server_property(&self, p: &str) -> Value {
        let inst = self.instance();
        match p.to_ascii_lowercase().as_str() {
            "servername" | "machinename" => Value::Text(inst.server_name.clone()),
            "productversion" => Value::Text(inst.version.clone()),
            "productlevel" => Value::Text(inst.level.clone()),
            "edition" => Value::Text(inst.edition.clone()),
            "productmajorversion" => {
                Value::Text(inst.version.split('.').next().unwrap_or("15").to_string())
            }
            "engineedition" => Value::Int(3),
            "instancename" => Value::Null,
            "isclustered" => Value::Int(i64::from(inst.clustered)),
            "ishadrenabled" => Value::Int(0),
            "collation" => Value::Text("SQL_Latin1_General_CP1_CI_AS".into()),
            _ => Value::Null,
        }
    }
}

/// An index of a joined table on the text columns an `ON a.x = b.y AND ...` condition
/// compares with the rows to its left. It only narrows the rows the full condition is then
/// evaluated on, so it never changes a result; other conditions scan every row.
struct EquiIndex<'e> {
    /// Column references to the left of the join, in key order.
    left: Vec<&'e [String]>,
    map: HashMap<String, Vec<usize>>,
}

impl<'e> EquiIndex<'e> {
    fn build(on: &'e Expr, q: &str, t: &Table) -> Option<EquiIndex<'e>> {
        if t.rows.len() < 16 {
            return None;
        }
        let mut pairs: Vec<(usize, &'e [String])> = Vec::new();
        fn walk<'e>(e: &'e Expr, q: &str, t: &Table, pairs: &mut Vec<(usize, &'e [String])>) {
            match e {
                Expr::Bin(BinOp::And, a, b) => {
                    walk(a, q, t, pairs);
                    walk(b, q, t, pairs);
                }
                Expr::Bin(BinOp::Eq, a, b) => {
                    if let (Expr::Col(x), Expr::Col(y)) = (&**a, &**b) {
                        let here = |c: &[String]| -> Option<usize> {
                            let [qual, name] = c else { return None };
                            if !qual.eq_ignore_ascii_case(q) {
                                return None;
                            }
                            t.cols
                                .iter()
                                .position(|(n, _)| n.eq_ignore_ascii_case(name))
                        };
                        let other = |c: &[String]| c.len() == 2 && !c[0].eq_ignore_ascii_case(q);
                        if let Some(i) = here(x).filter(|_| other(y)) {
                            pairs.push((i, y));
                        } else if let Some(i) = here(y).filter(|_| other(x)) {
                            pairs.push((i, x));
                        }
                    }
                }
                _ => {}
            }
        }
        walk(on, q, t, &mut pairs);
        if pairs.is_empty() {
            return None;
        }
        let mut map: HashMap<String, Vec<usize>> = HashMap::new();
        for (n, r) in t.rows.iter().enumerate() {
            let mut key = String::new();
            for (i, _) in &pairs {
                match r.get(*i) {
                    Some(Value::Text(s)) => key_part(&mut key, s),
                    // NULL never equals anything: the row cannot match.
                    Some(Value::Null) | None => {
                        key.clear();
                        break;
                    }
                    // Not text: compare() may convert; fall back to scanning.
                    Some(_) => return None,
                }
            }
            if !key.is_empty() {
                map.entry(key).or_default().push(n);
            }
        }
        Some(EquiIndex {
            left: pairs.into_iter().map(|(_, l)| l).collect(),
            map,
        })
    }

    /// The rows that can match the left row in `sc`; `None` when its keys are not all text.
    fn candidates(&self, sc: &Scope) -> Option<&[usize]> {
        let mut key = String::new();
        for l in &self.left {
            match sc.lookup_ref(l) {
                Some(Value::Text(s)) => key_part(&mut key, s),
                Some(Value::Null) => return Some(&[]),
                _ => return None,
            }
        }
        Some(self.map.get(&key).map_or(&[][..], Vec::as_slice))
    }
}

/// Appends a key part the way the default collation compares text.
fn key_part(key: &mut String, s: &str) {
    key.extend(s.trim_end().chars().flat_map(char::to_lowercase));
    key.push('\u{1f}');
}

fn keys_equal(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| match (x.is_null(), y.is_null()) {
                (true, true) => true,
                (false, false) => compare(x, y).is_some_and(|o| o.is_eq()),
                _ => false,
            })
}

fn item_name(
    e: &Expr,
    alias: Option<String>,
    cols: &[(String, String)],
    types: &[String],
) -> (String, Option<String>) {
    match (e, alias) {
        (_, Some(a)) => (a, col_type(e, cols, types)),
        (Expr::Col(p), None) => (
            p.last().cloned().unwrap_or_default(),
            col_type(e, cols, types),
        ),
        _ => (String::new(), col_type(e, cols, types)),
    }
}

fn replace_ci(x: &str, f: &str, t: &str) -> String {
    let lx = x.to_lowercase();
    let lf = f.to_lowercase();
    if lx.len() != x.len() {
        return x.replace(f, t);
    }
    let mut out = String::new();
    let mut i = 0;
    while let Some(p) = lx[i..].find(&lf) {
        out.push_str(&x[i..i + p]);
        out.push_str(t);
        i += p + f.len();
    }
    out.push_str(&x[i..]);
    out
}

fn col_type(e: &Expr, cols: &[(String, String)], types: &[String]) -> Option<String> {
    match e {
        Expr::Col(parts) => {
            let name = parts.last()?;
            let qual = if parts.len() >= 2 {
                Some(&parts[parts.len() - 2])
            } else {
                None
            };
            let i = cols.iter().position(|(q, c)| {
                c.eq_ignore_ascii_case(name) && qual.is_none_or(|qq| q.eq_ignore_ascii_case(qq))
            })?;
            types.get(i).cloned()
        }
        Expr::Cast(_, ty) => {
            let base = base_type(ty);
            // A MAX type stays one on the wire (PLP), whatever the length of the value.
            let max = ty.to_ascii_lowercase().replace(' ', "").ends_with("(max)");
            Some(
                if max && matches!(base.as_str(), "nvarchar" | "varchar" | "varbinary") {
                    format!("{base}(max)")
                } else {
                    base
                },
            )
        }
        // SERVERPROPERTY returns sql_variant
        // (learn.microsoft.com/sql/t-sql/functions/serverproperty-transact-sql).
        Expr::Func { name, .. } if name.eq_ignore_ascii_case("serverproperty") => {
            Some("sql_variant".into())
        }
        _ => None,
    }
}

/// `nvarchar(128)` -> `nvarchar`; `sysname` -> `nvarchar`.
pub fn base_type(ty: &str) -> String {
    let b = ty
        .split('(')
        .next()
        .unwrap_or(ty)
        .trim()
        .to_ascii_lowercase();
    match b.as_str() {
        "sysname" | "nchar" | "char" | "text" | "ntext" | "xml" => "nvarchar".into(),
        "numeric" | "money" => "decimal".into(),
        "smalldatetime" => "datetime".into(),
        "real" => "float".into(),
        other => other.into(),
    }
}

fn type_len(ty: &str) -> Option<usize> {
    let inner = ty.split('(').nth(1)?.trim_end_matches(')').trim();
    if inner.eq_ignore_ascii_case("max") {
        return None;
    }
    inner.split(',').next()?.trim().parse().ok()
}

/// CAST/CONVERT and assignment to a typed variable or parameter (strings are cut silently).
pub fn cast(v: Value, ty: &str) -> R<Value> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let base = base_type(ty);
    let lower = ty.to_ascii_lowercase();
    Ok(match base.as_str() {
        "int" | "bigint" | "smallint" | "tinyint" => match &v {
            Value::DateTime(_) => {
                return Err(Fail::one(
                    529,
                    format!(
                        "Explicit conversion from data type datetime to {base} is not allowed."
                    ),
                ));
            }
            _ => match as_i64(&v) {
                Some(i) => Value::Int(i),
                None => {
                    return Err(Fail::one(
                        245,
                        format!(
                            "Conversion failed when converting the nvarchar value '{v}' to data type {base}."
                        ),
                    ));
                }
            },
        },
        "bit" => match truth(&v) {
            Some(b) => Value::Bool(b),
            None => match v.to_string().to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    return Err(Fail::one(
                        245,
                        format!(
                            "Conversion failed when converting the nvarchar value '{v}' to data type bit."
                        ),
                    ));
                }
            },
        },
        "float" => match v.as_f64() {
            Some(f) => Value::Float(f),
            None => {
                return Err(Fail::one(
                    8114,
                    format!("Error converting data type nvarchar to float: '{v}'."),
                ));
            }
        },
        "decimal" => Value::Decimal(v.to_string()),
        "datetime" | "datetime2" | "date" => match as_dt(&v) {
            Some(t) => {
                if base == "date" {
                    Value::DateTime(t.format("%Y-%m-%d").to_string())
                } else if base == "datetime2" {
                    dt7(t)
                } else {
                    dt(t)
                }
            }
            None => {
                return Err(Fail::one(
                    241,
                    "Conversion failed when converting date and/or time from character string.",
                ));
            }
        },
        "nvarchar" | "varchar" => {
            let s = match &v {
                Value::Bool(b) => {
                    if *b {
                        "1".to_string()
                    } else {
                        "0".to_string()
                    }
                }
                Value::DateTime(d) => {
                    as_dt(&v).map_or(d.clone(), |t| t.format("%b %e %Y %l:%M%p").to_string())
                }
                other => other.to_string(),
            };
            let limit = if lower.starts_with("sysname") {
                Some(128)
            } else if lower.contains('(') {
                type_len(&lower)
            } else if lower.starts_with("nchar") || lower.starts_with("char") {
                Some(1)
            } else {
                Some(30)
            };
            match limit {
                Some(n) => Value::Text(s.chars().take(n).collect()),
                None => Value::Text(s),
            }
        }
        "uniqueidentifier" => Value::Guid(v.to_string()),
        _ => v,
    })
}

pub fn arith(op: BinOp, x: &Value, y: &Value) -> R<Value> {
    if x.is_null() || y.is_null() {
        return Ok(Value::Null);
    }
    if op == BinOp::Add && (matches!(x, Value::Text(_)) || matches!(y, Value::Text(_))) {
        if matches!(x, Value::Text(_)) && matches!(y, Value::Text(_)) {
            return Ok(Value::Text(format!("{x}{y}")));
        }
        // int + 'text' converts the text to int, as SQL Server does.
        let (t, other) = if matches!(x, Value::Text(_)) {
            (x, y)
        } else {
            (y, x)
        };
        if matches!(other, Value::Int(_) | Value::Bool(_)) {
            let Some(n) = as_i64(t) else {
                return Err(Fail::one(
                    245,
                    format!(
                        "Conversion failed when converting the nvarchar value '{t}' to data type int."
                    ),
                ));
            };
            return Ok(Value::Int(n + as_i64(other).unwrap_or(0)));
        }
        return Ok(Value::Text(format!("{x}{y}")));
    }
    if let (Some(t), Some(d)) = (as_dt_strict(x), as_i64(y))
        && matches!(op, BinOp::Add | BinOp::Sub)
    {
        let dd = Duration::days(if op == BinOp::Add { d } else { -d });
        return Ok(dt(t + dd));
    }
    match (x, y) {
        (Value::Int(_) | Value::Bool(_), Value::Int(_) | Value::Bool(_)) => {
            let (a, b) = (as_i64(x).unwrap_or(0), as_i64(y).unwrap_or(0));
            Ok(Value::Int(match op {
                BinOp::Add => a.wrapping_add(b),
                BinOp::Sub => a.wrapping_sub(b),
                BinOp::Mul => a.wrapping_mul(b),
                BinOp::Div | BinOp::Mod if b == 0 => {
                    return Err(Fail::one(8134, "Divide by zero error encountered."));
                }
                BinOp::Div => a / b,
                BinOp::Mod => a % b,
                _ => 0,
            }))
        }
        _ => {
            let (a, b) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            Ok(Value::Float(match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div if b == 0.0 => {
                    return Err(Fail::one(8134, "Divide by zero error encountered."));
                }
                BinOp::Div => a / b,
                BinOp::Mod => a % b,
                _ => 0.0,
            }))
        }
    }
}

fn as_dt_strict(v: &Value) -> Option<NaiveDateTime> {
    match v {
        Value::DateTime(_) => as_dt(v),
        _ => None,
    }
}

fn unit_of(unit: &str) -> R<&'static str> {
    Ok(match unit {
        "year" | "yy" | "yyyy" => "year",
        "month" | "mm" | "m" => "month",
        "week" | "wk" | "ww" => "week",
        "day" | "dd" | "d" | "dayofyear" | "dy" | "y" => "day",
        "hour" | "hh" => "hour",
        "minute" | "mi" | "n" => "minute",
        "second" | "ss" | "s" => "second",
        "millisecond" | "ms" => "ms",
        _ => {
            return Err(Fail::one(
                155,
                format!("'{unit}' is not a recognized datediff option."),
            ));
        }
    })
}

/// DATEDIFF counts boundaries crossed, like SQL Server.
pub fn datediff(unit: &str, a: NaiveDateTime, b: NaiveDateTime) -> R<i64> {
    let floor = |t: NaiveDateTime, secs: i64| t.and_utc().timestamp().div_euclid(secs);
    Ok(match unit_of(unit)? {
        "year" => i64::from(b.year() - a.year()),
        "month" => {
            i64::from(b.year() - a.year()) * 12 + i64::from(b.month()) - i64::from(a.month())
        }
        "week" => (floor(b, 86400) + 4).div_euclid(7) - (floor(a, 86400) + 4).div_euclid(7),
        "day" => floor(b, 86400) - floor(a, 86400),
        "hour" => floor(b, 3600) - floor(a, 3600),
        "minute" => floor(b, 60) - floor(a, 60),
        "second" => floor(b, 1) - floor(a, 1),
        _ => (b - a).num_milliseconds(),
    })
}

pub fn dateadd(unit: &str, k: i64, t: NaiveDateTime) -> R<NaiveDateTime> {
    Ok(match unit_of(unit)? {
        "year" => t
            .checked_add_months(chrono::Months::new((k * 12).max(0) as u32))
            .filter(|_| k >= 0)
            .or_else(|| t.checked_sub_months(chrono::Months::new((-k * 12).max(0) as u32)))
            .unwrap_or(t),
        "month" => {
            if k >= 0 {
                t.checked_add_months(chrono::Months::new(k as u32))
                    .unwrap_or(t)
            } else {
                t.checked_sub_months(chrono::Months::new((-k) as u32))
                    .unwrap_or(t)
            }
        }
        "week" => t + Duration::days(7 * k),
        "day" => t + Duration::days(k),
        "hour" => t + Duration::hours(k),
        "minute" => t + Duration::minutes(k),
        "second" => t + Duration::seconds(k),
        _ => t + Duration::milliseconds(k),
    })
}

/// .NET-style FORMAT for dates: yyyy MM dd HH mm ss fff.
fn format_dt(t: NaiveDateTime, f: &str) -> String {
    let mut out = String::new();
    let c: Vec<char> = f.chars().collect();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let mut run = 1;
        while i + run < c.len() && c[i + run] == ch {
            run += 1;
        }
        let piece = match (ch, run) {
            ('y', 4) => Some(format!("{:04}", t.year())),
            ('y', 2) => Some(format!("{:02}", t.year() % 100)),
            ('M', 2) => Some(format!("{:02}", t.month())),
            ('d', 2) => Some(format!("{:02}", t.day())),
            ('H', 2) => Some(format!("{:02}", t.hour())),
            ('m', 2) => Some(format!("{:02}", t.minute())),
            ('s', 2) => Some(format!("{:02}", t.second())),
            ('f', 3) => Some(format!("{:03}", t.and_utc().timestamp_subsec_millis())),
            _ => None,
        };
        match piece {
            Some(p) => out.push_str(&p),
            None => out.extend(std::iter::repeat_n(ch, run)),
        }
        i += run;
    }
    out
}

/// Converts a table to a result set, making each value match its column type.
pub fn to_result_set(t: Table) -> ResultSet {
    let columns: Vec<Column> = t
        .cols
        .iter()
        .map(|(n, ty)| Column {
            name: n.clone(),
            type_name: ty.clone(),
        })
        .collect();
    let rows = t
        .rows
        .into_iter()
        .map(|r| {
            r.into_iter()
                .enumerate()
                .map(|(i, v)| {
                    conform(
                        v,
                        columns.get(i).map_or("nvarchar", |c| c.type_name.as_str()),
                    )
                })
                .collect::<Vec<Value>>()
        })
        .collect();
    ResultSet {
        not_kept: 0,
        columns,
        rows,
    }
}

/// A datetime2(7): seven decimals (100 ns), as SQL Server shows it.
fn dt7(t: chrono::NaiveDateTime) -> Value {
    let mut s = t.format("%Y-%m-%d %H:%M:%S%.9f").to_string();
    s.truncate(s.len().saturating_sub(2));
    Value::DateTime(s)
}

fn conform(v: Value, ty: &str) -> Value {
    if v.is_null() {
        return v;
    }
    match ty {
        "nvarchar" | "varchar" => match v {
            Value::Text(_) => v,
            Value::Bool(b) => Value::Text(if b { "1".into() } else { "0".into() }),
            other => Value::Text(other.to_string()),
        },
        "int" | "bigint" | "smallint" | "tinyint" => match v {
            Value::Int(_) => v,
            other => as_i64(&other).map_or(Value::Null, Value::Int),
        },
        "bit" => match v {
            Value::Bool(_) => v,
            other => truth(&other).map_or(Value::Null, Value::Bool),
        },
        "float" => v.as_f64().map_or(Value::Null, Value::Float),
        "datetime" | "date" => match &v {
            Value::DateTime(_) => v,
            other => as_dt(other).map_or(Value::Null, dt),
        },
        "datetime2" => match &v {
            Value::DateTime(_) => v,
            other => as_dt(other).map_or(Value::Null, dt7),
        },
        "decimal" => Value::Decimal(v.to_string()),
        "uniqueidentifier" => Value::Guid(v.to_string()),
        _ => v,
    }
}

/// RAISERROR's message substitution, as documented: `%[flag][width][.precision][h|l]type`
/// with flags `- + 0 # space`, `*` for a width or precision taken from the arguments, types
/// `d i` (signed), `u` (unsigned), `o x X` (octal, hex), `s` (string), and `%%` for `%`.
/// A missing argument prints `(null)`, as SQL Server does.
/// (learn.microsoft.com/sql/t-sql/language-elements/raiserror-transact-sql)
pub fn raiserror_format(msg: &str, args: &[Value]) -> String {
    let chars: Vec<char> = msg.chars().collect();
    let mut out = String::new();
    let mut next = args.iter();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '%' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        if chars.get(i + 1) == Some(&'%') {
            out.push('%');
            i += 2;
            continue;
        }
        let start = i;
        i += 1;
        let (mut left, mut plus, mut zero, mut alt, mut space) =
            (false, false, false, false, false);
        while let Some(c) = chars.get(i) {
            match c {
                '-' => left = true,
                '+' => plus = true,
                '0' => zero = true,
                '#' => alt = true,
                ' ' => space = true,
                _ => break,
            }
            i += 1;
        }
        let number = |i: &mut usize, next: &mut std::slice::Iter<'_, Value>| -> Option<usize> {
            if chars.get(*i) == Some(&'*') {
                *i += 1;
                return next.next().and_then(as_i64).map(|n| n.max(0) as usize);
            }
            let from = *i;
            while chars.get(*i).is_some_and(char::is_ascii_digit) {
                *i += 1;
            }
            chars[from..*i].iter().collect::<String>().parse().ok()
        };
        let width = number(&mut i, &mut next).unwrap_or(0).min(4000);
        let precision = if chars.get(i) == Some(&'.') {
            i += 1;
            Some(number(&mut i, &mut next).unwrap_or(0).min(4000))
        } else {
            None
        };
        if matches!(chars.get(i), Some('h' | 'l' | 'I')) {
            i += 1;
        }
        let Some(&ty) = chars.get(i) else {
            out.extend(&chars[start..]);
            break;
        };
        i += 1;
        let arg = next.next();
        let body = match (ty, arg) {
            (_, None | Some(Value::Null)) => "(null)".to_string(),
            ('s', Some(v)) => {
                let t = as_text(v).unwrap_or_default();
                match precision {
                    Some(p) => t.chars().take(p).collect(),
                    None => t,
                }
            }
            ('d' | 'i', Some(v)) => {
                let n = as_i64(v).unwrap_or(0) as i32;
                let sign = if n < 0 {
                    "-"
                } else if plus {
                    "+"
                } else if space {
                    " "
                } else {
                    ""
                };
                let digits = n.unsigned_abs().to_string();
                let digits = format!("{digits:0>w$}", w = precision.unwrap_or(0));
                if zero && !left && precision.is_none() {
                    let w = width.saturating_sub(sign.len());
                    format!("{sign}{digits:0>w$}")
                } else {
                    format!("{sign}{digits}")
                }
            }
            ('u' | 'o' | 'x' | 'X', Some(v)) => {
                let n = as_i64(v).unwrap_or(0) as i32 as u32;
                let digits = match ty {
                    'u' => n.to_string(),
                    'o' => format!("{n:o}"),
                    'x' => format!("{n:x}"),
                    _ => format!("{n:X}"),
                };
                let prefix = match (alt && n != 0, ty) {
                    (true, 'o') => "0",
                    (true, 'x') => "0x",
                    (true, 'X') => "0X",
                    _ => "",
                };
                let digits = format!("{digits:0>w$}", w = precision.unwrap_or(0));
                if zero && !left && precision.is_none() {
                    let w = width.saturating_sub(prefix.len());
                    format!("{prefix}{digits:0>w$}")
                } else {
                    format!("{prefix}{digits}")
                }
            }
            // Not a documented type: SQL Server prints the specification as written.
            _ => chars[start..i].iter().collect(),
        };
        if left {
            out.push_str(&format!("{body:<width$}"));
        } else {
            out.push_str(&format!("{body:>width$}"));
        }
    }
    out
}

#[cfg(test)]
mod raiserror_tests {
    use super::*;

    #[test]
    fn substitutes_arguments_with_the_documented_printf_rules() {
        let f = raiserror_format;
        let t = |s: &str| Value::Text(s.into());
        assert_eq!(
            f("db %s has %d rows", &[t("BizTalkMgmtDb"), Value::Int(42)]),
            "db BizTalkMgmtDb has 42 rows"
        );
        assert_eq!(
            f(
                "%i|%u|%x|%X|%o",
                &[
                    Value::Int(-5),
                    Value::Int(-1),
                    Value::Int(255),
                    Value::Int(255),
                    Value::Int(8)
                ]
            ),
            "-5|4294967295|ff|FF|10"
        );
        assert_eq!(
            f(
                "[%5d][%-5d][%05d][%+d]",
                &[Value::Int(7), Value::Int(7), Value::Int(-7), Value::Int(7)]
            ),
            "[    7][7    ][-0007][+7]"
        );
        assert_eq!(f("<<%7.3s>>", &[t("abcde")]), "<<    abc>>");
        assert_eq!(
            f("%*d|%#x", &[Value::Int(4), Value::Int(9), Value::Int(255)]),
            "   9|0xff"
        );
        assert_eq!(f("100%% %s %d", &[t("done")]), "100% done (null)");
        assert_eq!(f("%s", &[Value::Null]), "(null)");
        assert_eq!(f("trailing %", &[]), "trailing %");
    }
}
