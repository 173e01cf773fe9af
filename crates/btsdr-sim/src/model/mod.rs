//! A model of a BizTalk group's SQL side: several simulated instances (source, MessageBox,
//! log-shipping destination) sharing one [`state::Group`] behind a mutex. Each instance is a
//! [`SimBackend`] that the TDS server (`sim::tds`) serves on its own port.
//!
//! Statements are lexed (`lex`), parsed (`parse`) and executed (`exec`) against virtual tables
//! (`tables`), procedures (`procs`, `biztalk`, `logship`), BACKUP/RESTORE (`media`) and SQL
//! Agent jobs (`jobs`). Anything not modelled answers with an error that names it.

pub mod biztalk;
pub mod catalog;
pub mod clock;
pub mod exec;
pub mod jobs;
pub mod lex;
pub mod logins;
pub mod logship;
pub mod manual;
pub mod media;
pub mod parse;
pub mod procs;
pub mod state;
pub mod tables;
pub mod value;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use exec::{BatchState, Ctx, Flow};
use state::{Group, InstanceId, Running};

use super::backend::{Backend, Reply, ReplyFuture, Request, Session};
use super::replay::{SimEvent, SimLog};
use btsdr_types::{Param, Value};

pub type SharedGroup = Arc<Mutex<Group>>;

/// A login's SID, the same on every instance (domain accounts and the drill's logins).
pub fn scenario_sid(name: &str) -> Vec<u8> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.to_lowercase().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut v = vec![1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0];
    v.extend_from_slice(&h.to_le_bytes());
    v
}

/// Locks the group; a panic in another request never makes the model unusable.
pub fn lock(g: &SharedGroup) -> MutexGuard<'_, Group> {
    btsdr_types::lock(g)
}

/// One simulated SQL Server instance of the group.
#[derive(Clone)]
pub struct SimBackend {
    pub group: SharedGroup,
    pub inst: InstanceId,
    /// Transactions left open by a request, by session id, until COMMIT, ROLLBACK or logout.
    open_transactions: Arc<Mutex<HashMap<u16, exec::Transaction>>>,
    /// Where requests are logged for a later replay (`sim::replay`), if anywhere.
    pub log: Option<SimLog>,
    /// Sessions with `SET FMTONLY ON`.
    fmtonly: Arc<Mutex<std::collections::HashSet<u16>>>,
}

/// Logs a request when it ends, however it ends: `dropped` stays set unless its long work
/// finished (a dropped connection or an attention leaves the work undone).
struct LogGuard {
    log: SimLog,
    event: Option<SimEvent>,
}

impl LogGuard {
    fn finished(&mut self) {
        if let Some(SimEvent::Request { dropped, .. }) = self.event.as_mut() {
            *dropped = false;
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(e) = self.event.take() {
            self.log.push(e);
        }
    }
}

/// Removes a running request from `sys.dm_exec_requests` however the request ends.
struct RunningGuard {
    group: SharedGroup,
    inst: InstanceId,
    spid: u16,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let mut g = lock(&self.group);
        let (inst, spid) = (self.inst, self.spid);
        g.running
            .retain(|r| !(r.instance == inst && r.spid == spid));
    }
}

fn error_reply(number: u32, message: String) -> Reply {
    exec::ErrMsg::new(number, message).reply()
}

impl SimBackend {
    pub fn new(group: SharedGroup, inst: InstanceId) -> SimBackend {
        SimBackend {
            group,
            inst,
            open_transactions: Arc::default(),
            log: None,
            fmtonly: Arc::default(),
        }
    }

    /// The same instance, logging every request into `log`.
    #[must_use]
    pub fn with_log(mut self, log: SimLog) -> SimBackend {
        self.log = Some(log);
        self
    }

