use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use super::fixture::sample_runbook;
use super::*;
use btsdr_types::{Column, Progress};

const SECRET: &str = "S3cr3t-Pa55!";

fn t(min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 23, min, 0)
        .single()
        .unwrap_or_default()
}

fn vars(rb: &Runbook) -> Variables {
    let mut v = Variables::from_runbook(rb);
    v.set("pwd", SECRET);
    v
}

fn opts() -> EngineOptions {
    EngineOptions {
        operator: "alice".into(),
        session_id: "s1".into(),
        environment: "prod".into(),
        ..EngineOptions::default()
    }
}

fn engine_with(o: EngineOptions) -> Engine {
    let rb = sample_runbook();
    let v = vars(&rb);
    let mut e = Engine::new(Arc::new(rb), v, o);
    let fx = e.handle(Input::Start, t(0));
    assert!(matches!(fx.as_slice(), [Effect::Journal { .. }]), "{fx:?}");
    e
}

fn engine() -> Engine {
    engine_with(opts())
}

fn state<'a>(e: &'a Engine, id: &str) -> &'a StepState {
    e.step_state(id).unwrap()
}

fn refused(fx: &[Effect]) -> Option<&str> {
    fx.iter().find_map(|f| match f {
        Effect::Refused { text } => Some(text.as_str()),
        _ => None,
    })
}

fn run_sql(fx: &[Effect]) -> Option<(u64, &Statement)> {
    fx.iter().find_map(|f| match f {
        Effect::RunSql {
            request_id,
            statement,
            ..
        } => Some((*request_id, statement)),
        _ => None,
    })
}

fn kinds(fx: &[Effect]) -> Vec<String> {
    fx.iter()
        .map(|f| match f {
            Effect::Journal { record } => format!("journal:{}", record.event.name()),
            Effect::RunSql { .. } => "run_sql".into(),
            Effect::WouldRun { .. } => "would_run".into(),
            Effect::WriteFile { .. } => "write_file".into(),
            Effect::AskConfirmDestructive { .. } => "ask_confirm".into(),
            Effect::AskSecondOperator { .. } => "ask_second".into(),
            Effect::AskManual { .. } => "ask_manual".into(),
            Effect::Notify { .. } => "notify".into(),
            Effect::Refused { .. } => "refused".into(),
        })
        .collect()
}

fn rows(data: &[(&str, i64)]) -> QueryOutput {
    QueryOutput {
        sets: vec![ResultSet {
            not_kept: 0,
            columns: vec![
                Column {
                    name: "name".into(),
                    type_name: "nvarchar".into(),
                },
                Column {
                    name: "age_hours".into(),
                    type_name: "int".into(),
                },
            ],
            rows: data
                .iter()
                .map(|(n, a)| vec![Value::Text((*n).into()), Value::Int(*a)])
                .collect(),
        }],
        rows_affected: vec![],
    }
}

/// Runs a sql/check step and feeds back `result`.
fn run_and_finish(e: &mut Engine, id: &str, result: Result<QueryOutput, SqlError>) -> Vec<Effect> {
    let fx = e.handle(Input::Run(id.into()), t(1));
    let (rid, _) = run_sql(&fx).unwrap_or_else(|| panic!("no RunSql for {id}: {fx:?}"));
    let mut all = fx.clone();
    all.extend(e.handle(
        Input::SqlFinished {
            step: id.into(),
            request_id: rid,
            result,
        },
        t(2),
    ));
    all
}

fn confirm_drop(e: &mut Engine) -> Vec<Effect> {
    e.handle(Input::Run("drop-db".into()), t(3));
    e.handle(
        Input::ConfirmDestructive {
            step: "drop-db".into(),
            typed: "RESTORE".into(),
            by: "alice".into(),
        },
        t(3),
    )
}

#[test]
fn initial_states_follow_when_and_after() {
    let e = engine();
    assert_eq!(state(&e, "stop-hosts"), &StepState::Pending);
    assert_eq!(state(&e, "check-jobs"), &StepState::Pending);
    assert!(
        matches!(state(&e, "bam-step"), StepState::NotApplicable { reason } if reason.contains("use_bam"))
    );
    assert_eq!(
        state(&e, "after-drop"),
        &StepState::Blocked {
            waiting_for: vec!["drop-db".into()]
        }
    );
    assert_eq!(
        state(&e, "gen-config"),
        &StepState::Blocked {
            waiting_for: vec!["check-jobs".into()]
        }
    );
    assert_eq!(e.section_counts("bam").map(|c| c.not_applicable), Some(1));
    assert_eq!(e.counts().total, 8);
}

#[test]
fn start_refuses_invalid_variables_and_inputs_before_start() {
    let rb = sample_runbook();
    let v = Variables::from_runbook(&rb); // pwd (required) missing
    let mut e = Engine::new(Arc::new(rb), v, opts());
    let fx = e.handle(Input::Run("check-jobs".into()), t(0));
    assert!(refused(&fx).unwrap().contains("has not started"));
    let fx = e.handle(Input::Start, t(0));
    assert!(refused(&fx).unwrap().contains("pwd"), "{fx:?}");
    assert!(!e.is_started());
    e.handle(
        Input::SetVariable {
            name: "pwd".into(),
            value: SECRET.into(),
        },
        t(0),
    );
    let fx = e.handle(Input::Start, t(0));
    let rec = fx[0].journal_record().unwrap();
    let Event::SessionStarted {
        variables,
        environment,
        ..
    } = &rec.event
    else {
        panic!("{rec:?}")
    };
    assert_eq!(environment, "prod");
    assert!(
        variables
            .iter()
            .any(|nv| nv.name == "pwd" && nv.value == "******")
    );
    assert!(
        e.handle(Input::Start, t(0))
            .iter()
            .any(|f| matches!(f, Effect::Refused { .. }))
    );
}

#[test]
fn check_passes_with_evidence_and_params_bound() {
    let mut e = engine();
    let fx = e.handle(Input::Run("check-jobs".into()), t(1));
    assert_eq!(kinds(&fx), ["journal:step_started", "run_sql"]);
    let (rid, st) = run_sql(&fx).unwrap();
    assert_eq!(
        st.params,
        vec![("db".to_string(), Param::Text("BizTalkMgmtDb".into()))]
    );
    assert_eq!(st.sql, "SELECT name, age_hours FROM backups WHERE db = @db");
    assert_eq!(state(&e, "check-jobs"), &StepState::Running);
    let fx = e.handle(
        Input::SqlFinished {
            step: "check-jobs".into(),
            request_id: rid,
            result: Ok(rows(&[("a", 3), ("b", 20)])),
        },
        t(2),
    );
    assert_eq!(kinds(&fx), ["journal:step_finished"]);
    let run = e.step_run("check-jobs").unwrap();
    assert_eq!(run.state, StepState::Passed);
    assert_eq!(run.assertions.len(), 2);
    assert!(run.assertions.iter().all(|a| a.passed));
    assert_eq!(run.evidence.as_ref().map(|s| s.rows.len()), Some(2));
    // gen-config depended on it
    assert_eq!(state(&e, "gen-config"), &StepState::Pending);
}

