//! Logs go to `<data dir>/logs/btsdr.YYYY-MM-DD.log`, a new file each day, the newest
//! [`MAX_LOG_FILES`] kept (never to stdout: the UI owns the terminal). The TUI, `check` and
//! `run --batch` log. `BTSDR_LOG` sets the filter (default `info`), e.g. `BTSDR_LOG=btsdr=debug`.

use tracing_appender::rolling::{RollingFileAppender, Rotation};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Log files kept (one a day): older ones are deleted when a log is opened.
pub const MAX_LOG_FILES: usize = 14;

/// Starts file logging; keep the guard alive until exit so the last lines are flushed.
/// Returns `None` (and logs nowhere) when the log folder cannot be created.
pub fn init() -> Option<WorkerGuard> {
    let dir = crate::paths::log_dir();
    std::fs::create_dir_all(&dir).ok()?;
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix("btsdr")
        .filename_suffix("log")
        .max_log_files(MAX_LOG_FILES)
        .build(&dir)
        .ok()?;
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
