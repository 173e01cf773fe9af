//! Accept loop and per-connection state machine: PRELOGIN, LOGIN7, then requests.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::login::{client_encryption, parse_login7, prelogin_reply_with};
use super::packet::{self, FrameError, PacketReader};
use super::rpc::{self, DecodeError, Rpc, TmRequest};
use super::tls::{Encryption, PreloginWrapped, TlsSettings, negotiate};
use super::tokens::{self, COLLATION, DONE_ATTN, DONE_ERROR, Tokens};
use crate::backend::{Backend, Reply, Request, Session};

const FIRST_SPID: u16 = 51;

/// A TDS 7.4 server on a TCP socket, answering from a [`Backend`]. Made with `bind` it offers
/// no TLS (clients must use `EncryptionLevel::NotSupported`); with `bind_tls` it negotiates
/// encryption as SQL Server does.
pub struct TdsServer {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept: Option<JoinHandle<()>>,
}

impl TdsServer {
    /// Binds `addr` (port 0 picks a free port) and starts accepting in a spawned task.
    pub async fn bind(addr: SocketAddr, backend: Arc<dyn Backend>) -> io::Result<TdsServer> {
        TdsServer::start(addr, backend, None).await
    }

    /// Like `bind`, offering TLS with `tls` (required of every client if it forces encryption).
    pub async fn bind_tls(
        addr: SocketAddr,
        backend: Arc<dyn Backend>,
        tls: TlsSettings,
    ) -> io::Result<TdsServer> {
        TdsServer::start(addr, backend, Some(Arc::new(tls))).await
    }

    async fn start(
        addr: SocketAddr,
        backend: Arc<dyn Backend>,
        tls: Option<Arc<TlsSettings>>,
    ) -> io::Result<TdsServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (shutdown, rx) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, backend, tls, rx));
        tracing::info!(%local_addr, "stand-in SQL Server listening");
        Ok(TdsServer {
            local_addr,
            shutdown,
            accept: Some(accept),
        })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, closes every connection (running requests are dropped) and waits
    /// for all tasks to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(accept) = self.accept.take()
            && let Err(e) = accept.await
        {
            tracing::warn!("stand-in server accept task failed: {e}");
        }
    }

    /// Serves until `signal` completes (e.g. `tokio::signal::ctrl_c()`), then shuts down.
    pub async fn run_until(self, signal: impl Future) {
        signal.await;
        self.shutdown().await;
    }
}

