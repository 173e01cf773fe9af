//! The file format as written: what `runbooks/*.toml` deserialises into, with spans.
//!
//! The loader turns this into the validated `model`. Documented in `docs/RUNBOOK_FORMAT.md`.

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// A whole runbook file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRunbook {
    /// Stable id, also the file stem (`backup`, `restore`, ...).
    pub id: Spanned<String>,
    pub title: String,
    pub summary: String,
    /// Semantic version of the runbook content.
    pub version: String,
    /// `procedure` (default: an incident or maintenance, on the RTO clock) or `review` (a
    /// readiness review: framed by scope, findings and verdict, no RTO clock).
    #[serde(default)]
    pub kind: RunbookKind,
    /// The Microsoft checklist(s) this runbook implements.
    #[serde(default)]
    pub checklist: Vec<ChecklistRef>,
    #[serde(default)]
    pub variables: Vec<Variable>,
    #[serde(default)]
    pub sections: Vec<RawSection>,
}

/// What a runbook is for (`kind` at the top of the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunbookKind {
    #[default]
    Procedure,
    Review,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistRef {
    pub title: String,
    pub url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VarKind {
    Text,
    Server,
    Path,
    Bool,
    Choice,
    Number,
    Secret,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    pub name: Spanned<String>,
    pub label: String,
    #[serde(default)]
    pub help: String,
    pub kind: VarKind,
    /// Default value as TOML (string, integer or bool).
    #[serde(default)]
    pub default: Option<toml::Value>,
    #[serde(default)]
    pub required: bool,
    /// Allowed values for `kind = "choice"`.
    #[serde(default)]
    pub choices: Vec<String>,
    /// Regular expression the whole value must match.
    #[serde(default)]
    pub pattern: Option<Spanned<String>>,
    #[serde(default)]
    pub min_len: Option<usize>,
    /// Maximum length in characters (SQL Server silently truncates over-long parameters).
    #[serde(default)]
    pub max_len: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSection {
    pub id: Spanned<String>,
    pub title: String,
    #[serde(default)]
    pub summary: String,
    /// Condition on variables; when false every step in the section is not applicable.
    #[serde(default)]
    pub when: Option<Spanned<String>>,
    #[serde(default)]
    pub steps: Vec<RawStep>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub id: Spanned<String>,
    /// `runbook:step` (or `step` in the same runbook): take every field not written here
    /// from that step. `covers`, `when` and `after` are never inherited.
    pub uses: Option<Spanned<String>>,
    pub title: Option<String>,
    pub why: Option<String>,
    pub kind: Option<Spanned<String>>,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default)]
    pub covers: Vec<Spanned<String>>,
    #[serde(default)]
    pub when: Option<Spanned<String>>,
    #[serde(default)]
    pub after: Vec<Spanned<String>>,
    /// Variables the app asks for (with their current or discovered values) before the step
    /// runs. Never inherited.
    #[serde(default)]
    pub ask: Vec<Spanned<String>>,
    /// Check steps: variables whose suggested value is read from the result's first row.
    /// Never inherited.
    #[serde(default)]
    pub discover: Vec<RawDiscover>,
    // manual
    pub run_on: Option<Spanned<String>>,
    pub instructions: Option<Spanned<String>>,
    #[serde(default)]
    pub commands: Vec<RawCommand>,
    pub evidence: Option<Spanned<String>>,
    // sql / check
    pub server: Option<Spanned<String>>,
    pub database: Option<Spanned<String>>,
    pub sql: Option<Spanned<String>>,
    #[serde(default)]
    pub params: Vec<Spanned<String>>,
    pub destructive: Option<Spanned<bool>>,
    pub confirm_word: Option<Spanned<String>>,
    pub undo: Option<Spanned<String>>,
    pub timeout_secs: Option<Spanned<u64>>,
    pub long_running: Option<Spanned<bool>>,
    // check
    #[serde(default)]
    pub assert: Vec<RawAssertion>,
    pub health: Option<Spanned<bool>>,
    pub opt_in: Option<Spanned<bool>>,
    // generate
    pub output: Option<Spanned<String>>,
    pub escape: Option<Spanned<String>>,
    pub template: Option<Spanned<String>>,
}

/// `[[sections.steps.discover]]`: `variable` is suggested from `column` of the first row.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiscover {
    pub variable: Spanned<String>,
    pub column: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    #[serde(default)]
    pub shell: String,
    pub run: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssertion {
    pub rows: Option<Spanned<String>>,
    pub each: Option<Spanned<String>>,
    pub any: Option<Spanned<String>>,
    pub none: Option<Spanned<String>>,
    pub message: Spanned<String>,
}
