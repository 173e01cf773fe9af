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
    /// certificate validated against the drill's own CA (not on Windows, see below).
    fn environment(&self) -> Environment {
        let profile = |role: Role| {
            self.endpoint(role).map(|e| {
                // On Windows tiberius validates through SChannel: with the drill's per-run CA it
                // failed under Wine (CI, SEC_E error) and is unverified on real Windows, so
                // drills there do not use TLS (as before the simulator spoke it).
                #[cfg(windows)]
                let mut p = ServerProfile::sql_login(
                    &e.addr.ip().to_string(),
                    Some(e.addr.port()),
                    &self.user,
                    Encrypt::NotSupported,
                );
                #[cfg(not(windows))]
                let mut p = ServerProfile::sql_login(
                    &e.addr.ip().to_string(),
                    Some(e.addr.port()),
                    &self.user,
                    Encrypt::Required,
                );
                #[cfg(not(windows))]
                {
                    p.trust_cert_ca = Some(self.ca_path().to_path_buf());
                }
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
