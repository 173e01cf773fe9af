//! Command-line glue for `btsdr check` and `btsdr run --batch`: clap argument structs the
//! CLI flattens, and functions that resolve them (library, config, drill, answers) and run.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::answers::{Answers, parse_set};
use super::check::{CheckOptions, ProgressStyle, check};
use super::run::{RunOptions, run_batch};
use super::{Target, exit, operator_name};
use crate::config::{Chain, Config, EnvSecrets};
use crate::runbook::library::{self, Library};
use btsdr_sim::drill::Drill;

/// The drill scenarios (every embedded `assets/scenarios/*.toml`) as clap's possible values:
/// a name is checked when the command line is read, and shells complete it.
pub(crate) fn scenario_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        btsdr_sim::scenario::EMBEDDED.iter().map(|(name, _)| *name),
    )
}

/// Flags of `btsdr check` (flatten into the `Check` command).
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Environment from the config file.
    #[arg(long, conflicts_with = "drill", required_unless_present = "drill")]
    pub env: Option<String>,
    /// Run against the built-in simulator with this scenario.
    #[arg(long, value_name = "SCENARIO", value_parser = scenario_names())]
    pub drill: Option<String>,
    /// Runbook whose health checks run.
    #[arg(long, default_value = "readiness")]
    pub runbook: String,
    /// One JSON object per check per line (docs/CHECK_JSON.md).
    #[arg(long)]
    pub json: bool,
    /// Run only these check ids (repeatable; any check step of the runbook).
    #[arg(long = "only", value_name = "ID")]
    pub only: Vec<String>,
    /// Also run opt-in checks (RESTORE VERIFYONLY: can take long).
    #[arg(long)]
    pub include_opt_in: bool,
    /// Set a runbook variable (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// TOML file of variable values (`name = value`).
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
    /// Who runs the checks (default: $BTSDR_OPERATOR, then the OS user).
    #[arg(long)]
    pub operator: Option<String>,
    /// Leave the session open to continue the review in the UI.
    #[arg(long)]
    pub keep_open: bool,
    /// Also preflight the runbook first: every statement's names and compile, read-only
    /// (docs/PREFLIGHT.md). The exit code is the higher of the two.
    #[arg(long)]
    pub preflight: bool,
}

/// Flags `btsdr run` adds for batch mode (flatten into the `Run` command).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BatchArgs {
    /// Run the automatable steps without the UI (needs --answers).
    #[arg(long, requires = "answers")]
    pub batch: bool,
    /// TOML file of variable values and an optional [skip] table (docs/CHECK_JSON.md).
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
    /// Set a runbook variable (repeatable; overrides the answers file).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Set from the session's `--dry-run` (print every statement with its parameters; send nothing).
    #[arg(skip)]
    pub dry_run: bool,
    /// Run destructive steps too (the batch types the confirm word; journaled).
    #[arg(long)]
    pub allow_destructive: bool,
}

struct Inputs {
    runbook: std::sync::Arc<crate::runbook::model::Runbook>,
    answers: Answers,
    sets: Vec<(String, String)>,
}

