//! Drive the whole app with keys, without a terminal: `App` + engine + a real driver over any
//! `Executor` + `Terminal<TestBackend>`. The clock is fixed (advance it explicitly) so
//! screens are deterministic.
//!
//! ```ignore
//! let mut h = Harness::new(100, 30);
//! h.open(opened);            // an engine, a journal, an executor
//! h.press("j"); h.press_key(KeyCode::Enter);
//! h.settle().await;          // run effects and executor events until idle
//! insta::assert_snapshot!(h.screen());
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::sql::executor::ExecEvent;

use super::driver::{Clipboard, NoOpener, Opened, Opener, SessionDriver};
use super::keymap::Chord;
use super::session::SessionMsg;
use super::state::App;
use super::update::{AppEffect, Msg, update};

/// The harness's fixed start time: 2026-11-21 03:00:00 UTC (3 a.m., naturally).
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 3, 0, 0)
        .single()
        .unwrap_or_default()
}

pub struct Harness {
    pub app: App,
    pub driver: SessionDriver,
    exec_rx: UnboundedReceiver<ExecEvent>,
    terminal: Terminal<TestBackend>,
    queue: VecDeque<Msg>,
    quit: bool,
    /// How long `settle` waits for the executor before giving up.
    pub timeout: Duration,
}

impl Harness {
    /// A harness on the home screen with no opener (sessions come from `open`).
    pub fn new(w: u16, h: u16) -> Harness {
        Harness::with_opener(w, h, Box::new(NoOpener))
    }

    pub fn with_opener(w: u16, h: u16, opener: Box<dyn Opener>) -> Harness {
        let mut app = App::new(t0());
        // Snapshots must not depend on the tester's NO_COLOR.
        app.no_color = false;
        app.theme = crate::app::view::theme::Theme::dark();
        app.viewport = (w, h);
        let mut driver = SessionDriver::new(opener);
        driver.clipboard = Clipboard::Memory(Vec::new());
        let exec_rx = driver
            .take_exec_events()
            .unwrap_or_else(|| tokio::sync::mpsc::unbounded_channel().1);
        let terminal = Terminal::new(TestBackend::new(w, h)).unwrap_or_else(|e| match e {});
        Harness {
            app,
            driver,
            exec_rx,
            terminal,
            queue: VecDeque::new(),
            quit: false,
            timeout: Duration::from_secs(30),
        }
    }

    /// Opens a session (as `btsdr drill` / resume would) and performs its first effects.
    pub fn open(&mut self, o: Opened) {
        let msgs = self.driver.install(o);
        self.queue.extend(msgs);
        self.pump();
    }

    /// Asks the driver's opener for a session (as Home does) and shows it.
    pub fn request(&mut self, req: super::update::Request) {
        let msgs = self.driver.perform_now(AppEffect::Open(req));
        self.queue.extend(msgs);
        self.pump();
    }

    /// Feeds one message and performs the resulting effects (synchronously).
    pub fn send(&mut self, msg: Msg) {
        self.queue.push_back(msg);
        self.pump();
    }

    fn pump(&mut self) {
        while let Some(m) = self.queue.pop_front() {
            for e in update(&mut self.app, m) {
                if e == AppEffect::Quit {
                    self.quit = true;
                    continue;
                }
                let back = self.driver.perform_now(e);
                self.queue.extend(back);
            }
        }
    }

    /// Presses a key by name, as in the keymap file: `"j"`, `"G"`, `"ctrl-c"`, `"enter"`.
    pub fn press(&mut self, key: &str) {
        match Chord::parse(key) {
            Ok(c) => self.send(Msg::Term(Event::Key(KeyEvent::new(c.code, c.mods)))),
            Err(e) => panic!("harness: bad key name {key:?}: {e}"),
        }
    }

    pub fn press_key(&mut self, code: KeyCode) {
        self.send(Msg::Term(Event::Key(KeyEvent::new(
            code,
            KeyModifiers::NONE,
        ))));
    }

    /// Types each character as a key press.
    pub fn type_text(&mut self, s: &str) {
        for c in s.chars() {
            self.press_key(KeyCode::Char(c));
        }
    }

    pub fn paste(&mut self, s: &str) {
        self.send(Msg::Term(Event::Paste(s.to_string())));
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, secs: i64) {
        let now = self.app.now + chrono::Duration::seconds(secs);
        self.send(Msg::Tick(now));
    }

    pub fn resize(&mut self, w: u16, h: u16) {
        self.terminal.backend_mut().resize(w, h);
        self.send(Msg::Term(Event::Resize(w, h)));
    }

    /// Statements in flight.
    pub fn busy(&self) -> bool {
        self.app
            .session
            .as_ref()
            .is_some_and(|s| !s.in_flight().is_empty())
    }

    /// Runs executor events until nothing is in flight. Panics after `timeout` (a test
    /// helper: a hang must fail the test, not the CI job).
    pub async fn settle(&mut self) {
        self.pump();
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            // Drain what is already there.
            while let Ok(ev) = self.exec_rx.try_recv() {
                self.send(Msg::Session(SessionMsg::Exec(ev)));
            }
            if !self.busy() {
                return;
            }
            match tokio::time::timeout_at(deadline, self.exec_rx.recv()).await {
                Ok(Some(ev)) => self.send(Msg::Session(SessionMsg::Exec(ev))),
                Ok(None) => return,
                Err(_) => panic!("harness: statements still running after {:?}", self.timeout),
            }
        }
    }

    /// Whether the app asked to quit.
    pub fn quit_requested(&self) -> bool {
        self.quit
    }

    /// Draws and returns the screen as text (one line per row), for `insta::assert_snapshot!`.
    pub fn screen(&mut self) -> String {
        let buf = self.buffer();
        let mut s = String::new();
        for y in 0..buf.area.height {
            let mut line = String::new();
            for x in 0..buf.area.width {
                if let Some(c) = buf.cell((x, y)) {
                    line.push_str(c.symbol());
                }
            }
            s.push_str(line.trim_end());
            s.push('\n');
        }
        s
    }

    /// Draws and returns the buffer (styles included, for `assert_debug_snapshot!`).
    pub fn buffer(&mut self) -> Buffer {
        let app = &self.app;
        let _ = self.terminal.draw(|f| crate::ui::view(app, f));
        self.terminal.backend().buffer().clone()
    }

    /// Texts copied with `y`.
    pub fn clipboard(&self) -> &[String] {
        match &self.driver.clipboard {
            Clipboard::Memory(v) => v,
            Clipboard::Osc52 => &[],
        }
    }
}
