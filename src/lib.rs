//! btsdr: BizTalk Server backup, restore and disaster recovery runbooks in the terminal.
//!
//! Start with `docs/ARCHITECTURE.md`.

pub mod runbook;
pub mod sim;
pub mod sql;
