//! Token encoders for server replies (MS-TDS 2.2.7) and the Value -> wire conversions.

use chrono::{NaiveDate, NaiveDateTime, Timelike};

use crate::backend::Reply;
use btsdr_types::{ResultSet, ValueRef};

/// Server name written into ERROR and INFO tokens when the backend names none.
pub const SERVER_NAME: &str = "BTSDR-SIM";

/// How a reply is written: the server name in ERROR/INFO tokens (`@@SERVERNAME`) and
/// whether DONE tokens carry row counts at the start of the reply (`SET NOCOUNT OFF`).
#[derive(Debug, Clone, Copy)]
pub struct Wire<'a> {
    pub server: &'a str,
    pub counts: bool,
}

impl Default for Wire<'_> {
    fn default() -> Self {
        Wire {
            server: SERVER_NAME,
            counts: true,
        }
    }
}
/// SQL_Latin1_General_CP1_CI_AS (code page 1252).
pub const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];

pub const DONE_MORE: u16 = 0x01;
pub const DONE_ERROR: u16 = 0x02;
pub const DONE_COUNT: u16 = 0x10;
pub const DONE_ATTN: u16 = 0x20;
/// DONE's CurCmd as SQL Server sends it: SELECT, and INSERT for a row-count-only statement
/// (the simulator's replies do not say which data change; INSERT is 0xC3, DELETE 0xC4,
/// UPDATE 0xC5).
pub const CMD_SELECT: u16 = 0xC1;
pub const CMD_INSERT: u16 = 0xC3;

/// Builds a token stream.
#[derive(Default)]
pub struct Tokens(pub Vec<u8>);

impl Tokens {
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// B_VARCHAR: at most 255 UTF-16 units, longer text is cut.
    fn b_varchar(&mut self, s: &str) {
        let units: Vec<u16> = s.encode_utf16().take(255).collect();
        self.0.push(units.len() as u8);
        units.iter().for_each(|u| self.u16(*u));
    }
    /// A token with a u16 length prefix, filled in by `body`.
    fn with_len(&mut self, token: u8, body: impl FnOnce(&mut Tokens)) {
        self.0.push(token);
        let at = self.0.len();
        self.u16(0);
        body(self);
        let len = (self.0.len() - at - 2).min(usize::from(u16::MAX)) as u16;
        self.0[at..at + 2].copy_from_slice(&len.to_le_bytes());
    }

    pub fn login_ack(&mut self) {
        self.login_ack_version("15.0.2000");
    }

    /// LOGINACK announcing `version` (`major.minor.build`, as ProductVersion).
    pub fn login_ack_version(&mut self, version: &str) {
        let mut part = version
            .split('.')
            .map(|p| p.trim().parse::<u16>().unwrap_or(0));
        let major = part.next().unwrap_or(0).min(255) as u8;
        let minor = part.next().unwrap_or(0).min(255) as u8;
        let build = part.next().unwrap_or(0).to_be_bytes();
        self.with_len(0xAD, |t| {
            t.0.push(1); // SQL interface
            t.0.extend_from_slice(&0x7400_0004u32.to_be_bytes()); // TDS 7.4, big-endian
            t.b_varchar("Microsoft SQL Server");
            t.0.extend_from_slice(&[major, minor, build[0], build[1]]);
        });
    }

    pub fn env_string(&mut self, ty: u8, new: &str, old: &str) {
        self.with_len(0xE3, |t| {
            t.0.push(ty);
            t.b_varchar(new);
            t.b_varchar(old);
        });
    }

    pub fn env_bytes(&mut self, ty: u8, new: &[u8], old: &[u8]) {
        self.with_len(0xE3, |t| {
            t.0.push(ty);
            t.0.push(new.len() as u8);
            t.0.extend_from_slice(new);
            t.0.push(old.len() as u8);
            t.0.extend_from_slice(old);
        });
    }

    pub fn done(&mut self, status: u16, rows: Option<u64>) {
        self.done_of(CMD_SELECT, status, rows);
    }

