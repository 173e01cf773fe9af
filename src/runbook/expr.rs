//! The small languages inside runbooks: `when` conditions, check assertions and templates.
//!
//! All parsers return `Err(String)` with a message; the loader adds the file position.

use serde::Serialize;

use btsdr_types::{ResultSet, Row, ValueRef};

/// Deepest nesting a condition (`(`, `not`, and/or chains) or a template (`{{#each}}`) may
/// have. Everything built from them (evaluation, printing, dropping) recurses, so an
/// unbounded depth from a hostile file would overflow the stack.
pub(crate) const MAX_DEPTH: usize = 32;

/// A `when` condition: `use_bam`, `not use_sso`, `edition == 'Standard'`, `a and (b or c)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Cond {
    /// True when the variable is set to something truthy (not empty, `false`, `0`, `no`).
    Var(String),
    Eq(String, String),
    Ne(String, String),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

impl Cond {
    pub fn parse(src: &str) -> Result<Cond, String> {
        let toks = tokenize(src)?;
        let mut p = CondParser {
            toks,
            pos: 0,
            depth: 0,
        };
        let c = p.or()?;
        if let Some(t) = p.toks.get(p.pos) {
            return Err(format!("unexpected `{}` in condition", t.text()));
        }
        Ok(c)
    }

    /// Variables the condition reads.
    pub fn variables(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Cond::Var(v) | Cond::Eq(v, _) | Cond::Ne(v, _) => out.push(v),
            Cond::Not(c) => c.collect(out),
            Cond::And(a, b) | Cond::Or(a, b) => {
                a.collect(out);
                b.collect(out);
            }
        }
    }

    pub fn eval(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Cond::Var(v) => get(v).is_some_and(|s| truthy(&s)),
            Cond::Eq(v, lit) => get(v).is_some_and(|s| s.eq_ignore_ascii_case(lit)),
            Cond::Ne(v, lit) => !get(v).is_some_and(|s| s.eq_ignore_ascii_case(lit)),
            Cond::Not(c) => !c.eval(get),
            Cond::And(a, b) => a.eval(get) && b.eval(get),
            Cond::Or(a, b) => a.eval(get) || b.eval(get),
        }
    }
}

impl std::fmt::Display for Cond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cond::Var(v) => f.write_str(v),
            Cond::Eq(v, l) => write!(f, "{v} == '{l}'"),
            Cond::Ne(v, l) => write!(f, "{v} != '{l}'"),
            Cond::Not(c) => write!(f, "not ({c})"),
            Cond::And(a, b) => write!(f, "({a} and {b})"),
            Cond::Or(a, b) => write!(f, "({a} or {b})"),
        }
    }
}

pub(crate) fn truthy(s: &str) -> bool {
    let t = s.trim();
    !(t.is_empty() || t.eq_ignore_ascii_case("false") || t == "0" || t.eq_ignore_ascii_case("no"))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Op(&'static str),
    LParen,
    RParen,
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Tok::Ident(s) | Tok::Num(s) => s.clone(),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Op(o) => (*o).to_string(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
        }
    }
}

