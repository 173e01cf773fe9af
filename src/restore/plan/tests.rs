use super::*;

const DBS: [&str; 3] = ["BizTalkMgmtDb", "BizTalkMsgBoxDb", "SSODB"];

fn row(db: &str, kind: &str, mark: &str, first: u128, last: u128, start: &str) -> HeaderRow {
    HeaderRow {
        file: format!(r"\\backup\bts\SQL01_INST_{db}_{kind}_{mark}.bak"),
        server: r"SQL01\INST".into(),
        database: db.into(),
        backup_type: if kind == "Full" { 1 } else { 2 },
        first_lsn: first,
        last_lsn: last,
        database_backup_lsn: first,
        start: start.into(),
        size_bytes: if kind == "Full" { 1 << 30 } else { 1 << 20 },
    }
}

fn src() -> PlanSource {
    PlanSource::Files {
        folder: r"\\backup\bts".into(),
        server: "SQLNEW".into(),
    }
}

/// A full set F1 then log sets L1..Ln, each continuing the previous.
fn healthy(logs: usize) -> Vec<HeaderRow> {
    let mut rows = Vec::new();
    for db in DBS {
        rows.push(row(db, "Full", "BTS_F1", 100, 101, "2026-12-01 00:00:00"));
        let mut at = 101;
        for i in 1..=logs {
            rows.push(row(
                db,
                "Log",
                &format!("BTS_L{i}"),
                at,
                at + 10,
                &format!("2026-12-01 0{i}:00:00"),
            ));
            at += 10;
        }
    }
    rows
}

#[test]
fn name_gives_the_mark_checked_against_the_header() {
    assert_eq!(
        mark_from_name(
            r"D:\b\SQL01_INST_SSODB_Log_BTS_2026_12_05_04_15_00_123.bak",
            r"SQL01\INST",
            "SSODB"
        ),
        Some((FileKind::Log, "BTS_2026_12_05_04_15_00_123".into()))
    );
    assert_eq!(
        mark_from_name("x/sql01_inst_ssodb_FULL_m.BAK", r"SQL01\INST", "SSODB"),
        Some((FileKind::Full, "m".into()))
    );
    assert_eq!(
        mark_from_name(r"D:\b\SQL01_INST_SSODB_Log_m.bak", "OTHER", "SSODB"),
        None
    );
    assert_eq!(
        mark_from_name(r"D:\b\SQL01_INST_SSODB_Diff_m.bak", r"SQL01\INST", "SSODB"),
        None
    );
    assert_eq!(
        mark_from_name(r"D:\b\SQL01_INST_SSODB_Log_.bak", r"SQL01\INST", "SSODB"),
        None
    );
    assert_eq!(mark_from_name("é", "é", "é"), None);
}

#[test]
fn plans_full_then_logs_to_the_latest_mark_with_stopatmark_on_the_last() {
    let p = plan_from_headers(src(), &healthy(3), None).expect("plan");
    assert_eq!(p.mark, "BTS_L3");
    assert_eq!(p.reachable, ["BTS_L1", "BTS_L2", "BTS_L3"]);
    assert_eq!(p.databases.len(), 3);
    for d in &p.databases {
        let kinds: Vec<_> = d
            .files
            .iter()
            .map(|f| (f.kind, f.stop_at_mark.clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                (FileKind::Full, None),
                (FileKind::Log, None),
                (FileKind::Log, None),
                (FileKind::Log, Some("BTS_L3".into()))
            ],
            "{}",
            d.database
        );
        assert_eq!(d.total_bytes(), (1 << 30) + 3 * (1 << 20));
    }
    assert!(p.ignored.is_empty(), "{:?}", p.ignored);
    assert_eq!(
        p.source.to_string(),
        r"backup files in \\backup\bts (headers read on SQLNEW)"
    );
}

#[test]
fn an_earlier_mark_can_be_asked_for_and_later_files_are_listed_as_unused() {
    let p = plan_from_headers(src(), &healthy(3), Some("bts_l2")).expect("plan");
    assert_eq!(p.mark, "BTS_L2");
    assert_eq!(p.databases[0].files.len(), 3);
    assert_eq!(
        p.databases[0].files[2].stop_at_mark.as_deref(),
        Some("BTS_L2")
    );
    assert_eq!(p.ignored.len(), 3);
    assert!(
        p.ignored
            .iter()
            .all(|(f, why)| f.contains("BTS_L3") && why.contains("not on the chain"))
    );
}

#[test]
fn a_gap_names_the_database_and_files_and_the_marks_still_reachable() {
    let mut rows = healthy(3);
    // SSODB's L2 backup is gone and L3 no longer continues L1.
    rows.retain(|r| !(r.database == "SSODB" && r.file.contains("BTS_L2")));
    let err = plan_from_headers(src(), &rows, Some("BTS_L3")).expect_err("gap");
    let msg = err.to_string();
    assert!(
        msg.contains("log set BTS_L2 is partial (no file for SSODB)"),
        "{msg}"
    );
    assert!(msg.contains("Marks that can be reached: BTS_L1"), "{msg}");
    let p = plan_from_headers(src(), &rows, None).expect("latest reachable");
    assert_eq!(p.mark, "BTS_L1");
}

