//! The output pane's virtual lines: what each line of a step's output is, at a given width.
//! The update scrolls and copies by them; `ui::output` draws them.

use crate::app::{Level, StepOutput};
use btsdr_types::ResultSet;

use super::text::{thousands, width};

/// Widest a column gets before its values are cut (`o` shows a whole value).
pub(crate) const MAX_COL: usize = 32;
/// Rows sampled to size the columns.
pub(crate) const SAMPLE_ROWS: usize = 500;

/// One block of consecutive virtual lines.
#[derive(Debug, Clone)]
pub(crate) enum Part {
    Text(Vec<(Level, String)>),
    Title(usize),
    Header(usize),
    Sep(usize),
    Rows(usize),
    Log,
}

/// Word-wraps `s` to `w` columns (at least 8), one entry per line.
pub(crate) fn wrap_words(s: &str, w: usize) -> Vec<String> {
    wrap(s, w)
}

pub(crate) fn wrap(s: &str, w: usize) -> Vec<String> {
    let w = w.max(8);
    let mut out = Vec::new();
    for para in s.lines() {
        let mut cur = String::new();
        for word in para.split_whitespace() {
            if !cur.is_empty() && width(&cur) + 1 + width(word) > w {
                out.push(std::mem::take(&mut cur));
            }
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
        out.push(cur);
    }
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

pub(crate) fn parts(out: &StepOutput, w: usize) -> Vec<(Part, usize)> {
    let mut v: Vec<(Part, usize)> = Vec::new();
    if let Some(e) = &out.error {
        let mut lines: Vec<(Level, String)> = Vec::new();
        for (i, l) in wrap(&e.message, w.saturating_sub(9))
            .into_iter()
            .enumerate()
        {
            lines.push((
                Level::Error,
                if i == 0 {
                    format!("✖ ERROR: {l}")
                } else {
                    format!("         {l}")
                },
            ));
        }
        if !e.next.is_empty() {
            lines.push((Level::Warn, "What to do next:".into()));
            for n in &e.next {
                for (i, l) in wrap(n, w.saturating_sub(4)).into_iter().enumerate() {
                    lines.push((
                        Level::Info,
                        if i == 0 {
                            format!("  • {l}")
                        } else {
                            format!("    {l}")
                        },
                    ));
                }
            }
        }
        let n = lines.len();
        v.push((Part::Text(lines), n));
    }
    if !out.asserts.is_empty() {
        let lines: Vec<(Level, String)> = out
            .asserts
            .iter()
            .map(|a| {
                if a.passed {
                    (Level::Ok, format!("✔ [PASS] {}", a.source))
                } else {
                    (
                        Level::Error,
                        format!("✖ [FAIL] {} — {}", a.source, a.detail),
                    )
                }
            })
            .collect();
        let n = lines.len();
        v.push((Part::Text(lines), n));
    }
    for (i, set) in out.sets.iter().enumerate() {
        v.push((Part::Title(i), 1));
        if !set.columns.is_empty() {
            v.push((Part::Header(i), 1));
            v.push((Part::Sep(i), 1));
        }
        if !set.rows.is_empty() {
            v.push((Part::Rows(i), set.rows.len()));
        }
    }
    if out.sets.is_empty() && !out.rows_affected.is_empty() {
        let lines = out
            .rows_affected
            .iter()
            .map(|n| {
                (
                    Level::Info,
                    format!("({} rows affected)", thousands(*n as usize)),
                )
            })
            .collect::<Vec<_>>();
        let n = lines.len();
        v.push((Part::Text(lines), n));
    }
    if !out.log.is_empty() {
        v.push((Part::Log, out.log.len()));
    }
    v
}

/// Number of lines the output of a step has at pane width `w`.
pub fn output_len(out: &StepOutput, w: usize) -> usize {
    parts(out, w).iter().map(|(_, n)| n).sum()
}

pub(crate) fn locate(parts: &[(Part, usize)], mut i: usize) -> Option<(&Part, usize)> {
    for (p, n) in parts {
        if i < *n {
            return Some((p, i));
        }
        i -= n;
    }
    None
}

/// A cell as shown: msdb's integer times and dates (`sysjobhistory.run_time` = 23000 is
/// 02:30:00, `run_date` = 20261121) in a readable form (`y` and the inspector keep the stored
/// value); anything else as it is.
pub(crate) fn cell_shown(column: &str, v: &btsdr_types::ValueRef<'_>) -> String {
    let raw = v.to_string();
    let btsdr_types::ValueRef::Int(i) = v else {
        return raw;
    };
    let i = *i;
    let name = column.to_ascii_lowercase();
    let time = matches!(
        name.as_str(),
        "run_time"
            | "run_duration"
            | "next_run_time"
            | "last_run_time"
            | "active_start_time"
            | "active_end_time"
    );
    let date = matches!(
        name.as_str(),
        "run_date" | "next_run_date" | "last_run_date" | "active_start_date" | "active_end_date"
    );
    if time && (0..=995_959).contains(&i) {
        format!("{:02}:{:02}:{:02}", i / 10_000, i / 100 % 100, i % 100)
    } else if date && (19_000_101..=99_991_231).contains(&i) {
        format!("{}-{:02}-{:02}", i / 10_000, i / 100 % 100, i % 100)
    } else {
        raw
    }
}

/// Column widths from the header, the first rows and the rows on screen (`visible`).
pub(crate) fn col_widths(set: &ResultSet, visible: std::ops::Range<usize>) -> Vec<usize> {
    set.columns
        .iter()
        .enumerate()
        .map(|(c, col)| {
            let mut w = width(&col.name);
            let shown = set.rows.slice(visible.clone());
            for row in set.rows.iter().take(SAMPLE_ROWS).chain(shown) {
                if let Some(v) = row.get(c) {
                    w = w.max(width(&cell_shown(&col.name, &v)));
                }
                if w >= MAX_COL {
                    break;
                }
            }
            w.clamp(3, MAX_COL)
        })
        .collect()
}

/// First column to show so that `sel` is visible in `avail` columns of text.
pub(crate) fn first_col(widths: &[usize], sel: usize, avail: usize) -> usize {
    let sel = sel.min(widths.len().saturating_sub(1));
    let mut start = sel;
    let mut used = widths.get(sel).copied().unwrap_or(0);
    while start > 0 && used + 3 + widths[start - 1] <= avail {
        start -= 1;
        used += 3 + widths[start];
    }
    start
}

/// The plain text of line `i` (what `y` copies): a whole row is tab-separated.
pub fn output_line_text(out: &StepOutput, w: usize, i: usize) -> Option<String> {
    let ps = parts(out, w);
    let (p, k) = locate(&ps, i)?;
    Some(match p {
        Part::Text(lines) => lines.get(k)?.1.clone(),
        Part::Title(s) => set_title(out, *s),
        Part::Header(s) => out.sets[*s]
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
            .join("\t"),
        Part::Sep(_) => String::new(),
        Part::Rows(s) => out.sets[*s]
            .rows
            .get(k)?
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("\t"),
        Part::Log => out.log.get(k)?.text.clone(),
    })
}

/// `(column name, whole value)` of the cell under the cursor, if it is on a table row.
pub fn output_cell(out: &StepOutput, w: usize, i: usize, col: usize) -> Option<(String, String)> {
    let ps = parts(out, w);
    match locate(&ps, i)? {
        (Part::Rows(s), k) => {
            let set = &out.sets[*s];
            let c = col.min(set.columns.len().saturating_sub(1));
            Some((
                set.columns.get(c)?.name.clone(),
                set.rows.get(k)?.get(c)?.to_string(),
            ))
        }
        _ => None,
    }
}

/// Columns of the table under line `i`, for clamping the column cursor.
pub fn output_columns(out: &StepOutput, w: usize, i: usize) -> usize {
    let ps = parts(out, w);
    match locate(&ps, i) {
        Some((Part::Rows(s) | Part::Header(s) | Part::Sep(s) | Part::Title(s), _)) => {
            out.sets[*s].columns.len()
        }
        _ => 0,
    }
}

pub(crate) fn set_title(out: &StepOutput, s: usize) -> String {
    let set = &out.sets[s];
    let title = format!(
        "Result set {} of {} · {} rows × {} columns",
        s + 1,
        out.sets.len(),
        thousands(set.rows.len()),
        set.columns.len()
    );
    if set.not_kept > 0 {
        format!("{title} · CAP REACHED: {} more rows not kept", set.not_kept)
    } else {
        title
    }
}

#[cfg(test)]
mod tests {
    use super::cell_shown;
    use btsdr_types::ValueRef;

    #[test]
    fn msdb_integer_times_and_dates_read_as_times_and_dates() {
        assert_eq!(cell_shown("run_time", &ValueRef::Int(23_000)), "02:30:00");
        assert_eq!(cell_shown("RUN_DURATION", &ValueRef::Int(5)), "00:00:05");
        assert_eq!(
            cell_shown("run_date", &ValueRef::Int(20_261_121)),
            "2026-11-21"
        );
        // Out of range, another column, or not an integer: as stored.
        assert_eq!(cell_shown("run_date", &ValueRef::Int(0)), "0");
        assert_eq!(cell_shown("run_status", &ValueRef::Int(23_000)), "23000");
        assert_eq!(cell_shown("run_time", &ValueRef::Null), "NULL");
    }
}
