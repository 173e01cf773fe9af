//! Variable values for a session, in runbook order, with secrets kept out of everything
//! persisted or shown.

use serde::Serialize;

use crate::engine::events::{NamedValue, REDACTED};
use crate::runbook::expr::truthy;
use crate::runbook::model::{Runbook, VarKind, Variable};
use btsdr_types::Param;

/// One variable's value. `Debug` shows secrets as `******`.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct VarValue {
    pub name: String,
    pub kind: VarKind,
    /// `None`: not set yet.
    #[serde(skip_serializing)]
    pub value: Option<String>,
}

impl std::fmt::Debug for VarValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = match &self.value {
            Some(_) if self.is_secret() => Some(REDACTED),
            v => v.as_deref(),
        };
        f.debug_struct("VarValue")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("value", &value)
            .finish()
    }
}

impl VarValue {
    pub fn is_secret(&self) -> bool {
        self.kind == VarKind::Secret
    }
}

/// An ordered map name -> value that knows which values are secret.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Variables {
    entries: Vec<VarValue>,
}

impl Variables {
    pub fn new() -> Variables {
        Variables::default()
    }

    /// Every runbook variable, set to its default when it has one.
    pub fn from_runbook(runbook: &Runbook) -> Variables {
        let mut v = Variables::new();
        for var in &runbook.variables {
            v.declare(&var.name, var.kind, var.default.clone());
        }
        v
    }

    /// Adds a variable (or changes its kind and value if it exists).
    pub fn declare(&mut self, name: &str, kind: VarKind, value: Option<String>) {
        match self.entries.iter_mut().find(|e| e.name == name) {
            Some(e) => {
                e.kind = kind;
                e.value = value;
            }
            None => self.entries.push(VarValue {
                name: name.to_string(),
                kind,
                value,
            }),
        }
    }

    /// Sets a value; an unknown name is added as text. Returns false if the name was unknown.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> bool {
        let value = value.into();
        match self.entries.iter_mut().find(|e| e.name == name) {
            Some(e) => {
                e.value = Some(value);
                true
            }
            None => {
                self.entries.push(VarValue {
                    name: name.to_string(),
                    kind: VarKind::Text,
                    value: Some(value),
                });
                false
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.as_deref())
    }

    pub fn entry(&self, name: &str) -> Option<&VarValue> {
        self.entries.iter().find(|e| e.name == name)
    }

    pub fn is_secret(&self, name: &str) -> bool {
        self.entry(name).is_some_and(VarValue::is_secret)
    }

    pub fn iter(&self) -> impl Iterator<Item = &VarValue> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value as shown on screen: `******` for a set secret, empty when unset.
    pub fn display(&self, name: &str) -> String {
        match self.entry(name) {
            Some(e) if e.is_secret() && e.value.is_some() => REDACTED.to_string(),
            Some(e) => e.value.clone().unwrap_or_default(),
            None => String::new(),
        }
    }

    /// All values with secrets redacted (what the journal records).
    pub fn redacted(&self) -> Vec<NamedValue> {
        self.entries
            .iter()
            .map(|e| NamedValue {
                name: e.name.clone(),
                value: self.display(&e.name),
            })
            .collect()
    }

    /// Replaces every occurrence of a secret value in `text` by `******`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for e in self.entries.iter().filter(|e| e.is_secret()) {
            if let Some(v) = e.value.as_deref().filter(|v| !v.is_empty()) {
                out = out.replace(v, REDACTED);
            }
        }
        out
    }

    /// True when `text` contains a secret value.
    pub fn contains_secret(&self, text: &str) -> bool {
        self.entries
            .iter()
            .filter(|e| e.is_secret())
            .filter_map(|e| e.value.as_deref())
            .any(|v| !v.is_empty() && text.contains(v))
    }

    /// Names of secret variables without a value (to ask for after resuming a session).
    pub fn missing_secrets(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| e.is_secret() && e.value.as_deref().is_none_or(str::is_empty))
            .map(|e| e.name.clone())
            .collect()
    }

    /// The value bound as a SQL parameter, typed by the variable's kind.
    pub fn param(&self, name: &str) -> Result<Param, String> {
        let e = self.entry(name).ok_or_else(|| {
            format!("the statement uses variable `{name}`, which the runbook does not declare")
        })?;
        let v = e
            .value
            .as_deref()
            .ok_or_else(|| format!("variable `{name}` has no value: set it first"))?;
        Ok(match e.kind {
            VarKind::Number => Param::Int(v.trim().parse().map_err(|_| {
                format!(
                    "variable `{name}` must be a whole number, not `{}`",
                    self.display(name)
                )
            })?),
            VarKind::Bool => Param::Bool(truthy(v)),
            _ => Param::Text(v.to_string()),
        })
    }
}

/// Checks a value against the variable's rules (required, kind, choices, length, pattern).
/// The rules live in the loader (one source of truth); this adds the variable's label.
pub fn validate_value(var: &Variable, value: &str) -> Result<(), String> {
    let label = if var.label.is_empty() {
        var.name.as_str()
    } else {
        var.label.as_str()
    };
    crate::runbook::loader::validate_value(var, value).map_err(|m| {
        if m.starts_with(label) {
            m
        } else {
            format!("{label}: {m}")
        }
    })
}
