//! `update`: messages in, state changed, effects out. No I/O here.

use chrono::{DateTime, Duration, Utc};
use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind,
};

use crate::runbook::model::StepBody;
use btsdr_types::Role;
use btsdr_types::Statement;

use super::action::Action;
use super::form::{Check, Field, Form};
use super::keymap::Mode;
use super::state::*;

/// The in-doubt popup's first choice: Verify (0) only when a check can tell (else Re-run).
pub(crate) fn in_doubt_first(app: &App, step: &str) -> usize {
    usize::from(
        !app.session
            .as_ref()
            .is_some_and(|s| s.engine.can_verify(step)),
    )
}

/// The word the skip popup asks for.
pub const SKIP_WORD: &str = "SKIP";
/// The word the close popup asks for when steps are still open.
pub const CLOSE_WORD: &str = "CLOSE";

/// Everything that can happen to the app.
#[derive(Debug)]
pub enum Msg {
    /// A terminal event (key, paste, mouse, resize).
    Term(Event),
    /// The clock, injected so the view stays pure.
    Tick(DateTime<Utc>),
    /// A role's connection changed.
    Conn(Role, ConnState),
    /// A driver-side problem the operator must see (e.g. the journal cannot be written).
    DriverError(String),
    /// A driver-side success worth a short notice (e.g. copied to the clipboard).
    DriverInfo(String),
    /// A report was written: where, and how to open it (kept on screen until dismissed).
    ReportWritten(String),
    /// The driver opened a session (new or replayed from its journal).
    Opened(Box<super::session::Session>),
    /// SIGTERM / SIGHUP: leave now (the journal is already on disk).
    Shutdown,
    /// Something from the session layer (engine results, SQL events).
    Session(super::session::SessionMsg),
}

/// What the operator asked the engine to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    Run(String),
    Retry(String),
    Verify(String),
    Skip {
        step: String,
        reason: String,
    },
    ConfirmManual {
        step: String,
        note: String,
        evidence: String,
        /// Who did it, when not the operator at the keyboard (empty: the operator).
        by: String,
    },
    ConfirmDestructive {
        step: String,
        typed: String,
    },
    SecondOperator {
        step: String,
        by: String,
    },
    ResolveVerify(String),
    ResolveRerun(String),
    ResolveMarkDone {
        step: String,
        note: String,
    },
    SetVariables(Vec<(String, String)>),
    SignOff {
        name: String,
        role: String,
        comment: String,
        next_review: String,
    },
    Reopen {
        step: String,
        reason: String,
    },
    Close {
        reason: String,
    },
    Cancel(String),
    SetDryRun(bool),
}

/// Things only the driver can do (opening sessions needs files, a simulator, servers).
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Resume {
        session_id: String,
    },
    /// Find the most recent unfinished session and open it at its first problem.
    Recover,
    Start {
        runbook_id: String,
        environment: String,
        operator: String,
        rto_minutes: Option<u32>,
        rpo_minutes: Option<u32>,
        /// A later part of a failure plan after the failover, confirmed by the operator: the
        /// source and MessageBox roles go to the destination's server (the new source).
        repoint: bool,
    },
    Drill {
        scenario: String,
        operator: String,
        rto_minutes: Option<u32>,
    },
}

/// Work for the driver.
#[derive(Debug, Clone, PartialEq)]
pub enum AppEffect {
    /// Append (and fsync) a journal record before performing the effects after it.
    Journal(Box<crate::engine::events::Record>),
    /// Send a statement to the executor.
    Submit {
        request_id: u64,
        statement: Box<Statement>,
    },
    /// Cancel a statement (the executor answers with `Finished(Cancelled)`).
    CancelSql(u64),
    /// Write a generated file, then report `FileWritten` / `FileFailed`.
    WriteFile {
        step: String,
        name: String,
        contents: String,
    },
    /// Copy text with OSC 52 (works over SSH).
    Copy(String),
    Open(Request),
    /// Write a session's report where the operator can open it (`Opener::report`).
    WriteReport {
        session_id: String,
    },
    Quit,
}

const ROWS_PAGE_MIN: usize = 1;

/// Applies `msg` to `app`; returns what the driver must do.
pub fn update(app: &mut App, msg: Msg) -> Vec<AppEffect> {
    match msg {
        Msg::Tick(now) => {
            app.now = now;
            app.notices.retain(|n| n.until > now);
            vec![]
        }
        Msg::Term(Event::Resize(w, h)) => {
            app.viewport = (w, h);
            vec![]
        }
        Msg::Term(Event::Key(k)) => on_key(app, k),
        Msg::Term(Event::Paste(s)) => {
            if let Some(f) = app.popups.last_mut().and_then(Popup::form_mut) {
                f.paste(&s);
            }
            vec![]
        }
        Msg::Term(Event::Mouse(m)) => on_mouse(app, m),
        Msg::Term(_) => vec![],
        Msg::Conn(role, state) => {
            app.conns.insert(role, state);
            vec![]
        }
        Msg::DriverError(e) => {
            app.notify(Level::Error, e.clone());
            app.popups.push(Popup::Message {
                title: "Problem".into(),
                text: e,
                error: true,
            });
            vec![]
        }
        Msg::DriverInfo(s) => {
            app.notify(Level::Ok, s);
            vec![]
        }
        Msg::ReportWritten(s) => {
            app.popups.push(Popup::Message {
                title: "Report written".into(),
                text: s,
                error: false,
            });
            vec![]
        }
        Msg::Opened(s) => super::session::open(app, s.engine),
        Msg::Session(m) => super::session::on_session(app, m),
        Msg::Shutdown => vec![AppEffect::Quit],
    }
}