    /// DONE for a statement of kind `cmd` (CurCmd; ODBC drivers report a row count only
    /// for a data change, not for CMD_SELECT).
    pub fn done_of(&mut self, cmd: u16, status: u16, rows: Option<u64>) {
        self.0.push(0xFD);
        self.u16(status | if rows.is_some() { DONE_COUNT } else { 0 });
        self.u16(cmd);
        self.0.extend_from_slice(&rows.unwrap_or(0).to_le_bytes());
    }

    /// The end of a procedure that returns a prepared-statement handle (`sp_prepare`,
    /// `sp_prepexec`): RETURNSTATUS 0, RETURNVALUE (an int OUTPUT parameter), DONEPROC.
    /// A DONE already at the end of `self` gets DONE_MORE, as more tokens follow it.
    pub fn proc_returns_handle(&mut self, handle: i32) {
        let n = self.0.len();
        if n >= 13 && self.0[n - 13] == 0xFD {
            self.0[n - 12] |= DONE_MORE as u8;
        }
        self.0.push(0x79); // RETURNSTATUS
        self.0.extend_from_slice(&0i32.to_le_bytes());
        self.0.push(0xAC); // RETURNVALUE
        self.u16(0); // ordinal of @handle
        self.b_varchar("@handle");
        self.0.push(0x01); // an OUTPUT parameter
        self.u32(0); // user type
        self.u16(0); // flags
        self.0.extend_from_slice(&[0x26, 4, 4]); // INTN(4), length 4
        self.0.extend_from_slice(&handle.to_le_bytes());
        self.0.push(0xFE); // DONEPROC
        self.u16(0);
        self.u16(0xE0); // current command: EXECUTE
        self.0.extend_from_slice(&0u64.to_le_bytes());
    }

    /// ERROR (0xAA) or INFO (0xAB).
    #[allow(clippy::too_many_arguments)]
    pub fn message(
        &mut self,
        server: &str,
        token: u8,
        number: u32,
        state: u8,
        class: u8,
        text: &str,
        procedure: &str,
        line: u32,
    ) {
        self.with_len(token, |t| {
            t.u32(number);
            t.0.push(state);
            t.0.push(class);
            let units: Vec<u16> = text
                .encode_utf16()
                .take(usize::from(u16::MAX) / 4)
                .collect();
            t.u16(units.len() as u16);
            units.iter().for_each(|u| t.u16(*u));
            t.b_varchar(server);
            t.b_varchar(procedure);
            t.u32(line);
        });
    }

    pub fn error(&mut self, server: &str, number: u32, class: u8, state: u8, text: &str) {
        self.message(server, 0xAA, number, state, class, text, "", 1);
    }

    /// COLMETADATA + ROWs, without the DONE. On error nothing is written.
    pub fn result_set(&mut self, rs: &ResultSet) -> Result<(), String> {
        self.result_set_marked(rs, &mut Vec::new())
    }

    /// `result_set`, noting in `marks` where each ROW token starts (offsets in `self`).
    fn result_set_marked(&mut self, rs: &ResultSet, marks: &mut Vec<usize>) -> Result<(), String> {
        let mut out = Tokens::default();
        let mut rows_at = Vec::with_capacity(rs.rows.len());
        let types = rs
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| ColType::resolve(&c.type_name, rs.rows.iter().filter_map(|r| r.get(i))))
            .collect::<Result<Vec<_>, _>>()?;
        if rs.columns.len() > 4096 {
            return Err(format!(
                "{} columns exceed the limit of 4096",
                rs.columns.len()
            ));
        }
        out.0.push(0x81);
        out.u16(rs.columns.len() as u16);
        for (col, ty) in rs.columns.iter().zip(&types) {
            out.u32(0); // user type
            out.u16(0x0001); // nullable
            ty.type_info(&mut out);
            out.b_varchar(&col.name);
        }
        for (r, row) in rs.rows.iter().enumerate() {
            if row.len() != types.len() {
                return Err(format!(
                    "row {} has {} values for {} columns",
                    r + 1,
                    row.len(),
                    types.len()
                ));
            }
            rows_at.push(out.0.len());
            out.0.push(0xD1);
            for ((v, ty), col) in row.iter().zip(&types).zip(&rs.columns) {
                ty.value(&mut out, v).map_err(|e| {
                    format!(
                        "row {}, column `{}` ({}): {e}",
                        r + 1,
                        col.name,
                        col.type_name
                    )
                })?;
            }
        }
        let base = self.0.len();
        marks.extend(rows_at.into_iter().map(|at| base + at));
        self.0.extend(out.0);
        Ok(())
    }
}

