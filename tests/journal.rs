//! Journal: write/verify/replay round trips, tamper detection at every position, torn
//! lines, write failures, sessions list, change log, and no secrets on disk.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use btsdr::engine::fixture::sample_runbook;
use btsdr::engine::{Effect, Engine, EngineOptions, Input, StepState, Variables};
use btsdr::engine::{Event, Record};
use btsdr::journal::chain::{Problem, verify_bytes};
use btsdr::journal::{
    Change, Changelog, JournalWriter, SessionStatus, create_session, list_for_home,
    list_open_sessions, list_sessions, read_records, verify,
};
use btsdr_types::{Column, QueryOutput, ResultSet, Value};
use chrono::{DateTime, TimeZone, Utc};

const SECRET: &str = "Pa55-w0rd-XYZ";

fn t(sec: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 23, 0, sec)
        .single()
        .unwrap()
}

fn opts() -> EngineOptions {
    EngineOptions {
        operator: "alice".into(),
        session_id: "s".into(),
        environment: "prod".into(),
        ..EngineOptions::default()
    }
}

fn new_engine() -> Engine {
    let rb = sample_runbook();
    let mut v = Variables::from_runbook(&rb);
    v.set("pwd", SECRET);
    Engine::new(Arc::new(rb), v, opts())
}

fn secret_vars() -> Variables {
    let mut v = Variables::from_runbook(&sample_runbook());
    v.set("pwd", SECRET);
    v
}

/// A minimal driver: journal effects are appended (fsync) before anything after them runs;
/// SQL answers come from `answer`; files are "written" at once.
struct Driver {
    writer: JournalWriter,
    sent: Vec<String>,
}

impl Driver {
    fn feed(&mut self, e: &mut Engine, input: Input, now: DateTime<Utc>) -> Vec<Effect> {
        let mut queue = vec![input];
        let mut all = Vec::new();
        while let Some(inp) = queue.pop() {
            let effects = e.handle(inp, now);
            for fx in &effects {
                match fx {
                    Effect::Journal { record } => {
                        if let Err(err) = self.writer.append(record.clone()) {
                            queue.push(Input::JournalFailed {
                                error: err.to_string(),
                            });
                            break; // nothing after a failed append
                        }
                    }
                    Effect::RunSql {
                        request_id, step, ..
                    } => {
                        self.sent.push(step.clone());
                        queue.push(Input::SqlFinished {
                            step: step.clone(),
                            request_id: *request_id,
                            result: Ok(answer(step)),
                        });
                    }
                    Effect::WriteFile { step, name, .. } => queue.push(Input::GenerateWritten {
                        step: step.clone(),
                        path: format!("/out/{name}"),
                    }),
                    _ => {}
                }
            }
            all.extend(effects);
        }
        all
    }
}

fn answer(step: &str) -> QueryOutput {
    let set = |cols: &[&str], rows: Vec<Vec<Value>>| ResultSet {
        not_kept: 0,
        columns: cols
            .iter()
            .map(|c| Column {
                name: (*c).into(),
                type_name: "nvarchar".into(),
            })
            .collect(),
        rows: rows.into(),
    };
    match step {
        "check-jobs" => QueryOutput {
            sets: vec![set(
                &["name", "age_hours"],
                vec![
                    vec![Value::Text("BizTalkMgmtDb".into()), Value::Int(3)],
                    vec![Value::Text(SECRET.into()), Value::Int(4)],
                ],
            )],
            rows_affected: vec![],
        },
        "after-drop" => QueryOutput {
            sets: vec![set(&["one"], vec![vec![Value::Int(1)]])],
            rows_affected: vec![],
        },
        _ => QueryOutput {
            sets: vec![],
            rows_affected: vec![1],
        },
    }
}

