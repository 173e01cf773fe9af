//! Runbooks as data: the file format (`raw`), the validated model, the expression and
//! template languages, and the loader that checks everything with file:line:col diagnostics.

pub mod expr;
pub mod model;
pub mod raw;
