//! btsdr: BizTalk Server backup, restore and disaster recovery runbooks in the terminal.
//!
//! Start with `docs/ARCHITECTURE.md`.

pub mod cli;
pub mod embedded;
pub mod paths;
pub mod runbook;
pub mod sim;
pub mod sql;
