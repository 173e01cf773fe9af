//! The hash chain shared by session journals and the change log.
//!
//! # Format
//!
//! A file is JSON Lines: one compact JSON object per line, each ending in `\n`.
//!
//! * `seq` is 1 on the first line and grows by exactly 1 (line N holds seq N).
//! * `prev` is the lowercase hex SHA-256 of the previous line's exact bytes (without its
//!   `\n`); the first line has 64 zeros ([`GENESIS`]).
//! * `hash` is the last member. The line is `P,"hash":"H"}` where `H` is the lowercase hex
//!   SHA-256 of the bytes `P` (everything before `,"hash":`). No canonical re-encoding is
//!   needed to verify: the bytes on disk are hashed as they are.
//! * A sidecar `<file>.head` holds `{"seq":N,"line_sha256":"..."}` of the last complete line,
//!   so deleting records from the end is detected too. It is rewritten after every append.
//!
//! The chain detects edits, insertions, deletions and reordering; it does not stop someone
//! who rewrites the whole file and recomputes every hash (compare the head with a copy, e.g.
//! the one printed in the sign-off report).

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::events::{GENESIS, Record};

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A line type the chain can seal: it carries `seq`, `prev` and, as its last field, `hash`.
pub(crate) trait Chained: Serialize + DeserializeOwned {
    fn set_chain(&mut self, seq: u64, prev: &str, hash: &str);
}

impl Chained for Record {
    fn set_chain(&mut self, seq: u64, prev: &str, hash: &str) {
        self.seq = seq;
        self.prev = prev.to_string();
        self.hash = hash.to_string();
    }
}

/// Serializes `entry` as line `seq` after `prev`; returns the line (without `\n`).
pub(crate) fn seal<T: Chained>(entry: &mut T, seq: u64, prev: &str) -> io::Result<String> {
    entry.set_chain(seq, prev, GENESIS);
    let text = serde_json::to_string(entry).map_err(io::Error::other)?;
    let suffix = format!(",\"hash\":\"{GENESIS}\"}}");
    let Some(prefix) = text.strip_suffix(&suffix) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "internal error: a journal entry must serialize `hash` as its last field",
        ));
    };
    let hash = sha256_hex(prefix.as_bytes());
    entry.set_chain(seq, prev, &hash);
    Ok(format!("{prefix},\"hash\":\"{hash}\"}}"))
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Problem {
    /// Not a JSON object (an edit broke the syntax, or a line is empty).
    NotJson {
        error: String,
    },
    MissingField {
        field: String,
    },
    /// The sequence number is not the next one: a record was inserted, deleted or moved.
    SeqMismatch {
        expected: u64,
        found: u64,
    },
    /// `prev` does not match the previous line: a record was inserted, deleted, moved or edited.
    PrevMismatch {
        expected: String,
        found: String,
    },
    /// The record's bytes were changed after it was written.
    HashMismatch {
        stored: String,
        computed: String,
    },
    /// `hash` is not the last member or not 64 lowercase hex digits.
    BadHashLayout,
    /// The head file says more records were written than the file holds.
    Missing {
        head_seq: u64,
    },
    /// The record at the head file's position is not the one that was written there.
    HeadMismatch {
        seq: u64,
    },
    /// Records exist but the head file does not (it is created with the journal).
    HeadMissing,
    /// The head file cannot be read or parsed.
    HeadUnreadable {
        error: String,
    },
    /// The first record starts another session than the file name says.
    WrongSession,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotJson { error } => write!(f, "the line is not a valid record ({error})"),
            Problem::MissingField { field } => write!(f, "the record has no `{field}`"),
            Problem::SeqMismatch { expected, found } => write!(
                f,
                "sequence number {found} where {expected} was expected: a record was inserted, deleted or moved here"
            ),
            Problem::PrevMismatch { expected, found } => write!(
                f,
                "`prev` is {found} but the previous line hashes to {expected}: the chain is broken here"
            ),
            Problem::HashMismatch { stored, computed } => write!(
                f,
                "the record was changed after it was written (stored hash {stored}, content hashes to {computed})"
            ),
            Problem::BadHashLayout => {
                f.write_str("`hash` is missing, malformed or not the last field")
            }
            Problem::Missing { head_seq } => write!(
                f,
                "the head file says {head_seq} records were written: records from here on were deleted"
            ),
            Problem::HeadMismatch { seq } => write!(
                f,
                "record {seq} differs from the one the head file recorded: the journal was rewritten"
            ),
            Problem::HeadMissing => f.write_str(
                "the head file is missing, so records deleted from the end cannot be ruled out. \
                 If it was lost to a crash, accept the journal as it is with \
                 `btsdr journal accept-head ID --reason TEXT` (journaled)",
            ),
            Problem::WrongSession => f.write_str(
                "the first record starts another session than the file name says (renamed or swapped)",
            ),
            Problem::HeadUnreadable { error } => write!(
                f,
                "the head file is unreadable ({error}), so records deleted from the end cannot be \
                 ruled out. If it was damaged by a crash, accept the journal as it is with \
                 `btsdr journal accept-head ID --reason TEXT` (journaled)"
            ),
        }
    }
}

