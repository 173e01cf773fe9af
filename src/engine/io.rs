//! What goes into the engine ([`Input`]) and what comes out ([`Effect`]).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::engine::events::{Record, Resolution};
use btsdr_types::{Progress, QueryOutput, SqlError, Statement};

/// An operator action or a result coming back from the driver.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Input {
    /// Start a new session (journals SessionStarted with the variables, secrets redacted).
    Start,
    /// Continue a replayed session (journals Resumed; running steps become in doubt).
    Resume,
    Run(String),
    /// Run a failed step again.
    Retry(String),
    Skip {
        step: String,
        reason: String,
        by: String,
    },
    ConfirmManual {
        step: String,
        by: String,
        note: String,
        evidence: String,
    },
    /// The operator typed the confirm word (exact, case-sensitive).
    ConfirmDestructive {
        step: String,
        typed: String,
        by: String,
    },
    /// Two-person rule: a different operator approves.
    SecondOperatorConfirm {
        step: String,
        by: String,
    },
    Abort {
        reason: String,
    },
    /// Select a step (UI only; not journaled).
    Jump(String),
    /// Run a check again, even after it passed.
    ReVerify(String),
    ResolveInDoubt {
        step: String,
        resolution: Resolution,
    },
    SetVariable {
        name: String,
        value: String,
    },
    Note {
        step: Option<String>,
        text: String,
    },
    SqlFinished {
        step: String,
        request_id: u64,
        result: Result<QueryOutput, SqlError>,
    },
    SqlProgress {
        step: String,
        request_id: u64,
        progress: Progress,
    },
    GenerateWritten {
        step: String,
        path: String,
    },
    GenerateFailed {
        step: String,
        error: String,
    },
    SignOff {
        name: String,
        role: String,
        at: DateTime<Utc>,
    },
    /// A sign-off with the signer's comment and (reviews) the next review date; open steps
    /// are journaled as its exceptions.
    SignOffWith {
        name: String,
        role: String,
        comment: String,
        next_review: String,
        at: DateTime<Utc>,
    },
    /// Close the session (journals SessionClosed).
    Close,
    /// Close from the UI: with steps still open a reason is required (journaled with them).
    CloseWithReason {
        reason: String,
    },
    /// Open a skipped or done step again (journals Reopened with who and why).
    Reopen {
        step: String,
        reason: String,
        by: String,
    },
    /// The driver could not append to the journal: the engine refuses to start anything else.
    JournalFailed {
        error: String,
    },
}

/// Work for the driver, in order. The driver must append (and fsync) each `Journal` record
/// before performing the effects after it, and stop if an append fails.
#[allow(clippy::large_enum_variant)] // effects are few and short-lived
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    Journal {
        record: Record,
    },
    /// Send the statement (identifiers quoted, values bound as parameters — secrets in clear,
    /// so never log `statement.params`).
    RunSql {
        request_id: u64,
        step: String,
        statement: Statement,
    },
    /// Dry run: the statement that would have been sent (secrets redacted). Nothing is sent.
    WouldRun {
        step: String,
        statement: Statement,
    },
    /// Write a generated file, then send GenerateWritten or GenerateFailed.
    WriteFile {
        step: String,
        name: String,
        contents: String,
    },
    /// Ask for the confirm word.
    AskConfirmDestructive {
        step: String,
        word: String,
    },
    /// Ask a second, different operator to approve (two-person rule).
    AskSecondOperator {
        step: String,
        first: String,
    },
    /// Show the manual step and ask for confirmation.
    AskManual {
        step: String,
    },
    Notify {
        text: String,
    },
    /// The input was not accepted; the text says why and what to do.
    Refused {
        text: String,
    },
}

impl Effect {
    pub fn journal_record(&self) -> Option<&Record> {
        match self {
            Effect::Journal { record } => Some(record),
            _ => None,
        }
    }
}
