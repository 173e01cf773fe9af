//! How the app connects to a running drill: its endpoints as an [`Environment`] and the drill
//! login as secrets. Lives here, not in the simulator crate, so the simulator never depends
//! on the app's configuration types.

use btsdr_sim::drill::Drill;
use btsdr_types::Role;

use super::{Encrypt, Environment, MapSecrets, ServerProfile};

/// A drill seen as a configured environment (`drill.environment()`, `drill.secrets()`).
pub trait DrillConfig {
    fn environment(&self) -> Environment;
    fn secrets(&self) -> MapSecrets;
}

impl DrillConfig for Drill {
    /// The environment the app connects with: SQL login, encryption required, the server's
    /// certificate validated against the drill's own CA.
    fn environment(&self) -> Environment {
        let profile = |role: Role| {
            self.endpoint(role).map(|e| {
                let mut p = ServerProfile::sql_login(
                    &e.addr.ip().to_string(),
                    Some(e.addr.port()),
                    &self.user,
                    Encrypt::Required,
                );
                p.trust_cert_ca = Some(self.ca_path().to_path_buf());
                p.password_env = Some("BTSDR_DRILL_PASSWORD".into());
                p
            })
        };
        Environment {
            name: format!("drill-{}", self.scenario.name),
            description: format!("btsdr simulator, scenario {}", self.scenario.name),
            source: profile(Role::Source),
            msgbox: profile(Role::Msgbox).into_iter().collect(),
            destination: profile(Role::Destination),
        }
    }

    /// Passwords for `environment()` (the drill login on every role).
    fn secrets(&self) -> MapSecrets {
        let mut s = MapSecrets::new();
        for r in Role::ALL {
            s = s.with(r, &self.user, &self.password);
        }
        s
    }
}

/// Drills only, after `record` is durable in the session's journal: a confirmed manual step
/// is done on the simulated group (`DrillHands::manual_done`: the scenario's remedies for it,
/// UpdateDatabase.vbs when the step runs it) and logged for the drill's snapshot. The one
/// channel from a drill session to its simulator for what happens outside SQL Server; the TUI
/// (`launch::LiveOpener::journaled`) and batch drills (`batch::driver`) both call it.
pub fn follow_record(
    hands: &btsdr_sim::drill::DrillHands,
    runbook: &crate::runbook::model::Runbook,
    record: &crate::engine::Record,
) -> Option<btsdr_sim::drill::ManualDone> {
    let (crate::engine::Event::ManualConfirmed { .. }, Some(step)) = (&record.event, &record.step)
    else {
        return None;
    };
    let commands: Vec<&str> = match runbook.step(step).map(|s| &s.body) {
        Some(crate::runbook::model::StepBody::Manual(m)) => {
            m.commands.iter().map(|c| c.run.as_str()).collect()
        }
        _ => Vec::new(),
    };
    let done = hands.manual_done(&runbook.id, step, &commands);
    tracing::info!(step = %step, cleared = ?done.cleared, update_database = done.update_database, "drill: manual step performed on the simulator");
    Some(done)
}
