//! Modbus RTU framing, also used for RTU over TCP (DTU transparent mode).
//!
//! ```text
//! +------+----------------------+---------+---------+
//! | unit | PDU (1–253 bytes)    | CRC lo  | CRC hi  |
//! +------+----------------------+---------+---------+
//! ```
//!
//! The CRC is CRC-16/MODBUS over unit and PDU, sent low byte first. RTU has
//! no delimiter and no length field: on a serial line frames are separated
//! by 3.5 character times of silence, which a TCP stream does not keep. So
//! [`RtuCodec`] works out each frame's length from its function code and
//! the direction it reads ([`Request`](super::Request) or
//! [`Response`](super::Response)), checks the CRC, and on a mismatch moves
//! one byte on and tries again: resynchronisation by CRC.
//!
//! ```
//! use chargeswap_protocol::modbus::{Response, RtuCodec};
//! use chargeswap_protocol::stream::StreamDecoder;
//!
//! let mut d = StreamDecoder::new(RtuCodec::<Response>::new());
//! d.push(b"HB");                                    // a DTU heartbeat: garbage
//! d.push(&[0x11, 0x03, 0x06, 0xAE, 0x41, 0x56]);    // half a response
//! d.push(&[0x52, 0x43, 0x40, 0x49, 0xAD]);          // the rest
//! let frames = d.drain_frames();
//! assert_eq!(frames.len(), 1);
//! assert_eq!(frames[0].unit, 17);
//! ```

use core::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::pdu::{Pdu, PduLen};
use super::{MAX_RTU_FRAME_LEN, ModbusError, crc16};
use crate::stream::{Decoded, FrameCodec, FrameEncoder};

/// One RTU frame: the slave's unit address and a PDU of one direction.
///
/// In JSON the PDU's fields sit beside `unit`:
/// `{"unit": 1, "function": "read_holding_registers", "address": 0, "quantity": 10}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RtuFrame<P> {
    /// Slave address: 1–247, 0 for broadcast (requests only).
    pub unit: u8,
    /// The PDU.
    #[serde(flatten)]
    pub pdu: P,
}

/// The frame length at the front of `buf`: Ok(Known(total)) or Ok(AtLeast(n)).
fn frame_len<P: Pdu>(buf: &[u8]) -> Result<PduLen, ModbusError> {
    if buf.is_empty() {
        return Ok(PduLen::AtLeast(4));
    }
    Ok(match P::pdu_len(buf.get(1..).unwrap_or(&[]), 1)? {
        PduLen::Known(n) => PduLen::Known(n + 3),
        PduLen::AtLeast(n) => PduLen::AtLeast(n + 3),
    })
}

impl<P: Pdu> RtuFrame<P> {
    /// Decodes the frame at the front of `buf`, telling how many bytes it used.
    pub fn decode_prefix(buf: &[u8]) -> Result<Decoded<Self>, ModbusError> {
        let PduLen::Known(total) = frame_len::<P>(buf)? else {
            return Ok(Decoded::Incomplete);
        };
        let Some(frame) = buf.get(..total) else {
            return Ok(Decoded::Incomplete);
        };
        let crc_at = total - 2;
        let (body, crc) = frame.split_at_checked(crc_at).unwrap_or((frame, &[]));
        let found = match crc {
            [lo, hi] => u16::from_le_bytes([*lo, *hi]),
            _ => 0,
        };
        let computed = crc16(body);
        if found != computed {
            return Err(ModbusError::BadCrc {
                offset: crc_at,
                found,
                computed,
            });
        }
        let (&unit, pdu) = body.split_first().unwrap_or((&0, &[]));
        Ok(Decoded::Frame {
            frame: RtuFrame {
                unit,
                pdu: P::decode_pdu(pdu, 1)?,
            },
            len: total,
        })
    }

    /// Decodes exactly one frame: `bytes` must hold the whole frame and nothing more.
    ///
    /// ```
    /// use chargeswap_protocol::modbus::{ModbusError, Request, RtuFrame};
    /// let f = RtuFrame::<Request>::decode(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD])?;
    /// assert_eq!(f.pdu, Request::ReadHoldingRegisters { address: 0, quantity: 10 });
    /// let bad = RtuFrame::<Request>::decode(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCE]);
    /// assert!(matches!(bad, Err(ModbusError::BadCrc { offset: 6, .. })));
    /// # Ok::<(), ModbusError>(())
    /// ```
    pub fn decode(bytes: &[u8]) -> Result<Self, ModbusError> {
        match Self::decode_prefix(bytes)? {
            Decoded::Frame { frame, len } if len == bytes.len() => Ok(frame),
            Decoded::Frame { len, .. } => Err(ModbusError::TrailingBytes {
                offset: len,
                len: bytes.len() - len,
            }),
            Decoded::Incomplete => {
                let needed = match frame_len::<P>(bytes)? {
                    PduLen::Known(n) => n,
                    PduLen::AtLeast(n) => n.max(bytes.len() + 1),
                };
                Err(ModbusError::Truncated {
                    needed,
                    got: bytes.len(),
                })
            }
        }
    }

