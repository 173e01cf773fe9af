//! docs/SQL_OBJECTS.md is the list of every SQL Server and BizTalk name the runbooks rely on,
//! each with its source. Two witnesses keep it honest:
//! - every object, alias-qualified column and named procedure parameter a runbook statement
//!   uses must be listed there (a new name needs a source before it ships);
//! - the simulator's tables and views must have every column the list gives them, with the
//!   listed type, so the simulator cannot drift from the sources the runbooks were checked on.
//!
//! What the extractor sees: `schema.object` and `db.schema.object` names, `alias.Column` where
//! the alias was given to a listed object (`FROM dbo.adm_BackupHistory AS h` … `h.MarkName`),
//! and `EXEC … proc @name =`. Unqualified columns are not seen: the runbooks qualify columns.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
#![allow(clippy::too_many_lines)] // some tests tell a long story

use std::collections::{BTreeMap, BTreeSet};

use btsdr::config::{DrillConfig, Environment, MapSecrets};
use btsdr::runbook::library::Library;
use btsdr::runbook::model::StepBody;
use btsdr_sim::drill::Drill;
use btsdr_sim::scenario::Scenario;
use btsdr_types::{Role, Statement};

/// A row of the doc's tables: `| name | kind | where | type | source | status |`.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    kind: String,
    place: String,
    ty: String,
    status: String,
}

fn doc() -> Vec<Entry> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/SQL_OBJECTS.md");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        if !line.trim_start().starts_with('|') || cells.len() < 6 {
            continue;
        }
        if cells[0] == "name" || cells[0].starts_with("---") {
            continue;
        }
        let name = cells[0].trim_matches('`').to_string();
        let status = cells[5].to_string();
        assert!(
            status.starts_with("verified") || status.starts_with("unverified"),
            "{path}:{}: status must be verified or unverified, not `{status}`",
            n + 1
        );
        assert!(
            !cells[4].is_empty(),
            "{path}:{}: {name} has no source",
            n + 1
        );
        out.push(Entry {
            name,
            kind: cells[1].to_string(),
            place: cells[2].to_string(),
            ty: cells[3].trim_matches('`').to_string(),
            status,
        });
    }
    assert!(out.len() > 50, "{path}: too few rows read ({})", out.len());
    out
}

