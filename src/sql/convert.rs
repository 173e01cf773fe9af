//! tiberius rows and errors → the plain types of `btsdr_types`.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use futures_util::TryStreamExt;
use tiberius::{ColumnData, ColumnType, FromSql, QueryItem, QueryStream};

use btsdr_types::{Column, ResultSet, Rows, SqlError, Value};

/// How much of one result is kept in memory; the server's further rows are read (so the
/// connection stays usable) and counted in `ResultSet::not_kept`, never stored.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub rows: u64,
    pub bytes: u64,
    /// The connection's read meter, reset at every row (see `connect::Meter`).
    pub meter: Option<super::connect::Meter>,
}

impl Limits {
    pub fn of(p: &crate::config::ServerProfile) -> Limits {
        Limits {
            rows: p.max_result_rows,
            bytes: p.max_result_mib.saturating_mul(1 << 20),
            meter: None,
        }
    }
}

/// Reads every result set of a reply, keeping at most `limits` of each.
pub(crate) async fn collect(
    mut stream: QueryStream<'_>,
    limits: Limits,
) -> Result<Vec<ResultSet>, tiberius::error::Error> {
    let mut sets: Vec<(Vec<tiberius::Column>, ResultSet)> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    while let Some(item) = stream.try_next().await? {
        if let Some(m) = &limits.meter {
            m.reset();
        }
        match item {
            QueryItem::Metadata(m) => {
                let cols = m.columns().to_vec();
                let rs = ResultSet {
                    not_kept: 0,
                    columns: cols
                        .iter()
                        .map(|c| Column {
                            name: c.name().to_string(),
                            type_name: type_name(c.column_type(), None).to_string(),
                        })
                        .collect(),
                    rows: Rows::new(),
                };
                sets.push((cols, rs));
            }
            QueryItem::Row(row) => {
                if sets.is_empty() {
                    return Err(tiberius::error::Error::Protocol(
                        "a row arrived before its columns".into(),
                    ));
                }
                let Some((_, rs)) = sets.last_mut() else {
                    continue;
                };
                // Once over a limit, every further row is only counted: memory stays bounded
                // however long the server goes on.
                if rs.not_kept > 0
                    || rs.rows.len() as u64 >= limits.rows
                    || rs.rows.heap_bytes() as u64 >= limits.bytes
                {
                    rs.not_kept = rs.not_kept.saturating_add(1);
                    continue;
                }
                values.clear();
                for (i, (col, data)) in row.cells().enumerate() {
                    // Nullable int/float/datetime columns only say their width in the data.
                    if let Some(c) = rs.columns.get_mut(i)
                        && matches!(
                            col.column_type(),
                            ColumnType::Intn | ColumnType::Floatn | ColumnType::Datetimen
                        )
                    {
                        c.type_name = type_name(col.column_type(), Some(data)).to_string();
                    }
                    values.push(value(col.column_type(), data)?);
                }
                rs.rows.push(values.drain(..));
            }
        }
    }
    Ok(sets
        .into_iter()
        .map(|(_, mut rs)| {
            rs.rows.shrink_to_fit();
            rs
        })
        .collect())
}