#[test]
fn check_fails_with_messages() {
    let mut e = engine();
    run_and_finish(&mut e, "check-jobs", Ok(rows(&[("a", 3), ("b", 30)])));
    let StepState::Failed { error } = state(&e, "check-jobs") else {
        panic!()
    };
    assert!(
        error.contains("older than 26 hours: run the backup job"),
        "{error}"
    );
    let failed: Vec<_> = e
        .step_run("check-jobs")
        .unwrap()
        .failed_assertions()
        .collect();
    assert_eq!(failed.len(), 1);
    // empty result: rows >= 1 fails with its message
    e.handle(Input::Retry("check-jobs".into()), t(3));
    let mut e = engine();
    run_and_finish(&mut e, "check-jobs", Ok(rows(&[])));
    let StepState::Failed { error } = state(&e, "check-jobs") else {
        panic!()
    };
    assert!(
        error.contains("No backups: run the backup job first."),
        "{error}"
    );
    assert_eq!(
        e.next_step().map(|n| n.action),
        Some(NextAction::ConfirmManual)
    );
}

#[test]
fn retry_and_reverify() {
    let mut e = engine();
    run_and_finish(&mut e, "check-jobs", Ok(rows(&[])));
    assert!(refused(&e.handle(Input::Run("stop-hosts".into()), t(1))).is_none());
    let fx = e.handle(Input::Retry("check-jobs".into()), t(3));
    let (rid, _) = run_sql(&fx).unwrap();
    assert_eq!(e.step_run("check-jobs").unwrap().attempts, 2);
    e.handle(
        Input::SqlFinished {
            step: "check-jobs".into(),
            request_id: rid,
            result: Ok(rows(&[("a", 1)])),
        },
        t(4),
    );
    assert_eq!(state(&e, "check-jobs"), &StepState::Passed);
    assert!(
        refused(&e.handle(Input::Run("check-jobs".into()), t(5)))
            .unwrap()
            .contains("re-verify")
    );
    assert!(refused(&e.handle(Input::Retry("check-jobs".into()), t(5))).is_some());
    let fx = e.handle(Input::ReVerify("check-jobs".into()), t(5));
    assert!(run_sql(&fx).is_some());
    assert_eq!(e.step_run("check-jobs").unwrap().attempts, 3);
    assert!(
        refused(&e.handle(Input::ReVerify("set-pwd".into()), t(5)))
            .unwrap()
            .contains("Only check steps")
    );
}

#[test]
fn one_at_a_time_except_checks() {
    let mut e = engine();
    let fx = e.handle(Input::Run("set-pwd".into()), t(1));
    assert!(run_sql(&fx).is_some());
    assert!(
        refused(&e.handle(Input::Run("check-jobs".into()), t(1)))
            .unwrap()
            .contains("set-pwd")
    );
    assert!(
        refused(&e.handle(Input::Run("drop-db".into()), t(1)))
            .unwrap()
            .contains("running")
    );
    assert!(
        refused(&e.handle(Input::Run("set-pwd".into()), t(1)))
            .unwrap()
            .contains("already running")
    );

    let mut e = engine();
    assert_eq!(e.runnable_checks(), vec!["check-jobs".to_string()]);
    assert!(run_sql(&e.handle(Input::Run("check-jobs".into()), t(1))).is_some());
    // a sql step waits for the running check
    assert!(refused(&e.handle(Input::Run("set-pwd".into()), t(1))).is_some());
}

#[test]
fn checks_run_side_by_side() {
    let mut e = engine();
    let fx = confirm_drop(&mut e);
    let (rid, _) = run_sql(&fx).expect("drop-db runs after the word");
    e.handle(
        Input::SqlFinished {
            step: "drop-db".into(),
            request_id: rid,
            result: Ok(QueryOutput::default()),
        },
        t(4),
    );
    let mut checks = e.runnable_checks();
    checks.sort();
    assert_eq!(checks, ["after-drop", "check-jobs"]);
    for c in &checks {
        assert!(
            run_sql(&e.handle(Input::Run(c.clone()), t(1))).is_some(),
            "{c}"
        );
    }
    assert_eq!(e.running().len(), 2);
    assert_eq!(e.counts().running, 2);
}

#[test]
fn destructive_needs_the_exact_word() {
    let mut e = engine();
    let fx = e.handle(Input::Run("drop-db".into()), t(1));
    assert_eq!(
        fx,
        vec![Effect::AskConfirmDestructive {
            step: "drop-db".into(),
            word: "RESTORE".into()
        }]
    );
    assert_eq!(
        e.next_step(),
        Some(Next {
            step: Some("stop-hosts".into()),
            action: NextAction::ConfirmManual
        })
    );
    for wrong in ["restore", "RESTORE ", "", "Restore"] {
        let fx = e.handle(
            Input::ConfirmDestructive {
                step: "drop-db".into(),
                typed: wrong.into(),
                by: "alice".into(),
            },
            t(2),
        );
        assert_eq!(kinds(&fx), ["refused"], "{wrong:?}");
        assert!(refused(&fx).unwrap().contains("type `RESTORE` exactly"));
    }
    assert_eq!(state(&e, "drop-db"), &StepState::Pending);
    let fx = e.handle(
        Input::ConfirmDestructive {
            step: "drop-db".into(),
            typed: "RESTORE".into(),
            by: "alice".into(),
        },
        t(2),
    );
    // journal first (the driver fsyncs), then the statement
    assert_eq!(
        kinds(&fx),
        [
            "journal:destructive_confirmed",
            "journal:step_started",
            "run_sql"
        ]
    );
    let (_, st) = run_sql(&fx).unwrap();
    assert_eq!(st.sql, "DROP DATABASE [BizTalkMgmtDb]");
    // default word: the database name (rendered)
    assert_eq!(e.confirm_word("wipe-db").as_deref(), Some("BizTalkMgmtDb"));
    assert_eq!(e.confirm_word("set-pwd"), None);
}

#[test]
fn confirmation_is_per_attempt() {
    let mut e = engine();
    let fx = confirm_drop(&mut e);
    let (rid, _) = run_sql(&fx).unwrap();
    e.handle(
        Input::SqlFinished {
            step: "drop-db".into(),
            request_id: rid,
            result: Err(SqlError::Server {
                number: 3701,
                severity: 11,
                state: 1,
                procedure: String::new(),
                line: 1,
                message: "no".into(),
            }),
        },
        t(4),
    );
    assert!(
        matches!(state(&e, "drop-db"), StepState::Failed { error } if error.contains("Msg 3701"))
    );
    let fx = e.handle(Input::Retry("drop-db".into()), t(5));
    assert_eq!(kinds(&fx), ["ask_confirm"]);
}

