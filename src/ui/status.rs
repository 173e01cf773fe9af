//! Title bar, status bar (environment, connections, operator, clock vs RTO, badges), notices.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Widget};

use crate::app::{App, ConnState, Level, Screen};
use btsdr_types::Role;

use super::text::{clip, clock, short_duration, width};

pub fn title_bar(app: &App, area: Rect, buf: &mut Buffer) {
    let t = &app.theme;
    let mut left = vec![Span::styled(" btsdr ", t.title)];
    match (&app.screen, &app.run) {
        (Screen::Run, Some(run)) => {
            left.push(Span::styled("· ", t.dim));
            left.push(Span::styled(run.runbook.title.clone(), t.text));
            left.push(Span::styled(
                format!(" · session {}", run.session_id),
                t.dim,
            ));
        }
        _ => left.push(Span::styled(
            "· BizTalk Server backup, restore & disaster recovery",
            t.dim,
        )),
    }
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
    let left_line = Line::from(left);
    buf.set_line(area.x, area.y, &left_line, lw as u16);
    let x = area.x + area.width.saturating_sub(rw as u16);
    buf.set_line(x, area.y, &Line::from(right), rw as u16);
}

fn conn_span(app: &App, role: Role, short: bool) -> Vec<Span<'static>> {
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
    vec![
        Span::styled(format!("{name}:"), t.dim),
        Span::styled(format!("{sym}{word}"), st),
        Span::raw(" "),
    ]
}

pub fn status_bar(app: &App, area: Rect, buf: &mut Buffer) {
    // Narrower forms until one fits: short labels, then without the operator (named in the
    // journal anyway), then a clipped environment name, so the clock against the RTO,
    // rightmost, is the last thing cut.
    let w = usize::from(area.width);
    let line = [(false, true), (true, true), (true, false)]
        .into_iter()
        .map(|(short, operator)| status_spans(app, short, operator, usize::MAX))
        .find(|l| l.width() <= w)
        .unwrap_or_else(|| {
            let over = status_spans(app, true, false, usize::MAX)
                .width()
                .saturating_sub(w);
            let env = width(&app.environment);
            status_spans(app, true, false, env.saturating_sub(over).max(8))
        });
    buf.set_line(area.x, area.y, &line, area.width);
}

fn status_spans(app: &App, short: bool, operator: bool, env_max: usize) -> Line<'static> {
    let t = &app.theme;
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
                spans.extend(conn_span(app, role, short));
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
    if let Some(el) = app.elapsed() {
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
    Line::from(spans)
}

/// Notices float at the bottom right of the body, newest last.
pub fn notices(app: &App, body: Rect, buf: &mut Buffer) {
    let t = &app.theme;
    let live: Vec<_> = app.notices.iter().filter(|n| n.until > app.now).collect();
    let max_w = usize::from(body.width.saturating_sub(4)).min(70);
    if max_w < 10 {
        return;
    }
    for (k, n) in live
        .iter()
        .rev()
        .take(usize::from(body.height / 3))
        .enumerate()
    {
        let (tag, st) = match n.level {
            Level::Error => ("[ERROR] ", t.danger),
            Level::Warn => ("[WARN] ", t.warn),
            Level::Ok => ("[OK] ", t.ok),
            Level::Info => ("[INFO] ", t.accent),
        };
        let text = clip(&format!("{tag}{}", n.text), max_w);
        let w = width(&text) as u16 + 2;
        let y = body.y + body.height.saturating_sub(2 + k as u16);
        let x = body.x + body.width.saturating_sub(w + 1);
        let r = Rect::new(x, y, w, 1).intersection(body);
        Clear.render(r, buf);
        buf.set_line(
            r.x,
            r.y,
            &Line::from(Span::styled(format!(" {text} "), st)),
            r.width,
        );
    }
}
