//! Opening one tiberius connection for a server profile.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tiberius::{AuthMethod, Client, EncryptionLevel, SqlBrowser};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::config::{Auth, Encrypt, Secret, ServerProfile, Target};
use btsdr_types::SqlError;

pub(crate) type SqlClient = Client<Compat<Metered>>;

/// Counts the bytes a connection reads since the last [`Meter::reset`] and fails the read
/// past a limit. The executor resets it at every row, so the limit bounds what the driver
/// buffers for one row: tiberius assembles a whole value (up to 2 GiB for `nvarchar(max)`)
/// before handing it over, which no cap on kept rows can stop.
#[derive(Debug, Clone, Default)]
pub struct Meter(Arc<MeterState>);

#[derive(Debug, Default)]
struct MeterState {
    read: AtomicU64,
    /// 0: no limit.
    limit: AtomicU64,
    tripped: AtomicBool,
}

impl Meter {
    pub fn new(limit: u64) -> Meter {
        let m = Meter::default();
        m.0.limit.store(limit, Ordering::Relaxed);
        m
    }
    /// Starts counting again (a row arrived, or a statement starts).
    pub fn reset(&self) {
        self.0.read.store(0, Ordering::Relaxed);
        self.0.tripped.store(false, Ordering::Relaxed);
    }
    /// Whether the last failed read was this meter's refusal.
    pub(crate) fn tripped(&self) -> bool {
        self.0.tripped.load(Ordering::Relaxed)
    }
    pub fn limit(&self) -> u64 {
        self.0.limit.load(Ordering::Relaxed)
    }
    /// Adds `n` bytes; false when that goes past the limit.
    fn add(&self, n: u64) -> bool {
        let total = self
            .0
            .read
            .fetch_add(n, Ordering::Relaxed)
            .saturating_add(n);
        let limit = self.limit();
        if limit > 0 && total > limit {
            self.0.tripped.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// A TCP stream whose reads are counted by a [`Meter`].
#[derive(Debug)]
pub struct Metered {
    inner: TcpStream,
    meter: Meter,
}

impl AsyncRead for Metered {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = (buf.filled().len() - before) as u64;
                if this.meter.add(n) {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Ready(Err(io::Error::other(format!(
                        "the server sent more than {} MiB for one row",
                        this.meter.limit() >> 20
                    ))))
                }
            }
            other => other,
        }
    }
}

impl AsyncWrite for Metered {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The connect error when btsdr requires encryption (the default) and the server offers none.
pub const NO_TLS: &str = "the server offers no encryption (its PRELOGIN answer says TLS is not supported), and btsdr requires it: enable TLS on the SQL Server (a certificate, Force Encryption), or, if the login and all data may cross this network in clear text, set encrypt = \"not_supported\" in this profile";

/// The connect error when `encrypt = "off"` (TLS for the login) meets a server whose TLS
/// handshake fails: most often a server that offers no encryption at all.
pub(crate) const LOGIN_TLS_FAILED: &str =
    "with encrypt = \"off\" the login is still sent over TLS, and the TLS handshake failed";

/// The driver config for `profile`; `password` is needed for `sql` and `windows` auth.
pub(crate) fn driver_config(
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
    // tiberius panics when both are set; the config loader refuses that pair.
    if profile.trust_server_certificate {
        cfg.trust_cert();
    } else if let Some(ca) = &profile.trust_cert_ca {
        cfg.trust_cert_ca(ca.display());
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

/// Connects and logs in within the profile's connect timeout. The meter counts what the
/// connection reads, limited to `max_result_mib` between two resets.
pub async fn connect(
    profile: &ServerProfile,
    password: Option<&Secret>,
) -> Result<(SqlClient, Meter), SqlError> {
    let server = profile.display_server();
    let secs = profile.connect_timeout_secs.max(1);
    let cfg = driver_config(profile, password)?;
    let meter = Meter::new(profile.max_result_mib.saturating_mul(1 << 20));
    let inner = connect_inner(cfg, &server, meter.clone(), profile.encrypt);
    match tokio::time::timeout(Duration::from_secs(secs), inner).await {
        Ok(r) => r.map(|c| (c, meter)),
        Err(_) => Err(SqlError::Connect {
            server,
            message: format!(
                "no answer within {secs} s (connect_timeout_secs): check the server name, port, \
                 firewall, and that the SQL Server Browser runs for a named instance"
            ),
        }),
    }
}

async fn connect_inner(
    cfg: tiberius::Config,
    server: &str,
    meter: Meter,
    encrypt: Option<Encrypt>,
) -> Result<SqlClient, SqlError> {
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
        meter.reset();
        let tcp = Metered {
            inner: tcp,
            meter: meter.clone(),
        };
        match Client::connect(cfg.clone(), tcp.compat_write()).await {
            Ok(c) => return Ok(c),
            Err(tiberius::error::Error::Routing { host, port }) => {
                cfg.host(&host);
                cfg.port(port);
            }
            Err(tiberius::error::Error::Server(t)) => {
                let mut message = t.message().to_string();
                if t.code() == 18456 {
                    message.push_str(
                        " (check the profile's `user` and the password in the variable its \
                         `password_env` names)",
                    );
                }
                return Err(SqlError::Login {
                    server: server.to_string(),
                    message,
                });
            }
            Err(tiberius::error::Error::Tls(m)) if encrypt == Some(Encrypt::Off) => {
                return Err(SqlError::Connect {
                    server: server.to_string(),
                    message: format!(
                        "{LOGIN_TLS_FAILED} ({m}): if the server offers no encryption, set \
                         encrypt = \"not_supported\" in this profile; if its certificate is signed \
                         by a private CA, install that CA on this machine or name its PEM file in \
                         `trust_cert_ca` (`btsdr sim` prints its own), or, knowing the risk, set \
                         trust_server_certificate = true"
                    ),
                });
            }
            Err(tiberius::error::Error::Tls(m)) => {
                return Err(SqlError::Connect {
                    server: server.to_string(),
                    message: format!(
                        "TLS failed: {m}; if the server's certificate is signed by a private CA, \
                         install that CA on this machine or name its PEM file in `trust_cert_ca` \
                         (`btsdr sim` prints its own), or, knowing the risk, set \
                         trust_server_certificate = true"
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
