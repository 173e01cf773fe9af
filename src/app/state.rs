//! Everything the screen shows. The view reads only this; `update` is the only writer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::view::theme::Theme;
use crate::guide::Plan;
use crate::runbook::expr::AssertOutcome;
use crate::runbook::model::{Runbook, Step};
use btsdr_types::Role;
use btsdr_types::{Progress, ResultSet, Statement};

use super::form::Form;
use super::keymap::{Keymap, Mode};

/// The screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Home,
    Run,
}

/// Which pane of the run screen takes the arrow keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Steps,
    Detail,
    Output,
}

impl Focus {
    #[must_use]
    pub fn next(self) -> Focus {
        match self {
            Focus::Steps => Focus::Detail,
            Focus::Detail => Focus::Output,
            Focus::Output => Focus::Steps,
        }
    }
    #[must_use]
    pub fn prev(self) -> Focus {
        match self {
            Focus::Steps => Focus::Output,
            Focus::Detail => Focus::Steps,
            Focus::Output => Focus::Detail,
        }
    }
}

/// A step's state as the operator sees it (mirrors the engine's states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepMark {
    Pending,
    Blocked,
    NotApplicable,
    Running,
    Passed,
    Failed,
    Skipped,
    Done,
    InDoubt,
    /// Dry run: the statement was shown, not sent.
    WouldRun,
}

impl StepMark {
    /// A fixed-width label that reads without colour.
    pub fn label(self) -> &'static str {
        match self {
            StepMark::Pending => "[    ]",
            StepMark::Blocked => "[WAIT]",
            StepMark::NotApplicable => "[N/A ]",
            StepMark::Running => "[RUN ]",
            StepMark::Passed => "[PASS]",
            StepMark::Failed => "[FAIL]",
            StepMark::Skipped => "[SKIP]",
            StepMark::Done => "[DONE]",
            StepMark::InDoubt => "[????]",
            StepMark::WouldRun => "[DRY ]",
        }
    }
    pub fn symbol(self) -> &'static str {
        match self {
            StepMark::Pending => "·",
            StepMark::Blocked => "…",
            StepMark::NotApplicable => "-",
            StepMark::Running => "▶",
            StepMark::Passed => "✔",
            StepMark::Failed => "✖",
            StepMark::Skipped => "↷",
            StepMark::Done => "✔",
            StepMark::InDoubt => "?",
            StepMark::WouldRun => "○",
        }
    }
    /// "is passed", "was shown, not sent (dry run)": the state after a step id, in a sentence.
    pub fn is_phrase(self) -> String {
        match self {
            StepMark::WouldRun => "was shown, not sent (dry run)".to_string(),
            m => format!("is {}", m.word()),
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            StepMark::Pending => "pending",
            StepMark::Blocked => "waiting",
            StepMark::NotApplicable => "not applicable",
            StepMark::Running => "running",
            StepMark::Passed => "passed",
            StepMark::Failed => "failed",
            StepMark::Skipped => "skipped",
            StepMark::Done => "done",
            StepMark::InDoubt => "in doubt",
            StepMark::WouldRun => "would run (dry run)",
        }
    }
    /// Counts towards progress.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            StepMark::Passed
                | StepMark::Done
                | StepMark::Skipped
                | StepMark::NotApplicable
                | StepMark::WouldRun
        )
    }
    pub fn needs_attention(self) -> bool {
        matches!(self, StepMark::Failed | StepMark::InDoubt)
    }
}

/// One step row of the run screen.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub id: String,
    pub section: usize,
    pub mark: StepMark,
    /// Why it is blocked / skipped / failed, or the operator's note.
    pub note: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub attempts: u32,
}

/// Level of a log line in the output pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Ok,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub at: DateTime<Utc>,
    pub level: Level,
    pub text: String,
}

/// An error explained: what happened and what to do next.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorView {
    pub message: String,
    pub next: Vec<String>,
}

/// What the selected step produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepOutput {
    pub statement: Option<Statement>,
    pub error: Option<ErrorView>,
    pub asserts: Vec<AssertOutcome>,
    pub sets: Vec<ResultSet>,
    pub rows_affected: Vec<u64>,
    pub log: Vec<LogLine>,
    pub progress: Option<Progress>,
    pub started_at: Option<DateTime<Utc>>,
}

