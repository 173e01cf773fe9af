//! Time guidance: how long a step, and the rest of a run, is likely to take, from this
//! group's own history only (earlier sessions' journaled step durations; msdb's backup
//! history: durations, sizes, restore throughput). Pure: no I/O. An estimate always says
//! where it comes from; without history there is none (never a made-up number).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// A duration and what it is based on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    pub secs: i64,
    pub basis: Basis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    /// The median of this step's passed runs in earlier sessions' journals.
    Journal { runs: usize },
    /// The median of msdb backup history durations (backupset start/finish).
    Backups { runs: usize },
    /// Bytes to restore over the median throughput of earlier restores (msdb restore
    /// history joined to its backup sizes).
    Throughput { runs: usize },
}

impl Estimate {
    /// `est. ~4 min (from 12 earlier runs)`.
    pub fn describe(&self) -> String {
        let (n, one, many) = match self.basis {
            Basis::Journal { runs } => (runs, "earlier run", "earlier runs"),
            Basis::Backups { runs } => (runs, "backup in msdb history", "backups in msdb history"),
            Basis::Throughput { runs } => (
                runs,
                "restore's throughput in msdb history",
                "restores' throughput in msdb history",
            ),
        };
        let what = if n == 1 { one } else { many };
        format!("est. ~{} (from {n} {what})", approx(self.secs))
    }
}

/// The words shown for a step without history.
pub const NO_ESTIMATE: &str = "no estimate (no earlier run of this step)";

/// `est. …` or [`NO_ESTIMATE`].
pub fn describe(e: Option<&Estimate>) -> String {
    e.map_or_else(|| NO_ESTIMATE.to_string(), Estimate::describe)
}

/// Rounded for reading: seconds under a minute, whole minutes under two hours, then hours
/// and minutes.
pub fn approx(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 60 {
        format!("{secs} s")
    } else if secs < 2 * 3600 {
        format!("{} min", (secs + 30) / 60)
    } else {
        let m = (secs + 30) / 60;
        format!("{} h {:02} min", m / 60, m % 60)
    }
}

fn median(v: &mut [i64]) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2
    } else {
        v[mid]
    })
}

/// From a step's journaled durations (seconds, passed runs of earlier sessions).
pub fn from_journal(durations: &[i64]) -> Option<Estimate> {
    let mut v: Vec<i64> = durations.iter().copied().filter(|d| *d >= 0).collect();
    let runs = v.len();
    median(&mut v).map(|secs| Estimate {
        secs,
        basis: Basis::Journal { runs },
    })
}

/// One msdb.dbo.backupset row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRow {
    pub start: DateTime<Utc>,
    pub finish: DateTime<Utc>,
    /// backup_size, and compressed_backup_size when the server records it.
    pub size_bytes: i64,
    pub compressed_bytes: Option<i64>,
}

/// How long a backup takes: the median of the history's durations (rows finishing before
/// they start are ignored).
pub fn from_backups(rows: &[BackupRow]) -> Option<Estimate> {
    let mut v: Vec<i64> = rows
        .iter()
        .map(|r| (r.finish - r.start).num_seconds())
        .filter(|d| *d >= 0)
        .collect();
    let runs = v.len();
    median(&mut v).map(|secs| Estimate {
        secs,
        basis: Basis::Backups { runs },
    })
}

/// How long restoring `bytes` takes at the median throughput of earlier restores, each
/// `(bytes restored, seconds)`. Restores of 0 s or 0 bytes say nothing about throughput.
pub fn from_throughput(bytes: i64, restores: &[(i64, i64)]) -> Option<Estimate> {
    let mut rates: Vec<i64> = restores
        .iter()
        .filter(|(b, s)| *b > 0 && *s > 0)
        .map(|(b, s)| b / s)
        .filter(|r| *r > 0)
        .collect();
    let runs = rates.len();
    let rate = median(&mut rates)?;
    (bytes >= 0).then(|| Estimate {
        secs: (bytes + rate - 1) / rate,
        basis: Basis::Throughput { runs },
    })
}

/// Journaled durations (seconds, passed runs) per `(environment, runbook, step)`: this
/// group's own history (a drill's environment is its scenario).
pub type History = BTreeMap<(String, String, String), Vec<i64>>;

/// A step's estimate from the history, if it has any.
pub fn for_step(h: &History, environment: &str, runbook: &str, step: &str) -> Option<Estimate> {
    h.get(&(
        environment.to_string(),
        runbook.to_string(),
        step.to_string(),
    ))
    .and_then(|d| from_journal(d))
}

/// Whether any step of the runbook has history in the environment (else the screen says
/// nothing about time rather than "no estimate" on every step).
pub fn has_runbook(h: &History, environment: &str, runbook: &str) -> bool {
    h.keys().any(|(e, r, _)| e == environment && r == runbook)
}

/// The rest of a run: the estimated seconds of the open steps that have one, and how many
/// open steps have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Remaining {
    pub secs: i64,
    pub estimated: usize,
    pub unknown: usize,
}

