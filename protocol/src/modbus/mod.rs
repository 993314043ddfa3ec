//! Modbus RTU, RTU over TCP, and Modbus TCP (MBAP), sans-IO.
//!
//! Inside a cabinet the slot boards and the batteries' BMSs hang on an
//! RS-485 bus and speak Modbus RTU; the cabinet's DTU carries those frames
//! unchanged over TCP ("RTU over TCP", transparent mode). Cabinets with an
//! Ethernet controller speak Modbus TCP instead. This module has the three
//! framings, the four function codes the platform uses and the register map:
//!
//! - [`pdu`]: the protocol data units: [`Request`] and [`Response`] for
//!   function codes 0x03 (read holding registers), 0x04 (read input
//!   registers), 0x06 (write single register), 0x10 (write multiple
//!   registers) and exception responses. The [`Pdu`] trait gives each
//!   direction its own length rules.
//! - [`rtu`]: [`RtuFrame`] (unit, PDU, CRC-16/MODBUS low byte first) and the
//!   streaming [`RtuCodec`], which knows the direction it decodes and
//!   resynchronises by CRC. RTU over TCP is the same bytes on a TCP stream.
//! - [`tcp`]: [`TcpFrame`] with the MBAP header and the streaming [`MbapCodec`].
//! - [`map`]: the register map of a slot board and of a BMS, decoded into
//!   real units (docs/protocol/modbus-map.md).
//! - [`slave`]: a pure simulator of a cabinet's slot boards that answers
//!   requests from the register map; the tokio servers and tests build on it.
//! - [`dtu`]: the registration packet a DTU sends first in transparent mode.
//!
//! Layouts and examples: docs/protocol/modbus.md.
//!
//! ```
//! use chargeswap_protocol::modbus::{Request, Response, RtuFrame};
//!
//! // Read 3 holding registers from 0x006B on unit 17 (the Modbus spec's example).
//! let req = RtuFrame { unit: 17, pdu: Request::ReadHoldingRegisters { address: 0x006B, quantity: 3 } };
//! assert_eq!(req.encode()?, [0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87]);
//!
//! let rsp = RtuFrame::<Response>::decode(&[0x11, 0x03, 0x06, 0xAE, 0x41, 0x56, 0x52, 0x43, 0x40, 0x49, 0xAD])?;
//! assert_eq!(rsp.pdu, Response::ReadHoldingRegisters { registers: vec![0xAE41, 0x5652, 0x4340] });
//! # Ok::<(), chargeswap_protocol::modbus::ModbusError>(())
//! ```

use serde::{Deserialize, Serialize};

pub mod dtu;
pub mod map;
pub mod pdu;
pub mod rtu;
pub mod slave;
pub mod tcp;

pub use pdu::{Direction, ExceptionCode, Pdu, PduLen, Request, Response};
pub use rtu::{RtuCodec, RtuFrame};
pub use tcp::{MbapCodec, TcpFrame};

/// Largest read quantity of 0x03 / 0x04 (registers).
pub const MAX_READ_QUANTITY: u16 = 125;
/// Largest write quantity of 0x10 (registers).
pub const MAX_WRITE_QUANTITY: u16 = 123;
/// Largest RTU frame on the wire: unit, 253-byte PDU, CRC.
pub const MAX_RTU_FRAME_LEN: usize = 256;
/// Largest Modbus TCP frame on the wire: 7-byte MBAP header and 253-byte PDU.
pub const MAX_TCP_FRAME_LEN: usize = 260;

const CRC16: crc::Crc<u16, crc::Table<16>> =
    crc::Crc::<u16, crc::Table<16>>::new(&crc::CRC_16_MODBUS);

/// CRC-16/MODBUS of `data` (reflected polynomial 0xA001, init 0xFFFF). On the
/// wire it is sent low byte first.
///
/// ```
/// use chargeswap_protocol::modbus::crc16;
/// assert_eq!(crc16(b"123456789"), 0x4B37);
/// assert_eq!(crc16(&[0x01, 0x03, 0x08, 0x2B, 0x00, 0x02]).to_le_bytes(), [0xB6, 0x63]);
/// ```
pub fn crc16(data: &[u8]) -> u16 {
    CRC16.checksum(data)
}