fn tokenize(src: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string (a ' is missing)".into()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if c == '{' && chars.get(i + 1) == Some(&'{') {
            let rest: String = chars[i + 2..].iter().collect();
            let Some(end) = rest.find("}}") else {
                return Err("`{{` without a closing `}}`".into());
            };
            let name = rest[..end].trim().to_string();
            if !is_ident(&name) {
                return Err(format!("`{{{{{name}}}}}` is not a variable name"));
            }
            out.push(Tok::Ident(format!("{{{{{name}}}}}")));
            i += 2 + rest[..end].chars().count() + 2;
        } else if let Some(op) = ["==", "!=", "<=", ">=", "<", ">"]
            .into_iter()
            .find(|op| chars[i..].iter().take(op.len()).collect::<String>() == *op)
        {
            out.push(Tok::Op(op));
            i += op.len();
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            return Err(format!("unexpected character `{c}`"));
        }
    }
    Ok(out)
}

pub(crate) fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

struct CondParser {
    toks: Vec<Tok>,
    pos: usize,
    /// Depth of the tree built so far (parentheses, `not`, and each `and`/`or` link).
    depth: usize,
}

impl CondParser {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(w))
    }
    /// Goes one level deeper, or refuses past [`MAX_DEPTH`].
    fn deeper(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "the condition nests more than {MAX_DEPTH} levels deep (parentheses, `not`, `and`, `or`): split it or simplify it"
            ));
        }
        Ok(())
    }
    fn or(&mut self) -> Result<Cond, String> {
        let outer = self.depth;
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            self.deeper()?;
            let right = self.and()?;
            left = Cond::Or(Box::new(left), Box::new(right));
        }
        self.depth = outer;
        Ok(left)
    }
    fn and(&mut self) -> Result<Cond, String> {
        let outer = self.depth;
        let mut left = self.not()?;
        while self.peek_word("and") {
            self.pos += 1;
            self.deeper()?;
            let right = self.not()?;
            left = Cond::And(Box::new(left), Box::new(right));
        }
        self.depth = outer;
        Ok(left)
    }
    fn not(&mut self) -> Result<Cond, String> {
        if self.peek_word("not") {
            self.pos += 1;
            self.deeper()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Cond::Not(Box::new(inner)));
        }
        self.atom()
    }
    fn atom(&mut self) -> Result<Cond, String> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                self.deeper()?;
                let c = self.or()?;
                self.depth -= 1;
                if self.toks.get(self.pos) != Some(&Tok::RParen) {
                    return Err("a `)` is missing".into());
                }
                self.pos += 1;
                Ok(c)
            }
            Some(Tok::Ident(name)) if is_ident(&name) => {
                self.pos += 1;
                match self.toks.get(self.pos).cloned() {
                    Some(Tok::Op(op @ ("==" | "!="))) => {
                        self.pos += 1;
                        let lit = match self.toks.get(self.pos).cloned() {
                            Some(Tok::Str(s) | Tok::Num(s)) => s,
                            Some(Tok::Ident(s)) if s == "true" || s == "false" => s,
                            Some(t) => {
                                return Err(format!(
                                    "expected a 'value' after `{op}`, found `{}`",
                                    t.text()
                                ));
                            }
                            None => return Err(format!("expected a 'value' after `{op}`")),
                        };
                        self.pos += 1;
                        Ok(if op == "==" {
                            Cond::Eq(name, lit)
                        } else {
                            Cond::Ne(name, lit)
                        })
                    }
                    Some(Tok::Op(op)) => Err(format!(
                        "`{op}` is not allowed in a condition: use == or !="
                    )),
                    _ => Ok(Cond::Var(name)),
                }
            }
            Some(t) => Err(format!("expected a variable name, found `{}`", t.text())),
            None if self.pos > 0 => Err(format!(
                "the condition ends too early: something must follow `{}`",
                self.toks[self.pos - 1].text()
            )),
            None => Err("the condition is empty".into()),
        }
    }
}

/// Comparison operator in assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            _ => return None,
        })
    }
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Eq => ord == Equal,
            Op::Ne => ord != Equal,
            Op::Lt => ord == Less,
            Op::Le => ord != Greater,
            Op::Gt => ord == Greater,
            Op::Ge => ord != Less,
        }
    }
}

