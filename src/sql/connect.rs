//! Opening one tiberius connection for a server profile.

use std::time::Duration;

use tiberius::{AuthMethod, Client, EncryptionLevel, SqlBrowser};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::types::SqlError;
use crate::config::{Auth, Encrypt, Secret, ServerProfile, Target};

pub type SqlClient = Client<Compat<TcpStream>>;

/// The connect error when btsdr requires encryption (the default) and the server offers none.
pub const NO_TLS: &str = "the server offers no encryption (its PRELOGIN answer says TLS is not supported), and btsdr requires it: enable TLS on the SQL Server (a certificate, Force Encryption), or, if the login and all data may cross this network in clear text, set encrypt = \"not_supported\" in this profile";

/// The driver config for `profile`; `password` is needed for `sql` and `windows` auth.
pub fn driver_config(
    profile: &ServerProfile,
    password: Option<&Secret>,
) -> Result<tiberius::Config, SqlError> {
    let server = profile.display_server();
    let connect_err = |message: String| SqlError::Connect {
        server: server.clone(),
        message,
    };
    let mut cfg = match &profile.target {
        Target::Server {
            host,
            instance,
            port,
        } => {
            let mut c = tiberius::Config::new();
            c.host(host);
            if let Some(i) = instance {
                c.instance_name(i);
            }
            if let Some(p) = port {
                c.port(*p);
            }
            c
        }
        // Parsed as tiberius does; `Encrypt` and `TrustServerCertificate` are mapped by
        // btsdr (into `profile`) and not passed on, so every spelling means what btsdr says.
        Target::ConnectionString(cs) => {
            let pairs = crate::config::ado_parse(cs)
                .map_err(|e| connect_err(format!("bad connection string: {e}")))?;
            tiberius::Config::from_ado_string(&crate::config::ado_for_driver(&pairs))
                .map_err(|e| connect_err(format!("bad connection string: {e}")))?
        }
    };
    cfg.application_name("btsdr");
    if let Some(db) = &profile.database {
        cfg.database(db);
    }
    match profile.encrypt {
        Some(Encrypt::Required) => cfg.encryption(EncryptionLevel::Required),
        Some(Encrypt::Off) => cfg.encryption(EncryptionLevel::Off),
        Some(Encrypt::NotSupported) => cfg.encryption(EncryptionLevel::NotSupported),
        None => {}
    }
    if profile.trust_server_certificate {
        cfg.trust_cert();
    }
    let login_err = |message: String| SqlError::Login {
        server: server.clone(),
        message,
    };
    let need_password = |user: &str| {
        password.map(|p| p.expose().to_string()).ok_or_else(|| {
            let hint = match &profile.password_env {
                Some(v) => format!("set the environment variable {v}"),
                None => {
                    "add `password_env = \"VAR\"` to the profile or enter it when asked".to_string()
                }
            };
            login_err(format!("no password for `{user}`: {hint}"))
        })
    };
    let user = profile.user.as_deref().unwrap_or("");
    match profile.auth {
        Auth::Sql => {
            if user.is_empty() {
                return Err(login_err("auth = \"sql\" needs a `user`".into()));
            }
            cfg.authentication(AuthMethod::sql_server(user, need_password(user)?));
        }
        Auth::Windows => {
            #[cfg(windows)]
            {
                cfg.authentication(AuthMethod::windows(user, need_password(user)?));
            }
            #[cfg(not(windows))]
            return Err(connect_err(crate::config::windows_auth_unavailable(
                Auth::Windows,
            )));
        }
        Auth::Integrated => {
            #[cfg(windows)]
            {
                cfg.authentication(AuthMethod::Integrated);
            }
            #[cfg(not(windows))]
            return Err(connect_err(crate::config::windows_auth_unavailable(
                Auth::Integrated,
            )));
        }
    }
    Ok(cfg)
}

/// Connects and logs in within the profile's connect timeout.
pub async fn connect(
    profile: &ServerProfile,
    password: Option<&Secret>,
) -> Result<SqlClient, SqlError> {
    let server = profile.display_server();
    let secs = profile.connect_timeout_secs.max(1);
    let cfg = driver_config(profile, password)?;
    match tokio::time::timeout(Duration::from_secs(secs), connect_inner(cfg, &server)).await {
        Ok(r) => r,
        Err(_) => Err(SqlError::Connect {
            server,
            message: format!(
                "no answer within {secs} s (connect_timeout_secs): check the server name, port, \
                 firewall, and that the SQL Server Browser runs for a named instance"
            ),
        }),
    }
}

async fn connect_inner(cfg: tiberius::Config, server: &str) -> Result<SqlClient, SqlError> {
    let mut cfg = cfg;
    // One redirect (Azure SQL gateways, read-only routing) is followed.
    for _ in 0..2 {
        let tcp = TcpStream::connect_named(&cfg)
            .await
            .map_err(|e| SqlError::Connect {
                server: server.to_string(),
                message: tcp_message(&e),
            })?;
        let _ = tcp.set_nodelay(true);
        match Client::connect(cfg.clone(), tcp.compat_write()).await {
            Ok(c) => return Ok(c),
            Err(tiberius::error::Error::Routing { host, port }) => {
                cfg.host(&host);
                cfg.port(port);
            }
            Err(tiberius::error::Error::Server(t)) => {
                let mut message = t.message().to_string();
                if t.code() == 18456 {
                    message.push_str(" (check the user name and the password)");
                }
                return Err(SqlError::Login {
                    server: server.to_string(),
                    message,
                });
            }
            Err(tiberius::error::Error::Tls(m)) => {
                return Err(SqlError::Connect {
                    server: server.to_string(),
                    message: format!(
                        "TLS failed: {m}; if the server's certificate is self-signed, install its CA \
                         on this machine (or, knowing the risk, set trust_server_certificate = true)"
                    ),
                });
            }
            Err(tiberius::error::Error::Protocol(m))
                if m.contains("requested encryption level") =>
            {
                return Err(SqlError::Connect {
                    server: server.to_string(),
                    message: NO_TLS.to_string(),
                });
            }
            Err(e) => {
                return Err(SqlError::Connect {
                    server: server.to_string(),
                    message: e.to_string(),
                });
            }
        }
    }
    Err(SqlError::Connect {
        server: server.to_string(),
        message: "redirected more than once".into(),
    })
}

fn tcp_message(e: &tiberius::error::Error) -> String {
    match e {
        tiberius::error::Error::Io { kind, message }
            if *kind == std::io::ErrorKind::ConnectionRefused =>
        {
            format!(
                "{message} (nothing listens on that port: is SQL Server running, and is the port right?)"
            )
        }
        other => other.to_string(),
    }
}