/// The statement without comments, string literals and `{{...}}` placeholders (an `{{ident:x}}`
/// database becomes `DB`).
fn strip(sql: &str) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while i < b.len() {
        if sql[i..].starts_with("--") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if sql[i..].starts_with("/*") {
            i = sql[i + 2..].find("*/").map_or(b.len(), |j| i + 2 + j + 2);
        } else if b[i] == b'\'' {
            i += 1;
            while i < b.len() {
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i += 1;
            out.push_str("''");
        } else if sql[i..].starts_with("{{") {
            let end = sql[i..].find("}}").map_or(b.len(), |j| i + j + 2);
            out.push_str("DB");
            i = end;
        } else {
            let c = sql[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Tokens: words (identifiers, `@vars`, keywords, with `[]` removed), `.` and other characters.
fn tokens(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in sql.chars() {
        if c.is_alphanumeric() || c == '_' || c == '@' || c == '#' || c == '$' {
            cur.push(c);
        } else if c == '[' || c == ']' {
            continue;
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The names one statement uses: objects (`adm_BackupHistory`), columns (`adm_BackupHistory.MarkName`)
/// and parameters (`sp_start_job @job_name`).
fn names_used(sql: &str) -> BTreeSet<String> {
    let t = tokens(&strip(sql));
    let mut used = BTreeSet::new();
    let mut aliases: BTreeMap<String, String> = BTreeMap::new();
    let is_word = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
    };
    // Dotted names.
    let mut i = 0;
    while i < t.len() {
        if is_word(&t[i]) && t.get(i + 1).is_some_and(|d| d == ".") {
            let mut parts = vec![t[i].clone()];
            let mut j = i + 1;
            while t.get(j).is_some_and(|d| d == ".") && t.get(j + 1).is_some_and(|w| is_word(w)) {
                parts.push(t[j + 1].clone());
                j += 2;
            }
            let schema_qualified = parts.len() >= 2
                && ["dbo", "sys"].contains(&parts[parts.len() - 2].to_ascii_lowercase().as_str());
            if schema_qualified {
                let obj = parts[parts.len() - 1].clone();
                let schema = parts[parts.len() - 2].to_ascii_lowercase();
                let full = if schema == "sys" {
                    format!("sys.{obj}")
                } else {
                    obj
                };
                used.insert(full.clone());
                // `obj AS a` or `obj a`
                let (k, skip_as) = match t.get(j) {
                    Some(w) if w.eq_ignore_ascii_case("AS") => (j + 1, true),
                    _ => (j, false),
                };
                if let Some(a) = t.get(k)
                    && is_word(a)
                    && (skip_as || !is_keyword(a))
                {
                    aliases.insert(a.to_ascii_lowercase(), full);
                }
            }
            i = j;
            continue;
        }
        i += 1;
    }
    // alias.Column
    for w in t.windows(3) {
        if w[1] == "."
            && let Some(obj) = aliases.get(&w[0].to_ascii_lowercase())
            && is_word(&w[2])
        {
            used.insert(format!("{obj}.{}", w[2]));
        }
    }
    // EXEC proc @p = ...
    let mut i = 0;
    while i < t.len() {
        if t[i].eq_ignore_ascii_case("EXEC") || t[i].eq_ignore_ascii_case("EXECUTE") {
            let mut j = i + 1;
            if t.get(j + 1).is_some_and(|e| e == "=") {
                j += 2; // EXEC @rc = proc
            }
            let mut proc = None;
            while let Some(w) = t.get(j) {
                if w == "." {
                    j += 1;
                    continue;
                }
                if is_word(w) {
                    proc = Some(w.clone());
                    j += 1;
                    if t.get(j).is_some_and(|d| d == ".") {
                        continue;
                    }
                }
                break;
            }
            let Some(proc) = proc else {
                i += 1;
                continue;
            };
            let proc = if proc.to_ascii_lowercase().starts_with("sp_")
                || proc.to_ascii_lowercase().starts_with("bts_")
                || proc.to_ascii_lowercase().starts_with("xp_")
            {
                proc
            } else {
                i = j;
                continue;
            };
            used.insert(proc.clone());
            while let Some(w) = t.get(j) {
                if w == ";" || w.eq_ignore_ascii_case("EXEC") || w.eq_ignore_ascii_case("END") {
                    break;
                }
                if w.starts_with('@') && t.get(j + 1).is_some_and(|e| e == "=") {
                    used.insert(format!("{proc} {w}"));
                }
                j += 1;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    used
}

fn is_keyword(w: &str) -> bool {
    [
        "WHERE",
        "JOIN",
        "LEFT",
        "RIGHT",
        "INNER",
        "OUTER",
        "CROSS",
        "ON",
        "GROUP",
        "ORDER",
        "UNION",
        "SET",
        "WITH",
        "VALUES",
        "SELECT",
        "AND",
        "OR",
        "FROM",
        "HAVING",
        "OPTION",
        "EXCEPT",
        "INTERSECT",
        "FULL",
        "APPLY",
        "IF",
        "BEGIN",
        "END",
        "ELSE",
        "RETURN",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(w))
}

/// Every runbook statement's names, with the steps that use each.
fn runbook_names() -> BTreeMap<String, BTreeSet<String>> {
    let lib = match Library::load(None) {
        Ok(l) => l,
        Err(d) => panic!("the shipped runbooks do not load: {d:?}"),
    };
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rb in &lib.runbooks {
        for (_, step) in rb.steps() {
            let mut sqls: Vec<&str> = Vec::new();
            if let Some((_, _, sql, _, _)) = step.statement() {
                sqls.push(sql);
            }
            if let StepBody::Manual(m) = &step.body {
                sqls.extend(
                    m.commands
                        .iter()
                        .filter(|c| c.shell == "sql")
                        .map(|c| c.run.as_str()),
                );
            }
            for sql in sqls {
                for n in names_used(sql) {
                    out.entry(n)
                        .or_default()
                        .insert(format!("{}:{}", rb.id, step.id));
                }
            }
        }
    }
    out
}

#[test]
fn the_extractor_sees_objects_columns_and_parameters() {
    let got = names_used(
        "SELECT h.MarkName, x.y FROM {{ident:mgmt_db}}.dbo.[adm_BackupHistory] AS h -- dbo.Nope\n\
         JOIN sys.databases d ON d.name = h.DatabaseName WHERE h.X = 'dbo.NotThis';\n\
         EXEC msdb.dbo.sp_update_job @job_name = @name, @enabled = 0;",
    );
    let want: BTreeSet<String> = [
        "adm_BackupHistory",
        "adm_BackupHistory.MarkName",
        "adm_BackupHistory.DatabaseName",
        "adm_BackupHistory.X",
        "sys.databases",
        "sys.databases.name",
        "sp_update_job",
        "sp_update_job @job_name",
        "sp_update_job @enabled",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(got, want);
}

/// A runbook that uses a name the list does not have fails here, naming the steps.
#[test]
fn every_name_a_runbook_uses_is_in_sql_objects_md() {
    let used = runbook_names();
    if std::env::var_os("BTSDR_PRINT_SQL_NAMES").is_some() {
        for (n, steps) in &used {
            eprintln!(
                "{n}\t{}",
                steps.iter().cloned().collect::<Vec<_>>().join(" ")
            );
        }
    }
    let listed: BTreeSet<String> = doc().iter().map(|e| e.name.to_ascii_lowercase()).collect();
    let missing: Vec<String> = used
        .iter()
        .filter(|(n, _)| !listed.contains(&n.to_ascii_lowercase()))
        .map(|(n, steps)| {
            format!(
                "{n} (used by {})",
                steps.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "names the runbooks use that docs/SQL_OBJECTS.md does not list (add each with its source and verified/unverified):\n{}",
        missing.join("\n")
    );
    assert!(
        used.len() > 50,
        "the extractor found too few names: {}",
        used.len()
    );
}

/// The simulator's tables and views have every column docs/SQL_OBJECTS.md lists, with the
/// listed base type, read over TCP as a client would (`SELECT TOP (0) *`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_schema_matches_sql_objects_md() {
    let entries = doc();
    let mut sc = Scenario::load("healthy").unwrap_or_else(|e| panic!("{e}"));
    sc.clock_speed = 0.0;
    let drill = Drill::start_with(sc, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let env: Environment = drill.environment();
    let secrets: MapSecrets = drill.secrets();
    let exec = btsdr::sql::executor::TiberiusExecutor::new(&env, &secrets)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut problems = Vec::new();
    let mut checked = 0;
    // object -> (role, database, schema) from the object rows.
    let mut objects: BTreeMap<String, (Role, String, String)> = BTreeMap::new();
    for e in entries
        .iter()
        .filter(|e| e.kind == "table" || e.kind == "view")
    {
        let (role, db) = match e.place.split_once(' ') {
            Some(("source", db)) => (Role::Source, db.to_string()),
            Some(("destination", db)) => (Role::Destination, db.to_string()),
            _ => continue,
        };
        let (schema, obj) = match e.name.split_once('.') {
            Some(("sys", o)) => ("sys".to_string(), o.to_string()),
            _ => ("dbo".to_string(), e.name.clone()),
        };
        objects.insert(obj.to_ascii_lowercase(), (role, db, schema));
        let _ = e.status.as_str();
    }
    for (obj, (role, db, schema)) in &objects {
        let cols: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.kind == "column")
            .filter(|e| {
                let owner = e
                    .name
                    .rsplit_once('.')
                    .map(|(o, _)| o.trim_start_matches("sys."));
                owner.is_some_and(|o| o.eq_ignore_ascii_case(obj))
            })
            .collect();
        if cols.is_empty() {
            continue;
        }
        let stmt = Statement {
            role: *role,
            database: db.clone(),
            sql: format!("SELECT TOP (0) * FROM [{db}].[{schema}].[{obj}];"),
            params: Vec::new(),
            timeout_secs: 30,
            long_running: false,
        };
        let out = match btsdr::sql::executor::run_once(&exec, stmt).await {
            Ok(o) => o,
            Err(e) => {
                problems.push(format!("{obj}: {e}"));
                continue;
            }
        };
        let Some(rs) = out.first() else {
            problems.push(format!("{obj}: no result set"));
            continue;
        };
        for c in cols {
            let col = c.name.rsplit_once('.').map_or("", |(_, c)| c);
            match rs.columns.iter().find(|x| x.name.eq_ignore_ascii_case(col)) {
                None => problems.push(format!("{}: missing in the simulator", c.name)),
                Some(x) => {
                    let want =
                        c.ty.split('(')
                            .next()
                            .unwrap_or("")
                            .trim()
                            .to_ascii_lowercase();
                    // The simulator's TDS layer sends char(n) as varchar (tds/tokens.rs): the
                    // model's type is char, the wire's is its variable-length sibling.
                    let got = x.type_name.to_ascii_lowercase();
                    let same = got == want || (want == "char" && got == "varchar");
                    if !want.is_empty() && want != "?" && !same {
                        problems.push(format!(
                            "{}: the simulator says {}, the list says {}",
                            c.name, x.type_name, c.ty
                        ));
                    }
                }
            }
            checked += 1;
        }
    }
    drill.shutdown().await;
    assert!(checked > 30, "only {checked} columns checked");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
