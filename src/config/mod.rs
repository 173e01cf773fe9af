//! The user's config file: named environments, each mapping the server roles (`source`,
//! `msgbox`, `destination`) to SQL Server profiles.
//!
//! ```toml
//! [environments.prod]
//! description = "Production BizTalk group"
//! [environments.prod.source]
//! server = "sql01\\BIZTALK,1433"      # host[\instance][,port]
//! auth = "windows"                    # sql | windows | integrated
//! user = "CONTOSO\\btsadmin"
//! password_env = "BTSDR_PROD_PW"      # the variable holding the password
//! [[environments.prod.msgbox]]        # one table, or an array of them
//! connection_string = "Server=sql02;Database=BizTalkMsgBoxDb"
//! ```
//!
//! Passwords are never stored here. Unknown keys inside environments and profiles are
//! errors; other top-level tables (`[ui]`, `[keys]`) belong to other parts of the app and
//! are ignored here.

pub mod drill;
pub mod secrets;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use crate::runbook::diag::{Diagnostic, Sink};
use btsdr_types::Role;

pub use drill::DrillConfig;
pub use secrets::{Chain, EnvSecrets, MapSecrets, Secret, SecretSource};

pub(crate) const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 15;
/// Without `statement_timeout_secs` in the config, no ceiling below a step's own largest
/// `timeout_secs` (86,400): each step's timeout applies. Written, it caps every statement.
pub(crate) const DEFAULT_STATEMENT_TIMEOUT_SECS: u64 = 86_400;
/// Rows of one result kept in memory; the server's further rows are counted, not kept.
pub(crate) const DEFAULT_MAX_RESULT_ROWS: u64 = 100_000;
/// Memory one result may hold (cells and text); past it rows are counted, not kept.
pub(crate) const DEFAULT_MAX_RESULT_MIB: u64 = 16;

/// Environment names of drill sessions: `drill:SCENARIO` (the built-in simulator).
pub const DRILL_PREFIX: &str = "drill:";

/// A loaded, validated config file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The file it came from; `None` when no file exists yet (the default location).
    pub path: Option<PathBuf>,
    pub environments: BTreeMap<String, Environment>,
    /// Things the UI should show (`file:line:col: warning: ...`); not errors.
    pub warnings: Vec<String>,
    /// The file can be read by other users (also the first of `warnings`).
    pub file_warning: Option<String>,
}

/// One BizTalk group's SQL side.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    pub name: String,
    pub description: String,
    pub source: Option<ServerProfile>,
    /// MessageBox instances; several when the group scales out MessageBoxes.
    pub msgbox: Vec<ServerProfile>,
    pub destination: Option<ServerProfile>,
}

impl Environment {
    /// The profile statements for `role` go to (the first MessageBox for `msgbox`).
    pub fn profile(&self, role: Role) -> Option<&ServerProfile> {
        self.profiles(role).first()
    }

    /// Every profile configured for `role`.
    pub fn profiles(&self, role: Role) -> &[ServerProfile] {
        match role {
            Role::Source => self.source.as_slice(),
            Role::Msgbox => &self.msgbox,
            Role::Destination => self.destination.as_slice(),
        }
    }

    /// Roles with at least one profile, in `Role::ALL` order.
    pub fn roles(&self) -> Vec<Role> {
        Role::ALL
            .into_iter()
            .filter(|r| !self.profiles(*r).is_empty())
            .collect()
    }
}

/// How to reach and log in to one SQL Server instance.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerProfile {
    pub target: Target,
    pub auth: Auth,
    /// Login name; `DOMAIN\user` for `windows`.
    pub user: Option<String>,
    /// Name of the environment variable holding the password.
    pub password_env: Option<String>,
    /// Initial database of the login; statements still choose their own.
    pub database: Option<String>,
    /// `None` for a connection string that decides itself (default `required` otherwise).
    pub encrypt: Option<Encrypt>,
    pub trust_server_certificate: bool,
    /// A PEM file of CA certificates trusted for this server besides the system's (e.g. the
    /// one `btsdr sim` writes).
    pub trust_cert_ca: Option<std::path::PathBuf>,
    pub connect_timeout_secs: u64,
    /// The longest any statement may run: a step's own `timeout_secs` can shorten it, never
    /// lengthen it (the smaller wins).
    pub statement_timeout_secs: u64,
    /// Rows of one result kept; the rest are counted (`ResultSet::not_kept`).
    pub max_result_rows: u64,
    /// MiB one result may hold in memory; past it rows are counted, not kept.
    pub max_result_mib: u64,
}

impl ServerProfile {
    /// A profile for `host,port` with SQL authentication (drills, tests).
    pub fn sql_login(host: &str, port: Option<u16>, user: &str, encrypt: Encrypt) -> Self {
        ServerProfile {
            target: Target::Server {
                host: host.to_string(),
                instance: None,
                port,
            },
            auth: Auth::Sql,
            user: Some(user.to_string()),
            password_env: None,
            database: None,
            encrypt: Some(encrypt),
            trust_server_certificate: false,
            trust_cert_ca: None,
            connect_timeout_secs: DEFAULT_CONNECT_TIMEOUT_SECS,
            statement_timeout_secs: DEFAULT_STATEMENT_TIMEOUT_SECS,
            max_result_rows: DEFAULT_MAX_RESULT_ROWS,
            max_result_mib: DEFAULT_MAX_RESULT_MIB,
        }
    }

