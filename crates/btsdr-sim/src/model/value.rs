//! Value helpers for the simulator: SQL comparison, truthiness, dates.

use std::cmp::Ordering;

use chrono::{NaiveDate, NaiveDateTime};

use btsdr_types::Value;

pub const DT_FMT: &str = "%Y-%m-%d %H:%M:%S%.3f";

/// A datetime in [`DT_FMT`] (written by hand: chrono's formatter is slow for the
/// thousands of history rows a query materialises).
pub fn dt(t: NaiveDateTime) -> Value {
    use chrono::{Datelike, Timelike};
    Value::DateTime(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 1_000_000 % 1000
    ))
}

pub fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

pub fn int(i: impl Into<i64>) -> Value {
    Value::Int(i.into())
}

pub fn opt_text(s: &Option<String>) -> Value {
    s.as_ref().map_or(Value::Null, |s| Value::Text(s.clone()))
}

pub fn parse_dt(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim().replacen('T', " ", 1);
    NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .or_else(|| {
            NaiveDate::parse_from_str(&s, "%Y%m%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

pub fn as_dt(v: &Value) -> Option<NaiveDateTime> {
    match v {
        Value::DateTime(s) | Value::Text(s) => parse_dt(s),
        _ => None,
    }
}

pub fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Float(f) => Some(*f as i64),
        Value::Decimal(s) | Value::Text(s) => {
            let t = s.trim();
            t.parse::<i64>()
                .ok()
                .or_else(|| t.parse::<f64>().ok().map(|f| f as i64))
        }
        _ => None,
    }
}

pub fn as_text(v: &Value) -> Option<String> {
    if v.is_null() {
        None
    } else {
        Some(v.to_string())
    }
}

fn is_numeric(v: &Value) -> bool {
    matches!(
        v,
        Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Decimal(_)
    )
}

/// SQL comparison under a case-insensitive collation; `None` when either side is NULL.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    if a.is_null() || b.is_null() {
        return None;
    }
    if (is_numeric(a) || is_numeric(b))
        && let (Some(x), Some(y)) = (a.as_f64(), b.as_f64())
    {
        return x.partial_cmp(&y);
    }
    if let (Value::DateTime(x), Value::DateTime(y)) = (a, b)
        && canonical_dt(x)
        && canonical_dt(y)
    {
        // Same fixed-width layout: text order is time order.
        return Some(x.as_str().cmp(y.as_str()));
    }
    if (matches!(a, Value::DateTime(_)) || matches!(b, Value::DateTime(_)))
        && let (Some(x), Some(y)) = (as_dt(a), as_dt(b))
    {
        return Some(x.cmp(&y));
    }
    Some(match (str_of(a), str_of(b)) {
        (Some(x), Some(y)) => ci_cmp(x, y),
        _ => ci_cmp(&a.to_string(), &b.to_string()),
    })
}

fn str_of(v: &Value) -> Option<&str> {
    match v {
        Value::Text(s) | Value::Decimal(s) | Value::DateTime(s) | Value::Guid(s) => Some(s),
        _ => None,
    }
}

/// `yyyy-mm-dd hh:mm:ss.fff`, as the simulator writes every datetime.
fn canonical_dt(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 23 && b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[13] == b':' && b[19] == b'.'
}

/// Case-insensitive order, trailing spaces ignored (SQL Server's default collation).
fn ci_cmp(x: &str, y: &str) -> Ordering {
    let (x, y) = (x.trim_end(), y.trim_end());
    if x.is_ascii() && y.is_ascii() {
        x.bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(y.bytes().map(|c| c.to_ascii_lowercase()))
    } else {
        x.chars()
            .flat_map(char::to_lowercase)
            .cmp(y.chars().flat_map(char::to_lowercase))
    }
}

pub fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(*b),
        other => other.as_f64().map(|f| f != 0.0),
    }
}

