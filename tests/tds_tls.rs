//! TLS on the stand-in TDS server, driven over real TCP by tiberius with certificate
//! validation: encryption negotiated in PRELOGIN, the handshake inside PRELOGIN packets, then
//! the whole session (or only LOGIN7) encrypted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking
#![allow(clippy::too_many_lines)] // some tests tell a long story

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use btsdr_sim::backend::{Backend, Reply, ReplyFuture, Request, Session};
use btsdr_sim::tds::TdsServer;
use btsdr_sim::tds::tls::{SimCertificate, TlsSettings};
use btsdr_types::{Column, ResultSet, Value};
use tiberius::error::Error;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

/// `ROWS n` answers n rows of 100 characters; anything else one row echoing the statement.
struct Echo;

impl Backend for Echo {
    fn login(&self, user: &str, password: &str) -> Result<(), String> {
        if (user, password) == ("sa", "secret") {
            Ok(())
        } else {
            Err(String::new())
        }
    }

    fn execute<'a>(&'a self, _: &'a mut Session, request: Request) -> ReplyFuture<'a> {
        Box::pin(async move {
            let rows: Vec<Vec<Value>> = match request.sql.strip_prefix("ROWS ") {
                Some(n) => (0..n.parse::<usize>().unwrap_or(0))
                    .map(|i| vec![Value::Text(format!("{i:0100}"))])
                    .collect(),
                None => vec![vec![Value::Text(request.sql.clone())]],
            };
            vec![Reply::Rows(ResultSet {
                not_kept: 0,
                columns: vec![Column {
                    name: "v".into(),
                    type_name: "nvarchar".into(),
                }],
                rows: rows.into(),
            })]
        })
    }
}

type Tds = Client<Compat<TcpStream>>;

async fn serve(cert: &SimCertificate, force: bool) -> TdsServer {
    let tls = TlsSettings::new(cert, force).unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    TdsServer::bind_tls(addr, Arc::new(Echo), tls)
        .await
        .unwrap()
}

fn write_ca(dir: &Path, cert: &SimCertificate) -> String {
    let path = dir.join("ca.pem");
    std::fs::write(&path, &cert.ca_pem).unwrap();
    path.display().to_string()
}

async fn connect(
    server: &TdsServer,
    level: EncryptionLevel,
    ca: Option<&str>,
) -> Result<Tds, Error> {
    let mut config = Config::new();
    config.host("127.0.0.1");
    config.port(server.local_addr().port());
    config.authentication(AuthMethod::sql_server("sa", "secret"));
    config.encryption(level);
    if let Some(ca) = ca {
        config.trust_cert_ca(ca);
    }
    let tcp = TcpStream::connect(server.local_addr()).await?;
    tcp.set_nodelay(true)?;
    Client::connect(config, tcp.compat_write()).await
}

async fn strings(client: &mut Tds, sql: &str) -> Vec<String> {
    let rows = client
        .simple_query(sql)
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.get::<&str, _>(0).unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn required_encryption_validates_the_certificate_and_carries_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let cert = SimCertificate::generate().unwrap();
    let ca = write_ca(dir.path(), &cert);
    let server = serve(&cert, false).await;
    let mut client = connect(&server, EncryptionLevel::Required, Some(&ca))
        .await
        .unwrap();
    assert_eq!(strings(&mut client, "SELECT 1").await, ["SELECT 1"]);
    // 2,000 rows (~400 KB): many TDS packets, many TLS records.
    let rows = strings(&mut client, "ROWS 2000").await;
    assert_eq!(rows.len(), 2000);
    assert_eq!(rows[1999], format!("{:0100}", 1999));
    assert_eq!(strings(&mut client, "again").await, ["again"]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = SimCertificate::generate().unwrap();
    let ca = write_ca(dir.path(), &other);
    let server = serve(&SimCertificate::generate().unwrap(), false).await;
    let Err(err) = connect(&server, EncryptionLevel::Required, Some(&ca)).await else {
        panic!("a server certificate from an untrusted CA must be refused");
    };
    assert!(
        matches!(err, Error::Tls(_)) || err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    // Nor does the system store trust it.
    assert!(
        connect(&server, EncryptionLevel::Required, None)
            .await
            .is_err()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn encrypt_off_encrypts_the_login_only_and_not_supported_stays_plain() {
    let dir = tempfile::tempdir().unwrap();
    let cert = SimCertificate::generate().unwrap();
    let ca = write_ca(dir.path(), &cert);
    let server = serve(&cert, false).await;
    let mut client = connect(&server, EncryptionLevel::Off, Some(&ca))
        .await
        .unwrap();
    assert_eq!(strings(&mut client, "ROWS 300").await.len(), 300);
    let mut plain = connect(&server, EncryptionLevel::NotSupported, None)
        .await
        .unwrap();
    assert_eq!(strings(&mut plain, "plain").await, ["plain"]);
    server.shutdown().await;
}

#[tokio::test]
async fn forced_encryption_refuses_a_client_without_tls_and_encrypts_an_off_client() {
    let dir = tempfile::tempdir().unwrap();
    let cert = SimCertificate::generate().unwrap();
    let ca = write_ca(dir.path(), &cert);
    let server = serve(&cert, true).await;
    assert!(
        connect(&server, EncryptionLevel::NotSupported, None)
            .await
            .is_err()
    );
    let mut client = connect(&server, EncryptionLevel::Off, Some(&ca))
        .await
        .unwrap();
    assert_eq!(strings(&mut client, "x").await, ["x"]);
    server.shutdown().await;
}

/// A drill serves TLS with its own CA (what `btsdr drill` and `check --drill` connect with);
/// a login to a database the instance does not have is SQL Server's error 4060.
#[tokio::test]
async fn a_drill_validates_with_its_ca_and_a_missing_database_is_4060() {
    let drill = btsdr_sim::drill::Drill::start("healthy").await.unwrap();
    let source = drill.endpoint(btsdr_types::Role::Source).unwrap().addr;
    let login = |database: &str| {
        let mut config = Config::new();
        config.host("127.0.0.1");
        config.port(source.port());
        config.database(database);
        config.authentication(AuthMethod::sql_server(&drill.user, &drill.password));
        config.encryption(EncryptionLevel::Required);
        config.trust_cert_ca(drill.ca_path().display());
        config
    };
    let tcp = TcpStream::connect(source).await.unwrap();
    let mut client = Client::connect(login("BizTalkMgmtDb"), tcp.compat_write())
        .await
        .unwrap();
    assert_eq!(
        strings(&mut client, "SELECT DB_NAME()").await,
        ["BizTalkMgmtDb"]
    );
    let tcp = TcpStream::connect(source).await.unwrap();
    match Client::connect(login("NoSuchDb"), tcp.compat_write()).await {
        Err(Error::Server(e)) => assert_eq!(e.code(), 4060, "{e}"),
        Err(e) => panic!("expected error 4060, got {e}"),
        Ok(_) => panic!("logged in to a database that does not exist"),
    }
    drill.shutdown().await;
}
