//! Title bar, status bar (environment, connections, operator, clock vs RTO, badges), notices.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Widget};

use crate::app::{App, ConnState, Level, Screen};
use btsdr_types::Role;

use super::text::{clip, clock, pad, short_duration, width};

pub fn title_bar(app: &App, area: Rect, buf: &mut Buffer) {
    let t = &app.theme;
    let mut right: Vec<Span> = Vec::new();
    if app.drill {
        right.push(Span::styled(" DRILL ", t.badge_drill));
        right.push(Span::raw(" "));
    }
    if app.dry_run {
        right.push(Span::styled(" DRY-RUN ", t.badge_dry));
        right.push(Span::raw(" "));
    }
    let rw: usize = right.iter().map(Span::width).sum();
    let lw = usize::from(area.width).saturating_sub(rw);
    let mut left = vec![Span::styled(" btsdr ", t.title)];
    match (&app.screen, &app.run) {
        (Screen::Run, Some(run)) => {
            // The session id is what `btsdr resume` and `report` take: the runbook's title
            // gives way first (clipped, then left out).
            let session = format!(" · session {}", run.session_id);
            let room = lw.saturating_sub(width(" btsdr · ") + width(&session) + 1);
            if room >= 8 {
                left.push(Span::styled("· ", t.dim));
                left.push(Span::styled(clip(&run.runbook.title, room), t.text));
                left.push(Span::styled(session, t.dim));
            } else {
                left.push(Span::styled(format!("· {}", run.session_id), t.dim));
            }
        }
        _ => left.push(Span::styled(
            "· BizTalk Server backup, restore & disaster recovery",
            t.dim,
        )),
    }
    let left_line = Line::from(left);
    buf.set_line(area.x, area.y, &left_line, lw as u16);
    let x = area.x + area.width.saturating_sub(rw as u16);
    buf.set_line(x, area.y, &Line::from(right), rw as u16);
}

fn conn_span(app: &App, role: Role, short: bool, tiny: bool) -> Vec<Span<'static>> {
    let t = &app.theme;
    let state = app.conns.get(&role).cloned().unwrap_or(ConnState::Unknown);
    let (sym, word, st): (&str, &str, Style) = match &state {
        // Not contacted yet: the executor connects on the first statement for the role.
        ConnState::Unknown => ("○", "idle", t.dim),
        ConnState::Connecting => ("◌", "…", t.warn),
        ConnState::Up => ("●", "up", t.ok),
        ConnState::Down(_) => ("✖", "DOWN", t.fail),
    };
    let name = if short {
        match role {
            Role::Source => "src",
            Role::Msgbox => "mbx",
            Role::Destination => "dst",
        }
    } else {
        role.as_str()
    };
    if tiny {
        // The symbol alone (the word only when the server is down).
        let shown = if matches!(state, ConnState::Down(_)) {
            format!("{sym}{word}")
        } else {
            sym.to_string()
        };
        return vec![
            Span::styled(name.to_string(), t.dim),
            Span::styled(shown, st),
            Span::raw(" "),
        ];
    }
    vec![
        Span::styled(format!("{name}:"), t.dim),
        Span::styled(format!("{sym}{word}"), st),
        Span::raw(" "),
    ]
}

pub fn status_bar(app: &App, area: Rect, buf: &mut Buffer) {
    // Narrower forms until one fits: short labels, connection symbols only, then without the
    // operator (named in the journal anyway), then a clipped environment name, so the clock
    // against the RTO, rightmost, is the last thing cut.
    let w = usize::from(area.width);
    // The projected finish (only with time history) goes first when space runs out.
    let line = [
        (Compact::None, true, Finish::Full),
        (Compact::Short, true, Finish::Full),
        (Compact::Tiny, true, Finish::Short),
        (Compact::None, true, Finish::No),
        (Compact::Short, true, Finish::No),
        (Compact::Tiny, true, Finish::No),
        (Compact::Tiny, false, Finish::No),
    ]
    .into_iter()
    .map(|(c, operator, finish)| status_spans(app, c, operator, finish, usize::MAX))
    .find(|l| l.width() <= w)
    .unwrap_or_else(|| {
        let over = status_spans(app, Compact::Tiny, false, Finish::No, usize::MAX)
            .width()
            .saturating_sub(w);
        let env = width(&app.environment);
        status_spans(
            app,
            Compact::Tiny,
            false,
            Finish::No,
            env.saturating_sub(over).max(8),
        )
    });
    buf.set_line(area.x, area.y, &line, area.width);
}

/// Whether the status bar shows the projected finish (only with time history), and how.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Finish {
    No,
    Short,
    Full,
}

/// How much the status bar is shortened.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Compact {
    None,
    /// Short role names, "/RTO".
    Short,
    /// Also the connection symbols without words.
    Tiny,
}

