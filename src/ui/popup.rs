//! Popups, drawn bottom to top of the stack over the screen.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Widget, Wrap};

use crate::app::{Action, App, Form, Mode, Popup, Screen, StartKind};
use crate::guide::Plan;
use crate::runbook::model::StepBody;

use super::text::clip;

pub const IN_DOUBT_CHOICES: [(&str, &str); 3] = [
    (
        "Verify",
        "run the step's verification query to find out what happened",
    ),
    (
        "Re-run",
        "run the step again (only safe if it can run twice)",
    ),
    (
        "Mark done",
        "I checked by hand: the step completed (asks for a note)",
    ),
];

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width.saturating_sub(2)).max(1.min(area.width));
    let h = h.min(area.height.saturating_sub(2)).max(1.min(area.height));
    Rect::new(
        area.x + (area.width.saturating_sub(w)) / 2,
        area.y + (area.height.saturating_sub(h)) / 2,
        w,
        h,
    )
}

pub fn draw_all(app: &App, area: Rect, buf: &mut Buffer) {
    for p in &app.popups {
        draw(app, p, area, buf);
    }
}

fn form_lines(app: &App, form: &Form, w: usize, out: &mut Vec<Line<'static>>) {
    let t = &app.theme;
    // A failed submit focuses the field at fault, which shows the problem itself.
    let mut shown_problem = false;
    for (i, f) in form.fields.iter().enumerate() {
        let focused = i == form.focus;
        out.push(Line::from(vec![
            Span::styled(if focused { "› " } else { "  " }, t.accent),
            Span::styled(f.label.clone(), if focused { t.title } else { t.text }),
            Span::styled(if f.secret { " (hidden)" } else { "" }, t.dim),
        ]));
        let shown = f.display();
        let cursor = if focused { "▏" } else { "" };
        let room = w.saturating_sub(5);
        // Long values show their end, where the typing happens.
        let chars: Vec<char> = shown.chars().collect();
        let shown: String = if chars.len() > room && room > 1 {
            std::iter::once('…')
                .chain(chars[chars.len() - (room - 1)..].iter().copied())
                .collect()
        } else {
            shown
        };
        out.push(Line::from(vec![
            Span::raw("  ["),
            Span::styled(
                format!("{shown}{cursor}"),
                if focused { t.code } else { t.text },
            ),
            Span::raw("]"),
        ]));
        if focused {
            match f.problem() {
                Some(p) if !f.value.is_empty() || form.error.is_some() => {
                    shown_problem = true;
                    out.push(Line::styled(clip(&format!("  ✖ {p}"), w), t.fail));
                }
                Some(_) => {}
                None if !f.value.is_empty() => out.push(Line::styled("  ✔ ok", t.ok)),
                None => {}
            }
            if !f.help.is_empty() {
                // Wrapped under the field, not back at the border.
                for part in super::output::wrap_words(&f.help, w.saturating_sub(2)) {
                    out.push(Line::styled(format!("  {part}"), t.dim));
                }
            }
        }
    }
    if let Some(e) = form.error.as_ref().filter(|_| !shown_problem) {
        out.push(Line::styled(format!("✖ {e}"), t.fail));
    }
}

fn keys_line(app: &App, pairs: &[(Action, &str)]) -> Line<'static> {
    let t = &app.theme;
    let mut spans = Vec::new();
    for (i, (a, what)) in pairs.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled("  ", t.dim));
        }
        spans.push(Span::styled(app.keymap.hint(Mode::Popup, *a), t.key));
        spans.push(Span::styled(format!(" {what}"), t.dim));
    }
    Line::from(spans)
}

