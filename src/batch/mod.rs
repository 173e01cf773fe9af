//! Runs without the UI: `btsdr check` (read-only readiness checks for schedulers and
//! monitoring) and `btsdr run RUNBOOK --batch` (the automatable steps of a runbook, in order).
//!
//! Both go through the same pure engine and write-ahead journal as the UI; [`driver`] is the
//! headless effect loop. Inputs arrive already resolved ([`Target`], the runbook, the data
//! folder, writers) so everything here is testable without a process.
//! `docs/CHECK_JSON.md` documents the `--json` output of `check`.

pub mod answers;
pub mod check;
pub mod cli;
pub mod drill;
pub mod driver;
pub mod run;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use answers::{Answers, resolve_variables};
pub use check::{CheckOptions, CheckResult, CheckStatus, CheckSummary, check};
pub use driver::{Driver, Happened};
pub use run::{RunOptions, RunSummary, run_batch};

use crate::config::{DrillConfig, Environment, SecretSource};
use crate::sql::executor::{Executor, TiberiusExecutor};
use btsdr_types::Role;
use btsdr_types::SqlError;

/// Exit codes (documented in `docs/CHECK_JSON.md` and `btsdr check --help`).
pub mod exit {
    /// Everything applicable passed / finished.
    pub const OK: u8 = 0;
    /// A check failed (check) or a step failed (run).
    pub const FAILED: u8 = 1;
    /// Setup problem, or checks could not run (connection, login, permission).
    pub(crate) const SETUP: u8 = 2;
    /// Batch run stopped at a step that needs a person (manual or destructive).
    pub(crate) const NEEDS_OPERATOR: u8 = 3;
}

/// Connections per server role, at most: independent checks on one server run side by side,
/// each on its own connection (readiness has 11 checks on the source server). Extra connections
/// open only when statements overlap.
pub(crate) const LANES: usize = 16;

/// Where statements go: an executor plus what to call things in output and the journal.
pub struct Target {
    /// The environment (or `drill:SCENARIO`) name the session records.
    pub environment: String,
    pub drill: bool,
    /// Display name of the server behind each configured role (`host\instance,port`).
    pub servers: BTreeMap<Role, String>,
    /// Values for runbook variables the target knows (for example `source_sql_server`), used
    /// when neither `--set` nor the answers file gives one.
    pub defaults: Vec<(String, String)>,
    pub executor: Arc<dyn Executor>,
    /// Security warnings about the connections (trust_server_certificate, clear text, a
    /// config file others can read): printed on stderr and journaled as notes.
    pub warnings: Vec<String>,
    /// A drill's simulator, which performs confirmed manual steps (`batch::drill::follow_record`).
    pub drill_hands: Option<btsdr_sim::drill::DrillHands>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("environment", &self.environment)
            .field("drill", &self.drill)
            .field("servers", &self.servers)
            .finish()
    }
}

impl Target {
    /// A target for a configured environment, connecting with the tiberius executor.
    /// Must be called inside a tokio runtime. Variables `source_sql_server`,
    /// `msgbox_sql_server` and `destination_sql_server` default to the profiles' servers.
    pub fn from_environment(
        env: &Environment,
        secrets: &dyn SecretSource,
    ) -> Result<Target, String> {
        let executor =
            TiberiusExecutor::with_lanes(env, secrets, LANES).map_err(|e| e.to_string())?;
        let mut servers = BTreeMap::new();
        let mut defaults = Vec::new();
        for role in env.roles() {
            if let Some(p) = env.profile(role) {
                let s = p.display_server();
                defaults.push((format!("{role}_sql_server"), s.clone()));
                servers.insert(role, s);
            }
        }
        if env.profile(Role::Destination).is_none() {
            // No standby configured: its checks do not apply (rather than "cannot connect").
            defaults.push(("use_log_shipping".into(), "false".into()));
        }
        let warnings = env
            .roles()
            .into_iter()
            .flat_map(|role| env.profiles(role).iter().flat_map(|p| p.warnings()))
            .collect();
        Ok(Target {
            environment: env.name.clone(),
            drill: false,
            servers,
            defaults,
            executor: Arc::new(executor),
            warnings,
            drill_hands: None,
        })
    }