    fn lock_fmtonly(&self) -> MutexGuard<'_, std::collections::HashSet<u16>> {
        self.fmtonly.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a request to completion (the async part only waits for long RESTOREs).
    pub async fn run(&self, session: &mut Session, request: Request) -> Vec<Reply> {
        let latency = lock(&self.group).latency_ms;
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        let mut guard = self.log.clone().map(|log| LogGuard {
            log,
            event: Some(SimEvent::Request {
                at: lock(&self.group).now(),
                instance: self.inst,
                login: session.login.clone(),
                database: session.database.clone(),
                sql: request.sql.clone(),
                params: request.params.clone(),
                dropped: true,
            }),
        });
        let out = self.run_logged(session, request, None).await;
        if let Some(g) = guard.as_mut()
            && !out.last().is_some_and(|r| *r == Reply::Disconnect)
        {
            g.finished();
        }
        out
    }

    /// Runs a logged request again (`sim::replay`): no waiting, and long work that was
    /// `dropped` the first time is dropped again.
    pub fn replay(&self, session: &mut Session, request: Request, dropped: bool) -> Vec<Reply> {
        let fut = self.run_logged(session, request, Some(dropped));
        // Nothing awaits in replay mode: the future is ready at its first poll.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut fut = std::pin::pin!(fut);
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => Vec::new(),
        }
    }

    /// `replay` is `Some(dropped)` when the request is being replayed.
    async fn run_logged(
        &self,
        session: &mut Session,
        request: Request,
        replay: Option<bool>,
    ) -> Vec<Reply> {
        let (toks, lines) = match lex::lex_lines(&request.sql) {
            Ok(t) => t,
            Err(e) => {
                return vec![error_reply(
                    105,
                    format!("{e} (statement: {})", lex::excerpt(&request.sql)),
                )];
            }
        };
        // The line SQL Server reports: where the statement (or the syntax error) starts.
        let line_of = |at: usize| lines.get(at).or(lines.last()).copied().unwrap_or(1);
        let stmts = match parse::parse_batch_at(&toks) {
            Ok(s) => s
                .into_iter()
                .map(|(at, s)| (line_of(at), s))
                .collect::<Vec<_>>(),
            Err((at, e)) => {
                // SQL Server's text and severity (15 for syntax); the excerpt goes to the log.
                tracing::info!(
                    statement = %lex::excerpt(&request.sql),
                    "btsdr simulator cannot parse: {e}"
                );
                let mut err = exec::ErrMsg::new(if e == parse::TOO_DEEP { 191 } else { 102 }, e);
                err.severity = 15;
                err.line = line_of(at);
                return vec![err.reply()];
            }
        };
        let tran = self
            .open_transactions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&session.spid);
        let mut b = BatchState {
            db: session.database.clone(),
            login: session.login.clone(),
            spid: session.spid,
            tran,
            fmtonly: self.lock_fmtonly().contains(&session.spid),
            ..Default::default()
        };
        for (name, p) in &request.params {
            let v = match p {
                None => Value::Null,
                Some(Param::Text(s)) => Value::Text(s.clone()),
                Some(Param::Int(i)) => Value::Int(*i),
                Some(Param::Bool(x)) => Value::Bool(*x),
            };
            b.vars
                .insert(name.trim_start_matches('@').to_ascii_lowercase(), v);
        }
        let out = self.run_batch(session, &stmts, &mut b, replay).await;
        if let Some(t) = b.tran.take() {
            self.open_transactions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(session.spid, t);
        }
        out
    }

    async fn run_batch(
        &self,
        session: &mut Session,
        stmts: &[(u32, parse::Stmt)],
        b: &mut BatchState,
        replay: Option<bool>,
    ) -> Vec<Reply> {
        for (line, s) in stmts {
            let first = b.out.len();
            let r = {
                let mut g = lock(&self.group);
                jobs::catch_up(&mut g);
                let mut ctx = Ctx {
                    g: &mut g,
                    inst: self.inst,
                    b: &mut *b,
                    depth: 0,
                };
                ctx.run(s)
            };
            // A replay does not wait (WAITFOR was waited the first time).
            if let Some(d) = b.delay.take()
                && replay.is_none()
            {
                tokio::time::sleep(d).await;
            }
            if b.fmtonly {
                // SET FMTONLY ON: result sets carry their columns, no rows.
                for reply in b.out.iter_mut().skip(first) {
                    if let Reply::Rows(rs) = reply {
                        rs.rows = btsdr_types::Rows::new();
                    }
                }
            }
            match r {
                Err(fail) => {
                    b.out.extend(fail.0.iter().map(|e| {
                        let mut e = e.clone();
                        // Errors raised by the batch itself carry the statement's line.
                        if e.procedure.is_empty() {
                            e.line = *line;
                        }
                        e.reply()
                    }));
                    break;
                }
                Ok(Flow::Return) => break,
                Ok(_) => {}
            }
            if let Some(work) = b.long.take() {
                if let Some(dropped) = replay {
                    let mut g = lock(&self.group);
                    let key = work.database.to_ascii_lowercase();
                    if g.faults.drop_during_restore
                        && work.command == "RESTORE DATABASE"
                        && !g.dropped_once.contains(&key)
                    {
                        g.dropped_once.push(key);
                    }
                    if dropped {
                        return std::mem::take(&mut b.out);
                    }
                    let replies = media::apply_restore(&mut g, &work.plan);
                    b.out.extend(replies);
                    continue;
                }
                let _guard = {
                    let mut g = lock(&self.group);
                    let start_time = g.now();
                    g.running.push(Running {
                        instance: self.inst,
                        spid: session.spid,
                        command: work.command.clone(),
                        database: work.database.clone(),
                        started: Instant::now(),
                        total: Duration::from_secs_f64(work.secs),
                        start_time,
                    });
                    RunningGuard {
                        group: self.group.clone(),
                        inst: self.inst,
                        spid: session.spid,
                    }
                };
                let drop_now = {
                    let mut g = lock(&self.group);
                    let key = work.database.to_ascii_lowercase();
                    if g.faults.drop_during_restore
                        && work.command == "RESTORE DATABASE"
                        && !g.dropped_once.contains(&key)
                    {
                        g.dropped_once.push(key);
                        true
                    } else {
                        false
                    }
                };
                if drop_now {
                    tokio::time::sleep(Duration::from_secs_f64(work.secs / 2.0)).await;
                    b.out.push(Reply::Disconnect);
                    return std::mem::take(&mut b.out);
                }
                tokio::time::sleep(Duration::from_secs_f64(work.secs)).await;
                let replies = {
                    let mut g = lock(&self.group);
                    media::apply_restore(&mut g, &work.plan)
                };
                b.out.extend(replies);
            }
        }
        session.database = b.db.clone();
        if b.fmtonly {
            self.lock_fmtonly().insert(session.spid);
        } else {
            self.lock_fmtonly().remove(&session.spid);
        }
        std::mem::take(&mut b.out)
    }
}

