//! Soak: a drill with a month of simulated backup history, a long session of steps against
//! it over TCP while the simulated clock moves on; memory stays flat. What is asserted is the
//! live heap (this test binary counts its allocations): resident size depends on when the
//! allocator hands pages back to the system, which differs from run to run, so it is
//! reported, not asserted.
//! Bounded (about 45 s in a debug build); docs/RELIABILITY.md describes it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use btsdr::app::StepMark;
use btsdr::app::driver::Opened;
use btsdr::app::harness::{Harness, t0};
use btsdr::config::{DrillConfig, SecretSource};
use btsdr::engine::{Engine, EngineOptions, Variables};
use btsdr::journal::{JournalWriter, read_records};
use btsdr::sql::executor::{Executor, TiberiusExecutor};
use btsdr_sim::drill::Drill;
use btsdr_sim::scenario::Scenario;

/// Counts the bytes allocated and not yet freed by this test binary.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the system allocator's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Live heap of this process in KiB.
fn heap_kib() -> u64 {
    (LIVE.load(Ordering::Relaxed).max(0) / 1024) as u64
}

/// Resident set size of this process in KiB (0 when /proc is not there).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

const QUERIES: &[(&str, &str)] = &[
    ("master", "SELECT name, state_desc FROM sys.databases"),
    ("msdb", "SELECT COUNT(*) AS n FROM dbo.backupset"),
    (
        "msdb",
        "SELECT TOP (50) database_name, type, backup_finish_date FROM dbo.backupset ORDER BY backup_finish_date DESC",
    ),
];

fn runbook(steps: usize) -> Arc<btsdr::runbook::model::Runbook> {
    let mut s = String::from(
        "id = \"soak\"\ntitle = \"Soak\"\nsummary = \"Many checks.\"\nversion = \"1.0.0\"\n",
    );
    for i in 0..steps {
        if i % 50 == 0 {
            let _ = write!(
                s,
                "\n[[sections]]\nid = \"s{}\"\ntitle = \"Part {}\"\n",
                i / 50,
                i / 50
            );
        }
        let (db, sql) = QUERIES[i % QUERIES.len()];
        let _ = write!(
            s,
            "\n[[sections.steps]]\nid = \"s{}.c{i}\"\ntitle = \"Check {i}\"\nwhy = \"Soak.\"\nkind = \"check\"\nserver = \"{}\"\ndatabase = \"{db}\"\nsql = \"{sql}\"\n[[sections.steps.assert]]\nrows = \">= 1\"\nmessage = \"Nothing.\"\n",
            i / 50,
            if i % 2 == 0 { "source" } else { "destination" },
        );
    }
    Arc::new(btsdr::runbook::loader::parse("soak.toml", &s, None).expect("soak runbook"))
}

/// The soak every `cargo test` runs: a month of history (about 20 s to build in a debug build)
/// and 400 steps, about 50 s in debug. One soak per process: RSS is process-wide, so two
/// running side by side would measure each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_of_history_and_a_long_session_keep_memory_flat() {
    soak(31, 400).await;
}

/// A quick variant for iterating: 3 days of history, 150 steps (about 15 s in debug).
/// `cargo test --test robust_soak -- --ignored --nocapture`.
#[ignore = "quick variant of the month soak: cargo test --test robust_soak -- --ignored --nocapture"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_session_keeps_memory_flat() {
    soak(3, 150).await;
}

async fn soak(days: u32, steps: usize) {
    let started = Instant::now();
    let mut sc = Scenario::load("healthy").expect("scenario");
    sc.history_days = days;
    let drill = Drill::start_with(sc, None)
        .await
        .expect("drill with history");
    let built = started.elapsed();
    let rb = runbook(steps);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("soak.jsonl");
    let secrets = drill.secrets();
    let s: &dyn SecretSource = &secrets;
    let exec: Arc<dyn Executor> =
        Arc::new(TiberiusExecutor::new(&drill.environment(), s).expect("executor"));
    let mut h = Harness::new(120, 40);
    h.timeout = Duration::from_secs(20);
    h.open(Opened {
        engine: Engine::new(
            Arc::clone(&rb),
            Variables::from_runbook(&rb),
            EngineOptions {
                operator: "soak".into(),
                session_id: "20261121-030000-soak".into(),
                environment: "drill:healthy".into(),
                drill: true,
                declared_at: Some(t0()),
                ..EngineOptions::default()
            },
        ),
        journal: JournalWriter::create(&journal).expect("journal"),
        executor: exec,
        files_dir: dir.path().join("files"),
    });
    h.settle().await;
    // (steps done, live heap KiB, resident KiB)
    let mut checkpoints: Vec<(usize, u64, u64)> = Vec::new();
    for i in 0..steps {
        h.app.selected = i;
        h.press("enter");
        h.settle().await;
        let _ = h.screen();
        if i % 10 == 9 {
            // The simulated clock moves on: backup jobs keep adding history.
            drill.advance(chrono::Duration::minutes(15));
            h.advance(900);
        }
        if i == steps / 4 || i == steps / 2 || i == steps - 1 {
            checkpoints.push((i + 1, heap_kib(), rss_kib()));
        }
    }
    let run = h.app.run.as_ref().expect("run");
    let passed = run
        .steps
        .iter()
        .filter(|r| r.mark == StepMark::Passed)
        .count();
    assert_eq!(passed, steps, "{}", h.screen());
    drop(h);
    let read = read_records(&journal).expect("journal");
    assert!(read.report.is_intact(), "{}", read.report);
    drill.shutdown().await;
    eprintln!(
        "soak ({days} days, {steps} steps): history built in {built:?}, whole test {:?}, (steps, live heap KiB, RSS KiB): {checkpoints:?}",
        started.elapsed()
    );
    // After warm-up, the remaining steps (whose outputs are kept for the report) may not
    // grow the live heap by more than 8 MiB (measured: 2 MiB over 300 steps, the same in
    // every run).
    let (Some((_, first, _)), Some((_, last, _))) = (checkpoints.first(), checkpoints.last())
    else {
        panic!("no memory checkpoints were taken: {checkpoints:?}");
    };
    let grew = last.saturating_sub(*first);
    assert!(
        grew < 8 * 1024,
        "the live heap grew by {grew} KiB (bound 8 MiB): {checkpoints:?}"
    );
}
