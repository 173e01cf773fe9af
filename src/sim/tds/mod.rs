//! A TDS 7.4 server (the wire protocol of SQL Server) that answers from any
//! [`Backend`](crate::sim::backend::Backend), for drills and tests without a real SQL Server.
//!
//! Plaintext only (PRELOGIN says encryption is not supported): tiberius clients must set
//! `EncryptionLevel::NotSupported` and use SQL Server authentication.

// The codec pieces are public so tests can play a misbehaving server (endless results,
// cut packets) with the same encoding.
pub mod login;
pub mod packet;
pub mod rpc;
mod server;
pub mod tokens;

pub use server::TdsServer;
