//! The validated runbook model the engine, UI and reports use.
//!
//! Built by the loader from `raw` after every check passed; never constructed from
//! unchecked input. `docs/RUNBOOK_FORMAT.md` documents the file format.

use serde::Serialize;

use super::expr::{Assertion, Cond};
pub use super::raw::{ChecklistRef, RunbookKind, VarKind};
use btsdr_types::Role;

/// Where something was written, for messages (1-based).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Loc {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Runbook {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub version: String,
    /// `kind = "review"`: a readiness review (report framing, no RTO clock).
    pub kind: RunbookKind,
    pub checklist: Vec<ChecklistRef>,
    pub variables: Vec<Variable>,
    pub sections: Vec<Section>,
    /// Where it was loaded from (`embedded:backup.toml` or a path).
    pub origin: String,
    /// SHA-256 of the file's bytes, hex: sessions record it.
    pub content_hash: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Variable {
    pub name: String,
    pub label: String,
    pub help: String,
    pub kind: VarKind,
    /// Default rendered as text ("true"/"false" for bools).
    pub default: Option<String>,
    pub required: bool,
    pub choices: Vec<String>,
    pub pattern: Option<String>,
    pub min_len: Option<usize>,
    pub max_len: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub when: Option<Cond>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub id: String,
    pub title: String,
    pub why: String,
    pub references: Vec<String>,
    pub covers: Vec<String>,
    /// The step's own condition (the section's is kept on the section).
    pub when: Option<Cond>,
    pub after: Vec<String>,
    /// Variables asked for (current or discovered value shown) before the step runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ask: Vec<String>,
    /// (variable, column): a value suggested from the first row of this check's result.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub discover: Vec<(String, String)>,
    pub body: StepBody,
    pub loc: Loc,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StepBody {
    Manual(Manual),
    Sql(SqlSpec),
    Check(CheckSpec),
    Generate(Generate),
}

#[derive(Debug, Clone, Serialize)]
pub struct Manual {
    pub run_on: String,
    pub instructions: String,
    pub commands: Vec<Command>,
    pub evidence: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Command {
    pub shell: String,
    pub run: String,
}

/// A statement as written: `{{ident:var}}` still in place, params by variable name.
#[derive(Debug, Clone, Serialize)]
pub struct SqlSpec {
    pub server: Role,
    pub database: String,
    pub sql: String,
    pub params: Vec<String>,
    pub destructive: bool,
    /// The word a destructive step asks the operator to type.
    pub confirm_word: Option<String>,
    /// How to reverse it, when it can be (disabling a job): the confirmation then says so
    /// instead of "cannot be undone".
    pub undo: Option<String>,
    pub timeout_secs: u64,
    pub long_running: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckSpec {
    pub server: Role,
    pub database: String,
    pub sql: String,
    pub params: Vec<String>,
    pub timeout_secs: u64,
    pub asserts: Vec<Assertion>,
    pub health: bool,
    pub opt_in: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Generate {
    pub output: String,
    pub escape: Escape,
    pub template: String,
    pub instructions: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Escape {
    Text,
    Xml,
    Sql,
}

impl Runbook {
    /// A readiness review (`kind = "review"`), not an incident.
    pub fn is_review(&self) -> bool {
        self.kind == RunbookKind::Review
    }

    /// All steps in document order with their section.
    pub fn steps(&self) -> impl Iterator<Item = (&Section, &Step)> {
        self.sections
            .iter()
            .flat_map(|s| s.steps.iter().map(move |st| (s, st)))
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps().map(|(_, s)| s).find(|s| s.id == id)
    }

    pub fn section_of(&self, step_id: &str) -> Option<&Section> {
        self.steps()
            .find(|(_, s)| s.id == step_id)
            .map(|(sec, _)| sec)
    }

    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }

    pub fn step_count(&self) -> usize {
        self.sections.iter().map(|s| s.steps.len()).sum()
    }
}

impl Step {
    pub fn kind_name(&self) -> &'static str {
        match self.body {
            StepBody::Manual(_) => "manual",
            StepBody::Sql(_) => "sql",
            StepBody::Check(_) => "check",
            StepBody::Generate(_) => "generate",
        }
    }
    pub fn is_destructive(&self) -> bool {
        matches!(&self.body, StepBody::Sql(s) if s.destructive)
    }
    /// The role and statement for sql/check steps.
    pub fn statement(&self) -> Option<(Role, &str, &str, &[String], u64)> {
        match &self.body {
            StepBody::Sql(s) => Some((s.server, &s.database, &s.sql, &s.params, s.timeout_secs)),
            StepBody::Check(c) => Some((c.server, &c.database, &c.sql, &c.params, c.timeout_secs)),
            _ => None,
        }
    }
}
