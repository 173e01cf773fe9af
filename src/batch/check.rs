//! `btsdr check`: runs a runbook's read-only health checks against an environment, all at
//! once (the executor serialises per role, so different roles run in parallel), journals
//! them as a session and prints a table or JSON Lines (`docs/CHECK_JSON.md`).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::answers::{Answers, missing, resolve_variables};
use super::driver::{Driver, Happened};
use super::{Target, could_not_run, error_advice, exit};
use crate::engine::{Engine, EngineOptions, Input, StepState, Variables, validate_value};
use crate::journal::create_session;
use crate::runbook::expr::{Part, parse_template};
use crate::runbook::model::{Runbook, Step, StepBody};
use btsdr_types::{ResultSet, Row, SqlError, ValueRef};

/// Version of the JSON object layout (bumped only on incompatible changes).
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// Value given to required variables that no selected check uses (the engine wants every
/// required variable set before a session starts). Journaled as is.
pub(crate) const NOT_USED: &str = "(not used by btsdr check)";

/// How progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressStyle {
    /// One line rewritten in place (stderr is a terminal).
    Live,
    /// One plain line per start and finish (logs, schedulers).
    Lines,
    Quiet,
}

impl ProgressStyle {
    /// `Live` when stderr is a terminal, else `Quiet`: logs and schedulers get the results
    /// and the summary, not a line per check.
    pub(crate) fn detect() -> ProgressStyle {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            ProgressStyle::Live
        } else {
            ProgressStyle::Quiet
        }
    }
}

/// Everything `check` needs, already resolved by the CLI.
pub struct CheckOptions {
    pub runbook: Arc<Runbook>,
    pub target: Target,
    /// The data folder (sessions are journaled under it).
    pub data_dir: PathBuf,
    pub operator: String,
    /// `--only`: run exactly these check ids (health = false and opt-in checks included).
    pub only: Vec<String>,
    /// `--include-opt-in`: also run expensive checks such as RESTORE VERIFYONLY.
    pub include_opt_in: bool,
    /// `--json`: JSON Lines on the output instead of a table.
    pub json: bool,
    /// `--set NAME=VALUE`, in order.
    pub sets: Vec<(String, String)>,
    /// `--answers FILE`, already parsed (`Answers::default()` when not given).
    pub answers: Answers,
    pub progress: ProgressStyle,
    /// `--keep-open`: leave the session open to continue the review in the UI.
    pub keep_open: bool,
    /// Columns of the terminal the table goes to (lines are cut to fit); `None`: full lines
    /// (stdout is a pipe or a file).
    pub width: Option<usize>,
}

/// The width of the terminal on stdout, when stdout is one.
pub(crate) fn stdout_width() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    crossterm::terminal::size()
        .ok()
        .map(|(w, _)| usize::from(w))
        .filter(|w| *w >= 20)
}

/// `text` in lines of at most `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// `line` cut to `width` columns, ending in `…` when cut.
fn fit(line: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let mut out = String::new();
    let mut used = 0;
    let total: usize = line.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= width {
        return line.to_string();
    }
    for c in line.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// The check could not run (connection, login, permission, timeout).
    Error,
    NotApplicable,
    /// Not run: opt-in without `--include-opt-in`, or waiting for another step.
    Skipped,
}

impl CheckStatus {
    pub fn label(self) -> &'static str {
        match self {
            CheckStatus::Pass => "PASS",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Error => "ERROR",
            CheckStatus::NotApplicable => "N/A",
            CheckStatus::Skipped => "SKIPPED",
        }
    }
}

/// Result rows as JSON values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Rows past the result cap (`max_result_rows` / `max_result_mib`): counted, not kept.
    #[serde(skip_serializing_if = "is_zero")]
    pub rows_not_kept: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssertionResult {
    pub source: String,
    pub passed: bool,
    pub detail: String,
}

/// One check's outcome: one JSON line (`docs/CHECK_JSON.md`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub schema_version: u32,
    pub session: String,
    pub id: String,
    pub title: String,
    pub runbook: String,
    pub server_role: String,
    pub server: String,
    pub status: CheckStatus,
    /// Time the query ran (null when it did not run).
    pub duration_ms: Option<u64>,
    pub evidence_line: String,
    pub evidence: Option<Evidence>,
    pub assertions: Vec<AssertionResult>,
    pub error: Option<String>,
    pub advice: Vec<String>,
}

