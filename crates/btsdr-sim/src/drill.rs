//! A running drill: the scenario's group and one TDS server per simulated instance on
//! 127.0.0.1, plus what a client needs to connect (endpoints, the drill login). The app turns
//! those into its `Environment` (`btsdr::config::DrillConfig`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::backend::{Request, Session};
use super::model::{SharedGroup, SimBackend, lock};
use super::replay::{SNAPSHOT_VERSION, SimEvent, SimLog, Snapshot};
use super::scenario::{self, Scenario};
use super::tds::TdsServer;
use super::tds::tls::{SimCertificate, TlsSettings};
use btsdr_types::Role;

/// One simulated instance as a client reaches it.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub role: Role,
    /// The instance's own name (`@@SERVERNAME`), used in runbook variables.
    pub server_name: String,
    pub addr: SocketAddr,
}

pub struct Drill {
    pub scenario: Scenario,
    pub group: SharedGroup,
    pub endpoints: Vec<Endpoint>,
    pub user: String,
    pub password: String,
    /// The CA (PEM) that signed every instance's TLS certificate, made for this drill.
    pub ca_pem: String,
    ca_file: CaFile,
    /// Per endpoint, in the same order; `None` once stopped.
    servers: Vec<Option<TdsServer>>,
    /// What clients did to the group, for `snapshot` (`sim::replay`).
    log: SimLog,
}

/// The drill's CA written to a private temporary directory, removed with the drill.
struct CaFile {
    dir: PathBuf,
    path: PathBuf,
}

impl CaFile {
    fn write(pem: &str) -> Result<CaFile, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "btsdr-sim-{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let path = dir.join("ca.pem");
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, pem))
            .map_err(|e| format!("cannot write the simulator's CA to {}: {e}", path.display()))?;
        Ok(CaFile { dir, path })
    }
}

impl Drop for CaFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drill {
    /// Builds the scenario (simulating its history) and serves every instance on 127.0.0.1
    /// with a free port.
    pub async fn start(scenario_name: &str) -> Result<Drill, String> {
        let sc = Scenario::load(scenario_name)?;
        Drill::start_with(sc, None).await
    }

    /// Like `start`; `first_port` puts the source on that port and the others on the next two.
    pub async fn start_with(sc: Scenario, first_port: Option<u16>) -> Result<Drill, String> {
        Drill::start_replaying(sc, first_port, &[]).await
    }

    /// Like `start_with`, after running `events` (a `snapshot`'s) again on the new group: a
    /// later process continues on the group an earlier one changed.
    pub async fn start_replaying(
        sc: Scenario,
        first_port: Option<u16>,
        events: &[SimEvent],
    ) -> Result<Drill, String> {
        let g = scenario::build(&sc)?;
        let (user, password) = sc
            .accounts
            .first()
            .map(|a| (a.user.clone(), a.password.clone()))
            .ok_or("the scenario has no [[accounts]]: add one (user and password)")?;
        let roles: Vec<(Role, String)> = g
            .instances
            .iter()
            .map(|i| (role_of(i.role), i.server_name.clone()))
            .collect();
        let group: SharedGroup = Arc::new(Mutex::new(g));
        let log = SimLog::default();
        replay_events(&group, &log, events);
        let cert = SimCertificate::generate()?;
        // Encryption offered, not forced, as SQL Server installs by default.
        let tls = TlsSettings::new(&cert, false)?;
        let ca_file = CaFile::write(&cert.ca_pem)?;
        let mut servers = Vec::new();
        let mut endpoints = Vec::new();
        for (i, (role, name)) in roles.into_iter().enumerate() {
            let port = first_port.map_or(0, |p| p.saturating_add(i as u16));
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let backend = Arc::new(SimBackend::new(group.clone(), i).with_log(log.clone()));
            let server = TdsServer::bind_tls(addr, backend, tls.clone())
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            endpoints.push(Endpoint {
                role,
                server_name: name,
                addr: server.local_addr(),
            });
            servers.push(Some(server));
        }
        Ok(Drill {
            scenario: sc,
            group,
            endpoints,
            user,
            password,
            ca_pem: cert.ca_pem,
            ca_file,
            servers,
            log,
        })
    }

