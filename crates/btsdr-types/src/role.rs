//! The server roles a runbook statement targets.

use serde::{Deserialize, Serialize};

/// Server roles a statement can target; an environment maps each to a server profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The SQL instance hosting BizTalkMgmtDb (and the backup job).
    Source,
    /// The instance(s) hosting MessageBox databases.
    Msgbox,
    /// The log-shipping destination / DR instance.
    Destination,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Source, Role::Msgbox, Role::Destination];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Msgbox => "msgbox",
            Role::Destination => "destination",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
