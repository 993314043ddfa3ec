//! Framing: `0x7E | escaped(header | body | checksum) | 0x7E`.
//!
//! Escaping covers everything between the delimiters, the checksum included:
//! `0x7E → 0x7D 0x02`, `0x7D → 0x7D 0x01`. The checksum is the XOR of every
//! unescaped header and body byte.

use serde::{Deserialize, Serialize};

use super::body::Body;
use super::header::{Header, MAX_BODY_LEN};
use super::reader::Reader;
use crate::stream::{Decoded, FrameCodec};

use super::Jt808Error;

type Result<T> = core::result::Result<T, Jt808Error>;

/// The frame delimiter.
pub const FLAG: u8 = 0x7E;
/// The escape byte.
pub const ESCAPE: u8 = 0x7D;
/// The longest header: 2019 with split items.
pub const MAX_HEADER_LEN: usize = 21;
/// The longest unescaped frame content: header, body and checksum.
pub const MAX_CONTENT_LEN: usize = MAX_HEADER_LEN + MAX_BODY_LEN + 1;
/// The longest frame on the wire: every content byte escaped, plus delimiters.
pub const MAX_FRAME_LEN: usize = 2 + 2 * MAX_CONTENT_LEN;

/// One JT/T 808 packet: a header and a typed body.
///
/// ```
/// use chargeswap_protocol::jt808::{Packet, Body};
/// let wire = [0x7E, 0x00, 0x02, 0x00, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0x00,
///             0x00, 0x0A, 0x81, 0x7E];
/// let p = Packet::decode(&wire)?;
/// assert_eq!(p.body, Body::Heartbeat);
/// assert_eq!(p.header.phone.to_string(), "012345678900");
/// assert_eq!(p.header.serial, 10);
/// assert_eq!(p.encode()?, wire);
/// # Ok::<(), chargeswap_protocol::jt808::Jt808Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Packet {
    /// The header.
    pub header: Header,
    /// The body; its variant gives the message id.
    pub body: Body,
}

impl Packet {
    /// The message id.
    pub fn msg_id(&self) -> u16 {
        self.body.msg_id()
    }

    /// Decodes exactly one frame, delimiters included. See [`decode_frame`].
    pub fn decode(wire: &[u8]) -> Result<Packet> {
        decode_frame(wire)
    }

    /// Encodes the packet as one escaped frame.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(64);
        self.encode_to(&mut out)?;
        Ok(out)
    }

    /// Appends the escaped frame to `out`; on error `out` is left as it was.
    pub fn encode_to(&self, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let r = self.write(out, start);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn write(&self, out: &mut Vec<u8>, start: usize) -> Result<()> {
        out.push(FLAG);
        let content = start + 1;
        // Header first with a zero body length, patched once the body is known.
        self.header.write(self.msg_id(), 0, out)?;
        let body_start = out.len();
        self.body.encode(self.header.version, out)?;
        let body_len = out.len() - body_start;
        if body_len > MAX_BODY_LEN {
            return Err(Jt808Error::BodyTooLong {
                len: body_len,
                max: MAX_BODY_LEN,
            });
        }
        if let Some([hi, lo]) = out.get_mut(content + 2..content + 4) {
            let p = u16::from_be_bytes([*hi, *lo]) | body_len as u16;
            [*hi, *lo] = p.to_be_bytes();
        }
        let sum = xor(out.get(content..).unwrap_or(&[]));
        out.push(sum);
        let specials = out
            .get(content..)
            .unwrap_or(&[])
            .iter()
            .filter(|b| **b == FLAG || **b == ESCAPE)
            .count();
        if specials > 0 {
            let raw = out.split_off(content);
            out.reserve(raw.len() + specials + 1);
            for b in raw {
                match b {
                    FLAG => out.extend_from_slice(&[ESCAPE, 0x02]),
                    ESCAPE => out.extend_from_slice(&[ESCAPE, 0x01]),
                    b => out.push(b),
                }
            }
        }
        out.push(FLAG);
        Ok(())
    }
}