#[allow(clippy::too_many_arguments)]
fn frame(
    app: &App,
    area: Rect,
    buf: &mut Buffer,
    w: u16,
    lines: Vec<Line<'static>>,
    title: &str,
    danger: bool,
    scroll: u16,
) {
    let t = &app.theme;
    // Height after wrapping, so the last line (the keys) is never cut off.
    let inner_w = usize::from(w.min(area.width.saturating_sub(2)).saturating_sub(2)).max(1);
    // Word wrapping can take more rows than width / columns.
    let rows: usize = lines
        .iter()
        .map(|l| {
            let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
            let words = super::output::wrap_words(&text, inner_w).len();
            l.width().max(1).div_ceil(inner_w).max(words)
        })
        .sum();
    let h = u16::try_from(rows).unwrap_or(u16::MAX).saturating_add(2);
    let r = centered(area, w, h);
    Clear.render(r, buf);
    let block = Block::bordered()
        .border_type(if danger {
            BorderType::Double
        } else {
            BorderType::Rounded
        })
        .border_style(if danger { t.fail } else { t.border_focus })
        .title(Line::styled(
            format!(" {title} "),
            if danger { t.danger } else { t.title },
        ));
    Paragraph::new(lines)
        .block(block)
        .wrap(Wrap { trim: false })
        .scroll((scroll, 0))
        .style(Style::default())
        .render(r, buf);
}

fn step_title(app: &App, id: &str) -> String {
    app.run
        .as_ref()
        .and_then(|r| r.runbook.step(id))
        .map_or_else(|| id.to_string(), |s| s.title.clone())
}

