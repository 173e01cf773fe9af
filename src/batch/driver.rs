//! A headless driver: performs the engine's effects (journal appends, SQL through an
//! [`Executor`], generated files) without a UI, and reports what happened.
//!
//! Write-ahead: effects are performed in order, and a `Journal` effect is appended and
//! fsynced before anything after it; when an append fails the engine is told
//! (`Input::JournalFailed`) and the remaining effects are dropped.
//! The UI has its own driver (`app::driver`) tied to its message loop; both keep the journal
//! and write generated files through [`crate::effects`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::effects::{WriteAhead, write_generated};
use crate::engine::{Effect, Engine, Input};
use crate::journal::JournalWriter;
use crate::sql::executor::{ExecEvent, Executor};
use btsdr_types::{SqlError, Statement};

/// Something the caller may want to show or act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Happened {
    /// A record was appended and fsynced.
    Journaled {
        seq: u64,
        step: Option<String>,
        event: &'static str,
    },
    /// A statement left the executor's queue.
    Started {
        step: String,
    },
    /// A statement finished (the engine already has the result). `error` is kept here
    /// because the journal only records its text.
    Finished {
        step: String,
        error: Option<SqlError>,
        /// From `Started` (or submission) to `Finished`.
        elapsed_ms: u64,
    },
    /// Dry run: the statement that would have been sent (secrets redacted).
    WouldRun {
        step: String,
        statement: Statement,
    },
    AskConfirmDestructive {
        step: String,
        word: String,
    },
    AskSecondOperator {
        step: String,
        first: String,
    },
    AskManual {
        step: String,
    },
    Notify(String),
    /// The engine refused an input; the text says why.
    Refused(String),
    /// The journal could not be written: nothing more is sent.
    JournalFailed(String),
}

struct InFlight {
    step: String,
    since: Instant,
}

/// Owns one session's engine, journal and executor.
pub struct Driver {
    engine: Engine,
    journal: WriteAhead,
    exec: Arc<dyn Executor>,
    tx: UnboundedSender<ExecEvent>,
    rx: UnboundedReceiver<ExecEvent>,
    files_dir: PathBuf,
    in_flight: HashMap<u64, InFlight>,
    /// A drill's simulator: confirmed manual steps are done on it (`batch::drill::follow_record`).
    drill: Option<btsdr_sim::drill::DrillHands>,
}

impl Driver {
    /// `files_dir` is where generate steps write their files.
    pub fn new(
        engine: Engine,
        journal: JournalWriter,
        exec: Arc<dyn Executor>,
        files_dir: PathBuf,
    ) -> Driver {
        let (tx, rx) = unbounded_channel();
        Driver {
            engine,
            journal: WriteAhead::new(journal),
            exec,
            tx,
            rx,
            files_dir,
            in_flight: HashMap::new(),
            drill: None,
        }
    }

