//! Application state and its pure update function.
//!
//! `update(&mut App, Msg) -> Vec<AppEffect>` does no I/O: run intents go to the engine (also
//! pure), and whatever needs the outside world comes back as [`AppEffect`]s for a driver
//! (`tui` at runtime, [`harness`] in tests).

mod action;
pub mod driver;
mod form;
#[cfg(any(test, feature = "test-support"))]
pub mod harness;
mod keymap;
pub mod session;
mod state;
mod update;
pub mod view;

pub use action::Action;
pub use form::{Check, Field, Form, MAX_FIELD_CHARS, validate};
pub use keymap::{Chord, DEFAULT_KEYS, Keymap, Mode};
pub use state::*;
pub use update::{AppEffect, Intent, Msg, Request, update};
