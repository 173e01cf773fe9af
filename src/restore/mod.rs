//! Restore to a BizTalk mark from the backup files (issue 11): the plan (pure) and reading the
//! files' headers on the instance that restores.

pub mod cli;
pub mod files;
pub mod plan;
pub mod run;
