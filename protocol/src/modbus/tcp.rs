//! Modbus TCP framing: the MBAP header.
//!
//! ```text
//! offset 0      2        4       6     7
//!        +------+--------+-------+-----+---------------------+
//!        | tid  | pid=0  | len   | unit| PDU (1–253 bytes)   |
//!        +------+--------+-------+-----+---------------------+
//! ```
//!
//! `tid` is the transaction identifier the server echoes, `pid` the protocol
//! identifier (always 0), `len` the number of bytes that follow it (unit and
//! PDU, so 2–254); all big-endian. There is no CRC: TCP checks the bytes.
//!
//! ```
//! use chargeswap_protocol::modbus::{Request, TcpFrame};
//! let f = TcpFrame { transaction: 1, unit: 0xFF, pdu: Request::ReadInputRegisters { address: 0, quantity: 7 } };
//! let bytes = f.encode()?;
//! assert_eq!(bytes, [0, 1, 0, 0, 0, 6, 0xFF, 0x04, 0, 0, 0, 7]);
//! assert_eq!(TcpFrame::<Request>::decode(&bytes)?, f);
//! # Ok::<(), chargeswap_protocol::modbus::ModbusError>(())
//! ```

use core::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::pdu::Pdu;
use super::{MAX_TCP_FRAME_LEN, ModbusError, be16};
use crate::stream::{Decoded, FrameCodec, FrameEncoder};

/// Length of the MBAP header including the unit byte.
pub const MBAP_HEADER_LEN: usize = 7;

/// One Modbus TCP frame: MBAP header fields and a PDU of one direction.
///
/// In JSON the PDU's fields sit beside the header's:
/// `{"transaction": 1, "unit": 255, "function": "read_input_registers", "address": 0, "quantity": 7}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TcpFrame<P> {
    /// Transaction identifier, echoed by the server.
    pub transaction: u16,
    /// Unit identifier (the slave behind a gateway; 0xFF or 0 when direct).
    pub unit: u8,
    /// The PDU.
    #[serde(flatten)]
    pub pdu: P,
}

impl<P: Pdu> TcpFrame<P> {
    /// Decodes the frame at the front of `buf`, telling how many bytes it used.
    pub fn decode_prefix(buf: &[u8]) -> Result<Decoded<Self>, ModbusError> {
        let (Some(transaction), Some(pid), Some(length), Some(&unit)) =
            (be16(buf, 0), be16(buf, 2), be16(buf, 4), buf.get(6))
        else {
            // Check what we have early, so garbage is rejected before 7 bytes arrive.
            if let Some(found) = be16(buf, 2).filter(|p| *p != 0) {
                return Err(ModbusError::BadProtocolId { found });
            }
            if let Some(length) = be16(buf, 4).filter(|l| !(2..=254).contains(l)) {
                return Err(ModbusError::BadMbapLength { length });
            }
            return Ok(Decoded::Incomplete);
        };
        if pid != 0 {
            return Err(ModbusError::BadProtocolId { found: pid });
        }
        if !(2..=254).contains(&length) {
            return Err(ModbusError::BadMbapLength { length });
        }
        let total = 6 + usize::from(length);
        let Some(pdu) = buf.get(MBAP_HEADER_LEN..total) else {
            return Ok(Decoded::Incomplete);
        };
        Ok(Decoded::Frame {
            frame: TcpFrame {
                transaction,
                unit,
                pdu: P::decode_exact(pdu, MBAP_HEADER_LEN)?,
            },
            len: total,
        })
    }

    /// Decodes exactly one frame: `bytes` must hold the whole frame and nothing more.
    pub fn decode(bytes: &[u8]) -> Result<Self, ModbusError> {
        match Self::decode_prefix(bytes)? {
            Decoded::Frame { frame, len } if len == bytes.len() => Ok(frame),
            Decoded::Frame { len, .. } => Err(ModbusError::TrailingBytes {
                offset: len,
                len: bytes.len() - len,
            }),
            Decoded::Incomplete => Err(ModbusError::Truncated {
                needed: be16(bytes, 4).map_or(MBAP_HEADER_LEN + 1, |l| 6 + usize::from(l)),
                got: bytes.len(),
            }),
        }
    }

    /// Appends the frame to `out`. On error `out` is left as it was.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), ModbusError> {
        let start = out.len();
        out.extend_from_slice(&self.transaction.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, self.unit]);
        if let Err(e) = self.pdu.encode_pdu(out) {
            out.truncate(start);
            return Err(e);
        }
        // unit + PDU; PDUs are at most 253 bytes, so this fits.
        let length = u16::try_from(out.len() - start - 6).unwrap_or(u16::MAX);
        if let Some(slot) = out.get_mut(start + 4..start + 6) {
            slot.copy_from_slice(&length.to_be_bytes());
        }
        Ok(())
    }

    /// The frame's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, ModbusError> {
        let mut out = Vec::with_capacity(16);
        self.encode_into(&mut out)?;
        Ok(out)
    }
}

