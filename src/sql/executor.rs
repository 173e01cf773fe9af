//! The executor the engine's effects go through.
//!
//! Each connection is owned by one tokio task (an actor per role) and driven over channels,
//! so callers never wait on the network: `submit` queues a statement and returns; the
//! outcome arrives as `ExecEvent`s on the caller's channel.
//!
//! Rules the engine can rely on:
//! - Statements for one role run one at a time, in submission order.
//! - Every submitted id gets exactly one `Finished` (possibly without `Started`: unknown
//!   role, or cancelled while queued).
//! - Nothing is ever retried. A connection lost during a statement gives `Dropped` (the
//!   outcome on the server is unknown); the next statement reconnects.
//! - Timeout and cancel send the server an attention (so it stops the work), then close the
//!   connection anyway: the driver may have been stopped in the middle of a reply, so the
//!   connection is not trusted again. The next statement reconnects.
//! - Statements with `long_running` get `Progress` events from a second connection polling
//!   `sys.dm_exec_requests` once a second (the driver does not expose the server's INFO
//!   messages, so `STATS` output cannot be used).
//! - `rows_affected` stays empty: tiberius's query stream does not expose DONE row counts.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

use super::connect::{Meter, SqlClient, connect};
use super::convert::{Limits, collect, statement_error};
use crate::config::{Environment, Secret, SecretSource, ServerProfile};
use btsdr_types::{Param, Progress, QueryOutput, SqlError, Statement, ValueRef};
use btsdr_types::{Role, lock};

/// A role's main connection, for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    Disconnected,
    Connecting,
    Connected,
    /// The last connect attempt failed (message for the operator).
    Failed(String),
}

/// What the executor reports for a submitted statement.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecEvent {
    /// The statement left the queue (connecting, then running).
    Started { id: u64 },
    /// From `sys.dm_exec_requests`, about once a second, for `long_running` statements.
    Progress { id: u64, progress: Progress },
    /// Always the last event for an id.
    Finished {
        id: u64,
        result: Result<QueryOutput, SqlError>,
    },
    /// The role's main connection changed state.
    Conn { role: Role, state: ConnState },
}

/// Runs statements without blocking the caller.
pub trait Executor: Send + Sync {
    /// Queues `stmt`; events for `id` go to `events`. Ids are the caller's (unique per caller).
    fn submit(&self, id: u64, stmt: Statement, events: UnboundedSender<ExecEvent>);
    /// Cancels `id` if it is queued or running (`Finished` with `Cancelled`); no-op otherwise.
    fn cancel(&self, id: u64);
    /// The main connection of every configured role.
    fn status(&self) -> Vec<(Role, ConnState)>;
}

/// Submits `stmt` and waits for its result (batch and CLI code).
pub async fn run_once(exec: &dyn Executor, stmt: Statement) -> Result<QueryOutput, SqlError> {
    // Ids from the upper half so they cannot collide with an engine's small counters.
    static NEXT: AtomicU64 = AtomicU64::new(1 << 63);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::unbounded_channel();
    exec.submit(id, stmt, tx);
    while let Some(ev) = rx.recv().await {
        if let ExecEvent::Finished { id: got, result } = ev
            && got == id
        {
            return result;
        }
    }
    Err(SqlError::Protocol {
        message: "the executor stopped without an answer".into(),
    })
}

type States = Arc<Mutex<BTreeMap<Role, ConnState>>>;
type Cancels = Arc<Mutex<HashMap<u64, CancellationToken>>>;

struct Job {
    id: u64,
    stmt: Statement,
    events: UnboundedSender<ExecEvent>,
    cancel: CancellationToken,
}

/// The tiberius executor: one connection actor per configured role (for `msgbox`, the
/// environment's first MessageBox profile).
pub struct TiberiusExecutor {
    /// Per role, one or more connections ("lanes"), each owned by its own task.
    actors: BTreeMap<Role, Vec<Lane>>,
    states: States,
    cancels: Cancels,
}

