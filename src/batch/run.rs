//! `btsdr run RUNBOOK --batch`: runs the automatable steps in order without a UI.
//!
//! Stops (exit 3) at the first manual step, and at destructive steps unless
//! `--allow-destructive`; a failed or in-doubt step stops with exit 1. Steps listed under
//! `[skip]` in the answers file are skipped with their reason journaled. `--dry-run` prints
//! every statement with its parameters (secrets as `******`), sends nothing, and skips manual
//! steps (and destructive ones without `--allow-destructive`) with a journaled reason.
//! Every journaled record is printed as `#SEQ event step` after it was fsynced.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use super::answers::{Answers, resolve_variables};
use super::driver::{Driver, Happened};
use super::{Target, error_advice, exit};
use crate::engine::events::REDACTED;
use crate::engine::{Engine, EngineOptions, Input, NextAction, StepState};
use crate::journal::create_session;
use crate::runbook::expr::render_text;
use crate::runbook::model::{Runbook, StepBody};
use btsdr_types::{Param, SqlError, Statement};

/// Everything a batch run needs, already resolved by the CLI.
pub struct RunOptions {
    pub runbook: Arc<Runbook>,
    pub target: Target,
    pub data_dir: PathBuf,
    pub operator: String,
    /// `--answers FILE`, parsed.
    pub answers: Answers,
    /// `--set NAME=VALUE`, in order (override the answers file).
    pub sets: Vec<(String, String)>,
    pub dry_run: bool,
    pub allow_destructive: bool,
}

/// What the batch run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// 0 finished, 1 a step failed / in doubt, 2 setup error, 3 stopped for an operator.
    pub code: u8,
    pub session_id: Option<String>,
    pub journal: Option<PathBuf>,
    /// The step it stopped at (codes 1 and 3).
    pub stopped_at: Option<String>,
}

/// A statement as printed by dry runs: the SQL, then each parameter (secrets `******`).
pub(crate) fn format_statement(s: &Statement) -> String {
    let mut t = format!("  -- on {} in [{}]\n", s.role, s.database);
    for l in s.sql.trim_end().lines() {
        t.push_str("  ");
        t.push_str(l);
        t.push('\n');
    }
    for (name, p) in &s.params {
        let v = match p {
            Param::Text(x) if x == REDACTED => REDACTED.to_string(),
            p => p.to_string(),
        };
        t.push_str(&format!("  -- @{name} = {v}\n"));
    }
    t
}

struct Out<'a> {
    out: &'a mut (dyn Write + Send),
    failed: Option<(String, Option<SqlError>)>,
}

impl Out<'_> {
    fn line(&mut self, s: &str) {
        crate::wln!(self.out, "{s}");
        let _ = self.out.flush();
    }

    fn show(&mut self, hs: Vec<Happened>) -> Vec<Happened> {
        let mut rest = Vec::new();
        for h in hs {
            match &h {
                Happened::Journaled { seq, step, event } => {
                    let s = step.as_deref().unwrap_or("");
                    self.line(format!("#{seq} {event} {s}").trim_end());
                }
                Happened::WouldRun { step, statement } => {
                    self.line(&format!(
                        "would run {step}:\n{}",
                        format_statement(statement)
                    ));
                }
                Happened::Finished {
                    step,
                    error: Some(e),
                    ..
                } => self.failed = Some((step.clone(), Some(e.clone()))),
                Happened::Notify(t) => self.line(&format!("note: {t}")),
                _ => rest.push(h),
            }
        }
        rest
    }
}

