//! The domain types btsdr and its simulator share (the leaf of the workspace: it depends on
//! no other btsdr crate). A statement goes in as a [`Statement`] for a [`Role`] with
//! [`Param`]s; a result comes out as [`ResultSet`]s of [`Rows`] or as an [`SqlError`].

mod role;
pub mod rows;
pub mod types;

pub use role::Role;
pub use rows::{Row, Rows, ValueRef};
pub use types::{Column, Param, Progress, QueryOutput, ResultSet, SqlError, Statement, Value};

/// Locks `m`, going on after a panic in another holder: the workspace's shared state (the
/// simulated group, an executor's queues and connection states) stays usable, so one failed
/// request never stops the rest. The one poison-tolerant lock of the workspace.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