impl std::fmt::Debug for TiberiusExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TiberiusExecutor")
            .field("roles", &self.actors.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// One connection's queue and how many jobs wait on it.
struct Lane {
    tx: UnboundedSender<Job>,
    pending: Arc<AtomicUsize>,
}

impl TiberiusExecutor {
    /// Starts one connection per role: statements for a role run one at a time, in order.
    /// No connection is opened until a statement needs it. Passwords are read from `secrets`
    /// now. Must be called inside a tokio runtime.
    pub fn new(env: &Environment, secrets: &dyn SecretSource) -> Result<Self, SqlError> {
        Self::with_lanes(env, secrets, 1)
    }

    /// Like `new` with up to `lanes` connections per role: a statement goes to the least busy
    /// one, so independent read-only checks on one server run side by side (`btsdr check`).
    /// Extra connections open only when statements overlap.
    pub(crate) fn with_lanes(
        env: &Environment,
        secrets: &dyn SecretSource,
        lanes: usize,
    ) -> Result<Self, SqlError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| SqlError::Protocol {
            message: "the SQL executor needs a tokio runtime (internal error)".into(),
        })?;
        let states: States = Arc::default();
        let cancels: Cancels = Arc::default();
        let mut actors = BTreeMap::new();
        for role in Role::ALL {
            let Some(profile) = env.profile(role) else {
                continue;
            };
            let password = profile
                .user
                .as_deref()
                .and_then(|u| secrets.password(role, u))
                .map(Secret::new);
            lock(&states).insert(role, ConnState::Disconnected);
            let mut role_lanes = Vec::new();
            for _ in 0..lanes.max(1) {
                let (tx, rx) = mpsc::unbounded_channel();
                let pending = Arc::new(AtomicUsize::new(0));
                let actor = Actor {
                    role,
                    profile: profile.clone(),
                    password: password.clone(),
                    states: states.clone(),
                    cancels: cancels.clone(),
                    conn: None,
                    monitor: None,
                    pending: pending.clone(),
                };
                handle.spawn(actor.run(rx));
                role_lanes.push(Lane { tx, pending });
            }
            actors.insert(role, role_lanes);
        }
        Ok(TiberiusExecutor {
            actors,
            states,
            cancels,
        })
    }
}

impl Executor for TiberiusExecutor {
    fn submit(&self, id: u64, stmt: Statement, events: UnboundedSender<ExecEvent>) {
        let role = stmt.role;
        // The least busy lane; ties go to the first, so sequential work keeps one connection.
        let lane = self.actors.get(&role).and_then(|lanes| {
            lanes
                .iter()
                .min_by_key(|l| l.pending.load(Ordering::SeqCst))
        });
        let Some(lane) = lane else {
            let _ = events.send(ExecEvent::Finished {
                id,
                result: Err(SqlError::NoServer {
                    role: role.to_string(),
                }),
            });
            return;
        };
        let cancel = CancellationToken::new();
        lock(&self.cancels).insert(id, cancel.clone());
        lane.pending.fetch_add(1, Ordering::SeqCst);
        if let Err(mpsc::error::SendError(job)) = lane.tx.send(Job {
            id,
            stmt,
            events,
            cancel,
        }) {
            lock(&self.cancels).remove(&id);
            let _ = job.events.send(ExecEvent::Finished {
                id,
                result: Err(SqlError::Protocol {
                    message: "the SQL executor has stopped".into(),
                }),
            });
        }
    }

    fn cancel(&self, id: u64) {
        if let Some(t) = lock(&self.cancels).get(&id) {
            t.cancel();
        }
    }

    fn status(&self) -> Vec<(Role, ConnState)> {
        lock(&self.states)
            .iter()
            .map(|(r, s)| (*r, s.clone()))
            .collect()
    }
}

struct Conn {
    client: SqlClient,
    /// Counts what the connection reads (see `connect::Meter`).
    meter: Meter,
    /// `@@SPID`, for progress polling; `None` if the server did not say.
    spid: Option<i64>,
}

struct Actor {
    role: Role,
    profile: ServerProfile,
    password: Option<Secret>,
    states: States,
    cancels: Cancels,
    conn: Option<Conn>,
    /// Second connection for `sys.dm_exec_requests`, opened by the first long statement.
    monitor: Option<SqlClient>,
    /// Jobs submitted to this lane and not finished yet.
    pending: Arc<AtomicUsize>,
}

enum Outcome {
    /// The error carries whether the connection must be dropped.
    Done(RunResult),
    TimedOut(u64),
    Cancelled,
}

