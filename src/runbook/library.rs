//! The runbooks available to a run: the embedded ones, overridden or extended by
//! `<config dir>/runbooks/*.toml` (same id wins).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::checklists::{self, Row};
use super::diag::Diagnostic;
use super::loader;
use super::model::Runbook;
use super::raw::RawRunbook;

/// What happens to a user runbook file with problems, for messages.
pub(crate) const IGNORED: &str =
    "this user runbook file was ignored (an embedded runbook with the same id stays in use)";

#[derive(Debug, Default)]
pub struct Library {
    pub runbooks: Vec<Arc<Runbook>>,
    pub rows: Vec<Row>,
    /// Problems in user files; those files were ignored and the embedded runbook kept.
    pub warnings: Vec<Diagnostic>,
}

impl Library {
    /// Embedded runbooks plus the user folder, if it exists.
    pub fn load(user_dir: Option<&Path>) -> Result<Library, Vec<Diagnostic>> {
        let rows = checklists::embedded()?;
        let ids: HashSet<String> = rows.iter().map(|r| r.id.clone()).collect();
        // Raw forms of every file, user files first, so `uses` sees the overrides.
        let mut warnings = Vec::new();
        let mut user_files: Vec<(PathBuf, String)> = Vec::new();
        for p in user_dir.map(toml_files).unwrap_or_default() {
            match read_text(&p) {
                Ok(t) => user_files.push((p, t)),
                Err(d) => warnings.extend(d),
            }
        }
        // Each file is read once; `uses` resolves against all of them, user files first.
        let embedded: Vec<ReadFile<'_>> = crate::embedded::RUNBOOKS
            .iter()
            .map(|(name, text)| {
                let origin = format!("embedded:runbooks/{name}");
                let raw = loader::read_raw(&origin, text);
                (origin, *text, raw)
            })
            .collect();
        let user: Vec<ReadFile<'_>> = user_files
            .iter()
            .map(|(path, text)| {
                let origin = path.display().to_string();
                let raw = loader::read_raw(&origin, text);
                (origin, text.as_str(), raw)
            })
            .collect();
        let raws: Vec<RawRunbook> = user
            .iter()
            .chain(embedded.iter())
            .filter_map(|(_, _, r)| r.as_ref().ok().cloned())
            .collect();
        let resolve = |rb: &str, step: &str| loader::find_raw_step(&raws, rb, step);
        let mut runbooks: Vec<Arc<Runbook>> = Vec::new();
        let mut errors = Vec::new();
        for (origin, text, raw) in embedded {
            match raw.and_then(|raw| loader::validate(&origin, text, raw, Some(&ids), &resolve)) {
                Ok(rb) => runbooks.push(Arc::new(rb)),
                Err(d) => errors.extend(d),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        for (origin, text, raw) in user {
            match raw.and_then(|raw| loader::validate(&origin, text, raw, Some(&ids), &resolve)) {
                Ok(rb) => {
                    let rb = Arc::new(rb);
                    if let Some(slot) = runbooks.iter_mut().find(|r| r.id == rb.id) {
                        *slot = rb;
                    } else {
                        runbooks.push(rb);
                    }
                }
                Err(d) => warnings.extend(d),
            }
        }
        Ok(Library {
            runbooks,
            rows,
            warnings,
        })
    }

    pub fn get(&self, id: &str) -> Option<Arc<Runbook>> {
        self.runbooks.iter().find(|r| r.id == id).cloned()
    }

    pub fn ids(&self) -> Vec<&str> {
        self.runbooks.iter().map(|r| r.id.as_str()).collect()
    }

    /// Checklist row ids no step of any runbook covers.
    pub fn uncovered_rows(&self) -> Vec<&Row> {
        let covered: HashSet<&str> = self
            .runbooks
            .iter()
            .flat_map(|r| {
                r.steps()
                    .flat_map(|(_, s)| s.covers.iter().map(String::as_str))
            })
            .collect();
        self.rows
            .iter()
            .filter(|r| !covered.contains(r.id.as_str()))
            .collect()
    }
}

/// A file read as the raw format: origin, text, and the raw runbook or its diagnostics.
type ReadFile<'a> = (String, &'a str, Result<RawRunbook, Vec<Diagnostic>>);

/// `*.toml` files of a folder, sorted; a missing folder is empty.
pub(crate) fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Reads and validates one runbook file.
pub(crate) fn load_file(
    path: &Path,
    rows: Option<&HashSet<String>>,
) -> Result<Runbook, Vec<Diagnostic>> {
    let text = read_text(path)?;
    loader::parse(&path.display().to_string(), &text, rows)
}

/// A file's text, or a diagnostic saying why it cannot be read.
fn read_text(path: &Path) -> Result<String, Vec<Diagnostic>> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        vec![Diagnostic {
            file: name.clone(),
            line: 1,
            col: 1,
            message: format!("cannot read the file: {e}"),
            help: None,
        }]
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let (line, col) = super::diag::LineIndex::new(&String::from_utf8_lossy(e.as_bytes()))
            .line_col(e.utf8_error().valid_up_to());
        vec![Diagnostic {
            file: name.clone(),
            line,
            col,
            message: "the file is not valid UTF-8".into(),
            help: Some("save it as UTF-8".into()),
        }]
    })?;
    Ok(text)
}
