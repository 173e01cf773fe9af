//! A small runbook with every step kind, for tests (engine, journal, UI snapshots).
//! Variables: `db` (text), `pwd` (secret, required), `use_bam` (bool), `hours` (number).

use crate::runbook::expr::{Assertion, Cond};
use crate::runbook::model::{
    CheckSpec, Escape, Generate, Loc, Manual, Runbook, Section, SqlSpec, Step, StepBody, VarKind,
    Variable,
};
use btsdr_types::Role;

fn var(name: &str, kind: VarKind, default: Option<&str>, required: bool) -> Variable {
    Variable {
        name: name.into(),
        label: name.into(),
        help: String::new(),
        kind,
        default: default.map(str::to_string),
        required,
        choices: vec![],
        pattern: None,
        min_len: None,
        max_len: None,
    }
}

fn step(id: &str, after: &[&str], body: StepBody) -> Step {
    Step {
        id: id.into(),
        title: format!("Step {id}"),
        why: String::new(),
        references: vec![],
        covers: vec![],
        when: None,
        after: after.iter().map(|s| s.to_string()).collect(),
        ask: vec![],
        discover: vec![],
        body,
        loc: Loc::default(),
    }
}

fn sql(
    database: &str,
    text: &str,
    params: &[&str],
    destructive: bool,
    word: Option<&str>,
) -> StepBody {
    StepBody::Sql(SqlSpec {
        server: Role::Source,
        database: database.into(),
        sql: text.into(),
        params: params.iter().map(|s| s.to_string()).collect(),
        destructive,
        confirm_word: word.map(str::to_string),
        undo: None,
        timeout_secs: 30,
        long_running: false,
    })
}

fn check(text: &str, params: &[&str], asserts: Vec<Assertion>) -> StepBody {
    StepBody::Check(CheckSpec {
        server: Role::Source,
        database: "master".into(),
        sql: text.into(),
        params: params.iter().map(|s| s.to_string()).collect(),
        timeout_secs: 30,
        asserts,
        health: true,
        opt_in: false,
    })
}

fn assertion(kind: &str, expr: &str, message: &str) -> Assertion {
    Assertion::parse(kind, expr, message).unwrap_or_else(|e| panic!("fixture assertion: {e}"))
}

/// Sections `prep` (manual, check), `bam` (when use_bam), `restore` (sql with a secret
/// param, two destructive steps, a dependent check, a generate step).
pub fn sample_runbook() -> Runbook {
    let manual = StepBody::Manual(Manual {
        run_on: "BizTalk server".into(),
        instructions: "Stop the host instances.".into(),
        commands: vec![],
        evidence: "Ticket number of the change".into(),
    });
    let gen_body = StepBody::Generate(Generate {
        output: "{{db}}-config.xml".into(),
        escape: Escape::Xml,
        template: "<dbs>{{#each check-jobs}}<db n=\"{{name}}\"/>{{/each}}</dbs>".into(),
        instructions: "Import it.".into(),
    });
    Runbook {
        id: "sample".into(),
        title: "Sample runbook".into(),
        summary: String::new(),
        version: "1.0.0".into(),
        kind: crate::runbook::model::RunbookKind::Procedure,
        checklist: vec![],
        variables: vec![
            var("db", VarKind::Text, Some("BizTalkMgmtDb"), true),
            var("pwd", VarKind::Secret, None, true),
            var("use_bam", VarKind::Bool, Some("false"), false),
            var("hours", VarKind::Number, Some("26"), true),
        ],
        sections: vec![
            Section {
                id: "prep".into(),
                title: "Prepare".into(),
                summary: String::new(),
                when: None,
                steps: vec![
                    step("stop-hosts", &[], manual),
                    step(
                        "check-jobs",
                        &[],
                        check(
                            "SELECT name, age_hours FROM backups WHERE db = @db",
                            &["db"],
                            vec![
                                assertion("rows", ">= 1", "No backups: run the backup job first."),
                                assertion(
                                    "each",
                                    "age_hours <= {{hours}}",
                                    "A backup is older than {{hours}} hours: run the backup job.",
                                ),
                            ],
                        ),
                    ),
                ],
            },
            Section {
                id: "bam".into(),
                title: "BAM".into(),
                summary: String::new(),
                when: Cond::parse("use_bam").ok(),
                steps: vec![step(
                    "bam-step",
                    &[],
                    sql("BAMPrimaryImport", "EXEC bam_x", &[], false, None),
                )],
            },
            Section {
                id: "restore".into(),
                title: "Restore".into(),
                summary: String::new(),
                when: None,
                steps: vec![
                    step(
                        "set-pwd",
                        &[],
                        sql("master", "EXEC sp_setpwd @pwd", &["pwd"], false, None),
                    ),
                    step(
                        "drop-db",
                        &[],
                        sql(
                            "master",
                            "DROP DATABASE {{ident:db}}",
                            &[],
                            true,
                            Some("RESTORE"),
                        ),
                    ),
                    step(
                        "wipe-db",
                        &[],
                        sql("{{db}}", "TRUNCATE TABLE t", &[], true, None),
                    ),
                    step(
                        "after-drop",
                        &["drop-db"],
                        check(
                            "SELECT 1 AS one",
                            &[],
                            vec![assertion("rows", "== 1", "nothing")],
                        ),
                    ),
                    step("gen-config", &["check-jobs"], gen_body),
                ],
            },
        ],
        origin: "test:sample".into(),
        content_hash: "abc123".into(),
    }
}
