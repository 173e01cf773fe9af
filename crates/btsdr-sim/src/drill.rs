//! A running drill: the scenario's group and one TDS server per simulated instance on
//! 127.0.0.1, plus what a client needs to connect (endpoints, the drill login). The app turns
//! those into its `Environment` (`btsdr::config::DrillConfig`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::model::{SharedGroup, SimBackend, lock};
use super::scenario::{self, Scenario};
use super::tds::TdsServer;
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
    /// Per endpoint, in the same order; `None` once stopped.
    servers: Vec<Option<TdsServer>>,
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
        let mut servers = Vec::new();
        let mut endpoints = Vec::new();
        for (i, (role, name)) in roles.into_iter().enumerate() {
            let port = first_port.map_or(0, |p| p.saturating_add(i as u16));
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let backend = Arc::new(SimBackend::new(group.clone(), i));
            let server = TdsServer::bind(addr, backend)
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
            servers,
        })
    }

    pub fn endpoint(&self, role: Role) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.role == role)
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
                "{table}\nserver = \"{},{}\"   # {}\nauth = \"sql\"\nuser = \"{}\"\npassword_env = \"BTSDR_DRILL_PASSWORD\"\nencrypt = \"not_supported\"\n",
                e.addr.ip(),
                e.addr.port(),
                e.server_name,
                self.user
            ));
        }
        s
    }

    /// Moves the simulated clock forward, running scheduled jobs.
    pub fn advance(&self, d: chrono::Duration) {
        let mut g = lock(&self.group);
        super::model::jobs::advance(&mut g, d);
    }

    /// What `cscript UpdateDatabase.vbs SampleUpdateInfo.xml` does after a restore (a Windows
    /// step the simulator cannot receive over TDS): the restored BizTalkMgmtDb and the
    /// destination's jobs name the destination instead of the old servers.
    pub fn simulate_update_database(&self) {
        let mut g = lock(&self.group);
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
