//! Text fields for popups: typed input, validated on every keystroke, secrets masked.

use crate::runbook::model::{VarKind, Variable};

/// What a field accepts.
#[derive(Debug, Clone)]
pub enum Check {
    Any,
    Required,
    /// The exact word (case-sensitive) a destructive step asks for.
    Equals(String),
    /// Whole minutes, 1 to [`MAX_MINUTES`] (empty allowed when not required).
    Minutes {
        required: bool,
    },
    /// One of the listed values (case-insensitive).
    OneOf(Vec<String>),
    /// A runbook variable's own rules.
    Var(Box<Variable>),
}

impl PartialEq for Check {
    fn eq(&self, other: &Check) -> bool {
        match (self, other) {
            (Check::Any, Check::Any) | (Check::Required, Check::Required) => true,
            (Check::Equals(a), Check::Equals(b)) => a == b,
            (Check::Minutes { required: a }, Check::Minutes { required: b }) => a == b,
            (Check::OneOf(a), Check::OneOf(b)) => a == b,
            (Check::Var(a), Check::Var(b)) => a.name == b.name,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub label: String,
    pub help: String,
    pub value: String,
    /// Masked on screen; never logged.
    pub secret: bool,
    pub check: Check,
    /// Multi-line free text (notes): Enter still submits; the view wraps it.
    pub long: bool,
}

impl Field {
    pub fn new(label: impl Into<String>, check: Check) -> Field {
        Field {
            label: label.into(),
            help: String::new(),
            value: String::new(),
            secret: false,
            check,
            long: false,
        }
    }
    #[must_use]
    pub fn help(mut self, h: impl Into<String>) -> Field {
        self.help = h.into();
        self
    }
    #[must_use]
    pub fn value(mut self, v: impl Into<String>) -> Field {
        self.value = v.into();
        self
    }
    #[must_use]
    pub fn long(mut self) -> Field {
        self.long = true;
        self
    }

    /// A field for a runbook variable, prefilled with its default.
    pub fn for_variable(v: &Variable, current: Option<&str>) -> Field {
        let mut help = v.help.clone();
        if v.kind == VarKind::Choice && !v.choices.is_empty() {
            if !help.is_empty() {
                help.push(' ');
            }
            help.push_str(&format!("One of: {}.", v.choices.join(", ")));
        }
        if v.kind == VarKind::Bool {
            if !help.is_empty() {
                help.push(' ');
            }
            help.push_str("Answer yes or no (true or false).");
        }
        Field {
            label: v.label.clone(),
            help,
            value: current
                .map(str::to_string)
                .or_else(|| v.default.clone())
                .unwrap_or_default(),
            secret: v.kind == VarKind::Secret,
            check: Check::Var(Box::new(v.clone())),
            long: false,
        }
    }

    /// The value to submit: a yes/no answer to a true/false variable becomes `true`/`false`.
    pub fn answer(&self) -> String {
        match &self.check {
            Check::Var(v) if v.kind == VarKind::Bool => {
                yes_no(&self.value).map_or_else(|| self.value.clone(), |b| b.to_string())
            }
            _ => self.value.clone(),
        }
    }

    /// What is wrong with the current value, if anything.
    pub fn problem(&self) -> Option<String> {
        validate(&self.check, &self.value)
    }

    /// The value as shown: secrets become one `•` per character.
    pub fn display(&self) -> String {
        if self.secret {
            "•".repeat(self.value.chars().count())
        } else {
            self.value.clone()
        }
    }
}

/// Checks `value` against `check`; `None` means it is acceptable.
pub fn validate(check: &Check, value: &str) -> Option<String> {
    let v = value.trim();
    match check {
        Check::Any => None,
        Check::Required => v.is_empty().then(|| "required: type something".to_string()),
        Check::Equals(word) => {
            (value != word).then(|| format!("type `{word}` exactly to go ahead"))
        }
        Check::Minutes { required } => {
            if v.is_empty() {
                return required.then(|| "required: a number of minutes".to_string());
            }
            match v.parse::<u32>() {
                Ok(n) if (1..=MAX_MINUTES).contains(&n) => None,
                _ => Some(format!(
                    "whole minutes from 1 to {MAX_MINUTES} (a week), e.g. 240 for 4 hours"
                )),
            }
        }
        Check::OneOf(opts) => {
            if opts.iter().any(|o| o.eq_ignore_ascii_case(v)) {
                None
            } else {
                Some(format!("one of: {}", opts.join(", ")))
            }
        }
        // A yes/no question must be answered: an empty answer is not a silent "no".
        Check::Var(var) if var.kind == VarKind::Bool => match yes_no(value) {
            Some(b) => validate_var(var, if b { "true" } else { "false" }),
            None if v.is_empty() => {
                Some("answer yes or no: an empty answer is not taken as no".into())
            }
            None => Some(format!("`{v}` is not an answer: type yes or no")),
        },
        Check::Var(var) => validate_var(var, value),
    }
}

/// yes/no/true/false (any case, y/n too) as a bool.
fn yes_no(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" => Some(true),
        "no" | "n" | "false" => Some(false),
        _ => None,
    }
}

/// The engine's rules, so the popup accepts exactly what `Start` will accept.
fn validate_var(var: &Variable, value: &str) -> Option<String> {
    crate::engine::validate_value(var, value).err()
}

/// The largest RTO/RPO a popup takes: a week. More is a typo, not a target.
pub const MAX_MINUTES: u32 = 7 * 24 * 60;

/// The longest value a field takes (notes, reasons): enough for a paragraph and a path,
/// short enough for one journal line.
pub const MAX_FIELD_CHARS: usize = 2000;

/// A stack of fields with one focused.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Form {
    pub fields: Vec<Field>,
    pub focus: usize,
    /// Set when the operator tried to submit with a problem.
    pub error: Option<String>,
}

