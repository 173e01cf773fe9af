//! The failure guide (`assets/failures.toml`): what failed → which runbooks and sections, in
//! the order Microsoft's "Backing Up and Restoring BizTalk Server" gives. Used by
//! `btsdr recover` and by the home screen's "Something failed?" entries.

use std::sync::Arc;

use serde::Deserialize;

use crate::runbook::library::Library;

/// The whole guide file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Failures {
    pub failures: Vec<Failure>,
}

/// One failure class, as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    pub id: String,
    pub label: String,
    pub description: String,
    pub reference: String,
    pub go: Vec<Go>,
}

/// One part of a failure's plan: a runbook and the sections of it to run, in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Go {
    pub runbook: String,
    pub sections: Vec<String>,
    #[serde(default)]
    pub note: String,
}

/// The guide embedded in this build. The error is a whole sentence for the operator.
pub fn embedded() -> Result<Vec<Failure>, String> {
    let Some(text) = crate::embedded::asset("failures.toml") else {
        return Err("this build has no failure guide (assets/failures.toml)".into());
    };
    toml::from_str::<Failures>(text)
        .map(|f| f.failures)
        .map_err(|e| format!("embedded assets/failures.toml is invalid: {}", e.message()))
}

/// A failure class with its runbooks and sections looked up in a library.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub id: String,
    pub label: String,
    pub description: String,
    pub reference: String,
    pub parts: Vec<PlanPart>,
}

/// One runbook of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanPart {
    pub runbook: String,
    /// Empty when the library has no such runbook (the part cannot be started).
    pub runbook_title: String,
    pub sections: Vec<PlanSection>,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanSection {
    pub id: String,
    /// The section's title, or its id when the runbook does not have it.
    pub title: String,
    pub steps: usize,
    /// The runbook has no section with this id.
    pub missing: bool,
}

impl PlanPart {
    /// The runbook exists, so the part can be started.
    pub fn startable(&self) -> bool {
        !self.runbook_title.is_empty()
    }
}

impl Plan {
    /// Looks the plan's runbooks and sections up in `lib`; unknown ones are kept and marked.
    pub(crate) fn resolve(f: &Failure, lib: &Library) -> Plan {
        let parts =
            f.go.iter()
                .map(|g| {
                    let rb = lib.get(&g.runbook);
                    let sections = g
                        .sections
                        .iter()
                        .map(|sid| {
                            match rb
                                .as_ref()
                                .and_then(|rb| rb.sections.iter().find(|s| &s.id == sid))
                            {
                                Some(s) => PlanSection {
                                    id: sid.clone(),
                                    title: s.title.clone(),
                                    steps: s.steps.len(),
                                    missing: false,
                                },
                                None => PlanSection {
                                    id: sid.clone(),
                                    title: sid.clone(),
                                    steps: 0,
                                    missing: true,
                                },
                            }
                        })
                        .collect();
                    PlanPart {
                        runbook: g.runbook.clone(),
                        runbook_title: rb.map(|r| r.title.clone()).unwrap_or_default(),
                        sections,
                        note: g.note.trim().to_string(),
                    }
                })
                .collect();
        Plan {
            id: f.id.clone(),
            label: f.label.clone(),
            description: f.description.trim().to_string(),
            reference: f.reference.clone(),
            parts,
        }
    }

    /// Every failure class of the embedded guide, resolved against `lib`.
    pub fn all(lib: &Library) -> Result<Vec<Arc<Plan>>, String> {
        Ok(embedded()?
            .iter()
            .map(|f| Arc::new(Plan::resolve(f, lib)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_guide_resolves_against_the_shipped_runbooks() {
        let lib = Library::load(None).expect("embedded runbooks load");
        let plans = Plan::all(&lib).expect("guide parses");
        let ids: Vec<&str> = plans.iter().map(|p| p.id.as_str()).collect();
        // The documented order: BizTalk computer, SQL Server computer, both, the whole site.
        assert_eq!(
            ids,
            ["biztalk-computer", "sql-computer", "same-computer", "site"]
        );
        for p in &plans {
            assert!(!p.parts.is_empty(), "{} has no plan", p.id);
            for part in &p.parts {
                assert!(
                    part.startable(),
                    "{}: unknown runbook {}",
                    p.id,
                    part.runbook
                );
                for s in &part.sections {
                    assert!(
                        !s.missing,
                        "{}: {} has no section {}",
                        p.id, part.runbook, s.id
                    );
                }
            }
        }
        let sql = &plans[1];
        assert_eq!(sql.parts[0].runbook, "restore");
        assert_eq!(sql.parts[0].sections[0].id, "db");
        assert_eq!(sql.parts[1].runbook, "backup");
    }

    #[test]
    fn unknown_runbooks_and_sections_are_marked_not_dropped() {
        let lib = Library::load(None).expect("embedded runbooks load");
        let f = Failure {
            id: "x".into(),
            label: "X".into(),
            description: " d ".into(),
            reference: String::new(),
            go: vec![
                Go {
                    runbook: "restore".into(),
                    sections: vec!["db".into(), "nope".into()],
                    note: String::new(),
                },
                Go {
                    runbook: "no-such-runbook".into(),
                    sections: vec!["a".into()],
                    note: "n".into(),
                },
            ],
        };
        let p = Plan::resolve(&f, &lib);
        assert_eq!(p.description, "d");
        assert!(!p.parts[0].sections[0].missing);
        assert!(p.parts[0].sections[1].missing);
        assert!(!p.parts[1].startable());
    }
}
