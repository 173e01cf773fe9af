//! btsdr performance figures (docs/PERFORMANCE.md). Plain `std::time` measurements printed as
//! a table; nothing here asserts a time.
//!
//! ```text
//! cargo bench --bench perf                 # everything, optimised (bench profile)
//! cargo bench --bench perf --profile dev   # reuse the dev build (slower, pessimistic)
//! cargo bench --bench perf -- render keys  # only some: first-frame render keys journal check preflight sessions memory sim100
//! ```
//!
//! Memory figures run in a child process (this binary re-executed with `child NAME`) so the
//! peak (VmHWM) is the measured workload's alone.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails by panicking

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use btsdr::app::driver::Opened;
use btsdr::app::harness::{Harness, t0};
use btsdr::app::{Focus, Level, LogLine, StepOutput};
use btsdr::batch::check::{CheckOptions, ProgressStyle, check};
use btsdr::batch::{Answers, Target};
use btsdr::config::{DrillConfig, Secret, SecretSource};
use btsdr::engine::{Engine, EngineOptions, Variables};
use btsdr::engine::{Event, Record};
use btsdr::journal::JournalWriter;
use btsdr::runbook::model::Runbook;
use btsdr::sql::executor::{ConnState, ExecEvent, Executor, TiberiusExecutor};
use btsdr_sim::drill::Drill;
use btsdr_sim::scenario::Scenario;
use btsdr_types::Role;
use btsdr_types::{Column, ResultSet, Statement, Value};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc::UnboundedSender;

type Res<T> = Result<T, String>;