/// Errors of the Modbus codecs and the register map. Byte offsets count from
/// the first byte of the frame given to the decoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModbusError {
    /// The bytes end before the frame does.
    #[error("frame truncated at byte offset {got}: {needed} bytes needed, {got} given")]
    Truncated {
        /// Bytes the frame needs (at least).
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// The CRC does not match the frame.
    #[error(
        "bad CRC at byte offset {offset}: the frame carries 0x{found:04X}, the bytes before it give 0x{computed:04X}"
    )]
    BadCrc {
        /// Offset of the CRC's first byte.
        offset: usize,
        /// CRC carried by the frame.
        found: u16,
        /// CRC computed over the frame.
        computed: u16,
    },
    /// A function code this codec does not handle.
    #[error(
        "unsupported function code 0x{code:02X} at byte offset {offset}: expected 0x03, 0x04, 0x06, 0x10{}",
        if *exception_allowed { " or an exception response (0x80 | function)" } else { "" }
    )]
    UnsupportedFunction {
        /// Offset of the function code.
        offset: usize,
        /// The function code.
        code: u8,
        /// Whether exception responses are valid here (responses only).
        exception_allowed: bool,
    },
    /// A byte count field that does not fit the frame.
    #[error("bad byte count {byte_count} at byte offset {offset}: expected {expected}")]
    BadByteCount {
        /// Offset of the byte count.
        offset: usize,
        /// The byte count.
        byte_count: u8,
        /// What was expected.
        expected: String,
    },
    /// A register quantity outside what the function allows.
    #[error("quantity {quantity} at byte offset {offset} is out of range: expected {min} to {max}")]
    BadQuantity {
        /// Offset of the quantity.
        offset: usize,
        /// The quantity.
        quantity: u16,
        /// Smallest allowed.
        min: u16,
        /// Largest allowed.
        max: u16,
    },
    /// Bytes after a complete frame.
    #[error("{len} unexpected bytes after the frame at byte offset {offset}")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// Number of extra bytes.
        len: usize,
    },
    /// An MBAP header whose protocol identifier is not 0.
    #[error("MBAP protocol identifier 0x{found:04X} at byte offset 2: expected 0x0000 (Modbus)")]
    BadProtocolId {
        /// The identifier found.
        found: u16,
    },
    /// An MBAP length field outside 2..=254.
    #[error(
        "MBAP length {length} at byte offset 4: expected 2 to 254 (unit byte plus a PDU of 1 to 253 bytes)"
    )]
    BadMbapLength {
        /// The length found.
        length: u16,
    },
    /// A PDU whose length does not match what its function code needs.
    #[error(
        "PDU of function 0x{function:02X} at byte offset {offset} is {got} bytes long: expected {expected}"
    )]
    PduLength {
        /// Offset of the PDU (its function code).
        offset: usize,
        /// The function code.
        function: u8,
        /// The length the function code needs.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A value that cannot be encoded.
    #[error("cannot encode {field} = {value}: expected {expected}")]
    BadValue {
        /// Which field.
        field: String,
        /// The value given.
        value: String,
        /// What is allowed.
        expected: String,
    },
    /// A register block of the wrong length.
    #[error("the {block} block needs {expected} registers, got {got}")]
    BlockLength {
        /// Which block of the register map.
        block: String,
        /// Registers the block has.
        expected: usize,
        /// Registers given.
        got: usize,
    },
    /// A register holding a value its field does not allow.
    #[error("register 0x{address:04X} ({field}) holds {value}: expected {expected}")]
    BadRegister {
        /// Register address.
        address: u16,
        /// The field it holds.
        field: String,
        /// The value found.
        value: u16,
        /// What is allowed.
        expected: String,
    },
    /// A DTU registration packet that does not follow the documented format.
    #[error("bad DTU registration packet at byte offset {offset}: {reason}")]
    BadRegistration {
        /// Offset of the offending byte.
        offset: usize,
        /// What is wrong and what was expected.
        reason: String,
    },
}

pub(crate) fn be16(buf: &[u8], at: usize) -> Option<u16> {
    match buf.get(at..at.checked_add(2)?) {
        Some(&[a, b]) => Some(u16::from_be_bytes([a, b])),
        _ => None,
    }
}