    /// `host\instance,port` as an operator would write it, for messages.
    pub fn display_server(&self) -> String {
        match &self.target {
            Target::Server {
                host,
                instance,
                port,
            } => {
                let mut s = host.clone();
                if let Some(i) = instance {
                    s.push('\\');
                    s.push_str(i);
                }
                if let Some(p) = port {
                    s.push_str(&format!(",{p}"));
                }
                s
            }
            Target::ConnectionString(cs) => ado_pairs(cs)
                .into_iter()
                .find(|(k, _)| {
                    matches!(
                        k.as_str(),
                        "server" | "data source" | "address" | "addr" | "network address"
                    )
                })
                .map(|(_, v)| v)
                .unwrap_or_else(|| "(server from connection string)".to_string()),
        }
    }

    /// Warnings about this profile's security settings (empty when all is well).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let server = self.display_server();
        let trust = self.trust_server_certificate
            || matches!(&self.target, Target::ConnectionString(cs) if ado_trusts_cert(cs));
        if trust {
            w.push(format!(
                "{server}: trust_server_certificate is on: the server's TLS certificate is not \
                 checked, so a machine in the middle could read the login and the data"
            ));
        }
        if self.encrypt == Some(Encrypt::Off) {
            w.push(format!(
                "{server}: encrypt = \"off\": only the login is encrypted; every statement and \
                 result crosses the network in clear text"
            ));
        }
        if self.encrypt == Some(Encrypt::NotSupported) && !self.is_loopback() {
            w.push(format!(
                "{server}: encrypt = \"not_supported\": the login and all data cross the network \
                 unencrypted; use it only for the built-in simulator"
            ));
        }
        if !integrated_available() && matches!(self.auth, Auth::Windows | Auth::Integrated) {
            w.push(format!("{server}: {}", windows_auth_unavailable(self.auth)));
        }
        w
    }

    fn is_loopback(&self) -> bool {
        match &self.target {
            Target::Server { host, .. } => {
                let h = host.trim_start_matches("tcp:").to_ascii_lowercase();
                matches!(
                    h.as_str(),
                    "localhost" | "127.0.0.1" | "::1" | "[::1]" | "."
                )
            }
            Target::ConnectionString(_) => false,
        }
    }
}

/// Where the server is.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Server {
        host: String,
        instance: Option<String>,
        port: Option<u16>,
    },
    /// An ADO.NET connection string (without a password).
    ConnectionString(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// SQL Server login and password.
    Sql,
    /// NTLM with an explicit `DOMAIN\user` and password.
    Windows,
    /// The signed-in Windows user (SSPI); Windows builds only.
    Integrated,
}

impl Auth {
    pub fn as_str(self) -> &'static str {
        match self {
            Auth::Sql => "sql",
            Auth::Windows => "windows",
            Auth::Integrated => "integrated",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encrypt {
    /// TLS for the whole connection (the default).
    Required,
    /// TLS for the login only.
    Off,
    /// No TLS at all (the built-in simulator only supports this).
    NotSupported,
}

/// Whether this build can use Windows authentication (`windows`, `integrated`).
pub(crate) fn integrated_available() -> bool {
    cfg!(windows)
}

/// The message for `auth = "windows"|"integrated"` on a build without Windows auth.
pub(crate) fn windows_auth_unavailable(auth: Auth) -> String {
    match auth {
        Auth::Integrated => "auth = \"integrated\" (the signed-in Windows user) works only in the \
             Windows build of btsdr; on Linux/macOS use a SQL login (auth = \"sql\"), or run \
             btsdr on Windows (where auth = \"windows\" gives NTLM with DOMAIN\\user)"
            .to_string(),
        _ => "auth = \"windows\" (NTLM) is not compiled into this non-Windows build (the SQL \
             driver needs its `sspi-rs` feature); use a SQL login (auth = \"sql\") or the \
             Windows build of btsdr"
            .to_string(),
    }
}

/// Why a config file could not be used.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// The file could not be read.
    Io { path: String, message: String },
    /// The file was read but is wrong; one diagnostic per problem, in file order.
    Invalid(Vec<Diagnostic>),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, message } => {
                write!(f, "cannot read config file {path}: {message}")
            }
            ConfigError::Invalid(diags) => {
                for (i, d) in diags.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{d}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// `<config dir>/btsdr/config.toml` (e.g. `~/.config/btsdr/config.toml`,
    /// `%APPDATA%\btsdr\config\config.toml`).
    pub(crate) fn default_path() -> Option<PathBuf> {
        Some(crate::paths::config_dir().join("config.toml"))
    }

    /// Loads `explicit` (`--config FILE`, which must exist) or the default file (a missing
    /// default file gives an empty config).
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        match explicit {
            Some(p) => Self::load_file(p),
            None => match Self::default_path() {
                Some(p) if p.exists() => Self::load_file(&p),
                _ => Ok(Config::default()),
            },
        }
    }