/// What `check` did.
#[derive(Debug, Clone)]
pub struct CheckSummary {
    /// Process exit code: 0 all pass, 1 a check failed, 2 checks could not run or setup error.
    pub code: u8,
    pub session_id: Option<String>,
    pub journal: Option<PathBuf>,
    pub results: Vec<CheckResult>,
    pub elapsed: Duration,
}

impl CheckSummary {
    fn setup_error(err: &mut dyn Write, msg: &str, started: Instant) -> CheckSummary {
        crate::wln!(err, "error: {msg}");
        CheckSummary {
            code: exit::SETUP,
            session_id: None,
            journal: None,
            results: vec![],
            elapsed: started.elapsed(),
        }
    }
}

/// Variables a check step reads: parameters, templates in its SQL, database and assertion
/// messages, assertion operands and `when` conditions (its own and its section's).
fn used_variables(rb: &Runbook, step: &Step) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    fn template_vars(src: &str, add: &mut dyn FnMut(&str)) {
        fn walk(parts: &[Part], add: &mut dyn FnMut(&str)) {
            for p in parts {
                match p {
                    Part::Var(v) | Part::Ident(v) => add(v),
                    Part::Each(_, inner) => walk(inner, add),
                    Part::Lit(_) => {}
                }
            }
        }
        if let Ok(parts) = parse_template(src) {
            walk(&parts, add);
        }
    }
    if let StepBody::Check(c) = &step.body {
        c.params.iter().for_each(|p| add(p));
        template_vars(&c.sql, &mut add);
        template_vars(&c.database, &mut add);
        for a in &c.asserts {
            a.variables().into_iter().for_each(&mut add);
            template_vars(&a.message, &mut add);
        }
    }
    if let Some(c) = &step.when {
        c.variables().into_iter().for_each(&mut add);
    }
    if let Some(c) = rb.section_of(&step.id).and_then(|s| s.when.as_ref()) {
        c.variables().into_iter().for_each(&mut add);
    }
    out
}

