//! Folds a session's journal records into what a report shows.

use chrono::{DateTime, Utc};

use crate::engine::events::{Event, Outcome, Record};
use crate::runbook::model::Runbook;
use btsdr_types::{ResultSet, Statement};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    NotRun,
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
    pub aborted: Option<String>,
    /// Journal verification summary and final chain hash.
    pub journal_status: String,
    pub final_hash: String,
    pub intact: bool,
}

impl Report {
    /// Disaster declared (or session start) to the last recorded action.
    pub fn elapsed_secs(&self) -> Option<i64> {
        let from = self.declared_at.or(self.started)?;
        Some((self.ended? - from).num_seconds())
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
            r.steps
                .push(new_line(&st.id, &st.title, &sec.title, st.kind_name()));
        }
    }
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
                    ..
                },
                _,
            ) => {
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
            (Event::StepStarted { attempt, statement }, Some(l)) => {
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
                l.status = StepStatus::Done;
                l.by.clone_from(by);
                l.note.clone_from(note);
                l.manual_evidence.clone_from(evidence);
                l.started = l.started.or(Some(rec.time));
                l.finished = Some(rec.time);
            }
            (Event::Skipped { by, reason }, Some(l)) => {
                l.status = StepStatus::Skipped;
                l.by.clone_from(by);
                l.skip_reason.clone_from(reason);
                l.finished = Some(rec.time);
            }
            (Event::GenerateWritten { name, sha256, .. }, Some(l)) => {
                l.status = StepStatus::Written;
                l.file = Some((name.clone(), sha256.clone()));
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
                l.status = StepStatus::Done;
                l.note.clone_from(note);
                l.by.clone_from(by);
                l.finished = Some(rec.time);
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
            (Event::SignedOff { name, role, .. }, _) => {
                r.signoffs.push((rec.time, name.clone(), role.clone()))
            }
            (Event::SessionClosed {}, _) => r.closed = true,
            (Event::Aborted { reason }, _) => r.aborted = Some(reason.clone()),
            _ => {}
        }
    }
    r
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
