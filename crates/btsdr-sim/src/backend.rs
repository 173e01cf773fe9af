//! The seam between the TDS server (`sim::tds`) and what answers statements (`sim::model`).

use std::future::Future;
use std::pin::Pin;

use btsdr_types::{Param, ResultSet};

/// A decoded request: a SQL batch (no params) or an `sp_executesql` RPC.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub sql: String,
    /// `(name without @, value)`; `None` is a NULL parameter.
    pub params: Vec<(String, Option<Param>)>,
}

/// One item of a reply, sent in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// COLMETADATA + ROWs. `Column::type_name` picks the TDS type: int, bigint, smallint,
    /// tinyint, bit, float, decimal, nvarchar, varchar, datetime, datetime2, date,
    /// uniqueidentifier, varbinary.
    Rows(ResultSet),
    /// DONE for a statement without a result set, with its row count if any.
    Done { rows_affected: Option<u64> },
    /// ERROR token: the batch goes on unless the backend stops adding items.
    Error {
        number: u32,
        severity: u8,
        state: u8,
        message: String,
        procedure: String,
        line: u32,
    },
    /// INFO token (PRINT, RESTORE ... STATS progress).
    Info { number: u32, message: String },
    /// Close the socket now, without a final DONE (a simulated network failure).
    Disconnect,
    /// `SET NOCOUNT OFF` (true) / `ON` (false): whether the DONE tokens that follow carry
    /// row counts (the DONE_COUNT bit).
    Counts(bool),
}

/// Per-connection state the backend may read and change.
#[derive(Debug, Clone)]
pub struct Session {
    /// Server process id (`@@SPID`), unique per connection.
    pub spid: u16,
    pub login: String,
    /// Current database (changed by `USE` or the login's initial database).
    pub database: String,
}

pub type ReplyFuture<'a> = Pin<Box<dyn Future<Output = Vec<Reply>> + Send + 'a>>;

/// What answers statements behind the TDS server.
///
/// `execute` may take simulated time (sleep) to model long work. When the client sends an
/// attention the server drops the future and answers DONE with the attention flag, so the
/// backend must keep its state consistent at every await point.
pub trait Backend: Send + Sync + 'static {
    /// Checks a login. `Err` carries the message for error 18456.
    fn login(&self, user: &str, password: &str) -> Result<(), String>;

    /// Executes one request for a session.
    fn execute<'a>(&'a self, session: &'a mut Session, request: Request) -> ReplyFuture<'a>;

    /// Called when a connection closes (so running-request tables can be cleaned).
    fn disconnected(&self, _spid: u16) {}

    /// `SERVERPROPERTY('ProductVersion')` (`major.minor.build...`), announced in LOGINACK.
    fn product_version(&self) -> String {
        "15.0.2000.5".to_string()
    }

    /// `@@SERVERNAME`, written as the server in ERROR and INFO tokens.
    fn server_name(&self) -> String {
        "BTSDR-SIM".to_string()
    }

    /// Whether a login may open `database` (else SQL Server's error 4060).
    fn database_exists(&self, _database: &str) -> bool {
        true
    }
}
