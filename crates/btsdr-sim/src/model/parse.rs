//! A parser for the subset of T-SQL the runbooks and the BizTalk job steps use: control flow
//! (DECLARE, SET, IF/ELSE, WHILE, TRY/CATCH, THROW), EXEC, SELECT with joins, grouping and
//! subqueries, INSERT/UPDATE/DELETE, BACKUP and RESTORE. Anything else is kept as `Other` so
//! the executor can answer with an error that names it.

use super::lex::{Tok, render};
use btsdr_types::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Value),
    Var(String),
    Col(Vec<String>),
    Star(Option<String>),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Func {
        name: String,
        args: Vec<Expr>,
        distinct: bool,
    },
    Cast(Box<Expr>, String),
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        default: Option<Box<Expr>>,
    },
    IsNull(Box<Expr>, bool),
    InList(Box<Expr>, Vec<Expr>, bool),
    InSelect(Box<Expr>, Box<Select>, bool),
    Like(Box<Expr>, Box<Expr>, bool),
    Between(Box<Expr>, Box<Expr>, Box<Expr>, bool),
    Exists(Box<Select>),
    Subquery(Box<Select>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SelItem {
    Expr(Expr, Option<String>),
    Star(Option<String>),
    Assign(String, Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TableRef {
    Named {
        parts: Vec<String>,
        alias: Option<String>,
    },
    Derived {
        select: Box<Select>,
        alias: String,
    },
    Var {
        name: String,
        alias: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JoinKind {
    Inner,
    Left,
    Cross,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Select {
    /// Unique per parsed query (clones share it): keys the per-statement subquery cache.
    pub id: u32,
    pub distinct: bool,
    pub top: Option<Expr>,
    pub items: Vec<SelItem>,
    pub from: Vec<(JoinKind, TableRef, Option<Expr>)>,
    pub where_: Option<Expr>,
    pub group_by: Vec<Expr>,
    pub having: Option<Expr>,
    pub order_by: Vec<(Expr, bool)>,
    /// `WITH name AS (...)` common table expressions, visible to this query.
    pub ctes: Vec<(String, Select)>,
    /// `UNION [ALL]` members after this one (`true` = ALL).
    pub unions: Vec<(bool, Select)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decl {
    Scalar {
        name: String,
        ty: String,
        init: Option<Expr>,
    },
    Table {
        name: String,
        columns: Vec<(String, String, bool)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum InsertSource {
    Values(Vec<Vec<Expr>>),
    Select(Box<Select>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct BackupStmt {
    pub log: bool,
    pub database: Expr,
    pub url: bool,
    pub targets: Vec<Expr>,
    pub options: Vec<(String, Option<Expr>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RestoreStmt {
    /// DATABASE, LOG, VERIFYONLY, HEADERONLY, FILELISTONLY, LABELONLY
    pub kind: String,
    pub database: Option<Expr>,
    pub url: bool,
    pub sources: Vec<Expr>,
    pub options: Vec<(String, Option<Expr>)>,
}

/// BEGIN / COMMIT / ROLLBACK TRANSACTION (`Rollback(true)` names a transaction or savepoint).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TranOp {
    Begin,
    Commit,
    Rollback(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    Select(Select),
    Declare(Vec<Decl>),
    Set(String, Option<BinOp>, Expr),
    /// `SET NOCOUNT, XACT_ABORT ON`: the option names (lower case) and ON/OFF if written.
    SetOption {
        options: Vec<String>,
        on: Option<bool>,
    },
    /// `SET NOEXEC ON|OFF` (`parse_only` false) or `SET PARSEONLY ON|OFF` (true).
    SetExecMode {
        parse_only: bool,
        on: bool,
    },
    If(Expr, Box<Stmt>, Option<Box<Stmt>>),
    While(Expr, Box<Stmt>),
    Block(Vec<Stmt>),
    Try(Box<Stmt>, Box<Stmt>),
    Throw(Option<(Expr, Expr, Expr)>),
    /// `RAISERROR(message, severity, state, argument...)`.
    Raiserror(Expr, Expr, Expr, Vec<Expr>),
    Exec {
        proc: Vec<String>,
        args: Vec<(Option<String>, Expr)>,
    },
    ExecSql(Expr),
    Use(String),
    Tran(TranOp),
    Print(Expr),
    Return,
    Break,
    Continue,
    Reconfigure,
    WaitFor(Expr),
    Insert {
        target: Vec<String>,
        columns: Vec<String>,
        source: InsertSource,
    },
    Update {
        target: Vec<String>,
        alias: Option<String>,
        sets: Vec<(String, Expr)>,
        where_: Option<Expr>,
    },
    Delete {
        target: Vec<String>,
        where_: Option<Expr>,
    },
    Backup(BackupStmt),
    Restore(RestoreStmt),
    /// A statement this parser does not know; the text is kept for the error message.
    Other(String),
}

pub struct Parser<'a> {
    t: &'a [Tok],
    pos: usize,
    /// Nesting of statements, queries and expressions so far; see [`MAX_DEPTH`].
    depth: usize,
}

/// Deepest nesting the parser accepts. Parsing, running and dropping a statement recurse,
/// so a client's 10,000 parentheses would otherwise overflow the server's stack. SQL Server
/// refuses such text with error 191 ("nested too deeply").
pub const MAX_DEPTH: usize = 64;

/// SQL Server's message for error 191.
pub const TOO_DEEP: &str = "Some part of your SQL statement is nested too deeply. Rewrite the query or break it up into smaller queries.";

type PResult<T> = Result<T, String>;

const STMT_START: &[&str] = &[
    "select",
    "declare",
    "set",
    "if",
    "else",
    "while",
    "begin",
    "end",
    "throw",
    "raiserror",
    "exec",
    "execute",
    "use",
    "commit",
    "rollback",
    "print",
    "return",
    "break",
    "continue",
    "reconfigure",
    "insert",
    "update",
    "delete",
    "backup",
    "restore",
    "waitfor",
    "with",
    "go",
];

/// Words that end an expression or an alias position.
const RESERVED: &[&str] = &[
    "from",
    "where",
    "group",
    "having",
    "order",
    "join",
    "inner",
    "left",
    "right",
    "cross",
    "outer",
    "on",
    "and",
    "or",
    "not",
    "as",
    "select",
    "union",
    "when",
    "then",
    "else",
    "end",
    "is",
    "in",
    "like",
    "between",
    "set",
    "values",
    "into",
    "begin",
    "if",
    "while",
    "exec",
    "execute",
    "declare",
    "print",
    "return",
    "throw",
    "insert",
    "update",
    "delete",
    "backup",
    "restore",
    "commit",
    "rollback",
    "option",
    "with",
    "to",
    "by",
    "asc",
    "desc",
    "top",
    "distinct",
    "case",
    "null",
    "exists",
    "use",
    "go",
    "output",
    "default",
    "full",
    "apply",
    "reconfigure",
    "waitfor",
    "break",
    "continue",
    "raiserror",
];

impl<'a> Parser<'a> {
    pub fn new(t: &'a [Tok]) -> Self {
        Parser {
            t,
            pos: 0,
            depth: 0,
        }
    }

    /// One level deeper, or error 191's text past [`MAX_DEPTH`]; pair with `self.depth -= 1`.
    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(TOO_DEEP.into());
        }
        Ok(())
    }

    fn peek(&self) -> Option<&'a Tok> {
        self.t.get(self.pos)
    }
    fn peek_at(&self, n: usize) -> Option<&'a Tok> {
        self.t.get(self.pos + n)
    }
    fn kw(&self, k: &str) -> bool {
        self.peek().is_some_and(|t| t.is_kw(k))
    }
    fn kw_at(&self, n: usize, k: &str) -> bool {
        self.peek_at(n).is_some_and(|t| t.is_kw(k))
    }
    fn sym(&self, s: &str) -> bool {
        self.peek().is_some_and(|t| t.is_sym(s))
    }
    fn eat_kw(&mut self, k: &str) -> bool {
        if self.kw(k) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn eat_sym(&mut self, s: &str) -> bool {
        if self.sym(s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect_kw(&mut self, k: &str) -> PResult<()> {
        if self.eat_kw(k) {
            Ok(())
        } else {
            Err(format!(
                "Incorrect syntax near {}: expected {}",
                self.near(),
                k.to_uppercase()
            ))
        }
    }
    fn expect_sym(&mut self, s: &str) -> PResult<()> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(format!(
                "Incorrect syntax near {}: expected `{s}`",
                self.near()
            ))
        }
    }
    fn near(&self) -> String {
        match self.peek() {
            Some(t) => format!("'{}'", render(std::slice::from_ref(t))),
            None => "the end of the batch".into(),
        }
    }
    fn ident(&mut self) -> PResult<String> {
        match self.peek() {
            Some(Tok::Word { text, .. }) => {
                self.pos += 1;
                Ok(text.clone())
            }
            _ => Err(format!(
                "Incorrect syntax near {}: expected a name",
                self.near()
            )),
        }
    }
    fn is_reserved(t: &Tok) -> bool {
        matches!(t, Tok::Word { text, bracketed: false } if RESERVED.iter().any(|r| text.eq_ignore_ascii_case(r)))
    }
    /// A dotted name `a.b.c` (empty parts allowed: `db..obj`).
    fn dotted(&mut self) -> PResult<Vec<String>> {
        let mut parts = vec![self.ident()?];
        while self.sym(".") {
            self.pos += 1;
            if self.sym(".") {
                parts.push(String::new());
                continue;
            }
            parts.push(self.ident()?);
        }
        Ok(parts)
    }

    pub fn done(&self) -> bool {
        self.pos >= self.t.len()
    }

    /// Parses a whole batch.
    pub fn batch(&mut self) -> PResult<Vec<Stmt>> {
        Ok(self.batch_at()?.into_iter().map(|(_, s)| s).collect())
    }

    /// `batch`, with the index of each statement's first token.
    pub fn batch_at(&mut self) -> PResult<Vec<(usize, Stmt)>> {
        let mut out = Vec::new();
        while !self.done() {
            if self.eat_sym(";") || self.eat_kw("go") {
                continue;
            }
            let at = self.pos;
            out.push((at, self.stmt()?));
        }
        Ok(out)
    }

    fn skip_semis(&mut self) {
        while self.eat_sym(";") {}
    }

    pub fn stmt(&mut self) -> PResult<Stmt> {
        self.enter()?;
        let s = self.stmt_inner();
        self.depth -= 1;
        s
    }

    // TODO(issue 16): split (one function per statement keyword).
    #[allow(clippy::too_many_lines)]
    fn stmt_inner(&mut self) -> PResult<Stmt> {
        self.skip_semis();
        let Some(first) = self.peek() else {
            return Err("Incorrect syntax near the end of the batch".into());
        };
        let w = match first {
            Tok::Word {
                text,
                bracketed: false,
            } => text.to_ascii_lowercase(),
            Tok::Sym("(") => "select".into(),
            _ => return Ok(Stmt::Other(self.rest_of_stmt())),
        };
        let s = match w.as_str() {
            "select" => Stmt::Select(self.select()?),
            "with" => {
                self.pos += 1;
                let mut ctes = Vec::new();
                loop {
                    let name = self.ident()?;
                    if self.sym("(") {
                        return Err("CTE column lists are not supported by the simulator".into());
                    }
                    self.expect_kw("as")?;
                    self.expect_sym("(")?;
                    let q = self.select()?;
                    self.expect_sym(")")?;
                    ctes.push((name, q));
                    if !self.eat_sym(",") {
                        break;
                    }
                }
                let mut sel = self.select()?;
                sel.ctes = ctes;
                Stmt::Select(sel)
            }
            "declare" => self.declare()?,
            "set" => self.set()?,
            "if" => {
                self.pos += 1;
                let cond = self.expr()?;
                let then = self.stmt()?;
                self.skip_semis();
                let els = if self.eat_kw("else") {
                    Some(Box::new(self.stmt()?))
                } else {
                    None
                };
                Stmt::If(cond, Box::new(then), els)
            }
            "while" => {
                self.pos += 1;
                let cond = self.expr()?;
                Stmt::While(cond, Box::new(self.stmt()?))
            }
            "begin" => self.begin()?,
            "throw" => {
                self.pos += 1;
                if self.sym(";") || self.done() || self.kw("end") {
                    Stmt::Throw(None)
                } else {
                    let a = self.expr()?;
                    self.expect_sym(",")?;
                    let b = self.expr()?;
                    self.expect_sym(",")?;
                    let c = self.expr()?;
                    Stmt::Throw(Some((a, b, c)))
                }
            }
            "raiserror" => {
                self.pos += 1;
                self.expect_sym("(")?;
                let a = self.expr()?;
                self.expect_sym(",")?;
                let b = self.expr()?;
                self.expect_sym(",")?;
                let c = self.expr()?;
                let mut args = Vec::new();
                while self.eat_sym(",") {
                    args.push(self.expr()?);
                }
                self.expect_sym(")")?;
                if self.eat_kw("with") {
                    self.ident()?;
                    while self.eat_sym(",") {
                        self.ident()?;
                    }
                }
                Stmt::Raiserror(a, b, c, args)
            }
            "exec" | "execute" => self.exec()?,
            "use" => {
                self.pos += 1;
                Stmt::Use(self.ident()?)
            }
            "commit" | "rollback" => {
                let commit = self.kw("commit");
                self.pos += 1;
                let mut named = false;
                if (self.eat_kw("tran") || self.eat_kw("transaction") || self.eat_kw("work"))
                    && let Some(Tok::Word {
                        bracketed: false,
                        text,
                    }) = self.peek()
                    && !STMT_START.iter().any(|k| text.eq_ignore_ascii_case(k))
                {
                    self.pos += 1;
                    named = true;
                }
                Stmt::Tran(if commit {
                    TranOp::Commit
                } else {
                    TranOp::Rollback(named)
                })
            }
            "print" => {
                self.pos += 1;
                Stmt::Print(self.expr()?)
            }
            "return" => {
                self.pos += 1;
                Stmt::Return
            }
            "break" => {
                self.pos += 1;
                Stmt::Break
            }
            "continue" => {
                self.pos += 1;
                Stmt::Continue
            }
            "reconfigure" => {
                self.pos += 1;
                self.eat_kw("with");
                self.eat_kw("override");
                Stmt::Reconfigure
            }
            "waitfor" => {
                self.pos += 1;
                self.expect_kw("delay")?;
                Stmt::WaitFor(self.expr()?)
            }
            "insert" => self.insert()?,
            "update" => self.update()?,
            "delete" => self.delete()?,
            "backup" => self.backup()?,
            "restore" => self.restore()?,
            _ => Stmt::Other(self.rest_of_stmt()),
        };
        Ok(s)
    }

    /// Consumes up to the next `;` (outside parentheses) and returns the text.
    fn rest_of_stmt(&mut self) -> String {
        let start = self.pos;
        let mut depth = 0i32;
        while let Some(t) = self.peek() {
            if t.is_sym("(") {
                depth += 1;
            } else if t.is_sym(")") {
                depth -= 1;
            } else if depth <= 0 && t.is_sym(";") {
                break;
            }
            self.pos += 1;
        }
        render(&self.t[start..self.pos])
    }

    fn begin(&mut self) -> PResult<Stmt> {
        self.pos += 1;
        if self.eat_kw("tran") || self.eat_kw("transaction") || self.eat_kw("distributed") {
            self.eat_kw("transaction");
            if let Some(Tok::Word {
                bracketed: false,
                text,
            }) = self.peek()
                && !STMT_START.iter().any(|k| text.eq_ignore_ascii_case(k))
            {
                self.pos += 1;
            }
            return Ok(Stmt::Tran(TranOp::Begin));
        }
        if self.eat_kw("try") {
            let body = self.block_until(&["end"])?;
            self.expect_kw("end")?;
            self.expect_kw("try")?;
            self.skip_semis();
            self.expect_kw("begin")?;
            self.expect_kw("catch")?;
            let catch = self.block_until(&["end"])?;
            self.expect_kw("end")?;
            self.expect_kw("catch")?;
            return Ok(Stmt::Try(
                Box::new(Stmt::Block(body)),
                Box::new(Stmt::Block(catch)),
            ));
        }
        let body = self.block_until(&["end"])?;
        self.expect_kw("end")?;
        Ok(Stmt::Block(body))
    }

    fn block_until(&mut self, ends: &[&str]) -> PResult<Vec<Stmt>> {
        let mut out = Vec::new();
        loop {
            self.skip_semis();
            if self.done() {
                return Err("Incorrect syntax near the end of the batch: END is missing".into());
            }
            if ends.iter().any(|e| self.kw(e)) && !(self.kw("end") && self.kw_at(1, "conversation"))
            {
                return Ok(out);
            }
            out.push(self.stmt()?);
        }
    }

    fn data_type(&mut self) -> PResult<String> {
        let mut ty = self.ident()?.to_ascii_lowercase();
        if self.eat_sym("(") {
            let mut inner = Vec::new();
            while !self.sym(")") && !self.done() {
                inner.push(render(std::slice::from_ref(&self.t[self.pos])));
                self.pos += 1;
            }
            self.expect_sym(")")?;
            ty = format!("{ty}({})", inner.join(""));
        }
        Ok(ty)
    }

    fn declare(&mut self) -> PResult<Stmt> {
        self.pos += 1;
        let mut decls = Vec::new();
        loop {
            let name = match self.peek() {
                Some(Tok::Var(v)) => v.clone(),
                _ => {
                    return Err(format!(
                        "Incorrect syntax near {}: expected a @variable",
                        self.near()
                    ));
                }
            };
            self.pos += 1;
            self.eat_kw("as");
            if self.eat_kw("table") {
                self.expect_sym("(")?;
                let mut cols = Vec::new();
                loop {
                    let cname = self.ident()?;
                    let ty = self.data_type()?;
                    let mut identity = false;
                    while !self.sym(",") && !self.sym(")") && !self.done() {
                        if self.kw("identity") {
                            identity = true;
                        }
                        if self.eat_sym("(") {
                            let mut d = 1;
                            while d > 0 && !self.done() {
                                if self.sym("(") {
                                    d += 1;
                                } else if self.sym(")") {
                                    d -= 1;
                                }
                                self.pos += 1;
                            }
                            continue;
                        }
                        self.pos += 1;
                    }
                    cols.push((cname, ty, identity));
                    if !self.eat_sym(",") {
                        break;
                    }
                }
                self.expect_sym(")")?;
                decls.push(Decl::Table {
                    name,
                    columns: cols,
                });
            } else {
                let ty = self.data_type()?;
                let init = if self.eat_sym("=") {
                    Some(self.expr()?)
                } else {
                    None
                };
                decls.push(Decl::Scalar { name, ty, init });
            }
            if !self.eat_sym(",") {
                break;
            }
        }
        Ok(Stmt::Declare(decls))
    }

    fn set(&mut self) -> PResult<Stmt> {
        self.pos += 1;
        match self.peek() {
            Some(Tok::Var(v)) => {
                let v = v.clone();
                self.pos += 1;
                let op = match self.peek() {
                    Some(Tok::Sym("=")) => None,
                    Some(Tok::Sym("+=")) => Some(BinOp::Add),
                    Some(Tok::Sym("-=")) => Some(BinOp::Sub),
                    _ => return Err(format!("Incorrect syntax near {}", self.near())),
                };
                self.pos += 1;
                Ok(Stmt::Set(v, op, self.expr()?))
            }
            Some(Tok::Word {
                text,
                bracketed: false,
            }) if text.eq_ignore_ascii_case("noexec") || text.eq_ignore_ascii_case("parseonly") => {
                let parse_only = text.eq_ignore_ascii_case("parseonly");
                self.pos += 1;
                let on = match self.peek() {
                    Some(Tok::Word {
                        text,
                        bracketed: false,
                    }) if text.eq_ignore_ascii_case("on") => true,
                    Some(Tok::Word {
                        text,
                        bracketed: false,
                    }) if text.eq_ignore_ascii_case("off") => false,
                    _ => return Err(format!("Incorrect syntax near {}", self.near())),
                };
                self.pos += 1;
                Ok(Stmt::SetExecMode { parse_only, on })
            }
            _ => {
                // SET NOCOUNT ON, SET XACT_ABORT ON, ...
                let mut options = Vec::new();
                let mut on = None;
                while !self.done() && !self.sym(";") {
                    if let Some(Tok::Word {
                        text,
                        bracketed: false,
                    }) = self.peek()
                    {
                        if text.eq_ignore_ascii_case("on") || text.eq_ignore_ascii_case("off") {
                            on = Some(text.eq_ignore_ascii_case("on"));
                            self.pos += 1;
                            break;
                        }
                        options.push(text.to_ascii_lowercase());
                    }
                    self.pos += 1;
                }
                Ok(Stmt::SetOption { options, on })
            }
        }
    }

    fn exec(&mut self) -> PResult<Stmt> {
        self.pos += 1;
        if self.sym("(") {
            self.pos += 1;
            let e = self.expr()?;
            self.expect_sym(")")?;
            return Ok(Stmt::ExecSql(e));
        }
        // EXEC @rc = proc ...
        if matches!(self.peek(), Some(Tok::Var(_)))
            && self.peek_at(1).is_some_and(|t| t.is_sym("="))
        {
            self.pos += 2;
        }
        let proc = self.dotted()?;
        let mut args = Vec::new();
        let at_end = |p: &Self| {
            p.done()
                || p.sym(";")
                || matches!(p.peek(), Some(Tok::Word { text, bracketed: false }) if STMT_START.iter().any(|k| text.eq_ignore_ascii_case(k)) && !text.eq_ignore_ascii_case("default"))
        };
        if !at_end(self) {
            loop {
                let mut name = None;
                if let Some(Tok::Var(v)) = self.peek()
                    && self.peek_at(1).is_some_and(|t| t.is_sym("="))
                {
                    name = Some(v.clone());
                    self.pos += 2;
                }
                let value = if self.eat_kw("default") {
                    Expr::Lit(Value::Null)
                } else {
                    self.expr()?
                };
                self.eat_kw("output");
                self.eat_kw("out");
                args.push((name, value));
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        Ok(Stmt::Exec { proc, args })
    }

    fn insert(&mut self) -> PResult<Stmt> {
        self.pos += 1;
        self.eat_kw("into");
        let target = match self.peek() {
            Some(Tok::Var(v)) => {
                let v = format!("@{v}");
                self.pos += 1;
                vec![v]
            }
            _ => self.dotted()?,
        };
        let mut columns = Vec::new();
        if self.sym("(") && !self.kw_at(1, "select") {
            self.pos += 1;
            loop {
                columns.push(self.ident()?);
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.expect_sym(")")?;
        }
        let source = if self.eat_kw("values") {
            let mut rows = Vec::new();
            loop {
                self.expect_sym("(")?;
                let mut row = vec![self.expr()?];
                while self.eat_sym(",") {
                    row.push(self.expr()?);
                }
                self.expect_sym(")")?;
                rows.push(row);
                if !self.eat_sym(",") {
                    break;
                }
            }
            InsertSource::Values(rows)
        } else if self.kw("select") || self.sym("(") {
            InsertSource::Select(Box::new(self.select()?))
        } else if self.kw("exec") || self.kw("execute") {
            return Ok(Stmt::Other(format!(
                "INSERT ... EXEC {}",
                self.rest_of_stmt()
            )));
        } else {
            return Err(format!("Incorrect syntax near {}", self.near()));
        };
        Ok(Stmt::Insert {
            target,
            columns,
            source,
        })
    }

    fn update(&mut self) -> PResult<Stmt> {
        self.pos += 1;
        let target = match self.peek() {
            Some(Tok::Var(v)) => {
                let v = format!("@{v}");
                self.pos += 1;
                vec![v]
            }
            _ => self.dotted()?,
        };
        self.expect_kw("set")?;
        let mut sets = Vec::new();
        loop {
            let mut col = self.dotted()?;
            let c = col.pop().unwrap_or_default();
            self.expect_sym("=")?;
            sets.push((c, self.expr()?));
            if !self.eat_sym(",") {
                break;
            }
        }
        let mut alias = None;
        if self.eat_kw("from") {
            let _ = self.dotted()?;
            self.eat_kw("as");
            if let Some(Tok::Word { text, .. }) = self.peek()
                && !Self::is_reserved(&self.t[self.pos])
            {
                alias = Some(text.clone());
                self.pos += 1;
            }
        }
        let where_ = if self.eat_kw("where") {
            Some(self.expr()?)
        } else {
            None
        };
        Ok(Stmt::Update {
            target,
            alias,
            sets,
            where_,
        })
    }

    fn delete(&mut self) -> PResult<Stmt> {
        self.pos += 1;
        self.eat_kw("from");
        let target = match self.peek() {
            Some(Tok::Var(v)) => {
                let v = format!("@{v}");
                self.pos += 1;
                vec![v]
            }
            _ => self.dotted()?,
        };
        let where_ = if self.eat_kw("where") {
            Some(self.expr()?)
        } else {
            None
        };
        Ok(Stmt::Delete { target, where_ })
    }

    fn options(&mut self) -> PResult<Vec<(String, Option<Expr>)>> {
        let mut out = Vec::new();
        if !self.eat_kw("with") {
            return Ok(out);
        }
        loop {
            let name = self.ident()?.to_ascii_uppercase();
            let value = if self.eat_sym("=") {
                Some(self.expr()?)
            } else if name == "MOVE" {
                let from = self.expr()?;
                self.expect_kw("to")?;
                let to = self.expr()?;
                Some(Expr::Bin(BinOp::Add, Box::new(from), Box::new(to)))
            } else {
                None
            };
            // STOPATMARK = 'x' AFTER 'date'
            if self.eat_kw("after") {
                self.expr()?;
            }
            out.push((name, value));
            if !self.eat_sym(",") {
                break;
            }
        }
        Ok(out)
    }

    fn device_list(&mut self) -> PResult<(bool, Vec<Expr>)> {
        let mut url = false;
        let mut list = Vec::new();
        loop {
            let dev = self.ident()?.to_ascii_uppercase();
            match dev.as_str() {
                "DISK" | "TAPE" => {}
                "URL" => url = true,
                _ => {
                    return Err(format!(
                        "Incorrect syntax near '{dev}': expected DISK or URL"
                    ));
                }
            }
            self.expect_sym("=")?;
            list.push(self.expr()?);
            if !self.eat_sym(",") {
                break;
            }
        }
        Ok((url, list))
    }

    fn db_name_expr(&mut self) -> PResult<Expr> {
        match self.peek() {
            Some(Tok::Var(v)) => {
                let v = v.clone();
                self.pos += 1;
                Ok(Expr::Var(v))
            }
            _ => Ok(Expr::Lit(Value::Text(self.ident()?))),
        }
    }

    fn backup(&mut self) -> PResult<Stmt> {
        self.pos += 1;
        let log = if self.eat_kw("log") {
            true
        } else {
            self.expect_kw("database")?;
            false
        };
        let database = self.db_name_expr()?;
        self.expect_kw("to")?;
        let (url, targets) = self.device_list()?;
        let options = self.options()?;
        Ok(Stmt::Backup(BackupStmt {
            log,
            database,
            url,
            targets,
            options,
        }))
    }

    fn restore(&mut self) -> PResult<Stmt> {
        self.pos += 1;
        let kind = self.ident()?.to_ascii_uppercase();
        let database = match kind.as_str() {
            "DATABASE" | "LOG" => Some(self.db_name_expr()?),
            "VERIFYONLY" | "HEADERONLY" | "FILELISTONLY" | "LABELONLY" => None,
            _ => return Err(format!("Incorrect syntax near '{kind}'")),
        };
        if database.is_some() && !self.kw("from") {
            // RESTORE DATABASE x WITH RECOVERY (no source)
            let options = self.options()?;
            return Ok(Stmt::Restore(RestoreStmt {
                kind,
                database,
                url: false,
                sources: vec![],
                options,
            }));
        }
        self.expect_kw("from")?;
        let (url, sources) = self.device_list()?;
        let options = self.options()?;
        Ok(Stmt::Restore(RestoreStmt {
            kind,
            database,
            url,
            sources,
            options,
        }))
    }

    // ---- SELECT --------------------------------------------------------------------------

    pub fn select(&mut self) -> PResult<Select> {
        self.enter()?;
        let s = self.select_inner();
        self.depth -= 1;
        s
    }

    fn select_inner(&mut self) -> PResult<Select> {
        if self.eat_sym("(") {
            let s = self.select()?;
            self.expect_sym(")")?;
            return Ok(s);
        }
        self.expect_kw("select")?;
        static NEXT_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut s = Select {
            id,
            distinct: self.eat_kw("distinct"),
            ..Default::default()
        };
        self.eat_kw("all");
        if self.eat_kw("top") {
            // `TOP (expr)`, or without parentheses a constant or variable only (`TOP 5 *`).
            if self.eat_sym("(") {
                s.top = Some(self.expr()?);
                self.expect_sym(")")?;
            } else {
                s.top = Some(self.primary()?);
            }
        }
        loop {
            s.items.push(self.sel_item()?);
            if !self.eat_sym(",") {
                break;
            }
        }
        if self.eat_kw("into") {
            return Err("SELECT ... INTO is not supported by the simulator".into());
        }
        if self.eat_kw("from") {
            let first = self.table_ref()?;
            s.from.push((JoinKind::Inner, first, None));
            loop {
                let kind = if self.eat_sym(",") {
                    JoinKind::Cross
                } else if self.eat_kw("cross") {
                    if self.eat_kw("apply") {
                        return Err("CROSS APPLY is not supported by the simulator".into());
                    }
                    self.expect_kw("join")?;
                    JoinKind::Cross
                } else if self.kw("left") {
                    self.pos += 1;
                    self.eat_kw("outer");
                    self.expect_kw("join")?;
                    JoinKind::Left
                } else if self.kw("inner") || self.kw("join") {
                    self.eat_kw("inner");
                    self.expect_kw("join")?;
                    JoinKind::Inner
                } else {
                    break;
                };
                let t = self.table_ref()?;
                let on = if kind != JoinKind::Cross {
                    self.expect_kw("on")?;
                    Some(self.expr()?)
                } else {
                    None
                };
                s.from.push((kind, t, on));
            }
        }
        if self.eat_kw("where") {
            s.where_ = Some(self.expr()?);
        }
        if self.kw("group") {
            self.pos += 1;
            self.expect_kw("by")?;
            loop {
                s.group_by.push(self.expr()?);
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        if self.eat_kw("having") {
            s.having = Some(self.expr()?);
        }
        if self.kw("order") {
            self.pos += 1;
            self.expect_kw("by")?;
            loop {
                let e = self.expr()?;
                let desc = if self.eat_kw("desc") {
                    true
                } else {
                    self.eat_kw("asc");
                    false
                };
                s.order_by.push((e, desc));
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        if self.kw("option") {
            self.pos += 1;
            self.expect_sym("(")?;
            let mut d = 1;
            while d > 0 && !self.done() {
                if self.sym("(") {
                    d += 1;
                } else if self.sym(")") {
                    d -= 1;
                }
                self.pos += 1;
            }
        }
        while self.eat_kw("union") {
            let all = self.eat_kw("all");
            let mut next = self.select()?;
            // `next` already took the members after it: keep them all at this level, in order,
            // or the third and later members would be dropped.
            let rest = std::mem::take(&mut next.unions);
            s.unions.push((all, next));
            s.unions.extend(rest);
        }
        Ok(s)
    }

    fn sel_item(&mut self) -> PResult<SelItem> {
        if self.eat_sym("*") {
            return Ok(SelItem::Star(None));
        }
        if let (Some(Tok::Word { text, .. }), Some(Tok::Sym(".")), Some(Tok::Sym("*"))) =
            (self.peek(), self.peek_at(1), self.peek_at(2))
        {
            let q = text.clone();
            self.pos += 3;
            return Ok(SelItem::Star(Some(q)));
        }
        if let (Some(Tok::Var(v)), Some(Tok::Sym("="))) = (self.peek(), self.peek_at(1)) {
            let v = v.clone();
            self.pos += 2;
            return Ok(SelItem::Assign(v, self.expr()?));
        }
        // alias = expr
        if let (Some(Tok::Word { text, .. }), Some(Tok::Sym("="))) = (self.peek(), self.peek_at(1))
            && !Self::is_reserved(&self.t[self.pos])
        {
            let a = text.clone();
            self.pos += 2;
            return Ok(SelItem::Expr(self.expr()?, Some(a)));
        }
        let e = self.expr()?;
        let alias = self.alias()?;
        Ok(SelItem::Expr(e, alias))
    }

    fn alias(&mut self) -> PResult<Option<String>> {
        if self.eat_kw("as") {
            return match self.peek() {
                Some(Tok::Word { text, .. }) => {
                    let a = text.clone();
                    self.pos += 1;
                    Ok(Some(a))
                }
                Some(Tok::Str(s)) => {
                    let a = s.clone();
                    self.pos += 1;
                    Ok(Some(a))
                }
                _ => Err(format!(
                    "Incorrect syntax near {}: expected an alias",
                    self.near()
                )),
            };
        }
        match self.peek() {
            Some(t @ Tok::Word { text, .. }) if !Self::is_reserved(t) => {
                let a = text.clone();
                self.pos += 1;
                Ok(Some(a))
            }
            _ => Ok(None),
        }
    }

    fn table_ref(&mut self) -> PResult<TableRef> {
        if self.sym("(") {
            self.pos += 1;
            let s = self.select()?;
            self.expect_sym(")")?;
            let alias = self.alias()?.ok_or("a derived table needs an alias")?;
            return Ok(TableRef::Derived {
                select: Box::new(s),
                alias,
            });
        }
        if let Some(Tok::Var(v)) = self.peek() {
            let name = v.clone();
            self.pos += 1;
            let alias = self.alias()?;
            return Ok(TableRef::Var { name, alias });
        }
        let parts = self.dotted()?;
        let alias = self.alias()?;
        if self.kw("with") && self.peek_at(1).is_some_and(|t| t.is_sym("(")) {
            self.pos += 2;
            while !self.sym(")") && !self.done() {
                self.pos += 1;
            }
            self.expect_sym(")")?;
        }
        Ok(TableRef::Named { parts, alias })
    }

    // ---- expressions ---------------------------------------------------------------------

    pub fn expr(&mut self) -> PResult<Expr> {
        self.enter()?;
        let e = self.or();
        self.depth -= 1;
        e
    }
    // Each link of a left-nested chain (`a OR b OR c`) deepens the tree by one, so the
    // chains below count as nesting too.
    fn or(&mut self) -> PResult<Expr> {
        let outer = self.depth;
        let mut l = self.and()?;
        while self.eat_kw("or") {
            self.enter()?;
            let r = self.and()?;
            l = Expr::Bin(BinOp::Or, Box::new(l), Box::new(r));
        }
        self.depth = outer;
        Ok(l)
    }
    fn and(&mut self) -> PResult<Expr> {
        let outer = self.depth;
        let mut l = self.not()?;
        while self.eat_kw("and") {
            self.enter()?;
            let r = self.not()?;
            l = Expr::Bin(BinOp::And, Box::new(l), Box::new(r));
        }
        self.depth = outer;
        Ok(l)
    }
    fn not(&mut self) -> PResult<Expr> {
        if self.eat_kw("not") {
            self.enter()?;
            let e = self.not();
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e?)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> PResult<Expr> {
        if self.eat_kw("exists") {
            self.expect_sym("(")?;
            let s = self.select()?;
            self.expect_sym(")")?;
            return Ok(Expr::Exists(Box::new(s)));
        }
        let l = self.add()?;
        let op = match self.peek() {
            Some(Tok::Sym("=")) => Some(BinOp::Eq),
            Some(Tok::Sym("<>")) | Some(Tok::Sym("!=")) => Some(BinOp::Ne),
            Some(Tok::Sym("<")) => Some(BinOp::Lt),
            Some(Tok::Sym("<=")) => Some(BinOp::Le),
            Some(Tok::Sym(">")) => Some(BinOp::Gt),
            Some(Tok::Sym(">=")) => Some(BinOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.pos += 1;
            let r = self.add()?;
            return Ok(Expr::Bin(op, Box::new(l), Box::new(r)));
        }
        if self.kw("is") {
            self.pos += 1;
            let neg = self.eat_kw("not");
            self.expect_kw("null")?;
            return Ok(Expr::IsNull(Box::new(l), neg));
        }
        let neg = if self.kw("not")
            && (self.kw_at(1, "in") || self.kw_at(1, "like") || self.kw_at(1, "between"))
        {
            self.pos += 1;
            true
        } else {
            false
        };
        if self.eat_kw("in") {
            self.expect_sym("(")?;
            if self.kw("select") {
                let s = self.select()?;
                self.expect_sym(")")?;
                return Ok(Expr::InSelect(Box::new(l), Box::new(s), neg));
            }
            let mut list = vec![self.expr()?];
            while self.eat_sym(",") {
                list.push(self.expr()?);
            }
            self.expect_sym(")")?;
            return Ok(Expr::InList(Box::new(l), list, neg));
        }
        if self.eat_kw("like") {
            let p = self.add()?;
            if self.eat_kw("escape") {
                self.add()?;
            }
            return Ok(Expr::Like(Box::new(l), Box::new(p), neg));
        }
        if self.eat_kw("between") {
            let a = self.add()?;
            self.expect_kw("and")?;
            let b = self.add()?;
            return Ok(Expr::Between(Box::new(l), Box::new(a), Box::new(b), neg));
        }
        Ok(l)
    }
    fn add(&mut self) -> PResult<Expr> {
        let outer = self.depth;
        let mut l = self.mul()?;
        loop {
            let op = if self.sym("+") {
                BinOp::Add
            } else if self.sym("-") {
                BinOp::Sub
            } else {
                break;
            };
            self.pos += 1;
            self.enter()?;
            let r = self.mul()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
        self.depth = outer;
        Ok(l)
    }
    fn mul(&mut self) -> PResult<Expr> {
        let outer = self.depth;
        let mut l = self.unary()?;
        loop {
            let op = if self.sym("*") {
                BinOp::Mul
            } else if self.sym("/") {
                BinOp::Div
            } else if self.sym("%") {
                BinOp::Mod
            } else {
                break;
            };
            self.pos += 1;
            self.enter()?;
            let r = self.unary()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
        self.depth = outer;
        Ok(l)
    }
    fn unary(&mut self) -> PResult<Expr> {
        let neg = self.sym("-");
        if neg || self.sym("+") {
            self.pos += 1;
            self.enter()?;
            let e = self.unary();
            self.depth -= 1;
            return if neg { Ok(Expr::Neg(Box::new(e?))) } else { e };
        }
        self.primary()
    }
    // TODO(issue 16): split (literals, names, calls and CASE apart).
    #[allow(clippy::too_many_lines)]
    fn primary(&mut self) -> PResult<Expr> {
        let Some(t) = self.peek() else {
            return Err("Incorrect syntax near the end of the batch".into());
        };
        match t {
            Tok::Num(n) => {
                self.pos += 1;
                if let Some(hex) = n.strip_prefix("0x").or_else(|| n.strip_prefix("0X")) {
                    // SQL Server pads an odd number of digits on the left: 0xABC is 0x0ABC.
                    let padded = format!("{}{hex}", if hex.len() % 2 == 1 { "0" } else { "" });
                    let bytes = (0..padded.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&padded[i..i + 2], 16))
                        .collect::<Result<Vec<u8>, _>>()
                        .map_err(|_| format!("Incorrect syntax near '{n}'."))?;
                    return Ok(Expr::Lit(Value::Binary(bytes)));
                }
                if n.contains('.') {
                    Ok(Expr::Lit(Value::Float(
                        n.parse().map_err(|_| format!("bad number {n}"))?,
                    )))
                } else {
                    Ok(Expr::Lit(Value::Int(
                        n.parse().map_err(|_| format!("bad number {n}"))?,
                    )))
                }
            }
            Tok::Str(s) => {
                self.pos += 1;
                Ok(Expr::Lit(Value::Text(s.clone())))
            }
            Tok::Var(v) => {
                self.pos += 1;
                Ok(Expr::Var(v.clone()))
            }
            Tok::Sym("(") => {
                self.pos += 1;
                if self.kw("select") {
                    let s = self.select()?;
                    self.expect_sym(")")?;
                    return Ok(Expr::Subquery(Box::new(s)));
                }
                let e = self.expr()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Tok::Sym("*") => {
                self.pos += 1;
                Ok(Expr::Star(None))
            }
            Tok::Word { text, bracketed } => {
                let lower = text.to_ascii_lowercase();
                if !bracketed {
                    match lower.as_str() {
                        "null" => {
                            self.pos += 1;
                            return Ok(Expr::Lit(Value::Null));
                        }
                        "case" => return self.case(),
                        "cast" | "try_cast" if self.peek_at(1).is_some_and(|t| t.is_sym("(")) => {
                            self.pos += 2;
                            let e = self.expr()?;
                            self.expect_kw("as")?;
                            let ty = self.data_type()?;
                            self.expect_sym(")")?;
                            return Ok(Expr::Cast(Box::new(e), ty));
                        }
                        "convert" | "try_convert"
                            if self.peek_at(1).is_some_and(|t| t.is_sym("(")) =>
                        {
                            self.pos += 2;
                            let ty = self.data_type()?;
                            self.expect_sym(",")?;
                            let e = self.expr()?;
                            let mut args = vec![e];
                            while self.eat_sym(",") {
                                args.push(self.expr()?);
                            }
                            self.expect_sym(")")?;
                            let e = args.swap_remove(0);
                            return Ok(Expr::Cast(Box::new(e), ty));
                        }
                        "current_timestamp" => {
                            self.pos += 1;
                            return Ok(Expr::Func {
                                name: "getdate".into(),
                                args: vec![],
                                distinct: false,
                            });
                        }
                        _ => {}
                    }
                }
                if !bracketed && self.peek_at(1).is_some_and(|t| t.is_sym("(")) {
                    self.pos += 2;
                    let distinct = self.eat_kw("distinct");
                    let mut args = Vec::new();
                    if !self.sym(")") {
                        loop {
                            if self.eat_sym("*") {
                                args.push(Expr::Star(None));
                            } else if matches!(
                                lower.as_str(),
                                "datediff" | "dateadd" | "datepart" | "datename"
                            ) && args.is_empty()
                            {
                                args.push(Expr::Lit(Value::Text(
                                    self.ident()?.to_ascii_lowercase(),
                                )));
                            } else {
                                args.push(self.expr()?);
                            }
                            if !self.eat_sym(",") {
                                break;
                            }
                        }
                    }
                    self.expect_sym(")")?;
                    if self.kw("over") {
                        return Err(
                            "window functions (OVER) are not supported by the simulator".into()
                        );
                    }
                    return Ok(Expr::Func {
                        name: lower,
                        args,
                        distinct,
                    });
                }
                if !bracketed && Self::is_reserved(t) {
                    return Err(format!(
                        "Incorrect syntax near the keyword '{}'",
                        text.to_uppercase()
                    ));
                }
                let parts = self.dotted()?;
                if self.sym(".") && self.peek_at(1).is_some_and(|t| t.is_sym("*")) {
                    self.pos += 2;
                    return Ok(Expr::Star(parts.last().cloned()));
                }
                Ok(Expr::Col(parts))
            }
            _ => Err(format!("Incorrect syntax near {}", self.near())),
        }
    }
    fn case(&mut self) -> PResult<Expr> {
        self.pos += 1;
        let operand = if self.kw("when") {
            None
        } else {
            Some(Box::new(self.expr()?))
        };
        let mut whens = Vec::new();
        while self.eat_kw("when") {
            let w = self.expr()?;
            self.expect_kw("then")?;
            let t = self.expr()?;
            whens.push((w, t));
        }
        let default = if self.eat_kw("else") {
            Some(Box::new(self.expr()?))
        } else {
            None
        };
        self.expect_kw("end")?;
        Ok(Expr::Case {
            operand,
            whens,
            default,
        })
    }
}

/// Parses a batch; a syntax error becomes `Err(message)` (error 102 for the caller).
pub fn parse_batch(toks: &[Tok]) -> Result<Vec<Stmt>, String> {
    Parser::new(toks).batch()
}

/// `parse_batch` with the index of each statement's first token; an error comes with the
/// index of the token the parser stopped at (for the line SQL Server reports).
pub fn parse_batch_at(toks: &[Tok]) -> Result<Vec<(usize, Stmt)>, (usize, String)> {
    let mut p = Parser::new(toks);
    p.batch_at().map_err(|e| (p.pos, e))
}

/// Qualified column references in `sel` whose qualifier is not defined inside it: the
/// outer values a correlated subquery depends on.
pub fn outer_refs(sel: &Select) -> Vec<Vec<String>> {
    let mut defined = Vec::new();
    let mut refs = Vec::new();
    walk_select(sel, &mut defined, &mut refs);
    refs.retain(|r: &Vec<String>| {
        let q = &r[r.len() - 2];
        !defined.iter().any(|d: &String| d.eq_ignore_ascii_case(q))
    });
    refs.dedup();
    refs
}

fn walk_select(s: &Select, defined: &mut Vec<String>, refs: &mut Vec<Vec<String>>) {
    for (n, q) in &s.ctes {
        defined.push(n.clone());
        walk_select(q, defined, refs);
    }
    for (_, t, on) in &s.from {
        match t {
            TableRef::Named { parts, alias } => defined.push(
                alias
                    .clone()
                    .unwrap_or_else(|| parts.last().cloned().unwrap_or_default()),
            ),
            TableRef::Derived { select, alias } => {
                defined.push(alias.clone());
                walk_select(select, defined, refs);
            }
            TableRef::Var { name, alias } => {
                defined.push(alias.clone().unwrap_or_else(|| format!("@{name}")))
            }
        }
        if let Some(e) = on {
            walk_expr(e, defined, refs);
        }
    }
    for i in &s.items {
        match i {
            SelItem::Expr(e, _) | SelItem::Assign(_, e) => walk_expr(e, defined, refs),
            SelItem::Star(_) => {}
        }
    }
    for e in s
        .where_
        .iter()
        .chain(s.having.iter())
        .chain(s.group_by.iter())
        .chain(s.top.iter())
        .chain(s.order_by.iter().map(|(e, _)| e))
    {
        walk_expr(e, defined, refs);
    }
    for (_, u) in &s.unions {
        walk_select(u, defined, refs);
    }
}

fn walk_expr(e: &Expr, defined: &mut Vec<String>, refs: &mut Vec<Vec<String>>) {
    match e {
        Expr::Col(p) if p.len() >= 2 => refs.push(p.clone()),
        Expr::Neg(a) | Expr::Not(a) | Expr::Cast(a, _) | Expr::IsNull(a, _) => {
            walk_expr(a, defined, refs)
        }
        Expr::Bin(_, a, b) | Expr::Like(a, b, _) => {
            walk_expr(a, defined, refs);
            walk_expr(b, defined, refs);
        }
        Expr::Between(a, b, c, _) => {
            walk_expr(a, defined, refs);
            walk_expr(b, defined, refs);
            walk_expr(c, defined, refs);
        }
        Expr::Func { args, .. } => args.iter().for_each(|a| walk_expr(a, defined, refs)),
        Expr::Case {
            operand,
            whens,
            default,
        } => {
            if let Some(o) = operand {
                walk_expr(o, defined, refs);
            }
            for (w, t) in whens {
                walk_expr(w, defined, refs);
                walk_expr(t, defined, refs);
            }
            if let Some(d) = default {
                walk_expr(d, defined, refs);
            }
        }
        Expr::InList(a, l, _) => {
            walk_expr(a, defined, refs);
            l.iter().for_each(|x| walk_expr(x, defined, refs));
        }
        Expr::InSelect(a, s, _) => {
            walk_expr(a, defined, refs);
            walk_select(s, defined, refs);
        }
        Expr::Exists(s) | Expr::Subquery(s) => walk_select(s, defined, refs),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::lex::lex;
    use super::*;

    #[test]
    fn parses_control_flow_and_selects() {
        let t = lex("DECLARE @x int = 1; IF @x = 1 SELECT a AS b FROM dbo.t AS x WHERE x.c LIKE N'%y' ORDER BY b DESC; ELSE THROW 50001, N'no', 1;").unwrap();
        let b = parse_batch(&t).unwrap();
        assert_eq!(b.len(), 2);
        assert!(matches!(&b[1], Stmt::If(_, _, Some(_))));
        let t = lex("BEGIN TRY RESTORE VERIFYONLY FROM DISK = @f; END TRY BEGIN CATCH SELECT ERROR_MESSAGE(); END CATCH").unwrap();
        assert!(matches!(&parse_batch(&t).unwrap()[0], Stmt::Try(_, _)));
        let t = lex(
            "EXEC msdb.dbo.sp_update_job @job_name = @n, @enabled = 1 EXEC sp_configure 'x', 1",
        )
        .unwrap();
        assert_eq!(parse_batch(&t).unwrap().len(), 2);
    }
}
