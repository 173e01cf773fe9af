//! TDS packet framing: 8-byte headers, messages split over packets (MS-TDS 2.2.3).

use std::fmt;
use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

pub const HEADER_LEN: usize = 8;
/// Largest packet accepted from a client (the negotiable maximum is 32,767).
pub const MAX_PACKET: usize = 32_768;
/// Largest reassembled request accepted from a client.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
pub const DEFAULT_PACKET_SIZE: usize = 4096;

pub const SQL_BATCH: u8 = 0x01;
pub const RPC: u8 = 0x03;
pub const REPLY: u8 = 0x04;
pub const ATTENTION: u8 = 0x06;
pub const TRANSACTION: u8 = 0x0E;
pub const LOGIN7: u8 = 0x10;
pub const PRELOGIN: u8 = 0x12;

const STATUS_EOM: u8 = 0x01;
const STATUS_IGNORE: u8 = 0x02;

/// Why the byte stream from a client cannot be read as TDS.
#[derive(Debug)]
pub enum FrameError {
    Io(io::Error),
    /// The peer closed the socket in the middle of a packet.
    Truncated,
    BadLength(usize),
    TooLarge(usize),
    /// A packet of another type arrived before the message was complete.
    Interleaved {
        expected: u8,
        got: u8,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "socket error: {e}"),
            FrameError::Truncated => f.write_str("connection closed in the middle of a packet"),
            FrameError::BadLength(n) => {
                write!(
                    f,
                    "packet length {n} is outside {HEADER_LEN}..={MAX_PACKET}"
                )
            }
            FrameError::TooLarge(n) => {
                write!(
                    f,
                    "request of more than {n} bytes exceeds the {MAX_MESSAGE}-byte limit"
                )
            }
            FrameError::Interleaved { expected, got } => write!(
                f,
                "packet type {got:#04x} arrived inside a message of type {expected:#04x}"
            ),
        }
    }
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Io(e)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub ty: u8,
    pub eom: bool,
    pub ignore: bool,
    pub payload: Vec<u8>,
}

/// A complete client message (all packets up to EOM, payloads joined).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub ty: u8,
    pub payload: Vec<u8>,
}

/// Reads packets from a socket. The buffer lives here, so `next_packet` is cancel-safe:
/// dropping it mid-packet loses nothing.
pub struct PacketReader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> PacketReader<R> {
    pub fn new(inner: R) -> Self {
        PacketReader {
            inner,
            buf: Vec::with_capacity(DEFAULT_PACKET_SIZE),
        }
    }

    /// A reader that first serves `buf` (bytes already read from `inner`).
    pub fn from_parts(inner: R, buf: Vec<u8>) -> Self {
        PacketReader { inner, buf }
    }

    /// The socket back, with the bytes read from it but not yet taken as packets.
    pub fn into_parts(self) -> (R, Vec<u8>) {
        (self.inner, self.buf)
    }

    /// The next packet, or `None` when the peer closed cleanly between packets.
    pub async fn next_packet(&mut self) -> Result<Option<Packet>, FrameError> {
        loop {
            if let Some(packet) = self.take_packet()? {
                return Ok(Some(packet));
            }
            self.buf.reserve(8192);
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(FrameError::Truncated)
                };
            }
        }
    }

    fn take_packet(&mut self) -> Result<Option<Packet>, FrameError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
        if !(HEADER_LEN..=MAX_PACKET).contains(&len) {
            return Err(FrameError::BadLength(len));
        }
        if self.buf.len() < len {
            return Ok(None);
        }
        let packet = Packet {
            ty: self.buf[0],
            eom: self.buf[1] & STATUS_EOM != 0,
            ignore: self.buf[1] & STATUS_IGNORE != 0,
            payload: self.buf[HEADER_LEN..len].to_vec(),
        };
        self.buf.drain(..len);
        Ok(Some(packet))
    }

    /// Reassembles packets until EOM. Messages the client marked "ignore" are skipped.
    pub async fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        let mut message: Option<Message> = None;
        loop {
            let Some(packet) = self.next_packet().await? else {
                return match message {
                    None => Ok(None),
                    Some(_) => Err(FrameError::Truncated),
                };
            };
            let msg = message.get_or_insert_with(|| Message {
                ty: packet.ty,
                payload: Vec::new(),
            });
            if msg.ty != packet.ty {
                return Err(FrameError::Interleaved {
                    expected: msg.ty,
                    got: packet.ty,
                });
            }
            let total = msg.payload.len() + packet.payload.len();
            if total > MAX_MESSAGE {
                return Err(FrameError::TooLarge(total));
            }
            msg.payload.extend_from_slice(&packet.payload);
            if packet.eom {
                if packet.ignore {
                    message = None;
                    continue;
                }
                return Ok(message);
            }
        }
    }
}

