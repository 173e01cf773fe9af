//! A T-SQL lexer: enough to split batches, read procedure arguments and match statement
//! shapes on key tokens without ever treating a parameter or a `[quoted identifier]` as syntax.

/// One token of a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A word or identifier; `bracketed` when written `[like this]` or `"like this"`.
    Word {
        text: String,
        bracketed: bool,
    },
    /// `@name` (without the `@`); `@@NAME` keeps one `@`: `@SERVERNAME`.
    Var(String),
    /// A string literal (`'…'` or `N'…'`), unescaped.
    Str(String),
    Num(String),
    /// Punctuation and operators: `( ) , . ; = <> != < > <= >= + - * / %` and `+=`.
    Sym(&'static str),
}

impl Tok {
    /// True for an unquoted keyword `kw` (case-insensitive).
    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Tok::Word { text, bracketed: false } if text.eq_ignore_ascii_case(kw))
    }
    pub fn is_sym(&self, s: &str) -> bool {
        matches!(self, Tok::Sym(x) if *x == s)
    }
    /// The identifier text of a word (quoted or not).
    pub fn word(&self) -> Option<&str> {
        match self {
            Tok::Word { text, .. } => Some(text),
            _ => None,
        }
    }
    /// How the token appears in a statement's shape: keywords and simple identifiers in
    /// lower case; literals, parameters and odd identifiers as placeholders.
    fn shape(&self) -> String {
        match self {
            Tok::Word { text, bracketed } => {
                if !*bracketed || is_simple(text) {
                    text.to_ascii_lowercase()
                } else {
                    "[?]".into()
                }
            }
            Tok::Var(v) => format!("@{}", v.to_ascii_lowercase()),
            Tok::Str(s) => {
                // Short, plain literals stay visible so shapes can match `'db'` or job names;
                // anything else is a placeholder.
                if s.len() <= 64
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || " _-%()<>.".contains(c))
                {
                    format!("'{}'", s.to_ascii_lowercase())
                } else {
                    "'?'".into()
                }
            }
            Tok::Num(n) => n.clone(),
            Tok::Sym(s) => (*s).to_string(),
        }
    }
}

fn is_simple(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == '#')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '$' || ch == '#')
}

/// Splits T-SQL text into tokens; comments are dropped. Errors name what is unterminated.
pub fn lex(src: &str) -> Result<Vec<Tok>, String> {
    lex_lines(src).map(|(t, _)| t)
}

