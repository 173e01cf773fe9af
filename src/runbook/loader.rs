//! Parses and validates runbook files into the model, reporting every problem at
//! file:line:col. Never panics, whatever the input.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use regex::Regex;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::diag::{Diagnostic, Sink};
use super::expr::{self, Assertion, Cond, Part};
use super::model::{
    CheckSpec, Command, Escape, Generate, Loc, Manual, Runbook, Section, SqlSpec, Step, StepBody,
    Variable,
};
use super::raw::{RawRunbook, RawStep, VarKind};
use btsdr_types::Role;

/// Finds a step of another runbook for `uses`: `(runbook id, step id)`.
pub(crate) type Resolver<'a> = &'a dyn Fn(&str, &str) -> Option<RawStep>;

/// Parses one runbook file. `rows` is the set of known checklist row ids for `covers`;
/// `uses` of other runbooks resolve against the embedded runbooks.
pub fn parse(
    origin: &str,
    text: &str,
    rows: Option<&HashSet<String>>,
) -> Result<Runbook, Vec<Diagnostic>> {
    let embedded: Vec<RawRunbook> = crate::embedded::RUNBOOKS
        .iter()
        .filter_map(|(_, t)| toml::from_str::<RawRunbook>(t).ok())
        .collect();
    let resolve = |rb: &str, step: &str| find_raw_step(&embedded, rb, step);
    parse_with(origin, text, rows, &resolve)
}

/// A raw step by runbook and step id.
pub(crate) fn find_raw_step(raws: &[RawRunbook], runbook: &str, step: &str) -> Option<RawStep> {
    raws.iter()
        .filter(|r| r.id.get_ref() == runbook)
        .flat_map(|r| r.sections.iter().flat_map(|s| s.steps.iter()))
        .find(|s| s.id.get_ref() == step)
        .cloned()
}

/// Like [`parse`], resolving `uses` with `resolve`.
pub fn parse_with(
    origin: &str,
    text: &str,
    rows: Option<&HashSet<String>>,
    resolve: Resolver<'_>,
) -> Result<Runbook, Vec<Diagnostic>> {
    validate(origin, text, read_raw(origin, text)?, rows, resolve)
}

/// The file's TOML as the raw format, or its syntax/shape diagnostic.
pub(crate) fn read_raw(origin: &str, text: &str) -> Result<RawRunbook, Vec<Diagnostic>> {
    toml::from_str::<RawRunbook>(text).map_err(|e| {
        let mut sink = Sink::new(origin, text);
        let msg = e.message().trim().replace('\n', " ");
        let help = if msg.contains("unknown field") {
            Some("check the spelling against docs/RUNBOOK_FORMAT.md")
        } else if msg.contains("missing field") {
            Some("add the field; docs/RUNBOOK_FORMAT.md lists what each part needs")
        } else {
            None
        };
        sink.at(e.span().unwrap_or(0..0), msg, help);
        sink.diags
    })
}

/// Validates a file already read with [`read_raw`] (`text` gives positions and the hash).
pub fn validate(
    origin: &str,
    text: &str,
    raw: RawRunbook,
    rows: Option<&HashSet<String>>,
    resolve: Resolver<'_>,
) -> Result<Runbook, Vec<Diagnostic>> {
    let sink = Sink::new(origin, text);
    let mut raw = raw;
    let mut v = Validator {
        sink,
        rows,
        runbook_id: raw.id.get_ref().clone(),
    };
    v.resolve_uses(&mut raw, resolve);
    let rb = v.runbook(raw, origin, text);
    if v.sink.diags.is_empty() {
        rb.ok_or_else(Vec::new)
    } else {
        let mut d = v.sink.diags;
        d.sort_by_key(|d| (d.line, d.col));
        Err(d)
    }
}

struct Validator<'a> {
    sink: Sink<'a>,
    rows: Option<&'a HashSet<String>>,
    /// The id of the runbook being validated (set first).
    runbook_id: String,
}

/// Check steps (runbook id, step id) allowed to run dynamic SQL through sp_executesql, with
/// why; nothing else about them is exempt.
const DYNAMIC_SQL_CHECKS: &[(&str, &str)] = &[
    // Counts unfinished BAM activity instances: the activity tables have per-deployment
    // names, so the query is built from sys.tables with QUOTENAME and runs through
    // sp_executesql; it only SELECTs. (Issue 17's runbook helper may rewrite it.)
    ("restore", "bam.incomplete"),
    // The same step, inherited with `uses = "restore:bam.incomplete"`.
    ("disaster-recovery", "notjob.incomplete"),
];

/// Where `sub` (a byte offset into the value of the string at `at`) is in the file: exact
/// for literal strings ('...' and '''...'''), else the start of the value.
fn offset_in_value(text: &str, at: &Range<usize>, value: &str, sub: usize) -> usize {
    let Some(raw) = text.get(at.clone()) else {
        return at.start;
    };
    let (delim, rest) = if let Some(r) = raw
        .strip_prefix("'''")
        .or_else(|| raw.strip_prefix("\"\"\""))
    {
        (3, r)
    } else if raw.starts_with(['\'', '"']) {
        (1, &raw[1..])
    } else {
        return at.start;
    };
    // A newline right after an opening triple quote is not part of the value.
    let skip = if delim == 3 {
        if rest.starts_with("\r\n") {
            2
        } else {
            usize::from(rest.starts_with('\n'))
        }
    } else {
        0
    };
    let prefix = &value[..sub.min(value.len())];
    if rest[skip..].starts_with(prefix) {
        at.start + delim + skip + sub
    } else {
        at.start
    }
}

