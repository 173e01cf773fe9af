//! Snapshots of every screen and popup at 100x30 and 80x24 (TestBackend + insta), a styled
//! buffer where colour carries meaning, and tiny sizes that must not panic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

mod ui_support;

use std::sync::Arc;

use btsdr::app::harness::Harness;
use btsdr::app::session::SessionMsg;
use btsdr::app::{HomeItem, Msg, Popup};
use btsdr::sql::executor::ExecEvent;
use btsdr_types::{Progress, SqlError};
use tempfile::TempDir;
use ui_support::*;

const SIZES: [(u16, u16); 2] = [(100, 30), (80, 24)];

async fn demo(w: u16, h: u16) -> (Harness, TempDir, FakeExec) {
    let dir = tempfile::tempdir().unwrap();
    let exec = demo_exec();
    let mut h = demo_harness(w, h, dir.path(), Arc::new(exec.clone()));
    h.settle().await;
    (h, dir, exec)
}

macro_rules! snap {
    ($h:expr, $name:expr) => {{
        let (w, hh) = $h.app.viewport;
        insta::assert_snapshot!(format!("{}_{}x{}", $name, w, hh), $h.screen());
    }};
}

/// The failure classes of the embedded guide, resolved against the embedded runbooks.
fn plans() -> Vec<std::sync::Arc<btsdr::guide::Plan>> {
    let lib = btsdr::runbook::library::Library::load(None).expect("embedded runbooks");
    btsdr::guide::Plan::all(&lib).expect("embedded failure guide")
}

#[tokio::test]
async fn home_screen() {
    for (w, hh) in SIZES {
        let mut h = Harness::new(w, hh);
        h.app.operator = "alice".into();
        h.app.environments = vec!["prod".into(), "dr".into()];
        h.app.home = vec![HomeItem::Resume {
            session_id: "20261120-2312-restore".into(),
            runbook: "restore".into(),
            started: "2026-11-20 23:12".into(),
            summary: "14/41 steps, 1 in doubt".into(),
        }];
        h.app
            .home
            .extend(plans().into_iter().map(HomeItem::Failure));
        h.app.home.extend([
            HomeItem::Start {
                runbook_id: "backup".into(),
                title: "Back up BizTalk Server".into(),
            },
            HomeItem::Start {
                runbook_id: "restore".into(),
                title: "Restore BizTalk Server".into(),
            },
            HomeItem::Drill {
                scenario: "healthy".into(),
                title: "Everything is as it should be.".into(),
            },
            HomeItem::Drill {
                scenario: "msgbox-corrupt".into(),
                title: "MessageBox database corrupt".into(),
            },
            HomeItem::Report {
                path: "reports/20261101-drill.md".into(),
                title: "Drill 2026-11-01".into(),
            },
        ]);
        snap!(h, "home");
        // Past the resume entry and the four failure classes to the first runbook.
        for _ in 0..5 {
            h.press("j");
        }
        h.press("enter");
        snap!(h, "home_start_popup");
        h.press("esc");
        h.press("G");
        h.press("k");
        h.press("enter");
        snap!(h, "home_drill_popup");
    }
}

/// Home with the failure classes; the plan of each; starting from a plan; bad input.
fn form_focus(h: &Harness) -> usize {
    h.app
        .popups
        .last()
        .and_then(Popup::form)
        .map_or(99, |f| f.focus)
}

