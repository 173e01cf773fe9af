//! Where passwords come from. They are never in the config file: a profile names an
//! environment variable (`password_env`), or the UI prompts.

use std::collections::BTreeMap;
use std::fmt;

use super::Environment;
use btsdr_types::Role;

/// A password held in memory. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The plain text, for handing to the driver only.
    pub(crate) fn expose(&self) -> &str {
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
    #[must_use]
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

/// Profiles of `env` that log in with a password that `known` cannot give: `(role, user,
/// server)`.
pub(crate) fn missing_passwords(
    env: &Environment,
    known: &dyn SecretSource,
) -> Vec<(Role, String, String)> {
    let mut out = Vec::new();
    for role in Role::ALL {
        for p in env.profiles(role) {
            let needs = !matches!(p.auth, super::Auth::Integrated);
            if let (true, Some(user)) = (needs, &p.user)
                && known.password(role, user).is_none()
                && !out
                    .iter()
                    .any(|(r, u, _): &(Role, String, String)| *r == role && u == user)
            {
                out.push((role, user.clone(), p.display_server()));
            }
        }
    }
    out
}

/// Asks on the terminal for each password `env` needs and `known` lacks (typed without echo,
/// before any UI starts). Without a terminal it says which variable to set instead.
pub(crate) fn prompt_missing(env: &Environment, known: &EnvSecrets) -> Result<MapSecrets, String> {
    use std::io::IsTerminal;
    let missing = missing_passwords(env, known);
    let mut got = MapSecrets::new();
    if missing.is_empty() {
        return Ok(got);
    }
    if !std::io::stdin().is_terminal() {
        let (role, user, server) = &missing[0];
        return Err(format!(
            "no password for {user} on {server} ({role}): set the environment variable the profile names in `password_env`, or run btsdr on a terminal to be asked"
        ));
    }
    // One question per login: the same account usually serves every instance.
    let mut users: Vec<&str> = missing.iter().map(|(_, u, _)| u.as_str()).collect();
    users.dedup();
    for user in users {
        let on: Vec<String> = missing
            .iter()
            .filter(|(_, u, _)| u == user)
            .map(|(r, _, server)| format!("{server} ({r})"))
            .collect();
        let pw = read_hidden(&format!("Password for {user} on {}: ", on.join(", ")))?;
        if pw.is_empty() {
            return Err(format!("no password given for {user}"));
        }
        for (role, _, _) in missing.iter().filter(|(_, u, _)| u == user) {
            got.insert(*role, user, Secret::new(pw.clone()));
        }
    }
    Ok(got)
}

/// Reads one line from the terminal without echoing it.
pub(crate) fn read_hidden(prompt: &str) -> Result<String, String> {
    use crossterm::event::{Event, KeyCode, KeyEventKind, KeyModifiers, read};
    use std::io::Write as _;
    eprint!("{}", crate::plain::plain(prompt));
    let _ = std::io::stderr().flush();
    crossterm::terminal::enable_raw_mode().map_err(|e| format!("cannot read the password: {e}"))?;
    let mut s = String::new();
    let result = loop {
        match read() {
            Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => match k.code {
                KeyCode::Enter => break Ok(()),
                KeyCode::Esc => break Err("cancelled".to_string()),
                KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    break Err("cancelled".to_string());
                }
                KeyCode::Backspace => {
                    s.pop();
                }
                KeyCode::Char(c) => s.push(c),
                _ => {}
            },
            Ok(Event::Paste(p)) => s.push_str(p.trim_end_matches(['\r', '\n'])),
            Ok(_) => {}
            Err(e) => break Err(format!("cannot read the password: {e}")),
        }
    };
    let _ = crossterm::terminal::disable_raw_mode();
    eprintln!();
    result.map(|()| s)
}

#[cfg(test)]
mod prompt_tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn lists_logins_without_a_known_password() {
        let cfg = Config::parse(
            "[environments.p.source]\nserver = \"SQL01\"\nuser = \"ops\"\npassword_env = \"BTSDR_TEST_NOPE_1\"\n\n[environments.p.destination]\nserver = \"SQL02\"\nauth = \"integrated\"\n",
            "t.toml",
        )
        .unwrap();
        let env = cfg.environment("p").unwrap();
        let m = missing_passwords(env, &EnvSecrets::for_environment(env));
        assert_eq!(
            m,
            vec![(Role::Source, "ops".to_string(), "SQL01".to_string())]
        );
        let known = MapSecrets::new().with(Role::Source, "ops", "x");
        assert!(missing_passwords(env, &known).is_empty());
    }
}