/// Runs the batch; output (journal lines, dry-run statements, where it stopped) goes to
/// `out`, errors to `err`.
// TODO(issue 16): split (setup, the step loop, the summary).
#[allow(clippy::too_many_lines)]
pub async fn run_batch(
    opts: RunOptions,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> RunSummary {
    let rb = Arc::clone(&opts.runbook);
    let mut summary = RunSummary {
        code: exit::SETUP,
        session_id: None,
        journal: None,
        stopped_at: None,
    };
    let vars = match resolve_variables(&rb, &opts.answers, &opts.sets, &opts.target.defaults) {
        Ok(v) => v,
        Err(e) => {
            crate::wln!(err, "error: {e}");
            return summary;
        }
    };
    if let Some(m) = super::answers::missing(&rb, &vars, None) {
        crate::wln!(err, "error: {m}");
        return summary;
    }
    let (session_id, journal) = match create_session(&opts.data_dir, chrono::Utc::now(), &rb.id) {
        Ok(x) => x,
        Err(e) => {
            crate::wln!(err, "error: cannot create the session journal: {e}");
            return summary;
        }
    };
    summary.session_id = Some(session_id.clone());
    summary.journal = Some(journal.path().to_path_buf());
    let files_dir =
        crate::journal::sessions_dir(&opts.data_dir).join(format!("{session_id}.files"));
    let engine = Engine::new(
        Arc::clone(&rb),
        vars,
        EngineOptions {
            dry_run: opts.dry_run,
            operator: opts.operator.clone(),
            session_id: session_id.clone(),
            environment: opts.target.environment.clone(),
            drill: opts.target.drill,
            security_warnings: opts.target.warnings.clone(),
            ..EngineOptions::default()
        },
    );
    let mut d = Driver::new(
        engine,
        journal,
        Arc::clone(&opts.target.executor),
        files_dir,
    );
    d.follow_drill(opts.target.drill_hands.clone());
    let mut o = Out { out, failed: None };
    o.line(&format!(
        "session {session_id}: runbook {} v{} on {} as {}{} (journal {})",
        rb.id,
        rb.version,
        opts.target.environment,
        opts.operator,
        if opts.dry_run {
            ", dry run: nothing is sent"
        } else {
            ""
        },
        d.journal_path().display()
    ));
    let resume = format!(
        "Resume later in the UI: run `btsdr` and resume session {session_id} (see `btsdr sessions`)."
    );
    for h in o.show(d.send(Input::Start)) {
        if let Happened::Refused(t) | Happened::JournalFailed(t) = h {
            crate::wln!(err, "error: {t}");
            return summary;
        }
    }

    let total = d.engine().counts().applicable();
    let mut stalls = 0;
    loop {
        if let Some(e) = d.halted() {
            crate::wln!(err, "error: {e}\n{resume}");
            summary.code = exit::SETUP;
            return summary;
        }
        let Some(next) = d.engine().next_step() else {
            let blocked: Vec<String> = d
                .engine()
                .state()
                .steps
                .iter()
                .filter(|s| matches!(s.state, StepState::Blocked { .. }))
                .map(|s| s.id.clone())
                .collect();
            crate::wln!(
                err,
                "error: nothing more can run: steps {} wait for steps that did not finish.\n{resume}",
                blocked.join(", ")
            );
            summary.code = exit::FAILED;
            return summary;
        };
        let Some(id) = next.step.clone() else {
            let c = d.engine().counts();
            if opts.dry_run {
                // Nothing was done, so there is nothing to sign: the session is closed.
                let text = format!(
                    "dry run finished: {} applicable steps: {} would run, {} skipped, {} passed; nothing was sent to any server",
                    c.applicable(),
                    c.would_run,
                    c.skipped,
                    c.passed
                );
                o.show(d.send(Input::Note {
                    step: None,
                    text: text.clone(),
                }));
                o.show(d.send(Input::Close));
                if let Some(e) = d.halted() {
                    crate::wln!(err, "error: {e}");
                    summary.code = exit::SETUP;
                    return summary;
                }
                o.line(&format!(
                    "{text}. Session {session_id} closed (its journal lists every statement; `btsdr report {session_id}` prints them)."
                ));
                summary.code = exit::OK;
                return summary;
            }
            o.line(&format!(
                "finished: all {} applicable steps are done ({} passed, {} would run, {} done, {} skipped). Sign off in the UI: run `btsdr` and resume session {session_id}.",
                c.applicable(),
                c.passed,
                c.would_run,
                c.done,
                c.skipped
            ));
            summary.code = exit::OK;
            return summary;
        };
        let Some(step) = rb.step(&id).cloned() else {
            summary.code = exit::FAILED;
            return summary;
        };
        let records_before = d.engine().state().records;
        let done = d.engine().counts().finished();
        let skip = |d: &mut Driver, o: &mut Out, reason: &str| {
            o.line(&format!("[{}/{total}] {id}: skipped: {reason}", done + 1));
            let hs = d.send(Input::Skip {
                step: id.clone(),
                reason: reason.to_string(),
                by: opts.operator.clone(),
            });
            for h in o.show(hs) {
                if let Happened::Refused(t) = h {
                    o.line(&format!("refused: {t}"));
                }
            }
        };
        match next.action {
            NextAction::SignOff => {}
            NextAction::Wait => {
                if let Some(hs) = d.next().await {
                    o.show(hs);
                }
                continue;
            }
            NextAction::ResolveInDoubt | NextAction::RetryOrSkip => {
                let why = match d.engine().step_state(&id) {
                    Some(StepState::Failed { error }) => format!("failed: {error}"),
                    _ => "is in doubt: the outcome on the server is unknown; check on the server whether it took effect".into(),
                };
                crate::wln!(err, "stopped: step {id} ({}) {why}", step.title);
                if let Some((s, Some(e))) = &o.failed
                    && s == &id
                {
                    crate::wln!(err, "what to do: {}", error_advice(e));
                }
                crate::wln!(err, "{resume}");
                summary.code = exit::FAILED;
                summary.stopped_at = Some(id);
                return summary;
            }
            _ if opts.answers.skip.contains_key(&id) => {
                let reason = format!("{} (answers file)", opts.answers.skip[&id]);
                skip(&mut d, &mut o, &reason);
            }
            NextAction::ConfirmManual if opts.dry_run => {
                skip(&mut d, &mut o, "dry run: manual step not performed");
            }
            NextAction::ConfirmManual => {
                crate::w!(o.out, "{}", manual_text(&d, &id));
                o.line(&format!(
                    "stopped at manual step {id}: do it, then confirm it in the UI. {resume}"
                ));
                summary.code = exit::NEEDS_OPERATOR;
                summary.stopped_at = Some(id);
                return summary;
            }
            NextAction::SecondOperator { .. } => {
                o.line(&format!(
                    "stopped at step {id}: a second operator must approve it in the UI. {resume}"
                ));
                summary.code = exit::NEEDS_OPERATOR;
                summary.stopped_at = Some(id);
                return summary;
            }
            NextAction::ConfirmDestructive { .. } | NextAction::Run
                if step.is_destructive() && !opts.allow_destructive =>
            {
                let shown = d
                    .engine()
                    .preview_statement(&id)
                    .map(|s| format_statement(&s))
                    .unwrap_or_else(|e| format!("  ({e})\n"));
                if opts.dry_run {
                    o.line(&format!(
                        "destructive step {id} ({}), not confirmed:\n{shown}",
                        step.title
                    ));
                    skip(
                        &mut d,
                        &mut o,
                        "dry run: destructive step shown, not confirmed (no --allow-destructive)",
                    );
                } else {
                    o.line(&format!(
                        "stopped before destructive step {id} ({}):\n{shown}Run it in the UI (it asks for the confirm word), or run the batch again with --allow-destructive. {resume}",
                        step.title
                    ));
                    summary.code = exit::NEEDS_OPERATOR;
                    summary.stopped_at = Some(id);
                    return summary;
                }
            }
            NextAction::ConfirmDestructive { word } => {
                let hs = d.send(Input::Note {
                    step: Some(id.clone()),
                    text: format!(
                        "destructive step confirmed by the batch operator {} via --allow-destructive",
                        opts.operator
                    ),
                });
                o.show(hs);
                o.line(&format!(
                    "[{}/{total}] {id}: {} (destructive, confirmed via --allow-destructive)",
                    done + 1,
                    step.title
                ));
                let hs = d.send(Input::ConfirmDestructive {
                    step: id.clone(),
                    typed: word,
                    by: opts.operator.clone(),
                });
                report_refusals(&mut o, hs);
            }
            NextAction::Run => {
                o.line(&format!("[{}/{total}] {id}: {}", done + 1, step.title));
                let hs = d.send(Input::Run(id.clone()));
                report_refusals(&mut o, hs);
            }
        }
        while d.in_flight() > 0 {
            match d.next().await {
                Some(hs) => {
                    o.show(hs);
                }
                None => break,
            }
        }
        // Outcome line for the step just handled.
        if let Some(s) = d.engine().step_state(&id)
            && d.engine().state().records != records_before
        {
            match s {
                StepState::Passed | StepState::WouldRun | StepState::Done { .. } => {
                    o.line(&format!("  {id}: {}", s.label()))
                }
                StepState::Failed { error } => o.line(&format!("  {id}: failed: {error}")),
                _ => {}
            }
        }
        if d.engine().state().records == records_before && d.in_flight() == 0 {
            stalls += 1;
            if stalls > 2 {
                crate::wln!(
                    err,
                    "error: step {id} cannot go on in a batch (see the messages above).\n{resume}"
                );
                summary.code = exit::FAILED;
                summary.stopped_at = Some(id);
                return summary;
            }
        } else {
            stalls = 0;
        }
    }
}

fn report_refusals(o: &mut Out, hs: Vec<Happened>) {
    for h in o.show(hs) {
        if let Happened::Refused(t) = h {
            o.line(&format!("refused: {t}"));
        }
    }
}

/// What a manual step needs, for the operator reading the batch log.
fn manual_text(d: &Driver, id: &str) -> String {
    let engine = d.engine();
    let Some(step) = engine.runbook().step(id) else {
        return String::new();
    };
    let StepBody::Manual(m) = &step.body else {
        return String::new();
    };
    let vars = engine.variables();
    let get = |n: &str| vars.get(n).map(|_| vars.display(n));
    let mut t = format!("\nmanual step {id}: {}\n", step.title);
    if !m.run_on.is_empty() {
        t.push_str(&format!("  run on: {}\n", render_text(&m.run_on, &get)));
    }
    for l in render_text(&m.instructions, &get).lines() {
        t.push_str(&format!("  {l}\n"));
    }
    for c in &m.commands {
        t.push_str(&format!("  [{}] {}\n", c.shell, render_text(&c.run, &get)));
    }
    if !m.evidence.is_empty() {
        t.push_str(&format!("  evidence to record: {}\n", m.evidence));
    }
    t
}
