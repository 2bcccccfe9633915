//! The forwarding protocol between a follower and the writer, over the Unix socket in the
//! database directory. Defined once, here; `docs/forwarding.md` shows the same layout.
//!
//! Every message is a frame: `len: u32 LE` (bytes after this field), `version: u8`
//! ([`WIRE_VERSION`]), `kind: u8`, then the body. Integers are little-endian.
//!
//! ```text
//! append request   kind 1: flags u8 (bit 0 durable, bit 1 expected present)
//!                          (an [`Append`], field for field: the writer appends what the
//!                          follower built, unchanged)
//!                          lane u32, expected u64, key_len u16, key, payload (the rest)
//! receipt          kind 2: lane u32, lane_seq u64, global_seq u64, wall_ms u64
//! refusal          kind 3: reason u8, expected u64, actual u64, message (UTF-8, the rest)
//! ```
//!
//! Decoding never panics: any length, version or kind it does not know is a
//! [`WireError`], and the connection is dropped.

use crate::record::{Append, Durability, Receipt};
use std::io::{self, Read, Write};
use tidelog_watermarks::{GlobalSeq, HlcPoint, LaneId, LaneSeq};

/// Version of the forwarding protocol.
pub(crate) const WIRE_VERSION: u8 = 1;
/// Largest frame accepted (a record of the largest size the engine accepts, plus room).
pub(crate) const MAX_FRAME: u32 = 64 * 1024 * 1024;

const APPEND: u8 = 1;
const RECEIPT: u8 = 2;
const REFUSAL: u8 = 3;
const DURABLE: u8 = 1;
const HAS_EXPECTED: u8 = 2;

/// Why the writer refused a forwarded append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefusalReason {
    /// The lane's head was not the expected one.
    Conflict,
    /// The writer is poisoned, has lost its lease, or is closing.
    WriterFailed,
    /// The request was invalid (too large, bad key).
    Invalid,
}

/// The writer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Receipt(Receipt),
    Refusal {
        reason: RefusalReason,
        expected: u64,
        actual: u64,
        message: String,
    },
}

/// A frame that cannot be decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    #[error("the connection failed: {0}")]
    Io(#[from] io::Error),
    #[error("a frame of {0} bytes is larger than the {MAX_FRAME} allowed")]
    TooLarge(u32),
    #[error("a frame is truncated or malformed ({0})")]
    Malformed(&'static str),
    #[error("the peer speaks forwarding protocol version {0}, this build speaks {WIRE_VERSION}")]
    Version(u8),
}

impl WireError {
    /// Whether the peer did not answer in time (a read timeout on the socket).
    pub(crate) fn is_timeout(&self) -> bool {
        matches!(self, WireError::Io(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }
}

fn write_frame(out: &mut impl Write, kind: u8, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len() + 2)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut frame = Vec::with_capacity(body.len() + 6);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.push(WIRE_VERSION);
    frame.push(kind);
    frame.extend_from_slice(body);
    out.write_all(&frame)?;
    out.flush()
}

/// Reads one frame: `Ok(None)` on a clean end of stream before any byte.
fn read_frame(input: &mut impl Read) -> Result<Option<(u8, Vec<u8>)>, WireError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(WireError::Malformed("stream ended inside a length")),
            Ok(n) => got += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err.into()),
        }
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    if len < 2 {
        return Err(WireError::Malformed("frame shorter than its header"));
    }
    let mut frame = vec![0u8; len as usize];
    input.read_exact(&mut frame)?;
    let [version, kind, ..] = frame[..] else {
        return Err(WireError::Malformed("frame shorter than its header"));
    };
    if version != WIRE_VERSION {
        return Err(WireError::Version(version));
    }
    frame.drain(..2);
    Ok(Some((kind, frame)))
}

/// A cursor over a body that refuses to read past its end.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Malformed(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        let bytes = self.take(2, what)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let mut out = [0u8; 4];
        out.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(out))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        let mut out = [0u8; 8];
        out.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(out))
    }
}

/// An [`Append`] on the wire: the forwarded request is the append itself.
pub(crate) trait AppendWire: Sized {
    /// Writes it as an append request frame.
    fn write(&self, out: &mut impl Write) -> io::Result<()>;
    /// Reads the next request; `Ok(None)` when the follower hung up.
    fn read(input: &mut impl Read) -> Result<Option<Self>, WireError>;
}

impl AppendWire for Append {
    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let key_len = u16::try_from(self.key.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "key too long"))?;
        let mut body = Vec::with_capacity(23 + self.key.len() + self.payload.len());
        let flags = if self.is_durable() { DURABLE } else { 0 }
            | if self.expected.is_some() {
                HAS_EXPECTED
            } else {
                0
            };
        body.push(flags);
        body.extend_from_slice(&self.lane.0.to_le_bytes());
        body.extend_from_slice(&self.expected.map_or(0, |s| s.0).to_le_bytes());
        body.extend_from_slice(&key_len.to_le_bytes());
        body.extend_from_slice(&self.key);
        body.extend_from_slice(&self.payload);
        write_frame(out, APPEND, &body)
    }

    fn read(input: &mut impl Read) -> Result<Option<Self>, WireError> {
        let Some((kind, frame)) = read_frame(input)? else {
            return Ok(None);
        };
        if kind != APPEND {
            return Err(WireError::Malformed("not an append request"));
        }
        let mut body = Body(&frame);
        let flags = body.u8("flags")?;
        let lane = LaneId(body.u32("lane")?);
        let expected = body.u64("expected")?;
        let key_len = body.u16("key length")?;
        let key = body.take(usize::from(key_len), "key")?.to_vec();
        let durability = if flags & DURABLE != 0 {
            Durability::Durable
        } else {
            Durability::Written
        };
        Ok(Some(
            Append::new(lane, body.0.to_vec())
                .key(key)
                .expecting_if((flags & HAS_EXPECTED != 0).then_some(LaneSeq(expected)))
                .durability(durability),
        ))
    }
}