/// Runs the whole sample runbook through the driver; returns the live engine.
fn full_session(dir: &Path) -> (Engine, PathBuf) {
    let path = dir.join("sessions").join("s.jsonl");
    let mut d = Driver {
        writer: JournalWriter::create(&path).unwrap(),
        sent: vec![],
    };
    let mut e = new_engine();
    d.feed(&mut e, Input::Start, t(0));
    d.feed(
        &mut e,
        Input::ConfirmManual {
            step: "stop-hosts".into(),
            by: "".into(),
            note: "ok".into(),
            evidence: "CHG-7".into(),
        },
        t(1),
    );
    d.feed(&mut e, Input::Run("check-jobs".into()), t(2));
    d.feed(&mut e, Input::Run("set-pwd".into()), t(3));
    d.feed(&mut e, Input::Run("drop-db".into()), t(4));
    d.feed(
        &mut e,
        Input::ConfirmDestructive {
            step: "drop-db".into(),
            typed: "RESTORE".into(),
            by: "alice".into(),
        },
        t(5),
    );
    d.feed(
        &mut e,
        Input::Skip {
            step: "wipe-db".into(),
            reason: "not needed".into(),
            by: "bob".into(),
        },
        t(6),
    );
    d.feed(&mut e, Input::Run("after-drop".into()), t(7));
    d.feed(&mut e, Input::Run("gen-config".into()), t(8));
    d.feed(
        &mut e,
        Input::SignOff {
            name: "Carol".into(),
            role: "DR lead".into(),
            at: t(9),
        },
        t(9),
    );
    d.feed(&mut e, Input::Close, t(10));
    assert_eq!(d.sent, ["check-jobs", "set-pwd", "drop-db", "after-drop"]);
    assert!(e.counts().complete(), "{:?}", e.counts());
    (e, path)
}

fn line_of(bytes: &[u8], pos: usize) -> usize {
    bytes[..pos].iter().filter(|&&b| b == b'\n').count() + 1
}

fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.split_inclusive(|&b| b == b'\n').collect()
}

#[test]
fn round_trip_rebuilds_the_live_state() {
    let dir = tempfile::tempdir().unwrap();
    let (live, path) = full_session(dir.path());
    let read = read_records(&path).unwrap();
    assert!(read.report.is_intact(), "{}", read.report);
    assert!(read.report.torn.is_none());
    assert_eq!(read.entries.len() as u64, live.state().records);
    for (i, r) in read.entries.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
    }
    let replayed = Engine::replay(
        Arc::new(sample_runbook()),
        secret_vars(),
        opts(),
        &read.entries,
    )
    .unwrap();
    assert_eq!(replayed.state(), live.state());
    let report = verify(&path).unwrap();
    assert!(report.is_intact() && report.warnings.is_empty(), "{report}");
    assert!(report.to_string().starts_with("OK: "));
}

#[test]
fn no_secret_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = full_session(dir.path());
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains(SECRET), "the secret is in the journal");
    assert!(!text.contains("w0rd"));
    assert!(text.contains("******"));
}

#[test]
fn dangling_step_started_replays_in_doubt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl");
    let mut w = JournalWriter::create(&path).unwrap();
    let mut e = new_engine();
    let mut effects = e.handle(Input::Start, t(0));
    effects.extend(e.handle(Input::Run("set-pwd".into()), t(1)));
    for fx in &effects {
        if let Effect::Journal { record } = fx {
            w.append(record.clone()).unwrap();
        }
    }
    drop(w); // "crash": the SQL result never comes back
    let read = read_records(&path).unwrap();
    let mut replayed = Engine::replay(
        Arc::new(sample_runbook()),
        secret_vars(),
        opts(),
        &read.entries,
    )
    .unwrap();
    assert_eq!(replayed.step_state("set-pwd"), Some(&StepState::InDoubt));
    let (mut w, report) = JournalWriter::open_append(&path).unwrap();
    assert_eq!(report.records, 2);
    for fx in replayed.handle(Input::Resume, t(5)) {
        if let Effect::Journal { record } = fx {
            assert_eq!(w.append(record).unwrap().seq, 3);
        }
    }
    let sessions = list_sessions(dir.path()).unwrap();
    assert!(sessions.is_empty(), "not under sessions/");
}

/// A journal of `n` small records.
fn sample_journal(dir: &Path, n: u32) -> (PathBuf, Vec<u8>) {
    let path = dir.join("j.jsonl");
    let mut w = JournalWriter::create(&path).unwrap();
    for i in 0..n {
        let r = Record::new(
            t(i),
            "alice",
            Some("step-a"),
            Event::Note {
                text: format!("note {i} é"),
            },
        );
        w.append(r).unwrap();
    }
    let bytes = fs::read(&path).unwrap();
    (path, bytes)
}

