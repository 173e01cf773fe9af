//! Session reports: what happened, who did it, how long it took, against the RTO and RPO
//! targets, with the evidence and the journal's final hash. Markdown and one self-contained
//! printable HTML file with an SVG timeline.

mod html;
pub mod incident;
mod markdown;
mod timeline;

pub use html::html;
pub use markdown::markdown;
pub use timeline::{Report, StepLine, StepStatus, build};

/// A readiness review (not an incident): framed by scope, reviewers, findings and verdict,
/// with no disaster declaration or RTO clock. The runbook says so (`kind = "review"`, recorded
/// as `review` when the session starts); journals written before that field existed are
/// reviews when their runbook is the shipped `readiness`.
pub fn is_review(recorded: bool, runbook_id: &str) -> bool {
    recorded || runbook_id == "readiness"
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(Format::Markdown),
            "html" | "htm" => Some(Format::Html),
            _ => None,
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Html => "html",
        }
    }
}

/// Reads and verifies a session journal and builds its report, with the runbook from
/// `library` when it has it (titles, sections, order). The verification says whether the
/// report covers the whole journal.
pub fn from_journal(
    path: &std::path::Path,
    library: Option<&crate::runbook::library::Library>,
) -> std::io::Result<(Report, crate::journal::VerifyReport)> {
    let (mut report, verified) = from_journal_alone(path, library)?;
    // Part of a failure plan: the other parts, on one clock and one timeline.
    report.incident = incident::parts_for(path, library, &report);
    Ok((report, verified))
}

/// [`from_journal`] without the other parts of its incident.
fn from_journal_alone(
    path: &std::path::Path,
    library: Option<&crate::runbook::library::Library>,
) -> std::io::Result<(Report, crate::journal::VerifyReport)> {
    let read = crate::journal::read_records(path)?;
    if read.entries.is_empty() && read.report.is_intact() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the session never started (the journal has no record), so there is nothing to report",
        ));
    }
    let runbook = read.entries.iter().find_map(|r| match &r.event {
        crate::engine::Event::SessionStarted { runbook_id, .. } => {
            library.and_then(|l| l.get(runbook_id))
        }
        _ => None,
    });
    let mut verified = read.report;
    let mut status = verified.to_string();
    let binding = crate::journal::sessions::binding_problem_in(path, &read.entries);
    if let Some(p) = &binding {
        status.push_str("; ");
        status.push_str(p);
    }
    let mut report = build(
        &read.entries,
        runbook.as_deref(),
        &status,
        &verified.head,
        verified.is_intact() && binding.is_none(),
    );
    if let Some(p) = binding {
        verified.warnings.push(p);
        if verified.first_bad.is_none() {
            verified.first_bad = Some(crate::journal::BadRecord {
                line: 1,
                seq: Some(1),
                problem: crate::journal::Problem::WrongSession,
            });
        }
    }
    let allowed = crate::journal::signing::load_allowed_signers(
        &crate::paths::config_dir().join("allowed_signers"),
    )
    .unwrap_or_default();
    report.signatures = crate::journal::signing::check_signatures(path, &allowed)
        .unwrap_or_default()
        .into_iter()
        .map(|s| timeline::SignatureRow {
            principal: s.principal,
            seq: s.seq,
            valid: s.status.is_valid(),
            status: s.status.to_string(),
        })
        .collect();
    Ok((report, verified))
}

pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Markdown => markdown(report),
        Format::Html => html(report),
    }
}

/// The RPO achieved against its target, e.g. ` — 15 min of work at risk (target 15 min: met)`.
pub fn rpo_note(r: &Report) -> String {
    match (r.rpo_achieved_minutes(), r.rpo_minutes) {
        (Some(a), Some(t)) if a <= i64::from(t) => {
            format!(" — {a} min of work at risk (target {t} min: met)")
        }
        (Some(a), Some(t)) => format!(" — {a} min of work at risk (target {t} min: NOT MET)"),
        (Some(a), None) => format!(" — {a} min of work at risk"),
        (None, Some(t)) => format!(
            " (target: at most {t} min of work lost; met or not cannot be said: no mark time was recorded)"
        ),
        (None, None) => String::new(),
    }
}

/// A drill's group was simulated: say that the dates in its evidence are the simulator's.
pub fn simulated_note(r: &Report) -> Option<String> {
    r.simulated.then(|| {
        format!(
            "DRILL: the SQL Servers were simulated by btsdr ({}). Dates and times inside the evidence (backups, marks, job history) come from the simulated group's clock, not from real backups; the step times are real.",
            r.environment
        )
    })
}

