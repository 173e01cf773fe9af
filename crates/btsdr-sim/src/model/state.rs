//! The state of a simulated BizTalk group's SQL side: every instance's databases, msdb and
//! logins, BizTalkMgmtDb's backup tables, the backup share, and the log-shipping destination.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDateTime};

use super::clock::SimClock;

/// Which simulated SQL Server instance.
pub type InstanceId = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbState {
    Online,
    Restoring,
    Offline,
}

impl DbState {
    pub fn desc(self) -> &'static str {
        match self {
            DbState::Online => "ONLINE",
            DbState::Restoring => "RESTORING",
            DbState::Offline => "OFFLINE",
        }
    }
    pub fn code(self) -> i64 {
        match self {
            DbState::Online => 0,
            DbState::Restoring => 1,
            DbState::Offline => 6,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    Full,
    Simple,
}

impl Recovery {
    pub fn desc(self) -> &'static str {
        match self {
            Recovery::Full => "FULL",
            Recovery::Simple => "SIMPLE",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MarkRow {
    pub mark_name: String,
    pub at: NaiveDateTime,
    pub lsn: u64,
}

#[derive(Debug, Clone)]
pub struct Database {
    pub id: i64,
    pub name: String,
    pub state: DbState,
    pub recovery: Recovery,
    pub size_mb: u64,
    /// Where its files live (`D:\Data`), for sys.master_files.
    pub data_dir: String,
    pub log_dir: String,
    /// The database has a BizTalk `MarkLog` table.
    pub has_marklog: bool,
    pub marklog: Vec<MarkRow>,
    /// Current end of the log (grows with simulated activity).
    pub lsn: u64,
    /// LSN up to which the log has been backed up (`None`: never, chain needs a full).
    pub log_backed_to: Option<u64>,
    /// On a restoring copy: the LSN the restore chain has reached.
    pub restored_to: Option<u64>,
    /// Members of BTS_BACKUP_USERS.
    pub backup_users: Vec<String>,
    /// Database users mapped to logins: (name, S/U/G).
    pub users: Vec<(String, char)>,
    /// A restored copy: (server, database) it came from.
    pub restored_from: Option<(String, String)>,
}

impl Database {
    /// A copy of everything but the mark log (which can hold a month of marks).
    #[must_use]
    pub fn without_marklog(&self) -> Database {
        Database {
            id: self.id,
            name: self.name.clone(),
            state: self.state,
            recovery: self.recovery,
            size_mb: self.size_mb,
            data_dir: self.data_dir.clone(),
            log_dir: self.log_dir.clone(),
            has_marklog: self.has_marklog,
            marklog: Vec::new(),
            lsn: self.lsn,
            log_backed_to: self.log_backed_to,
            restored_to: self.restored_to,
            backup_users: self.backup_users.clone(),
            users: self.users.clone(),
            restored_from: self.restored_from.clone(),
        }
    }

    pub fn new(id: i64, name: &str, size_mb: u64) -> Database {
        Database {
            id,
            name: name.to_string(),
            state: DbState::Online,
            recovery: Recovery::Full,
            size_mb,
            data_dir: r"D:\SQLData".into(),
            log_dir: r"L:\SQLLogs".into(),
            has_marklog: false,
            marklog: Vec::new(),
            lsn: 1_000_000,
            log_backed_to: None,
            restored_to: None,
            backup_users: Vec::new(),
            users: Vec::new(),
            restored_from: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct JobStep {
    pub step_id: i64,
    pub step_name: String,
    pub subsystem: String,
    pub database_name: String,
    pub command: String,
    /// 1 quit with success, 2 quit with failure, 3 go to next step.
    pub on_success_action: i64,
    pub on_fail_action: i64,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub job_id: String,
    pub name: String,
    pub enabled: bool,
    pub description: String,
    pub category: String,
    pub owner: String,
    pub steps: Vec<JobStep>,
    pub schedule_ids: Vec<i64>,
    /// What the simulated clock runs: the job's schedules decide when.
    pub created: NaiveDateTime,
    pub last_run: Option<NaiveDateTime>,
    pub running: bool,
    /// Its `sysjobactivity` row in the current Agent session.
    pub activity: Activity,
}

/// A job's `sysjobactivity` row (MS-sysjobactivity): requested and started when the run
/// begins, stopped with `job_history_id` pointing at the outcome row when it ends.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    pub requested: Option<NaiveDateTime>,
    pub started: Option<NaiveDateTime>,
    pub stopped: Option<NaiveDateTime>,
    pub last_step: Option<i64>,
    pub history_id: Option<i64>,
}

/// A run `sp_start_job` asked for: SQL Server Agent runs it after the call returns
/// (MS-sp_start_job); the simulator runs it before a later statement.
#[derive(Debug, Clone)]
pub struct PendingRun {
    pub inst: InstanceId,
    pub job: usize,
    pub start_step: usize,
    pub invoked_by: String,
    /// Statements still to pass before the run ends (0: before the next one).
    pub statements_left: u32,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub schedule_id: i64,
    pub name: String,
    pub enabled: bool,
    pub freq_type: i64,
    pub freq_interval: i64,
    pub freq_subday_type: i64,
    pub freq_subday_interval: i64,
    pub active_start_time: i64,
}

impl Schedule {
    /// Minutes between runs for a daily schedule with a sub-day interval.
    pub fn interval_minutes(&self) -> i64 {
        match self.freq_subday_type {
            2 => (self.freq_subday_interval / 60).max(1),
            4 => self.freq_subday_interval.max(1),
            8 => self.freq_subday_interval.max(1) * 60,
            _ => 1440,
        }
    }
}

#[derive(Debug, Clone)]
pub struct JobHistory {
    pub instance_id: i64,
    pub job_id: String,
    pub step_id: i64,
    pub step_name: String,
    pub sql_message_id: i64,
    pub sql_severity: i64,
    pub message: String,
    /// 0 failed, 1 succeeded, 2 retry, 3 canceled, 4 in progress.
    pub run_status: i64,
    pub at: NaiveDateTime,
    pub duration_secs: i64,
}

#[derive(Debug, Clone, Hash)]
pub struct BackupSet {
    pub backup_set_id: i64,
    pub media_set_id: i64,
    pub database_name: String,
    pub server_name: String,
    /// D full, L log.
    pub kind: char,
    pub start: NaiveDateTime,
    pub finish: NaiveDateTime,
    pub first_lsn: u64,
    pub last_lsn: u64,
    pub database_backup_lsn: u64,
    pub is_damaged: bool,
    pub has_checksums: bool,
    pub size_bytes: i64,
    pub compressed: bool,
    pub device: String,
    pub name: String,
}

#[derive(Debug, Clone, Hash)]
pub struct LogMark {
    pub database_name: String,
    pub mark_name: String,
    pub description: String,
    pub user_name: String,
    pub lsn: u64,
    pub mark_time: NaiveDateTime,
}

#[derive(Debug, Clone)]
pub struct RestoreHistory {
    pub restore_history_id: i64,
    pub restore_date: NaiveDateTime,
    pub destination_database_name: String,
    pub user_name: String,
    pub backup_set_id: i64,
    /// D database, L log, V verifyonly.
    pub restore_type: char,
    pub replace: bool,
    pub recovery: bool,
    pub stop_at_mark_name: Option<String>,
    pub stop_before: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Msdb {
    pub jobs: Vec<Job>,
    pub schedules: Vec<Schedule>,
    pub history: Vec<JobHistory>,
    pub backupsets: Vec<BackupSet>,
    pub logmarks: Vec<LogMark>,
    pub restores: Vec<RestoreHistory>,
    pub next_id: i64,
}

impl Msdb {
    pub fn new_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }
    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name.eq_ignore_ascii_case(name))
    }
    pub fn job_index(&self, name: &str) -> Option<usize> {
        self.jobs
            .iter()
            .position(|j| j.name.eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, Clone)]
pub struct Login {
    pub name: String,
    /// S sql login, U windows user, G windows group, R server role.
    pub kind: char,
    pub disabled: bool,
    pub sysadmin: bool,
    pub sid: Vec<u8>,
}

impl Login {
    pub fn type_desc(&self) -> &'static str {
        match self.kind {
            'S' => "SQL_LOGIN",
            'U' => "WINDOWS_LOGIN",
            'G' => "WINDOWS_GROUP",
            _ => "SERVER_ROLE",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Configuration {
    pub configuration_id: i64,
    pub name: String,
    pub value: i64,
    pub value_in_use: i64,
    pub advanced: bool,
}

/// A row of `bts_LogShippingHistory` on the destination (a copy of `adm_BackupHistory`).
#[derive(Debug, Clone, Hash)]
pub struct LsHistory {
    pub h: HistoryRow,
    pub restored: bool,
    pub restored_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone)]
pub struct LsDatabase {
    pub database_name: String,
    pub server_name: String,
    pub db_file_location: Option<String>,
    pub log_file_location: Option<String>,
}

/// The BizTalk log-shipping objects in the destination's master database.
#[derive(Debug, Clone, Default)]
pub struct LogShipping {
    pub configured: bool,
    pub description: String,
    pub mgmt_server: String,
    pub mgmt_db: String,
    pub source_filter: Option<String>,
    pub databases: Vec<LsDatabase>,
    pub history: Vec<LsHistory>,
    pub last_restore_set: Option<i64>,
    pub last_restore_mark: Option<String>,
    pub last_restore_at: Option<NaiveDateTime>,
}

/// One simulated request shown by `sys.dm_exec_requests`.
#[derive(Debug, Clone)]
pub struct Running {
    pub instance: InstanceId,
    pub spid: u16,
    pub command: String,
    pub database: String,
    pub started: std::time::Instant,
    pub total: std::time::Duration,
    pub start_time: NaiveDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceRole {
    Source,
    Msgbox,
    Destination,
}

impl InstanceRole {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceRole::Source => "source",
            InstanceRole::Msgbox => "msgbox",
            InstanceRole::Destination => "destination",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Instance {
    pub role: InstanceRole,
    pub server_name: String,
    /// Other names BizTalk may have been configured with for this instance (`HOST,PORT`, a
    /// client alias): admv_BackupDatabases and the adm_* tables hold them as configured.
    pub aliases: Vec<String>,
    pub version: String,
    pub edition: String,
    pub level: String,
    pub agent_account: String,
    pub databases: Vec<Database>,
    pub msdb: Msdb,
    pub logins: Vec<Login>,
    pub configurations: Vec<Configuration>,
    pub log_shipping: LogShipping,
    /// Procedures installed in master (log-shipping scripts).
    pub ls_procs_installed: bool,
    pub next_db_id: i64,
    pub clustered: bool,
    /// BizTalkMgmtDb tables of a restored copy of the management database (destination).
    pub restored_mgmt: Option<Mgmt>,
    /// Other clients' sessions shown by sys.dm_exec_sessions: (session_id, host, program, database).
    pub client_sessions: Vec<(i64, String, String, String)>,
}

impl Instance {
    pub fn db(&self, name: &str) -> Option<&Database> {
        self.databases
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }
    pub fn db_mut(&mut self, name: &str) -> Option<&mut Database> {
        self.databases
            .iter_mut()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }
    pub fn config(&self, name: &str) -> Option<&Configuration> {
        self.configurations
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
    pub fn login(&self, name: &str) -> Option<&Login> {
        self.logins
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
    }
}

/// A row of `adm_BackupHistory`.
#[derive(Debug, Clone, Hash)]
pub struct HistoryRow {
    pub backup_id: i64,
    pub backup_set_id: i64,
    pub mark_name: String,
    pub database_name: String,
    pub server_name: String,
    pub file_name: String,
    pub file_location: String,
    /// `db` or `lg`.
    pub backup_type: String,
    pub at: NaiveDateTime,
    pub set_complete: bool,
}

impl HistoryRow {
    /// `adm_BackupHistory`'s columns and SQL types, in the order of [`HistoryRow::values`].
    pub const COLUMNS: [(&'static str, &'static str); 10] = [
        ("BackupId", "bigint"),
        ("BackupSetId", "bigint"),
        ("MarkName", "nvarchar"),
        ("DatabaseName", "nvarchar"),
        ("ServerName", "nvarchar"),
        ("BackupFileName", "nvarchar"),
        ("BackupFileLocation", "nvarchar"),
        ("BackupType", "char"),
        ("BackupDateTime", "datetime"),
        ("SetComplete", "bit"),
    ];

    /// The row's values in `adm_BackupHistory` column order.
    pub fn values(&self) -> Vec<btsdr_types::Value> {
        use super::value::{dt, int, text};
        vec![
            int(self.backup_id),
            int(self.backup_set_id),
            // sp_BackupAllFull inserts full rows without MarkName (NULL); sp_MarkAll writes it.
            if self.backup_type == "db" {
                btsdr_types::Value::Null
            } else {
                text(&self.mark_name)
            },
            text(&self.database_name),
            text(&self.server_name),
            text(&self.file_name),
            text(&self.file_location),
            text(&self.backup_type),
            dt(self.at),
            btsdr_types::Value::Bool(self.set_complete),
        ]
    }
}

#[derive(Debug, Clone)]
pub struct OtherBackupDb {
    pub default_name: String,
    pub database_name: String,
    pub server_name: String,
    pub bts_server_name: String,
}

#[derive(Debug, Clone)]
pub struct MessageBox {
    pub server: String,
    pub db: String,
    pub is_master: bool,
}

/// BizTalkMgmtDb's backup-related tables.
#[derive(Debug, Clone)]
pub struct Mgmt {
    pub db_name: String,
    pub instance: InstanceId,
    pub history: Vec<HistoryRow>,
    pub next_backup_id: i64,
    pub next_set_id: i64,
    /// `(server, database)` of the core databases (adm_Group / adm_MessageBox derived).
    pub core_dbs: Vec<(String, String)>,
    pub others: Vec<OtherBackupDb>,
    pub msgboxes: Vec<MessageBox>,
    pub group_name: String,
    pub use_compression: bool,
    pub force_full: bool,
    /// The 2020 code keeps the flag in adm_BackupSettings; older versions in adm_ForceFullBackup.
    pub has_backup_settings: bool,
}

/// A file on the backup share.
#[derive(Debug, Clone)]
pub struct BackupFile {
    pub path: String,
    pub database_name: String,
    pub server_name: String,
    pub kind: char,
    pub first_lsn: u64,
    pub last_lsn: u64,
    pub database_backup_lsn: u64,
    pub marks: Vec<(String, u64, NaiveDateTime)>,
    pub start: NaiveDateTime,
    pub finish: NaiveDateTime,
    pub damaged: bool,
    pub size_mb: u64,
    pub compressed: bool,
    pub has_checksums: bool,
}

/// Faults a scenario injects.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// BACKUP fails with "not enough space" (3202 / OS error 112).
    pub share_full: bool,
    /// Backups of databases on this server (as configured) fail with a network error: the
    /// Backup job stops there and leaves a partial set.
    pub unreachable_server: Option<String>,
    /// The destination's Restore Databases job fails (`restore_failure_message`).
    pub restore_failing: bool,
    /// A RESTORE drops the connection half-way.
    pub drop_during_restore: bool,
    /// Drill remedies: (manual step `runbook:step`, fault it clears); see `manual.rs`.
    pub remedies: Vec<(String, String)>,
    /// Restore To Mark runs for this many statements after it was started.
    pub restore_to_mark_statements: u32,
    /// Restore To Mark fails when it runs.
    pub restore_to_mark_fails: bool,
    /// schema-drift: (table, column) this version does not have (lower-case table name).
    pub drop_columns: Vec<(String, String)>,
    /// schema-drift: (procedure, parameter without `@`) this version does not have.
    pub drop_params: Vec<(String, String)>,
}

/// Everything behind the mutex.
#[derive(Debug, Clone)]
pub struct Group {
    pub clock: SimClock,
    pub instances: Vec<Instance>,
    pub mgmt: Mgmt,
    pub files: BTreeMap<String, BackupFile>,
    pub faults: Faults,
    pub running: Vec<Running>,
    /// Logins the TDS servers accept: (user, password).
    pub accounts: Vec<(String, String)>,
    /// Real seconds a RESTORE of 1 GB takes (scaled down).
    pub restore_secs_per_gb: f64,
    pub min_restore_secs: f64,
    pub latency_ms: u64,
    /// Local time = UTC + this.
    pub utc_offset: Duration,
    /// Job schedules have been evaluated up to this time.
    pub sched_checked: NaiveDateTime,
    /// Databases whose RESTORE already dropped the connection once (drop-during-restore).
    pub dropped_once: Vec<String>,
    /// Columns another BizTalk/SQL version lacks: (object, column), lower case.
    pub missing_columns: Vec<(String, String)>,
    /// Jobs started with sp_start_job and not finished yet.
    pub pending_runs: Vec<PendingRun>,
    /// Big catalog tables built by earlier statements, by (instance, `db.object`), with the
    /// hash of the rows they were built from (see `tables::source_hash`).
    pub shared_tables: HashMap<(InstanceId, String), (u64, std::sync::Arc<super::tables::Table>)>,
}

impl Group {
    /// The instance a server name reaches: its own name or a configured alias.
    pub fn find_instance(&self, server_name: &str) -> Option<InstanceId> {
        self.instances.iter().position(|i| {
            i.server_name.eq_ignore_ascii_case(server_name)
                || i.aliases
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(server_name))
        })
    }
    pub fn role_instance(&self, role: InstanceRole) -> Option<InstanceId> {
        self.instances.iter().position(|i| i.role == role)
    }
    pub fn now(&self) -> NaiveDateTime {
        self.clock.now()
    }
    pub fn local_now(&self) -> NaiveDateTime {
        self.clock.now() + self.utc_offset
    }
    /// `admv_BackupDatabases`: core databases plus `adm_OtherBackupDatabases`, as (server, db).
    pub fn backup_databases(&self) -> Vec<(String, String)> {
        self.mgmt.backup_databases()
    }
}

impl Mgmt {
    /// `admv_BackupDatabases`: core databases plus `adm_OtherBackupDatabases`, as (server, db).
    pub fn backup_databases(&self) -> Vec<(String, String)> {
        let mut out = self.core_dbs.clone();
        for o in &self.others {
            if !out.iter().any(|(s, d)| {
                s.eq_ignore_ascii_case(&o.server_name) && d.eq_ignore_ascii_case(&o.database_name)
            }) {
                out.push((o.server_name.clone(), o.database_name.clone()));
            }
        }
        out
    }
}

/// A simple deterministic GUID-like string from a number.
pub fn guid(n: i64) -> String {
    let x = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        "{:08X}-{:04X}-{:04X}-{:04X}-{:012X}",
        (x >> 32) as u32,
        (x >> 16) as u16,
        x as u16,
        (n as u16) ^ 0x4000,
        x & 0xFFFF_FFFF_FFFF
    )
}