/// Right-hand side of a predicate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Operand {
    Num(f64),
    Str(String),
    Null,
    Var(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Predicate {
    Compare {
        column: String,
        op: Op,
        operand: Operand,
    },
    IsNull(String),
    NotNull(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantifier {
    Each,
    Any,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Rule {
    Rows { op: Op, operand: Operand },
    Rows2(Quantifier, Predicate),
}

/// One assertion of a check step, with the message shown when it fails.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assertion {
    pub rule: Rule,
    /// The assertion as written (`each: enabled == 1`), for evidence and reports.
    pub source: String,
    pub message: String,
}

impl Predicate {
    pub fn parse(src: &str) -> Result<Predicate, String> {
        let toks = tokenize(src)?;
        let col = match toks.first() {
            Some(Tok::Ident(c)) if is_ident(c) => c.clone(),
            Some(t) => return Err(format!("expected a column name, found `{}`", t.text())),
            None => return Err("the predicate is empty".into()),
        };
        let words: Vec<String> = toks[1..]
            .iter()
            .map(|t| t.text().to_ascii_lowercase())
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["is", "null"] => return Ok(Predicate::IsNull(col)),
            ["is", "not", "null"] => return Ok(Predicate::NotNull(col)),
            _ => {}
        }
        let (op, operand) = parse_op_operand(&toks[1..])?;
        Ok(Predicate::Compare {
            column: col,
            op,
            operand,
        })
    }

    pub fn column(&self) -> &str {
        match self {
            Predicate::Compare { column, .. }
            | Predicate::IsNull(column)
            | Predicate::NotNull(column) => column,
        }
    }

    pub fn variables(&self) -> Option<&str> {
        match self {
            Predicate::Compare {
                operand: Operand::Var(v),
                ..
            } => Some(v),
            _ => None,
        }
    }

    fn holds(
        &self,
        set: &ResultSet,
        row: Row<'_>,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<bool, String> {
        let idx = set
            .column_index(self.column())
            .ok_or_else(|| format!("the query returned no column `{}`", self.column()))?;
        let v = row.get(idx).unwrap_or(ValueRef::Null);
        Ok(match self {
            Predicate::IsNull(_) => v.is_null(),
            Predicate::NotNull(_) => !v.is_null(),
            Predicate::Compare { op, operand, .. } => compare(v, *op, operand, get)?,
        })
    }
}

fn parse_op_operand(toks: &[Tok]) -> Result<(Op, Operand), String> {
    let op = match toks.first() {
        Some(Tok::Op(o)) => Op::parse(o).ok_or_else(|| format!("unknown operator `{o}`"))?,
        Some(t) => {
            return Err(format!(
                "expected an operator (== != < <= > >=), found `{}`",
                t.text()
            ));
        }
        None => return Err("an operator and a value are missing".into()),
    };
    let operand = match toks.get(1) {
        Some(Tok::Num(n)) => Operand::Num(n.parse().map_err(|_| format!("`{n}` is not a number"))?),
        Some(Tok::Str(s)) => Operand::Str(s.clone()),
        Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("null") => Operand::Null,
        Some(Tok::Ident(s)) if s.starts_with("{{") => Operand::Var(s[2..s.len() - 2].to_string()),
        Some(t) => {
            return Err(format!(
                "expected a number, a 'string', null or {{{{variable}}}}, found `{}`",
                t.text()
            ));
        }
        None => return Err(format!("a value is missing after `{}`", op.symbol())),
    };
    if toks.len() > 2 {
        return Err(format!("unexpected `{}` after the value", toks[2].text()));
    }
    Ok((op, operand))
}

fn compare(
    v: ValueRef<'_>,
    op: Op,
    operand: &Operand,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<bool, String> {
    let rhs = match operand {
        Operand::Null => {
            return Ok(match op {
                Op::Eq => v.is_null(),
                Op::Ne => !v.is_null(),
                _ => false,
            });
        }
        Operand::Var(name) => get(name).ok_or_else(|| format!("variable `{name}` has no value"))?,
        Operand::Num(n) => n.to_string(),
        Operand::Str(s) => s.clone(),
    };
    if v.is_null() {
        // SQL semantics: NULL compares as unknown, which fails the predicate.
        return Ok(false);
    }
    let ord = match (v.as_f64(), rhs.trim().parse::<f64>()) {
        (Some(a), Ok(b)) if !matches!(operand, Operand::Str(_)) => {
            a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal)
        }
        _ => v.to_string().to_lowercase().cmp(&rhs.to_lowercase()),
    };
    Ok(op.holds(ord))
}

/// The outcome of one assertion against a result set.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AssertOutcome {
    pub source: String,
    pub passed: bool,
    /// The failure message (with variables filled in) or why it could not be evaluated.
    pub detail: String,
}

impl Assertion {
    pub fn parse(kind: &str, expr: &str, message: &str) -> Result<Assertion, String> {
        let rule = match kind {
            "rows" => {
                let toks = tokenize(expr)?;
                let (op, operand) = parse_op_operand(&toks)?;
                if matches!(operand, Operand::Str(_) | Operand::Null) {
                    return Err(
                        "`rows` compares the row count with a number or {{variable}}".into(),
                    );
                }
                Rule::Rows { op, operand }
            }
            "each" => Rule::Rows2(Quantifier::Each, Predicate::parse(expr)?),
            "any" => Rule::Rows2(Quantifier::Any, Predicate::parse(expr)?),
            "none" => Rule::Rows2(Quantifier::None, Predicate::parse(expr)?),
            other => return Err(format!("unknown assertion `{other}`")),
        };
        Ok(Assertion {
            rule,
            source: format!("{kind}: {expr}"),
            message: message.to_string(),
        })
    }

    pub fn variables(&self) -> Vec<&str> {
        match &self.rule {
            Rule::Rows {
                operand: Operand::Var(v),
                ..
            } => vec![v],
            Rule::Rows2(_, p) => p.variables().into_iter().collect(),
            _ => vec![],
        }
    }

    /// Evaluates against the first result set (an absent set counts as no rows).
    pub fn check(
        &self,
        set: Option<&ResultSet>,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> AssertOutcome {
        let empty = ResultSet::default();
        let set = set.unwrap_or(&empty);
        let result = match &self.rule {
            Rule::Rows { op, operand } => {
                // A capped result still counted every row the server sent.
                let n = (set.rows.len() as u64).saturating_add(set.not_kept);
                compare(
                    ValueRef::Int(i64::try_from(n).unwrap_or(i64::MAX)),
                    *op,
                    operand,
                    get,
                )
            }
            Rule::Rows2(q, pred) => {
                let mut res = Ok(match q {
                    Quantifier::Each => true,
                    Quantifier::Any => false,
                    Quantifier::None => true,
                });
                for row in &set.rows {
                    match pred.holds(set, row, get) {
                        Err(e) => {
                            res = Err(e);
                            break;
                        }
                        Ok(h) => match q {
                            Quantifier::Each if !h => {
                                res = Ok(false);
                                break;
                            }
                            Quantifier::Any if h => {
                                res = Ok(true);
                                break;
                            }
                            Quantifier::None if h => {
                                res = Ok(false);
                                break;
                            }
                            _ => {}
                        },
                    }
                }
                // The rows not kept could change an undecided answer: say so, never guess.
                let undecided = match q {
                    Quantifier::Each | Quantifier::None => res == Ok(true),
                    Quantifier::Any => res == Ok(false),
                };
                if set.not_kept > 0 && undecided {
                    res = Err(format!(
                        "the result reached its cap ({} rows kept, {} not kept): raise max_result_rows / max_result_mib or narrow the query",
                        set.rows.len(),
                        set.not_kept
                    ));
                }
                if set.rows.is_empty()
                    && set.column_index(pred.column()).is_none()
                    && !set.columns.is_empty()
                {
                    res = Err(format!("the query returned no column `{}`", pred.column()));
                }
                res
            }
        };
        // What was asserted, with the values compared (never a raw {{placeholder}}).
        let source = render_text(&self.source, get);
        match result {
            Ok(true) => AssertOutcome {
                source,
                passed: true,
                detail: String::new(),
            },
            Ok(false) => AssertOutcome {
                source,
                passed: false,
                detail: render_text(&self.message, get),
            },
            Err(e) => AssertOutcome {
                detail: format!("cannot evaluate `{source}`: {e}"),
                source,
                passed: false,
            },
        }
    }
}

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Lit(String),
    /// `{{name}}`: a variable, or a column inside `#each`.
    Var(String),
    /// `{{ident:name}}`: bracket-quoted SQL identifier.
    Ident(String),
    /// `{{#each step_id}} ... {{/each}}`
    Each(String, Vec<Part>),
}

/// Parses `{{var}}`, `{{ident:var}}` and `{{#each step}}...{{/each}}`.
pub fn parse_template(src: &str) -> Result<Vec<Part>, String> {
    // `current` collects the innermost open level; `open` holds each enclosing `#each`'s
    // step and the parts of the level around it.
    let mut current: Vec<Part> = Vec::new();
    let mut open: Vec<(String, Vec<Part>)> = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            current.push(Part::Lit(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            format!(
                "`{{{{` at offset {} has no closing `}}}}`",
                src.len() - rest.len() + start
            )
        })?;
        let tag = after[..end].trim();
        if let Some(step) = tag.strip_prefix("#each ") {
            if open.len() >= MAX_DEPTH {
                return Err(format!(
                    "`{{{{#each}}}}` nests more than {MAX_DEPTH} levels deep: simplify the template"
                ));
            }
            open.push((step.trim().to_string(), std::mem::take(&mut current)));
        } else if tag == "/each" {
            let Some((step, outer)) = open.pop() else {
                return Err("`{{/each}}` without `{{#each ...}}`".into());
            };
            let body = std::mem::replace(&mut current, outer);
            current.push(Part::Each(step, body));
        } else if let Some(name) = tag.strip_prefix("ident:") {
            if !is_ident(name.trim()) {
                return Err(format!(
                    "`{{{{{tag}}}}}`: `{}` is not a variable name",
                    name.trim()
                ));
            }
            current.push(Part::Ident(name.trim().to_string()));
        } else if is_ident(tag) {
            current.push(Part::Var(tag.to_string()));
        } else {
            return Err(format!(
                "`{{{{{tag}}}}}` is not a placeholder (use {{{{name}}}}, {{{{ident:name}}}} or {{{{#each step}}}})"
            ));
        }
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        current.push(Part::Lit(rest.to_string()));
    }
    if let Some((step, _)) = open.last() {
        return Err(format!(
            "`{{{{#each {step}}}}}` is never closed with `{{{{/each}}}}`"
        ));
    }
    Ok(current)
}