impl Form {
    pub fn new(fields: Vec<Field>) -> Form {
        Form {
            fields,
            focus: 0,
            error: None,
        }
    }
    pub fn focused(&self) -> Option<&Field> {
        self.fields.get(self.focus)
    }
    pub fn type_char(&mut self, c: char) {
        self.push_text(&c.to_string());
    }
    pub fn paste(&mut self, s: &str) {
        let Some(f) = self.fields.get(self.focus) else {
            return;
        };
        // A paste into a one-line field keeps only its first line.
        let text = if f.long {
            s.to_string()
        } else {
            s.lines().next().unwrap_or("").to_string()
        };
        self.push_text(&text);
    }
    /// Appends typed or pasted text: control characters (escape sequences, tabs, newlines)
    /// become spaces or are dropped, so nothing can reach the terminal or the journal raw,
    /// and a field holds at most [`MAX_FIELD_CHARS`].
    fn push_text(&mut self, text: &str) {
        let Some(f) = self.fields.get_mut(self.focus) else {
            return;
        };
        let mut n = f.value.chars().count();
        let mut cut = false;
        for c in text.chars() {
            let c = match c {
                '\t' | '\n' | '\r' => ' ',
                c if c.is_control() => continue,
                c => c,
            };
            if n >= MAX_FIELD_CHARS {
                cut = true;
                break;
            }
            f.value.push(c);
            n += 1;
        }
        self.error = cut.then(|| {
            format!(
                "{}: at most {MAX_FIELD_CHARS} characters; the rest was not taken",
                f.label
            )
        });
    }
    pub fn backspace(&mut self) {
        if let Some(f) = self.fields.get_mut(self.focus) {
            f.value.pop();
            self.error = None;
        }
    }
    /// Ctrl-U: clear the field.
    pub fn clear(&mut self) {
        if let Some(f) = self.fields.get_mut(self.focus) {
            f.value.clear();
        }
    }
    pub fn next(&mut self) {
        if !self.fields.is_empty() {
            self.focus = (self.focus + 1) % self.fields.len();
        }
    }
    pub fn prev(&mut self) {
        if !self.fields.is_empty() {
            self.focus = (self.focus + self.fields.len() - 1) % self.fields.len();
        }
    }
    /// The first problem, focusing its field.
    pub fn check(&mut self) -> Result<(), String> {
        for (i, f) in self.fields.iter().enumerate() {
            if let Some(p) = f.problem() {
                self.focus = i;
                let msg = format!("{}: {p}", f.label);
                self.error = Some(msg.clone());
                return Err(msg);
            }
        }
        self.error = None;
        Ok(())
    }
    pub fn value(&self, i: usize) -> &str {
        self.fields.get(i).map_or("", |f| f.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(kind: VarKind) -> Variable {
        Variable {
            name: "x".into(),
            label: "X".into(),
            help: String::new(),
            kind,
            default: None,
            required: true,
            choices: vec!["Standard".into(), "Enterprise".into()],
            pattern: None,
            min_len: None,
            max_len: Some(5),
        }
    }

    #[test]
    fn variable_rules() {
        let v = var(VarKind::Text);
        assert!(validate(&Check::Var(Box::new(v.clone())), "").is_some());
        assert!(
            validate(&Check::Var(Box::new(v.clone())), "abcdef")
                .unwrap()
                .contains("at most 5")
        );
        assert_eq!(validate(&Check::Var(Box::new(v)), "abc"), None);
        let mut cv = var(VarKind::Choice);
        cv.max_len = None;
        let c = Check::Var(Box::new(cv));
        assert_eq!(validate(&c, "Standard"), None);
        assert!(validate(&c, "Dev").is_some());
        let mut p = var(VarKind::Text);
        p.pattern = Some("[A-Z]+".into());
        let p = Check::Var(Box::new(p));
        assert_eq!(validate(&p, "ABC"), None);
        assert!(validate(&p, "ABc").is_some());
    }

    #[test]
    fn hostile_input_is_cleaned_and_capped() {
        let mut form = Form::new(vec![Field::new("Note", Check::Required).long()]);
        form.paste("ok\x1b[2J\x07\tdone\r\nnext\u{9b}31m");
        assert_eq!(form.value(0), "ok[2J done  next31m");
        form.type_char('\x1b');
        assert_eq!(form.value(0), "ok[2J done  next31m");
        let mut form = Form::new(vec![Field::new("Note", Check::Required)]);
        form.paste(&"x".repeat(MAX_FIELD_CHARS + 10));
        assert_eq!(form.value(0).chars().count(), MAX_FIELD_CHARS);
        assert!(form.error.as_deref().unwrap_or("").contains("at most"));
        form.type_char('y');
        assert_eq!(form.value(0).chars().count(), MAX_FIELD_CHARS);
        form.backspace();
        assert!(form.error.is_none());
    }

    #[test]
    fn a_yes_no_question_needs_an_answer() {
        let mut b = var(VarKind::Bool);
        b.required = false;
        b.max_len = None;
        let f = Field::for_variable(&b, Some(""));
        assert!(f.problem().unwrap_or_default().contains("not taken as no"));
        assert!(f.clone().value("maybe").problem().is_some());
        for (typed, sent) in [
            ("yes", "true"),
            ("No", "false"),
            ("true", "true"),
            ("n", "false"),
        ] {
            let f = f.clone().value(typed);
            assert_eq!(f.problem(), None, "{typed}");
            assert_eq!(f.answer(), sent);
        }
        assert_eq!(Field::new("Note", Check::Any).value("yes").answer(), "yes");
    }

    #[test]
    fn typed_confirmation_is_exact() {
        let c = Check::Equals("RESTORE".into());
        assert!(validate(&c, "restore").is_some());
        assert!(validate(&c, "RESTORE ").is_some());
        assert_eq!(validate(&c, "RESTORE"), None);
    }

    #[test]
    fn secrets_are_masked_and_forms_focus_the_problem() {
        let mut f = Field::new("Password", Check::Required);
        f.secret = true;
        f.value = "hunter2".into();
        assert_eq!(f.display(), "•••••••");
        let mut form = Form::new(vec![
            f,
            Field::new("Minutes", Check::Minutes { required: true }),
        ]);
        assert!(form.check().is_err());
        assert_eq!(form.focus, 1);
        form.type_char('0');
        assert!(form.check().is_err());
        form.backspace();
        form.paste("240\nrest");
        assert_eq!(form.value(1), "240");
        assert!(form.check().is_ok());
    }
}
