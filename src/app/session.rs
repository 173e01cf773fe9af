//! The session layer: operator intents go to the engine (pure), engine effects become
//! `AppEffect`s for the driver or popups, and the run view is refreshed from engine state.

use std::collections::HashMap;

use crate::engine::{Effect, Engine, Input, Resolution, StepState};
use crate::sql::executor::{ConnState as ExecConn, ExecEvent};
use btsdr_types::SqlError;

use super::form::{Check, Field, Form};
use super::state::*;
use super::update::{AppEffect, Intent};

/// An open session: the engine and the requests in flight.
pub struct Session {
    pub engine: Engine,
    /// Request id → step, for executor events.
    requests: HashMap<u64, String>,
}

impl Session {
    pub fn new(engine: Engine) -> Session {
        Session {
            engine,
            requests: HashMap::new(),
        }
    }
    /// Ids of statements sent and not finished.
    pub fn in_flight(&self) -> Vec<u64> {
        self.requests.keys().copied().collect()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

/// Results coming back to the app from the driver.
#[derive(Debug, Clone)]
pub enum SessionMsg {
    Exec(ExecEvent),
    FileWritten {
        step: String,
        path: String,
    },
    FileFailed {
        step: String,
        error: String,
    },
    /// Appending to the journal failed: nothing else may start.
    JournalFailed(String),
}

/// What to do next after an SQL error, in the operator's words.
pub fn advice(err: &SqlError, destructive: bool) -> Vec<String> {
    let mut v = Vec::new();
    match err {
        SqlError::Connect { server, .. } => {
            v.push(format!("Check that {server} is up and reachable from here (Test-NetConnection {server} -Port 1433), and that the SQL Server service and SQL Browser are running."));
            v.push("Check the server name in the environment configuration.".into());
        }
        SqlError::Login { .. } => {
            v.push("Check the login and password for this role (config / secrets); the SQL error log has the reason for error 18456.".into());
        }
        SqlError::Server { number, .. } => match number {
            3201 | 3013 => v.push("Check the backup path exists and the SQL Server service account can read/write it.".into()),
            4060 | 911 => v.push("The database does not exist or is not online on this server: check the name and sys.databases state.".into()),
            3101 => v.push("The database is in use: find sessions with sp_who2 and stop BizTalk host instances first.".into()),
            229 | 262 | 300 => v.push("Permission denied: the login needs the right role (sysadmin for backup/restore jobs).".into()),
            4305 | 4330 => v.push("The log backups are out of sequence: restore the files in LSN order (see the previous check's output).".into()),
            _ => v.push("Read the SQL Server message above; fix the cause on the server.".into()),
        },
        SqlError::Timeout { secs } => {
            v.push(format!("It ran longer than {secs} s: look for blocking (sp_who2) or raise the step's timeout."));
        }
        SqlError::Cancelled => v.push("You cancelled it. Nothing more was sent.".into()),
        SqlError::Dropped { .. } => {
            v.push("The connection dropped mid-statement: the outcome on the server is unknown. Verify on the server before re-running.".into());
        }
        SqlError::NoServer { role } => v.push(format!("Add a server for role `{role}` to the environment configuration: a [environments.NAME.{role}] table with `server` (docs/CONFIG.md).")),
        SqlError::Protocol { .. } => v.push("Unexpected reply from the server; check the log file and retry.".into()),
    }
    if destructive {
        v.push("This step is destructive: check the server state before retrying.".into());
    }
    v.push("r retries the step · s skips it with a reason · o shows the whole message".into());
    v
}

fn conn(c: &ExecConn) -> ConnState {
    match c {
        ExecConn::Disconnected => ConnState::Unknown,
        ExecConn::Connecting => ConnState::Connecting,
        ExecConn::Connected => ConnState::Up,
        ExecConn::Failed(m) => ConnState::Down(m.clone()),
    }
}

/// The incident a later part of a plan joins: the earlier part opened in this process, else
/// the newest earlier part of the same plan in the journals (started in another process).
/// Its declaration time, RTO and RPO in minutes.
pub(crate) fn incident_for(
    app: &App,
    p: &super::PlanRun,
) -> Option<(chrono::DateTime<chrono::Utc>, Option<u32>, Option<u32>)> {
    if p.part == 0 {
        return None;
    }
    let mins = |d: Option<chrono::Duration>| d.and_then(|d| u32::try_from(d.num_minutes()).ok());
    if app
        .plan
        .as_ref()
        .is_some_and(|q| q.plan.id == p.plan.id && q.part < p.part)
        && let Some(declared) = app.declared_at
    {
        return Some((declared, mins(app.rto), mins(app.rpo)));
    }
    crate::journal::incident::earlier_part(&app.plan_history, &p.plan.id, p.part)
        .map(|e| (e.declared_at, e.rto_minutes, e.rpo_minutes))
}

/// Opens a session on the run screen: starts a fresh one (asking for variables first if
/// needed) or resumes a replayed one (asking about steps in doubt).
pub fn open(app: &mut App, mut engine: Engine) -> Vec<AppEffect> {
    let rb = std::sync::Arc::clone(engine.runbook());
    // A plan applies only to the session started for it, and is journaled with its start.
    let pending = app
        .pending_plan
        .take()
        .filter(|p| p.current().is_some_and(|part| part.runbook == rb.id));
    if let Some(p) = &pending {
        // A later part of the plan: the same incident, so the same clock and targets.
        if let Some((declared, rto, rpo)) = incident_for(app, p) {
            engine.join_incident(declared, rto, rpo);
        }
        engine.set_plan(crate::engine::PlanRef {
            id: p.plan.id.clone(),
            label: p.plan.label.clone(),
            part: p.part,
            parts: p.plan.parts.len(),
        });
    }
    // A resumed session names its plan in the journal: find it among Home's failure classes.
    app.plan = pending.or_else(|| {
        let r = engine.options().plan.as_ref()?;
        app.home.iter().find_map(|i| match i {
            super::HomeItem::Failure(p)
                if p.id == r.id && p.parts.get(r.part).is_some_and(|x| x.runbook == rb.id) =>
            {
                Some(super::PlanRun {
                    plan: std::sync::Arc::clone(p),
                    part: r.part,
                })
            }
            _ => None,
        })
    });
    let o = engine.options().clone();
    let mut run = RunView::new(rb, o.session_id.clone());
    run.vars.clear();
    app.run = Some(run);
    app.environment = o.environment.clone();
    app.operator = o.operator.clone();
    app.drill = o.drill;
    app.dry_run = o.dry_run;
    app.declared_at = o.declared_at.or(Some(app.now));
    app.rto = o
        .rto_minutes
        .map(|m| chrono::Duration::minutes(i64::from(m)));
    app.rpo = o
        .rpo_minutes
        .map(|m| chrono::Duration::minutes(i64::from(m)));
    app.screen = Screen::Run;
    app.popups.clear();
    app.selected = 0;
    let started = engine.is_started();
    if let Some(s) = engine.state().session.as_ref() {
        app.declared_at = s.declared_at.or(Some(s.started_at));
    }
    app.session = Some(Session::new(engine));
    let mut fx = Vec::new();
    if started {
        fx.extend(input(app, Input::Resume));
    } else {
        let mut missing = missing_vars(app);
        // A yes/no the opener left unanswered (use_log_shipping when no destination is
        // configured) is asked with the values.
        if let Some(s) = &app.session {
            let e = &s.engine;
            for v in &e.runbook().variables {
                if v.kind == crate::runbook::model::VarKind::Bool
                    && e.variables().get(&v.name) == Some("")
                    && !missing.contains(&v.name)
                {
                    missing.insert(0, v.name.clone());
                }
            }
        }
        if missing.is_empty() {
            fx.extend(input(app, Input::Start));
            fx.extend(start_notes(app));
        } else {
            push_variables(app, missing);
        }
    }
    sync(app);
    // Select the first step that needs attention.
    if let Some(run) = &app.run {
        let first = run
            .steps
            .iter()
            .position(|s| s.mark.needs_attention())
            .or_else(|| run.steps.iter().position(|s| !s.mark.is_settled()))
            .unwrap_or(0);
        super::update::select(app, first);
    }
    if !started {
        select_plan_start(app);
    }
    if let Some(run) = &app.run
        && let Some(d) = run.steps.iter().find(|s| s.mark == StepMark::InDoubt)
    {
        let step = d.id.clone();
        let choice = super::update::in_doubt_first(app, &step);
        app.popups.push(Popup::InDoubt { step, choice });
    }
    fx
}

/// A session that has not started: asks for the values it still needs (or starts it when
/// none is missing).
pub fn ask_to_start(app: &mut App) -> Vec<AppEffect> {
    let missing = missing_vars(app);
    if missing.is_empty() {
        let mut fx = input(app, Input::Start);
        fx.extend(start_notes(app));
        sync(app);
        return fx;
    }
    app.notify(
        Level::Info,
        "the session starts once the runbook's values are given: fill them in, then Enter",
    );
    push_variables(app, missing);
    vec![]
}

/// Journals the notes kept for the session's start, once it has started.
fn start_notes(app: &mut App) -> Vec<AppEffect> {
    let started = app.session.as_ref().is_some_and(|s| s.engine.is_started());
    if !started {
        return Vec::new();
    }
    let mut fx = Vec::new();
    for text in std::mem::take(&mut app.start_notes) {
        fx.extend(input(app, Input::Note { step: None, text }));
    }
    fx
}

/// With a failure plan, selects the first open step of the plan's first listed section
/// (steps that do not apply are passed over), else that section's first step.
pub(crate) fn select_plan_start(app: &mut App) {
    let Some(part) = app.plan.as_ref().and_then(PlanRun::current) else {
        return;
    };
    let Some(run) = &app.run else { return };
    let sections: Vec<usize> = part
        .sections
        .iter()
        .filter_map(|s| run.runbook.sections.iter().position(|x| x.id == s.id))
        .collect();
    let in_section = |si: usize| {
        run.steps
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.section == si)
    };
    let target = sections
        .iter()
        .flat_map(|&si| in_section(si))
        .find(|(_, r)| !r.mark.is_settled())
        .or_else(|| sections.first().and_then(|&si| in_section(si).next()))
        .map(|(i, _)| i);
    if let Some(i) = target {
        super::update::select(app, i);
        app.focus = Focus::Steps;
    }
}

fn missing_vars(app: &App) -> Vec<String> {
    let Some(s) = &app.session else { return vec![] };
    let e = &s.engine;
    e.runbook()
        .variables
        .iter()
        .filter(|v| {
            crate::engine::validate_value(v, e.variables().get(&v.name).unwrap_or("")).is_err()
        })
        .map(|v| v.name.clone())
        .collect()
}

fn push_variables(app: &mut App, names: Vec<String>) {
    let Some(s) = &app.session else { return };
    let e = &s.engine;
    let fields = names
        .iter()
        .filter_map(|n| {
            e.runbook()
                .variable(n)
                .map(|v| Field::for_variable(v, e.variables().get(n)))
        })
        .collect();
    app.popups.push(Popup::Variables {
        form: Form::new(fields),
        names,
    });
}

/// Asks for a step's `ask` variables before it runs, each filled with the value a finished
/// check discovered (`discover`), else the session's value; submitting sets them (journaled)
/// and runs the step.
pub fn ask_variables(app: &mut App, step: String, names: Vec<String>) {
    let Some(s) = &app.session else { return };
    let e = &s.engine;
    let rb = e.runbook();
    let discovered = |name: &str| -> Option<String> {
        let run = app.run.as_ref()?;
        rb.steps().find_map(|(_, st)| {
            let (_, col) = st.discover.iter().find(|(v, _)| v == name)?;
            let set = run.outputs.get(&st.id)?.sets.first()?;
            let v = set.get(0, col)?.to_string();
            let is_bool = rb
                .variable(name)
                .is_some_and(|v| v.kind == crate::runbook::raw::VarKind::Bool);
            Some(match v.as_str() {
                "1" | "True" | "true" if is_bool => "true".to_string(),
                "0" | "False" | "false" if is_bool => "false".to_string(),
                _ => v,
            })
        })
    };
    let fields = names
        .iter()
        .filter_map(|n| {
            let found = discovered(n);
            rb.variable(n)
                .map(|v| Field::for_variable(v, found.as_deref().or_else(|| e.variables().get(n))))
        })
        .collect();
    app.ask_then_run = Some(step);
    app.popups.push(Popup::Variables {
        form: Form::new(fields),
        names,
    });
}

/// Sends one input to the engine and turns its effects into app effects and popups.
/// When the selected step is confirmed, skipped or passes, the selection moves on to the next
/// open step, the same way after every kind of step (a failure stays selected, with its
/// error in view).
pub fn input(app: &mut App, inp: Input) -> Vec<AppEffect> {
    let before = app.selected_step().map(|(r, _)| (r.id.clone(), r.mark));
    let fx = input_inner(app, inp);
    if let Some((id, mark)) = before
        && !mark.is_settled()
        && let Some(run) = &app.run
        && let Some(i) = run.index_of(&id)
        && (matches!(run.steps[i].mark, StepMark::Done | StepMark::Skipped)
            || (mark == StepMark::Running
                && matches!(run.steps[i].mark, StepMark::Passed | StepMark::WouldRun)))
        && app.selected == i
        && app.popups.is_empty()
    {
        let next = run
            .steps
            .iter()
            .enumerate()
            .skip(i + 1)
            .find(|(_, s)| !s.mark.is_settled())
            .map(|(k, _)| k);
        if let Some(k) = next {
            super::update::select(app, k);
        }
    }
    fx
}

fn input_inner(app: &mut App, inp: Input) -> Vec<AppEffect> {
    let now = app.now;
    let Some(s) = app.session.as_mut() else {
        app.notify(Level::Warn, "no session is open");
        return vec![];
    };
    let effects = s.engine.handle(inp, now);
    let mut out = Vec::new();
    for e in effects {
        match e {
            Effect::Journal { record } => out.push(AppEffect::Journal(Box::new(record))),
            Effect::RunSql {
                request_id,
                step,
                statement,
            } => {
                if let Some(s) = app.session.as_mut() {
                    s.requests.insert(request_id, step.clone());
                }
                if let Some(run) = app.run.as_mut() {
                    let o = run.outputs.entry(step.clone()).or_default();
                    *o = StepOutput {
                        statement: Some(redacted(app.session.as_ref(), &statement)),
                        started_at: Some(now),
                        log: std::mem::take(&mut o.log),
                        ..StepOutput::default()
                    };
                    o.log.push(LogLine {
                        at: now,
                        level: Level::Info,
                        text: format!("sent to {} / {}", statement.role, statement.database),
                    });
                }
                out.push(AppEffect::Submit {
                    request_id,
                    statement: Box::new(statement),
                });
            }
            Effect::WouldRun { step, statement } => {
                if let Some(run) = app.run.as_mut() {
                    let o = run.outputs.entry(step).or_default();
                    o.log.push(LogLine {
                        at: now,
                        level: Level::Warn,
                        text: format!(
                            "DRY-RUN: not sent to {} / {} (statement in the step detail)",
                            statement.role, statement.database
                        ),
                    });
                    o.statement = Some(statement);
                }
            }
            Effect::WriteFile {
                step,
                name,
                contents,
            } => out.push(AppEffect::WriteFile {
                step,
                name,
                contents,
            }),
            Effect::AskConfirmDestructive { step, word } => {
                let (server, statement) = match app
                    .session
                    .as_ref()
                    .map(|s| s.engine.preview_statement(&step))
                {
                    Some(Ok(st)) => {
                        // The instance name itself: at 3 a.m. "source" is not enough.
                        let name = app
                            .run
                            .as_ref()
                            .and_then(|r| r.vars.get(&format!("{}_sql_server", st.role)))
                            .filter(|n| !n.trim().is_empty())
                            .map_or_else(
                                || st.role.to_string(),
                                |n| format!("{n} ({} role)", st.role),
                            );
                        (
                            format!(
                                "{name} · database {} · environment {}",
                                st.database, app.environment
                            ),
                            super::update::statement_script(&st, &|_| false),
                        )
                    }
                    Some(Err(e)) => ("?".into(), e),
                    None => ("?".into(), String::new()),
                };
                let form = Form::new(vec![Field::new(
                    format!("Type {word}"),
                    Check::Equals(word.clone()),
                )]);
                app.popups.push(Popup::TypedConfirm {
                    step,
                    word,
                    server,
                    statement,
                    form,
                    scroll: 0,
                });
            }
            Effect::AskSecondOperator { step, first } => {
                let mut fields = vec![Field::new("Second operator's name", Check::Required)];
                if let Some(word) = app
                    .session
                    .as_ref()
                    .and_then(|s| s.engine.confirm_word(&step))
                {
                    fields.push(Field::new(format!("Type {word}"), Check::Equals(word)));
                }
                let form = Form::new(fields);
                app.popups.push(Popup::SecondOperator { step, first, form });
            }
            Effect::AskManual { step } => super::update::push_manual(app, step),
            Effect::Notify { text } => app.notify(Level::Info, text),
            Effect::Refused { text } => app.notify(Level::Warn, text),
        }
    }
    sync(app);
    out
}

fn redacted(s: Option<&Session>, st: &btsdr_types::Statement) -> btsdr_types::Statement {
    let mut st = st.clone();
    if let Some(s) = s {
        for (name, p) in &mut st.params {
            if s.engine.variables().is_secret(name) {
                *p = btsdr_types::Param::Text(crate::engine::events::REDACTED.to_string());
            }
        }
    }
    st
}

/// Maps an operator intent to engine inputs.
// TODO(issue 16): split along its arms (the app layer's update is one function over two files).
#[allow(clippy::too_many_lines)]
pub fn intent(app: &mut App, i: Intent) -> Vec<AppEffect> {
    let by = app.operator.clone();
    let inp = match i {
        Intent::Run(s) => Input::Run(s),
        Intent::Retry(s) => Input::Retry(s),
        Intent::Verify(s) => Input::ReVerify(s),
        Intent::Skip { step, reason } => Input::Skip { step, reason, by },
        Intent::ConfirmManual {
            step,
            note,
            evidence,
            by: done_by,
        } => Input::ConfirmManual {
            step,
            by: if done_by.trim().is_empty() {
                by
            } else {
                done_by
            },
            note,
            evidence,
        },
        Intent::ConfirmDestructive { step, typed } => Input::ConfirmDestructive { step, typed, by },
        Intent::SecondOperator { step, by } => Input::SecondOperatorConfirm { step, by },
        Intent::ResolveVerify(step) => Input::ResolveInDoubt {
            step,
            resolution: Resolution::Verify,
        },
        Intent::ResolveRerun(step) => Input::ResolveInDoubt {
            step,
            resolution: Resolution::Rerun,
        },
        Intent::ResolveMarkDone { step, note } => Input::ResolveInDoubt {
            step,
            resolution: Resolution::MarkDone { note },
        },
        Intent::SignOff {
            name,
            role,
            comment,
            next_review,
        } => {
            let mut fx = input(
                app,
                Input::SignOffWith {
                    name,
                    role,
                    comment,
                    next_review,
                    at: app.now,
                },
            );
            // A complete run (every applicable step passed or done) closes once signed: its
            // clock stops and it leaves "Resume". With exceptions it stays open.
            let signed = fx.iter().any(|e| matches!(e, AppEffect::Journal(_)));
            let settled = app
                .session
                .as_ref()
                .is_some_and(|s| !s.engine.is_over() && s.engine.open_steps().is_empty());
            if signed && settled {
                fx.extend(input(
                    app,
                    Input::CloseWithReason {
                        reason: "signed off with every step settled".into(),
                    },
                ));
                app.notify(
                    Level::Ok,
                    "signed off: the session is closed and its clock stopped",
                );
            }
            return fx;
        }
        Intent::Reopen { step, reason } => Input::Reopen { step, reason, by },
        Intent::Close { reason } => {
            let fx = input(app, Input::CloseWithReason { reason });
            if fx.iter().any(|e| matches!(e, AppEffect::Journal(_))) {
                app.notify(
                    Level::Ok,
                    "session closed: its clock stopped; S still signs it",
                );
            }
            return fx;
        }
        Intent::SetVariables(vals) => {
            let mut fx = Vec::new();
            for (name, value) in vals {
                fx.extend(input(app, Input::SetVariable { name, value }));
            }
            if app.session.as_ref().is_some_and(|s| !s.engine.is_started()) {
                let missing = missing_vars(app);
                if missing.is_empty() {
                    fx.extend(input(app, Input::Start));
                    fx.extend(start_notes(app));
                } else {
                    push_variables(app, missing);
                }
            }
            return fx;
        }
        Intent::Cancel(step) => {
            let ids: Vec<u64> = app
                .session
                .as_ref()
                .map(|s| {
                    s.requests
                        .iter()
                        .filter(|(_, st)| **st == step)
                        .map(|(id, _)| *id)
                        .collect()
                })
                .unwrap_or_default();
            if ids.is_empty() {
                app.notify(Level::Info, format!("{step} is not running"));
            }
            return ids.into_iter().map(AppEffect::CancelSql).collect();
        }
        Intent::SetDryRun(_) => {
            app.notify(
                Level::Warn,
                "DRY-RUN is chosen when a session starts (it is journaled): start a new session with dry run",
            );
            if let Some(s) = &app.session {
                app.dry_run = s.engine.options().dry_run;
            }
            return vec![];
        }
    };
    input(app, inp)
}

/// Driver results.
// TODO(issue 16): split along its arms (the app layer's update is one function over two files).
#[allow(clippy::too_many_lines)]
pub fn on_session(app: &mut App, m: SessionMsg) -> Vec<AppEffect> {
    match m {
        SessionMsg::Exec(ExecEvent::Conn { role, state }) => {
            app.conns.insert(role, conn(&state));
            vec![]
        }
        SessionMsg::Exec(ExecEvent::Started { id }) => {
            let now = app.now;
            if let Some(step) = app
                .session
                .as_ref()
                .and_then(|s| s.requests.get(&id))
                .cloned()
                && let Some(run) = app.run.as_mut()
            {
                let o = run.outputs.entry(step).or_default();
                o.log.push(LogLine {
                    at: now,
                    level: Level::Info,
                    text: "running on the server".into(),
                });
            }
            vec![]
        }
        SessionMsg::Exec(ExecEvent::Progress { id, progress }) => {
            let Some(step) = app
                .session
                .as_ref()
                .and_then(|s| s.requests.get(&id))
                .cloned()
            else {
                return vec![];
            };
            if let Some(run) = app.run.as_mut() {
                run.outputs.entry(step.clone()).or_default().progress = Some(progress);
            }
            input(
                app,
                Input::SqlProgress {
                    step,
                    request_id: id,
                    progress,
                },
            )
        }
        SessionMsg::Exec(ExecEvent::Finished { id, result }) => {
            let Some(step) = app.session.as_mut().and_then(|s| s.requests.remove(&id)) else {
                return vec![];
            };
            let now = app.now;
            let destructive = app
                .run
                .as_ref()
                .and_then(|r| r.runbook.step(&step))
                .is_some_and(|s| s.is_destructive());
            if let Some(run) = app.run.as_mut() {
                let o = run.outputs.entry(step.clone()).or_default();
                o.progress = None;
                match &result {
                    Ok(q) => {
                        o.sets = q.sets.clone();
                        o.rows_affected = q.rows_affected.clone();
                        o.error = None;
                        let rows: usize = q.sets.iter().map(|s| s.rows.len()).sum();
                        o.log.push(LogLine {
                            at: now,
                            level: Level::Ok,
                            text: format!(
                                "finished: {} result set(s), {rows} row(s)",
                                q.sets.len()
                            ),
                        });
                    }
                    Err(e) => {
                        o.error = Some(ErrorView {
                            message: e.to_string(),
                            next: advice(e, destructive),
                        });
                        o.log.push(LogLine {
                            at: now,
                            level: Level::Error,
                            text: e.to_string(),
                        });
                    }
                }
            }
            input(
                app,
                Input::SqlFinished {
                    step,
                    request_id: id,
                    result,
                },
            )
        }
        SessionMsg::FileWritten { step, path } => {
            app.notify(Level::Ok, format!("wrote {path}"));
            let fx = input(
                app,
                Input::GenerateWritten {
                    step: step.clone(),
                    path,
                },
            );
            // The path and digest stay in the step's output (the toast goes away).
            let written = app
                .session
                .as_ref()
                .and_then(|s| s.engine.step_run(&step))
                .and_then(|r| r.generated.clone());
            let now = app.now;
            if let (Some(g), Some(run)) = (written, app.run.as_mut()) {
                run.outputs.entry(step).or_default().log.push(LogLine {
                    at: now,
                    level: Level::Ok,
                    text: format!("wrote {} · SHA-256 {}", g.path, g.sha256),
                });
            }
            fx
        }
        SessionMsg::FileFailed { step, error } => input(app, Input::GenerateFailed { step, error }),
        SessionMsg::JournalFailed(error) => {
            app.popups.push(Popup::Message {
                title: "Journal write failed".into(),
                text: format!(
                    "{error}\n\nNothing else will run until the journal can be written. Free disk space or fix permissions, then restart btsdr: it resumes from the journal."
                ),
                error: true,
            });
            input(app, Input::JournalFailed { error })
        }
    }
}

/// Refreshes the run view from the engine.
pub fn sync(app: &mut App) {
    let Some(s) = &app.session else { return };
    let e = &s.engine;
    let Some(run) = app.run.as_mut() else { return };
    run.vars = e
        .variables()
        .iter()
        .map(|v| (v.name.clone(), e.variables().display(&v.name)))
        .collect();
    run.vars.retain(|_, v| !v.is_empty());
    if let Some(so) = e.state().signoffs.last() {
        run.signed_off = Some(SignOff {
            name: so.name.clone(),
            role: so.role.clone(),
            at: so.at,
        });
    }
    for sr in &e.state().steps {
        let Some(row) = run.steps.iter_mut().find(|r| r.id == sr.id) else {
            continue;
        };
        let (mark, note) = match &sr.state {
            StepState::Pending => (StepMark::Pending, None),
            StepState::Blocked { waiting_for } => (
                StepMark::Blocked,
                Some(format!("waits for {}", waiting_for.join(", "))),
            ),
            StepState::NotApplicable { reason } => (StepMark::NotApplicable, Some(reason.clone())),
            StepState::Running => (StepMark::Running, None),
            StepState::Passed => (StepMark::Passed, None),
            StepState::WouldRun => (StepMark::WouldRun, None),
            StepState::Failed { error } => (StepMark::Failed, Some(error.clone())),
            StepState::Skipped { reason, by } => {
                (StepMark::Skipped, Some(format!("{reason} — {by}")))
            }
            StepState::Done { by, note, evidence } => {
                let ev = if evidence.is_empty() {
                    String::new()
                } else {
                    format!(" · evidence: {evidence}")
                };
                (StepMark::Done, Some(format!("{note} — {by}{ev}")))
            }
            StepState::InDoubt => (
                StepMark::InDoubt,
                Some("was running when btsdr stopped: outcome unknown".into()),
            ),
        };
        row.mark = mark;
        row.note = note;
        row.attempts = sr.attempts;
        row.started_at = sr.started_at;
        row.finished_at = sr.finished_at;
        let live = e.step_live(&sr.id);
        let has = run.outputs.contains_key(&sr.id);
        if has
            || sr.statement.is_some()
            || sr.evidence.is_some()
            || !sr.assertions.is_empty()
            || matches!(sr.state, StepState::Failed { .. })
        {
            let o = run.outputs.entry(sr.id.clone()).or_default();
            if o.statement.is_none() {
                o.statement.clone_from(&sr.statement);
            }
            o.asserts.clone_from(&sr.assertions);
            if o.sets.is_empty()
                && let Some(ev) = &sr.evidence
            {
                o.sets = vec![ev.clone()];
            }
            if o.rows_affected.is_empty() {
                o.rows_affected.clone_from(&sr.rows_affected);
            }
            match &sr.state {
                StepState::Failed { error } if o.error.is_none() => {
                    o.error = Some(ErrorView {
                        message: error.clone(),
                        next: vec!["r retries the step · s skips it with a reason · o shows the whole message".into()],
                    });
                }
                StepState::Failed { .. } => {}
                _ => o.error = None,
            }
            o.progress = live.and_then(|l| l.progress);
            if o.started_at.is_none() {
                o.started_at = sr.started_at;
            }
        }
    }
}
