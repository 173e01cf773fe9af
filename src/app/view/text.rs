//! Small text helpers: display widths, truncation, durations.

use chrono::Duration;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// Cuts `s` to `max` columns, ending with `…` when something was cut. Control characters
/// (tabs, newlines) become spaces so one value stays on one line.
pub fn clip(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let clean = |c: char| if c.is_control() { ' ' } else { c };
    if width(s) <= max && !s.chars().any(char::is_control) {
        return s.to_string();
    }
    let total: usize = s.chars().map(|c| clean(c).width().unwrap_or(0)).sum();
    if total <= max {
        return s.chars().map(clean).collect();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars().map(clean) {
        let cw = c.width().unwrap_or(0);
        if w + cw > max - 1 {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// Pads or clips to exactly `w` columns.
pub fn pad(s: &str, w: usize) -> String {
    let c = clip(s, w);
    let n = width(&c);
    format!("{c}{}", " ".repeat(w.saturating_sub(n)))
}

/// Skips the first `cols` display columns of `s`.
pub fn skip_cols(s: &str, cols: usize) -> &str {
    let mut w = 0;
    for (i, c) in s.char_indices() {
        if w >= cols {
            return &s[i..];
        }
        w += c.width().unwrap_or(0);
    }
    ""
}

/// `1h 02m`, `4m 05s`, `12s`; negative durations show as `0s`.
pub fn short_duration(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    let (h, m, sec) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {sec:02}s")
    } else {
        format!("{sec}s")
    }
}

/// `01:02:03` (hours may exceed 24).
pub fn clock(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// `12,345`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_respects_width() {
        assert_eq!(clip("hello", 10), "hello");
        assert_eq!(clip("hello world", 6), "hello…");
        assert_eq!(clip("日本語テキスト", 5), "日本…");
        assert_eq!(clip("a\tb\nc", 10), "a b c");
        assert_eq!(clip("abc", 0), "");
        assert_eq!(clip("abc", 1), "…");
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(skip_cols("abcdef", 2), "cdef");
        assert_eq!(skip_cols("ab", 5), "");
    }

    #[test]
    fn durations_and_numbers() {
        assert_eq!(short_duration(Duration::seconds(3725)), "1h 02m");
        assert_eq!(short_duration(Duration::seconds(245)), "4m 05s");
        assert_eq!(short_duration(Duration::seconds(-5)), "0s");
        assert_eq!(clock(Duration::seconds(90061)), "25:01:01");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }
}
