//! Talking to SQL Server: the executor trait the engine's effects go through, and its
//! tiberius implementation.

pub mod types;