/// Encodes reply items. Returns the token bytes and whether the reply ends in a disconnect
/// (then the bytes are a cut-off reply without a final DONE).
pub fn encode_reply(wire: Wire<'_>, items: &[Reply]) -> (Vec<u8>, bool) {
    let (bytes, _, disconnect) = encode_reply_marked(wire, items);
    (bytes, disconnect)
}

/// `encode_reply`, also returning the offsets where tokens start (each item and each row;
/// ascending): a reply cut there and followed by a DONE is still a valid token stream.
pub fn encode_reply_marked(wire: Wire<'_>, items: &[Reply]) -> (Vec<u8>, Vec<usize>, bool) {
    enum Piece {
        Bytes(Vec<u8>, Vec<usize>),
        Done {
            rows: Option<u64>,
            error: bool,
            cmd: u16,
        },
    }
    let mut pieces = Vec::new();
    let mut marks = Vec::new();
    let mut error = false;
    let mut disconnect = false;
    let mut counts = wire.counts;
    for item in items {
        let mut t = Tokens::default();
        match item {
            Reply::Rows(rs) => match t.result_set_marked(rs, &mut marks) {
                Ok(()) => {
                    pieces.push(Piece::Bytes(t.0, std::mem::take(&mut marks)));
                    pieces.push(Piece::Done {
                        rows: Some(rs.rows.len() as u64).filter(|_| counts),
                        error,
                        cmd: CMD_SELECT,
                    });
                    error = false;
                }
                Err(e) => {
                    tracing::warn!("stand-in server cannot encode a result set: {e}");
                    t.error(
                        wire.server,
                        50000,
                        16,
                        1,
                        &format!("stand-in server cannot encode the result set: {e}"),
                    );
                    marks.clear();
                    pieces.push(Piece::Bytes(t.0, Vec::new()));
                    error = true;
                }
            },
            Reply::Done { rows_affected } => {
                pieces.push(Piece::Done {
                    rows: rows_affected.filter(|_| counts),
                    error,
                    cmd: if rows_affected.is_some() {
                        CMD_INSERT
                    } else {
                        CMD_SELECT
                    },
                });
                error = false;
            }
            Reply::Error {
                number,
                severity,
                state,
                message,
                procedure,
                line,
            } => {
                t.message(
                    wire.server,
                    0xAA,
                    *number,
                    *state,
                    *severity,
                    message,
                    procedure,
                    *line,
                );
                pieces.push(Piece::Bytes(t.0, Vec::new()));
                error = true;
            }
            Reply::Info { number, message } => {
                t.message(wire.server, 0xAB, *number, 1, 0, message, "", 1);
                pieces.push(Piece::Bytes(t.0, Vec::new()));
            }
            Reply::Counts(on) => counts = *on,
            Reply::Disconnect => {
                disconnect = true;
                break;
            }
        }
    }
    if !disconnect && !matches!(pieces.last(), Some(Piece::Done { .. })) {
        pieces.push(Piece::Done {
            rows: None,
            error,
            cmd: CMD_SELECT,
        });
    }
    let last_done = pieces.iter().rposition(|p| matches!(p, Piece::Done { .. }));
    let mut t = Tokens::default();
    let mut starts = Vec::new();
    for (i, p) in pieces.into_iter().enumerate() {
        let base = t.0.len();
        starts.push(base);
        match p {
            Piece::Bytes(b, rows) => {
                starts.extend(rows.into_iter().map(|at| base + at));
                t.0.extend(b);
            }
            Piece::Done { rows, error, cmd } => {
                let more = if Some(i) == last_done && !disconnect {
                    0
                } else {
                    DONE_MORE
                };
                t.done_of(cmd, more | if error { DONE_ERROR } else { 0 }, rows);
            }
        }
    }
    starts.dedup();
    (t.0, starts, disconnect)
}

