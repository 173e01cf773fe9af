//! Drawing. `view` is a pure function of `&App`: it never changes state, reads no clock and
//! does no I/O, so every screen is a TestBackend snapshot away.

mod home;
pub mod output;
mod popup;
mod run;
mod status;
pub use crate::app::view::text;
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

pub use crate::app::view::layout::{
    COMPACT_H, COMPACT_W, Fit, MIN_H, MIN_W, fit, output_rows_for, plan_rows,
};

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
