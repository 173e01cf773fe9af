//! Plain data that crosses the executor boundary: statements in, results and errors out.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::Role;

pub use super::rows::{Row, Rows, ValueRef};

/// One value of a result row, already decoded from TDS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v")]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// decimal/numeric/money kept exact as text.
    Decimal(String),
    Text(String),
    /// datetime/datetime2/date/time, ISO 8601 without zone (`2026-11-21 23:04:05.123`).
    DateTime(String),
    Guid(String),
    Binary(Vec<u8>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    /// Numeric view for comparisons (bools are 0/1).
    pub fn as_f64(&self) -> Option<f64> {
        self.as_ref().as_f64()
    }
    /// A borrowed view, the form [`Rows`] hands out.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::Int(i) => ValueRef::Int(*i),
            Value::Float(f) => ValueRef::Float(*f),
            Value::Decimal(s) => ValueRef::Decimal(s),
            Value::Text(s) => ValueRef::Text(s),
            Value::DateTime(s) => ValueRef::DateTime(s),
            Value::Guid(s) => ValueRef::Guid(s),
            Value::Binary(b) => ValueRef::Binary(b),
        }
    }
}

impl From<ValueRef<'_>> for Value {
    fn from(v: ValueRef<'_>) -> Value {
        v.to_value()
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// SQL type as the server described it (`int`, `nvarchar`, `datetime2`...).
    pub type_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultSet {
    pub columns: Vec<Column>,
    pub rows: Rows,
    /// Rows the server sent past the result cap (`max_result_rows` / `max_result_mib`):
    /// counted, not kept. Non-zero means `rows` is only the beginning of the result.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_kept: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ResultSet {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }
    pub fn get(&self, row: usize, column: &str) -> Option<ValueRef<'_>> {
        let i = self.column_index(column)?;
        self.rows.get(row).and_then(|r| r.get(i))
    }
}

/// What a statement returned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryOutput {
    pub sets: Vec<ResultSet>,
    /// Rows affected per statement that reported a count.
    pub rows_affected: Vec<u64>,
}

impl QueryOutput {
    pub fn first(&self) -> Option<&ResultSet> {
        self.sets.first()
    }
}

/// A parameter value bound to `@name` in a statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Param {
    Text(String),
    Int(i64),
    Bool(bool),
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Param::Text(s) => write!(f, "N'{}'", s.replace('\'', "''")),
            Param::Int(i) => write!(f, "{i}"),
            Param::Bool(b) => f.write_str(if *b { "1" } else { "0" }),
        }
    }
}

/// A statement ready to send: identifiers already quoted, values as parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    pub role: Role,
    pub database: String,
    pub sql: String,
    /// `(name without @, value)`; secret values are redacted before this is journaled.
    pub params: Vec<(String, Param)>,
    pub timeout_secs: u64,
    /// Poll `sys.dm_exec_requests` for progress while it runs.
    pub long_running: bool,
}

/// Why a statement did not produce a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum SqlError {
    #[error("cannot connect to {server}: {message}")]
    Connect { server: String, message: String },
    #[error("login failed on {server}: {message}")]
    Login { server: String, message: String },
    #[error("{}", fmt_server_error(.number, .severity, .state, .procedure, .line, .message))]
    Server {
        number: u32,
        severity: u8,
        state: u8,
        procedure: String,
        line: u32,
        message: String,
    },
    #[error("timed out after {secs} s")]
    Timeout { secs: u64 },
    #[error("cancelled by the operator")]
    Cancelled,
    #[error(
        "connection lost during the statement: {message} (the outcome on the server is unknown)"
    )]
    Dropped { message: String },
    #[error("no server is configured for role `{role}`")]
    NoServer { role: String },
    #[error("protocol error: {message}")]
    Protocol { message: String },
}

fn fmt_server_error(
    number: &u32,
    severity: &u8,
    state: &u8,
    procedure: &str,
    line: &u32,
    message: &str,
) -> String {
    let mut s = format!("Msg {number}, Level {severity}, State {state}");
    if !procedure.is_empty() {
        s.push_str(&format!(", Procedure {procedure}"));
    }
    s.push_str(&format!(", Line {line}: {message}"));
    s
}

/// Progress of a long statement, from `sys.dm_exec_requests`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub percent: f32,
    /// Estimated time to completion in milliseconds, when the server gives one.
    pub eta_ms: Option<u64>,
}