/// The wire type chosen for a column.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ColType {
    Int(u8),
    Bit,
    Float,
    Decimal {
        precision: u8,
        scale: u8,
    },
    NVarChar {
        max: bool,
    },
    VarChar {
        max: bool,
    },
    DateTime,
    DateTime2,
    Date,
    Guid,
    VarBinary {
        max: bool,
    },
    /// sql_variant (SERVERPROPERTY): an int or an nvarchar inside (MS-TDS 2.2.5.5.4).
    Variant,
}

impl ColType {
    fn resolve<'a>(
        type_name: &str,
        values: impl Iterator<Item = ValueRef<'a>> + Clone,
    ) -> Result<Self, String> {
        let lower = type_name.trim().to_ascii_lowercase();
        let (base, args) = match lower.split_once('(') {
            Some((b, rest)) => (
                b.trim(),
                rest.trim_end_matches(')')
                    .split(',')
                    .map(str::trim)
                    .collect(),
            ),
            None => (lower.as_str(), Vec::new()),
        };
        let forced_max = args.first() == Some(&"max");
        let text_len = |v: ValueRef<'_>| match v {
            ValueRef::Null => 0,
            other => other.to_string().encode_utf16().count(),
        };
        let longest = || values.clone().map(text_len).max().unwrap_or(0);
        Ok(match base {
            "int" | "integer" => ColType::Int(4),
            "bigint" => ColType::Int(8),
            "smallint" => ColType::Int(2),
            "tinyint" => ColType::Int(1),
            "bit" => ColType::Bit,
            "float" | "real" => ColType::Float,
            "decimal" | "numeric" | "money" | "smallmoney" => {
                let num = |i: usize| args.get(i).and_then(|a: &&str| a.parse::<u8>().ok());
                let scale = match (base, num(1)) {
                    ("money" | "smallmoney", _) => 4,
                    (_, Some(s)) => s,
                    _ => values.clone().filter_map(decimal_scale).max().unwrap_or(0),
                };
                let precision = num(0).unwrap_or(38).clamp(1, 38).max(scale);
                if scale > 38 {
                    return Err(format!("decimal scale {scale} is over 38"));
                }
                ColType::Decimal { precision, scale }
            }
            "nvarchar" | "nchar" | "sysname" | "ntext" | "xml" => ColType::NVarChar {
                max: forced_max || longest() > 4000 || base == "ntext" || base == "xml",
            },
            "varchar" | "char" | "text" => ColType::VarChar {
                max: forced_max || longest() > 8000 || base == "text",
            },
            "datetime" | "smalldatetime" => ColType::DateTime,
            "datetime2" => ColType::DateTime2,
            "date" => ColType::Date,
            "uniqueidentifier" => ColType::Guid,
            "sql_variant" => ColType::Variant,
            "varbinary" | "binary" | "image" => {
                let long = values
                    .clone()
                    .any(|v| matches!(v, ValueRef::Binary(b) if b.len() > 8000));
                ColType::VarBinary {
                    max: forced_max || long || base == "image",
                }
            }
            _ => {
                return Err(format!(
                    "column type `{type_name}` is not supported by the stand-in server"
                ));
            }
        })
    }

    fn type_info(&self, t: &mut Tokens) {
        match *self {
            ColType::Int(n) => t.0.extend_from_slice(&[0x26, n]),
            ColType::Bit => t.0.extend_from_slice(&[0x68, 1]),
            ColType::Float => t.0.extend_from_slice(&[0x6D, 8]),
            ColType::Decimal { precision, scale } => {
                t.0.extend_from_slice(&[0x6A, 17, precision, scale])
            }
            ColType::NVarChar { max } | ColType::VarChar { max } => {
                t.0.push(if matches!(self, ColType::NVarChar { .. }) {
                    0xE7
                } else {
                    0xA7
                });
                t.u16(if max { 0xFFFF } else { 8000 });
                t.0.extend_from_slice(&COLLATION);
            }
            ColType::DateTime => t.0.extend_from_slice(&[0x6F, 8]),
            ColType::DateTime2 => t.0.extend_from_slice(&[0x2A, 7]), // scale byte: required
            ColType::Date => t.0.push(0x28),
            ColType::Guid => t.0.extend_from_slice(&[0x24, 16]),
            ColType::VarBinary { max } => {
                t.0.push(0xA5);
                t.u16(if max { 0xFFFF } else { 8000 });
            }
            ColType::Variant => {
                t.0.push(0x62);
                t.u32(8016);
            }
        }
    }

    fn value(&self, t: &mut Tokens, v: ValueRef<'_>) -> Result<(), String> {
        let max = matches!(
            self,
            ColType::NVarChar { max: true }
                | ColType::VarChar { max: true }
                | ColType::VarBinary { max: true }
        );
        if v.is_null() {
            match self {
                ColType::NVarChar { .. } | ColType::VarChar { .. } | ColType::VarBinary { .. }
                    if max =>
                {
                    t.0.extend_from_slice(&u64::MAX.to_le_bytes())
                }
                ColType::NVarChar { .. } | ColType::VarChar { .. } | ColType::VarBinary { .. } => {
                    t.u16(0xFFFF)
                }
                ColType::Variant => t.u32(0),
                _ => t.0.push(0),
            }
            return Ok(());
        }
        let bytes: Vec<u8> = match *self {
            ColType::Int(n) => {
                let i = as_i64(v)?;
                let ok = match n {
                    1 => (0..=255).contains(&i),
                    2 => i16::try_from(i).is_ok(),
                    4 => i32::try_from(i).is_ok(),
                    _ => true,
                };
                if !ok {
                    return Err(format!("{i} does not fit in {n} bytes"));
                }
                i.to_le_bytes()[..usize::from(n)].to_vec()
            }
            ColType::Bit => vec![u8::from(as_bool(v)?)],
            ColType::Float => v
                .as_f64()
                .ok_or_else(|| format!("`{v}` is not a number"))?
                .to_le_bytes()
                .to_vec(),
            ColType::Decimal { precision, scale } => {
                decimal_bytes(&v.to_string(), precision, scale)?
            }
            ColType::NVarChar { .. } => v
                .to_string()
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect(),
            ColType::VarChar { .. } => cp1252_encode(&v.to_string()),
            ColType::Variant => variant_bytes(v),
            ColType::DateTime => {
                let dt = parse_datetime(v)?;
                let days = (dt.date() - base_date(1900)).num_days();
                let nanos = u64::from(dt.num_seconds_from_midnight()) * 1_000_000_000
                    + u64::from(dt.nanosecond());
                let ticks = (nanos * 3 + 5_000_000) / 10_000_000; // 1/300 s, rounded
                let (days, ticks) = if ticks >= 86_400 * 300 {
                    (days + 1, 0)
                } else {
                    (days, ticks)
                };
                let days = i32::try_from(days).map_err(|_| "date out of range".to_string())?;
                [days.to_le_bytes(), (ticks as u32).to_le_bytes()].concat()
            }
            ColType::DateTime2 => {
                let dt = parse_datetime(v)?;
                let units = (u64::from(dt.num_seconds_from_midnight()) * 1_000_000_000
                    + u64::from(dt.nanosecond().min(999_999_999)))
                    / 100;
                [&units.to_le_bytes()[..5], &date3(dt.date())?[..]].concat()
            }
            ColType::Date => date3(parse_datetime(v)?.date())?.to_vec(),
            ColType::Guid => guid_wire(&v.to_string())?.to_vec(),
            ColType::VarBinary { .. } => match v {
                ValueRef::Binary(b) => b.to_vec(),
                other => return Err(format!("`{other}` is not binary")),
            },
        };
        match self {
            _ if max => {
                t.0.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                if !bytes.is_empty() {
                    t.u32(bytes.len() as u32);
                    t.0.extend(bytes);
                }
                t.u32(0);
            }
            ColType::NVarChar { .. } | ColType::VarChar { .. } | ColType::VarBinary { .. } => {
                if bytes.len() > 8000 {
                    return Err(format!(
                        "{} bytes exceed the declared length 8000",
                        bytes.len()
                    ));
                }
                t.u16(bytes.len() as u16);
                t.0.extend(bytes);
            }
            ColType::Variant => {
                t.u32(bytes.len() as u32);
                t.0.extend(bytes);
            }
            ColType::Int(_)
            | ColType::Bit
            | ColType::Float
            | ColType::DateTime
            | ColType::DateTime2
            | ColType::Date
            | ColType::Guid
            | ColType::Decimal { .. } => {
                t.0.push(bytes.len() as u8);
                t.0.extend(bytes);
            }
        }
        Ok(())
    }
}