impl Actor {
    async fn run(mut self, mut rx: UnboundedReceiver<Job>) {
        while let Some(job) = rx.recv().await {
            let id = job.id;
            let result = self.job(&job).await;
            lock(&self.cancels).remove(&id);
            self.pending.fetch_sub(1, Ordering::SeqCst);
            let _ = job.events.send(ExecEvent::Finished { id, result });
        }
    }

    fn set_state(&self, state: ConnState, events: &UnboundedSender<ExecEvent>) {
        lock(&self.states).insert(self.role, state.clone());
        let _ = events.send(ExecEvent::Conn {
            role: self.role,
            state,
        });
    }

    async fn job(&mut self, job: &Job) -> Result<QueryOutput, SqlError> {
        if job.cancel.is_cancelled() {
            return Err(SqlError::Cancelled);
        }
        let _ = job.events.send(ExecEvent::Started { id: job.id });

        if self.conn.is_none() {
            self.set_state(ConnState::Connecting, &job.events);
            let opened = tokio::select! {
                biased;
                _ = job.cancel.cancelled() => None,
                r = open(&self.profile, self.password.as_ref()) => Some(r),
            };
            match opened {
                None => {
                    self.set_state(ConnState::Disconnected, &job.events);
                    return Err(SqlError::Cancelled);
                }
                Some(Err(e)) => {
                    self.set_state(ConnState::Failed(e.to_string()), &job.events);
                    return Err(e);
                }
                Some(Ok(c)) => {
                    self.conn = Some(c);
                    self.set_state(ConnState::Connected, &job.events);
                }
            }
        }

        let secs = effective_timeout(job.stmt.timeout_secs, self.profile.statement_timeout_secs);
        let Some(conn) = self.conn.as_mut() else {
            return Err(SqlError::Protocol {
                message: "no connection (internal error)".into(),
            });
        };
        let spid = conn.spid.filter(|_| job.stmt.long_running);
        let outcome = {
            let limits = Limits {
                meter: Some(conn.meter.clone()),
                ..Limits::of(&self.profile)
            };
            let main = tokio::time::timeout(
                Duration::from_secs(secs),
                run(&mut conn.client, &job.stmt, limits),
            );
            let poll = poll_progress(
                &mut self.monitor,
                &self.profile,
                self.password.as_ref(),
                spid,
                job.id,
                &job.events,
            );
            tokio::select! {
                biased;
                _ = job.cancel.cancelled() => Outcome::Cancelled,
                r = main => match r {
                    Ok(r) => Outcome::Done(r),
                    Err(_) => Outcome::TimedOut(secs),
                },
                _ = poll => Outcome::Done(Err((
                    SqlError::Protocol { message: "progress poller ended (internal error)".into() },
                    false,
                ))),
            }
        };

        match outcome {
            Outcome::Done(Ok(out)) => Ok(out),
            Outcome::Done(Err((e, broken))) => {
                if broken {
                    self.conn = None;
                    self.set_state(ConnState::Disconnected, &job.events);
                }
                Err(e)
            }
            Outcome::TimedOut(secs) => {
                self.abandon(&job.events).await;
                Err(SqlError::Timeout { secs })
            }
            Outcome::Cancelled => {
                self.abandon(&job.events).await;
                Err(SqlError::Cancelled)
            }
        }
    }

    /// After a timeout or cancel: ask the server to stop (attention), then close.
    async fn abandon(&mut self, events: &UnboundedSender<ExecEvent>) {
        if let Some(mut c) = self.conn.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), c.client.cancel_query()).await;
            drop(c);
            self.set_state(ConnState::Disconnected, events);
        }
    }
}

/// A statement's result; the error carries whether the connection must be dropped.
type RunResult = Result<QueryOutput, (SqlError, bool)>;

/// Connects and asks for the session id.
async fn open(profile: &ServerProfile, password: Option<&Secret>) -> Result<Conn, SqlError> {
    let (mut client, meter) = connect(profile, password).await?;
    // Bounded like the connect itself: a server that logs us in and then stops answering
    // must not leave the step running forever.
    let limit = std::time::Duration::from_secs(profile.connect_timeout_secs.max(1));
    let ask = async {
        match client.simple_query("SELECT @@SPID AS spid").await {
            Ok(stream) => match collect(stream, Limits::of(profile)).await {
                Ok(sets) => Ok(sets
                    .first()
                    .and_then(|s| s.rows.first())
                    .and_then(|r| r.get(0))
                    .and_then(|v| match v {
                        ValueRef::Int(i) => Some(i),
                        _ => None,
                    })),
                Err(e) => spid_error(e, profile),
            },
            Err(e) => spid_error(e, profile),
        }
    };
    let spid = match tokio::time::timeout(limit, ask).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(SqlError::Connect {
                server: profile.display_server(),
                message: format!(
                    "logged in, but the server did not answer within {} s (connect_timeout_secs)",
                    limit.as_secs()
                ),
            });
        }
    };
    Ok(Conn {
        client,
        meter,
        spid,
    })
}