#[test]
fn every_flipped_byte_is_detected_at_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = sample_journal(dir.path(), 6);
    assert!(verify(&path).unwrap().is_intact());
    let n_lines = lines(&bytes).len();
    for pos in 0..bytes.len() {
        for mask in [0x01u8, 0x20, 0x80] {
            let mut b = bytes.clone();
            b[pos] ^= mask;
            fs::write(&path, &b).unwrap();
            let report = verify(&path).unwrap();
            let want = line_of(&bytes, pos);
            let bad = report
                .first_bad
                .as_ref()
                .unwrap_or_else(|| panic!("byte {pos} ^ {mask:#x} not detected: {report}"));
            assert_eq!(bad.line, want, "byte {pos} ^ {mask:#x}: {report}");
            assert_eq!(report.records, want - 1);
            if want == n_lines && bytes[pos] == b'\n' {
                // the last newline gone: incomplete last line the head file says was complete
                assert!(matches!(bad.problem, Problem::Missing { .. }), "{report}");
            }
        }
    }
}

#[test]
fn every_deleted_record_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = sample_journal(dir.path(), 6);
    let ls = lines(&bytes);
    for k in 0..ls.len() {
        let b: Vec<u8> = ls
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != k)
            .flat_map(|(_, l)| l.iter().copied())
            .collect();
        fs::write(&path, &b).unwrap();
        let report = verify(&path).unwrap();
        let bad = report
            .first_bad
            .as_ref()
            .unwrap_or_else(|| panic!("deleting record {} not detected", k + 1));
        assert_eq!(bad.line, k + 1, "{report}");
        let msg = report.to_string();
        assert!(msg.contains(&format!("line {}", k + 1)), "{msg}");
    }
}

#[test]
fn every_reordering_and_insertion_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = sample_journal(dir.path(), 5);
    let ls = lines(&bytes);
    for i in 0..ls.len() {
        for j in i + 1..ls.len() {
            let mut v = ls.clone();
            v.swap(i, j);
            fs::write(&path, v.concat()).unwrap();
            let report = verify(&path).unwrap();
            let bad = report
                .first_bad
                .as_ref()
                .unwrap_or_else(|| panic!("swap {i} {j} not detected"));
            assert_eq!(bad.line, i + 1, "swap {i} {j}: {report}");
            assert_eq!(bad.seq, Some(j as u64 + 1));
        }
        // a copy of record i inserted after itself
        let mut v = ls.clone();
        v.insert(i + 1, ls[i]);
        fs::write(&path, v.concat()).unwrap();
        let report = verify(&path).unwrap();
        assert_eq!(
            report.first_bad.as_ref().map(|b| b.line),
            Some(i + 2),
            "insert after {i}: {report}"
        );
    }
}

#[test]
fn torn_last_line_is_reported_and_cut_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = sample_journal(dir.path(), 3);
    let ls = lines(&bytes);
    let mut torn = bytes.clone();
    torn.extend_from_slice(&ls[1][..40]); // a crash in the middle of writing line 4
    fs::write(&path, &torn).unwrap();
    let report = verify(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    let t4 = report.torn.clone().unwrap();
    assert_eq!((t4.line, t4.bytes, t4.offset), (4, 40, bytes.len() as u64));
    assert!(report.to_string().contains("not tampering"));
    let (mut w, open) = JournalWriter::open_append(&path).unwrap();
    assert_eq!(open.records, 3);
    assert_eq!(open.torn.map(|t| t.line), Some(4));
    assert_eq!(fs::read(&path).unwrap(), bytes, "the torn bytes were cut");
    let receipt = w
        .append(Record::new(
            t(9),
            "bob",
            None,
            Event::Note {
                text: "after crash".into(),
            },
        ))
        .unwrap();
    assert_eq!(receipt.seq, 4);
    let report = verify(&path).unwrap();
    assert!(
        report.is_intact() && report.torn.is_none() && report.records == 4,
        "{report}"
    );
}

#[test]
fn open_append_refuses_a_tampered_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = sample_journal(dir.path(), 3);
    let text = String::from_utf8(bytes)
        .unwrap()
        .replacen("note 1", "note X", 1);
    fs::write(&path, text).unwrap();
    let err = JournalWriter::open_append(&path).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("line 2 (seq 2)") && msg.contains("changed after it was written"),
        "{msg}"
    );
    assert!(
        JournalWriter::create(&path).is_err(),
        "create never overwrites"
    );
}

