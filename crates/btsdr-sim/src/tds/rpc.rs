//! Decoding of client requests: SQL batch, `sp_executesql` RPC, transaction manager
//! (MS-TDS 2.2.6.6-2.2.6.9).

use crate::backend::Request;
use btsdr_types::Param;

use super::tokens::cp1252_decode;

/// Why a request could not be decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodeError {
    /// Bytes that do not follow the protocol: the connection is closed.
    Malformed(String),
    /// Well-formed but not supported here: answered with an ERROR token.
    Unsupported { number: u32, message: String },
}

fn malformed<T>(what: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError::Malformed(what.into()))
}

/// A cursor over a request payload; every read is bounds-checked.
struct Cur<'a> {
    p: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        match self.p.get(self.at..self.at.saturating_add(n)) {
            Some(s) => {
                self.at += n;
                Ok(s)
            }
            None => malformed(format!(
                "request ends early (wanted {n} bytes at {})",
                self.at
            )),
        }
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }
    fn utf16(&mut self, chars: usize) -> Result<String, DecodeError> {
        Ok(utf16(self.take(chars * 2)?))
    }
    fn done(&self) -> bool {
        self.at >= self.p.len()
    }
}

fn utf16(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// Skips ALL_HEADERS (a u32 total length that counts itself).
fn skip_all_headers(p: &[u8]) -> Result<&[u8], DecodeError> {
    let Some(len) = p
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    else {
        return malformed("request too short for ALL_HEADERS");
    };
    if len < 4 || len > p.len() {
        return malformed(format!("ALL_HEADERS length {len} is invalid"));
    }
    Ok(&p[len..])
}

/// A SQL batch: ALL_HEADERS then UTF-16LE text.
pub fn decode_batch(p: &[u8]) -> Result<Request, DecodeError> {
    let text = skip_all_headers(p)?;
    if text.len() % 2 != 0 {
        return malformed("SQL batch text has an odd number of bytes");
    }
    Ok(Request {
        sql: utf16(text),
        params: Vec::new(),
    })
}

/// A decoded RPC parameter value: `None` is NULL.
pub type Value = Option<Param>;

/// A decoded RPC call (MS-TDS 2.2.6.6; the procedures of 2.2.6.6's ProcID table).
#[derive(Debug, Clone, PartialEq)]
pub enum Rpc {
    /// `sp_executesql`: statement, declaration list, then the values.
    ExecuteSql(Request),
    /// `sp_prepare` (`execute` false) or `sp_prepexec` (true): a handle is returned in the
    /// first (OUTPUT) parameter; `sp_prepexec` also runs the statement with `values`.
    Prepare {
        decl: String,
        sql: String,
        values: Vec<Value>,
        execute: bool,
    },
    /// `sp_execute`: a prepared handle and the values.
    Execute { handle: i32, values: Vec<Value> },
    /// `sp_unprepare`: forgets a handle.
    Unprepare { handle: i32 },
}

/// Which supported procedure an RPC names (by ProcID or by name).
fn procedure(c: &mut Cur<'_>) -> Result<&'static str, DecodeError> {
    let name_len = c.u16()?;
    let proc = if name_len == 0xFFFF {
        match c.u16()? {
            10 => return Ok("sp_executesql"),
            11 => return Ok("sp_prepare"),
            12 => return Ok("sp_execute"),
            13 => return Ok("sp_prepexec"),
            15 => return Ok("sp_unprepare"),
            id => format!("system procedure id {id}"),
        }
    } else {
        c.utf16(usize::from(name_len))?
    };
    let bare = proc.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    for known in [
        "sp_executesql",
        "sp_prepare",
        "sp_execute",
        "sp_prepexec",
        "sp_unprepare",
    ] {
        if bare == known {
            return Ok(known);
        }
    }
    Err(DecodeError::Unsupported {
        number: 2812,
        message: format!("Could not find stored procedure '{proc}'."),
    })
}

fn missing<T>(proc: &str, param: &str) -> Result<T, DecodeError> {
    Err(DecodeError::Unsupported {
        number: 201,
        message: format!(
            "Procedure or function '{proc}' expects parameter '{param}', which was not supplied."
        ),
    })
}

/// Values named from the declaration list by position (`@P1`, ... when unnamed).
fn named(
    values: impl Iterator<Item = (String, Value)>,
    declared: &[String],
) -> Vec<(String, Value)> {
    values
        .enumerate()
        .map(|(i, (name, v))| {
            let name = name.trim_start_matches('@');
            let name = if name.is_empty() {
                declared
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("P{}", i + 1))
            } else {
                name.to_string()
            };
            (name, v)
        })
        .collect()
}

/// The values of a prepared statement's parameters, named after its declaration list.
pub fn name_values(decl: &str, values: Vec<Value>) -> Vec<(String, Value)> {
    let declared = declared_names(decl);
    named(values.into_iter().map(|v| (String::new(), v)), &declared)
}

/// An RPC request: `sp_executesql`, or the prepared-statement procedures.
pub fn decode_rpc(p: &[u8]) -> Result<Rpc, DecodeError> {
    let mut c = Cur {
        p: skip_all_headers(p)?,
        at: 0,
    };
    let proc = procedure(&mut c)?;
    let _options = c.u16()?;
    let mut raw = Vec::new();
    while !c.done() {
        let name_chars = c.u8()?;
        if name_chars == 0xFF || name_chars == 0x80 {
            return Err(DecodeError::Unsupported {
                number: 8016,
                message: "RPC batches (several calls in one request) are not supported".into(),
            });
        }
        let name = c.utf16(usize::from(name_chars))?;
        let _status = c.u8()?;
        let index = raw.len() + 1;
        raw.push((name, value(&mut c, index)?));
    }
    let mut raw = raw.into_iter();
    let text = |v: Option<(String, Value)>| match v {
        Some((_, Some(Param::Text(t)))) => Some(t),
        _ => None,
    };
    let handle = |v: Option<(String, Value)>| match v {
        Some((_, Some(Param::Int(h)))) => i32::try_from(h).ok(),
        _ => None,
    };
    match proc {
        "sp_executesql" => {
            let Some(sql) = text(raw.next()) else {
                return missing(proc, "@stmt");
            };
            let declared = text(raw.next()).map_or_else(Vec::new, |d| declared_names(&d));
            Ok(Rpc::ExecuteSql(Request {
                sql,
                params: named(raw, &declared),
            }))
        }
        "sp_prepare" | "sp_prepexec" => {
            let _handle = raw.next();
            let decl = text(raw.next()).unwrap_or_default();
            let Some(sql) = text(raw.next()) else {
                return missing(proc, "@stmt");
            };
            let execute = proc == "sp_prepexec";
            // sp_prepare's optional fourth parameter is @options, not a value.
            let values = if execute {
                raw.map(|(_, v)| v).collect()
            } else {
                Vec::new()
            };
            Ok(Rpc::Prepare {
                decl,
                sql,
                values,
                execute,
            })
        }
        "sp_execute" => {
            let Some(handle) = handle(raw.next()) else {
                return missing(proc, "@handle");
            };
            Ok(Rpc::Execute {
                handle,
                values: raw.map(|(_, v)| v).collect(),
            })
        }
        _ => match handle(raw.next()) {
            Some(handle) => Ok(Rpc::Unprepare { handle }),
            None => missing(proc, "@handle"),
        },
    }
}

/// Names (without `@`) from a declaration list like `@P1 nvarchar(4000),@P2 decimal(18,2)`.
fn declared_names(decl: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0u32;
    let mut start = 0;
    for (i, ch) in decl.char_indices().chain([(decl.len(), ',')]) {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                if let Some(n) = decl[start..i].split_whitespace().next() {
                    names.push(n.trim_start_matches('@').to_string());
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    names
}

fn unsupported_type<T>(index: usize, ty: u8) -> Result<T, DecodeError> {
    Err(DecodeError::Unsupported {
        number: 8016,
        message: format!(
            "Parameter {index}: data type {ty:#04x} is not supported by the stand-in server \
             (use text, integer or bit parameters)"
        ),
    })
}

fn int_le(b: &[u8]) -> i64 {
    match b.len() {
        1 => i64::from(b[0]),
        2 => i64::from(i16::from_le_bytes([b[0], b[1]])),
        4 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        _ => i64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
    }
}

fn float_le(b: &[u8]) -> String {
    match b.len() {
        4 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]).to_string(),
        _ => f64::from_le_bytes(b.try_into().unwrap_or([0; 8])).to_string(),
    }
}

/// TYPE_INFO followed by the value (MS-TDS 2.2.5.4-2.2.5.6), for the types clients send.
fn value(c: &mut Cur<'_>, index: usize) -> Result<Value, DecodeError> {
    let ty = c.u8()?;
    Ok(match ty {
        0x1F => None,                                    // NULLTYPE
        0x30 => Some(Param::Int(int_le(c.take(1)?))),    // tinyint
        0x32 => Some(Param::Bool(c.u8()? != 0)),         // bit
        0x34 => Some(Param::Int(int_le(c.take(2)?))),    // smallint
        0x38 => Some(Param::Int(int_le(c.take(4)?))),    // int
        0x7F => Some(Param::Int(int_le(c.take(8)?))),    // bigint
        0x3B => Some(Param::Text(float_le(c.take(4)?))), // real
        0x3E => Some(Param::Text(float_le(c.take(8)?))), // float
        0x26 | 0x68 | 0x6D | 0x24 => {
            // INTN, BITN, FLTN, GUID: max length, then a length-prefixed value
            let _max = c.u8()?;
            let len = usize::from(c.u8()?);
            if len == 0 {
                return Ok(None);
            }
            let b = c.take(len)?;
            match (ty, len) {
                (0x26, 1 | 2 | 4 | 8) => Some(Param::Int(int_le(b))),
                (0x68, 1) => Some(Param::Bool(b[0] != 0)),
                (0x6D, 4 | 8) => Some(Param::Text(float_le(b))),
                (0x24, 16) => Some(Param::Text(super::tokens::guid_text(b))),
                _ => return malformed(format!("parameter {index}: bad length {len}")),
            }
        }
        0xE7 | 0xEF | 0xA7 | 0xAF => {
            // NVARCHAR, NCHAR, VARCHAR, CHAR: max length, collation, then data
            let max = c.u16()?;
            c.take(5)?;
            let bytes = if max == 0xFFFF {
                plp(c)?
            } else {
                match c.u16()? {
                    0xFFFF => None,
                    n => Some(c.take(usize::from(n))?.to_vec()),
                }
            };
            bytes.map(|b| {
                Param::Text(if ty == 0xE7 || ty == 0xEF {
                    utf16(&b)
                } else {
                    cp1252_decode(&b)
                })
            })
        }
        0x63 | 0x23 => {
            // NTEXT, TEXT: max length, collation, then a 4-byte length (NULL = 0xFFFFFFFF)
            let _max = c.u32()?;
            c.take(5)?;
            match c.u32()? {
                u32::MAX => None,
                n => {
                    let b = c.take(n as usize)?;
                    Some(Param::Text(if ty == 0x63 {
                        utf16(b)
                    } else {
                        cp1252_decode(b)
                    }))
                }
            }
        }
        other => return unsupported_type(index, other),
    })
}

/// A PLP value (MS-TDS 2.2.5.2.3): total length, chunks, zero terminator.
fn plp(c: &mut Cur<'_>) -> Result<Option<Vec<u8>>, DecodeError> {
    let total = c.u64()?;
    if total == u64::MAX {
        return Ok(None);
    }
    let mut out = Vec::new();
    loop {
        let n = c.u32()? as usize;
        if n == 0 {
            return Ok(Some(out));
        }
        out.extend_from_slice(c.take(n)?);
    }
}

/// A transaction manager request (packet type 0x0E).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TmRequest {
    Begin,
    Commit,
    Rollback,
    Save,
    Other(u16),
}