#[test]
fn an_lsn_gap_is_refused_with_the_lsns() {
    let mut rows = healthy(2);
    for r in &mut rows {
        if r.database == "BizTalkMsgBoxDb" && r.file.contains("BTS_L2") {
            r.first_lsn = 115;
            r.last_lsn = 130;
        }
    }
    let msg = plan_from_headers(src(), &rows, Some("BTS_L2"))
        .expect_err("gap")
        .to_string();
    assert!(
        msg.contains("BizTalkMsgBoxDb: SQL01_INST_BizTalkMsgBoxDb_Log_BTS_L2.bak covers LSN 115..130, which does not continue SQL01_INST_BizTalkMsgBoxDb_Log_BTS_L1.bak (ends at 111)"),
        "{msg}"
    );
    assert!(msg.contains(r"from backup files in \\backup\bts"), "{msg}");
}

#[test]
fn a_partial_set_and_the_logs_after_it_are_ignored_until_the_next_full_set() {
    let mut rows = healthy(2);
    rows.retain(|r| !(r.database == "SSODB" && r.file.contains("BTS_L1")));
    // A new full set after the partial log set starts a usable chain again.
    for db in DBS {
        rows.push(row(db, "Full", "BTS_F2", 200, 201, "2026-12-02 00:00:00"));
        rows.push(row(db, "Log", "BTS_L9", 201, 210, "2026-12-02 01:00:00"));
    }
    let p = plan_from_headers(src(), &rows, None).expect("plan");
    assert_eq!(p.mark, "BTS_L9");
    assert_eq!(p.reachable, ["BTS_L9"]);
    assert!(p.databases.iter().all(|d| d.files[0].mark == "BTS_F2"));
    let why_l2: Vec<_> = p
        .ignored
        .iter()
        .filter(|(f, _)| f.contains("BTS_L2"))
        .collect();
    assert_eq!(why_l2.len(), 3);
    assert!(
        why_l2
            .iter()
            .all(|(_, w)| w.contains("after log set BTS_L1 is partial")),
        "{why_l2:?}"
    );
    let err = plan_from_headers(src(), &rows, Some("BTS_L2")).expect_err("after partial");
    assert!(err.to_string().contains("BTS_L1 is partial"), "{err}");
}

#[test]
fn a_partial_full_set_stops_the_chain_it_interrupts() {
    let mut rows = healthy(1);
    rows.push(row(
        "SSODB",
        "Full",
        "BTS_F2",
        150,
        151,
        "2026-12-01 02:00:00",
    ));
    for db in DBS {
        rows.push(row(db, "Log", "BTS_L2", 111, 121, "2026-12-01 03:00:00"));
    }
    let p = plan_from_headers(src(), &rows, None).expect("plan");
    assert_eq!(p.mark, "BTS_L1");
    assert!(
        p.ignored
            .iter()
            .any(|(f, w)| f.contains("BTS_L2") && w.contains("full set BTS_F2 is partial"))
    );
}

#[test]
fn no_complete_full_set_is_refused() {
    let rows: Vec<_> = healthy(1)
        .into_iter()
        .filter(|r| !(r.database == "SSODB" && r.backup_type == 1))
        .collect();
    let msg = plan_from_headers(src(), &rows, None)
        .expect_err("no full")
        .to_string();
    assert!(msg.contains("BTS_F1 (no file for SSODB)"), "{msg}");
}

#[test]
fn files_that_are_not_biztalk_backups_are_listed_not_used() {
    let mut rows = healthy(1);
    let mut odd = row("SSODB", "Log", "x", 1, 2, "");
    odd.file = r"\\backup\bts\manual.bak".into();
    rows.push(odd);
    let mut diff = row("SSODB", "Full", "y", 1, 2, "");
    diff.backup_type = 5;
    rows.push(diff);
    let p = plan_from_headers(src(), &rows, None).expect("plan");
    assert_eq!(p.ignored.len(), 2, "{:?}", p.ignored);
    assert!(p.ignored[0].1.contains("BackupType 5") || p.ignored[1].1.contains("BackupType 5"));
    assert!(matches!(
        plan_from_headers(src(), &[], None),
        Err(PlanError::NoFiles { .. })
    ));
}

#[test]
fn an_unknown_mark_says_so() {
    let msg = plan_from_headers(src(), &healthy(1), Some("nope"))
        .expect_err("unknown")
        .to_string();
    assert!(msg.contains("no backup file carries mark nope"), "{msg}");
    assert!(msg.contains("Marks that can be reached: BTS_L1"), "{msg}");
}

#[test]
fn long_mark_lists_are_summarized() {
    let marks: Vec<String> = (0..30).map(|i| format!("M{i:02}")).collect();
    let refs: Vec<&str> = marks.iter().map(String::as_str).collect();
    let s = summarize_marks(&refs);
    assert!(s.starts_with("M00, ... (30 in all), M20, "), "{s}");
    assert!(s.ends_with("M29"), "{s}");
    assert_eq!(summarize_marks(&refs[..3]), "M00, M01, M02");
    assert_eq!(summarize_marks(&[]), "none");
}
