//! The terminal runtime: set up and always restore the terminal, feed one `Msg` channel
//! (keys, ticks, executor events, driver results), run `update`, draw when something changed.
//!
//! Nothing here blocks on SQL: statements run in the executor's tasks and come back as
//! messages. Nothing is printed to stdout while the UI is up (logs go through `tracing`).

use std::io::{self, Write};
use std::time::Duration;

use chrono::Utc;
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    EventStream,
};
use crossterm::execute;
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use tokio::sync::mpsc::unbounded_channel;
use tokio::time::Instant;

use crate::app::{App, AppEffect, Msg, update};
use crate::ui;

pub use crate::app::driver::Driver;

/// Runtime options.
#[derive(Debug, Clone)]
pub struct TuiOptions {
    /// Capture the mouse (wheel scrolls). Off by default so the terminal's own text
    /// selection keeps working.
    pub mouse: bool,
    /// Clock tick.
    pub tick: Duration,
}

impl Default for TuiOptions {
    fn default() -> Self {
        TuiOptions {
            mouse: false,
            tick: Duration::from_millis(250),
        }
    }
}

/// Minimum time between two frames.
const FRAME: Duration = Duration::from_millis(16);

/// Restores the terminal when dropped, whatever the exit path.
struct Guard {
    mouse: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore(self.mouse);
    }
}

fn restore(mouse: bool) {
    let mut out = io::stdout();
    if mouse {
        let _ = execute!(out, DisableMouseCapture);
    }
    let _ = execute!(out, DisableBracketedPaste);
    ratatui::restore();
    let _ = out.flush();
}

fn enter(opts: &TuiOptions) -> io::Result<(DefaultTerminal, Guard)> {
    // ratatui installs a panic hook that restores raw mode and the alternate screen; ours,
    // installed after it, runs first and also turns off paste and mouse reporting.
    let terminal = ratatui::try_init()?;
    let guard = Guard { mouse: opts.mouse };
    let prev = std::panic::take_hook();
    let mouse = opts.mouse;
    std::panic::set_hook(Box::new(move |info| {
        let mut out = io::stdout();
        if mouse {
            let _ = execute!(out, DisableMouseCapture);
        }
        let _ = execute!(out, DisableBracketedPaste);
        prev(info);
    }));
    let mut out = io::stdout();
    // Best effort: legacy Windows consoles (conhost without VT input) refuse bracketed paste;
    // a paste then arrives as keys, which the forms accept too.
    if let Err(e) = execute!(out, EnableBracketedPaste) {
        tracing::warn!(error = %e, "this terminal does not support bracketed paste");
    }
    if opts.mouse
        && let Err(e) = execute!(out, EnableMouseCapture)
    {
        tracing::warn!(error = %e, "this terminal does not support mouse capture");
    }
    Ok((terminal, guard))
}