#[test]
fn head_file_catches_truncation_and_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = sample_journal(dir.path(), 3);
    let ls = lines(&bytes);
    // cut the last record: the chain alone still verifies; the head file does not
    fs::write(&path, [ls[0], ls[1]].concat()).unwrap();
    let report = verify(&path).unwrap();
    assert_eq!(
        report
            .first_bad
            .as_ref()
            .map(|b| (b.line, b.problem.clone())),
        Some((3, Problem::Missing { head_seq: 3 }))
    );
    // Records deleted from the end together with the head file: a failure, not a warning.
    fs::remove_file(btsdr::journal::chain::head_path(&path)).unwrap();
    let report = verify(&path).unwrap();
    assert_eq!(
        report.first_bad.map(|b| b.problem),
        Some(Problem::HeadMissing),
        "a missing head must fail verification"
    );
    // ... or with the head garbled.
    fs::write(btsdr::journal::chain::head_path(&path), b"{garbage").unwrap();
    let report = verify(&path).unwrap();
    assert!(
        matches!(
            report.first_bad.map(|b| b.problem),
            Some(Problem::HeadUnreadable { .. })
        ),
        "an unreadable head must fail verification"
    );
    let report = verify_bytes(&[ls[0], ls[1]].concat(), None);
    assert!(!report.is_intact());
}

#[test]
fn a_resealed_and_extended_chain_fails_against_the_old_head() {
    // Rewrite record 3 of 3, reseal the chain from there, append one record: the head still
    // names record 3 (now different), and must be compared although the file is longer.
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = sample_journal(dir.path(), 3);
    let head = fs::read(btsdr::journal::chain::head_path(&path)).unwrap();
    let ls = lines(&bytes);
    fs::write(&path, [ls[0], ls[1]].concat()).unwrap();
    fs::remove_file(btsdr::journal::chain::head_path(&path)).unwrap();
    let (mut w, _) = JournalWriter::open_accepting_lost_head(&path).unwrap();
    for text in ["forged 3", "forged 4"] {
        w.append(Record::new(
            t(9),
            "mallory",
            None,
            Event::Note { text: text.into() },
        ))
        .unwrap();
    }
    drop(w);
    fs::write(btsdr::journal::chain::head_path(&path), head).unwrap();
    let report = verify(&path).unwrap();
    assert_eq!(
        report.first_bad.map(|b| (b.line, b.problem)),
        Some((3, Problem::HeadMismatch { seq: 3 }))
    );
}

#[test]
fn a_lost_head_is_accepted_only_explicitly_and_that_is_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = sample_journal(dir.path(), 2);
    fs::remove_file(btsdr::journal::chain::head_path(&path)).unwrap();
    let err = JournalWriter::open_append(&path).unwrap_err();
    assert!(err.to_string().contains("accept-head"), "{err}");
    let (mut w, report) = JournalWriter::open_accepting_lost_head(&path).unwrap();
    assert_eq!(report.records, 2);
    w.append(Record::new(
        t(5),
        "bob",
        None,
        Event::Note {
            text: "journal head file re-created: restored from backup without it".into(),
        },
    ))
    .unwrap();
    drop(w);
    let report = verify(&path).unwrap();
    assert!(report.is_intact() && report.records == 3, "{report}");
    // Nothing to accept on an intact journal, and other damage is never accepted.
    let err = JournalWriter::open_accepting_lost_head(&path).unwrap_err();
    assert!(err.to_string().contains("nothing to accept"), "{err}");
}

#[test]
fn a_torn_line_is_called_an_interrupted_write_only_when_nothing_else_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = sample_journal(dir.path(), 3);
    let ls = lines(&bytes);
    // A crash while writing record 3: head at 2, a torn line after it.
    let mut torn = [ls[0], ls[1]].concat();
    torn.extend_from_slice(&ls[2][..10]);
    let head2 = {
        let text = String::from_utf8(ls[1].to_vec()).unwrap();
        format!(
            "{{\"seq\":2,\"line_sha256\":\"{}\"}}",
            btsdr::journal::chain::sha256_hex(text.trim_end().as_bytes())
        )
    };
    fs::write(&path, &torn).unwrap();
    fs::write(btsdr::journal::chain::head_path(&path), &head2).unwrap();
    let report = verify(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert!(report.to_string().contains("interrupted write"), "{report}");
    // Truncated mid-record with the head deleted: not an interrupted write.
    fs::remove_file(btsdr::journal::chain::head_path(&path)).unwrap();
    let report = verify(&path).unwrap();
    assert!(!report.is_intact());
    assert!(!report.to_string().contains("not tampering"), "{report}");
}

