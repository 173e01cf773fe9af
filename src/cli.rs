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
        #[arg(long, default_value = "healthy", value_parser = crate::batch::cli::scenario_names())]
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
        #[arg(long, default_value = "healthy", value_parser = crate::batch::cli::scenario_names())]
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
        #[arg(long, value_name = "SCENARIO", value_parser = crate::batch::cli::scenario_names())]
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
    /// Resume an open session in the UI (as Home's Resume does): a drill continues on the
    /// simulated group its session left.
    Resume {
        /// Session id (see `btsdr sessions`) or `latest`.
        id: String,
        /// Who is at the keyboard now (default: $BTSDR_OPERATOR, then the OS user); a change
        /// of hands is journaled.
        #[arg(long)]
        operator: Option<String>,
    },
    /// Journal tools.
    #[command(subcommand)]
    Journal(JournalCmd),
    /// Render a session's report.
    Report {
        /// Session id (see `btsdr sessions`), `latest` (the newest session) or a journal file path.
        session: String,
        /// md or html.
        #[arg(long, value_enum, ignore_case = true, default_value = "md")]
        format: ReportFormat,
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
    #[arg(long, value_name = "SCENARIO", value_parser = crate::batch::cli::scenario_names())]
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
        #[arg(long, value_enum, default_value = "other")]
        category: Category,
        /// Ticket or change-request reference.
        #[arg(long, default_value = "")]
        reference: String,
    },
    /// List recorded changes (verifies the chain first).
    List,
}

/// `btsdr report --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    #[value(alias = "markdown")]
    Md,
    #[value(alias = "htm")]
    Html,
}

impl From<ReportFormat> for crate::report::Format {
    fn from(f: ReportFormat) -> crate::report::Format {
        match f {
            ReportFormat::Md => crate::report::Format::Markdown,
            ReportFormat::Html => crate::report::Format::Html,
        }
    }
}

/// `btsdr changelog add --category`: journaled by its name (`master-secret`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Category {
    Hotfix,
    ServicePack,
    Configuration,
    Application,
    Sql,
    MasterSecret,
    Other,
}

impl Category {
    /// The name on the command line and in the change log.
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
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
    match Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(c) => c,
        // Help goes to stdout as clap styles it.
        Err(e) if !e.use_stderr() => e.exit(),
        // An error echoes what was typed (`invalid value '...'`): through `plain`, as every
        // other error, so escape sequences in an argument never reach the terminal raw.
        Err(e) => {
            crate::errln!("{}", e.render().to_string().trim_end());
            std::process::exit(e.exit_code())
        }
    }
}

