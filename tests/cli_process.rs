//! The real binary as a child process, as cron, monitoring and operators run it: every
//! documented exit code of `btsdr check` (0/1/2) and `btsdr run --batch` (0/1/2/3,
//! docs/CHECK_JSON.md); a hostile user runbook in the config folder does not block the
//! commands that do not need it; hostile text never reaches the terminal raw.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::path::Path;
mod cli_support;
use cli_support::{Run, btsdr, expect, home};

/// A user runbook `probe` with one check step on the source server.
fn probe(dir: &Path, sql: &str, assert: &str) {
    let text = format!(
        r#"id = "probe"
title = "Probe"
summary = "One check."
version = "1.0.0"

[[sections]]
id = "p"
title = "P"

[[sections.steps]]
id = "p.one"
title = "One"
why = "w"
kind = "check"
health = true
server = "source"
database = "master"
sql = "{sql}"
assert = [{{ rows = "{assert}", message = "the probe failed" }}]
"#
    );
    std::fs::write(dir.join("config/runbooks/probe.toml"), text).unwrap();
}

#[test]
fn check_exit_codes() {
    let dir = home();
    let d = dir.path();
    expect(&btsdr(d, &["check", "--drill", "healthy"]), 0, "healthy");
    let r = btsdr(d, &["check", "--drill", "job-disabled"]);
    expect(&r, 1, "job disabled");
    assert!(r.out.contains("FAIL"), "{}", r.out);
    expect(
        &btsdr(d, &["check", "--drill", "healthy", "--only", "no.such"]),
        2,
        "unknown check id",
    );
    expect(&btsdr(d, &["check", "--env", "nosuch"]), 2, "unknown env");
    // A check that cannot run (nothing listens on the port) is 2, not 1.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    std::fs::write(
        d.join("config/config.toml"),
        format!(
            "[environments.dead.source]\nserver = \"127.0.0.1,{port}\"\nauth = \"sql\"\nuser = \"u\"\npassword_env = \"BTSDR_CLI_TEST_PW\"\nencrypt = \"not_supported\"\nconnect_timeout_secs = 2\n"
        ),
    )
    .unwrap();
    let r = dead_check(d);
    // The probe runbook is not there yet: setup error.
    assert_eq!(r.code, Some(2));
    probe(d, "SELECT 1 AS one", "== 1");
    let r = dead_check(d);
    assert_eq!(r.code, Some(2), "cannot connect: {}", r.out);
}

/// `check --env dead --runbook probe` with the profile's password set.
fn dead_check(d: &Path) -> Run {
    let mut c = cli_support::command(d, &["check", "--env", "dead", "--runbook", "probe"]);
    c.env("BTSDR_CLI_TEST_PW", "x");
    cli_support::finish(c)
}

#[test]
fn run_batch_exit_codes() {
    let dir = home();
    let d = dir.path();
    probe(d, "SELECT 1 AS one", "== 1");
    std::fs::write(d.join("answers.toml"), "").unwrap();
    let answers = d.join("answers.toml").to_string_lossy().into_owned();
    let run = |d: &Path| {
        btsdr(
            d,
            &[
                "run",
                "probe",
                "--batch",
                "--drill",
                "healthy",
                "--answers",
                &answers,
            ],
        )
    };
    expect(&run(d), 0, "every step passed");
    probe(d, "SELECT 1 AS one", "== 2");
    expect(&run(d), 1, "a step failed");
    expect(
        &btsdr(
            d,
            &[
                "run",
                "no-such-runbook",
                "--batch",
                "--drill",
                "healthy",
                "--answers",
                &answers,
            ],
        ),
        2,
        "unknown runbook",
    );
    // The backup runbook starts with a manual step: a person is needed.
    let r = btsdr(
        d,
        &[
            "run",
            "backup",
            "--batch",
            "--drill",
            "healthy",
            "--answers",
            &answers,
        ],
    );
    expect(&r, 3, "manual step");
}

/// Issue 14: a user runbook nesting 10,000 parentheses aborted every command (exit 134).
#[test]
fn a_hostile_user_runbook_is_reported_and_skipped() {
    let dir = home();
    let d = dir.path();
    let when = format!("{}use_x{}", "(".repeat(10_000), ")".repeat(10_000));
    std::fs::write(
        d.join("config/runbooks/deep.toml"),
        format!(
            "id = \"deep\"\ntitle = \"T\"\nsummary = \"S\"\nversion = \"1.0.0\"\n\n[[variables]]\nname = \"use_x\"\nlabel = \"x\"\nkind = \"bool\"\ndefault = false\n\n[[sections]]\nid = \"s\"\ntitle = \"S\"\n\n[[sections.steps]]\nid = \"s.a\"\ntitle = \"A\"\nwhy = \"w\"\nkind = \"manual\"\nrun_on = \"any\"\nwhen = \"{when}\"\ninstructions = \"x\"\n"
        ),
    )
    .unwrap();
    for args in [
        &["list"][..],
        &["show", "backup"],
        &["check", "--drill", "healthy"],
    ] {
        let r = btsdr(d, args);
        expect(&r, 0, &args.join(" "));
        assert!(
            r.err
                .contains("deep.toml:22:8: error: bad `when` condition"),
            "{args:?}: {}",
            r.err
        );
    }
    let r = btsdr(
        d,
        &[
            "validate",
            &d.join("config/runbooks/deep.toml").to_string_lossy(),
        ],
    );
    expect(&r, 1, "validate");
}

const ESC_TEXT: &str = "x\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J\u{9b}31m\u{202e}y";