fn on_mouse(app: &mut App, m: MouseEvent) -> Vec<AppEffect> {
    if !app.popups.is_empty() {
        return vec![];
    }
    match m.kind {
        MouseEventKind::ScrollDown => act(app, Action::Down),
        MouseEventKind::ScrollUp => act(app, Action::Up),
        _ => vec![],
    }
}

fn on_key(app: &mut App, k: KeyEvent) -> Vec<AppEffect> {
    if k.kind == KeyEventKind::Release {
        return vec![];
    }
    let action = app.keymap.action(app.mode(), &k);
    // Text fields take printable keys before the keymap (so `j` types a j).
    if let Some(top) = app.popups.last_mut() {
        let plain = !k
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        if let Some(form) = top.form_mut() {
            match k.code {
                KeyCode::Char(c) if plain => {
                    form.type_char(c);
                    if let Popup::Find { selected, .. } = top {
                        *selected = 0;
                    }
                    return vec![];
                }
                KeyCode::Backspace => {
                    form.backspace();
                    return vec![];
                }
                KeyCode::Char('u') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    form.clear();
                    return vec![];
                }
                _ => {}
            }
        } else if plain {
            // Yes/no popups.
            match (top, k.code) {
                (Popup::Quit | Popup::CancelRunning { .. }, KeyCode::Char('y' | 'Y')) => {
                    return act(app, Action::Submit);
                }
                (Popup::Quit | Popup::CancelRunning { .. }, KeyCode::Char('n' | 'N')) => {
                    return act(app, Action::Back);
                }
                // A number chooses; Enter applies (as the popup says): a stray digit must
                // not decide what happened to a step on the server.
                (Popup::InDoubt { choice, step }, KeyCode::Char(c @ '1'..='3')) => {
                    let c = c as usize - '1' as usize;
                    let first = usize::from(
                        !app.session
                            .as_ref()
                            .is_some_and(|s| s.engine.can_verify(step)),
                    );
                    *choice = c.max(first);
                    return vec![];
                }
                (Popup::Plan { plan, part }, KeyCode::Char(c @ '1'..='9')) => {
                    let i = c as usize - '1' as usize;
                    if i < plan.parts.len() {
                        *part = i;
                    }
                    return vec![];
                }
                // Reading popups scroll with the same keys as the panes.
                (
                    Popup::Help { .. } | Popup::Inspect { .. } | Popup::Plan { .. },
                    KeyCode::Char('j'),
                ) => {
                    return act(app, Action::Down);
                }
                (
                    Popup::Help { .. } | Popup::Inspect { .. } | Popup::Plan { .. },
                    KeyCode::Char('k'),
                ) => {
                    return act(app, Action::Up);
                }
                (
                    Popup::Help { .. }
                    | Popup::Inspect { .. }
                    | Popup::Message { .. }
                    | Popup::Plan { .. },
                    KeyCode::Char('q'),
                ) => {
                    app.popups.pop();
                    return vec![];
                }
                _ => {}
            }
        }
    }
    match action {
        Some(a) => act(app, a),
        None => vec![],
    }
}

/// Performs one action in the current context.
pub(crate) fn act(app: &mut App, a: Action) -> Vec<AppEffect> {
    // Global actions that work everywhere.
    match a {
        Action::ToggleTheme => {
            app.theme = if app.no_color {
                super::view::theme::Theme::monochrome()
            } else if app.theme.name == "dark" {
                super::view::theme::Theme::high_contrast()
            } else {
                super::view::theme::Theme::dark()
            };
            return vec![];
        }
        Action::Cancel => {
            if matches!(app.popups.last(), Some(Popup::CancelRunning { .. })) {
                return vec![];
            }
            if let Some(r) = app.running_step() {
                let step = r.id.clone();
                app.popups.push(Popup::CancelRunning { step });
            } else if app.popups.is_empty() {
                app.notify(
                    Level::Info,
                    format!(
                        "nothing is running; {} quits",
                        app.keymap.hint(Mode::Run, Action::Quit)
                    ),
                );
            } else {
                app.popups.pop();
            }
            return vec![];
        }
        Action::Help if !matches!(app.popups.last(), Some(p) if p.form().is_some()) => {
            if matches!(app.popups.last(), Some(Popup::Help { .. })) {
                app.popups.pop();
            } else {
                app.popups.push(Popup::Help { scroll: 0 });
            }
            return vec![];
        }
        _ => {}
    }
    if !app.popups.is_empty() {
        return popup_action(app, a);
    }
    match app.screen {
        Screen::Home => home_action(app, a),
        Screen::Run => run_action(app, a),
    }
}

