//! Drill scenarios: `assets/scenarios/*.toml` describe a BizTalk group (servers, databases,
//! the Backup job's settings, log shipping), how much history to simulate, and the faults a
//! trainee should find. `build` turns one into a running model.

use chrono::{Duration, NaiveDateTime};
use serde::Deserialize;

use super::model::clock::SimClock;
use super::model::jobs::{self, step};
use super::model::logship;
use super::model::state::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// What the trainee should find.
    pub description: String,
    /// Simulated UTC time at the end of the history (when the drill starts).
    pub end: NaiveDateTime,
    #[serde(default = "three")]
    pub history_days: u32,
    /// Simulated seconds per real second once the drill runs (0 = frozen).
    #[serde(default = "one")]
    pub clock_speed: f64,
    #[serde(default)]
    pub utc_offset_minutes: i64,
    /// Delay added to every request (benchmarks).
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default = "one")]
    pub restore_seconds_per_gb: f64,
    #[serde(default = "min_restore")]
    pub min_restore_seconds: f64,
    /// Check step ids (`runbook:step`) that must fail in this scenario.
    #[serde(default)]
    pub expect_failing_checks: Vec<String>,
    /// Procedure steps (`runbook:step`, sql or check) that must fail on their assertions when
    /// the runbook's statements run in order with `procedure_variables`.
    #[serde(default)]
    pub expect_failing_steps: Vec<String>,
    /// Failures may be SQL errors (a schema-drift scenario: the statement cannot compile).
    #[serde(default)]
    pub expect_sql_errors: bool,
    /// Another BizTalk/SQL version's schema.
    #[serde(default)]
    pub schema_drift: DriftSpec,
    /// Variable values the procedure runs with (`use_log_shipping = "false"`).
    #[serde(default)]
    pub procedure_variables: std::collections::BTreeMap<String, String>,
    pub accounts: Vec<Account>,
    pub servers: Servers,
    pub databases: Vec<DbSpec>,
    pub backup: BackupSpec,
    #[serde(default)]
    pub log_shipping: LsSpec,
    #[serde(default)]
    pub logins: Vec<String>,
    #[serde(default)]
    pub faults: FaultSpec,
}

fn three() -> u32 {
    3
}
fn one() -> f64 {
    1.0
}
fn min_restore() -> f64 {
    0.3
}

/// What another BizTalk/SQL version lacks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSpec {
    /// `object.column` names this version does not have (`bts_LogShippingHistory.BackupType`).
    #[serde(default)]
    pub missing_columns: Vec<String>,
    /// BizTalk before 2020 keeps the force-full flag in adm_ForceFullBackup, without
    /// adm_BackupSettings.
    #[serde(default)]
    pub no_backup_settings: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub user: String,
    pub password: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Servers {
    pub source: String,
    pub msgbox: String,
    pub destination: String,
    #[serde(default = "version")]
    pub version: String,
    #[serde(default = "edition")]
    pub edition: String,
    #[serde(default = "agent")]
    pub agent_account: String,
    /// Failover cluster instances (SERVERPROPERTY('IsClustered') = 1).
    #[serde(default = "yes")]
    pub clustered: bool,
    /// The name BizTalk was configured with for the source instance when it differs from
    /// @@SERVERNAME (`SQLBTS01,5000`, a client alias); admv_BackupDatabases returns it.
    #[serde(default)]
    pub source_configured_as: Option<String>,
    /// The same for the MessageBox instance.
    #[serde(default)]
    pub msgbox_configured_as: Option<String>,
}

impl Servers {
    /// The source instance's name as BizTalk's tables hold it.
    pub fn source_configured(&self) -> &str {
        self.source_configured_as.as_deref().unwrap_or(&self.source)
    }
    /// The MessageBox instance's name as BizTalk's tables hold it.
    pub fn msgbox_configured(&self) -> &str {
        self.msgbox_configured_as.as_deref().unwrap_or(&self.msgbox)
    }
}

