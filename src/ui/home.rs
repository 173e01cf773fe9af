//! The home screen: resume, what failed (failure plans), start a runbook or a drill, open a
//! report.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

use crate::app::{App, HomeItem};

use super::text::clip;

fn label(item: &HomeItem) -> String {
    match item {
        HomeItem::Resume {
            session_id,
            runbook,
            started,
            summary,
        } => {
            format!("{runbook} {summary} · {started} · {session_id}")
        }
        HomeItem::Start { runbook_id, title } => format!("{title} ({runbook_id})"),
        // The name first: it is what `btsdr drill --scenario NAME` takes.
        HomeItem::Drill { scenario, title } if title.is_empty() => scenario.clone(),
        HomeItem::Drill { scenario, title } => format!("{scenario} — {title}"),
        HomeItem::Report { path, title } => format!("{title} — {path}"),
        HomeItem::Failure(plan) => plan.label.clone(),
    }
}

/// What the selected item does (the About pane, or the lines under the list when narrow).
fn explain(item: &HomeItem) -> String {
    match item {
        HomeItem::Resume {
            session_id,
            runbook,
            started,
            summary,
        } => format!(
            "{runbook} {summary}, started {started}: session {session_id} (`btsdr resume {session_id}` from a shell).\nContinue where the session stopped. The journal is replayed: finished steps stay finished; a step that was running when btsdr stopped is marked IN DOUBT and you decide what to do (verify, re-run or mark done) before anything else runs. A drill continues on the simulated group as the session left it."
        ),
        HomeItem::Failure(plan) => {
            let parts: Vec<&str> = plan.parts.iter().map(|p| p.runbook.as_str()).collect();
            format!(
                "{}\nEnter shows the plan ({}) and starts its first runbook.",
                plan.description,
                parts.join(" → ")
            )
        }
        HomeItem::Start { .. } => {
            "Starts a new session of this runbook against a configured environment. You give your name, the environment, and the RTO/RPO targets; the clock starts when you confirm.".into()
        }
        HomeItem::Drill { title, .. } => format!(
            "{title}\nA rehearsal against the built-in simulated SQL Server; everything is journaled and marked DRILL, no real server is contacted."
        ),
        HomeItem::Report { .. } => "Opens the report of a finished session.".into(),
    }
}

pub fn draw(app: &App, body: Rect, buf: &mut Buffer) {
    let t = &app.theme;
    let wide = body.width >= 90;
    let (list_area, info_area) = if wide {
        let [a, b] =
            Layout::horizontal([Constraint::Percentage(62), Constraint::Min(1)]).areas(body);
        (a, Some(b))
    } else {
        (body, None)
    };
    let title = match &app.run {
        Some(run) => clip(
            &format!(" Home · Esc: back to the open run ({}) ", run.runbook.id),
            usize::from(list_area.width.saturating_sub(2)),
        ),
        None => " Home ".to_string(),
    };
    let block = Block::bordered()
        .border_style(t.border_focus)
        .title(Line::styled(title, t.title));
    let mut inner = block.inner(list_area);
    block.render(list_area, buf);
    // Narrow: no About pane, so the selected item is explained under the list.
    if info_area.is_none() && inner.height >= 12 {
        let [list, about] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(4)]).areas(inner);
        inner = list;
        let w = usize::from(about.width);
        buf.set_line(
            about.x,
            about.y,
            &Line::styled("─".repeat(w), t.border),
            about.width,
        );
        let text = app
            .home
            .get(app.home_selected)
            .map(explain)
            .unwrap_or_default();
        let mut rows = super::output::wrap_words(&text, w);
        if rows.len() > 3 {
            rows.truncate(3);
            if let Some(last) = rows.last_mut() {
                *last = clip(&format!("{last} …"), w);
            }
        }
        for (y, r) in rows.iter().enumerate() {
            buf.set_line(
                about.x,
                about.y + 1 + y as u16,
                &Line::styled(r.clone(), t.dim),
                about.width,
            );
        }
    }
    let w = usize::from(inner.width);
    let mut lines: Vec<Line> = Vec::new();
    let mut sel_line = 0;
    let mut last_group = "";
    if app.home.is_empty() {
        lines.push(Line::styled(
            "Nothing to show: no runbooks were found.",
            t.dim,
        ));
    }
    for (i, item) in app.home.iter().enumerate() {
        if item.group() != last_group {
            if !last_group.is_empty() {
                lines.push(Line::raw(""));
            }
            last_group = item.group();
            lines.push(Line::styled(clip(item.group(), w), t.header));
        }
        if i == app.home_selected {
            sel_line = lines.len();
            let text = clip(&format!("› {}", label(item)), w);
            let pad = w.saturating_sub(super::text::width(&text));
            lines.push(
                Line::from(vec![Span::raw(text), Span::raw(" ".repeat(pad))]).style(t.selected),
            );
        } else {
            lines.push(Line::styled(clip(&format!("  {}", label(item)), w), t.text));
        }
    }
    let h = usize::from(inner.height);
    let offset = if lines.len() <= h {
        0
    } else {
        sel_line.saturating_sub(h / 2).min(lines.len() - h)
    };
    for (y, l) in lines.iter().skip(offset).take(h).enumerate() {
        buf.set_line(inner.x, inner.y + y as u16, l, inner.width);
    }
    if let Some(info) = info_area {
        let block = Block::bordered()
            .border_style(t.border)
            .title(Line::styled(" About ", t.text));
        let text = app
            .home
            .get(app.home_selected)
            .map(explain)
            .unwrap_or_default();
        let mut lines: Vec<Line> = text.lines().map(|l| Line::raw(l.to_string())).collect();
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "The journal is written before and after every step: quitting or a crash never loses work.",
            t.dim,
        ));
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: true })
            .render(info, buf);
    }
}