fn home_action(app: &mut App, a: Action) -> Vec<AppEffect> {
    let n = app.home.len();
    match a {
        Action::Up => app.home_selected = app.home_selected.saturating_sub(1),
        Action::Down => app.home_selected = (app.home_selected + 1).min(n.saturating_sub(1)),
        Action::Top => app.home_selected = 0,
        Action::Bottom => app.home_selected = n.saturating_sub(1),
        Action::Quit => app.popups.push(Popup::Quit),
        Action::Run | Action::Submit => {
            let Some(item) = app.home.get(app.home_selected).cloned() else {
                return vec![];
            };
            match item {
                // The session open in this process: back to it (reopening would find its
                // journal locked by ourselves).
                HomeItem::Resume { session_id, .. }
                    if app.run.as_ref().is_some_and(|r| r.session_id == session_id) =>
                {
                    app.screen = Screen::Run;
                }
                HomeItem::Resume { session_id, .. } => {
                    app.pending_plan = None;
                    return vec![AppEffect::Open(Request::Resume { session_id })];
                }
                HomeItem::Report { path, .. } => {
                    app.pending_plan = None;
                    return vec![AppEffect::WriteReport { session_id: path }];
                }
                HomeItem::Failure(plan) => {
                    // Back to the same plan: offer the part after the one started last.
                    let part = match &app.plan {
                        Some(p) if p.plan.id == plan.id && p.part + 1 < plan.parts.len() => {
                            p.part + 1
                        }
                        // An earlier part journaled by another process: offer the next.
                        Some(p) if p.plan.id == plan.id => 0,
                        _ => app
                            .plan_history
                            .iter()
                            .rfind(|h| h.plan_id == plan.id)
                            .map(|h| h.part + 1)
                            .filter(|&n| n < plan.parts.len())
                            .unwrap_or(0),
                    };
                    app.popups.push(Popup::Plan { plan, part });
                }
                HomeItem::Start { runbook_id, title } => {
                    push_start(app, runbook_id, title, None);
                }
                HomeItem::Drill { scenario, title } => {
                    let mut form = Form::new(vec![
                        Field::new("Your name (journaled with every action)", Check::Required)
                            .value(app.operator.clone()),
                        Field::new("RTO target, minutes", Check::Minutes { required: false })
                            .value("240")
                            .help(RTO_HELP),
                    ]);
                    form.focus = usize::from(!app.operator.trim().is_empty());
                    app.popups.push(Popup::Start {
                        kind: StartKind::Drill,
                        target: scenario,
                        about: title,
                        form,
                        plan: None,
                    });
                }
            }
        }
        // Home from a run keeps the run open: Esc (or H) goes back to it.
        Action::Home | Action::Back if app.run.is_some() => app.screen = Screen::Run,
        Action::Back => app.popups.push(Popup::Quit),
        _ => {}
    }
    vec![]
}

const RTO_HELP: &str = "Recovery time objective; the status bar counts against it. Empty: none.";

/// The Start form's field that confirms repointed roles (present after a failover part).
const REPOINT_FIELD: usize = 4;

/// Runbooks that move the group to the destination's SQL Server.
const FAILOVER_RUNBOOKS: &[&str] = &["restore", "disaster-recovery"];

/// The 1-based number of an earlier part of `p`'s plan that failed the group over, when
/// `p`'s part itself does not.
fn failover_before(p: &PlanRun) -> Option<usize> {
    let this = p.current()?;
    if FAILOVER_RUNBOOKS.contains(&this.runbook.as_str()) {
        return None;
    }
    p.plan.parts[..p.part.min(p.plan.parts.len())]
        .iter()
        .rposition(|x| FAILOVER_RUNBOOKS.contains(&x.runbook.as_str()))
        .map(|i| i + 1)
}

/// The Start popup for a runbook (from Home or from a failure plan).
fn push_start(app: &mut App, runbook_id: String, title: String, plan: Option<PlanRun>) {
    let envs = &app.environments;
    // The simulator's scenarios are environments too, to practise a runbook or a plan.
    let drills: Vec<String> = app
        .home
        .iter()
        .filter_map(|i| match i {
            HomeItem::Drill { scenario, .. } => {
                Some(format!("{}{scenario}", crate::config::DRILL_PREFIX))
            }
            _ => None,
        })
        .collect();
    let env_value = if !app.environment.is_empty() {
        app.environment.clone()
    } else if envs.len() == 1 {
        envs[0].clone()
    } else if envs.is_empty() {
        drills.first().cloned().unwrap_or_default()
    } else {
        String::new()
    };
    let practise = match drills.first() {
        Some(d) => format!(" Or practise on the simulator: drill:SCENARIO, e.g. {d}."),
        None => String::new(),
    };
    let help = if envs.is_empty() {
        format!(
            "None is configured: add [environments.NAME] to config.toml (README, 'Against real servers').{practise}"
        )
    } else {
        format!("Configured: {}.{practise}", envs.join(", "))
    };
    let allowed: Vec<String> = envs.iter().cloned().chain(drills).collect();
    let check = if allowed.is_empty() {
        Check::Required
    } else {
        Check::OneOf(allowed)
    };
    let env_field = Field::new("Environment", check).help(help);
    let mut form = Form::new(vec![
        Field::new("Your name (journaled with every action)", Check::Required)
            .value(app.operator.clone()),
        env_field.value(env_value),
        Field::new("RTO target, minutes", Check::Minutes { required: false }).help(RTO_HELP),
        Field::new("RPO target, minutes", Check::Minutes { required: false })
            .help("Recovery point objective: how much data loss is acceptable. Empty: none."),
    ]);
    // Focus the first field that still needs typing.
    form.focus = form
        .fields
        .iter()
        .take(2)
        .position(|f| f.problem().is_some())
        .unwrap_or(2);
    // The next part of the incident (open here, or journaled by another process) keeps its
    // RTO (shown; the session takes it).
    if let Some(p) = plan.as_ref()
        && let Some((_, Some(rto), _)) = super::session::incident_for(app, p)
        && form.value(2).is_empty()
        && let Some(f) = form.fields.get_mut(2)
    {
        *f = f.clone().value(rto.to_string());
    }
    // After a failover part of the same plan, the operator confirms where this part runs.
    if let Some(after) = plan.as_ref().and_then(failover_before) {
        form.fields.push(
            Field::new(
                "Repoint roles to the new source (yes/no)",
                Check::OneOf(vec!["yes".into(), "no".into()]),
            )
            .value("yes")
            .help(format!(
                "Part {after} failed the group over: yes sends this part's source and MessageBox statements to the destination's server (journaled)."
            )),
        );
    }
    app.popups.push(Popup::Start {
        kind: StartKind::Runbook,
        target: runbook_id,
        about: title,
        form,
        plan,
    });
}