/// A server error for `@@SPID` only costs progress reporting; anything else is a failed connect.
fn spid_error(e: tiberius::error::Error, p: &ServerProfile) -> Result<Option<i64>, SqlError> {
    match e {
        tiberius::error::Error::Server(_) => Ok(None),
        other => Err(SqlError::Connect {
            server: p.display_server(),
            message: other.to_string(),
        }),
    }
}

/// A statement's timeout: the step's own (`step`, 0 = none) shortens the profile's
/// `statement_timeout_secs`, never lengthens it.
pub fn effective_timeout(step: u64, profile: u64) -> u64 {
    match (step, profile) {
        (0, p) => p,
        (s, 0) => s,
        (s, p) => s.min(p),
    }
}

/// Sets the database, then runs the statement and reads every result set.
async fn run(client: &mut SqlClient, stmt: &Statement, limits: Limits) -> RunResult {
    let (sql, values) = bind(stmt).map_err(|e| (e, false))?;
    let params: Vec<&dyn tiberius::ToSql> = values.iter().map(|v| v.as_ref()).collect();
    let stream = if params.is_empty() {
        client.simple_query(sql).await
    } else {
        client.query(sql, &params).await
    };
    if let Some(m) = &limits.meter {
        m.reset();
    }
    let meter = limits.meter.clone();
    let sets = match stream {
        Ok(s) => collect(s, limits).await,
        Err(e) => Err(e),
    }
    .map_err(|e| match &meter {
        // Our own refusal, not a network fault: say so (the connection is dropped).
        Some(m) if m.tripped() => (
            SqlError::Protocol {
                message: format!(
                    "the server sent more than {} MiB for one row (max_result_mib): the reply was abandoned",
                    m.limit() >> 20
                ),
            },
            true,
        ),
        _ => statement_error(e),
    })?;
    Ok(QueryOutput {
        sets,
        rows_affected: Vec::new(),
    })
}

/// The text sent for `stmt`: `USE [db]; ` when a database is set, then the SQL; with
/// parameters, `DECLARE @name type = @Pn, ...; ` first, binding each `@name` to the driver's
/// positional `@Pn` (sent to `sp_executesql`, never spliced into the text). The statement
/// starts on the first line, so server line numbers match the runbook's SQL.
pub fn statement_text(stmt: &Statement) -> Result<String, SqlError> {
    let mut prefix = String::new();
    if !stmt.params.is_empty() {
        prefix.push_str("DECLARE ");
        for (i, (name, p)) in stmt.params.iter().enumerate() {
            if !valid_param_name(name) {
                return Err(SqlError::Protocol {
                    message: format!("parameter name `{name}` is not a plain identifier"),
                });
            }
            if i > 0 {
                prefix.push_str(", ");
            }
            let ty = match p {
                Param::Text(_) => "nvarchar(max)",
                Param::Int(_) => "bigint",
                Param::Bool(_) => "bit",
            };
            prefix.push_str(&format!("@{name} {ty} = @P{}", i + 1));
        }
        prefix.push_str("; ");
    }
    if !stmt.database.is_empty() {
        prefix.push_str(&format!("USE {}; ", quote_db(&stmt.database)?));
    }
    Ok(format!("{prefix}{}", stmt.sql))
}

fn bind(stmt: &Statement) -> Result<(String, Vec<Box<dyn tiberius::ToSql>>), SqlError> {
    let sql = statement_text(stmt)?;
    let values = stmt
        .params
        .iter()
        .map(|(_, p)| -> Box<dyn tiberius::ToSql> {
            match p {
                Param::Text(s) => Box::new(s.clone()),
                Param::Int(i) => Box::new(*i),
                Param::Bool(b) => Box::new(*b),
            }
        })
        .collect();
    Ok((sql, values))
}

