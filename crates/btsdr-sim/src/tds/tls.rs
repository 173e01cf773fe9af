//! TLS as SQL Server does it for TDS 7.x (MS-TDS 2.2.6.5, 3.2.5.2): PRELOGIN negotiates
//! ENCRYPTION; the TLS handshake then travels inside PRELOGIN packets (type 0x12); after it,
//! TLS records go bare on the socket, carrying TDS packets. With ENCRYPT_OFF on both sides only
//! LOGIN7 is encrypted. TLS 1.2 only: SQL Server offers TLS 1.3 only with TDS 8.0 (strict).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::packet::{self, HEADER_LEN};

/// PRELOGIN ENCRYPTION values (MS-TDS 2.2.6.5).
pub const ENCRYPT_OFF: u8 = 0x00;
pub const ENCRYPT_ON: u8 = 0x01;
pub const ENCRYPT_NOT_SUP: u8 = 0x02;
pub const ENCRYPT_REQ: u8 = 0x03;

/// A certificate authority made for one run and the server certificate it signed
/// (names `localhost`, `127.0.0.1`, `::1`). Clients trust `ca_pem`.
pub struct SimCertificate {
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl std::fmt::Debug for SimCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCertificate").finish_non_exhaustive()
    }
}

impl SimCertificate {
    /// A fresh CA and server certificate (ECDSA P-256).
    pub fn generate() -> Result<SimCertificate, String> {
        let err = |e: rcgen::Error| format!("cannot generate the simulator's certificate: {e}");
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "btsdr simulator CA (one run)");
        ca.distinguished_name = dn;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca =
            CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(err)?).map_err(err)?;

        let names = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        let mut leaf = CertificateParams::new(names).map_err(err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "localhost");
        leaf.distinguished_name = dn;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(err)?;
        let cert = leaf.signed_by(&key, &ca).map_err(err)?;
        Ok(SimCertificate {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        })
    }
}

/// How a TLS-capable server answers PRELOGIN.
#[derive(Clone)]
pub struct TlsSettings {
    acceptor: TlsAcceptor,
    /// "Force Encryption" of SQL Server Configuration Manager: every session encrypted.
    pub force_encryption: bool,
}

impl TlsSettings {
    pub fn new(cert: &SimCertificate, force_encryption: bool) -> Result<TlsSettings, String> {
        // ring, not aws-lc-rs (which needs cmake); its post-quantum key exchange is TLS 1.3 only.
        #[expect(
            deprecated,
            reason = "ring has no post-quantum groups; TDS 7.x is TLS 1.2"
        )]
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&tokio_rustls::rustls::version::TLS12])
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.cert_der.clone(), cert.ca_der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone())),
            )
            .map_err(|e| format!("cannot set up TLS with the generated certificate: {e}"))?;
        config.send_tls13_tickets = 0;
        Ok(TlsSettings {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            force_encryption,
        })
    }

    pub(super) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

/// What the session does after PRELOGIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    None,
    LoginOnly,
    Full,
}

/// The server's ENCRYPTION answer to the client's, and what follows (MS-TDS 2.2.6.5 table).
/// `tls` is `None` for a server without a certificate. A client asking for encryption from
/// such a server gets ENCRYPT_NOT_SUP and ends the connection itself.
pub fn negotiate(client: u8, tls: Option<&TlsSettings>) -> (u8, Encryption) {
    // The high bit (ENCRYPT_CLIENT_CERT) only adds certificate authentication.
    let client = client & 0x0F;
    match tls {
        None => (ENCRYPT_NOT_SUP, Encryption::None),
        Some(t) => match (client, t.force_encryption) {
            (ENCRYPT_NOT_SUP, false) => (ENCRYPT_NOT_SUP, Encryption::None),
            (ENCRYPT_OFF, false) => (ENCRYPT_OFF, Encryption::LoginOnly),
            (ENCRYPT_OFF, true) => (ENCRYPT_REQ, Encryption::Full),
            // A client that cannot encrypt meets a server that requires it: the client quits.
            (ENCRYPT_NOT_SUP, true) => (ENCRYPT_REQ, Encryption::Full),
            _ => (ENCRYPT_ON, Encryption::Full),
        },
    }
}