/// Selects step `i` and resets the per-step scroll positions.
pub(crate) fn select(app: &mut App, i: usize) {
    let n = app.run.as_ref().map_or(0, |r| r.steps.len());
    let i = i.min(n.saturating_sub(1));
    if i != app.selected {
        app.detail_scroll = 0;
        app.out_cursor = 0;
        app.out_offset = 0;
        app.out_col = 0;
    }
    app.selected = i;
}

fn out_width(app: &App) -> usize {
    // The output pane's inner width: the right column minus borders.
    let (w, _) = app.viewport;
    let left = (w * 38 / 100).clamp(30.min(w), 52);
    usize::from(w.saturating_sub(left).saturating_sub(2)).max(1)
}

fn out_total(app: &App) -> usize {
    app.selected_output()
        .map_or(0, |o| super::view::output::output_len(o, out_width(app)))
}

fn move_out(app: &mut App, delta: isize) {
    let total = out_total(app);
    let page = super::view::layout::output_rows_for(app).max(ROWS_PAGE_MIN);
    let cur = app.out_cursor as isize + delta;
    app.out_cursor = cur.clamp(0, total.saturating_sub(1) as isize) as usize;
    // Keep the cursor inside the window.
    if app.out_cursor < app.out_offset {
        app.out_offset = app.out_cursor;
    } else if app.out_cursor >= app.out_offset + page {
        app.out_offset = app.out_cursor + 1 - page;
    }
}

