//! Untrusted text on its way to a terminal or a plain-text file.
//!
//! Server values, SQL errors, operator names, skip reasons, session file names and runbook
//! text can hold escape sequences (OSC 52 writes the clipboard, OSC 8 makes links, `ESC[2J`
//! clears the screen) or a carriage return that overwrites what was printed. Every
//! plain-text output of btsdr passes through [`plain`]: control characters (C0 but `\n` and
//! `\t`, DEL, C1) and the bidirectional overrides that reorder what is shown are written as
//! visible `\u{..}` escapes instead.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as itself.
fn hostile(c: char, keep_newlines: bool) -> bool {
    match c {
        '\n' | '\t' => !keep_newlines,
        // Bidirectional embeddings, overrides and isolates (the "Trojan Source" characters).
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => true,
        c => c.is_control(),
    }
}

fn neutralise(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| hostile(c, keep_newlines)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if hostile(c, keep_newlines) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` safe for a terminal: control characters but `\n` and `\t` made visible.
pub fn plain(s: &str) -> Cow<'_, str> {
    neutralise(s, true)
}

/// `s` as one safe line: `\n` and `\t` made visible too (table cells, progress lines).
pub fn plain_line(s: &str) -> Cow<'_, str> {
    neutralise(s, false)
}

/// A line of JSON safe for a terminal: serde_json writes C1 controls and bidirectional
/// overrides as themselves (only C0 is escaped); they can only be inside strings, where
/// `\uXXXX` means the same character to any JSON reader.
pub fn json_line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| hostile(c, false)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if hostile(c, false) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `writeln!` through [`plain`], ignoring write errors (a closed pipe).
#[macro_export]
macro_rules! wln {
    ($w:expr) => {{
        let _ = writeln!($w);
    }};
    ($w:expr, $($t:tt)*) => {{
        let _ = writeln!($w, "{}", $crate::plain::plain(&format!($($t)*)));
    }};
}

/// `write!` through [`plain`], ignoring write errors.
#[macro_export]
macro_rules! w {
    ($w:expr, $($t:tt)*) => {{
        let _ = write!($w, "{}", $crate::plain::plain(&format!($($t)*)));
    }};
}

/// `eprintln!` through [`plain`].
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => {{
        eprintln!("{}", $crate::plain::plain(&format!($($t)*)));
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_made_visible() {
        let osc52 = "x\u{1b}]52;c;ZWNobyBoaQ==\u{7}y";
        assert_eq!(plain(osc52), "x\\u{1b}]52;c;ZWNobyBoaQ==\\u{7}y");
        assert_eq!(plain("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(plain("ok\rFAIL"), "ok\\u{d}FAIL");
        assert_eq!(plain("c1\u{9b}31m"), "c1\\u{9b}31m");
        assert_eq!(plain("del\u{7f}"), "del\\u{7f}");
        assert_eq!(plain("rtl\u{202e}txt"), "rtl\\u{202e}txt");
        assert_eq!(plain("two\nlines\tand tab"), "two\nlines\tand tab");
        assert_eq!(plain_line("two\nlines\t"), "two\\u{a}lines\\u{9}");
        // Ordinary text, including non-ASCII, is untouched and not copied.
        assert!(matches!(plain("Grüße ✓ 'x' 日本"), Cow::Borrowed(_)));
        // JSON keeps meaning the same string.
        let json = serde_json::to_string("a\u{1b}[2J\u{9b}\u{202e}b").unwrap();
        let safe = json_line(&json);
        assert!(!safe.chars().any(|c| hostile(c, false)), "{safe}");
        let back: String = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, "a\u{1b}[2J\u{9b}\u{202e}b");
    }
}
