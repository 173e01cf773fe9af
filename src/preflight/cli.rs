//! `btsdr preflight` arguments and entry point.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{PreflightOptions, exit, preflight};
use crate::batch::answers::{Answers, parse_set};
use crate::runbook::library::{self, Library};

/// Flags of `btsdr preflight`.
#[derive(Debug, Clone, clap::Args)]
pub struct PreflightArgs {
    /// Environment from the config file.
    #[arg(long, conflicts_with = "drill", required_unless_present = "drill")]
    pub env: Option<String>,
    /// Run against the built-in simulator with this scenario.
    #[arg(long, value_name = "SCENARIO")]
    pub drill: Option<String>,
    /// Check only this runbook (repeatable; default: every runbook).
    #[arg(long = "runbook", value_name = "ID")]
    pub runbooks: Vec<String>,
    /// One JSON object per step per line, then a summary line (docs/PREFLIGHT.md).
    #[arg(long)]
    pub json: bool,
    /// Set a runbook variable (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// TOML file of variable values (`name = value`).
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
}

/// `btsdr preflight`: returns the process exit code (0, 1 or 2; docs/PREFLIGHT.md).
pub fn preflight_main(args: PreflightArgs, config: Option<&Path>) -> u8 {
    let mut err = std::io::stderr();
    let fail = |err: &mut std::io::Stderr, m: String| {
        if m.contains(": error: ") {
            crate::wln!(err, "{m}");
        } else {
            crate::wln!(err, "error: {m}");
        }
        exit::COULD_NOT_RUN
    };
    let lib = match Library::load(Some(&crate::paths::user_runbooks_dir())) {
        Ok(l) => l,
        Err(d) => {
            let m = d
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n");
            return fail(&mut err, m);
        }
    };
    for w in &lib.warnings {
        crate::errln!("{w}\n  note: {}", library::IGNORED);
    }
    let ids: Vec<String> = if args.runbooks.is_empty() {
        lib.ids().iter().map(|s| s.to_string()).collect()
    } else {
        args.runbooks.clone()
    };
    let mut runbooks = Vec::new();
    for id in &ids {
        match lib.get(id) {
            Some(rb) => runbooks.push(rb),
            None => {
                return fail(
                    &mut err,
                    format!("no runbook `{id}`. Available: {}", lib.ids().join(", ")),
                );
            }
        }
    }
    let answers = match args.answers.as_deref().map(Answers::load) {
        Some(Ok(a)) => a,
        Some(Err(e)) => return fail(&mut err, e),
        None => Answers::default(),
    };
    let sets = match args
        .set
        .iter()
        .map(|s| parse_set(s))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(s) => s,
        Err(e) => return fail(&mut err, e),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&mut err, format!("cannot start the async runtime: {e}")),
    };
    rt.block_on(async {
        let (target, drill) = match crate::batch::cli::target(
            config,
            args.env.as_deref(),
            args.drill.as_deref(),
            true,
        )
        .await
        {
            Ok(t) => t,
            Err(e) => return fail(&mut err, e),
        };
        let opts = PreflightOptions {
            runbooks,
            target,
            sets,
            answers,
            json: args.json,
        };
        let mut out = std::io::stdout();
        let code = preflight(opts, &mut out, &mut err).await.code;
        if let Some(d) = drill {
            d.shutdown().await;
        }
        code
    })
}