/// SQL LIKE with `%`, `_` and `[...]` classes, case-insensitive.
pub fn like(s: &str, pat: &str) -> bool {
    let s: Vec<char> = s.to_lowercase().chars().collect();
    let p: Vec<char> = pat.to_lowercase().chars().collect();
    like_at(&s, 0, &p, 0)
}

fn like_at(s: &[char], i: usize, p: &[char], j: usize) -> bool {
    if j == p.len() {
        return i == s.len();
    }
    match p[j] {
        '%' => (i..=s.len()).any(|k| like_at(s, k, p, j + 1)),
        '_' => i < s.len() && like_at(s, i + 1, p, j + 1),
        '[' => {
            let Some(end) = p[j + 1..].iter().position(|c| *c == ']').map(|e| j + 1 + e) else {
                return i < s.len() && s[i] == '[' && like_at(s, i + 1, p, j + 1);
            };
            if i >= s.len() {
                return false;
            }
            let class = &p[j + 1..end];
            let (neg, class) = if class.first() == Some(&'^') {
                (true, &class[1..])
            } else {
                (false, class)
            };
            let mut hit = false;
            let mut k = 0;
            while k < class.len() {
                if k + 2 < class.len() && class[k + 1] == '-' {
                    if class[k] <= s[i] && s[i] <= class[k + 2] {
                        hit = true;
                    }
                    k += 3;
                } else {
                    if class[k] == s[i] {
                        hit = true;
                    }
                    k += 1;
                }
            }
            hit != neg && like_at(s, i + 1, p, end + 1)
        }
        c => i < s.len() && s[i] == c && like_at(s, i + 1, p, j + 1),
    }
}

/// SQL Server `run_date` (yyyymmdd) and `run_time` (hhmmss) integers.
pub fn agent_date(t: NaiveDateTime) -> i64 {
    t.format("%Y%m%d").to_string().parse().unwrap_or(0)
}
pub fn agent_time(t: NaiveDateTime) -> i64 {
    t.format("%H%M%S").to_string().parse().unwrap_or(0)
}

/// The SQL type name to describe a column of these values.
pub fn infer_type(values: &[&Value]) -> &'static str {
    let mut ty = None;
    for v in values {
        let t = match v {
            Value::Null => continue,
            Value::Bool(_) => "bit",
            Value::Int(i) if *i > i64::from(i32::MAX) || *i < i64::from(i32::MIN) => "bigint",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Decimal(_) => "decimal",
            Value::Text(_) => "nvarchar",
            Value::DateTime(_) => "datetime",
            Value::Guid(_) => "uniqueidentifier",
            Value::Binary(_) => "varbinary",
        };
        ty = Some(match (ty, t) {
            (None, t) => t,
            (Some(a), b) if a == b => a,
            (Some("int"), "bigint") | (Some("bigint"), "int") => "bigint",
            (Some("int" | "bigint" | "bit"), "float")
            | (Some("float"), "int" | "bigint" | "bit") => "float",
            (Some("bit"), "int") | (Some("int"), "bit") => "int",
            _ => "nvarchar",
        });
    }
    ty.unwrap_or("int")
}

#[cfg(test)]
mod tests {
    #[test]
    fn dt_matches_the_chrono_format() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 3, 4)
            .and_then(|d| d.and_hms_milli_opt(5, 6, 7, 89))
            .expect("valid");
        assert_eq!(
            super::dt(t),
            btsdr_types::Value::DateTime(t.format(super::DT_FMT).to_string())
        );
        assert_eq!(super::dt(t).to_string(), "2026-03-04 05:06:07.089");
    }

    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like(
            "BTS Log Shipping - Get Backup History",
            "BTS%Log Shipping%"
        ));
        assert!(like("NT SERVICE\\SQLAgent", "NT SERVICE\\%"));
        assert!(!like("abc", "a_"));
        assert!(like("a1", "a[0-9]"));
        assert!(like("\\\\srv\\share", "\\\\%"));
    }
}