#[test]
fn a_full_disk_gives_a_clear_error_and_the_engine_stops() {
    let full = Path::new("/dev/full");
    if !full.exists() {
        return;
    }
    let (w, report) = JournalWriter::open_append(full).unwrap();
    assert_eq!(report.records, 0);
    let mut d = Driver {
        writer: w,
        sent: vec![],
    };
    let mut e = new_engine();
    let fx = d.feed(&mut e, Input::Start, t(0));
    assert!(
        e.journal_error()
            .is_some_and(|m| m.contains("No space left")),
        "{fx:?}"
    );
    let fx = d.feed(&mut e, Input::Run("drop-db".into()), t(1));
    assert!(
        fx.iter()
            .any(|f| matches!(f, Effect::Refused { text } if text.contains("journal"))),
        "{fx:?}"
    );
    assert!(d.sent.is_empty());
    let err = d
        .writer
        .append(Record::new(t(2), "a", None, Event::SessionClosed {}))
        .unwrap_err();
    assert!(
        err.to_string().contains("could not be written earlier"),
        "{err}"
    );
    let (mut w, _) = JournalWriter::open_append(full).unwrap();
    let err = w
        .append(Record::new(t(2), "a", None, Event::SessionClosed {}))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("cannot write the journal /dev/full") && msg.contains("NOT carried out"),
        "{msg}"
    );
}

#[test]
fn sessions_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    full_session(dir.path());
    let (id, mut w) = create_session(dir.path(), t(30), "sample").unwrap();
    assert_eq!(id, "20261121-230030-sample");
    let (id2, _) = create_session(dir.path(), t(30), "sample").unwrap();
    assert_eq!(id2, "20261121-230030-sample-2");
    let mut e = new_engine();
    for fx in e
        .handle(Input::Start, t(30))
        .into_iter()
        .chain(e.handle(Input::Run("set-pwd".into()), t(31)))
    {
        if let Effect::Journal { record } = fx {
            w.append(record).unwrap();
        }
    }
    let list = list_sessions(dir.path()).unwrap();
    assert_eq!(list.len(), 3);
    let open = list.iter().find(|s| s.id == id).unwrap();
    assert_eq!(
        (open.status, open.in_doubt, open.records, open.intact),
        (SessionStatus::Open, 1, 2, true)
    );
    assert_eq!(
        (
            open.runbook_id.as_str(),
            open.environment.as_str(),
            open.operator.as_str()
        ),
        ("sample", "prod", "alice")
    );
    assert_eq!(open.last_activity, Some(t(31)));
    let closed = list.iter().find(|s| s.id == "s").unwrap();
    assert_eq!((closed.status, closed.in_doubt), (SessionStatus::Closed, 0));
    // Created but stopped before its first record: empty, never offered for resuming.
    let empty = list.iter().find(|s| s.id == id2).unwrap();
    assert_eq!((empty.records, empty.status), (0, SessionStatus::Empty));
    assert!(
        empty
            .problem
            .as_deref()
            .unwrap()
            .contains("nothing to resume"),
        "{:?}",
        empty.problem
    );
    assert!(list_sessions(&dir.path().join("none")).unwrap().is_empty());

    // Home's list: the closed session is passed over by its last line, the others are read.
    let open_ids: Vec<String> = list_open_sessions(dir.path())
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(open_ids, std::slice::from_ref(&id));
    // A torn line after the closing record: read in full, still closed, still left out.
    let closed_path = list.iter().find(|s| s.id == "s").unwrap().path.clone();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&closed_path)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"seq\":99,\"ti").unwrap();
    let again = list_open_sessions(dir.path()).unwrap();
    assert_eq!(again.len(), 1);
    // Passed over without reading the chain: a closed session whose middle is damaged is
    // listed (as damaged) by `btsdr sessions`, never offered for resuming.
    let text = std::fs::read_to_string(&closed_path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop(); // the torn line
    lines[1] = "garbage";
    std::fs::write(&closed_path, lines.join("\n") + "\n").unwrap();
    let full = list_sessions(dir.path()).unwrap();
    let damaged = full.iter().find(|s| s.id == "s").unwrap();
    assert!(!damaged.intact);
    assert!(
        !list_open_sessions(dir.path())
            .unwrap()
            .iter()
            .any(|s| s.id == "s")
    );
    // A session whose last record is not an ending stays listed.
    let (id3, mut w3) = create_session(dir.path(), t(40), "sample").unwrap();
    let mut e3 = new_engine();
    for fx in e3.handle(Input::Start, t(40)) {
        if let Effect::Journal { record } = fx {
            w3.append(record).unwrap();
        }
    }
    assert!(
        list_open_sessions(dir.path())
            .unwrap()
            .iter()
            .any(|s| s.id == id3)
    );
}

