//! Result rows stored compactly.
//!
//! A result can hold hundreds of thousands of rows (a msdb history, a long listing), and the
//! whole result stays in memory for assertions and the output pane. As `Vec<Vec<Value>>` each
//! row costs a vector and each text value a heap string (about 320 bytes for a four-column
//! row of short names); here a value is one 16-byte [`Cell`] in a single vector and all text
//! and binary data sits in one arena per result (about 140 bytes for the same row).
//! Values are read back as [`ValueRef`]s that borrow from the arena. The store is shared
//! between clones, so handing a result to the engine and to the output pane copies nothing.

use std::fmt;
use std::sync::Arc;

use serde::de::Deserializer;
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use super::types::Value;

/// A value read from [`Rows`]: like [`Value`], borrowing its text.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "t", content = "v")]
pub enum ValueRef<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Decimal(&'a str),
    Text(&'a str),
    DateTime(&'a str),
    Guid(&'a str),
    Binary(&'a [u8]),
}

impl<'a> ValueRef<'a> {
    pub fn is_null(self) -> bool {
        matches!(self, ValueRef::Null)
    }

    /// Numeric view for comparisons (bools are 0/1).
    pub fn as_f64(self) -> Option<f64> {
        match self {
            ValueRef::Bool(b) => Some(f64::from(u8::from(b))),
            ValueRef::Int(i) => Some(i as f64),
            ValueRef::Float(f) => Some(f),
            ValueRef::Decimal(s) | ValueRef::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The text of a text-like value (text, decimal, datetime, guid).
    pub fn as_str(self) -> Option<&'a str> {
        match self {
            ValueRef::Decimal(s)
            | ValueRef::Text(s)
            | ValueRef::DateTime(s)
            | ValueRef::Guid(s) => Some(s),
            _ => None,
        }
    }

    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Float(f) => Value::Float(f),
            ValueRef::Decimal(s) => Value::Decimal(s.to_string()),
            ValueRef::Text(s) => Value::Text(s.to_string()),
            ValueRef::DateTime(s) => Value::DateTime(s.to_string()),
            ValueRef::Guid(s) => Value::Guid(s.to_string()),
            ValueRef::Binary(b) => Value::Binary(b.to_vec()),
        }
    }
}

impl fmt::Display for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueRef::Null => f.write_str("NULL"),
            ValueRef::Bool(b) => f.write_str(if *b { "1" } else { "0" }),
            ValueRef::Int(i) => write!(f, "{i}"),
            ValueRef::Float(x) => write!(f, "{x}"),
            ValueRef::Decimal(s)
            | ValueRef::Text(s)
            | ValueRef::DateTime(s)
            | ValueRef::Guid(s) => f.write_str(s),
            ValueRef::Binary(b) => {
                f.write_str("0x")?;
                for byte in *b {
                    write!(f, "{byte:02X}")?;
                }
                Ok(())
            }
        }
    }
}

impl PartialEq<Value> for ValueRef<'_> {
    fn eq(&self, other: &Value) -> bool {
        *self == other.as_ref()
    }
}

impl PartialEq<ValueRef<'_>> for Value {
    fn eq(&self, other: &ValueRef<'_>) -> bool {
        self.as_ref() == *other
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextKind {
    Decimal,
    Text,
    DateTime,
    Guid,
}

/// One stored value: 16 bytes; text and bytes live in the arenas of [`Rows`].
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text {
        kind: TextKind,
        start: u32,
        len: u32,
    },
    Binary {
        start: u32,
        len: u32,
    },
    /// A value that did not fit: a result holds at most 4 GiB of text and 4 GiB of bytes.
    Dropped,
}

const DROPPED: &str = "(value not kept: the result holds over 4 GiB of data)";

/// The rows of one result set. Rows may differ in length (a result's rows do not, but the
/// store does not depend on it).
///
/// Cloning is cheap (the data is shared and copied only when a shared store is changed), so
/// the engine, the output pane and the journal can each hold a result without copying it.
#[derive(Default)]
pub struct Rows {
    data: Arc<Data>,
    /// Short text values already stored, while rows are being added.
    intern: Option<Box<Intern>>,
}