    /// Everything clients did to the group so far, to rebuild it with `start_replaying`.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: SNAPSHOT_VERSION,
            scenario: self.scenario.name.clone(),
            events: self.log.events(),
        }
    }

    pub fn endpoint(&self, role: Role) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.role == role)
    }

    /// The file holding `ca_pem`, for clients that validate the certificate (`trust_cert_ca`).
    pub fn ca_path(&self) -> &Path {
        &self.ca_file.path
    }

    /// Runbook variable values that describe this drill's group.
    pub fn variables(&self) -> BTreeMap<String, String> {
        scenario_variables(&self.scenario)
    }

    /// A ready-to-paste environment block for the config file.
    pub fn env_toml(&self) -> String {
        let mut s = format!(
            "# btsdr simulator, scenario `{}`: set BTSDR_DRILL_PASSWORD={} before connecting.\n[environments.drill]\ndescription = \"btsdr simulator ({})\"\n",
            self.scenario.name, self.password, self.scenario.name
        );
        for e in &self.endpoints {
            let table = if e.role == Role::Msgbox {
                format!("[[environments.drill.{}]]", e.role)
            } else {
                format!("[environments.drill.{}]", e.role)
            };
            s.push_str(&format!(
                "{table}\nserver = \"{},{}\"   # {}\nauth = \"sql\"\nuser = \"{}\"\npassword_env = \"BTSDR_DRILL_PASSWORD\"\nencrypt = \"required\"\ntrust_cert_ca = {}\n",
                e.addr.ip(),
                e.addr.port(),
                e.server_name,
                self.user,
                toml::Value::String(self.ca_path().display().to_string())
            ));
        }
        s
    }

    /// Moves the simulated clock forward, running scheduled jobs.
    pub fn advance(&self, d: chrono::Duration) {
        let mut g = lock(&self.group);
        super::model::jobs::advance(&mut g, d);
    }

    /// A handle that performs confirmed manual steps on this drill's group (it can outlive
    /// a borrow of the drill: a session driver keeps one).
    pub fn hands(&self) -> DrillHands {
        DrillHands {
            group: self.group.clone(),
            log: self.log.clone(),
        }
    }

    /// See [`DrillHands::manual_done`].
    pub fn manual_done(&self, runbook: &str, step: &str, commands: &[&str]) -> ManualDone {
        self.hands().manual_done(runbook, step, commands)
    }

    /// Stops serving `role`'s instance (the server is gone: connections are refused), as when
    /// "the SQL Server computer failed". The model keeps its state; the others keep serving.
    pub async fn stop(&mut self, role: Role) {
        for (e, s) in self.endpoints.iter().zip(self.servers.iter_mut()) {
            if e.role == role
                && let Some(s) = s.take()
            {
                s.shutdown().await;
            }
        }
    }

    pub async fn shutdown(self) {
        for s in self.servers.into_iter().flatten() {
            s.shutdown().await;
        }
    }
}

/// What the trainee's hands do to a drill's group: the Windows side of manual steps.
#[derive(Clone)]
pub struct DrillHands {
    group: SharedGroup,
    log: SimLog,
}

/// What confirming a manual step did to the simulated group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManualDone {
    /// Faults the scenario's `[[faults.remedies]]` cleared for this step.
    pub cleared: Vec<String>,
    /// The step runs UpdateDatabase.vbs, which was performed.
    pub update_database: bool,
}

impl DrillHands {
    /// The trainee confirmed manual step `step` of `runbook`, whose commands are `commands`:
    /// clears the faults the scenario's remedies name for `runbook:step` (space freed on the
    /// share...) and, when a command runs UpdateDatabase.vbs, does what it does after a restore
    /// (the restored BizTalkMgmtDb and the destination's jobs name the destination instead of
    /// the old servers). Logged once for `snapshot`, whether or not it changed anything, so a
    /// resumed drill replays it at the same simulated time.
    pub fn manual_done(&self, runbook: &str, step: &str, commands: &[&str]) -> ManualDone {
        let step = format!("{runbook}:{step}");
        let update = commands.iter().any(|c| c.contains("UpdateDatabase.vbs"));
        let at = lock(&self.group).now();
        let done = perform_manual(&self.group, &step, update);
        self.log.push(SimEvent::ManualDone {
            at,
            step,
            update_database: update,
        });
        done
    }
}

fn perform_manual(group: &SharedGroup, step: &str, update: bool) -> ManualDone {
    let cleared = super::model::manual::apply_remedies(&mut lock(group), step);
    if update {
        update_database(group);
    }
    ManualDone {
        cleared,
        update_database: update,
    }
}

/// Runs logged events again on a freshly built group (each at its simulated time) and logs
/// them anew, so that a snapshot of the new drill holds the whole history.
fn replay_events(group: &SharedGroup, log: &SimLog, events: &[SimEvent]) {
    for e in events {
        match e {
            SimEvent::Request {
                at,
                instance,
                login,
                database,
                sql,
                params,
                dropped,
            } => {
                {
                    let mut g = lock(group);
                    if *instance >= g.instances.len() {
                        continue;
                    }
                    g.clock.set(*at);
                }
                let backend = SimBackend::new(group.clone(), *instance);
                let mut session = Session {
                    spid: 1000,
                    login: login.clone(),
                    database: database.clone(),
                };
                let request = Request {
                    sql: sql.clone(),
                    params: params.clone(),
                };
                backend.replay(&mut session, request, *dropped);
            }
            SimEvent::UpdateDatabase { at } => {
                lock(group).clock.set(*at);
                update_database(group);
            }
            SimEvent::ManualDone {
                at,
                step,
                update_database,
            } => {
                lock(group).clock.set(*at);
                perform_manual(group, step, *update_database);
            }
        }
        log.push(e.clone());
    }
}

