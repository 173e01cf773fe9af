//! Reports from a session journal: Markdown and HTML snapshots, RTO/RPO, the final hash.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
#![allow(clippy::too_many_lines)] // some tests tell a long story

use chrono::{DateTime, Duration, TimeZone, Utc};

use btsdr::engine::events::{Event, NamedValue, Outcome, Record};
use btsdr::journal::{JournalWriter, read_records};
use btsdr::report::{self, Format};
use btsdr::runbook::expr::AssertOutcome;
use btsdr_types::Role;
use btsdr_types::{Column, Param, ResultSet, Statement, Value};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 2, 0, 0).unwrap()
}

fn col(name: &str) -> Column {
    Column {
        name: name.into(),
        type_name: "nvarchar".into(),
    }
}

fn records() -> Vec<Record> {
    let at = |m: i64| t0() + Duration::minutes(m);
    let rec = |m: i64, who: &str, step: Option<&str>, e: Event| Record::new(at(m), who, step, e);
    vec![
        rec(
            5,
            "alice",
            None,
            Event::SessionStarted {
                session_id: "20261121-0205-restore".into(),
                runbook_id: "restore".into(),
                title: "Restore BizTalk Server".into(),
                version: "1.0.0".into(),
                content_hash: "ab".repeat(32),
                environment: "prod-dr".into(),
                operator: "alice".into(),
                rto_minutes: Some(120),
                rpo_minutes: Some(15),
                declared_at: Some(t0()),
                drill: true,
                dry_run: false,
                two_person_rule: false,
                review: false,
                variables: vec![NamedValue {
                    name: "mark_name".into(),
                    value: "BTS".into(),
                }],
                plan: None,
            },
        ),
        rec(
            6,
            "alice",
            Some("db.disable-jobs"),
            Event::StepStarted {
                attempt: 1,
                statement: Some(Statement {
                    role: Role::Destination,
                    database: "msdb".into(),
                    sql: "EXEC msdb.dbo.sp_update_job @job_name = @job, @enabled = 0".into(),
                    params: vec![(
                        "job".into(),
                        Param::Text("BTS Log Shipping - Restore Databases".into()),
                    )],
                    timeout_secs: 60,
                    long_running: false,
                }),
            },
        ),
        rec(
            7,
            "alice",
            Some("db.disable-jobs"),
            Event::StepFinished {
                outcome: Outcome::Passed,
                evidence: None,
                assertions: vec![],
                rows_affected: vec![1],
            },
        ),
        rec(
            8,
            "alice",
            Some("db.restore-to-mark"),
            Event::StepStarted {
                attempt: 1,
                statement: None,
            },
        ),
        rec(
            40,
            "alice",
            Some("db.restore-to-mark"),
            Event::StepFinished {
                outcome: Outcome::Failed {
                    error: "Msg 3201, Level 16, State 1, Line 1: Cannot open backup device".into(),
                },
                evidence: None,
                assertions: vec![],
                rows_affected: vec![],
            },
        ),
        rec(
            42,
            "bob",
            Some("db.restore-to-mark"),
            Event::StepStarted {
                attempt: 2,
                statement: None,
            },
        ),
        rec(
            70,
            "bob",
            Some("db.restore-to-mark"),
            Event::StepFinished {
                outcome: Outcome::Passed,
                evidence: None,
                assertions: vec![],
                rows_affected: vec![],
            },
        ),
        rec(
            72,
            "bob",
            Some("db.verify-mark"),
            Event::StepFinished {
                outcome: Outcome::Passed,
                evidence: Some(ResultSet {
                    not_kept: 0,
                    columns: vec![
                        col("database_name"),
                        col("stop_at_mark_name"),
                        col("mark_time"),
                    ],
                    rows: vec![
                        vec![
                            Value::Text("BizTalkMgmtDb".into()),
                            Value::Text("BTS_2026_11_21_01_45_00_017".into()),
                            Value::DateTime("2026-11-21 01:45:00.017".into()),
                        ],
                        vec![
                            Value::Text("BizTalkMsgBoxDb".into()),
                            Value::Text("BTS_2026_11_21_01_45_00_017".into()),
                            Value::DateTime("2026-11-21 01:45:00.017".into()),
                        ],
                    ]
                    .into(),
                }),
                assertions: vec![AssertOutcome {
                    source: "each: stop_at_mark_name == 'x'".into(),
                    passed: true,
                    detail: String::new(),
                }],
                rows_affected: vec![],
            },
        ),
        rec(
            80,
            "alice",
            Some("sso.restore-secret"),
            Event::ManualConfirmed {
                by: "alice".into(),
                note: "secret restored on SSO01".into(),
                evidence: "The operation completed successfully".into(),
            },
        ),
        rec(
            81,
            "alice",
            Some("bam.portal"),
            Event::Skipped {
                by: "alice".into(),
                reason: "BAM not deployed".into(),
            },
        ),
        rec(
            95,
            "alice",
            None,
            Event::SignedOff {
                name: "Alice Admin".into(),
                role: "BizTalk administrator".into(),
                exceptions: vec![],
                comment: String::new(),
                next_review: String::new(),
            },
        ),
        rec(96, "alice", None, Event::SessionClosed {}),
    ]
}