/// XOR of all bytes, eight at a time.
pub(crate) fn xor(bytes: &[u8]) -> u8 {
    let mut chunks = bytes.chunks_exact(8);
    let mut acc = 0u64;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        acc ^= u64::from_ne_bytes(w);
    }
    let mut x = acc.to_ne_bytes().iter().fold(0u8, |a, b| a ^ b);
    for b in chunks.remainder() {
        x ^= b;
    }
    x
}

/// Decodes exactly one frame: `0x7E`, escaped content, `0x7E`.
///
/// Error offsets count bytes of `wire` (the opening `0x7E` is byte 0).
/// Split parts and encrypted bodies come back as [`Body::Raw`].
pub fn decode_frame(wire: &[u8]) -> Result<Packet> {
    match wire.first() {
        Some(&FLAG) => {}
        Some(&found) => return Err(Jt808Error::MissingStart { offset: 0, found }),
        None => return Err(Jt808Error::MissingEnd { offset: 0 }),
    }
    let rest = wire.get(1..).unwrap_or(&[]);
    let Some((end, escaped)) = find_end(rest) else {
        return Err(Jt808Error::MissingEnd { offset: wire.len() });
    };
    let after = end + 2;
    if after < wire.len() {
        return Err(Jt808Error::TrailingData {
            offset: after,
            len: wire.len() - after,
        });
    }
    decode_content(rest.get(..end).unwrap_or(&[]), escaped)
}

/// The index of the first 0x7E in `rest`, and whether a 0x7D comes before it.
#[inline]
fn find_end(rest: &[u8]) -> Option<(usize, bool)> {
    let first = memchr::memchr2(FLAG, ESCAPE, rest)?;
    match rest.get(first) {
        Some(&FLAG) => Some((first, false)),
        _ => {
            let after = rest.get(first..)?;
            memchr::memchr(FLAG, after).map(|i| (first + i, true))
        }
    }
}

/// Decodes the escaped bytes between two delimiters; offsets are reported as
/// if the opening delimiter were byte 0.
#[inline]
fn decode_content(content: &[u8], escaped: bool) -> Result<Packet> {
    if content.is_empty() {
        return Err(Jt808Error::EmptyFrame { offset: 1 });
    }
    if !escaped {
        return parse_unescaped(content).map_err(|e| e.map_offset(|o| o + 1));
    }
    let mut buf = [0u8; MAX_CONTENT_LEN];
    let n = unescape(content, &mut buf)?;
    parse_unescaped(buf.get(..n).unwrap_or(&[]))
        .map_err(|e| e.map_offset(|o| 1 + wire_index(content, o)))
}

/// Unescapes into `buf`; offsets in errors are wire offsets (content + 1).
fn unescape(content: &[u8], buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    let mut i = 0;
    while let Some(&b) = content.get(i) {
        let (v, step) = if b == ESCAPE {
            match content.get(i + 1) {
                Some(0x01) => (ESCAPE, 2),
                Some(0x02) => (FLAG, 2),
                found => {
                    return Err(Jt808Error::BadEscape {
                        offset: i + 1,
                        found: found.copied(),
                    });
                }
            }
        } else {
            (b, 1)
        };
        match buf.get_mut(n) {
            Some(slot) => *slot = v,
            None => {
                return Err(Jt808Error::FrameTooLong {
                    offset: i + 1,
                    max: buf.len(),
                });
            }
        }
        n += 1;
        i += step;
    }
    Ok(n)
}

/// The index in escaped `content` of unescaped byte `k`.
fn wire_index(content: &[u8], k: usize) -> usize {
    let mut i = 0;
    for _ in 0..k {
        match content.get(i) {
            Some(&ESCAPE) => i += 2,
            Some(_) => i += 1,
            None => break,
        }
    }
    i
}