fn json_value(v: ValueRef<'_>) -> serde_json::Value {
    match v {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Bool(b) => b.into(),
        ValueRef::Int(i) => i.into(),
        ValueRef::Float(f) => serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .unwrap_or_else(|| f.to_string().into()),
        other => other.to_string().into(),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// What a capped result says about itself: how many rows were kept and how many were not.
pub(crate) fn cap_note(set: &ResultSet) -> String {
    format!(
        "result cap reached: {} rows kept, {} more received and not kept (max_result_rows / max_result_mib)",
        set.rows.len(),
        set.not_kept
    )
}

/// The evidence in one line: `no rows`, `col=v, col=v`, or `N rows; first: col=v, ...`.
pub fn evidence_line(set: &ResultSet) -> String {
    let row = |r: Row<'_>| {
        set.columns
            .iter()
            .zip(r)
            .map(|(c, v)| format!("{}={}", c.name, one_line(&v.to_string())))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let s = match (set.rows.len(), set.rows.first()) {
        (_, None) => "no rows".to_string(),
        (1, Some(r)) => row(r),
        (n, Some(r)) => format!("{n} rows; first: {}", row(r)),
    };
    if set.not_kept > 0 {
        // Said first: the line is cut at 240 characters.
        return truncate(&format!("{}; {s}", cap_note(set)), 240);
    }
    truncate(&s, 240)
}

struct Planned {
    id: String,
    status: Option<(CheckStatus, String)>,
}

/// Runs the checks and writes the results to `out` (table or JSON Lines); progress and
/// errors go to `err`.
pub async fn check(
    opts: CheckOptions,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> CheckSummary {
    let started = Instant::now();
    let rb = Arc::clone(&opts.runbook);
    let selected = match select_checks(&rb, &opts) {
        Ok(s) => s,
        Err(e) => return CheckSummary::setup_error(err, &e, started),
    };
    let vars = match check_variables(&rb, &opts, &selected) {
        Ok(v) => v,
        Err(e) => return CheckSummary::setup_error(err, &e, started),
    };

    // The session.
    let now = chrono::Utc::now();
    let (session_id, journal) = match create_session(&opts.data_dir, now, &rb.id) {
        Ok(x) => x,
        Err(e) => {
            return CheckSummary::setup_error(
                err,
                &format!("cannot create the session journal: {e}"),
                started,
            );
        }
    };
    let files_dir =
        crate::journal::sessions_dir(&opts.data_dir).join(format!("{session_id}.files"));
    let engine = Engine::new(
        Arc::clone(&rb),
        vars,
        EngineOptions {
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
    let journal_path = d.journal_path().to_path_buf();
    let mut summary = CheckSummary {
        code: exit::SETUP,
        session_id: Some(session_id.clone()),
        journal: Some(journal_path),
        results: vec![],
        elapsed: Duration::ZERO,
    };
    for h in d.send(Input::Start) {
        if let Happened::Refused(t) | Happened::JournalFailed(t) = h {
            crate::wln!(err, "error: {t}");
            summary.elapsed = started.elapsed();
            return summary;
        }
    }

    let (planned, refused) = submit(&mut d, &rb, &selected, &opts, err);

    let (errors, durations) = collect(&mut d, &rb, &opts, &planned, started, err).await;

    for p in &planned {
        let r = result_of(
            p,
            &rb,
            &opts,
            &session_id,
            d.engine(),
            &refused,
            &errors,
            &durations,
        );
        summary.results.extend(r);
    }

    if rb.id == "readiness"
        && (opts.only.is_empty() || opts.only.iter().any(|o| o == MASTER_SECRET_CHECK))
    {
        let sso = d
            .engine()
            .variables()
            .get("use_sso")
            .is_none_or(crate::runbook::expr::truthy);
        summary.results.push(master_secret_recorded(
            &opts.data_dir,
            &session_id,
            sso,
            opts.target.drill,
        ));
    }

    close_and_write(&mut d, &opts, &mut summary, &session_id, started, out, err);
    summary
}

/// Journals the counts and closes the session (unless it stays open for the review), sets
/// the exit code, and writes the results to `out` (table or JSON Lines).
fn close_and_write(
    d: &mut Driver,
    opts: &CheckOptions,
    summary: &mut CheckSummary,
    session_id: &str,
    started: Instant,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) {
    let count = |s: CheckStatus| summary.results.iter().filter(|r| r.status == s).count();
    let (pass, fail, error) = (
        count(CheckStatus::Pass),
        count(CheckStatus::Fail),
        count(CheckStatus::Error),
    );
    let (na, skipped) = (
        count(CheckStatus::NotApplicable),
        count(CheckStatus::Skipped),
    );
    let text = format!(
        "btsdr check: {pass} passed, {fail} failed, {error} could not run, {na} not applicable, {skipped} skipped"
    );
    if d.halted().is_none() {
        d.send(Input::Note {
            step: None,
            text: text.clone(),
        });
        if !opts.keep_open {
            d.send(Input::Close);
        }
    }
    summary.code = if error > 0 || d.halted().is_some() {
        exit::SETUP
    } else if fail > 0 {
        exit::FAILED
    } else {
        exit::OK
    };
    summary.elapsed = started.elapsed();

    if opts.json {
        for r in &summary.results {
            match serde_json::to_string(r) {
                Ok(line) => {
                    let _ = writeln!(out, "{}", crate::plain::json_line(&line));
                }
                Err(e) => {
                    crate::wln!(err, "error: cannot encode the result of {}: {e}", r.id);
                }
            }
        }
    } else {
        write_table(out, &summary.results, opts.width);
        let line = format!(
            "{text} in {:.1} s. Session {session_id}{}.",
            summary.elapsed.as_secs_f64(),
            if opts.keep_open {
                " (open: continue the review with `btsdr` → resume)"
            } else {
                ""
            }
        );
        crate::wln!(out, "");
        match opts.width {
            Some(w) => wrap(&line, w).iter().for_each(|l| crate::wln!(out, "{l}")),
            None => crate::wln!(out, "{line}"),
        }
    }
    let _ = out.flush();
    // The summary again on stderr where the one on stdout may not be seen: after JSON, or
    // when live progress is on the terminal and the table went elsewhere.
    let table_unseen = {
        use std::io::IsTerminal;
        opts.progress == ProgressStyle::Live && !std::io::stdout().is_terminal()
    };
    if opts.json || table_unseen {
        crate::wln!(
            err,
            "{text} in {:.1} s (session {session_id}, exit {})",
            summary.elapsed.as_secs_f64(),
            summary.code
        );
    }
}

/// Submits every runnable check at once; the others get their status now. Returns the plan
/// and what the engine refused to run (by step id).
fn submit(
    d: &mut Driver,
    rb: &Runbook,
    selected: &[&Step],
    opts: &CheckOptions,
    err: &mut (dyn Write + Send),
) -> (Vec<Planned>, HashMap<String, String>) {
    let mut planned: Vec<Planned> = Vec::new();
    let mut refused: HashMap<String, String> = HashMap::new();
    for s in selected {
        let explicit = opts.only.contains(&s.id);
        let opt_in = matches!(&s.body, StepBody::Check(c) if c.opt_in);
        let status = match d.engine().step_state(&s.id) {
            Some(StepState::NotApplicable { reason }) => {
                Some((CheckStatus::NotApplicable, not_applicable_text(rb, reason)))
            }
            Some(StepState::Blocked { waiting_for }) => Some((
                CheckStatus::Skipped,
                format!("Waits for {} (run it in the UI).", waiting_for.join(", ")),
            )),
            _ if opt_in && !explicit && !opts.include_opt_in => Some((
                CheckStatus::Skipped,
                "Opt-in check (it can take long): run it with --include-opt-in or --only.".into(),
            )),
            _ => None,
        };
        if status.is_none() {
            for h in d.send(Input::Run(s.id.clone())) {
                match h {
                    Happened::Refused(t) | Happened::JournalFailed(t) => {
                        refused.insert(s.id.clone(), t);
                    }
                    Happened::Journaled { seq, event, .. }
                        if opts.progress == ProgressStyle::Lines =>
                    {
                        crate::wln!(err, "queued   {} (journal #{seq} {event})", s.id);
                    }
                    _ => {}
                }
            }
        }
        planned.push(Planned {
            id: s.id.clone(),
            status,
        });
    }
    (planned, refused)
}

/// Waits for every submitted check, showing progress on `err`; returns each failed check's
/// SQL error and each check's duration (ms), by step id.
async fn collect(
    d: &mut Driver,
    rb: &Runbook,
    opts: &CheckOptions,
    planned: &[Planned],
    started: Instant,
    err: &mut (dyn Write + Send),
) -> (HashMap<String, SqlError>, HashMap<String, u64>) {
    let total = planned.iter().filter(|p| p.status.is_none()).count();
    let mut running: BTreeMap<String, Instant> = BTreeMap::new();
    let mut errors: HashMap<String, SqlError> = HashMap::new();
    let mut durations: HashMap<String, u64> = HashMap::new();
    let mut done = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let live = opts.progress == ProgressStyle::Live;
    // The live line must not wrap, or `\r` would leave the wrapped part behind.
    let live_width = crossterm::terminal::size()
        .map(|(w, _)| usize::from(w).saturating_sub(1))
        .unwrap_or(79)
        .max(20);
    while d.in_flight() > 0 {
        tokio::select! {
            got = d.next() => {
                let Some(hs) = got else { break };
                for h in hs {
                    match h {
                        Happened::Started { step } => {
                            if opts.progress == ProgressStyle::Lines {
                                let role = role_of(rb, &step);
                                crate::wln!(err, "running  {step} on {role} ({})", opts.target.server_role(&role));
                            }
                            running.insert(step, Instant::now());
                        }
                        Happened::Finished { step, error, elapsed_ms } => {
                            done += 1;
                            running.remove(&step);
                            durations.insert(step.clone(), elapsed_ms);
                            if opts.progress == ProgressStyle::Lines {
                                let state = d.engine().step_state(&step).map(StepState::label).unwrap_or("?");
                                crate::wln!(err, "finished {step}: {state} ({elapsed_ms} ms) [{done}/{total}]");
                            }
                            if let Some(e) = error {
                                errors.insert(step, e);
                            }
                        }
                        Happened::JournalFailed(t) => {
                            crate::wln!(err, "\nerror: {t}");
                        }
                        _ => {}
                    }
                }
            }
            _ = tick.tick(), if live => {
                let now = Instant::now();
                let list: Vec<String> = running
                    .iter()
                    .map(|(s, t)| format!("{s} {:.1}s", now.duration_since(*t).as_secs_f64()))
                    .collect();
                let line = format!("checking [{done}/{total}] {:.1}s: {}", started.elapsed().as_secs_f64(), list.join(", "));
                let _ = write!(err, "\r\x1b[2K{}", fit(&crate::plain::plain_line(&line), live_width));
                let _ = err.flush();
            }
        }
    }
    if live {
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
    (errors, durations)
}

/// The result of one planned check, from its status, the engine's run and the executor's error.
#[allow(clippy::too_many_arguments)] // what the run left, each by step id
fn result_of(
    p: &Planned,
    rb: &Runbook,
    opts: &CheckOptions,
    session_id: &str,
    engine: &Engine,
    refused: &HashMap<String, String>,
    errors: &HashMap<String, SqlError>,
    durations: &HashMap<String, u64>,
) -> Option<CheckResult> {
    let step = rb.step(&p.id)?;
    let role = role_of(rb, &p.id);
    let mut r = CheckResult {
        schema_version: SCHEMA_VERSION,
        session: session_id.to_string(),
        id: p.id.clone(),
        title: step.title.clone(),
        runbook: rb.id.clone(),
        server: opts.target.server_role(&role),
        server_role: role,
        status: CheckStatus::Error,
        duration_ms: durations.get(&p.id).copied(),
        evidence_line: String::new(),
        evidence: None,
        assertions: vec![],
        error: None,
        advice: vec![],
    };
    if let Some((status, why)) = &p.status {
        r.status = *status;
        if *status == CheckStatus::Skipped {
            // The reason is what to do; there is no evidence.
            r.evidence_line = "not run".into();
            r.advice.push(why.clone());
        } else {
            r.evidence_line = why.clone();
            let empty = why
                .strip_prefix("Not applicable: ")
                .and_then(|t| t.strip_suffix(" is empty."))
                .filter(|v| rb.variables.iter().any(|x| x.name == *v));
            if let Some(v) = empty {
                r.advice
                    .push(format!("To run it, give {v}: --set {v}=VALUE."));
            }
        }
    } else if let Some(t) = refused.get(&p.id) {
        r.error = Some(t.clone());
        r.evidence_line = one_line(t);
        r.advice
            .push("btsdr refused to run this check; see the error.".into());
    } else if let Some(run) = engine.step_run(&p.id) {
        r.assertions = run
            .assertions
            .iter()
            .map(|a| AssertionResult {
                source: a.source.clone(),
                passed: a.passed,
                detail: a.detail.clone(),
            })
            .collect();
        if let Some(set) = &run.evidence {
            r.evidence_line = evidence_line(set);
            r.evidence = Some(Evidence {
                columns: set.columns.iter().map(|c| c.name.clone()).collect(),
                rows: set
                    .rows
                    .iter()
                    .map(|row| row.iter().map(json_value).collect())
                    .collect(),
                rows_not_kept: set.not_kept,
            });
        }
        match (&run.state, errors.get(&p.id)) {
            (StepState::Passed, _) => r.status = CheckStatus::Pass,
            (StepState::Failed { error }, Some(e)) => {
                r.status = if could_not_run(e) {
                    CheckStatus::Error
                } else {
                    CheckStatus::Fail
                };
                r.error = Some(error.clone());
                r.evidence_line = truncate(&one_line(error), 240);
                r.advice.push(error_advice(e));
            }
            (StepState::Failed { .. }, None) => {
                r.status = CheckStatus::Fail;
                r.advice = run.failed_assertions().map(|a| a.detail.clone()).collect();
            }
            (other, _) => {
                r.error = Some(format!("the check did not finish ({})", other.label()));
                r.advice
                    .push("Run the check again; if it keeps happening, see the log file.".into());
            }
        }
    }
    Some(r)
}

/// The checks to run: `--only` ids (any check), else every health check.
fn select_checks<'r>(rb: &'r Runbook, opts: &CheckOptions) -> Result<Vec<&'r Step>, String> {
    let checks: Vec<&Step> = rb
        .steps()
        .map(|(_, s)| s)
        .filter(|s| matches!(s.body, StepBody::Check(_)))
        .collect();
    for id in &opts.only {
        let builtin = rb.id == "readiness" && id == MASTER_SECRET_CHECK;
        if !builtin && !checks.iter().any(|s| &s.id == id) {
            let mut ids: Vec<&str> = checks.iter().map(|s| s.id.as_str()).collect();
            if rb.id == "readiness" {
                ids.push(MASTER_SECRET_CHECK);
            }
            return Err(format!(
                "--only {id}: runbook `{}` has no check step `{id}`. Its checks: {}",
                rb.id,
                ids.join(", ")
            ));
        }
    }
    let selected: Vec<&Step> = checks
        .into_iter()
        .filter(|s| match &s.body {
            StepBody::Check(c) if opts.only.is_empty() => c.health,
            _ => opts.only.contains(&s.id),
        })
        .collect();
    // `changelog.master-secret` is built in (no step): `--only` may name it alone.
    let builtin_only = rb.id == "readiness" && opts.only.iter().any(|o| o == MASTER_SECRET_CHECK);
    if selected.is_empty() && !builtin_only {
        return Err(format!("runbook `{}` has no health checks to run", rb.id));
    }
    Ok(selected)
}

/// Defaults, target, answers, `--set`; a required variable no selected check reads gets a
/// marker value. Every variable still missing is named in one message.
fn check_variables(
    rb: &Runbook,
    opts: &CheckOptions,
    selected: &[&Step],
) -> Result<Variables, String> {
    let mut vars = resolve_variables(rb, &opts.answers, &opts.sets, &opts.target.defaults)?;
    let mut used: Vec<String> = Vec::new();
    for s in selected {
        for v in used_variables(rb, s) {
            if !used.contains(&v) {
                used.push(v);
            }
        }
    }
    // Needed: what the selected checks read, and what no check reads but cannot take the
    // marker (e.g. a path with a pattern): all of them in one message.
    let used_refs: Vec<&str> = rb
        .variables
        .iter()
        .filter(|v| used.contains(&v.name) || validate_value(v, NOT_USED).is_err())
        .map(|v| v.name.as_str())
        .collect();
    if let Some(m) = missing(rb, &vars, Some(&used_refs)) {
        return Err(m);
    }
    for v in &rb.variables {
        let ok = validate_value(v, vars.get(&v.name).unwrap_or("")).is_ok();
        if !ok && !used.contains(&v.name) && validate_value(v, NOT_USED).is_ok() {
            vars.declare(&v.name, v.kind, Some(NOT_USED.to_string()));
        }
    }
    if let Some(m) = missing(rb, &vars, None) {
        return Err(m);
    }
    Ok(vars)
}

impl Target {
    /// `host,port` for a role name (as used in results).
    fn server_role(&self, role: &str) -> String {
        btsdr_types::Role::parse(role)
            .map(|r| self.server(r))
            .unwrap_or_default()
    }
}

fn role_of(rb: &Runbook, step: &str) -> String {
    rb.step(step)
        .and_then(|s| s.statement())
        .map(|(role, ..)| role.as_str().to_string())
        .unwrap_or_default()
}

/// Why a check does not apply; a condition that is just an empty variable says how to give it.
fn not_applicable_text(rb: &Runbook, reason: &str) -> String {
    let var = reason
        .strip_prefix("it applies only when ")
        .filter(|v| rb.variables.iter().any(|x| x.name == *v));
    match var {
        Some(v) => format!("Not applicable: {v} is empty."),
        None => format!("Not applicable: {reason}."),
    }
}

/// The human table: check, server, status, evidence, what to do.
fn write_table(out: &mut (dyn Write + Send), results: &[CheckResult], width: Option<usize>) {
    let rows: Vec<[String; 5]> = results
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                format!("{} {}", r.server_role, r.server),
                r.status.label().to_string(),
                truncate(&r.evidence_line, 60),
                one_line(&r.advice.join(" | ")),
            ]
        })
        .collect();
    let head = ["CHECK", "SERVER", "STATUS", "EVIDENCE", "WHAT TO DO"];
    for line in crate::table::aligned(&head, &rows, &[]) {
        match width {
            Some(w) => crate::wln!(out, "{}", fit(&line, w)),
            None => crate::wln!(out, "{line}"),
        }
    }
    // Cut lines lose the advice: it follows in full, wrapped.
    if let Some(w) = width {
        for r in results.iter().filter(|r| {
            matches!(r.status, CheckStatus::Fail | CheckStatus::Error) && !r.advice.is_empty()
        }) {
            crate::wln!(out, "\n{} ({}):", r.id, r.status.label());
            for a in &r.advice {
                for l in wrap(&one_line(a), w.saturating_sub(2)) {
                    crate::wln!(out, "  {l}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::driver::fake::FakeExec;
    use crate::engine::fixture::sample_runbook;
    use btsdr_types::{Column, QueryOutput, Value};

    fn run(exec: Arc<FakeExec>, sets: &[(&str, &str)]) -> (CheckSummary, String) {
        let dir = tempfile::tempdir().unwrap();
        let target = Target {
            environment: "test".into(),
            drill: false,
            servers: BTreeMap::new(),
            defaults: vec![],
            executor: exec,
            warnings: vec![],
            drill_hands: None,
        };
        let opts = CheckOptions {
            runbook: Arc::new(sample_runbook()),
            target,
            data_dir: dir.path().to_path_buf(),
            operator: "t".into(),
            only: vec![],
            include_opt_in: false,
            json: true,
            sets: sets
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            answers: Answers::default(),
            progress: ProgressStyle::Quiet,
            keep_open: false,
            width: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let s = rt.block_on(check(opts, &mut out, &mut err));
        (
            s,
            String::from_utf8_lossy(&out).to_string() + &String::from_utf8_lossy(&err),
        )
    }

    fn rows(ages: &[i64]) -> QueryOutput {
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
                rows: ages
                    .iter()
                    .map(|a| vec![Value::Text("db".into()), Value::Int(*a)])
                    .collect(),
            }],
            rows_affected: vec![],
        }
    }

    #[test]
    fn pass_fail_and_error_codes() {
        let (s, text) = run(FakeExec::new(|_| Ok(rows(&[1]))), &[]);
        assert_eq!(s.code, exit::OK, "{text}");
        // `pwd` is a required secret no check uses: it gets the marker value.
        assert_eq!(s.results.len(), 2, "{text}"); // check-jobs and after-drop (blocked)
        assert_eq!(s.results[0].status, CheckStatus::Pass);
        assert_eq!(s.results[1].status, CheckStatus::Skipped);

        let (s, text) = run(FakeExec::new(|_| Ok(rows(&[99]))), &[]);
        assert_eq!(s.code, exit::FAILED, "{text}");
        assert!(
            s.results[0].advice[0].contains("older than 26 hours"),
            "{text}"
        );

        let (s, text) = run(
            FakeExec::new(|_| {
                Err(SqlError::Login {
                    server: "x".into(),
                    message: "no".into(),
                })
            }),
            &[],
        );
        assert_eq!(s.code, exit::SETUP, "{text}");
        assert_eq!(s.results[0].status, CheckStatus::Error);

        let (s, _) = run(
            FakeExec::new(|_| {
                Err(SqlError::Server {
                    number: 208,
                    severity: 16,
                    state: 1,
                    procedure: String::new(),
                    line: 1,
                    message: "Invalid object name".into(),
                })
            }),
            &[],
        );
        assert_eq!(s.code, exit::FAILED);

        let (s, text) = run(FakeExec::new(|_| Ok(rows(&[1]))), &[("hours", "x")]);
        assert_eq!(s.code, exit::SETUP);
        assert!(text.contains("hours"), "{text}");
    }
}

/// Id of the built-in check that the SSO master secret backup is in the change record.
pub(crate) const MASTER_SECRET_CHECK: &str = "changelog.master-secret";

/// The best practices ask to record every change, and the checklists to back up the master
/// secret: passes when `btsdr changelog` holds a master secret backup (category
/// `master-secret`, or "master secret" in the text).
fn master_secret_recorded(
    data_dir: &std::path::Path,
    session: &str,
    sso_in_use: bool,
    drill: bool,
) -> CheckResult {
    let mut r = CheckResult {
        schema_version: SCHEMA_VERSION,
        session: session.to_string(),
        id: MASTER_SECRET_CHECK.into(),
        title: "The SSO master secret backup is in the change record".into(),
        runbook: "readiness".into(),
        server_role: "local".into(),
        server: crate::journal::Changelog::path(data_dir)
            .display()
            .to_string(),
        status: CheckStatus::Fail,
        // No query runs: it reads the local change record.
        duration_ms: None,
        evidence_line: String::new(),
        evidence: None,
        assertions: vec![],
        error: None,
        advice: vec![],
    };
    if !sso_in_use {
        r.status = CheckStatus::NotApplicable;
        r.evidence_line = "Not applicable: Enterprise SSO is not in use (use_sso = false).".into();
        return r;
    }
    if drill {
        // The change record is the operator's real one; a simulated group has no entry in it.
        r.status = CheckStatus::NotApplicable;
        r.evidence_line = "Not applicable in a drill: against a real environment this reads `btsdr changelog` for a master secret backup.".into();
        return r;
    }
    match crate::journal::Changelog::list(data_dir) {
        Ok(read) => {
            let found = read.entries.iter().rev().find(|e| {
                e.category.eq_ignore_ascii_case("master-secret")
                    || e.what.to_lowercase().contains("master secret")
            });
            match found {
                Some(e) => {
                    r.status = CheckStatus::Pass;
                    r.evidence_line = truncate(
                        &format!(
                            "#{} {} by {}: {}",
                            e.seq,
                            e.time.format("%Y-%m-%d %H:%M"),
                            e.who,
                            e.what
                        ),
                        240,
                    );
                }
                None => {
                    r.evidence_line = format!(
                        "no master secret backup among {} recorded change(s)",
                        read.entries.len()
                    );
                    r.advice.push(
                        "Back up the master secret on the master secret server (`ssoconfig -backupSecret <file>` as an SSO Administrator), store the file and its password apart, then record it so this check passes: btsdr changelog add \"Backed up the SSO master secret to <where>\" --category master-secret --who <name>".into(),
                    );
                }
            }
            if !read.report.is_intact() {
                r.status = CheckStatus::Fail;
                r.error = Some(format!("the change record is damaged: {}", read.report));
                r.advice.push("The change record failed its hash-chain check: find out who changed it (btsdr changelog list).".into());
            }
        }
        Err(e) => {
            r.status = CheckStatus::Error;
            r.error = Some(format!("cannot read the change record: {e}"));
            r.evidence_line = one_line(&format!("cannot read the change record: {e}"));
        }
    }
    r
}

#[cfg(test)]
mod width_tests {
    use super::*;

    #[test]
    fn lines_fit_the_terminal_and_advice_wraps() {
        assert_eq!(fit("abcdef", 6), "abcdef");
        assert_eq!(fit("abcdefgh", 6), "abcde…");
        let w = wrap("one two three four five", 9);
        assert_eq!(w, ["one two", "three", "four five"]);
        let r = CheckResult {
            schema_version: SCHEMA_VERSION,
            session: "s".into(),
            id: "x.fails".into(),
            title: "t".into(),
            runbook: "r".into(),
            server_role: "source".into(),
            server: "h".repeat(100),
            status: CheckStatus::Fail,
            duration_ms: None,
            evidence_line: "e".repeat(80),
            evidence: None,
            assertions: vec![],
            error: None,
            advice: vec!["do this and then that ".repeat(10)],
        };
        let mut out = Vec::new();
        write_table(&mut out, std::slice::from_ref(&r), Some(60));
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().all(|l| l.chars().count() <= 60), "{text}");
        assert!(text.contains("x.fails (FAIL):"), "{text}");
        let mut out = Vec::new();
        write_table(&mut out, &[r], None);
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().any(|l| l.chars().count() > 200), "{text}");
    }
}

#[cfg(test)]
mod master_secret_tests {
    use super::*;
    use crate::journal::{Change, Changelog};

    #[test]
    fn passes_only_when_the_change_record_holds_a_master_secret_backup() {
        let dir = tempfile::tempdir().unwrap();
        let r = master_secret_recorded(dir.path(), "s", true, false);
        assert_eq!(r.status, CheckStatus::Fail);
        assert!(
            r.advice[0].contains("ssoconfig -backupSecret"),
            "{:?}",
            r.advice
        );

        let mut log = Changelog::open(dir.path()).unwrap();
        let change = |what: &str, category: &str| Change {
            who: "alice".into(),
            what: what.into(),
            category: category.into(),
            reference: String::new(),
        };
        log.add(change("Installed CU6", "hotfix"), chrono::Utc::now())
            .unwrap();
        assert_eq!(
            master_secret_recorded(dir.path(), "s", true, false).status,
            CheckStatus::Fail
        );
        log.add(
            change("Backed up to \\\\fs01\\sso", "master-secret"),
            chrono::Utc::now(),
        )
        .unwrap();
        let r = master_secret_recorded(dir.path(), "s", true, false);
        assert_eq!(r.status, CheckStatus::Pass, "{r:?}");
        assert!(r.evidence_line.contains("alice"));

        assert_eq!(
            master_secret_recorded(dir.path(), "s", false, false).status,
            CheckStatus::NotApplicable
        );
        assert_eq!(
            master_secret_recorded(dir.path(), "s", true, true).status,
            CheckStatus::NotApplicable
        );
    }
}