impl Clone for Rows {
    /// Shares the data; the copy starts a fresh table of stored values if it grows.
    fn clone(&self) -> Rows {
        Rows {
            data: Arc::clone(&self.data),
            intern: None,
        }
    }
}

/// Values at most this long are stored once per result however often they repeat (a state,
/// a backup type, a server or database name, a date).
const INTERN_MAX_LEN: usize = 64;
/// How many distinct values the table remembers (about 80 KB); later ones are stored as they
/// come.
const INTERN_MAX_ENTRIES: usize = 4096;

/// Where short text values already sit in the arena, by hash. A hash collision costs only a
/// missed saving: a match is always checked against the arena.
#[derive(Default)]
struct Intern {
    seen: std::collections::HashMap<u64, (u32, u32)>,
}

impl Intern {
    fn key(s: &str) -> Option<u64> {
        use std::hash::BuildHasher;
        (s.len() <= INTERN_MAX_LEN)
            .then(|| foldhash::fast::FixedState::with_seed(0).hash_one(s.as_bytes()))
    }
}

#[derive(Clone, Default, PartialEq)]
struct Data {
    cells: Vec<Cell>,
    /// Where each row ends in `cells`.
    ends: Vec<usize>,
    text: String,
    bytes: Vec<u8>,
}

impl PartialEq for Rows {
    fn eq(&self, other: &Rows) -> bool {
        Arc::ptr_eq(&self.data, &other.data) || self.data == other.data
    }
}

impl Rows {
    pub fn new() -> Rows {
        Rows::default()
    }

    pub fn len(&self) -> usize {
        self.data.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.ends.is_empty()
    }

    /// Appends a row.
    pub fn push<V: Into<Value>>(&mut self, row: impl IntoIterator<Item = V>) {
        let d = Arc::make_mut(&mut self.data);
        let intern = self.intern.get_or_insert_with(Box::default);
        for v in row {
            d.push_cell(v.into().as_ref(), intern);
        }
        d.ends.push(d.cells.len());
    }