#[test]
fn two_person_rule() {
    let mut e = engine_with(EngineOptions {
        two_person_rule: true,
        ..opts()
    });
    e.handle(Input::Run("drop-db".into()), t(1));
    let fx = e.handle(
        Input::SecondOperatorConfirm {
            step: "drop-db".into(),
            by: "bob".into(),
        },
        t(1),
    );
    assert!(refused(&fx).unwrap().contains("first operator"));
    let fx = e.handle(
        Input::ConfirmDestructive {
            step: "drop-db".into(),
            typed: "RESTORE".into(),
            by: "alice".into(),
        },
        t(2),
    );
    assert_eq!(kinds(&fx), ["journal:destructive_confirmed", "ask_second"]);
    assert_eq!(
        e.next_step().map(|n| n.action),
        Some(NextAction::ConfirmManual) // stop-hosts comes first
    );
    assert_eq!(
        e.step_run("drop-db").unwrap().approvals.first.as_deref(),
        Some("alice")
    );
    for same in ["alice", " Alice ", ""] {
        let fx = e.handle(
            Input::SecondOperatorConfirm {
                step: "drop-db".into(),
                by: same.into(),
            },
            t(3),
        );
        assert_eq!(kinds(&fx), ["refused"], "{same:?}");
    }
    let fx = e.handle(
        Input::ConfirmDestructive {
            step: "drop-db".into(),
            typed: "RESTORE".into(),
            by: "alice".into(),
        },
        t(3),
    );
    assert!(refused(&fx).unwrap().contains("different operator"));
    let fx = e.handle(
        Input::SecondOperatorConfirm {
            step: "drop-db".into(),
            by: "bob".into(),
        },
        t(3),
    );
    assert_eq!(
        kinds(&fx),
        [
            "journal:destructive_confirmed",
            "journal:step_started",
            "run_sql"
        ]
    );
    let rec = fx[0].journal_record().unwrap();
    assert_eq!(rec.operator, "bob");
    // without the rule, a second approval is refused
    let mut e = engine();
    assert!(
        refused(&e.handle(
            Input::SecondOperatorConfirm {
                step: "drop-db".into(),
                by: "bob".into()
            },
            t(1)
        ))
        .unwrap()
        .contains("off")
    );
}

#[test]
fn dry_run_sends_nothing() {
    let mut e = engine_with(EngineOptions {
        dry_run: true,
        ..opts()
    });
    let mut all = Vec::new();
    all.extend(e.handle(Input::Run("check-jobs".into()), t(1)));
    all.extend(e.handle(Input::Run("set-pwd".into()), t(1)));
    all.extend(confirm_drop(&mut e));
    all.extend(e.handle(Input::Run("wipe-db".into()), t(1)));
    all.extend(e.handle(
        Input::ConfirmDestructive {
            step: "wipe-db".into(),
            typed: "BizTalkMgmtDb".into(),
            by: "".into(),
        },
        t(1),
    ));
    all.extend(e.handle(Input::Run("after-drop".into()), t(1)));
    assert!(run_sql(&all).is_none(), "{all:?}");
    for id in ["check-jobs", "set-pwd", "drop-db", "wipe-db", "after-drop"] {
        assert_eq!(state(&e, id), &StepState::WouldRun, "{id}");
        assert!(e.step_run(id).unwrap().statement.is_some());
    }
    let would: Vec<_> = all
        .iter()
        .filter_map(|f| match f {
            Effect::WouldRun { statement, .. } => Some(statement),
            _ => None,
        })
        .collect();
    assert_eq!(would.len(), 5);
    assert_eq!(
        would[1].params,
        vec![("pwd".to_string(), Param::Text("******".into()))]
    );
    assert_eq!(would[2].sql, "DROP DATABASE [BizTalkMgmtDb]");
    // generate still renders (no rows in a dry run) and the file can be written
    let fx = e.handle(Input::Run("gen-config".into()), t(2));
    assert!(
        fx.iter()
            .any(|f| matches!(f, Effect::WriteFile { contents, .. } if contents == "<dbs></dbs>")),
        "{fx:?}"
    );
    assert_eq!(e.counts().would_run, 5);
    assert!(e.counts().finished() >= 5);
}

#[test]
fn when_makes_steps_not_applicable() {
    let mut e = engine();
    assert!(
        refused(&e.handle(Input::Run("bam-step".into()), t(1)))
            .unwrap()
            .contains("does not apply")
    );
    let fx = e.handle(
        Input::SetVariable {
            name: "use_bam".into(),
            value: "true".into(),
        },
        t(1),
    );
    assert_eq!(kinds(&fx), ["journal:variable_set"]);
    assert_eq!(state(&e, "bam-step"), &StepState::Pending);
    e.handle(
        Input::SetVariable {
            name: "use_bam".into(),
            value: "false".into(),
        },
        t(1),
    );
    assert!(matches!(
        state(&e, "bam-step"),
        StepState::NotApplicable { .. }
    ));
    // invalid values are refused with the variable's rules
    let fx = e.handle(
        Input::SetVariable {
            name: "hours".into(),
            value: "many".into(),
        },
        t(1),
    );
    assert!(refused(&fx).unwrap().contains("hours"));
    let fx = e.handle(
        Input::SetVariable {
            name: "nope".into(),
            value: "1".into(),
        },
        t(1),
    );
    assert!(refused(&fx).unwrap().contains("no variable `nope`"));
}

#[test]
fn after_blocks_until_dependency_finishes() {
    let mut e = engine();
    let fx = e.handle(Input::Run("after-drop".into()), t(1));
    assert!(refused(&fx).unwrap().contains("waits for drop-db"));
    let fx = e.handle(
        Input::Skip {
            step: "drop-db".into(),
            reason: "".into(),
            by: "alice".into(),
        },
        t(1),
    );
    assert!(refused(&fx).unwrap().contains("reason"));
    let fx = e.handle(
        Input::Skip {
            step: "drop-db".into(),
            reason: "restored by the DBA".into(),
            by: "alice".into(),
        },
        t(1),
    );
    assert_eq!(kinds(&fx), ["journal:skipped"]);
    assert_eq!(
        state(&e, "drop-db"),
        &StepState::Skipped {
            reason: "restored by the DBA".into(),
            by: "alice".into()
        }
    );
    // The skip popup promises that dependants wait: a skipped step does not free them.
    assert_eq!(
        state(&e, "after-drop"),
        &StepState::Blocked {
            waiting_for: vec!["drop-db".into()]
        }
    );
    assert!(
        refused(&e.handle(
            Input::Skip {
                step: "drop-db".into(),
                reason: "x".into(),
                by: "".into()
            },
            t(1)
        ))
        .unwrap()
        .contains("already finished")
    );
    // Running it frees them.
    let fx = e.handle(
        Input::Reopen {
            step: "drop-db".into(),
            reason: "the DBA did not restore it after all".into(),
            by: "bob".into(),
        },
        t(2),
    );
    assert_eq!(kinds(&fx), ["journal:reopened"]);
    let fx = confirm_drop(&mut e);
    let (rid, _) = run_sql(&fx).expect("drop-db runs after reopening");
    e.handle(
        Input::SqlFinished {
            step: "drop-db".into(),
            request_id: rid,
            result: Ok(QueryOutput::default()),
        },
        t(4),
    );
    assert_eq!(state(&e, "after-drop"), &StepState::Pending);
}

