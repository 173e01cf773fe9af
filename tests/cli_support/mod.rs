//! The real binary as a child process, in a private config and data folder: shared by the
//! process-level tests (`cli_process`, `cli_commands`, `cli_env`).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};

/// What a run of `btsdr` left behind.
pub struct Run {
    pub code: Option<i32>,
    pub out: String,
    pub err: String,
}

/// `btsdr ARGS` with `dir/data` and `dir/config`, no terminal, operator `cli-test`.
pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_btsdr"));
    c.args(args)
        .env("BTSDR_DATA_DIR", dir.join("data"))
        .env("BTSDR_CONFIG_DIR", dir.join("config"))
        .env("BTSDR_OPERATOR", "cli-test")
        .env_remove("BTSDR_LOG")
        .stdin(Stdio::null());
    c
}

/// Runs a prepared command to its end.
pub fn finish(mut c: Command) -> Run {
    let out = c.output().expect("btsdr starts");
    Run {
        code: out.status.code(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn btsdr(dir: &Path, args: &[&str]) -> Run {
    finish(command(dir, args))
}

/// A temporary home with `config/runbooks` and `data`.
pub fn home() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config/runbooks")).unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    dir
}

pub fn expect(r: &Run, code: i32, what: &str) {
    assert_eq!(
        r.code,
        Some(code),
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        r.code,
        r.out,
        r.err
    );
}