/// The first line that failed verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadRecord {
    /// 1-based line number.
    pub line: usize,
    /// The seq the line claims, when it could be read.
    pub seq: Option<u64>,
    pub problem: Problem,
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(s) => write!(f, "line {} (seq {s}): {}", self.line, self.problem),
            None => write!(f, "line {}: {}", self.line, self.problem),
        }
    }
}

/// An incomplete last line (a write interrupted by a crash or power loss).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TornLine {
    pub line: usize,
    /// Byte offset where the torn line starts (the file is truncated here on reopen).
    pub offset: u64,
    pub bytes: usize,
    /// The start of the torn text, lossily decoded.
    pub preview: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VerifyReport {
    /// Complete records that verified, before any problem.
    pub records: usize,
    pub last_seq: u64,
    /// SHA-256 of the last good line: what the next record's `prev` must be.
    pub head: String,
    pub first_bad: Option<BadRecord>,
    pub torn: Option<TornLine>,
    /// Not tampering, but worth telling (e.g. no head file).
    pub warnings: Vec<String>,
}

impl VerifyReport {
    /// No edits, insertions, deletions or reordering (a torn last line is allowed).
    pub fn is_intact(&self) -> bool {
        self.first_bad.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first_bad {
            None => write!(f, "OK: {} records, chain head {}", self.records, self.head)?,
            Some(b) => write!(
                f,
                "TAMPERED or damaged at {b} ({} records before it verified)",
                self.records
            )?,
        }
        if let Some(t) = &self.torn {
            if self.first_bad.is_none() {
                write!(
                    f,
                    "; line {} is incomplete ({} bytes, an interrupted write, not tampering)",
                    t.line, t.bytes
                )?;
            } else {
                write!(f, "; line {} is incomplete ({} bytes)", t.line, t.bytes)?;
            }
        }
        for w in &self.warnings {
            write!(f, "; {w}")?;
        }
        Ok(())
    }
}

/// Contents of the `.head` sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub line_sha256: String,
}

pub fn head_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".head");
    PathBuf::from(s)
}

fn read_head(path: &Path) -> Result<Option<Head>, String> {
    match fs::read(head_path(path)) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| format!("{}: {e}", head_path(path).display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!(
            "cannot read the head file {}: {e}",
            head_path(path).display()
        )),
    }
}

/// Size the head record is padded to, so every update overwrites the same bytes.
const HEAD_LEN: usize = 160;

/// Overwrites the head sidecar in place: one write of [`HEAD_LEN`] bytes at offset 0, inside
/// one disk sector. (A temporary file renamed over the old one cost a metadata journal commit
/// per record on ext4.) A head torn by a crash reads as unreadable, which `verify` reports as
/// a warning, never as damage to the journal.
fn write_head(file: &mut Option<File>, path: &Path, head: &Head) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut text = serde_json::to_string(head).map_err(io::Error::other)?;
    if text.len() < HEAD_LEN {
        text.push_str(&" ".repeat(HEAD_LEN - 1 - text.len()));
        text.push('\n');
    }
    if file.is_none() {
        *file = Some(
            super::private::options()
                .write(true)
                .create(true)
                .truncate(false)
                .open(head_path(path))?,
        );
    }
    let Some(f) = file.as_mut() else {
        return Ok(());
    };
    f.seek(SeekFrom::Start(0))?;
    f.write_all(text.as_bytes())?;
    let len = text.len() as u64;
    if f.metadata()?.len() != len {
        f.set_len(len)?;
    }
    Ok(())
}