// TODO(issue 16): split (one handler per run-screen action group).
#[allow(clippy::too_many_lines)]
fn run_action(app: &mut App, a: Action) -> Vec<AppEffect> {
    let Some(run) = &app.run else {
        if matches!(a, Action::Home | Action::Back) {
            app.screen = Screen::Home;
        } else if a == Action::Quit {
            app.popups.push(Popup::Quit);
        }
        return vec![];
    };
    // A session whose values were put aside (Esc on "Runbook variables") has not started:
    // anything that would act on a step asks for them again (issue 18: it could never start,
    // and a confirmation's note was typed, then thrown away).
    if matches!(
        a,
        Action::Run
            | Action::Submit
            | Action::Confirm
            | Action::Skip
            | Action::Retry
            | Action::Verify
            | Action::SignOff
    ) && app.session.as_ref().is_some_and(|s| !s.engine.is_started())
    {
        return super::session::ask_to_start(app);
    }
    let n = run.steps.len();
    let page = super::view::layout::output_rows_for(app) as isize;
    let selected_id = run.steps.get(app.selected).map(|s| s.id.clone());
    match a {
        Action::Up | Action::Down | Action::Top | Action::Bottom => {
            let d: isize = match a {
                Action::Up => -1,
                Action::Down => 1,
                Action::Top => isize::MIN / 2,
                _ => isize::MAX / 2,
            };
            match app.focus {
                Focus::Steps => {
                    let i = (app.selected as isize)
                        .saturating_add(d)
                        .clamp(0, n.saturating_sub(1) as isize);
                    select(app, i as usize);
                }
                Focus::Detail => {
                    app.detail_scroll = (i64::from(app.detail_scroll) + d.clamp(-1000, 1000) as i64)
                        .clamp(0, 1000) as u16;
                }
                Focus::Output => move_out(app, d),
            }
        }
        Action::PageUp => move_out(app, -page),
        Action::PageDown => move_out(app, page),
        Action::Left => app.out_col = app.out_col.saturating_sub(1),
        Action::Right => {
            let cols = app.selected_output().map_or(0, |o| {
                super::view::output::output_columns(o, out_width(app), app.out_cursor)
            });
            app.out_col = (app.out_col + 1).min(cols.saturating_sub(1));
        }
        Action::FocusNext => app.focus = app.focus.next(),
        Action::FocusPrev => app.focus = app.focus.prev(),
        Action::Run | Action::Submit => {
            let Some((row, step)) = app.selected_step() else {
                return vec![];
            };
            let id = row.id.clone();
            let ask = step.ask.clone();
            match (row.mark, &step.body) {
                (StepMark::InDoubt, _) => {
                    let choice = in_doubt_first(app, &id);
                    app.popups.push(Popup::InDoubt { step: id, choice });
                }
                (StepMark::Running, _) => {
                    app.notify(Level::Info, format!("{id} is already running"))
                }
                (StepMark::Failed, _) => {
                    app.notify(
                        Level::Info,
                        format!(
                            "{id} failed: {} retries it",
                            app.keymap.hint(Mode::Run, Action::Retry)
                        ),
                    );
                }
                (m, _) if m.is_settled() => {
                    app.notify(
                        Level::Info,
                        format!(
                            "{id} {}; {} re-verifies a check",
                            m.is_phrase(),
                            app.keymap.hint(Mode::Run, Action::Verify)
                        ),
                    );
                }
                (_, StepBody::Manual(_)) => push_manual(app, id),
                // Setup choices first (with discovered values), then the step itself.
                (StepMark::Pending, _) if !ask.is_empty() => {
                    super::session::ask_variables(app, id, ask)
                }
                _ => return super::session::intent(app, Intent::Run(id)),
            }
        }
        Action::Retry => {
            if let Some(id) = selected_id {
                return super::session::intent(app, Intent::Retry(id));
            }
        }
        Action::Verify => {
            if let Some(id) = selected_id {
                return super::session::intent(app, Intent::Verify(id));
            }
        }
        Action::Skip => {
            if let Some(id) = selected_id {
                // A skip goes into the signed record: the second field (reached with Tab)
                // makes it deliberate, so a burst of keys cannot commit one.
                let form = Form::new(vec![
                    Field::new("Reason (journaled and in the report)", Check::Required).long(),
                    Field::new(
                        format!("Type {SKIP_WORD} to record the skip"),
                        Check::Equals(SKIP_WORD.into()),
                    ),
                ]);
                app.popups.push(Popup::Skip { step: id, form });
            }
        }
        Action::Reopen => {
            if let Some((row, _)) = app.selected_step() {
                let id = row.id.clone();
                if matches!(row.mark, StepMark::Skipped | StepMark::Done) {
                    let form = Form::new(vec![
                        Field::new(
                            "Why reopen it (journaled and in the report)",
                            Check::Required,
                        )
                        .long(),
                    ]);
                    app.popups.push(Popup::Reopen { step: id, form });
                } else {
                    app.notify(
                        Level::Info,
                        format!(
                            "{id} is {}: only a skipped or done step can be reopened",
                            row.mark.word()
                        ),
                    );
                }
            }
        }
        Action::CloseSession => {
            let open = app
                .session
                .as_ref()
                .map(|s| s.engine.open_steps())
                .unwrap_or_default();
            let check = if open.is_empty() {
                Check::Any
            } else {
                Check::Required
            };
            let label = if open.is_empty() {
                "Note (optional)"
            } else {
                "Reason for closing with steps open (journaled)"
            };
            let mut fields = vec![Field::new(label, check).long()];
            // Closing with work left ends the session for good: make it deliberate.
            if !open.is_empty() {
                fields.push(Field::new(
                    format!("Type {CLOSE_WORD} to close with steps open"),
                    Check::Equals(CLOSE_WORD.into()),
                ));
            }
            let form = Form::new(fields);
            app.popups.push(Popup::Close { open, form });
        }
        Action::Confirm => {
            if let Some((row, step)) = app.selected_step() {
                let id = row.id.clone();
                if matches!(step.body, StepBody::Manual(_)) && !row.mark.is_settled() {
                    push_manual(app, id);
                } else if row.mark == StepMark::InDoubt {
                    let choice = in_doubt_first(app, &id);
                    app.popups.push(Popup::InDoubt { step: id, choice });
                } else {
                    app.notify(
                        Level::Info,
                        "only manual steps are confirmed by hand; Enter runs this one",
                    );
                }
            }
        }
        Action::ToggleDryRun => {
            // Dry run is fixed when the session starts (it is journaled); say which it is,
            // never claim it changed.
            let msg = if app.dry_run {
                "DRY-RUN is on for this session: statements are shown and journaled, nothing is sent"
            } else {
                "DRY-RUN is off: statements are sent. For a dry run start a new session with --dry-run"
            };
            app.notify(Level::Info, msg);
        }
        Action::Copy => {
            if let Some(text) = copy_text(app) {
                return vec![AppEffect::Copy(text)];
            }
            app.notify(Level::Info, "nothing to copy here");
        }
        Action::Inspect => inspect(app),
        Action::Find => {
            let form = Form::new(vec![Field::new("Find", Check::Any)]);
            app.popups.push(Popup::Find { form, selected: 0 });
        }
        Action::FindNext => {
            if let Some(q) = app.last_find.clone() {
                let m = super::view::find_matches(app, &q);
                if let Some((i, _)) = m
                    .iter()
                    .find(|(i, _)| *i > app.selected)
                    .or_else(|| m.first())
                {
                    let i = *i;
                    select(app, i);
                    app.focus = Focus::Steps;
                } else {
                    app.notify(Level::Info, format!("no step matches “{q}”"));
                }
            }
        }
        Action::NextFailed => {
            let next = run
                .steps
                .iter()
                .enumerate()
                .skip(app.selected + 1)
                .chain(run.steps.iter().enumerate().take(app.selected + 1))
                .find(|(_, s)| s.mark.needs_attention())
                .map(|(i, _)| i);
            match next {
                Some(i) => select(app, i),
                None => app.notify(Level::Ok, "no failed or in-doubt steps"),
            }
        }
        Action::SignOff => {
            // The first signer is usually the operator; a second signer types their own name
            // (pre-filling it would let the operator sign twice with one Enter).
            let name = if run.signed_off.is_none() {
                app.operator.clone()
            } else {
                String::new()
            };
            let review = run.runbook.is_review();
            let mut fields = vec![
                Field::new("Name", Check::Required).value(name.clone()),
                Field::new("Role (e.g. DBA on call, BizTalk admin)", Check::Required),
                Field::new(
                    if review {
                        "Comment: findings, conditions (optional)"
                    } else {
                        "Comment (optional)"
                    },
                    Check::Any,
                )
                .long(),
            ];
            if review {
                fields.push(Field::new(
                    "Next review date, YYYY-MM-DD (optional)",
                    Check::Any,
                ));
            }
            let mut form = Form::new(fields);
            form.focus = if name.is_empty() { 0 } else { 1 };
            app.popups.push(Popup::SignOff { form });
        }
        Action::Help => app.popups.push(Popup::Help { scroll: 0 }),
        Action::Quit => app.popups.push(Popup::Quit),
        Action::Home => app.screen = Screen::Home,
        Action::Back => app.focus = Focus::Steps,
        _ => {}
    }
    vec![]
}

