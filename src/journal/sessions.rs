//! Session files under `<data dir>/sessions/` and the list of them.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::chain::{JournalWriter, read_records};
use crate::engine::events::{Event, Outcome, Resolution};

pub fn sessions_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("sessions")
}

/// A name that cannot be a session id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a session id (letters, digits, - _ . only; see `btsdr sessions`)")]
pub struct BadSessionId(pub String);

// For callers whose errors are still plain messages (launch.rs).
impl From<BadSessionId> for String {
    fn from(e: BadSessionId) -> String {
        e.to_string()
    }
}

/// A session id is used as a file name: letters, digits, `-`, `_` and `.` only.
pub(crate) fn validate_session_id(id: &str) -> Result<(), BadSessionId> {
    let ok = !id.is_empty()
        && !id.starts_with('.')
        && id.len() <= 120
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(BadSessionId(id.to_string()))
    }
}

pub fn session_path(data_dir: &Path, id: &str) -> Result<PathBuf, BadSessionId> {
    validate_session_id(id)?;
    Ok(sessions_dir(data_dir).join(format!("{id}.jsonl")))
}

/// `20261121-230405-backup`: sorts by start time.
pub fn new_session_id(now: DateTime<Utc>, runbook_id: &str) -> String {
    let rb: String = runbook_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(60)
        .collect();
    format!("{}-{rb}", now.format("%Y%m%d-%H%M%S"))
}