fn inputs(runbook: &str, answers: Option<&Path>, set: &[String]) -> Result<Inputs, String> {
    let lib = Library::load(Some(&crate::paths::user_runbooks_dir())).map_err(|d| {
        d.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    // A bad user runbook never blocks the others: said on stderr, then ignored.
    for w in &lib.warnings {
        crate::errln!("{w}\n  note: {}", library::IGNORED);
    }
    let rb = lib.get(runbook).ok_or_else(|| {
        format!(
            "no runbook `{runbook}`. Available: {}",
            lib.ids().join(", ")
        )
    })?;
    let answers = match answers {
        Some(p) => Answers::load(p)?,
        None => Answers::default(),
    };
    let sets = set
        .iter()
        .map(|s| parse_set(s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Inputs {
        runbook: rb,
        answers,
        sets,
    })
}

/// Resolves `--env NAME` (config file, passwords from the profiles' `password_env`) or
/// `--drill SCENARIO` (started here; keep the returned `Drill` alive). Needs a runtime.
/// `ask` false: no password prompt (a dry run connects nowhere).
pub async fn target(
    config: Option<&Path>,
    env: Option<&str>,
    drill: Option<&str>,
    ask: bool,
) -> Result<(Target, Option<Drill>), String> {
    match (env, drill) {
        (_, Some(scenario)) => {
            let d = Drill::start(scenario).await?;
            let t = Target::from_drill(&d)?;
            Ok((t, Some(d)))
        }
        (Some(name), None) => {
            let cfg = Config::load(config).map_err(|e| e.to_string())?;
            let env = cfg.environment(name).ok_or_else(|| {
                let names: Vec<&str> = cfg.environments.keys().map(String::as_str).collect();
                format!(
                    "no environment `{name}` in {}. Configured: {}",
                    cfg.path
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "the config file".into()),
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                )
            })?;
            let secrets = EnvSecrets::for_environment(env);
            // On a terminal, ask for passwords no variable holds; in cron, say which is missing.
            let typed = if ask {
                tokio::task::block_in_place(|| {
                    crate::config::secrets::prompt_missing(env, &secrets)
                })?
            } else {
                crate::config::MapSecrets::new()
            };
            let mut t = Target::from_environment(env, &Chain(&secrets, &typed))?;
            if let Some(w) = &cfg.file_warning {
                t.warnings.insert(0, w.clone());
            }
            // What cron runs says it too, not only the UI.
            for w in &t.warnings {
                crate::errln!("warning: {w}");
                tracing::warn!("{w}");
            }
            Ok((t, None))
        }
        (None, None) => Err("say where to run: --env NAME or --drill SCENARIO".into()),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// `btsdr check`: returns the process exit code (0, 1 or 2; docs/CHECK_JSON.md).
pub(crate) fn check_main(args: CheckArgs, config: Option<&Path>) -> u8 {
    let mut err = std::io::stderr();
    let fail = |err: &mut std::io::Stderr, m: String| {
        // Diagnostics that carry a position already say `error:`.
        if m.contains(": error: ") {
            crate::wln!(err, "{m}");
        } else {
            crate::wln!(err, "error: {m}");
        }
        exit::SETUP
    };
    let inp = match inputs(&args.runbook, args.answers.as_deref(), &args.set) {
        Ok(i) => i,
        Err(e) => return fail(&mut err, e),
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(e) => return fail(&mut err, e),
    };
    rt.block_on(async {
        let (target, drill) =
            match target(config, args.env.as_deref(), args.drill.as_deref(), true).await {
                Ok(t) => t,
                Err(e) => return fail(&mut err, e),
            };
        let opts = CheckOptions {
            runbook: inp.runbook,
            target,
            data_dir: crate::paths::data_dir(),
            operator: operator_name(args.operator.as_deref()),
            only: args.only,
            include_opt_in: args.include_opt_in,
            json: args.json,
            sets: inp.sets,
            answers: inp.answers,
            progress: ProgressStyle::detect(),
            keep_open: args.keep_open,
            width: if args.json {
                None
            } else {
                crate::batch::check::stdout_width()
            },
        };
        let mut out = std::io::stdout();
        let code = check(opts, &mut out, &mut err).await.code;
        if let Some(d) = drill {
            d.shutdown().await;
        }
        code
    })
}

/// `btsdr run RUNBOOK --batch`: returns the process exit code (0, 1, 2 or 3).
pub(crate) fn run_main(
    runbook: &str,
    env: Option<&str>,
    drill: Option<&str>,
    operator: Option<&str>,
    args: BatchArgs,
    config: Option<&Path>,
) -> u8 {
    let mut err = std::io::stderr();
    let fail = |err: &mut std::io::Stderr, m: String| {
        // Diagnostics that carry a position already say `error:`.
        if m.contains(": error: ") {
            crate::wln!(err, "{m}");
        } else {
            crate::wln!(err, "error: {m}");
        }
        exit::SETUP
    };
    let inp = match inputs(runbook, args.answers.as_deref(), &args.set) {
        Ok(i) => i,
        Err(e) => return fail(&mut err, e),
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(e) => return fail(&mut err, e),
    };
    rt.block_on(async {
        let (target, drill) = match target(config, env, drill, !args.dry_run).await {
            Ok(t) => t,
            Err(e) => return fail(&mut err, e),
        };
        let opts = RunOptions {
            runbook: inp.runbook,
            target,
            data_dir: crate::paths::data_dir(),
            operator: operator_name(operator),
            answers: inp.answers,
            sets: inp.sets,
            dry_run: args.dry_run,
            allow_destructive: args.allow_destructive,
        };
        let mut out = std::io::stdout();
        let code = run_batch(opts, &mut out, &mut err).await.code;
        if let Some(d) = drill {
            d.shutdown().await;
        }
        code
    })
}
