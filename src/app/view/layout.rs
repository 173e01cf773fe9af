//! The screen's layout as far as the update needs it (page sizes): how much fits, the run
//! screen's panes, the plan line.

use ratatui::layout::{Constraint, Layout, Rect};

use crate::app::{App, PlanRun, Screen};

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

pub struct Panes {
    pub steps: Rect,
    pub detail: Rect,
    pub output: Rect,
}

/// The full layout of the run screen's body.
pub fn panes(body: Rect) -> Panes {
    let left_w = (body.width * 38 / 100).clamp(30.min(body.width), 52);
    let [steps, right] =
        Layout::horizontal([Constraint::Length(left_w), Constraint::Min(1)]).areas(body);
    let detail_h = (right.height * 45 / 100).max(5.min(right.height));
    let [detail, output] =
        Layout::vertical([Constraint::Length(detail_h), Constraint::Min(1)]).areas(right);
    Panes {
        steps,
        detail,
        output,
    }
}

/// The failure plan the open run was started for, if any.
pub fn plan_for_run(app: &App) -> Option<&PlanRun> {
    let run = app.run.as_ref()?;
    app.plan.as_ref().filter(|p| {
        p.current()
            .is_some_and(|part| part.runbook == run.runbook.id)
    })
}

/// Rows the failure-plan line takes under the title bar (0 or 1).
pub fn plan_rows(app: &App) -> u16 {
    u16::from(app.screen == Screen::Run && plan_for_run(app).is_some())
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
            usize::from(panes(body).output.height.saturating_sub(2)).max(1)
        }
    }
}
