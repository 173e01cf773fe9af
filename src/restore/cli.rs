//! `btsdr restore-plan`: read the backup folder on the new instance and print the plan to a
//! mark (read-only). Exit 0: a plan; 1: no plan (the reason is printed); 2: could not run.

use std::io::Write;
use std::path::Path;

use btsdr_types::Role;

use super::files::read_folder;
use super::plan::{PlanSource, plan_from_headers};
use crate::batch::Target;

/// Flags of `btsdr restore-plan`.
#[derive(Debug, Clone, clap::Args)]
pub struct RestorePlanArgs {
    /// Environment from the config file.
    #[arg(long, conflicts_with = "drill", required_unless_present = "drill")]
    pub env: Option<String>,
    /// Run against the built-in simulator with this scenario.
    #[arg(long, value_name = "SCENARIO")]
    pub drill: Option<String>,
    /// The backup folder as the new instance sees it (default: the runbook value backup_path).
    #[arg(long, value_name = "PATH")]
    pub folder: Option<String>,
    /// The mark to restore to (default: the latest every database reached).
    #[arg(long, value_name = "MARK")]
    pub mark: Option<String>,
}

/// Plans from the files in `folder` as read on the destination; writes the plan or the refusal.
pub async fn restore_plan(
    target: &Target,
    folder: &str,
    mark: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let server = target.server(Role::Destination);
    let rows = match read_folder(&*target.executor, Role::Destination, folder, 60).await {
        Ok(r) => r,
        Err(e) => {
            crate::wln!(err, "error: on {server}: {e}");
            return 2;
        }
    };
    let source = PlanSource::Files {
        folder: folder.to_string(),
        server,
    };
    match plan_from_headers(source, &rows, mark) {
        Ok(p) => {
            crate::wln!(out, "Plan from {}", p.source);
            crate::wln!(
                out,
                "Mark: {} (reachable: {})",
                p.mark,
                p.reachable.join(", ")
            );
            for d in &p.databases {
                crate::wln!(
                    out,
                    "{} ({} MB)",
                    d.database,
                    d.total_bytes() / (1024 * 1024)
                );
                for f in &d.files {
                    let stop = f
                        .stop_at_mark
                        .as_deref()
                        .map(|m| format!(", STOPATMARK = {m}"))
                        .unwrap_or_default();
                    crate::wln!(out, "  {:?} {} (NORECOVERY{stop})", f.kind, f.file);
                }
            }
            for (f, why) in &p.ignored {
                crate::wln!(out, "not used: {f}: {why}");
            }
            0
        }
        Err(e) => {
            crate::wln!(err, "no plan: {e}");
            1
        }
    }
}

/// `btsdr restore-plan`: returns the process exit code.
pub fn restore_plan_main(args: RestorePlanArgs, config: Option<&Path>) -> u8 {
    let mut err = std::io::stderr();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            crate::wln!(err, "error: cannot start the async runtime: {e}");
            return 2;
        }
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
            Err(e) => {
                crate::wln!(err, "error: {e}");
                return 2;
            }
        };
        let folder = args.folder.clone().or_else(|| {
            target
                .defaults
                .iter()
                .find(|(k, _)| k == "backup_path")
                .map(|(_, v)| v.clone())
        });
        let code = match folder {
            Some(f) => {
                let mut out = std::io::stdout();
                restore_plan(&target, &f, args.mark.as_deref(), &mut out, &mut err).await
            }
            None => {
                crate::wln!(
                    err,
                    "error: no backup folder: pass --folder PATH (as the new instance sees it)"
                );
                2
            }
        };
        if let Some(d) = drill {
            d.shutdown().await;
        }
        code
    })
}