impl Answer {
    pub(crate) fn write(&self, out: &mut impl Write) -> io::Result<()> {
        match self {
            Answer::Receipt(receipt) => {
                let mut body = Vec::with_capacity(28);
                body.extend_from_slice(&receipt.lane.0.to_le_bytes());
                body.extend_from_slice(&receipt.lane_seq.0.to_le_bytes());
                body.extend_from_slice(&receipt.point.global_sequence.to_le_bytes());
                body.extend_from_slice(&receipt.point.wall_ms.to_le_bytes());
                write_frame(out, RECEIPT, &body)
            }
            Answer::Refusal {
                reason,
                expected,
                actual,
                message,
            } => {
                let mut body = Vec::with_capacity(17 + message.len());
                body.push(match reason {
                    RefusalReason::Conflict => 1,
                    RefusalReason::WriterFailed => 2,
                    RefusalReason::Invalid => 3,
                });
                body.extend_from_slice(&expected.to_le_bytes());
                body.extend_from_slice(&actual.to_le_bytes());
                body.extend_from_slice(message.as_bytes());
                write_frame(out, REFUSAL, &body)
            }
        }
    }

    /// Reads the writer's answer; `Ok(None)` when the writer hung up first.
    pub(crate) fn read(input: &mut impl Read) -> Result<Option<Self>, WireError> {
        let Some((kind, frame)) = read_frame(input)? else {
            return Ok(None);
        };
        let mut body = Body(&frame);
        match kind {
            RECEIPT => {
                let lane = LaneId(body.u32("lane")?);
                let lane_seq = LaneSeq(body.u64("lane sequence")?);
                let global = body.u64("global sequence")?;
                let wall_ms = body.u64("wall time")?;
                Ok(Some(Answer::Receipt(Receipt {
                    lane,
                    lane_seq,
                    point: HlcPoint::new(wall_ms, GlobalSeq(global)),
                })))
            }
            REFUSAL => {
                let reason = match body.u8("reason")? {
                    1 => RefusalReason::Conflict,
                    2 => RefusalReason::WriterFailed,
                    3 => RefusalReason::Invalid,
                    _ => return Err(WireError::Malformed("unknown refusal reason")),
                };
                let expected = body.u64("expected")?;
                let actual = body.u64("actual")?;
                let message = String::from_utf8_lossy(body.0).into_owned();
                Ok(Some(Answer::Refusal {
                    reason,
                    expected,
                    actual,
                    message,
                }))
            }
            _ => Err(WireError::Malformed("unknown answer kind")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_and_both_answers_survive_the_round_trip() {
        for request in [
            Append::new(7, b"payload".to_vec())
                .key(b"k".to_vec())
                .expecting(LaneSeq(3))
                .durable(),
            Append::new(u32::MAX, Vec::new()),
            Append::new(1, b"x".to_vec()).expecting(LaneSeq(0)),
        ] {
            let mut buf = Vec::new();
            request.write(&mut buf).unwrap();
            assert_eq!(Append::read(&mut buf.as_slice()).unwrap(), Some(request));
        }
        for answer in [
            Answer::Receipt(Receipt {
                lane: LaneId(1),
                lane_seq: LaneSeq(2),
                point: HlcPoint::new(3, GlobalSeq(4)),
            }),
            Answer::Refusal {
                reason: RefusalReason::Conflict,
                expected: 1,
                actual: 2,
                message: "stale".into(),
            },
        ] {
            let mut buf = Vec::new();
            answer.write(&mut buf).unwrap();
            assert_eq!(Answer::read(&mut buf.as_slice()).unwrap(), Some(answer));
        }
    }

    #[test]
    fn every_truncation_of_a_frame_is_an_error_never_a_panic() {
        let mut buf = Vec::new();
        Append::new(1, b"x".to_vec())
            .key(b"key".to_vec())
            .write(&mut buf)
            .unwrap();
        for cut in 1..buf.len() {
            assert!(Append::read(&mut &buf[..cut]).is_err(), "cut {cut}");
            assert!(Answer::read(&mut &buf[..cut]).is_err(), "cut {cut}");
        }
        assert!(matches!(Append::read(&mut &buf[..0]), Ok(None)));
    }

    #[test]
    fn a_frame_from_another_version_or_too_large_is_refused() {
        let mut buf = Vec::new();
        Answer::Refusal {
            reason: RefusalReason::Invalid,
            expected: 0,
            actual: 0,
            message: String::new(),
        }
        .write(&mut buf)
        .unwrap();
        buf[4] = WIRE_VERSION + 1;
        assert!(matches!(
            Answer::read(&mut buf.as_slice()),
            Err(WireError::Version(_))
        ));
        let huge = (MAX_FRAME + 1).to_le_bytes();
        assert!(matches!(
            Answer::read(&mut huge.as_slice()),
            Err(WireError::TooLarge(_))
        ));
    }
}