    /// Appends the frame to `out`. On error `out` is left as it was.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), ModbusError> {
        let start = out.len();
        out.push(self.unit);
        if let Err(e) = self.pdu.encode_pdu(out) {
            out.truncate(start);
            return Err(e);
        }
        let crc = crc16(out.get(start..).unwrap_or(&[]));
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(())
    }

    /// The frame's bytes.
    ///
    /// ```
    /// use chargeswap_protocol::modbus::{Response, ExceptionCode, RtuFrame};
    /// let f = RtuFrame { unit: 10, pdu: Response::Exception { function_code: 1, exception: ExceptionCode(2) } };
    /// assert_eq!(f.encode()?, [0x0A, 0x81, 0x02, 0xB0, 0x53]);
    /// # Ok::<(), chargeswap_protocol::modbus::ModbusError>(())
    /// ```
    pub fn encode(&self) -> Result<Vec<u8>, ModbusError> {
        let mut out = Vec::with_capacity(16);
        self.encode_into(&mut out)?;
        Ok(out)
    }
}

/// Streaming RTU decoder for one direction: `RtuCodec::<Request>` on a
/// slave, `RtuCodec::<Response>` on a master. Plug it into
/// [`StreamDecoder`](crate::stream::StreamDecoder).
///
/// A frame may start at any byte whose next byte is a function code of the
/// direction; a candidate whose CRC fails is skipped one byte at a time.
///
/// Without a delimiter, a false start in garbage can claim a long frame and
/// hold later frames back until enough bytes arrive to complete it (and fail
/// its CRC) or [`MAX_RTU_FRAME_LEN`] bytes are buffered; nothing is lost,
/// only delayed. A master that knows which reply it waits for narrows the
/// candidates with [`RtuCodec::expecting`], which makes false starts rare.
pub struct RtuCodec<P> {
    unit: Option<u8>,
    function: Option<u8>,
    _pdu: PhantomData<fn() -> P>,
}

impl<P> RtuCodec<P> {
    /// A codec for PDUs of type `P`.
    pub const fn new() -> Self {
        RtuCodec {
            unit: None,
            function: None,
            _pdu: PhantomData,
        }
    }

    /// A codec that only starts frames at `unit` followed by `function` or
    /// its exception code (`0x80 | function`): what a master expects after
    /// sending a request with that unit and function.
    ///
    /// ```
    /// use chargeswap_protocol::modbus::{Response, RtuCodec};
    /// use chargeswap_protocol::stream::FrameCodec;
    /// let c = RtuCodec::<Response>::expecting(2, 0x04);
    /// // unit 1 is not expected, 0x03 is not the function; 02 84 is its exception reply
    /// assert_eq!(c.find_start(&[0x01, 0x04, 0x02, 0x03, 0x02, 0x84]), Some(4));
    /// ```
    pub const fn expecting(unit: u8, function: u8) -> Self {
        RtuCodec {
            unit: Some(unit),
            function: Some(function),
            _pdu: PhantomData,
        }
    }
}

impl<P> Default for RtuCodec<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P> Clone for RtuCodec<P> {
    fn clone(&self) -> Self {
        *self
    }
}

/// Any RTU codec writes frames of either direction (a master decodes
/// responses and encodes requests with the same codec).
impl<P, Q: Pdu> FrameEncoder<RtuFrame<Q>> for RtuCodec<P> {
    type Error = ModbusError;

    fn encode_frame(&self, frame: &RtuFrame<Q>, out: &mut Vec<u8>) -> Result<(), ModbusError> {
        frame.encode_into(out)
    }
}

#[cfg(test)]
mod expecting_tests {
    use super::*;
    use crate::modbus::Response;
    use crate::stream::StreamDecoder;

    #[test]
    fn expecting_skips_false_starts() {
        let good = RtuFrame {
            unit: 3,
            pdu: Response::ReadInputRegisters {
                registers: vec![7; 7],
            },
        }
        .encode()
        .unwrap();
        // garbage that would claim a 250-byte register response to an unfiltered codec
        let mut bytes = vec![0x01, 0x03, 0xFA, 0x00];
        bytes.extend_from_slice(&good);
        let mut plain = StreamDecoder::new(RtuCodec::<Response>::new());
        plain.push(&bytes);
        assert!(plain.drain_frames().is_empty());
        let mut d = StreamDecoder::new(RtuCodec::<Response>::expecting(3, 4));
        d.push(&bytes);
        assert_eq!(d.drain_frames().len(), 1);
    }
}

