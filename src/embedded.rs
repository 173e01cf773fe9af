//! Files compiled into the binary (see build.rs): runbooks and assets, by relative path.

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// An embedded asset by relative path (`checklists.toml`, `failures.toml`).
pub fn asset(name: &str) -> Option<&'static str> {
    ASSETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}