/// Parses unescaped content: header, body, checksum. Offsets count from 0.
#[inline]
fn parse_unescaped(u: &[u8]) -> Result<Packet> {
    let Some((&found, covered)) = u.split_last() else {
        return Err(Jt808Error::EmptyFrame { offset: 0 });
    };
    let computed = xor(covered);
    if computed != found {
        return Err(Jt808Error::Checksum {
            offset: covered.len(),
            computed,
            found,
        });
    }
    let mut r = Reader::new(covered, 0);
    let (header, id, declared) = Header::read(&mut r)?;
    let body_at = r.offset();
    let body = r.rest();
    if body.len() != declared {
        return Err(Jt808Error::BodyLength {
            offset: 2,
            declared,
            actual: body.len(),
        });
    }
    let body = if header.split.is_some() || header.encryption != 0 {
        Body::Raw {
            msg_id: id,
            data: body.to_vec(),
        }
    } else {
        Body::read(id, header.version, body, body_at)?
    };
    Ok(Packet { header, body })
}

/// The JT/T 808 [`FrameCodec`] for [`StreamDecoder`](crate::stream::StreamDecoder).
///
/// A frame starts at a `0x7E` that is not immediately followed by another
/// `0x7E` (two in a row are the end of one frame and the start of the next,
/// or a lost frame's end). Frames longer than [`MAX_FRAME_LEN`] are refused.
///
/// ```
/// use chargeswap_protocol::jt808::{Jt808Codec, Body};
/// use chargeswap_protocol::stream::StreamDecoder;
/// let hb = [0x7E, 0x00, 0x02, 0x00, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0x00,
///           0x00, 0x0A, 0x81, 0x7E];
/// let mut d = StreamDecoder::new(Jt808Codec);
/// d.push(&hb[..5]);
/// assert!(d.next_frame().is_none());
/// d.push(&hb[5..]);
/// d.push(&hb);
/// let frames = d.drain_frames();
/// assert_eq!(frames.len(), 2);
/// assert_eq!(frames[0].body, Body::Heartbeat);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Jt808Codec;

impl FrameCodec for Jt808Codec {
    type Frame = Packet;
    type Error = Jt808Error;

    fn max_frame_len(&self) -> usize {
        MAX_FRAME_LEN
    }

    fn find_start(&self, buf: &[u8]) -> Option<usize> {
        // Back-to-back frames: the next one starts right here.
        if let [FLAG, next, ..] = buf {
            if *next != FLAG {
                return Some(0);
            }
        }
        let mut from = 0;
        loop {
            let i = from + memchr::memchr(FLAG, buf.get(from..)?)?;
            if buf.get(i + 1) != Some(&FLAG) {
                return Some(i);
            }
            from = i + 1;
        }
    }

    fn decode_prefix(&self, buf: &[u8]) -> Result<Decoded<Packet>> {
        match buf.first() {
            Some(&FLAG) => {}
            Some(&found) => return Err(Jt808Error::MissingStart { offset: 0, found }),
            None => return Ok(Decoded::Incomplete),
        }
        let rest = buf.get(1..).unwrap_or(&[]);
        match find_end(rest) {
            None => Ok(Decoded::Incomplete),
            Some((0, _)) => Err(Jt808Error::EmptyFrame { offset: 1 }),
            Some((end, escaped)) => Ok(Decoded::Frame {
                frame: decode_content(rest.get(..end).unwrap_or(&[]), escaped)?,
                len: end + 2,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_matches_bytewise() {
        let v: Vec<u8> = (0..=40u8).collect();
        for n in 0..v.len() {
            let want = v[..n].iter().fold(0, |a, b| a ^ b);
            assert_eq!(xor(&v[..n]), want);
        }
    }

    #[test]
    fn wire_index_skips_escapes() {
        let c = [0x01, 0x7D, 0x02, 0x03, 0x7D, 0x01, 0x05];
        assert_eq!(wire_index(&c, 0), 0);
        assert_eq!(wire_index(&c, 1), 1);
        assert_eq!(wire_index(&c, 2), 3);
        assert_eq!(wire_index(&c, 3), 4);
        assert_eq!(wire_index(&c, 4), 6);
    }
}