/// Splits `payload` into packets of at most `packet_size` bytes (header included). Only the
/// last packet carries EOM, and only when `eom` is set (a cut-off reply has none).
pub fn frame(ty: u8, payload: &[u8], packet_size: usize, spid: u16, eom: bool) -> Vec<u8> {
    let chunk = packet_size.clamp(512, MAX_PACKET) - HEADER_LEN;
    let count = payload.len().div_ceil(chunk).max(1);
    let mut out = Vec::with_capacity(payload.len() + count * HEADER_LEN);
    for i in 0..count {
        let part = &payload[(i * chunk).min(payload.len())..((i + 1) * chunk).min(payload.len())];
        let last = i + 1 == count;
        let len = (part.len() + HEADER_LEN) as u16; // <= MAX_PACKET by the clamp above
        out.push(ty);
        out.push(if last && eom { STATUS_EOM } else { 0 });
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&spid.to_be_bytes());
        out.push((i + 1) as u8); // packet id, wraps at 256 as the spec allows
        out.push(0);
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(bytes: Vec<u8>) -> Result<Option<Message>, FrameError> {
        PacketReader::new(&bytes[..]).next_message().await
    }

    #[tokio::test]
    async fn frame_then_reassemble_round_trips() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let wire = frame(SQL_BATCH, &payload, 4096, 0, true);
        assert_eq!(wire.len(), payload.len() + 3 * HEADER_LEN);
        assert_eq!(wire[1], 0, "first packet is not EOM");
        let msg = read_all(wire).await.unwrap().unwrap();
        assert_eq!(msg.ty, SQL_BATCH);
        assert_eq!(msg.payload, payload);
    }

    #[tokio::test]
    async fn empty_payload_is_one_header_only_packet() {
        let wire = frame(ATTENTION, &[], 4096, 0, true);
        assert_eq!(wire, vec![ATTENTION, 1, 0, 8, 0, 0, 1, 0]);
    }

    #[tokio::test]
    async fn bad_lengths_and_truncation_are_errors() {
        let short = vec![SQL_BATCH, 1, 0, 4, 0, 0, 1, 0];
        assert!(matches!(
            read_all(short).await,
            Err(FrameError::BadLength(4))
        ));
        let cut = frame(SQL_BATCH, b"abcd", 4096, 0, true)[..10].to_vec();
        assert!(matches!(read_all(cut).await, Err(FrameError::Truncated)));
        let no_eom = frame(SQL_BATCH, b"abcd", 4096, 0, false);
        assert!(matches!(read_all(no_eom).await, Err(FrameError::Truncated)));
        assert!(read_all(Vec::new()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn interleaved_types_and_ignored_messages() {
        let mut wire = frame(SQL_BATCH, b"ab", 4096, 0, false);
        wire.extend(frame(RPC, b"cd", 4096, 0, true));
        assert!(matches!(
            read_all(wire).await,
            Err(FrameError::Interleaved { .. })
        ));
        let mut wire = frame(SQL_BATCH, b"ab", 4096, 0, true);
        wire[1] |= STATUS_IGNORE;
        wire.extend(frame(RPC, b"cd", 4096, 0, true));
        let msg = read_all(wire).await.unwrap().unwrap();
        assert_eq!((msg.ty, msg.payload), (RPC, b"cd".to_vec()));
    }
}