fn written() -> (tempfile::TempDir, Vec<Record>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl");
    let mut w = JournalWriter::create(&path).unwrap();
    for r in records() {
        w.append(r).unwrap();
    }
    let read = read_records(&path).unwrap();
    assert!(read.report.is_intact());
    let status = read.report.to_string();
    let head = read.report.head.clone();
    (dir, read.entries, status, head)
}

#[test]
fn markdown_and_html_reports() {
    let (_dir, recs, status, head) = written();
    let r = report::build(&recs, None, &status, &head, true);
    assert_eq!(r.operators, vec!["alice".to_string(), "bob".to_string()]);
    assert_eq!(r.rto_met(), Some(true), "96 min against 120");
    assert_eq!(
        r.mark.as_ref().map(|m| m.0.as_str()),
        Some("BTS_2026_11_21_01_45_00_017")
    );
    let md = report::render(&r, Format::Markdown);
    assert!(md.contains(&head), "the final hash is in the report");
    assert!(md.contains("1 h 36 min against a target of 120 min: **met**"));
    assert!(md.contains("Msg 3201") || md.contains("restore-to-mark"));
    let md = md.replace(&head, "<HEAD>");
    let md = md.replace(&status, "<STATUS>");
    insta::assert_snapshot!("report_md", md);

    let html = report::render(&r, Format::Html);
    // For looking at it as a reader would: BTSDR_REPORT_SAMPLE=/tmp/r.html cargo test --test report
    if let Ok(p) = std::env::var("BTSDR_REPORT_SAMPLE") {
        std::fs::write(p, &html).unwrap();
    }
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg"), "timeline");
    assert!(html.contains("RTO deadline"));
    assert!(!html.contains("<script"), "self-contained and static");
    assert!(
        !html.contains("http://") || html.contains("http://www.w3.org/2000/svg"),
        "no external resources"
    );
    let html = html
        .replace(&head, "<HEAD>")
        .replace(&btsdr::runbook::expr::escape_xml(&status), "<STATUS>");
    insta::assert_snapshot!("report_html", html);
}

#[test]
fn missed_rto_and_open_session() {
    let mut recs = records();
    recs.truncate(7);
    if let Event::SessionStarted { rto_minutes, .. } = &mut recs[0].event {
        *rto_minutes = Some(30);
    }
    let r = report::build(&recs, None, "OK", "h", true);
    assert_eq!(r.rto_met(), Some(false));
    let md = report::markdown(&r);
    assert!(md.contains("**MISSED**"));
    assert!(md.contains("open (not closed)"));
    assert!(md.contains("no restore to a mark recorded"));
}

/// The RTO boundary: a session that ends exactly at its target met it; one second later it
/// missed it. (The disaster is declared at t0; the session closes at t0 + 96 min.)
#[test]
fn rto_exactly_at_the_target_is_met() {
    let with = |rto: u32, declared: DateTime<Utc>| {
        let mut recs = records();
        if let Event::SessionStarted {
            rto_minutes,
            declared_at,
            ..
        } = &mut recs[0].event
        {
            *rto_minutes = Some(rto);
            *declared_at = Some(declared);
        }
        report::build(&recs, None, "OK", "h", true)
    };
    let exact = with(96, t0());
    assert_eq!(exact.elapsed_secs(), Some(96 * 60));
    assert_eq!(exact.rto_met(), Some(true));
    assert!(report::markdown(&exact).contains("against a target of 96 min: **met**"));
    let late = with(96, t0() - Duration::seconds(1));
    assert_eq!(late.elapsed_secs(), Some(96 * 60 + 1));
    assert_eq!(late.rto_met(), Some(false));
    assert!(report::markdown(&late).contains("**MISSED**"));
}