/// A review's scope: the runbook, its sections and the environment.
pub fn scope(r: &Report) -> String {
    let mut sections: Vec<&str> = Vec::new();
    for l in r
        .steps
        .iter()
        .filter(|l| l.status != timeline::StepStatus::NotApplicable)
    {
        if !l.section.is_empty() && !sections.contains(&l.section.as_str()) {
            sections.push(&l.section);
        }
    }
    let title = if r.title.is_empty() {
        &r.runbook_id
    } else {
        &r.title
    };
    if sections.is_empty() {
        format!("{title} on {}", r.environment)
    } else {
        format!("{title} on {}: {}", r.environment, sections.join("; "))
    }
}

/// Who signed the review (name and role), or that nobody has yet.
pub fn reviewers(r: &Report) -> String {
    if r.signers.is_empty() {
        return "not signed yet".into();
    }
    r.signers
        .iter()
        .map(|s| format!("{} ({})", s.name, s.role))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Open, closed (when, by whom, with what) or aborted.
pub fn session_status(r: &Report) -> String {
    if let Some(a) = &r.aborted {
        return format!("aborted: {a}");
    }
    match r.closed_at {
        Some(at) if r.closed => {
            let d = r.closed_details.trim();
            // The open steps themselves are listed under Controls; here only how many.
            let d = match d.strip_prefix("session closed with open steps: ") {
                Some(rest) => {
                    let (list, reason) = rest.split_once(" — reason: ").unwrap_or((rest, ""));
                    format!(
                        " with {} step(s) open — reason: {reason}",
                        list.split(", ").count()
                    )
                }
                None if d.is_empty() || d == "session closed" => String::new(),
                None => format!(" — {d}"),
            };
            format!(
                "closed at {} by {}{d}",
                at.format("%Y-%m-%d %H:%M:%S UTC"),
                r.closed_by
            )
        }
        _ if r.closed => "closed".into(),
        _ => "open (not closed)".into(),
    }
}

pub fn findings_title(r: &Report) -> &'static str {
    if r.review {
        "Findings and exceptions"
    } else {
        "Failures, skips and open questions"
    }
}

/// The controls an auditor checks, one sentence each: the two-person rule, each
/// destructive step (word, who confirmed, who approved, who ran it), crash recovery,
/// reopenings, and how the session ended.
pub fn controls(r: &Report) -> Vec<String> {
    let mut out = vec![if r.two_person_rule {
        "Two-person rule: ON — each destructive step needed a second, different person to approve it.".to_string()
    } else {
        "Two-person rule: off — one person confirmed each destructive step.".to_string()
    }];
    let destructive: Vec<_> = r.steps.iter().filter(|l| l.destructive).collect();
    if destructive.is_empty() {
        out.push("Destructive steps: none was confirmed in this session.".into());
    }
    for l in destructive {
        let word = l
            .word
            .as_deref()
            .map_or_else(String::new, |w| format!("typed word \"{w}\"; "));
        let who = |v: &[String]| {
            if v.is_empty() {
                "nobody".to_string()
            } else {
                v.join(", ")
            }
        };
        let approved = if r.two_person_rule {
            format!("; approved by {}", who(&l.approved_by))
        } else {
            String::new()
        };
        out.push(format!(
            "Destructive step {} ({}): {}; {word}confirmed by {}{approved}; acted on it: {}.",
            l.id,
            l.title,
            l.status.label(),
            who(&l.confirmed_by),
            if l.people.is_empty() {
                "nobody".into()
            } else {
                l.people.join(", ")
            }
        ));
    }
    for (at, who, in_doubt) in &r.resumes {
        let what = if in_doubt.is_empty() {
            "no step was in doubt".to_string()
        } else {
            format!("in doubt: {}", in_doubt.join(", "))
        };
        out.push(format!(
            "Resumed at {} by {who} after a stop or crash; {what}.",
            at.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    for l in &r.steps {
        for c in &l.controls {
            out.push(format!("Step {}: {c}.", l.id));
        }
    }
    out.push(
        if let (true, Some(at)) = (r.closed && !r.closed_details.is_empty(), r.closed_at) {
            format!(
                "Session: closed at {} by {}; the close record says: {}.",
                at.format("%Y-%m-%d %H:%M:%S UTC"),
                r.closed_by,
                r.closed_details.trim()
            )
        } else {
            format!("Session: {}.", session_status(r))
        },
    );
    out
}

/// `90` -> `1 h 30 min`; `45` -> `45 min`; seconds under a minute shown as such.
pub fn fmt_duration(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 60 {
        return format!("{secs} s");
    }
    let mins = secs / 60;
    if mins < 60 {
        return format!("{mins} min {} s", secs % 60);
    }
    format!("{} h {:02} min", mins / 60, mins % 60)
}