impl<P> Copy for RtuCodec<P> {}

impl<P> core::fmt::Debug for RtuCodec<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RtuCodec")
            .field("pdu", &core::any::type_name::<P>())
            .field("unit", &self.unit)
            .field("function", &self.function)
            .finish()
    }
}

impl<P: Pdu> FrameCodec for RtuCodec<P> {
    type Frame = RtuFrame<P>;
    type Error = ModbusError;

    fn max_frame_len(&self) -> usize {
        MAX_RTU_FRAME_LEN
    }

    fn find_start(&self, buf: &[u8]) -> Option<usize> {
        let unit_ok = |u: u8| self.unit.is_none_or(|x| x == u);
        let function_ok = |f: u8| match self.function {
            Some(x) => f & 0x7F == x && (f == x || P::is_plausible_function(f)),
            None => P::is_plausible_function(f),
        };
        buf.windows(2)
            .position(|w| matches!(w, [u, f] if unit_ok(*u) && function_ok(*f)))
            .or_else(|| buf.last().filter(|u| unit_ok(**u)).map(|_| buf.len() - 1))
    }

    fn decode_prefix(&self, buf: &[u8]) -> Result<Decoded<RtuFrame<P>>, ModbusError> {
        RtuFrame::decode_prefix(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::{ExceptionCode, Request, Response};
    use crate::stream::{StreamDecoder, StreamError};

    #[test]
    fn spec_examples_round_trip() {
        let bytes = [0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87];
        let f = RtuFrame::<Request>::decode(&bytes).unwrap();
        assert_eq!(f.unit, 17);
        assert_eq!(f.encode().unwrap(), bytes);
        let bytes = [0x0A, 0x81, 0x02, 0xB0, 0x53];
        let f = RtuFrame::<Response>::decode(&bytes).unwrap();
        assert_eq!(
            f.pdu,
            Response::Exception {
                function_code: 1,
                exception: ExceptionCode(2)
            }
        );
        assert_eq!(f.encode().unwrap(), bytes);
    }

    #[test]
    fn truncation_and_trailing_bytes_name_offsets() {
        let bytes = [
            0x11, 0x03, 0x06, 0xAE, 0x41, 0x56, 0x52, 0x43, 0x40, 0x49, 0xAD,
        ];
        assert_eq!(
            RtuFrame::<Response>::decode(&bytes[..7]),
            Err(ModbusError::Truncated { needed: 11, got: 7 })
        );
        assert_eq!(
            RtuFrame::<Response>::decode(&bytes[..2]),
            Err(ModbusError::Truncated { needed: 5, got: 2 })
        );
        assert_eq!(
            RtuFrame::<Response>::decode(&[]),
            Err(ModbusError::Truncated { needed: 4, got: 0 })
        );
        let mut long = bytes.to_vec();
        long.push(0);
        assert_eq!(
            RtuFrame::<Response>::decode(&long),
            Err(ModbusError::TrailingBytes { offset: 11, len: 1 })
        );
    }

    #[test]
    fn direction_matters() {
        // A 0x03 request is 8 bytes; read as a response its byte count 0x00 is invalid.
        let req = [0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD];
        assert!(matches!(
            RtuFrame::<Response>::decode(&req),
            Err(ModbusError::BadByteCount { offset: 2, .. })
        ));
    }

    #[test]
    fn encode_error_leaves_buffer_alone() {
        let mut out = vec![9];
        let bad = RtuFrame {
            unit: 1,
            pdu: Request::WriteMultipleRegisters {
                address: 0,
                values: vec![0; 124],
            },
        };
        assert!(bad.encode_into(&mut out).is_err());
        assert_eq!(out, [9]);
    }

    #[test]
    fn stream_resyncs_after_a_corrupt_frame() {
        let good = RtuFrame {
            unit: 2,
            pdu: Response::ReadInputRegisters {
                registers: vec![1, 2, 3],
            },
        }
        .encode()
        .unwrap();
        let mut corrupt = good.clone();
        corrupt[4] ^= 0xFF;
        // A false start in the corrupt bytes may wait for more bytes; a
        // continuing stream completes it, fails its CRC, and moves on.
        let mut d = StreamDecoder::new(RtuCodec::<Response>::new());
        d.push(&corrupt);
        for _ in 0..30 {
            d.push(&good);
        }
        let mut frames = Vec::new();
        let mut crc_errors = 0;
        while let Some(r) = d.next_frame() {
            match r {
                Ok(f) => frames.push(f),
                Err(StreamError::Frame {
                    error: ModbusError::BadCrc { .. },
                    ..
                }) => crc_errors += 1,
                Err(_) => {}
            }
        }
        assert!(crc_errors >= 1);
        assert_eq!(frames.len(), 30);
        assert!(frames.iter().all(|f| f.encode().unwrap() == good));
    }
}
