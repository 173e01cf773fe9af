//! The driver that performs `AppEffect`s: journal appends (write-ahead), SQL through any
//! `Executor`, generated files, clipboard, opening sessions. The harness calls it directly;
//! `tui` runs it on its own thread ([`Background`]) so a slow journal never freezes the UI.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::effects::{WriteAhead, write_generated};
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

/// Performs what `update` cannot: SQL, journal, files, sessions. Results come back as `Msg`s.
pub trait Driver {
    /// Called once with the channel the driver sends its results to.
    fn attach(&mut self, _tx: UnboundedSender<Msg>) {}
    /// Performs one effect (never `Quit`, which the runtime handles). Must not block for long
    /// (journal appends fsync: `app::driver::Background` runs them on their own thread):
    /// start the work elsewhere and report back through the channel.
    fn perform(&mut self, effect: AppEffect, tx: &UnboundedSender<Msg>);
}

/// Opens sessions for Home requests (start, resume, drill, recover) and reports. `Send`: the
/// UI runs it on the driver's thread.
pub trait Opener: Send {
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

impl Clipboard {
    /// Copies `text`; says so (or why not).
    fn copy(&mut self, text: String) -> Vec<Msg> {
        let n = text.chars().count();
        match self {
            Clipboard::Memory(v) => v.push(text),
            Clipboard::Osc52 => {
                use crossterm::clipboard::CopyToClipboard;
                let mut out = std::io::stdout();
                if let Err(e) = crossterm::execute!(out, CopyToClipboard::to_clipboard_from(text)) {
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
}

/// Performs effects for one session at a time.
pub struct SessionDriver {
    exec: Option<Arc<dyn Executor>>,
    /// The open session's journal; after a failed append nothing else is sent until a new
    /// session is opened.
    journal: WriteAhead,
    files_dir: PathBuf,
    exec_tx: UnboundedSender<ExecEvent>,
    exec_rx: Option<UnboundedReceiver<ExecEvent>>,
    opener: Box<dyn Opener>,
    pub clipboard: Clipboard,
    /// Runs before each journal append (tests: a slow or blocked journal).
    #[cfg(test)]
    before_append: Option<Box<dyn Fn() + Send>>,
}

impl SessionDriver {
    pub fn new(opener: Box<dyn Opener>) -> SessionDriver {
        let (exec_tx, exec_rx) = unbounded_channel();
        SessionDriver {
            exec: None,
            journal: WriteAhead::closed(),
            files_dir: PathBuf::from("."),
            exec_tx,
            exec_rx: Some(exec_rx),
            opener,
            clipboard: Clipboard::Osc52,
            #[cfg(test)]
            before_append: None,
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
        self.journal = WriteAhead::new(o.journal);
        self.files_dir = o.files_dir;
        out
    }

    /// The executor event stream (taken once, by the runtime or the harness).
    pub fn take_exec_events(&mut self) -> Option<UnboundedReceiver<ExecEvent>> {
        self.exec_rx.take()
    }

    pub fn journal_path(&self) -> Option<&Path> {
        self.journal.path()
    }

    /// Performs one effect; immediate results are returned as messages.
    pub fn perform_now(&mut self, effect: AppEffect) -> Vec<Msg> {
        match effect {
            AppEffect::Journal(record) => {
                let copy = (*record).clone();
                #[cfg(test)]
                if let Some(f) = &self.before_append {
                    f();
                }
                if let Err(e) = self.journal.append(*record) {
                    return vec![Msg::Session(SessionMsg::JournalFailed(e))];
                }
                self.opener.journaled(&copy);
                vec![]
            }
            AppEffect::Submit {
                request_id,
                statement,
            } => {
                if self.journal.halted().is_some() {
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
                if self.journal.halted().is_some() {
                    return vec![];
                }
                match write_generated(&self.files_dir, &name, &contents) {
                    Ok(path) => vec![Msg::Session(SessionMsg::FileWritten {
                        step,
                        path: path.display().to_string(),
                    })],
                    Err(error) => vec![Msg::Session(SessionMsg::FileFailed { step, error })],
                }
            }
            AppEffect::Copy(text) => self.clipboard.copy(text),
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

impl Driver for SessionDriver {
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

/// Runs a [`SessionDriver`] on its own thread for the terminal UI: every effect but `Copy`
/// is queued to that thread and performed there in the order `update` produced them, so a
/// journal append (fsync, maybe on a network profile folder) never holds up keys or frames,
/// and write-ahead still holds: a statement or file after a record goes out only once the
/// record is durable, and after a failed append nothing is sent (`SessionDriver::perform_now`).
/// `Copy` stays on the UI thread: its OSC 52 sequence must not land inside a frame.
pub struct Background {
    /// The driver until `attach` starts the thread.
    idle: Option<SessionDriver>,
    jobs: Option<std::sync::mpsc::Sender<AppEffect>>,
    worker: Option<std::thread::JoinHandle<SessionDriver>>,
    clipboard: Clipboard,
}

impl Background {
    pub fn new(driver: SessionDriver) -> Background {
        Background {
            idle: Some(driver),
            jobs: None,
            worker: None,
            clipboard: Clipboard::Osc52,
        }
    }

    /// Waits until every queued effect is performed (records are durable) and returns the
    /// driver. `None` if the driver's thread panicked.
    pub fn finish(mut self) -> Option<SessionDriver> {
        self.stop()
    }

    fn stop(&mut self) -> Option<SessionDriver> {
        self.jobs = None;
        match self.worker.take() {
            Some(w) => w.join().ok(),
            None => self.idle.take(),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Queued records are written before the process goes on.
        let _ = self.stop();
    }
}

impl Driver for Background {
    fn attach(&mut self, tx: UnboundedSender<Msg>) {
        let Some(mut driver) = self.idle.take() else {
            return;
        };
        Driver::attach(&mut driver, tx.clone());
        let (jobs, queue) = std::sync::mpsc::channel::<AppEffect>();
        // The opener starts simulators and executors with `tokio::spawn`.
        let runtime = tokio::runtime::Handle::try_current().ok();
        let results = tx.clone();
        let worker = std::thread::Builder::new()
            .name("btsdr-driver".into())
            .spawn(move || {
                let _rt = runtime.as_ref().map(tokio::runtime::Handle::enter);
                while let Ok(effect) = queue.recv() {
                    for m in driver.perform_now(effect) {
                        let _ = results.send(m);
                    }
                }
                driver
            });
        match worker {
            Ok(w) => {
                self.jobs = Some(jobs);
                self.worker = Some(w);
            }
            Err(e) => {
                let _ = tx.send(Msg::DriverError(format!(
                    "cannot start the driver thread: {e}; quit and run btsdr again"
                )));
            }
        }
    }

    fn perform(&mut self, effect: AppEffect, tx: &UnboundedSender<Msg>) {
        if let AppEffect::Copy(text) = effect {
            for m in self.clipboard.copy(text) {
                let _ = tx.send(m);
            }
            return;
        }
        let journal = matches!(effect, AppEffect::Journal(_));
        if self.jobs.as_ref().is_some_and(|j| j.send(effect).is_ok()) {
            return;
        }
        let error = "the driver thread has stopped: nothing more can be journaled or sent; quit and run btsdr again".to_string();
        let _ = tx.send(if journal {
            Msg::Session(SessionMsg::JournalFailed(error))
        } else {
            Msg::DriverError(error)
        });
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

    /// The UI's driver queues a statement behind a record whose append is stuck (a slow
    /// profile folder): `perform` returns at once, and the statement goes out only after the
    /// record is in the journal file.
    #[test]
    fn a_slow_journal_does_not_block_the_ui_and_statements_wait_for_their_record() {
        use Driver as _;
        use std::sync::mpsc;
        use std::time::Duration;
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let _rt = rt.enter();
        let dir = tempfile::tempdir().expect("temp dir");
        let rb = Arc::new(sample_runbook());
        let mut vars = Variables::from_runbook(&rb);
        vars.set("pwd", "not-a-real-secret");
        let opts = EngineOptions {
            operator: "amy".into(),
            session_id: "s".into(),
            ..EngineOptions::default()
        };
        let mut engine = Engine::new(Arc::clone(&rb), vars, opts);
        let record = engine
            .handle(Input::Start, chrono::Utc::now())
            .into_iter()
            .find_map(|e| e.journal_record().cloned())
            .expect("Start is journaled");
        let path = dir.path().join("s.jsonl");
        let exec = Arc::new(Recorder::default());
        let mut d = SessionDriver::new(Box::new(NoOpener));
        d.install(Opened {
            engine,
            journal: JournalWriter::create(&path).expect("journal"),
            executor: Arc::clone(&exec) as Arc<dyn Executor>,
            files_dir: dir.path().into(),
        });
        // The append waits until the test lets it go.
        let (entered_tx, entered) = mpsc::channel::<()>();
        let (release, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        d.before_append = Some(Box::new(move || {
            let _ = entered_tx.send(());
            // Bounded: a driver that blocked the UI would fail below rather than hang.
            let _ = gate
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .recv_timeout(Duration::from_secs(10));
        }));
        let lines = |p: &Path| std::fs::read_to_string(p).map_or(0, |t| t.lines().count());
        let mut bg = Background::new(d);
        bg.clipboard = Clipboard::Memory(Vec::new());
        let (tx, mut rx) = unbounded_channel();
        bg.attach(tx.clone());
        let statement = Statement {
            role: Role::Source,
            database: "master".into(),
            sql: "SELECT 1;".into(),
            params: vec![],
            timeout_secs: 30,
            long_running: false,
        };
        bg.perform(AppEffect::Journal(Box::new(record)), &tx);
        bg.perform(
            AppEffect::Submit {
                request_id: 1,
                statement: Box::new(statement),
            },
            &tx,
        );
        // Still handled on the UI thread while the append is stuck.
        bg.perform(AppEffect::Copy("x".into()), &tx);
        assert!(matches!(rx.try_recv(), Ok(Msg::DriverInfo(_))));
        entered
            .recv_timeout(Duration::from_secs(30))
            .expect("the driver thread reached the append");
        assert!(exec.0.lock().unwrap_or_else(|e| e.into_inner()).is_empty());
        assert_eq!(lines(&path), 0, "nothing appended yet");
        release.send(()).expect("release the append");
        let d = bg.finish().expect("the driver thread ended cleanly");
        assert_eq!(exec.0.lock().unwrap_or_else(|e| e.into_inner()).len(), 1);
        assert_eq!(lines(&path), 1);
        assert_eq!(d.journal_path(), Some(path.as_path()));
    }
}