#[test]
fn reopen_a_skipped_or_done_step_journaled_and_replayed() {
    let rb = sample_runbook();
    let v = vars(&rb);
    let mut e = Engine::new(Arc::new(rb), v, opts());
    let mut all = e.handle(Input::Start, t(0));
    let skip = Input::Skip {
        step: "stop-hosts".into(),
        reason: "hosts already stopped".into(),
        by: "alice".into(),
    };
    all.extend(e.handle(skip, t(1)));
    let no_reason = Input::Reopen {
        step: "stop-hosts".into(),
        reason: "  ".into(),
        by: "bob".into(),
    };
    assert!(
        refused(&e.handle(no_reason, t(2)))
            .unwrap()
            .contains("reason")
    );
    let pending = Input::Reopen {
        step: "check-jobs".into(),
        reason: "again".into(),
        by: "bob".into(),
    };
    assert!(
        refused(&e.handle(pending, t(2)))
            .unwrap()
            .contains("Only a skipped or done step")
    );
    let fx = e.handle(
        Input::Reopen {
            step: "stop-hosts".into(),
            reason: "one host was still running".into(),
            by: "bob".into(),
        },
        t(2),
    );
    let rec = fx.iter().find_map(Effect::journal_record).unwrap().clone();
    assert_eq!(rec.operator, "bob");
    assert_eq!(rec.step.as_deref(), Some("stop-hosts"));
    assert_eq!(
        rec.event,
        Event::Reopened {
            by: "bob".into(),
            reason: "one host was still running".into()
        }
    );
    all.extend(fx);
    assert_eq!(state(&e, "stop-hosts"), &StepState::Pending);
    // A done (manual) step reopens too.
    all.extend(e.handle(
        Input::ConfirmManual {
            step: "stop-hosts".into(),
            by: "bob".into(),
            note: "stopped".into(),
            evidence: "Get-Service shows them stopped".into(),
        },
        t(3),
    ));
    assert!(matches!(state(&e, "stop-hosts"), StepState::Done { .. }));
    all.extend(e.handle(
        Input::Reopen {
            step: "stop-hosts".into(),
            reason: "wrong server".into(),
            by: "carol".into(),
        },
        t(4),
    ));
    assert_eq!(state(&e, "stop-hosts"), &StepState::Pending);
    let records: Vec<Record> = all
        .iter()
        .filter_map(Effect::journal_record)
        .cloned()
        .collect();
    let rb = e.runbook().clone();
    let replayed = Engine::replay(rb.clone(), vars(&rb), opts(), &records).unwrap();
    assert_eq!(replayed.state(), e.state());
}

#[test]
fn close_with_open_steps_needs_a_reason_and_journals_them() {
    let mut e = engine();
    let fx = e.handle(Input::CloseWithReason { reason: " ".into() }, t(1));
    assert!(refused(&fx).unwrap().contains("give a reason"));
    assert!(!e.is_over());
    let fx = e.handle(
        Input::CloseWithReason {
            reason: "handed over to the vendor".into(),
        },
        t(2),
    );
    let rec = fx.iter().find_map(Effect::journal_record).unwrap();
    assert_eq!(rec.event, Event::SessionClosed {});
    assert!(
        rec.details.contains("stop-hosts: pending"),
        "{}",
        rec.details
    );
    assert!(rec.details.contains("handed over to the vendor"));
    assert!(e.is_over());
}

#[test]
fn sign_off_lists_open_steps_as_exceptions() {
    let mut e = engine();
    let fx = e.handle(
        Input::SignOffWith {
            name: "Rita Reviewer".into(),
            role: "auditor".into(),
            comment: "backups older than policy".into(),
            next_review: "not a date".into(),
            at: t(1),
        },
        t(1),
    );
    assert!(refused(&fx).unwrap().contains("YYYY-MM-DD"));
    let fx = e.handle(
        Input::SignOffWith {
            name: "Rita Reviewer".into(),
            role: "auditor".into(),
            comment: "backups older than policy".into(),
            next_review: "2027-06-30".into(),
            at: t(1),
        },
        t(1),
    );
    let rec = fx.iter().find_map(Effect::journal_record).unwrap();
    let Event::SignedOff {
        exceptions,
        comment,
        next_review,
        ..
    } = &rec.event
    else {
        panic!("{rec:?}")
    };
    assert!(exceptions.contains(&"stop-hosts: pending".to_string()));
    assert!(
        !exceptions.iter().any(|x| x.starts_with("bam-step")),
        "n/a is no exception"
    );
    assert_eq!(comment, "backups older than policy");
    assert_eq!(next_review, "2027-06-30");
    assert!(rec.details.contains("exception"));
}

#[test]
fn in_doubt_after_lost_connection_and_resolution() {
    let mut e = engine();
    let fx = confirm_drop(&mut e);
    let (rid, _) = run_sql(&fx).unwrap();
    e.handle(
        Input::SqlFinished {
            step: "drop-db".into(),
            request_id: rid,
            result: Err(SqlError::Dropped {
                message: "reset".into(),
            }),
        },
        t(4),
    );
    assert_eq!(state(&e, "drop-db"), &StepState::InDoubt);
    assert_eq!(e.in_doubt(), vec!["drop-db".to_string()]);
    assert_eq!(
        e.next_step(),
        Some(Next {
            step: Some("drop-db".into()),
            action: NextAction::ResolveInDoubt
        })
    );
    // other non-check steps wait; checks may run
    assert!(
        refused(&e.handle(Input::Run("set-pwd".into()), t(5)))
            .unwrap()
            .contains("in doubt")
    );
    assert!(
        refused(&e.handle(
            Input::Skip {
                step: "drop-db".into(),
                reason: "x".into(),
                by: "".into()
            },
            t(5)
        ))
        .is_some()
    );
    assert!(
        refused(&e.handle(Input::Run("drop-db".into()), t(5)))
            .unwrap()
            .contains("resolve")
    );
    // verify: guidance, still in doubt
    let fx = e.handle(
        Input::ResolveInDoubt {
            step: "drop-db".into(),
            resolution: Resolution::Verify,
        },
        t(5),
    );
    assert!(kinds(&fx).contains(&"notify".to_string()));
    assert_eq!(state(&e, "drop-db"), &StepState::InDoubt);
    assert_eq!(e.selected(), Some("after-drop"));
    // rerun: asks for the word again
    let fx = e.handle(
        Input::ResolveInDoubt {
            step: "drop-db".into(),
            resolution: Resolution::Rerun,
        },
        t(6),
    );
    assert_eq!(kinds(&fx), ["journal:in_doubt_resolved", "ask_confirm"]);
    assert_eq!(state(&e, "drop-db"), &StepState::Pending);
}