/// The socket as the TLS layer sees it: while `wrapping`, what TLS writes leaves in PRELOGIN
/// packets (one per flush) and what it reads is the payload of the client's PRELOGIN packets;
/// afterwards bytes pass through. Reads never go past the current packet, so nothing after the
/// handshake is consumed while wrapping.
pub struct PreloginWrapped<S> {
    inner: S,
    wrapping: bool,
    header: [u8; HEADER_LEN],
    header_len: usize,
    remaining: usize,
    out: Vec<u8>,
    framed: Vec<u8>,
    framed_pos: usize,
}

impl<S> PreloginWrapped<S> {
    pub fn new(inner: S) -> Self {
        PreloginWrapped {
            inner,
            wrapping: true,
            header: [0; HEADER_LEN],
            header_len: 0,
            remaining: 0,
            out: Vec::new(),
            framed: Vec::new(),
            framed_pos: 0,
        }
    }

    /// The handshake is over: TLS records now go bare.
    pub fn handshake_done(&mut self) {
        self.wrapping = false;
    }

    pub fn into_inner(self) -> S {
        self.inner
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl<S: AsyncRead + Unpin> AsyncRead for PreloginWrapped<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.wrapping {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        while this.remaining == 0 {
            let mut head = ReadBuf::new(&mut this.header[this.header_len..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut head))?;
            let n = head.filled().len();
            if n == 0 {
                if this.header_len == 0 {
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            this.header_len += n;
            if this.header_len < HEADER_LEN {
                continue;
            }
            this.header_len = 0;
            if this.header[0] != packet::PRELOGIN {
                return Poll::Ready(Err(invalid(format!(
                    "expected the TLS handshake in a PRELOGIN packet, got packet type {:#04x}",
                    this.header[0]
                ))));
            }
            let len = usize::from(u16::from_be_bytes([this.header[2], this.header[3]]));
            if !(HEADER_LEN..=packet::MAX_PACKET).contains(&len) {
                return Poll::Ready(Err(invalid(format!(
                    "PRELOGIN packet length {len} is outside {HEADER_LEN}..={}",
                    packet::MAX_PACKET
                ))));
            }
            this.remaining = len - HEADER_LEN;
        }
        let max = this.remaining.min(buf.remaining());
        let mut part = ReadBuf::new(buf.initialize_unfilled_to(max));
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut part))?;
        let n = part.filled().len();
        if n == 0 && max > 0 {
            return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
        }
        buf.advance(n);
        this.remaining -= n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PreloginWrapped<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.wrapping {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        this.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.framed_pos == this.framed.len() && !this.out.is_empty() {
            this.framed = packet::frame(
                packet::PRELOGIN,
                &this.out,
                packet::DEFAULT_PACKET_SIZE,
                0,
                true,
            );
            this.framed_pos = 0;
            this.out.clear();
        }
        while this.framed_pos < this.framed.len() {
            let n =
                ready!(Pin::new(&mut this.inner).poll_write(cx, &this.framed[this.framed_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.framed_pos += n;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_the_ms_tds_table() {
        let cert = SimCertificate::generate().unwrap();
        let optional = TlsSettings::new(&cert, false).unwrap();
        let forced = TlsSettings::new(&cert, true).unwrap();
        let none = (ENCRYPT_NOT_SUP, Encryption::None);
        assert_eq!(negotiate(ENCRYPT_ON, None), none);
        assert_eq!(negotiate(ENCRYPT_NOT_SUP, Some(&optional)), none);
        assert_eq!(
            negotiate(ENCRYPT_OFF, Some(&optional)),
            (ENCRYPT_OFF, Encryption::LoginOnly)
        );
        assert_eq!(
            negotiate(ENCRYPT_REQ, Some(&optional)),
            (ENCRYPT_ON, Encryption::Full)
        );
        assert_eq!(
            negotiate(ENCRYPT_OFF, Some(&forced)),
            (ENCRYPT_REQ, Encryption::Full)
        );
        assert_eq!(
            negotiate(ENCRYPT_ON | 0x80, Some(&forced)),
            (ENCRYPT_ON, Encryption::Full)
        );
    }
}
