//! The crash-safe, tamper-evident session journal and change log (hash-chained JSON Lines).
//!
//! The format and hash rule are documented in [`chain`]. The data dir is
//! [`crate::paths::data_dir`] (`BTSDR_DATA_DIR` overrides it); every function here takes it
//! as a parameter so tests can use a temporary folder.

pub mod chain;
pub mod changelog;
pub mod incident;
pub mod private;
pub mod sessions;
pub mod signing;

pub use chain::{
    AppendReceipt, BadRecord, JournalWriter, OpenReport, Problem, ReadResult, TornLine,
    VerifyReport, read_records, verify,
};
pub use changelog::{Change, ChangeEntry, Changelog};
pub use sessions::{
    HomeSessions, SessionStatus, SessionSummary, create_session, list_for_home, list_open_sessions,
    list_sessions, new_session_id, session_path, sessions_dir,
};