/// Connection health per server role, shown in the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    Unknown,
    Connecting,
    Up,
    Down(String),
}

/// A transient message at the bottom of the screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub level: Level,
    pub text: String,
    pub until: DateTime<Utc>,
}

/// A run in progress (or finished) on the run screen.
#[derive(Debug, Clone)]
pub struct RunView {
    pub runbook: Arc<Runbook>,
    pub session_id: String,
    pub steps: Vec<StepRow>,
    pub outputs: HashMap<String, StepOutput>,
    /// Variable values; secrets are kept here but only ever shown masked.
    pub vars: BTreeMap<String, String>,
    pub signed_off: Option<SignOff>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SignOff {
    pub name: String,
    pub role: String,
    pub at: DateTime<Utc>,
}

impl RunView {
    /// All steps pending, in document order.
    pub fn new(runbook: Arc<Runbook>, session_id: impl Into<String>) -> RunView {
        let steps = runbook
            .sections
            .iter()
            .enumerate()
            .flat_map(|(si, sec)| {
                sec.steps.iter().map(move |st| StepRow {
                    id: st.id.clone(),
                    section: si,
                    mark: StepMark::Pending,
                    note: None,
                    started_at: None,
                    finished_at: None,
                    attempts: 0,
                })
            })
            .collect();
        RunView {
            runbook,
            session_id: session_id.into(),
            steps,
            outputs: HashMap::new(),
            vars: BTreeMap::new(),
            signed_off: None,
        }
    }

