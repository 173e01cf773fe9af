//! What both drivers (`app::driver` for the TUI, `batch::driver` headless) do the same way
//! with the engine's effects: the journal behind the write-ahead rule, and generated files.

use std::path::{Path, PathBuf};

use crate::engine::Record;
use crate::journal::{AppendReceipt, JournalWriter};

/// A session's journal under the write-ahead rule: once an append fails the session is
/// halted, and the driver sends nothing more (no statement, no file) until a new session.
pub struct WriteAhead {
    journal: Option<JournalWriter>,
    halted: Option<String>,
}

impl WriteAhead {
    pub fn new(journal: JournalWriter) -> WriteAhead {
        WriteAhead {
            journal: Some(journal),
            halted: None,
        }
    }

    /// No session yet: an append fails (and halts).
    pub fn closed() -> WriteAhead {
        WriteAhead {
            journal: None,
            halted: None,
        }
    }

    /// Appends and fsyncs `record`. On failure the session is halted and the error says which
    /// journal could not be written.
    pub fn append(&mut self, record: Record) -> Result<AppendReceipt, String> {
        let Some(j) = self.journal.as_mut() else {
            let error = "no journal is open".to_string();
            self.halted = Some(error.clone());
            return Err(error);
        };
        j.append(record).map_err(|e| {
            tracing::error!(error = %e, "journal append failed");
            let error = format!("cannot write the journal {}: {e}", j.path().display());
            self.halted = Some(error.clone());
            error
        })
    }

    /// The error that halted the session, if an append failed.
    pub fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    pub fn path(&self) -> Option<&Path> {
        self.journal.as_ref().map(JournalWriter::path)
    }
}

/// Writes a generate step's file inside `files_dir`. The name comes from the runbook: only
/// its last component is used (`journal::private::write_new`: owner-only, synced, never
/// through a link).
pub fn write_generated(files_dir: &Path, name: &str, contents: &str) -> Result<PathBuf, String> {
    let safe = Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .ok_or_else(|| format!("`{name}` is not a file name"))?;
    let path = files_dir.join(safe);
    crate::journal::private::write_new(&path, contents.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_stay_in_their_folder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = write_generated(dir.path(), "../../etc/x.txt", "a").expect("written");
        assert_eq!(p, dir.path().join("x.txt"));
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "a");
        let bad = write_generated(dir.path(), "..", "a").expect_err("not a name");
        assert_eq!(bad, "`..` is not a file name");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        let taken = write_generated(dir.path(), "sub", "a").expect_err("a folder");
        assert!(
            taken.starts_with(&dir.path().join("sub").display().to_string()),
            "{taken}"
        );
    }

    #[test]
    fn an_append_without_a_journal_halts() {
        use crate::engine::fixture::sample_runbook;
        use crate::engine::{Engine, EngineOptions, Input, Variables};
        let rb = std::sync::Arc::new(sample_runbook());
        let mut vars = Variables::from_runbook(&rb);
        vars.set("pwd", "not-a-real-secret");
        let opts = EngineOptions {
            operator: "amy".into(),
            session_id: "s".into(),
            ..EngineOptions::default()
        };
        let mut engine = Engine::new(std::sync::Arc::clone(&rb), vars, opts);
        let record = engine
            .handle(Input::Start, chrono::Utc::now())
            .into_iter()
            .find_map(|e| e.journal_record().cloned())
            .expect("Start is journaled");
        let mut w = WriteAhead::closed();
        assert!(w.halted().is_none());
        assert_eq!(
            w.append(record).expect_err("no journal"),
            "no journal is open"
        );
        assert_eq!(w.halted(), Some("no journal is open"));
    }
}