    /// Appends a row of borrowed values.
    pub fn push_refs<'v>(&mut self, row: impl IntoIterator<Item = ValueRef<'v>>) {
        let d = Arc::make_mut(&mut self.data);
        let intern = self.intern.get_or_insert_with(Box::default);
        for v in row {
            d.push_cell(v, intern);
        }
        d.ends.push(d.cells.len());
    }

    pub fn get(&self, i: usize) -> Option<Row<'_>> {
        self.data.row(i)
    }

    pub fn first(&self) -> Option<Row<'_>> {
        self.get(0)
    }

    pub fn last(&self) -> Option<Row<'_>> {
        self.get(self.len().checked_sub(1)?)
    }

    pub fn iter(&self) -> RowsIter<'_> {
        RowsIter {
            data: &self.data,
            i: 0,
        }
    }

    /// Rows `range` (clamped to what exists).
    pub fn slice(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = Row<'_>> + '_ {
        let end = range.end.min(self.len());
        (range.start.min(end)..end).filter_map(move |i| self.get(i))
    }

    /// Keeps the first `n` rows. A shared store is not copied whole: the kept rows are.
    pub fn truncate(&mut self, n: usize) {
        if n >= self.len() {
            return;
        }
        if let Some(d) = Arc::get_mut(&mut self.data) {
            d.ends.truncate(n);
            d.cells.truncate(d.ends.last().copied().unwrap_or(0));
        } else {
            let mut kept = Rows::new();
            for r in self.iter().take(n) {
                kept.push_refs(r);
            }
            *self = kept;
        }
    }

    /// A copy with every value passed through `f`.
    #[must_use]
    pub fn map_values(&self, mut f: impl FnMut(ValueRef<'_>) -> Value) -> Rows {
        let mut out = Rows::new();
        for r in self.iter() {
            out.push(r.iter().map(&mut f));
        }
        out
    }

    /// Gives back the room vectors keep for growth (call once a result is complete).
    pub fn shrink_to_fit(&mut self) {
        self.intern = None;
        if let Some(d) = Arc::get_mut(&mut self.data) {
            d.cells.shrink_to_fit();
            d.ends.shrink_to_fit();
            d.text.shrink_to_fit();
            d.bytes.shrink_to_fit();
        }
    }

    /// Bytes held, for measurements.
    pub fn heap_bytes(&self) -> usize {
        let d = &self.data;
        d.cells.capacity() * std::mem::size_of::<Cell>()
            + d.ends.capacity() * std::mem::size_of::<usize>()
            + d.text.capacity()
            + d.bytes.capacity()
    }
}

impl Data {
    fn push_cell(&mut self, v: ValueRef<'_>, intern: &mut Intern) {
        let mut text = |rows: &mut Data, kind: TextKind, s: &str| -> Cell {
            let key = Intern::key(s);
            if let Some(&(start, len)) = key.and_then(|k| intern.seen.get(&k)) {
                let at = start as usize..start as usize + len as usize;
                if rows.text.get(at) == Some(s) {
                    return Cell::Text { kind, start, len };
                }
            }
            match (u32::try_from(rows.text.len()), u32::try_from(s.len())) {
                (Ok(start), Ok(len)) if start.checked_add(len).is_some() => {
                    rows.text.push_str(s);
                    if let Some(k) = key.filter(|_| intern.seen.len() < INTERN_MAX_ENTRIES) {
                        intern.seen.entry(k).or_insert((start, len));
                    }
                    Cell::Text { kind, start, len }
                }
                _ => Cell::Dropped,
            }
        };
        let cell = match v {
            ValueRef::Null => Cell::Null,
            ValueRef::Bool(b) => Cell::Bool(b),
            ValueRef::Int(i) => Cell::Int(i),
            ValueRef::Float(f) => Cell::Float(f),
            ValueRef::Decimal(s) => text(self, TextKind::Decimal, s),
            ValueRef::Text(s) => text(self, TextKind::Text, s),
            ValueRef::DateTime(s) => text(self, TextKind::DateTime, s),
            ValueRef::Guid(s) => text(self, TextKind::Guid, s),
            ValueRef::Binary(b) => {
                match (u32::try_from(self.bytes.len()), u32::try_from(b.len())) {
                    (Ok(start), Ok(len)) if start.checked_add(len).is_some() => {
                        self.bytes.extend_from_slice(b);
                        Cell::Binary { start, len }
                    }
                    _ => Cell::Dropped,
                }
            }
        };
        self.cells.push(cell);
    }

    fn row(&self, i: usize) -> Option<Row<'_>> {
        let end = *self.ends.get(i)?;
        let start = match i.checked_sub(1) {
            Some(p) => self.ends.get(p).copied().unwrap_or(0),
            None => 0,
        };
        Some(Row {
            data: self,
            cells: self.cells.get(start..end).unwrap_or_default(),
        })
    }

    fn value(&self, c: Cell) -> ValueRef<'_> {
        match c {
            Cell::Null => ValueRef::Null,
            Cell::Bool(b) => ValueRef::Bool(b),
            Cell::Int(i) => ValueRef::Int(i),
            Cell::Float(f) => ValueRef::Float(f),
            Cell::Text { kind, start, len } => {
                let s = self
                    .text
                    .get(start as usize..start as usize + len as usize)
                    .unwrap_or_default();
                match kind {
                    TextKind::Decimal => ValueRef::Decimal(s),
                    TextKind::Text => ValueRef::Text(s),
                    TextKind::DateTime => ValueRef::DateTime(s),
                    TextKind::Guid => ValueRef::Guid(s),
                }
            }
            Cell::Binary { start, len } => ValueRef::Binary(
                self.bytes
                    .get(start as usize..start as usize + len as usize)
                    .unwrap_or_default(),
            ),
            Cell::Dropped => ValueRef::Text(DROPPED),
        }
    }
}

/// One row of [`Rows`].
#[derive(Clone, Copy)]
pub struct Row<'a> {
    data: &'a Data,
    cells: &'a [Cell],
}

impl<'a> Row<'a> {
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<ValueRef<'a>> {
        self.cells.get(i).map(|c| self.data.value(*c))
    }

    pub fn iter(&self) -> RowIter<'a> {
        RowIter {
            data: self.data,
            cells: self.cells.iter(),
        }
    }

    pub fn to_vec(&self) -> Vec<Value> {
        self.iter().map(ValueRef::to_value).collect()
    }
}