/// An open session within its target is not called "met": the clock is still running.
#[test]
fn open_session_within_rto_says_so_far() {
    let mut recs = records();
    recs.truncate(7);
    if let Event::SessionStarted { plan, .. } = &mut recs[0].event {
        *plan = Some(btsdr::engine::PlanRef {
            id: "sql-computer".into(),
            label: "The SQL Server computer failed".into(),
            part: 0,
            parts: 2,
        });
    }
    let r = report::build(&recs, None, "OK", "h", true);
    assert_eq!(r.rto_met(), Some(true));
    let md = report::markdown(&r);
    assert!(md.contains("| RTO so far |"), "{md}");
    assert!(md.contains("within target so far"), "{md}");
    assert!(!md.contains("**met**"), "{md}");
    assert!(
        md.contains("| Failure plan | The SQL Server computer failed — part 1 of 2 |"),
        "{md}"
    );
    let html = report::html(&r);
    assert!(html.contains("RTO so far") && html.contains("within target so far"));
    assert!(
        html.contains("<td>Failure plan</td><td>The SQL Server computer failed — part 1 of 2</td>")
    );
    assert!(!html.contains("— met"));
}

#[test]
fn hostile_text_is_escaped_in_html() {
    let mut recs = records();
    recs.push(Record::new(
        t0() + Duration::minutes(97),
        "<script>alert(1)</script>",
        None,
        Event::Note {
            text: "</table><img src=x onerror=alert(1)>".into(),
        },
    ));
    let html = report::html(&report::build(&recs, None, "OK", "h", true));
    assert!(!html.contains("<script>alert"));
    assert!(!html.contains("<img src=x"));
}

/// A result cut at its cap says so in the report, with how many rows were not kept.
#[test]
fn a_capped_result_says_so_in_the_report() {
    let mut recs = records();
    for r in &mut recs {
        if let Event::StepFinished {
            evidence: Some(set),
            ..
        } = &mut r.event
        {
            set.not_kept = 12_345;
        }
    }
    let md = report::markdown(&report::build(&recs, None, "OK", "h", true));
    assert!(
        md.contains("**Result cap reached:** 12345 more rows were received and not kept"),
        "{md}"
    );
}

/// Issue 14: the Markdown report kept `<script>`, `<img onerror>` and raw escape sequences
/// from names, notes, skip reasons, errors and server values.
#[test]
fn hostile_text_is_inert_in_markdown() {
    let hostile = "x\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J<script>alert(1)</script><img src=x onerror=alert(1)>[click](javascript:alert(1))`|";
    let at = |m: i64| t0() + Duration::minutes(m);
    let mut recs = records();
    recs.insert(
        recs.len() - 2,
        Record::new(
            at(82),
            hostile,
            Some("bam.other"),
            Event::Skipped {
                by: hostile.into(),
                reason: hostile.into(),
            },
        ),
    );
    recs.insert(
        recs.len() - 2,
        Record::new(
            at(83),
            "bob",
            Some("db.hostile"),
            Event::StepFinished {
                outcome: Outcome::Failed {
                    error: hostile.into(),
                },
                evidence: Some(ResultSet {
                    not_kept: 0,
                    columns: vec![col(hostile)],
                    rows: vec![vec![Value::Text(hostile.into())]].into(),
                }),
                assertions: vec![AssertOutcome {
                    source: hostile.into(),
                    passed: false,
                    detail: String::new(),
                }],
                rows_affected: vec![],
            },
        ),
    );
    recs.insert(
        recs.len() - 1,
        Record::new(
            at(97),
            hostile,
            None,
            Event::Note {
                text: hostile.into(),
            },
        ),
    );
    recs.insert(
        recs.len() - 1,
        Record::new(
            at(98),
            hostile,
            None,
            Event::SignedOff {
                name: hostile.into(),
                role: hostile.into(),
                exceptions: vec![hostile.into()],
                comment: hostile.into(),
                next_review: hostile.into(),
            },
        ),
    );
    let md = report::markdown(&report::build(&recs, None, hostile, "h", true));
    for bad in ["\u{1b}", "\u{7}", "<script", "<img"] {
        assert!(!md.contains(bad), "{bad:?} reached the report:\n{md}");
    }
    // No link: every `]` of the value is escaped.
    assert!(!md.replace("\\]", "").contains("](javascript"), "{md}");
    // Each hostile value is still there, readable.
    assert!(
        md.matches("&lt;script&gt;alert(1)&lt;/script&gt;").count() >= 6,
        "{md}"
    );
    assert!(md.contains("u{1b}\\]52;c;ZXZpbA=="), "{md}");
}

#[test]
fn a_session_that_never_started_has_no_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl");
    drop(JournalWriter::create(&path).unwrap());
    let err = report::from_journal(&path, None).unwrap_err();
    assert!(err.to_string().contains("never started"), "{err}");
    // One record is enough for a report.
    let (mut w, _) = JournalWriter::open_append(&path).unwrap();
    w.append(records().remove(0)).unwrap();
    assert!(report::from_journal(&path, None).is_ok());
}