/// What `cscript UpdateDatabase.vbs SampleUpdateInfo.xml` does (see
/// `DrillHands::manual_done`).
fn update_database(group: &SharedGroup) {
    let mut g = lock(group);
    let Some(dest) = g.role_instance(super::model::state::InstanceRole::Destination) else {
        return;
    };
    let new = g.instances[dest].server_name.clone();
    let olds: Vec<String> = g
        .instances
        .iter()
        .filter(|i| i.server_name != new)
        .map(|i| i.server_name.clone())
        .collect();
    let inst = &mut g.instances[dest];
    let fix = |s: &mut String| {
        for o in &olds {
            if s.eq_ignore_ascii_case(o) {
                *s = new.clone();
            }
        }
    };
    if let Some(m) = inst.restored_mgmt.as_mut() {
        for (s, _) in &mut m.core_dbs {
            fix(s);
        }
        for o in &mut m.others {
            fix(&mut o.server_name);
            fix(&mut o.bts_server_name);
        }
        for mb in &mut m.msgboxes {
            fix(&mut mb.server);
        }
    }
    for j in &mut inst.msdb.jobs {
        for s in &mut j.steps {
            for o in &olds {
                s.command = s.command.replace(o.as_str(), &new);
            }
        }
    }
}

fn role_of(r: super::model::state::InstanceRole) -> Role {
    match r {
        super::model::state::InstanceRole::Source => Role::Source,
        super::model::state::InstanceRole::Msgbox => Role::Msgbox,
        super::model::state::InstanceRole::Destination => Role::Destination,
    }
}

/// Runbook values for a scenario's group (server names, database and backup settings), known
/// before its history is simulated.
pub fn scenario_variables(sc: &Scenario) -> BTreeMap<String, String> {
    let mgmt_db = sc
        .databases
        .iter()
        .find(|d| d.name.to_ascii_lowercase().contains("mgmt"))
        .map_or("BizTalkMgmtDb".to_string(), |d| d.name.clone());
    let mut v = BTreeMap::new();
    v.insert("source_sql_server".into(), sc.servers.source.clone());
    v.insert("msgbox_sql_server".into(), sc.servers.msgbox.clone());
    v.insert(
        "destination_sql_server".into(),
        sc.servers.destination.clone(),
    );
    v.insert("mgmt_db".into(), mgmt_db);
    v.insert("backup_path".into(), sc.backup.path.clone());
    v.insert("mark_name".into(), sc.backup.mark_name.clone());
    v.insert("dr_store".into(), r"\\FS01\DRStore".into());
    v.insert("ls_description".into(), sc.log_shipping.description.clone());
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn share_full(d: &Drill) -> bool {
        lock(&d.group).faults.share_full
    }

    /// Confirming the scenario's remedy step clears the fault, is logged once, and a drill
    /// rebuilt from the snapshot (a resumed session) keeps the remedy; another step clears
    /// nothing.
    #[tokio::test]
    async fn a_remedy_is_performed_logged_and_kept_by_a_resumed_drill() {
        let d = Drill::start("share-full").await.unwrap();
        assert!(share_full(&d), "the scenario ends with the share full");
        let before = d.snapshot().events.len();
        let other = d.manual_done("backup", "prep.sysadmin", &["whoami"]);
        assert_eq!(other, ManualDone::default());
        assert!(share_full(&d));
        let done = d.manual_done("BACKUP", "store.free-space", &[]);
        assert_eq!(done.cleared, vec!["share_full".to_string()]);
        assert!(!done.update_database);
        assert!(!share_full(&d));
        let snap = d.snapshot();
        assert_eq!(snap.events.len(), before + 2);
        d.shutdown().await;

        let again =
            Drill::start_replaying(Scenario::load("share-full").unwrap(), None, &snap.events)
                .await
                .unwrap();
        assert!(!share_full(&again), "the resumed drill lost the remedy");
        again.shutdown().await;

        let fresh = Drill::start("share-full").await.unwrap();
        assert!(share_full(&fresh), "a fresh drill has the fault");
        fresh.shutdown().await;
    }

    /// A step that runs UpdateDatabase.vbs repoints the restored group's jobs, live and on
    /// replay.
    #[tokio::test]
    async fn a_step_running_update_database_is_performed() {
        let d = Drill::start("healthy").await.unwrap();
        let done = d.manual_done(
            "restore",
            "update.run",
            &[r"cscript UpdateDatabase.vbs SampleUpdateInfo.xml"],
        );
        assert!(done.update_database);
        assert!(matches!(
            d.snapshot().events.last(),
            Some(SimEvent::ManualDone { update_database: true, step, .. }) if step == "restore:update.run"
        ));
        d.shutdown().await;
    }
}