/// A sql_variant's base type, property bytes, properties and value: INT4 has no
/// properties; NVARCHAR has its collation and maximum length.
fn variant_bytes(v: ValueRef<'_>) -> Vec<u8> {
    match v {
        ValueRef::Int(i) if i32::try_from(i).is_ok() => {
            [&[0x38, 0][..], &(i as i32).to_le_bytes()].concat()
        }
        other => {
            let text: Vec<u8> = other
                .to_string()
                .encode_utf16()
                .take(4000)
                .flat_map(u16::to_le_bytes)
                .collect();
            [&[0xE7, 7][..], &COLLATION, &8000u16.to_le_bytes(), &text].concat()
        }
    }
}

fn as_i64(v: ValueRef<'_>) -> Result<i64, String> {
    match v {
        ValueRef::Int(i) => Ok(i),
        ValueRef::Bool(b) => Ok(i64::from(b)),
        ValueRef::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(f as i64),
        ValueRef::Decimal(s) | ValueRef::Text(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an integer")),
        other => Err(format!("`{other}` is not an integer")),
    }
}

fn as_bool(v: ValueRef<'_>) -> Result<bool, String> {
    match v {
        ValueRef::Bool(b) => Ok(b),
        ValueRef::Int(i) => Ok(i != 0),
        ValueRef::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            _ => Err(format!("`{s}` is not a bit")),
        },
        other => Err(format!("`{other}` is not a bit")),
    }
}

