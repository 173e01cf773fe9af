//! The runbook engine: a pure state machine. No I/O, no clock: time comes in with inputs.
//!
//! `handle(input, now)` decides and returns [`Effect`]s as data. Every state change that
//! must survive a crash is a journal [`Record`]: the engine builds the record, applies it to
//! itself with [`Engine::apply`] (the same function replay uses) and emits it as
//! `Effect::Journal` ahead of the work it announces (write-ahead). So replaying a journal
//! rebuilds exactly the live [`RunState`]; a step started but never finished becomes
//! [`StepState::InDoubt`].

pub mod events;
#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
pub mod fixture;
mod io;
mod state;
mod vars;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use io::{Effect, Input};
pub use state::{
    Approvals, Counts, GeneratedFile, Next, NextAction, NoteEntry, RunState, SessionInfo, SignOff,
    StepLive, StepRun, StepState,
};
pub use vars::{VarValue, Variables, validate_value};

use crate::runbook::expr::{self, Part};
use crate::runbook::model::{Escape, Runbook, Step, StepBody};
use btsdr_types::{Param, QueryOutput, ResultSet, SqlError, Statement, Value, ValueRef};
use events::REDACTED;
pub use events::{Event, NamedValue, Outcome, PlanRef, Record, Resolution};

/// Rows of a result kept as evidence in the journal (a check's assertions see them all).
pub const MAX_EVIDENCE_ROWS: usize = 1000;

/// Session settings chosen when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct EngineOptions {
    /// Record the statements that would run; send nothing.
    pub dry_run: bool,
    /// Destructive steps also need a second, different operator.
    pub two_person_rule: bool,
    /// Who is at the keyboard (records name them).
    pub operator: String,
    pub session_id: String,
    pub environment: String,
    /// A DR drill rather than a real disaster.
    pub drill: bool,
    pub rto_minutes: Option<u32>,
    pub rpo_minutes: Option<u32>,
    /// When the disaster (or drill) was declared.
    pub declared_at: Option<DateTime<Utc>>,
    /// The failure plan the session is part of, if it was started from one.
    pub plan: Option<PlanRef>,
    /// Security warnings about the connections (trust_server_certificate, clear text, a
    /// config file others can read): journaled as notes when the session starts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_warnings: Vec<String>,
}

/// How a run was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Run,
    Retry,
    ReVerify,
}

/// The state machine. `Debug` never shows secret values.
#[derive(Debug, Clone)]
pub struct Engine {
    runbook: Arc<Runbook>,
    vars: Variables,
    opts: EngineOptions,
    state: RunState,
    live: Vec<StepLive>,
    index: HashMap<String, usize>,
    /// Section index of each step.
    section_of: Vec<usize>,
    selected: usize,
    next_request: u64,
    journal_error: Option<String>,
}