/// Creates a new session journal with a fresh id (adding `-2`, `-3`... on a clash).
pub fn create_session(
    data_dir: &Path,
    now: DateTime<Utc>,
    runbook_id: &str,
) -> io::Result<(String, JournalWriter)> {
    let base = new_session_id(now, runbook_id);
    for n in 1..100 {
        let id = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let path = sessions_dir(data_dir).join(format!("{id}.jsonl"));
        match JournalWriter::create(&path) {
            Ok(w) => return Ok((id, w)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("too many sessions named {base}: wait a second and try again"),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Open,
    Closed,
    Aborted,
    /// No complete record: the program stopped between creating the file and writing the
    /// session's first record. Nothing to resume or report.
    Empty,
}

/// One line of `btsdr sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionSummary {
    pub id: String,
    pub path: PathBuf,
    pub runbook_id: String,
    pub title: String,
    pub environment: String,
    pub operator: String,
    pub started: Option<DateTime<Utc>>,
    pub last_activity: Option<DateTime<Utc>>,
    pub status: SessionStatus,
    pub dry_run: bool,
    pub drill: bool,
    pub records: usize,
    /// Steps started without an outcome, or finished in doubt and not resolved.
    pub in_doubt: usize,
    /// The chain verified (a torn last line still counts as intact).
    pub intact: bool,
    /// Why the file could not be read or verified, if so.
    pub problem: Option<String>,
}

fn summarize(id: String, path: PathBuf) -> SessionSummary {
    let mut s = SessionSummary {
        id,
        path: path.clone(),
        runbook_id: String::new(),
        title: String::new(),
        environment: String::new(),
        operator: String::new(),
        started: None,
        last_activity: None,
        status: SessionStatus::Open,
        dry_run: false,
        drill: false,
        records: 0,
        in_doubt: 0,
        intact: false,
        problem: None,
    };
    let read = match read_records(&path) {
        Ok(r) => r,
        Err(e) => {
            s.problem = Some(e.to_string());
            return s;
        }
    };
    s.intact = read.report.is_intact();
    if let Some(b) = &read.report.first_bad {
        s.problem = Some(format!("verification failed at {b}"));
    }
    s.records = read.entries.len();
    let mut open: BTreeSet<String> = BTreeSet::new();
    let mut doubt: BTreeSet<String> = BTreeSet::new();
    for r in &read.entries {
        s.last_activity = Some(r.time);
        let step = r.step.clone().unwrap_or_default();
        match &r.event {
            Event::SessionStarted {
                runbook_id,
                title,
                environment,
                operator,
                drill,
                dry_run,
                ..
            } => {
                s.runbook_id = runbook_id.clone();
                s.title = title.clone();
                s.environment = environment.clone();
                s.operator = operator.clone();
                s.started = Some(r.time);
                s.drill = *drill;
                s.dry_run = *dry_run;
            }
            Event::StepStarted { .. } => {
                doubt.remove(&step);
                open.insert(step);
            }
            Event::StepFinished { outcome, .. } => {
                open.remove(&step);
                if matches!(outcome, Outcome::InDoubt { .. }) {
                    doubt.insert(step);
                }
            }
            // Re-run or verify chosen: still in doubt until the new run starts (as the
            // engine and the report say); marked done settles it.
            Event::InDoubtResolved {
                resolution: Resolution::MarkDone { .. },
                ..
            } => {
                doubt.remove(&step);
            }
            Event::GenerateWritten { .. } | Event::Skipped { .. } | Event::WouldRun { .. } => {
                open.remove(&step);
                doubt.remove(&step);
            }
            Event::Resumed { .. } => doubt.append(&mut open),
            Event::SessionClosed {} => s.status = SessionStatus::Closed,
            Event::Aborted { .. } => s.status = SessionStatus::Aborted,
            _ => {}
        }
    }
    s.in_doubt = open.len() + doubt.len();
    if s.records == 0 && s.problem.is_none() {
        s.status = SessionStatus::Empty;
        s.problem = Some(
            "empty: the program stopped before the session's first record was written; there is nothing to resume or report (the file can be deleted)".into(),
        );
    }
    s
}

/// Every session in `<data dir>/sessions`, newest first. Unreadable files are listed with
/// their problem rather than left out.
pub fn list_sessions(data_dir: &Path) -> io::Result<Vec<SessionSummary>> {
    let mut out: Vec<SessionSummary> = session_files(data_dir)?
        .into_iter()
        .map(|(id, path)| summarize(id, path))
        .collect();
    out.sort_by(newest_first);
    Ok(out)
}

/// The sessions that may still be open, newest first: like [`list_sessions`], but a journal
/// whose last line closes or aborts the session is passed over without reading and verifying
/// the whole chain (Home and `recover` only offer open sessions; a year of daily `btsdr check`
/// sessions must not slow their start). Any doubt about the last line means a full read.
pub fn list_open_sessions(data_dir: &Path) -> io::Result<Vec<SessionSummary>> {
    Ok(list_for_home(data_dir, 0)?.open)
}

/// What Home shows: the open sessions and the newest ended ones.
#[derive(Debug, Default)]
pub struct HomeSessions {
    /// Open sessions, newest first.
    pub open: Vec<SessionSummary>,
    /// Closed or aborted sessions, newest first, at most the number asked for.
    pub ended: Vec<SessionSummary>,
}

/// The open sessions (as [`list_open_sessions`]) and the `recent` newest closed or aborted
/// ones. Only those are read whole: ended sessions are found by their last line and ordered
/// by id, which starts with the creation time.
pub fn list_for_home(data_dir: &Path, recent: usize) -> io::Result<HomeSessions> {
    let mut files = session_files(data_dir)?;
    // Newest first by id (`YYYYmmdd-HHMMSS-runbook[-n]`).
    files.sort_by(|a, b| b.0.cmp(&a.0));
    let mut out = HomeSessions::default();
    for (id, path) in files {
        let ended = ended_by_last_line(&path);
        if ended && out.ended.len() >= recent {
            continue;
        }
        let s = summarize(id, path);
        match s.status {
            SessionStatus::Open => out.open.push(s),
            SessionStatus::Closed | SessionStatus::Aborted if out.ended.len() < recent => {
                out.ended.push(s)
            }
            _ => {}
        }
    }
    out.open.sort_by(newest_first);
    out.ended.sort_by(newest_first);
    Ok(out)
}

fn newest_first(a: &SessionSummary, b: &SessionSummary) -> std::cmp::Ordering {
    b.started.cmp(&a.started).then_with(|| b.id.cmp(&a.id))
}

/// Whether the last line of a journal is a `session_closed` or `aborted` record, read from
/// the end of the file only. Not a verification: a caller that shows the session reads it whole.
fn ended_by_last_line(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 64 * 1024;
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(len) = f.metadata().map(|m| m.len()) else {
        return false;
    };
    if f.seek(SeekFrom::Start(len.saturating_sub(TAIL))).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return false;
    }
    // A complete last line ends with a newline; a torn one is read in full elsewhere.
    let Some(body) = buf.strip_suffix(b"\n") else {
        return false;
    };
    let line = body.rsplit(|b| *b == b'\n').next().unwrap_or(body);
    serde_json::from_slice::<crate::engine::Record>(line)
        .is_ok_and(|r| matches!(r.event, Event::SessionClosed {} | Event::Aborted { .. }))
}

/// `(id, path)` of every `*.jsonl` in the sessions folder (none if it does not exist), in
/// no particular order.
pub(crate) fn session_files(data_dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let dir = sessions_dir(data_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot list {}: {e}", dir.display()),
            ));
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        // Only regular files: a FIFO would block the reader forever, a symbolic link could
        // make a resume append to a file outside the folder. `file_type` does not follow links.
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            tracing::warn!(path = %path.display(), "skipped: not a regular file");
            continue;
        }
        if let Some(id) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        {
            out.push((id, path));
        }
    }
    Ok(out)
}

/// Why a session journal does not belong under its file name: the first record binds the
/// session id (which names the runbook), so two sessions' files swapped are caught.
/// `None` when it matches, or when the file is not a session journal (the change log).
pub(crate) fn binding_problem(path: &Path) -> Option<String> {
    if path.file_stem()? == "changelog" {
        return None;
    }
    binding_problem_in(path, &read_records(path).ok()?.entries)
}

/// [`binding_problem`] for records already read from `path`.
pub(crate) fn binding_problem_in(
    path: &Path,
    records: &[crate::engine::events::Record],
) -> Option<String> {
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    let first = records.first()?;
    match &first.event {
        Event::SessionStarted {
            session_id,
            runbook_id,
            ..
        } if session_id != &stem => Some(format!(
            "this file is named {stem} but its first record starts session {session_id} \
             (runbook {runbook_id}): it was renamed or swapped with another session's"
        )),
        Event::SessionStarted { .. } => None,
        _ => Some(format!(
            "the first record of {stem} is not the start of a session: records are missing \
             from the beginning"
        )),
    }
}
