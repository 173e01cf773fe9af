//! The change record: `<data dir>/changelog.jsonl`, hash-chained like session journals.
//! ("Keep a written record of all changes" — every change to the BizTalk environment.)

use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::chain::{AppendReceipt, Chained, JournalWriter, ReadResult, read_entries};

/// A change to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub who: String,
    pub what: String,
    /// e.g. `deployment`, `configuration`, `patch`, `backup`, `restore`.
    pub category: String,
    /// A ticket, session id or document.
    pub reference: String,
}

/// One line of the change log (`hash` last, see [`super::chain`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEntry {
    pub seq: u64,
    pub time: DateTime<Utc>,
    pub who: String,
    pub what: String,
    pub category: String,
    pub reference: String,
    pub prev: String,
    pub hash: String,
}

impl Chained for ChangeEntry {
    fn set_chain(&mut self, seq: u64, prev: &str, hash: &str) {
        self.seq = seq;
        self.prev = prev.to_string();
        self.hash = hash.to_string();
    }
}

pub struct Changelog {
    writer: JournalWriter,
}

impl Changelog {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("changelog.jsonl")
    }

    /// Opens (verifying the chain) or creates the change log.
    pub fn open(data_dir: &Path) -> io::Result<Changelog> {
        let path = Changelog::path(data_dir);
        let writer = if path.exists() {
            JournalWriter::open_append(&path)?.0
        } else {
            JournalWriter::create(&path)?
        };
        Ok(Changelog { writer })
    }

    pub fn add(&mut self, change: Change, at: DateTime<Utc>) -> io::Result<AppendReceipt> {
        for (field, v) in [("who", &change.who), ("what", &change.what)] {
            if v.trim().is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a change needs `{field}`"),
                ));
            }
        }
        self.writer.append_entry(ChangeEntry {
            seq: 0,
            time: at,
            who: change.who,
            what: change.what,
            category: change.category,
            reference: change.reference,
            prev: String::new(),
            hash: String::new(),
        })
    }

    /// All entries (the report says whether the chain verified). No file: empty.
    pub fn list(data_dir: &Path) -> io::Result<ReadResult<ChangeEntry>> {
        let path = Changelog::path(data_dir);
        if !path.exists() {
            return Ok(ReadResult {
                entries: Vec::new(),
                report: Default::default(),
            });
        }
        read_entries(&path)
    }
}
