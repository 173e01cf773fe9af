//! `btsdr show`: a runbook as a printable Markdown checklist.

use std::fmt::Write as _;

use super::model::{Runbook, StepBody};

pub fn markdown(rb: &Runbook) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# {} (v{})\n\n{}\n",
        rb.title,
        rb.version,
        rb.summary.trim()
    );
    for c in &rb.checklist {
        let _ = writeln!(o, "Implements: [{}]({})", c.title, c.url);
    }
    let _ = writeln!(
        o,
        "\nRunbook `{}`, content SHA-256 `{}`.\n",
        rb.id,
        &rb.content_hash[..16.min(rb.content_hash.len())]
    );
    if !rb.variables.is_empty() {
        let _ = writeln!(o, "## Inputs\n\n| Name | What | Default |\n|---|---|---|");
        for v in &rb.variables {
            let _ = writeln!(
                o,
                "| `{}` | {} | {} |",
                v.name,
                v.label,
                v.default.as_deref().unwrap_or("")
            );
        }
        o.push('\n');
    }
    let mut n = 0;
    for sec in &rb.sections {
        let _ = writeln!(o, "## {}\n", sec.title);
        if let Some(w) = &sec.when {
            let _ = writeln!(o, "_Only when: `{w}`_\n");
        }
        if !sec.summary.trim().is_empty() {
            let _ = writeln!(o, "{}\n", sec.summary.trim());
        }
        for st in &sec.steps {
            n += 1;
            let kind = match &st.body {
                StepBody::Manual(_) => "manual",
                StepBody::Sql(s) if s.destructive => "SQL, changes state",
                StepBody::Sql(_) => "SQL",
                StepBody::Check(_) => "check",
                StepBody::Generate(_) => "generate",
            };
            let _ = writeln!(o, "- [ ] **{n}. {}** ({kind}) `{}`", st.title, st.id);
            let _ = writeln!(o, "  {}", st.why.trim());
            if let Some(w) = &st.when {
                let _ = writeln!(o, "  _Only when: `{w}`_");
            }
            if !st.after.is_empty() {
                let _ = writeln!(o, "  After: {}", st.after.join(", "));
            }
            match &st.body {
                StepBody::Manual(m) => {
                    let _ = writeln!(o, "  On: {}", m.run_on);
                    for line in m.instructions.trim().lines() {
                        let _ = writeln!(o, "  > {line}");
                    }
                    for c in &m.commands {
                        let shell = if c.shell.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", c.shell)
                        };
                        let _ = writeln!(o, "  ```\n  {}\n  ```{shell}", c.run);
                    }
                    if !m.evidence.is_empty() {
                        let _ = writeln!(o, "  Record: {}", m.evidence);
                    }
                }
                StepBody::Sql(s) => {
                    let _ = writeln!(o, "  On the {} server, database {}:", s.server, s.database);
                    let _ = writeln!(o, "  ```sql\n{}\n  ```", indent(&s.sql));
                }
                StepBody::Check(c) => {
                    let _ = writeln!(o, "  On the {} server, database {}:", c.server, c.database);
                    let _ = writeln!(o, "  ```sql\n{}\n  ```", indent(&c.sql));
                    for a in &c.asserts {
                        let _ = writeln!(o, "  Expect `{}`: otherwise {}", a.source, a.message);
                    }
                }
                StepBody::Generate(g) => {
                    let _ = writeln!(o, "  Writes `{}`. {}", g.output, g.instructions.trim());
                }
            }
            if !st.covers.is_empty() {
                let _ = writeln!(o, "  Covers: {}", st.covers.join(", "));
            }
            for r in &st.references {
                let _ = writeln!(o, "  See: <{r}>");
            }
            o.push('\n');
        }
    }
    o
}

fn indent(s: &str) -> String {
    s.trim()
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