#[test]
fn in_doubt_mark_done_needs_a_note() {
    let mut e = engine();
    let fx = e.handle(Input::Run("set-pwd".into()), t(1));
    let (rid, _) = run_sql(&fx).unwrap();
    e.handle(
        Input::SqlFinished {
            step: "set-pwd".into(),
            request_id: rid,
            result: Err(SqlError::Dropped {
                message: "x".into(),
            }),
        },
        t(2),
    );
    assert_eq!(state(&e, "set-pwd"), &StepState::InDoubt);
    let fx = e.handle(
        Input::ResolveInDoubt {
            step: "set-pwd".into(),
            resolution: Resolution::MarkDone { note: " ".into() },
        },
        t(3),
    );
    assert!(refused(&fx).is_some());
    e.handle(
        Input::ResolveInDoubt {
            step: "set-pwd".into(),
            resolution: Resolution::MarkDone {
                note: "checked sys.logins".into(),
            },
        },
        t(3),
    );
    assert!(
        matches!(state(&e, "set-pwd"), StepState::Done { note, by, .. } if note == "checked sys.logins" && by == "alice")
    );
    assert!(
        refused(&e.handle(
            Input::ResolveInDoubt {
                step: "set-pwd".into(),
                resolution: Resolution::Rerun
            },
            t(3)
        ))
        .unwrap()
        .contains("not in doubt")
    );
}

#[test]
fn errors_that_are_not_in_doubt() {
    let mut e = engine();
    // a timeout on a non-destructive step is a plain failure; on a check too
    let fx = e.handle(Input::Run("set-pwd".into()), t(1));
    let (rid, _) = run_sql(&fx).unwrap();
    e.handle(
        Input::SqlFinished {
            step: "set-pwd".into(),
            request_id: rid,
            result: Err(SqlError::Timeout { secs: 30 }),
        },
        t(2),
    );
    assert!(matches!(state(&e, "set-pwd"), StepState::Failed { .. }));
    run_and_finish(
        &mut e,
        "check-jobs",
        Err(SqlError::Dropped {
            message: "x".into(),
        }),
    );
    assert!(matches!(state(&e, "check-jobs"), StepState::Failed { .. }));
    // a timeout on a destructive step is in doubt
    let fx = confirm_drop(&mut e);
    let (rid, _) = run_sql(&fx).unwrap();
    e.handle(
        Input::SqlFinished {
            step: "drop-db".into(),
            request_id: rid,
            result: Err(SqlError::Timeout { secs: 30 }),
        },
        t(2),
    );
    assert_eq!(state(&e, "drop-db"), &StepState::InDoubt);
}

#[test]
fn stale_results_and_progress() {
    let mut e = engine();
    let fx = e.handle(Input::Run("set-pwd".into()), t(1));
    let (rid, _) = run_sql(&fx).unwrap();
    e.handle(
        Input::SqlProgress {
            step: "set-pwd".into(),
            request_id: rid,
            progress: Progress {
                percent: 40.0,
                eta_ms: Some(1000),
            },
        },
        t(1),
    );
    assert_eq!(
        e.step_live("set-pwd").unwrap().progress.map(|p| p.percent),
        Some(40.0)
    );
    let fx = e.handle(
        Input::SqlFinished {
            step: "set-pwd".into(),
            request_id: rid + 7,
            result: Ok(QueryOutput::default()),
        },
        t(2),
    );
    assert_eq!(kinds(&fx), ["notify"]);
    assert_eq!(state(&e, "set-pwd"), &StepState::Running);
    let fx = e.handle(
        Input::SqlFinished {
            step: "set-pwd".into(),
            request_id: rid,
            result: Ok(QueryOutput {
                sets: vec![],
                rows_affected: vec![3],
            }),
        },
        t(2),
    );
    assert_eq!(kinds(&fx), ["journal:step_finished"]);
    assert_eq!(e.step_run("set-pwd").unwrap().rows_affected, vec![3]);
    assert_eq!(e.step_live("set-pwd").unwrap().progress, None);
}

#[test]
fn manual_confirm_skip_and_abort() {
    let mut e = engine();
    assert_eq!(
        kinds(&e.handle(Input::Run("stop-hosts".into()), t(1))),
        ["ask_manual"]
    );
    let fx = e.handle(
        Input::ConfirmManual {
            step: "stop-hosts".into(),
            by: "".into(),
            note: "ok".into(),
            evidence: " ".into(),
        },
        t(1),
    );
    assert!(refused(&fx).unwrap().contains("Ticket number"));
    let fx = e.handle(
        Input::ConfirmManual {
            step: "stop-hosts".into(),
            by: "".into(),
            note: "ok".into(),
            evidence: "CHG-1".into(),
        },
        t(1),
    );
    assert_eq!(kinds(&fx), ["journal:manual_confirmed"]);
    assert_eq!(
        state(&e, "stop-hosts"),
        &StepState::Done {
            by: "alice".into(),
            note: "ok".into(),
            evidence: "CHG-1".into()
        }
    );
    assert!(
        refused(&e.handle(
            Input::ConfirmManual {
                step: "check-jobs".into(),
                by: "".into(),
                note: "".into(),
                evidence: "".into()
            },
            t(1)
        ))
        .unwrap()
        .contains("not a manual")
    );
    assert!(
        refused(&e.handle(
            Input::ConfirmManual {
                step: "stop-hosts".into(),
                by: "".into(),
                note: "".into(),
                evidence: "x".into()
            },
            t(1)
        ))
        .unwrap()
        .contains("already finished")
    );

    let fx = e.handle(Input::Run("set-pwd".into()), t(1));
    assert!(
        refused(&e.handle(
            Input::Skip {
                step: "set-pwd".into(),
                reason: "x".into(),
                by: "".into()
            },
            t(1)
        ))
        .unwrap()
        .contains("running")
    );
    let (rid, _) = run_sql(&fx).unwrap();
    assert!(
        refused(&e.handle(Input::Close, t(2)))
            .unwrap()
            .contains("still running")
    );
    assert!(refused(&e.handle(Input::Abort { reason: "".into() }, t(2))).is_some());
    assert_eq!(
        kinds(&e.handle(
            Input::Abort {
                reason: "wrong server".into()
            },
            t(2)
        )),
        ["journal:aborted", "notify"]
    );
    assert!(e.is_over());
    assert_eq!(e.next_step(), None);
    assert!(
        refused(&e.handle(Input::Run("check-jobs".into()), t(2)))
            .unwrap()
            .contains("aborted")
    );
    // the outcome of what was running is still recorded
    let fx = e.handle(
        Input::SqlFinished {
            step: "set-pwd".into(),
            request_id: rid,
            result: Ok(QueryOutput::default()),
        },
        t(3),
    );
    assert_eq!(kinds(&fx), ["journal:step_finished"]);
}