fn status_spans(
    app: &App,
    compact: Compact,
    operator: bool,
    finish: Finish,
    env_max: usize,
) -> Line<'static> {
    let t = &app.theme;
    let short = compact != Compact::None;
    let tiny = compact == Compact::Tiny;
    let mut spans: Vec<Span> = Vec::new();
    let env = match (app.environment.is_empty(), app.environments.len()) {
        (false, _) => clip(&app.environment, env_max),
        (true, 0) => "no environment configured".to_string(),
        (true, 1) => "no environment chosen (1 configured)".to_string(),
        (true, n) => format!("no environment chosen ({n} configured)"),
    };
    spans.push(Span::styled(format!(" {env} "), t.title));
    if !app.conns.is_empty() {
        spans.push(Span::styled("│ ", t.border));
        for role in Role::ALL {
            if app.conns.contains_key(&role) {
                spans.extend(conn_span(app, role, short, tiny));
            }
        }
    }
    if app.operator.trim().is_empty() {
        spans.push(Span::styled("│ ", t.border));
        spans.push(Span::styled("operator not set ", t.warn));
    } else if operator {
        spans.push(Span::styled("│ ", t.border));
        spans.push(Span::styled(
            format!("op {} ", clip(app.operator.trim(), 24)),
            t.text,
        ));
    }
    let review = app.run.as_ref().is_some_and(|r| r.runbook.is_review());
    if let Some(el) = app.elapsed().filter(|_| review) {
        // A review is not on a recovery clock: how long it has been open, no RTO.
        spans.push(Span::styled("│ ", t.border));
        spans.push(Span::styled(format!("review T+{} ", clock(el)), t.text));
    } else if let Some(el) = app.elapsed() {
        spans.push(Span::styled("│ ", t.border));
        let (txt, st) = match app.rto {
            Some(rto) if rto.num_seconds() > 0 => {
                let frac = el.num_seconds() as f64 / rto.num_seconds() as f64;
                let st = if frac >= 1.0 {
                    t.danger
                } else if frac >= 0.75 {
                    t.warn
                } else {
                    t.ok
                };
                let over = if frac >= 1.0 { " OVER RTO" } else { "" };
                if short {
                    (
                        format!("T+{} /RTO {}{over} ", clock(el), short_duration(rto)),
                        st,
                    )
                } else {
                    (
                        format!("T+{} of RTO {}{over} ", clock(el), short_duration(rto)),
                        st,
                    )
                }
            }
            _ => (format!("T+{} (no RTO set) ", clock(el)), t.text),
        };
        spans.push(Span::styled(txt, st));
    }
    // The projected finish against the RTO, where the bar is wide enough.
    if let Some(p) = (finish != Finish::No)
        .then(|| projection(app, finish == Finish::Short))
        .flatten()
    {
        spans.push(Span::styled("│ ", t.border));
        spans.push(Span::styled(format!("{p} "), t.dim));
    }
    Line::from(spans)
}

/// The run's projected finish from its open steps' estimates (`None` without any).
fn projection(app: &App, short: bool) -> Option<String> {
    let run = app.run.as_ref()?;
    if app.session.as_ref().is_some_and(|s| s.engine.is_over()) {
        return None;
    }
    let open: Vec<Option<crate::estimate::Estimate>> = run
        .steps
        .iter()
        .filter(|s| !s.mark.is_settled())
        .map(|s| {
            crate::estimate::for_step(&app.step_history, &app.environment, &run.runbook.id, &s.id)
        })
        .collect();
    let deadline = app.declared_at.zip(app.rto).map(|(d, r)| d + r);
    let rest = crate::estimate::remaining(open.iter().map(Option::as_ref));
    if short {
        crate::estimate::projection_short(app.now, rest, deadline)
    } else {
        crate::estimate::projection(app.now, rest, deadline)
    }
}

/// Notices float at the bottom right, newest lowest: on the run screen inside the output
/// pane (never over the steps pane or a border), whole (wrapped to at most three lines; the
/// step's log keeps the full text).
pub fn notices(app: &App, body: Rect, buf: &mut Buffer) {
    let t = &app.theme;
    let live: Vec<_> = app.notices.iter().filter(|n| n.until > app.now).collect();
    let area = if app.screen == Screen::Run && app.run.is_some() {
        let out = super::run::panes(body).output;
        Rect::new(
            out.x + 1,
            out.y + 1,
            out.width.saturating_sub(2),
            out.height.saturating_sub(2),
        )
    } else {
        body
    };
    let max_w = usize::from(area.width.saturating_sub(2)).min(70);
    if max_w < 10 || area.height == 0 {
        return;
    }
    let mut bottom = area.y + area.height;
    for n in live.iter().rev() {
        let (tag, st) = match n.level {
            Level::Error => ("[ERROR] ", t.danger),
            Level::Warn => ("[WARN] ", t.warn),
            Level::Ok => ("[OK] ", t.ok),
            Level::Info => ("[INFO] ", t.accent),
        };
        let mut rows = super::output::wrap_words(&format!("{tag}{}", n.text), max_w);
        if rows.len() > 3 {
            rows.truncate(3);
            if let Some(last) = rows.last_mut() {
                *last = clip(&format!("{last} …"), max_w);
            }
        }
        let h = rows.len() as u16;
        if bottom < area.y + h {
            break;
        }
        let top = bottom - h;
        let w = rows.iter().map(|r| width(r)).max().unwrap_or(0) as u16 + 2;
        let x = area.x + area.width.saturating_sub(w);
        for (k, r) in rows.iter().enumerate() {
            let rect = Rect::new(x, top + k as u16, w, 1).intersection(area);
            Clear.render(rect, buf);
            buf.set_line(
                rect.x,
                rect.y,
                &Line::from(Span::styled(
                    format!(" {} ", pad(r, usize::from(w) - 2)),
                    st,
                )),
                rect.width,
            );
        }
        bottom = top;
    }
}
