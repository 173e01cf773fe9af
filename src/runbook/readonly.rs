//! Check steps are read-only by construction: `btsdr check` sends them without asking, from
//! cron, so the loader refuses any statement in a check that changes data or state.
//!
//! The T-SQL is scanned as words outside strings, comments and quoted identifiers. Refused:
//! BACKUP, RESTORE (but the read-only VERIFYONLY, HEADERONLY, FILELISTONLY, LABELONLY), DROP,
//! ALTER, CREATE, INSERT, UPDATE, DELETE, MERGE, TRUNCATE, SELECT ... INTO, GRANT, REVOKE,
//! DENY, DBCC, KILL, SHUTDOWN, RECONFIGURE, BULK, ENABLE/DISABLE (triggers), RECEIVE/SEND
//! (Service Broker), OPENQUERY/OPENROWSET/OPENDATASOURCE (statements run on another server),
//! and EXEC/EXECUTE of anything but the
//! read-only procedures of [`READ_ONLY_PROCEDURES`]. Table variables (`@t`) and temporary
//! tables (`#t`) are the session's own: writing them is allowed.

/// System procedures that only read (SQL Server documentation: each returns information and
/// changes nothing whatever its arguments). `sp_configure` is not here: with a value it sets it.
pub(crate) const READ_ONLY_PROCEDURES: &[&str] = &[
    "sp_columns",
    "sp_databases",
    "sp_describe_first_result_set",
    "sp_help",
    "sp_help_alert",
    "sp_help_category",
    "sp_help_job",
    "sp_help_jobhistory",
    "sp_help_jobschedule",
    "sp_help_jobstep",
    "sp_help_operator",
    "sp_help_schedule",
    "sp_helpdb",
    "sp_helpfile",
    "sp_helpfilegroup",
    "sp_helpindex",
    "sp_helplogins",
    "sp_helprole",
    "sp_helprolemember",
    "sp_helprotect",
    "sp_helpserver",
    "sp_helpsrvrolemember",
    "sp_helptext",
    "sp_helpuser",
    "sp_readerrorlog",
    "sp_server_info",
    "sp_spaceused",
    "sp_tables",
    "sp_who",
    "sp_who2",
    "xp_dirtree",
    "xp_fileexist",
    "xp_fixeddrives",
    "xp_logininfo",
    "xp_msver",
    "xp_readerrorlog",
];

/// Statements that change data or state.
const WRITES: &[&str] = &[
    "backup",
    "restore",
    "drop",
    "alter",
    "create",
    "insert",
    "update",
    "delete",
    "merge",
    "truncate",
    "grant",
    "revoke",
    "deny",
    "dbcc",
    "kill",
    "shutdown",
    "reconfigure",
    "bulk",
    // ENABLE / DISABLE TRIGGER change the database.
    "enable",
    "disable",
    // Service Broker: RECEIVE takes messages off a queue, SEND puts them on one.
    "receive",
    "send",
    // Run a statement on another server, which may write there.
    "openquery",
    "openrowset",
    "opendatasource",
];

/// RESTORE forms that only read a backup.
const RESTORE_READS: &[&str] = &["verifyonly", "headeronly", "filelistonly", "labelonly"];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A bare word (keyword or identifier), lower-cased.
    Word(String),
    /// `[quoted]` or `"quoted"` identifier, as written inside the quotes.
    Quoted(String),
    /// `@name` or `#name` / `##name`.
    Local(String),
    Sym(char),
    /// A string literal.
    Str,
}

