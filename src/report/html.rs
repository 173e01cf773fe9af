//! One self-contained, printable HTML file with an inline SVG timeline (Gantt) of the steps.
//! Rendered with maud: every interpolated value is escaped unless marked, and the markup is
//! checked when the crate compiles. Same content, in the same order, as the Markdown.

use maud::{DOCTYPE, Markup, PreEscaped, html as h};

use super::markdown::short;
use super::timeline::{Report, StepStatus};

fn colour(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Passed | StepStatus::Written => "#2e7d32",
        StepStatus::Done => "#1565c0",
        StepStatus::Failed => "#c62828",
        StepStatus::Skipped => "#9e9e9e",
        StepStatus::WouldRun => "#6a1b9a",
        StepStatus::InDoubt => "#ef6c00",
        StepStatus::NotRun => "#757575",
        StepStatus::NotApplicable => "#bdbdbd",
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
blockquote{margin:6px 0;padding:4px 10px;border-left:3px solid #1565c0;background:#f5f8fc;white-space:pre-wrap}
code{font-size:12px}.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
.sign td{height:36px}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}.step{break-inside:avoid}svg{max-width:100%}}
";

fn time(d: Option<chrono::DateTime<chrono::Utc>>) -> String {
    d.map_or_else(
        || "—".to_string(),
        |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// The header rows: what the session was, its clock (incidents) or its scope (reviews).
fn summary(r: &Report) -> Markup {
    let open = r.aborted.is_none() && !r.closed;
    let elapsed = r
        .elapsed_secs()
        .map_or_else(|| "—".to_string(), super::fmt_duration);
    let (verdict, clean) = r.verdict();
    h! {
        table.kv {
            tr { td { "Session" } td { code { (r.session_id) } } }
            tr { td { "Runbook" } td { code { (r.runbook_id) } " v" (r.version) " (SHA-256 " code { (short(&r.content_hash)) } ")" } }
            tr { td { "Environment" } td { (r.environment) } }
            @if let Some(p) = &r.plan {
                tr { td { "Failure plan" } td { (p.label) " — part " (p.part + 1) " of " (p.parts) } }
            }
            @if r.review {
                tr { td { "Scope" } td { (super::scope(r)) } }
                tr { td { "Reviewers" } td { (super::reviewers(r)) } }
            }
            tr { td { "Operators" } td { (r.operators.join(", ")) } }
            @if !r.review && r.declared_at.is_some() {
                tr { td { "Disaster declared" } td { (time(r.declared_at)) } }
            }
            tr { td { "Started / last action" } td { (time(r.started)) " / " (time(r.ended)) } }
            tr { td { "Session" } td {
                span.st.(if r.aborted.is_some() { "bad" } else if r.closed { "ok" } else { "warn" }) {
                    (super::session_status(r))
                }
            } }
            @if !r.review {
                tr {
                    td { (if open { "RTO so far" } else { "RTO achieved" }) }
                    td {
                        @match (r.rto_minutes, r.rto_met()) {
                            (Some(m), Some(true)) if open => {
                                span.st.warn { (elapsed) " so far — within target so far" }
                                " (target " (m) " min; the session is still open)"
                            }
                            (Some(m), Some(true)) => { span.st.ok { (elapsed) " — met" } " (target " (m) " min)" }
                            (Some(m), Some(false)) => { span.st.bad { (elapsed) " — MISSED" } " (target " (m) " min)" }
                            (Some(m), None) => { "target " (m) " min" }
                            (None, _) => { (elapsed) " (no target set)" }
                        }
                    }
                }
                tr { td { "RPO" } td {
                    @match &r.mark {
                        Some((n, Some(t))) => { "restored to mark " code { (n) } " at " (t) }
                        Some((n, None)) => { "restored to mark " code { (n) } }
                        None => { "no restore to a mark recorded" }
                    }
                    (super::rpo_note(r))
                } }
            }
            tr { td { "Verdict" } td { span.st.(if clean { "ok" } else { "warn" }) { (verdict) } } }
            @if let Some(d) = r.signers.iter().rev().find(|s| !s.next_review.is_empty()) {
                tr { td { "Next review" } td { (d.next_review) } }
            }
            tr { td { "Steps" } td { (r.counts_text()) } }
        }
    }
}

fn steps_table(r: &Report) -> Markup {
    h! {
        table {
            tr { th { "#" } th { "Step" } th { "Section" } th { "Status" } th { "Started" } th { "Duration" } th { "By" } }
            @for (i, l) in r.steps.iter().enumerate() {
                tr {
                    td { (i + 1) }
                    td { (l.title) br; code { (l.id) } }
                    td { (l.section) }
                    td.st style=(format!("color:{}", colour(l.status))) { (l.status.label()) }
                    td { (l.started.map_or_else(|| "—".to_string(), |d| d.format("%H:%M:%S").to_string())) }
                    td { (l.duration_text()) }
                    td { (l.by_all()) }
                }
            }
        }
    }
}

fn evidence(r: &Report) -> Markup {
    h! {
        @for l in r.steps.iter().filter(|l| !matches!(l.status, StepStatus::NotRun | StepStatus::NotApplicable)) {
            div.step {
                h3 { (l.title) " " code { (l.id) } " — " span style=(format!("color:{}", colour(l.status))) { (l.status.label()) } }
                @if !l.attested.is_empty() && l.status == StepStatus::Done {
                    p { "Attested (" (l.by_all()) "):" }
                    blockquote { (l.attested) }
                }
                @for f in &l.failed_attempts {
                    p.bad { "✘ " (f) }
                }
                @if let (Some(e), true) = (&l.error, l.failed_attempts.is_empty()) {
                    p.bad { "✘ " (e) }
                }
                @if !l.skip_reason.is_empty() && l.status == StepStatus::Skipped {
                    p { "Skipped by " (l.by) ": " (l.skip_reason) }
                }
                @if let Some(s) = &l.statement {
                    p { "On the " (s.role) " server, database " code { (s.database) } ":" }
                    pre { (s.sql.trim()) }
                    @if !s.params.is_empty() {
                        p { "Parameters: " code { (s.params.iter().map(|(n, v)| format!("@{n} = {v}")).collect::<Vec<_>>().join(", ")) } }
                    }
                }
                @if !l.assertions.is_empty() {
                    ul {
                        @for (ok, text) in &l.assertions {
                            li.(if *ok { "ok" } else { "bad" }) { (if *ok { "✔ " } else { "✘ " }) (text) }
                        }
                    }
                }
                @if let Some(set) = l.evidence.as_ref().filter(|s| !s.columns.is_empty()) {
                    table {
                        tr { @for c in &set.columns { th { (c.name) } } }
                        @for row in set.rows.iter().take(50) {
                            tr { @for v in row { td { (v.to_string()) } } }
                        }
                    }
                    @if set.rows.len() > 50 {
                        p { "(" (set.rows.len() - 50) " more rows in the journal)" }
                    }
                    @if set.not_kept > 0 {
                        p.warn { b { "Result cap reached:" } " " (set.not_kept) " more rows were received and not kept (max_result_rows / max_result_mib)." }
                    }
                }
                @if !l.note.is_empty() {
                    p { "Note (" (l.by) "): " (l.note) }
                }
                @if !l.manual_evidence.is_empty() {
                    p { "Evidence recorded: " (l.manual_evidence) }
                }
                @if let Some((name, sha)) = &l.file {
                    p {
                        "Wrote " code { (name) }
                        @if !l.file_path.is_empty() { " to " code { (l.file_path) } }
                        " (SHA-256 " code { (sha) } ")"
                    }
                }
            }
        }
    }
}

fn sign_off(r: &Report) -> Markup {
    h! {
        h2 { "Sign-off" }
        p { (r.attestation()) }
        ul {
            @for s in &r.signers {
                li {
                    "Signed off by " b { (s.name) } " (" (s.role) ") at " (s.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()) " — " (r.signoff_status(&s.name))
                    @if !s.exceptions.is_empty() {
                        " — " span.st.warn { "signed with exceptions" } ": " (s.exceptions.join("; "))
                    }
                }
            }
            @for s in &r.signatures {
                li.(if s.valid { "ok" } else { "bad" }) {
                    "SSH signature by " b { (s.principal) } " over record " (s.seq) ": " (s.status)
                }
            }
        }
        table.sign {
            tr { th { "Name" } th { "Role" } th { "Signature" } th { "Date" } }
            tr { td {} td {} td {} td {} }
            tr { td {} td {} td {} td {} }
        }
    }
}

pub fn html(r: &Report) -> String {
    let title = if r.title.is_empty() {
        r.runbook_id.clone()
    } else {
        r.title.clone()
    };
    let findings = r.findings();
    let comments: Vec<_> = r.signers.iter().filter(|s| !s.comment.is_empty()).collect();
    let page = h! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " — btsdr report" }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 {
                    (title)
                    @if r.drill { span.badge { "DRILL" } }
                    @if r.dry_run { span.badge style="background:#455a64" { "DRY RUN" } }
                    @if r.review { span.badge style="background:#1565c0" { "REVIEW" } }
                }
                @if !r.intact {
                    p.bad role="alert" style="border:3px solid #b71c1c;padding:.6em;font-size:1.2em" {
                        b { "JOURNAL DAMAGED — DO NOT SIGN." } " " (r.journal_status) ". This report covers only the records before the damage; keep the journal as evidence."
                    }
                }
                @if let Some(note) = super::simulated_note(r) {
                    p.warn { (note) }
                }
                (summary(r))
                @if let Some(clock) = super::incident::clock(r) {
                    h2 { "Incident" }
                    p { (clock) }
                    table {
                        tr { th { "Part" } th { "Session" } th { "Started" } th { "Ended" } th { "Status" } }
                        @for row in super::incident::rows(r) {
                            tr { @for c in &row { td { (c) } } }
                        }
                    }
                }
                h2 { "Timeline" }
                (gantt(r))
                h2 { "Steps" }
                (steps_table(r))
                @if !findings.is_empty() {
                    h2 { (super::findings_title(r)) }
                    ul {
                        @for (l, why) in &findings {
                            li { b { (l.title) } " " code { (l.id) } " — " (why.trim()) }
                        }
                    }
                }
                h2 { "Controls" }
                ul {
                    @for c in super::controls(r) {
                        li { (c) }
                    }
                }
                h2 { "Evidence" }
                (evidence(r))
                @if !r.notes.is_empty() {
                    h2 { "Notes" }
                    ul {
                        @for (at, who, text) in &r.notes {
                            li { (at.format("%H:%M:%S").to_string()) " " (who) ": " (text) }
                        }
                    }
                }
                @if !comments.is_empty() {
                    h2 { (if r.review { "Reviewer comments" } else { "Signer comments" }) }
                    ul {
                        @for s in &comments {
                            li { b { (s.name) } " (" (s.role) "): " (s.comment) }
                        }
                    }
                }
                h2 { "Journal" }
                p.(if r.intact { "ok" } else { "bad" }) { (r.journal_status) }
                p { "Final hash: " code { (r.final_hash) } }
                (sign_off(r))
                p style="color:#757575;font-size:12px" { "Generated by btsdr from the session journal." }
            }
        }
    };
    one_element_per_line(&page.into_string())
}