#[test]
fn jump_note_signoff_close() {
    let mut e = engine();
    assert_eq!(e.selected(), Some("stop-hosts"));
    assert!(e.handle(Input::Jump("gen-config".into()), t(1)).is_empty());
    assert_eq!(e.selected(), Some("gen-config"));
    assert!(refused(&e.handle(Input::Jump("nope".into()), t(1))).is_some());
    assert_eq!(
        kinds(&e.handle(
            Input::Note {
                step: Some("drop-db".into()),
                text: format!("pw is {SECRET}")
            },
            t(1)
        )),
        ["journal:note"]
    );
    assert_eq!(e.state().notes[0].text, "pw is ******");
    let fx = e.handle(
        Input::SignOff {
            name: "Carol".into(),
            role: "DR lead".into(),
            at: t(9),
        },
        t(1),
    );
    assert_eq!(fx[0].journal_record().map(|r| r.time), Some(t(9)));
    assert_eq!(e.state().signoffs.len(), 1);
    assert_eq!(
        kinds(&e.handle(Input::Close, t(10))),
        ["journal:session_closed"]
    );
    assert!(e.state().closed);
    assert!(refused(&e.handle(Input::Close, t(10))).is_some());
}

#[test]
fn generate_renders_from_check_evidence() {
    let mut e = engine();
    assert!(
        refused(&e.handle(Input::Run("gen-config".into()), t(1)))
            .unwrap()
            .contains("check-jobs")
    );
    run_and_finish(
        &mut e,
        "check-jobs",
        Ok(rows(&[("Mgmt&Db", 1), ("Msg<Box>", 2)])),
    );
    let fx = e.handle(Input::Run("gen-config".into()), t(3));
    assert_eq!(kinds(&fx), ["journal:step_started", "write_file"]);
    let Some(Effect::WriteFile { name, contents, .. }) = fx.get(1) else {
        panic!()
    };
    assert_eq!(name, "BizTalkMgmtDb-config.xml");
    assert_eq!(
        contents,
        "<dbs><db n=\"Mgmt&amp;Db\"/><db n=\"Msg&lt;Box&gt;\"/></dbs>"
    );
    let fx = e.handle(
        Input::GenerateWritten {
            step: "gen-config".into(),
            path: "/tmp/x.xml".into(),
        },
        t(4),
    );
    assert_eq!(kinds(&fx), ["journal:generate_written"]);
    let run = e.step_run("gen-config").unwrap();
    assert_eq!(run.state, StepState::Passed);
    let g = run.generated.as_ref().unwrap();
    assert_eq!(g.sha256, super::events::sha256_hex(contents.as_bytes()));
    assert_eq!(g.path, "/tmp/x.xml");
    // a failed write
    let fx = e.handle(Input::ReVerify("check-jobs".into()), t(5));
    let (rid, _) = run_sql(&fx).unwrap();
    e.handle(
        Input::SqlFinished {
            step: "check-jobs".into(),
            request_id: rid,
            result: Ok(rows(&[("a", 1)])),
        },
        t(5),
    );
    let mut e2 = engine();
    run_and_finish(&mut e2, "check-jobs", Ok(rows(&[("a", 1)])));
    e2.handle(Input::Run("gen-config".into()), t(3));
    e2.handle(
        Input::GenerateFailed {
            step: "gen-config".into(),
            error: "disk full".into(),
        },
        t(3),
    );
    assert!(
        matches!(state(&e2, "gen-config"), StepState::Failed { error } if error.contains("disk full"))
    );
}

#[test]
fn plain_placeholders_in_sql_are_refused() {
    let mut rb = sample_runbook();
    if let StepBody::Sql(s) = &mut rb.sections[2].steps[0].body {
        s.sql = "EXEC x '{{db}}'".into();
    }
    let v = vars(&rb);
    let mut e = Engine::new(Arc::new(rb), v, opts());
    e.handle(Input::Start, t(0));
    let fx = e.handle(Input::Run("set-pwd".into()), t(1));
    assert!(refused(&fx).unwrap().contains("not allowed"), "{fx:?}");
    assert_eq!(state(&e, "set-pwd"), &StepState::Pending);
}

#[test]
fn journal_failure_stops_new_work() {
    let mut e = engine();
    assert_eq!(
        kinds(&e.handle(
            Input::JournalFailed {
                error: "No space left on device".into()
            },
            t(1)
        )),
        ["notify"]
    );
    assert!(
        refused(&e.handle(Input::Run("drop-db".into()), t(1)))
            .unwrap()
            .contains("journal")
    );
    assert!(
        refused(&e.handle(Input::Run("check-jobs".into()), t(1)))
            .unwrap()
            .contains("journal")
    );
    assert!(e.journal_error().is_some());
}

#[test]
fn next_step_walks_the_runbook() {
    let mut e = engine();
    assert_eq!(
        e.next_step(),
        Some(Next {
            step: Some("stop-hosts".into()),
            action: NextAction::ConfirmManual
        })
    );
    e.handle(
        Input::ConfirmManual {
            step: "stop-hosts".into(),
            by: "".into(),
            note: "".into(),
            evidence: "CHG-1".into(),
        },
        t(1),
    );
    assert_eq!(
        e.next_step(),
        Some(Next {
            step: Some("check-jobs".into()),
            action: NextAction::Run
        })
    );
    e.handle(Input::Run("check-jobs".into()), t(1));
    assert_eq!(e.next_step().map(|n| n.action), Some(NextAction::Wait));
    let mut e = engine();
    for id in [
        "stop-hosts",
        "check-jobs",
        "set-pwd",
        "drop-db",
        "wipe-db",
        "after-drop",
        "gen-config",
    ] {
        e.handle(
            Input::Skip {
                step: id.into(),
                reason: "test".into(),
                by: "".into(),
            },
            t(1),
        );
    }
    assert_eq!(
        e.next_step(),
        Some(Next {
            step: None,
            action: NextAction::SignOff
        })
    );
    assert!(e.counts().complete());
    let c = e.section_counts("restore").unwrap();
    assert_eq!((c.total, c.skipped, c.applicable()), (5, 5, 5));
}

