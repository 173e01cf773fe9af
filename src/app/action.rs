//! What a key can ask for. Keymap files name these in snake_case.

use serde::{Deserialize, Serialize};

/// An operator intent produced by the keymap (or by the mouse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    Left,
    Right,
    FocusNext,
    FocusPrev,
    /// Run the selected step (or open/submit the selected item on Home).
    Run,
    Skip,
    Confirm,
    Retry,
    Verify,
    ToggleDryRun,
    Copy,
    /// Show the whole value of the selected output cell.
    Inspect,
    Find,
    FindNext,
    NextFailed,
    SignOff,
    Help,
    Quit,
    /// Cancel the running statement (asks first).
    Cancel,
    Back,
    Submit,
    NextField,
    PrevField,
    ToggleTheme,
    Home,
    /// Open a skipped or done step again (asks why).
    Reopen,
    /// Close the session (asks for a reason when steps are open).
    CloseSession,
}

impl Action {
    pub const ALL: [Action; 33] = [
        Action::Up,
        Action::Down,
        Action::Top,
        Action::Bottom,
        Action::PageUp,
        Action::PageDown,
        Action::Left,
        Action::Right,
        Action::FocusNext,
        Action::FocusPrev,
        Action::Run,
        Action::Skip,
        Action::Confirm,
        Action::Retry,
        Action::Verify,
        Action::ToggleDryRun,
        Action::Copy,
        Action::Inspect,
        Action::Find,
        Action::FindNext,
        Action::NextFailed,
        Action::SignOff,
        Action::Reopen,
        Action::CloseSession,
        Action::Help,
        Action::Quit,
        Action::Cancel,
        Action::Back,
        Action::Submit,
        Action::NextField,
        Action::PrevField,
        Action::ToggleTheme,
        Action::Home,
    ];

    /// One line for the help popup.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Up => "move up",
            Action::Down => "move down",
            Action::Top => "go to the first item",
            Action::Bottom => "go to the last item",
            Action::PageUp => "scroll the output up a page",
            Action::PageDown => "scroll the output down a page",
            Action::Left => "scroll the output left / previous column",
            Action::Right => "scroll the output right / next column",
            Action::FocusNext => "focus the next pane",
            Action::FocusPrev => "focus the previous pane",
            Action::Run => "run the selected step / open the selected item",
            Action::Skip => "skip the selected step (asks a reason and SKIP)",
            Action::Confirm => "confirm a manual step as done (note + evidence)",
            Action::Retry => "retry the selected failed step",
            Action::Verify => "re-verify the selected step",
            Action::ToggleDryRun => {
                "say whether DRY-RUN is on (chosen with --dry-run when a session starts)"
            }
            Action::Copy => "copy the step's command / SQL / cell to the clipboard",
            Action::Inspect => "show the whole value of the selected cell",
            Action::Find => "find a step by text",
            Action::FindNext => "next match of the last find",
            Action::NextFailed => "jump to the next failed or in-doubt step",
            Action::SignOff => "sign off the run (name and role)",
            Action::Help => "show this help",
            Action::Quit => "quit (the journal is always safe)",
            Action::Cancel => "cancel the running statement (asks first)",
            Action::Back => "close the popup / go back",
            Action::Submit => "submit the popup",
            Action::NextField => "next field",
            Action::PrevField => "previous field",
            Action::ToggleTheme => "switch theme (dark / high contrast)",
            Action::Home => "go to the home screen",
            Action::Reopen => "reopen a skipped or done step (asks why)",
            Action::CloseSession => "close the session (stops its clock)",
        }
    }
}
