//! Command-line interface: parsing (clap) and dispatch. Every command returns an exit code;
//! errors go to stderr with what to do next.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use serde::Deserialize;

use crate::paths;
use crate::runbook::library::{self, Library};

#[derive(Debug, Parser)]
#[command(
    name = "btsdr",
    about = "BizTalk Server backup, restore and disaster recovery, step by step",
    disable_version_flag = true
)]
pub struct Cli {
    /// Print version and the config, data and log directories.
    #[arg(short = 'V', long = "version", global = false)]
    pub version: bool,
    /// Environments file (default: <config dir>/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List the available runbooks.
    List,
    /// Print a runbook as a Markdown checklist.
    Show {
        /// Runbook id (see `btsdr list`).
        runbook: String,
    },
    /// Validate runbook files (default: the embedded and user runbooks).
    Validate {
        /// Runbook files to check.
        paths: Vec<PathBuf>,
    },
    /// Ask what failed and show which runbook sections to follow, in order.
    Recover {
        /// Failure id (skips the question): see `btsdr recover --list`.
        #[arg(long)]
        failure: Option<String>,
        /// List the failure classes.
        #[arg(long)]
        list: bool,
    },
}

pub fn version_text() -> String {
    format!(
        "btsdr {}\nconfig: {}\ndata:   {}\nlogs:   {}\n",
        env!("CARGO_PKG_VERSION"),
        paths::config_dir().display(),
        paths::data_dir().display(),
        paths::log_dir().display()
    )
}

pub fn parse() -> Cli {
    let matches = Cli::command().get_matches();
    match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    }
}

pub fn run(cli: Cli) -> ExitCode {
    if cli.version {
        print!("{}", version_text());
        return ExitCode::SUCCESS;
    }
    match cli.command {
        None => {
            eprintln!(
                "btsdr: the interactive home screen is not available in this build yet; try `btsdr list` or `btsdr --help`."
            );
            ExitCode::from(2)
        }
        Some(Cmd::List) => with_library(|lib| {
            println!("{:<20} {:>5}  {}", "RUNBOOK", "STEPS", "TITLE");
            for rb in &lib.runbooks {
                println!(
                    "{:<20} {:>5}  {} (v{})",
                    rb.id,
                    rb.step_count(),
                    rb.title,
                    rb.version
                );
            }
            ExitCode::SUCCESS
        }),
        Some(Cmd::Show { runbook }) => with_library(|lib| match lib.get(&runbook) {
            Some(rb) => {
                print!("{}", crate::runbook::print::markdown(&rb));
                ExitCode::SUCCESS
            }
            None => {
                eprintln!(
                    "error: no runbook `{runbook}`. Available: {}",
                    lib.ids().join(", ")
                );
                ExitCode::from(2)
            }
        }),
        Some(Cmd::Validate { paths }) => validate(&paths),
        Some(Cmd::Recover { failure, list }) => recover(failure.as_deref(), list),
    }
}

fn with_library(f: impl FnOnce(&Library) -> ExitCode) -> ExitCode {
    match Library::load(Some(&paths::user_runbooks_dir())) {
        Ok(lib) => {
            for w in &lib.warnings {
                eprintln!("{w}\n  note: this user runbook was ignored; the embedded one is used");
            }
            f(&lib)
        }
        Err(diags) => {
            for d in diags {
                eprintln!("{d}");
            }
            ExitCode::from(2)
        }
    }
}

