//! Command-line interface: parsing (clap) and dispatch. Every command returns an exit code;
//! errors go to stderr with what to do next.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::paths;

/// `println!` through [`crate::plain::plain`] that ignores a closed pipe (`btsdr show backup | head`).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stdout(),
            "{}",
            $crate::plain::plain(&format!($($t)*))
        );
    }};
}

/// `print!` through [`crate::plain::plain`] that ignores a closed pipe.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(
            std::io::stdout(),
            "{}",
            $crate::plain::plain(&format!($($t)*))
        );
    }};
}
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
    /// Practise on the built-in simulated BizTalk SQL Server (nothing real is touched).
    Drill {
        /// Scenario: healthy, job-disabled, stale-full, partial-set, missing-mark,
        /// restore-lagging, share-full, login-missing, drop-during-restore.
        #[arg(long, default_value = "healthy")]
        scenario: String,
        /// Runbook to walk through.
        #[arg(long, default_value = "backup")]
        runbook: String,
        /// Set a runbook variable (repeatable; over the scenario's values).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Run a runbook against a configured environment (or a drill scenario).
    Run {
        /// Runbook id (see `btsdr list`).
        runbook: String,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        batch: crate::batch::cli::BatchArgs,
    },
    /// Run the read-only health checks (for cron, Task Scheduler, monitoring).
    /// Exit 0: all passed; 1: a check failed; 2: checks could not run.
    Check(crate::batch::cli::CheckArgs),
    /// Prove the runbooks' statements on your servers without running them: every object,
    /// column, parameter and job name they use, and SET NOEXEC ON compiles (read-only).
    /// Exit 0: all ok; 1: a step would fail; 2: preflight could not run.
    Preflight(crate::preflight::cli::PreflightArgs),
    /// Plan a restore to a mark from the backup files, read on the new instance
    /// (xp_dirtree + RESTORE HEADERONLY; read-only). Exit 0: a plan; 1: no plan; 2: could not run.
    RestorePlan(crate::restore::cli::RestorePlanArgs),
    /// Serve a drill scenario on a fixed port so any TDS client (sqlcmd, SSMS) can connect.
    Sim {
        #[arg(long, default_value = "healthy")]
        scenario: String,
        /// Address of the first instance (source); the others take the next ports.
        #[arg(long, default_value = "127.0.0.1:14330")]
        listen: std::net::SocketAddr,
    },
    /// List the available runbooks.
    List,
    /// Print a runbook as a Markdown checklist. With --env, --drill or --set its
    /// `{{...}}` placeholders are filled for a paper checklist (a blank where no value is known).
    Show {
        /// Runbook id (see `btsdr list`).
        runbook: String,
        /// Fill in the servers of this environment from the config file.
        #[arg(long, conflicts_with = "drill")]
        env: Option<String>,
        /// Fill in the values of this drill scenario's simulated group.
        #[arg(long, value_name = "SCENARIO")]
        drill: Option<String>,
        /// Set a runbook variable (repeatable; over the environment's or scenario's values).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
    },
    /// Validate runbook files (default: the embedded and user runbooks).
    Validate {
        /// Runbook files to check.
        paths: Vec<PathBuf>,
    },
    /// List sessions (open ones can be resumed; in-doubt steps are counted).
    Sessions,
    /// Journal tools.
    #[command(subcommand)]
    Journal(JournalCmd),
    /// Render a session's report.
    Report {
        /// Session id (see `btsdr sessions`), `latest` (the newest session) or a journal file path.
        session: String,
        /// md or html.
        #[arg(long, default_value = "md")]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// The change record the best practices ask for (service packs, hotfixes, config changes).
    #[command(subcommand)]
    Changelog(ChangelogCmd),
    /// Print a shell completion script: bash, zsh, fish, powershell or elvish.
    ///
    /// PowerShell: `btsdr completions powershell | Out-String | Invoke-Expression`
    /// (add that line to $PROFILE to keep it).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
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

#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// Environment from the config file.
    #[arg(long, conflicts_with = "drill", required_unless_present = "drill")]
    pub env: Option<String>,
    /// Use the built-in simulator with this scenario instead of real servers.
    #[arg(long, value_name = "SCENARIO")]
    pub drill: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SessionArgs {
    /// Who is at the keyboard (default: $BTSDR_OPERATOR, then the OS user).
    #[arg(long)]
    pub operator: Option<String>,
    /// Recovery time objective in minutes (shown against the clock, reported).
    #[arg(long)]
    pub rto: Option<u32>,
    /// Recovery point objective in minutes.
    #[arg(long)]
    pub rpo: Option<u32>,
    /// Record the statements that would run; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Destructive steps need a second operator's confirmation too.
    #[arg(long)]
    pub two_person: bool,
}

pub use crate::config::operator_name;

#[derive(Debug, Subcommand)]
pub enum JournalCmd {
    /// Check a journal's hash chain; names the first edited, moved or missing record.
    /// Exit 0: intact; 1: damaged or tampered (or its head file is missing); 2: cannot read.
    /// Without FILE: every session journal and the change log, one line each.
    Verify {
        /// Journal file (`<data dir>/sessions/ID.jsonl`), a session id, `latest` (the newest
        /// session) or `changelog`; none: all of them.
        file: Option<String>,
        /// Who may sign (OpenSSH allowed_signers format; default <config dir>/allowed_signers).
        #[arg(long, value_name = "FILE")]
        allowed_signers: Option<PathBuf>,
    },
    /// Sign a session's journal with your SSH key (ed25519 recommended): the signature
    /// covers every record so far and is checked offline against allowed_signers.
    Sign {
        /// Journal file or session id.
        file: String,
        /// OpenSSH private key (e.g. ~/.ssh/id_ed25519); an encrypted key asks for its passphrase.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Your name as allowed_signers lists it (default: $BTSDR_OPERATOR, then the OS user).
        #[arg(long = "as", value_name = "PRINCIPAL")]
        principal: Option<String>,
    },
    /// Accept a journal whose head file was lost (a crash, a copy without it): re-creates
    /// the head at the last record that verifies and journals who accepted it and why.
    AcceptHead {
        /// Journal file, a session id, or `changelog`.
        file: String,
        /// Why the head file is missing (journaled).
        #[arg(long)]
        reason: String,
        /// Who accepts it (default: $BTSDR_OPERATOR, then the OS user).
        #[arg(long)]
        operator: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChangelogCmd {
    /// Record a change.
    Add {
        /// What changed (e.g. "Installed BizTalk Server 2020 CU6 on BTS01").
        what: String,
        /// Who made it.
        #[arg(long, env = "BTSDR_OPERATOR")]
        who: String,
        /// hotfix, service-pack, configuration, application, sql, master-secret (an SSO master
        /// secret backup: `btsdr check` looks for it), other.
        #[arg(long, default_value = "other")]
        category: String,
        /// Ticket or change-request reference.
        #[arg(long, default_value = "")]
        reference: String,
    },
    /// List recorded changes (verifies the chain first).
    List,
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
        out!("{}", version_text());
        return ExitCode::SUCCESS;
    }
    let config_path = cli.config.clone();
    match cli.command {
        None => interactive(
            config_path.as_deref(),
            None,
            &SessionArgs::none(),
            None,
            &UiValues::default(),
        ),
        Some(Cmd::Drill {
            scenario,
            runbook,
            set,
            session,
        }) => {
            let op = operator_name(session.operator.as_deref());
            let req = crate::app::Request::Drill {
                scenario,
                operator: op,
                rto_minutes: session.rto.or(Some(60)),
            };
            let values = UiValues { set, answers: None };
            interactive(
                config_path.as_deref(),
                Some(req),
                &session,
                Some(runbook),
                &values,
            )
        }
        Some(Cmd::Check(args)) => {
            let _log = crate::logging::init();
            tracing::info!("btsdr check started");
            // --preflight: the runbook's statements proved first (its lines come first).
            let pre = args
                .preflight
                .then(|| crate::preflight::cli::PreflightArgs {
                    env: args.env.clone(),
                    drill: args.drill.clone(),
                    runbooks: vec![args.runbook.clone()],
                    json: args.json,
                    set: args.set.clone(),
                    answers: args.answers.clone(),
                })
                .map(|p| crate::preflight::cli::preflight_main(p, config_path.as_deref()));
            let code =
                crate::batch::cli::check_main(args, config_path.as_deref()).max(pre.unwrap_or(0));
            tracing::info!(code, "btsdr check finished");
            ExitCode::from(code)
        }
        Some(Cmd::RestorePlan(args)) => {
            let _log = crate::logging::init();
            let code = crate::restore::cli::restore_plan_main(args, config_path.as_deref());
            tracing::info!(code, "btsdr restore-plan finished");
            ExitCode::from(code)
        }
        Some(Cmd::Preflight(args)) => {
            let _log = crate::logging::init();
            let code = crate::preflight::cli::preflight_main(args, config_path.as_deref());
            tracing::info!(code, "btsdr preflight finished");
            ExitCode::from(code)
        }
        Some(Cmd::Run {
            runbook,
            target,
            session,
            mut batch,
        }) if batch.batch => {
            batch.dry_run = session.dry_run;
            let _log = crate::logging::init();
            tracing::info!(runbook = %runbook, "btsdr run --batch started");
            let code = crate::batch::cli::run_main(
                &runbook,
                target.env.as_deref(),
                target.drill.as_deref(),
                session.operator.as_deref(),
                batch,
                config_path.as_deref(),
            );
            tracing::info!(code, "btsdr run --batch finished");
            ExitCode::from(code)
        }
        Some(Cmd::Run {
            runbook,
            target,
            session,
            batch,
        }) => {
            let op = operator_name(session.operator.as_deref());
            let req = match (target.env, target.drill) {
                (_, Some(scenario)) => crate::app::Request::Drill {
                    scenario,
                    operator: op,
                    rto_minutes: session.rto,
                },
                (Some(env), None) => crate::app::Request::Start {
                    runbook_id: runbook.clone(),
                    environment: env,
                    operator: op,
                    rto_minutes: session.rto,
                    rpo_minutes: session.rpo,
                },
                (None, None) => unreachable_target(),
            };
            let values = UiValues {
                set: batch.set,
                answers: batch.answers,
            };
            interactive(
                config_path.as_deref(),
                Some(req),
                &session,
                Some(runbook),
                &values,
            )
        }
        Some(Cmd::Sim { scenario, listen }) => sim(&scenario, listen),
        Some(Cmd::List) => with_library(|lib| {
            outln!("{:<20} {:>5}  {}", "RUNBOOK", "STEPS", "TITLE");
            for rb in &lib.runbooks {
                outln!(
                    "{:<20} {:>5}  {} (v{})",
                    rb.id,
                    rb.step_count(),
                    rb.title,
                    rb.version
                );
            }
            ExitCode::SUCCESS
        }),
        Some(Cmd::Show {
            runbook,
            env,
            drill,
            set,
        }) => with_library(|lib| {
            let Some(rb) = lib.get(&runbook) else {
                crate::errln!(
                    "error: no runbook `{runbook}`. Available: {}",
                    lib.ids().join(", ")
                );
                return ExitCode::from(2);
            };
            if env.is_none() && drill.is_none() && set.is_empty() {
                out!("{}", crate::runbook::print::markdown(&rb));
                return ExitCode::SUCCESS;
            }
            match show_values(
                config_path.as_deref(),
                &rb,
                env.as_deref(),
                drill.as_deref(),
                &set,
            ) {
                Ok((values, note)) => {
                    out!(
                        "{}",
                        crate::runbook::print::markdown_filled(&rb, &values, &note)
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => setup_error(&e),
            }
        }),
        Some(Cmd::Validate { paths }) => validate(&paths),
        Some(Cmd::Recover { failure, list }) => recover(failure.as_deref(), list),
        Some(Cmd::Sessions) => sessions(),
        Some(Cmd::Journal(JournalCmd::Verify {
            file,
            allowed_signers,
        })) => journal_verify(file.as_deref(), allowed_signers.as_deref()),
        Some(Cmd::Journal(JournalCmd::Sign {
            file,
            key,
            principal,
        })) => journal_sign(&file, &key, principal.as_deref()),
        Some(Cmd::Journal(JournalCmd::AcceptHead {
            file,
            reason,
            operator,
        })) => journal_accept_head(&file, &reason, operator.as_deref()),
        Some(Cmd::Report {
            session,
            format,
            output,
        }) => report(&session, &format, output.as_deref()),
        Some(Cmd::Changelog(c)) => changelog(c),
        Some(Cmd::Completions { shell }) => {
            // Into a buffer first: clap_complete panics on a write error (`| head`).
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "btsdr", &mut buf);
            let _ = std::io::stdout().write_all(&buf);
            ExitCode::SUCCESS
        }
    }
}

fn with_library(f: impl FnOnce(&Library) -> ExitCode) -> ExitCode {
    match Library::load(Some(&paths::user_runbooks_dir())) {
        Ok(lib) => {
            for w in &lib.warnings {
                crate::errln!("{w}\n  note: {}", library::IGNORED);
            }
            f(&lib)
        }
        Err(diags) => {
            for d in diags {
                crate::errln!("{d}");
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
            d.iter().for_each(|d| crate::errln!("{d}"));
            return ExitCode::from(2);
        }
    };
    let mut failed = 0usize;
    let mut ok = 0usize;
    if paths.is_empty() {
        match Library::load(Some(&paths::user_runbooks_dir())) {
            Ok(lib) => {
                for w in &lib.warnings {
                    crate::errln!("{w}");
                }
                failed += lib.warnings.len();
                ok += lib.runbooks.len();
                for r in lib.uncovered_rows() {
                    crate::errln!(
                        "warning: checklist row {} ({}) is not covered by any step",
                        r.id,
                        r.text
                    );
                }
            }
            Err(d) => {
                failed += d.len();
                d.iter().for_each(|d| crate::errln!("{d}"));
            }
        }
    }
    for p in paths {
        match library::load_file(p, Some(&rows)) {
            Ok(rb) => {
                ok += 1;
                outln!(
                    "{}: ok ({} steps in {} sections)",
                    p.display(),
                    rb.step_count(),
                    rb.sections.len()
                );
            }
            Err(d) => {
                failed += d.len();
                for d in d {
                    crate::errln!("{d}");
                }
            }
        }
    }
    if failed > 0 {
        crate::errln!("{failed} problem(s) found; {ok} runbook(s) valid");
        ExitCode::from(1)
    } else {
        outln!("{ok} runbook(s) valid");
        ExitCode::SUCCESS
    }
}

fn recover(failure: Option<&str>, list: bool) -> ExitCode {
    let failures = match crate::guide::embedded() {
        Ok(f) => f,
        Err(e) => {
            crate::errln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if list {
        for f in &failures {
            outln!("{:<16} {}", f.id, f.label);
        }
        return ExitCode::SUCCESS;
    }
    let chosen = match failure {
        Some(id) => match failures.iter().find(|f| f.id == id) {
            Some(f) => f,
            None => {
                let ids: Vec<&str> = failures.iter().map(|f| f.id.as_str()).collect();
                crate::errln!(
                    "error: unknown failure `{id}`; choose one of: {}",
                    ids.join(", ")
                );
                return ExitCode::from(2);
            }
        },
        None => {
            outln!("What failed?");
            for (i, f) in failures.iter().enumerate() {
                outln!("  {}. {}", i + 1, f.label);
            }
            out!("Answer 1-{}: ", failures.len());
            let _ = std::io::stdout().flush();
            let mut line = String::new();
            if std::io::stdin().lock().read_line(&mut line).is_err() || line.trim().is_empty() {
                crate::errln!("\nno answer given; run `btsdr recover --failure ID` (see --list)");
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
                    crate::errln!(
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
        outln!(
            "\n{}\n{}\nSource: {}\n",
            chosen.label,
            chosen.description.trim(),
            chosen.reference
        );
        for (i, g) in chosen.go.iter().enumerate() {
            let Some(rb) = lib.get(&g.runbook) else {
                crate::errln!("error: failure guide names unknown runbook `{}`", g.runbook);
                return ExitCode::from(2);
            };
            outln!("{}. Runbook `{}` ({})", i + 1, rb.id, rb.title);
            for sid in &g.sections {
                match rb.sections.iter().find(|s| &s.id == sid) {
                    Some(s) => outln!(
                        "   - {} ({} step{})",
                        s.title,
                        s.steps.len(),
                        if s.steps.len() == 1 { "" } else { "s" }
                    ),
                    None => outln!("   - {sid} (section missing from this runbook version)"),
                }
            }
            if !g.note.is_empty() {
                outln!("   {}", g.note.trim());
            }
        }
        let first = chosen.go.first().map_or("restore", |g| g.runbook.as_str());
        outln!(
            "\nStart it in `btsdr` (Home → Something failed?), or `btsdr run {first} --env NAME`. To practise first: `btsdr run {first} --drill healthy`."
        );
        ExitCode::SUCCESS
    })
}

/// What `latest` names: the session started last.
pub const LATEST: &str = "latest";

/// The journal of the session started last (`latest`).
fn latest_session() -> Result<PathBuf, String> {
    let data = paths::data_dir();
    let list = crate::journal::list_sessions(&data)
        .map_err(|e| format!("cannot list sessions in {}: {e}", data.display()))?;
    list.into_iter().next().map(|s| s.path).ok_or_else(|| {
        format!(
            "no sessions yet in {}, so there is no `{LATEST}`; start one with `btsdr drill`",
            crate::journal::sessions_dir(&data).display()
        )
    })
}

/// A session id, `latest`, or a path to a journal file (`./latest` for a file of that name).
fn journal_file(arg: &str) -> Result<PathBuf, String> {
    if arg == LATEST {
        return latest_session();
    }
    let p = PathBuf::from(arg);
    let p = if p.exists() || arg.contains('/') || arg.contains('\\') || arg.ends_with(".jsonl") {
        p
    } else {
        crate::journal::session_path(&paths::data_dir(), arg)?
    };
    // Never open a device or FIFO as a journal (`/dev/zero` is not "OK: 0 records").
    match std::fs::metadata(&p) {
        Ok(m) if !m.is_file() => Err(format!(
            "{} is not a regular file, so it is not a journal",
            p.display()
        )),
        _ => Ok(p),
    }
}

fn sessions() -> ExitCode {
    match crate::journal::list_sessions(&paths::data_dir()) {
        Ok(list) if list.is_empty() => {
            outln!(
                "No sessions yet in {}. Start one with `btsdr drill` or `btsdr run RUNBOOK --env NAME`.",
                paths::data_dir().display()
            );
            ExitCode::SUCCESS
        }
        Ok(list) => {
            let (rows, problems): (Vec<[String; 7]>, Vec<Option<String>>) = list
                .into_iter()
                .map(|s| {
                    let status = if s.intact {
                        format!("{:?}", s.status).to_lowercase()
                    } else {
                        "DAMAGED".into()
                    };
                    let flags = match (s.drill, s.dry_run) {
                        (true, true) => " drill,dry-run",
                        (true, false) => " drill",
                        (false, true) => " dry-run",
                        _ => "",
                    };
                    let last = s
                        .last_activity
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_default();
                    (
                        [
                            s.id,
                            s.runbook_id,
                            s.environment,
                            s.operator,
                            status,
                            s.in_doubt.to_string(),
                            format!("{last}{flags}"),
                        ],
                        s.problem,
                    )
                })
                .unzip();
            let header = [
                "SESSION",
                "RUNBOOK",
                "ENV",
                "OPERATOR",
                "STATUS",
                "IN DOUBT",
                "LAST ACTIVITY",
            ];
            let mut lines = crate::table::aligned(&header, &rows, &[5]).into_iter();
            outln!("{}", lines.next().unwrap_or_default());
            for (problem, line) in problems.iter().zip(lines) {
                outln!("{line}");
                if let Some(p) = problem {
                    outln!("    problem: {p}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            crate::errln!(
                "error: cannot list sessions in {}: {e}",
                paths::data_dir().display()
            );
            ExitCode::from(2)
        }
    }
}

/// `<config dir>/allowed_signers` unless a file is named.
fn allowed_signers_path(file: Option<&std::path::Path>) -> PathBuf {
    file.map_or_else(
        || paths::config_dir().join("allowed_signers"),
        std::path::Path::to_path_buf,
    )
}

fn journal_verify(arg: Option<&str>, allowed: Option<&std::path::Path>) -> ExitCode {
    let signers_file = allowed_signers_path(allowed);
    let signers = match crate::journal::signing::load_allowed_signers(&signers_file) {
        Ok(s) => s,
        Err(e) => {
            crate::errln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(arg) = arg else {
        return verify_all(&signers, &signers_file);
    };
    let path = if arg == "changelog" {
        crate::journal::Changelog::path(&paths::data_dir())
    } else {
        match journal_file(arg) {
            Ok(p) => p,
            Err(e) => {
                crate::errln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    };
    match verify_one(&path, &signers) {
        Ok(v) => {
            outln!("{}: {}", path.display(), v.report);
            for line in &v.details {
                outln!("  {line}");
            }
            if v.signatures == 0 {
                outln!("  no signatures (sign with `btsdr journal sign`)");
            } else if signers.is_empty() {
                outln!(
                    "  (no allowed signers in {}: no signature can be trusted)",
                    signers_file.display()
                );
            }
            if v.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            crate::errln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// What [`verify_one`] found in one journal.
struct Verified {
    /// The chain's verdict, as one line.
    report: String,
    /// The session binding's problem and each signature's status.
    details: Vec<String>,
    signatures: usize,
    ok: bool,
}

/// Checks a journal's chain, its binding to its file name and its signatures.
fn verify_one(
    path: &std::path::Path,
    signers: &[crate::journal::signing::AllowedSigner],
) -> Result<Verified, String> {
    let report =
        crate::journal::verify(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut ok = report.is_intact();
    let mut details = Vec::new();
    if let Some(problem) = crate::journal::sessions::binding_problem(path) {
        details.push(problem);
        ok = false;
    }
    let sigs = crate::journal::signing::check_signatures(path, signers)
        .map_err(|e| format!("cannot read the signatures of {}: {e}", path.display()))?;
    for s in &sigs {
        details.push(format!(
            "signature by {} over record {}: {}",
            if s.principal.is_empty() {
                "?"
            } else {
                &s.principal
            },
            s.seq,
            s.status
        ));
        ok &= !matches!(s.status, crate::journal::signing::SigStatus::Invalid { .. });
    }
    Ok(Verified {
        report: report.to_string(),
        details,
        signatures: sigs.len(),
        ok,
    })
}

/// `btsdr journal verify` without a file: every session journal (oldest first) and the
/// change log, one line each; exit 1 if any fails, 2 if one cannot be read.
fn verify_all(
    signers: &[crate::journal::signing::AllowedSigner],
    signers_file: &std::path::Path,
) -> ExitCode {
    let data = paths::data_dir();
    let mut files = match crate::journal::sessions::session_files(&data) {
        Ok(f) => f,
        Err(e) => {
            crate::errln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    files.sort();
    let mut paths: Vec<PathBuf> = files.into_iter().map(|(_, p)| p).collect();
    let changelog = crate::journal::Changelog::path(&data);
    if changelog.is_file() {
        paths.push(changelog);
    }
    if paths.is_empty() {
        outln!(
            "No journals yet in {}: nothing to verify.",
            crate::journal::sessions_dir(&data).display()
        );
        return ExitCode::SUCCESS;
    }
    let (mut failed, mut unreadable) = (0usize, 0usize);
    for path in &paths {
        match verify_one(path, signers) {
            Ok(v) => {
                let mut line = format!(
                    "{} {}: {}",
                    if v.ok { "ok    " } else { "FAILED" },
                    path.display(),
                    v.report
                );
                if v.signatures > 0 {
                    line.push_str(&format!("; {} signature(s)", v.signatures));
                }
                for d in v.details.iter().filter(|_| !v.ok) {
                    line.push_str(&format!("; {d}"));
                }
                outln!("{line}");
                failed += usize::from(!v.ok);
            }
            Err(e) => {
                outln!("FAILED {}: {e}", path.display());
                unreadable += 1;
            }
        }
    }
    outln!(
        "{} journal(s): {} intact, {failed} failed, {unreadable} unreadable{}",
        paths.len(),
        paths.len() - failed - unreadable,
        if signers.is_empty() {
            format!(
                " (no allowed signers in {}: no signature can be trusted)",
                signers_file.display()
            )
        } else {
            String::new()
        }
    );
    if failed > 0 || unreadable > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn journal_sign(arg: &str, key: &std::path::Path, principal: Option<&str>) -> ExitCode {
    let path = match journal_file(arg) {
        Ok(p) => p,
        Err(e) => {
            crate::errln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let principal = crate::config::operator_name(principal);
    let key = match crate::journal::signing::load_key(key, || {
        crate::config::secrets::read_hidden(&format!("Passphrase for {}: ", key.display()))
    }) {
        Ok(k) => k,
        Err(e) => {
            crate::errln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match crate::journal::signing::sign(&path, &key, &principal) {
        Ok(line) => {
            outln!(
                "{}: signed by {} over record {} (SHA-256 {}); check with `btsdr journal verify {}`",
                path.display(),
                line.principal,
                line.seq,
                line.line_sha256,
                line.session
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            crate::errln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn journal_accept_head(arg: &str, reason: &str, operator: Option<&str>) -> ExitCode {
    use crate::journal::chain::JournalWriter;
    let reason = reason.trim();
    if reason.is_empty() {
        crate::errln!("error: --reason is required: say why the head file is missing");
        return ExitCode::from(2);
    }
    let changelog = arg == "changelog";
    let path = if changelog {
        crate::journal::changelog::Changelog::path(&paths::data_dir())
    } else {
        match journal_file(arg) {
            Ok(p) => p,
            Err(e) => {
                crate::errln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let who = crate::config::operator_name(operator);
    let (mut w, report) = match JournalWriter::open_accepting_lost_head(&path) {
        Ok(x) => x,
        Err(e) => {
            crate::errln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let text = format!(
        "journal head file re-created at record {} by {who}: {reason}",
        report.records
    );
    let now = chrono::Utc::now();
    let res = if changelog {
        w.append_entry(crate::journal::changelog::ChangeEntry {
            seq: 0,
            time: now,
            who: who.clone(),
            what: text.clone(),
            category: "journal".into(),
            reference: String::new(),
            prev: String::new(),
            hash: String::new(),
        })
    } else {
        w.append(crate::engine::Record::new(
            now,
            &who,
            None,
            crate::engine::Event::Note { text: text.clone() },
        ))
    };
    match res {
        Ok(r) => {
            outln!("{}: {text} (journaled as #{})", path.display(), r.seq);
            ExitCode::SUCCESS
        }
        Err(e) => {
            crate::errln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn report(arg: &str, format: &str, output: Option<&std::path::Path>) -> ExitCode {
    let Some(fmt) = crate::report::Format::parse(format) else {
        crate::errln!("error: unknown format `{format}`: use md or html");
        return ExitCode::from(2);
    };
    let path = match journal_file(arg) {
        Ok(p) => p,
        Err(e) => {
            crate::errln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let lib = Library::load(Some(&paths::user_runbooks_dir())).ok();
    let (rep, verified) = match crate::report::from_journal(&path, lib.as_ref()) {
        Ok(r) => r,
        Err(e) => {
            crate::errln!("error: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let damaged = !verified.is_intact();
    if damaged {
        crate::errln!(
            "error: {}: {verified} — the report covers only the records before the damage",
            path.display()
        );
    }
    let done = if damaged {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    let text = crate::report::render(&rep, fmt);
    if let Some((out, why)) = output.and_then(|o| Some((o, refuse_report_target(o)?))) {
        crate::errln!(
            "error: will not write the report to {}: {why}; choose another file",
            out.display()
        );
        return ExitCode::from(2);
    }
    match output {
        Some(out) => match std::fs::write(out, text) {
            Ok(()) => {
                crate::errln!("wrote {}", out.display());
                done
            }
            Err(e) => {
                crate::errln!("error: cannot write {}: {e}", out.display());
                ExitCode::from(2)
            }
        },
        None => {
            out!("{text}");
            done
        }
    }
}

/// Why a report must not be written to `out` (a journal, its sidecars, a link, a device).
fn refuse_report_target(out: &std::path::Path) -> Option<&'static str> {
    let meta = std::fs::symlink_metadata(out).ok()?;
    if meta.file_type().is_symlink() {
        return Some("it is a symbolic link");
    }
    if !meta.is_file() {
        return Some("it is not a regular file");
    }
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
    if matches!(ext, "jsonl" | "head" | "lock") {
        return Some("it is a journal or one of its sidecar files");
    }
    None
}

fn changelog(cmd: ChangelogCmd) -> ExitCode {
    let dir = paths::data_dir();
    match cmd {
        ChangelogCmd::Add {
            what,
            who,
            category,
            reference,
        } => {
            if what.trim().is_empty() || who.trim().is_empty() {
                crate::errln!(
                    "error: say what changed and who made the change (--who or BTSDR_OPERATOR)"
                );
                return ExitCode::from(2);
            }
            let change = crate::journal::Change {
                who,
                what,
                category,
                reference,
            };
            match crate::journal::Changelog::open(&dir)
                .and_then(|mut c| c.add(change, chrono::Utc::now()))
            {
                Ok(r) => {
                    outln!(
                        "recorded change #{} ({})",
                        r.seq,
                        &r.hash[..12.min(r.hash.len())]
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    crate::errln!(
                        "error: cannot record the change in {}: {e}",
                        crate::journal::Changelog::path(&dir).display()
                    );
                    ExitCode::from(2)
                }
            }
        }
        ChangelogCmd::List => match crate::journal::Changelog::list(&dir) {
            Ok(read) => {
                if read.entries.is_empty() {
                    outln!(
                        "No changes recorded yet. Add one with `btsdr changelog add \"...\" --who NAME`."
                    );
                }
                for e in &read.entries {
                    let reference = if e.reference.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", e.reference)
                    };
                    outln!(
                        "#{:<4} {}  {:<14} {:<12} {}{reference}",
                        e.seq,
                        e.time.format("%Y-%m-%d %H:%M"),
                        e.who,
                        e.category,
                        e.what
                    );
                }
                if read.report.is_intact() {
                    ExitCode::SUCCESS
                } else {
                    crate::errln!("warning: the change log is damaged: {}", read.report);
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                crate::errln!("error: cannot read the change log: {e}");
                ExitCode::from(2)
            }
        },
    }
}

impl SessionArgs {
    fn none() -> SessionArgs {
        SessionArgs {
            operator: None,
            rto: None,
            rpo: None,
            dry_run: false,
            two_person: false,
        }
    }
}

fn unreachable_target() -> crate::app::Request {
    // clap enforces --env or --drill; keep a clear message rather than a panic.
    crate::errln!("error: say where to run: --env NAME or --drill SCENARIO");
    std::process::exit(2)
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            crate::errln!("error: cannot start the async runtime: {e}");
            ExitCode::from(2)
        })
}

fn load_config(path: Option<&std::path::Path>) -> Result<crate::config::Config, ExitCode> {
    match crate::config::Config::load(path) {
        Ok(c) => {
            for w in &c.warnings {
                crate::errln!("{w}");
            }
            Ok(c)
        }
        Err(e) => {
            crate::errln!("{e}");
            Err(ExitCode::from(2))
        }
    }
}

/// The values `btsdr show` fills in, as a session would start with them: the runbook's
/// defaults, the environment's servers (where no default is given) or the drill scenario's
/// values, then `--set`; and a line saying where they came from.
fn show_values(
    config_path: Option<&std::path::Path>,
    rb: &crate::runbook::model::Runbook,
    env: Option<&str>,
    drill: Option<&str>,
    set: &[String],
) -> Result<(std::collections::BTreeMap<String, String>, String), String> {
    use crate::batch::answers::{Answers, parse_set, resolve_variables};
    let mut values: std::collections::BTreeMap<String, String> = rb
        .variables
        .iter()
        .filter_map(|v| v.default.clone().map(|d| (v.name.clone(), d)))
        .collect();
    let mut from = Vec::new();
    if let Some(name) = env {
        let config = crate::config::Config::load(config_path).map_err(|e| e.to_string())?;
        let env = config.environment(name).ok_or_else(|| {
            let have: Vec<&str> = config.environments.keys().map(String::as_str).collect();
            format!(
                "no environment `{name}` in {}; configured: {}",
                config
                    .path
                    .as_deref()
                    .map_or_else(|| "the config file".into(), |p| p.display().to_string()),
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            )
        })?;
        let mut defaults: Vec<(String, String)> = env
            .roles()
            .into_iter()
            .filter_map(|r| {
                env.profile(r)
                    .map(|p| (format!("{r}_sql_server"), p.display_server()))
            })
            .collect();
        if env.profile(btsdr_types::Role::Destination).is_none() {
            defaults.push(("use_log_shipping".into(), "false".into()));
        }
        for (k, v) in defaults {
            if rb.variable(&k).is_some() && values.get(&k).is_none_or(|x| x.is_empty()) {
                values.insert(k, v);
            }
        }
        from.push(format!("environment `{}`", env.name));
    }
    if let Some(scenario) = drill {
        let sc = btsdr_sim::scenario::Scenario::load(scenario)?;
        for (k, v) in btsdr_sim::drill::scenario_variables(&sc) {
            if rb.variable(&k).is_some() {
                values.insert(k, v);
            }
        }
        from.push(format!("drill scenario `{scenario}` (simulated servers)"));
    }
    let sets = set
        .iter()
        .map(|s| parse_set(s))
        .collect::<Result<Vec<_>, _>>()?;
    resolve_variables(rb, &Answers::default(), &sets, &[])?;
    if !sets.is_empty() {
        from.push("--set".into());
    }
    values.extend(sets);
    let note = format!(
        "Filled in for {}. `{}` marks a value nobody has given yet: write it in.",
        from.join(", "),
        crate::runbook::print::BLANK
    );
    Ok((values, note))
}

/// Says `e` on stderr (each line an `error:` unless it names its own position) and exits 2.
fn setup_error(e: &str) -> ExitCode {
    for line in e.lines() {
        if line.contains(": error: ") || line.trim_start().starts_with("help:") {
            crate::errln!("{line}");
        } else {
            crate::errln!("error: {line}");
        }
    }
    ExitCode::from(2)
}

/// `--set NAME=VALUE` and `--answers FILE` of a session the UI opens.
#[derive(Debug, Default)]
struct UiValues {
    set: Vec<String>,
    answers: Option<PathBuf>,
}

/// The values of `v` checked against `rb` as `run --batch` checks them (the form of each
/// `--set`, the variable's name and its value), in the order they apply (answers, then sets).
fn ui_values(
    rb: &crate::runbook::model::Runbook,
    v: &UiValues,
) -> Result<Vec<(String, String)>, String> {
    use crate::batch::answers::{Answers, parse_set, resolve_variables};
    let sets = v
        .set
        .iter()
        .map(|s| parse_set(s))
        .collect::<Result<Vec<_>, _>>()?;
    let answers = match &v.answers {
        Some(p) => Answers::load(p)?,
        None => Answers::default(),
    };
    if !answers.skip.is_empty() {
        return Err(format!(
            "{}: the [skip] table is for `--batch`; in the UI, skip a step on the run screen (with its reason)",
            v.answers
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display()
        ));
    }
    resolve_variables(rb, &answers, &sets, &[])?;
    Ok(answers.values.into_iter().chain(sets).collect())
}

/// The home screen (`req = None`) or a session opened straight away.
fn interactive(
    config_path: Option<&std::path::Path>,
    req: Option<crate::app::Request>,
    session: &SessionArgs,
    runbook: Option<String>,
    values: &UiValues,
) -> ExitCode {
    use crate::app::driver::{Opener, SessionDriver};
    let lib = match Library::load(Some(&paths::user_runbooks_dir())) {
        Ok(l) => l,
        Err(d) => {
            d.iter().for_each(|d| crate::errln!("{d}"));
            return ExitCode::from(2);
        }
    };
    for w in &lib.warnings {
        crate::errln!("{w}\n  note: {}", library::IGNORED);
    }
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let _log = crate::logging::init();
    let data_dir = paths::data_dir();
    let mut app = crate::app::App::new(chrono::Utc::now());
    let (keymap, warnings) = crate::app::Keymap::load(Some(&paths::config_dir().join("keys.toml")));
    app.keymap = keymap;
    for w in warnings {
        app.notify(crate::app::Level::Warn, w);
    }
    app.home = crate::launch::home_items(&lib, &data_dir);
    app.operator = operator_name(session.operator.as_deref());
    app.environments = config.environments.keys().cloned().collect();
    let mut opener = crate::launch::LiveOpener::new(lib, config, data_dir);
    opener.dry_run = session.dry_run;
    opener.two_person_rule = session.two_person;
    opener.operator = Some(crate::config::operator_name(session.operator.as_deref()));
    if let Some(rb) = runbook {
        let Some(book) = opener.library.get(&rb) else {
            crate::errln!(
                "error: no runbook `{rb}`. Available: {}",
                opener.library.ids().join(", ")
            );
            return ExitCode::from(2);
        };
        // Checked before the UI takes the terminal, as `run --batch` checks them.
        match ui_values(&book, values) {
            Ok(v) => opener.sets = v,
            Err(e) => return setup_error(&e),
        }
        opener.drill_runbook = rb;
    }
    // Passwords the environment's profiles need and no variable holds are asked for now, on
    // the plain terminal, before the UI takes it over.
    if let Some(crate::app::Request::Start { environment, .. }) = &req
        && let Some(env) = opener.config.environment(environment).cloned()
    {
        let known = crate::config::EnvSecrets::for_environment(&env);
        match crate::config::secrets::prompt_missing(&env, &known) {
            Ok(p) => opener.prompted = p,
            Err(e) => {
                crate::errln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let code = rt.block_on(async move {
        let mut initial = Vec::new();
        let opened = match req {
            Some(r) => match opener.open(r) {
                Ok(o) => Some(o),
                Err(e) => {
                    crate::errln!("error: {e}");
                    return ExitCode::from(2);
                }
            },
            None => None,
        };
        let mut driver = SessionDriver::new(Box::new(opener));
        if let Some(o) = opened {
            initial = driver.install(o);
        }
        match crate::tui::run(app, &mut driver, initial, crate::tui::TuiOptions::default()).await {
            Ok(()) => {
                if let Some(p) = driver.journal_path() {
                    crate::errln!("The journal is safe at {}. Resume with `btsdr` or report with `btsdr report {}`.", p.display(), p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                crate::errln!("error: the terminal UI failed: {e}");
                ExitCode::from(2)
            }
        }
    });
    // The journal is written synchronously; what may still run (a simulator still building
    // its history, idle connections) must not hold up the exit.
    rt.shutdown_background();
    code
}

fn sim(scenario: &str, listen: std::net::SocketAddr) -> ExitCode {
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let _log = crate::logging::init();
    rt.block_on(async {
        let sc = match btsdr_sim::scenario::Scenario::load(scenario) {
            Ok(s) => s,
            Err(e) => {
                crate::errln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let drill = match btsdr_sim::drill::Drill::start_with(sc, Some(listen.port())).await {
            Ok(d) => d,
            Err(e) => {
                crate::errln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        outln!("btsdr simulator: scenario `{scenario}`");
        for e in &drill.endpoints {
            outln!("  {:<12} {} ({})", e.role.as_str(), e.addr, e.server_name);
        }
        outln!(
            "\nPaste into {} (then `btsdr check --env drill`):\n",
            paths::config_dir().join("config.toml").display()
        );
        outln!("{}", drill.env_toml());
        outln!(
            "Login: {} / {}   sqlcmd -S {},{} -U {} -P {}\nCtrl-C stops the simulator.",
            drill.user,
            drill.password,
            listen.ip(),
            listen.port(),
            drill.user,
            drill.password
        );
        let _ = tokio::signal::ctrl_c().await;
        drill.shutdown().await;
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powershell_completion_names_every_command() {
        let mut buf = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::PowerShell,
            &mut Cli::command(),
            "btsdr",
            &mut buf,
        );
        let text = String::from_utf8_lossy(&buf);
        assert!(text.contains("Register-ArgumentCompleter"), "{text}");
        for sub in Cli::command().get_subcommands() {
            assert!(
                text.contains(&format!("'{}'", sub.get_name())),
                "completion lacks `{}`",
                sub.get_name()
            );
        }
    }
}
