//! The names a statement uses, read from its text without a full T-SQL parser: objects after
//! FROM / JOIN / INTO / UPDATE / EXEC, columns written `alias.column` for an alias of such
//! an object, the named parameters of each EXEC, and the job names given to msdb's job
//! procedures. What this cannot read (derived tables, unqualified columns, dynamic SQL) is
//! left to SQL Server compiling the statement under `SET NOEXEC ON` (docs/PREFLIGHT.md).

use std::collections::BTreeMap;

/// A token of T-SQL text (comments dropped).
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A word or a `[quoted]` identifier (brackets removed); `bracketed` is true for the latter.
    Word(String, bool),
    /// `@name` (without `@`).
    Var(String),
    /// A string literal's contents.
    Str(String),
    Sym(char),
}

fn lex(sql: &str) -> Vec<Tok> {
    let cs: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && cs.get(i + 1) == Some(&'-') {
            while i < cs.len() && cs[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && cs.get(i + 1) == Some(&'*') {
            i += 2;
            while i < cs.len() && !(cs[i] == '*' && cs.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '\'' || ((c == 'N' || c == 'n') && cs.get(i + 1) == Some(&'\'')) {
            i += if c == '\'' { 1 } else { 2 };
            let mut s = String::new();
            while i < cs.len() {
                if cs[i] == '\'' {
                    if cs.get(i + 1) == Some(&'\'') {
                        s.push('\'');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                s.push(cs[i]);
                i += 1;
            }
            out.push(Tok::Str(s));
        } else if c == '[' {
            i += 1;
            let mut s = String::new();
            while i < cs.len() {
                if cs[i] == ']' {
                    if cs.get(i + 1) == Some(&']') {
                        s.push(']');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                s.push(cs[i]);
                i += 1;
            }
            out.push(Tok::Word(s, true));
        } else if c == '"' {
            i += 1;
            let mut s = String::new();
            while i < cs.len() && cs[i] != '"' {
                s.push(cs[i]);
                i += 1;
            }
            i += 1;
            out.push(Tok::Word(s, true));
        } else if c == '@' {
            i += 1;
            let mut s = String::new();
            while i < cs.len() && (cs[i].is_alphanumeric() || "_@#$".contains(cs[i])) {
                s.push(cs[i]);
                i += 1;
            }
            out.push(Tok::Var(s));
        } else if c.is_alphanumeric() || c == '_' || c == '#' {
            let mut s = String::new();
            while i < cs.len() && (cs[i].is_alphanumeric() || "_#$".contains(cs[i])) {
                s.push(cs[i]);
                i += 1;
            }
            out.push(Tok::Word(s, false));
        } else {
            out.push(Tok::Sym(c));
            i += 1;
        }
    }
    out
}

/// Words that end a table reference (never an alias).
const NOT_ALIAS: &[&str] = &[
    "where",
    "join",
    "inner",
    "left",
    "right",
    "full",
    "cross",
    "outer",
    "on",
    "order",
    "group",
    "having",
    "union",
    "except",
    "intersect",
    "with",
    "option",
    "for",
    "select",
    "set",
    "values",
    "output",
    "exec",
    "execute",
    "if",
    "else",
    "begin",
    "end",
    "declare",
    "insert",
    "update",
    "delete",
    "return",
    "print",
    "while",
    "apply",
    "pivot",
    "unpivot",
    "when",
    "then",
    "go",
    "use",
    "raiserror",
    "throw",
    "commit",
    "rollback",
    "merge",
    "from",
    "into",
    "and",
    "or",
    "not",
    "is",
    "as",
    "top",
    "case",
    "restore",
    "backup",
    "waitfor",
    "break",
    "continue",
];

/// Words after FROM/INTO that are not objects (device clauses of BACKUP/RESTORE).
const NOT_OBJECT: &[&str] = &["disk", "url", "tape", "database", "log"];

/// Statement keywords that end an EXEC's argument list.
const STMT_START: &[&str] = &[
    "select",
    "exec",
    "execute",
    "if",
    "else",
    "end",
    "begin",
    "declare",
    "set",
    "insert",
    "update",
    "delete",
    "return",
    "print",
    "while",
    "commit",
    "rollback",
    "raiserror",
    "throw",
    "go",
    "use",
    "with",
    "backup",
    "restore",
    "waitfor",
];

/// Where an object was named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Use {
    /// FROM / JOIN / INTO / UPDATE: a table or view.
    Table,
    /// EXEC: a procedure.
    Proc,
}

/// An object as written: up to 3 parts (`db.schema.name`; empty parts allowed: `db..name`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjName {
    pub parts: Vec<String>,
    pub used_as: Use,
}

impl ObjName {
    pub fn name(&self) -> &str {
        self.parts.last().map(String::as_str).unwrap_or("")
    }
    /// The database part, when written.
    pub fn database(&self) -> Option<&str> {
        (self.parts.len() == 3)
            .then(|| self.parts[0].as_str())
            .filter(|d| !d.is_empty())
    }
    /// The schema part, when written.
    pub fn schema(&self) -> Option<&str> {
        (self.parts.len() >= 2)
            .then(|| self.parts[self.parts.len() - 2].as_str())
            .filter(|s| !s.is_empty())
    }
    pub fn display(&self) -> String {
        self.parts.join(".")
    }
}

/// An EXEC's job-name argument.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum JobRef {
    /// `@job_name = N'...'`
    Literal(String),
    /// `@job_name = @var`: the statement's parameter (a runbook variable).
    Var(String),
}

/// What a statement names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Names {
    pub objects: Vec<ObjName>,
    /// (object index in `objects`, column)
    pub columns: Vec<(usize, String)>,
    /// (object index in `objects`, parameter without `@`)
    pub params: Vec<(usize, String)>,
    pub jobs: Vec<JobRef>,
    /// Every string literal (a name in one is looked up at run time: `OBJECT_ID(N'...')`).
    pub literals: Vec<String>,
    /// Names of more than 3 parts (linked servers): cannot be checked.
    pub remote: Vec<String>,
    /// Aliases given with a table (`FROM x AS a`, `FROM x a`), lower case: `UPDATE a` names
    /// the alias, not an object.
    pub aliases: Vec<String>,
}

impl ObjName {
    /// True for a one-part name that is an alias of another table of the statement.
    pub fn is_alias_in(&self, n: &Names) -> bool {
        self.parts.len() == 1 && n.aliases.contains(&self.parts[0].to_ascii_lowercase())
    }
}

impl Names {
    /// True when `name` appears in a string literal: the statement checks it exists before
    /// using it (`IF OBJECT_ID(N'...') IS NOT NULL`), so its absence is not an error.
    pub fn guarded(&self, name: &str) -> bool {
        let n = name.to_ascii_lowercase();
        self.literals
            .iter()
            .any(|l| l.to_ascii_lowercase().contains(&n))
    }
}

fn is_word(t: Option<&Tok>) -> Option<&str> {
    match t {
        Some(Tok::Word(w, _)) => Some(w),
        _ => None,
    }
}

fn kw(t: Option<&Tok>, k: &str) -> bool {
    matches!(t, Some(Tok::Word(w, false)) if w.eq_ignore_ascii_case(k))
}

/// Reads a dotted name at `i`; returns it and the index after it.
fn dotted(toks: &[Tok], mut i: usize) -> Option<(Vec<String>, usize)> {
    let mut parts = Vec::new();
    let first = is_word(toks.get(i))?;
    parts.push(first.to_string());
    i += 1;
    while matches!(toks.get(i), Some(Tok::Sym('.'))) {
        i += 1;
        match toks.get(i) {
            Some(Tok::Word(w, _)) => {
                parts.push(w.clone());
                i += 1;
            }
            // `db..name`
            Some(Tok::Sym('.')) => parts.push(String::new()),
            _ => break,
        }
    }
    Some((parts, i))
}

/// The names `sql` uses.
// TODO(issue 16): split along its seams.
#[allow(clippy::too_many_lines)]
pub fn names(sql: &str) -> Names {
    let toks = lex(sql);
    let mut out = Names::default();
    for t in &toks {
        if let Tok::Str(s) = t {
            out.literals.push(s.clone());
        }
    }
    // CTE names are not objects.
    let mut ctes: Vec<String> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if let Tok::Word(w, _) = t
            && kw(toks.get(i + 1), "as")
            && matches!(toks.get(i + 2), Some(Tok::Sym('(')))
            && (i == 0
                || kw(toks.get(i - 1), "with")
                || matches!(toks.get(i - 1), Some(Tok::Sym(','))))
        {
            ctes.push(w.to_ascii_lowercase());
        }
    }
    // alias (lower case) -> object index; None when one alias names two different objects.
    let mut aliases: BTreeMap<String, Option<usize>> = BTreeMap::new();
    let add_alias = |aliases: &mut BTreeMap<String, Option<usize>>, a: &str, idx: usize| {
        let a = a.to_ascii_lowercase();
        match aliases.get(&a) {
            Some(Some(j)) if *j != idx => {
                aliases.insert(a, None);
            }
            Some(None) => {}
            _ => {
                aliases.insert(a, Some(idx));
            }
        }
    };
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let used_as = if ["from", "join", "into", "update"]
            .iter()
            .any(|k| kw(Some(t), k))
        {
            Some(Use::Table)
        } else if kw(Some(t), "exec") || kw(Some(t), "execute") {
            Some(Use::Proc)
        } else {
            None
        };
        let Some(used_as) = used_as else {
            i += 1;
            continue;
        };
        let mut j = i + 1;
        // EXEC @rc = proc ...
        if used_as == Use::Proc
            && matches!(toks.get(j), Some(Tok::Var(_)))
            && matches!(toks.get(j + 1), Some(Tok::Sym('=')))
        {
            j += 2;
        }
        let Some((parts, after)) = dotted(&toks, j) else {
            i += 1;
            continue;
        };
        let first = parts[0].to_ascii_lowercase();
        let plain = matches!(toks.get(j), Some(Tok::Word(_, false)));
        if parts.len() == 1
            && plain
            && (NOT_OBJECT.contains(&first.as_str()) || NOT_ALIAS.contains(&first.as_str()))
        {
            i += 1;
            continue;
        }
        if first.starts_with('#') || ctes.contains(&first) && parts.len() == 1 {
            i = after;
            continue;
        }
        // A function (`FROM sys.fn_x(...)`, `OPENROWSET(...)`) is not checked here.
        if matches!(toks.get(after), Some(Tok::Sym('('))) && used_as == Use::Table {
            i = after;
            continue;
        }
        if parts.len() > 3 {
            out.remote.push(parts.join("."));
            i = after;
            continue;
        }
        let obj = ObjName {
            parts: parts.clone(),
            used_as,
        };
        let idx = match out.objects.iter().position(|o| {
            o.used_as == used_as
                && o.parts.len() == obj.parts.len()
                && o.parts
                    .iter()
                    .zip(&obj.parts)
                    .all(|(a, b)| a.eq_ignore_ascii_case(b))
        }) {
            Some(k) => k,
            None => {
                out.objects.push(obj);
                out.objects.len() - 1
            }
        };
        let mut k = after;
        if used_as == Use::Table {
            add_alias(
                &mut aliases,
                parts.last().map(String::as_str).unwrap_or(""),
                idx,
            );
            if kw(toks.get(k), "as") {
                k += 1;
            }
            if let Some(Tok::Word(a, br)) = toks.get(k)
                && (*br || !NOT_ALIAS.contains(&a.to_ascii_lowercase().as_str()))
            {
                add_alias(&mut aliases, a, idx);
                out.aliases.push(a.to_ascii_lowercase());
                k += 1;
            }
        } else {
            // Arguments: `@name = value` at depth 0, up to the next statement.
            let mut depth = 0i32;
            let mut at_start = true;
            while let Some(t) = toks.get(k) {
                match t {
                    Tok::Sym('(') => depth += 1,
                    Tok::Sym(')') => depth -= 1,
                    Tok::Sym(';') if depth <= 0 => break,
                    Tok::Sym(',') if depth == 0 => {
                        at_start = true;
                        k += 1;
                        continue;
                    }
                    Tok::Word(w, false)
                        if depth == 0
                            && at_start
                            && STMT_START.contains(&w.to_ascii_lowercase().as_str()) =>
                    {
                        break;
                    }
                    Tok::Var(p) if depth == 0 && at_start => {
                        if matches!(toks.get(k + 1), Some(Tok::Sym('='))) {
                            out.params.push((idx, p.clone()));
                            if p.eq_ignore_ascii_case("job_name") {
                                match toks.get(k + 2) {
                                    Some(Tok::Str(s)) => out.jobs.push(JobRef::Literal(s.clone())),
                                    Some(Tok::Var(v)) => out.jobs.push(JobRef::Var(v.clone())),
                                    _ => {}
                                }
                            }
                        }
                    }
                    // A value followed by a statement keyword on the next line.
                    Tok::Word(w, false)
                        if depth == 0
                            && !at_start
                            && STMT_START.contains(&w.to_ascii_lowercase().as_str()) =>
                    {
                        break;
                    }
                    _ => {}
                }
                at_start = false;
                k += 1;
            }
        }
        i = k.max(i + 1);
    }
    // alias.column references
    for (i, t) in toks.iter().enumerate() {
        let Tok::Word(a, _) = t else { continue };
        if !matches!(toks.get(i + 1), Some(Tok::Sym('.'))) {
            continue;
        }
        let Some(Tok::Word(col, _)) = toks.get(i + 2) else {
            continue;
        };
        // Part of a longer dotted name (db.schema.table, alias.col.x): not a column.
        if i > 0 && matches!(toks.get(i - 1), Some(Tok::Sym('.'))) {
            continue;
        }
        if matches!(toks.get(i + 3), Some(Tok::Sym('.') | Tok::Sym('('))) {
            continue;
        }
        if let Some(Some(idx)) = aliases.get(&a.to_ascii_lowercase())
            && out.objects[*idx].used_as == Use::Table
            && !out.objects[*idx].name().eq_ignore_ascii_case(col)
            && !out
                .columns
                .iter()
                .any(|(o, c)| o == idx && c.eq_ignore_ascii_case(col))
        {
            // `dbo.table` written right after FROM is the object itself, not a column.
            let is_object_name = out.objects[*idx]
                .parts
                .windows(2)
                .any(|w| w[0].eq_ignore_ascii_case(a) && w[1].eq_ignore_ascii_case(col));
            if !is_object_name {
                out.columns.push((*idx, col.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_aliases_columns_params_and_jobs() {
        let n = names(
            "WITH x AS (SELECT 1 AS a) -- FROM commented.out\n\
             SELECT j.name, h.run_status, x.a FROM msdb.dbo.sysjobs AS j\n\
             JOIN msdb.dbo.sysjobhistory h ON h.job_id = j.job_id JOIN x ON 1 = 1\n\
             WHERE j.name = @backup_job_name AND OBJECT_ID(N'[db].dbo.adm_X') IS NULL;\n\
             EXEC msdb.dbo.sp_start_job @job_name = @backup_job_name, @step_name = N'a,b'\n\
             SELECT * FROM #tmp; RESTORE DATABASE [d] FROM DISK = @p",
        );
        let objs: Vec<String> = n.objects.iter().map(ObjName::display).collect();
        assert_eq!(
            objs,
            [
                "msdb.dbo.sysjobs",
                "msdb.dbo.sysjobhistory",
                "msdb.dbo.sp_start_job"
            ]
        );
        assert_eq!(
            n.columns,
            vec![
                (0, "name".to_string()),
                (1, "run_status".to_string()),
                (1, "job_id".to_string()),
                (0, "job_id".to_string())
            ]
        );
        assert_eq!(
            n.params,
            vec![(2, "job_name".to_string()), (2, "step_name".to_string())]
        );
        assert_eq!(n.jobs, vec![JobRef::Var("backup_job_name".into())]);
        assert!(n.guarded("adm_X"));
        assert!(!n.guarded("adm_Y"));
    }

    #[test]
    fn an_alias_naming_two_tables_is_not_checked() {
        let n = names(
            "SELECT t.a FROM dbo.one AS t; SELECT t.b FROM dbo.two AS t; EXEC @rc = dbo.p @x = 1",
        );
        assert!(n.columns.is_empty(), "{:?}", n.columns);
        assert_eq!(n.objects[2].display(), "dbo.p");
        assert_eq!(n.params, vec![(2, "x".to_string())]);
    }
}
