//! Logs go to `<data dir>/logs/btsdr.log` (never to stdout: the UI owns the terminal).
//! `BTSDR_LOG` sets the filter (default `info`), e.g. `BTSDR_LOG=btsdr=debug`.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Starts file logging; keep the guard alive until exit so the last lines are flushed.
/// Returns `None` (and logs nowhere) when the log folder cannot be created.
pub fn init() -> Option<WorkerGuard> {
    let dir = crate::paths::log_dir();
    std::fs::create_dir_all(&dir).ok()?;
    let appender = tracing_appender::rolling::never(&dir, "btsdr.log");
    // The default queue (128,000 lines) is allocated and touched up front: 4 MiB and a
    // millisecond or two before the first frame. 8,192 lines absorb any burst we log; past
    // that, lines are dropped rather than the UI blocked (lossy, the default).
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(8_192)
        .finish(appender);
    let filter = EnvFilter::try_from_env("BTSDR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .ok()?;
    Some(guard)
}