// TODO(issue 16): split (one function per subcommand).
#[allow(clippy::too_many_lines)]
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
                    repoint: false,
                },
                (None, None) => {
                    // clap enforces --env or --drill; keep a clear message rather than a panic.
                    return finish(Err(CliError::Problem(
                        "say where to run: --env NAME or --drill SCENARIO".into(),
                    )));
                }
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
        Some(Cmd::Sim { scenario, listen }) => finish(sim(&scenario, listen)),
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
            Ok(ExitCode::SUCCESS)
        }),
        Some(Cmd::Show {
            runbook,
            env,
            drill,
            set,
        }) => with_library(|lib| {
            let Some(rb) = lib.get(&runbook) else {
                return Err(CliError::Problem(format!(
                    "no runbook `{runbook}`. Available: {}",
                    lib.ids().join(", ")
                )));
            };
            if env.is_none() && drill.is_none() && set.is_empty() {
                out!("{}", crate::runbook::print::markdown(&rb));
                return Ok(ExitCode::SUCCESS);
            }
            let (values, note) = show_values(
                config_path.as_deref(),
                &rb,
                env.as_deref(),
                drill.as_deref(),
                &set,
            )
            .map_err(CliError::Setup)?;
            out!(
                "{}",
                crate::runbook::print::markdown_filled(&rb, &values, &note)
            );
            Ok(ExitCode::SUCCESS)
        }),
        Some(Cmd::Validate { paths }) => finish(validate(&paths)),
        Some(Cmd::Recover { failure, list }) => finish(recover(failure.as_deref(), list)),
        Some(Cmd::Sessions) => finish(sessions()),
        Some(Cmd::Resume { id, operator }) => {
            let id = if id == LATEST {
                match latest_session() {
                    Ok(p) => p
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    Err(e) => return finish(Err(CliError::Setup(e))),
                }
            } else {
                id
            };
            let session = SessionArgs {
                operator,
                rto: None,
                rpo: None,
                dry_run: false,
                two_person: false,
            };
            interactive(
                config_path.as_deref(),
                Some(crate::app::Request::Resume { session_id: id }),
                &session,
                None,
                &UiValues::default(),
            )
        }
        Some(Cmd::Journal(JournalCmd::Verify {
            file,
            allowed_signers,
        })) => finish(journal_verify(file.as_deref(), allowed_signers.as_deref())),
        Some(Cmd::Journal(JournalCmd::Sign {
            file,
            key,
            principal,
        })) => finish(journal_sign(&file, &key, principal.as_deref())),
        Some(Cmd::Journal(JournalCmd::AcceptHead {
            file,
            reason,
            operator,
        })) => finish(journal_accept_head(&file, &reason, operator.as_deref())),
        Some(Cmd::Report {
            session,
            format,
            output,
        }) => finish(report(&session, format, output.as_deref())),
        Some(Cmd::Changelog(c)) => finish(changelog(c)),
        Some(Cmd::Completions { shell }) => {
            // Into a buffer first: clap_complete panics on a write error (`| head`).
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "btsdr", &mut buf);
            let _ = std::io::stdout().write_all(&buf);
            ExitCode::SUCCESS
        }
    }
}

fn with_library(f: impl FnOnce(&Library) -> Result<ExitCode, CliError>) -> ExitCode {
    finish(library_or_diagnostics().and_then(|lib| f(&lib)))
}

/// The embedded and user runbooks, each ignored user file's warning said on stderr.
fn library_or_diagnostics() -> Result<Library, CliError> {
    let lib = Library::load(Some(&paths::user_runbooks_dir())).map_err(CliError::lines)?;
    for w in &lib.warnings {
        crate::errln!("{w}\n  note: {}", library::IGNORED);
    }
    Ok(lib)
}

fn validate(paths: &[PathBuf]) -> Result<ExitCode, CliError> {
    let rows = crate::runbook::checklists::embedded()
        .map_err(CliError::lines)?
        .into_iter()
        .map(|r| r.id)
        .collect::<std::collections::HashSet<_>>();
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
        Ok(ExitCode::from(1))
    } else {
        outln!("{ok} runbook(s) valid");
        Ok(ExitCode::SUCCESS)
    }
}

