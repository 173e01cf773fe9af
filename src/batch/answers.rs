//! Variable values for batch runs: runbook defaults, then what the target knows, then the
//! answers file, then `--set NAME=VALUE` (later wins). Every given value is validated.
//!
//! Answers file (TOML):
//! ```toml
//! backup_path = '\\backupsrv\biztalk'
//! log_interval_minutes = 15
//! use_log_shipping = false
//!
//! [skip]                     # optional: steps the batch skips, with the reason journaled
//! "prep.change-record" = "recorded in change ticket CHG-1234"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use crate::engine::{Variables, validate_value};
use crate::runbook::model::Runbook;

/// A parsed answers file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answers {
    /// Variable name -> value as text (bools as `true`/`false`).
    pub values: BTreeMap<String, String>,
    /// Step id -> reason: steps the batch skips when it reaches them.
    pub skip: BTreeMap<String, String>,
}

impl Answers {
    /// Reads and parses an answers file.
    pub fn load(path: &Path) -> Result<Answers, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the answers file {}: {e}", path.display()))?;
        Answers::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses answers text: `name = value` pairs and an optional `[skip]` table.
    pub fn parse(text: &str) -> Result<Answers, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}: ")
                })
                .unwrap_or_default();
            format!("{at}{} (expected `name = value` lines)", e.message())
        })?;
        let mut a = Answers::default();
        for (k, v) in table {
            if k == "skip" {
                let toml::Value::Table(t) = v else {
                    return Err(
                        "`skip` must be a table: [skip] then \"step.id\" = \"reason\"".into(),
                    );
                };
                for (step, reason) in t {
                    match reason {
                        toml::Value::String(r) if !r.trim().is_empty() => {
                            a.skip.insert(step, r);
                        }
                        _ => {
                            return Err(format!(
                                "[skip] `{step}` needs a reason as a non-empty string (it goes into the journal)"
                            ));
                        }
                    }
                }
                continue;
            }
            let text = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "`{k}` must be a string, number or true/false, not a {}",
                        other.type_str()
                    ));
                }
            };
            a.values.insert(k, text);
        }
        Ok(a)
    }
}

/// Splits `NAME=VALUE` (the value may contain `=`).
pub(crate) fn parse_set(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, v)) if !n.trim().is_empty() => Ok((n.trim().to_string(), v.to_string())),
        _ => Err(format!("--set `{s}`: write it as NAME=VALUE")),
    }
}

/// Builds and validates the session's variables. `target_defaults` fill variables that have
/// no value yet (only names the runbook declares). Unknown names and invalid values are
/// errors naming the variable and where the value came from.
pub fn resolve_variables(
    runbook: &Runbook,
    answers: &Answers,
    sets: &[(String, String)],
    target_defaults: &[(String, String)],
) -> Result<Variables, String> {
    let mut vars = Variables::from_runbook(runbook);
    for (name, value) in target_defaults {
        if let Some(v) = runbook.variable(name)
            && vars.get(name).is_none()
            && validate_value(v, value).is_ok()
        {
            vars.declare(name, v.kind, Some(value.clone()));
        }
    }
    let known = || {
        runbook
            .variables
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut errors = Vec::new();
    let given = answers
        .values
        .iter()
        .map(|(n, v)| (n, v, "the answers file"))
        .chain(sets.iter().map(|(n, v)| (n, v, "--set")));
    for (name, value, from) in given {
        match runbook.variable(name) {
            None => errors.push(format!(
                "{from}: runbook `{}` has no variable `{name}` (it has: {})",
                runbook.id,
                known()
            )),
            Some(var) => match validate_value(var, value) {
                Ok(()) => vars.declare(name, var.kind, Some(value.clone())),
                Err(e) => errors.push(format!("{from}: `{name}`: {e}")),
            },
        }
    }
    for step in answers.skip.keys() {
        if runbook.step(step).is_none() {
            errors.push(format!(
                "the answers file's [skip] names step `{step}`, which runbook `{}` does not have",
                runbook.id
            ));
        }
    }
    if errors.is_empty() {
        Ok(vars)
    } else {
        Err(errors.join("\n"))
    }
}

/// Required variables still without a valid value, as one message (None when all are set).
pub fn missing(runbook: &Runbook, vars: &Variables, only: Option<&[&str]>) -> Option<String> {
    let bad: Vec<(&str, String)> = runbook
        .variables
        .iter()
        .filter(|v| only.is_none_or(|o| o.contains(&v.name.as_str())))
        .filter_map(|v| {
            validate_value(v, vars.get(&v.name).unwrap_or(""))
                .err()
                .map(|e| (v.name.as_str(), format!("  {}: {e}", v.name)))
        })
        .collect();
    (!bad.is_empty()).then(|| {
        let problems: Vec<&str> = bad.iter().map(|(_, p)| p.as_str()).collect();
        let sets: Vec<String> = bad
            .iter()
            .map(|(n, _)| format!("--set {n}=VALUE"))
            .collect();
        format!(
            "these variables of runbook `{}` need a value:\n{}\nGive them on the command line ({}) or in --answers FILE.",
            runbook.id,
            problems.join("\n"),
            sets.join(" ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fixture::sample_runbook;

    #[test]
    fn parses_values_and_skip() {
        let a = Answers::parse("db = 'X'\nhours = 3\nuse_bam = true\n[skip]\n\"a.b\" = \"why\"\n")
            .unwrap();
        assert_eq!(a.values["db"], "X");
        assert_eq!(a.values["hours"], "3");
        assert_eq!(a.values["use_bam"], "true");
        assert_eq!(a.skip["a.b"], "why");
        assert!(Answers::parse("x = [1]").unwrap_err().contains("`x`"));
        assert!(
            Answers::parse("[skip]\nx = ''")
                .unwrap_err()
                .contains("reason")
        );
        assert!(Answers::parse("x = ").unwrap_err().contains("line 1"));
    }

    #[test]
    fn unknown_and_invalid_values_are_errors() {
        let rb = sample_runbook();
        let a = Answers::parse("nope = 1").unwrap();
        let e = resolve_variables(&rb, &a, &[], &[]).unwrap_err();
        assert!(e.contains("no variable `nope`"), "{e}");
        let e = resolve_variables(
            &rb,
            &Answers::default(),
            &[("hours".into(), "abc".into())],
            &[],
        )
        .unwrap_err();
        assert!(e.contains("--set") && e.contains("hours"), "{e}");
        assert_eq!(parse_set("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_set("=x").is_err());
    }

    #[test]
    fn set_overrides_answers() {
        let rb = sample_runbook();
        let a = Answers::parse("db = 'One'").unwrap();
        let v = resolve_variables(&rb, &a, &[("db".into(), "Two".into())], &[]).unwrap();
        assert_eq!(v.get("db"), Some("Two"));
    }
}