/// Streaming Modbus TCP decoder for one direction: `MbapCodec::<Request>` on
/// a server, `MbapCodec::<Response>` on a client.
///
/// TCP keeps frames aligned, so resynchronisation only matters after a peer
/// bug: a frame may start where the protocol identifier (bytes 2–3) and the
/// length's high byte (byte 4) are zero.
pub struct MbapCodec<P> {
    _pdu: PhantomData<fn() -> P>,
}

impl<P> MbapCodec<P> {
    /// A codec for PDUs of type `P`.
    pub const fn new() -> Self {
        MbapCodec { _pdu: PhantomData }
    }
}

impl<P> Default for MbapCodec<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P> Clone for MbapCodec<P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P> Copy for MbapCodec<P> {}

impl<P> core::fmt::Debug for MbapCodec<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "MbapCodec<{}>", core::any::type_name::<P>())
    }
}

impl<P: Pdu> FrameCodec for MbapCodec<P> {
    type Frame = TcpFrame<P>;
    type Error = ModbusError;

    fn max_frame_len(&self) -> usize {
        MAX_TCP_FRAME_LEN
    }

    fn find_start(&self, buf: &[u8]) -> Option<usize> {
        (0..buf.len()).find(|&i| {
            [2, 3, 4]
                .iter()
                .all(|k| buf.get(i + k).is_none_or(|b| *b == 0))
        })
    }

    fn decode_prefix(&self, buf: &[u8]) -> Result<Decoded<TcpFrame<P>>, ModbusError> {
        TcpFrame::decode_prefix(buf)
    }
}

/// Any MBAP codec writes frames of either direction.
impl<P, Q: Pdu> FrameEncoder<TcpFrame<Q>> for MbapCodec<P> {
    type Error = ModbusError;

    fn encode_frame(&self, frame: &TcpFrame<Q>, out: &mut Vec<u8>) -> Result<(), ModbusError> {
        frame.encode_into(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::{ExceptionCode, Request, Response};
    use crate::stream::StreamDecoder;

    #[test]
    fn header_errors_name_the_field() {
        assert_eq!(
            TcpFrame::<Request>::decode(&[0, 1, 0, 1, 0, 6, 1, 3, 0, 0, 0, 1]),
            Err(ModbusError::BadProtocolId { found: 1 })
        );
        assert_eq!(
            TcpFrame::<Request>::decode(&[0, 1, 0, 0, 0, 1, 1]),
            Err(ModbusError::BadMbapLength { length: 1 })
        );
        assert_eq!(
            TcpFrame::<Request>::decode(&[0, 1, 0, 0, 0, 6, 1, 3, 0]),
            Err(ModbusError::Truncated { needed: 12, got: 9 })
        );
        // length says 7 but a 0x03 request PDU is 5 bytes
        assert_eq!(
            TcpFrame::<Request>::decode(&[0, 1, 0, 0, 0, 7, 1, 3, 0, 0, 0, 1, 0]),
            Err(ModbusError::PduLength {
                offset: 7,
                function: 3,
                expected: 5,
                got: 6
            })
        );
    }

    #[test]
    fn exception_round_trip() {
        let bytes = [0x12, 0x34, 0, 0, 0, 3, 1, 0x84, 2];
        let f = TcpFrame::<Response>::decode(&bytes).unwrap();
        assert_eq!(f.transaction, 0x1234);
        assert_eq!(
            f.pdu,
            Response::Exception {
                function_code: 4,
                exception: ExceptionCode::ILLEGAL_DATA_ADDRESS
            }
        );
        assert_eq!(f.encode().unwrap(), bytes);
    }

    #[test]
    fn stream_skips_garbage_between_frames() {
        let f = TcpFrame {
            transaction: 7,
            unit: 1,
            pdu: Response::WriteSingleRegister {
                address: 0x101,
                value: 1,
            },
        };
        let b = f.encode().unwrap();
        let mut d = StreamDecoder::new(MbapCodec::<Response>::new());
        d.push(&[0xFF, 0xFF, 0x01]);
        d.push(&b);
        d.push(&b[..5]);
        let frames = d.drain_frames();
        assert_eq!(frames, vec![f]);
        assert!(d.buffered() > 0);
    }
}