pub fn remaining<'a>(open: impl IntoIterator<Item = Option<&'a Estimate>>) -> Remaining {
    open.into_iter().fold(Remaining::default(), |mut r, e| {
        match e {
            Some(e) => {
                r.secs += e.secs;
                r.estimated += 1;
            }
            None => r.unknown += 1,
        }
        r
    })
}

/// `projected finish 03:42, RTO 04:00 ✔` (✖ when past the RTO); when some open steps have no
/// estimate the finish is a lower bound (`≥`) and says how many; `None` when no open step has
/// an estimate (no number is made up).
pub fn projection(
    now: DateTime<Utc>,
    rest: Remaining,
    deadline: Option<DateTime<Utc>>,
) -> Option<String> {
    if rest.estimated == 0 {
        return None;
    }
    let finish = now + chrono::Duration::seconds(rest.secs);
    let at_least = if rest.unknown > 0 { "≥" } else { "" };
    let mut s = format!("projected finish {at_least}{}", finish.format("%H:%M"));
    if let Some(d) = deadline {
        let mark = if finish <= d { "✔" } else { "✖" };
        s.push_str(&format!(", RTO {} {mark}", d.format("%H:%M")));
    }
    if rest.unknown > 0 {
        s.push_str(&format!(" ({} steps without estimate)", rest.unknown));
    }
    Some(s)
}

/// The projection in few characters for a narrow status bar: `finish ≥03:42 ✔`.
pub fn projection_short(
    now: DateTime<Utc>,
    rest: Remaining,
    deadline: Option<DateTime<Utc>>,
) -> Option<String> {
    if rest.estimated == 0 {
        return None;
    }
    let finish = now + chrono::Duration::seconds(rest.secs);
    let at_least = if rest.unknown > 0 { "≥" } else { "" };
    let mark = match deadline {
        Some(d) if finish <= d => " ✔",
        Some(_) => " ✖ RTO",
        None => "",
    };
    Some(format!("finish {at_least}{}{mark}", finish.format("%H:%M")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(s)
    }

    #[test]
    fn a_step_estimate_is_the_median_of_earlier_runs_and_says_so() {
        assert_eq!(from_journal(&[]), None);
        assert_eq!(describe(None), NO_ESTIMATE);
        let e = from_journal(&[200, 240, 10_000]).unwrap();
        assert_eq!(e.secs, 240);
        assert_eq!(e.describe(), "est. ~4 min (from 3 earlier runs)");
        let one = from_journal(&[30]).unwrap();
        assert_eq!(one.describe(), "est. ~30 s (from 1 earlier run)");
        assert_eq!(from_journal(&[10, 20]).map(|e| e.secs), Some(15));
    }

    #[test]
    fn backups_and_restores_from_msdb_history() {
        let row = |s: i64, f: i64| BackupRow {
            start: t(s),
            finish: t(f),
            size_bytes: 1 << 30,
            compressed_bytes: None,
        };
        assert_eq!(from_backups(&[]), None);
        let e = from_backups(&[row(0, 600), row(0, 660), row(100, 50)]).unwrap();
        assert_eq!(e.basis, Basis::Backups { runs: 2 });
        assert_eq!(e.secs, 630);
        assert!(
            e.describe().contains("from 2 backups in msdb history"),
            "{}",
            e.describe()
        );
        // 100 MB/s and 50 MB/s: median 75 MB/s; 750 MB takes 10 s.
        let mb = 1_000_000;
        let e = from_throughput(750 * mb, &[(100 * mb, 1), (100 * mb, 2), (0, 5), (5, 0)]).unwrap();
        assert_eq!((e.secs, e.basis), (10, Basis::Throughput { runs: 2 }));
        assert_eq!(from_throughput(mb, &[(0, 1)]), None);
    }

    #[test]
    fn the_projection_is_against_the_rto_and_never_invented() {
        let e = |s| Estimate {
            secs: s,
            basis: Basis::Journal { runs: 1 },
        };
        let (a, b) = (e(600), e(1200));
        assert_eq!(projection(t(0), remaining([None, None]), Some(t(60))), None);
        let all = remaining([Some(&a), Some(&b)]);
        assert_eq!(
            all,
            Remaining {
                secs: 1800,
                estimated: 2,
                unknown: 0
            }
        );
        assert_eq!(
            projection(t(0), all, Some(t(3600))).as_deref(),
            Some("projected finish 00:30, RTO 01:00 ✔")
        );
        assert_eq!(
            projection(t(0), all, Some(t(1200))).as_deref(),
            Some("projected finish 00:30, RTO 00:20 ✖")
        );
        let some = remaining([Some(&a), None]);
        assert_eq!(
            projection(t(0), some, None).as_deref(),
            Some("projected finish ≥00:10 (1 steps without estimate)")
        );
        assert_eq!(approx(7_260), "2 h 01 min");
        assert_eq!(
            projection_short(t(0), some, Some(t(60))).as_deref(),
            Some("finish ≥00:10 ✖ RTO")
        );
        assert_eq!(projection_short(t(0), remaining([None]), None), None);
    }
}