/// The SQL type name for a column, refined by a value when the type alone is ambiguous.
pub(crate) fn type_name(t: ColumnType, data: Option<&ColumnData<'_>>) -> &'static str {
    match t {
        ColumnType::Null => "null",
        ColumnType::Bit | ColumnType::Bitn => "bit",
        ColumnType::Int1 => "tinyint",
        ColumnType::Int2 => "smallint",
        ColumnType::Int4 => "int",
        ColumnType::Int8 => "bigint",
        ColumnType::Intn => match data {
            Some(ColumnData::U8(_)) => "tinyint",
            Some(ColumnData::I16(_)) => "smallint",
            Some(ColumnData::I64(_)) => "bigint",
            _ => "int",
        },
        ColumnType::Datetime4 => "smalldatetime",
        ColumnType::Float4 => "real",
        ColumnType::Float8 => "float",
        ColumnType::Floatn => match data {
            Some(ColumnData::F32(_)) => "real",
            _ => "float",
        },
        ColumnType::Money => "money",
        ColumnType::Money4 => "smallmoney",
        ColumnType::Datetime => "datetime",
        ColumnType::Datetimen => match data {
            Some(ColumnData::SmallDateTime(_)) => "smalldatetime",
            _ => "datetime",
        },
        ColumnType::Guid => "uniqueidentifier",
        ColumnType::Decimaln => "decimal",
        ColumnType::Numericn => "numeric",
        ColumnType::Daten => "date",
        ColumnType::Timen => "time",
        ColumnType::Datetime2 => "datetime2",
        ColumnType::DatetimeOffsetn => "datetimeoffset",
        ColumnType::BigVarBin => "varbinary",
        ColumnType::BigVarChar => "varchar",
        ColumnType::BigBinary => "binary",
        ColumnType::BigChar => "char",
        ColumnType::NVarchar => "nvarchar",
        ColumnType::NChar => "nchar",
        ColumnType::Xml => "xml",
        ColumnType::Udt => "udt",
        ColumnType::Text => "text",
        ColumnType::Image => "image",
        ColumnType::NText => "ntext",
        ColumnType::SSVariant => "sql_variant",
    }
}

/// One cell as a `Value`: exact text for decimals and money, ISO text for dates.
pub(crate) fn value(
    t: ColumnType,
    d: &ColumnData<'static>,
) -> Result<Value, tiberius::error::Error> {
    let conv = |what: &str| {
        tiberius::error::Error::Conversion(format!("cannot decode a {what} value").into())
    };
    Ok(match d {
        ColumnData::U8(v) => v.map_or(Value::Null, |x| Value::Int(i64::from(x))),
        ColumnData::I16(v) => v.map_or(Value::Null, |x| Value::Int(i64::from(x))),
        ColumnData::I32(v) => v.map_or(Value::Null, |x| Value::Int(i64::from(x))),
        ColumnData::I64(v) => v.map_or(Value::Null, Value::Int),
        // Through its shortest text so 1.1f32 stays 1.1, not 1.100000023841858.
        ColumnData::F32(v) => v.map_or(Value::Null, |x| {
            Value::Float(x.to_string().parse().unwrap_or(f64::from(x)))
        }),
        ColumnData::F64(v) => match (v, t) {
            (None, _) => Value::Null,
            // tiberius decodes money as f64 (value / 10^4); 4 places give back the exact text.
            (Some(x), ColumnType::Money | ColumnType::Money4) => Value::Decimal(format!("{x:.4}")),
            (Some(x), _) => Value::Float(*x),
        },
        ColumnData::Bit(v) => v.map_or(Value::Null, Value::Bool),
        ColumnData::String(v) => v
            .as_ref()
            .map_or(Value::Null, |s| Value::Text(s.to_string())),
        ColumnData::Guid(v) => v.map_or(Value::Null, |g| {
            Value::Guid(g.hyphenated().to_string().to_ascii_uppercase())
        }),
        ColumnData::Binary(v) => v
            .as_ref()
            .map_or(Value::Null, |b| Value::Binary(b.to_vec())),
        ColumnData::Numeric(v) => v.map_or(Value::Null, |n| {
            Value::Decimal(decimal_text(n.value(), n.scale()))
        }),
        ColumnData::Xml(v) => v
            .as_ref()
            .map_or(Value::Null, |x| Value::Text(x.to_string())),
        ColumnData::DateTime(v) => match v {
            None => Value::Null,
            Some(dt) => {
                // 1/300 s ticks, shown in milliseconds the way SQL Server rounds them.
                let ms = (u64::from(dt.seconds_fragments()) * 10 + 1) / 3;
                let date = NaiveDate::from_ymd_opt(1900, 1, 1)
                    .and_then(|d| {
                        d.checked_add_signed(chrono::Duration::days(i64::from(dt.days())))
                    })
                    .ok_or_else(|| conv("datetime"))?;
                let time = NaiveTime::from_num_seconds_from_midnight_opt(
                    (ms / 1000) as u32,
                    ((ms % 1000) * 1_000_000) as u32,
                )
                .ok_or_else(|| conv("datetime"))?;
                Value::DateTime(format!(
                    "{}",
                    NaiveDateTime::new(date, time).format("%Y-%m-%d %H:%M:%S%.3f")
                ))
            }
        },
        ColumnData::SmallDateTime(None) | ColumnData::DateTime2(None) => Value::Null,
        ColumnData::SmallDateTime(Some(_)) => {
            let dt = NaiveDateTime::from_sql(d)?.ok_or_else(|| conv("smalldatetime"))?;
            Value::DateTime(dt.format("%Y-%m-%d %H:%M:%S").to_string())
        }
        ColumnData::DateTime2(Some(v)) => {
            let dt = NaiveDateTime::from_sql(d)?.ok_or_else(|| conv("datetime2"))?;
            Value::DateTime(format!(
                "{}{}",
                dt.format("%Y-%m-%d %H:%M:%S"),
                fraction(dt.nanosecond(), v.time().scale())
            ))
        }
        ColumnData::Date(v) => match v {
            None => Value::Null,
            Some(_) => {
                let date = NaiveDate::from_sql(d)?.ok_or_else(|| conv("date"))?;
                Value::DateTime(date.format("%Y-%m-%d").to_string())
            }
        },
        ColumnData::Time(v) => match v {
            None => Value::Null,
            Some(t) => {
                let time = NaiveTime::from_sql(d)?.ok_or_else(|| conv("time"))?;
                Value::DateTime(format!(
                    "{}{}",
                    time.format("%H:%M:%S"),
                    fraction(time.nanosecond(), t.scale())
                ))
            }
        },
        ColumnData::DateTimeOffset(v) => match v {
            None => Value::Null,
            Some(o) => {
                let dt = chrono::DateTime::<chrono::FixedOffset>::from_sql(d)?
                    .ok_or_else(|| conv("datetimeoffset"))?;
                Value::DateTime(format!(
                    "{}{} {}",
                    dt.format("%Y-%m-%d %H:%M:%S"),
                    fraction(dt.nanosecond(), o.datetime2().time().scale()),
                    dt.format("%:z")
                ))
            }
        },
    })
}

/// `.fffffff` with `scale` digits (none for scale 0).
fn fraction(nanos: u32, scale: u8) -> String {
    if scale == 0 {
        return String::new();
    }
    let scale = u32::from(scale.min(9));
    let v = (nanos % 1_000_000_000) / 10u32.pow(9 - scale);
    format!(".{v:0width$}", width = scale as usize)
}

/// Exact decimal text of `value / 10^scale`.
pub(crate) fn decimal_text(value: i128, scale: u8) -> String {
    let digits = value.unsigned_abs().to_string();
    let sign = if value < 0 { "-" } else { "" };
    let scale = usize::from(scale);
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// A tiberius error while running a statement, as the executor reports it. The bool says
/// whether the connection must be dropped.
pub(crate) fn statement_error(e: tiberius::error::Error) -> (SqlError, bool) {
    match e {
        tiberius::error::Error::Server(t) => {
            // Severity 20 and above closes the connection on the server.
            let fatal = t.class() >= 20;
            (
                SqlError::Server {
                    number: t.code(),
                    severity: t.class(),
                    state: t.state(),
                    procedure: t.procedure().to_string(),
                    line: t.line(),
                    message: t.message().to_string(),
                },
                fatal,
            )
        }
        tiberius::error::Error::Io { message, .. } => (SqlError::Dropped { message }, true),
        tiberius::error::Error::Tls(message) => (SqlError::Dropped { message }, true),
        other => (
            SqlError::Protocol {
                message: other.to_string(),
            },
            true,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal_text(12345, 2), "123.45");
        assert_eq!(decimal_text(-5, 3), "-0.005");
        assert_eq!(decimal_text(7, 0), "7");
        assert_eq!(decimal_text(0, 2), "0.00");
        assert!(
            decimal_text(i128::MAX, 38).starts_with("1.70141183460469231731687303715884105727")
        );
    }

    #[test]
    fn fractions() {
        assert_eq!(fraction(123_456_700, 7), ".1234567");
        assert_eq!(fraction(120_000_000, 3), ".120");
        assert_eq!(fraction(999_999_999, 0), "");
    }

    #[test]
    fn datetime_ticks_round_like_sql_server() {
        let d = |frag| {
            value(
                ColumnType::Datetime,
                &ColumnData::DateTime(Some(tiberius::time::DateTime::new(0, frag))),
            )
            .unwrap()
        };
        assert_eq!(d(1), Value::DateTime("1900-01-01 00:00:00.003".into()));
        assert_eq!(d(2), Value::DateTime("1900-01-01 00:00:00.007".into()));
        assert_eq!(d(300), Value::DateTime("1900-01-01 00:00:01.000".into()));
    }

    #[test]
    fn money_is_text() {
        assert_eq!(
            value(ColumnType::Money, &ColumnData::F64(Some(12.5))).unwrap(),
            Value::Decimal("12.5000".into())
        );
        assert_eq!(
            value(ColumnType::Float8, &ColumnData::F64(Some(12.5))).unwrap(),
            Value::Float(12.5)
        );
    }
}
