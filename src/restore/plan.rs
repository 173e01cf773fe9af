//! Planning a restore to a BizTalk mark from the backup files themselves (issue 11, "Plan
//! from what survives"): pure, no I/O. The input is each file's `RESTORE HEADERONLY` row; the
//! output is, per database, the full backup and the log backups to apply up to one mark that
//! every database reached, or a refusal that names what is missing.
//!
//! What the files say, and where the mark comes from:
//! - `RESTORE HEADERONLY` gives `BackupType` (1 database, 2 log, 5 differential), `ServerName`,
//!   `DatabaseName`, `FirstLSN`, `LastLSN`, `DatabaseBackupLSN`, `BackupStartDate` and
//!   `BackupSize` (learn.microsoft.com/sql/t-sql/statements/restore-statements-headeronly-transact-sql).
//!   It has no column for the marks a log backup holds (those are in msdb.dbo.logmarkhistory
//!   on the server that took them, which may be gone).
//! - BizTalk's backup job names each file `<server>_<db>_<Full|Log>_<mark>.bak` (server with
//!   `\` as `_`), the mark being the one `sp_MarkAll` set in every database just before the
//!   log backups of that set. So the mark of a file is read from its name, checked against the
//!   header's server and database.
//! - Log chain (learn.microsoft.com/sql/relational-databases/backup-restore/log-sequence-numbers-and-restore-planning):
//!   the first log backup after a full must hold the full's `LastLSN`
//!   (`FirstLSN <= full.LastLSN < LastLSN`); each next log starts where the previous ended
//!   (`FirstLSN <= previous.LastLSN < LastLSN`). Anything else is a gap (SQL Server's 4305).
//! - Partial backup sets (Microsoft, "Backing Up and Restoring BizTalk Server Databases",
//!   partial backup sets): a set in which some database has no file is not used, nor any log
//!   set after it up to the next full set. A gap in one database's chain is treated the same.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One file's `RESTORE HEADERONLY` row (the columns the plan uses).
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderRow {
    /// The path the header was read from (`RESTORE ... FROM DISK = ` this).
    pub file: String,
    pub server: String,
    pub database: String,
    /// 1 database, 2 log, 5 differential, ...
    pub backup_type: i64,
    pub first_lsn: u128,
    pub last_lsn: u128,
    pub database_backup_lsn: u128,
    /// `BackupStartDate` as ISO text (sorts in time order); empty when unknown.
    pub start: String,
    pub size_bytes: u64,
}

/// Where a plan came from, said with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanSource {
    /// Headers of the files in this folder, read on the instance that restores.
    Files { folder: String, server: String },
    /// `adm_BackupHistory` in the management database on the source server.
    History { server: String },
}

impl fmt::Display for PlanSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanSource::Files { folder, server } => {
                write!(f, "backup files in {folder} (headers read on {server})")
            }
            PlanSource::History { server } => write!(f, "adm_BackupHistory on {server}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    Full,
    Log,
}

/// One RESTORE of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedFile {
    pub file: String,
    pub kind: FileKind,
    /// The mark in the file's name.
    pub mark: String,
    /// `Some(mark)` on the last log: `WITH STOPATMARK`.
    pub stop_at_mark: Option<String>,
    pub first_lsn: u128,
    pub last_lsn: u128,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatabasePlan {
    pub database: String,
    /// The full backup, then the logs in order; all `WITH NORECOVERY`.
    pub files: Vec<PlannedFile>,
}

