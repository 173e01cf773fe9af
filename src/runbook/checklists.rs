//! The rows of Microsoft's checklists (`assets/checklists.toml`) that runbook steps `cover`.

use serde::Deserialize;

use super::diag::{Diagnostic, Sink};

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub id: String,
    /// Seed document file name.
    pub doc: String,
    pub section: String,
    pub text: String,
    pub url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    rows: Vec<Row>,
}

pub fn parse(origin: &str, text: &str) -> Result<Vec<Row>, Vec<Diagnostic>> {
    let mut sink = Sink::new(origin, text);
    match toml::from_str::<File>(text) {
        Ok(f) => Ok(f.rows),
        Err(e) => {
            sink.at(
                e.span().unwrap_or(0..0),
                e.message().trim().to_string(),
                None,
            );
            Err(sink.diags)
        }
    }
}

/// The checklist rows compiled into the binary.
pub fn embedded() -> Result<Vec<Row>, Vec<Diagnostic>> {
    let text = crate::embedded::asset("checklists.toml").unwrap_or("rows = []");
    parse("embedded:assets/checklists.toml", text)
}