/// Reads exactly the size the file reports (so a device such as /dev/full reads as empty).
fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(len).read_to_end(&mut out)?;
    Ok(out)
}

/// The SHA-256 of each complete line of a file, in order (what a signature names).
pub(crate) fn read_file_lines_sha256(path: &Path) -> io::Result<Vec<String>> {
    let bytes = read_file(path)?;
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        out.push(sha256_hex(&rest[..nl]));
        rest = &rest[nl + 1..];
    }
    Ok(out)
}

/// One verified line.
struct Checked<'a> {
    text: &'a str,
}

fn check_line<'a>(bytes: &'a [u8], line_no: usize, prev: &str) -> Result<Checked<'a>, BadRecord> {
    let bad = |seq, problem| BadRecord {
        line: line_no,
        seq,
        problem,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        bad(
            None,
            Problem::NotJson {
                error: e.to_string(),
            },
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        bad(
            None,
            Problem::NotJson {
                error: if text.is_empty() {
                    "empty line".into()
                } else {
                    e.to_string()
                },
            },
        )
    })?;
    let Some(obj) = value.as_object() else {
        return Err(bad(
            None,
            Problem::NotJson {
                error: "not a JSON object".into(),
            },
        ));
    };
    let Some(seq) = obj.get("seq").and_then(serde_json::Value::as_u64) else {
        return Err(bad(
            None,
            Problem::MissingField {
                field: "seq".into(),
            },
        ));
    };
    let expected = line_no as u64;
    if seq != expected {
        return Err(bad(
            Some(seq),
            Problem::SeqMismatch {
                expected,
                found: seq,
            },
        ));
    }
    let Some(found_prev) = obj.get("prev").and_then(serde_json::Value::as_str) else {
        return Err(bad(
            Some(seq),
            Problem::MissingField {
                field: "prev".into(),
            },
        ));
    };
    if found_prev != prev {
        return Err(bad(
            Some(seq),
            Problem::PrevMismatch {
                expected: prev.to_string(),
                found: found_prev.to_string(),
            },
        ));
    }
    let Some(stored) = obj.get("hash").and_then(serde_json::Value::as_str) else {
        return Err(bad(
            Some(seq),
            Problem::MissingField {
                field: "hash".into(),
            },
        ));
    };
    let well_formed = stored.len() == 64
        && stored
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let suffix = format!(",\"hash\":\"{stored}\"}}");
    let prefix = match text.strip_suffix(&suffix) {
        Some(p) if well_formed => p,
        _ => return Err(bad(Some(seq), Problem::BadHashLayout)),
    };
    let computed = sha256_hex(prefix.as_bytes());
    if computed != stored {
        return Err(bad(
            Some(seq),
            Problem::HashMismatch {
                stored: stored.to_string(),
                computed,
            },
        ));
    }
    Ok(Checked { text })
}

