//! The engine's state: what the journal can rebuild ([`RunState`]) and what it exposes.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::engine::events::NamedValue;
use crate::runbook::expr::AssertOutcome;
use btsdr_types::{ResultSet, Statement};

/// Where a step stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StepState {
    /// Can be run now.
    Pending,
    /// Waits for steps named in `after` to finish.
    Blocked {
        waiting_for: Vec<String>,
    },
    /// Its `when` (or its section's) is false for these variables.
    NotApplicable {
        reason: String,
    },
    Running,
    /// Check assertions held / statement succeeded / file written.
    Passed,
    /// Dry run: the statement that would have been sent is recorded; counts as passed.
    WouldRun,
    Failed {
        error: String,
    },
    Skipped {
        reason: String,
        by: String,
    },
    /// A manual step confirmed (or an in-doubt step marked done).
    Done {
        by: String,
        note: String,
        evidence: String,
    },
    /// Started but no outcome recorded (crash or lost connection): the operator decides.
    InDoubt,
}

impl StepState {
    /// Finished well enough for dependants (`after`) to go on.
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            StepState::Passed
                | StepState::WouldRun
                | StepState::Skipped { .. }
                | StepState::Done { .. }
                | StepState::NotApplicable { .. }
        )
    }

    /// Lets steps that name it in `after` start: finished, but not skipped (the skip
    /// popup promises that dependants wait; reopening the step and running it frees them).
    pub fn frees_dependants(&self) -> bool {
        self.is_finished() && !matches!(self, StepState::Skipped { .. })
    }

    /// Short label for lists and reports.
    pub fn label(&self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Blocked { .. } => "blocked",
            StepState::NotApplicable { .. } => "n/a",
            StepState::Running => "running",
            StepState::Passed => "passed",
            StepState::WouldRun => "would run (dry run)",
            StepState::Failed { .. } => "failed",
            StepState::Skipped { .. } => "skipped",
            StepState::Done { .. } => "done",
            StepState::InDoubt => "in doubt",
        }
    }
}

/// A generate step's written file (the rendered text itself is in [`StepLive`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneratedFile {
    pub name: String,
    pub path: String,
    pub sha256: String,
}

/// Who approved a destructive step in the current attempt.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Approvals {
    pub first: Option<String>,
    pub second: Option<String>,
}

/// Everything recorded about one step (rebuilt by replay).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRun {
    pub id: String,
    pub state: StepState,
    /// Runs started (StepStarted records).
    pub attempts: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Last statement sent or that would be sent (secrets redacted).
    pub statement: Option<Statement>,
    /// Checks: the first result set; sql: the first result set if any.
    pub evidence: Option<ResultSet>,
    pub assertions: Vec<AssertOutcome>,
    pub rows_affected: Vec<u64>,
    pub generated: Option<GeneratedFile>,
    pub approvals: Approvals,
}

impl StepRun {
    pub fn new(id: &str) -> StepRun {
        StepRun {
            id: id.to_string(),
            state: StepState::Pending,
            attempts: 0,
            started_at: None,
            finished_at: None,
            statement: None,
            evidence: None,
            assertions: Vec::new(),
            rows_affected: Vec::new(),
            generated: None,
            approvals: Approvals::default(),
        }
    }

    /// Failed assertions' messages (what is wrong and what to do).
    pub fn failed_assertions(&self) -> impl Iterator<Item = &AssertOutcome> {
        self.assertions.iter().filter(|a| !a.passed)
    }
}

/// Per-step data that is not journaled (lost on restart).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepLive {
    /// The request the step waits for.
    pub request_id: Option<u64>,
    pub progress: Option<btsdr_types::Progress>,
    /// A generate step's rendered text (may contain secrets, so never journaled).
    pub rendered: Option<String>,
    /// An AskConfirmDestructive is outstanding.
    pub awaiting_confirm: bool,
    /// Re-run was chosen for a step in doubt and its new run has not started: after a
    /// restart the step is in doubt again (the first run's effect is still unknown).
    pub rerun_chosen: bool,
    /// Verify was chosen (and journaled) for a step in doubt.
    pub verifying: bool,
}

/// What SessionStarted recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    pub session_id: String,
    pub runbook_id: String,
    pub title: String,
    pub version: String,
    pub content_hash: String,
    pub environment: String,
    pub operator: String,
    pub rto_minutes: Option<u32>,
    pub rpo_minutes: Option<u32>,
    pub declared_at: Option<DateTime<Utc>>,
    pub drill: bool,
    pub dry_run: bool,
    pub two_person_rule: bool,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignOff {
    pub name: String,
    pub role: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoteEntry {
    pub at: DateTime<Utc>,
    pub by: String,
    pub step: Option<String>,
    pub text: String,
}

/// Everything the journal rebuilds: live and replayed engines compare equal on this.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunState {
    pub session: Option<SessionInfo>,
    /// In runbook order.
    pub steps: Vec<StepRun>,
    /// Variables as recorded (secrets redacted).
    pub variables: Vec<NamedValue>,
    pub aborted: Option<String>,
    pub closed: bool,
    /// When the session was closed or aborted: its clock stops there.
    pub ended_at: Option<DateTime<Utc>>,
    pub signoffs: Vec<SignOff>,
    pub notes: Vec<NoteEntry>,
    /// Records applied.
    pub records: u64,
    pub last_activity: Option<DateTime<Utc>>,
}

/// Step counts for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    pub total: usize,
    pub pending: usize,
    pub blocked: usize,
    pub not_applicable: usize,
    pub running: usize,
    pub passed: usize,
    pub would_run: usize,
    pub failed: usize,
    pub skipped: usize,
    pub done: usize,
    pub in_doubt: usize,
}

impl Counts {
    pub fn add(&mut self, s: &StepState) {
        self.total += 1;
        match s {
            StepState::Pending => self.pending += 1,
            StepState::Blocked { .. } => self.blocked += 1,
            StepState::NotApplicable { .. } => self.not_applicable += 1,
            StepState::Running => self.running += 1,
            StepState::Passed => self.passed += 1,
            StepState::WouldRun => self.would_run += 1,
            StepState::Failed { .. } => self.failed += 1,
            StepState::Skipped { .. } => self.skipped += 1,
            StepState::Done { .. } => self.done += 1,
            StepState::InDoubt => self.in_doubt += 1,
        }
    }
    /// Steps that apply (total minus not applicable).
    pub fn applicable(&self) -> usize {
        self.total - self.not_applicable
    }
    /// Applicable steps finished (passed, would run, done, skipped).
    pub fn finished(&self) -> usize {
        self.passed + self.would_run + self.done + self.skipped
    }
    /// Everything applicable is finished.
    pub fn complete(&self) -> bool {
        self.finished() == self.applicable()
    }
}

/// What the operator should do with the next step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NextAction {
    /// Decide about a step left in doubt (verify, rerun, mark done).
    ResolveInDoubt,
    /// Retry, skip or abort a failed step.
    RetryOrSkip,
    /// Wait for the running step.
    Wait,
    /// Type the confirm word for a destructive step.
    ConfirmDestructive { word: String },
    /// A second, different operator must approve.
    SecondOperator { first: String },
    /// Do the manual step and confirm it.
    ConfirmManual,
    /// Run the step.
    Run,
    /// Everything applicable is finished: sign off and close.
    SignOff,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Next {
    /// `None` with [`NextAction::SignOff`].
    pub step: Option<String>,
    pub action: NextAction,
}