    /// A target for a running drill (the simulator on 127.0.0.1). Must be called inside a
    /// tokio runtime; keep the `Drill` running while the target is used. Runbook variables
    /// describing the drill's group (`source_sql_server`, `mgmt_db`, `backup_path`...)
    /// become defaults.
    pub fn from_drill(drill: &btsdr_sim::drill::Drill) -> Result<Target, String> {
        let env = drill.environment();
        let executor = TiberiusExecutor::with_lanes(&env, &drill.secrets(), LANES)
            .map_err(|e| e.to_string())?;
        let servers = drill
            .endpoints
            .iter()
            .map(|e| (e.role, format!("{} ({})", e.server_name, e.addr)))
            .collect();
        Ok(Target {
            // As the TUI names drills, so a batch drill session resumes in the TUI.
            environment: format!("{}{}", crate::config::DRILL_PREFIX, drill.scenario.name),
            drill: true,
            servers,
            defaults: drill.variables().into_iter().collect(),
            executor: Arc::new(executor),
            warnings: Vec::new(),
            drill_hands: Some(drill.hands()),
        })
    }

    /// The server name shown for `role` (`(none configured)` when missing).
    pub fn server(&self, role: Role) -> String {
        self.servers
            .get(&role)
            .cloned()
            .unwrap_or_else(|| "(none configured)".to_string())
    }
}

pub use crate::config::operator_name;

/// SQL Server error numbers that mean "this login may not do that".
pub(crate) const PERMISSION_ERRORS: [u32; 5] = [229, 230, 300, 15247, 916];

/// True when an error means the statement could not run at all (as opposed to running and
/// reporting a problem): no connection, no login, no permission, timeout, lost connection.
pub(crate) fn could_not_run(e: &SqlError) -> bool {
    match e {
        SqlError::Connect { .. }
        | SqlError::Login { .. }
        | SqlError::NoServer { .. }
        | SqlError::Timeout { .. }
        | SqlError::Dropped { .. }
        | SqlError::Cancelled
        | SqlError::Protocol { .. } => true,
        SqlError::Server { number, .. } => PERMISSION_ERRORS.contains(number),
    }
}

/// What to do about an error, for people reading a terminal or a monitoring alert.
pub fn error_advice(e: &SqlError) -> String {
    match e {
        SqlError::Connect { message, .. } if message == crate::sql::connect::NO_TLS => {
            "Enable TLS on the server, or set encrypt = \"not_supported\" in this environment's profile if clear text is acceptable on this network (docs/CONFIG.md, Encryption).".into()
        }
        SqlError::Connect { message, .. }
            if message.starts_with(crate::sql::connect::LOGIN_TLS_FAILED)
                || message.starts_with("TLS failed") =>
        {
            "The connection reached the server but encryption failed: set the profile's `encrypt` or `trust_server_certificate` as the message says (docs/CONFIG.md, Encryption).".into()
        }
        SqlError::Connect { server, .. } => format!(
            "Check that {server} is up and reachable from this machine (SQL Server service, SQL Browser, firewall) and that the environment names the right server."
        ),
        SqlError::Login { .. } => "Check the login and its password for this role (password_env in the environment configuration); the SQL Server error log gives the reason.".into(),
        SqlError::NoServer { role } => {
            format!("Add a server for role `{role}` to the environment configuration: a [environments.NAME.{role}] table with `server` (docs/CONFIG.md).")
        }
        SqlError::Timeout { secs } => format!(
            "The query ran longer than {secs} s (the step's timeout, capped by the profile's statement_timeout_secs when set): look for blocking on the server (sp_who2) and run the check again."
        ),
        SqlError::Dropped { .. } => {
            "The connection dropped: check the network and the server, then run the check again.".into()
        }
        SqlError::Cancelled => "The query was cancelled; run the check again.".into(),
        SqlError::Protocol { .. } => {
            "Unexpected reply from the server: see the log file and run the check again.".into()
        }
        SqlError::Server { number, .. } if PERMISSION_ERRORS.contains(number) => {
            "Permission denied: grant the login the rights the check needs (read access to msdb and the BizTalk databases; sysadmin for backup jobs).".into()
        }
        SqlError::Server { .. } => {
            "Read the SQL Server message: the object or database the check reads may be missing on this server.".into()
        }
    }
}
