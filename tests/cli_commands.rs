//! Command-line items of issue 13, with the real binary as a child process where the item is
//! about the command: `--set` checked before the UI and honoured by the session the UI opens,
//! `journal verify` of every journal, `latest`, and `show` filled for a paper checklist.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::path::Path;
mod cli_support;
use cli_support::{btsdr, expect, home};

/// A UI run refuses an unknown variable, a bad value and a malformed `--set` before the UI
/// starts (stdin is not a terminal here: a run that got as far as the UI would fail otherwise).
#[test]
fn set_is_checked_before_the_ui_starts() {
    let dir = home();
    let d = dir.path();
    let r = btsdr(
        d,
        &[
            "run",
            "restore",
            "--drill",
            "drop-during-restore",
            "--set",
            "nosuchvar=1",
        ],
    );
    expect(&r, 2, "unknown variable");
    assert!(
        r.err.contains("`nosuchvar`") && r.err.contains("use_log_shipping"),
        "names the variable and the runbook's variables: {}",
        r.err
    );
    let r = btsdr(
        d,
        &[
            "run",
            "restore",
            "--drill",
            "healthy",
            "--set",
            "use_log_shipping=perhaps",
        ],
    );
    expect(&r, 2, "bad value");
    assert!(r.err.contains("use_log_shipping"), "{}", r.err);
    let r = btsdr(
        d,
        &["run", "restore", "--drill", "healthy", "--set", "oops"],
    );
    expect(&r, 2, "malformed --set");
    assert!(r.err.contains("NAME=VALUE"), "{}", r.err);
    let r = btsdr(
        d,
        &["drill", "--runbook", "restore", "--set", "nosuchvar=1"],
    );
    expect(&r, 2, "drill with an unknown variable");
    assert!(r.err.contains("`nosuchvar`"), "{}", r.err);
}

/// The values the CLI checked reach the session the UI opens, over the drill scenario's own
/// values, and are journaled in `SessionStarted`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ui_session_journals_the_set_values() {
    use btsdr::app::Request;
    use btsdr::app::driver::Opener;
    use btsdr::engine::{Effect, Event, Input};
    let dir = tempfile::tempdir().unwrap();
    let lib = btsdr::runbook::library::Library::load(None).unwrap();
    let mut opener =
        btsdr::launch::LiveOpener::new(lib, btsdr::config::Config::default(), dir.path().into());
    opener.drill_runbook = "restore".into();
    opener.sets = vec![("use_log_shipping".into(), "false".into())];
    let mut opened = opener
        .open(Request::Drill {
            scenario: "drop-during-restore".into(),
            operator: "amy".into(),
            rto_minutes: None,
        })
        .expect("the drill opens");
    let records: Vec<_> = opened
        .engine
        .handle(Input::Start, chrono::Utc::now())
        .into_iter()
        .filter_map(|fx| match fx {
            Effect::Journal { record } => Some(record),
            _ => None,
        })
        .collect();
    let vars = records
        .iter()
        .find_map(|r| match &r.event {
            Event::SessionStarted { variables, .. } => Some(variables.clone()),
            _ => None,
        })
        .expect("SessionStarted");
    let v = vars
        .iter()
        .find(|v| v.name == "use_log_shipping")
        .expect("journaled");
    assert_eq!(v.value, "false", "{vars:?}");
    for r in records {
        opened.journal.append(r).expect("journaled");
    }
    // Taken by that session only: the next one has the runbook's own values again.
    let next = opener
        .open(Request::Drill {
            scenario: "drop-during-restore".into(),
            operator: "amy".into(),
            rto_minutes: None,
        })
        .expect("another drill opens");
    assert_ne!(
        next.engine.variables().get("use_log_shipping"),
        Some("false")
    );
}

/// A started session journal of `runbook` in `<dir>/data`, begun at 23:00:`sec`.
fn session(dir: &Path, sec: u32, runbook: &str) -> (String, std::path::PathBuf) {
    use btsdr::engine::{Effect, Engine, EngineOptions, Input, Variables};
    use chrono::TimeZone;
    let lib = btsdr::runbook::library::Library::load(None).unwrap();
    let rb = lib.get(runbook).unwrap();
    let now = chrono::Utc
        .with_ymd_and_hms(2026, 11, 21, 23, 0, sec)
        .single()
        .unwrap();
    let (id, mut w) = btsdr::journal::create_session(&dir.join("data"), now, runbook).unwrap();
    let opts = EngineOptions {
        session_id: id.clone(),
        environment: "prod".into(),
        operator: "amy".into(),
        ..EngineOptions::default()
    };
    // The drill's values fill what the runbook needs before it can start.
    let sc = btsdr_sim::scenario::Scenario::load("healthy").unwrap();
    let mut vars = Variables::from_runbook(&rb);
    for (k, v) in btsdr_sim::drill::scenario_variables(&sc) {
        vars.set(&k, v);
    }
    let mut e = Engine::new(rb.clone(), vars, opts);
    let fxs = e.handle(Input::Start, now);
    assert!(!fxs.is_empty(), "the session starts");
    for fx in fxs {
        if let Effect::Journal { record } = fx {
            w.append(record).unwrap();
        }
    }
    (id, w.path().to_path_buf())
}