/// The rows of [`Rows`], in order.
#[derive(Clone)]
pub struct RowsIter<'a> {
    data: &'a Data,
    i: usize,
}

impl<'a> Iterator for RowsIter<'a> {
    type Item = Row<'a>;
    fn next(&mut self) -> Option<Row<'a>> {
        let r = self.data.row(self.i)?;
        self.i += 1;
        Some(r)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.data.ends.len().saturating_sub(self.i);
        (n, Some(n))
    }
}

impl ExactSizeIterator for RowsIter<'_> {}

impl<'a> IntoIterator for &'a Rows {
    type Item = Row<'a>;
    type IntoIter = RowsIter<'a>;
    fn into_iter(self) -> RowsIter<'a> {
        self.iter()
    }
}

/// The values of a [`Row`], in column order.
#[derive(Clone)]
pub struct RowIter<'a> {
    data: &'a Data,
    cells: std::slice::Iter<'a, Cell>,
}

impl<'a> Iterator for RowIter<'a> {
    type Item = ValueRef<'a>;
    fn next(&mut self) -> Option<ValueRef<'a>> {
        self.cells.next().map(|c| self.data.value(*c))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.cells.size_hint()
    }
}

impl ExactSizeIterator for RowIter<'_> {}

impl<'a> IntoIterator for Row<'a> {
    type Item = ValueRef<'a>;
    type IntoIter = RowIter<'a>;
    fn into_iter(self) -> RowIter<'a> {
        self.iter()
    }
}

impl fmt::Debug for Row<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq<Vec<Value>> for Row<'_> {
    fn eq(&self, other: &Vec<Value>) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == *b)
    }
}

impl fmt::Debug for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<V: Into<Value>, R: IntoIterator<Item = V>> FromIterator<R> for Rows {
    fn from_iter<I: IntoIterator<Item = R>>(iter: I) -> Rows {
        let mut rows = Rows::new();
        for r in iter {
            rows.push(r);
        }
        rows.shrink_to_fit();
        rows
    }
}

impl From<Vec<Vec<Value>>> for Rows {
    fn from(v: Vec<Vec<Value>>) -> Rows {
        v.into_iter().collect()
    }
}

impl PartialEq<Vec<Vec<Value>>> for Rows {
    fn eq(&self, other: &Vec<Vec<Value>>) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == *b)
    }
}