    pub fn step(&self, i: usize) -> Option<(&StepRow, &Step)> {
        let row = self.steps.get(i)?;
        let st = self
            .runbook
            .sections
            .get(row.section)?
            .steps
            .iter()
            .find(|s| s.id == row.id)?;
        Some((row, st))
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// (settled, total) for one section or, with `None`, the whole run.
    pub fn progress(&self, section: Option<usize>) -> (usize, usize) {
        let it = self
            .steps
            .iter()
            .filter(|s| section.is_none_or(|x| s.section == x));
        // Steps that do not apply count neither as work to do nor as work done.
        let (mut done, mut total) = (0, 0);
        for s in it.filter(|s| s.mark != StepMark::NotApplicable) {
            total += 1;
            if s.mark.is_settled() {
                done += 1;
            }
        }
        (done, total)
    }

    pub fn is_secret(&self, var: &str) -> bool {
        self.runbook
            .variable(var)
            .is_some_and(|v| v.kind == crate::runbook::model::VarKind::Secret)
    }

    /// A variable's value for display (secrets masked).
    pub fn shown_var(&self, name: &str) -> Option<String> {
        let v = self.vars.get(name)?;
        Some(if self.is_secret(name) {
            "••••••".to_string()
        } else {
            v.clone()
        })
    }

    pub fn all_settled(&self) -> bool {
        self.steps.iter().all(|s| s.mark.is_settled())
    }
}

/// Which popup and what it holds. The top of `App::popups` gets the keys.
#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    /// Runbook variables before the run starts (or when a step needs one).
    Variables {
        form: Form,
        names: Vec<String>,
    },
    /// Two-person rule: a second operator types their name.
    SecondOperator {
        step: String,
        first: String,
        form: Form,
    },
    /// A destructive step: type the word; shows the exact statement and server.
    TypedConfirm {
        step: String,
        word: String,
        server: String,
        statement: String,
        form: Form,
        /// First statement line shown (PgUp/PgDn scroll it).
        scroll: u16,
    },
    /// A manual step done: note and evidence.
    ManualConfirm {
        step: String,
        form: Form,
    },
    Skip {
        step: String,
        form: Form,
    },
    SignOff {
        form: Form,
    },
    /// Reopen a skipped or done step: why (journaled).
    Reopen {
        step: String,
        form: Form,
    },
    /// Close the session; `open` lists the steps still open (a reason is then required).
    Close {
        open: Vec<String>,
        form: Form,
    },
    Quit,
    Help {
        scroll: u16,
    },
    Find {
        form: Form,
        selected: usize,
    },
    /// Ctrl-C while a statement runs.
    CancelRunning {
        step: String,
    },
    /// After a crash: the step started but its outcome is unknown.
    InDoubt {
        step: String,
        choice: usize,
    },
    /// In doubt → mark done: how the operator verified it.
    MarkDone {
        step: String,
        form: Form,
    },
    /// A value too wide for its column, shown whole.
    Inspect {
        title: String,
        text: String,
        scroll: u16,
    },
    /// Start a runbook or a drill from Home.
    Start {
        kind: StartKind,
        /// The runbook id or the drill scenario (not editable here).
        target: String,
        /// What `target` is, in words (runbook title / scenario description).
        about: String,
        form: Form,
        /// Started from a failure plan: which part.
        plan: Option<PlanRun>,
    },
    /// "Something failed?": a failure class's plan; Enter starts the chosen part.
    Plan {
        plan: Arc<Plan>,
        part: usize,
    },
    Message {
        title: String,
        text: String,
        error: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartKind {
    Runbook,
    Drill,
}

impl Popup {
    /// Popups with text fields take printable keys.
    pub fn form(&self) -> Option<&Form> {
        match self {
            Popup::Variables { form, .. }
            | Popup::TypedConfirm { form, .. }
            | Popup::ManualConfirm { form, .. }
            | Popup::Skip { form, .. }
            | Popup::SignOff { form }
            | Popup::Reopen { form, .. }
            | Popup::Close { form, .. }
            | Popup::Find { form, .. }
            | Popup::SecondOperator { form, .. }
            | Popup::MarkDone { form, .. }
            | Popup::Start { form, .. } => Some(form),
            _ => None,
        }
    }
    pub fn form_mut(&mut self) -> Option<&mut Form> {
        match self {
            Popup::Variables { form, .. }
            | Popup::TypedConfirm { form, .. }
            | Popup::ManualConfirm { form, .. }
            | Popup::Skip { form, .. }
            | Popup::SignOff { form }
            | Popup::Reopen { form, .. }
            | Popup::Close { form, .. }
            | Popup::Find { form, .. }
            | Popup::SecondOperator { form, .. }
            | Popup::MarkDone { form, .. }
            | Popup::Start { form, .. } => Some(form),
            _ => None,
        }
    }
}

/// An entry of the home screen list.
#[derive(Debug, Clone, PartialEq)]
pub enum HomeItem {
    /// An unfinished session found in the journal directory.
    Resume {
        session_id: String,
        runbook: String,
        started: String,
        summary: String,
    },
    Start {
        runbook_id: String,
        title: String,
    },
    Drill {
        scenario: String,
        title: String,
    },
    Report {
        path: String,
        title: String,
    },
    /// A failure class of the guide (`btsdr recover`): opens its plan.
    Failure(Arc<Plan>),
}

/// A failure plan being followed: the plan and the part (runbook) started from it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRun {
    pub plan: Arc<Plan>,
    pub part: usize,
}

impl PlanRun {
    pub fn current(&self) -> Option<&crate::guide::PlanPart> {
        self.plan.parts.get(self.part)
    }
}

impl HomeItem {
    pub fn group(&self) -> &'static str {
        match self {
            HomeItem::Resume { .. } => "Resume an unfinished session",
            HomeItem::Failure(_) => "Something failed? Choose what failed",
            HomeItem::Start { .. } => "Start a runbook",
            HomeItem::Drill { .. } => "Start a drill (simulated servers, nothing real is touched)",
            HomeItem::Report { .. } => "Recent reports",
        }
    }
}

/// The root state.
#[derive(Debug)]
pub struct App {
    pub screen: Screen,
    pub now: DateTime<Utc>,
    pub keymap: Keymap,
    pub theme: Theme,
    pub no_color: bool,
    pub environment: String,
    /// Environment names in the configuration (for the Start popup and the status bar).
    pub environments: Vec<String>,
    pub operator: String,
    /// The failure plan the open run belongs to (shown on the run screen).
    pub plan: Option<PlanRun>,
    /// The plan part a Start request was made for; applied when that session opens.
    pub pending_plan: Option<PlanRun>,
    /// Failure-plan parts found in the journals when Home was built: a later part joins the
    /// incident an earlier one declared even if that one ran in another process.
    pub plan_history: Vec<crate::journal::incident::PlanPart>,
    /// Earlier sessions' step durations (time guidance; empty: no estimates shown).
    pub step_history: crate::estimate::History,
    /// Notes the next session journals as soon as it starts (a repoint the operator confirmed).
    pub start_notes: Vec<String>,
    pub declared_at: Option<DateTime<Utc>>,
    pub rto: Option<Duration>,
    pub rpo: Option<Duration>,
    pub drill: bool,
    pub dry_run: bool,
    pub conns: BTreeMap<Role, ConnState>,
    pub home: Vec<HomeItem>,
    pub home_selected: usize,
    pub run: Option<RunView>,
    /// The engine behind `run`.
    pub session: Option<super::session::Session>,
    pub selected: usize,
    pub focus: Focus,
    pub detail_scroll: u16,
    /// Cursor line in the output pane and the first line shown.
    pub out_cursor: usize,
    pub out_offset: usize,
    /// Selected column of the result table, for `inspect` and horizontal scrolling.
    pub out_col: usize,
    pub popups: Vec<Popup>,
    pub notices: Vec<Notice>,
    pub last_find: Option<String>,
    /// Terminal size as last reported, for page sizes.
    pub viewport: (u16, u16),
    pub quit: bool,
    /// The step whose `ask` popup is open: it runs once the values are submitted.
    pub ask_then_run: Option<String>,
}

impl App {
    pub fn new(now: DateTime<Utc>) -> App {
        let no_color = Theme::no_color_env();
        App {
            screen: Screen::Home,
            now,
            keymap: Keymap::default(),
            theme: Theme::by_name("dark", no_color),
            no_color,
            environment: String::new(),
            environments: Vec::new(),
            operator: String::new(),
            plan: None,
            pending_plan: None,
            plan_history: Vec::new(),
            step_history: Default::default(),
            start_notes: Vec::new(),
            declared_at: None,
            rto: None,
            rpo: None,
            drill: false,
            dry_run: false,
            conns: BTreeMap::new(),
            home: Vec::new(),
            home_selected: 0,
            run: None,
            session: None,
            selected: 0,
            focus: Focus::Steps,
            detail_scroll: 0,
            out_cursor: 0,
            out_offset: 0,
            out_col: 0,
            popups: Vec::new(),
            notices: Vec::new(),
            last_find: None,
            viewport: (100, 30),
            quit: false,
            ask_then_run: None,
        }
    }