// TODO(issue 16): split (one function per popup kind).
#[allow(clippy::too_many_lines)]
fn draw(app: &App, p: &Popup, area: Rect, buf: &mut Buffer) {
    let t = &app.theme;
    let pw: u16 = 72.min(area.width.saturating_sub(4)).max(20.min(area.width));
    let w = usize::from(pw.saturating_sub(2));
    let mut l: Vec<Line<'static>> = Vec::new();
    let submit_back = [
        (Action::Submit, "submit"),
        (Action::NextField, "next field"),
        (Action::Back, "cancel"),
    ];
    match p {
        Popup::Variables { form, .. } => {
            // Asked before a step runs (its `ask`): say which step and where the values came from.
            let title = match &app.ask_then_run {
                Some(step) => {
                    l.push(Line::raw(format!(
                        "Setup choices for “{}”, filled with what btsdr found on the server or the session's values. Change any, then submit to continue to the step.",
                        step_title(app, step)
                    )));
                    "Setup choices"
                }
                None => {
                    l.push(Line::raw(
                        "This runbook needs these values. They are checked as you type.",
                    ));
                    "Runbook variables"
                }
            };
            l.push(Line::raw(""));
            form_lines(app, form, w, &mut l);
            l.push(keys_line(app, &submit_back));
            frame(app, area, buf, pw, l, title, false, 0);
        }
        Popup::TypedConfirm {
            step,
            word,
            server,
            statement,
            form,
            scroll,
        } => {
            // "cannot be undone" only where the runbook gives no way back (`undo`).
            let undo = app
                .run
                .as_ref()
                .and_then(|r| r.runbook.step(step))
                .and_then(|s| match &s.body {
                    StepBody::Sql(q) => q.undo.clone(),
                    _ => None,
                });
            l.push(Line::from(match undo {
                None => vec![
                    Span::styled("DESTRUCTIVE: ", t.fail),
                    Span::raw(format!("“{}” cannot be undone.", step_title(app, step))),
                ],
                Some(u) => vec![
                    Span::styled("CHANGES THE SERVER: ", t.warn),
                    Span::raw(format!("“{}”. To undo: {u}", step_title(app, step))),
                ],
            }));
            l.push(Line::from(vec![
                Span::styled("Server: ", t.dim),
                Span::styled(server.clone(), t.warn),
            ]));
            // As much of the statement as fits (rows after wrapping); PgUp/PgDn scroll it.
            let total = statement.lines().count();
            let first = usize::from(*scroll).min(total.saturating_sub(1));
            let budget = usize::from(area.height.saturating_sub(17)).max(3);
            let mut shown = 0;
            let mut rows = 0;
            let mut body = Vec::new();
            for s in statement.lines().skip(first) {
                let r = super::text::width(s)
                    .saturating_add(2)
                    .max(1)
                    .div_ceil(w.max(1));
                if rows + r > budget && shown > 0 {
                    break;
                }
                rows += r;
                shown += 1;
                body.push(Line::styled(format!("  {s}"), t.code));
            }
            let more = total.saturating_sub(first + shown);
            l.push(Line::styled(
                if first > 0 || more > 0 {
                    format!(
                        "Statement (lines {}-{} of {total}; PgUp/PgDn scroll):",
                        first + 1,
                        first + shown
                    )
                } else {
                    "Statement:".to_string()
                },
                t.dim,
            ));
            l.extend(body);
            if more > 0 {
                l.push(Line::styled(
                    format!("  … {more} more line(s): PgDn shows them"),
                    t.dim,
                ));
            }
            l.push(Line::raw(""));
            l.push(Line::from(vec![
                Span::raw("Type "),
                Span::styled(word.clone(), t.warn),
                Span::raw(" to run it:"),
            ]));
            form_lines(app, form, w, &mut l);
            l.push(keys_line(
                app,
                &[(Action::Submit, "run"), (Action::Back, "do not run")],
            ));
            frame(app, area, buf, pw, l, "Confirm destructive step", true, 0);
        }
        Popup::SecondOperator { step, first, form } => {
            l.push(Line::raw(format!(
                "“{}” needs a second operator.",
                step_title(app, step)
            )));
            l.push(Line::styled(
                format!("{first} confirmed it; someone else must read it and approve."),
                t.warn,
            ));
            // What they approve: the server, the statement and the word.
            if let Some(e) = app.session.as_ref().map(|s| &s.engine) {
                if let Ok(st) = e.preview_statement(step) {
                    let server = app
                        .run
                        .as_ref()
                        .and_then(|r| r.vars.get(&format!("{}_sql_server", st.role)))
                        .filter(|n| !n.trim().is_empty())
                        .map_or_else(
                            || st.role.to_string(),
                            |n| format!("{n} ({} role)", st.role),
                        );
                    l.push(Line::from(vec![
                        Span::styled("Server: ", t.dim),
                        Span::styled(
                            clip(
                                &format!("{server} · database {}", st.database),
                                w.saturating_sub(8),
                            ),
                            t.warn,
                        ),
                    ]));
                    l.push(Line::styled("Statement:", t.dim));
                    let budget = usize::from(area.height.saturating_sub(18)).max(2);
                    let lines: Vec<&str> = st.sql.trim().lines().collect();
                    for s in lines.iter().take(budget) {
                        l.push(Line::styled(clip(&format!("  {s}"), w), t.code));
                    }
                    if lines.len() > budget {
                        l.push(Line::styled(
                            format!(
                                "  … {} more line(s) (y copies the statement on the run screen)",
                                lines.len() - budget
                            ),
                            t.dim,
                        ));
                    }
                }
                if let Some(word) = e.confirm_word(step) {
                    l.push(Line::from(vec![
                        Span::raw("Type your name, then "),
                        Span::styled(word, t.warn),
                        Span::raw(" to approve:"),
                    ]));
                }
            }
            l.push(Line::raw(""));
            form_lines(app, form, w, &mut l);
            l.push(keys_line(
                app,
                &[(Action::Submit, "approve"), (Action::Back, "cancel")],
            ));
            frame(app, area, buf, pw, l, "Second operator", true, 0);
        }
        Popup::MarkDone { step, form } => {
            l.push(Line::raw(format!(
                "Mark “{}” as done.",
                step_title(app, step)
            )));
            l.push(Line::styled(
                "Only if you checked on the server that it completed.",
                t.warn,
            ));
            l.push(Line::raw(""));
            form_lines(app, form, w, &mut l);
            l.push(keys_line(
                app,
                &[(Action::Submit, "mark done"), (Action::Back, "cancel")],
            ));
            frame(app, area, buf, pw, l, "Mark in-doubt step done", true, 0);
        }
        Popup::ManualConfirm { step, form } => {
            l.push(Line::raw(format!(
                "Confirm you did “{}”.",
                step_title(app, step)
            )));
            l.push(Line::styled(
                "The note and evidence go into the journal and the report.",
                t.dim,
            ));
            l.push(Line::raw(""));
            form_lines(app, form, w, &mut l);
            l.push(keys_line(app, &submit_back));
            frame(app, area, buf, pw, l, "Manual step done", false, 0);
        }
        Popup::Skip { step, form } => {
            l.push(Line::raw(format!("Skip “{}”?", step_title(app, step))));
            l.push(Line::styled(
                "Steps that depend on it will wait (R reopens it later). The reason is journaled and in the signed report.",
                t.dim,
            ));
            l.push(Line::raw(""));
            form_lines(app, form, w, &mut l);
            l.push(keys_line(
                app,
                &[(Action::Submit, "skip"), (Action::Back, "cancel")],
            ));
            frame(app, area, buf, pw, l, "Skip step", false, 0);
        }
        Popup::SignOff { form } => {
            if let Some(run) = &app.run {
                let (d, n) = run.progress(None);
                l.push(Line::raw(format!("{d} of {n} steps settled.")));
                let open: Vec<&str> = run
                    .steps
                    .iter()
                    .filter(|s| !s.mark.is_settled())
                    .map(|s| s.id.as_str())
                    .collect();
                if open.is_empty() {
                    l.push(Line::styled(
                        "Every step is settled: signing also closes the session (its clock stops).",
                        t.dim,
                    ));
                } else {
                    l.push(Line::styled(
                        clip(&format!("Still open: {}", open.join(", ")), w),
                        t.warn,
                    ));
                    l.push(Line::styled(
                        "Signing now is a sign-off WITH EXCEPTIONS (they are listed).",
                        t.warn,
                    ));
                }
            }
            l.push(Line::raw(""));
            form_lines(app, form, w, &mut l);
            l.push(keys_line(app, &submit_back));
            frame(app, area, buf, pw, l, "Sign off", false, 0);
        }
        Popup::Reopen { step, form } => {
            l.push(Line::raw(format!("Reopen “{}”?", step_title(app, step))));
            l.push(Line::styled(
                "It becomes pending again and steps that depend on it wait for it. Who and why are journaled.",
                t.dim,
            ));
            l.push(Line::raw(""));
            form_lines(app, form, w, &mut l);
            l.push(keys_line(
                app,
                &[(Action::Submit, "reopen"), (Action::Back, "cancel")],
            ));
            frame(app, area, buf, pw, l, "Reopen step", false, 0);
        }
        Popup::Close { open, form } => {
            if open.is_empty() {
                l.push(Line::raw("Every step is settled. Close the session?"));
            } else {
                l.push(Line::styled(
                    format!("{} step(s) are still open:", open.len()),
                    t.warn,
                ));
                for o in open.iter().take(6) {
                    l.push(Line::styled(clip(&format!("  {o}"), w), t.warn));
                }
                if open.len() > 6 {
                    l.push(Line::styled(
                        format!("  … and {} more", open.len() - 6),
                        t.dim,
                    ));
                }
            }
            l.push(Line::styled(
                "Closing stops the clock and ends the session (it leaves Resume); it can still be signed.",
                t.dim,
            ));
            l.push(Line::raw(""));
            form_lines(app, form, w, &mut l);
            l.push(keys_line(
                app,
                &[
                    (Action::Submit, "close the session"),
                    (Action::Back, "cancel"),
                ],
            ));
            frame(app, area, buf, pw, l, "Close session", !open.is_empty(), 0);
        }
        Popup::Quit => {
            l.push(Line::raw("Quit btsdr?"));
            l.push(Line::raw(""));
            l.push(Line::raw(
                "The journal is always safe; you can resume with btsdr.",
            ));
            if let Some(r) = app.running_step() {
                l.push(Line::styled(
                    format!("{} is still running: the server finishes it; on resume it is IN DOUBT until you check.", r.id),
                    t.warn,
                ));
            }
            l.push(Line::raw(""));
            l.push(keys_line(
                app,
                &[(Action::Submit, "quit"), (Action::Back, "stay")],
            ));
            frame(app, area, buf, 60, l, "Quit", false, 0);
        }
        Popup::Help { scroll } => {
            let mode = match app.screen {
                Screen::Home => Mode::Home,
                Screen::Run => Mode::Run,
            };
            let inner = usize::from(pw.saturating_sub(2)).max(20);
            // Descriptions wrap under themselves, not under the keys.
            let push_row = |l: &mut Vec<Line<'static>>, keys: &str, text: &str| {
                let dw = inner.saturating_sub(18).max(10);
                for (i, part) in super::output::wrap_words(text, dw).into_iter().enumerate() {
                    let k = if i == 0 {
                        clip(keys, 16)
                    } else {
                        String::new()
                    };
                    l.push(Line::from(vec![
                        Span::styled(format!("{k:>16}  "), t.key),
                        Span::raw(part),
                    ]));
                }
            };
            for (keys, a) in app.keymap.help_rows(mode) {
                push_row(&mut l, &keys, a.describe());
            }
            l.push(Line::styled("In popups", t.title));
            for (a, text) in [
                (Action::Submit, "submit / answer"),
                (Action::Back, "cancel / close"),
                (Action::NextField, "next field"),
                (Action::PrevField, "previous field"),
            ] {
                let keys = app
                    .keymap
                    .keys_for(Mode::Popup, a)
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ");
                push_row(&mut l, &keys, text);
            }
            push_row(&mut l, "Ctrl-u", "clear the field");
            push_row(&mut l, "y n", "answer yes / no questions (quit, cancel)");
            push_row(&mut l, "1 2 3", "choose in the in-doubt popup");
            l.push(Line::raw(""));
            for part in super::output::wrap_words(
                "Keys come from assets/default-keys.toml and your keys.toml (docs/KEYBINDINGS.md). Status labels: [PASS] [FAIL] [SKIP] [DONE] [N/A ] [RUN ] [WAIT] [DRY ] [????]=in doubt.",
                inner,
            ) {
                l.push(Line::styled(part, t.dim));
            }
            let total = l.len() as u16;
            let h = (area.height.saturating_sub(4)).min(total + 2);
            let visible = h.saturating_sub(2);
            let max_scroll = total.saturating_sub(visible);
            let scroll = (*scroll).min(max_scroll);
            let r = centered(area, pw, h);
            Clear.render(r, buf);
            let title = if max_scroll == 0 {
                format!(" Keys ({}) · Esc closes ", mode.as_str())
            } else {
                format!(
                    " Keys ({}) · ↑↓ j k scroll ({}/{}) · Esc closes ",
                    mode.as_str(),
                    (scroll + visible).min(total),
                    total
                )
            };
            Paragraph::new(l)
                .block(
                    Block::bordered()
                        .border_type(BorderType::Rounded)
                        .border_style(t.border_focus)
                        .title(Line::styled(title, t.title)),
                )
                .scroll((scroll, 0))
                .render(r, buf);
        }
        Popup::Find { form, selected } => {
            form_lines(app, form, w, &mut l);
            let matches = crate::app::view::find_matches(app, form.value(0));
            if form.value(0).is_empty() {
                l.push(Line::styled("Type part of a step title, id or SQL.", t.dim));
            } else if matches.is_empty() {
                l.push(Line::styled("No step matches.", t.warn));
            }
            for (k, (i, text)) in matches.iter().take(10).enumerate() {
                let mark = app
                    .run
                    .as_ref()
                    .and_then(|r| r.steps.get(*i))
                    .map_or("", |s| s.mark.label());
                let line = Line::raw(clip(&format!("{mark} {text}"), w));
                l.push(if k == *selected {
                    line.style(t.selected)
                } else {
                    line
                });
            }
            l.push(keys_line(
                app,
                &[
                    (Action::Submit, "go"),
                    (Action::Down, "next match"),
                    (Action::Back, "cancel"),
                ],
            ));
            frame(app, area, buf, pw, l, "Find step", false, 0);
        }
        Popup::CancelRunning { step } => {
            l.push(Line::raw(format!("Cancel “{}”?", step_title(app, step))));
            l.push(Line::raw(""));
            l.push(Line::raw("btsdr sends an attention to SQL Server. A BACKUP or RESTORE rolls back; a data change already committed stays committed."));
            l.push(Line::raw(""));
            l.push(keys_line(
                app,
                &[
                    (Action::Submit, "cancel the statement"),
                    (Action::Back, "let it run"),
                ],
            ));
            frame(app, area, buf, pw, l, "Cancel running statement", true, 0);
        }
        Popup::InDoubt { step, choice } => {
            l.push(Line::raw(format!(
                "“{}” was running when btsdr stopped.",
                step_title(app, step)
            )));
            l.push(Line::raw(
                "Its outcome on the server is unknown. Decide before anything else runs:",
            ));
            l.push(Line::raw(""));
            let verify = app
                .session
                .as_ref()
                .is_some_and(|s| s.engine.can_verify(step));
            for (i, (name, what)) in IN_DOUBT_CHOICES.iter().enumerate() {
                if i == 0 && !verify {
                    l.push(Line::styled(
                        format!("  {:<10}not offered: no check in this runbook can tell whether it took effect", ""),
                        t.dim,
                    ));
                    continue;
                }
                let line = Line::from(vec![
                    Span::raw(if i == *choice { "› " } else { "  " }),
                    Span::styled(format!("{name:<10}"), t.key),
                    Span::raw(what.to_string()),
                ]);
                l.push(if i == *choice {
                    line.style(t.selected)
                } else {
                    line
                });
            }
            l.push(Line::raw(""));
            let mut keys = keys_line(
                app,
                &[(Action::Submit, "apply"), (Action::Back, "decide later")],
            );
            keys.spans
                .insert(0, Span::styled("↑↓ or 1-3 choose  ", t.dim));
            l.push(keys);
            frame(app, area, buf, pw, l, "Step in doubt", true, 0);
        }
        Popup::Inspect {
            title,
            text,
            scroll,
        } => {
            for line in text.lines() {
                l.push(Line::raw(line.to_string()));
            }
            if text.is_empty() {
                l.push(Line::styled("(empty)", t.dim));
            }
            l.push(Line::raw(""));
            l.push(keys_line(app, &[(Action::Back, "close")]));
            let pw = (area.width.saturating_sub(4)).min(100);
            frame(app, area, buf, pw, l, title, false, *scroll);
        }
        Popup::Start {
            kind,
            target,
            about,
            form,
            plan,
        } => {
            // A later part of the plan whose earlier part ran here or is journaled: the same
            // incident.
            let same_incident = plan
                .as_ref()
                .is_some_and(|p| crate::app::session::incident_for(app, p).is_some());
            let (what, intro) = match kind {
                StartKind::Runbook if same_incident => (
                    "Runbook: ",
                    "The next part of the same incident: a new session, on the clock and RTO of the part before.",
                ),
                StartKind::Runbook => (
                    "Runbook: ",
                    "A new session. The RTO clock starts when you confirm.",
                ),
                StartKind::Drill => (
                    "Scenario: ",
                    "Simulated servers, nothing real is touched. Marked DRILL everywhere.",
                ),
            };
            let mut head = vec![
                Span::styled(what, t.dim),
                Span::styled(target.clone(), t.accent),
            ];
            let one_line = super::text::width(&format!("{what}{target} — {about}")) <= w;
            if one_line && !about.is_empty() {
                head.push(Span::styled(" — ", t.dim));
                head.push(Span::raw(about.clone()));
            }
            l.push(Line::from(head));
            // At most two lines: a long scenario description must not push the keys off.
            let about = if one_line { "" } else { about.as_str() };
            let mut rows = super::output::wrap_words(about, w);
            if rows.len() > 2 {
                rows.truncate(2);
                if let Some(last) = rows.last_mut() {
                    *last = clip(&format!("{last} …"), w);
                }
            }
            for r in rows.into_iter().filter(|r| !r.is_empty()) {
                l.push(Line::raw(r));
            }
            if let Some(part) = plan.as_ref().and_then(|p| p.current()) {
                let first = part.sections.first().map_or("", |s| s.title.as_str());
                l.push(Line::styled(
                    format!("Plan: starts at “{first}”; the plan stays on screen."),
                    t.dim,
                ));
            }
            l.push(Line::styled(intro, t.dim));
            l.push(Line::raw(""));
            form_lines(app, form, w, &mut l);
            l.push(keys_line(
                app,
                &[
                    (Action::Submit, "start"),
                    (Action::NextField, "next field"),
                    (Action::Back, "cancel"),
                ],
            ));
            let title = match kind {
                StartKind::Runbook => "Start runbook",
                StartKind::Drill => "Start drill",
            };
            frame(app, area, buf, pw, l, title, false, 0);
        }
        Popup::Plan { plan, part } => draw_plan(app, plan, *part, area, buf),
        Popup::Message { title, text, error } => {
            for line in text.lines() {
                l.push(Line::raw(line.to_string()));
            }
            l.push(Line::raw(""));
            l.push(keys_line(app, &[(Action::Back, "close")]));
            frame(app, area, buf, pw, l, title, *error, 0);
        }
    }
}