fn same_person(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

impl Engine {
    pub fn new(runbook: Arc<Runbook>, vars: Variables, opts: EngineOptions) -> Engine {
        let mut index = HashMap::new();
        let mut section_of = Vec::new();
        let mut steps = Vec::new();
        for (si, sec) in runbook.sections.iter().enumerate() {
            for st in &sec.steps {
                index.insert(st.id.clone(), steps.len());
                section_of.push(si);
                steps.push(StepRun::new(&st.id));
            }
        }
        let n = steps.len();
        let mut e = Engine {
            state: RunState {
                session: None,
                steps,
                variables: vars.redacted(),
                aborted: None,
                closed: false,
                ended_at: None,
                signoffs: Vec::new(),
                notes: Vec::new(),
                records: 0,
                last_activity: None,
            },
            runbook,
            vars,
            opts,
            live: vec![StepLive::default(); n],
            index,
            section_of,
            selected: 0,
            next_request: 1,
            journal_error: None,
        };
        e.refresh();
        e
    }

    /// Rebuilds an engine from a session's records. `vars` supplies secret values (the
    /// journal has them redacted); other values and the session settings come from the
    /// journal. Steps started without an outcome come back [`StepState::InDoubt`].
    pub fn replay(
        runbook: Arc<Runbook>,
        vars: Variables,
        opts: EngineOptions,
        records: &[Record],
    ) -> Result<Engine, String> {
        let mut e = Engine::new(runbook, vars, opts);
        match records.first() {
            Some(Record {
                event: Event::SessionStarted { .. },
                ..
            }) => {}
            Some(r) => {
                return Err(format!(
                    "the journal starts with `{}`, not session_started: it is not a session journal",
                    r.event.name()
                ));
            }
            None => return Err("the journal is empty: there is no session to resume".into()),
        }
        for r in records {
            e.apply(r).map_err(|m| format!("record {}: {m}", r.seq))?;
        }
        e.mark_running_in_doubt();
        Ok(e)
    }

    /// Names the failure plan this session carries out; the session's first record
    /// (written at `Start`) journals it. Ignored once the session has started.
    pub fn set_plan(&mut self, plan: PlanRef) {
        if !self.is_started() {
            self.opts.plan = Some(plan);
        }
    }

    /// A later part of a failure plan joins the incident an earlier part declared: one clock
    /// (its declaration time) and the same targets. Only before the session starts.
    pub fn join_incident(
        &mut self,
        declared_at: DateTime<Utc>,
        rto_minutes: Option<u32>,
        rpo_minutes: Option<u32>,
    ) {
        if !self.is_started() {
            self.opts.declared_at = Some(declared_at);
            self.opts.rto_minutes = rto_minutes.or(self.opts.rto_minutes);
            self.opts.rpo_minutes = rpo_minutes.or(self.opts.rpo_minutes);
        }
    }

    // ----- read access -------------------------------------------------------------

    pub fn runbook(&self) -> &Arc<Runbook> {
        &self.runbook
    }
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }
    pub fn variables(&self) -> &Variables {
        &self.vars
    }
    /// The journaled state (equal for a live engine and its replay).
    pub fn state(&self) -> &RunState {
        &self.state
    }
    pub fn is_started(&self) -> bool {
        self.state.session.is_some()
    }
    /// Closed or aborted.
    pub fn is_over(&self) -> bool {
        self.state.closed || self.state.aborted.is_some()
    }
    pub fn journal_error(&self) -> Option<&str> {
        self.journal_error.as_deref()
    }
    pub fn step_run(&self, id: &str) -> Option<&StepRun> {
        self.index.get(id).map(|&i| &self.state.steps[i])
    }
    pub fn step_state(&self, id: &str) -> Option<&StepState> {
        self.step_run(id).map(|r| &r.state)
    }
    pub fn step_live(&self, id: &str) -> Option<&StepLive> {
        self.index.get(id).map(|&i| &self.live[i])
    }
    /// The selected step's id (Jump changes it).
    pub fn selected(&self) -> Option<&str> {
        self.state.steps.get(self.selected).map(|s| s.id.as_str())
    }
    /// Steps in doubt, in runbook order.
    pub fn in_doubt(&self) -> Vec<String> {
        self.ids_where(|s| matches!(s, StepState::InDoubt))
    }
    /// Steps running now.
    pub fn running(&self) -> Vec<String> {
        self.ids_where(|s| matches!(s, StepState::Running))
    }
    fn ids_where(&self, f: impl Fn(&StepState) -> bool) -> Vec<String> {
        self.state
            .steps
            .iter()
            .filter(|s| f(&s.state))
            .map(|s| s.id.clone())
            .collect()
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for s in &self.state.steps {
            c.add(&s.state);
        }
        c
    }

    pub fn section_counts(&self, section_id: &str) -> Option<Counts> {
        let si = self
            .runbook
            .sections
            .iter()
            .position(|s| s.id == section_id)?;
        let mut c = Counts::default();
        for (i, s) in self.state.steps.iter().enumerate() {
            if self.section_of[i] == si {
                c.add(&s.state);
            }
        }
        Some(c)
    }

    /// Check steps that can start now (pending, not blocked, applicable). Checks may run
    /// side by side, so a batch runner can start them all.
    pub fn runnable_checks(&self) -> Vec<String> {
        self.runbook
            .steps()
            .map(|(_, st)| st)
            .filter(|st| matches!(st.body, StepBody::Check(_)))
            .filter(|st| self.step_state(&st.id) == Some(&StepState::Pending))
            .map(|st| st.id.clone())
            .collect()
    }

    /// The word a destructive step asks for: its `confirm_word`, else the database name.
    pub fn confirm_word(&self, step_id: &str) -> Option<String> {
        let step = self.runbook.step(step_id)?;
        match &step.body {
            StepBody::Sql(s) if s.destructive => Some(match &s.confirm_word {
                Some(w) => w.clone(),
                None => self
                    .render_database(&s.database)
                    .unwrap_or_else(|_| s.database.clone()),
            }),
            _ => None,
        }
    }

    /// The statement a sql/check step would send, secrets redacted (for previews).
    pub fn preview_statement(&self, step_id: &str) -> Result<Statement, String> {
        let step = self
            .runbook
            .step(step_id)
            .ok_or_else(|| format!("no step `{step_id}` in this runbook"))?;
        self.build_statement(step, true)
    }

    /// What to do next: the first step in doubt, else the first failed, pending or running
    /// step in runbook order; `SignOff` once everything applicable is finished.
    pub fn next_step(&self) -> Option<Next> {
        if self.is_over() {
            return None;
        }
        if let Some(s) = self
            .state
            .steps
            .iter()
            .find(|s| s.state == StepState::InDoubt)
        {
            return Some(Next {
                step: Some(s.id.clone()),
                action: NextAction::ResolveInDoubt,
            });
        }
        for (i, s) in self.state.steps.iter().enumerate() {
            let action = match &s.state {
                StepState::Failed { .. } => NextAction::RetryOrSkip,
                StepState::Running => NextAction::Wait,
                StepState::Pending => self.pending_action(i),
                _ => continue,
            };
            return Some(Next {
                step: Some(s.id.clone()),
                action,
            });
        }
        self.counts().complete().then_some(Next {
            step: None,
            action: NextAction::SignOff,
        })
    }

    fn pending_action(&self, i: usize) -> NextAction {
        let step = self.step_at(i);
        let run = &self.state.steps[i];
        match &step.body {
            StepBody::Manual(_) => NextAction::ConfirmManual,
            StepBody::Sql(s) if s.destructive => {
                match (&run.approvals.first, &run.approvals.second) {
                    (Some(first), None) if self.opts.two_person_rule => {
                        NextAction::SecondOperator {
                            first: first.clone(),
                        }
                    }
                    (None, _) if self.live[i].awaiting_confirm => NextAction::ConfirmDestructive {
                        word: self.confirm_word(&step.id).unwrap_or_default(),
                    },
                    _ => NextAction::Run,
                }
            }
            _ => NextAction::Run,
        }
    }

    /// Changes who is at the keyboard (a resume by someone else: a shift hand-over).
    pub fn set_operator(&mut self, name: &str) {
        self.opts.operator = name.to_string();
    }

    // ----- inputs ------------------------------------------------------------------

    /// Decides what an input means. Effects come back in the order the driver must perform
    /// them.
    pub fn handle(&mut self, input: Input, now: DateTime<Utc>) -> Vec<Effect> {
        let mut out = Vec::new();
        if let Err(text) = self.handle_inner(input, now, &mut out) {
            out.push(Effect::Refused { text });
        }
        out
    }

    // TODO(issue 16): split (one handler per input kind).
    #[allow(clippy::too_many_lines)]
    fn handle_inner(
        &mut self,
        input: Input,
        now: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        match input {
            Input::Start => self.start(now, out),
            Input::Resume => {
                self.require_started()?;
                let in_doubt = self
                    .state
                    .steps
                    .iter()
                    .filter(|s| matches!(s.state, StepState::Running | StepState::InDoubt))
                    .map(|s| s.id.clone())
                    .collect();
                let op = self.opts.operator.clone();
                self.emit(
                    out,
                    now,
                    &op,
                    None,
                    Event::Resumed { in_doubt },
                    "session resumed",
                );
                Ok(())
            }
            Input::Run(id) => self.run(&id, Mode::Run, now, out),
            Input::Retry(id) => self.run(&id, Mode::Retry, now, out),
            Input::ReVerify(id) => self.run(&id, Mode::ReVerify, now, out),
            Input::Skip { step, reason, by } => self.skip(&step, &reason, &by, now, out),
            Input::ConfirmManual {
                step,
                by,
                note,
                evidence,
            } => self.confirm_manual(&step, &by, &note, &evidence, now, out),
            Input::ConfirmDestructive { step, typed, by } => {
                self.confirm_destructive(&step, &typed, &by, now, out)
            }
            Input::SecondOperatorConfirm { step, by } => self.second_operator(&step, &by, now, out),
            Input::Abort { reason } => {
                self.require_open()?;
                if reason.trim().is_empty() {
                    return Err(
                        "Give a reason for aborting (it goes into the journal and the report)."
                            .into(),
                    );
                }
                let op = self.opts.operator.clone();
                self.emit(
                    out,
                    now,
                    &op,
                    None,
                    Event::Aborted {
                        reason: reason.clone(),
                    },
                    "session aborted",
                );
                out.push(Effect::Notify {
                    text: format!("Session aborted: {reason}"),
                });
                Ok(())
            }
            Input::Jump(id) => {
                self.selected = self.lookup(&id)?;
                Ok(())
            }
            Input::ResolveInDoubt { step, resolution } => self.resolve(&step, resolution, now, out),
            Input::SetVariable { name, value } => self.set_variable(&name, &value, now, out),
            Input::Note { step, text } => {
                self.require_started()?;
                if let Some(s) = &step {
                    self.lookup(s)?;
                }
                if text.trim().is_empty() {
                    return Err("The note is empty.".into());
                }
                let op = self.opts.operator.clone();
                let text = self.vars.redact(&text);
                self.emit(out, now, &op, step.as_deref(), Event::Note { text }, "");
                Ok(())
            }
            Input::SqlFinished {
                step,
                request_id,
                result,
            } => self.sql_finished(&step, request_id, result, now, out),
            Input::SqlProgress {
                step,
                request_id,
                progress,
            } => {
                let i = self.lookup(&step)?;
                if self.live[i].request_id == Some(request_id) {
                    self.live[i].progress = Some(progress);
                }
                Ok(())
            }
            Input::GenerateWritten { step, path } => self.generate_written(&step, &path, now, out),
            Input::GenerateFailed { step, error } => {
                let i = self.lookup(&step)?;
                if self.state.steps[i].state != StepState::Running {
                    return Err(format!("Step `{step}` is not being generated."));
                }
                self.live[i].rendered = None;
                let error = format!("could not write the file: {}", self.vars.redact(&error));
                let op = self.opts.operator.clone();
                let ev = Event::StepFinished {
                    outcome: Outcome::Failed { error },
                    evidence: None,
                    assertions: vec![],
                    rows_affected: vec![],
                };
                self.emit(out, now, &op, Some(&step), ev, "");
                Ok(())
            }
            Input::SignOff { name, role, at } => {
                self.sign_off(name, role, String::new(), String::new(), at, out)
            }
            Input::SignOffWith {
                name,
                role,
                comment,
                next_review,
                at,
            } => self.sign_off(name, role, comment, next_review, at, out),
            Input::CloseWithReason { reason } => self.close_with_reason(&reason, now, out),
            Input::Reopen { step, reason, by } => self.reopen(&step, &reason, &by, now, out),
            Input::Close => {
                self.require_open()?;
                if let Some(r) = self.running().first() {
                    return Err(format!(
                        "Step `{r}` is still running: wait for it before closing the session."
                    ));
                }
                let op = self.opts.operator.clone();
                self.emit(
                    out,
                    now,
                    &op,
                    None,
                    Event::SessionClosed {},
                    "session closed",
                );
                Ok(())
            }
            Input::JournalFailed { error } => {
                let text = format!(
                    "The journal could not be written ({error}). Nothing more will be started: fix the cause (disk space, permissions) and resume the session."
                );
                self.journal_error = Some(error);
                out.push(Effect::Notify { text });
                Ok(())
            }
        }
    }

    /// Applicable steps not settled well, as `step: state` (skipped ones included): what a
    /// sign-off lists as its exceptions and a close journals.
    pub fn open_steps(&self) -> Vec<String> {
        self.state
            .steps
            .iter()
            .filter(|s| {
                !matches!(
                    s.state,
                    StepState::Passed
                        | StepState::WouldRun
                        | StepState::Done { .. }
                        | StepState::NotApplicable { .. }
                )
            })
            .map(|s| format!("{}: {}", s.id, s.state.label()))
            .collect()
    }

    /// Whether "verify" can help with a step in doubt: a check re-runs itself; another
    /// step needs a check after it in the runbook.
    pub fn can_verify(&self, step_id: &str) -> bool {
        let Some(&i) = self.index.get(step_id) else {
            return false;
        };
        matches!(self.step_at(i).body, StepBody::Check(_))
            || self
                .runbook
                .steps()
                .map(|(_, s)| s)
                .skip(i + 1)
                .any(|s| matches!(s.body, StepBody::Check(_)))
    }

    fn sign_off(
        &mut self,
        name: String,
        role: String,
        comment: String,
        next_review: String,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        self.require_started()?;
        if name.trim().is_empty() {
            return Err("Sign-off needs a name.".into());
        }
        let next_review = next_review.trim().to_string();
        if !next_review.is_empty()
            && chrono::NaiveDate::parse_from_str(&next_review, "%Y-%m-%d").is_err()
        {
            return Err(format!(
                "The next review date `{next_review}` is not a date: write it as YYYY-MM-DD (e.g. 2027-06-30)."
            ));
        }
        let n = name.trim().to_string();
        let exceptions = self.open_steps();
        let details = if exceptions.is_empty() {
            String::new()
        } else {
            format!("signed with {} exception(s)", exceptions.len())
        };
        let ev = Event::SignedOff {
            name: n.clone(),
            role: role.trim().to_string(),
            exceptions,
            comment: self.vars.redact(comment.trim()),
            next_review,
        };
        self.emit(out, at, &n, None, ev, &details);
        Ok(())
    }

    fn close_with_reason(
        &mut self,
        reason: &str,
        now: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        self.require_open()?;
        if let Some(r) = self.running().first() {
            return Err(format!(
                "Step `{r}` is still running: wait for it before closing the session."
            ));
        }
        let open = self.open_steps();
        let reason = self.vars.redact(reason.trim());
        let details = if open.is_empty() {
            if reason.is_empty() {
                "session closed".to_string()
            } else {
                format!("session closed: {reason}")
            }
        } else if reason.is_empty() {
            return Err(format!(
                "{} step(s) are still open ({}): give a reason for closing anyway (it goes into the journal and the report).",
                open.len(),
                open.join(", ")
            ));
        } else {
            format!(
                "session closed with open steps: {} — reason: {reason}",
                open.join(", ")
            )
        };
        let op = self.opts.operator.clone();
        self.emit(out, now, &op, None, Event::SessionClosed {}, &details);
        Ok(())
    }

    fn reopen(
        &mut self,
        id: &str,
        reason: &str,
        by: &str,
        now: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        let i = self.lookup(id)?;
        self.require_writable()?;
        if reason.trim().is_empty() {
            return Err(
                "Give a reason for reopening (it goes into the journal and the report).".into(),
            );
        }
        match &self.state.steps[i].state {
            StepState::Skipped { .. } | StepState::Done { .. } => {}
            s => {
                return Err(format!(
                    "Only a skipped or done step can be reopened; `{id}` is {}.",
                    s.label()
                ));
            }
        }
        let by = self.who(by);
        let reason = self.vars.redact(reason.trim());
        self.emit(
            out,
            now,
            &by,
            Some(id),
            Event::Reopened {
                by: by.clone(),
                reason,
            },
            "",
        );
        self.selected = i;
        Ok(())
    }

    fn lookup(&self, id: &str) -> Result<usize, String> {
        self.index
            .get(id)
            .copied()
            .ok_or_else(|| format!("There is no step `{id}` in this runbook."))
    }

    fn step_at(&self, i: usize) -> &Step {
        // `index` and `steps` are built from the same runbook, so `i` is always in range.
        let id = &self.state.steps[i].id;
        self.runbook
            .steps()
            .map(|(_, s)| s)
            .find(|s| &s.id == id)
            .unwrap_or_else(|| unreachable_step())
    }

    fn require_started(&self) -> Result<(), String> {
        if self.state.session.is_none() {
            return Err("The session has not started yet: start it first.".into());
        }
        Ok(())
    }

    fn require_open(&self) -> Result<(), String> {
        self.require_started()?;
        if let Some(r) = &self.state.aborted {
            return Err(format!(
                "The session was aborted ({r}): start a new session to continue."
            ));
        }
        if self.state.closed {
            return Err("The session is closed: start a new session to continue.".into());
        }
        Ok(())
    }

    fn require_writable(&self) -> Result<(), String> {
        self.require_open()?;
        if let Some(e) = &self.journal_error {
            return Err(format!(
                "The journal could not be written ({e}): nothing more is started. Fix the cause and resume the session."
            ));
        }
        Ok(())
    }

    fn who(&self, by: &str) -> String {
        if by.trim().is_empty() {
            self.opts.operator.clone()
        } else {
            by.trim().to_string()
        }
    }

    /// Builds a record, applies it (same path as replay) and emits it.
    fn emit(
        &mut self,
        out: &mut Vec<Effect>,
        now: DateTime<Utc>,
        by: &str,
        step: Option<&str>,
        event: Event,
        details: &str,
    ) {
        let mut record = Record::new(now, by, step, event).with_details(details);
        record.seq = self.state.records + 1;
        if let Err(e) = self.apply(&record) {
            out.push(Effect::Notify {
                text: format!("internal error applying a record: {e}"),
            });
        }
        out.push(Effect::Journal { record });
    }

    fn start(&mut self, now: DateTime<Utc>, out: &mut Vec<Effect>) -> Result<(), String> {
        if self.is_started() {
            return Err("The session has already started.".into());
        }
        let problems: Vec<String> = self
            .runbook
            .variables
            .iter()
            .filter_map(|v| validate_value(v, self.vars.get(&v.name).unwrap_or("")).err())
            .collect();
        if !problems.is_empty() {
            return Err(format!(
                "Fix the variables before starting: {}",
                problems.join("; ")
            ));
        }
        let rb = Arc::clone(&self.runbook);
        let o = self.opts.clone();
        let ev = Event::SessionStarted {
            session_id: o.session_id.clone(),
            runbook_id: rb.id.clone(),
            title: rb.title.clone(),
            version: rb.version.clone(),
            content_hash: rb.content_hash.clone(),
            environment: o.environment.clone(),
            operator: o.operator.clone(),
            rto_minutes: o.rto_minutes,
            rpo_minutes: o.rpo_minutes,
            declared_at: o.declared_at,
            drill: o.drill,
            dry_run: o.dry_run,
            two_person_rule: o.two_person_rule,
            review: rb.is_review(),
            variables: self.vars.redacted(),
            plan: o.plan.clone(),
        };
        let details = if o.dry_run {
            "dry run: no SQL is sent"
        } else {
            ""
        };
        self.emit(out, now, &o.operator, None, ev, details);
        for w in &o.security_warnings {
            let text = format!("security warning: {w}");
            self.emit(out, now, &o.operator, None, Event::Note { text }, "");
        }
        Ok(())
    }

    /// Whether step `i` may start now in `mode`.
    fn preflight(&self, i: usize, mode: Mode) -> Result<(), String> {
        self.require_writable()?;
        let step = self.step_at(i);
        let id = &step.id;
        let is_check = matches!(step.body, StepBody::Check(_));
        if mode == Mode::ReVerify && !is_check {
            return Err(format!(
                "Only check steps can be re-verified; `{id}` is a {} step.",
                step.kind_name()
            ));
        }
        match (&self.state.steps[i].state, mode) {
            (StepState::Pending, _) | (StepState::Failed { .. }, _) => {}
            (StepState::Passed | StepState::WouldRun, Mode::ReVerify) if is_check => {}
            (StepState::Running, _) => return Err(format!("Step `{id}` is already running.")),
            (StepState::Blocked { waiting_for }, _) => {
                return Err(format!(
                    "Step `{id}` waits for {}: finish those first (a skipped one must be reopened and run, or skip this step too).",
                    waiting_for.join(", ")
                ));
            }
            (StepState::NotApplicable { reason }, _) => {
                return Err(format!("Step `{id}` does not apply: {reason}."));
            }
            (StepState::InDoubt, _) => {
                return Err(format!(
                    "Step `{id}` is in doubt: resolve it first (verify, re-run or mark done)."
                ));
            }
            (s, _) => {
                return Err(format!(
                    "Step `{id}` is already finished ({}).{}",
                    s.label(),
                    if is_check {
                        " Use re-verify to run the check again."
                    } else {
                        ""
                    }
                ));
            }
        }
        for (j, other) in self.state.steps.iter().enumerate() {
            if j == i {
                continue;
            }
            let other_check = matches!(self.step_at(j).body, StepBody::Check(_));
            if other.state == StepState::Running && !(is_check && other_check) {
                return Err(format!(
                    "Step `{}` is running: wait for it to finish (only checks run side by side).",
                    other.id
                ));
            }
            if other.state == StepState::InDoubt && !is_check {
                return Err(format!(
                    "Step `{}` is in doubt: resolve it before running other steps (checks may still run).",
                    other.id
                ));
            }
        }
        Ok(())
    }

    fn run(
        &mut self,
        id: &str,
        mode: Mode,
        now: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        let i = self.lookup(id)?;
        if mode == Mode::Retry && !matches!(self.state.steps[i].state, StepState::Failed { .. }) {
            return Err(format!("Step `{id}` has not failed: use run."));
        }
        self.preflight(i, mode)?;
        self.selected = i;
        let step = self.step_at(i).clone();
        match &step.body {
            StepBody::Manual(_) => {
                out.push(Effect::AskManual {
                    step: step.id.clone(),
                });
                Ok(())
            }
            StepBody::Generate(g) => {
                let op = self.opts.operator.clone();
                let attempt = self.state.steps[i].attempts + 1;
                let rendered = self.render_generate(g);
                self.emit(
                    out,
                    now,
                    &op,
                    Some(id),
                    Event::StepStarted {
                        attempt,
                        statement: None,
                    },
                    "",
                );
                match rendered {
                    Ok((name, contents)) => {
                        self.live[i].rendered = Some(contents.clone());
                        out.push(Effect::WriteFile {
                            step: step.id.clone(),
                            name,
                            contents,
                        });
                    }
                    Err(error) => {
                        let ev = Event::StepFinished {
                            outcome: Outcome::Failed { error },
                            evidence: None,
                            assertions: vec![],
                            rows_affected: vec![],
                        };
                        self.emit(out, now, &op, Some(id), ev, "");
                    }
                }
                Ok(())
            }
            StepBody::Sql(_) | StepBody::Check(_) => {
                let statement = self.build_statement(&step, false)?;
                let shown = self.build_statement(&step, true)?;
                if step.is_destructive() {
                    let word = self.confirm_word(id).unwrap_or_default();
                    let approvals = self.state.steps[i].approvals.clone();
                    match approvals.first {
                        None => {
                            self.live[i].awaiting_confirm = true;
                            out.push(Effect::AskConfirmDestructive {
                                step: step.id.clone(),
                                word,
                            });
                            return Ok(());
                        }
                        Some(first) if self.opts.two_person_rule && approvals.second.is_none() => {
                            out.push(Effect::AskSecondOperator {
                                step: step.id.clone(),
                                first,
                            });
                            return Ok(());
                        }
                        Some(_) => {}
                    }
                }
                self.live[i].awaiting_confirm = false;
                let op = self.opts.operator.clone();
                if self.opts.dry_run {
                    self.emit(
                        out,
                        now,
                        &op,
                        Some(id),
                        Event::WouldRun {
                            statement: Some(shown.clone()),
                        },
                        "dry run: not sent",
                    );
                    out.push(Effect::WouldRun {
                        step: step.id.clone(),
                        statement: shown,
                    });
                    return Ok(());
                }
                let attempt = self.state.steps[i].attempts + 1;
                let request_id = self.next_request;
                self.next_request += 1;
                self.emit(
                    out,
                    now,
                    &op,
                    Some(id),
                    Event::StepStarted {
                        attempt,
                        statement: Some(shown),
                    },
                    "",
                );
                self.live[i].request_id = Some(request_id);
                self.live[i].progress = None;
                out.push(Effect::RunSql {
                    request_id,
                    step: step.id.clone(),
                    statement,
                });
                Ok(())
            }
        }
    }

    fn skip(
        &mut self,
        id: &str,
        reason: &str,
        by: &str,
        now: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        let i = self.lookup(id)?;
        self.require_open()?;
        if reason.trim().is_empty() {
            return Err(
                "Give a reason for skipping (it goes into the journal and the report).".into(),
            );
        }
        match &self.state.steps[i].state {
            StepState::Pending | StepState::Blocked { .. } | StepState::Failed { .. } => {}
            StepState::Running => {
                return Err(format!("Step `{id}` is running: wait for it to finish."));
            }
            StepState::InDoubt => {
                return Err(format!(
                    "Step `{id}` is in doubt: verify it, re-run it or mark it done."
                ));
            }
            StepState::NotApplicable { reason } => {
                return Err(format!("Step `{id}` does not apply anyway: {reason}."));
            }
            s => return Err(format!("Step `{id}` is already finished ({}).", s.label())),
        }
        let by = self.who(by);
        let reason = self.vars.redact(reason);
        self.emit(
            out,
            now,
            &by,
            Some(id),
            Event::Skipped {
                by: by.clone(),
                reason,
            },
            "",
        );
        self.live[i].awaiting_confirm = false;
        Ok(())
    }

    fn confirm_manual(
        &mut self,
        id: &str,
        by: &str,
        note: &str,
        evidence: &str,
        now: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        let i = self.lookup(id)?;
        let StepBody::Manual(m) = &self.step_at(i).body else {
            return Err(format!("Step `{id}` is not a manual step: run it instead."));
        };
        let wants_evidence = !m.evidence.trim().is_empty();
        let asked = m.evidence.clone();
        self.preflight(i, Mode::Run)?;
        if wants_evidence && evidence.trim().is_empty() {
            return Err(format!("Step `{id}` asks for evidence: {asked}"));
        }
        let by = self.who(by);
        let ev = Event::ManualConfirmed {
            by: by.clone(),
            note: self.vars.redact(note),
            evidence: self.vars.redact(evidence),
        };
        // `by` did it; the record's operator is who confirmed it at the keyboard.
        let op = self.opts.operator.clone();
        let details = if same_person(&by, &op) || op.trim().is_empty() {
            String::new()
        } else {
            format!("done by {by}; confirmed at the keyboard by {op}")
        };
        let op = if op.trim().is_empty() { by.clone() } else { op };
        self.emit(out, now, &op, Some(id), ev, &details);
        Ok(())
    }

    fn destructive_step(&self, id: &str) -> Result<usize, String> {
        let i = self.lookup(id)?;
        if !self.step_at(i).is_destructive() {
            return Err(format!(
                "Step `{id}` is not destructive: no confirmation is needed."
            ));
        }
        Ok(i)
    }

    fn confirm_destructive(
        &mut self,
        id: &str,
        typed: &str,
        by: &str,
        now: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        let i = self.destructive_step(id)?;
        self.preflight(i, Mode::Run)?;
        let step = self.step_at(i).clone();
        // Fail before the confirmation if the statement cannot be built.
        self.build_statement(&step, true)?;
        let word = self.confirm_word(id).unwrap_or_default();
        if typed != word {
            return Err(format!(
                "The word does not match: type `{word}` exactly (case-sensitive) to run step `{id}`, or cancel."
            ));
        }
        let by = self.who(by);
        if let Some(first) = &self.state.steps[i].approvals.first {
            if self.opts.two_person_rule {
                return Err(format!(
                    "`{first}` already confirmed step `{id}`: a second, different operator must approve."
                ));
            }
        } else {
            self.emit(
                out,
                now,
                &by,
                Some(id),
                Event::DestructiveConfirmed {
                    by: by.clone(),
                    second: false,
                    word: Some(word.clone()),
                },
                "",
            );
        }
        self.run(id, Mode::Run, now, out)
    }

    fn second_operator(
        &mut self,
        id: &str,
        by: &str,
        now: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        let i = self.destructive_step(id)?;
        if !self.opts.two_person_rule {
            return Err(
                "The two-person rule is off for this session: no second approval is needed.".into(),
            );
        }
        self.preflight(i, Mode::Run)?;
        let Some(first) = self.state.steps[i].approvals.first.clone() else {
            return Err(format!(
                "The first operator must type the confirm word for step `{id}` first."
            ));
        };
        if by.trim().is_empty() {
            return Err("The second operator must give their name.".into());
        }
        if same_person(by, &first) {
            return Err(format!(
                "`{first}` already confirmed step `{id}`: the second approval must come from a different operator."
            ));
        }
        if self.state.steps[i].approvals.second.is_some() {
            return self.run(id, Mode::Run, now, out);
        }
        let by = by.trim().to_string();
        self.emit(
            out,
            now,
            &by,
            Some(id),
            Event::DestructiveConfirmed {
                by: by.clone(),
                second: true,
                word: self.confirm_word(id),
            },
            "",
        );
        self.run(id, Mode::Run, now, out)
    }

    fn resolve(
        &mut self,
        id: &str,
        resolution: Resolution,
        now: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        let i = self.lookup(id)?;
        self.require_writable()?;
        if self.state.steps[i].state != StepState::InDoubt {
            return Err(format!("Step `{id}` is not in doubt."));
        }
        let op = self.opts.operator.clone();
        let is_check = matches!(self.step_at(i).body, StepBody::Check(_));
        match &resolution {
            Resolution::MarkDone { note } if note.trim().is_empty() => {
                return Err(
                    "Say how you verified the step took effect (it goes into the journal).".into(),
                );
            }
            Resolution::Verify if !is_check => {
                let checks: Vec<String> = self
                    .runbook
                    .steps()
                    .map(|(_, s)| s)
                    .skip(i + 1)
                    .filter(|s| matches!(s.body, StepBody::Check(_)))
                    .map(|s| s.id.clone())
                    .take(3)
                    .collect();
                if checks.is_empty() {
                    return Err(format!(
                        "No check in this runbook can tell whether `{id}` took effect: look on the server by hand, then choose re-run or mark done."
                    ));
                }
                // Journaled once: pressing Verify again only repeats the advice.
                if !self.live[i].verifying {
                    let ev = Event::InDoubtResolved {
                        by: op.clone(),
                        resolution: resolution.clone(),
                    };
                    self.emit(out, now, &op, Some(id), ev, "verifying on the server");
                }
                if let Some(first) = checks.first().and_then(|c| self.index.get(c)) {
                    self.selected = *first;
                }
                out.push(Effect::Notify {
                    text: format!(
                        "Check on the server whether step `{id}` took effect{}; then choose re-run or mark done.",
                        if checks.is_empty() { String::new() } else { format!(" (the checks {} can help)", checks.join(", ")) }
                    ),
                });
                return Ok(());
            }
            _ => {}
        }
        let resolution = match resolution {
            Resolution::MarkDone { note } => Resolution::MarkDone {
                note: self.vars.redact(&note),
            },
            r => r,
        };
        let rerun = !matches!(resolution, Resolution::MarkDone { .. });
        self.emit(
            out,
            now,
            &op,
            Some(id),
            Event::InDoubtResolved {
                by: op.clone(),
                resolution,
            },
            "",
        );
        if rerun {
            self.run(
                id,
                if is_check { Mode::ReVerify } else { Mode::Run },
                now,
                out,
            )?;
        }
        Ok(())
    }

    fn set_variable(
        &mut self,
        name: &str,
        value: &str,
        now: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        let var = self
            .runbook
            .variable(name)
            .ok_or_else(|| format!("The runbook has no variable `{name}`."))?
            .clone();
        validate_value(&var, value)?;
        if self.is_started() {
            self.require_open()?;
        }
        self.vars.declare(name, var.kind, Some(value.to_string()));
        if self.is_started() {
            let op = self.opts.operator.clone();
            let shown = self.vars.display(name);
            self.emit(
                out,
                now,
                &op,
                None,
                Event::VariableSet {
                    name: name.to_string(),
                    value: shown,
                },
                "",
            );
        } else {
            self.state.variables = self.vars.redacted();
            self.refresh();
        }
        Ok(())
    }

    fn sql_finished(
        &mut self,
        id: &str,
        request_id: u64,
        result: Result<QueryOutput, SqlError>,
        now: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        let i = self.lookup(id)?;
        if self.live[i].request_id != Some(request_id)
            || self.state.steps[i].state != StepState::Running
        {
            out.push(Effect::Notify {
                text: format!("Ignored a late result for step `{id}` (request {request_id})."),
            });
            return Ok(());
        }
        self.live[i].request_id = None;
        self.live[i].progress = None;
        let step = self.step_at(i).clone();
        // Rows beyond the journal's cap are said in the record's details (the assertions
        // were evaluated on every row).
        let total_rows = result
            .as_ref()
            .ok()
            .and_then(|o| o.first())
            .map_or(0, |s| s.rows.len());
        let details = if total_rows > MAX_EVIDENCE_ROWS {
            format!("evidence: the first {MAX_EVIDENCE_ROWS} of {total_rows} rows are journaled")
        } else {
            String::new()
        };
        let ev = match result {
            Ok(output) => match &step.body {
                StepBody::Check(c) => {
                    let set = output.first();
                    let get = |n: &str| self.vars.get(n).map(str::to_string);
                    let assertions: Vec<_> = c
                        .asserts
                        .iter()
                        .map(|a| {
                            let mut o = a.check(set, &get);
                            o.detail = self.vars.redact(&o.detail);
                            o
                        })
                        .collect();
                    let failed: Vec<&str> = assertions
                        .iter()
                        .filter(|a| !a.passed)
                        .map(|a| a.detail.as_str())
                        .collect();
                    let outcome = if failed.is_empty() {
                        Outcome::Passed
                    } else {
                        Outcome::Failed {
                            error: format!(
                                "{} of {} assertions failed: {}",
                                failed.len(),
                                assertions.len(),
                                failed.join(" | ")
                            ),
                        }
                    };
                    Event::StepFinished {
                        outcome,
                        evidence: Some(self.redact_set(set.cloned().unwrap_or_default())),
                        assertions,
                        rows_affected: output.rows_affected,
                    }
                }
                _ => Event::StepFinished {
                    outcome: Outcome::Passed,
                    evidence: output.first().cloned().map(|s| self.redact_set(s)),
                    assertions: vec![],
                    rows_affected: output.rows_affected,
                },
            },
            Err(e) => {
                let error = self.vars.redact(&e.to_string());
                let is_sql = matches!(step.body, StepBody::Sql(_));
                let unknown = match &e {
                    SqlError::Dropped { .. } => is_sql,
                    SqlError::Timeout { .. } | SqlError::Cancelled => step.is_destructive(),
                    _ => false,
                };
                let outcome = if unknown {
                    Outcome::InDoubt {
                        reason: format!("{error}: check on the server whether it took effect"),
                    }
                } else {
                    Outcome::Failed { error }
                };
                Event::StepFinished {
                    outcome,
                    evidence: None,
                    assertions: vec![],
                    rows_affected: vec![],
                }
            }
        };
        let op = self.opts.operator.clone();
        self.emit(out, now, &op, Some(id), ev, &details);
        Ok(())
    }

    fn generate_written(
        &mut self,
        id: &str,
        path: &str,
        now: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        let i = self.lookup(id)?;
        let StepBody::Generate(g) = &self.step_at(i).body else {
            return Err(format!("Step `{id}` is not a generate step."));
        };
        let output = g.output.clone();
        if self.state.steps[i].state != StepState::Running {
            return Err(format!("Step `{id}` is not being generated."));
        }
        let Some(contents) = self.live[i].rendered.as_deref() else {
            return Err(format!(
                "Step `{id}` has no rendered file: generate it again."
            ));
        };
        let sha256 = events::sha256_hex(contents.as_bytes());
        let name = self.render_name(&output).unwrap_or(output);
        let op = self.opts.operator.clone();
        self.emit(
            out,
            now,
            &op,
            Some(id),
            Event::GenerateWritten {
                name,
                path: path.to_string(),
                sha256,
            },
            "",
        );
        Ok(())
    }

    // ----- applying records (live and replay) --------------------------------------

    /// Applies one journal record: the only way journaled state changes.
    // TODO(issue 16): split (one applier per event kind).
    #[allow(clippy::too_many_lines)]
    pub fn apply(&mut self, r: &Record) -> Result<(), String> {
        let i = match &r.step {
            Some(id) => Some(self.index.get(id).copied().ok_or_else(|| {
                format!("the journal names step `{id}`, which this runbook does not have: load the runbook version the session was started with")
            })?),
            None => None,
        };
        let need_step = || i.ok_or_else(|| format!("`{}` without a step", r.event.name()));
        match &r.event {
            Event::SessionStarted {
                session_id,
                runbook_id,
                title,
                version,
                content_hash,
                environment,
                operator,
                rto_minutes,
                rpo_minutes,
                declared_at,
                drill,
                dry_run,
                two_person_rule,
                review: _,
                variables,
                plan,
            } => {
                if runbook_id != &self.runbook.id {
                    return Err(format!(
                        "the session ran runbook `{runbook_id}`, not `{}`",
                        self.runbook.id
                    ));
                }
                if content_hash != &self.runbook.content_hash {
                    return Err(format!(
                        "the session ran runbook `{runbook_id}` version {version} with content hash {content_hash}, but the loaded file hashes to {}: load the same runbook file",
                        self.runbook.content_hash
                    ));
                }
                for nv in variables {
                    self.restore_variable(&nv.name, &nv.value);
                }
                self.opts.dry_run = *dry_run;
                self.opts.two_person_rule = *two_person_rule;
                self.opts.session_id = session_id.clone();
                self.opts.environment = environment.clone();
                self.opts.drill = *drill;
                self.opts.rto_minutes = *rto_minutes;
                self.opts.rpo_minutes = *rpo_minutes;
                self.opts.declared_at = *declared_at;
                self.opts.plan = plan.clone();
                self.state.session = Some(SessionInfo {
                    session_id: session_id.clone(),
                    runbook_id: runbook_id.clone(),
                    title: title.clone(),
                    version: version.clone(),
                    content_hash: content_hash.clone(),
                    environment: environment.clone(),
                    operator: operator.clone(),
                    rto_minutes: *rto_minutes,
                    rpo_minutes: *rpo_minutes,
                    declared_at: *declared_at,
                    drill: *drill,
                    dry_run: *dry_run,
                    two_person_rule: *two_person_rule,
                    started_at: r.time,
                });
            }
            Event::VariableSet { name, value } => self.restore_variable(name, value),
            Event::StepStarted { attempt, statement } => {
                let idx = need_step()?;
                self.live[idx].rerun_chosen = false;
                self.live[idx].verifying = false;
                let s = &mut self.state.steps[idx];
                s.state = StepState::Running;
                s.attempts = *attempt;
                s.started_at = Some(r.time);
                s.finished_at = None;
                s.statement = statement.clone();
                s.evidence = None;
                s.assertions.clear();
                s.rows_affected.clear();
                s.generated = None;
            }
            Event::StepFinished {
                outcome,
                evidence,
                assertions,
                rows_affected,
            } => {
                let s = &mut self.state.steps[need_step()?];
                s.state = match outcome {
                    Outcome::Passed => StepState::Passed,
                    Outcome::Failed { error } => StepState::Failed {
                        error: error.clone(),
                    },
                    Outcome::InDoubt { .. } => StepState::InDoubt,
                };
                s.finished_at = Some(r.time);
                s.evidence = evidence.clone();
                s.assertions = assertions.clone();
                s.rows_affected = rows_affected.clone();
                s.approvals = Approvals::default();
            }
            Event::WouldRun { statement } => {
                let s = &mut self.state.steps[need_step()?];
                s.state = StepState::WouldRun;
                s.statement = statement.clone();
                s.started_at = Some(r.time);
                s.finished_at = Some(r.time);
                s.approvals = Approvals::default();
            }
            Event::ManualConfirmed { by, note, evidence } => {
                let s = &mut self.state.steps[need_step()?];
                s.state = StepState::Done {
                    by: by.clone(),
                    note: note.clone(),
                    evidence: evidence.clone(),
                };
                s.finished_at = Some(r.time);
            }
            Event::Skipped { by, reason } => {
                let s = &mut self.state.steps[need_step()?];
                s.state = StepState::Skipped {
                    reason: reason.clone(),
                    by: by.clone(),
                };
                s.finished_at = Some(r.time);
                s.approvals = Approvals::default();
            }
            Event::DestructiveConfirmed { by, second, .. } => {
                let s = &mut self.state.steps[need_step()?];
                if *second {
                    s.approvals.second = Some(by.clone());
                } else {
                    s.approvals.first = Some(by.clone());
                }
            }
            Event::InDoubtResolved { by, resolution } => {
                let idx = need_step()?;
                let is_check = matches!(self.step_at(idx).body, StepBody::Check(_));
                let s = &mut self.state.steps[idx];
                match resolution {
                    Resolution::Verify if !is_check => self.live[idx].verifying = true,
                    Resolution::Verify | Resolution::Rerun => {
                        s.state = StepState::Pending;
                        s.approvals = Approvals::default();
                        self.live[idx].rerun_chosen = true;
                    }
                    Resolution::MarkDone { note } => {
                        self.live[idx].verifying = false;
                        s.state = StepState::Done {
                            by: by.clone(),
                            note: note.clone(),
                            evidence: String::new(),
                        };
                        s.finished_at = Some(r.time);
                        s.approvals = Approvals::default();
                    }
                }
            }
            Event::GenerateWritten { name, path, sha256 } => {
                let s = &mut self.state.steps[need_step()?];
                s.state = StepState::Passed;
                s.finished_at = Some(r.time);
                s.generated = Some(GeneratedFile {
                    name: name.clone(),
                    path: path.clone(),
                    sha256: sha256.clone(),
                });
            }
            Event::Note { text } => self.state.notes.push(NoteEntry {
                at: r.time,
                by: r.operator.clone(),
                step: r.step.clone(),
                text: text.clone(),
            }),
            Event::Reopened { .. } => {
                let idx = need_step()?;
                let s = &mut self.state.steps[idx];
                // Back to pending; `refresh` makes it blocked if its own dependencies wait.
                s.state = StepState::Pending;
                s.finished_at = None;
                s.approvals = Approvals::default();
                self.live[idx] = StepLive::default();
            }
            Event::SignedOff { name, role, .. } => self.state.signoffs.push(SignOff {
                name: name.clone(),
                role: role.clone(),
                at: r.time,
            }),
            Event::Resumed { .. } => self.mark_running_in_doubt(),
            Event::SessionClosed {} => {
                self.state.closed = true;
                self.state.ended_at = self.state.ended_at.or(Some(r.time));
            }
            Event::Aborted { reason } => {
                self.state.aborted = Some(reason.clone());
                self.state.ended_at = self.state.ended_at.or(Some(r.time));
            }
        }
        self.state.records += 1;
        self.state.last_activity = Some(r.time);
        self.state.variables = self.vars.redacted();
        self.refresh();
        Ok(())
    }

    /// Takes a recorded value unless it is a redacted secret (the caller supplies those).
    fn restore_variable(&mut self, name: &str, value: &str) {
        let secret = self.vars.is_secret(name)
            || self
                .runbook
                .variable(name)
                .is_some_and(|v| v.kind == crate::runbook::model::VarKind::Secret);
        if secret {
            return;
        }
        match self.runbook.variable(name) {
            Some(v) => self.vars.declare(name, v.kind, Some(value.to_string())),
            None => {
                self.vars.set(name, value);
            }
        }
    }

    /// After a restart: steps that were running, and steps whose re-run was chosen but never
    /// started, are in doubt.
    fn mark_running_in_doubt(&mut self) {
        for (s, l) in self.state.steps.iter_mut().zip(self.live.iter_mut()) {
            let rerun_unstarted = l.rerun_chosen && s.state == StepState::Pending;
            if s.state == StepState::Running || rerun_unstarted {
                s.state = StepState::InDoubt;
                l.request_id = None;
                l.progress = None;
                l.rerun_chosen = false;
                l.awaiting_confirm = false;
            }
        }
    }

    /// Recomputes Pending / Blocked / NotApplicable from variables and dependencies.
    fn refresh(&mut self) {
        let get = |n: &str| self.vars.get(n).map(str::to_string);
        // A dry run sends nothing, so a skipped (not performed) manual step lets the
        // statements after it be shown.
        let frees = |s: &StepState| {
            s.frees_dependants() || (self.opts.dry_run && matches!(s, StepState::Skipped { .. }))
        };
        let mut derived = Vec::new();
        for (i, (sec, step)) in self.runbook.steps().enumerate() {
            let cur = &self.state.steps[i].state;
            if !matches!(
                cur,
                StepState::Pending | StepState::Blocked { .. } | StepState::NotApplicable { .. }
            ) {
                continue;
            }
            let new = if let Some(c) = sec.when.as_ref().filter(|c| !c.eval(&get)) {
                StepState::NotApplicable {
                    reason: format!("section `{}` applies only when {c}", sec.id),
                }
            } else if let Some(c) = step.when.as_ref().filter(|c| !c.eval(&get)) {
                StepState::NotApplicable {
                    reason: format!("it applies only when {c}"),
                }
            } else {
                let waiting_for: Vec<String> = step
                    .after
                    .iter()
                    .filter(|d| {
                        !self
                            .index
                            .get(d.as_str())
                            .is_some_and(|&j| frees(&self.state.steps[j].state))
                    })
                    .cloned()
                    .collect();
                if waiting_for.is_empty() {
                    StepState::Pending
                } else {
                    StepState::Blocked { waiting_for }
                }
            };
            derived.push((i, new));
        }
        // A step can unblock another only by finishing, and derived states never count as
        // finished except NotApplicable, so one more pass settles chains through N/A steps.
        let changed = derived
            .iter()
            .any(|(i, n)| &self.state.steps[*i].state != n);
        for (i, n) in derived {
            self.state.steps[i].state = n;
        }
        if changed {
            self.refresh();
        }
    }

    // ----- statements and templates ------------------------------------------------

    fn var_value(&self, name: &str, redact: bool) -> Result<String, String> {
        let v = self
            .vars
            .get(name)
            .ok_or_else(|| format!("variable `{name}` has no value: set it first"))?;
        Ok(if redact && self.vars.is_secret(name) {
            REDACTED.to_string()
        } else {
            v.to_string()
        })
    }

    fn render_database(&self, src: &str) -> Result<String, String> {
        let mut out = String::new();
        for p in expr::parse_template(src)? {
            match p {
                Part::Lit(s) => out.push_str(&s),
                Part::Var(v) | Part::Ident(v) => out.push_str(&self.var_value(&v, false)?),
                Part::Each(..) => {
                    return Err("`{{#each}}` is not allowed in a database name".into());
                }
            }
        }
        Ok(out)
    }

    /// `{{ident:var}}` becomes a quoted identifier; parameters are bound from variables.
    /// Values are never spliced into the SQL text.
    fn build_statement(&self, step: &Step, redact: bool) -> Result<Statement, String> {
        let Some((role, database, sql, params, timeout_secs)) = step.statement() else {
            return Err(format!("Step `{}` has no statement.", step.id));
        };
        let long_running = matches!(&step.body, StepBody::Sql(s) if s.long_running);
        let ctx = |e: String| format!("Step `{}`: {e}", step.id);
        let mut text = String::new();
        for p in expr::parse_template(sql).map_err(ctx)? {
            match p {
                Part::Lit(s) => text.push_str(&s),
                Part::Ident(v) => text.push_str(&expr::quote_ident(
                    &self.var_value(&v, redact).map_err(ctx)?,
                )),
                Part::Var(v) => {
                    return Err(ctx(format!(
                        "`{{{{{v}}}}}` in SQL text is not allowed: bind it as a parameter (@{v}) or use {{{{ident:{v}}}}}"
                    )));
                }
                Part::Each(..) => return Err(ctx("`{{#each}}` is not allowed in SQL text".into())),
            }
        }
        let database = if redact {
            self.render_database(database).map(|d| self.vars.redact(&d))
        } else {
            self.render_database(database)
        }
        .map_err(ctx)?;
        let mut bound = Vec::new();
        for name in params {
            let p = self.vars.param(name).map_err(ctx)?;
            let p = if redact && self.vars.is_secret(name) {
                Param::Text(REDACTED.to_string())
            } else {
                p
            };
            bound.push((name.clone(), p));
        }
        Ok(Statement {
            role,
            database,
            sql: text,
            params: bound,
            timeout_secs,
            long_running,
        })
    }

    fn render_name(&self, src: &str) -> Result<String, String> {
        let get = |n: &str| self.vars.get(n).map(str::to_string);
        let parts = expr::parse_template(src)?;
        expr::render_template(&parts, &|s: &str| s.to_string(), &get, &|_| None)
    }

    fn render_generate(
        &self,
        g: &crate::runbook::model::Generate,
    ) -> Result<(String, String), String> {
        let name = self
            .render_name(&g.output)
            .map_err(|e| format!("cannot name the output file: {e}"))?;
        let parts = expr::parse_template(&g.template)
            .map_err(|e| format!("the template is invalid: {e}"))?;
        let get = |n: &str| self.vars.get(n).map(str::to_string);
        let rows = |step: &str| -> Option<ResultSet> {
            let run = self.step_run(step)?;
            match run.state {
                StepState::Passed => run.evidence.clone(),
                StepState::WouldRun => Some(ResultSet::default()),
                _ => None,
            }
        };
        let contents = match g.escape {
            Escape::Text => expr::render_template(&parts, &|s: &str| s.to_string(), &get, &rows),
            Escape::Xml => expr::render_template(&parts, &expr::escape_xml, &get, &rows),
            Escape::Sql => {
                expr::render_template(&parts, &|s: &str| s.replace('\'', "''"), &get, &rows)
            }
        }
        .map_err(|e| format!("cannot render the file: {e}"))?;
        Ok((name, contents))
    }

    fn redact_set(&self, mut set: ResultSet) -> ResultSet {
        set.rows.truncate(MAX_EVIDENCE_ROWS);
        set.rows = set.rows.map_values(|v| match v {
            ValueRef::Text(s) if self.vars.contains_secret(s) => Value::Text(self.vars.redact(s)),
            other => other.to_value(),
        });
        set
    }
}

#[cold]
fn unreachable_step() -> &'static Step {
    // The index is built from the runbook, so a lookup cannot miss; keep a value anyway
    // rather than panicking.
    static EMPTY: std::sync::OnceLock<Step> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Step {
        id: String::new(),
        title: String::new(),
        why: String::new(),
        references: vec![],
        covers: vec![],
        when: None,
        after: vec![],
        ask: vec![],
        discover: vec![],
        body: StepBody::Manual(crate::runbook::model::Manual {
            run_on: String::new(),
            instructions: String::new(),
            commands: vec![],
            evidence: String::new(),
        }),
        loc: crate::runbook::model::Loc::default(),
    })
}

#[cfg(test)]
mod tests;
