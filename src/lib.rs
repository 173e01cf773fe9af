//! btsdr: BizTalk Server backup, restore and disaster recovery runbooks in the terminal.
//!
//! Start with `docs/ARCHITECTURE.md`.

pub mod cli;
pub mod config;
pub mod embedded;
pub mod engine;
pub mod journal;
pub mod paths;
pub mod runbook;
pub mod sim;
pub mod sql;
pub mod app;
pub mod batch;
pub mod tui;
pub mod ui;
pub mod report;
pub mod launch;
pub mod logging;
