//! One incident across a failure plan's parts: the other sessions of the plan (found in the
//! journals by plan id and declaration time) on one clock and one timeline, shared by the
//! Markdown and HTML renderings.

use chrono::{DateTime, Utc};

use super::Report;

/// One part of the incident, as its own journal reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentPart {
    pub session_id: String,
    pub title: String,
    /// 0-based part and the plan's number of parts.
    pub part: usize,
    pub parts: usize,
    pub started: Option<DateTime<Utc>>,
    /// Closed (the clock stops there), else the last recorded action.
    pub ended: Option<DateTime<Utc>>,
    pub closed: bool,
    pub status: String,
    pub counts: String,
    /// Its journal verified.
    pub intact: bool,
    /// The session this report is about.
    pub this: bool,
}

/// The parts of the incident the session at `path` belongs to (empty when it is not part of
/// a plan, or the only part so far). Each part's journal is read and verified.
pub fn parts_for(
    path: &std::path::Path,
    library: Option<&crate::runbook::library::Library>,
    me: &Report,
) -> Vec<IncidentPart> {
    use crate::journal::incident::{incident_of, plan_parts};
    // <data dir>/sessions/<id>.jsonl
    let Some(data_dir) = path.parent().and_then(std::path::Path::parent) else {
        return Vec::new();
    };
    let Ok(all) = plan_parts(data_dir) else {
        return Vec::new();
    };
    let parts = incident_of(&all, &me.session_id);
    if parts.len() < 2 {
        return Vec::new();
    }
    parts
        .into_iter()
        .map(|p| {
            let this = p.session_id == me.session_id;
            let mut line = IncidentPart {
                session_id: p.session_id.clone(),
                title: p.runbook_id.clone(),
                part: p.part,
                parts: p.parts,
                started: Some(p.started),
                this,
                ..IncidentPart::default()
            };
            let read = if this {
                Ok((me.clone(), me.intact))
            } else {
                super::from_journal_alone(&p.path, library).map(|(r, v)| {
                    let ok = r.intact && v.is_intact();
                    (r, ok)
                })
            };
            match read {
                Ok((r, intact)) => {
                    if !r.title.is_empty() {
                        line.title = r.title.clone();
                    }
                    line.ended = r.closed_at.or(r.ended);
                    line.closed = r.closed;
                    line.status = super::session_status(&r);
                    line.counts = r.counts_text();
                    line.intact = intact;
                }
                Err(e) => line.status = format!("journal unreadable: {e}"),
            }
            line
        })
        .collect()
}

/// The incident's clock: from the declaration to the last part's end (the clock stops when
/// every part is closed), against the RTO. `None` when the report covers no other part.
pub fn clock(r: &Report) -> Option<String> {
    if r.incident.is_empty() {
        return None;
    }
    let from = r.declared_at.or(r.started)?;
    let end = r.incident.iter().filter_map(|p| p.ended).max()?;
    let all_closed = r.incident.iter().all(|p| p.closed);
    let secs = (end - from).num_seconds();
    let elapsed = super::fmt_duration(secs);
    let label = r.plan.as_ref().map_or("", |p| p.label.as_str());
    let rto = match (r.rto_minutes, all_closed) {
        (Some(m), true) if secs <= i64::from(m) * 60 => format!(" against RTO {m} min: met"),
        (Some(m), true) => format!(" against RTO {m} min: NOT MET"),
        (Some(m), false) if secs > i64::from(m) * 60 => {
            format!(" so far against RTO {m} min: already NOT MET (parts still open)")
        }
        (Some(m), false) => format!(" so far against RTO {m} min (parts still open)"),
        (None, true) => " (no RTO target)".into(),
        (None, false) => " so far (no RTO target; parts still open)".into(),
    };
    Some(format!(
        "One incident{}: {} parts on one clock, declared {}, {elapsed}{rto}.",
        if label.is_empty() {
            String::new()
        } else {
            format!(" ({label})")
        },
        r.incident.len(),
        from.format("%Y-%m-%d %H:%M:%S UTC"),
    ))
}

/// One timeline: each part's start and end as time since the declaration.
pub fn rows(r: &Report) -> Vec<[String; 5]> {
    let from = r.declared_at.or(r.started);
    let since = |t: Option<DateTime<Utc>>| match (from, t) {
        (Some(f), Some(t)) => format!("T+{}", super::fmt_duration((t - f).num_seconds())),
        _ => "—".into(),
    };
    r.incident
        .iter()
        .map(|p| {
            let mut what = format!("{}/{} {}", p.part + 1, p.parts, p.title);
            if p.this {
                what.push_str(" (this report)");
            }
            let mut status = p.status.clone();
            if !p.counts.is_empty() {
                status = format!("{status}; {}", p.counts);
            }
            if !p.intact {
                status.push_str("; JOURNAL NOT VERIFIED");
            }
            [
                what,
                p.session_id.clone(),
                since(p.started),
                since(p.ended),
                status,
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_clock_runs_from_the_declaration_to_the_last_part() {
        let t = |m: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::minutes(m);
        let mut r = Report {
            declared_at: Some(t(0)),
            rto_minutes: Some(60),
            ..Report::default()
        };
        assert_eq!(clock(&r), None);
        let part = |n: usize, s: i64, e: i64, closed: bool| IncidentPart {
            session_id: format!("s{n}"),
            title: "Restore".into(),
            part: n,
            parts: 2,
            started: Some(t(s)),
            ended: Some(t(e)),
            closed,
            intact: true,
            ..IncidentPart::default()
        };
        r.incident = vec![part(0, 0, 20, true), part(1, 30, 50, true)];
        let c = clock(&r).unwrap_or_default();
        assert!(
            c.contains("2 parts on one clock") && c.contains("met"),
            "{c}"
        );
        assert!(!c.contains("NOT MET"), "{c}");
        r.incident[1].ended = Some(t(90));
        assert!(clock(&r).unwrap_or_default().contains("NOT MET"));
        r.incident[1].closed = false;
        assert!(clock(&r).unwrap_or_default().contains("parts still open"));
        let rows = rows(&r);
        assert_eq!(
            rows[1][2],
            format!("T+{}", crate::report::fmt_duration(1800))
        );
        assert!(rows[0][0].starts_with("1/2 Restore"));
    }
}