/// One element per line keeps diffs of reports (and their snapshots) readable.
fn one_element_per_line(o: &str) -> String {
    let mut out = String::with_capacity(o.len() + o.len() / 20);
    for piece in o.split_inclusive(['>']) {
        out.push_str(piece);
        if [
            "</tr>",
            "</h2>",
            "</h3>",
            "</div>",
            "</table>",
            "</p>",
            "</li>",
            "</rect>",
            "</text>",
            "</line>",
            "/>",
            "</ul>",
            "<body>",
            "</blockquote>",
        ]
        .iter()
        .any(|end| piece.ends_with(end))
        {
            out.push('\n');
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Horizontal bars, one per attempt, on a time axis that runs from the declaration (or the
/// first record) to the last action: the RTO deadline is marked when it falls inside, and
/// said in words when it is later (it never squeezes the bars). Labels are whole.
fn gantt(r: &Report) -> Markup {
    let bars: Vec<_> = r
        .steps
        .iter()
        .filter(|l| l.started.is_some() || l.finished.is_some())
        .collect();
    let t0 = if r.review {
        r.started
    } else {
        r.declared_at.or(r.started)
    };
    let (Some(t0), false) = (t0, bars.is_empty()) else {
        return h! { p { "No step has run yet." } };
    };
    let deadline = r
        .rto_minutes
        .filter(|_| !r.review)
        .map(|m| t0 + chrono::Duration::minutes(i64::from(m)));
    let t1 = r.closed_at.or(r.ended).unwrap_or(t0).max(t0);
    let span = ((t1 - t0).num_milliseconds().max(1000)) as f64;
    let longest = bars
        .iter()
        .map(|l| l.title.chars().count())
        .max()
        .unwrap_or(10);
    // About 6.2 px per character at 11 px; the chart keeps 640 px whatever the labels take.
    let label_w = (longest as f64 * 6.2 + 16.0).clamp(120.0, 620.0);
    let (chart_w, row_h, top) = (640.0, 18.0, 28.0);
    let width = label_w + chart_w + 20.0;
    let height = top + row_h * bars.len() as f64 + 30.0;
    let bottom = height - 24.0;
    let x = |t: chrono::DateTime<chrono::Utc>| {
        label_w + chart_w * ((t - t0).num_milliseconds() as f64 / span).clamp(0.0, 1.0)
    };
    let f = |v: f64| format!("{v:.1}");
    let inside = deadline.filter(|d| *d <= t1);
    let later = deadline.filter(|d| *d > t1);
    let ticks: Vec<(f64, String)> = (0..=5)
        .map(|i| {
            let tx = label_w + chart_w * f64::from(i) / 5.0;
            let at = t0 + chrono::Duration::milliseconds((span * f64::from(i) / 5.0) as i64);
            (tx, at.format("%H:%M:%S").to_string())
        })
        .collect();
    let legend = [
        (StepStatus::Passed, "passed"),
        (StepStatus::Done, "done (manual)"),
        (StepStatus::Failed, "failed"),
        (StepStatus::Skipped, "skipped"),
        (StepStatus::InDoubt, "in doubt"),
        (StepStatus::WouldRun, "dry run"),
    ];
    h! {
        svg xmlns="http://www.w3.org/2000/svg" width=(format!("{width:.0}")) height=(format!("{height:.0}"))
            viewBox=(format!("0 0 {width:.0} {height:.0}")) font-family="system-ui,sans-serif" font-size="11"
            role="img" aria-label="Timeline of the steps" {
            @for (tx, label) in &ticks {
                line x1=(f(*tx)) y1=(f(top - 6.0)) x2=(f(*tx)) y2=(f(bottom)) stroke="#e0e0e0" {}
                text x=(f(*tx)) y="16" text-anchor="middle" fill="#555" { (label) }
            }
            @for (i, l) in bars.iter().enumerate() {
                @let y = top + row_h * i as f64;
                text x=(f(label_w - 8.0)) y=(f(y + 12.5)) text-anchor="end" fill="#222" { (l.title) }
                @let segs = if l.segments.is_empty() {
                    let at = l.finished.or(l.started).unwrap_or(t0);
                    vec![(at, Some(at), l.status)]
                } else {
                    l.segments.clone()
                };
                @for (a, b, st) in segs {
                    @let b = b.unwrap_or(r.ended.unwrap_or(a));
                    @let (xa, xb) = (x(a), x(b));
                    rect x=(f(xa)) y=(f(y + 3.0)) width=(f((xb - xa).max(3.0))) height=(f(row_h - 6.0)) rx="2" fill=(colour(st)) {
                        title { (l.id) " — " (st.label()) }
                    }
                }
            }
            @if let Some(d) = inside {
                @let dx = x(d);
                line x1=(f(dx)) y1=(f(top - 6.0)) x2=(f(dx)) y2=(f(bottom)) stroke="#c62828" stroke-dasharray="4 3" stroke-width="1.5" {}
                text x=(f(dx)) y=(f(bottom + 14.0)) text-anchor="end" fill="#c62828" { "RTO deadline" }
            }
            @if r.declared_at.is_some() && !r.review {
                line x1=(f(label_w)) y1=(f(top - 6.0)) x2=(f(label_w)) y2=(f(bottom)) stroke="#333" stroke-width="1.5" {}
                text x=(f(label_w + 3.0)) y=(f(bottom + 14.0)) fill="#333" { "disaster declared" }
            }
        }
        @if let Some(d) = later {
            p { "RTO deadline " (d.format("%H:%M:%S UTC").to_string()) ": after the last action, so beyond the right edge of the chart." }
        }
        div.legend {
            @for (st, name) in legend {
                span { i style=(format!("background:{}", colour(st))) {} (name) }
            }
        }
    }
}
