//! Each class of invalid runbook gives its precise diagnostic at file:line:col.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::collections::HashSet;

use btsdr::runbook::loader::parse;

const HEAD: &str = r#"id = "t"
title = "T"
summary = "S"
version = "1.0.0"

[[variables]]
name = "mark_name"
label = "Mark name"
kind = "text"
default = "BTS"
max_len = 8

[[variables]]
name = "use_bam"
label = "BAM in use"
kind = "bool"
default = false
"#;

fn diags(body: &str) -> String {
    let rows: HashSet<String> = ["CBR.backup.01".to_string()].into_iter().collect();
    let text = format!("{HEAD}{body}");
    match parse("t.toml", &text, Some(&rows)) {
        Ok(_) => "ok".to_string(),
        Err(d) => d
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn check(name: &str, body: &str) {
    insta::assert_snapshot!(name, diags(body));
}

#[test]
fn valid_minimal() {
    assert_eq!(
        diags(
            r#"
[[sections]]
id = "s"
title = "S"
[[sections.steps]]
id = "s.one"
title = "One"
why = "Because."
kind = "check"
covers = ["CBR.backup.01"]
server = "source"
database = "msdb"
sql = "SELECT name FROM msdb.dbo.sysjobs WHERE name LIKE @mark_name"
params = ["mark_name"]
assert = [{ rows = ">= 1", message = "No job." }]
"#
        ),
        "ok"
    );
}

#[test]
fn toml_syntax() {
    check("toml_syntax", "[[sections]\nid = 1\n");
}

#[test]
fn unknown_field() {
    check(
        "unknown_field",
        "[[sections]]\nid = \"s\"\ntitle = \"S\"\ncolour = \"red\"\n",
    );
}

#[test]
fn duplicate_ids() {
    check(
        "duplicate_ids",
        r#"
[[sections]]
id = "s"
title = "S"
[[sections.steps]]
id = "s.a"
title = "A"
why = "w"
kind = "manual"
run_on = "any"
instructions = "Do it."
[[sections.steps]]
id = "s.a"
title = "A again"
why = "w"
kind = "manual"
run_on = "any"
instructions = "Do it."
"#,
    );
}

#[test]
fn dangling_after_and_cycle() {
    check(
        "dangling_after_and_cycle",
        r#"
[[sections]]
id = "s"
title = "S"
[[sections.steps]]
id = "s.a"
title = "A"
why = "w"
kind = "manual"
run_on = "any"
instructions = "Do it."
after = ["s.b", "s.nowhere"]
[[sections.steps]]
id = "s.b"
title = "B"
why = "w"
kind = "manual"
run_on = "any"
instructions = "Do it."
after = ["s.a"]
"#,
    );
}

#[test]
fn unknown_variables() {
    check(
        "unknown_variables",
        r#"
[[sections]]
id = "s"
title = "S"
when = "use_sso"
[[sections.steps]]
id = "s.a"
title = "A"
why = "w"
kind = "manual"
run_on = "master secret server"
instructions = "Run it for {{backup_file}}."
[[sections.steps]]
id = "s.b"
title = "B"
why = "w"
kind = "sql"
server = "source"
database = "master"
sql = "BACKUP DATABASE {{ident:db}} TO DISK = @path"
params = ["path"]
"#,
    );
}

#[test]
fn value_spliced_into_sql() {
    check(
        "value_spliced_into_sql",
        r#"
[[sections]]
id = "s"
title = "S"
[[sections.steps]]
id = "s.a"
title = "A"
why = "w"
kind = "sql"
server = "source"
database = "BizTalkMgmtDb"
sql = "EXEC dbo.sp_MarkAll '{{mark_name}}', @mark_name"
"#,
    );
}

#[test]
fn bad_pattern_and_when() {
    check(
        "bad_pattern_and_when",
        r#"
[[variables]]
name = "path"
label = "Path"
kind = "path"
pattern = "([a-z"

[[sections]]
id = "s"
title = "S"
[[sections.steps]]
id = "s.a"
title = "A"
why = "w"
kind = "manual"
when = "use_bam and"
run_on = "any"
instructions = "x"
"#,
    );
}

#[test]
fn wrong_fields_for_kind_and_bad_role() {
    check(
        "wrong_fields_for_kind",
        r#"
[[sections]]
id = "s"
title = "S"
[[sections.steps]]
id = "s.a"
title = "A"
why = "w"
kind = "manual"
run_on = "any"
instructions = "x"
sql = "SELECT 1"
[[sections.steps]]
id = "s.b"
title = "B"
why = "w"
kind = "check"
server = "primary"
database = "master"
sql = "SELECT 1 AS one"
assert = [{ each = "one ~ 1", message = "m" }, { rows = ">= 1", any = "one == 1", message = "m" }]
covers = ["CBR.nope.99"]
"#,
    );
}

#[test]
fn default_too_long() {
    let body = "[[variables]]\nname = \"short\"\nlabel = \"Short\"\nkind = \"text\"\nmax_len = 3\ndefault = \"toolong\"\n";
    check("default_too_long", body);
}

#[test]
fn never_panics_on_garbage() {
    for text in [
        "",
        "\0\0\0",
        "[[[",
        "id = 1",
        "sections = 5",
        "[[sections]]\nsteps = [1]",
        &"[".repeat(5000),
    ] {
        let lines = text.lines().count().max(1);
        let diags = match parse("g.toml", text, None) {
            Ok(_) => panic!("{text:?} loaded as a runbook"),
            Err(d) => d,
        };
        assert!(!diags.is_empty(), "{text:?}: an error without a diagnostic");
        for d in &diags {
            assert_eq!(d.file, "g.toml", "{text:?}: {d}");
            assert!(d.line >= 1 && d.line <= lines, "{text:?}: {d}");
            assert!(d.col >= 1, "{text:?}: {d}");
            assert!(!d.message.trim().is_empty(), "{text:?}: {d}");
        }
    }
}

/// A step whose `when` (line 26 of the file) is `when`, or whose `why` (not spanned: its
/// diagnostics point at the step id, line 23) is `why`.
fn nested_step(when: &str, why: &str) -> String {
    format!(
        "\n[[sections]]\nid = \"s\"\ntitle = \"S\"\n[[sections.steps]]\nid = \"s.a\"\ntitle = \"A\"\nwhy = \"{why}\"\nwhen = \"{when}\"\nkind = \"manual\"\nrun_on = \"any\"\ninstructions = \"x\"\n"
    )
}

/// Hostile nesting (issue 14: 10,000 parentheses or 100,000 `not` overflowed the stack and
/// aborted every command) is refused with a diagnostic at the value, never a crash. The
/// test thread has the default 2 MiB stack, as the main thread's work would.
#[test]
fn deep_nesting_is_refused_at_its_position() {
    let parens = format!("{}use_bam{}", "(".repeat(10_000), ")".repeat(10_000));
    let nots = format!("{}use_bam", "not ".repeat(100_000));
    let ands = format!("use_bam{}", " and use_bam".repeat(100_000));
    let each = format!(
        "{}x{}",
        "{{#each s.a}}".repeat(200_000),
        "{{/each}}".repeat(200_000)
    );
    for (what, body, line, needle) in [
        (
            "parentheses",
            nested_step(&parens, "w"),
            26,
            "nests more than",
        ),
        ("not", nested_step(&nots, "w"), 26, "nests more than"),
        ("and", nested_step(&ands, "w"), 26, "nests more than"),
        (
            "#each",
            nested_step("use_bam", &each),
            23,
            "nests more than",
        ),
    ] {
        let out = diags(&body);
        assert!(
            out.contains(needle),
            "{what}: {}",
            &out[..out.len().min(300)]
        );
        let want = format!("t.toml:{line}:");
        assert!(
            out.starts_with(&want),
            "{what}: {}",
            &out[..out.len().min(300)]
        );
    }
    // Just inside the limit still loads.
    let ok = format!("{}use_bam{}", "(".repeat(20), ")".repeat(20));
    assert_eq!(diags(&nested_step(&ok, "w")), "ok");
}

#[test]
fn uses_inherits_a_step_from_another_runbook() {
    let body = r#"
[[variables]]
name = "backup_job_name"
label = "Job"
kind = "text"
default = "Backup BizTalk Server (BizTalkMgmtDb)"

[[variables]]
name = "source_sql_server"
label = "Source"
kind = "server"
default = "SQL01"

[[sections]]
id = "s"
title = "S"
[[sections.steps]]
id = "s.job"
uses = "backup:job.state"
covers = ["CBR.backup.01"]
"#;
    let rows: HashSet<String> = ["CBR.backup.01".to_string()].into_iter().collect();
    let rb =
        parse("t.toml", &format!("{HEAD}{body}"), Some(&rows)).unwrap_or_else(|d| panic!("{d:?}"));
    let st = rb.step("s.job").unwrap();
    assert_eq!(st.kind_name(), "check");
    assert!(
        st.title.contains("Backup job"),
        "title inherited: {}",
        st.title
    );
    assert_eq!(
        st.covers,
        vec!["CBR.backup.01".to_string()],
        "covers are the step's own"
    );
    let (_, db, sql, params, _) = st.statement().unwrap();
    assert_eq!(db, "msdb");
    assert!(sql.contains("msdb.dbo.sysjobs"));
    assert_eq!(params, ["backup_job_name".to_string()]);
}

#[test]
fn uses_errors() {
    check(
        "uses_errors",
        r#"
[[sections]]
id = "s"
title = "S"
[[sections.steps]]
id = "s.a"
uses = "backup:no.such-step"
[[sections.steps]]
id = "s.b"
uses = "s.c"
[[sections.steps]]
id = "s.c"
uses = "s.b"
[[sections.steps]]
id = "s.d"
uses = "backup:job.state"
"#,
    );
}

/// Issue 14: a check step could hold `RESTORE DATABASE ... WITH REPLACE`, and `btsdr check`
/// sent it without confirmation. Checks are read-only by construction: the loader refuses
/// it at the statement's own line and column.
#[test]
fn check_steps_must_only_read() {
    let step = |sql: &str| {
        format!(
            "\n[[sections]]\nid = \"s\"\ntitle = \"S\"\n[[sections.steps]]\nid = \"s.a\"\ntitle = \"A\"\nwhy = \"w\"\nkind = \"check\"\nserver = \"source\"\ndatabase = \"master\"\nassert = [{{ rows = \">= 0\", message = \"m\" }}]\nsql = {sql}\n"
        )
    };
    // The SQL value starts on line 30; `RESTORE` is on line 32 at col 3.
    let out = diags(&step(
        "'''\nSELECT 1 AS one; -- RESTORE in a comment is fine\n  RESTORE DATABASE [BizTalkMgmtDb] FROM DISK = N'x.bak' WITH REPLACE\n'''",
    ));
    assert!(
        out.starts_with("t.toml:32:3: error: check step `s.a` must only read: RESTORE"),
        "{out}"
    );
    for (sql, needle) in [
        (
            "\"EXEC msdb.dbo.sp_start_job @job_name = N'x'\"",
            "sp_start_job",
        ),
        ("\"SELECT 1; DELETE FROM dbo.t\"", "DELETE"),
        ("\"BACKUP LOG x TO DISK = N'y'\"", "BACKUP"),
        ("\"SELECT * INTO dbo.copy FROM sys.tables\"", "INTO"),
    ] {
        let out = diags(&step(sql));
        assert!(
            out.contains("must only read") && out.contains(needle),
            "{sql}: {out}"
        );
        assert!(out.starts_with("t.toml:30:"), "{sql}: {out}");
    }
    // Reads, the session's own temporary objects and read-only procedures load.
    for sql in [
        "\"SELECT name FROM sys.databases WHERE name = N'RESTORE'\"",
        "\"DECLARE @t TABLE (a int); INSERT INTO @t VALUES (1); SELECT a FROM @t\"",
        "\"RESTORE VERIFYONLY FROM DISK = N'x.bak'\"",
        "\"EXEC msdb.dbo.sp_help_job\"",
    ] {
        assert_eq!(diags(&step(sql)), "ok", "{sql}");
    }
}