/// Serialized as a list of rows of values, exactly like `Vec<Vec<Value>>`, so journals and
/// JSON output keep their format.
impl Serialize for Rows {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct RowSer<'a>(Row<'a>);
        impl Serialize for RowSer<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for v in self.0.iter() {
                    seq.serialize_element(&v)?;
                }
                seq.end()
            }
        }
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for r in self.iter() {
            seq.serialize_element(&RowSer(r))?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Rows {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rows, D::Error> {
        Vec::<Vec<Value>>::deserialize(d).map(Rows::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Vec<Value>> {
        vec![
            vec![
                Value::Text("BizTalkMgmtDb".into()),
                Value::Int(-3),
                Value::Null,
                Value::Bool(true),
            ],
            vec![
                Value::Decimal("12.50".into()),
                Value::Float(0.5),
                Value::DateTime("2026-11-21 02:00:00.000".into()),
                Value::Binary(vec![0, 255]),
            ],
            vec![],
            vec![Value::Guid("6F9619FF-8B86-D011-B42D-00C04FC964FF".into())],
        ]
    }

    #[test]
    fn values_round_trip_and_rows_keep_their_lengths() {
        let v = sample();
        let rows = Rows::from(v.clone());
        assert_eq!(rows.len(), 4);
        assert_eq!(rows, v);
        assert_eq!(rows.get(2).map(|r| r.len()), Some(0));
        let back: Vec<Vec<Value>> = rows.iter().map(|r| r.to_vec()).collect();
        assert_eq!(back, v);
        assert_eq!(
            rows.get(1).and_then(|r| r.get(3)).map(|x| x.to_string()),
            Some("0x00FF".into())
        );
        assert!(rows.get(4).is_none());
        assert_eq!(rows.last().map(|r| r.len()), Some(1));
    }

    #[test]
    fn serializes_exactly_like_nested_vectors() {
        let v = sample();
        let rows = Rows::from(v.clone());
        let a = serde_json::to_string(&rows).expect("json");
        let b = serde_json::to_string(&v).expect("json");
        assert_eq!(a, b);
        let again: Rows = serde_json::from_str(&a).expect("parse");
        assert_eq!(again, rows);
    }

    #[test]
    fn truncate_and_map_values() {
        let mut rows = Rows::from(sample());
        rows.truncate(2);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows, sample()[..2].to_vec());
        let upper = rows.map_values(|v| match v {
            ValueRef::Text(s) => Value::Text(s.to_uppercase()),
            other => other.to_value(),
        });
        assert_eq!(
            upper.get(0).and_then(|r| r.get(0)),
            Some(ValueRef::Text("BIZTALKMGMTDB"))
        );
        assert_eq!(
            upper.get(1).map(|r| r.to_vec()),
            rows.get(1).map(|r| r.to_vec())
        );
    }

    #[test]
    fn clones_share_and_truncating_a_shared_store_leaves_the_other_whole() {
        let a = Rows::from(sample());
        let mut b = a.clone();
        assert_eq!(a.heap_bytes(), b.heap_bytes());
        b.truncate(1);
        assert_eq!((a.len(), b.len()), (4, 1));
        assert_eq!(a, sample());
        assert_eq!(b, sample()[..1].to_vec());
        b.push(vec![Value::Int(7)]);
        assert_eq!(a.len(), 4);
        assert_eq!(b.get(1).map(|r| r.to_vec()), Some(vec![Value::Int(7)]));
    }

    #[test]
    fn a_short_text_row_costs_a_fraction_of_nested_vectors() {
        let rows: Rows = (0..10_000)
            .map(|i| {
                vec![
                    Value::Text(format!("BizTalkDatabase{i:06}")),
                    Value::Text("ONLINE".into()),
                    Value::Int(i),
                    Value::DateTime("2026-11-01 02:00:00.000".into()),
                ]
            })
            .collect();
        assert_eq!(std::mem::size_of::<Cell>(), 16);
        // 4 cells (64 B) + row end (8 B) + 50 B of text, plus vector growth.
        let per_row = rows.heap_bytes() / rows.len();
        assert!(per_row < 250, "{per_row} bytes per row");
    }

    #[test]
    fn repeated_short_values_are_stored_once_and_read_back_as_given() {
        let long = "x".repeat(INTERN_MAX_LEN + 1);
        let mut rows = Rows::new();
        let mut want = Vec::new();
        for i in 0..1_000 {
            let row = vec![
                Value::Text("ONLINE".into()),
                // The same text as another kind keeps its own kind.
                Value::DateTime("ONLINE".into()),
                Value::Text(format!("db{}", i % 7)),
                Value::Text(long.clone()),
                Value::Text(String::new()),
            ];
            rows.push(row.clone());
            want.push(row);
        }
        assert_eq!(rows, want);
        let distinct = "ONLINE".len() + (0..7).map(|i| format!("db{i}").len()).sum::<usize>();
        assert_eq!(rows.data.text.len(), distinct + 1_000 * long.len());

        // Past the table's size, values are still stored and read back; a clone that grows
        // starts its own table and leaves the original as it was.
        let mut many = Rows::new();
        let n = INTERN_MAX_ENTRIES + 100;
        for i in 0..n {
            many.push(vec![Value::Text(format!("v{i}"))]);
            many.push(vec![Value::Text(format!("v{i}"))]);
        }
        let mut copy = many.clone();
        copy.push(vec![Value::Text("v0".into())]);
        assert_eq!(many.len(), 2 * n);
        for i in 0..n {
            let v = Value::Text(format!("v{i}"));
            assert_eq!(many.get(2 * i).and_then(|r| r.get(0)), Some(v.as_ref()));
            assert_eq!(many.get(2 * i + 1).and_then(|r| r.get(0)), Some(v.as_ref()));
        }
        assert_eq!(
            copy.last().and_then(|r| r.get(0)),
            Some(ValueRef::Text("v0"))
        );
        // The table is dropped once the result is complete.
        many.shrink_to_fit();
        assert!(many.intern.is_none());
    }
}
