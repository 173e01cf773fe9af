//! Folds a session's journal records into what a report shows.

use chrono::{DateTime, Utc};

use crate::engine::events::{Event, Outcome, Record};
use crate::runbook::model::Runbook;
use btsdr_types::{ResultSet, Statement};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    NotRun,
    /// Its `when` was false for this session's variables (not work left undone).
    NotApplicable,
    Passed,
    Failed,
    Skipped,
    Done,
    WouldRun,
    InDoubt,
    Written,
}

impl StepStatus {
    pub fn label(self) -> &'static str {
        match self {
            StepStatus::NotRun => "not run",
            StepStatus::NotApplicable => "n/a",
            StepStatus::Passed => "passed",
            StepStatus::Failed => "FAILED",
            StepStatus::Skipped => "skipped",
            StepStatus::Done => "done",
            StepStatus::WouldRun => "would run (dry run)",
            StepStatus::InDoubt => "IN DOUBT",
            StepStatus::Written => "written",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StepLine {
    pub id: String,
    pub title: String,
    pub section: String,
    pub kind: String,
    pub status: StepStatus,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    pub attempts: u32,
    /// Who acted on the step last (operator of the outcome record).
    pub by: String,
    pub statement: Option<Statement>,
    pub evidence: Option<ResultSet>,
    /// Assertion results as `(passed, text)`.
    pub assertions: Vec<(bool, String)>,
    pub error: Option<String>,
    pub note: String,
    pub manual_evidence: String,
    pub skip_reason: String,
    pub file: Option<(String, String)>,
    /// Earlier failed attempts, `attempt n failed: error`.
    pub failed_attempts: Vec<String>,
    /// Each attempt on the timeline: start, end (None while running) and how it ended.
    pub segments: Vec<(DateTime<Utc>, Option<DateTime<Utc>>, StepStatus)>,
    /// Why the step does not apply (N/A).
    pub na_reason: String,
    /// A manual step's instructions: what the person who confirmed it attested.
    pub attested: String,
    /// Everyone who acted on the step (ran, confirmed, approved, skipped, resolved), in order.
    pub people: Vec<String>,
    /// The step may change or destroy data (a typed word was asked).
    pub destructive: bool,
    /// Who typed the confirm word, who approved as second person, and the word.
    pub confirmed_by: Vec<String>,
    pub approved_by: Vec<String>,
    pub word: Option<String>,
    /// Where a generated file was written.
    pub file_path: String,
    /// Control events in words: in doubt after a crash and how it was resolved, reopenings.
    pub controls: Vec<String>,
}

impl StepLine {
    /// Who did the step, as the report's "By" column says it.
    pub fn by_all(&self) -> String {
        if self.people.is_empty() {
            self.by.clone()
        } else {
            self.people.join(", ")
        }
    }

    /// Seconds of each timed attempt (a confirmation or skip has none).
    pub fn attempt_secs(&self) -> Vec<i64> {
        self.segments
            .iter()
            .filter_map(|(a, b, _)| b.map(|b| (b - *a).num_seconds()))
            .collect()
    }

    /// The last attempt's duration, with each attempt's when there were several.
    pub fn duration_text(&self) -> String {
        let secs = self.attempt_secs();
        match secs.as_slice() {
            [] => "—".into(),
            [one] => super::fmt_duration(*one),
            many => format!(
                "{} (attempts: {})",
                super::fmt_duration(many[many.len() - 1]),
                many.iter()
                    .map(|s| super::fmt_duration(*s))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn add_person(&mut self, who: &str) {
        let who = who.trim();
        if !who.is_empty() && !self.people.iter().any(|p| p == who) {
            self.people.push(who.to_string());
        }
    }
}

/// One sign-off with what the signer recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub at: DateTime<Utc>,
    pub name: String,
    pub role: String,
    /// Open or skipped steps when they signed: "signed with exceptions".
    pub exceptions: Vec<String>,
    pub comment: String,
    pub next_review: String,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub session_id: String,
    pub runbook_id: String,
    pub title: String,
    pub version: String,
    pub content_hash: String,
    pub environment: String,
    pub drill: bool,
    pub dry_run: bool,
    pub operators: Vec<String>,
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    pub declared_at: Option<DateTime<Utc>>,
    pub rto_minutes: Option<u32>,
    pub rpo_minutes: Option<u32>,
    /// The failure plan the session was started from.
    pub plan: Option<crate::engine::PlanRef>,
    /// The mark the databases were restored to, and its time, when a step's evidence shows it.
    pub mark: Option<(String, Option<String>)>,
    pub steps: Vec<StepLine>,
    pub notes: Vec<(DateTime<Utc>, String, String)>,
    pub signoffs: Vec<(DateTime<Utc>, String, String)>,
    /// SSH signatures of the journal (`btsdr journal sign`), as checked against
    /// allowed_signers when the report was made.
    pub signatures: Vec<SignatureRow>,
    pub closed: bool,
    /// When it was closed (the clock stops there), by whom and what the close record says.
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: String,
    pub closed_details: String,
    pub aborted: Option<String>,
    /// Destructive steps needed a second, different person.
    pub two_person_rule: bool,
    /// A readiness review rather than an incident or drill (see [`super::is_review`]).
    pub review: bool,
    /// Sign-offs with their exceptions, comments and next review date.
    pub signers: Vec<Signer>,
    /// Restarts after a stop or crash, with the steps that were then in doubt.
    pub resumes: Vec<(DateTime<Utc>, String, Vec<String>)>,
    /// The drill scenario's group was simulated (evidence dates are the simulator's).
    pub simulated: bool,
    /// The other parts of the failure plan's incident, with this one (empty when alone).
    pub incident: Vec<super::incident::IncidentPart>,
    /// Journal verification summary and final chain hash.
    pub journal_status: String,
    pub final_hash: String,
    pub intact: bool,
}

impl Report {
    /// Disaster declared (or session start) to the close (the clock stops there), else to
    /// the last recorded action.
    pub fn elapsed_secs(&self) -> Option<i64> {
        let from = self.declared_at.or(self.started)?;
        Some((self.closed_at.or(self.ended)? - from).num_seconds())
    }

    /// Steps by status, N/A apart from not run: `(label, count)` for non-zero counts.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        let n = |f: &dyn Fn(StepStatus) -> bool| self.steps.iter().filter(|l| f(l.status)).count();
        [
            (
                "passed",
                n(&|s| {
                    matches!(
                        s,
                        StepStatus::Passed | StepStatus::Written | StepStatus::WouldRun
                    )
                }),
            ),
            ("done", n(&|s| s == StepStatus::Done)),
            ("failed", n(&|s| s == StepStatus::Failed)),
            ("skipped", n(&|s| s == StepStatus::Skipped)),
            ("in doubt", n(&|s| s == StepStatus::InDoubt)),
            ("not run", n(&|s| s == StepStatus::NotRun)),
            ("not applicable", n(&|s| s == StepStatus::NotApplicable)),
        ]
        .into_iter()
        .filter(|(_, c)| *c > 0)
        .collect()
    }

    /// `12 passed, 3 done, 21 not applicable`.
    pub fn counts_text(&self) -> String {
        let c = self.counts();
        if c.is_empty() {
            return "no steps".into();
        }
        c.iter()
            .map(|(l, n)| format!("{n} {l}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Steps an auditor must look at: failed, skipped, in doubt, not run; and steps that
    /// passed only after a failed attempt. Each with what happened, in words.
    pub fn findings(&self) -> Vec<(&StepLine, String)> {
        self.steps
            .iter()
            .filter_map(|l| {
                let why = match l.status {
                    StepStatus::Skipped => format!("skipped by {}: {}", l.by, l.skip_reason),
                    StepStatus::Failed | StepStatus::InDoubt => l
                        .error
                        .clone()
                        .unwrap_or_else(|| "started, no outcome recorded".into()),
                    StepStatus::NotRun => "not run".into(),
                    s if !l.failed_attempts.is_empty() => format!(
                        "{}; then {} on attempt {}",
                        l.failed_attempts.join("; "),
                        s.label(),
                        l.attempts
                    ),
                    _ => return None,
                };
                Some((l, why))
            })
            .collect()
    }

    /// The overall verdict in words, and whether it is clean.
    pub fn verdict(&self) -> (String, bool) {
        let count = |s: StepStatus| self.steps.iter().filter(|l| l.status == s).count();
        let failed = count(StepStatus::Failed) + count(StepStatus::InDoubt);
        let not_run = count(StepStatus::NotRun);
        let skipped = count(StepStatus::Skipped);
        let signed = !self.signers.is_empty();
        // Worst first: a failure, then work never done, then skips (each with its reason).
        let (what, ok) = match (self.review, failed, not_run, skipped) {
            (true, 0, 0, 0) => (
                "READY: every applicable item passed or was confirmed".into(),
                true,
            ),
            (true, 0, 0, n) => (
                format!("READY WITH EXCEPTIONS: {n} item(s) skipped, each with its reason"),
                false,
            ),
            (true, 0, n, _) => (
                format!("REVIEW INCOMPLETE: {n} item(s) not reviewed"),
                false,
            ),
            (true, f, _, _) => (format!("NOT READY: {f} item(s) failed or in doubt"), false),
            (false, 0, 0, 0) => (
                "COMPLETE: every applicable step passed or was done".into(),
                true,
            ),
            (false, 0, 0, n) => (
                format!("COMPLETE WITH EXCEPTIONS: {n} step(s) skipped, each with its reason"),
                false,
            ),
            (false, 0, n, _) => (format!("INCOMPLETE: {n} step(s) not run"), false),
            (false, f, _, _) => (
                format!("NOT COMPLETE: {f} step(s) failed or in doubt"),
                false,
            ),
        };
        let sign = match self.signers.iter().find(|s| !s.exceptions.is_empty()) {
            Some(s) if signed => format!(
                "; signed with {} exception(s) by {}",
                s.exceptions.len(),
                s.name
            ),
            _ if signed => "; signed".into(),
            _ => "; not signed".into(),
        };
        (format!("{what}{sign}"), ok && signed)
    }

    /// What a signature on this report attests.
    pub fn attestation(&self) -> &'static str {
        if self.review {
            "By signing, the reviewer attests that the items above were examined as recorded, that the findings and exceptions listed are complete, and that the verdict is their own judgement."
        } else {
            "By signing, the signer attests that they read this report, that the steps shown as passed or done were carried out as recorded (by the people named), and that every failure, skip and exception listed above is known and accepted."
        }
    }

    /// Minutes of work at risk: from the mark restored to until the disaster was declared.
    pub fn rpo_achieved_minutes(&self) -> Option<i64> {
        let (_, Some(time)) = self.mark.as_ref()? else {
            return None;
        };
        let declared = self.declared_at?;
        let t = [
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S",
        ]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(time, f).ok())?
        .and_utc();
        Some((declared - t).num_minutes())
    }

    pub fn rto_met(&self) -> Option<bool> {
        Some(self.elapsed_secs()? <= i64::from(self.rto_minutes?) * 60)
    }
}

/// Builds the report. `runbook` supplies titles, sections and order; without it the steps
/// appear in journal order.
/// One checked signature, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureRow {
    pub principal: String,
    pub seq: u64,
    pub status: String,
    pub valid: bool,
}

impl Report {
    /// How a typed sign-off name stands: signed by an allowed key, or a name only.
    pub fn signoff_status(&self, name: &str) -> &'static str {
        if self
            .signatures
            .iter()
            .any(|s| s.valid && s.principal == name)
        {
            "signature valid"
        } else {
            "unsigned: a typed name only"
        }
    }
}

// TODO(issue 16): split (one pass per record kind).
#[allow(clippy::too_many_lines)]
pub fn build(
    records: &[Record],
    runbook: Option<&Runbook>,
    journal_status: &str,
    final_hash: &str,
    intact: bool,
) -> Report {
    let mut r = Report {
        journal_status: journal_status.to_string(),
        final_hash: final_hash.to_string(),
        intact,
        ..Report::default()
    };
    if let Some(rb) = runbook {
        for (sec, st) in rb.steps() {
            let mut l = new_line(&st.id, &st.title, &sec.title, st.kind_name());
            l.destructive = st.is_destructive();
            if let crate::runbook::model::StepBody::Manual(m) = &st.body {
                l.attested = m.instructions.trim().to_string();
            }
            r.steps.push(l);
        }
    }
    let mut variables: Vec<(String, String)> = Vec::new();
    let mut in_doubt_now: Vec<String> = Vec::new();
    for rec in records {
        if !rec.operator.is_empty() && !r.operators.contains(&rec.operator) {
            r.operators.push(rec.operator.clone());
        }
        r.started = r.started.or(Some(rec.time));
        r.ended = Some(rec.time);
        let line = match &rec.step {
            Some(id) => {
                if !r.steps.iter().any(|s| &s.id == id) {
                    r.steps.push(new_line(id, id, "", ""));
                }
                r.steps.iter_mut().find(|s| &s.id == id)
            }
            None => None,
        };
        match (&rec.event, line) {
            (
                Event::SessionStarted {
                    session_id,
                    runbook_id,
                    title,
                    version,
                    content_hash,
                    environment,
                    rto_minutes,
                    rpo_minutes,
                    declared_at,
                    drill,
                    dry_run,
                    plan,
                    two_person_rule,
                    review,
                    variables: vars,
                    ..
                },
                _,
            ) => {
                r.two_person_rule = *two_person_rule;
                r.review = super::is_review(*review, runbook_id);
                r.simulated = *drill && environment.starts_with("drill:");
                variables = vars
                    .iter()
                    .map(|v| (v.name.clone(), v.value.clone()))
                    .collect();
                r.plan.clone_from(plan);
                r.session_id.clone_from(session_id);
                r.runbook_id.clone_from(runbook_id);
                r.title.clone_from(title);
                r.version.clone_from(version);
                r.content_hash.clone_from(content_hash);
                r.environment.clone_from(environment);
                r.rto_minutes = *rto_minutes;
                r.rpo_minutes = *rpo_minutes;
                r.declared_at = *declared_at;
                r.drill = *drill;
                r.dry_run = *dry_run;
            }
            (Event::VariableSet { name, value }, _) => {
                variables.retain(|(n, _)| n != name);
                variables.push((name.clone(), value.clone()));
            }
            (Event::StepStarted { attempt, statement }, Some(l)) => {
                l.add_person(&rec.operator);
                l.started = l.started.or(Some(rec.time));
                l.attempts = (*attempt).max(l.attempts + 1);
                l.status = StepStatus::InDoubt;
                l.statement = statement.clone().or(l.statement.take());
                l.by.clone_from(&rec.operator);
                l.segments.push((rec.time, None, StepStatus::InDoubt));
            }
            (
                Event::StepFinished {
                    outcome,
                    evidence,
                    assertions,
                    ..
                },
                Some(l),
            ) => {
                l.finished = Some(rec.time);
                l.by.clone_from(&rec.operator);
                l.evidence = evidence.clone();
                l.assertions = assertions
                    .iter()
                    .map(|a| {
                        (
                            a.passed,
                            if a.passed {
                                a.source.clone()
                            } else {
                                format!("{}: {}", a.source, a.detail)
                            },
                        )
                    })
                    .collect();
                match outcome {
                    Outcome::Passed => {
                        l.status = StepStatus::Passed;
                        l.error = None;
                    }
                    Outcome::Failed { error } => {
                        l.status = StepStatus::Failed;
                        l.error = Some(error.clone());
                        l.failed_attempts
                            .push(format!("attempt {} failed: {error}", l.attempts.max(1)));
                    }
                    Outcome::InDoubt { reason } => {
                        l.status = StepStatus::InDoubt;
                        l.error = Some(reason.clone());
                    }
                }
                let ended = l.status;
                match l.segments.last_mut() {
                    Some(seg) if seg.1.is_none() => {
                        seg.1 = Some(rec.time);
                        seg.2 = ended;
                    }
                    _ => l.segments.push((rec.time, Some(rec.time), ended)),
                }
                if let Some(set) = evidence
                    && let Some(m) = find_mark(set)
                {
                    r.mark = Some(m);
                }
            }
            (Event::WouldRun { statement }, Some(l)) => {
                l.status = StepStatus::WouldRun;
                l.statement.clone_from(statement);
                l.started = l.started.or(Some(rec.time));
                l.finished = Some(rec.time);
            }
            (Event::ManualConfirmed { by, note, evidence }, Some(l)) => {
                l.add_person(by);
                l.status = StepStatus::Done;
                l.by.clone_from(by);
                l.note.clone_from(note);
                l.manual_evidence.clone_from(evidence);
                l.started = l.started.or(Some(rec.time));
                l.finished = Some(rec.time);
            }
            (Event::Skipped { by, reason }, Some(l)) => {
                l.add_person(by);
                l.status = StepStatus::Skipped;
                l.by.clone_from(by);
                l.skip_reason.clone_from(reason);
                l.finished = Some(rec.time);
            }
            (Event::GenerateWritten { name, sha256, path }, Some(l)) => {
                l.status = StepStatus::Written;
                l.file = Some((name.clone(), sha256.clone()));
                l.file_path.clone_from(path);
                l.started = l.started.or(Some(rec.time));
                l.finished = Some(rec.time);
            }
            (
                Event::InDoubtResolved {
                    by,
                    resolution: crate::engine::events::Resolution::MarkDone { note },
                },
                Some(l),
            ) => {
                l.add_person(by);
                l.status = StepStatus::Done;
                l.note.clone_from(note);
                l.by.clone_from(by);
                l.finished = Some(rec.time);
                let how = if in_doubt_now.contains(&l.id) {
                    "in doubt after a restart"
                } else {
                    "in doubt"
                };
                l.controls.push(format!(
                    "{how}; {} marked it done at {}: {note}",
                    by,
                    rec.time.format("%H:%M:%S")
                ));
                in_doubt_now.retain(|s| s != &l.id);
            }
            (Event::InDoubtResolved { by, resolution }, Some(l)) => {
                l.add_person(by);
                let what = match resolution {
                    crate::engine::events::Resolution::Verify => "chose to verify it on the server",
                    _ => "chose to run it again",
                };
                let how = if in_doubt_now.contains(&l.id) {
                    "in doubt after a restart"
                } else {
                    "in doubt"
                };
                l.controls.push(format!(
                    "{how}; {by} {what} at {}",
                    rec.time.format("%H:%M:%S")
                ));
            }
            (Event::DestructiveConfirmed { by, second, word }, Some(l)) => {
                l.add_person(by);
                l.destructive = true;
                if *second {
                    l.approved_by.push(by.clone());
                } else {
                    l.confirmed_by.push(by.clone());
                }
                if word.is_some() {
                    l.word.clone_from(word);
                }
            }
            (Event::Reopened { by, reason }, Some(l)) => {
                l.add_person(by);
                l.controls.push(format!(
                    "was {} and reopened by {by} at {}: {reason}",
                    l.status.label(),
                    rec.time.format("%H:%M:%S")
                ));
                l.status = StepStatus::NotRun;
                l.skip_reason.clear();
                l.finished = None;
            }
            (Event::Resumed { in_doubt }, _) => {
                in_doubt_now.clone_from(in_doubt);
                r.resumes
                    .push((rec.time, rec.operator.clone(), in_doubt.clone()));
            }
            (Event::Note { text }, l) => {
                let on = l.map(|l| l.id.clone()).unwrap_or_default();
                r.notes.push((
                    rec.time,
                    rec.operator.clone(),
                    if on.is_empty() {
                        text.clone()
                    } else {
                        format!("{on}: {text}")
                    },
                ));
            }
            (
                Event::SignedOff {
                    name,
                    role,
                    exceptions,
                    comment,
                    next_review,
                },
                _,
            ) => {
                r.signoffs.push((rec.time, name.clone(), role.clone()));
                r.signers.push(Signer {
                    at: rec.time,
                    name: name.clone(),
                    role: role.clone(),
                    exceptions: exceptions.clone(),
                    comment: comment.clone(),
                    next_review: next_review.clone(),
                });
            }
            (Event::SessionClosed {}, _) => {
                r.closed = true;
                r.closed_at = Some(rec.time);
                r.closed_by.clone_from(&rec.operator);
                r.closed_details.clone_from(&rec.details);
            }
            (Event::Aborted { reason }, _) => r.aborted = Some(reason.clone()),
            _ => {}
        }
    }
    if let Some(rb) = runbook {
        mark_not_applicable(&mut r, rb, records);
        for l in &mut r.steps {
            l.attested = fill(&l.attested, &variables);
        }
    }
    r
}

/// Steps never run whose `when` is false for the session's variables are N/A, not "not
/// run": the engine replays the records to say which (as the session saw them).
fn mark_not_applicable(r: &mut Report, rb: &Runbook, records: &[Record]) {
    let rb = std::sync::Arc::new(rb.clone());
    let vars = crate::engine::Variables::from_runbook(&rb);
    let Ok(engine) =
        crate::engine::Engine::replay(rb, vars, crate::engine::EngineOptions::default(), records)
    else {
        return;
    };
    for l in &mut r.steps {
        if l.status != StepStatus::NotRun {
            continue;
        }
        if let Some(crate::engine::StepState::NotApplicable { reason }) = engine.step_state(&l.id) {
            l.status = StepStatus::NotApplicable;
            l.na_reason.clone_from(reason);
        }
    }
}

/// `{{name}}` placeholders of attested text filled from the session's variables (secrets
/// are already redacted in the journal); unknown names stay as written.
fn fill(text: &str, vars: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (n, v) in vars {
        out = out.replace(&format!("{{{{{n}}}}}"), v);
    }
    out
}

fn new_line(id: &str, title: &str, section: &str, kind: &str) -> StepLine {
    StepLine {
        id: id.to_string(),
        title: title.to_string(),
        section: section.to_string(),
        kind: kind.to_string(),
        status: StepStatus::NotRun,
        started: None,
        finished: None,
        attempts: 0,
        by: String::new(),
        statement: None,
        evidence: None,
        assertions: Vec::new(),
        error: None,
        note: String::new(),
        manual_evidence: String::new(),
        skip_reason: String::new(),
        file: None,
        failed_attempts: Vec::new(),
        segments: Vec::new(),
        na_reason: String::new(),
        attested: String::new(),
        people: Vec::new(),
        destructive: false,
        confirmed_by: Vec::new(),
        approved_by: Vec::new(),
        word: None,
        file_path: String::new(),
        controls: Vec::new(),
    }
}

/// A restore check's evidence names the mark (`stop_at_mark_name` or `mark_name`) and may
/// carry its time (`mark_time`).
fn find_mark(set: &ResultSet) -> Option<(String, Option<String>)> {
    let name = set
        .column_index("stop_at_mark_name")
        .or_else(|| set.column_index("restored_mark"))?;
    let row = set
        .rows
        .iter()
        .find(|r| r.get(name).is_some_and(|v| !v.is_null()))?;
    let time = set
        .column_index("mark_time")
        .and_then(|i| row.get(i))
        .map(|v| v.to_string());
    Some((row.get(name)?.to_string(), time))
}