/// Runs the UI until the operator quits. `app` is the initial state (Home, or Run when a
/// session was opened before); `driver` performs effects.
///
/// `initial` messages are processed first (e.g. `driver.install(opened)` for `btsdr drill`).
// TODO(issue 16): split (terminal setup, the event loop, teardown).
#[allow(clippy::too_many_lines)]
pub async fn run(
    mut app: App,
    driver: &mut dyn Driver,
    initial: Vec<Msg>,
    opts: TuiOptions,
) -> io::Result<()> {
    let (mut terminal, _guard) = enter(&opts)?;
    let (tx, mut rx) = unbounded_channel::<Msg>();
    driver.attach(tx.clone());

    let size = terminal.size()?;
    app.viewport = (size.width, size.height);
    app.now = Utc::now();

    for m in initial {
        let _ = tx.send(m);
    }
    // Terminal input.
    let input_tx = tx.clone();
    let input = tokio::spawn(async move {
        let mut events = EventStream::new();
        while let Some(ev) = events.next().await {
            match ev {
                Ok(ev) => {
                    if input_tx.send(Msg::Term(ev)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading terminal input failed");
                    let _ =
                        input_tx.send(Msg::DriverError(format!("cannot read the keyboard: {e}")));
                    break;
                }
            }
        }
    });
    // Clock.
    let tick_tx = tx.clone();
    let tick = opts.tick;
    let ticker = tokio::spawn(async move {
        let mut iv = tokio::time::interval(tick);
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            iv.tick().await;
            if tick_tx.send(Msg::Tick(Utc::now())).is_err() {
                break;
            }
        }
    });
    // SIGTERM / SIGHUP: leave cleanly (the caller waits for the driver's queued records).
    #[cfg(unix)]
    let signals = {
        let sig_tx = tx.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
            let _ = sig_tx.send(Msg::Shutdown);
        })
    };
    // Windows console: Ctrl+Break, closing the window, logoff and shutdown leave cleanly
    // (Ctrl+C arrives as a key in raw mode and asks before quitting, as on Unix).
    #[cfg(windows)]
    let signals = {
        let sig_tx = tx.clone();
        tokio::spawn(async move {
            use tokio::signal::windows::{ctrl_break, ctrl_close, ctrl_logoff, ctrl_shutdown};
            let (Ok(mut brk), Ok(mut close), Ok(mut logoff), Ok(mut shutdown)) =
                (ctrl_break(), ctrl_close(), ctrl_logoff(), ctrl_shutdown())
            else {
                return;
            };
            tokio::select! {
                _ = brk.recv() => {}
                _ = close.recv() => {}
                _ = logoff.recv() => {}
                _ = shutdown.recv() => {}
            }
            let _ = sig_tx.send(Msg::Shutdown);
        })
    };

    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    let mut batch: Vec<Msg> = Vec::with_capacity(128);
    // Apply what is already queued (an opened session) before the first frame, so it shows
    // the run screen rather than a Home frame that the frame budget then holds for 16 ms.
    while let Ok(m) = rx.try_recv() {
        batch.push(m);
    }
    let mut quit = false;
    // Benchmark hook (docs/PERFORMANCE.md): leave right after the first run-screen frame.
    let exit_after_first_frame = std::env::var_os("BTSDR_EXIT_AFTER_FIRST_FRAME").is_some();
    let result = loop {
        if dirty {
            let wait = FRAME.saturating_sub(last_draw.elapsed());
            if !wait.is_zero() {
                // Keep collecting while the frame budget runs out.
                tokio::select! {
                    n = rx.recv_many(&mut batch, 256) => { if n == 0 { break Ok(()); } }
                    () = tokio::time::sleep(wait) => {}
                }
            }
            if batch.is_empty() {
                if let Err(e) = terminal.draw(|f| ui::view(&app, f)) {
                    break Err(e);
                }
                last_draw = Instant::now();
                dirty = false;
                if exit_after_first_frame && app.screen == crate::app::Screen::Run {
                    break Ok(());
                }
                continue;
            }
        } else if rx.recv_many(&mut batch, 256).await == 0 {
            break Ok(());
        }
        for msg in batch.drain(..) {
            let changes = changes_screen(&app, &msg);
            let effects = update(&mut app, msg);
            dirty |= changes || !effects.is_empty();
            for e in effects {
                if e == AppEffect::Quit {
                    quit = true;
                } else {
                    driver.perform(e, &tx);
                }
            }
        }
        if quit || app.quit {
            break Ok(());
        }
    };
    input.abort();
    ticker.abort();
    #[cfg(any(unix, windows))]
    signals.abort();
    result
}

/// Whether a message can change what is drawn (ticks only when the shown clock moves).
fn changes_screen(app: &App, msg: &Msg) -> bool {
    match msg {
        Msg::Tick(now) => {
            now.timestamp() != app.now.timestamp()
                || app.notices.iter().any(|n| n.until <= *now)
                || app.running_step().is_some()
        }
        _ => true,
    }
}
