//! A TDS 7.4 server (the wire protocol of SQL Server) that answers from any
//! [`Backend`](crate::backend::Backend), for drills and tests without a real SQL Server.
//!
//! Plaintext only (PRELOGIN says encryption is not supported): tiberius clients must set
//! `EncryptionLevel::NotSupported` and use SQL Server authentication.

mod login;
mod packet;
mod rpc;
mod server;
mod tokens;

pub use server::TdsServer;
