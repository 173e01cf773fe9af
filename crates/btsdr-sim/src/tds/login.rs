//! PRELOGIN reply and LOGIN7 parsing (MS-TDS 2.2.6.4, 2.2.6.5).

use std::fmt;

/// Version announced in PRELOGIN (SQL Server 2019, 15.0.2000).
const SERVER_VERSION: [u8; 6] = [15, 0, 0x07, 0xD0, 0, 0];
use super::tls::ENCRYPT_NOT_SUP;

/// The PRELOGIN answer of a server without TLS (ENCRYPT_NOT_SUP).
pub fn prelogin_reply() -> Vec<u8> {
    prelogin_reply_with(ENCRYPT_NOT_SUP)
}

/// The PRELOGIN answer: VERSION, ENCRYPTION (`encryption`), INSTOPT, THREADID (empty), MARS off.
pub fn prelogin_reply_with(encryption: u8) -> Vec<u8> {
    let options: [(u8, Vec<u8>); 5] = [
        (0x00, SERVER_VERSION.to_vec()),
        (0x01, vec![encryption]),
        (0x02, vec![0]),
        (0x03, Vec::new()),
        (0x04, vec![0]),
    ];
    let mut offset = options.len() * 5 + 1;
    let mut table = Vec::new();
    let mut data = Vec::new();
    for (token, value) in &options {
        table.push(*token);
        table.extend_from_slice(&(offset as u16).to_be_bytes());
        table.extend_from_slice(&(value.len() as u16).to_be_bytes());
        offset += value.len();
        data.extend_from_slice(value);
    }
    table.push(0xFF);
    table.extend(data);
    table
}

/// The ENCRYPTION option of a client's PRELOGIN (MS-TDS 2.2.6.5); ENCRYPT_OFF when absent.
pub fn client_encryption(payload: &[u8]) -> Result<u8, String> {
    let mut at = 0;
    loop {
        let Some(&token) = payload.get(at) else {
            return Err("PRELOGIN option table has no terminator (0xFF)".into());
        };
        if token == 0xFF {
            return Ok(super::tls::ENCRYPT_OFF);
        }
        let entry = payload
            .get(at + 1..at + 5)
            .ok_or("PRELOGIN option table is cut short")?;
        if token == 0x01 {
            let offset = usize::from(u16::from_be_bytes([entry[0], entry[1]]));
            let len = usize::from(u16::from_be_bytes([entry[2], entry[3]]));
            return match payload.get(offset) {
                Some(&v) if len >= 1 => Ok(v),
                _ => Err("PRELOGIN ENCRYPTION option points outside the packet".into()),
            };
        }
        at += 5;
    }
}

/// What the server needs from a LOGIN7 record.
#[derive(Clone, PartialEq)]
pub struct Login7 {
    pub packet_size: u32,
    pub hostname: String,
    pub user: String,
    pub password: String,
    pub app_name: String,
    pub database: String,
    /// The client asked for integrated (SSPI/NTLM) authentication.
    pub integrated: bool,
}

impl fmt::Debug for Login7 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login7")
            .field("packet_size", &self.packet_size)
            .field("hostname", &self.hostname)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("app_name", &self.app_name)
            .field("database", &self.database)
            .field("integrated", &self.integrated)
            .finish()
    }
}

fn u16_at(p: &[u8], at: usize) -> Result<usize, String> {
    p.get(at..at + 2)
        .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
        .ok_or_else(|| format!("LOGIN7 record too short for the field at byte {at}"))
}

/// Reads the UTF-16 string whose (offset, length in characters) pair sits at `at`.
fn string_at(p: &[u8], at: usize, deobfuscate: bool) -> Result<String, String> {
    let offset = u16_at(p, at)?;
    let chars = u16_at(p, at + 2)?;
    let bytes = p
        .get(offset..offset + chars * 2)
        .ok_or_else(|| format!("LOGIN7 string at byte {at} points outside the record"))?;
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| {
            let (lo, hi) = if deobfuscate {
                (unscramble(c[0]), unscramble(c[1]))
            } else {
                (c[0], c[1])
            };
            u16::from_le_bytes([lo, hi])
        })
        .collect();
    Ok(String::from_utf16_lossy(&units))
}

