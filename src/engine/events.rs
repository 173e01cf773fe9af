//! The engine's event vocabulary: what one journal line holds, a hash-chained [`Record`]
//! around a tagged [`Event`]. The engine builds and applies them; `journal` only stores them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::runbook::expr::AssertOutcome;
use btsdr_types::{ResultSet, Statement};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Lowercase hex SHA-256 (a generated file's digest in [`Event::GenerateWritten`]).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Shown instead of a secret value everywhere it would be persisted or displayed.
pub const REDACTED: &str = "******";

/// One journal line. `seq`, `prev` and `hash` are assigned by the writer (the engine leaves
/// them at 0 / empty); `hash` must stay the last field (see `docs` in `journal::chain`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub time: DateTime<Utc>,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub event: Event,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
    #[serde(default)]
    pub prev: String,
    #[serde(default)]
    pub hash: String,
}

impl Record {
    /// A record before the writer chains it.
    pub fn new(time: DateTime<Utc>, operator: &str, step: Option<&str>, event: Event) -> Record {
        Record {
            seq: 0,
            time,
            operator: operator.to_string(),
            step: step.map(str::to_string),
            event,
            details: String::new(),
            prev: String::new(),
            hash: String::new(),
        }
    }

    #[must_use]
    pub fn with_details(mut self, details: impl Into<String>) -> Record {
        self.details = details.into();
        self
    }
}

/// A variable as recorded (secret values are [`REDACTED`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedValue {
    pub name: String,
    pub value: String,
}

/// How a run of a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed {
        error: String,
    },
    /// The statement may or may not have taken effect (connection lost mid-statement).
    InDoubt {
        reason: String,
    },
}

/// What the operator decided about a step left in doubt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "resolution", rename_all = "snake_case")]
pub enum Resolution {
    /// Check on the server first (checks re-run; other steps stay in doubt).
    Verify,
    /// Run the step again (destructive steps ask for confirmation again).
    Rerun,
    /// The operator verified the step took effect.
    MarkDone { note: String },
}

/// Which part of a failure plan a session carries out, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRef {
    /// The failure class id (`assets/failures.toml`).
    pub id: String,
    /// Its label, as the operator chose it.
    pub label: String,
    /// 0-based part (runbook) of the plan, and how many parts it has.
    pub part: usize,
    pub parts: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    SessionStarted {
        session_id: String,
        runbook_id: String,
        title: String,
        version: String,
        content_hash: String,
        environment: String,
        operator: String,
        #[serde(default)]
        rto_minutes: Option<u32>,
        #[serde(default)]
        rpo_minutes: Option<u32>,
        #[serde(default)]
        declared_at: Option<DateTime<Utc>>,
        drill: bool,
        dry_run: bool,
        #[serde(default)]
        two_person_rule: bool,
        /// The runbook is a review (`kind = "review"`): framed as one, no RTO clock.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        review: bool,
        /// In runbook order; secrets redacted.
        variables: Vec<NamedValue>,
        /// The failure plan this session was started from (Home, "Something failed?").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plan: Option<PlanRef>,
    },
    /// A variable changed during the session (secret values redacted).
    VariableSet {
        name: String,
        value: String,
    },
    /// Written (and fsynced) before the statement is sent. `statement` has secrets redacted;
    /// `None` for generate steps.
    StepStarted {
        attempt: u32,
        #[serde(default)]
        statement: Option<Statement>,
    },
    StepFinished {
        outcome: Outcome,
        /// The first result set (checks: the evidence the assertions were evaluated on).
        #[serde(default)]
        evidence: Option<ResultSet>,
        #[serde(default)]
        assertions: Vec<AssertOutcome>,
        #[serde(default)]
        rows_affected: Vec<u64>,
    },
    /// Dry run: the exact statement that would have been sent (secrets redacted).
    WouldRun {
        #[serde(default)]
        statement: Option<Statement>,
    },
    ManualConfirmed {
        by: String,
        note: String,
        evidence: String,
    },
    Skipped {
        by: String,
        reason: String,
    },
    /// The operator typed the right confirm word (`second`: the second operator's approval).
    DestructiveConfirmed {
        by: String,
        second: bool,
        /// The word that was typed (the step's confirm word); absent in older journals.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        word: Option<String>,
    },
    InDoubtResolved {
        by: String,
        resolution: Resolution,
    },
    GenerateWritten {
        name: String,
        path: String,
        sha256: String,
    },
    Note {
        text: String,
    },
    SignedOff {
        name: String,
        role: String,
        /// Applicable steps not finished (or skipped) when this person signed, as
        /// `step: state`: a sign-off with exceptions. Empty in older journals.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        exceptions: Vec<String>,
        /// The signer's comment (a reviewer's findings, conditions).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        comment: String,
        /// A review's next review date as typed (YYYY-MM-DD), if given.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        next_review: String,
    },
    /// A skipped or done step opened again (it becomes pending; its dependants wait).
    Reopened {
        by: String,
        reason: String,
    },
    /// A session was reopened after a stop or crash; running steps became in doubt.
    Resumed {
        in_doubt: Vec<String>,
    },
    /// Closing with steps still open: the record's `details` give them and the reason.
    SessionClosed {},
    Aborted {
        reason: String,
    },
}

impl Event {
    /// The `type` tag as written in the file.
    pub fn name(&self) -> &'static str {
        match self {
            Event::SessionStarted { .. } => "session_started",
            Event::VariableSet { .. } => "variable_set",
            Event::StepStarted { .. } => "step_started",
            Event::StepFinished { .. } => "step_finished",
            Event::WouldRun { .. } => "would_run",
            Event::ManualConfirmed { .. } => "manual_confirmed",
            Event::Skipped { .. } => "skipped",
            Event::DestructiveConfirmed { .. } => "destructive_confirmed",
            Event::InDoubtResolved { .. } => "in_doubt_resolved",
            Event::GenerateWritten { .. } => "generate_written",
            Event::Note { .. } => "note",
            Event::SignedOff { .. } => "signed_off",
            Event::Resumed { .. } => "resumed",
            Event::Reopened { .. } => "reopened",
            Event::SessionClosed {} => "session_closed",
            Event::Aborted { .. } => "aborted",
        }
    }
}
