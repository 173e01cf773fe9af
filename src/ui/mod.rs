//! Drawing. `view` is a pure function of `&App`: it never changes state, reads no clock and
//! does no I/O, so every screen is a TestBackend snapshot away.

mod home;
pub mod output;
mod popup;
mod run;
mod status;
pub mod text;
/// The theme lives with the state that holds it (`app::view`).
pub use crate::app::view::theme;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use crate::app::{App, Screen};

pub use crate::app::view::find_matches;
pub use output::{output_len, output_line_text};
pub use run::next_hint;

/// The smallest size for the full layout.
pub const MIN_W: u16 = 80;
pub const MIN_H: u16 = 24;
/// Below this the app only shows the "too small" notice.
pub const COMPACT_W: u16 = 40;
pub const COMPACT_H: u16 = 10;

/// How much of the layout fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    Full,
    /// One pane at a time (the focused one), still with hint and status lines.
    Compact,
    TooSmall,
}

pub fn fit(w: u16, h: u16) -> Fit {
    if w >= MIN_W && h >= MIN_H {
        Fit::Full
    } else if w >= COMPACT_W && h >= COMPACT_H {
        Fit::Compact
    } else {
        Fit::TooSmall
    }
}

/// Draws the whole screen.
pub fn view(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let fit = fit(area.width, area.height);
    if fit == Fit::TooSmall {
        too_small(area, frame);
        return;
    }
    let [top, plan, body, hint, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(plan_rows(app)),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    status::title_bar(app, top, frame.buffer_mut());
    run::plan_line(app, plan, frame.buffer_mut());
    match app.screen {
        Screen::Home => home::draw(app, body, frame.buffer_mut()),
        Screen::Run => run::draw(app, body, fit, frame.buffer_mut()),
    }
    run::hint_line(app, hint, frame.buffer_mut());
    status::status_bar(app, status, frame.buffer_mut());
    status::notices(app, body, frame.buffer_mut());
    popup::draw_all(app, area, frame.buffer_mut());
}

fn too_small(area: Rect, frame: &mut Frame) {
    let msg = format!(
        "terminal too small — need {MIN_W}x{MIN_H}, have {}x{}. Enlarge the window; the run is safe (q quits).",
        area.width, area.height
    );
    frame.render_widget(
        Paragraph::new(Line::from(msg)).wrap(Wrap { trim: true }),
        area,
    );
}

/// Rows the failure-plan line takes under the title bar (0 or 1).
pub fn plan_rows(app: &App) -> u16 {
    u16::from(app.screen == Screen::Run && run::plan_for_run(app).is_some())
}

/// Rows available to the output pane as the app is drawn now (for page up/down).
pub fn output_rows_for(app: &App) -> usize {
    let (w, h) = app.viewport;
    let extra = plan_rows(app);
    match fit(w, h) {
        Fit::TooSmall => 1,
        Fit::Compact => usize::from(h.saturating_sub(5 + extra)).max(1),
        Fit::Full => {
            let body = Rect::new(0, 0, w, h.saturating_sub(3 + extra));
            usize::from(run::panes(body).output.height.saturating_sub(2)).max(1)
        }
    }
}