    /// The keymap mode for the current screen and popup.
    pub fn mode(&self) -> Mode {
        if !self.popups.is_empty() {
            Mode::Popup
        } else {
            match self.screen {
                Screen::Home => Mode::Home,
                Screen::Run => Mode::Run,
            }
        }
    }

    pub fn selected_step(&self) -> Option<(&StepRow, &Step)> {
        self.run.as_ref()?.step(self.selected)
    }

    pub fn selected_output(&self) -> Option<&StepOutput> {
        let run = self.run.as_ref()?;
        let row = run.steps.get(self.selected)?;
        run.outputs.get(&row.id)
    }

    pub fn running_step(&self) -> Option<&StepRow> {
        self.run
            .as_ref()?
            .steps
            .iter()
            .find(|s| s.mark == StepMark::Running)
    }

    /// Time since the disaster was declared.
    /// Time since the declaration; it stops when the session is closed or aborted.
    pub fn elapsed(&self) -> Option<Duration> {
        let end = self
            .session
            .as_ref()
            .and_then(|s| s.engine.state().ended_at)
            .unwrap_or(self.now);
        self.declared_at.map(|d| end - d)
    }

    /// A toast, kept in the selected step's log on the run screen (a toast goes away; the
    /// log keeps what it said).
    pub fn notify(&mut self, level: Level, text: impl Into<String>) {
        let text = text.into();
        let secs = match level {
            Level::Error => 12,
            Level::Warn => 8,
            _ => 4,
        };
        if self.screen == Screen::Run
            && let Some(run) = self.run.as_mut()
            && let Some(row) = run.steps.get(self.selected)
        {
            let id = row.id.clone();
            run.outputs.entry(id).or_default().log.push(LogLine {
                at: self.now,
                level,
                text: text.clone(),
            });
        }
        self.notices.push(Notice {
            level,
            text,
            until: self.now + Duration::seconds(secs),
        });
        // Keep the last few only.
        if self.notices.len() > 3 {
            let drop = self.notices.len() - 3;
            self.notices.drain(..drop);
        }
    }
}