impl Backend for SimBackend {
    fn login(&self, user: &str, password: &str) -> Result<(), String> {
        let g = lock(&self.group);
        if g.accounts
            .iter()
            .any(|(u, p)| u.eq_ignore_ascii_case(user) && p == password)
        {
            Ok(())
        } else {
            Err(format!("Login failed for user '{user}'."))
        }
    }

    fn execute<'a>(&'a self, session: &'a mut Session, request: Request) -> ReplyFuture<'a> {
        Box::pin(self.run(session, request))
    }

    fn server_name(&self) -> String {
        lock(&self.group).instances[self.inst].server_name.clone()
    }

    fn product_version(&self) -> String {
        lock(&self.group).instances[self.inst].version.clone()
    }

    fn database_exists(&self, database: &str) -> bool {
        let g = lock(&self.group);
        g.instances[self.inst]
            .databases
            .iter()
            .any(|d| d.name.eq_ignore_ascii_case(database))
    }

    fn disconnected(&self, spid: u16) {
        let open = self
            .open_transactions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&spid);
        self.lock_fmtonly().remove(&spid);
        let mut g = lock(&self.group);
        let inst = self.inst;
        // SQL Server rolls back what a closed session left uncommitted.
        if let Some(t) = open {
            g.instances[inst] = *t.before;
        }
        g.running
            .retain(|r| !(r.instance == inst && r.spid == spid));
    }
}