    /// Reads and validates one file; warns when other users can read it.
    pub(crate) fn load_file(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let mut cfg = Self::parse(&text, &shown)?;
        cfg.path = Some(path.to_path_buf());
        if let Some(w) = permission_warning(path) {
            cfg.file_warning = Some(w.clone());
            cfg.warnings.insert(0, w);
        }
        Ok(cfg)
    }

    /// Parses and validates config text; `file` names it in messages.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let mut sink = Sink::new(file, text);
        let raw: RawFile = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let msg = e.message().trim().to_string();
                let help = if msg.contains("unknown field") {
                    Some(
                        "check the spelling; see the config section of the user guide for the keys",
                    )
                } else {
                    None
                };
                sink.at(e.span().unwrap_or(0..0), msg, help);
                return Err(ConfigError::Invalid(sink.diags));
            }
        };
        let mut warnings = Vec::new();
        let mut environments = BTreeMap::new();
        for (name, env) in raw.environments {
            let name_span = name.span();
            let name = name.into_inner();
            let env_span = env.span();
            let env = env.into_inner();
            if !valid_env_name(&name) {
                sink.at(
                    name_span.clone(),
                    format!("environment name `{name}` is not allowed"),
                    Some("use letters, digits, `-` and `_` (it is typed on the command line)"),
                );
            }
            let no_server =
                env.source.is_none() && env.msgbox.is_none() && env.destination.is_none();
            let mut v = Validator {
                sink: &mut sink,
                warnings: &mut warnings,
                env: &name,
            };
            let source = env.source.map(|p| {
                let span = p.span();
                v.profile(Role::Source, p.into_inner(), span)
            });
            let msgbox = match env.msgbox {
                None => Vec::new(),
                Some(m) => {
                    let span = m.span();
                    match m.into_inner() {
                        OneOrMany::One(p) => vec![v.profile(Role::Msgbox, *p, span)],
                        OneOrMany::Many(list) => {
                            if list.is_empty() {
                                v.sink.at(
                                    span,
                                    "`msgbox` is an empty list",
                                    Some("remove it or add a server profile"),
                                );
                            }
                            list.into_iter()
                                .map(|p| {
                                    let span = p.span();
                                    v.profile(Role::Msgbox, p.into_inner(), span)
                                })
                                .collect()
                        }
                    }
                }
            };
            let destination = env.destination.map(|p| {
                let span = p.span();
                v.profile(Role::Destination, p.into_inner(), span)
            });
            let (source, msgbox, destination) = (
                source.flatten(),
                msgbox.into_iter().flatten().collect::<Vec<_>>(),
                destination.flatten(),
            );
            if no_server {
                sink.at(
                    env_span,
                    format!("environment `{name}` has no server"),
                    Some("add at least one of [environments.NAME.source], .msgbox or .destination"),
                );
            }
            environments.insert(
                name.clone(),
                Environment {
                    name,
                    description: env.description.unwrap_or_default(),
                    source,
                    msgbox,
                    destination,
                },
            );
        }
        if !sink.diags.is_empty() {
            sink.diags.sort_by_key(|d| (d.line, d.col));
            return Err(ConfigError::Invalid(sink.diags));
        }
        Ok(Config {
            file_warning: None,
            path: None,
            environments,
            warnings,
        })
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.get(name)
    }
}

fn valid_env_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(unix)]
fn permission_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "{}: warning: the config file can be read by other users (mode {:o}); it names \
             servers and logins: run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )
    })
}

#[cfg(not(unix))]
fn permission_warning(_path: &Path) -> Option<String> {
    None
}

// ----- raw file shape -----

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    environments: BTreeMap<Spanned<String>, Spanned<RawEnvironment>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    description: Option<String>,
    source: Option<Spanned<RawProfile>>,
    msgbox: Option<Spanned<OneOrMany>>,
    destination: Option<Spanned<RawProfile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    server: Option<Spanned<String>>,
    connection_string: Option<Spanned<String>>,
    auth: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    /// Accepted only to refuse it with a clear message.
    password: Option<Spanned<toml::Value>>,
    database: Option<Spanned<String>>,
    encrypt: Option<Spanned<String>>,
    trust_server_certificate: Option<bool>,
    trust_cert_ca: Option<Spanned<String>>,
    connect_timeout_secs: Option<Spanned<i64>>,
    statement_timeout_secs: Option<Spanned<i64>>,
    max_result_rows: Option<Spanned<i64>>,
    max_result_mib: Option<Spanned<i64>>,
}

