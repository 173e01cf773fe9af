//! The built-in simulated BizTalk SQL Server: a TDS server (`tds`) in front of a model of a
//! BizTalk group's SQL side (`model`), driven by scenarios from `assets/scenarios/`.

pub mod backend;
pub mod drill;
pub mod model;
pub mod replay;
pub mod scenario;
pub mod tds;