#[test]
fn change_log_is_chained() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Changelog::open(dir.path()).unwrap();
    let c = |what: &str| Change {
        who: "alice".into(),
        what: what.into(),
        category: "configuration".into(),
        reference: "CHG-1".into(),
    };
    log.add(c("enabled the backup job"), t(1)).unwrap();
    assert!(
        log.add(
            Change {
                who: " ".into(),
                ..c("x")
            },
            t(1)
        )
        .is_err()
    );
    drop(log);
    let mut log = Changelog::open(dir.path()).unwrap();
    assert_eq!(log.add(c("restored BizTalkMgmtDb"), t(2)).unwrap().seq, 2);
    let list = Changelog::list(dir.path()).unwrap();
    assert!(list.report.is_intact());
    assert_eq!(
        list.entries
            .iter()
            .map(|e| e.what.as_str())
            .collect::<Vec<_>>(),
        ["enabled the backup job", "restored BizTalkMgmtDb"]
    );
    assert!(verify(&Changelog::path(dir.path())).unwrap().is_intact());
}

#[test]
fn home_lists_open_sessions_and_the_newest_ended_ones() {
    let dir = tempfile::tempdir().unwrap();
    let session = |sec: u32, close: bool| {
        let (id, mut w) = create_session(dir.path(), t(sec), "sample").unwrap();
        let mut e = new_engine();
        for fx in e.handle(Input::Start, t(sec)) {
            if let Effect::Journal { record } = fx {
                w.append(record).unwrap();
            }
        }
        if close {
            w.append(Record::new(
                t(sec + 1),
                "alice",
                None,
                Event::SessionClosed {},
            ))
            .unwrap();
        }
        id
    };
    let mut open = Vec::new();
    let mut ended = Vec::new();
    for m in 0..10 {
        if m % 3 == 0 {
            open.push(session(m * 2, false));
        } else {
            ended.push(session(m * 2, true));
        }
    }
    // Created, never started: neither offered nor reported.
    create_session(dir.path(), t(50), "sample").unwrap();
    open.reverse();
    ended.reverse();
    let home = list_for_home(dir.path(), 5).unwrap();
    let ids = |v: &[btsdr::journal::SessionSummary]| -> Vec<String> {
        v.iter().map(|s| s.id.clone()).collect()
    };
    assert_eq!(ids(&home.open), open, "open, newest first");
    assert_eq!(ids(&home.ended), ended[..5], "the five newest ended");
    assert!(home.ended.iter().all(|s| s.status == SessionStatus::Closed));
    assert_eq!(
        ids(&list_for_home(dir.path(), 0).unwrap().ended),
        Vec::<String>::new()
    );
}

/// `btsdr sessions` keeps its columns aligned whatever the lengths of names, and says why an
/// empty journal is listed.
#[test]
fn sessions_command_aligns_its_columns() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut w) = create_session(dir.path(), t(10), "sample").unwrap();
    let rb = sample_runbook();
    let mut v = Variables::from_runbook(&rb);
    v.set("pwd", SECRET);
    let mut e = Engine::new(
        Arc::new(rb),
        v,
        EngineOptions {
            environment: "drill:drop-during-restore".into(),
            operator: "a-rather-long-operator-name".into(),
            ..opts()
        },
    );
    for fx in e.handle(Input::Start, t(10)) {
        if let Effect::Journal { record } = fx {
            w.append(record).unwrap();
        }
    }
    drop(w);
    create_session(dir.path(), t(20), "sample").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_btsdr"))
        .arg("sessions")
        .env("BTSDR_DATA_DIR", dir.path())
        .env("BTSDR_CONFIG_DIR", dir.path().join("config"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let col = |l: &str, s: &str| l.find(s).unwrap_or_else(|| panic!("{s} in {l}\n{text}"));
    let header = lines[0];
    let started = lines.iter().find(|l| l.contains("drill:")).unwrap();
    assert_eq!(
        col(header, "ENV"),
        col(started, "drill:drop-during-restore"),
        "{text}"
    );
    assert_eq!(
        col(header, "OPERATOR"),
        col(started, "a-rather-long"),
        "{text}"
    );
    assert_eq!(col(header, "STATUS"), col(started, "open"), "{text}");
    let empty = lines
        .iter()
        .position(|l| l.contains(" empty "))
        .expect(&text);
    assert!(lines[empty + 1].contains("problem: empty"), "{text}");
}