/// `msgbox = { ... }` / `[environments.x.msgbox]`, or an array of profiles.
enum OneOrMany {
    One(Box<RawProfile>),
    Many(Vec<Spanned<RawProfile>>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a server profile table or an array of them")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OneOrMany, A::Error> {
                RawProfile::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|p| OneOrMany::One(Box::new(p)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut v = Vec::new();
                while let Some(p) = seq.next_element::<Spanned<RawProfile>>()? {
                    v.push(p);
                }
                Ok(OneOrMany::Many(v))
            }
        }
        d.deserialize_any(V)
    }
}

// ----- validation -----

struct Validator<'s, 'a> {
    sink: &'s mut Sink<'a>,
    warnings: &'s mut Vec<String>,
    env: &'s str,
}

impl Validator<'_, '_> {
    fn err(&mut self, span: Range<usize>, msg: String, help: &str) {
        self.sink.at(span, msg, Some(help));
    }

    // TODO(issue 16): split (connection, authentication, TLS and paths checks apart).
    #[allow(clippy::too_many_lines)]
    fn profile(&mut self, role: Role, p: RawProfile, span: Range<usize>) -> Option<ServerProfile> {
        let before = self.sink.diags.len();
        let what = format!("environments.{}.{}", self.env, role);

        if let Some(pw) = &p.password {
            self.err(
                pw.span(),
                format!("`password` is not allowed in the config file ({what})"),
                "passwords are never stored in the file: put the password in an environment \
                 variable and name it with `password_env = \"VAR\"`",
            );
        }

        let mut cs_auth = None;
        let mut cs_security: Option<(AdoSecurity, Range<usize>)> = None;
        let target = match (&p.server, &p.connection_string) {
            (Some(s), Some(c)) => {
                let (ss, cs) = (s.span(), c.span());
                let first = if ss.start > cs.start { ss } else { cs };
                self.err(
                    first,
                    format!("{what} has both `server` and `connection_string`"),
                    "keep one of them",
                );
                None
            }
            (None, None) => {
                self.err(
                    span.clone(),
                    format!("{what} has no `server` or `connection_string`"),
                    "add `server = \"host[\\\\instance][,port]\"` or an ADO.NET `connection_string`",
                );
                None
            }
            (Some(s), None) => match parse_server(s.get_ref()) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.err(
                        s.span(),
                        format!("bad `server` value `{}`: {e}", s.get_ref()),
                        "write host, host\\\\instance, host,port or host\\\\instance,port",
                    );
                    None
                }
            },
            (None, Some(c)) => match self.connection_string(c) {
                Some((t, auth, sec)) => {
                    cs_auth = auth;
                    cs_security = Some((sec, c.span()));
                    Some(t)
                }
                None => None,
            },
        };

        let auth = match &p.auth {
            None => cs_auth.unwrap_or(Auth::Sql),
            Some(a) => match a.get_ref().as_str() {
                "sql" => Auth::Sql,
                "windows" => Auth::Windows,
                "integrated" => Auth::Integrated,
                other => {
                    self.err(
                        a.span(),
                        format!("unknown `auth` value `{other}`"),
                        "use \"sql\", \"windows\" (NTLM, DOMAIN\\\\user) or \"integrated\"",
                    );
                    Auth::Sql
                }
            },
        };
        let auth_span = p.auth.as_ref().map_or(span.clone(), |a| a.span());

        let user = p.user.as_ref().map(|u| u.get_ref().trim().to_string());
        if let Some(u) = &p.user
            && u.get_ref().trim().is_empty()
        {
            self.err(
                u.span(),
                "`user` is empty".into(),
                "give the login name or remove the key",
            );
        }
        let user = match (user, &target) {
            (None, Some(Target::ConnectionString(cs))) => ado_user(cs),
            (u, _) => u,
        };
        match auth {
            // Without a usable target the user question is moot (its error is reported).
            _ if target.is_none() => {}
            Auth::Sql | Auth::Windows if user.is_none() => self.err(
                auth_span.clone(),
                format!("{what}: auth = \"{}\" needs a `user`", auth.as_str()),
                if auth == Auth::Windows {
                    "add `user = \"DOMAIN\\\\name\"`"
                } else {
                    "add `user = \"login\"`"
                },
            ),
            Auth::Windows => {
                if let (Some(u), Some(us)) = (&user, &p.user)
                    && !u.contains('\\')
                    && !u.contains('@')
                {
                    self.err(
                        us.span(),
                        format!("windows login `{u}` has no domain"),
                        "write it as `DOMAIN\\\\user` (in TOML: \"DOMAIN\\\\user\" or 'DOMAIN\\user')",
                    );
                }
            }
            Auth::Integrated => {
                for (key, s) in [("user", &p.user), ("password_env", &p.password_env)] {
                    if let Some(s) = s {
                        self.err(
                            s.span(),
                            format!("`{key}` makes no sense with auth = \"integrated\""),
                            "integrated auth uses the signed-in Windows user: remove the key, or use auth = \"windows\"",
                        );
                    }
                }
            }
            _ => {}
        }

        let password_env = p.password_env.as_ref().map(|v| v.get_ref().clone());
        if let Some(v) = &p.password_env
            && !valid_env_var(v.get_ref())
        {
            self.err(
                v.span(),
                format!(
                    "`password_env` must name an environment variable, not `{}`",
                    v.get_ref()
                ),
                "use letters, digits and `_`, not starting with a digit (e.g. \"BTSDR_PROD_PW\")",
            );
        }

        let key_encrypt = match &p.encrypt {
            None => None,
            Some(e) => match e.get_ref().as_str() {
                "required" => Some(Encrypt::Required),
                "off" => Some(Encrypt::Off),
                "not_supported" => Some(Encrypt::NotSupported),
                other => {
                    self.err(
                        e.span(),
                        format!("unknown `encrypt` value `{other}`"),
                        "use \"required\" (default), \"off\" (login only) or \"not_supported\" (simulator)",
                    );
                    None
                }
            },
        };
        // A connection string may lower encryption only when the profile says the same in
        // btsdr's own words (`encrypt = "off"` / `"not_supported"`); then it is warned about.
        let encrypt = match (
            cs_security
                .as_ref()
                .and_then(|(s, at)| s.encrypt.map(|e| (e, at))),
            key_encrypt,
        ) {
            (None, k) => Some(k.unwrap_or(Encrypt::Required)),
            (Some((Encrypt::Required, _)), None | Some(Encrypt::Required)) => {
                Some(Encrypt::Required)
            }
            (Some((cs, _)), Some(k)) if cs == k => Some(k),
            (Some((cs, at)), k) => {
                let word = match cs {
                    Encrypt::Required => "required",
                    Encrypt::Off => "off",
                    Encrypt::NotSupported => "not_supported",
                };
                let what_cs = match cs {
                    Encrypt::Required => "requires encryption",
                    Encrypt::Off => {
                        "encrypts only the login: every statement and result would cross the network in clear text"
                    }
                    Encrypt::NotSupported => {
                        "turns encryption off: the login and all data would cross the network in clear text"
                    }
                };
                self.err(
                    at.clone(),
                    format!(
                        "the connection string's `Encrypt` {what_cs}, and the profile's `encrypt` {}",
                        if k.is_some() { "says otherwise" } else { "does not agree" }
                    ),
                    &format!(
                        "if that is really meant, write encrypt = \"{word}\" in this profile too (it is then warned about on every run); otherwise remove `Encrypt` from the connection string"
                    ),
                );
                None
            }
        };

        let database = match &p.database {
            Some(d) if d.get_ref().trim().is_empty() || d.get_ref().contains('\0') => {
                self.err(
                    d.span(),
                    "`database` is empty".into(),
                    "name a database or remove the key",
                );
                None
            }
            Some(d) => Some(d.get_ref().clone()),
            None => None,
        };

        let trust_cert_ca = match &p.trust_cert_ca {
            Some(c) if c.get_ref().trim().is_empty() => {
                self.err(
                    c.span(),
                    "`trust_cert_ca` is empty".into(),
                    "name a PEM file of CA certificates or remove the key",
                );
                None
            }
            Some(c) if p.trust_server_certificate == Some(true) => {
                self.err(
                    c.span(),
                    "`trust_cert_ca` and `trust_server_certificate = true` contradict each other"
                        .into(),
                    "keep `trust_cert_ca` (the certificate is then checked against it)",
                );
                None
            }
            Some(c) => Some(std::path::PathBuf::from(c.get_ref())),
            None => None,
        };

        let connect_timeout_secs = self.secs(
            &p.connect_timeout_secs,
            "connect_timeout_secs",
            DEFAULT_CONNECT_TIMEOUT_SECS,
            600,
        );
        let statement_timeout_secs = self.secs(
            &p.statement_timeout_secs,
            "statement_timeout_secs",
            DEFAULT_STATEMENT_TIMEOUT_SECS,
            7 * 24 * 3600,
        );
        let max_result_rows = self.count(
            &p.max_result_rows,
            "max_result_rows",
            DEFAULT_MAX_RESULT_ROWS,
            10_000_000,
            "rows",
        );
        let max_result_mib = self.count(
            &p.max_result_mib,
            "max_result_mib",
            DEFAULT_MAX_RESULT_MIB,
            4096,
            "MiB",
        );

        if self.sink.diags.len() > before {
            return None;
        }
        let profile = ServerProfile {
            target: target?,
            auth,
            user,
            password_env,
            database,
            encrypt,
            trust_server_certificate: p.trust_server_certificate.unwrap_or(false)
                || cs_security.is_some_and(|(s, _)| s.trust_server_certificate),
            trust_cert_ca,
            connect_timeout_secs,
            statement_timeout_secs,
            max_result_rows,
            max_result_mib,
        };
        let (line, col) = self.sink.line_col(span.start);
        for w in profile.warnings() {
            self.warnings.push(format!(
                "{}:{line}:{col}: warning: {what}: {w}",
                self.sink.file
            ));
        }
        Some(profile)
    }

    fn count(
        &mut self,
        v: &Option<Spanned<i64>>,
        key: &str,
        default: u64,
        max: u64,
        unit: &str,
    ) -> u64 {
        match v {
            None => default,
            Some(s) => match u64::try_from(*s.get_ref()) {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    self.err(
                        s.span(),
                        format!("`{key}` is {}, which is out of range", s.get_ref()),
                        &format!("give a number of {unit} from 1 to {max}"),
                    );
                    default
                }
            },
        }
    }

    fn secs(&mut self, v: &Option<Spanned<i64>>, key: &str, default: u64, max: u64) -> u64 {
        match v {
            None => default,
            Some(s) => match u64::try_from(*s.get_ref()) {
                Ok(n) if n >= 1 && n <= max => n,
                _ => {
                    self.err(
                        s.span(),
                        format!("`{key}` is {}, which is out of range", s.get_ref()),
                        &format!("give a number of seconds from 1 to {max}"),
                    );
                    default
                }
            },
        }
    }

    /// Checks an ADO.NET string; returns the target, the auth it implies and what it says
    /// about encryption.
    fn connection_string(
        &mut self,
        c: &Spanned<String>,
    ) -> Option<(Target, Option<Auth>, AdoSecurity)> {
        let s = c.get_ref();
        let bad = |me: &mut Self, e: String| {
            me.err(
                c.span(),
                format!("bad connection string: {e}"),
                "use the ADO.NET form, e.g. \"Server=tcp:host,1433;Database=master\"",
            );
        };
        let pairs = match ado_parse(s) {
            Ok(p) => p,
            Err(e) => {
                bad(self, e);
                return None;
            }
        };
        if let Some((k, _)) = pairs.iter().find(|(k, _)| k == "password" || k == "pwd") {
            self.err(
                c.span(),
                format!("the connection string contains `{k}=`: passwords are not allowed in the config file"),
                "remove it and name an environment variable with `password_env = \"VAR\"`",
            );
            return None;
        }
        let security = match ado_security(&pairs) {
            Ok(sec) => sec,
            Err(e) => {
                bad(self, e);
                return None;
            }
        };
        if let Err(e) = tiberius::Config::from_ado_string(&ado_for_driver(&pairs)) {
            bad(self, e.to_string());
            return None;
        }
        let integrated = pairs.iter().any(|(k, v)| {
            matches!(
                k.as_str(),
                "integrated security" | "integratedsecurity" | "trusted_connection"
            ) && matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "sspi")
        });
        Some((
            Target::ConnectionString(s.clone()),
            integrated.then_some(Auth::Integrated),
            security,
        ))
    }
}

