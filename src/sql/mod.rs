//! Talking to SQL Server: the executor trait the engine's effects go through, and its
//! tiberius implementation.

pub mod connect;
mod convert;
pub mod deferred;
pub mod executor;

pub use executor::{ConnState, ExecEvent, Executor, TiberiusExecutor, run_once};
