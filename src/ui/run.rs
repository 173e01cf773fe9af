//! The run screen: steps by section, the selected step's detail, its output.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

use crate::app::{Action, App, Focus, PlanRun, Popup, Screen, StepMark};
use crate::runbook::model::StepBody;
use crate::ui::theme::Theme;

use super::text::{clip, short_duration, width};
use super::{Fit, output};

pub use crate::app::view::layout::{panes, plan_for_run};

pub fn mark_style(t: &Theme, m: StepMark) -> Style {
    match m {
        StepMark::Pending => t.text,
        StepMark::Blocked => t.waiting,
        StepMark::NotApplicable => t.na,
        StepMark::Running => t.running,
        StepMark::Passed => t.pass,
        StepMark::Failed => t.fail,
        StepMark::Skipped => t.skip,
        StepMark::Done => t.done,
        StepMark::InDoubt => t.doubt,
        StepMark::WouldRun => t.done,
    }
}

pub fn pane_block<'a>(app: &App, title: impl Into<Line<'a>>, focused: bool) -> Block<'a> {
    let t = &app.theme;
    Block::bordered()
        .border_style(if focused { t.border_focus } else { t.border })
        .title(title.into().style(if focused { t.title } else { t.text }))
}

pub fn draw(app: &App, body: Rect, fit: Fit, buf: &mut Buffer) {
    let Some(_) = &app.run else {
        Paragraph::new("No runbook is open. Press H for the home screen.")
            .style(app.theme.dim)
            .render(body, buf);
        return;
    };
    match fit {
        Fit::Full => {
            let p = panes(body);
            steps_pane(app, p.steps, buf);
            detail_pane(app, p.detail, buf);
            output::draw(app, p.output, buf);
        }
        // One pane: the focused one.
        _ => match app.focus {
            Focus::Steps => steps_pane(app, body, buf),
            Focus::Detail => detail_pane(app, body, buf),
            Focus::Output => output::draw(app, body, buf),
        },
    }
}