fn valid_env_var(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `host[\instance][,port]` (an optional `tcp:` prefix is accepted).
pub fn parse_server(s: &str) -> Result<Target, String> {
    let s = s.trim();
    let s = s.strip_prefix("tcp:").unwrap_or(s);
    let (rest, port) = match s.rsplit_once(',') {
        Some((r, p)) => {
            let p = p.trim();
            match p.parse::<u16>() {
                Ok(n) if n > 0 => (r, Some(n)),
                _ => return Err(format!("`{p}` is not a port number (1-65535)")),
            }
        }
        None => (s, None),
    };
    let (host, instance) = match rest.split_once('\\') {
        Some((h, i)) => {
            if i.is_empty() || i.contains('\\') {
                return Err("the instance name after `\\` is empty or has another `\\`".into());
            }
            (h, Some(i.to_string()))
        }
        None => (rest, None),
    };
    let host = host.trim();
    if host.is_empty() {
        return Err("the host name is empty".into());
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == ';' || c == '\0')
    {
        return Err("the host name contains spaces or `;`".into());
    }
    Ok(Target::Server {
        host: host.to_string(),
        instance,
        port,
    })
}

/// The key/value pairs of an ADO.NET connection string, parsed exactly as tiberius parses it
/// (`tiberius::client::config::ado_parser`, 0.13): keys lower-cased, `==` in a key is `=`,
/// values bare (to `;`, trailing blanks cut), `'...'` or `"..."` (the quote doubled inside),
/// or `{...}` (to the first `}`). A later key wins, as in tiberius. What tiberius would read
/// as a separate pair is one here too: a `Password=` after a `{...}` value is found.
pub(crate) fn ado_parse(input: &str) -> Result<Vec<(String, String)>, String> {
    if !input.is_ascii() {
        return Err("the connection string contains non-ASCII characters".into());
    }
    let b = input.as_bytes();
    let n = b.len();
    let mut i = 0;
    let mut pairs: Vec<(String, String)> = Vec::new();
    let trailing = |i: &mut usize, err: &str| -> Result<(), String> {
        while *i < n && b[*i] != b';' {
            if !b[*i].is_ascii_whitespace() {
                return Err(err.to_string());
            }
            *i += 1;
        }
        Ok(())
    };
    while i < n {
        while i < n && (b[i] == b';' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= n {
            break;
        }
        let mut key = String::new();
        loop {
            if i >= n || b[i] == b';' {
                return Err("key-value pairs must be joined by a `=`".into());
            }
            if b[i] == b'=' {
                if i + 1 < n && b[i + 1] == b'=' {
                    key.push('=');
                    i += 2;
                    continue;
                }
                i += 1;
                break;
            }
            key.push(char::from(b[i]));
            i += 1;
        }
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err("a key in the connection string is empty".into());
        }
        while i < n && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = if i < n && (b[i] == b'\'' || b[i] == b'"') {
            let quote = b[i];
            i += 1;
            let mut v = String::new();
            loop {
                if i >= n {
                    return Err("the connection string has an unclosed quote".into());
                }
                if b[i] == quote {
                    if i + 1 < n && b[i + 1] == quote {
                        v.push(char::from(quote));
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                v.push(char::from(b[i]));
                i += 1;
            }
            trailing(&mut i, "unexpected characters after a quoted value")?;
            v
        } else if i < n && b[i] == b'{' {
            i += 1;
            let mut v = String::new();
            loop {
                if i >= n {
                    return Err("the connection string has an unclosed brace `{`".into());
                }
                if b[i] == b'}' {
                    i += 1;
                    break;
                }
                v.push(char::from(b[i]));
                i += 1;
            }
            trailing(&mut i, "unexpected characters after a `{...}` value")?;
            v
        } else {
            let start = i;
            while i < n && b[i] != b';' {
                i += 1;
            }
            input[start..i].trim_end().to_string()
        };
        pairs.retain(|(k, _)| *k != key);
        pairs.push((key, value));
        if i < n && b[i] == b';' {
            i += 1;
        }
    }
    Ok(pairs)
}

/// [`ado_parse`], or no pairs for a string that does not parse (the config refuses those).
pub(crate) fn ado_pairs(s: &str) -> Vec<(String, String)> {
    ado_parse(s).unwrap_or_default()
}

/// The keys btsdr maps itself (see [`ado_security`]); the rest goes to tiberius.
const SECURITY_KEYS: [&str; 3] = [
    "encrypt",
    "trustservercertificate",
    "trust server certificate",
];

/// What a connection string says about encryption and certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdoSecurity {
    /// `None`: no `Encrypt` key (then encryption is required).
    pub encrypt: Option<Encrypt>,
    pub trust_server_certificate: bool,
}

/// Maps every spelling of `Encrypt` and `TrustServerCertificate` explicitly (ADO.NET's
/// `true/yes/mandatory`, `false/no/optional`, `strict`; tiberius's `DANGER_PLAINTEXT`),
/// case-insensitively; anything else is an error naming the accepted values.
pub(crate) fn ado_security(pairs: &[(String, String)]) -> Result<AdoSecurity, String> {
    let mut sec = AdoSecurity {
        encrypt: None,
        trust_server_certificate: false,
    };
    for (k, v) in pairs {
        let v = v.trim().to_ascii_lowercase();
        match k.as_str() {
            "encrypt" => {
                sec.encrypt = Some(match v.as_str() {
                    "true" | "yes" | "mandatory" => Encrypt::Required,
                    "false" | "no" | "optional" => Encrypt::Off,
                    "danger_plaintext" => Encrypt::NotSupported,
                    "strict" => {
                        return Err("Encrypt=Strict (TDS 8.0) is not supported by btsdr: use Encrypt=Mandatory".into());
                    }
                    other => {
                        return Err(format!(
                            "Encrypt={other} is not a value btsdr knows: use Mandatory (or True/Yes), Optional (or False/No: the data then crosses the network in clear text)"
                        ));
                    }
                });
            }
            "trustservercertificate" | "trust server certificate" => {
                sec.trust_server_certificate = match v.as_str() {
                    "true" | "yes" => true,
                    "false" | "no" => false,
                    other => {
                        return Err(format!(
                            "TrustServerCertificate={other} is not a value btsdr knows: use False (the default) or True"
                        ));
                    }
                };
            }
            _ => {}
        }
    }
    Ok(sec)
}

/// The connection string for tiberius: the pairs without the keys btsdr maps itself, each
/// value double-quoted, so what tiberius reads is exactly what btsdr checked.
pub(crate) fn ado_for_driver(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .filter(|(k, _)| !SECURITY_KEYS.contains(&k.as_str()))
        .map(|(k, v)| format!("{}=\"{}\"", k.replace('=', "=="), v.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(";")
}

fn ado_user(cs: &str) -> Option<String> {
    ado_pairs(cs)
        .into_iter()
        .find(|(k, _)| {
            matches!(
                k.as_str(),
                "user id" | "uid" | "user" | "userid" | "username"
            )
        })
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn ado_trusts_cert(cs: &str) -> bool {
    ado_pairs(cs).iter().any(|(k, v)| {
        matches!(
            k.as_str(),
            "trustservercertificate" | "trust server certificate"
        ) && matches!(v.to_ascii_lowercase().as_str(), "true" | "yes")
    })
}

/// Name recorded when neither a flag, a variable nor the OS account gives one.
pub(crate) const UNKNOWN_OPERATOR: &str = "unknown operator";

/// Where [`operator_name`] found the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OperatorSource {
    /// `--operator`, `$BTSDR_OPERATOR`, `$USER`, `$LOGNAME` or `$USERNAME`.
    Given,
    /// The OS account of this process (the variables were empty).
    OsAccount,
    /// Nothing worked: [`UNKNOWN_OPERATOR`].
    Unknown,
}

/// The operator name from the flag, `$BTSDR_OPERATOR`, `$USER`/`$LOGNAME`/`$USERNAME`, then
/// the OS account; when it came from the account (or nothing worked) stderr says so, once.
pub fn operator_name(flag: Option<&str>) -> String {
    let (name, source) = resolve_operator(flag, |k| std::env::var(k).ok(), os_account_name);
    static SAID: std::sync::Once = std::sync::Once::new();
    match source {
        OperatorSource::Given => {}
        OperatorSource::OsAccount => SAID.call_once(|| {
            crate::errln!(
                "note: operator `{name}` is the OS account name ($USER, $LOGNAME and $USERNAME are empty); give --operator NAME or set BTSDR_OPERATOR to record someone else"
            );
        }),
        OperatorSource::Unknown => SAID.call_once(|| {
            crate::errln!(
                "warning: no operator name: $USER, $LOGNAME and $USERNAME are empty and the OS account has no name; recording `{UNKNOWN_OPERATOR}` (give --operator NAME or set BTSDR_OPERATOR)"
            );
        }),
    }
    name
}

/// [`operator_name`] with the environment and the OS account lookup passed in.
pub(crate) fn resolve_operator(
    flag: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
    os_account: impl FnOnce() -> Option<String>,
) -> (String, OperatorSource) {
    let given = [
        flag.map(str::to_string),
        env("BTSDR_OPERATOR"),
        env("USER"),
        env("LOGNAME"),
        env("USERNAME"),
    ]
    .into_iter()
    .flatten()
    .map(|s| s.trim().to_string())
    .find(|s| !s.is_empty());
    if let Some(name) = given {
        return (name, OperatorSource::Given);
    }
    match os_account()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
    {
        Some(name) => (name, OperatorSource::OsAccount),
        None => (UNKNOWN_OPERATOR.to_string(), OperatorSource::Unknown),
    }
}

/// The name of the account this process runs as (`whoami`), from the password database.
#[cfg(unix)]
pub(crate) fn os_account_name() -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: `passwd` is plain data, all-zero is a valid value; getpwuid_r writes only into
    // `pwd` and `buf` (whose length it is given) and sets `result` to null or to `&pwd`.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe {
        libc::getpwuid_r(
            libc::geteuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success `pw_name` points to a NUL-terminated string inside `buf`, alive here.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned()).filter(|s| !s.trim().is_empty())
}

/// The name of the account this process runs as: Windows sets `USERNAME` for every logon,
/// which [`operator_name`] already read; nothing else is asked here.
#[cfg(not(unix))]
pub(crate) fn os_account_name() -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_falls_back_to_the_os_account_then_unknown() {
        let empty = |k: &str| (k == "USER").then(|| "  ".to_string());
        assert_eq!(
            resolve_operator(None, empty, || Some("alice".into())),
            ("alice".to_string(), OperatorSource::OsAccount)
        );
        assert_eq!(
            resolve_operator(None, empty, || Some(" ".into())),
            (UNKNOWN_OPERATOR.to_string(), OperatorSource::Unknown)
        );
        assert_eq!(
            resolve_operator(None, |k| (k == "LOGNAME").then(|| "bob".into()), || None),
            ("bob".to_string(), OperatorSource::Given)
        );
        assert_eq!(
            resolve_operator(Some("carol"), empty, || None).0,
            "carol".to_string()
        );
    }

    #[cfg(unix)]
    #[test]
    fn os_account_name_matches_id_un() {
        let name = os_account_name();
        // `id -un` asks the same database; where it is missing there is nothing to compare.
        if let Ok(out) = std::process::Command::new("id").arg("-un").output()
            && out.status.success()
        {
            let want = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert_eq!(name.as_deref(), Some(want.as_str()));
        }
    }

    #[test]
    fn server_forms() {
        let t = |s| parse_server(s).unwrap();
        assert_eq!(
            t("sql01"),
            Target::Server {
                host: "sql01".into(),
                instance: None,
                port: None
            }
        );
        assert_eq!(
            t("tcp:sql01\\BTS,1500"),
            Target::Server {
                host: "sql01".into(),
                instance: Some("BTS".into()),
                port: Some(1500)
            }
        );
        assert!(parse_server("sql01,0").is_err());
        assert!(parse_server("sql01\\").is_err());
        assert!(parse_server(",1433").is_err());
    }

    #[test]
    fn ado_keys() {
        let p = ado_pairs("Server=tcp:a,1433; User ID = \"x;y\"\"z\" ;Pwd=secret;");
        assert_eq!(p[0], ("server".into(), "tcp:a,1433".into()));
        assert_eq!(p[1], ("user id".into(), "x;y\"z".into()));
        assert_eq!(p[2], ("pwd".into(), "secret".into()));
        assert_eq!(p.len(), 3);
    }
}