impl Drop for TdsServer {
    /// Dropping without `shutdown` still stops the tasks, in the background.
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Resolves once shutdown was requested (or the server handle is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn accept_loop(
    listener: TcpListener,
    backend: Arc<dyn Backend>,
    tls: Option<Arc<TlsSettings>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let mut next_spid = FIRST_SPID;
    let conn_stop = stop.clone();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = joined {
                    tracing::warn!("a stand-in server connection task failed: {e}");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let spid = next_spid;
                    next_spid = if next_spid == u16::MAX { FIRST_SPID } else { next_spid + 1 };
                    connections.spawn(connection(stream, peer, spid, backend.clone(), tls.clone(), conn_stop.clone()));
                }
                Err(e) => {
                    // e.g. out of file descriptors: back off instead of spinning
                    tracing::warn!("stand-in server cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    spid: u16,
    backend: Arc<dyn Backend>,
    tls: Option<Arc<TlsSettings>>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let opened = tokio::select! {
        r = open(stream, spid, backend.clone(), tls.as_deref()) => r,
        _ = stopped(&mut stop) => return,
    };
    let mut conn = match opened {
        Ok(Some(conn)) => conn,
        Ok(None) => return tracing::debug!(spid, %peer, "TDS connection closed before login"),
        Err(e) => return tracing::warn!(spid, %peer, "closing TDS connection: {e}"),
    };
    let result = tokio::select! {
        r = conn.run() => r,
        _ = stopped(&mut stop) => Ok(()),
    };
    match result {
        Ok(()) => tracing::debug!(spid, %peer, "TDS connection closed"),
        Err(e) => tracing::warn!(spid, %peer, "closing TDS connection: {e}"),
    }
    let _ = conn.writer.shutdown().await;
    if conn.logged_in {
        backend.disconnected(spid);
    }
}

type Reader = PacketReader<Box<dyn AsyncRead + Unpin + Send>>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// PRELOGIN and, when negotiated, the TLS handshake: the connection ready for LOGIN7.
/// `None` when the client left.
async fn open(
    stream: TcpStream,
    spid: u16,
    backend: Arc<dyn Backend>,
    tls: Option<&TlsSettings>,
) -> Result<Option<Conn>, String> {
    let mut reader = PacketReader::new(stream);
    let msg = match reader.next_message().await {
        Ok(Some(msg)) => msg,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("bad PRELOGIN: {e}")),
    };
    if msg.ty != packet::PRELOGIN {
        return Err(format!(
            "expected PRELOGIN, got packet type {:#04x}",
            msg.ty
        ));
    }
    let (reply, encryption) = negotiate(client_encryption(&msg.payload)?, tls);
    let (mut stream, early) = reader.into_parts();
    let wire = packet::frame(
        packet::REPLY,
        &prelogin_reply_with(reply),
        packet::DEFAULT_PACKET_SIZE,
        spid,
        true,
    );
    stream
        .write_all(&wire)
        .await
        .map_err(|e| format!("cannot write the PRELOGIN reply: {e}"))?;
    let server_name = backend.server_name();
    let conn = |reader: Reader, writer: Writer, pending_login| Conn {
        reader,
        writer,
        backend,
        session: Session {
            spid,
            login: String::new(),
            database: String::new(),
        },
        nocount: false,
        server_name,
        packet_size: packet::DEFAULT_PACKET_SIZE,
        logged_in: false,
        pending_login,
        prepared: std::collections::HashMap::new(),
        last_handle: 0,
        transaction: None,
        transactions_begun: 0,
    };
    let Some(tls) = tls.filter(|_| encryption != Encryption::None) else {
        let (read, write) = stream.into_split();
        let reader: Reader = PacketReader::from_parts(Box::new(read), early);
        return Ok(Some(conn(reader, Box::new(write), None)));
    };
    if !early.is_empty() {
        return Err("the client sent data before the TLS handshake".into());
    }
    let mut tls_stream = match tls.acceptor().accept(PreloginWrapped::new(stream)).await {
        Ok(s) => s,
        // A client that cannot or will not encrypt closes here (e.g. ENCRYPT_REQ to NOT_SUP).
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(format!("TLS handshake failed: {e}")),
    };
    tls_stream.get_mut().0.handshake_done();
    if encryption == Encryption::Full {
        let (read, write) = tokio::io::split(tls_stream);
        let reader: Reader = PacketReader::new(Box::new(read));
        return Ok(Some(conn(reader, Box::new(write), None)));
    }
    // ENCRYPT_OFF: LOGIN7 arrives over TLS, everything after it in plaintext.
    let mut login_reader = PacketReader::new(&mut tls_stream);
    let login = match login_reader.next_message().await {
        Ok(Some(msg)) => msg,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("bad LOGIN7: {e}")),
    };
    if !login_reader.into_parts().1.is_empty() {
        return Err("the client sent more than LOGIN7 before the login reply".into());
    }
    let stream = tls_stream.into_inner().0.into_inner();
    let (read, write) = stream.into_split();
    let reader: Reader = PacketReader::new(Box::new(read));
    Ok(Some(conn(reader, Box::new(write), Some(login))))
}

/// What became of a request handed to the backend.
enum Run {
    Replied(Vec<Reply>),
    /// An attention arrived first; it has been answered.
    Cancelled,
    ClientGone,
}

/// Whether the connection goes on after a request.
enum Flow {
    Continue,
    Close,
}

struct Conn {
    reader: Reader,
    writer: Writer,
    backend: Arc<dyn Backend>,
    session: Session,
    /// `@@SERVERNAME`, the server in ERROR and INFO tokens.
    server_name: String,
    /// `SET NOCOUNT ON` (the backend's `Reply::Counts` say when it changes).
    nocount: bool,
    packet_size: usize,
    logged_in: bool,
    /// LOGIN7 already read (over TLS, when only the login is encrypted).
    pending_login: Option<packet::Message>,
    /// Statements prepared on this connection (sp_prepare, sp_prepexec): declaration, text.
    prepared: std::collections::HashMap<i32, (String, String)>,
    last_handle: i32,
    /// Descriptor of the transaction begun by a transaction manager request.
    transaction: Option<[u8; 8]>,
    transactions_begun: u32,
}

impl Conn {
    async fn send(&mut self, tokens: &[u8], eom: bool) -> Result<(), String> {
        let wire = packet::frame(
            packet::REPLY,
            tokens,
            self.packet_size,
            self.session.spid,
            eom,
        );
        self.writer
            .write_all(&wire)
            .await
            .map_err(|e| format!("cannot write the reply: {e}"))?;
        // TLS holds records until flushed; a no-op on a plain socket.
        self.writer
            .flush()
            .await
            .map_err(|e| format!("cannot write the reply: {e}"))
    }

    /// Sends a reply packet by packet; between packets an attention stops it (returns true):
    /// the reply is cut at the next token start, closed with a DONE, and acknowledged in a
    /// message of its own. `marks` are the token starts (ascending).
    async fn stream(&mut self, tokens: &[u8], marks: &[usize], eom: bool) -> Result<bool, String> {
        let chunk = self.packet_size.clamp(512, packet::MAX_PACKET) - packet::HEADER_LEN;
        let mut sent = 0;
        while sent + chunk < tokens.len() {
            let wire = packet::frame(
                packet::REPLY,
                &tokens[sent..sent + chunk],
                self.packet_size,
                self.session.spid,
                false,
            );
            self.writer
                .write_all(&wire)
                .await
                .map_err(|e| format!("cannot write the reply: {e}"))?;
            sent += chunk;
            // A packet already waiting (without blocking): the client may have cancelled.
            let waiting = tokio::select! {
                biased;
                p = self.reader.next_packet() => Some(p),
                () = std::future::ready(()) => None,
            };
            match waiting {
                None => {}
                Some(Ok(Some(p))) if p.ty == packet::ATTENTION => {
                    tracing::debug!(spid = self.session.spid, sent, "attention: reply cut");
                    let cut = marks
                        .iter()
                        .copied()
                        .find(|&m| m >= sent)
                        .unwrap_or(tokens.len());
                    let mut rest = Tokens(tokens[sent..cut].to_vec());
                    if cut < tokens.len() {
                        rest.done(0, None);
                    }
                    self.send(&rest.0, true).await?;
                    self.send_done(DONE_ATTN).await?;
                    return Ok(true);
                }
                Some(Ok(Some(p))) => {
                    return Err(format!(
                        "client sent packet type {:#04x} while a reply was being sent",
                        p.ty
                    ));
                }
                Some(Ok(None)) => return Err("the client left during the reply".into()),
                Some(Err(e)) => return Err(format!("bad packet during the reply: {e}")),
            }
        }
        self.send(&tokens[sent..], eom).await?;
        Ok(false)
    }

    async fn next_message(&mut self, expected: &str) -> Result<Option<packet::Message>, String> {
        self.reader
            .next_message()
            .await
            .map_err(|e: FrameError| format!("bad {expected}: {e}"))
    }

    async fn run(&mut self) -> Result<(), String> {
        let msg = match self.pending_login.take() {
            Some(msg) => msg,
            None => match self.next_message("LOGIN7").await? {
                Some(msg) => msg,
                None => return Ok(()),
            },
        };
        if msg.ty != packet::LOGIN7 {
            return Err(format!("expected LOGIN7, got packet type {:#04x}", msg.ty));
        }
        if !self.login(&msg.payload).await? {
            return Ok(());
        }
        loop {
            let Some(msg) = self.next_message("request").await? else {
                return Ok(());
            };
            let flow = match msg.ty {
                packet::SQL_BATCH => self.execute(rpc::decode_batch(&msg.payload), None).await?,
                packet::RPC => self.rpc(rpc::decode_rpc(&msg.payload)).await?,
                packet::TRANSACTION => self.transaction(&msg.payload).await?,
                packet::ATTENTION => {
                    // The request already finished: acknowledge anyway so the client syncs.
                    self.send_done(DONE_ATTN).await?;
                    Flow::Continue
                }
                other => return Err(format!("unexpected packet type {other:#04x} after login")),
            };
            if let Flow::Close = flow {
                return Ok(());
            }
        }
    }

    /// Remembers the last `SET NOCOUNT` of a reply for the session's next requests.
    fn note_counts(&mut self, items: &[Reply]) {
        if let Some(on) = items.iter().rev().find_map(|i| match i {
            Reply::Counts(on) => Some(*on),
            _ => None,
        }) {
            self.nocount = !on;
        }
    }

    fn wire(&self, counts: bool) -> tokens::Wire<'_> {
        tokens::Wire {
            server: &self.server_name,
            counts,
        }
    }

    async fn send_done(&mut self, status: u16) -> Result<(), String> {
        let mut t = Tokens::default();
        t.done(status, None);
        self.send(&t.0, true).await
    }

    async fn send_error(&mut self, number: u32, class: u8, message: &str) -> Result<(), String> {
        let mut t = Tokens::default();
        t.error(&self.server_name, number, class, 1, message);
        t.done(DONE_ERROR, None);
        self.send(&t.0, true).await
    }

    /// Answers LOGIN7. Returns false when the login was refused (the caller closes).
    async fn login(&mut self, payload: &[u8]) -> Result<bool, String> {
        let login = parse_login7(payload)?;
        if login.integrated {
            self.send_error(
                18452,
                14,
                "Login failed. Integrated (Windows) authentication is not supported by the \
                 stand-in server; use SQL Server authentication.",
            )
            .await?;
            return Ok(false);
        }
        if let Err(reason) = self.backend.login(&login.user, &login.password) {
            tracing::info!(user = %login.user, "stand-in server refused a login");
            let message = if reason.is_empty() {
                format!("Login failed for user '{}'.", login.user)
            } else {
                reason
            };
            self.send_error(18456, 14, &message).await?;
            return Ok(false);
        }
        if !login.database.is_empty() && !self.backend.database_exists(&login.database) {
            tracing::info!(user = %login.user, database = %login.database, "login to a missing database");
            let mut t = Tokens::default();
            t.error(
                &self.server_name,
                4060,
                11,
                1,
                &format!(
                    "Cannot open database \"{}\" requested by the login. The login failed.",
                    login.database
                ),
            );
            t.error(
                &self.server_name,
                18456,
                14,
                1,
                &format!("Login failed for user '{}'.", login.user),
            );
            t.done(DONE_ERROR, None);
            self.send(&t.0, true).await?;
            return Ok(false);
        }
        self.packet_size = match login.packet_size {
            0 => packet::DEFAULT_PACKET_SIZE,
            n => (n as usize).clamp(512, 32_767),
        };
        self.session.login = login.user;
        self.session.database = if login.database.is_empty() {
            "master".to_string()
        } else {
            login.database
        };
        self.logged_in = true;
        let size = self.packet_size.to_string();
        let mut t = Tokens::default();
        t.env_string(1, &self.session.database, "master");
        t.env_bytes(7, &COLLATION, &[]);
        t.login_ack_version(&self.backend.product_version());
        t.env_string(4, &size, &size);
        t.done(0, None);
        // The login reply still goes out in default-size packets.
        let negotiated = std::mem::replace(&mut self.packet_size, packet::DEFAULT_PACKET_SIZE);
        let sent = self.send(&t.0, true).await;
        self.packet_size = negotiated;
        sent?;
        tracing::debug!(spid = self.session.spid, user = %self.session.login, "login accepted");
        Ok(true)
    }

    /// Runs a request on the backend while watching the socket for an attention.
    async fn run_backend(&mut self, request: Request) -> Result<Run, String> {
        let interrupt = {
            let reply = self.backend.execute(&mut self.session, request);
            tokio::select! {
                items = reply => return Ok(Run::Replied(items)),
                packet = self.reader.next_packet() => packet,
            }
        };
        match interrupt {
            Ok(Some(p)) if p.ty == packet::ATTENTION => {
                tracing::debug!(spid = self.session.spid, "attention: request cancelled");
                // The cancelled request's reply ends as its own message, then the
                // acknowledgement follows in another: clients such as tedious read them as two.
                self.send_done(0).await?;
                self.send_done(DONE_ATTN).await?;
                Ok(Run::Cancelled)
            }
            Ok(Some(p)) => Err(format!(
                "client sent packet type {:#04x} while a request was running",
                p.ty
            )),
            Ok(None) => Ok(Run::ClientGone),
            Err(e) => Err(format!("bad packet while a request was running: {e}")),
        }
    }

    /// An RPC: `sp_executesql` runs like a batch with parameters; prepared statements live
    /// per connection, as in SQL Server (handles from 1; error 8179 for an unknown one).
    async fn rpc(&mut self, call: Result<Rpc, DecodeError>) -> Result<Flow, String> {
        let call = match call {
            Ok(c) => c,
            Err(e) => return self.execute(Err(e), None).await,
        };
        match call {
            Rpc::ExecuteSql(request) => self.execute(Ok(request), None).await,
            Rpc::Prepare {
                decl,
                sql,
                values,
                execute,
            } => {
                self.last_handle = self.last_handle.wrapping_add(1).max(1);
                let handle = self.last_handle;
                self.prepared.insert(handle, (decl.clone(), sql.clone()));
                if execute {
                    let params = rpc::name_values(&decl, values);
                    self.execute(Ok(Request { sql, params }), Some(handle))
                        .await
                } else {
                    let mut t = Tokens::default();
                    t.proc_returns_handle(handle);
                    self.send(&t.0, true).await?;
                    Ok(Flow::Continue)
                }
            }
            Rpc::Execute { handle, values } => match self.prepared.get(&handle) {
                Some((decl, sql)) => {
                    let request = Request {
                        sql: sql.clone(),
                        params: rpc::name_values(decl, values),
                    };
                    self.execute(Ok(request), None).await
                }
                None => {
                    self.send_error(
                        8179,
                        16,
                        &format!("Could not find prepared statement with handle {handle}."),
                    )
                    .await?;
                    Ok(Flow::Continue)
                }
            },
            Rpc::Unprepare { handle } => {
                self.prepared.remove(&handle);
                self.send_done(0).await?;
                Ok(Flow::Continue)
            }
        }
    }

    async fn execute(
        &mut self,
        request: Result<Request, DecodeError>,
        returns_handle: Option<i32>,
    ) -> Result<Flow, String> {
        let request = match request {
            Ok(r) => r,
            Err(DecodeError::Malformed(m)) => return Err(m),
            Err(DecodeError::Unsupported { number, message }) => {
                self.send_error(number, 16, &message).await?;
                return Ok(Flow::Continue);
            }
        };
        tracing::debug!(
            spid = self.session.spid,
            sql_chars = request.sql.chars().count(),
            params = request.params.len(),
            "request"
        );
        let database = self.session.database.clone();
        let counts = !self.nocount;
        let items = match self.run_backend(request).await? {
            Run::Replied(items) => items,
            Run::Cancelled => return Ok(Flow::Continue),
            Run::ClientGone => return Ok(Flow::Close),
        };
        let (body, marks, disconnect) = tokens::encode_reply_marked(self.wire(counts), &items);
        self.note_counts(&items);
        drop(items);
        let mut t = Tokens::default();
        if self.session.database != database {
            t.env_string(1, &self.session.database, &database);
        }
        let prefix = t.0.len();
        t.0.extend(body);
        if let (Some(handle), false) = (returns_handle, disconnect) {
            t.proc_returns_handle(handle);
        }
        let marks: Vec<usize> = marks.into_iter().map(|m| m + prefix).collect();
        if self.stream(&t.0, &marks, !disconnect).await? {
            return Ok(Flow::Continue);
        }
        Ok(if disconnect {
            Flow::Close
        } else {
            Flow::Continue
        })
    }

    /// Transaction manager requests: the backend sees them as T-SQL; the client gets the
    /// ENVCHANGE that carries the transaction descriptor.
    async fn transaction(&mut self, payload: &[u8]) -> Result<Flow, String> {
        let tm = match rpc::decode_tm(payload) {
            Ok(tm) => tm,
            Err(e) => return self.execute(Err(e), None).await,
        };
        let (sql, env) = match (tm, self.transaction) {
            (TmRequest::Begin, _) => ("BEGIN TRANSACTION", 8),
            (TmRequest::Commit, Some(_)) => ("COMMIT TRANSACTION", 9),
            (TmRequest::Rollback, Some(_)) => ("ROLLBACK TRANSACTION", 10),
            (TmRequest::Save, Some(_)) => ("SAVE TRANSACTION", 0),
            (TmRequest::Commit | TmRequest::Rollback | TmRequest::Save, None) => {
                self.send_error(
                    3902,
                    16,
                    "The transaction request has no corresponding BEGIN TRANSACTION.",
                )
                .await?;
                return Ok(Flow::Continue);
            }
            (TmRequest::Other(n), _) => {
                self.send_error(
                    8016,
                    16,
                    &format!("Transaction manager request type {n} is not supported."),
                )
                .await?;
                return Ok(Flow::Continue);
            }
        };
        let request = Request {
            sql: sql.to_string(),
            params: Vec::new(),
        };
        let items = match self.run_backend(request).await? {
            Run::Replied(items) => items,
            Run::Cancelled => return Ok(Flow::Continue),
            Run::ClientGone => return Ok(Flow::Close),
        };
        if items
            .iter()
            .any(|i| matches!(i, Reply::Error { .. } | Reply::Disconnect))
        {
            let (body, disconnect) = tokens::encode_reply(self.wire(!self.nocount), &items);
            self.note_counts(&items);
            self.send(&body, !disconnect).await?;
            return Ok(if disconnect {
                Flow::Close
            } else {
                Flow::Continue
            });
        }
        let mut t = Tokens::default();
        match env {
            8 => {
                self.transactions_begun += 1;
                let mut desc = [0u8; 8];
                desc[..4].copy_from_slice(&self.transactions_begun.to_le_bytes());
                desc[4..6].copy_from_slice(&self.session.spid.to_le_bytes());
                self.transaction = Some(desc);
                t.env_bytes(8, &desc, &[]);
            }
            9 | 10 => {
                let old = self.transaction.take().unwrap_or_default();
                t.env_bytes(env, &[], &old);
            }
            _ => {}
        }
        t.done(0, None);
        self.send(&t.0, true).await?;
        Ok(Flow::Continue)
    }
}