/// "Something failed?": the failure's runbooks and sections in order, the selected part
/// highlighted. The body scrolls to keep that part in view; the keys line stays.
fn draw_plan(app: &App, plan: &Plan, part: usize, area: Rect, buf: &mut Buffer) {
    let t = &app.theme;
    let pw: u16 = 90.min(area.width.saturating_sub(4)).max(20.min(area.width));
    let w = usize::from(pw.saturating_sub(2)).max(1);
    let wrap = |s: &str, indent: usize| -> Vec<String> {
        super::output::wrap_words(s, w.saturating_sub(indent))
            .into_iter()
            .map(|l| clip(&format!("{}{l}", " ".repeat(indent)), w))
            .collect()
    };
    let mut body: Vec<Line<'static>> = Vec::new();
    for l in wrap(&plan.description, 0) {
        body.push(Line::raw(l));
    }
    body.push(Line::styled(
        clip(&format!("Microsoft: {}", plan.reference), w),
        t.dim,
    ));
    body.push(Line::raw(""));
    // Rows of the selected part, to keep it in view.
    let mut sel = (0, 0);
    for (i, p) in plan.parts.iter().enumerate() {
        let start = body.len();
        let chosen = i == part;
        let title = if p.startable() {
            format!("{}. {} — {}", i + 1, p.runbook, p.runbook_title)
        } else {
            format!("{}. {} — not in this build", i + 1, p.runbook)
        };
        let head = clip(&format!("{}{title}", if chosen { "› " } else { "  " }), w);
        if chosen {
            let pad = w.saturating_sub(super::text::width(&head));
            body.push(
                Line::from(vec![Span::raw(head), Span::raw(" ".repeat(pad))]).style(t.selected),
            );
        } else {
            body.push(Line::styled(head, t.title));
        }
        let sections: Vec<String> = p
            .sections
            .iter()
            .map(|s| {
                if s.missing {
                    format!("{} (missing from this runbook)", s.id)
                } else {
                    let n = s.steps;
                    format!("{} ({n} step{})", s.title, if n == 1 { "" } else { "s" })
                }
            })
            .collect();
        for l in wrap(&sections.join(" · "), 5) {
            body.push(Line::styled(l, t.text));
        }
        if !p.note.is_empty() {
            for l in wrap(&p.note, 5) {
                body.push(Line::styled(l, t.dim));
            }
        }
        if chosen {
            sel = (start, body.len());
        }
    }
    let keys = {
        let mut k = keys_line(
            app,
            &[
                (Action::Submit, "start the chosen runbook"),
                (Action::Back, "back"),
            ],
        );
        k.spans.insert(0, Span::styled("↑↓ or 1-9 choose  ", t.dim));
        k
    };
    // Borders, the keys line and a margin.
    let room = usize::from(area.height.saturating_sub(5)).max(1);
    let shown = body.len().min(room);
    let mut offset = 0;
    if sel.1 > offset + shown {
        offset = sel.1 - shown;
    }
    if sel.0 < offset {
        offset = sel.0;
    }
    let more_below = offset + shown < body.len();
    let mut lines: Vec<Line<'static>> = body.into_iter().skip(offset).take(shown).collect();
    if more_below || offset > 0 {
        lines.push(Line::styled(
            format!(
                "{}{}",
                if offset > 0 { "↑ more above  " } else { "" },
                if more_below { "↓ more below" } else { "" }
            ),
            t.dim,
        ));
    }
    lines.push(keys);
    let h = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let r = centered(area, pw, h);
    Clear.render(r, buf);
    let title = clip(
        &format!(" What failed: {} ", plan.label),
        usize::from(pw.saturating_sub(4)),
    );
    Paragraph::new(lines)
        .block(
            Block::bordered()
                .border_type(BorderType::Rounded)
                .border_style(t.border_focus)
                .title(Line::styled(title, t.title)),
        )
        .render(r, buf);
}
