//! The Markdown report.

use std::fmt::Write as _;

use super::fmt_duration;
use super::timeline::{Report, StepStatus};

fn t(d: Option<chrono::DateTime<chrono::Utc>>) -> String {
    d.map_or_else(
        || "—".to_string(),
        |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// Untrusted text (server values, errors, names, notes) as inert Markdown: control
/// characters made visible, HTML's `& < >` as entities (no `<script>` or `<img onerror>`
/// reaches a renderer), the Markdown that makes links, code, emphasis and table cells
/// (brackets, backticks, `*`, `|`, backslash) backslash-escaped, one line.
pub fn text(s: &str) -> String {
    let s = crate::plain::plain_line(s);
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '[' | ']' | '|' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A table cell: [`text`].
fn cell(s: &str) -> String {
    text(s)
}

/// An inline code span; text that could close it (a backtick) is written as [`text`].
fn code(s: &str) -> String {
    let s = crate::plain::plain_line(s);
    if s.contains('`') || s.trim().is_empty() {
        text(&s)
    } else {
        format!("`{s}`")
    }
}

/// A fenced block: the fence is longer than any run of backticks inside.
fn fenced(lang: &str, body: &str) -> String {
    let body = crate::plain::plain(body);
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{lang}\n{}\n{fence}", body.trim())
}

// TODO(issue 16): split (one function per report section).
#[allow(clippy::too_many_lines)]
pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let mode = match (r.drill, r.dry_run) {
        (true, true) => " — DRILL, DRY RUN",
        (true, false) => " — DRILL",
        (false, true) => " — DRY RUN",
        _ => "",
    };
    let _ = writeln!(
        o,
        "# {}{mode}\n",
        text(if r.title.is_empty() {
            &r.runbook_id
        } else {
            &r.title
        })
    );
    if !r.intact {
        let _ = writeln!(
            o,
            "> **JOURNAL DAMAGED — DO NOT SIGN.** {}. This report covers only the records \
             before the damage; keep the journal as evidence.\n",
            text(&r.journal_status)
        );
    }
    if let Some(note) = super::simulated_note(r) {
        let _ = writeln!(o, "> {}\n", text(&note));
    }
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(o, "| Session | {} |", code(&r.session_id));
    let _ = writeln!(
        o,
        "| Runbook | {} v{} (content SHA-256 {}) |",
        code(&r.runbook_id),
        text(&r.version),
        code(short(&r.content_hash))
    );
    let _ = writeln!(o, "| Environment | {} |", cell(&r.environment));
    if let Some(p) = &r.plan {
        let _ = writeln!(
            o,
            "| Failure plan | {} — part {} of {} |",
            cell(&p.label),
            p.part + 1,
            p.parts
        );
    }
    if r.review {
        let _ = writeln!(o, "| Scope | {} |", cell(&super::scope(r)));
        let _ = writeln!(o, "| Reviewers | {} |", cell(&super::reviewers(r)));
    }
    let _ = writeln!(o, "| Operators | {} |", cell(&r.operators.join(", ")));
    if !r.review && r.declared_at.is_some() {
        let _ = writeln!(o, "| Disaster declared | {} |", t(r.declared_at));
    }
    let _ = writeln!(
        o,
        "| Started / last action | {} / {} |",
        t(r.started),
        t(r.ended)
    );
    let _ = writeln!(o, "| Session | {} |", cell(&super::session_status(r)));
    if !r.review {
        let elapsed = r
            .elapsed_secs()
            .map_or_else(|| "—".to_string(), fmt_duration);
        let open = r.aborted.is_none() && !r.closed;
        let rto = match (r.rto_minutes, r.rto_met()) {
            (Some(m), Some(true)) if open => format!(
                "{elapsed} so far against a target of {m} min: within target so far (the session is still open)"
            ),
            (Some(m), Some(true)) => format!("{elapsed} against a target of {m} min: **met**"),
            (Some(m), Some(false)) => format!("{elapsed} against a target of {m} min: **MISSED**"),
            (Some(m), None) => format!("target {m} min; not measurable yet"),
            (None, _) => format!("{elapsed} (no target set)"),
        };
        let label = if open { "RTO so far" } else { "RTO achieved" };
        let _ = writeln!(o, "| {label} | {rto} |");
        let rpo = match &r.mark {
            Some((name, Some(time))) => {
                format!("restored to mark {} at {}", code(name), cell(time))
            }
            Some((name, None)) => format!("restored to mark {}", code(name)),
            None => "no restore to a mark recorded".to_string(),
        };
        let _ = writeln!(o, "| RPO | {rpo}{} |", text(&super::rpo_note(r)));
    }
    let (verdict, _) = r.verdict();
    let _ = writeln!(o, "| Verdict | **{}** |", text(&verdict));
    if let Some(d) = r.signers.iter().rev().find(|s| !s.next_review.is_empty()) {
        let _ = writeln!(o, "| Next review | {} |", cell(&d.next_review));
    }
    let _ = writeln!(o, "| Steps | {} |\n", text(&r.counts_text()));
    incident(&mut o, r);

    let _ = writeln!(
        o,
        "## Steps\n\n| # | Step | Status | Started | Duration | By |\n|---|---|---|---|---|---|"
    );
    for (i, l) in r.steps.iter().enumerate() {
        let started = l
            .started
            .map(|d| d.format("%H:%M:%S").to_string())
            .unwrap_or_else(|| "—".into());
        let _ = writeln!(
            o,
            "| {} | {} {} | {} | {started} | {} | {} |",
            i + 1,
            cell(&l.title),
            code(&l.id),
            l.status.label(),
            text(&l.duration_text()),
            cell(&l.by_all())
        );
    }
    o.push('\n');

    let findings = r.findings();
    if !findings.is_empty() {
        let _ = writeln!(o, "## {}\n", super::findings_title(r));
        for (l, why) in findings {
            let _ = writeln!(
                o,
                "- **{}** {} — {}",
                text(&l.title),
                code(&l.id),
                text(why.trim())
            );
        }
        o.push('\n');
    }

    let _ = writeln!(o, "## Controls\n");
    for line in super::controls(r) {
        let _ = writeln!(o, "- {}", text(&line));
    }
    o.push('\n');

    let _ = writeln!(o, "## Evidence\n");
    for l in r
        .steps
        .iter()
        .filter(|l| !matches!(l.status, StepStatus::NotRun | StepStatus::NotApplicable))
    {
        let _ = writeln!(
            o,
            "### {} {} — {}\n",
            text(&l.title),
            code(&l.id),
            l.status.label()
        );
        if !l.attested.is_empty() && l.status == StepStatus::Done {
            let _ = writeln!(o, "Attested ({}):\n", text(&l.by_all()));
            for line in l.attested.lines() {
                let _ = writeln!(o, "> {}", text(line));
            }
        }
        for f in &l.failed_attempts {
            let _ = writeln!(o, "- ✘ {}", text(f));
        }
        if let (Some(e), true) = (&l.error, l.failed_attempts.is_empty()) {
            let _ = writeln!(o, "- ✘ {}", text(e));
        }
        if !l.skip_reason.is_empty() && l.status == StepStatus::Skipped {
            let _ = writeln!(o, "Skipped by {}: {}", text(&l.by), text(&l.skip_reason));
        }
        if let Some(s) = &l.statement {
            let _ = writeln!(
                o,
                "\nOn the {} server, database {}:\n\n{}",
                s.role,
                code(&s.database),
                fenced("sql", &s.sql)
            );
            if !s.params.is_empty() {
                let ps: Vec<String> = s
                    .params
                    .iter()
                    .map(|(n, v)| format!("@{} = {}", text(n), text(&v.to_string())))
                    .collect();
                let _ = writeln!(o, "Parameters: {}", ps.join(", "));
            }
            o.push('\n');
        }
        for (ok, text) in &l.assertions {
            let _ = writeln!(o, "- {} {}", if *ok { "✔" } else { "✘" }, self::text(text));
        }
        if let Some(set) = &l.evidence
            && !set.columns.is_empty()
        {
            let _ = writeln!(
                o,
                "\n| {} |\n|{}",
                set.columns
                    .iter()
                    .map(|c| cell(&c.name))
                    .collect::<Vec<_>>()
                    .join(" | "),
                "---|".repeat(set.columns.len())
            );
            for row in set.rows.iter().take(50) {
                let _ = writeln!(
                    o,
                    "| {} |",
                    row.iter()
                        .map(|v| cell(&v.to_string()))
                        .collect::<Vec<_>>()
                        .join(" | ")
                );
            }
            if set.rows.len() > 50 {
                let _ = writeln!(o, "\n({} more rows in the journal)", set.rows.len() - 50);
            }
            if set.not_kept > 0 {
                let _ = writeln!(
                    o,
                    "\n**Result cap reached:** {} more rows were received and not kept (max_result_rows / max_result_mib).",
                    set.not_kept
                );
            }
        }
        if !l.note.is_empty() {
            let _ = writeln!(o, "\nNote ({}): {}", text(&l.by), text(&l.note));
        }
        if !l.manual_evidence.is_empty() {
            let _ = writeln!(o, "\nEvidence recorded: {}", text(&l.manual_evidence));
        }
        if let Some((name, sha)) = &l.file {
            let at = if l.file_path.is_empty() {
                String::new()
            } else {
                format!(" to {}", code(&l.file_path))
            };
            let _ = writeln!(o, "\nWrote {}{at} (SHA-256 {})", code(name), code(sha));
        }
        o.push('\n');
    }

    if !r.notes.is_empty() {
        let _ = writeln!(o, "## Notes\n");
        for (at, who, text) in &r.notes {
            let _ = writeln!(
                o,
                "- {} {}: {}",
                at.format("%H:%M:%S"),
                self::text(who),
                self::text(text)
            );
        }
        o.push('\n');
    }

    let comments: Vec<_> = r.signers.iter().filter(|s| !s.comment.is_empty()).collect();
    if !comments.is_empty() {
        let _ = writeln!(
            o,
            "## {}\n",
            if r.review {
                "Reviewer comments"
            } else {
                "Signer comments"
            }
        );
        for s in comments {
            let _ = writeln!(
                o,
                "- **{}** ({}): {}",
                text(&s.name),
                text(&s.role),
                text(&s.comment)
            );
        }
        o.push('\n');
    }

    let _ = writeln!(
        o,
        "## Journal\n\n{}\n\nFinal hash: {}\n",
        text(&r.journal_status),
        code(&r.final_hash)
    );
    let _ = writeln!(o, "## Sign-off\n\n{}\n", r.attestation());
    for s in &r.signers {
        let exceptions = if s.exceptions.is_empty() {
            String::new()
        } else {
            format!(
                " — **signed with exceptions**: {}",
                text(&s.exceptions.join("; "))
            )
        };
        let _ = writeln!(
            o,
            "- Signed off by **{}** ({}) at {} — {}{exceptions}",
            text(&s.name),
            text(&s.role),
            s.at.format("%Y-%m-%d %H:%M:%S UTC"),
            r.signoff_status(&s.name)
        );
    }
    if !r.signatures.is_empty() {
        let _ = writeln!(o, "\nSSH signatures of the journal:\n");
        for s in &r.signatures {
            let _ = writeln!(
                o,
                "- {} over record {}: {}",
                text(&s.principal),
                s.seq,
                text(&s.status)
            );
        }
    }
    let _ = writeln!(
        o,
        "\n| Name | Role | Signature | Date |\n|---|---|---|---|\n| | | | |\n| | | | |"
    );
    o
}

pub(super) fn short(h: &str) -> &str {
    &h[..h.len().min(16)]
}

/// The incident's parts on one clock (only when the session is one part of several).
fn incident(o: &mut String, r: &Report) {
    let Some(clock) = super::incident::clock(r) else {
        return;
    };
    let _ = writeln!(
        o,
        "## Incident\n\n{}\n\n| Part | Session | Started | Ended | Status |\n|---|---|---|---|---|",
        text(&clock)
    );
    for row in super::incident::rows(r) {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        let _ = writeln!(o, "| {} |", cells.join(" | "));
    }
    o.push('\n');
}