/// A full session: every journal effect serialized must not contain the secret.
fn full_session(e: &mut Engine) -> Vec<Effect> {
    let mut all = Vec::new();
    let secret_err = SqlError::Server {
        number: 1,
        severity: 16,
        state: 1,
        procedure: String::new(),
        line: 1,
        message: format!("bad password '{SECRET}'"),
    };
    all.extend(e.handle(
        Input::ConfirmManual {
            step: "stop-hosts".into(),
            by: "".into(),
            note: format!("used {SECRET}"),
            evidence: "CHG-1".into(),
        },
        t(1),
    ));
    all.extend(run_and_finish(
        e,
        "check-jobs",
        Ok(rows(&[("a", 1), (SECRET, 2)])),
    ));
    let fx = e.handle(Input::Run("set-pwd".into()), t(2));
    let (rid, st) = run_sql(&fx).unwrap();
    assert_eq!(
        st.params,
        vec![("pwd".to_string(), Param::Text(SECRET.into()))],
        "the driver gets the real value"
    );
    all.extend(fx.clone());
    all.extend(e.handle(
        Input::SqlFinished {
            step: "set-pwd".into(),
            request_id: rid,
            result: Err(secret_err),
        },
        t(3),
    ));
    let fx = e.handle(Input::Retry("set-pwd".into()), t(3));
    let (rid, _) = run_sql(&fx).unwrap();
    all.extend(fx);
    all.extend(e.handle(
        Input::SqlFinished {
            step: "set-pwd".into(),
            request_id: rid,
            result: Ok(QueryOutput::default()),
        },
        t(3),
    ));
    all.extend(e.handle(
        Input::SetVariable {
            name: "pwd".into(),
            value: format!("{SECRET}2"),
        },
        t(3),
    ));
    all.extend(confirm_drop(e));
    let rid = e.step_live("drop-db").unwrap().request_id.unwrap();
    all.extend(e.handle(
        Input::SqlFinished {
            step: "drop-db".into(),
            request_id: rid,
            result: Ok(QueryOutput::default()),
        },
        t(4),
    ));
    all.extend(e.handle(Input::Run("gen-config".into()), t(5)));
    all.extend(e.handle(
        Input::GenerateWritten {
            step: "gen-config".into(),
            path: "/x".into(),
        },
        t(5),
    ));
    all.extend(e.handle(
        Input::Skip {
            step: "wipe-db".into(),
            reason: "n/a".into(),
            by: "bob".into(),
        },
        t(6),
    ));
    all.extend(run_and_finish(
        e,
        "after-drop",
        Ok(QueryOutput {
            sets: vec![ResultSet {
                not_kept: 0,
                columns: vec![Column {
                    name: "one".into(),
                    type_name: "int".into(),
                }],
                rows: vec![vec![Value::Int(1)]].into(),
            }],
            rows_affected: vec![],
        }),
    ));
    all.extend(e.handle(
        Input::SignOff {
            name: "Carol".into(),
            role: "lead".into(),
            at: t(7),
        },
        t(7),
    ));
    all.extend(e.handle(Input::Close, t(8)));
    all
}

#[test]
fn secrets_never_reach_the_journal() {
    let mut e = engine();
    let all = full_session(&mut e);
    let journal: Vec<&Record> = all.iter().filter_map(Effect::journal_record).collect();
    assert!(journal.len() >= 15, "{}", journal.len());
    for r in &journal {
        let text = serde_json::to_string(r).unwrap();
        assert!(!text.contains(SECRET), "secret in {text}");
        assert!(!text.contains("S3cr3t"), "secret in {text}");
    }
    assert!(e.counts().complete(), "{:?}", e.counts());
    let state_text = serde_json::to_string(e.state()).unwrap();
    assert!(!state_text.contains("S3cr3t"));
}

#[test]
fn replay_rebuilds_the_live_state() {
    let mut e = engine();
    let start = e.handle(Input::Jump("stop-hosts".into()), t(0)); // nothing
    assert!(start.is_empty());
    let mut records = Vec::new();
    // Start was handled in engine(); rebuild it for the record list.
    let rb = Arc::new(sample_runbook());
    let mut live = Engine::new(Arc::clone(&rb), vars(&rb), opts());
    let mut fx = live.handle(Input::Start, t(0));
    fx.extend(full_session(&mut live));
    records.extend(fx.iter().filter_map(Effect::journal_record).cloned());
    let replayed = Engine::replay(
        Arc::clone(&rb),
        vars(&rb),
        EngineOptions {
            operator: "alice".into(),
            ..EngineOptions::default()
        },
        &records,
    )
    .unwrap();
    assert_eq!(replayed.state(), live.state());
    assert_eq!(replayed.options(), live.options());

    // a StepStarted without StepFinished comes back in doubt
    let mut live = Engine::new(Arc::clone(&rb), vars(&rb), opts());
    let mut fx = live.handle(Input::Start, t(0));
    fx.extend(confirm_drop(&mut live));
    let records: Vec<Record> = fx
        .iter()
        .filter_map(Effect::journal_record)
        .cloned()
        .collect();
    let mut replayed = Engine::replay(Arc::clone(&rb), vars(&rb), opts(), &records).unwrap();
    assert_eq!(replayed.step_state("drop-db"), Some(&StepState::InDoubt));
    let fx = replayed.handle(Input::Resume, t(9));
    let Some(Event::Resumed { in_doubt }) = fx[0].journal_record().map(|r| &r.event) else {
        panic!("{fx:?}")
    };
    assert_eq!(in_doubt, &vec!["drop-db".to_string()]);
    // a secret must be supplied again after replay
    let replayed = Engine::replay(
        Arc::clone(&rb),
        Variables::from_runbook(&rb),
        opts(),
        &records,
    )
    .unwrap();
    assert_eq!(
        replayed.variables().missing_secrets(),
        vec!["pwd".to_string()]
    );
}

#[test]
fn replay_refuses_a_different_runbook() {
    let rb = Arc::new(sample_runbook());
    let mut live = Engine::new(Arc::clone(&rb), vars(&rb), opts());
    let fx = live.handle(Input::Start, t(0));
    let records: Vec<Record> = fx
        .iter()
        .filter_map(Effect::journal_record)
        .cloned()
        .collect();
    let mut other = sample_runbook();
    other.content_hash = "different".into();
    let err = Engine::replay(Arc::new(other), vars(&rb), opts(), &records)
        .err()
        .unwrap();
    assert!(err.contains("load the same runbook file"), "{err}");
    assert!(Engine::replay(Arc::clone(&rb), vars(&rb), opts(), &[]).is_err());
    let mut bad = records[0].clone();
    bad.event = Event::Note { text: "x".into() };
    assert!(
        Engine::replay(Arc::clone(&rb), vars(&rb), opts(), &[bad])
            .err()
            .unwrap()
            .contains("not a session journal")
    );
    let mut unknown = records.clone();
    let mut r = Record::new(
        t(1),
        "a",
        Some("ghost"),
        Event::Skipped {
            by: "a".into(),
            reason: "x".into(),
        },
    );
    r.seq = 2;
    unknown.push(r);
    assert!(
        Engine::replay(rb, vars(&sample_runbook()), opts(), &unknown)
            .err()
            .unwrap()
            .contains("ghost")
    );
}