pub fn decode_tm(p: &[u8]) -> Result<TmRequest, DecodeError> {
    let mut c = Cur {
        p: skip_all_headers(p)?,
        at: 0,
    };
    Ok(match c.u16()? {
        5 => TmRequest::Begin,
        7 => TmRequest::Commit,
        8 => TmRequest::Rollback,
        9 => TmRequest::Save,
        n => TmRequest::Other(n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> Vec<u8> {
        let mut v = 22u32.to_le_bytes().to_vec();
        v.extend_from_slice(&18u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&1u32.to_le_bytes());
        v
    }

    fn nvarchar(s: &str) -> Vec<u8> {
        let b: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut v = vec![0xE7, 0x40, 0x1F, 0, 0, 0, 0, 0];
        v.extend_from_slice(&(b.len() as u16).to_le_bytes());
        v.extend(b);
        v
    }

    fn param(name: &str, value: Vec<u8>) -> Vec<u8> {
        let mut v = vec![name.encode_utf16().count() as u8];
        v.extend(name.encode_utf16().flat_map(u16::to_le_bytes));
        v.push(0);
        v.extend(value);
        v
    }

    fn rpc(params: &[Vec<u8>]) -> Vec<u8> {
        rpc_id(10, params)
    }

    fn rpc_id(id: u8, params: &[Vec<u8>]) -> Vec<u8> {
        let mut v = headers();
        v.extend_from_slice(&[0xFF, 0xFF, id, 0, 0, 0]);
        params.iter().for_each(|p| v.extend_from_slice(p));
        v
    }

    #[test]
    fn batch_text_after_headers() {
        let mut p = headers();
        p.extend("SELECT 'é'".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode_batch(&p).unwrap().sql, "SELECT 'é'");
        assert!(matches!(
            decode_batch(&[9, 0, 0, 0]),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn sp_executesql_params_are_named_and_typed() {
        let p = rpc(&[
            param("stmt", nvarchar("SELECT @a, @b")),
            param(
                "params",
                nvarchar("@a int,@b decimal(18,2),@c nvarchar(4000),@d bit"),
            ),
            param("", vec![0x26, 4, 4, 0xFE, 0xFF, 0xFF, 0xFF]),
            param("@b", vec![0x1F]),
            param(
                "",
                vec![
                    0xE7, 0xFF, 0xFF, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, b'h', 0,
                    b'i', 0, 0, 0, 0, 0,
                ],
            ),
            param("", vec![0x68, 1, 1, 1]),
        ]);
        let Rpc::ExecuteSql(r) = decode_rpc(&p).unwrap() else {
            panic!("not sp_executesql")
        };
        assert_eq!(r.sql, "SELECT @a, @b");
        assert_eq!(
            r.params,
            vec![
                ("a".to_string(), Some(Param::Int(-2))),
                ("b".to_string(), None),
                ("c".to_string(), Some(Param::Text("hi".into()))),
                ("d".to_string(), Some(Param::Bool(true))),
            ]
        );
    }

    #[test]
    fn prepared_statement_procedures() {
        let int = |n: u8| vec![0x26, 4, 4, n, 0, 0, 0];
        let p = rpc_id(
            13,
            &[
                param("", vec![0x26, 4, 0]),
                param("", nvarchar("@P1 int")),
                param("", nvarchar("SELECT @P1")),
                param("", int(7)),
            ],
        );
        assert_eq!(
            decode_rpc(&p).unwrap(),
            Rpc::Prepare {
                decl: "@P1 int".into(),
                sql: "SELECT @P1".into(),
                values: vec![Some(Param::Int(7))],
                execute: true,
            }
        );
        let p = rpc_id(12, &[param("", int(3)), param("", int(9))]);
        assert_eq!(
            decode_rpc(&p).unwrap(),
            Rpc::Execute {
                handle: 3,
                values: vec![Some(Param::Int(9))]
            }
        );
        let p = rpc_id(15, &[param("", int(3))]);
        assert_eq!(decode_rpc(&p).unwrap(), Rpc::Unprepare { handle: 3 });
        assert!(matches!(
            decode_rpc(&rpc_id(12, &[])),
            Err(DecodeError::Unsupported { number: 201, .. })
        ));
        assert_eq!(
            name_values("@a int, @b nvarchar(10)", vec![None, None]),
            vec![("a".to_string(), None), ("b".to_string(), None)]
        );
    }

    #[test]
    fn unsupported_and_truncated_requests() {
        let p = rpc(&[param("stmt", nvarchar("x")), param("", vec![0x2A, 7, 0])]);
        assert!(matches!(
            decode_rpc(&p),
            Err(DecodeError::Unsupported { number: 8016, .. })
        ));
        let mut named = headers();
        named.extend_from_slice(&[3, 0, b'f', 0, b'o', 0, b'o', 0, 0, 0]);
        assert!(matches!(
            decode_rpc(&named),
            Err(DecodeError::Unsupported { number: 2812, .. })
        ));
        let full = rpc(&[param("stmt", nvarchar("SELECT 1"))]);
        for cut in 22..full.len() - 1 {
            assert!(decode_rpc(&full[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn transaction_manager_types() {
        let mut p = headers();
        p.extend_from_slice(&[5, 0, 0, 0]);
        assert_eq!(decode_tm(&p).unwrap(), TmRequest::Begin);
    }
}
