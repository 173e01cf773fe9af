//! btsdr: BizTalk Server backup, restore and disaster recovery runbooks in the terminal.
//!
//! Start with `docs/ARCHITECTURE.md`.

pub mod app;
pub mod batch;
pub mod cli;
pub mod config;
pub mod effects;
pub mod embedded;
pub mod engine;
pub mod estimate;
pub mod guide;
pub mod journal;
pub mod launch;
pub mod logging;
pub mod paths;
pub mod plain;
pub mod preflight;
pub mod report;
pub mod restore;
pub mod runbook;
pub mod sql;
pub mod table;
pub mod tui;
pub mod ui;
