//! The driver that performs `AppEffect`s: journal appends (write-ahead), SQL through any
//! `Executor`, generated files, clipboard, opening sessions. Used by `tui` and the harness.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::engine::Engine;
use crate::journal::JournalWriter;
use crate::sql::executor::{ExecEvent, Executor};

use super::session::{Session, SessionMsg};
use super::update::{AppEffect, Msg, Request};

/// What opening a session produces.
pub struct Opened {
    pub engine: Engine,
    pub journal: JournalWriter,
    pub executor: Arc<dyn Executor>,
    /// Where generate steps write their files.
    pub files_dir: PathBuf,
}

/// Opens sessions for Home requests (start, resume, drill, recover) and reports.
pub trait Opener {
    fn open(&mut self, req: Request) -> Result<Opened, String>;

    /// Writes a session's report where the operator can open it; says where (or why not).
    fn report(&mut self, session_id: &str) -> Result<String, String> {
        Err(format!(
            "the report of {session_id} cannot be written from here: run `btsdr report {session_id}`"
        ))
    }

    /// Called after each record of the open session is in the journal (a drill's simulator
    /// follows the session: it performs confirmed Windows steps and keeps its snapshot).
    fn journaled(&mut self, _record: &crate::engine::Record) {}
}

/// An opener that refuses everything (for a driver started on an already open session).
pub struct NoOpener;

impl Opener for NoOpener {
    fn open(&mut self, _req: Request) -> Result<Opened, String> {
        Err("opening another session from here is not available in this mode; quit and run btsdr again".into())
    }
}

/// Where copied text goes.
pub enum Clipboard {
    /// OSC 52 on the terminal (works over SSH in most terminals).
    Osc52,
    /// Kept in memory (tests).
    Memory(Vec<String>),
}

/// Performs effects for one session at a time.
pub struct SessionDriver {
    exec: Option<Arc<dyn Executor>>,
    journal: Option<JournalWriter>,
    files_dir: PathBuf,
    exec_tx: UnboundedSender<ExecEvent>,
    exec_rx: Option<UnboundedReceiver<ExecEvent>>,
    opener: Box<dyn Opener>,
    pub clipboard: Clipboard,
    /// A journal append failed: nothing else is sent until a new session is opened.
    halted: bool,
}

impl SessionDriver {
    pub fn new(opener: Box<dyn Opener>) -> SessionDriver {
        let (exec_tx, exec_rx) = unbounded_channel();
        SessionDriver {
            exec: None,
            journal: None,
            files_dir: PathBuf::from("."),
            exec_tx,
            exec_rx: Some(exec_rx),
            opener,
            clipboard: Clipboard::Osc52,
            halted: false,
        }
    }

    /// Installs an opened session; returns the message that shows it.
    /// Installs an opened session; returns the messages that show it (the session, then the
    /// connection states the executor knows).
    pub fn install(&mut self, o: Opened) -> Vec<Msg> {
        let mut out = vec![Msg::Opened(Box::new(Session::new(o.engine)))];
        for (role, state) in o.executor.status() {
            out.push(Msg::Session(SessionMsg::Exec(ExecEvent::Conn {
                role,
                state,
            })));
        }
        self.exec = Some(o.executor);
        self.journal = Some(o.journal);
        self.files_dir = o.files_dir;
        self.halted = false;
        out
    }

    /// The executor event stream (taken once, by the runtime or the harness).
    pub fn take_exec_events(&mut self) -> Option<UnboundedReceiver<ExecEvent>> {
        self.exec_rx.take()
    }

    pub fn journal_path(&self) -> Option<&Path> {
        self.journal.as_ref().map(JournalWriter::path)
    }

    /// Performs one effect; immediate results are returned as messages.
    pub fn perform_now(&mut self, effect: AppEffect) -> Vec<Msg> {
        match effect {
            AppEffect::Journal(record) => {
                let Some(j) = self.journal.as_mut() else {
                    self.halted = true;
                    return vec![Msg::Session(SessionMsg::JournalFailed(
                        "no journal is open".into(),
                    ))];
                };
                let copy = (*record).clone();
                if let Err(e) = j.append(*record) {
                    tracing::error!(error = %e, "journal append failed");
                    self.halted = true;
                    return vec![Msg::Session(SessionMsg::JournalFailed(format!(
                        "cannot write the journal {}: {e}",
                        j.path().display()
                    )))];
                }
                self.opener.journaled(&copy);
                vec![]
            }
            AppEffect::Submit {
                request_id,
                statement,
            } => {
                if self.halted {
                    // Write-ahead: never send what the journal did not record.
                    return vec![];
                }
                match &self.exec {
                    Some(x) => {
                        x.submit(request_id, *statement, self.exec_tx.clone());
                        vec![]
                    }
                    None => vec![Msg::DriverError(
                        "no SQL executor is configured for this session".into(),
                    )],
                }
            }
            AppEffect::CancelSql(id) => {
                if let Some(x) = &self.exec {
                    x.cancel(id);
                }
                vec![]
            }
            AppEffect::WriteFile {
                step,
                name,
                contents,
            } => {
                if self.halted {
                    return vec![];
                }
                // The name comes from the runbook: keep it inside the output directory.
                let safe = Path::new(&name)
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .filter(|n| !n.is_empty() && n != "." && n != "..");
                let Some(safe) = safe else {
                    return vec![Msg::Session(SessionMsg::FileFailed {
                        step,
                        error: format!("`{name}` is not a file name"),
                    })];
                };
                let path = self.files_dir.join(safe);
                let res = crate::journal::private::write_new(&path, contents.as_bytes());
                match res {
                    Ok(()) => vec![Msg::Session(SessionMsg::FileWritten {
                        step,
                        path: path.display().to_string(),
                    })],
                    Err(e) => vec![Msg::Session(SessionMsg::FileFailed {
                        step,
                        error: format!("{}: {e}", path.display()),
                    })],
                }
            }
            AppEffect::Copy(text) => {
                let n = text.chars().count();
                match &mut self.clipboard {
                    Clipboard::Memory(v) => v.push(text),
                    Clipboard::Osc52 => {
                        use crossterm::clipboard::CopyToClipboard;
                        let mut out = std::io::stdout();
                        if let Err(e) =
                            crossterm::execute!(out, CopyToClipboard::to_clipboard_from(text))
                        {
                            return vec![Msg::DriverError(format!(
                                "cannot copy to the clipboard: {e}"
                            ))];
                        }
                    }
                }
                vec![Msg::DriverInfo(format!(
                    "copied {n} characters to the clipboard (OSC 52)"
                ))]
            }
            AppEffect::WriteReport { session_id } => match self.opener.report(&session_id) {
                Ok(written) => vec![Msg::ReportWritten(written)],
                Err(e) => vec![Msg::DriverError(e)],
            },
            AppEffect::Open(req) => match self.opener.open(req) {
                Ok(o) => self.install(o),
                Err(e) => vec![Msg::DriverError(e)],
            },
            AppEffect::Quit => vec![],
        }
    }
}

