//! Where passwords come from. They are never in the config file: a profile names an
//! environment variable (`password_env`), or the UI prompts.

use std::collections::BTreeMap;
use std::fmt;

use super::Environment;
use crate::runbook::model::Role;

/// A password held in memory. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The plain text, for handing to the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Gives the password for a role's login. `None`: not known (the caller may prompt).
pub trait SecretSource {
    fn password(&self, role: Role, user: &str) -> Option<String>;
}

/// Reads passwords from the environment variables the profiles name in `password_env`.
#[derive(Debug, Clone, Default)]
pub struct EnvSecrets {
    /// `(role, user, variable name)`.
    vars: Vec<(Role, String, String)>,
}

impl EnvSecrets {
    /// The `password_env` variables of every profile of `env`.
    pub fn for_environment(env: &Environment) -> Self {
        let mut vars = Vec::new();
        for role in Role::ALL {
            for p in env.profiles(role) {
                if let (Some(user), Some(var)) = (&p.user, &p.password_env) {
                    vars.push((role, user.clone(), var.clone()));
                }
            }
        }
        EnvSecrets { vars }
    }

    /// The variable that holds `user`'s password for `role`, if one is configured.
    pub fn variable(&self, role: Role, user: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(r, u, _)| *r == role && u == user)
            .map(|(_, _, v)| v.as_str())
    }
}

impl SecretSource for EnvSecrets {
    fn password(&self, role: Role, user: &str) -> Option<String> {
        let var = self.variable(role, user)?;
        std::env::var(var).ok().filter(|s| !s.is_empty())
    }
}

/// Passwords given directly (prompted by the UI, or a drill's fixed login).
#[derive(Clone, Default)]
pub struct MapSecrets {
    map: BTreeMap<(Role, String), Secret>,
}

impl MapSecrets {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn insert(&mut self, role: Role, user: &str, password: Secret) {
        self.map.insert((role, user.to_string()), password);
    }
    /// Builder form of `insert`.
    pub fn with(mut self, role: Role, user: &str, password: &str) -> Self {
        self.insert(role, user, Secret::new(password));
        self
    }
}

impl fmt::Debug for MapSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.map.keys().map(|(r, u)| format!("{r}/{u}: ***")))
            .finish()
    }
}

impl SecretSource for MapSecrets {
    fn password(&self, role: Role, user: &str) -> Option<String> {
        self.map
            .get(&(role, user.to_string()))
            .map(|s| s.expose().to_string())
    }
}

/// Tries `first`, then `second` (e.g. environment variables, then prompted passwords).
pub struct Chain<'a>(pub &'a dyn SecretSource, pub &'a dyn SecretSource);

impl SecretSource for Chain<'_> {
    fn password(&self, role: Role, user: &str) -> Option<String> {
        self.0
            .password(role, user)
            .or_else(|| self.1.password(role, user))
    }
}
