//! One self-contained, printable HTML file with an inline SVG timeline (Gantt) of the steps.

use std::fmt::Write as _;

use super::fmt_duration;
use super::markdown::short;
use super::timeline::{Report, StepStatus};

fn esc(s: &str) -> String {
    crate::runbook::expr::escape_xml(s)
}

fn colour(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Passed | StepStatus::Written => "#2e7d32",
        StepStatus::Done => "#1565c0",
        StepStatus::Failed => "#c62828",
        StepStatus::Skipped => "#9e9e9e",
        StepStatus::WouldRun => "#6a1b9a",
        StepStatus::InDoubt => "#ef6c00",
        StepStatus::NotRun => "#e0e0e0",
    }
}

const CSS: &str = r"
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1a1a1a;max-width:1100px;margin:24px auto;padding:0 20px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:28px}
h3{font-size:15px;margin:18px 0 6px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;background:#6a1b9a;margin-left:6px;vertical-align:middle}
table{border-collapse:collapse;width:100%;margin:6px 0 12px}td,th{border:1px solid #d0d0d0;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}table.kv td:first-child{width:200px;font-weight:600;background:#fafafa}
.st{font-weight:700}.ok{color:#2e7d32}.bad{color:#c62828}.warn{color:#ef6c00}
pre{background:#f6f8fa;border:1px solid #e1e4e8;padding:8px;overflow-x:auto;font-size:12px;white-space:pre-wrap}
code{font-size:12px}.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
.sign td{height:36px}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}.step{break-inside:avoid}svg{max-width:100%}}
";

// TODO(issue 16): split (one function per report section (or a maud template)).
#[allow(clippy::too_many_lines)]
pub fn html(r: &Report) -> String {
    let mut o = String::new();
    let title = if r.title.is_empty() {
        r.runbook_id.clone()
    } else {
        r.title.clone()
    };
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} — btsdr report</title><style>{CSS}</style></head><body>",
        esc(&title)
    );
    let _ = write!(o, "<h1>{}", esc(&title));
    if r.drill {
        o.push_str("<span class=\"badge\">DRILL</span>");
    }
    if r.dry_run {
        o.push_str("<span class=\"badge\" style=\"background:#455a64\">DRY RUN</span>");
    }
    o.push_str("</h1>");
    if !r.intact {
        let _ = write!(
            o,
            "<p class=\"bad\" role=\"alert\" style=\"border:3px solid #b71c1c;padding:.6em;font-size:1.2em\"><b>JOURNAL DAMAGED — DO NOT SIGN.</b> {}. This report covers only the records before the damage; keep the journal as evidence.</p>",
            esc(&r.journal_status)
        );
    }
    let t = |d: Option<chrono::DateTime<chrono::Utc>>| {
        d.map_or_else(
            || "—".to_string(),
            |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
    };
    let elapsed = r
        .elapsed_secs()
        .map_or_else(|| "—".to_string(), fmt_duration);
    let open = r.aborted.is_none() && !r.closed;
    let rto = match (r.rto_minutes, r.rto_met()) {
        (Some(m), Some(true)) if open => format!(
            "<span class=\"st warn\">{elapsed} so far — within target so far</span> (target {m} min; the session is still open)"
        ),
        (Some(m), Some(true)) => {
            format!("<span class=\"st ok\">{elapsed} — met</span> (target {m} min)")
        }
        (Some(m), Some(false)) => {
            format!("<span class=\"st bad\">{elapsed} — MISSED</span> (target {m} min)")
        }
        (Some(m), None) => format!("target {m} min"),
        (None, _) => format!("{elapsed} (no target set)"),
    };
    let rpo = match &r.mark {
        Some((n, Some(time))) => {
            format!("restored to mark <code>{}</code> at {}", esc(n), esc(time))
        }
        Some((n, None)) => format!("restored to mark <code>{}</code>", esc(n)),
        None => "no restore to a mark recorded".into(),
    };
    let rto_label = if open { "RTO so far" } else { "RTO achieved" };
    let plan = r.plan.as_ref().map_or_else(String::new, |p| {
        format!(
            "<tr><td>Failure plan</td><td>{} — part {} of {}</td></tr>",
            esc(&p.label),
            p.part + 1,
            p.parts
        )
    });
    let session = if let Some(a) = &r.aborted {
        format!("<span class=\"st bad\">aborted</span>: {}", esc(a))
    } else if r.closed {
        "<span class=\"st ok\">closed</span>".into()
    } else {
        "<span class=\"st warn\">open</span>".into()
    };
    let _ = write!(
        o,
        "<table class=\"kv\"><tr><td>Session</td><td><code>{}</code> — {session}</td></tr><tr><td>Runbook</td><td><code>{}</code> v{} (SHA-256 <code>{}</code>)</td></tr><tr><td>Environment</td><td>{}</td></tr>{plan}<tr><td>Operators</td><td>{}</td></tr><tr><td>Disaster declared</td><td>{}</td></tr><tr><td>Started / last action</td><td>{} / {}</td></tr><tr><td>{rto_label}</td><td>{rto}</td></tr><tr><td>RPO</td><td>{rpo}{}</td></tr></table>",
        esc(&r.session_id),
        esc(&r.runbook_id),
        esc(&r.version),
        short(&r.content_hash),
        esc(&r.environment),
        esc(&r.operators.join(", ")),
        t(r.declared_at),
        t(r.started),
        t(r.ended),
        esc(&super::rpo_note(r)),
    );
    o.push_str("<h2>Timeline</h2>");
    o.push_str(&gantt(r));

    o.push_str("<h2>Steps</h2><table><tr><th>#</th><th>Step</th><th>Section</th><th>Status</th><th>Started</th><th>Duration</th><th>By</th></tr>");
    for (i, l) in r.steps.iter().enumerate() {
        let dur = match (l.started, l.finished) {
            (Some(a), Some(b)) => fmt_duration((b - a).num_seconds()),
            _ => "—".into(),
        };
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}<br><code>{}</code></td><td>{}</td><td class=\"st\" style=\"color:{}\">{}</td><td>{}</td><td>{dur}</td><td>{}</td></tr>",
            i + 1,
            esc(&l.title),
            esc(&l.id),
            esc(&l.section),
            if l.status == StepStatus::NotRun {
                "#757575"
            } else {
                colour(l.status)
            },
            l.status.label(),
            l.started
                .map(|d| d.format("%H:%M:%S").to_string())
                .unwrap_or_else(|| "—".into()),
            esc(&l.by)
        );
    }
    o.push_str("</table><h2>Evidence</h2>");
    for l in r.steps.iter().filter(|l| l.status != StepStatus::NotRun) {
        let _ = write!(
            o,
            "<div class=\"step\"><h3>{} <code>{}</code> — <span style=\"color:{}\">{}</span></h3>",
            esc(&l.title),
            esc(&l.id),
            colour(l.status),
            l.status.label()
        );
        for f in &l.failed_attempts {
            let _ = write!(o, "<p class=\"bad\">{}</p>", esc(f));
        }
        if let (Some(e), true) = (&l.error, l.failed_attempts.is_empty()) {
            let _ = write!(o, "<p class=\"bad\">{}</p>", esc(e));
        }
        if !l.skip_reason.is_empty() {
            let _ = write!(
                o,
                "<p>Skipped by {}: {}</p>",
                esc(&l.by),
                esc(&l.skip_reason)
            );
        }
        if let Some(s) = &l.statement {
            let _ = write!(
                o,
                "<p>On the {} server, database <code>{}</code>:</p><pre>{}</pre>",
                s.role,
                esc(&s.database),
                esc(s.sql.trim())
            );
            if !s.params.is_empty() {
                let ps: Vec<String> = s
                    .params
                    .iter()
                    .map(|(n, v)| format!("@{n} = {v}"))
                    .collect();
                let _ = write!(o, "<p>Parameters: <code>{}</code></p>", esc(&ps.join(", ")));
            }
        }
        if !l.assertions.is_empty() {
            o.push_str("<ul>");
            for (ok, text) in &l.assertions {
                let _ = write!(
                    o,
                    "<li class=\"{}\">{} {}</li>",
                    if *ok { "ok" } else { "bad" },
                    if *ok { "✔" } else { "✘" },
                    esc(text)
                );
            }
            o.push_str("</ul>");
        }
        if let Some(set) = &l.evidence
            && !set.columns.is_empty()
        {
            o.push_str("<table><tr>");
            for c in &set.columns {
                let _ = write!(o, "<th>{}</th>", esc(&c.name));
            }
            o.push_str("</tr>");
            for row in set.rows.iter().take(50) {
                o.push_str("<tr>");
                for v in row {
                    let _ = write!(o, "<td>{}</td>", esc(&v.to_string()));
                }
                o.push_str("</tr>");
            }
            o.push_str("</table>");
            if set.rows.len() > 50 {
                let _ = write!(
                    o,
                    "<p>({} more rows in the journal)</p>",
                    set.rows.len() - 50
                );
            }
        }
        if !l.note.is_empty() {
            let _ = write!(o, "<p>Note ({}): {}</p>", esc(&l.by), esc(&l.note));
        }
        if !l.manual_evidence.is_empty() {
            let _ = write!(o, "<p>Evidence recorded: {}</p>", esc(&l.manual_evidence));
        }
        if let Some((name, sha)) = &l.file {
            let _ = write!(
                o,
                "<p>Wrote <code>{}</code> (SHA-256 <code>{}</code>)</p>",
                esc(name),
                esc(sha)
            );
        }
        o.push_str("</div>");
    }
    if !r.notes.is_empty() {
        o.push_str("<h2>Notes</h2><ul>");
        for (at, who, text) in &r.notes {
            let _ = write!(
                o,
                "<li>{} {}: {}</li>",
                at.format("%H:%M:%S"),
                esc(who),
                esc(text)
            );
        }
        o.push_str("</ul>");
    }
    let _ = write!(
        o,
        "<h2>Journal</h2><p class=\"{}\">{}</p><p>Final hash: <code>{}</code></p>",
        if r.intact { "ok" } else { "bad" },
        esc(&r.journal_status),
        esc(&r.final_hash)
    );
    o.push_str("<h2>Sign-off</h2><ul>");
    for (at, name, role) in &r.signoffs {
        let _ = write!(
            o,
            "<li>Signed off by <b>{}</b> ({}) at {} — {}</li>",
            esc(name),
            esc(role),
            at.format("%Y-%m-%d %H:%M:%S UTC"),
            r.signoff_status(name)
        );
    }
    for s in &r.signatures {
        let _ = write!(
            o,
            "<li class=\"{}\">SSH signature by <b>{}</b> over record {}: {}</li>",
            if s.valid { "ok" } else { "bad" },
            esc(&s.principal),
            s.seq,
            esc(&s.status)
        );
    }
    o.push_str("</ul><table class=\"sign\"><tr><th>Name</th><th>Role</th><th>Signature</th><th>Date</th></tr><tr><td></td><td></td><td></td><td></td></tr><tr><td></td><td></td><td></td><td></td></tr></table>");
    o.push_str("<p style=\"color:#757575;font-size:12px\">Generated by btsdr from the session journal.</p></body></html>\n");
    // One element per line keeps diffs of reports (and their snapshots) readable.
    let mut out = String::with_capacity(o.len() + o.len() / 20);
    for piece in o.split_inclusive(['>']) {
        out.push_str(piece);
        if [
            "</tr>", "</h2>", "</h3>", "</div>", "</table>", "</p>", "</li>", "</rect>", "</text>",
            "</line>", "/>", "</ul>", "<body>",
        ]
        .iter()
        .any(|end| piece.ends_with(end))
        {
            out.push('\n');
        }
    }
    out
}