#[test]
fn variables_redact_and_bind() {
    let rb = sample_runbook();
    let mut v = vars(&rb);
    assert_eq!(v.display("pwd"), "******");
    assert_eq!(v.display("db"), "BizTalkMgmtDb");
    assert_eq!(v.redact(&format!("x{SECRET}y")), "x******y");
    assert_eq!(v.param("hours"), Ok(Param::Int(26)));
    assert_eq!(v.param("use_bam"), Ok(Param::Bool(false)));
    v.set("hours", "abc");
    assert!(v.param("hours").unwrap_err().contains("whole number"));
    assert!(v.param("nope").is_err());
    let var = rb.variable("hours").unwrap();
    assert!(validate_value(var, "x").unwrap_err().starts_with("hours"));
    assert!(
        validate_value(rb.variable("pwd").unwrap(), "")
            .unwrap_err()
            .contains("required")
    );
    assert!(validate_value(var, "12").is_ok());
}

#[test]
fn debug_output_hides_secrets() {
    let e = engine();
    let text = format!("{e:?}");
    assert!(text.contains("pwd") && !text.contains(SECRET));
}

#[test]
fn journaled_evidence_is_capped_but_assertions_see_every_row() {
    let mut e = engine();
    let many: Vec<(String, i64)> = (0..1500).map(|i| (format!("db{i}"), 1)).collect();
    let data: Vec<(&str, i64)> = many.iter().map(|(n, a)| (n.as_str(), *a)).collect();
    let fx = run_and_finish(&mut e, "check-jobs", Ok(rows(&data)));
    let rec = fx
        .iter()
        .filter_map(Effect::journal_record)
        .find(|r| matches!(r.event, Event::StepFinished { .. }))
        .expect("step finished is journaled");
    match &rec.event {
        Event::StepFinished { evidence, .. } => {
            assert_eq!(
                evidence.as_ref().map(|s| s.rows.len()),
                Some(MAX_EVIDENCE_ROWS)
            );
        }
        _ => unreachable!(),
    }
    assert!(rec.details.contains("1000 of 1500"), "{}", rec.details);
    assert_eq!(state(&e, "check-jobs"), &StepState::Passed);
}

/// Re-run chosen for a step in doubt, then a crash before the re-run started: the step is in
/// doubt again after replay (one truth for the TUI, `sessions` and the report), and Verify
/// is journaled once however often it is pressed.
#[test]
fn a_rerun_that_never_started_leaves_the_step_in_doubt_and_verify_is_journaled_once() {
    let rb = Arc::new(sample_runbook());
    let mut live = Engine::new(Arc::clone(&rb), vars(&rb), opts());
    let mut fx = live.handle(Input::Start, t(0));
    fx.extend(confirm_drop(&mut live));
    let (rid, _) = run_sql(&fx).unwrap();
    fx.extend(live.handle(
        Input::SqlFinished {
            step: "drop-db".into(),
            request_id: rid,
            result: Err(SqlError::Dropped {
                message: "reset".into(),
            }),
        },
        t(4),
    ));
    let verify = |e: &mut Engine| {
        e.handle(
            Input::ResolveInDoubt {
                step: "drop-db".into(),
                resolution: Resolution::Verify,
            },
            t(5),
        )
    };
    let first = verify(&mut live);
    let second = verify(&mut live);
    assert_eq!(first.iter().filter_map(Effect::journal_record).count(), 1);
    assert_eq!(
        second.iter().filter_map(Effect::journal_record).count(),
        0,
        "{second:?}"
    );
    fx.extend(first);
    fx.extend(live.handle(
        Input::ResolveInDoubt {
            step: "drop-db".into(),
            resolution: Resolution::Rerun,
        },
        t(6),
    ));
    assert_eq!(state(&live, "drop-db"), &StepState::Pending);
    let records: Vec<Record> = fx
        .iter()
        .filter_map(Effect::journal_record)
        .cloned()
        .collect();
    let replayed = Engine::replay(Arc::clone(&rb), vars(&rb), opts(), &records).unwrap();
    assert_eq!(replayed.step_state("drop-db"), Some(&StepState::InDoubt));
    assert_eq!(replayed.in_doubt(), vec!["drop-db".to_string()]);
}

/// Issue 14: connection security warnings were shown in the UI only; every session (UI,
/// check, run --batch) now journals them as notes when it starts, so the report shows them.
#[test]
fn security_warnings_are_journaled_at_start() {
    let rb = sample_runbook();
    let v = vars(&rb);
    let mut e = Engine::new(
        Arc::new(rb),
        v,
        EngineOptions {
            security_warnings: vec!["sql01: trust_server_certificate is on".into()],
            ..opts()
        },
    );
    let fx = e.handle(Input::Start, t(0));
    assert_eq!(kinds(&fx), ["journal:session_started", "journal:note"]);
    let Some(Effect::Journal { record }) = fx.get(1) else {
        panic!("{fx:?}");
    };
    assert!(
        matches!(&record.event, Event::Note { text } if text == "security warning: sql01: trust_server_certificate is on"),
        "{record:?}"
    );
}

#[test]
fn journals_written_before_the_record_fields_still_read() {
    let old = [
        r#"{"type":"signed_off","name":"Alice","role":"DBA"}"#,
        r#"{"type":"destructive_confirmed","by":"alice","second":false}"#,
        r#"{"type":"session_closed"}"#,
    ];
    let ev: Vec<Event> = old
        .iter()
        .map(|j| serde_json::from_str(j).unwrap_or_else(|e| panic!("{j}: {e}")))
        .collect();
    assert_eq!(
        ev[0],
        Event::SignedOff {
            name: "Alice".into(),
            role: "DBA".into(),
            exceptions: vec![],
            comment: String::new(),
            next_review: String::new(),
        }
    );
    assert!(matches!(
        &ev[1],
        Event::DestructiveConfirmed { word: None, .. }
    ));
    // And the new fields stay out of the file when empty (old readers see the same lines).
    assert_eq!(serde_json::to_string(&ev[0]).unwrap(), old[0]);
}

#[test]
fn verify_is_offered_only_when_a_check_can_tell() {
    let e = engine();
    // A check re-runs itself; a sql step with a check after it can be verified.
    assert!(e.can_verify("check-jobs"));
    assert!(e.can_verify("drop-db"));
    // The last step (a generate) has no check after it.
    assert!(!e.can_verify("gen-config"));
    assert!(!e.can_verify("no-such-step"));
}
