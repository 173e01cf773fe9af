//! A TDS 7.4 server (the wire protocol of SQL Server) that answers from any
//! [`Backend`](crate::backend::Backend), for drills and tests without a real SQL Server.
//!
//! Without TLS settings PRELOGIN says encryption is not supported (tiberius clients must set
//! `EncryptionLevel::NotSupported`); with them ([`TdsServer::bind_tls`]) encryption is
//! negotiated as SQL Server does (see [`tls`]). SQL Server authentication only.

// The codec pieces are public so tests can play a misbehaving server (endless results,
// cut packets) with the same encoding.
pub mod login;
pub mod packet;
pub mod rpc;
mod server;
pub mod tls;
pub mod tokens;

pub use server::TdsServer;

/// Runs every decoder of client messages on `payload` (LOGIN7, SQL batch, RPC, transaction
/// manager requests): the fuzz targets' entry (`fuzz/`). Decoders return errors, never panic.
#[doc(hidden)]
pub fn decode_all_for_fuzzing(payload: &[u8]) {
    let _ = login::parse_login7(payload);
    let _ = rpc::decode_batch(payload);
    let _ = rpc::decode_rpc(payload);
    let _ = rpc::decode_tm(payload);
}
