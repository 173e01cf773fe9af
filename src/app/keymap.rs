//! Key bindings: `assets/default-keys.toml` embedded, overlaid by the user's `keys.toml`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

use super::action::Action;

/// The embedded default bindings.
pub const DEFAULT_KEYS: &str = include_str!("../../assets/default-keys.toml");

/// Which bindings apply; `Global` is consulted after the specific mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Global,
    Home,
    Run,
    Popup,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Global, Mode::Home, Mode::Run, Mode::Popup];
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Global => "global",
            Mode::Home => "home",
            Mode::Run => "run",
            Mode::Popup => "popup",
        }
    }
}

/// A key with its modifiers, normalised so `G` and `shift-g` are the same chord.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chord {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Chord {
    fn sort_key(&self) -> (u8, String, u8) {
        // Plain characters first, then named keys; stable across runs.
        let kind = u8::from(!matches!(self.code, KeyCode::Char(_)));
        (kind, format!("{:?}", self.code), self.mods.bits())
    }
}

impl PartialOrd for Chord {
    fn partial_cmp(&self, other: &Chord) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Chord {
    fn cmp(&self, other: &Chord) -> std::cmp::Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl Chord {
    pub fn new(code: KeyCode, mods: KeyModifiers) -> Chord {
        let mut mods = mods & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match code {
            // Shift is already in the character itself.
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                if mods.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Chord { code, mods }
    }

    pub fn from_event(ev: &KeyEvent) -> Chord {
        Chord::new(ev.code, ev.modifiers)
    }

    /// Parses `j`, `G`, `ctrl-c`, `shift-tab`, `pgdn`, `f1`, `space`.
    pub fn parse(s: &str) -> Result<Chord, String> {
        if s.is_empty() {
            return Err("an empty key name".into());
        }
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        // A single character is a key even if it is `-`.
        while rest.chars().count() > 1 {
            let lower = rest.to_ascii_lowercase();
            if let Some(r) = lower.strip_prefix("ctrl-") {
                mods |= KeyModifiers::CONTROL;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower.strip_prefix("alt-") {
                mods |= KeyModifiers::ALT;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower.strip_prefix("shift-") {
                mods |= KeyModifiers::SHIFT;
                rest = &rest[rest.len() - r.len()..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(if mods.contains(KeyModifiers::SHIFT) {
                c.to_ascii_uppercase()
            } else {
                c
            }),
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "tab" if mods.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "space" => KeyCode::Char(' '),
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                "insert" | "ins" => KeyCode::Insert,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "pgup" | "pageup" => KeyCode::PageUp,
                "pgdn" | "pagedown" | "pgdown" => KeyCode::PageDown,
                f if f.starts_with('f') && f.len() > 1 => match f[1..].parse::<u8>() {
                    Ok(n @ 1..=12) => KeyCode::F(n),
                    _ => return Err(format!("unknown key `{s}`")),
                },
                _ => return Err(format!("unknown key `{s}`")),
            },
        };
        Ok(Chord::new(code, mods))
    }
}

impl fmt::Display for Chord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("Alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("Shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("Shift-Tab"),
            KeyCode::Backspace => f.write_str("Backspace"),
            KeyCode::Delete => f.write_str("Del"),
            KeyCode::Insert => f.write_str("Ins"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Either an action or `"none"` (unbind).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
enum Binding {
    Action(Action),
    Unbound(Unbound),
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Unbound {
    None,
}

type RawKeys = BTreeMap<Mode, BTreeMap<String, Binding>>;

/// Mode → chord → action.
#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    maps: BTreeMap<Mode, BTreeMap<Chord, Action>>,
}

impl Default for Keymap {
    fn default() -> Self {
        let mut km = Keymap {
            maps: BTreeMap::new(),
        };
        // The embedded file is checked by a unit test; an error here would leave keys unbound,
        // never a panic.
        if let Err(errs) = km.overlay_str(DEFAULT_KEYS) {
            tracing::error!(?errs, "embedded default keymap is invalid");
        }
        km
    }
}

impl Keymap {
    /// Defaults overlaid by `path` if it exists. Problems in the user file are returned as
    /// messages (and the offending entries ignored), never fatal.
    pub fn load(path: Option<&Path>) -> (Keymap, Vec<String>) {
        let mut km = Keymap::default();
        let mut warnings = Vec::new();
        if let Some(p) = path {
            match std::fs::read_to_string(p) {
                Ok(text) => {
                    if let Err(errs) = km.overlay_str(&text) {
                        for e in errs {
                            warnings.push(format!("{}: {e}", p.display()));
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => warnings.push(format!(
                    "cannot read {}: {e}; using the default keys",
                    p.display()
                )),
            }
        }
        (km, warnings)
    }

    /// Applies a TOML keymap on top of this one; bad entries are reported and skipped.
    pub fn overlay_str(&mut self, text: &str) -> Result<(), Vec<String>> {
        let raw: RawKeys = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                return Err(vec![format!(
                    "not a valid keymap ({}); sections are [global] [home] [run] [popup], entries are \"key\" = \"action\"",
                    e.message()
                )]);
            }
        };
        let mut errs = Vec::new();
        for (mode, entries) in raw {
            let map = self.maps.entry(mode).or_default();
            for (key, binding) in entries {
                match Chord::parse(&key) {
                    Ok(chord) => match binding {
                        Binding::Action(a) => {
                            map.insert(chord, a);
                        }
                        Binding::Unbound(Unbound::None) => {
                            map.remove(&chord);
                        }
                    },
                    Err(e) => errs.push(format!("[{}] {e}", mode.as_str())),
                }
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// The action for a key in `mode`, falling back to the global bindings.
    pub fn action(&self, mode: Mode, ev: &KeyEvent) -> Option<Action> {
        let chord = Chord::from_event(ev);
        self.maps
            .get(&mode)
            .and_then(|m| m.get(&chord))
            .or_else(|| self.maps.get(&Mode::Global).and_then(|m| m.get(&chord)))
            .copied()
    }

    /// Keys bound to `action` in `mode` (global included), for hints and help.
    pub fn keys_for(&self, mode: Mode, action: Action) -> Vec<Chord> {
        let mut out: Vec<Chord> = Vec::new();
        for m in [mode, Mode::Global] {
            if let Some(map) = self.maps.get(&m) {
                for (c, a) in map {
                    if *a == action && !out.contains(c) {
                        // A mode binding shadows the same global chord.
                        if m == Mode::Global
                            && self.maps.get(&mode).is_some_and(|mm| mm.contains_key(c))
                        {
                            continue;
                        }
                        out.push(*c);
                    }
                }
            }
        }
        out
    }

    /// The first key for `action` as text (`"Enter"`), or `"(unbound)"`.
    pub fn hint(&self, mode: Mode, action: Action) -> String {
        // Prefer a short single-character key: easier to read in a one-line hint.
        let keys = self.keys_for(mode, action);
        keys.iter()
            .find(|c| matches!(c.code, KeyCode::Char(_)) && c.mods.is_empty())
            .or_else(|| keys.first())
            .map_or_else(|| "(unbound)".to_string(), ToString::to_string)
    }

    /// `(keys, action)` rows for the help popup, in action order.
    pub fn help_rows(&self, mode: Mode) -> Vec<(String, Action)> {
        let mut rows = Vec::new();
        for a in Action::ALL {
            let keys = self.keys_for(mode, a);
            if keys.is_empty() {
                continue;
            }
            let text = keys
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ");
            rows.push((text, a));
        }
        rows
    }
}

impl Keymap {
    /// `docs/KEYBINDINGS.md`: every mode's bindings, generated from this keymap (a test keeps
    /// the file in step with `assets/default-keys.toml`).
    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "# Key bindings\n\n\
             <!-- Generated from assets/default-keys.toml by `Keymap::markdown` (src/app/keymap.rs).\n\
             Do not edit by hand: run `BTSDR_UPDATE_DOCS=1 cargo test --lib keymap` to regenerate. -->\n\n\
             Change any of them in `<config dir>/keys.toml` (same format as\n\
             [assets/default-keys.toml](../assets/default-keys.toml); bind a key to `\"none\"` to free\n\
             it). `?` inside btsdr shows the keys in effect, your changes included.\n",
        );
        let intro = |m: Mode| match m {
            Mode::Global => "Everywhere, unless the screen or popup binds the same key.",
            Mode::Home => "The home screen (sessions to resume, runbooks, drills, reports).",
            Mode::Run => "The run screen (steps, step detail, output).",
            Mode::Popup => {
                "Popups. In text fields printable keys type; Backspace deletes, Ctrl-u clears the field. Yes/no popups also take `y` / `n`, the in-doubt popup `1`-`3`, help and value popups `j` / `k` / `q`."
            }
        };
        for mode in Mode::ALL {
            s.push_str(&format!("\n## {}\n\n{}\n\n", mode.as_str(), intro(mode)));
            s.push_str("| keys | action | what it does |\n|---|---|---|\n");
            let Some(map) = self.maps.get(&mode) else {
                continue;
            };
            // Group chords by action, in action order.
            for a in Action::ALL {
                let keys: Vec<String> = map
                    .iter()
                    .filter(|(_, x)| **x == a)
                    .map(|(c, _)| format!("`{c}`").replace("`|`", "`\\|`"))
                    .collect();
                if keys.is_empty() {
                    continue;
                }
                let name = serde_json::to_value(a)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                s.push_str(&format!(
                    "| {} | `{name}` | {} |\n",
                    keys.join(" "),
                    a.describe()
                ));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keybindings_doc_matches_the_default_keymap() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/KEYBINDINGS.md");
        let want = Keymap::default().markdown();
        if std::env::var_os("BTSDR_UPDATE_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/KEYBINDINGS.md is out of date with assets/default-keys.toml: run `BTSDR_UPDATE_DOCS=1 cargo test --lib keymap`"
        );
    }

    #[test]
    fn every_action_is_bound_somewhere_by_default() {
        let km = Keymap::default();
        for a in Action::ALL {
            assert!(
                Mode::ALL.iter().any(|m| !km.keys_for(*m, a).is_empty()),
                "{a:?} has no default key"
            );
        }
    }

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn embedded_defaults_parse_without_errors() {
        let mut km = Keymap {
            maps: BTreeMap::new(),
        };
        assert_eq!(km.overlay_str(DEFAULT_KEYS), Ok(()));
        assert!(km.maps.len() == 4);
    }

    #[test]
    fn vim_keys_and_arrows_map_on_the_run_screen() {
        let km = Keymap::default();
        let n = KeyModifiers::NONE;
        assert_eq!(
            km.action(Mode::Run, &key(KeyCode::Char('j'), n)),
            Some(Action::Down)
        );
        assert_eq!(
            km.action(Mode::Run, &key(KeyCode::Down, n)),
            Some(Action::Down)
        );
        assert_eq!(
            km.action(Mode::Run, &key(KeyCode::Char('k'), n)),
            Some(Action::Up)
        );
        assert_eq!(
            km.action(Mode::Run, &key(KeyCode::Char('g'), n)),
            Some(Action::Top)
        );
        // Terminals report `G` with or without SHIFT.
        assert_eq!(
            km.action(Mode::Run, &key(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Action::Bottom)
        );
        assert_eq!(
            km.action(Mode::Run, &key(KeyCode::Char('G'), n)),
            Some(Action::Bottom)
        );
        assert_eq!(
            km.action(Mode::Run, &key(KeyCode::Enter, n)),
            Some(Action::Run)
        );
        assert_eq!(
            km.action(Mode::Run, &key(KeyCode::PageDown, n)),
            Some(Action::PageDown)
        );
        assert_eq!(
            km.action(Mode::Run, &key(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::FocusPrev)
        );
    }

    #[test]
    fn global_bindings_apply_when_the_mode_has_none() {
        let km = Keymap::default();
        let ctrl_c = key(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(km.action(Mode::Run, &ctrl_c), Some(Action::Cancel));
        assert_eq!(km.action(Mode::Popup, &ctrl_c), Some(Action::Cancel));
        // Plain `c` is confirm on the run screen, not Ctrl-C.
        assert_eq!(
            km.action(Mode::Run, &key(KeyCode::Char('c'), KeyModifiers::NONE)),
            Some(Action::Confirm)
        );
        assert_eq!(
            km.action(Mode::Popup, &key(KeyCode::Char('x'), KeyModifiers::NONE)),
            None
        );
    }

    #[test]
    fn user_overlay_rebinds_and_unbinds() {
        let mut km = Keymap::default();
        km.overlay_str("[run]\n\"x\" = \"skip\"\n\"s\" = \"none\"\n")
            .unwrap();
        let n = KeyModifiers::NONE;
        assert_eq!(
            km.action(Mode::Run, &key(KeyCode::Char('x'), n)),
            Some(Action::Skip)
        );
        assert_eq!(km.action(Mode::Run, &key(KeyCode::Char('s'), n)), None);
        assert_eq!(km.hint(Mode::Run, Action::Skip), "x");
    }

    #[test]
    fn bad_user_entries_are_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.toml");
        std::fs::write(&p, "[run]\n\"ctrl-nope\" = \"skip\"\n\"z\" = \"down\"\n").unwrap();
        let (km, warnings) = Keymap::load(Some(&p));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("unknown key `ctrl-nope`"),
            "{warnings:?}"
        );
        assert_eq!(
            km.action(Mode::Run, &key(KeyCode::Char('z'), KeyModifiers::NONE)),
            Some(Action::Down)
        );

        std::fs::write(&p, "[run]\n\"z\" = \"fly\"\n").unwrap();
        let (km, warnings) = Keymap::load(Some(&p));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("not a valid keymap"), "{warnings:?}");
        assert_eq!(km, Keymap::default());

        let (_, warnings) = Keymap::load(Some(&dir.path().join("missing.toml")));
        assert!(warnings.is_empty());
    }

    #[test]
    fn chord_parse_and_display_round_trip() {
        for s in [
            "j", "G", "?", "-", "ctrl-c", "enter", "esc", "pgdn", "f5", "space", "backtab",
        ] {
            let c = Chord::parse(s).unwrap();
            let again = Chord::parse(&match c.code {
                KeyCode::Char(' ') => "space".to_string(),
                KeyCode::Char(ch) if c.mods.is_empty() => ch.to_string(),
                _ => s.to_string(),
            })
            .unwrap();
            assert_eq!(c, again, "{s}");
        }
        assert_eq!(Chord::parse("shift-tab").unwrap().code, KeyCode::BackTab);
        assert_eq!(Chord::parse("ctrl-c").unwrap().to_string(), "Ctrl-c");
        assert!(Chord::parse("f13").is_err());
        assert!(Chord::parse("").is_err());
    }

    #[test]
    fn help_rows_come_from_the_live_map() {
        let mut km = Keymap::default();
        km.overlay_str("[run]\n\"x\" = \"skip\"\n").unwrap();
        let rows = km.help_rows(Mode::Run);
        let skip = rows.iter().find(|(_, a)| *a == Action::Skip).unwrap();
        assert!(skip.0.contains('x') && skip.0.contains('s'), "{skip:?}");
    }
}