/// `journal verify` alone checks every journal and the change log, one line each, and fails
/// when one does; `latest` names the session started last.
#[test]
fn verify_every_journal_and_latest() {
    let dir = home();
    let d = dir.path();
    let r = btsdr(d, &["journal", "verify"]);
    expect(&r, 0, "nothing to verify");
    assert!(r.out.contains("nothing to verify"), "{}", r.out);
    let r = btsdr(d, &["report", "latest"]);
    expect(&r, 2, "no latest yet");
    assert!(r.err.contains("no sessions yet"), "{}", r.err);

    // Started in this order; the ids sort the other way (by runbook name at the same second).
    let (old, old_path) = session(d, 10, "restore");
    let (new, _) = session(d, 20, "backup");
    let r = btsdr(d, &["changelog", "add", "installed CU6", "--who", "amy"]);
    expect(&r, 0, "a change");
    let r = btsdr(d, &["journal", "verify"]);
    expect(&r, 0, "all intact");
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(lines.len(), 4, "three journals and a total: {}", r.out);
    assert!(lines[..3].iter().all(|l| l.starts_with("ok")), "{}", r.out);
    assert!(r.out.contains(&old) && r.out.contains(&new) && r.out.contains("changelog"));

    let r = btsdr(d, &["journal", "verify", "latest"]);
    expect(&r, 0, "latest verifies");
    assert!(r.out.contains(&new) && !r.out.contains(&old), "{}", r.out);
    let r = btsdr(d, &["report", "latest"]);
    expect(&r, 0, "report latest");
    assert!(r.out.contains(&new), "{}", r.out);

    // An edited record in the older session: that line fails, the others stay ok, exit 1.
    let text = std::fs::read_to_string(&old_path).unwrap();
    std::fs::write(&old_path, text.replacen("\"amy\"", "\"eve\"", 1)).unwrap();
    let r = btsdr(d, &["journal", "verify"]);
    expect(&r, 1, "one damaged");
    let failed: Vec<&str> = r.out.lines().filter(|l| l.starts_with("FAILED")).collect();
    assert_eq!(failed.len(), 1, "{}", r.out);
    assert!(failed[0].contains(&old), "{}", r.out);
}

/// `show` prints the placeholders as written; `--env`, `--drill` and `--set` fill them for a
/// paper checklist, with a visible blank for what nobody gave.
#[test]
fn show_fills_placeholders_for_a_paper_checklist() {
    let dir = home();
    let d = dir.path();
    let r = btsdr(d, &["show", "restore"]);
    expect(&r, 0, "show as written");
    assert!(r.out.contains("{{destination_sql_server}}"), "{}", r.out);

    let r = btsdr(
        d,
        &[
            "show",
            "restore",
            "--drill",
            "healthy",
            "--set",
            "tracking_analysis_server=SSAS01",
            "--set",
            "bam_analysis_server=SSAS02",
        ],
    );
    expect(&r, 0, "show for a drill");
    assert!(!r.out.contains("{{"), "no raw placeholder left:\n{}", r.out);
    assert!(
        r.out.contains("sqlcmd -S \"SQLDR01\"") && r.out.contains("SSAS01"),
        "{}",
        r.out
    );
    assert!(r.out.contains("[BizTalkMgmtDb].dbo."), "identifiers quoted");

    // Only the old server is known: the others are blanks to write on.
    std::fs::write(
        d.join("config/config.toml"),
        "[environments.prod.source]\nserver = \"SQLPROD01\"\nauth = \"sql\"\nuser = \"u\"\npassword_env = \"BTSDR_NO_SUCH_PW\"\n",
    )
    .unwrap();
    let r = btsdr(d, &["show", "restore", "--env", "prod"]);
    expect(&r, 0, "show for an environment");
    assert!(!r.out.contains("{{"), "{}", r.out);
    assert!(
        r.out.contains("`SQLPROD01`") && r.out.contains("________ (destination_sql_server)"),
        "{}",
        r.out
    );

    let r = btsdr(d, &["show", "restore", "--set", "nosuchvar=1"]);
    expect(&r, 2, "unknown variable");
    assert!(r.err.contains("`nosuchvar`"), "{}", r.err);
    let r = btsdr(d, &["show", "restore", "--env", "nope"]);
    expect(&r, 2, "unknown environment");
    assert!(r.err.contains("no environment `nope`"), "{}", r.err);
}