fn validate(paths: &[PathBuf]) -> ExitCode {
    let rows = match crate::runbook::checklists::embedded() {
        Ok(r) => r
            .into_iter()
            .map(|r| r.id)
            .collect::<std::collections::HashSet<_>>(),
        Err(d) => {
            d.iter().for_each(|d| eprintln!("{d}"));
            return ExitCode::from(2);
        }
    };
    let mut failed = 0usize;
    let mut ok = 0usize;
    if paths.is_empty() {
        match Library::load(Some(&paths::user_runbooks_dir())) {
            Ok(lib) => {
                for w in &lib.warnings {
                    eprintln!("{w}");
                }
                failed += lib.warnings.len();
                ok += lib.runbooks.len();
                for r in lib.uncovered_rows() {
                    eprintln!(
                        "warning: checklist row {} ({}) is not covered by any step",
                        r.id, r.text
                    );
                }
            }
            Err(d) => {
                failed += d.len();
                d.iter().for_each(|d| eprintln!("{d}"));
            }
        }
    }
    for p in paths {
        match library::load_file(p, Some(&rows)) {
            Ok(rb) => {
                ok += 1;
                println!(
                    "{}: ok ({} steps in {} sections)",
                    p.display(),
                    rb.step_count(),
                    rb.sections.len()
                );
            }
            Err(d) => {
                failed += d.len();
                for d in d {
                    eprintln!("{d}");
                }
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} problem(s) found; {ok} runbook(s) valid");
        ExitCode::from(1)
    } else {
        println!("{ok} runbook(s) valid");
        ExitCode::SUCCESS
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Failures {
    failures: Vec<Failure>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Failure {
    id: String,
    label: String,
    description: String,
    reference: String,
    go: Vec<Go>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Go {
    runbook: String,
    sections: Vec<String>,
    #[serde(default)]
    note: String,
}

fn recover(failure: Option<&str>, list: bool) -> ExitCode {
    let Some(text) = crate::embedded::asset("failures.toml") else {
        eprintln!("error: this build has no failure guide (assets/failures.toml)");
        return ExitCode::from(2);
    };
    let failures = match toml::from_str::<Failures>(text) {
        Ok(f) => f.failures,
        Err(e) => {
            eprintln!(
                "error: embedded assets/failures.toml is invalid: {}",
                e.message()
            );
            return ExitCode::from(2);
        }
    };
    if list {
        for f in &failures {
            println!("{:<16} {}", f.id, f.label);
        }
        return ExitCode::SUCCESS;
    }
    let chosen = match failure {
        Some(id) => match failures.iter().find(|f| f.id == id) {
            Some(f) => f,
            None => {
                let ids: Vec<&str> = failures.iter().map(|f| f.id.as_str()).collect();
                eprintln!(
                    "error: unknown failure `{id}`; choose one of: {}",
                    ids.join(", ")
                );
                return ExitCode::from(2);
            }
        },
        None => {
            println!("What failed?");
            for (i, f) in failures.iter().enumerate() {
                println!("  {}. {}", i + 1, f.label);
            }
            print!("Answer 1-{}: ", failures.len());
            let _ = std::io::stdout().flush();
            let mut line = String::new();
            if std::io::stdin().lock().read_line(&mut line).is_err() || line.trim().is_empty() {
                eprintln!("\nno answer given; run `btsdr recover --failure ID` (see --list)");
                return ExitCode::from(2);
            }
            match line
                .trim()
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| failures.get(i))
            {
                Some(f) => f,
                None => {
                    eprintln!(
                        "`{}` is not one of the choices 1-{}",
                        line.trim(),
                        failures.len()
                    );
                    return ExitCode::from(2);
                }
            }
        }
    };
    with_library(|lib| {
        println!(
            "\n{}\n{}\nSource: {}\n",
            chosen.label,
            chosen.description.trim(),
            chosen.reference
        );
        for (i, g) in chosen.go.iter().enumerate() {
            let Some(rb) = lib.get(&g.runbook) else {
                eprintln!("error: failure guide names unknown runbook `{}`", g.runbook);
                return ExitCode::from(2);
            };
            println!("{}. Runbook `{}` ({})", i + 1, rb.id, rb.title);
            for sid in &g.sections {
                match rb.sections.iter().find(|s| &s.id == sid) {
                    Some(s) => println!("   - {} ({} steps)", s.title, s.steps.len()),
                    None => println!("   - {sid} (section missing from this runbook version)"),
                }
            }
            if !g.note.is_empty() {
                println!("   {}", g.note.trim());
            }
        }
        ExitCode::SUCCESS
    })
}
