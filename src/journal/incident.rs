//! A failure plan's parts across sessions, found from each journal's first record (the plan
//! id and the incident's declaration time), so a later part joins the incident an earlier
//! part declared even when that part ran in another process, and a report can cover them all.

use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::engine::{Event, Record};

/// One session that carried out a part of a failure plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPart {
    pub session_id: String,
    pub path: PathBuf,
    pub runbook_id: String,
    pub plan_id: String,
    pub label: String,
    /// 0-based part, and how many the plan has.
    pub part: usize,
    pub parts: usize,
    pub started: DateTime<Utc>,
    /// The incident's clock: the first part's declaration (or start); later parts copy it.
    pub declared_at: DateTime<Utc>,
    pub rto_minutes: Option<u32>,
    pub rpo_minutes: Option<u32>,
}

/// Passed steps' durations in seconds per `(environment, runbook, step)`.
pub type StepDurations = std::collections::BTreeMap<(String, String, String), Vec<i64>>;

/// Every journaled session started from a failure plan, oldest first. Only first lines are
/// read (the chain is verified when a session is resumed or reported); unreadable files
/// are passed over.
pub fn plan_parts(data_dir: &Path) -> io::Result<Vec<PlanPart>> {
    let mut out: Vec<PlanPart> = super::sessions::session_files(data_dir)?
        .into_iter()
        .filter_map(|(id, path)| {
            let r = first_record(&path)?;
            part_of(id, path, &r)
        })
        .collect();
    out.sort_by(|a, b| (a.started, &a.session_id).cmp(&(b.started, &b.session_id)));
    Ok(out)
}

/// The session's first record, if it reads as one (at most 1 MiB).
fn first_record(path: &Path) -> Option<Record> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut line = String::new();
    io::BufReader::new(f.take(1 << 20))
        .read_line(&mut line)
        .ok()?;
    serde_json::from_str(line.trim_end()).ok()
}

fn part_of(session_id: String, path: PathBuf, r: &Record) -> Option<PlanPart> {
    let Event::SessionStarted {
        runbook_id,
        rto_minutes,
        rpo_minutes,
        declared_at,
        plan: Some(plan),
        ..
    } = &r.event
    else {
        return None;
    };
    Some(PlanPart {
        session_id,
        path,
        runbook_id: runbook_id.clone(),
        plan_id: plan.id.clone(),
        label: plan.label.clone(),
        part: plan.part,
        parts: plan.parts,
        started: r.time,
        declared_at: declared_at.unwrap_or(r.time),
        rto_minutes: *rto_minutes,
        rpo_minutes: *rpo_minutes,
    })
}

/// The part a new part `part` of plan `plan_id` follows: the newest journaled earlier part
/// of that plan (its incident is the one still being worked on).
pub fn earlier_part<'a>(parts: &'a [PlanPart], plan_id: &str, part: usize) -> Option<&'a PlanPart> {
    parts
        .iter()
        .filter(|p| p.plan_id == plan_id && p.part < part)
        .max_by_key(|p| (p.started, p.session_id.clone()))
}

/// Every part of the incident `session_id` belongs to (same plan, same declaration time), in
/// order of start; empty when the session is not part of a plan.
pub fn incident_of<'a>(parts: &'a [PlanPart], session_id: &str) -> Vec<&'a PlanPart> {
    let Some(me) = parts.iter().find(|p| p.session_id == session_id) else {
        return Vec::new();
    };
    parts
        .iter()
        .filter(|p| p.plan_id == me.plan_id && p.declared_at == me.declared_at)
        .collect()
}

/// Passed steps' durations from the `newest` most recent intact, non-dry-run sessions, for
/// time guidance, per `(environment, runbook, step)`. A step's duration runs from its last
/// start to its passed finish.
pub fn step_durations(data_dir: &Path, newest: usize) -> StepDurations {
    let mut out = StepDurations::new();
    let Ok(mut files) = super::sessions::session_files(data_dir) else {
        return out;
    };
    // Newest first by id (`YYYYmmdd-HHMMSS-runbook[-n]`).
    files.sort_by(|a, b| b.0.cmp(&a.0));
    for (_, path) in files.into_iter().take(newest) {
        let Ok(read) = super::read_records(&path) else {
            continue;
        };
        if !read.report.is_intact() {
            continue;
        }
        let mut key = None;
        let mut started: std::collections::HashMap<String, DateTime<Utc>> = Default::default();
        for r in &read.entries {
            match (&r.event, &r.step) {
                (
                    Event::SessionStarted {
                        runbook_id,
                        environment,
                        dry_run: false,
                        ..
                    },
                    _,
                ) => key = Some((environment.clone(), runbook_id.clone())),
                (Event::StepStarted { .. }, Some(step)) => {
                    started.insert(step.clone(), r.time);
                }
                (
                    Event::StepFinished {
                        outcome: crate::engine::Outcome::Passed,
                        ..
                    },
                    Some(step),
                ) => {
                    if let (Some((env, rb)), Some(at)) = (&key, started.remove(step)) {
                        out.entry((env.clone(), rb.clone(), step.clone()))
                            .or_default()
                            .push((r.time - at).num_seconds());
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(id: &str, plan: &str, n: usize, started: i64, declared: i64) -> PlanPart {
        let t = |m: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::minutes(m);
        PlanPart {
            session_id: id.into(),
            path: PathBuf::from(id),
            runbook_id: "restore".into(),
            plan_id: plan.into(),
            label: plan.into(),
            part: n,
            parts: 2,
            started: t(started),
            declared_at: t(declared),
            rto_minutes: Some(240),
            rpo_minutes: None,
        }
    }

    #[test]
    fn a_later_part_follows_the_newest_earlier_part_of_its_plan() {
        let parts = vec![
            part("old-1", "sql", 0, 0, 0),
            part("old-2", "sql", 1, 30, 0),
            part("new-1", "sql", 0, 100, 100),
            part("other", "host", 0, 200, 200),
        ];
        assert_eq!(
            earlier_part(&parts, "sql", 1).map(|p| p.session_id.as_str()),
            Some("new-1")
        );
        assert_eq!(earlier_part(&parts, "sql", 0), None);
        assert_eq!(earlier_part(&parts, "none", 1), None);
        let ids = |v: Vec<&PlanPart>| v.iter().map(|p| p.session_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(incident_of(&parts, "old-2")), ["old-1", "old-2"]);
        assert_eq!(ids(incident_of(&parts, "new-1")), ["new-1"]);
        assert!(incident_of(&parts, "missing").is_empty());
    }

    #[test]
    fn parts_are_read_from_first_lines_and_bad_files_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = super::super::sessions::sessions_dir(dir.path());
        std::fs::create_dir_all(&sessions).unwrap();
        std::fs::write(sessions.join("bad.jsonl"), "not json\n").unwrap();
        std::fs::write(sessions.join("empty.jsonl"), "").unwrap();
        assert!(plan_parts(dir.path()).unwrap().is_empty());
    }
}