/// Verifies file contents (with the head sidecar's contents, if any).
pub fn verify_bytes(bytes: &[u8], head: Option<&Head>) -> VerifyReport {
    let mut report = VerifyReport {
        head: GENESIS.to_string(),
        ..VerifyReport::default()
    };
    let mut offset = 0usize;
    let mut line_no = 0usize;
    let mut head_line_sha: Option<String> = None;
    while offset < bytes.len() {
        line_no += 1;
        let rest = &bytes[offset..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            let preview: String = String::from_utf8_lossy(rest).chars().take(120).collect();
            report.torn = Some(TornLine {
                line: line_no,
                offset: offset as u64,
                bytes: rest.len(),
                preview,
            });
            break;
        };
        match check_line(&rest[..nl], line_no, &report.head) {
            Ok(c) => {
                report.records += 1;
                report.last_seq = line_no as u64;
                report.head = sha256_hex(c.text.as_bytes());
                if head.is_some_and(|h| h.seq == report.last_seq) {
                    head_line_sha = Some(report.head.clone());
                }
            }
            Err(b) => {
                report.first_bad = Some(b);
                return report;
            }
        }
        offset += nl + 1;
    }
    // Reached only when every line verified (a bad line returns above).
    let problem = match head {
        None if report.records > 0 => Some((report.records, Problem::HeadMissing)),
        None => None,
        Some(h) if h.seq > report.last_seq => {
            Some((report.records + 1, Problem::Missing { head_seq: h.seq }))
        }
        // Always compared, also when the file holds more records than the head names: a
        // chain resealed after the head's record and extended must not pass.
        Some(h) if h.seq > 0 && head_line_sha.as_deref() != Some(h.line_sha256.as_str()) => {
            Some((h.seq as usize, Problem::HeadMismatch { seq: h.seq }))
        }
        // One record behind is the window between a record's fsync and the head's update.
        Some(h) if report.last_seq > h.seq + 1 => {
            report.warnings.push(format!(
                "the head file names record {} of {}: records after it are not covered by it \
                 (expected only after a power cut)",
                h.seq, report.last_seq
            ));
            None
        }
        Some(_) => None,
    };
    if let Some((line, problem)) = problem {
        let seq = match problem {
            Problem::Missing { .. } => None,
            _ => Some(line as u64),
        };
        report.first_bad = Some(BadRecord { line, seq, problem });
    }
    report
}

/// Verifies a journal or change-log file and its head sidecar.
pub fn verify(path: &Path) -> io::Result<VerifyReport> {
    let bytes = read_file(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read the journal {}: {e}", path.display()),
        )
    })?;
    match read_head(path) {
        Ok(head) => Ok(verify_bytes(&bytes, head.as_ref())),
        Err(error) => {
            let mut report = verify_bytes(&bytes, None);
            if let Some(BadRecord {
                problem: p @ Problem::HeadMissing,
                ..
            }) = &mut report.first_bad
            {
                *p = Problem::HeadUnreadable { error };
            }
            Ok(report)
        }
    }
}

/// Records read back, tolerating a torn last line.
#[derive(Debug, Clone)]
pub struct ReadResult<T> {
    pub entries: Vec<T>,
    pub report: VerifyReport,
}

/// Reads all entries that verified (up to the first bad record, which the report names).
pub(crate) fn read_entries<T: DeserializeOwned>(path: &Path) -> io::Result<ReadResult<T>> {
    let report = verify(path)?;
    let bytes = read_file(path)?;
    let mut entries = Vec::with_capacity(report.records);
    for (i, line) in bytes
        .split(|&b| b == b'\n')
        .take(report.records)
        .enumerate()
    {
        let entry = serde_json::from_slice(line).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: line {} is a valid chain link but not a record this version understands ({e})",
                    path.display(),
                    i + 1
                ),
            )
        })?;
        entries.push(entry);
    }
    Ok(ReadResult { entries, report })
}

/// Reads a session journal's records.
pub fn read_records(path: &Path) -> io::Result<ReadResult<Record>> {
    read_entries(path)
}

/// What `open_append` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    pub records: usize,
    /// A torn last line that was cut off before appending.
    pub torn: Option<TornLine>,
    pub warnings: Vec<String>,
}

/// Where an append landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppendReceipt {
    pub seq: u64,
    /// The record's `hash` field.
    pub hash: String,
    /// SHA-256 of the whole line (the chain head now).
    pub line_sha256: String,
}

/// Appends hash-chained lines, each fsynced before `append` returns.
#[derive(Debug)]
pub struct JournalWriter {
    /// Opened for writing (not `append`: on Windows an append-only handle lacks
    /// `FILE_WRITE_DATA`, so cutting a torn line with `set_len` would be refused). Every
    /// write goes at `len`, the end, because the writer is the only one ([`lock_path`]).
    file: File,
    /// The head sidecar, opened at the first append.
    head: Option<File>,
    /// The lock sidecar, held while the writer lives (`None` for devices).
    _lock: Option<File>,
    path: PathBuf,
    next_seq: u64,
    prev: String,
    len: u64,
    failed: Option<String>,
}