fn span<T>(s: &Spanned<T>) -> Range<usize> {
    s.span()
}

impl Validator<'_> {
    /// Fills steps that say `uses = "runbook:step"` from that step (recursively, at most
    /// four levels deep), re-pointing inherited spans at the `uses` line.
    fn resolve_uses(&mut self, raw: &mut RawRunbook, resolve: Resolver<'_>) {
        let own = raw.clone();
        let own_id = raw.id.get_ref().clone();
        for sec in &mut raw.sections {
            for st in &mut sec.steps {
                let Some(uses) = st.uses.clone() else {
                    continue;
                };
                let at = uses.span();
                let mut target = uses.get_ref().clone();
                let mut seen = vec![format!("{own_id}:{}", st.id.get_ref())];
                for depth in 0.. {
                    let (rb, step) = match target.split_once(':') {
                        Some((rb, step)) => (rb.to_string(), step.to_string()),
                        None => (own_id.clone(), target.clone()),
                    };
                    let key = format!("{rb}:{step}");
                    if seen.contains(&key) || depth > 4 {
                        self.err(
                            at.clone(),
                            format!(
                                "`uses` makes a cycle or a chain too deep: {} -> {key}",
                                seen.join(" -> ")
                            ),
                            Some("point `uses` at the step that holds the fields"),
                        );
                        break;
                    }
                    let base = if rb == own_id {
                        find_raw_step(std::slice::from_ref(&own), &rb, &step)
                    } else {
                        resolve(&rb, &step)
                    };
                    let Some(base) = base else {
                        self.err(
                            at.clone(),
                            format!(
                                "`uses = \"{}\"`: there is no step `{step}` in runbook `{rb}`",
                                uses.get_ref()
                            ),
                            Some("write runbook:step with ids from `btsdr show RUNBOOK`"),
                        );
                        break;
                    };
                    seen.push(key);
                    let next = base.uses.as_ref().map(|u| u.get_ref().clone());
                    inherit(st, base, &at);
                    match next {
                        Some(n) if !n.contains(':') => target = format!("{rb}:{n}"),
                        Some(n) => target = n,
                        None => break,
                    }
                }
            }
        }
    }

    fn err(&mut self, at: Range<usize>, msg: impl Into<String>, help: Option<&str>) {
        self.sink.at(at, msg, help);
    }

    // TODO(issue 16): split (header, variables, sections apart).
    #[allow(clippy::too_many_lines)]
    fn runbook(&mut self, raw: RawRunbook, origin: &str, text: &str) -> Option<Runbook> {
        if !is_kebab(raw.id.get_ref()) {
            self.err(
                span(&raw.id),
                format!(
                    "runbook id `{}` must be lower-case words joined by `-`",
                    raw.id.get_ref()
                ),
                None,
            );
        }
        // Variables first: everything else refers to them.
        let mut vars: Vec<Variable> = Vec::new();
        let mut kinds: HashMap<String, VarKind> = HashMap::new();
        for rv in raw.variables {
            let name = rv.name.get_ref().clone();
            if !expr::is_ident(&name) {
                self.err(
                    span(&rv.name),
                    format!("variable name `{name}` must be letters, digits and `_`"),
                    None,
                );
            }
            if kinds.insert(name.clone(), rv.kind).is_some() {
                self.err(
                    span(&rv.name),
                    format!("variable `{name}` is declared twice"),
                    Some("remove or rename one of them"),
                );
            }
            let pattern = rv.pattern.as_ref().map(|p| p.get_ref().clone());
            // Parsed, not compiled: compiling every pattern at start-up cost milliseconds
            // before the first frame; `validate_value` compiles one when it is first used.
            if let Some(p) = &rv.pattern
                && let Err(e) = regex_syntax::Parser::new().parse(&format!("^(?:{})$", p.get_ref()))
            {
                let first = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
                    .trim_start_matches("error: ")
                    .to_string();
                self.err(
                    span(p),
                    format!("pattern of `{name}` is not a valid regular expression: {first}"),
                    None,
                );
            }
            if rv.kind == VarKind::Choice && rv.choices.is_empty() {
                self.err(
                    span(&rv.name),
                    format!("choice variable `{name}` has no `choices`"),
                    Some("add choices = [\"A\", \"B\"]"),
                );
            }
            if let (Some(min), Some(max)) = (rv.min_len, rv.max_len)
                && min > max
            {
                self.err(
                    span(&rv.name),
                    format!("`{name}`: min_len {min} is greater than max_len {max}"),
                    None,
                );
            }
            let default = match &rv.default {
                None => None,
                Some(toml::Value::String(s)) => Some(s.clone()),
                Some(toml::Value::Integer(i)) => Some(i.to_string()),
                Some(toml::Value::Boolean(b)) => Some(b.to_string()),
                Some(other) => {
                    self.err(
                        span(&rv.name),
                        format!(
                            "default of `{name}` must be a string, integer or boolean, not {}",
                            other.type_str()
                        ),
                        None,
                    );
                    None
                }
            };
            let var = Variable {
                name: name.clone(),
                label: rv.label,
                help: rv.help,
                kind: rv.kind,
                default,
                required: rv.required,
                choices: rv.choices,
                pattern,
                min_len: rv.min_len,
                max_len: rv.max_len,
            };
            if let Some(d) = &var.default
                && let Err(e) = validate_value(&var, d)
            {
                self.err(
                    span(&rv.name),
                    format!("default of `{name}` is invalid: {e}"),
                    None,
                );
            }
            vars.push(var);
        }

        // Collect every step id first so `after` and `#each` can refer forward.
        let mut step_ids: HashMap<String, Range<usize>> = HashMap::new();
        let mut step_kinds: HashMap<String, String> = HashMap::new();
        let mut section_ids: HashSet<String> = HashSet::new();
        for sec in &raw.sections {
            if !section_ids.insert(sec.id.get_ref().clone()) {
                self.err(
                    span(&sec.id),
                    format!("section id `{}` is used twice", sec.id.get_ref()),
                    None,
                );
            }
            for st in &sec.steps {
                let id = st.id.get_ref().clone();
                if !is_step_id(&id) {
                    self.err(
                        span(&st.id),
                        format!("step id `{id}` must be lower-case words joined by `-` or `.`"),
                        None,
                    );
                }
                if let Some(first) = step_ids.get(&id) {
                    let (l, c) = self.sink.line_col(first.start);
                    self.err(
                        span(&st.id),
                        format!("step id `{id}` is used twice (first at line {l}, column {c})"),
                        Some("step ids must be unique within a runbook"),
                    );
                } else {
                    step_ids.insert(id.clone(), span(&st.id));
                    step_kinds.insert(
                        id,
                        st.kind
                            .as_ref()
                            .map(|k| k.get_ref().clone())
                            .unwrap_or_default(),
                    );
                }
            }
        }

        let mut sections = Vec::new();
        for sec in raw.sections {
            let when = sec.when.as_ref().and_then(|w| self.cond(w, &kinds));
            let mut steps = Vec::new();
            for st in sec.steps {
                if let Some(s) = self.step(st, &kinds, &step_ids, &step_kinds) {
                    steps.push(s);
                }
            }
            sections.push(Section {
                id: sec.id.into_inner(),
                title: sec.title,
                summary: sec.summary,
                when,
                steps,
            });
        }
        self.cycles(&sections, &step_ids);

        Some(Runbook {
            id: raw.id.into_inner(),
            title: raw.title,
            summary: raw.summary,
            version: raw.version,
            kind: raw.kind,
            checklist: raw.checklist,
            variables: vars,
            sections,
            origin: origin.to_string(),
            content_hash: hex::encode(Sha256::digest(text.as_bytes())),
        })
    }

    /// A check step's SQL may only read (see [`super::readonly`]).
    fn read_only(&mut self, sql: &Spanned<String>, step: &str) {
        let exempt = DYNAMIC_SQL_CHECKS.contains(&(self.runbook_id.as_str(), step));
        if let Err((off, msg)) = super::readonly::check(sql.get_ref())
            && !(exempt && msg.contains("sp_executesql"))
        {
            let at = offset_in_value(self.sink.source(), &span(sql), sql.get_ref(), off);
            self.err(
                at..at,
                format!("check step `{step}` must only read: {msg}"),
                Some("`btsdr check` runs checks unattended: put statements that change anything in a `sql` step (with `destructive = true` where it applies)"),
            );
        }
    }

    fn cond(&mut self, w: &Spanned<String>, kinds: &HashMap<String, VarKind>) -> Option<Cond> {
        match Cond::parse(w.get_ref()) {
            Ok(c) => {
                for v in c.variables() {
                    if !kinds.contains_key(v) {
                        self.err(
                            span(w),
                            format!("`when` uses unknown variable `{v}`"),
                            Some("declare it under [[variables]]"),
                        );
                    }
                }
                Some(c)
            }
            Err(e) => {
                self.err(
                    span(w),
                    format!("bad `when` condition: {e}"),
                    Some("write e.g. `use_bam and edition == 'Standard'`"),
                );
                None
            }
        }
    }

    /// Checks `{{var}}` placeholders in operator-facing text.
    fn text(&mut self, at: Range<usize>, what: &str, text: &str, kinds: &HashMap<String, VarKind>) {
        match expr::parse_template(text) {
            Ok(parts) => self.text_parts(at, what, &parts, kinds, false),
            Err(e) => self.err(at, format!("{what}: {e}"), None),
        }
    }

    fn text_parts(
        &mut self,
        at: Range<usize>,
        what: &str,
        parts: &[Part],
        kinds: &HashMap<String, VarKind>,
        in_each: bool,
    ) {
        for p in parts {
            match p {
                Part::Var(v) | Part::Ident(v) => match kinds.get(v.as_str()) {
                    None if !in_each => self.err(
                        at.clone(),
                        format!("{what} uses unknown variable `{{{{{v}}}}}`"),
                        Some("declare it under [[variables]]"),
                    ),
                    Some(VarKind::Secret) => self.err(
                        at.clone(),
                        format!("{what} shows secret variable `{v}`"),
                        Some("secrets may only be bound as SQL parameters"),
                    ),
                    _ => {}
                },
                Part::Each(_, inner) => self.text_parts(at.clone(), what, inner, kinds, true),
                Part::Lit(_) => {}
            }
        }
    }

    fn sql(
        &mut self,
        sql: &Spanned<String>,
        params: &[Spanned<String>],
        kinds: &HashMap<String, VarKind>,
    ) {
        match expr::parse_template(sql.get_ref()) {
            Ok(parts) => {
                for p in &parts {
                    match p {
                        Part::Var(v) => self.err(span(sql), format!("`{{{{{v}}}}}` would splice a value into the SQL text"), Some("bind values as parameters: list the variable in `params` and write @name; identifiers use {{ident:name}}")),
                        Part::Ident(v) if !kinds.contains_key(v.as_str()) => self.err(span(sql), format!("SQL uses unknown variable `{v}`"), Some("declare it under [[variables]]")),
                        Part::Each(..) => self.err(span(sql), "`{{#each}}` is only for generate templates", None),
                        _ => {}
                    }
                }
            }
            Err(e) => self.err(span(sql), format!("SQL: {e}"), None),
        }
        let lower = sql.get_ref().to_lowercase();
        for p in params {
            let name = p.get_ref();
            if !kinds.contains_key(name.as_str()) {
                self.err(
                    span(p),
                    format!("parameter `{name}` is not a declared variable"),
                    Some("declare it under [[variables]]"),
                );
            }
            let needle = format!("@{}", name.to_lowercase());
            let used = lower.match_indices(&needle).any(|(i, _)| {
                !lower[i + needle.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            if !used {
                self.err(
                    span(p),
                    format!("parameter `{name}` is listed but the SQL never uses @{name}"),
                    None,
                );
            }
        }
    }

    fn step(
        &mut self,
        st: RawStep,
        kinds: &HashMap<String, VarKind>,
        step_ids: &HashMap<String, Range<usize>>,
        step_kinds: &HashMap<String, String>,
    ) -> Option<Step> {
        let id = st.id.get_ref().clone();
        let (line, col) = self.sink.line_col(st.id.span().start);
        let when = st.when.as_ref().and_then(|w| self.cond(w, kinds));
        self.step_links(&st, &id, step_ids);
        self.step_asks(&st, &id, kinds);
        let Some(kind_s) = st.kind.clone() else {
            if st.uses.is_some() {
                // `uses` could not be resolved: that error is already reported.
                return None;
            }
            self.err(
                span(&st.id),
                format!("step `{id}` needs `kind` (manual, sql, check or generate) or `uses`"),
                None,
            );
            return None;
        };
        let kind = kind_s.get_ref().as_str();
        self.fields_of_kind(&st, &kind_s, &id)?;
        for (name, text) in [("why", &st.why), ("title", &st.title)] {
            if text.as_deref().is_none_or(|t| t.trim().is_empty()) {
                self.missing(&st, kind, name);
            }
        }
        self.text(
            span(&st.id),
            &format!("`why` of `{id}`"),
            st.why.as_deref().unwrap_or(""),
            kinds,
        );
        let body = match kind {
            "manual" => self.manual_body(&st, &id, kinds),
            "sql" | "check" => self.sql_body(&st, kind, &id, kinds),
            _ => self.generate_body(&st, &id, kinds, step_kinds),
        };
        Some(Step {
            id,
            title: st.title.unwrap_or_default(),
            why: st.why.unwrap_or_default(),
            references: st.references,
            covers: st.covers.into_iter().map(Spanned::into_inner).collect(),
            when,
            after: st.after.into_iter().map(Spanned::into_inner).collect(),
            ask: st.ask.into_iter().map(Spanned::into_inner).collect(),
            discover: st
                .discover
                .into_iter()
                .map(|d| (d.variable.into_inner(), d.column))
                .collect(),
            body,
            loc: Loc { line, col },
        })
    }

    /// `ask` and `discover` name declared variables; only a check discovers.
    fn step_asks(&mut self, st: &RawStep, id: &str, kinds: &HashMap<String, VarKind>) {
        let asked = st.ask.iter().chain(st.discover.iter().map(|d| &d.variable));
        for v in asked {
            if !kinds.contains_key(v.get_ref().as_str()) {
                self.err(
                    span(v),
                    format!("`{}` is not a declared variable", v.get_ref()),
                    Some("declare it under [[variables]]"),
                );
            }
        }
        if !st.discover.is_empty()
            && st.kind.as_ref().map(|k| k.get_ref().as_str()) != Some("check")
        {
            self.err(
                span(&st.id),
                format!("step `{id}` discovers values but is not a check"),
                Some("only a check's result can suggest a value"),
            );
        }
    }

    /// `after` names other steps of the runbook, `covers` checklist rows, `references` https URLs.
    fn step_links(&mut self, st: &RawStep, id: &str, step_ids: &HashMap<String, Range<usize>>) {
        for a in &st.after {
            if !step_ids.contains_key(a.get_ref()) {
                self.err(
                    span(a),
                    format!(
                        "step `{id}` comes after `{}`, which does not exist",
                        a.get_ref()
                    ),
                    Some("use the id of a step in this runbook"),
                );
            } else if a.get_ref() == id {
                self.err(
                    span(a),
                    format!("step `{id}` cannot come after itself"),
                    None,
                );
            }
        }
        for c in &st.covers {
            if let Some(rows) = self.rows
                && !rows.contains(c.get_ref())
            {
                self.err(
                    span(c),
                    format!("`covers` names unknown checklist row `{}`", c.get_ref()),
                    Some("row ids are listed in assets/checklists.toml"),
                );
            }
        }
        for r in &st.references {
            if !r.starts_with("https://") {
                self.err(
                    span(&st.id),
                    format!("step `{id}`: reference `{r}` is not an https URL"),
                    None,
                );
            }
        }
    }

    /// Refuses the fields that do not belong to the step's kind; `None` for an unknown kind.
    fn fields_of_kind(&mut self, st: &RawStep, kind_s: &Spanned<String>, id: &str) -> Option<()> {
        let kind = kind_s.get_ref().as_str();
        // Which optional fields are set, to refuse those that do not belong to the kind.
        let present: [(&str, Option<Range<usize>>); 18] = [
            ("run_on", st.run_on.as_ref().map(span)),
            ("instructions", st.instructions.as_ref().map(span)),
            ("commands", st.commands.first().map(|c| span(&c.run))),
            ("evidence", st.evidence.as_ref().map(span)),
            ("server", st.server.as_ref().map(span)),
            ("database", st.database.as_ref().map(span)),
            ("sql", st.sql.as_ref().map(span)),
            ("params", st.params.first().map(span)),
            ("destructive", st.destructive.as_ref().map(span)),
            ("confirm_word", st.confirm_word.as_ref().map(span)),
            ("undo", st.undo.as_ref().map(span)),
            ("timeout_secs", st.timeout_secs.as_ref().map(span)),
            ("long_running", st.long_running.as_ref().map(span)),
            ("assert", st.assert.first().map(|a| span(&a.message))),
            ("health", st.health.as_ref().map(span)),
            ("opt_in", st.opt_in.as_ref().map(span)),
            ("output", st.output.as_ref().map(span)),
            ("template", st.template.as_ref().map(span)),
        ];
        let allowed: &[&str] = match kind {
            "manual" => &["run_on", "instructions", "commands", "evidence"],
            "sql" => &[
                "server",
                "database",
                "sql",
                "params",
                "destructive",
                "confirm_word",
                "undo",
                "timeout_secs",
                "long_running",
            ],
            "check" => &[
                "server",
                "database",
                "sql",
                "params",
                "timeout_secs",
                "assert",
                "health",
                "opt_in",
            ],
            "generate" => &["output", "template", "instructions"],
            other => {
                self.err(
                    span(kind_s),
                    format!("unknown step kind `{other}`"),
                    Some("use manual, sql, check or generate"),
                );
                return None;
            }
        };
        for (name, at) in &present {
            if let Some(at) = at
                && !allowed.contains(name)
            {
                self.err(
                    at.clone(),
                    format!("`{name}` does not belong in a {kind} step (`{id}`)"),
                    Some(&format!("a {kind} step takes: {}", allowed.join(", "))),
                );
            }
        }
        if kind != "generate"
            && let Some(e) = &st.escape
        {
            self.err(
                span(e),
                format!("`escape` does not belong in a {kind} step (`{id}`)"),
                None,
            );
        }
        Some(())
    }

    /// Says that a `kind` step lacks `field` (at the step's id).
    fn missing(&mut self, st: &RawStep, kind: &str, field: &str) {
        self.err(
            span(&st.id),
            format!("{kind} step `{}` needs `{field}`", st.id.get_ref()),
            None,
        );
    }

    fn manual_body(
        &mut self,
        st: &RawStep,
        id: &str,
        kinds: &HashMap<String, VarKind>,
    ) -> StepBody {
        let instructions = match &st.instructions {
            Some(i) => {
                self.text(
                    span(i),
                    &format!("instructions of `{id}`"),
                    i.get_ref(),
                    kinds,
                );
                i.get_ref().clone()
            }
            None => {
                self.missing(st, "manual", "instructions");
                String::new()
            }
        };
        for c in &st.commands {
            self.text(
                span(&c.run),
                &format!("a command of `{id}`"),
                c.run.get_ref(),
                kinds,
            );
        }
        if let Some(e) = &st.evidence {
            self.text(span(e), &format!("evidence of `{id}`"), e.get_ref(), kinds);
        }
        let run_on = match &st.run_on {
            Some(r) => r.get_ref().clone(),
            None => {
                self.missing(st, "manual", "run_on");
                String::new()
            }
        };
        StepBody::Manual(Manual {
            run_on,
            instructions,
            commands: st
                .commands
                .iter()
                .map(|c| Command {
                    shell: c.shell.clone(),
                    run: c.run.get_ref().clone(),
                })
                .collect(),
            evidence: st
                .evidence
                .as_ref()
                .map(|e| e.get_ref().clone())
                .unwrap_or_default(),
        })
    }

    /// The body of a `sql` or `check` step (`kind`).
    fn sql_body(
        &mut self,
        st: &RawStep,
        kind: &str,
        id: &str,
        kinds: &HashMap<String, VarKind>,
    ) -> StepBody {
        let role = match &st.server {
            None => {
                self.missing(st, kind, "server");
                None
            }
            Some(s) => Role::parse(s.get_ref()).or_else(|| {
                self.err(
                    span(s),
                    format!("unknown server role `{}`", s.get_ref()),
                    Some("use source, msgbox or destination"),
                );
                None
            }),
        };
        let database = match &st.database {
            Some(d) if !d.get_ref().trim().is_empty() => d.get_ref().clone(),
            Some(d) => {
                self.err(span(d), "`database` is empty", None);
                String::new()
            }
            None => {
                self.missing(st, kind, "database");
                String::new()
            }
        };
        let sql = match &st.sql {
            Some(s) => {
                self.sql(s, &st.params, kinds);
                if kind == "check" {
                    self.read_only(s, id);
                }
                s.get_ref().clone()
            }
            None => {
                self.missing(st, kind, "sql");
                String::new()
            }
        };
        let timeout_secs = st.timeout_secs.as_ref().map_or(60, |t| *t.get_ref());
        if let Some(t) = &st.timeout_secs
            && (*t.get_ref() == 0 || *t.get_ref() > 86_400)
        {
            self.err(span(t), "`timeout_secs` must be between 1 and 86400", None);
        }
        let params = st.params.iter().map(|p| p.get_ref().clone()).collect();
        let role = role.unwrap_or(Role::Source);
        if kind == "sql" {
            return StepBody::Sql(SqlSpec {
                server: role,
                database,
                sql,
                params,
                destructive: st.destructive.as_ref().is_some_and(|d| *d.get_ref()),
                confirm_word: st.confirm_word.as_ref().map(|c| c.get_ref().clone()),
                undo: st
                    .undo
                    .as_ref()
                    .map(|u| u.get_ref().trim().to_string())
                    .filter(|u| !u.is_empty()),
                timeout_secs,
                long_running: st.long_running.as_ref().is_some_and(|d| *d.get_ref()),
            });
        }
        StepBody::Check(CheckSpec {
            server: role,
            database,
            sql,
            params,
            timeout_secs,
            asserts: self.asserts(st, id, kinds),
            health: st.health.as_ref().is_none_or(|h| *h.get_ref()),
            opt_in: st.opt_in.as_ref().is_some_and(|h| *h.get_ref()),
        })
    }

    /// A check step's `[[assert]]`s: each states exactly one of rows, each, any, none.
    fn asserts(
        &mut self,
        st: &RawStep,
        id: &str,
        kinds: &HashMap<String, VarKind>,
    ) -> Vec<Assertion> {
        if st.assert.is_empty() {
            self.err(
                span(&st.id),
                format!("check step `{id}` has no [[assert]]"),
                Some("a check must state what it expects, e.g. rows = \">= 1\""),
            );
        }
        let mut asserts = Vec::new();
        for a in &st.assert {
            let set: Vec<(&str, &Spanned<String>)> = [
                ("rows", &a.rows),
                ("each", &a.each),
                ("any", &a.any),
                ("none", &a.none),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .collect();
            if set.len() != 1 {
                self.err(span(&a.message), format!("an assertion of `{id}` needs exactly one of rows, each, any, none (found {})", set.len()), None);
                continue;
            }
            let (k, e) = set[0];
            self.text(
                span(&a.message),
                &format!("an assertion message of `{id}`"),
                a.message.get_ref(),
                kinds,
            );
            match Assertion::parse(k, e.get_ref(), a.message.get_ref()) {
                Ok(parsed) => {
                    for v in parsed.variables() {
                        if !kinds.contains_key(v) {
                            self.err(
                                span(e),
                                format!("assertion uses unknown variable `{v}`"),
                                Some("declare it under [[variables]]"),
                            );
                        }
                    }
                    asserts.push(parsed);
                }
                Err(msg) => self.err(
                    span(e),
                    format!("bad assertion `{k} = \"{}\"`: {msg}", e.get_ref()),
                    None,
                ),
            }
        }
        asserts
    }

    fn generate_body(
        &mut self,
        st: &RawStep,
        id: &str,
        kinds: &HashMap<String, VarKind>,
        step_kinds: &HashMap<String, String>,
    ) -> StepBody {
        let escape = match st.escape.as_ref().map(|e| e.get_ref().as_str()) {
            None | Some("text") => Escape::Text,
            Some("xml") => Escape::Xml,
            Some("sql") => Escape::Sql,
            Some(other) => {
                let at = st.escape.as_ref().map(span).unwrap_or(0..0);
                self.err(
                    at,
                    format!("unknown escape `{other}`"),
                    Some("use text, xml or sql"),
                );
                Escape::Text
            }
        };
        let output = match &st.output {
            Some(o) if is_file_name(o.get_ref()) => o.get_ref().clone(),
            Some(o) => {
                self.err(
                    span(o),
                    format!(
                        "output `{}` must be a plain file name (no folders, no `..`)",
                        o.get_ref()
                    ),
                    None,
                );
                String::new()
            }
            None => {
                self.missing(st, "generate", "output");
                String::new()
            }
        };
        let template = match &st.template {
            Some(t) => {
                match expr::parse_template(t.get_ref()) {
                    Ok(parts) => {
                        self.text_parts(
                            span(t),
                            &format!("template of `{id}`"),
                            &parts,
                            kinds,
                            false,
                        );
                        self.each_sources(t, &parts, id, &st.after, step_kinds);
                    }
                    Err(e) => self.err(span(t), format!("template of `{id}`: {e}"), None),
                }
                t.get_ref().clone()
            }
            None => {
                self.missing(st, "generate", "template");
                String::new()
            }
        };
        let instructions = st
            .instructions
            .as_ref()
            .map(|i| i.get_ref().clone())
            .unwrap_or_default();
        StepBody::Generate(Generate {
            output,
            escape,
            template,
            instructions,
        })
    }

    fn each_sources(
        &mut self,
        t: &Spanned<String>,
        parts: &[Part],
        id: &str,
        after: &[Spanned<String>],
        step_kinds: &HashMap<String, String>,
    ) {
        for p in parts {
            if let Part::Each(src, inner) = p {
                match step_kinds.get(src) {
                    None => self.err(span(t), format!("template of `{id}` loops over rows of `{src}`, which does not exist"), None),
                    Some(k) if k != "check" && k != "sql" => self.err(span(t), format!("template of `{id}` loops over rows of `{src}`, a {k} step without rows"), Some("loop over a check or sql step")),
                    Some(_) if !after.iter().any(|a| a.get_ref() == src) => self.err(span(t), format!("template of `{id}` uses rows of `{src}` but does not list it in `after`"), Some(&format!("add after = [\"{src}\"]"))),
                    _ => {}
                }
                self.each_sources(t, inner, id, after, step_kinds);
            }
        }
    }

    /// Reports each dependency cycle once, naming the steps in it.
    fn cycles(&mut self, sections: &[Section], step_ids: &HashMap<String, Range<usize>>) {
        let edges: HashMap<&str, Vec<&str>> = sections
            .iter()
            .flat_map(|s| &s.steps)
            .map(|s| {
                (
                    s.id.as_str(),
                    s.after
                        .iter()
                        .map(String::as_str)
                        .filter(|a| *a != s.id)
                        .collect(),
                )
            })
            .collect();
        // 0 = unvisited, 1 = on stack, 2 = done
        let mut state: HashMap<&str, u8> = HashMap::new();
        let mut order: Vec<&str> = sections
            .iter()
            .flat_map(|s| &s.steps)
            .map(|s| s.id.as_str())
            .collect();
        order.dedup();
        for start in order {
            if state.get(start).copied().unwrap_or(0) != 0 {
                continue;
            }
            // Iterative DFS with an explicit path.
            let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
            state.insert(start, 1);
            while let Some((node, i)) = stack.last().copied() {
                let next = edges.get(node).and_then(|e| e.get(i)).copied();
                match next {
                    Some(n) => {
                        if let Some(top) = stack.last_mut() {
                            top.1 += 1;
                        }
                        match state.get(n).copied().unwrap_or(0) {
                            0 if edges.contains_key(n) => {
                                state.insert(n, 1);
                                stack.push((n, 0));
                            }
                            1 => {
                                let pos = stack.iter().position(|(s, _)| *s == n).unwrap_or(0);
                                let mut cycle: Vec<&str> =
                                    stack[pos..].iter().map(|(s, _)| *s).collect();
                                cycle.push(n);
                                let at = step_ids.get(n).cloned().unwrap_or(0..0);
                                self.err(
                                    at,
                                    format!("`after` makes a cycle: {}", cycle.join(" -> ")),
                                    Some("remove one of these dependencies"),
                                );
                            }
                            _ => {}
                        }
                    }
                    None => {
                        state.insert(node, 2);
                        stack.pop();
                    }
                }
            }
        }
    }
}

fn is_kebab(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_step_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

fn is_file_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '\\', ':']) && s != "." && s != ".." && !s.starts_with('.')
}

/// Checks an operator's value for a variable: required, kind, choices, length, pattern.
pub fn validate_value(var: &Variable, value: &str) -> Result<(), String> {
    let len = value.chars().count();
    if value.is_empty() {
        return if var.required {
            Err(format!("{} is required", var.label))
        } else {
            Ok(())
        };
    }
    if value.contains(['\0', '\u{1b}']) {
        return Err("control characters are not allowed".into());
    }
    match var.kind {
        VarKind::Bool if !matches!(value, "true" | "false") => {
            return Err("answer true or false".into());
        }
        VarKind::Number if value.parse::<i64>().is_err() => {
            return Err(format!("`{value}` is not a whole number"));
        }
        VarKind::Choice if !var.choices.iter().any(|c| c == value) => {
            return Err(format!("choose one of: {}", var.choices.join(", ")));
        }
        VarKind::Server if value.contains(char::is_whitespace) => {
            return Err("a server name has no spaces".into());
        }
        VarKind::Server => {
            if let Some(problem) = server_name_problem(value) {
                return Err(problem);
            }
        }
        _ => {}
    }
    if let Some(min) = var.min_len
        && len < min
    {
        return Err(format!("at least {min} characters (got {len})"));
    }
    if let Some(max) = var.max_len
        && len > max
    {
        return Err(format!(
            "at most {max} characters (got {len}): SQL Server would silently cut it to {max}"
        ));
    }
    if let Some(p) = &var.pattern {
        match pattern_matches(p, value) {
            Some(false) => return Err(format!("does not match the expected form `{p}`")),
            None => return Err("the runbook's pattern for this value is invalid".into()),
            Some(true) => {}
        }
    }
    Ok(())
}

/// Why `v` is not a SQL Server name: `HOST`, `HOST\INSTANCE`, `HOST,PORT` or
/// `HOST\INSTANCE,PORT`, optionally after `tcp:`; HOST is a DNS name, an IPv4 address,
/// an IPv6 address (bare or in brackets), `(local)` or `.`.
fn server_name_problem(v: &str) -> Option<String> {
    const FORM: &str = "a SQL Server name is HOST, HOST\\INSTANCE or HOST,PORT (e.g. SQLBTS01\\BIZTALK or sqlbts01.contoso.com,1433)";
    let v = match v.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("tcp:") => &v[4..],
        _ => v,
    };
    let (rest, port) = match v.rsplit_once(',') {
        Some((r, p)) => (r, Some(p)),
        None => (v, None),
    };
    if let Some(p) = port
        && !p.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Some(format!("`{p}` is not a port (1 to 65535): {FORM}"));
    }
    let (host, instance) = match rest.split_once('\\') {
        Some((h, i)) => (h, Some(i)),
        None => (rest, None),
    };
    if let Some(i) = instance {
        let ok = (1..=16).contains(&i.chars().count())
            && i.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '$' | '#'));
        if !ok {
            return Some(format!(
                "`{i}` is not an instance name (at most 16 letters, digits, `_`, `$` or `#`): {FORM}"
            ));
        }
    }
    let ipv6 = |h: &str| h.parse::<std::net::Ipv6Addr>().is_ok();
    let ok = host == "(local)"
        || host == "."
        || ipv6(host)
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(ipv6)
        || ((1..=253).contains(&host.len())
            && !host.starts_with(['-', '.'])
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
    if ok {
        None
    } else {
        Some(format!("`{host}` is not a host name: {FORM}"))
    }
}