/// Horizontal bars from each step's first start to its last outcome on a shared time axis,
/// with the disaster declaration and the RTO deadline marked.
fn gantt(r: &Report) -> String {
    let bars: Vec<_> = r
        .steps
        .iter()
        .filter(|l| l.started.is_some() || l.finished.is_some())
        .collect();
    let Some(t0) = r.declared_at.or(r.started) else {
        return "<p>No step has run yet.</p>".into();
    };
    if bars.is_empty() {
        return "<p>No step has run yet.</p>".into();
    }
    let deadline = r
        .rto_minutes
        .map(|m| t0 + chrono::Duration::minutes(i64::from(m)));
    let mut t1 = r.ended.unwrap_or(t0);
    if let Some(d) = deadline {
        t1 = t1.max(d);
    }
    let span = ((t1 - t0).num_milliseconds().max(1000)) as f64;
    let (label_w, chart_w, row_h, top) = (300.0, 640.0, 18.0, 28.0);
    let width = label_w + chart_w + 20.0;
    let height = top + row_h * bars.len() as f64 + 30.0;
    let x = |t: chrono::DateTime<chrono::Utc>| {
        label_w + chart_w * ((t - t0).num_milliseconds() as f64 / span).clamp(0.0, 1.0)
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"system-ui,sans-serif\" font-size=\"11\" role=\"img\" aria-label=\"Timeline of the steps\">"
    );
    // Axis with 6 ticks.
    for i in 0..=5 {
        let tx = label_w + chart_w * f64::from(i) / 5.0;
        let at = t0 + chrono::Duration::milliseconds((span * f64::from(i) / 5.0) as i64);
        let _ = write!(
            s,
            "<line x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#e0e0e0\"/><text x=\"{tx:.1}\" y=\"16\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            top - 6.0,
            height - 24.0,
            at.format("%H:%M")
        );
    }
    for (i, l) in bars.iter().enumerate() {
        let y = top + row_h * i as f64;
        let label: String = if l.title.chars().count() > 44 {
            format!("{}…", l.title.chars().take(43).collect::<String>())
        } else {
            l.title.clone()
        };
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#222\">{}</text>",
            label_w - 8.0,
            y + 12.5,
            esc(&label)
        );
        // One bar per attempt (a failed attempt shows red before the retry), or a tick for
        // a confirmation or skip.
        let mut segs = l.segments.clone();
        if segs.is_empty() {
            let at = l.finished.or(l.started).unwrap_or(t0);
            segs.push((at, Some(at), l.status));
        }
        for (a, b, st) in segs {
            let b = b.unwrap_or(r.ended.unwrap_or(a));
            let (xa, xb) = (x(a), x(b));
            let _ = write!(
                s,
                "<rect x=\"{xa:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"2\" fill=\"{}\"><title>{} — {}</title></rect>",
                y + 3.0,
                (xb - xa).max(3.0),
                row_h - 6.0,
                colour(st),
                esc(&l.id),
                st.label()
            );
        }
    }
    let bottom = height - 24.0;
    if let Some(d) = deadline {
        let dx = x(d);
        let _ = write!(
            s,
            "<line x1=\"{dx:.1}\" y1=\"{:.1}\" x2=\"{dx:.1}\" y2=\"{bottom:.1}\" stroke=\"#c62828\" stroke-dasharray=\"4 3\" stroke-width=\"1.5\"/><text x=\"{dx:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#c62828\">RTO deadline</text>",
            top - 6.0,
            bottom + 14.0
        );
    }
    if r.declared_at.is_some() {
        let _ = write!(
            s,
            "<line x1=\"{label_w:.1}\" y1=\"{:.1}\" x2=\"{label_w:.1}\" y2=\"{bottom:.1}\" stroke=\"#333\" stroke-width=\"1.5\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333\">disaster declared</text>",
            top - 6.0,
            label_w + 3.0,
            bottom + 14.0
        );
    }
    s.push_str("</svg>");
    let legend = [
        (StepStatus::Passed, "passed"),
        (StepStatus::Done, "done (manual)"),
        (StepStatus::Failed, "failed"),
        (StepStatus::Skipped, "skipped"),
        (StepStatus::InDoubt, "in doubt"),
        (StepStatus::WouldRun, "dry run"),
    ];
    let mut l = String::from("<div class=\"legend\">");
    for (st, name) in legend {
        let _ = write!(
            l,
            "<span><i style=\"background:{}\"></i>{name}</span>",
            colour(st)
        );
    }
    l.push_str("</div>");
    s + &l
}
