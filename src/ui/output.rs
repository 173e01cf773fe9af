//! The output pane: errors with what to do next, assertion results, result tables, the log,
//! and a progress gauge. Only the visible rows are ever formatted, so 100,000 lines cost
//! nothing.

use chrono::Duration;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Widget};

use crate::app::{App, Focus, Level, StepMark};

use super::run::pane_block;
use super::text::{clip, pad, short_duration, thousands, width};
pub(crate) use crate::app::view::output::wrap_words;
use crate::app::view::output::{Part, cell_shown, col_widths, first_col, locate, parts, set_title};
pub use crate::app::view::output::{output_cell, output_columns, output_len, output_line_text};

// TODO(issue 16): split (header, rows and scroll bar apart).
#[allow(clippy::too_many_lines)]
pub fn draw(app: &App, area: Rect, buf: &mut Buffer) {
    let t = &app.theme;
    let focused = app.focus == Focus::Output;
    let out = app.selected_output();
    let total = out.map_or(0, |o| {
        output_len(o, usize::from(area.width.saturating_sub(2)))
    });
    let title = if total > 0 {
        format!(
            " Output · line {} of {} ",
            thousands(app.out_cursor.min(total - 1) + 1),
            thousands(total)
        )
    } else {
        " Output ".to_string()
    };
    let block = pane_block(app, title, focused);
    let mut inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let running = app
        .selected_step()
        .is_some_and(|(r, _)| r.mark == StepMark::Running);
    // Progress gauge for a long statement.
    if let Some(o) = out
        && running
    {
        let started = o.started_at.map(|s| app.now - s);
        let label = match o.progress {
            Some(p) => {
                let eta = p.eta_ms.map_or_else(
                    || "ETA unknown".to_string(),
                    |ms| format!("ETA {}", short_duration(Duration::milliseconds(ms as i64))),
                );
                format!(
                    "{:.0}% · {eta} · running {}",
                    p.percent,
                    started.map_or_else(String::new, short_duration)
                )
            }
            None => format!(
                "running {} · no progress reported",
                started.map_or_else(String::new, short_duration)
            ),
        };
        let ratio = o
            .progress
            .map_or(0.0, |p| f64::from(p.percent.clamp(0.0, 100.0)) / 100.0);
        Gauge::default()
            .ratio(ratio)
            .label(label)
            .gauge_style(t.running)
            .render(Rect { height: 1, ..inner }, buf);
        inner.y += 1;
        inner.height -= 1;
        if inner.height == 0 {
            return;
        }
    }
    let Some(out) = out else {
        let hint = if app.run.is_some() {
            "No output yet for this step."
        } else {
            ""
        };
        buf.set_line(inner.x, inner.y, &Line::styled(hint, t.dim), inner.width);
        return;
    };
    let w = usize::from(inner.width);
    let ps = parts(out, w);
    if total == 0 {
        buf.set_line(
            inner.x,
            inner.y,
            &Line::styled("No output yet for this step.", t.dim),
            inner.width,
        );
        return;
    }
    let h = usize::from(inner.height);
    let cursor = app.out_cursor.min(total - 1);
    let offset = app.out_offset.clamp((cursor + 1).saturating_sub(h), cursor);
    // Column layouts for the sets that show.
    let mut widths: Vec<Option<Vec<usize>>> = vec![None; out.sets.len()];
    for y in 0..h {
        let i = offset + y;
        if i >= total {
            break;
        }
        let Some((p, k)) = locate(&ps, i) else { break };
        let is_cursor = focused && i == cursor;
        let line = match p {
            Part::Text(lines) => {
                let (lvl, s) = &lines[k];
                let st = match lvl {
                    Level::Error => t.fail,
                    Level::Warn => t.warn,
                    Level::Ok => t.pass,
                    Level::Info => t.text,
                };
                Line::styled(clip(s, w), st)
            }
            Part::Title(s) => Line::styled(clip(&set_title(out, *s), w), t.dim),
            Part::Header(s) | Part::Sep(s) | Part::Rows(s) => {
                let set = &out.sets[*s];
                // Rows of this set on screen: line `i` is row `k`, so rows k-y .. k-y+h.
                let first_row = if matches!(p, Part::Rows(_)) {
                    k.saturating_sub(y)
                } else {
                    0
                };
                let ws = widths[*s]
                    .get_or_insert_with(|| col_widths(set, first_row..first_row + h))
                    .clone();
                let start = first_col(&ws, app.out_col, w);
                let mut spans: Vec<Span> = Vec::new();
                let mut used = 0;
                for (c, cw) in ws.iter().enumerate().skip(start) {
                    if used >= w {
                        break;
                    }
                    if c > start {
                        spans.push(Span::styled(" │ ", t.border));
                        used += 3;
                    }
                    let room = (*cw).min(w.saturating_sub(used));
                    let (text, style) = match p {
                        Part::Header(_) => (pad(&set.columns[c].name, room), t.header),
                        Part::Sep(_) => ("─".repeat(room), t.border),
                        _ => {
                            let v = set
                                .rows
                                .get(k)
                                .and_then(|r| r.get(c))
                                .map(|v| cell_shown(&set.columns[c].name, &v))
                                .unwrap_or_default();
                            let st = if v == "NULL" { t.dim } else { t.text };
                            let st = if is_cursor && c == app.out_col.min(ws.len() - 1) {
                                t.selected.add_modifier(Modifier::BOLD)
                            } else {
                                st
                            };
                            (pad(&v, room), st)
                        }
                    };
                    used += width(&text);
                    spans.push(Span::styled(text, style));
                }
                if start > 0 && !spans.is_empty() {
                    spans.insert(0, Span::styled("◂", t.accent));
                }
                Line::from(spans)
            }
            Part::Log => {
                let l = &out.log[k];
                let st = match l.level {
                    Level::Error => t.fail,
                    Level::Warn => t.warn,
                    Level::Ok => t.ok,
                    Level::Info => t.text,
                };
                let stamp = l.at.format("%H:%M:%S ").to_string();
                let rest = l.text.as_str();
                Line::from(vec![
                    Span::styled(stamp, t.dim),
                    Span::styled(clip(rest, w.saturating_sub(9)), st),
                ])
            }
        };
        let line = if is_cursor && !matches!(p, Part::Rows(_)) {
            line.patch_style(t.selected)
        } else {
            line
        };
        buf.set_line(inner.x, inner.y + y as u16, &line, inner.width);
    }
}