    /// In a drill: the simulator that follows the journal, as the TUI's does.
    pub fn follow_drill(&mut self, hands: Option<btsdr_sim::drill::DrillHands>) {
        self.drill = hands;
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn journal_path(&self) -> &Path {
        // `new` always opens one.
        self.journal.path().unwrap_or(Path::new(""))
    }

    /// Statements submitted and not finished yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The journal error that stopped this session, if any.
    pub(crate) fn halted(&self) -> Option<&str> {
        self.journal.halted()
    }

    /// Sends one input to the engine and performs the effects.
    pub fn send(&mut self, input: Input) -> Vec<Happened> {
        let effects = self.engine.handle(input, Utc::now());
        let mut out = Vec::new();
        self.perform(effects, &mut out);
        out
    }

    fn perform(&mut self, effects: Vec<Effect>, out: &mut Vec<Happened>) {
        let mut effects = effects.into_iter();
        while let Some(effect) = effects.next() {
            match effect {
                Effect::Journal { record } => {
                    let step = record.step.clone();
                    let event = record.event.name();
                    let follow = self.drill.is_some()
                        && matches!(record.event, crate::engine::Event::ManualConfirmed { .. });
                    let copy = follow.then(|| record.clone());
                    match self.journal.append(record) {
                        Ok(r) => {
                            if let (Some(h), Some(c)) = (&self.drill, &copy) {
                                crate::batch::drill::follow_record(h, self.engine.runbook(), c);
                            }
                            out.push(Happened::Journaled {
                                seq: r.seq,
                                step,
                                event,
                            });
                        }
                        Err(error) => {
                            let more = self.engine.handle(
                                Input::JournalFailed {
                                    error: error.clone(),
                                },
                                Utc::now(),
                            );
                            out.push(Happened::JournalFailed(error));
                            // Write-ahead: nothing after a failed append is performed.
                            for e in more {
                                if let Effect::Notify { text } = e {
                                    out.push(Happened::Notify(text));
                                }
                            }
                            effects.by_ref().for_each(drop);
                        }
                    }
                }
                Effect::RunSql {
                    request_id,
                    step,
                    statement,
                } => {
                    if self.journal.halted().is_some() {
                        continue;
                    }
                    self.in_flight.insert(
                        request_id,
                        InFlight {
                            step,
                            since: Instant::now(),
                        },
                    );
                    self.exec.submit(request_id, statement, self.tx.clone());
                }
                Effect::WouldRun { step, statement } => {
                    out.push(Happened::WouldRun { step, statement })
                }
                Effect::WriteFile {
                    step,
                    name,
                    contents,
                } => {
                    if self.journal.halted().is_some() {
                        continue;
                    }
                    let input = match write_generated(&self.files_dir, &name, &contents) {
                        Ok(path) => Input::GenerateWritten {
                            step,
                            path: path.display().to_string(),
                        },
                        Err(error) => Input::GenerateFailed { step, error },
                    };
                    let more = self.engine.handle(input, Utc::now());
                    self.perform(more, out);
                }
                Effect::AskConfirmDestructive { step, word } => {
                    out.push(Happened::AskConfirmDestructive { step, word })
                }
                Effect::AskSecondOperator { step, first } => {
                    out.push(Happened::AskSecondOperator { step, first })
                }
                Effect::AskManual { step } => out.push(Happened::AskManual { step }),
                Effect::Notify { text } => out.push(Happened::Notify(text)),
                Effect::Refused { text } => out.push(Happened::Refused(text)),
            }
        }
    }

    /// Waits for the next executor event and feeds results to the engine. Returns `None`
    /// when nothing is in flight.
    pub async fn next(&mut self) -> Option<Vec<Happened>> {
        if self.in_flight.is_empty() {
            return None;
        }
        let ev = self.rx.recv().await?;
        let mut out = Vec::new();
        match ev {
            ExecEvent::Started { id } => {
                if let Some(f) = self.in_flight.get_mut(&id) {
                    f.since = Instant::now();
                    out.push(Happened::Started {
                        step: f.step.clone(),
                    });
                }
            }
            ExecEvent::Progress { id, progress } => {
                if let Some(f) = self.in_flight.get(&id) {
                    let input = Input::SqlProgress {
                        step: f.step.clone(),
                        request_id: id,
                        progress,
                    };
                    let effects = self.engine.handle(input, Utc::now());
                    self.perform(effects, &mut out);
                }
            }
            ExecEvent::Finished { id, result } => {
                if let Some(f) = self.in_flight.remove(&id) {
                    let error = result.as_ref().err().cloned();
                    let elapsed_ms =
                        u64::try_from(f.since.elapsed().as_millis()).unwrap_or(u64::MAX);
                    let effects = self.engine.handle(
                        Input::SqlFinished {
                            step: f.step.clone(),
                            request_id: id,
                            result,
                        },
                        Utc::now(),
                    );
                    self.perform(effects, &mut out);
                    out.push(Happened::Finished {
                        step: f.step,
                        error,
                        elapsed_ms,
                    });
                }
            }
            ExecEvent::Conn { .. } => {}
        }
        Some(out)
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A fake executor for unit tests: answers each statement from a function.

    use std::sync::Mutex;

    use super::*;
    use crate::sql::executor::ConnState;
    use btsdr_types::QueryOutput;
    use btsdr_types::Role;

    type Answer = dyn Fn(&Statement) -> Result<QueryOutput, SqlError> + Send + Sync;

    pub struct FakeExec {
        pub answer: Box<Answer>,
        pub seen: Mutex<Vec<Statement>>,
    }

    impl FakeExec {
        pub fn new(
            f: impl Fn(&Statement) -> Result<QueryOutput, SqlError> + Send + Sync + 'static,
        ) -> Arc<FakeExec> {
            Arc::new(FakeExec {
                answer: Box::new(f),
                seen: Mutex::new(Vec::new()),
            })
        }
    }

    impl Executor for FakeExec {
        fn submit(&self, id: u64, stmt: Statement, events: UnboundedSender<ExecEvent>) {
            let result = (self.answer)(&stmt);
            if let Ok(mut s) = self.seen.lock() {
                s.push(stmt);
            }
            let _ = events.send(ExecEvent::Started { id });
            let _ = events.send(ExecEvent::Finished { id, result });
        }
        fn cancel(&self, _id: u64) {}
        fn status(&self) -> Vec<(Role, ConnState)> {
            vec![]
        }
    }
}