/// `lex`, with the line (from 1) each token starts on.
pub fn lex_lines(src: &str) -> Result<(Vec<Tok>, Vec<u32>), String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut lines: Vec<u32> = Vec::new();
    let (mut line, mut counted, mut start) = (1u32, 0usize, 0usize);
    let mut i = 0;
    let n = chars.len();
    while i < n {
        // The tokens the last step added started at `start`.
        if lines.len() < out.len() {
            line += chars[counted..start].iter().filter(|c| **c == '\n').count() as u32;
            counted = start;
            lines.resize(out.len(), line);
        }
        start = i;
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < n && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            let mut depth = 0usize;
            loop {
                if i >= n {
                    return Err("a /* comment is never closed".into());
                }
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '\'' || ((c == 'N' || c == 'n') && chars.get(i + 1) == Some(&'\'')) {
            if c != '\'' {
                i += 1;
            }
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => return Err("a string literal is never closed (a ' is missing)".into()),
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
        } else if c == '[' || c == '"' {
            let close = if c == '[' { ']' } else { '"' };
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => {
                        return Err(format!(
                            "a quoted identifier is never closed (a {close} is missing)"
                        ));
                    }
                    Some(ch) if *ch == close && chars.get(i + 1) == Some(&close) => {
                        s.push(close);
                        i += 2;
                    }
                    Some(ch) if *ch == close => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Word {
                text: s,
                bracketed: true,
            });
        } else if c == '@' {
            let start = i;
            i += 1;
            if chars.get(i) == Some(&'@') {
                i += 1;
            }
            while i < n
                && (chars[i].is_alphanumeric()
                    || chars[i] == '_'
                    || chars[i] == '#'
                    || chars[i] == '$')
            {
                i += 1;
            }
            let name: String = chars[start + 1..i].iter().collect();
            out.push(Tok::Var(name));
        } else if c == '0' && matches!(chars.get(i + 1), Some('x' | 'X')) {
            // A binary literal, 0x0A0B (0x alone is an empty one): Num keeps the `0x`.
            let start = i;
            i += 2;
            while i < n && chars[i].is_ascii_hexdigit() {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < n && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' || c == '#' {
            let start = i;
            while i < n
                && (chars[i].is_alphanumeric()
                    || chars[i] == '_'
                    || chars[i] == '#'
                    || chars[i] == '$')
            {
                i += 1;
            }
            out.push(Tok::Word {
                text: chars[start..i].iter().collect(),
                bracketed: false,
            });
        } else {
            let two: String = chars[i..n.min(i + 2)].iter().collect();
            let sym2 = ["<>", "!=", "<=", ">=", "+=", "-="]
                .into_iter()
                .find(|s| *s == two);
            if let Some(s) = sym2 {
                out.push(Tok::Sym(s));
                i += 2;
            } else {
                let s = match c {
                    '(' => "(",
                    ')' => ")",
                    ',' => ",",
                    '.' => ".",
                    ';' => ";",
                    '=' => "=",
                    '<' => "<",
                    '>' => ">",
                    '+' => "+",
                    '-' => "-",
                    '*' => "*",
                    '/' => "/",
                    '%' => "%",
                    ':' => ":",
                    _ => return Err(format!("unexpected character `{c}`")),
                };
                out.push(Tok::Sym(s));
                i += 1;
            }
        }
    }
    if lines.len() < out.len() {
        line += chars[counted..start].iter().filter(|c| **c == '\n').count() as u32;
        lines.resize(out.len(), line);
    }
    Ok((out, lines))
}

/// The shape of a token run: one space-separated, lower-case string for regex matching.
pub fn shape(toks: &[Tok]) -> String {
    let mut s = String::new();
    for t in toks {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&t.shape());
    }
    s
}

/// Renders tokens back to (normalised) T-SQL text, for messages.
pub fn render(toks: &[Tok]) -> String {
    let mut s = String::new();
    for t in toks {
        if !s.is_empty() {
            s.push(' ');
        }
        match t {
            Tok::Word {
                text,
                bracketed: true,
            } => s.push_str(&format!("[{}]", text.replace(']', "]]"))),
            Tok::Word { text, .. } => s.push_str(text),
            Tok::Var(v) => {
                s.push('@');
                s.push_str(v);
            }
            Tok::Str(v) => s.push_str(&format!("N'{}'", v.replace('\'', "''"))),
            Tok::Num(n) => s.push_str(n),
            Tok::Sym(x) => s.push_str(x),
        }
    }
    s
}

/// First 80 characters of a statement, for error messages.
pub fn excerpt(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = flat.chars().take(80).collect();
    if flat.chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexes_quotes_and_hostile_identifiers() {
        let t = lex(
            "EXEC [dbo].[sp_MarkAll] N'BT''S', @p -- c\n; SELECT [a]]; DROP DATABASE x] FROM t",
        )
        .unwrap();
        assert_eq!(
            shape(&t),
            "exec dbo . sp_markall '?' , @p ; select [?] from t"
        );
        assert!(matches!(&t[9], Tok::Word { text, .. } if text == "a]; DROP DATABASE x"));
        assert!(lex("SELECT 'x").is_err());
        let (t, lines) = lex_lines("SELECT 1\n-- two\n/* x\n*/ SELECT\n'a\nb', 2").unwrap();
        assert_eq!(t.len(), lines.len());
        assert_eq!(lines, [1, 1, 4, 5, 6, 6]);
        assert!(lex("SELECT [x").is_err());
    }
}