fn recover(failure: Option<&str>, list: bool) -> Result<ExitCode, CliError> {
    let failures = crate::guide::embedded()?;
    if list {
        for f in &failures {
            outln!("{:<16} {}", f.id, f.label);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let chosen = match failure {
        Some(id) => match failures.iter().find(|f| f.id == id) {
            Some(f) => f,
            None => {
                let ids: Vec<&str> = failures.iter().map(|f| f.id.as_str()).collect();
                return Err(CliError::Problem(format!(
                    "unknown failure `{id}`; choose one of: {}",
                    ids.join(", ")
                )));
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
                return Err(CliError::lines([
                    "\nno answer given; run `btsdr recover --failure ID` (see --list)",
                ]));
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
                    return Err(CliError::lines([format!(
                        "`{}` is not one of the choices 1-{}",
                        line.trim(),
                        failures.len()
                    )]));
                }
            }
        }
    };
    let lib = library_or_diagnostics()?;
    outln!(
        "\n{}\n{}\nSource: {}\n",
        chosen.label,
        chosen.description.trim(),
        chosen.reference
    );
    for (i, g) in chosen.go.iter().enumerate() {
        let Some(rb) = lib.get(&g.runbook) else {
            return Err(CliError::Problem(format!(
                "failure guide names unknown runbook `{}`",
                g.runbook
            )));
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
    Ok(ExitCode::SUCCESS)
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

fn sessions() -> Result<ExitCode, CliError> {
    let list = crate::journal::list_sessions(&paths::data_dir()).map_err(|e| {
        CliError::Problem(format!(
            "cannot list sessions in {}: {e}",
            paths::data_dir().display()
        ))
    })?;
    match list {
        list if list.is_empty() => {
            outln!(
                "No sessions yet in {}. Start one with `btsdr drill` or `btsdr run RUNBOOK --env NAME`.",
                paths::data_dir().display()
            );
            Ok(ExitCode::SUCCESS)
        }
        list => {
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
            Ok(ExitCode::SUCCESS)
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

fn journal_verify(
    arg: Option<&str>,
    allowed: Option<&std::path::Path>,
) -> Result<ExitCode, CliError> {
    let signers_file = allowed_signers_path(allowed);
    let signers = crate::journal::signing::load_allowed_signers(&signers_file)?;
    let Some(arg) = arg else {
        return verify_all(&signers, &signers_file);
    };
    let path = if arg == "changelog" {
        crate::journal::Changelog::path(&paths::data_dir())
    } else {
        journal_file(arg)?
    };
    let v = verify_one(&path, &signers)?;
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
    Ok(if v.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
) -> Result<ExitCode, CliError> {
    let data = paths::data_dir();
    let mut files = crate::journal::sessions::session_files(&data)?;
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
        return Ok(ExitCode::SUCCESS);
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
    Ok(if failed > 0 || unreadable > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn journal_sign(
    arg: &str,
    key: &std::path::Path,
    principal: Option<&str>,
) -> Result<ExitCode, CliError> {
    let path = journal_file(arg)?;
    let principal = crate::config::operator_name(principal);
    let key = crate::journal::signing::load_key(key, || {
        crate::config::secrets::read_hidden(&format!("Passphrase for {}: ", key.display()))
    })?;
    let line = crate::journal::signing::sign(&path, &key, &principal)?;
    outln!(
        "{}: signed by {} over record {} (SHA-256 {}); check with `btsdr journal verify {}`",
        path.display(),
        line.principal,
        line.seq,
        line.line_sha256,
        line.session
    );
    Ok(ExitCode::SUCCESS)
}

fn journal_accept_head(
    arg: &str,
    reason: &str,
    operator: Option<&str>,
) -> Result<ExitCode, CliError> {
    use crate::journal::chain::JournalWriter;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(CliError::Problem(
            "--reason is required: say why the head file is missing".into(),
        ));
    }
    let changelog = arg == "changelog";
    let path = if changelog {
        crate::journal::changelog::Changelog::path(&paths::data_dir())
    } else {
        journal_file(arg)?
    };
    let who = crate::config::operator_name(operator);
    let (mut w, report) = JournalWriter::open_accepting_lost_head(&path)?;
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
    let r = res?;
    outln!("{}: {text} (journaled as #{})", path.display(), r.seq);
    Ok(ExitCode::SUCCESS)
}

fn report(
    arg: &str,
    format: ReportFormat,
    output: Option<&std::path::Path>,
) -> Result<ExitCode, CliError> {
    let fmt = crate::report::Format::from(format);
    let path = journal_file(arg)?;
    let lib = Library::load(Some(&paths::user_runbooks_dir())).ok();
    let (rep, verified) = crate::report::from_journal(&path, lib.as_ref())
        .map_err(|e| CliError::Problem(format!("cannot read {}: {e}", path.display())))?;
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
        return Err(CliError::Problem(format!(
            "will not write the report to {}: {why}; choose another file",
            out.display()
        )));
    }
    match output {
        Some(out) => {
            std::fs::write(out, text)
                .map_err(|e| CliError::Problem(format!("cannot write {}: {e}", out.display())))?;
            crate::errln!("wrote {}", out.display());
        }
        None => out!("{text}"),
    }
    Ok(done)
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

fn changelog(cmd: ChangelogCmd) -> Result<ExitCode, CliError> {
    let dir = paths::data_dir();
    match cmd {
        ChangelogCmd::Add {
            what,
            who,
            category,
            reference,
        } => {
            if what.trim().is_empty() || who.trim().is_empty() {
                return Err(CliError::Problem(
                    "say what changed and who made the change (--who or BTSDR_OPERATOR)".into(),
                ));
            }
            let change = crate::journal::Change {
                who,
                what,
                category: category.name(),
                reference,
            };
            let r = crate::journal::Changelog::open(&dir)
                .and_then(|mut c| c.add(change, chrono::Utc::now()))
                .map_err(|e| {
                    CliError::Problem(format!(
                        "cannot record the change in {}: {e}",
                        crate::journal::Changelog::path(&dir).display()
                    ))
                })?;
            outln!(
                "recorded change #{} ({})",
                r.seq,
                &r.hash[..12.min(r.hash.len())]
            );
            Ok(ExitCode::SUCCESS)
        }
        ChangelogCmd::List => {
            let read = crate::journal::Changelog::list(&dir)
                .map_err(|e| CliError::Problem(format!("cannot read the change log: {e}")))?;
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
                Ok(ExitCode::SUCCESS)
            } else {
                crate::errln!("warning: the change log is damaged: {}", read.report);
                Ok(ExitCode::from(1))
            }
        }
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

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Problem(format!("cannot start the async runtime: {e}")))
}

/// The config file, its warnings said on stderr; its errors name their own position.
fn load_config(path: Option<&std::path::Path>) -> Result<crate::config::Config, CliError> {
    let c = crate::config::Config::load(path).map_err(|e| CliError::lines([e]))?;
    for w in &c.warnings {
        crate::errln!("{w}");
    }
    Ok(c)
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

/// Why a command stopped before doing its work: said on stderr in one place ([`finish`]),
/// with exit code 2. A command's own verdict (1: a check failed) is an exit code, not an error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// One problem: `error: ...`.
    #[error("error: {0}")]
    Problem(String),
    /// Lines that carry their own prefix or position (runbook diagnostics, config errors).
    #[error("{}", .0.join("\n"))]
    Lines(Vec<String>),
    /// Setup problems, one a line: each an `error:` unless it names its own position.
    #[error("{}", setup_lines(.0))]
    Setup(String),
}

impl CliError {
    fn lines<T: std::fmt::Display>(lines: impl IntoIterator<Item = T>) -> CliError {
        CliError::Lines(lines.into_iter().map(|l| l.to_string()).collect())
    }
}

impl From<String> for CliError {
    fn from(problem: String) -> CliError {
        CliError::Problem(problem)
    }
}

impl From<crate::journal::signing::SigningError> for CliError {
    fn from(e: crate::journal::signing::SigningError) -> CliError {
        CliError::Problem(e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        CliError::Problem(e.to_string())
    }
}

fn setup_lines(e: &str) -> String {
    e.lines()
        .map(|line| {
            if line.contains(": error: ") || line.trim_start().starts_with("help:") {
                line.to_string()
            } else {
                format!("error: {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The exit code of a command: its own, or 2 with the error said on stderr.
fn finish(result: Result<ExitCode, CliError>) -> ExitCode {
    result.unwrap_or_else(|e| {
        crate::errln!("{e}");
        ExitCode::from(2)
    })
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
    finish(interactive_session(
        config_path,
        req,
        session,
        runbook,
        values,
    ))
}

fn interactive_session(
    config_path: Option<&std::path::Path>,
    req: Option<crate::app::Request>,
    session: &SessionArgs,
    runbook: Option<String>,
    values: &UiValues,
) -> Result<ExitCode, CliError> {
    use crate::app::driver::{Opener, SessionDriver};
    let lib = library_or_diagnostics()?;
    let config = load_config(config_path)?;
    let rt = runtime()?;
    let _log = crate::logging::init();
    let data_dir = paths::data_dir();
    let mut app = crate::app::App::new(chrono::Utc::now());
    let (keymap, warnings) = crate::app::Keymap::load(Some(&paths::config_dir().join("keys.toml")));
    app.keymap = keymap;
    for w in warnings {
        app.notify(crate::app::Level::Warn, w);
    }
    app.home = crate::launch::home_items(&lib, &data_dir);
    app.plan_history = crate::journal::incident::plan_parts(&data_dir).unwrap_or_default();
    // Time guidance from the newest 100 sessions' journals (read once, at start).
    app.step_history = crate::journal::incident::step_durations(&data_dir, 100);
    app.operator = operator_name(session.operator.as_deref());
    app.environments = config.environments.keys().cloned().collect();
    let mut opener = crate::launch::LiveOpener::new(lib, config, data_dir);
    opener.dry_run = session.dry_run;
    opener.two_person_rule = session.two_person;
    opener.operator = Some(crate::config::operator_name(session.operator.as_deref()));
    if let Some(rb) = runbook {
        let Some(book) = opener.library.get(&rb) else {
            return Err(CliError::Problem(format!(
                "no runbook `{rb}`. Available: {}",
                opener.library.ids().join(", ")
            )));
        };
        // Checked before the UI takes the terminal, as `run --batch` checks them.
        opener.sets = ui_values(&book, values).map_err(CliError::Setup)?;
        opener.drill_runbook = rb;
    }
    // Passwords the environment's profiles need and no variable holds are asked for now, on
    // the plain terminal, before the UI takes it over.
    if let Some(crate::app::Request::Start { environment, .. }) = &req
        && let Some(env) = opener.config.environment(environment).cloned()
    {
        let known = crate::config::EnvSecrets::for_environment(&env);
        opener.prompted = crate::config::secrets::prompt_missing(&env, &known)?;
    }
    let code = rt.block_on(async move {
        let mut initial = Vec::new();
        let opened = match req {
            Some(r) => Some(opener.open(r)?),
            None => None,
        };
        let mut driver = SessionDriver::new(Box::new(opener));
        if let Some(o) = opened {
            initial = driver.install(o);
        }
        // Effects run on the driver's thread; `finish` waits for the queued records.
        let mut driver = crate::app::driver::Background::new(driver);
        let ran = crate::tui::run(app, &mut driver, initial, crate::tui::TuiOptions::default()).await;
        let driver = driver.finish();
        match ran {
            Ok(()) => {
                if let Some(p) = driver.as_ref().and_then(SessionDriver::journal_path) {
                    crate::errln!("The journal is safe at {}. Resume with `btsdr` or report with `btsdr report {}`.", p.display(), p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Err(CliError::Problem(format!("the terminal UI failed: {e}"))),
        }
    });
    // The journal is written synchronously; what may still run (a simulator still building
    // its history, idle connections) must not hold up the exit.
    rt.shutdown_background();
    code
}

fn sim(scenario: &str, listen: std::net::SocketAddr) -> Result<ExitCode, CliError> {
    let rt = runtime()?;
    let _log = crate::logging::init();
    rt.block_on(async {
        let sc = btsdr_sim::scenario::Scenario::load(scenario)?;
        let drill = btsdr_sim::drill::Drill::start_with(sc, Some(listen.port())).await?;
        outln!("btsdr simulator: scenario `{scenario}`");
        for e in &drill.endpoints {
            outln!("  {:<12} {} ({})", e.role.as_str(), e.addr, e.server_name);
        }
        outln!(
            "\nPaste into {} (then `btsdr check --env drill`):\n",
            paths::config_dir().join("config.toml").display()
        );
        outln!("{}", drill.env_toml());
        outln!("Login: {} / {}", drill.user, drill.password);
        outln!("{}", sim_trust_help(&drill, listen));
        outln!("Ctrl-C stops the simulator.");
        let _ = tokio::signal::ctrl_c().await;
        drill.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// How each kind of client trusts the simulator's per-run certificate (TLS offered, not forced).
fn sim_trust_help(drill: &btsdr_sim::drill::Drill, listen: std::net::SocketAddr) -> String {
    let ca = drill.ca_path().display();
    let (host, port) = (listen.ip(), listen.port());
    format!(
        "TLS: offered (TLS 1.2, not forced); the certificate (names localhost, 127.0.0.1) is signed \
         by this run's CA:\n  {ca}\n\
         Trust it from:\n  \
         btsdr                 trust_cert_ca = \"{ca}\" (in the block above)\n  \
         sqlcmd / ODBC 18      add the CA to the machine's trust store (Linux, one process: \
         SSL_CERT_FILE={ca}); sqlcmd -S {host},{port} -N -U ...\n  \
         pyodbc + FreeTDS      Driver=FreeTDS;Server={host};Port={port};Encryption=require;CAFile={ca}\n  \
         python-tds            pytds.connect('{host}', port={port}, cafile='{ca}', validate_host=False)\n  \
         tedious (Node)        options: {{ encrypt: true, cryptoCredentialsDetails: {{ ca: fs.readFileSync('{ca}') }} }}\n  \
         freetds.conf          encryption = require, ca file = {ca}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_are_checked_when_the_command_line_is_read() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("btsdr").chain(args.iter().copied()))
        };
        // Every embedded scenario is accepted, anything else refused with the list.
        for (name, _) in btsdr_sim::scenario::EMBEDDED {
            assert!(parse(&["drill", "--scenario", name]).is_ok(), "{name}");
            assert!(parse(&["check", "--drill", name]).is_ok(), "{name}");
        }
        let err = parse(&["drill", "--scenario", "nope"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("share-full"), "{err}");
        assert!(parse(&["show", "backup", "--drill", "nope"]).is_err());
        assert!(parse(&["run", "backup", "--drill", "nope"]).is_err());
        // Report formats, with the aliases and any case `Format::parse` took.
        for (arg, want) in [
            ("md", ReportFormat::Md),
            ("Markdown", ReportFormat::Md),
            ("HTML", ReportFormat::Html),
            ("htm", ReportFormat::Html),
        ] {
            match parse(&["report", "latest", "--format", arg]).map(|c| c.command) {
                Ok(Some(Cmd::Report { format, .. })) => assert_eq!(format, want, "{arg}"),
                other => panic!("{arg}: {other:?}"),
            }
        }
        assert!(parse(&["report", "latest", "--format", "pdf"]).is_err());
        // Categories are journaled by the names `btsdr check` looks for.
        assert_eq!(Category::MasterSecret.name(), "master-secret");
        assert_eq!(Category::ServicePack.name(), "service-pack");
        assert!(parse(&["changelog", "add", "x", "--who", "a", "--category", "nope"]).is_err());
    }

    #[test]
    fn errors_are_said_in_one_place_with_their_prefix() {
        assert_eq!(
            CliError::from("no runbook `x`".to_string()).to_string(),
            "error: no runbook `x`"
        );
        assert_eq!(
            CliError::lines(["a.toml:1:2: error: bad", "  help: fix it"]).to_string(),
            "a.toml:1:2: error: bad\n  help: fix it"
        );
        assert_eq!(
            CliError::Setup("--set x: no such variable\nf.toml:3:1: error: y\n  help: z".into())
                .to_string(),
            "error: --set x: no such variable\nf.toml:3:1: error: y\n  help: z"
        );
        assert_eq!(finish(Ok(ExitCode::from(1))), ExitCode::from(1));
        assert_eq!(
            finish(Err(CliError::Problem("x".into()))),
            ExitCode::from(2)
        );
    }

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