fn valid_param_name(s: &str) -> bool {
    let mut c = s.chars();
    // `@P1`, `@P2`... are the driver's own names.
    let driver_name =
        s.len() > 1 && s.starts_with(['P', 'p']) && s.bytes().skip(1).all(|b| b.is_ascii_digit());
    matches!(c.next(), Some(ch) if ch.is_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_alphanumeric() || ch == '_')
        && !driver_name
}

/// `[name]` with `]` doubled; refuses names SQL Server could not have.
pub(crate) fn quote_db(name: &str) -> Result<String, SqlError> {
    if name.is_empty() || name.chars().count() > 128 || name.contains('\0') {
        return Err(SqlError::Protocol {
            message: format!("`{name}` is not a valid database name (1-128 characters, no NUL)"),
        });
    }
    Ok(format!("[{}]", name.replace(']', "]]")))
}

/// Polls progress for `spid` once a second, forever (the caller drops it when the statement
/// ends). Gives up quietly when the second connection fails: progress is a nicety.
async fn poll_progress(
    monitor: &mut Option<SqlClient>,
    profile: &ServerProfile,
    password: Option<&Secret>,
    spid: Option<i64>,
    id: u64,
    events: &UnboundedSender<ExecEvent>,
) {
    let Some(spid) = spid else {
        return std::future::pending().await;
    };
    if monitor.is_none() {
        match connect(profile, password).await {
            Ok((c, _)) => *monitor = Some(c),
            Err(e) => {
                tracing::debug!("progress connection failed: {e}");
                return std::future::pending().await;
            }
        }
    }
    let stmt = Statement {
        role: Role::Source,
        database: String::new(),
        sql: "SELECT percent_complete, estimated_completion_time FROM sys.dm_exec_requests \
              WHERE session_id = @spid"
            .into(),
        params: vec![("spid".into(), Param::Int(spid))],
        timeout_secs: 5,
        long_running: false,
    };
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Taken out while in use: if this future is dropped mid-reply, so is the connection.
        let Some(mut client) = monitor.take() else {
            return std::future::pending().await;
        };
        match tokio::time::timeout(
            Duration::from_secs(5),
            run(&mut client, &stmt, Limits::of(profile)),
        )
        .await
        {
            Ok(Ok(out)) => {
                *monitor = Some(client);
                if let Some(p) = progress_of(&out) {
                    let _ = events.send(ExecEvent::Progress { id, progress: p });
                }
            }
            Ok(Err((_, false))) => *monitor = Some(client),
            Ok(Err((e, true))) => {
                tracing::debug!("progress connection lost: {e}");
                return std::future::pending().await;
            }
            Err(_) => return std::future::pending().await,
        }
    }
}

fn progress_of(out: &QueryOutput) -> Option<Progress> {
    let set = out.first()?;
    let percent = set.get(0, "percent_complete")?.as_f64()? as f32;
    let eta_ms = set
        .get(0, "estimated_completion_time")
        .and_then(ValueRef::as_f64)
        .filter(|v| *v > 0.0)
        .map(|v| v as u64);
    Some(Progress { percent, eta_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(db: &str, sql: &str, params: Vec<(&str, Param)>) -> Statement {
        Statement {
            role: Role::Source,
            database: db.into(),
            sql: sql.into(),
            params: params
                .into_iter()
                .map(|(n, p)| (n.to_string(), p))
                .collect(),
            timeout_secs: 0,
            long_running: false,
        }
    }

    #[test]
    fn text_binds_names_and_quotes_db() {
        let s = stmt(
            "Biz]Talk",
            "SELECT @a, @n",
            vec![("a", Param::Text("x'".into())), ("n", Param::Int(3))],
        );
        assert_eq!(
            statement_text(&s).unwrap(),
            "DECLARE @a nvarchar(max) = @P1, @n bigint = @P2; USE [Biz]]Talk]; SELECT @a, @n"
        );
        assert_eq!(
            statement_text(&stmt("", "SELECT 1", vec![])).unwrap(),
            "SELECT 1"
        );
    }

    #[test]
    fn bad_names_refused() {
        assert!(statement_text(&stmt("", "x", vec![("a b", Param::Int(1))])).is_err());
        assert!(statement_text(&stmt("", "x", vec![("P2", Param::Int(1))])).is_err());
        assert!(statement_text(&stmt("a\0", "x", vec![])).is_err());
    }
}