/// One line under the title bar: this part of the plan and what comes after it.
pub fn plan_line(app: &App, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let Some(p) = plan_for_run(app) else { return };
    let t = &app.theme;
    let titles = |part: &crate::guide::PlanPart| {
        part.sections
            .iter()
            .map(|s| s.title.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut spans = vec![Span::styled(
        format!(" Plan {}/{} ", p.part + 1, p.plan.parts.len()),
        t.title,
    )];
    if let Some(cur) = p.current() {
        spans.push(Span::styled(format!("{} → ", cur.runbook), t.accent));
        spans.push(Span::styled(titles(cur), t.text));
    }
    for next in p.plan.parts.iter().skip(p.part + 1) {
        spans.push(Span::styled("; then ", t.dim));
        spans.push(Span::styled(format!("{} → ", next.runbook), t.dim));
        spans.push(Span::styled(titles(next), t.dim));
    }
    let line = Line::from(spans);
    buf.set_line(area.x, area.y, &line, area.width);
    // Clipped: say so at the right edge (the whole plan is on Home, "Something failed?").
    if line.width() > usize::from(area.width) && area.width > 2 {
        let x = area.x + area.width - 1;
        if let Some(c) = buf.cell_mut((x, area.y)) {
            c.set_symbol("…");
        }
    }
}

fn steps_pane(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(run) = &app.run else { return };
    let t = &app.theme;
    // With a failure plan, the sections it does not list are dimmed.
    let plan_sections: Option<Vec<&str>> = plan_for_run(app)
        .and_then(PlanRun::current)
        .map(|part| part.sections.iter().map(|s| s.id.as_str()).collect());
    let (done, total) = run.progress(None);
    let pct = (done * 100).checked_div(total).unwrap_or(100);
    let title = format!(" Steps {done}/{total} · {pct}% ");
    let block = pane_block(app, title, app.focus == Focus::Steps);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let w = usize::from(inner.width);
    // Section headers and step rows; a runbook has at most a few hundred.
    let mut lines: Vec<Line> = Vec::new();
    let mut selected_line = 0;
    let mut last_section = usize::MAX;
    for (i, row) in run.steps.iter().enumerate() {
        if row.section != last_section {
            last_section = row.section;
            let sec = &run.runbook.sections[row.section];
            let (d, n) = run.progress(Some(row.section));
            // A section none of whose steps applies is not "done": it is not needed.
            let count = if n == 0 {
                " n/a".to_string()
            } else {
                format!(" {d}/{n}")
            };
            let title_w = w.saturating_sub(width(&count) + 2);
            let all = d == n;
            let in_plan = plan_sections
                .as_ref()
                .is_none_or(|ids| ids.contains(&sec.id.as_str()));
            lines.push(Line::from(vec![
                match (n, all) {
                    (0, _) => Span::styled("- ", t.dim),
                    (_, true) => Span::styled("✔ ", t.pass),
                    _ => Span::styled("▸ ", t.accent),
                },
                Span::styled(
                    clip(&sec.title, title_w),
                    if in_plan { t.header } else { t.dim },
                ),
                Span::styled(count, t.dim),
            ]));
        }
        if i == app.selected {
            selected_line = lines.len();
        }
        let title = run
            .step(i)
            .map_or(row.id.as_str(), |(_, st)| st.title.as_str())
            .to_string();
        let ms = mark_style(t, row.mark);
        let sel = i == app.selected;
        let prefix = if sel { "›" } else { " " };
        let title_w = w.saturating_sub(11);
        let mut spans = vec![
            Span::styled(prefix, t.accent),
            Span::styled(format!("{} ", row.mark.symbol()), ms),
            Span::styled(row.mark.label(), ms),
            Span::raw(" "),
            Span::styled(
                clip(&title, title_w),
                if row.mark == StepMark::NotApplicable {
                    t.na
                } else {
                    t.text
                },
            ),
        ];
        if sel {
            let used: usize = spans.iter().map(Span::width).sum();
            spans.push(Span::raw(" ".repeat(w.saturating_sub(used))));
            let line = Line::from(spans).style(t.selected);
            lines.push(line);
        } else {
            lines.push(Line::from(spans));
        }
    }
    let h = usize::from(inner.height);
    let offset = if lines.len() <= h {
        0
    } else {
        selected_line.saturating_sub(h / 3).min(lines.len() - h)
    };
    for (y, line) in lines.into_iter().skip(offset).take(h).enumerate() {
        buf.set_line(inner.x, inner.y + y as u16, &line, inner.width);
    }
}

// TODO(issue 16): split (one function per step kind).
#[allow(clippy::too_many_lines)]
fn detail_pane(app: &App, area: Rect, buf: &mut Buffer) {
    let t = &app.theme;
    let Some(run) = &app.run else { return };
    let Some((row, step)) = app.selected_step() else {
        pane_block(app, " Step ", app.focus == Focus::Detail).render(area, buf);
        return;
    };
    // Counted like the steps pane: steps that do not apply are not numbered.
    let applies = |s: &&crate::app::StepRow| s.mark != StepMark::NotApplicable;
    let total = run.steps.iter().filter(applies).count();
    let title = if row.mark == StepMark::NotApplicable {
        format!(" Step n/a · {} · {} ", step.kind_name(), step.id)
    } else {
        let pos = run
            .steps
            .iter()
            .take(app.selected + 1)
            .filter(applies)
            .count();
        format!(" Step {pos}/{total} · {} · {} ", step.kind_name(), step.id)
    };
    let block = pane_block(app, title, app.focus == Focus::Detail);
    let vars = |name: &str| run.vars.get(name).cloned();
    let mut lines: Vec<Line> = Vec::new();
    let ms = mark_style(t, row.mark);
    let mut state = vec![Span::styled(
        format!("{} {}", row.mark.label(), row.mark.word()),
        ms,
    )];
    if let Some(at) = row.started_at {
        let end = row.finished_at.unwrap_or(app.now);
        state.push(Span::styled(
            format!(
                " · started {} · took {}",
                at.format("%H:%M:%S"),
                short_duration(end - at)
            ),
            t.dim,
        ));
    }
    if row.attempts > 1 {
        state.push(Span::styled(format!(" · attempt {}", row.attempts), t.dim));
    }
    lines.push(Line::from(state));
    // Time guidance, once this group has history for the runbook (from where, or none).
    if row.mark != StepMark::NotApplicable
        && crate::estimate::has_runbook(&app.step_history, &app.environment, &run.runbook.id)
    {
        let e = crate::estimate::for_step(
            &app.step_history,
            &app.environment,
            &run.runbook.id,
            &row.id,
        );
        lines.push(Line::from(Span::styled(
            format!("Time: {}", crate::estimate::describe(e.as_ref())),
            t.dim,
        )));
    }
    if let Some(n) = row.note.as_ref().filter(|_| row.mark != StepMark::Failed) {
        lines.push(Line::from(vec![
            Span::styled("Note: ", t.dim),
            Span::raw(n.clone()),
        ]));
    }
    lines.push(Line::from(Span::styled(step.title.clone(), t.title)));
    lines.push(Line::from(vec![
        Span::styled("Why: ", t.dim),
        Span::raw(crate::runbook::expr::render_text(step.why.trim(), &|n| {
            run.shown_var(n)
        })),
    ]));
    match &step.body {
        StepBody::Manual(m) => {
            lines.push(Line::from(vec![
                Span::styled("Run on: ", t.dim),
                Span::styled(
                    crate::runbook::expr::render_text(&m.run_on, &vars),
                    t.accent,
                ),
            ]));
            for l in crate::runbook::expr::render_text(&m.instructions, &vars).lines() {
                lines.push(Line::from(l.to_string()));
            }
            for (i, c) in m.commands.iter().enumerate() {
                let shell = if c.shell.is_empty() {
                    "shell"
                } else {
                    c.shell.as_str()
                };
                lines.push(Line::from(Span::styled(
                    format!(
                        "Command {} ({shell}) — {} copies it:",
                        i + 1,
                        app.keymap.hint(crate::app::Mode::Run, Action::Copy)
                    ),
                    t.dim,
                )));
                for l in crate::runbook::expr::render_text(&c.run, &vars).lines() {
                    lines.push(Line::from(Span::styled(format!("  {l}"), t.code)));
                }
            }
            if !m.evidence.is_empty() {
                lines.push(Line::from(vec![
                    Span::styled("Evidence to record: ", t.dim),
                    Span::raw(crate::runbook::expr::render_text(&m.evidence, &vars)),
                ]));
            }
        }
        StepBody::Sql(_) | StepBody::Check(_) => {
            if let Some((role, db, sql, params, timeout)) = step.statement() {
                let mut head = vec![
                    Span::styled("Server: ", t.dim),
                    Span::styled(role.as_str(), t.accent),
                    Span::styled(" · database: ", t.dim),
                    Span::styled(crate::runbook::expr::render_text(db, &vars), t.accent),
                    Span::styled(format!(" · timeout {timeout}s"), t.dim),
                ];
                if step.is_destructive() {
                    head.push(Span::styled(" DESTRUCTIVE ", t.danger));
                }
                lines.push(Line::from(head));
                // The exact statement (identifiers quoted) when the engine can build it.
                let exact = app
                    .session
                    .as_ref()
                    .and_then(|s| s.engine.preview_statement(&step.id).ok())
                    .map(|st| st.sql);
                for l in exact.as_deref().unwrap_or(sql).lines() {
                    lines.push(Line::from(Span::styled(format!("  {l}"), t.code)));
                }
                if !params.is_empty() {
                    lines.push(Line::from(Span::styled("Parameters:", t.dim)));
                    for p in params {
                        let v = run
                            .shown_var(p)
                            .map_or_else(|| "(not set yet)".to_string(), |v| format!("N'{v}'"));
                        lines.push(Line::from(vec![
                            Span::styled(format!("  @{p} = "), t.dim),
                            Span::styled(v, t.code),
                        ]));
                    }
                }
                if let StepBody::Check(c) = &step.body {
                    for a in &c.asserts {
                        lines.push(Line::from(vec![
                            Span::styled("Expect ", t.dim),
                            Span::raw(crate::runbook::expr::render_text(&a.source, &|n| {
                                run.shown_var(n)
                            })),
                        ]));
                    }
                }
            }
        }
        StepBody::Generate(g) => {
            lines.push(Line::from(vec![
                Span::styled("Writes: ", t.dim),
                Span::styled(
                    crate::runbook::expr::render_text(&g.output, &vars),
                    t.accent,
                ),
            ]));
            for l in crate::runbook::expr::render_text(&g.instructions, &vars).lines() {
                lines.push(Line::from(l.to_string()));
            }
        }
    }
    if !step.covers.is_empty() {
        lines.push(Line::from(vec![
            Span::styled("Covers: ", t.dim),
            Span::raw(step.covers.join(", ")),
        ]));
    }
    for r in &step.references {
        lines.push(Line::from(vec![
            Span::styled("Ref: ", t.dim),
            Span::styled(r.clone(), t.accent),
        ]));
    }
    Paragraph::new(lines)
        .block(block)
        .wrap(Wrap { trim: false })
        .scroll((app.detail_scroll, 0))
        .render(area, buf);
}

/// What to do next, in words, with the keys to press.
// TODO(issue 16): split (one function per screen state).
#[allow(clippy::too_many_lines)]
pub fn next_hint(app: &App) -> Vec<(String, bool)> {
    use crate::app::Mode;
    let k = |m: Mode, a: Action| app.keymap.hint(m, a);
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut say = |s: String, key: bool| out.push((s, key));
    if let Some(p) = app.popups.last() {
        let submit = k(Mode::Popup, Action::Submit);
        let back = k(Mode::Popup, Action::Back);
        match p {
            Popup::Quit => {
                say("press ".into(), false);
                say(submit, true);
                say(" or y to quit, ".into(), false);
                say(back, true);
                say(" to stay".into(), false);
            }
            Popup::Help { .. } | Popup::Inspect { .. } | Popup::Message { .. } => {
                say(back, true);
                say(" closes this".into(), false);
            }
            Popup::Plan { .. } => {
                say("choose a part with ↑/↓, press ".into(), false);
                say(submit, true);
                say(" to start it, ".into(), false);
                say(back, true);
                say(" to go back".into(), false);
            }
            Popup::InDoubt { .. } => {
                say("choose with ↑/↓ and press ".into(), false);
                say(submit, true);
                say(" — nothing runs until you decide".into(), false);
            }
            Popup::CancelRunning { .. } => {
                say("press ".into(), false);
                say(submit, true);
                say(" or y to cancel the statement, ".into(), false);
                say(back, true);
                say(" to let it run".into(), false);
            }
            Popup::TypedConfirm { word, .. } => {
                say(format!("type {word} and press "), false);
                say(submit, true);
                say(", or ".into(), false);
                say(back, true);
                say(" to back out".into(), false);
            }
            _ => {
                say("type, ".into(), false);
                say(k(Mode::Popup, Action::NextField), true);
                say(" next field, ".into(), false);
                say(submit, true);
                say(" to submit, ".into(), false);
                say(back, true);
                say(" to cancel".into(), false);
            }
        }
        return out;
    }
    if app.screen == Screen::Home {
        say("choose with ↑/↓ and press ".into(), false);
        say(k(Mode::Home, Action::Run), true);
        say(" · ".into(), false);
        if app.run.is_some() {
            say(k(Mode::Home, Action::Back), true);
            say(" back to the run · ".into(), false);
        }
        say(k(Mode::Home, Action::Help), true);
        say(" help · ".into(), false);
        say(k(Mode::Home, Action::Quit), true);
        say(" quit".into(), false);
        return out;
    }
    let Some(run) = &app.run else {
        return out;
    };
    let m = Mode::Run;
    if let Some(r) = app.running_step() {
        say(format!("{} is running — wait, or ", r.id), false);
        say(k(m, Action::Cancel), true);
        say(" to cancel it".into(), false);
        return out;
    }
    if let Some(i) = run.steps.iter().position(|s| s.mark == StepMark::InDoubt) {
        say(
            format!(
                "{} is in doubt after an interruption: select it and press ",
                run.steps[i].id
            ),
            false,
        );
        say(k(m, Action::Run), true);
        say(" to decide".into(), false);
        return out;
    }
    if run.all_settled() {
        if run.signed_off.is_some() {
            say("run complete and signed off — ".into(), false);
            say(k(m, Action::Quit), true);
            say(" to quit".into(), false);
        } else {
            say("every step is settled: press ".into(), false);
            say(k(m, Action::SignOff), true);
            say(" to sign off".into(), false);
        }
        return out;
    }
    let Some((row, step)) = app.selected_step() else {
        return out;
    };
    match row.mark {
        StepMark::Failed => {
            say("read the error, then ".into(), false);
            say(k(m, Action::Retry), true);
            say(" retry · ".into(), false);
            say(k(m, Action::Skip), true);
            say(" skip with a reason".into(), false);
            if matches!(step.body, StepBody::Manual(_)) {
                say(" · ".into(), false);
                say(k(m, Action::Confirm), true);
                say(" confirm done".into(), false);
            }
        }
        StepMark::Blocked if !step.after.is_empty() => {
            // Say what it waits for, and what unblocks it: never "press Enter" here.
            let open: Vec<&str> = step
                .after
                .iter()
                .filter(|a| {
                    run.index_of(a)
                        .is_none_or(|i| !run.steps[i].mark.is_settled())
                })
                .map(String::as_str)
                .collect();
            say(
                format!(
                    "{} waits for {} — finish them (or skip with a reason) first · ",
                    row.id,
                    clip(&open.join(", "), 40)
                ),
                false,
            );
            say(k(m, Action::NextFailed), true);
            say(" next failed".into(), false);
        }
        StepMark::Pending | StepMark::Blocked => match &step.body {
            StepBody::Manual(_) => {
                say("do the manual step, then ".into(), false);
                say(k(m, Action::Confirm), true);
                say(" to confirm with a note · ".into(), false);
                say(k(m, Action::Copy), true);
                say(" copies the command".into(), false);
            }
            _ => {
                let verb = if step.is_destructive() {
                    "run (asks to confirm)"
                } else {
                    "run"
                };
                say("press ".into(), false);
                say(k(m, Action::Run), true);
                say(format!(" to {verb} “{}” · ", clip(&step.title, 40)), false);
                say(k(m, Action::Skip), true);
                say(" skip".into(), false);
            }
        },
        _ => {
            // The selected step is settled: point at the next open one.
            let next = run
                .steps
                .iter()
                .skip(app.selected)
                .chain(run.steps.iter().take(app.selected))
                .find(|s| !s.mark.is_settled());
            match next {
                Some(n) => {
                    say(
                        format!(
                            "{} {} — next open step: {} (",
                            row.id,
                            row.mark.is_phrase(),
                            n.id
                        ),
                        false,
                    );
                    say(k(m, Action::Down), true);
                    say(" to move)".into(), false);
                }
                None => {
                    say(k(m, Action::SignOff), true);
                    say(" to sign off".into(), false);
                }
            }
        }
    }
    out
}

pub fn hint_line(app: &App, area: Rect, buf: &mut Buffer) {
    let t = &app.theme;
    let mut spans = vec![Span::styled("next: ", t.hint)];
    for (s, key) in next_hint(app) {
        spans.push(Span::styled(s, if key { t.key } else { t.text }));
    }
    buf.set_line(area.x, area.y, &Line::from(spans), area.width);
}