impl crate::tui::Driver for SessionDriver {
    fn attach(&mut self, tx: UnboundedSender<Msg>) {
        // Executor events become messages.
        if let Some(mut rx) = self.take_exec_events() {
            tokio::spawn(async move {
                while let Some(ev) = rx.recv().await {
                    if tx.send(Msg::Session(SessionMsg::Exec(ev))).is_err() {
                        break;
                    }
                }
            });
        }
    }

    fn perform(&mut self, effect: AppEffect, tx: &UnboundedSender<Msg>) {
        for m in self.perform_now(effect) {
            let _ = tx.send(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fixture::sample_runbook;
    use crate::engine::{Effect, EngineOptions, Input, Variables};
    use crate::sql::ConnState;
    use btsdr_types::{Role, Statement};
    use std::sync::Mutex;

    /// Records what was submitted; answers nothing.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Statement>>);
    impl Executor for Recorder {
        fn submit(&self, _id: u64, stmt: Statement, _events: UnboundedSender<ExecEvent>) {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(stmt);
        }
        fn cancel(&self, _id: u64) {}
        fn status(&self) -> Vec<(Role, ConnState)> {
            vec![]
        }
    }

    /// Sees each record the driver reports as journaled, and whether the journal file held
    /// it then.
    struct Follower(Arc<Mutex<Vec<(String, bool)>>>, std::path::PathBuf);
    impl Opener for Follower {
        fn open(&mut self, _req: Request) -> Result<Opened, String> {
            Err("not in this test".into())
        }
        fn journaled(&mut self, record: &crate::engine::Record) {
            let name = record.event.name();
            let written = std::fs::read_to_string(&self.1).is_ok_and(|t| t.contains(name));
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((name.to_string(), written));
        }
    }

    /// A confirmed manual step reaches the opener's `journaled` hook (a drill's one channel
    /// to its simulator) after its record is in the journal file, and nothing is sent as SQL.
    #[test]
    fn a_confirmed_manual_step_reaches_the_hook_after_the_journal_and_sends_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rb = Arc::new(sample_runbook());
        let mut vars = Variables::from_runbook(&rb);
        vars.set("pwd", "not-a-real-secret");
        let opts = EngineOptions {
            operator: "amy".into(),
            session_id: "s".into(),
            drill: true,
            ..EngineOptions::default()
        };
        let mut engine = Engine::new(rb, vars, opts);
        let now = chrono::Utc::now();
        let mut records = Vec::new();
        for input in [
            Input::Start,
            Input::ConfirmManual {
                step: "stop-hosts".into(),
                by: "amy".into(),
                note: "stopped".into(),
                evidence: "CHG-1".into(),
            },
        ] {
            let fx = engine.handle(input, now);
            assert!(
                !fx.iter().any(|e| matches!(e, Effect::Refused { .. })),
                "{fx:?}"
            );
            records.extend(fx.into_iter().filter_map(|e| e.journal_record().cloned()));
        }
        let exec = Arc::new(Recorder::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let path = dir.path().join("s.jsonl");
        let mut d = SessionDriver::new(Box::new(Follower(Arc::clone(&seen), path.clone())));
        d.install(Opened {
            engine,
            journal: JournalWriter::create(&path).expect("journal"),
            executor: Arc::clone(&exec) as Arc<dyn Executor>,
            files_dir: dir.path().into(),
        });
        let n = records.len() as u64;
        for r in records {
            assert!(d.perform_now(AppEffect::Journal(Box::new(r))).is_empty());
        }
        assert!(exec.0.lock().unwrap_or_else(|e| e.into_inner()).is_empty());
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(seen.len() as u64, n, "{seen:?}");
        let (event, written) = seen.last().expect("the confirmation");
        assert_eq!(event, "manual_confirmed");
        assert!(
            *written,
            "the hook ran before the record was written: {seen:?}"
        );
    }
}