fn decimal_scale(v: ValueRef<'_>) -> Option<u8> {
    match v {
        ValueRef::Decimal(_) | ValueRef::Text(_) | ValueRef::Float(_) => {
            let s = v.to_string();
            s.split_once('.').map(|(_, f)| f.trim().len().min(38) as u8)
        }
        _ => None,
    }
}

/// DECIMALN value: sign byte (1 = positive) and a 16-byte little-endian magnitude.
fn decimal_bytes(text: &str, precision: u8, scale: u8) -> Result<Vec<u8>, String> {
    let s = text.trim();
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let frac = frac.trim_end_matches('0');
    let bad = || format!("`{text}` is not a decimal({precision},{scale})");
    if frac.len() > usize::from(scale)
        || (int.is_empty() && frac.is_empty() && !digits.contains('0'))
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let all = format!("{int}{frac:0<width$}", width = usize::from(scale));
    let all = all.trim_start_matches('0');
    if all.len() > usize::from(precision) {
        return Err(bad());
    }
    let magnitude: u128 = if all.is_empty() {
        0
    } else {
        all.parse().map_err(|_| bad())?
    };
    let mut out = vec![u8::from(!negative)];
    out.extend_from_slice(&magnitude.to_le_bytes());
    Ok(out)
}

fn base_date(year: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or_default()
}

/// Days since 0001-01-01 in three little-endian bytes.
fn date3(d: NaiveDate) -> Result<[u8; 3], String> {
    let days = u32::try_from((d - base_date(1)).num_days())
        .map_err(|_| "date before year 1".to_string())?;
    let b = days.to_le_bytes();
    Ok([b[0], b[1], b[2]])
}

/// Accepts `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS[.fffffff]` and the same with `T`.
fn parse_datetime(v: ValueRef<'_>) -> Result<NaiveDateTime, String> {
    let s = match v {
        ValueRef::DateTime(s) | ValueRef::Text(s) => s.trim().replacen('T', " ", 1),
        other => return Err(format!("`{other}` is not a date/time")),
    };
    NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M"))
        .or_else(|_| {
            NaiveDate::parse_from_str(&s, "%Y-%m-%d").map(|d| d.and_time(Default::default()))
        })
        .map_err(|_| format!("`{s}` is not a date/time like 2026-11-21 23:04:05.123"))
}