/// Words of `sql` with their byte offsets; strings, comments and quoted names skipped.
fn tokens(sql: &str) -> Vec<(usize, Tok)> {
    let b: Vec<(usize, char)> = sql.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let word_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '@' | '#' | '$');
    while i < b.len() {
        let (at, c) = b[i];
        let next = b.get(i + 1).map(|x| x.1);
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && next == Some('-') {
            while i < b.len() && b[i].1 != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            // T-SQL block comments nest.
            let mut depth = 0;
            while i < b.len() {
                if b[i].1 == '/' && b.get(i + 1).map(|x| x.1) == Some('*') {
                    depth += 1;
                    i += 2;
                } else if b[i].1 == '*' && b.get(i + 1).map(|x| x.1) == Some('/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '\'' || ((c == 'N' || c == 'n') && next == Some('\'')) {
            i += if c == '\'' { 1 } else { 2 };
            while i < b.len() {
                if b[i].1 == '\'' {
                    if b.get(i + 1).map(|x| x.1) == Some('\'') {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            out.push((at, Tok::Str));
        } else if c == '[' || c == '"' {
            let close = if c == '[' { ']' } else { '"' };
            let mut s = String::new();
            i += 1;
            while i < b.len() {
                if b[i].1 == close {
                    if b.get(i + 1).map(|x| x.1) == Some(close) {
                        s.push(close);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                s.push(b[i].1);
                i += 1;
            }
            out.push((at, Tok::Quoted(s)));
        } else if word_char(c) {
            let mut s = String::new();
            while i < b.len() && word_char(b[i].1) {
                s.push(b[i].1);
                i += 1;
            }
            if s.starts_with(['@', '#']) {
                out.push((at, Tok::Local(s)));
            } else {
                out.push((at, Tok::Word(s.to_lowercase())));
            }
        } else {
            out.push((at, Tok::Sym(c)));
            i += 1;
        }
    }
    out
}

fn is_word(t: Option<&(usize, Tok)>, w: &str) -> bool {
    matches!(t, Some((_, Tok::Word(x))) if x == w)
}

/// The first token after `i` that is not one of `skip` (words).
fn after<'t>(toks: &'t [(usize, Tok)], mut i: usize, skip: &[&str]) -> Option<&'t (usize, Tok)> {
    i += 1;
    while let Some(t) = toks.get(i) {
        match &t.1 {
            Tok::Word(w) if skip.contains(&w.as_str()) => i += 1,
            _ => return Some(t),
        }
    }
    None
}

fn local(t: Option<&(usize, Tok)>) -> bool {
    matches!(t, Some((_, Tok::Local(_))))
}

/// `Err((byte offset in sql, message))` for the first statement that could change data or
/// state.
pub fn check(sql: &str) -> Result<(), (usize, String)> {
    let toks = tokens(sql);
    for (i, (at, t)) in toks.iter().enumerate() {
        let Tok::Word(w) = t else { continue };
        let prev_insert = i > 0 && is_word(toks.get(i - 1), "insert");
        let refuse = |what: String| Err((*at, what));
        match w.as_str() {
            "restore" => {
                let ok = matches!(toks.get(i + 1), Some((_, Tok::Word(n))) if RESTORE_READS.contains(&n.as_str()));
                if !ok {
                    return refuse("RESTORE changes databases".into());
                }
            }
            // The session's own table variables and temporary tables may be written.
            "insert" if local(after(&toks, i, &["into"])) => {}
            "update" if local(toks.get(i + 1)) => {}
            "delete" if local(after(&toks, i, &["from"])) => {}
            "create" | "drop" | "truncate"
                if is_word(toks.get(i + 1), "table")
                    && local(after(&toks, i, &["table", "if", "exists"])) => {}
            "into" if !prev_insert && !local(toks.get(i + 1)) => {
                return refuse("SELECT ... INTO creates a table".into());
            }
            "exec" | "execute" => {
                // EXEC @rc = proc ...: the return value is the session's own.
                let mut j = i + 1;
                if local(toks.get(j)) && matches!(toks.get(j + 1), Some((_, Tok::Sym('=')))) {
                    j += 2;
                }
                let mut name = None;
                while let Some((_, Tok::Word(n) | Tok::Quoted(n))) = toks.get(j) {
                    name = Some(n.to_lowercase());
                    j += 1;
                    // `db.schema.proc`, `db..proc`
                    if !matches!(toks.get(j), Some((_, Tok::Sym('.')))) {
                        break;
                    }
                    while matches!(toks.get(j), Some((_, Tok::Sym('.')))) {
                        j += 1;
                    }
                }
                match name {
                    Some(n) if READ_ONLY_PROCEDURES.contains(&n.as_str()) => {}
                    Some(n) => {
                        return refuse(format!(
                            "EXEC of `{n}`, which is not a known read-only procedure"
                        ));
                    }
                    None => {
                        return refuse(
                            "EXEC of dynamic SQL or of a procedure in a variable".into(),
                        );
                    }
                }
            }
            w if WRITES.contains(&w) => {
                // `UPDATE(col)` and `DELETE` as column names only appear bracketed: a bare
                // word is the statement.
                return refuse(format!("{} changes data or state", w.to_uppercase()));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pass_and_writes_are_refused() {
        for ok in [
            "SELECT name FROM sys.databases",
            "-- BACKUP DATABASE x\nSELECT 1 /* DROP TABLE t /* nested */ DELETE */",
            "SELECT N'RESTORE DATABASE x WITH REPLACE' AS s, [update], [drop] FROM t",
            "SELECT h.BackupSetId, h.RestoreKind FROM dbo.adm_BackupHistory AS h",
            "DECLARE @t TABLE (a int); INSERT INTO @t VALUES (1); UPDATE @t SET a = 2; DELETE FROM @t; SELECT a FROM @t",
            "CREATE TABLE #x (a int); INSERT #x SELECT 1; SELECT a INTO #y FROM #x; DROP TABLE IF EXISTS #x; TRUNCATE TABLE #y",
            "RESTORE VERIFYONLY FROM DISK = @f",
            "RESTORE HEADERONLY FROM DISK = N'x.bak'",
            "EXEC msdb.dbo.sp_help_job @job_name = @n",
            "EXEC @rc = [master].[dbo].[xp_fileexist] @f",
            "EXECUTE sp_who2",
            "EXEC master..xp_fixeddrives",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for (bad, needle, at) in [
            (
                "SELECT 1;\nRESTORE DATABASE x FROM DISK = 'y' WITH REPLACE",
                "RESTORE",
                10,
            ),
            ("backup database x to disk = 'y'", "BACKUP", 0),
            ("SELECT 1; DROP TABLE dbo.t", "DROP", 10),
            ("ALTER DATABASE x SET OFFLINE", "ALTER", 0),
            ("CREATE LOGIN x WITH PASSWORD = 'p'", "CREATE", 0),
            ("INSERT INTO dbo.t VALUES (1)", "INSERT", 0),
            ("UPDATE t SET a = 1", "UPDATE", 0),
            ("DELETE FROM dbo.t", "DELETE", 0),
            (
                "MERGE t USING s ON 1 = 1 WHEN MATCHED THEN DELETE;",
                "MERGE",
                0,
            ),
            ("TRUNCATE TABLE dbo.t", "TRUNCATE", 0),
            ("SELECT * INTO dbo.copy FROM t", "INTO", 9),
            (
                "EXEC msdb.dbo.sp_start_job @job_name = N'x'",
                "sp_start_job",
                0,
            ),
            ("EXEC sp_configure 'xp_cmdshell', 1", "sp_configure", 0),
            ("EXEC (N'DROP TABLE t')", "dynamic SQL", 0),
            ("EXEC sys.sp_executesql @q", "sp_executesql", 0),
            ("DBCC SHRINKFILE (1)", "DBCC", 0),
            ("GRANT CONTROL SERVER TO x", "GRANT", 0),
            ("KILL 52", "KILL", 0),
            ("DISABLE TRIGGER t ON dbo.x", "DISABLE", 0),
            ("RECEIVE TOP (1) * FROM dbo.q", "RECEIVE", 0),
            ("SELECT * FROM OPENQUERY(srv, 'DELETE x')", "OPENQUERY", 14),
        ] {
            let (off, msg) = check(bad).expect_err(bad);
            assert!(msg.contains(needle), "{bad}: {msg}");
            assert_eq!(off, at, "{bad}: {msg}");
        }
    }
}