pub(crate) fn push_manual(app: &mut App, step: String) {
    let evidence_help = app
        .run
        .as_ref()
        .and_then(|r| r.runbook.step(&step))
        .and_then(|s| match &s.body {
            StepBody::Manual(m) => Some(m.evidence.clone()),
            _ => None,
        })
        .unwrap_or_default();
    // The engine refuses a confirmation without evidence when the step asks for some: say
    // so in the form, where the typed note is kept, not after the popup has closed.
    let evidence_check = if evidence_help.trim().is_empty() {
        Check::Any
    } else {
        Check::Required
    };
    let form = Form::new(vec![
        Field::new("Note (what you did, anything unusual)", Check::Required).long(),
        Field::new("Evidence (output, ticket, file path)", evidence_check)
            .help(evidence_help)
            .long(),
        // The report's "By" names who did it, not who held the keyboard.
        Field::new(
            format!("Done by (empty: {})", app.operator.trim()),
            Check::Any,
        ),
    ]);
    app.popups.push(Popup::ManualConfirm { step, form });
}

/// `DECLARE`s for the parameters then the statement, secrets replaced.
pub fn statement_script(st: &Statement, secret: &dyn Fn(&str) -> bool) -> String {
    let mut s = format!("-- server role: {} · database: {}\n", st.role, st.database);
    for (name, p) in &st.params {
        let v = if secret(name) {
            "N'<secret>'".to_string()
        } else {
            p.to_string()
        };
        s.push_str(&format!("DECLARE @{name} nvarchar(4000) = {v};\n"));
    }
    s.push_str(&st.sql);
    s
}

fn copy_text(app: &App) -> Option<String> {
    let run = app.run.as_ref()?;
    let (row, step) = app.selected_step()?;
    if app.focus == Focus::Output
        && let Some(out) = app.selected_output()
    {
        let w = out_width(app);
        if let Some((_, v)) = super::view::output::output_cell(out, w, app.out_cursor, app.out_col)
        {
            return Some(v);
        }
        if let Some(t) = super::view::output::output_line_text(out, w, app.out_cursor) {
            return Some(t);
        }
    }
    let vars = |n: &str| run.vars.get(n).cloned();
    match &step.body {
        StepBody::Manual(m) => {
            let cmds: Vec<String> = m
                .commands
                .iter()
                .map(|c| crate::runbook::expr::render_text(&c.run, &vars))
                .collect();
            if cmds.is_empty() {
                Some(crate::runbook::expr::render_text(&m.instructions, &vars))
            } else {
                Some(cmds.join("\n"))
            }
        }
        StepBody::Sql(_) | StepBody::Check(_) => {
            if let Some(st) = run.outputs.get(&row.id).and_then(|o| o.statement.as_ref()) {
                return Some(statement_script(st, &|n| run.is_secret(n)));
            }
            step.statement().map(|(_, _, sql, _, _)| sql.to_string())
        }
        StepBody::Generate(g) => Some(crate::runbook::expr::render_text(&g.output, &vars)),
    }
}