/// A GUID in the mixed-endian wire order.
fn guid_wire(s: &str) -> Result<[u8; 16], String> {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, '-' | '{' | '}'))
        .collect();
    let b: [u8; 16] = hex::decode(&hex)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| format!("`{s}` is not a uniqueidentifier"))?;
    Ok([
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15],
    ])
}

/// Text form of a wire-order GUID (upper case, as SQL Server prints it).
pub fn guid_text(w: &[u8]) -> String {
    let h = |r: &[usize]| {
        r.iter()
            .map(|&i| format!("{:02X}", w.get(i).copied().unwrap_or(0)))
            .collect::<String>()
    };
    format!(
        "{}-{}-{}-{}-{}",
        h(&[3, 2, 1, 0]),
        h(&[5, 4]),
        h(&[7, 6]),
        h(&[8, 9]),
        h(&[10, 11, 12, 13, 14, 15])
    )
}

/// Code page 1252 bytes 0x80..=0x9F (undefined ones map to the same code point).
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}', '\u{178}',
];

/// Encodes to code page 1252; characters it lacks become `?`, as SQL Server does.
pub fn cp1252_encode(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match u32::from(c) {
            n @ (0..=0x7F | 0xA0..=0xFF) => n as u8,
            _ => CP1252_HIGH
                .iter()
                .position(|&h| h == c)
                .map_or(b'?', |i| 0x80 + i as u8),
        })
        .collect()
}

