//! `btsdr show`: a runbook as a printable Markdown checklist, with its `{{...}}` placeholders
//! as written, or filled for one environment or drill (a blank where no value is known).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::expr::{Part, parse_template, quote_ident};
use super::model::{Runbook, StepBody};
use super::raw::VarKind;

/// What a placeholder without a value prints as: a line to write on.
pub(crate) const BLANK: &str = "________";

/// The checklist with placeholders as written (`{{mgmt_db}}`).
pub fn markdown(rb: &Runbook) -> String {
    render(rb, None, "")
}

/// The checklist with every placeholder filled from `values`; one without a value (or a
/// secret, never printed) becomes a visible blank naming the variable. `note` says what the
/// values are for (printed under the title).
pub(crate) fn markdown_filled(
    rb: &Runbook,
    values: &BTreeMap<String, String>,
    note: &str,
) -> String {
    render(rb, Some(values), note)
}

/// `src` with its placeholders filled; unchanged when there are no values or it does not parse.
fn fill(rb: &Runbook, values: Option<&BTreeMap<String, String>>, src: &str) -> String {
    let Some(values) = values else {
        return src.to_string();
    };
    let Ok(parts) = parse_template(src) else {
        return src.to_string();
    };
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Lit(s) => out.push_str(&s),
            Part::Var(v) | Part::Ident(v) if is_secret(rb, &v) => {
                let _ = write!(out, "{BLANK} ({v}, secret: not printed)");
            }
            Part::Var(v) => match values.get(&v).filter(|x| !x.is_empty()) {
                Some(x) => out.push_str(x),
                None => {
                    let _ = write!(out, "{BLANK} ({v})");
                }
            },
            Part::Ident(v) => match values.get(&v).filter(|x| !x.is_empty()) {
                Some(x) => out.push_str(&quote_ident(x)),
                None => {
                    let _ = write!(out, "{BLANK} ({v})");
                }
            },
            Part::Each(step, _) => {
                let _ = write!(out, "[the rows of step {step}]");
            }
        }
    }
    out
}

fn is_secret(rb: &Runbook, name: &str) -> bool {
    rb.variable(name).is_some_and(|v| v.kind == VarKind::Secret)
}

// TODO(issue 16): split (header, variables, one function per step kind).
#[allow(clippy::too_many_lines)]
fn render(rb: &Runbook, values: Option<&BTreeMap<String, String>>, note: &str) -> String {
    let f = |s: &str| fill(rb, values, s);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# {} (v{})\n\n{}\n",
        rb.title,
        rb.version,
        f(rb.summary.trim())
    );
    for c in &rb.checklist {
        let _ = writeln!(o, "Implements: [{}]({})", c.title, c.url);
    }
    let _ = writeln!(
        o,
        "\nRunbook `{}`, content SHA-256 `{}`.\n",
        rb.id, rb.content_hash
    );
    if !note.is_empty() {
        let _ = writeln!(o, "{note}\n");
    }
    if let Some(values) = values.filter(|_| !rb.variables.is_empty()) {
        let _ = writeln!(o, "## Inputs\n\n| Name | What | Value |\n|---|---|---|");
        for v in &rb.variables {
            let value = match values.get(&v.name).filter(|x| !x.is_empty()) {
                _ if v.kind == VarKind::Secret => format!("{BLANK} (secret: not printed)"),
                Some(x) => format!("`{x}`"),
                None => BLANK.to_string(),
            };
            let _ = writeln!(o, "| `{}` | {} | {value} |", v.name, v.label);
        }
        o.push('\n');
    } else if !rb.variables.is_empty() {
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
        let _ = writeln!(o, "## {}\n", f(&sec.title));
        if let Some(w) = &sec.when {
            let _ = writeln!(o, "_Only when: `{w}`_\n");
        }
        if !sec.summary.trim().is_empty() {
            let _ = writeln!(o, "{}\n", f(sec.summary.trim()));
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
            let _ = writeln!(o, "- [ ] **{n}. {}** ({kind}) `{}`", f(&st.title), st.id);
            let _ = writeln!(o, "  {}", f(st.why.trim()));
            if let Some(w) = &st.when {
                let _ = writeln!(o, "  _Only when: `{w}`_");
            }
            if !st.after.is_empty() {
                let _ = writeln!(o, "  After: {}", st.after.join(", "));
            }
            match &st.body {
                StepBody::Manual(m) => {
                    let _ = writeln!(o, "  On: {}", f(&m.run_on));
                    for line in f(m.instructions.trim()).lines() {
                        let _ = writeln!(o, "  > {line}");
                    }
                    for c in &m.commands {
                        let shell = if c.shell.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", c.shell)
                        };
                        let _ = writeln!(o, "  ```\n  {}\n  ```{shell}", f(&c.run));
                    }
                    if !m.evidence.is_empty() {
                        let _ = writeln!(o, "  Record: {}", f(&m.evidence));
                    }
                }
                StepBody::Sql(s) => {
                    let _ = writeln!(
                        o,
                        "  On the {} server, database {}:",
                        s.server,
                        f(&s.database)
                    );
                    let _ = writeln!(o, "  ```sql\n{}\n  ```", indent(&f(&s.sql)));
                }
                StepBody::Check(c) => {
                    let _ = writeln!(
                        o,
                        "  On the {} server, database {}:",
                        c.server,
                        f(&c.database)
                    );
                    let _ = writeln!(o, "  ```sql\n{}\n  ```", indent(&f(&c.sql)));
                    for a in &c.asserts {
                        let _ = writeln!(
                            o,
                            "  Expect `{}`: otherwise {}",
                            f(&a.source),
                            f(&a.message)
                        );
                    }
                }
                StepBody::Generate(g) => {
                    let _ = writeln!(
                        o,
                        "  Writes `{}`. {}",
                        f(&g.output),
                        f(g.instructions.trim())
                    );
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
