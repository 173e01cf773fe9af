//! An executor whose servers become reachable later (a drill's simulator still building its
//! history): statements wait in order and go out once it is ready, or fail with its error.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;

use super::executor::{ConnState, ExecEvent, Executor};
use btsdr_types::{Role, lock};
use btsdr_types::{SqlError, Statement};

struct Queued {
    id: u64,
    stmt: Statement,
    events: UnboundedSender<ExecEvent>,
}

enum State {
    Waiting(Vec<Queued>),
    Ready(Arc<dyn Executor>),
    Failed(String),
}

/// Forwards to the executor given to [`DeferredExecutor::resolve`]; queues until then.
#[derive(Clone)]
pub(crate) struct DeferredExecutor {
    state: Arc<Mutex<State>>,
    roles: Vec<Role>,
    /// Names the target in errors ("the simulator").
    what: String,
}

impl DeferredExecutor {
    pub fn new(roles: Vec<Role>, what: &str) -> DeferredExecutor {
        DeferredExecutor {
            state: Arc::new(Mutex::new(State::Waiting(Vec::new()))),
            roles,
            what: what.to_string(),
        }
    }

    /// Makes the target available (or failed) and sends the queued statements on.
    pub(crate) fn resolve(&self, target: Result<Arc<dyn Executor>, String>) {
        let queued = {
            let mut st = lock(&self.state);
            let next = match &target {
                Ok(e) => State::Ready(Arc::clone(e)),
                Err(m) => State::Failed(m.clone()),
            };
            match std::mem::replace(&mut *st, next) {
                State::Waiting(q) => q,
                _ => Vec::new(),
            }
        };
        for q in queued {
            match &target {
                Ok(e) => e.submit(q.id, q.stmt, q.events),
                Err(m) => self.fail(q.id, &q.stmt, &q.events, m),
            }
        }
    }

    fn fail(&self, id: u64, stmt: &Statement, events: &UnboundedSender<ExecEvent>, message: &str) {
        let _ = events.send(ExecEvent::Conn {
            role: stmt.role,
            state: ConnState::Failed(message.to_string()),
        });
        let _ = events.send(ExecEvent::Finished {
            id,
            result: Err(SqlError::Connect {
                server: self.what.clone(),
                message: message.to_string(),
            }),
        });
    }
}

impl Executor for DeferredExecutor {
    fn submit(&self, id: u64, stmt: Statement, events: UnboundedSender<ExecEvent>) {
        let mut st = lock(&self.state);
        match &mut *st {
            State::Ready(e) => {
                let e = Arc::clone(e);
                drop(st);
                e.submit(id, stmt, events);
            }
            State::Failed(m) => {
                let m = m.clone();
                drop(st);
                self.fail(id, &stmt, &events, &m);
            }
            State::Waiting(q) => {
                let _ = events.send(ExecEvent::Conn {
                    role: stmt.role,
                    state: ConnState::Connecting,
                });
                q.push(Queued { id, stmt, events });
            }
        }
    }

    fn cancel(&self, id: u64) {
        let mut st = lock(&self.state);
        match &mut *st {
            State::Ready(e) => {
                let e = Arc::clone(e);
                drop(st);
                e.cancel(id);
            }
            State::Waiting(q) => {
                if let Some(pos) = q.iter().position(|x| x.id == id) {
                    let x = q.remove(pos);
                    drop(st);
                    let _ = x.events.send(ExecEvent::Finished {
                        id,
                        result: Err(SqlError::Cancelled),
                    });
                }
            }
            State::Failed(_) => {}
        }
    }

    fn status(&self) -> Vec<(Role, ConnState)> {
        match &*lock(&self.state) {
            State::Ready(e) => e.status(),
            // Nothing connects until a statement asks (the job then reports Connecting).
            State::Waiting(_) => self
                .roles
                .iter()
                .map(|r| (*r, ConnState::Disconnected))
                .collect(),
            State::Failed(m) => self
                .roles
                .iter()
                .map(|r| (*r, ConnState::Failed(m.clone())))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use btsdr_types::QueryOutput;
    use tokio::sync::mpsc::unbounded_channel;

    struct Echo;
    impl Executor for Echo {
        fn submit(&self, id: u64, _stmt: Statement, events: UnboundedSender<ExecEvent>) {
            let _ = events.send(ExecEvent::Finished {
                id,
                result: Ok(QueryOutput::default()),
            });
        }
        fn cancel(&self, _id: u64) {}
        fn status(&self) -> Vec<(Role, ConnState)> {
            vec![(Role::Source, ConnState::Connected)]
        }
    }

    fn stmt() -> Statement {
        Statement {
            role: Role::Source,
            database: "master".into(),
            sql: "SELECT 1".into(),
            params: vec![],
            timeout_secs: 5,
            long_running: false,
        }
    }

    fn finished(rx: &mut tokio::sync::mpsc::UnboundedReceiver<ExecEvent>) -> Vec<(u64, bool)> {
        let mut out = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            if let ExecEvent::Finished { id, result } = ev {
                out.push((id, result.is_ok()));
            }
        }
        out
    }

    #[test]
    fn queues_until_ready_then_forwards_in_order() {
        let d = DeferredExecutor::new(vec![Role::Source], "the simulator");
        let (tx, mut rx) = unbounded_channel();
        d.submit(1, stmt(), tx.clone());
        d.submit(2, stmt(), tx.clone());
        d.submit(3, stmt(), tx.clone());
        d.cancel(2);
        assert_eq!(
            finished(&mut rx),
            vec![(2, false)],
            "a queued statement cancels at once"
        );
        assert_eq!(d.status(), vec![(Role::Source, ConnState::Disconnected)]);
        d.resolve(Ok(Arc::new(Echo)));
        assert_eq!(finished(&mut rx), vec![(1, true), (3, true)]);
        d.submit(4, stmt(), tx);
        assert_eq!(finished(&mut rx), vec![(4, true)]);
        assert_eq!(d.status(), vec![(Role::Source, ConnState::Connected)]);
    }

    #[test]
    fn a_failed_start_fails_every_statement_with_its_reason() {
        let d = DeferredExecutor::new(vec![Role::Source], "the simulator");
        let (tx, mut rx) = unbounded_channel();
        d.submit(1, stmt(), tx.clone());
        d.resolve(Err("cannot listen on 127.0.0.1:0".into()));
        d.submit(2, stmt(), tx);
        assert_eq!(finished(&mut rx), vec![(1, false), (2, false)]);
        assert!(matches!(&d.status()[0].1, ConnState::Failed(m) if m.contains("cannot listen")));
    }
}