pub fn cp1252_decode(b: &[u8]) -> String {
    b.iter()
        .map(|&x| {
            if (0x80..0xA0).contains(&x) {
                CP1252_HIGH[usize::from(x - 0x80)]
            } else {
                char::from(x)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use btsdr_types::{Column, Value};

    fn rs(type_name: &str, values: Vec<Value>) -> ResultSet {
        ResultSet {
            not_kept: 0,
            columns: vec![Column {
                name: "c".into(),
                type_name: type_name.into(),
            }],
            rows: values.into_iter().map(|v| vec![v]).collect(),
        }
    }

    #[test]
    fn decimal_encoding_and_rejections() {
        let b = decimal_bytes("-123.45", 18, 2).unwrap();
        assert_eq!(b[0], 0);
        assert_eq!(u128::from_le_bytes(b[1..].try_into().unwrap()), 12345);
        assert_eq!(
            u128::from_le_bytes(decimal_bytes("7", 5, 3).unwrap()[1..].try_into().unwrap()),
            7000
        );
        assert!(decimal_bytes("1.234", 18, 2).is_err());
        assert!(decimal_bytes("abc", 18, 2).is_err());
        assert!(decimal_bytes("123456", 5, 0).is_err());
        assert!(decimal_bytes("0.10", 5, 1).is_ok());
    }

    #[test]
    fn guid_and_cp1252_round_trip() {
        let g = "6F9619FF-8B86-D011-B42D-00C04FC964FF";
        let w = guid_wire(g).unwrap();
        assert_eq!(&w[..4], &[0xFF, 0x19, 0x96, 0x6F]);
        assert_eq!(guid_text(&w), g);
        assert_eq!(cp1252_decode(&cp1252_encode("café €5 ✓")), "café €5 ?");
    }

    #[test]
    fn bad_values_and_types_are_errors_not_panics() {
        let mut t = Tokens::default();
        assert!(t.result_set(&rs("int", vec![Value::Int(1 << 40)])).is_err());
        assert!(t.result_set(&rs("geography", vec![Value::Int(1)])).is_err());
        assert!(
            t.result_set(&rs("datetime", vec![Value::Text("yesterday".into())]))
                .is_err()
        );
        assert!(
            t.result_set(&rs("uniqueidentifier", vec![Value::Guid("xyz".into())]))
                .is_err()
        );
        assert!(t.0.is_empty(), "nothing written on error");
        let (bytes, _) = encode_reply(
            Wire::default(),
            &[Reply::Rows(rs("tinyint", vec![Value::Int(300)]))],
        );
        assert_eq!(bytes[0], 0xAA, "encoding failure becomes an ERROR token");
    }

    #[test]
    fn done_flags_more_on_all_but_last_and_count() {
        let (b, disconnect) = encode_reply(
            Wire::default(),
            &[
                Reply::Done {
                    rows_affected: Some(3),
                },
                Reply::Done {
                    rows_affected: None,
                },
            ],
        );
        assert!(!disconnect);
        assert_eq!(b.len(), 26);
        assert_eq!(u16::from_le_bytes([b[1], b[2]]), DONE_MORE | DONE_COUNT);
        assert_eq!(u16::from_le_bytes([b[14], b[15]]), 0);
        let (b, _) = encode_reply(
            Wire::default(),
            &[Reply::Info {
                number: 1,
                message: "hi".into(),
            }],
        );
        assert_eq!(b[0], 0xAB);
        assert_eq!(b[b.len() - 13], 0xFD, "a final DONE is added");
    }

    #[test]
    fn nocount_clears_the_count_bit_and_the_server_is_named() {
        let wire = Wire {
            server: "SQL01",
            counts: true,
        };
        let done = |b: &[u8], at: usize| u16::from_le_bytes([b[at + 1], b[at + 2]]);
        let (b, _) = encode_reply(
            wire,
            &[
                Reply::Done {
                    rows_affected: Some(3),
                },
                Reply::Counts(false),
                Reply::Done {
                    rows_affected: Some(4),
                },
            ],
        );
        assert_eq!(done(&b, 0), DONE_MORE | DONE_COUNT);
        assert_eq!(done(&b, 13), 0, "no DONE_COUNT after SET NOCOUNT ON");
        let (b, _) = encode_reply(
            Wire {
                counts: false,
                ..wire
            },
            &[
                Reply::Counts(true),
                Reply::Done {
                    rows_affected: Some(1),
                },
            ],
        );
        assert_eq!(
            done(&b, 0),
            DONE_COUNT,
            "SET NOCOUNT OFF brings counts back"
        );
        let (b, _) = encode_reply(
            wire,
            &[Reply::Info {
                number: 1,
                message: "hi".into(),
            }],
        );
        let name: Vec<u8> = "SQL01".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert!(
            b.windows(name.len()).any(|w| w == name),
            "server name in INFO"
        );
    }

    #[test]
    fn sql_variant_carries_its_base_type() {
        let mut t = Tokens::default();
        t.result_set(&rs("sql_variant", vec![Value::Int(3)]))
            .unwrap();
        let row = t.0.iter().rposition(|b| *b == 0xD1).unwrap();
        // total length 6, INT4 with no properties, then the value
        assert_eq!(&t.0[row + 1..], &[6, 0, 0, 0, 0x38, 0, 3, 0, 0, 0]);
        let mut t = Tokens::default();
        t.result_set(&rs("sql_variant", vec![Value::Text("ab".into())]))
            .unwrap();
        let row = t.0.iter().rposition(|b| *b == 0xD1).unwrap();
        let mut want = vec![13, 0, 0, 0, 0xE7, 7];
        want.extend_from_slice(&COLLATION);
        want.extend_from_slice(&[0x40, 0x1F, b'a', 0, b'b', 0]);
        assert_eq!(&t.0[row + 1..], &want[..]);
    }

    #[test]
    fn datetime_rounds_to_ticks() {
        let mut t = Tokens::default();
        ColType::DateTime
            .value(
                &mut t,
                Value::DateTime("1900-01-02 00:00:01.5".into()).as_ref(),
            )
            .unwrap();
        assert_eq!(t.0, [8, 1, 0, 0, 0, 194, 1, 0, 0]);
        let mut t = Tokens::default();
        ColType::Date
            .value(&mut t, Value::DateTime("0001-01-02".into()).as_ref())
            .unwrap();
        assert_eq!(t.0, [3, 1, 0, 0]);
    }
}