/// The sidecar `<file>.lock` that a writer holds locked.
///
/// The journal itself is never locked: on Windows `LockFileEx` locks are mandatory, so a
/// locked journal could not be read through any other handle, not even in the same process
/// (verify on resume, `btsdr report` or `sessions` from a second terminal). Locking a
/// sidecar keeps one writer at a time and every reader working, on every platform.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Takes the writer's lock for `path` (devices such as /dev/full are not locked).
fn lock(path: &Path) -> io::Result<Option<File>> {
    if !fs::metadata(path)?.is_file() {
        return Ok(None);
    }
    let lock_file = super::private::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock_path(path))
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot open the lock file {}: {e}",
                    lock_path(path).display()
                ),
            )
        })?;
    match lock_file.try_lock() {
        Ok(()) => Ok(Some(lock_file)),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "{} is open in another btsdr: close it there first",
                path.display()
            ),
        )),
        Err(fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Makes a newly created file's directory entry durable.
///
/// Unix: fsync the folder. Windows cannot open a folder for `FlushFileBuffers` with the
/// read-only handle `File::open` gives (error 5, access denied); there, `FlushFileBuffers`
/// on the new file flushes its data and metadata (NTFS logs the file record and the
/// folder index entry of a create in one transaction, committed by that flush), and the
/// folder itself is flushed best effort through a handle opened for writing (NTFS allows
/// it; FAT, SMB shares and Wine may refuse, which is not an error). docs/RELIABILITY.md.
fn sync_new_entry(path: &Path, file: &File) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    #[cfg(windows)]
    {
        file.sync_all()?;
        if let Ok(d) = fs::OpenOptions::new().write(true).open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
    #[cfg(not(windows))]
    {
        let _ = file;
        File::open(dir)?.sync_all()
    }
}

impl JournalWriter {
    /// Creates a new, empty journal (parent directories too) and makes its entry durable.
    /// Fails if the file already exists; a file it created is removed again on failure.
    pub fn create(path: &Path) -> io::Result<JournalWriter> {
        let ctx = |e: io::Error, what: &str| {
            io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| ctx(e, "create the folder for"))?;
        }
        let file = super::private::options()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| ctx(e, "create the journal"))?;
        let mut head = None;
        let mut finish = || -> io::Result<Option<File>> {
            let lock = lock(path)?;
            // The head exists from the start, so a missing head always means a lost file.
            if fs::metadata(path)?.is_file() {
                write_head(
                    &mut head,
                    path,
                    &Head {
                        seq: 0,
                        line_sha256: GENESIS.into(),
                    },
                )
                .map_err(|e| ctx(e, "create the head file of"))?;
                if let Some(h) = &head {
                    h.sync_all().map_err(|e| ctx(e, "sync the head file of"))?;
                }
            }
            sync_new_entry(path, &file).map_err(|e| ctx(e, "make durable the entry of"))?;
            Ok(lock)
        };
        let lock = match finish() {
            Ok(l) => l,
            Err(e) => {
                drop(file);
                if fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0) {
                    let _ = fs::remove_file(path);
                    let _ = fs::remove_file(head_path(path));
                    let _ = fs::remove_file(lock_path(path));
                }
                return Err(e);
            }
        };
        Ok(JournalWriter {
            file,
            head,
            _lock: lock,
            path: path.to_path_buf(),
            next_seq: 1,
            prev: GENESIS.into(),
            len: 0,
            failed: None,
        })
    }

    /// Opens an existing journal for appending after verifying its chain. A torn last line is
    /// reported and cut off; any other damage is refused with the first bad record named.
    pub fn open_append(path: &Path) -> io::Result<(JournalWriter, OpenReport)> {
        Self::open_inner(path, false)
    }

    /// Opens a journal whose only problem is a missing or unreadable head file (lost to a
    /// crash, or deleted), re-creating the head at the last record that verifies. The caller
    /// appends a record saying who accepted the journal as it is, and why; anything else
    /// wrong is refused as by [`open_append`](Self::open_append).
    pub fn open_accepting_lost_head(path: &Path) -> io::Result<(JournalWriter, OpenReport)> {
        Self::open_inner(path, true)
    }

    fn open_inner(path: &Path, accept_lost_head: bool) -> io::Result<(JournalWriter, OpenReport)> {
        use std::io::{Seek, SeekFrom};
        super::private::refuse_link(path)?;
        let mut file = super::private::options()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot open the journal {}: {e}", path.display()),
                )
            })?;
        let lock = lock(path)?;
        let mut report = verify(path)?;
        let lost_head = matches!(
            report.first_bad,
            Some(BadRecord {
                problem: Problem::HeadMissing | Problem::HeadUnreadable { .. },
                ..
            })
        );
        let mut head = None;
        if accept_lost_head {
            if !lost_head {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    match &report.first_bad {
                        None => format!(
                            "{}: the head file is present and matches; nothing to accept",
                            path.display()
                        ),
                        Some(bad) => format!(
                            "{} failed verification at {bad}: only a lost head file can be accepted",
                            path.display()
                        ),
                    },
                ));
            }
            write_head(
                &mut head,
                path,
                &Head {
                    seq: report.last_seq,
                    line_sha256: report.head.clone(),
                },
            )?;
            report = verify(path)?;
        }
        if let Some(bad) = &report.first_bad {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} failed verification at {bad}. Nothing was appended; keep the file as evidence and start a new session.",
                    path.display()
                ),
            ));
        }
        let mut len = file.metadata()?.len();
        if let Some(t) = &report.torn {
            file.set_len(t.offset)?;
            file.sync_all()?;
            len = t.offset;
        }
        if file.metadata()?.is_file() {
            file.seek(SeekFrom::Start(len))?;
        }
        let w = JournalWriter {
            file,
            head,
            _lock: lock,
            path: path.to_path_buf(),
            next_seq: report.last_seq + 1,
            prev: report.head.clone(),
            len,
            failed: None,
        };
        Ok((
            w,
            OpenReport {
                records: report.records,
                torn: report.torn,
                warnings: report.warnings,
            },
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SHA-256 of the last line (GENESIS when empty).
    pub fn head(&self) -> &str {
        &self.prev
    }

    /// Chains, writes and fsyncs one record. The writer assigns `seq`, `prev` and `hash`.
    pub fn append(&mut self, record: Record) -> io::Result<AppendReceipt> {
        self.append_entry(record)
    }

    /// [`append`](Self::append) for any chained line type (the change log uses it).
    pub(crate) fn append_entry<T: Chained>(&mut self, mut entry: T) -> io::Result<AppendReceipt> {
        if let Some(e) = &self.failed {
            return Err(io::Error::other(format!(
                "the journal {} could not be written earlier ({e}); nothing more is appended. Fix the cause and resume the session.",
                self.path.display()
            )));
        }
        let seq = self.next_seq;
        let line = seal(&mut entry, seq, &self.prev)?;
        let mut bytes = line.clone().into_bytes();
        bytes.push(b'\n');
        let res = self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = res {
            // Best effort: cut a partial line so the file stays a valid chain, and write
            // the next attempt (if any) where it began.
            let _ = self.file.set_len(self.len);
            let _ = std::io::Seek::seek(&mut self.file, std::io::SeekFrom::Start(self.len));
            let msg = format!(
                "cannot write the journal {}: {e}. The action was NOT carried out; free space or fix the disk, then resume.",
                self.path.display()
            );
            self.failed = Some(e.to_string());
            return Err(io::Error::new(e.kind(), msg));
        }
        self.len += bytes.len() as u64;
        let line_sha256 = sha256_hex(line.as_bytes());
        self.prev = line_sha256.clone();
        self.next_seq += 1;
        // The head file guards against deletion at the end; failing to update it is not fatal.
        let _ = write_head(
            &mut self.head,
            &self.path,
            &Head {
                seq,
                line_sha256: line_sha256.clone(),
            },
        );
        let hash = line
            .rsplit_once(",\"hash\":\"")
            .map(|(_, h)| h.trim_end_matches("\"}").to_string())
            .unwrap_or_default();
        Ok(AppendReceipt {
            seq,
            hash,
            line_sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::Event;
    use chrono::{TimeZone, Utc};
    use std::fs::OpenOptions;

    fn rec(text: &str) -> Record {
        let at = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .unwrap_or_default();
        Record::new(at, "alice", None, Event::Note { text: text.into() })
    }

    #[test]
    fn seal_puts_the_hash_of_the_prefix_last() {
        let mut r = rec("hi");
        let line = seal(&mut r, 1, GENESIS).unwrap();
        let (prefix, rest) = line.rsplit_once(",\"hash\":\"").unwrap();
        assert_eq!(rest, format!("{}\"}}", sha256_hex(prefix.as_bytes())));
        assert_eq!(r.hash, sha256_hex(prefix.as_bytes()));
        assert!(
            line.starts_with("{\"seq\":1,\"time\":\"2026-01-02T03:04:05Z\""),
            "{line}"
        );
        assert!(line.contains(&format!("\"prev\":\"{GENESIS}\"")));
        let back: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn chain_links_lines_and_a_second_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("j.jsonl");
        let mut w = JournalWriter::create(&path).unwrap();
        let r1 = w.append(rec("one")).unwrap();
        let r2 = w.append(rec("two")).unwrap();
        assert_eq!((r1.seq, r2.seq), (1, 2));
        let text = fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap();
        assert_eq!(sha256_hex(first.as_bytes()), r1.line_sha256);
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .contains(&format!("\"prev\":\"{}\"", r1.line_sha256))
        );
        let err = JournalWriter::open_append(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        drop(w);
        let (w, report) = JournalWriter::open_append(&path).unwrap();
        assert_eq!(
            (report.records, w.next_seq, w.head()),
            (2, 3, r2.line_sha256.as_str())
        );
        let head: Head = serde_json::from_slice(&fs::read(head_path(&path)).unwrap()).unwrap();
        assert_eq!(
            head,
            Head {
                seq: 2,
                line_sha256: r2.line_sha256
            }
        );
    }

    #[test]
    fn readers_are_never_locked_out_by_the_writer() {
        // Windows locks are mandatory: a locked journal could not be read through another
        // handle. The writer locks `<file>.lock`, never the journal.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut w = JournalWriter::create(&path).unwrap();
        w.append(rec("one")).unwrap();
        let reader = File::open(&path).unwrap();
        assert!(
            reader.try_lock_shared().is_ok(),
            "the journal itself is locked"
        );
        drop(reader);
        assert_eq!(verify(&path).unwrap().records, 1);
        let side = File::open(lock_path(&path)).unwrap();
        assert!(
            side.try_lock_shared().is_err(),
            "the lock sidecar is not held"
        );
    }

    #[test]
    fn a_failed_create_leaves_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let other = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(lock_path(&path))
            .unwrap();
        other.try_lock().unwrap();
        let err = JournalWriter::create(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        assert!(!path.exists(), "an empty journal was left behind");
    }

    #[test]
    fn a_torn_line_is_cut_and_the_next_record_follows_the_last_good_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut w = JournalWriter::create(&path).unwrap();
        w.append(rec("one")).unwrap();
        drop(w);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":2,\"tor").unwrap();
        drop(f);
        let (mut w, report) = JournalWriter::open_append(&path).unwrap();
        assert!(report.torn.is_some());
        w.append(rec("two")).unwrap();
        drop(w);
        let v = verify(&path).unwrap();
        assert!(v.is_intact() && v.records == 2, "{v:?}");
    }

    #[test]
    fn verify_names_problems() {
        let report = verify_bytes(b"\n", None);
        assert!(matches!(
            report.first_bad,
            Some(BadRecord {
                line: 1,
                problem: Problem::NotJson { .. },
                ..
            })
        ));
        let report = verify_bytes(b"{\"a\":1}\n", None);
        assert_eq!(
            report.first_bad.map(|b| b.problem),
            Some(Problem::MissingField {
                field: "seq".into()
            })
        );
        let report = verify_bytes(b"", None);
        assert!(report.is_intact() && report.records == 0 && report.warnings.is_empty());
    }
}