#[tokio::test]
async fn home_failure_screens() {
    for (w, hh) in SIZES {
        let mut h = Harness::new(w, hh);
        h.app.operator = "alice".into();
        h.app.environments = vec!["prod".into()];
        h.app.home = plans().into_iter().map(HomeItem::Failure).collect();
        h.app.home.push(HomeItem::Start {
            runbook_id: "restore".into(),
            title: "Restore BizTalk Server".into(),
        });
        h.press("j");
        snap!(h, "home_failures");
        h.press("enter");
        snap!(h, "failure_plan_sql");
        h.press("esc");
        assert!(h.app.popups.is_empty(), "Esc closes the plan");
        // Three parts: the body scrolls to keep the chosen one in view.
        h.press("j");
        h.press("enter");
        h.press("3");
        snap!(h, "failure_plan_same_computer_part3");
        h.press("esc");
        h.press("k");
        h.press("enter");
        h.press("enter");
        snap!(h, "failure_start_popup");
        // Wrong input: no name, RTO of "abc"; the problems show and nothing starts.
        assert_eq!(
            form_focus(&h),
            2,
            "name and environment are filled in: RTO next"
        );
        h.press("backtab");
        h.press("backtab");
        h.press("ctrl-u");
        h.press("enter");
        assert!(matches!(h.app.popups.last(), Some(Popup::Start { .. })));
        h.type_text("bob");
        h.press("tab");
        h.press("tab");
        h.type_text("abc");
        h.press("enter");
        snap!(h, "failure_start_invalid");
        assert!(matches!(h.app.popups.last(), Some(Popup::Start { .. })));
        // Esc backs out to the plan, then to Home.
        h.press("esc");
        assert!(matches!(h.app.popups.last(), Some(Popup::Plan { .. })));
        h.press("esc");
        assert!(h.app.popups.is_empty());
    }
}

#[tokio::test]
async fn run_screen_states() {
    for (w, hh) in SIZES {
        let (mut h, _d, exec) = demo(w, hh).await;
        snap!(h, "run_fresh");
        h.press("enter");
        h.settle().await;
        // The check passed and the selection moved on: back to it.
        h.press("k");
        snap!(h, "run_check_passed");
        // Output focus, cursor on the table row, cell inspector.
        h.press("tab");
        h.press("tab");
        h.press("j");
        h.press("j");
        h.press("j");
        h.press("j");
        h.press("o");
        snap!(h, "popup_inspect_cell");
        h.press("esc");
        h.press("tab");
        // A failing check: error and what to do next.
        exec.once("adm_BackupHistory", Reply::Err(SqlError::Server {
            number: 4060,
            severity: 11,
            state: 1,
            procedure: String::new(),
            line: 1,
            message: "Cannot open database \"BizTalkMgmtDb\" requested by the login. The login failed.".into(),
        }));
        h.press("j");
        h.press("j");
        h.press("enter");
        h.settle().await;
        snap!(h, "run_step_failed");
    }
}

#[tokio::test]
async fn long_restore_progress_gauge() {
    for (w, hh) in SIZES {
        let (mut h, _d, exec) = demo(w, hh).await;
        exec.once("RESTORE DATABASE", Reply::Hang);
        h.press("G");
        h.press("k");
        h.press("enter");
        snap!(h, "popup_typed_confirm");
        h.type_text("RESTOR");
        snap!(h, "popup_typed_confirm_partial");
        h.type_text("E");
        h.press("enter");
        let id = h.app.session.as_ref().unwrap().in_flight()[0];
        h.advance(95);
        h.send(Msg::Session(SessionMsg::Exec(ExecEvent::Progress {
            id,
            progress: Progress {
                percent: 42.0,
                eta_ms: Some(131_000),
            },
        })));
        snap!(h, "run_restore_progress");
        h.press("ctrl-c");
        snap!(h, "popup_cancel_running");
        h.press("enter");
        h.settle().await;
        snap!(h, "run_restore_cancelled");
    }
}

#[tokio::test]
async fn operator_popups() {
    for (w, hh) in SIZES {
        let (mut h, _d, _) = demo(w, hh).await;
        h.press("j");
        h.press("c");
        snap!(h, "popup_manual_confirm");
        h.press("esc");
        h.press("s");
        h.type_text("hosts already stopped by the Windows team");
        snap!(h, "popup_skip");
        h.press("esc");
        h.press("S");
        snap!(h, "popup_signoff");
        h.press("esc");
        h.press("q");
        snap!(h, "popup_quit");
        h.press("esc");
        h.press("?");
        snap!(h, "popup_help");
        h.press("esc");
        h.press("/");
        h.type_text("restore");
        snap!(h, "popup_find");
        h.press("esc");
    }
}

