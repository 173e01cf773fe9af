//! The simulator's memory bound (docs/PERFORMANCE.md): peak memory (VmHWM) of a process that
//! serves one large query over real TCP + TLS to tiberius, which counts the rows as they
//! stream. Each case runs in a child process (this binary re-executed) so the peak is its own.
//! Plain `std::time`; nothing asserted.
//!
//! ```text
//! cargo bench --bench sim_memory                 # optimised
//! cargo bench --bench sim_memory --profile dev   # reuse the dev build
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
#![allow(clippy::too_many_lines)] // some tests tell a long story

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use btsdr_sim::model::state::InstanceRole;
use btsdr_sim::model::{SimBackend, lock};
use btsdr_sim::scenario::{self, Scenario};
use btsdr_sim::tds::TdsServer;
use btsdr_sim::tds::tls::{SimCertificate, TlsSettings};
use futures_util::TryStreamExt;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel, QueryItem};
use tokio::net::TcpStream;
use tokio_util::compat::TokioAsyncWriteCompatExt;

/// sys.databases on the healthy source has 10 rows: n-way cross joins of its names give 10^n
/// rows of n values (1e5 x 5 = 500,000 values: the most a query may build).
const CASES: [(&str, usize); 4] = [("idle", 0), ("1e4", 4), ("1e5", 5), ("1e6", 6)];
const REFUSED: (&str, usize) = ("1e7", 7);

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn query(ways: usize) -> String {
    let cols: Vec<String> = (0..ways).map(|i| format!("t{i}.name")).collect();
    let from: Vec<String> = (0..ways)
        .map(|i| format!("(SELECT name FROM sys.databases) t{i}"))
        .collect();
    format!(
        "SELECT {} FROM {}",
        cols.join(", "),
        from.join(" CROSS JOIN ")
    )
}

async fn child(ways: usize) -> Result<String, String> {
    let mut sc = Scenario::load("healthy")?;
    sc.clock_speed = 0.0;
    let g = Arc::new(Mutex::new(scenario::build(&sc)?));
    let i = lock(&g)
        .role_instance(InstanceRole::Source)
        .ok_or("no source")?;
    let cert = SimCertificate::generate()?;
    let dir = std::env::temp_dir().join(format!("btsdr-sim-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &cert.ca_pem).map_err(|e| e.to_string())?;
    let server = TdsServer::bind_tls(
        ([127, 0, 0, 1], 0).into(),
        Arc::new(SimBackend::new(g.clone(), i)),
        TlsSettings::new(&cert, false)?,
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut config = Config::new();
    config.host("127.0.0.1");
    config.port(server.local_addr().port());
    config.authentication(AuthMethod::sql_server(
        sc.accounts[0].user.as_str(),
        sc.accounts[0].password.as_str(),
    ));
    config.encryption(EncryptionLevel::Required);
    config.trust_cert_ca(ca.display());
    let tcp = TcpStream::connect(server.local_addr())
        .await
        .map_err(|e| e.to_string())?;
    let mut client = Client::connect(config, tcp.compat_write())
        .await
        .map_err(|e| e.to_string())?;
    let base = vm_hwm_kib();
    let start = Instant::now();
    let mut rows = 0u64;
    let outcome = if ways == 0 {
        "connected".to_string()
    } else {
        let sql = query(ways);
        match client.simple_query(sql).await {
            Ok(mut stream) => loop {
                match stream.try_next().await {
                    Ok(Some(QueryItem::Row(_))) => rows += 1,
                    Ok(Some(_)) => {}
                    Ok(None) => break format!("{rows} rows"),
                    Err(e) => break format!("error after {rows} rows: {e}"),
                }
            },
            Err(e) => format!("error: {e}"),
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let peak = vm_hwm_kib();
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(format!(
        "{outcome}\t{secs:.2}\t{:.1}\t{:.1}",
        base as f64 / 1024.0,
        peak as f64 / 1024.0
    ))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "child") {
        let ways = args.get(pos + 1).and_then(|w| w.parse().ok()).unwrap_or(0);
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("no runtime: {e}");
                std::process::exit(2);
            }
        };
        match rt.block_on(child(ways)) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
        return;
    }
    // `cargo test --all-targets` runs bench targets without `--bench`: measure nothing then.
    if !args.iter().any(|a| a == "--bench") {
        println!("sim_memory: not run (use `cargo bench --bench sim_memory`)");
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        eprintln!("cannot find this benchmark's executable");
        std::process::exit(2);
    };
    println!(
        "{:<6} {:<44} {:>8} {:>12} {:>10}",
        "rows", "outcome", "secs", "before MiB", "peak MiB"
    );
    for (name, ways) in CASES.iter().copied().chain([REFUSED]) {
        let out = Command::new(&exe)
            .arg("child")
            .arg(ways.to_string())
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let line = String::from_utf8_lossy(&o.stdout);
                let f: Vec<&str> = line.trim().split('\t').collect();
                if let [outcome, secs, before, peak] = f[..] {
                    let outcome: String = outcome.chars().take(44).collect();
                    println!("{name:<6} {outcome:<44} {secs:>8} {before:>12} {peak:>10}");
                }
            }
            Ok(o) => println!(
                "{name:<6} failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => println!("{name:<6} cannot run: {e}"),
        }
    }
}