/// Quotes a SQL Server identifier: `[name]` with `]` doubled.
pub fn quote_ident(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
}

pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Fills `{{var}}` in operator-facing text; unknown names stay visible as `{{name}}`.
pub fn render_text(src: &str, get: &dyn Fn(&str) -> Option<String>) -> String {
    match parse_template(src) {
        Ok(parts) => {
            let mut out = String::new();
            for p in parts {
                match p {
                    Part::Lit(s) => out.push_str(&s),
                    Part::Var(v) | Part::Ident(v) => match get(&v) {
                        Some(val) if !val.is_empty() => out.push_str(&val),
                        _ => out.push_str(&format!("{{{{{v}}}}}")),
                    },
                    Part::Each(step, _) => out.push_str(&format!("[rows of {step}]")),
                }
            }
            out
        }
        Err(_) => src.to_string(),
    }
}

/// Renders a generate template. `rows(step)` gives the evidence rows of a finished check.
pub fn render_template(
    parts: &[Part],
    escape: &dyn Fn(&str) -> String,
    get: &dyn Fn(&str) -> Option<String>,
    rows: &dyn Fn(&str) -> Option<ResultSet>,
) -> Result<String, String> {
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Lit(s) => out.push_str(s),
            Part::Var(v) => out.push_str(&escape(
                &get(v).ok_or_else(|| format!("variable `{v}` has no value"))?,
            )),
            Part::Ident(v) => out.push_str(&quote_ident(
                &get(v).ok_or_else(|| format!("variable `{v}` has no value"))?,
            )),
            Part::Each(step, inner) => {
                let set = rows(step)
                    .ok_or_else(|| format!("step `{step}` has no rows yet: run it first"))?;
                for row in &set.rows {
                    let row_get = |name: &str| -> Option<String> {
                        set.column_index(name)
                            .and_then(|i| row.get(i))
                            .map(|v| v.to_string())
                            .or_else(|| get(name))
                    };
                    out.push_str(&render_template(inner, escape, &row_get, rows)?);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use btsdr_types::{Column, Value};

    fn vars(name: &str) -> Option<String> {
        match name {
            "use_bam" => Some("true".into()),
            "use_sso" => Some("false".into()),
            "edition" => Some("Standard".into()),
            "max_age" => Some("26".into()),
            _ => None,
        }
    }

    #[test]
    fn conditions() {
        for (src, want) in [
            ("use_bam", true),
            ("not use_sso", true),
            ("use_bam and use_sso", false),
            ("use_bam or use_sso", true),
            ("edition == 'Standard'", true),
            ("edition != 'standard'", false),
            ("not (use_sso or edition == 'Enterprise')", true),
            ("missing", false),
        ] {
            assert_eq!(Cond::parse(src).unwrap().eval(&vars), want, "{src}");
        }
        for bad in [
            "",
            "use_bam and",
            "(use_bam",
            "a < 'b'",
            "x == ",
            "'lit'",
            "a $ b",
        ] {
            assert!(Cond::parse(bad).is_err(), "{bad} should fail");
        }
    }

    fn set() -> ResultSet {
        ResultSet {
            not_kept: 0,
            columns: vec![
                Column {
                    name: "name".into(),
                    type_name: "nvarchar".into(),
                },
                Column {
                    name: "age_hours".into(),
                    type_name: "int".into(),
                },
                Column {
                    name: "mark".into(),
                    type_name: "nvarchar".into(),
                },
            ],
            rows: vec![
                vec![
                    Value::Text("BizTalkMgmtDb".into()),
                    Value::Int(3),
                    Value::Text("BTS_1".into()),
                ],
                vec![
                    Value::Text("BizTalkMsgBoxDb".into()),
                    Value::Int(30),
                    Value::Null,
                ],
            ]
            .into(),
        }
    }

    #[test]
    fn assertions() {
        let s = set();
        let ok = |k: &str, e: &str| {
            Assertion::parse(k, e, "bad {{max_age}}")
                .unwrap()
                .check(Some(&s), &vars)
        };
        assert!(ok("rows", ">= 1").passed);
        assert!(!ok("rows", "== 0").passed);
        assert!(!ok("each", "age_hours <= {{max_age}}").passed);
        assert_eq!(ok("each", "age_hours <= {{max_age}}").detail, "bad 26");
        assert!(ok("any", "age_hours <= {{max_age}}").passed);
        assert!(ok("none", "name == 'SSODB'").passed);
        assert!(ok("any", "mark is null").passed);
        assert!(!ok("each", "mark is not null").passed);
        assert!(!ok("each", "nosuch == 1").passed);
        assert!(
            ok("each", "nosuch == 1")
                .detail
                .contains("no column `nosuch`")
        );
        assert!(Assertion::parse("rows", "'x'", "m").is_err());
        assert!(Assertion::parse("each", "a ~ 1", "m").is_err());
    }

    /// A result cut at the cap: counts include the rows not kept, and a quantifier the kept
    /// rows cannot decide is an error, never a pass.
    #[test]
    fn capped_results_are_never_guessed() {
        let mut s = set();
        s.not_kept = 5;
        let check = |k: &str, e: &str| Assertion::parse(k, e, "m").unwrap().check(Some(&s), &vars);
        assert!(check("rows", "== 7").passed);
        assert!(!check("rows", "<= 2").passed);
        // Decided by the kept rows.
        assert!(!check("each", "age_hours <= 26").passed);
        assert!(check("any", "age_hours <= 26").passed);
        // Not decided: the rows not kept could change the answer.
        for (k, e) in [
            ("each", "age_hours >= 0"),
            ("none", "name == 'SSODB'"),
            ("any", "age_hours > 100"),
        ] {
            let r = check(k, e);
            assert!(!r.passed, "{k}: {e}");
            assert!(r.detail.contains("reached its cap"), "{}", r.detail);
        }
    }

    #[test]
    fn templates() {
        let parts =
            parse_template("USE {{ident:db}}; <a n=\"{{name}}\"/>{{#each s}}[{{name}}]{{/each}}")
                .unwrap();
        let get = |n: &str| match n {
            "db" => Some("we]ird".to_string()),
            "name" => Some("a&b".to_string()),
            _ => None,
        };
        let rows = |_: &str| Some(set());
        let out = render_template(&parts, &escape_xml, &get, &rows).unwrap();
        assert_eq!(
            out,
            "USE [we]]ird]; <a n=\"a&amp;b\"/>[BizTalkMgmtDb][BizTalkMsgBoxDb]"
        );
        assert!(parse_template("{{#each x}}").is_err());
        assert!(parse_template("{{/each}}").is_err());
        assert!(parse_template("{{ bad name }}").is_err());
        assert!(parse_template("{{x").is_err());
    }
}