/// One table row.
struct Row {
    metric: String,
    goal: String,
    measured: String,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo test --all-targets` runs bench targets without `--bench`: measure nothing then.
    if args.is_empty() {
        println!("perf: not run (use `cargo bench --bench perf`)");
        return;
    }
    if args.first().map(String::as_str) == Some("child") {
        let name = args.get(1).cloned().unwrap_or_default();
        let rt = runtime();
        let r = match name.as_str() {
            "memory" => rt.block_on(child_memory(100_000)),
            "memory0" => rt.block_on(child_memory(0)),
            "sim100" => rt.block_on(child_sim100()),
            other => Err(format!("unknown child {other}")),
        };
        match r {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("child {name}: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    // `cargo bench` passes `--bench`; other words select benchmarks.
    let picks: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |n: &str| picks.is_empty() || picks.contains(&n);
    let rt = runtime();
    let mut rows: Vec<Row> = Vec::new();
    let mut run = |n: &str, r: Res<Vec<Row>>| match r {
        Ok(mut v) => rows.append(&mut v),
        Err(e) => rows.push(Row {
            metric: n.into(),
            goal: "-".into(),
            measured: format!("FAILED: {e}"),
        }),
    };
    if want("first-frame") {
        run("first-frame", first_frame());
    }
    if want("first-frame") {
        run("startup-parts", rt.block_on(startup_parts()));
    }
    if want("render") {
        run("render", render());
    }
    if want("keys") {
        run("keys", rt.block_on(keys_during_restore()));
    }
    if want("journal") {
        run("journal", journal());
    }
    if want("check") {
        run("check", rt.block_on(check_concurrency()));
    }
    if want("preflight") {
        run("preflight", rt.block_on(preflight_all()));
    }
    if want("sessions") {
        run("sessions", sessions());
    }
    if want("memory") {
        run("memory", child("memory0"));
        run("memory", child("memory"));
    }
    if want("sim100") {
        run("sim100", child("sim100"));
    }
    let profile = if cfg!(debug_assertions) {
        "debug assertions on (dev profile)"
    } else {
        "optimised"
    };
    println!("\nbtsdr perf ({profile}, {} cpus)\n", cpus());
    let w0 = rows
        .iter()
        .map(|r| r.metric.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let w1 = rows.iter().map(|r| r.goal.len()).max().unwrap_or(4).max(4);
    println!("| {:w0$} | {:w1$} | measured", "metric", "goal");
    println!("|-{}-|-{}-|---------", "-".repeat(w0), "-".repeat(w1));
    for r in rows {
        println!("| {:w0$} | {:w1$} | {}", r.metric, r.goal, r.measured);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => panic!("tokio runtime: {e}"),
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

// ---------------------------------------------------------------- statistics

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    format!(
        "median {} p99 {} max {} (n={})",
        ms(percentile(&v, 0.5)),
        ms(percentile(&v, 0.99)),
        ms(v.last().copied().unwrap_or_default()),
        v.len()
    )
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// (VmRSS, VmHWM) in KiB of this process.
fn rss_kib() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn tmpdir() -> Res<tempfile::TempDir> {
    // On the real disk (target/tmp), not a tmpfs /tmp: fsync must cost what it costs.
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------- fixtures

/// A valid runbook with `n` check steps in sections of 50.
fn big_runbook(n: usize) -> Res<Arc<Runbook>> {
    let mut s = String::from(
        "id = \"bench\"\ntitle = \"Benchmark runbook\"\nsummary = \"Many steps.\"\nversion = \"1.0.0\"\n",
    );
    for i in 0..n {
        if i % 50 == 0 {
            let _ = write!(
                s,
                "\n[[sections]]\nid = \"s{}\"\ntitle = \"Section {}\"\n",
                i / 50,
                i / 50
            );
        }
        let _ = write!(
            s,
            "\n[[sections.steps]]\nid = \"s{}.c{i}\"\ntitle = \"Check number {i} of the benchmark runbook\"\nwhy = \"Because step {i} matters.\"\nkind = \"check\"\nserver = \"destination\"\ndatabase = \"master\"\nsql = \"SELECT name, state_desc FROM sys.databases WHERE database_id > {i}\"\n[[sections.steps.assert]]\nrows = \">= 0\"\nmessage = \"Step {i} found nothing.\"\n",
            i / 50
        );
    }
    btsdr::runbook::loader::parse("bench.toml", &s, None)
        .map(Arc::new)
        .map_err(|d| format!("generated runbook invalid: {d:?}"))
}

fn options() -> EngineOptions {
    EngineOptions {
        operator: "bench".into(),
        session_id: "20261121-030000-bench".into(),
        environment: "bench".into(),
        drill: true,
        declared_at: Some(t0()),
        ..EngineOptions::default()
    }
}

/// An executor that accepts statements and never answers (rendering needs none).
struct Silent;
impl Executor for Silent {
    fn submit(&self, _id: u64, _stmt: Statement, _events: UnboundedSender<ExecEvent>) {}
    fn cancel(&self, _id: u64) {}
    fn status(&self) -> Vec<(Role, ConnState)> {
        vec![(Role::Destination, ConnState::Connected)]
    }
}

/// A harness on the run screen of a 500-step runbook whose selected step holds `rows` result
/// rows and `log` log lines.
fn big_app(dir: &Path, rows: usize, log: usize) -> Res<Harness> {
    let rb = big_runbook(500)?;
    let engine = Engine::new(Arc::clone(&rb), Variables::from_runbook(&rb), options());
    let journal = JournalWriter::create(&dir.join("bench.jsonl")).map_err(|e| e.to_string())?;
    let mut h = Harness::new(200, 60);
    h.open(Opened {
        engine,
        journal,
        executor: Arc::new(Silent),
        files_dir: dir.join("files"),
    });
    let id = h
        .app
        .selected_step()
        .map(|(r, _)| r.id.clone())
        .ok_or("no step selected")?;
    let set = ResultSet {
        not_kept: 0,
        columns: ["name", "state_desc", "recovery_model_desc", "create_date"]
            .iter()
            .map(|c| Column {
                name: (*c).into(),
                type_name: "nvarchar".into(),
            })
            .collect(),
        rows: (0..rows)
            .map(|i| {
                vec![
                    Value::Text(format!("BizTalkDatabase{i:06}")),
                    Value::Text("ONLINE".into()),
                    Value::Text("FULL".into()),
                    Value::DateTime(format!("2026-11-{:02} 02:00:00.000", 1 + i % 28)),
                ]
            })
            .collect(),
    };
    let out = StepOutput {
        sets: vec![set],
        log: (0..log)
            .map(|i| LogLine {
                at: t0(),
                level: Level::Info,
                text: format!("progress line {i}: 42 percent processed."),
            })
            .collect(),
        ..StepOutput::default()
    };
    let run = h.app.run.as_mut().ok_or("no run open")?;
    run.outputs.insert(id, out);
    h.app.focus = Focus::Output;
    Ok(h)
}

// ---------------------------------------------------------------- benchmarks

/// Process start to the first run-screen frame: `btsdr drill` in tmux (200x60) with
/// BTSDR_EXIT_AFTER_FIRST_FRAME=1, timed by the shell around the process.
fn first_frame() -> Res<Vec<Row>> {
    let bin = env!("CARGO_BIN_EXE_btsdr");
    let dir = tmpdir()?;
    let sock = format!("btsdr-bench-{}", std::process::id());
    let mut times = Vec::new();
    for i in 0..9 {
        let out = dir.path().join(format!("t{i}"));
        let data = dir.path().join(format!("data{i}"));
        let script = format!(
            "s=$(date +%s%N); BTSDR_EXIT_AFTER_FIRST_FRAME=1 BTSDR_DATA_DIR='{}' BTSDR_CONFIG_DIR='{}' '{bin}' drill --scenario healthy >/dev/null 2>'{}.err'; e=$(date +%s%N); echo $(( (e - s) / 1000 )) > '{}.tmp' && mv '{}.tmp' '{}'",
            data.display(),
            data.display(),
            out.display(),
            out.display(),
            out.display(),
            out.display()
        );
        // The session outlives the process by a moment so tmux never races its own exit.
        let file = dir.path().join(format!("run{i}.sh"));
        std::fs::write(&file, format!("{script}\nsleep 1\n")).map_err(|e| e.to_string())?;
        let cmd = format!("bash '{}'", file.display());
        let st = Command::new("tmux")
            .args([
                "-L",
                &sock,
                "new-session",
                "-d",
                "-x",
                "200",
                "-y",
                "60",
                &cmd,
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("tmux: {e}"))?;
        if !st.status.success() {
            return Err(format!(
                "tmux new-session failed: {}",
                String::from_utf8_lossy(&st.stderr).trim()
            ));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let us = loop {
            if let Ok(s) = std::fs::read_to_string(&out) {
                break s.trim().parse::<u64>().map_err(|e| e.to_string())?;
            }
            if Instant::now() > deadline {
                let err =
                    std::fs::read_to_string(format!("{}.err", out.display())).unwrap_or_default();
                let _ = Command::new("tmux")
                    .args(["-L", &sock, "kill-server"])
                    .status();
                return Err(format!("no first frame within 30 s: {err}"));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if i > 0 {
            // The first run warms the page cache.
            times.push(Duration::from_micros(us));
        }
    }
    let _ = Command::new("tmux")
        .args(["-L", &sock, "kill-server"])
        .status();
    Ok(vec![Row {
        metric: "start to first run-screen frame (btsdr drill, whole process incl. exit)".into(),
        goal: "< 30 ms".into(),
        measured: stats(times),
    }])
}

/// What the first frame waits for, measured in-process: loading the runbook library and
/// building + serving the drill scenario (its simulated history).
async fn startup_parts() -> Res<Vec<Row>> {
    let mut lib = Vec::new();
    let mut drill = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let _ = btsdr::runbook::library::Library::load(None).map_err(|d| format!("{d:?}"))?;
        lib.push(t.elapsed());
        let t = Instant::now();
        let d = Drill::start("healthy").await?;
        drill.push(t.elapsed());
        d.shutdown().await;
    }
    Ok(vec![
        Row {
            metric: "  of which: Library::load (embedded runbooks)".into(),
            goal: "-".into(),
            measured: stats(lib),
        },
        Row {
            metric: "  of which: Drill::start(\"healthy\") (3 days of history)".into(),
            goal: "-".into(),
            measured: stats(drill),
        },
    ])
}

/// One frame at 200x60: 500-step runbook, 100,000 result rows + 1,000 log lines selected.
fn render() -> Res<Vec<Row>> {
    let dir = tmpdir()?;
    let mut h = big_app(dir.path(), 100_000, 1_000)?;
    let mut term = Terminal::new(TestBackend::new(200, 60)).map_err(|e| format!("{e:?}"))?;
    let mut rows = Vec::new();
    for (label, cursor) in [("top", 0usize), ("middle", 50_000), ("end", 100_999)] {
        h.app.out_cursor = cursor;
        h.app.out_offset = cursor.saturating_sub(10);
        let mut v = Vec::new();
        for i in 0..205 {
            // Alternate two cursor lines so every frame really changes cells.
            h.app.out_cursor = cursor + (i % 2);
            let t = Instant::now();
            term.draw(|f| btsdr::ui::view(&h.app, f))
                .map_err(|e| format!("{e:?}"))?;
            if i >= 5 {
                v.push(t.elapsed());
            }
        }
        rows.push(Row {
            metric: format!("frame 200x60, 500 steps, 100k rows, output cursor at {label}"),
            goal: "< 2 ms".into(),
            measured: stats(v),
        });
    }
    // Step list scrolled to the end of the runbook.
    h.app.focus = Focus::Steps;
    let mut v = Vec::new();
    for i in 0..205 {
        h.app.selected = 498 + i % 2;
        let t = Instant::now();
        term.draw(|f| btsdr::ui::view(&h.app, f))
            .map_err(|e| format!("{e:?}"))?;
        if i >= 5 {
            v.push(t.elapsed());
        }
    }
    rows.push(Row {
        metric: "frame 200x60, 500 steps, step 499 selected".into(),
        goal: "< 2 ms".into(),
        measured: stats(v),
    });
    Ok(rows)
}

/// A runbook with one long RESTORE (destination) whose file comes from a variable.
fn restore_runbook() -> Res<Arc<Runbook>> {
    let text = r#"
id = "bench-restore"
title = "Restore one database (benchmark)"
summary = "A long RESTORE with progress."
version = "1.0.0"

[[variables]]
name = "full"
label = "Full backup file"
kind = "path"
required = true

[[sections]]
id = "r"
title = "Restore"

[[sections.steps]]
id = "r.ssodb"
title = "Restore SSODB"
why = "Benchmark."
kind = "sql"
server = "destination"
database = "master"
sql = "RESTORE DATABASE [SSODB] FROM DISK = @full WITH NORECOVERY, REPLACE, STATS = 5"
params = ["full"]
destructive = true
confirm_word = "RESTORE"
long_running = true
timeout_secs = 600

[[sections.steps]]
id = "r.after"
title = "A step to move to"
why = "Benchmark."
kind = "manual"
run_on = "the bench machine"
instructions = "Nothing."
"#;
    btsdr::runbook::loader::parse("bench-restore.toml", text, None)
        .map(Arc::new)
        .map_err(|d| format!("restore runbook invalid: {d:?}"))
}

fn drill_executor(drill: &Drill) -> Res<Arc<dyn Executor>> {
    let secrets = drill.secrets();
    let s: &dyn SecretSource = &secrets;
    TiberiusExecutor::new(&drill.environment(), s)
        .map(|e| Arc::new(e) as Arc<dyn Executor>)
        .map_err(|e| e.to_string())
}

/// The newest full backup of `db` as the simulated history recorded it.
fn newest_full(drill: &Drill, db: &str) -> Res<String> {
    let g = btsdr_sim::model::lock(&drill.group);
    g.files
        .values()
        .filter(|f| f.kind == 'D' && f.database_name.eq_ignore_ascii_case(db))
        .max_by_key(|f| f.finish)
        .map(|f| f.path.clone())
        .ok_or_else(|| format!("no full backup of {db} in the simulated history"))
}

/// Key press -> update -> frame while the simulator streams a long RESTORE's progress.
async fn keys_during_restore() -> Res<Vec<Row>> {
    let mut sc = Scenario::load("healthy")?;
    sc.min_restore_seconds = 8.0;
    let drill = Drill::start_with(sc, None).await?;
    let dir = tmpdir()?;
    let rb = restore_runbook()?;
    let mut vars = Variables::from_runbook(&rb);
    vars.set("full", newest_full(&drill, "SSODB")?);
    let engine = Engine::new(Arc::clone(&rb), vars, options());
    let journal = JournalWriter::create(&dir.path().join("k.jsonl")).map_err(|e| e.to_string())?;
    let mut h = Harness::new(200, 60);
    h.timeout = Duration::from_secs(60);
    h.open(Opened {
        engine,
        journal,
        executor: drill_executor(&drill)?,
        files_dir: dir.path().join("files"),
    });
    h.press("enter");
    h.type_text("RESTORE");
    h.press("enter");
    if !h.busy() {
        return Err(format!("the RESTORE did not start:\n{}", h.screen()));
    }
    let mut lat = Vec::new();
    let mut progress_seen = 0usize;
    let started = Instant::now();
    let mut i = 0usize;
    loop {
        let done = tokio::select! {
            _ = h.settle() => true,
            _ = tokio::time::sleep(Duration::from_millis(25)) => false,
        };
        if done {
            break;
        }
        let key = if i.is_multiple_of(2) { "j" } else { "k" };
        i += 1;
        let t = Instant::now();
        h.press(key);
        let _ = h.buffer();
        lat.push(t.elapsed());
        if h.app
            .run
            .as_ref()
            .and_then(|r| r.outputs.get("r.ssodb"))
            .is_some_and(|o| o.progress.is_some())
        {
            progress_seen += 1;
        }
    }
    let took = started.elapsed();
    let outcome = h
        .app
        .run
        .as_ref()
        .map(|r| format!("{:?}", r.steps[0].mark))
        .unwrap_or_default();
    drill.shutdown().await;
    Ok(vec![Row {
        metric: format!(
            "key -> update + frame (200x60) during an {:.1} s RESTORE ({} keys, progress on screen in {progress_seen}, step {outcome})",
            took.as_secs_f64(),
            lat.len()
        ),
        goal: "< 16 ms".into(),
        measured: stats(lat),
    }])
}

/// Journal appends with fsync on the real disk.
fn journal() -> Res<Vec<Row>> {
    let dir = tmpdir()?;
    let mut w = JournalWriter::create(&dir.path().join("j.jsonl")).map_err(|e| e.to_string())?;
    let n = 1000;
    let mut v = Vec::with_capacity(n);
    let all = Instant::now();
    for i in 0..n {
        let r = Record::new(
            t0(),
            "bench",
            Some("s0.c1"),
            Event::Note {
                text: format!("note {i}: the operator wrote something of a typical length here."),
            },
        );
        let t = Instant::now();
        w.append(r).map_err(|e| e.to_string())?;
        v.push(t.elapsed());
    }
    let total = all.elapsed();
    Ok(vec![Row {
        metric: format!(
            "journal append + fsync ({n} records, {})",
            env!("CARGO_TARGET_TMPDIR")
        ),
        goal: "-".into(),
        measured: format!(
            "{:.0} records/s; {}",
            n as f64 / total.as_secs_f64(),
            stats(v)
        ),
    }])
}

/// Listing sessions at start-up with a year of daily `btsdr check` sessions (365 closed
/// journals of 40 records) and one open session: every chain verified (`btsdr sessions`)
/// against Home's list of open sessions.
fn sessions() -> Res<Vec<Row>> {
    use btsdr::engine::{Effect, Input};
    let dir = tmpdir()?;
    let sessions = btsdr::journal::sessions_dir(dir.path());
    std::fs::create_dir_all(&sessions).map_err(|e| e.to_string())?;
    let rb = big_runbook(40)?;
    let write = |name: &str, close: bool| -> Res<()> {
        let mut e = Engine::new(Arc::clone(&rb), Variables::from_runbook(&rb), options());
        let mut w = JournalWriter::create(&sessions.join(format!("{name}.jsonl")))
            .map_err(|e| e.to_string())?;
        let mut inputs = vec![Input::Start];
        inputs.extend((0..38).map(|i| Input::Note {
            step: None,
            text: format!("check {i}: passed, the evidence line of a typical check"),
        }));
        if close {
            inputs.push(Input::Close);
        }
        for input in inputs {
            for fx in e.handle(input, t0()) {
                if let Effect::Journal { record } = fx {
                    w.append(record).map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    };
    write("20260101-000000-readiness", true)?;
    write("20261121-230000-restore", false)?;
    let closed = sessions.join("20260101-000000-readiness.jsonl");
    for d in 1..365 {
        std::fs::copy(
            &closed,
            sessions.join(format!("2025{d:04}-000000-readiness.jsonl")),
        )
        .map_err(|e| e.to_string())?;
    }
    fn time<T: Default>(f: &dyn Fn() -> T) -> (Vec<Duration>, T) {
        let mut v = Vec::new();
        let mut n = T::default();
        for _ in 0..7 {
            let t = Instant::now();
            n = f();
            v.push(t.elapsed());
        }
        (v, n)
    }
    let (all, n_all) = time(&|| {
        btsdr::journal::list_sessions(dir.path())
            .map(|l| l.len())
            .unwrap_or(0)
    });
    let (open, (n_open, n_ended)) = time(&|| {
        btsdr::journal::list_for_home(dir.path(), btsdr::launch::HOME_REPORTS)
            .map(|h| (h.open.len(), h.ended.len()))
            .unwrap_or_default()
    });
    Ok(vec![
        Row {
            metric: format!("list sessions, every chain verified ({n_all} sessions of 40 records)"),
            goal: "-".into(),
            measured: stats(all),
        },
        Row {
            metric: format!(
                "Home's sessions, same directory ({n_open} open, {n_ended} newest ended for reports)"
            ),
            goal: "-".into(),
            measured: stats(open),
        },
    ])
}

/// `btsdr check` (readiness) against 12 databases on 3 servers with 50 ms per query.
/// `btsdr preflight` of every runbook on the 12-database group at 50 ms per round trip:
/// wall time of the whole preflight (median of 5 after a warm-up) and its round trips.
async fn preflight_all() -> Res<Vec<Row>> {
    use btsdr::preflight::{PreflightOptions, preflight};
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/bench-12db.toml"
    ))
    .map_err(|e| e.to_string())?;
    let sc = Scenario::parse(&text, "benches/bench-12db.toml")?;
    let latency = sc.latency_ms;
    let drill = Drill::start_with(sc, None).await?;
    let lib = btsdr::runbook::library::Library::load(None).map_err(|d| format!("{d:?}"))?;
    let runbooks: Vec<Arc<Runbook>> = lib.ids().iter().filter_map(|id| lib.get(id)).collect();
    let opts = || -> Res<PreflightOptions> {
        Ok(PreflightOptions {
            runbooks: runbooks.clone(),
            target: Target::from_drill(&drill)?,
            sets: vec![],
            answers: Answers::default(),
            json: true,
        })
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let _ = preflight(opts()?, &mut out, &mut err).await;
    let mut walls = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        out.clear();
        let s = preflight(opts()?, &mut out, &mut err).await;
        walls.push(s.elapsed);
        last = Some(s);
    }
    let last = last.ok_or("no run")?;
    walls.sort();
    let median = walls[walls.len() / 2];
    drill.shutdown().await;
    Ok(vec![Row {
        metric: format!(
            "preflight, all {} runbooks ({} statements), {latency} ms per round trip",
            runbooks.len(),
            last.results.len()
        ),
        goal: "-".into(),
        measured: format!(
            "{} ms median of 5 ({} round trips, exit {})",
            median.as_millis(),
            last.round_trips,
            last.code
        ),
    }])
}

async fn check_concurrency() -> Res<Vec<Row>> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/bench-12db.toml"
    ))
    .map_err(|e| e.to_string())?;
    let sc = Scenario::parse(&text, "benches/bench-12db.toml")?;
    let drill = Drill::start_with(sc, None).await?;
    let lib = btsdr::runbook::library::Library::load(None).map_err(|d| format!("{d:?}"))?;
    let rb = lib.get("readiness").ok_or("no readiness runbook")?;
    let dir = tmpdir()?;
    let opts = |only: Vec<String>| -> Res<CheckOptions> {
        Ok(CheckOptions {
            runbook: Arc::clone(&rb),
            target: Target::from_drill(&drill)?,
            data_dir: dir.path().to_path_buf(),
            operator: "bench".into(),
            only,
            include_opt_in: false,
            json: true,
            sets: vec![],
            answers: Answers::default(),
            progress: ProgressStyle::Quiet,
            keep_open: false,
            width: None,
        })
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    // Warm-up (first connections), then the measured runs: the whole check RUNS times, each
    // check alone RUNS times; medians are compared.
    const RUNS: usize = 5;
    let _ = check(opts(vec![])?, &mut out, &mut err).await;
    let mut walls = Vec::new();
    let mut all = None;
    for _ in 0..RUNS {
        out.clear();
        err.clear();
        let s = check(opts(vec![])?, &mut out, &mut err).await;
        walls.push(s.elapsed);
        all = Some(s);
    }
    let all = all.ok_or("no run")?;
    let ran: Vec<String> = all
        .results
        .iter()
        .filter(|r| r.duration_ms.is_some())
        .map(|r| r.id.clone())
        .collect();
    let mut alone: BTreeMap<String, Duration> = BTreeMap::new();
    for id in &ran {
        let mut v = Vec::new();
        for _ in 0..RUNS {
            let s = check(opts(vec![id.clone()])?, &mut out, &mut err).await;
            v.push(s.elapsed);
        }
        v.sort();
        alone.insert(id.clone(), v[v.len() / 2]);
    }
    walls.sort();
    let wall = walls[walls.len() / 2];
    drill.shutdown().await;
    let (slow_id, slowest) = alone
        .iter()
        .max_by_key(|(_, d)| **d)
        .map(|(k, d)| (k.clone(), *d))
        .ok_or("no check ran")?;
    let sum: Duration = alone.values().sum();
    Ok(vec![Row {
        metric: format!(
            "btsdr check readiness, 12 dbs / 3 servers, 50 ms per query: {} checks ran (exit {})",
            ran.len(),
            all.code
        ),
        goal: "< 1.5x slowest".into(),
        measured: format!(
            "median of {RUNS}: wall {} (min {}, max {}) vs slowest single check alone {} ({slow_id}) = {:.2}x; sum of singles {}",
            ms(wall),
            ms(walls[0]),
            ms(walls[walls.len() - 1]),
            ms(slowest),
            wall.as_secs_f64() / slowest.as_secs_f64().max(1e-9),
            ms(sum)
        ),
    }])
}

/// Runs this binary as `child NAME` and turns its last stdout line into rows (`metric\tgoal\tvalue`).
fn child(name: &str) -> Res<Vec<Row>> {
    let exe: PathBuf = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args(["child", name])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, '\t');
            Some(Row {
                metric: p.next()?.to_string(),
                goal: p.next()?.to_string(),
                measured: p.next()?.to_string(),
            })
        })
        .collect())
}

async fn child_memory(rows: usize) -> Res<String> {
    let (rss0, _) = rss_kib();
    let dir = tmpdir()?;
    let mut h = big_app(dir.path(), rows, 1_000)?;
    let _ = h.screen();
    h.app.out_cursor = rows.saturating_sub(1_000);
    let _ = h.screen();
    let (rss, hwm) = rss_kib();
    Ok(format!(
        "peak memory, 500-step run with {rows} output rows (+1k log lines) drawn at 200x60\t< 30 MB\tVmHWM {} (VmRSS {}, {} before building the app)",
        mib(hwm),
        mib(rss),
        mib(rss0)
    ))
}

async fn child_sim100() -> Res<String> {
    let (rss0, _) = rss_kib();
    let drill = Drill::start("healthy").await?;
    let (_, hwm_drill) = rss_kib();
    let ep = drill.endpoint(Role::Source).ok_or("no source")?.clone();
    let profile = btsdr::config::ServerProfile::sql_login(
        &ep.addr.ip().to_string(),
        Some(ep.addr.port()),
        &drill.user,
        btsdr::config::Encrypt::NotSupported,
    );
    let queries = 20;
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let profile = profile.clone();
        let pw = drill.password.clone();
        tasks.spawn(async move {
            let secret = Secret::new(pw);
            let (mut c, _meter) = btsdr::sql::connect::connect(&profile, Some(&secret))
                .await
                .map_err(|e| e.to_string())?;
            let mut lat = Vec::new();
            for _ in 0..queries {
                let q = Instant::now();
                let s = c
                    .simple_query("SELECT name, state_desc, recovery_model_desc FROM sys.databases")
                    .await
                    .map_err(|e| e.to_string())?;
                let rows = s.into_first_result().await.map_err(|e| e.to_string())?;
                if rows.is_empty() {
                    return Err("no rows".to_string());
                }
                lat.push(q.elapsed());
            }
            Ok::<_, String>(lat)
        });
    }
    let mut lat = Vec::new();
    let mut failed = 0;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(mut v)) => lat.append(&mut v),
            _ => failed += 1,
        }
    }
    let took = t.elapsed();
    let (_, hwm) = rss_kib();
    drill.shutdown().await;
    Ok(format!(
        "simulator + 100 concurrent tiberius clients x {queries} queries (one process)\t-\t{} total, {:.0} queries/s, {failed} clients failed; query {}; VmHWM {} ({} idle drill, {} at start)",
        ms(took),
        lat.len() as f64 / took.as_secs_f64(),
        stats(lat),
        mib(hwm),
        mib(hwm_drill),
        mib(rss0)
    ))
}