fn version() -> String {
    "15.0.4385.2".into()
}
fn edition() -> String {
    "Enterprise Edition (64-bit)".into()
}
fn agent() -> String {
    "CONTOSO\\svc-sqlagent".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbSpec {
    pub name: String,
    /// `source` or `msgbox`.
    pub role: String,
    #[serde(default = "size")]
    pub size_mb: u64,
    #[serde(default = "yes")]
    pub in_backup: bool,
    #[serde(default)]
    pub simple_recovery: bool,
}

fn size() -> u64 {
    512
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSpec {
    pub path: String,
    #[serde(default = "bts")]
    pub mark_name: String,
    #[serde(default = "daily")]
    pub frequency: String,
    #[serde(default)]
    pub backup_hour: Option<i64>,
    #[serde(default = "yes")]
    pub use_local_time: bool,
    #[serde(default)]
    pub force_full_after_partial: bool,
    #[serde(default = "fifteen")]
    pub interval_minutes: i64,
    #[serde(default = "fourteen")]
    pub days_to_keep: i64,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// false: the job still has the shipped `<destination path>` placeholder.
    #[serde(default = "yes")]
    pub configured: bool,
}

fn bts() -> String {
    "BTS".into()
}
fn daily() -> String {
    "d".into()
}
fn fifteen() -> i64 {
    15
}
fn fourteen() -> i64 {
    14
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LsSpec {
    #[serde(default = "yes")]
    pub configured: bool,
    #[serde(default = "dr")]
    pub description: String,
}

impl Default for LsSpec {
    fn default() -> Self {
        LsSpec {
            configured: true,
            description: dr(),
        }
    }
}

fn dr() -> String {
    "BizTalkDR".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// The Backup job is disabled for the last N hours of history.
    #[serde(default)]
    pub job_disabled_hours: Option<i64>,
    /// Step 2 was changed to weekly frequency at the start: the only full is the first one.
    #[serde(default)]
    pub stale_full: bool,
    /// The Backup job run `partial_set_minutes_before_end` minutes before the end (a run time,
    /// a multiple of the interval) failed half-way: the share was full for that run only.
    #[serde(default)]
    pub partial_set_minutes_before_end: Option<i64>,
    /// The newest mark is missing in this database (MarkLog, logmarkhistory and its log file).
    #[serde(default)]
    pub missing_mark_database: Option<String>,
    /// BizTalk host instances still connected to these source databases (sys.dm_exec_sessions).
    #[serde(default)]
    pub connected_sessions_on_source: Vec<String>,
    /// Restore To Mark last ran (a rehearsal) N days before the end, and succeeded.
    #[serde(default)]
    pub restore_to_mark_succeeded_days_ago: Option<i64>,
    /// Restore To Mark, once started, runs for this many statements before it ends.
    #[serde(default)]
    pub restore_to_mark_running_statements: u32,
    /// Restore To Mark fails when it runs.
    #[serde(default)]
    pub restore_to_mark_fails: bool,
    /// The destination's Restore Databases job fails for the last N hours.
    #[serde(default)]
    pub restore_failing_hours: Option<i64>,
    /// The backup share is full from N minutes before the end on.
    #[serde(default)]
    pub share_full_minutes_before_end: Option<i64>,
    /// Logins missing on the destination.
    #[serde(default)]
    pub missing_logins_on_destination: Vec<String>,
    /// A top-level RESTORE DATABASE drops the connection half-way (once per database).
    #[serde(default)]
    pub drop_during_restore: bool,
    /// Manual steps that stand for the trainee's fix outside SQL Server (drills only).
    #[serde(default)]
    pub remedies: Vec<RemedySpec>,
    /// schema-drift: `table.column` names this BizTalk/SQL version does not have (queries
    /// naming them fail with 207; the catalog views do not list them).
    #[serde(default)]
    pub drop_columns: Vec<String>,
    /// schema-drift: `procedure.parameter` names (no `@`) this version does not have
    /// (EXEC with them fails with 8145; sys.parameters does not list them).
    #[serde(default)]
    pub drop_params: Vec<String>,
}

/// `[[faults.remedies]]`: confirming `manual_step` in a drill clears the fault `clears`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemedySpec {
    /// `runbook:step`, e.g. `backup:store.free-space`.
    pub manual_step: String,
    /// One of `model::manual::CLEARABLE`.
    pub clears: String,
}

// `EMBEDDED`: every `assets/scenarios/*.toml` as (name without `.toml`, text); see build.rs.
include!(concat!(env!("OUT_DIR"), "/scenarios.rs"));

/// An embedded scenario's text by name (`healthy`).
pub fn embedded(name: &str) -> Option<&'static str> {
    EMBEDDED.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

pub const NAMES: &[&str] = &[
    "healthy",
    "job-disabled",
    "stale-full",
    "partial-set",
    "missing-mark",
    "restore-lagging",
    "share-full",
    "login-missing",
    "drop-during-restore",
    "restore-to-mark-running",
    "servers-configured-as",
    "schema-drift",
    "blob-http",
    "blob-https",
    "several-msgboxes",
];

impl Scenario {
    /// Loads an embedded scenario by name (`healthy`, `share-full`...).
    pub fn load(name: &str) -> Result<Scenario, String> {
        let text = embedded(name).ok_or_else(|| {
            format!(
                "there is no scenario named `{name}`; available: {}",
                NAMES.join(", ")
            )
        })?;
        Scenario::parse(text, &format!("scenarios/{name}.toml"))
    }

    pub fn parse(text: &str, file: &str) -> Result<Scenario, String> {
        let sc: Scenario = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
        for r in &sc.faults.remedies {
            if !crate::model::manual::CLEARABLE.contains(&r.clears.as_str()) {
                return Err(format!(
                    "{file}: [[faults.remedies]] clears `{}`: it can clear one of {}",
                    r.clears,
                    crate::model::manual::CLEARABLE.join(", ")
                ));
            }
        }
        Ok(sc)
    }
}

fn system_dbs(inst: &mut Instance) {
    for (i, n) in ["master", "tempdb", "model", "msdb"].iter().enumerate() {
        let mut d = Database::new(i as i64 + 1, n, 64);
        d.recovery = if *n == "tempdb" || *n == "master" {
            Recovery::Simple
        } else {
            Recovery::Full
        };
        d.data_dir = r"C:\Program Files\Microsoft SQL Server\MSSQL15.MSSQLSERVER\MSSQL\DATA".into();
        d.log_dir = d.data_dir.clone();
        inst.databases.push(d);
    }
    inst.next_db_id = 4;
}

const DEFAULT_LOGINS: &[(&str, char, bool)] = &[
    ("sa", 'S', true),
    ("##MS_PolicyEventProcessingLogin##", 'S', false),
    ("NT AUTHORITY\\SYSTEM", 'U', true),
    ("NT SERVICE\\SQLSERVERAGENT", 'U', true),
    ("CONTOSO\\svc-sqlagent", 'U', true),
    ("CONTOSO\\SQL Admins", 'G', true),
    ("CONTOSO\\BizTalk Application Users", 'G', false),
    ("CONTOSO\\BizTalk Isolated Host Users", 'G', false),
    ("CONTOSO\\BizTalk Server Administrators", 'G', false),
    ("CONTOSO\\BizTalk Server Operators", 'G', false),
    ("CONTOSO\\SSO Administrators", 'G', false),
];

fn instance(role: InstanceRole, name: &str, sc: &Scenario) -> Instance {
    let configured = match role {
        InstanceRole::Source => sc.servers.source_configured_as.clone(),
        InstanceRole::Msgbox => sc.servers.msgbox_configured_as.clone(),
        InstanceRole::Destination => None,
    };
    let mut inst = Instance {
        role,
        server_name: name.to_string(),
        aliases: configured.into_iter().collect(),
        version: sc.servers.version.clone(),
        edition: sc.servers.edition.clone(),
        level: "RTM".into(),
        agent_account: sc.servers.agent_account.clone(),
        databases: Vec::new(),
        msdb: Msdb::default(),
        logins: Vec::new(),
        configurations: vec![
            Configuration {
                configuration_id: 518,
                name: "show advanced options".into(),
                value: 0,
                value_in_use: 0,
                advanced: false,
            },
            Configuration {
                configuration_id: 16391,
                name: "Ad Hoc Distributed Queries".into(),
                value: 0,
                value_in_use: 0,
                advanced: true,
            },
            Configuration {
                configuration_id: 1579,
                name: "backup compression default".into(),
                value: 0,
                value_in_use: 0,
                advanced: false,
            },
            Configuration {
                configuration_id: 16390,
                name: "xp_cmdshell".into(),
                value: 0,
                value_in_use: 0,
                advanced: true,
            },
        ],
        log_shipping: LogShipping::default(),
        ls_procs_installed: false,
        next_db_id: 4,
        clustered: sc.servers.clustered,
        restored_mgmt: None,
        client_sessions: Vec::new(),
    };
    system_dbs(&mut inst);
    let mut n = 0u8;
    let mut add = |l: &str, kind: char, sysadmin: bool| {
        n = n.wrapping_add(1);
        inst.logins.push(Login {
            name: l.to_string(),
            kind,
            disabled: false,
            sysadmin,
            sid: vec![1, 5, 0, 0, 0, 0, 0, 5, 21, n],
        });
    };
    for (l, k, s) in DEFAULT_LOGINS {
        add(l, *k, *s);
    }
    for a in &sc.accounts {
        add(&a.user, 'S', true);
    }
    for l in &sc.logins {
        add(l, if l.contains('\\') { 'G' } else { 'S' }, false);
    }
    inst
}

fn backup_job_steps(sc: &Scenario, frequency: &str) -> Vec<JobStep> {
    let b = &sc.backup;
    let path = if b.configured {
        b.path.replace('\'', "''")
    } else {
        "<destination path>".into()
    };
    let mark = b.mark_name.replace('\'', "''");
    let local = i64::from(b.use_local_time);
    let hour = b.backup_hour.map_or("NULL".to_string(), |h| h.to_string());
    vec![
        step(
            1,
            "Set Compression Option",
            "BizTalkMgmtDb",
            "exec [dbo].[sp_SetBackupCompression] @bCompression = 0 /*0 - Do not use Compression, 1 - Use Compression */",
            3,
            3,
        ),
        step(
            2,
            "BackupFull",
            "BizTalkMgmtDb",
            &format!(
                "exec [dbo].[sp_BackupAllFull_Schedule] '{frequency}' /* Frequency */, '{mark}' /* Name */, '{path}' /* location of backup files */, {}, {hour}, {local}",
                i64::from(b.force_full_after_partial)
            ),
            3,
            2,
        ),
        step(
            3,
            "MarkAndBackupLog",
            "BizTalkMgmtDb",
            &format!(
                "exec [dbo].[sp_MarkAll] '{mark}' /* Log mark name */, '{path}' /* location of backup files */, {local}"
            ),
            3,
            2,
        ),
        step(
            4,
            "Clear Backup History",
            "BizTalkMgmtDb",
            &format!(
                "exec [dbo].[sp_DeleteBackupHistory] @DaysToKeep={}, @UseLocalTime = {local}",
                b.days_to_keep
            ),
            1,
            2,
        ),
    ]
}

const OTHER_JOBS: &[&str] = &[
    "CleanupBTFExpiredEntriesJob_BizTalkMgmtDb",
    "DTA Purge and Archive (BizTalkDTADb)",
    "MessageBox_DeadProcesses_Cleanup_BizTalkMsgBoxDb",
    "MessageBox_Message_Cleanup_BizTalkMsgBoxDb",
    "MessageBox_Message_ManageRefCountLog_BizTalkMsgBoxDb",
    "MessageBox_Parts_Cleanup_BizTalkMsgBoxDb",
    "MessageBox_UpdateStats_BizTalkMsgBoxDb",
    "Monitor BizTalk Server (BizTalkMgmtDb)",
    "Operations_OperateOnInstances_OnMaster_BizTalkMsgBoxDb",
    "PurgeSubscriptionsJob_BizTalkMsgBoxDb",
    "Rules_Database_Cleanup_BizTalkRuleEngineDb",
    "TrackedMessages_Copy_BizTalkMsgBoxDb",
];

pub const BACKUP_JOB: &str = "Backup BizTalk Server (BizTalkMgmtDb)";

/// Builds the group at the start of the history, then simulates the history with its faults.
// TODO(issue 16): split (servers, databases, jobs, faults).
#[allow(clippy::too_many_lines)]
pub fn build(sc: &Scenario) -> Result<Group, String> {
    let start = sc.end - Duration::days(i64::from(sc.history_days));
    let mut instances = vec![
        instance(InstanceRole::Source, &sc.servers.source, sc),
        instance(InstanceRole::Msgbox, &sc.servers.msgbox, sc),
        instance(InstanceRole::Destination, &sc.servers.destination, sc),
    ];
    for l in &sc.faults.missing_logins_on_destination {
        instances[2]
            .logins
            .retain(|x| !x.name.eq_ignore_ascii_case(l));
    }
    let mut core = Vec::new();
    let mut others = Vec::new();
    let mut msgboxes = Vec::new();
    for d in &sc.databases {
        let idx = match d.role.as_str() {
            "source" => 0,
            "msgbox" => 1,
            other => {
                return Err(format!(
                    "database {}: role must be `source` or `msgbox`, not `{other}`",
                    d.name
                ));
            }
        };
        let inst = &mut instances[idx];
        inst.next_db_id += 1;
        let mut db = Database::new(inst.next_db_id, &d.name, d.size_mb);
        db.has_marklog = d.in_backup;
        db.backup_users = vec![sc.servers.agent_account.clone()];
        db.users = DEFAULT_LOGINS
            .iter()
            .filter(|l| l.1 == 'G' && l.0.contains("BizTalk") || l.0.contains("SSO"))
            .map(|l| (l.0.to_string(), l.1))
            .collect();
        db.users.extend(
            sc.logins
                .iter()
                .map(|l| (l.clone(), if l.contains('\\') { 'G' } else { 'S' })),
        );
        db.users.push((sc.servers.agent_account.clone(), 'U'));
        if d.simple_recovery {
            db.recovery = Recovery::Simple;
        }
        inst.databases.push(db);
        let server = inst.aliases.first().unwrap_or(&inst.server_name).clone();
        if !d.in_backup {
            continue;
        }
        if d.name.eq_ignore_ascii_case("SSODB") {
            others.push(OtherBackupDb {
                default_name: "SSO".into(),
                database_name: d.name.clone(),
                server_name: server.clone(),
                bts_server_name: server,
            });
        } else {
            if d.name.to_ascii_lowercase().contains("msgbox") {
                msgboxes.push(MessageBox {
                    server: server.clone(),
                    db: d.name.clone(),
                    is_master: msgboxes.is_empty(),
                });
            }
            core.push((server, d.name.clone()));
        }
    }
    let mgmt_db = sc
        .databases
        .iter()
        .find(|d| d.name.to_ascii_lowercase().contains("mgmt"))
        .map_or("BizTalkMgmtDb".to_string(), |d| d.name.clone());
    let mut g = Group {
        clock: SimClock::new(start, 0.0),
        instances,
        mgmt: Mgmt {
            db_name: mgmt_db,
            instance: 0,
            history: Vec::new(),
            next_backup_id: 0,
            next_set_id: 0,
            core_dbs: core,
            others,
            msgboxes,
            group_name: "BizTalk Group".into(),
            use_compression: false,
            force_full: false,
            has_backup_settings: !sc.schema_drift.no_backup_settings,
        },
        files: Default::default(),
        faults: Faults::default(),
        running: Vec::new(),
        accounts: sc
            .accounts
            .iter()
            .map(|a| (a.user.clone(), a.password.clone()))
            .collect(),
        restore_secs_per_gb: sc.restore_seconds_per_gb,
        min_restore_secs: sc.min_restore_seconds,
        latency_ms: sc.latency_ms,
        utc_offset: Duration::minutes(sc.utc_offset_minutes),
        sched_checked: start,
        dropped_once: Vec::new(),
        pending_runs: Vec::new(),
        missing_columns: sc
            .schema_drift
            .missing_columns
            .iter()
            .filter_map(|c| c.split_once('.'))
            .map(|(o, c)| (o.to_ascii_lowercase(), c.to_string()))
            .collect(),
        shared_tables: Default::default(),
    };
    let freq = if sc.faults.stale_full {
        "w"
    } else {
        sc.backup.frequency.as_str()
    };
    let steps = backup_job_steps(sc, freq);
    let enabled = sc.backup.enabled && sc.backup.configured;
    jobs::add_job(
        &mut g,
        0,
        BACKUP_JOB,
        enabled,
        steps,
        Some(("MarkAndBackupLogSched", sc.backup.interval_minutes)),
    );
    for name in OTHER_JOBS {
        let cmd = format!("-- {name}: BizTalk maintenance (not simulated)\nRETURN");
        jobs::add_job(
            &mut g,
            0,
            name,
            true,
            vec![step(1, "Run", "master", &cmd, 1, 2)],
            None,
        );
    }
    if sc.log_shipping.configured {
        let d = &mut g.instances[2];
        d.ls_procs_installed = true;
        for c in &mut d.configurations {
            if c.name == "Ad Hoc Distributed Queries" || c.name == "show advanced options" {
                c.value = 1;
                c.value_in_use = 1;
            }
        }
        let dbs = g.backup_databases();
        let mgmt_server = g.instances[0].server_name.clone();
        let ls = &mut g.instances[2].log_shipping;
        ls.configured = true;
        ls.description = sc.log_shipping.description.clone();
        ls.mgmt_server = mgmt_server;
        ls.mgmt_db = g.mgmt.db_name.clone();
        ls.databases = dbs
            .into_iter()
            .map(|(s, d)| LsDatabase {
                database_name: d,
                server_name: s,
                db_file_location: None,
                log_file_location: None,
            })
            .collect();
        jobs::ensure_ls_jobs(&mut g, 2);
    }
    for inst in &mut g.instances {
        for db in ["master", "msdb"] {
            let id = inst.msdb.new_id();
            let t = start - Duration::days(1);
            let device = format!("D:\\SQLBackup\\{}_{db}_Full.bak", inst.server_name);
            inst.msdb.backupsets.push(BackupSet {
                backup_set_id: id,
                media_set_id: id,
                database_name: db.into(),
                server_name: inst.server_name.clone(),
                kind: 'D',
                start: t,
                finish: t,
                first_lsn: 1,
                last_lsn: 2,
                database_backup_lsn: 1,
                is_damaged: false,
                has_checksums: true,
                size_bytes: 8 << 20,
                compressed: false,
                device,
                name: format!("{db} full (after installation)"),
            });
        }
    }
    simulate(&mut g, sc);
    g.clock = SimClock::new(sc.end, sc.clock_speed);
    g.faults.drop_during_restore = sc.faults.drop_during_restore;
    g.faults.remedies = sc
        .faults
        .remedies
        .iter()
        .map(|r| (r.manual_step.clone(), r.clears.clone()))
        .collect();
    g.faults.restore_to_mark_statements = sc.faults.restore_to_mark_running_statements;
    g.faults.restore_to_mark_fails = sc.faults.restore_to_mark_fails;
    for (i, db) in sc.faults.connected_sessions_on_source.iter().enumerate() {
        g.instances[0].client_sessions.push((
            60 + i as i64,
            "BTSAPP01".into(),
            "BizTalk Server (BTSNTSvc64.exe)".into(),
            db.clone(),
        ));
    }
    if let Some(days) = sc.faults.restore_to_mark_succeeded_days_ago {
        jobs::record_past_run(
            &mut g,
            2,
            logship::JOB_TO_MARK,
            sc.end - Duration::days(days),
            true,
        );
    }
    let pairs = |v: &[String]| -> Vec<(String, String)> {
        v.iter()
            .filter_map(|s| s.rsplit_once('.'))
            .map(|(a, b)| {
                (
                    a.to_ascii_lowercase(),
                    b.trim_start_matches('@').to_string(),
                )
            })
            .collect()
    };
    g.faults.drop_columns = pairs(&sc.faults.drop_columns);
    g.faults.drop_params = pairs(&sc.faults.drop_params);
    Ok(g)
}

fn set_job_enabled(g: &mut Group, inst: usize, name: &str, enabled: bool) {
    if let Some(i) = g.instances[inst].msdb.job_index(name) {
        g.instances[inst].msdb.jobs[i].enabled = enabled;
    }
}

/// Simulates the history, switching faults on at their time.
fn simulate(g: &mut Group, sc: &Scenario) {
    let f = &sc.faults;
    let end = sc.end;
    // (time, what) events, applied in order.
    let mut events: Vec<(NaiveDateTime, &str)> = Vec::new();
    if let Some(h) = f.job_disabled_hours {
        events.push((end - Duration::hours(h), "disable-job"));
    }
    if let Some(m) = f.partial_set_minutes_before_end {
        // One run cannot reach the MessageBox server: the databases before it in the job's
        // order are backed up, the rest are not (a partial set, as sp_MarkAll leaves it).
        events.push((
            end - Duration::minutes(m) - Duration::seconds(1),
            "unreachable-on",
        ));
        events.push((
            end - Duration::minutes(m) + Duration::seconds(1),
            "unreachable-off",
        ));
    }
    if let Some(m) = f.share_full_minutes_before_end {
        events.push((end - Duration::minutes(m), "share-full-on"));
    }
    if let Some(h) = f.restore_failing_hours {
        events.push((end - Duration::hours(h), "restore-failing"));
    }
    events.sort_by_key(|e| e.0);
    for (t, what) in events {
        let now = g.now();
        if t > now {
            jobs::advance(g, t - now);
        }
        match what {
            "disable-job" => set_job_enabled(g, 0, BACKUP_JOB, false),
            "share-full-on" => g.faults.share_full = true,
            "share-full-off" => g.faults.share_full = false,
            "unreachable-on" => {
                g.faults.unreachable_server = Some(sc.servers.msgbox_configured().to_string())
            }
            "unreachable-off" => g.faults.unreachable_server = None,
            "restore-failing" => g.faults.restore_failing = true,
            _ => {}
        }
    }
    let now = g.now();
    if end > now {
        jobs::advance(g, end - now);
    }
    if let Some(db) = &f.missing_mark_database {
        remove_latest_mark(g, db);
    }
    // Let the destination pick up the last history rows (its jobs run every minute).
    let _ = logship::JOB_GET_HISTORY;
}

fn remove_latest_mark(g: &mut Group, db: &str) {
    let Some(h) = g
        .mgmt
        .history
        .iter()
        .filter(|h| h.backup_type == "lg" && h.set_complete)
        .max_by_key(|h| h.backup_set_id)
        .cloned()
    else {
        return;
    };
    let mark = h.mark_name;
    for inst in &mut g.instances {
        if let Some(d) = inst.db_mut(db) {
            d.marklog.retain(|m| m.mark_name != mark);
        }
        inst.msdb
            .logmarks
            .retain(|m| !(m.database_name.eq_ignore_ascii_case(db) && m.mark_name == mark));
    }
    for f in g.files.values_mut() {
        if f.database_name.eq_ignore_ascii_case(db) {
            f.marks.retain(|m| m.0 != mark);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remedy_clears_only_a_known_fault() {
        let text = embedded("share-full").unwrap_or_default();
        let sc = Scenario::parse(text, "share-full.toml").expect("share-full parses");
        assert_eq!(sc.faults.remedies.len(), 1);
        let bad = text.replace("clears = \"share_full\"", "clears = \"everything\"");
        let e = Scenario::parse(&bad, "x.toml").expect_err("an unknown fault is refused");
        assert!(
            e.contains("x.toml") && e.contains("everything") && e.contains("share_full"),
            "{e}"
        );
    }
}