impl DatabasePlan {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size_bytes).sum()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RestorePlan {
    pub source: PlanSource,
    pub mark: String,
    /// Every mark the files reach, oldest first (`mark` is one of them).
    pub reachable: Vec<String>,
    pub databases: Vec<DatabasePlan>,
    /// Files not used, with why (not BizTalk-named, partial set, after a gap, after the mark...).
    pub ignored: Vec<(String, String)>,
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("no backup files found in {origin}: nothing to plan from")]
    NoFiles { origin: PlanSource },
    #[error(
        "no full backup set with a file for every database in {origin}; found: {found}. Restore needs one full backup of each database taken in the same set"
    )]
    NoFullSet { origin: PlanSource, found: String },
    #[error(
        "mark {wanted} cannot be reached from {origin}: {why}. Marks that can be reached: {reachable}"
    )]
    MarkNotReachable {
        origin: PlanSource,
        wanted: String,
        why: String,
        reachable: String,
    },
}

struct Named {
    row: HeaderRow,
    kind: FileKind,
    mark: String,
}

/// The file name without its folder (either slash).
fn base_name(path: &str) -> &str {
    path.rsplit(['\\', '/']).next().unwrap_or(path)
}

/// The mark in a BizTalk backup file name, checked against the header's server and database.
pub fn mark_from_name(path: &str, server: &str, database: &str) -> Option<(FileKind, String)> {
    let name = base_name(path);
    let stem = name
        .len()
        .checked_sub(4)
        .filter(|&n| name.is_char_boundary(n) && name[n..].eq_ignore_ascii_case(".bak"))
        .map(|n| &name[..n])?;
    let prefix = format!("{}_{}_", server.replace('\\', "_"), database);
    let rest = stem
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(&prefix))
        .and_then(|_| stem.get(prefix.len()..))?;
    let (kind, mark) = if let Some(m) = strip_ci(rest, "Full_") {
        (FileKind::Full, m)
    } else if let Some(m) = strip_ci(rest, "Log_") {
        (FileKind::Log, m)
    } else {
        return None;
    };
    (!mark.is_empty()).then(|| (kind, mark.to_string()))
}

fn strip_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .and_then(|_| s.get(prefix.len()..))
}

/// A backup set: every file carrying one mark in its name, of one kind.
struct Set {
    kind: FileKind,
    mark: String,
    start: String,
    /// database (lower case) -> file index
    files: BTreeMap<String, usize>,
}

