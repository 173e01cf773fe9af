//! Runbooks as data: the file format (`raw`), the validated model, the expression and
//! template languages, and the loader that checks everything with file:line:col diagnostics.

pub mod checklists;
pub mod diag;
pub mod expr;
pub mod library;
pub mod loader;
pub mod model;
pub mod print;
pub mod raw;
pub mod readonly;