fn inspect(app: &mut App) {
    let Some((row, step)) = app.selected_step() else {
        return;
    };
    let id = row.id.clone();
    let title = step.title.clone();
    let w = out_width(app);
    let (t, text) = match app.selected_output() {
        Some(out) if app.focus == Focus::Output => {
            match super::view::output::output_cell(out, w, app.out_cursor, app.out_col) {
                Some((col, v)) => (format!("{id} · {col}"), v),
                None => (
                    id.clone(),
                    super::view::output::output_line_text(out, w, app.out_cursor)
                        .unwrap_or_default(),
                ),
            }
        }
        Some(out) if out.error.is_some() => {
            let e = out
                .error
                .as_ref()
                .map(|e| {
                    format!(
                        "{}\n\nWhat to do next:\n{}",
                        e.message,
                        e.next
                            .iter()
                            .map(|n| format!("• {n}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    )
                })
                .unwrap_or_default();
            (format!("{id} · error"), e)
        }
        _ => {
            let sql = step
                .statement()
                .map_or_else(|| step.why.clone(), |s| s.2.to_string());
            (format!("{id} · {title}"), sql)
        }
    };
    app.popups.push(Popup::Inspect {
        title: t,
        text,
        scroll: 0,
    });
}

// TODO(issue 16): split (one handler per popup kind).
#[allow(clippy::too_many_lines)]
fn popup_action(app: &mut App, a: Action) -> Vec<AppEffect> {
    // How far the help can scroll: its rows (plus the popup-keys block and footer, which
    // may wrap) minus what fits on screen.
    let help_mode = if app.screen == Screen::Home {
        Mode::Home
    } else {
        Mode::Run
    };
    let help_rows = i32::try_from(app.keymap.help_rows(help_mode).len()).unwrap_or(100) + 16;
    let help_max = (help_rows - i32::from(app.viewport.1.saturating_sub(4))).max(0);
    let Some(top) = app.popups.last_mut() else {
        return vec![];
    };
    match a {
        Action::Back => {
            let put_aside = matches!(app.popups.pop(), Some(Popup::Variables { .. }));
            if put_aside {
                app.ask_then_run = None;
            }
            if put_aside && app.session.as_ref().is_some_and(|s| !s.engine.is_started()) {
                app.notify(
                    Level::Info,
                    format!(
                        "the session has not started: {} asks for its values again",
                        app.keymap.hint(Mode::Run, Action::Run)
                    ),
                );
            }
            return vec![];
        }
        Action::NextField => {
            if let Some(f) = top.form_mut() {
                f.next();
            }
            return vec![];
        }
        Action::PrevField => {
            if let Some(f) = top.form_mut() {
                f.prev();
            }
            return vec![];
        }
        Action::Up | Action::Down | Action::PageUp | Action::PageDown => {
            let d: i32 = match a {
                Action::Up => -1,
                Action::Down => 1,
                Action::PageUp => -10,
                _ => 10,
            };
            match top {
                Popup::InDoubt { choice, step } => {
                    let first = i32::from(
                        !app.session
                            .as_ref()
                            .is_some_and(|s| s.engine.can_verify(step)),
                    );
                    *choice = (*choice as i32 + d.signum()).clamp(first, 2) as usize;
                }
                Popup::TypedConfirm {
                    scroll, statement, ..
                } if matches!(a, Action::PageUp | Action::PageDown) => {
                    let max = i32::try_from(statement.lines().count()).unwrap_or(i32::MAX);
                    *scroll = (i32::from(*scroll) + d).clamp(0, max.saturating_sub(1)) as u16;
                }
                Popup::Help { scroll } => {
                    *scroll = (i32::from(*scroll) + d).clamp(0, help_max) as u16;
                }
                Popup::Inspect { scroll, text, .. } => {
                    let max = i32::try_from(text.lines().count()).unwrap_or(2000);
                    *scroll = (i32::from(*scroll) + d).clamp(0, max.max(1)) as u16;
                }
                Popup::Find { selected, .. } => {
                    *selected = (*selected as i32 + d.signum()).clamp(0, 9) as usize;
                }
                Popup::Plan { plan, part } => {
                    let last = plan.parts.len().saturating_sub(1) as i32;
                    *part = (*part as i32 + d.signum()).clamp(0, last.max(0)) as usize;
                }
                _ => {
                    if let Some(f) = top.form_mut() {
                        if d > 0 { f.next() } else { f.prev() }
                    }
                }
            }
            return vec![];
        }
        Action::Submit => {}
        _ => return vec![],
    }
    // Submit: validate, close, and act.
    if !matches!(top, Popup::Find { .. })
        && let Some(f) = top.form_mut()
        && f.check().is_err()
    {
        return vec![];
    }
    let Some(p) = app.popups.pop() else {
        return vec![];
    };
    match p {
        Popup::Quit => vec![AppEffect::Quit],
        Popup::Help { .. } | Popup::Inspect { .. } | Popup::Message { .. } => vec![],
        Popup::CancelRunning { step } => super::session::intent(app, Intent::Cancel(step)),
        Popup::Variables { form, names } => {
            let vals = names
                .into_iter()
                .zip(form.fields.iter().map(super::form::Field::answer))
                .collect();
            let started = app.session.as_ref().is_some_and(|s| s.engine.is_started());
            let mut fx = super::session::intent(app, Intent::SetVariables(vals));
            // A step's setup choices were asked first: now run it.
            if let Some(step) = app.ask_then_run.take() {
                fx.extend(super::session::intent(app, Intent::Run(step)));
            }
            // The variables decide which steps apply: place a plan's selection again.
            if !started {
                super::session::select_plan_start(app);
            }
            fx
        }
        Popup::TypedConfirm { step, form, .. } => super::session::intent(
            app,
            Intent::ConfirmDestructive {
                step,
                typed: form.value(0).to_string(),
            },
        ),
        Popup::SecondOperator {
            step,
            first,
            mut form,
        } => {
            let by = form.value(0).trim().to_string();
            // A rejection keeps the popup open with the reason in it.
            if by.trim().eq_ignore_ascii_case(first.trim()) {
                form.error = Some(format!(
                    "{first} confirmed it: the approval must come from a different person"
                ));
                app.popups.push(Popup::SecondOperator { step, first, form });
                return vec![];
            }
            let fx = super::session::intent(
                app,
                Intent::SecondOperator {
                    step: step.clone(),
                    by,
                },
            );
            // Refused (nothing journaled): stay open and say why.
            if !fx.iter().any(|e| matches!(e, AppEffect::Journal(_))) {
                form.error = app.notices.last().map(|n| n.text.clone());
                app.popups.push(Popup::SecondOperator { step, first, form });
            }
            fx
        }
        Popup::Reopen { step, form } => super::session::intent(
            app,
            Intent::Reopen {
                step,
                reason: form.value(0).trim().to_string(),
            },
        ),
        Popup::Close { form, .. } => super::session::intent(
            app,
            Intent::Close {
                reason: form.value(0).trim().to_string(),
            },
        ),
        Popup::ManualConfirm { step, form } => super::session::intent(
            app,
            Intent::ConfirmManual {
                step,
                note: form.value(0).trim().to_string(),
                evidence: form.value(1).trim().to_string(),
                by: form.value(2).trim().to_string(),
            },
        ),
        Popup::Skip { step, form } => super::session::intent(
            app,
            Intent::Skip {
                step,
                reason: form.value(0).trim().to_string(),
            },
        ),
        Popup::SignOff { form } => super::session::intent(
            app,
            Intent::SignOff {
                name: form.value(0).trim().to_string(),
                role: form.value(1).trim().to_string(),
                comment: form.value(2).trim().to_string(),
                next_review: form.value(3).trim().to_string(),
            },
        ),
        Popup::Find { form, selected } => {
            let q = form.value(0).to_string();
            let m = super::view::find_matches(app, &q);
            if let Some((i, _)) = m.get(selected.min(m.len().saturating_sub(1))) {
                let i = *i;
                select(app, i);
                app.focus = Focus::Steps;
            } else if !q.is_empty() {
                app.notify(Level::Info, format!("no step matches “{q}”"));
            }
            if !q.is_empty() {
                app.last_find = Some(q);
            }
            vec![]
        }
        Popup::InDoubt { step, choice } => match choice {
            0 => super::session::intent(app, Intent::ResolveVerify(step)),
            1 => super::session::intent(app, Intent::ResolveRerun(step)),
            _ => {
                let form = Form::new(vec![
                    Field::new("How you verified it completed (journaled)", Check::Required).long(),
                ]);
                app.popups.push(Popup::MarkDone { step, form });
                vec![]
            }
        },
        Popup::MarkDone { step, form } => super::session::intent(
            app,
            Intent::ResolveMarkDone {
                step,
                note: form.value(0).trim().to_string(),
            },
        ),
        Popup::Plan { plan, part } => {
            let (n, startable) = plan.parts.get(part).map_or((String::new(), false), |p| {
                (p.runbook.clone(), p.startable())
            });
            let title = plan
                .parts
                .get(part)
                .map(|p| p.runbook_title.clone())
                .unwrap_or_default();
            // The plan stays underneath: Esc on the Start popup comes back to it.
            let run = PlanRun {
                plan: std::sync::Arc::clone(&plan),
                part,
            };
            app.popups.push(Popup::Plan { plan, part });
            if startable {
                push_start(app, n, title, Some(run));
            } else {
                app.notify(
                    Level::Error,
                    format!("this build has no runbook `{n}`: the failure guide names it but it cannot be started"),
                );
            }
            vec![]
        }
        Popup::Start {
            kind,
            target,
            form,
            plan,
            ..
        } => {
            let mins = |s: &str| s.trim().parse::<u32>().ok();
            let rto = mins(form.value(if kind == StartKind::Drill { 1 } else { 2 }));
            let req = match kind {
                StartKind::Runbook => {
                    app.operator = form.value(0).trim().to_string();
                    // The configured spelling (the field accepts any case). The status bar
                    // shows it once the session opens.
                    let typed = form.value(1).trim();
                    let environment = match form.fields.get(1).map(|f| &f.check) {
                        Some(Check::OneOf(allowed)) => allowed
                            .iter()
                            .find(|e| e.eq_ignore_ascii_case(typed))
                            .cloned(),
                        _ => None,
                    }
                    .unwrap_or_else(|| typed.to_string());
                    let repoint = form.fields.get(REPOINT_FIELD).is_some_and(|_| {
                        form.value(REPOINT_FIELD).trim().eq_ignore_ascii_case("yes")
                    });
                    if repoint {
                        app.start_notes.push(format!(
                            "roles repointed for this part of the incident: the source and MessageBox roles go to the destination's server, the group's SQL Server since the failover (confirmed by {})",
                            app.operator
                        ));
                    }
                    Request::Start {
                        runbook_id: target,
                        environment,
                        operator: app.operator.clone(),
                        rto_minutes: rto,
                        rpo_minutes: mins(form.value(3)),
                        repoint,
                    }
                }
                StartKind::Drill => {
                    app.operator = form.value(0).trim().to_string();
                    Request::Drill {
                        scenario: target,
                        operator: app.operator.clone(),
                        rto_minutes: rto,
                    }
                }
            };
            if let Some(m) = rto {
                app.rto = Some(Duration::minutes(i64::from(m)));
            }
            app.pending_plan = plan;
            vec![AppEffect::Open(req)]
        }
    }
}