/// Whether `value` matches the whole of `pattern`; `None` if the pattern does not compile.
/// Compiled patterns are kept: the same few are checked on every keystroke of a form.
fn pattern_matches(pattern: &str, value: &str) -> Option<bool> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let mut cache = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(re) = cache.get(pattern) {
        return Some(re.is_match(value));
    }
    let re = Regex::new(&format!("^(?:{pattern})$")).ok()?;
    let matched = re.is_match(value);
    cache.insert(pattern.to_string(), re);
    Some(matched)
}

fn respan<T>(s: Spanned<T>, at: &Range<usize>) -> Spanned<T> {
    Spanned::new(at.clone(), s.into_inner())
}

/// Copies into `st` every field it does not set itself (never `covers`, `when`, `after`).
fn inherit(st: &mut RawStep, base: RawStep, at: &Range<usize>) {
    macro_rules! opt {
        ($($f:ident),*) => {$(
            if st.$f.is_none() {
                st.$f = base.$f.map(|v| respan(v, at));
            }
        )*};
    }
    opt!(
        kind,
        run_on,
        instructions,
        evidence,
        server,
        database,
        sql,
        destructive,
        confirm_word,
        undo,
        timeout_secs,
        long_running,
        health,
        opt_in,
        output,
        escape,
        template
    );
    if st.title.is_none() {
        st.title = base.title;
    }
    if st.why.is_none() {
        st.why = base.why;
    }
    if st.references.is_empty() {
        st.references = base.references;
    }
    if st.commands.is_empty() {
        st.commands = base
            .commands
            .into_iter()
            .map(|c| super::raw::RawCommand {
                shell: c.shell,
                run: respan(c.run, at),
            })
            .collect();
    }
    if st.params.is_empty() {
        st.params = base.params.into_iter().map(|p| respan(p, at)).collect();
    }
    if st.assert.is_empty() {
        st.assert = base
            .assert
            .into_iter()
            .map(|a| super::raw::RawAssertion {
                rows: a.rows.map(|v| respan(v, at)),
                each: a.each.map(|v| respan(v, at)),
                any: a.any.map(|v| respan(v, at)),
                none: a.none.map(|v| respan(v, at)),
                message: respan(a.message, at),
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::server_name_problem;

    #[test]
    fn server_names() {
        for ok in [
            "SQLBTS01",
            r"SQLBTS01\BIZTALK",
            "sqlbts01.contoso.com,1433",
            r"SQLDR01\DR_2,50123",
            "tcp:10.0.0.5,1433",
            "(local)",
            r".\SQLEXPRESS",
            "localhost",
            "[::1],1433",
            "fe80::1",
        ] {
            assert_eq!(server_name_problem(ok), None, "{ok}");
        }
        for (bad, says) in [
            ("]", "is not a host name"),
            ("Biz]; DROP DATABASE [x", "is not a host name"),
            ("SQL01,0", "is not a port"),
            ("SQL01,70000", "is not a port"),
            ("SQL01,", "is not a port"),
            (r"SQL01\", "is not an instance name"),
            (
                r"SQL01\AN_INSTANCE_NAME_TOO_LONG",
                "is not an instance name",
            ),
            (r"SQL01\a\b", "is not an instance name"),
            ("-sql01", "is not a host name"),
            ("[SQL01]", "is not a host name"),
            ("", "is not a host name"),
        ] {
            let p = server_name_problem(bad).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(
                p.contains(says) && p.contains("HOST\\INSTANCE"),
                "{bad}: {p}"
            );
        }
        assert!(server_name_problem(&"a".repeat(10_000)).is_some());
    }
}