/// Plans the restore of every database found in `rows` to `wanted` (or the latest mark every
/// database reached).
// TODO(issue 16): split along its seams.
#[allow(clippy::too_many_lines)]
pub fn plan_from_headers(
    source: PlanSource,
    rows: &[HeaderRow],
    wanted: Option<&str>,
) -> Result<RestorePlan, PlanError> {
    let mut ignored = Vec::new();
    let mut named: Vec<Named> = Vec::new();
    for r in rows {
        let expected = match r.backup_type {
            1 => FileKind::Full,
            2 => FileKind::Log,
            t => {
                ignored.push((
                    r.file.clone(),
                    format!(
                        "BackupType {t} (BizTalk's job writes only full (1) and log (2) backups)"
                    ),
                ));
                continue;
            }
        };
        match mark_from_name(&r.file, &r.server, &r.database) {
            Some((kind, mark)) if kind == expected => named.push(Named {
                row: r.clone(),
                kind,
                mark,
            }),
            Some(_) => ignored.push((
                r.file.clone(),
                format!(
                    "its name says {} but its header says BackupType {}",
                    if expected == FileKind::Full {
                        "Log"
                    } else {
                        "Full"
                    },
                    r.backup_type
                ),
            )),
            None => ignored.push((
                r.file.clone(),
                format!(
                    "not named <server>_<db>_<Full|Log>_<mark>.bak for server {} and database {}",
                    r.server, r.database
                ),
            )),
        }
    }
    if named.is_empty() {
        return Err(PlanError::NoFiles { origin: source });
    }
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for n in &named {
        names
            .entry(n.row.database.to_lowercase())
            .or_insert_with(|| n.row.database.clone());
    }
    // Group into sets, in time order.
    let mut sets: Vec<Set> = Vec::new();
    for (i, n) in named.iter().enumerate() {
        let db = n.row.database.to_lowercase();
        match sets
            .iter_mut()
            .find(|s| s.kind == n.kind && s.mark.eq_ignore_ascii_case(&n.mark))
        {
            Some(s) => {
                if s.start.is_empty() || (!n.row.start.is_empty() && n.row.start < s.start) {
                    s.start = n.row.start.clone();
                }
                if let Some(prev) = s.files.insert(db, i) {
                    ignored.push((
                        named[prev].row.file.clone(),
                        format!("another file of the same set: {}", n.row.file),
                    ));
                }
            }
            None => sets.push(Set {
                kind: n.kind,
                mark: n.mark.clone(),
                start: n.row.start.clone(),
                files: BTreeMap::from([(db, i)]),
            }),
        }
    }
    sets.sort_by(|a, b| {
        (a.start.as_str(), a.kind, a.mark.as_str()).cmp(&(
            b.start.as_str(),
            b.kind,
            b.mark.as_str(),
        ))
    });
    let all: BTreeSet<&String> = names.keys().collect();
    let missing = |s: &Set| -> Vec<String> {
        all.iter()
            .filter(|d| !s.files.contains_key(d.as_str()))
            .map(|d| names.get(d.as_str()).cloned().unwrap_or_default())
            .collect()
    };

    // Walk the sets: a chain starts at each complete full set; a partial set or a gap stops
    // it until the next complete full set.
    struct Chain {
        full: usize,
        logs: Vec<usize>,
    }
    let mut chain: Option<Chain> = None;
    let mut broken: Option<String> = None;
    // mark -> (full set index, log set indexes up to it)
    let mut reachable: Vec<(String, usize, Vec<usize>)> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut skipped: Vec<(usize, String)> = Vec::new();
    for (si, s) in sets.iter().enumerate() {
        let miss = missing(s);
        match s.kind {
            FileKind::Full => {
                if miss.is_empty() {
                    chain = Some(Chain {
                        full: si,
                        logs: Vec::new(),
                    });
                    broken = None;
                } else {
                    let why = format!(
                        "full set {} is partial (no file for {})",
                        s.mark,
                        miss.join(", ")
                    );
                    problems.push(why.clone());
                    skipped.push((si, why.clone()));
                    if chain.is_some() {
                        broken = Some(why);
                    }
                }
            }
            FileKind::Log => {
                if let Some(why) = &broken {
                    skipped.push((si, format!("after {why}")));
                    continue;
                }
                let Some(c) = chain.as_mut() else {
                    skipped.push((si, "no complete full set before it".into()));
                    continue;
                };
                if !miss.is_empty() {
                    let why = format!(
                        "log set {} is partial (no file for {})",
                        s.mark,
                        miss.join(", ")
                    );
                    problems.push(why.clone());
                    skipped.push((si, why.clone()));
                    broken = Some(why);
                    continue;
                }
                // LSN continuity, per database, from the previous file of the chain.
                let prev_set = c.logs.last().copied().unwrap_or(c.full);
                let mut gaps = Vec::new();
                for (db, &fi) in &s.files {
                    let Some(&pi) = sets[prev_set].files.get(db) else {
                        continue;
                    };
                    let (p, f) = (&named[pi].row, &named[fi].row);
                    if !(f.first_lsn <= p.last_lsn && p.last_lsn < f.last_lsn) {
                        gaps.push(format!(
                            "{}: {} covers LSN {}..{}, which does not continue {} (ends at {})",
                            f.database,
                            base_name(&f.file),
                            f.first_lsn,
                            f.last_lsn,
                            base_name(&p.file),
                            p.last_lsn
                        ));
                    }
                }
                if !gaps.is_empty() {
                    let why = format!(
                        "a gap in the log chain at set {}: {}",
                        s.mark,
                        gaps.join("; ")
                    );
                    problems.push(why.clone());
                    skipped.push((si, why.clone()));
                    broken = Some(why);
                    continue;
                }
                c.logs.push(si);
                reachable.push((s.mark.clone(), c.full, c.logs.clone()));
            }
        }
    }
    if !sets
        .iter()
        .any(|s| s.kind == FileKind::Full && missing(s).is_empty())
    {
        let found = sets
            .iter()
            .filter(|s| s.kind == FileKind::Full)
            .map(|s| format!("{} (no file for {})", s.mark, missing(s).join(", ")))
            .collect::<Vec<_>>();
        return Err(PlanError::NoFullSet {
            origin: source,
            found: if found.is_empty() {
                "no full backups".into()
            } else {
                found.join("; ")
            },
        });
    }
    let list = |r: &[(String, usize, Vec<usize>)]| {
        let names: Vec<&str> = r.iter().map(|(m, _, _)| m.as_str()).collect();
        summarize_marks(&names)
    };
    let target = match wanted {
        Some(w) => reachable
            .iter()
            .rev()
            .find(|(m, _, _)| m.eq_ignore_ascii_case(w)),
        None => reachable.last(),
    };
    let Some((mark, full, logs)) = target.cloned() else {
        let why = match wanted {
            Some(w) if !sets.iter().any(|s| s.mark.eq_ignore_ascii_case(w)) => {
                format!("no backup file carries mark {w}")
            }
            None => "no log backup set follows a complete full set".to_string(),
            Some(_) if problems.is_empty() => {
                "its log set has no complete full set before it".to_string()
            }
            Some(_) => problems.join("; "),
        };
        return Err(PlanError::MarkNotReachable {
            origin: source,
            wanted: wanted.unwrap_or("(latest)").to_string(),
            why,
            reachable: list(&reachable),
        });
    };
    let last = logs.last().copied();
    let mut databases = Vec::new();
    for (db, display) in &names {
        let mut files = Vec::new();
        for si in std::iter::once(full).chain(logs.iter().copied()) {
            let Some(&fi) = sets[si].files.get(db) else {
                continue;
            };
            let n = &named[fi];
            files.push(PlannedFile {
                file: n.row.file.clone(),
                kind: n.kind,
                mark: n.mark.clone(),
                stop_at_mark: (Some(si) == last).then(|| n.mark.clone()),
                first_lsn: n.row.first_lsn,
                last_lsn: n.row.last_lsn,
                size_bytes: n.row.size_bytes,
            });
        }
        databases.push(DatabasePlan {
            database: display.clone(),
            files,
        });
    }
    let used: BTreeSet<usize> = std::iter::once(full).chain(logs.iter().copied()).collect();
    for (si, why) in &skipped {
        for &fi in sets[*si].files.values() {
            ignored.push((named[fi].row.file.clone(), why.clone()));
        }
    }
    let skipped_sets: BTreeSet<usize> = skipped.iter().map(|(s, _)| *s).collect();
    for (si, s) in sets.iter().enumerate() {
        if used.contains(&si) || skipped_sets.contains(&si) {
            continue;
        }
        let why = if s.kind == FileKind::Full {
            format!(
                "a full set other than the one the plan starts from ({})",
                sets[full].mark
            )
        } else {
            format!("not on the chain to mark {mark}")
        };
        for &fi in s.files.values() {
            ignored.push((named[fi].row.file.clone(), why.clone()));
        }
    }
    Ok(RestorePlan {
        source,
        mark,
        reachable: reachable.into_iter().map(|(m, _, _)| m).collect(),
        databases,
        ignored,
    })
}

/// Marks for a message: all of them when few, else the oldest, a count and the latest ten.
pub fn summarize_marks(marks: &[&str]) -> String {
    const SHOWN: usize = 10;
    match marks {
        [] => "none".to_string(),
        m if m.len() <= SHOWN + 1 => m.join(", "),
        m => format!(
            "{}, ... ({} in all), {}",
            m[0],
            m.len(),
            m[m.len() - SHOWN..].join(", ")
        ),
    }
}

#[cfg(test)]
mod tests;
