//! Plain-text tables for command output (`btsdr sessions`, `btsdr check`).

use unicode_width::UnicodeWidthStr;

/// The line of `head`, then one per row, with every column but the last padded to its
/// widest cell (in terminal columns: a CJK character takes two), two spaces apart; columns listed in `right` are right-aligned. Trailing
/// spaces are trimmed, so the last column may be as long as it likes.
pub fn aligned<R: AsRef<[String]>>(head: &[&str], rows: &[R], right: &[usize]) -> Vec<String> {
    let lines = || {
        std::iter::once(head.to_vec()).chain(
            rows.iter()
                .map(|r| r.as_ref().iter().map(String::as_str).collect()),
        )
    };
    let cols = lines().map(|r| r.len()).max().unwrap_or(0);
    let mut w = vec![0; cols];
    for r in lines() {
        for (w, c) in w.iter_mut().zip(&r) {
            *w = (*w).max(c.width());
        }
    }
    lines()
        .map(|r| {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                let pad = " ".repeat(w[i].saturating_sub(c.width()));
                if i + 1 == r.len() {
                    line.push_str(c);
                } else if right.contains(&i) {
                    line.push_str(&pad);
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.push_str(&pad);
                }
                if i + 1 < r.len() {
                    line.push_str("  ");
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_the_last_runs_free() {
        let rows: Vec<Vec<String>> = [
            ["a-long-id", "7", "x"],
            ["b", "1234", "ünïcode is counted in characters"],
        ]
        .iter()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
        let lines = aligned(&["ID", "N", "NOTE"], &rows, &[1]);
        assert_eq!(
            lines,
            [
                "ID            N  NOTE",
                "a-long-id     7  x",
                "b          1234  ünïcode is counted in characters",
            ]
        );
        assert_eq!(aligned::<Vec<String>>(&["A", "B"], &[], &[]), ["A  B"]);
    }

    #[test]
    fn wide_and_combining_characters_pad_by_display_width() {
        // "日本" takes four columns; "e\u{301}" (e + combining acute) takes one.
        let rows: Vec<Vec<String>> = vec![
            vec!["日本".into(), "1".into(), "x".into()],
            vec!["e\u{301}".into(), "22".into(), "y".into()],
        ];
        let lines = aligned(&["ID", "N", "NOTE"], &rows, &[1]);
        assert_eq!(
            lines,
            ["ID     N  NOTE", "日本   1  x", "e\u{301}     22  y"]
        );
    }
}