fn assert_inert(r: &Run, what: &str) {
    for (name, s) in [("stdout", &r.out), ("stderr", &r.err)] {
        for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
            assert!(
                !s.contains(bad),
                "{what}: {bad:?} reached {name} raw:\n{s:?}"
            );
        }
    }
}

/// Issue 14: escape sequences in session file names, operator names and echoed input were
/// printed raw (OSC 52 writes the clipboard, ESC[2J clears the screen).
#[test]
fn hostile_text_never_reaches_the_terminal_raw() {
    let dir = home();
    let d = dir.path();
    let sessions = d.join("data/sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    std::fs::write(
        sessions.join(format!("20261205-000000-{ESC_TEXT}.jsonl")),
        "",
    )
    .unwrap();
    let r = btsdr(d, &["sessions"]);
    assert_inert(&r, "sessions");
    assert!(r.out.contains("\\u{1b}]52"), "{}", r.out);
    let r = btsdr(d, &["show", ESC_TEXT]);
    assert_inert(&r, "show");
    assert!(r.err.contains("\\u{1b}"), "{}", r.err);
    let r = btsdr(d, &["report", ESC_TEXT]);
    assert_inert(&r, "report");
    let r = btsdr(d, &["check", "--drill", ESC_TEXT]);
    assert_inert(&r, "check --drill");
    let r = btsdr(d, &["check", "--drill", "healthy", "--operator", ESC_TEXT]);
    expect(&r, 0, "check with a hostile operator name");
    assert_inert(&r, "check --operator");
    let r = btsdr(
        d,
        &[
            "check",
            "--drill",
            "healthy",
            "--operator",
            ESC_TEXT,
            "--json",
        ],
    );
    assert_inert(&r, "check --json");
    std::fs::write(
        d.join("answers.toml"),
        format!("[skip]\n\"prep.change-record\" = \"{ESC_TEXT}\"\n")
            .replace('\u{1b}', "\\u001b")
            .replace('\u{7}', "\\u0007")
            .replace('\u{9b}', "\\u009b")
            .replace('\u{202e}', "\\u202e"),
    )
    .unwrap();
    let r = btsdr(
        d,
        &[
            "run",
            "backup",
            "--batch",
            "--drill",
            "healthy",
            "--dry-run",
            "--operator",
            ESC_TEXT,
            "--answers",
            &d.join("answers.toml").to_string_lossy(),
        ],
    );
    assert_inert(&r, "run --batch");
}

/// Issue 14: trust_server_certificate, clear text and a config others can read were warned
/// about in the UI only; what cron runs (`check`, `run --batch`) said nothing.
#[cfg(unix)]
#[test]
fn security_warnings_on_every_batch_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = home();
    let d = dir.path();
    probe(d, "SELECT 1 AS one", "== 1");
    std::fs::write(d.join("answers.toml"), "").unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // 127.0.0.2 is not "loopback" to btsdr's check but reaches this machine on Linux.
    let cfg = d.join("config/config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[environments.w.source]\nserver = \"127.0.0.2,{port}\"\nauth = \"sql\"\nuser = \"u\"\npassword_env = \"BTSDR_CLI_TEST_PW\"\nencrypt = \"not_supported\"\ntrust_server_certificate = true\nconnect_timeout_secs = 2\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let answers = d.join("answers.toml").to_string_lossy().into_owned();
    for args in [
        &["check", "--env", "w", "--runbook", "probe"][..],
        &[
            "run",
            "probe",
            "--batch",
            "--env",
            "w",
            "--answers",
            &answers,
        ],
    ] {
        let mut c = cli_support::command(d, args);
        c.env("BTSDR_CLI_TEST_PW", "x");
        let err = cli_support::finish(c).err;
        for needle in [
            "can be read by other users",
            "trust_server_certificate is on",
            "encrypt = \"not_supported\"",
        ] {
            assert!(
                err.lines()
                    .any(|l| l.starts_with("warning: ") && l.contains(needle)),
                "{args:?}: no warning with {needle:?} in:\n{err}"
            );
        }
    }
    // Journaled too, so the report shows them.
    let mut journaled = 0;
    for e in std::fs::read_dir(d.join("data/sessions"))
        .unwrap()
        .flatten()
    {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        if text.contains("security warning") && text.contains("trust_server_certificate") {
            journaled += 1;
        }
    }
    assert_eq!(
        journaled, 2,
        "the check and the run sessions record the warnings"
    );
}

/// Issue 14: batch commands wrote no log, and the log never rotated. Now one file a day,
/// at most `logging::MAX_LOG_FILES` kept.
#[test]
fn batch_commands_log_and_old_logs_are_pruned() {
    let dir = home();
    let d = dir.path();
    let logs = d.join("data/logs");
    std::fs::create_dir_all(&logs).unwrap();
    for day in 1..=20 {
        std::fs::write(logs.join(format!("btsdr.2020-01-{day:02}.log")), "old\n").unwrap();
    }
    probe(d, "SELECT 1 AS one", "== 1");
    std::fs::write(d.join("answers.toml"), "").unwrap();
    let answers = d.join("answers.toml").to_string_lossy().into_owned();
    expect(&btsdr(d, &["check", "--drill", "healthy"]), 0, "check");
    expect(
        &btsdr(
            d,
            &[
                "run",
                "probe",
                "--batch",
                "--drill",
                "healthy",
                "--answers",
                &answers,
            ],
        ),
        0,
        "run --batch",
    );
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        files.len() <= btsdr::logging::MAX_LOG_FILES,
        "{} log files kept: {files:?}",
        files.len()
    );
    let text: String = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(text.contains("btsdr check finished"), "{text}");
    assert!(text.contains("btsdr run --batch finished"), "{text}");
}