/// Undoes the TDS password obfuscation (XOR 0xA5, then swap the nibbles).
fn unscramble(b: u8) -> u8 {
    (b ^ 0xA5).rotate_left(4)
}

/// Parses a LOGIN7 payload. Errors describe what is malformed.
pub fn parse_login7(p: &[u8]) -> Result<Login7, String> {
    if p.len() < 94 {
        return Err(format!("LOGIN7 record of {} bytes is too short", p.len()));
    }
    let declared = u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as usize;
    if declared > p.len() {
        return Err(format!(
            "LOGIN7 record declares {declared} bytes but only {} arrived",
            p.len()
        ));
    }
    let p = &p[..declared.max(94)];
    Ok(Login7 {
        packet_size: u32::from_le_bytes([p[8], p[9], p[10], p[11]]),
        hostname: string_at(p, 36, false)?,
        user: string_at(p, 40, false)?,
        password: string_at(p, 44, true)?,
        app_name: string_at(p, 48, false)?,
        database: string_at(p, 68, false)?,
        integrated: u16_at(p, 80)? > 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scramble(b: u8) -> u8 {
        b.rotate_left(4) ^ 0xA5
    }

    /// Builds a LOGIN7 record the way tiberius lays it out.
    fn login7(user: &str, password: &str, db: &str) -> Vec<u8> {
        let fields = ["host", user, password, "app", "srv", "", "", "", db];
        let mut fixed = vec![0u8; 36];
        fixed[8..12].copy_from_slice(&8192u32.to_le_bytes());
        let mut data = Vec::new();
        let mut offset = 94;
        for (i, s) in fields.iter().enumerate() {
            let mut bytes: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
            if i == 2 {
                bytes.iter_mut().for_each(|b| *b = scramble(*b));
            }
            fixed.extend_from_slice(&(offset as u16).to_le_bytes());
            fixed.extend_from_slice(&(s.encode_utf16().count() as u16).to_le_bytes());
            offset += bytes.len();
            data.extend(bytes);
        }
        fixed.extend_from_slice(&[0; 6]); // ClientID
        fixed.extend_from_slice(&[0; 16]); // SSPI, AtchDBFile, ChangePassword, SSPILong
        let total = (fixed.len() + data.len()) as u32;
        fixed[0..4].copy_from_slice(&total.to_le_bytes());
        fixed.extend(data);
        fixed
    }

    #[test]
    fn parses_fields_and_unscrambles_the_password() {
        let l = parse_login7(&login7("sa", "pä$$wörd", "BizTalkMgmtDb")).unwrap();
        assert_eq!(l.user, "sa");
        assert_eq!(l.password, "pä$$wörd");
        assert_eq!(l.database, "BizTalkMgmtDb");
        assert_eq!(l.app_name, "app");
        assert_eq!(l.packet_size, 8192);
        assert!(!l.integrated);
        assert!(!format!("{l:?}").contains("wörd"));
    }

    #[test]
    fn rejects_short_and_out_of_bounds_records() {
        assert!(parse_login7(&[0; 20]).is_err());
        let mut rec = login7("sa", "x", "db");
        rec[40..42].copy_from_slice(&60_000u16.to_le_bytes());
        assert!(parse_login7(&rec).unwrap_err().contains("outside"));
    }

    #[test]
    fn prelogin_reply_says_encryption_not_supported() {
        let r = prelogin_reply();
        let off = usize::from(u16::from_be_bytes([r[6], r[7]]));
        assert_eq!(r[5], 0x01);
        assert_eq!(r[off], ENCRYPT_NOT_SUP);
    }

    #[test]
    fn reads_the_clients_encryption_option() {
        assert_eq!(client_encryption(&prelogin_reply_with(0x03)), Ok(0x03));
        assert_eq!(client_encryption(&[0xFF]), Ok(0x00));
        assert!(client_encryption(&[0x01, 0, 200, 0, 1, 0xFF]).is_err());
        assert!(client_encryption(&[0x00, 0, 6]).is_err());
    }
}