#[tokio::test]
async fn variables_and_in_doubt_popups() {
    for (w, hh) in SIZES {
        let dir = tempfile::tempdir().unwrap();
        let rb = demo_runbook();
        // No `server` value: the variables popup comes first.
        let engine = btsdr::engine::Engine::new(
            Arc::clone(&rb),
            btsdr::engine::Variables::from_runbook(&rb),
            options(false, false),
        );
        let mut h = open_engine(w, hh, dir.path(), Arc::new(demo_exec()), engine);
        snap!(h, "popup_variables");
        h.type_text("SQL DR01");
        snap!(h, "popup_variables_invalid");
        // The in-doubt chooser, drawn over the run screen.
        h.app.popups.clear();
        h.app.popups.push(Popup::InDoubt {
            step: "restore.mgmt".into(),
            choice: 0,
        });
        snap!(h, "popup_in_doubt");
    }
}

#[tokio::test]
async fn colour_carries_meaning_debug_buffer() {
    let (mut h, _d, exec) = demo(100, 30).await;
    h.press("enter");
    h.settle().await;
    h.press("k");
    exec.once(
        "adm_BackupHistory",
        Reply::Err(SqlError::Timeout { secs: 60 }),
    );
    h.press("j");
    h.press("j");
    h.press("enter");
    h.settle().await;
    h.resize(100, 12);
    insta::assert_debug_snapshot!("run_colours_100x12", h.buffer());
}

#[tokio::test]
async fn no_color_has_no_colours_but_keeps_labels() {
    let (mut h, _d, _) = demo(100, 30).await;
    h.app.theme = btsdr::ui::theme::Theme::monochrome();
    h.press("enter");
    h.settle().await;
    let buf = h.buffer();
    for cell in buf.content() {
        assert_eq!(
            cell.fg,
            ratatui::style::Color::Reset,
            "colour at {:?}",
            cell.symbol()
        );
        assert_eq!(cell.bg, ratatui::style::Color::Reset);
    }
    let screen = h.screen();
    assert!(screen.contains("[PASS]"), "{screen}");
    assert!(screen.contains("DRILL"));
}

#[tokio::test]
async fn tiny_terminals_never_panic() {
    let (mut h, _d, _) = demo(100, 30).await;
    h.press("enter");
    h.settle().await;
    h.press("k");
    h.press("?");
    for w in 1..=20 {
        for hh in 1..=5 {
            h.resize(w, hh);
            let _ = h.screen();
        }
    }
    for (w, hh) in [(79, 23), (60, 20), (40, 10), (39, 9), (200, 60)] {
        h.resize(w, hh);
        let _ = h.screen();
    }
    h.resize(60, 20);
    h.press("esc");
    insta::assert_snapshot!("compact_60x20", h.screen());
    h.resize(30, 8);
    insta::assert_snapshot!("too_small_30x8", h.screen());
}

#[tokio::test]
async fn output_pane_with_100k_lines_renders_only_visible_rows() {
    let (mut h, _d, exec) = demo(100, 30).await;
    let rows: Vec<Vec<btsdr_types::Value>> = (0..100_000)
        .map(|i| vec![text(&format!("BizTalkDb{i}")), text("ONLINE")])
        .collect();
    exec.once(
        "adm_BackupHistory",
        Reply::Ok(set(&["name", "state_desc"], rows)),
    );
    h.press("j");
    h.press("j");
    h.press("enter");
    h.settle().await;
    // It passed and the selection moved on: back to it.
    h.press("k");
    h.press("tab");
    h.press("tab");
    let t = std::time::Instant::now();
    for _ in 0..50 {
        h.press("pgdn");
        let _ = h.buffer();
    }
    h.press("G");
    let screen = h.screen();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "too slow: {:?}",
        t.elapsed()
    );
    assert!(screen.contains("BizTalkDb99999"), "{screen}");
    assert!(screen.contains("100,0"), "{screen}");
}

/// At 80 columns a long drill name, three servers and the operator do not fit: the operator
/// goes before the clock against the RTO does.
#[tokio::test]
async fn status_bar_keeps_the_rto_clock_at_80_columns() {
    let (mut h, _dir, _exec) = demo(80, 24).await;
    h.app.environment = "drill:drop-during-restore".into();
    for role in btsdr_types::Role::ALL {
        h.app.conns.insert(role, btsdr::app::ConnState::Unknown);
    }
    let screen = h.screen();
    let status = screen.lines().last().unwrap_or("");
    assert!(status.contains("/RTO 4h 00m"), "{status}");
    // Issue 13/18: the operator stays at 80x24 (connection words give way first).
    assert!(status.contains("op alice"), "{status}");
    // The title keeps the whole session id.
    let title = screen.lines().next().unwrap_or("");
    assert!(title.contains("20261121-0300-demo"), "{title}");
    h.resize(120, 30);
    let screen = h.screen();
    let status = screen.lines().last().unwrap_or("");
    assert!(
        status.contains("op alice") && status.contains("of RTO 4h 00m"),
        "{status}"
    );
}

/// A section none of whose steps applies reads "- ... n/a", never a done tick.
#[tokio::test]
async fn a_section_that_does_not_apply_is_not_shown_as_done() {
    use btsdr::engine::{Engine, Variables};
    let lib = btsdr::runbook::library::Library::load(None).unwrap();
    let rb = lib.get("restore").unwrap();
    let mut vars = Variables::from_runbook(&rb);
    vars.set("use_bam", "false");
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(Arc::clone(&rb), vars, options(true, false));
    let mut h = open_engine(100, 60, dir.path(), Arc::new(FakeExec::default()), engine);
    h.app.popups.clear();
    let screen = h.screen();
    let bam = screen
        .lines()
        .find(|l| l.contains("Update references to the BAM"))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(
        bam.contains("│- Update references") && bam.contains(" n/a"),
        "{bam}"
    );
    assert!(!bam.contains('✔'), "{bam}");
}

/// Issue 13: toasts were clipped, drawn over the steps pane's border at 80 columns, and lost.
/// Now a toast sits inside the output pane, wrapped whole, and the step's log keeps it.
#[tokio::test]
async fn a_toast_is_whole_inside_the_output_pane_and_kept_in_the_log() {
    let (mut h, _dir, _exec) = demo(80, 24).await;
    let text = "Step `restore.files` waits for prep.stop-hosts: finish it (or skip it with a reason) first, then come back here";
    h.app.notify(btsdr::app::Level::Warn, text);
    let screen = h.screen();
    let joined: String = screen
        .lines()
        .map(|l| l.trim_end_matches(['│', ' ']))
        .collect::<Vec<_>>()
        .join(" ");
    for word in ["prep.stop-hosts:", "reason)", "back", "here"] {
        assert!(joined.contains(word), "`{word}` is cut:\n{screen}");
    }
    // The steps pane's right border is intact on every body row.
    let left_w = screen
        .lines()
        .nth(1)
        .and_then(|l| l.find('┐'))
        .map(|b| l_chars(&screen, b))
        .expect("the steps pane's top border");
    for (y, line) in screen.lines().enumerate().skip(2).take(20) {
        let c = line.chars().nth(left_w);
        assert!(
            matches!(c, Some('│' | '┘' | '┐')),
            "row {y} border overwritten: {line}\n{screen}"
        );
    }
    let run = h.app.run.as_ref().unwrap();
    let id = &run.steps[h.app.selected].id;
    assert!(
        run.outputs[id].log.iter().any(|l| l.text == text),
        "the step's log keeps the toast"
    );
}

/// The column (in characters) of byte offset `b` on the second line of `screen`.
fn l_chars(screen: &str, b: usize) -> usize {
    screen.lines().nth(1).map_or(0, |l| l[..b].chars().count())
}
