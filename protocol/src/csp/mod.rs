//! CSP v1, the chargeswap cabinet protocol: the platform's own binary
//! protocol between a cabinet's DTU and the platform, over TCP.
//!
//! The full specification, byte by byte, is docs/protocol/csp.md. In short,
//! every frame is (multi-byte integers big-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | magic `43 53` (`"CS"`) |
//! | 2 | 1 | version `01` |
//! | 3 | 2 | payload length `N`, at most [`MAX_PAYLOAD`] |
//! | 5 | 4 | device number of the cabinet's DTU (20001–200000) |
//! | 9 | 4 | sequence number (per sender, increasing) |
//! | 13 | 1 | command ([`Command`]) |
//! | 14 | 1 | flags: bit 0 MAC present, bit 1 acknowledgement requested, others 0 |
//! | 15 | N | payload: the command's struct, postcard-encoded ([`Message`]) |
//! | 15+N | 16 | MAC, if flag bit 0: HMAC-SHA-256(device key, bytes 0..15+N), leftmost 16 bytes |
//! | end−4 | 4 | CRC-32/ISO-HDLC (the zlib / Ethernet CRC-32) of every byte before it |
//!
//! Commands that move batteries or money ([`Command::requires_mac`]) must
//! carry a MAC; [`authenticate`] verifies it and checks the sequence number
//! against a [`ReplayWindow`]. Decoding never trusts a length before checking
//! it against [`MAX_PAYLOAD`], and allocates only for bytes actually present.
//!
//! ```
//! use chargeswap_core::numbering::DeviceNo;
//! use chargeswap_protocol::csp::{self, DeviceKey, Frame, Message, DoorClosed, OpenDoor, ReplayWindow};
//! use chargeswap_protocol::event::OpenReason;
//!
//! // the cabinet reports a closed door (no MAC needed)
//! let frame = Frame::new(DeviceNo::new(20_001)?, 7, Message::DoorClosed(DoorClosed { slot: 3 }));
//! let bytes = frame.encode()?;
//! assert_eq!(bytes.len(), 15 + 1 + 4);
//! assert_eq!(csp::decode(&bytes)?, frame);
//!
//! // the platform opens a door: sealed with the device key
//! let key = DeviceKey::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")?;
//! let open = Frame::new(DeviceNo::new(20_001)?, 100,
//!     Message::OpenDoor(OpenDoor { slot: 3, reason: OpenReason::SwapIssue, order_id: None }));
//! let wire = open.encode_sealed(&key)?;
//! let got = csp::decode(&wire)?;
//! let mut window = ReplayWindow::new();
//! assert!(csp::authenticate(&got, &key, &mut window)?);        // act on it
//! assert!(csp::authenticate(&got, &key, &mut window).is_err()); // a replay: don't
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cabinet;
mod message;
mod security;

use chargeswap_core::numbering::{DeviceClass, DeviceNo};
use crc::{CRC_32_ISO_HDLC, Crc, Table};
use serde::{Deserialize, Serialize};

use crate::event::EventError;
use crate::stream::{Decoded, FrameCodec};

pub use cabinet::CspCabinet;
pub use message::{
    Ack, Alarm, BatteryEvent, CabinetStatus, Command, Direction, DoorClosed, DoorFailed,
    DoorOpened, Heartbeat, Login, Message, OpenDoor, SwapResult, TimeSync, TimeSyncRequest,
};
pub use security::{
    DeviceKey, MAC_LEN, MAX_KEY_LEN, MIN_KEY_LEN, Mac, MacStatus, REPLAY_WINDOW, ReplayWindow,
    SeqCheck, authenticate,
};

use message::PayloadError;

/// The first two bytes of every frame: `"CS"`.
pub const MAGIC: [u8; 2] = [0x43, 0x53];
/// The protocol version this module speaks.
pub const VERSION: u8 = 1;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 15;
/// Bytes of the CRC trailer.
pub const CRC_LEN: usize = 4;
/// The largest payload, bytes.
pub const MAX_PAYLOAD: usize = 4096;
/// The largest frame, bytes: header, payload, MAC and CRC.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_PAYLOAD + MAC_LEN + CRC_LEN;
/// Flag bit 0: a MAC follows the payload.
pub const FLAG_MAC: u8 = 0x01;
/// Flag bit 1: the sender asks for an [`Ack`].
pub const FLAG_ACK_REQUESTED: u8 = 0x02;
/// Flag bits that must be zero in v1.
pub const FLAGS_RESERVED: u8 = !(FLAG_MAC | FLAG_ACK_REQUESTED);

const VERSION_OFFSET: usize = 2;
const LENGTH_OFFSET: usize = 3;
const DEVICE_OFFSET: usize = 5;
const SEQ_OFFSET: usize = 9;
const COMMAND_OFFSET: usize = 13;
pub(crate) const FLAGS_OFFSET: usize = 14;

/// CRC-32/ISO-HDLC (poly 0x04C11DB7 reflected, init and xorout 0xFFFFFFFF):
/// the CRC of zlib, Ethernet and PNG. Slice-by-16 tables.
static CRC32: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISO_HDLC);

/// The CRC-32/ISO-HDLC of `bytes` (`crc32(b"123456789") == 0xCBF43926`).
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC32.checksum(bytes)
}

/// Errors of the CSP module. Decoding errors name the byte offset in the
/// frame; security errors name the device and sequence number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CspError {
    /// Fewer bytes than the frame needs.
    #[error("frame truncated at byte {available}: {needed} bytes needed, {available} present")]
    Truncated {
        /// Bytes the frame needs (as far as known).
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// Not the magic `43 53`.
    #[error(
        "bad magic at byte {offset}: found 0x{found:02X}, expected 0x{expected:02X} (frames start with 43 53, \"CS\")"
    )]
    BadMagic {
        /// Offset of the bad byte (0 or 1).
        offset: usize,
        /// The byte found.
        found: u8,
        /// The byte expected.
        expected: u8,
    },
    /// A version other than 1.
    #[error(
        "unsupported version {found} at byte {offset}; this decoder speaks version {supported}"
    )]
    UnsupportedVersion {
        /// Offset of the version byte.
        offset: usize,
        /// The version found.
        found: u8,
        /// The version supported.
        supported: u8,
    },
    /// A payload length above the maximum.
    #[error("payload length {length} at byte {offset} is above the maximum {max}")]
    PayloadTooLong {
        /// Offset of the length field (3; for encoding, the payload's offset).
        offset: usize,
        /// The length.
        length: usize,
        /// The maximum.
        max: usize,
    },
    /// A device number outside the plan or not a DTU's.
    #[error("bad device number {number} at byte {offset}: {reason}")]
    BadDeviceNo {
        /// Offset of the device number field.
        offset: usize,
        /// The number found.
        number: u32,
        /// What is wrong.
        reason: String,
    },
    /// A command code not in v1.
    #[error("unknown command code 0x{code:02X} at byte {offset}")]
    UnknownCommand {
        /// Offset of the command byte.
        offset: usize,
        /// The code.
        code: u8,
    },
    /// Flag bits that v1 reserves.
    #[error(
        "reserved flag bits set at byte {offset}: flags 0x{flags:02X}; only bits 0 (MAC) and 1 (ack requested) are defined"
    )]
    ReservedFlags {
        /// Offset of the flags byte.
        offset: usize,
        /// The flags byte.
        flags: u8,
    },
    /// A command that moves batteries or money without a MAC.
    #[error("{command} must carry a MAC (flag bit 0 at byte {offset}) and it does not")]
    MacRequired {
        /// Offset of the flags byte.
        offset: usize,
        /// The command.
        command: Command,
    },
    /// The CRC does not match.
    #[error(
        "CRC-32 mismatch at byte {offset}: the frame says 0x{found:08X}, its bytes give 0x{computed:08X}"
    )]
    BadCrc {
        /// Offset of the CRC field.
        offset: usize,
        /// The CRC in the frame.
        found: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// The payload does not decode as the command's struct.
    #[error("bad {command} payload at byte {offset}: {reason}")]
    BadPayload {
        /// Offset of the payload.
        offset: usize,
        /// The command.
        command: Command,
        /// What is wrong.
        reason: String,
    },
    /// Bytes left over after the command's struct.
    #[error("{extra} unexpected bytes at byte {offset} after the {command} payload")]
    TrailingPayload {
        /// Offset of the first extra byte.
        offset: usize,
        /// The command.
        command: Command,
        /// Extra bytes.
        extra: usize,
    },
    /// The payload uses an over-long varint (not the canonical encoding).
    #[error(
        "{command} payload at byte {offset} is not canonical: an integer uses more varint bytes than needed"
    )]
    NonCanonical {
        /// Offset of the payload.
        offset: usize,
        /// The command.
        command: Command,
    },
    /// A payload field out of range or inconsistent.
    #[error("invalid {command} payload at byte {offset}: {field}: {reason}")]
    InvalidField {
        /// Offset of the payload.
        offset: usize,
        /// The command.
        command: Command,
        /// The field.
        field: String,
        /// What was expected.
        reason: String,
    },
    /// Bytes after a complete frame where exactly one frame was expected.
    #[error("{extra} bytes after the end of the frame at byte {offset}")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// Extra bytes.
        extra: usize,
    },
    /// A key of the wrong length.
    #[error("device key is {length} bytes; it must be {min} to {max}")]
    BadKey {
        /// The length given.
        length: usize,
        /// Minimum.
        min: usize,
        /// Maximum.
        max: usize,
    },
    /// Hex text that does not parse.
    #[error("bad hex for {what}: {reason}")]
    BadHex {
        /// What was being parsed (`key`, `mac`).
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The MAC does not verify: the frame is forged, tampered with, or sealed with another key.
    #[error(
        "MAC check failed for {command} seq {seq} from device {device_no}: forged, tampered with, or another key; the frame was not acted on"
    )]
    BadMac {
        /// The device number in the header.
        device_no: DeviceNo,
        /// The sequence number.
        seq: u32,
        /// The command.
        command: Command,
    },
    /// The sequence number was already accepted: a replay (or a retransmission
    /// of a frame already acted on; answer it with the recorded result).
    #[error(
        "replayed {command} seq {seq} from device {device_no}: already accepted; the frame was not acted on"
    )]
    Replayed {
        /// The device number.
        device_no: DeviceNo,
        /// The sequence number.
        seq: u32,
        /// The command.
        command: Command,
    },
    /// The sequence number is below the replay window.
    #[error(
        "seq {seq} from device {device_no} is too old: the highest accepted is {highest} and the window is {window}; the frame was not acted on"
    )]
    TooOld {
        /// The device number.
        device_no: DeviceNo,
        /// The sequence number.
        seq: u32,
        /// The highest sequence number accepted so far.
        highest: u32,
        /// The window size.
        window: u32,
    },
    /// A command that needs a MAC, and no key to make or check one.
    #[error("{command} for device {device_no} needs a MAC but no device key is configured")]
    KeyMissing {
        /// The device.
        device_no: DeviceNo,
        /// The command.
        command: Command,
    },
    /// A frame or command for another device than the codec's.
    #[error("frame is for device {found}, this codec serves device {expected}")]
    WrongDevice {
        /// The codec's device.
        expected: DeviceNo,
        /// The frame's device.
        found: DeviceNo,
    },
    /// A command travelling the wrong way (e.g. open-door from a cabinet).
    #[error("{command} is a {direction:?} command and cannot be handled here")]
    WrongDirection {
        /// The command.
        command: Command,
        /// Its direction.
        direction: Direction,
    },
    /// A normalized event or command that CSP cannot carry.
    #[error("cannot express {field} in CSP: {reason}")]
    Unrepresentable {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
}

impl CspError {
    /// The byte offset in the frame that the error is about, if any.
    pub fn offset(&self) -> Option<usize> {
        match self {
            CspError::BadMagic { offset, .. }
            | CspError::UnsupportedVersion { offset, .. }
            | CspError::PayloadTooLong { offset, .. }
            | CspError::BadDeviceNo { offset, .. }
            | CspError::UnknownCommand { offset, .. }
            | CspError::ReservedFlags { offset, .. }
            | CspError::MacRequired { offset, .. }
            | CspError::BadCrc { offset, .. }
            | CspError::BadPayload { offset, .. }
            | CspError::TrailingPayload { offset, .. }
            | CspError::NonCanonical { offset, .. }
            | CspError::InvalidField { offset, .. }
            | CspError::TrailingBytes { offset, .. } => Some(*offset),
            CspError::Truncated { available, .. } => Some(*available),
            _ => None,
        }
    }
}

fn invalid_field(command: Command, e: EventError) -> CspError {
    let EventError::InvalidField { field, reason } = e;
    CspError::InvalidField {
        offset: HEADER_LEN,
        command,
        field,
        reason,
    }
}

fn postcard_reason(e: &postcard::Error) -> String {
    use postcard::Error as E;
    match e {
        E::DeserializeUnexpectedEnd => "the payload ends before the struct does".into(),
        E::DeserializeBadVarint => "a varint is longer than its integer allows".into(),
        E::DeserializeBadBool => "a bool is neither 0 nor 1".into(),
        E::DeserializeBadChar | E::DeserializeBadUtf8 => "a string is not valid UTF-8".into(),
        E::DeserializeBadOption => "an option tag is neither 0 nor 1".into(),
        E::DeserializeBadEnum => "an enum value is out of range".into(),
        E::SerdeDeCustom => "a value failed its check: a device number outside the numbering plan \
             (20001-4294967295), an enum value out of range or an unknown currency code"
            .into(),
        other => other.to_string(),
    }
}

fn checked_device_no(number: u32, offset: usize) -> Result<DeviceNo, CspError> {
    let bad = |reason: String| CspError::BadDeviceNo {
        offset,
        number,
        reason,
    };
    let d = DeviceNo::try_from(number).map_err(|e| bad(e.to_string()))?;
    if d.class() != DeviceClass::Dtu {
        let (first, last) = DeviceClass::Dtu.range();
        return Err(bad(format!(
            "it is a {} number; CSP frames carry the cabinet DTU's number ({first}-{last})",
            d.class()
        )));
    }
    Ok(d)
}

/// The fixed header of a frame, as decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Protocol version (1).
    pub version: u8,
    /// Payload length, bytes.
    pub payload_len: u16,
    /// The cabinet's DTU number.
    pub device_no: DeviceNo,
    /// The sender's sequence number.
    pub seq: u32,
    /// The command.
    pub command: Command,
    /// The flags byte.
    pub flags: u8,
}

impl Header {
    /// The whole frame's length on the wire.
    pub fn frame_len(&self) -> usize {
        let mac = if self.flags & FLAG_MAC != 0 {
            MAC_LEN
        } else {
            0
        };
        HEADER_LEN + usize::from(self.payload_len) + mac + CRC_LEN
    }
}

fn be_u16(buf: &[u8], at: usize) -> Option<u16> {
    buf.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_be_bytes)
}

fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    buf.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_be_bytes)
}

/// Checks the header fields present in `buf` (which may be short), in wire
/// order, and returns the header once all 15 bytes are there.
fn parse_header(buf: &[u8], max_payload: usize) -> Result<Option<Header>, CspError> {
    for (i, m) in MAGIC.iter().enumerate() {
        match buf.get(i) {
            None => return Ok(None),
            Some(b) if b != m => {
                return Err(CspError::BadMagic {
                    offset: i,
                    found: *b,
                    expected: *m,
                });
            }
            Some(_) => {}
        }
    }
    let Some(&version) = buf.get(VERSION_OFFSET) else {
        return Ok(None);
    };
    if version != VERSION {
        return Err(CspError::UnsupportedVersion {
            offset: VERSION_OFFSET,
            found: version,
            supported: VERSION,
        });
    }
    let Some(payload_len) = be_u16(buf, LENGTH_OFFSET) else {
        return Ok(None);
    };
    if usize::from(payload_len) > max_payload {
        return Err(CspError::PayloadTooLong {
            offset: LENGTH_OFFSET,
            length: usize::from(payload_len),
            max: max_payload,
        });
    }
    let Some(number) = be_u32(buf, DEVICE_OFFSET) else {
        return Ok(None);
    };
    let device_no = checked_device_no(number, DEVICE_OFFSET)?;
    let Some(seq) = be_u32(buf, SEQ_OFFSET) else {
        return Ok(None);
    };
    let Some(&code) = buf.get(COMMAND_OFFSET) else {
        return Ok(None);
    };
    let command = Command::from_code(code).ok_or(CspError::UnknownCommand {
        offset: COMMAND_OFFSET,
        code,
    })?;
    let Some(&flags) = buf.get(FLAGS_OFFSET) else {
        return Ok(None);
    };
    if flags & FLAGS_RESERVED != 0 {
        return Err(CspError::ReservedFlags {
            offset: FLAGS_OFFSET,
            flags,
        });
    }
    if command.requires_mac() && flags & FLAG_MAC == 0 {
        return Err(CspError::MacRequired {
            offset: FLAGS_OFFSET,
            command,
        });
    }
    Ok(Some(Header {
        version,
        payload_len,
        device_no,
        seq,
        command,
        flags,
    }))
}

/// Decodes the header of a frame (at least 15 bytes).
pub fn decode_header(bytes: &[u8]) -> Result<Header, CspError> {
    parse_header(bytes, MAX_PAYLOAD)?.ok_or(CspError::Truncated {
        needed: HEADER_LEN,
        available: bytes.len(),
    })
}

/// Finds the frame at the front of `buf` and checks its header and CRC:
/// `Ok(None)` if more bytes are needed, else the header and the frame length.
/// Fails as soon as a header field already present is wrong.
fn frame_span(buf: &[u8], max_payload: usize) -> Result<Option<(Header, usize)>, CspError> {
    let Some(h) = parse_header(buf, max_payload)? else {
        return Ok(None);
    };
    let total = h.frame_len();
    let Some(frame) = buf.get(..total) else {
        return Ok(None);
    };
    let crc_at = total - CRC_LEN;
    let (covered, crc_bytes) = frame.split_at(crc_at);
    let found = be_u32(crc_bytes, 0).unwrap_or(0);
    let computed = crc32(covered);
    if found != computed {
        return Err(CspError::BadCrc {
            offset: crc_at,
            found,
            computed,
        });
    }
    Ok(Some((h, total)))
}

/// Decodes the payload and MAC of a frame whose header and CRC were checked.
fn decode_checked(h: &Header, frame: &[u8]) -> Result<Frame, CspError> {
    let payload_end = HEADER_LEN + usize::from(h.payload_len);
    let payload = frame.get(HEADER_LEN..payload_end).unwrap_or(&[]);
    let command = h.command;
    let message = Message::decode_payload(command, payload).map_err(|e| match e {
        PayloadError::Postcard(e) => CspError::BadPayload {
            offset: HEADER_LEN,
            command,
            reason: postcard_reason(&e),
        },
        PayloadError::Trailing { consumed } => CspError::TrailingPayload {
            offset: HEADER_LEN + consumed,
            command,
            extra: payload.len().saturating_sub(consumed),
        },
        PayloadError::NonCanonical => CspError::NonCanonical {
            offset: HEADER_LEN,
            command,
        },
        PayloadError::Invalid(e) => invalid_field(command, e),
    })?;
    let mac = if h.flags & FLAG_MAC != 0 {
        frame
            .get(payload_end..payload_end + MAC_LEN)
            .and_then(|s| <[u8; MAC_LEN]>::try_from(s).ok())
            .map(Mac)
    } else {
        None
    };
    Ok(Frame {
        device_no: h.device_no,
        seq: h.seq,
        ack_requested: h.flags & FLAG_ACK_REQUESTED != 0,
        message,
        mac,
    })
}

/// Decodes the frame at the front of `buf`: `Ok(None)` if more bytes are
/// needed, else the frame and its length.
fn parse(buf: &[u8], max_payload: usize) -> Result<Option<(Frame, usize)>, CspError> {
    let Some((h, total)) = frame_span(buf, max_payload)? else {
        return Ok(None);
    };
    let frame = decode_checked(&h, buf.get(..total).unwrap_or(&[]))?;
    Ok(Some((frame, total)))
}

fn truncated(bytes: &[u8]) -> CspError {
    let needed = match decode_header(bytes) {
        Ok(h) => h.frame_len(),
        Err(_) => HEADER_LEN,
    };
    CspError::Truncated {
        needed,
        available: bytes.len(),
    }
}

/// Decodes exactly one frame: every byte of `bytes` must belong to it.
///
/// This checks the structure and CRC, not the MAC: call [`authenticate`]
/// (or [`Frame::mac_status`]) before acting on the frame.
pub fn decode(bytes: &[u8]) -> Result<Frame, CspError> {
    match parse(bytes, MAX_PAYLOAD)? {
        Some((frame, len)) if len == bytes.len() => Ok(frame),
        Some((_, len)) => Err(CspError::TrailingBytes {
            offset: len,
            extra: bytes.len() - len,
        }),
        None => Err(truncated(bytes)),
    }
}

/// Checks exactly one frame's header and CRC without decoding its payload.
pub fn decode_raw(bytes: &[u8]) -> Result<RawFrame, CspError> {
    match frame_span(bytes, MAX_PAYLOAD)? {
        Some((header, len)) if len == bytes.len() => Ok(RawFrame {
            header,
            bytes: bytes.to_vec(),
        }),
        Some((_, len)) => Err(CspError::TrailingBytes {
            offset: len,
            extra: bytes.len() - len,
        }),
        None => Err(truncated(bytes)),
    }
}

/// A frame whose header and CRC are checked but whose payload is not yet
/// decoded: what a gateway routes by device number before handing it to the
/// device's worker, which calls [`decode`](RawFrame::decode). JSON: the frame
/// bytes as lower-case hex (`{"hex": "4353..."}`), checked when read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawFrameHex", into = "RawFrameHex")]
pub struct RawFrame {
    header: Header,
    bytes: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct RawFrameHex {
    hex: String,
}

impl TryFrom<RawFrameHex> for RawFrame {
    type Error = CspError;
    fn try_from(r: RawFrameHex) -> Result<RawFrame, CspError> {
        decode_raw(&security::from_hex("frame", &r.hex)?)
    }
}

impl From<RawFrame> for RawFrameHex {
    fn from(r: RawFrame) -> RawFrameHex {
        RawFrameHex {
            hex: security::to_hex(&r.bytes),
        }
    }
}

impl RawFrame {
    /// The checked header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The whole frame as received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Decodes the payload (and takes the MAC); see [`decode`](fn@decode).
    pub fn decode(&self) -> Result<Frame, CspError> {
        decode_checked(&self.header, &self.bytes)
    }
}

/// One CSP frame: header fields, message and MAC. JSON: `device_no`, `seq`,
/// `ack_requested`, `message` (tagged by `type`), `mac` (hex or null).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The cabinet's DTU number (sender of uplink frames, addressee of downlink ones).
    pub device_no: DeviceNo,
    /// The sender's sequence number.
    pub seq: u32,
    /// Flag bit 1: the sender asks for an [`Ack`].
    #[serde(default)]
    pub ack_requested: bool,
    /// The command and payload.
    pub message: Message,
    /// The MAC (flag bit 0); set it with [`Frame::seal`].
    #[serde(default)]
    pub mac: Option<Mac>,
}

impl Frame {
    /// A frame without a MAC and without an acknowledgement request.
    pub fn new(device_no: DeviceNo, seq: u32, message: Message) -> Frame {
        Frame {
            device_no,
            seq,
            ack_requested: false,
            message,
            mac: None,
        }
    }

    /// The same frame asking for an acknowledgement.
    pub fn with_ack_requested(mut self) -> Frame {
        self.ack_requested = true;
        self
    }

    /// The command code.
    pub fn command(&self) -> Command {
        self.message.command()
    }

    /// The flags byte as encoded.
    pub fn flags(&self) -> u8 {
        let mut f = 0;
        if self.mac.is_some() {
            f |= FLAG_MAC;
        }
        if self.ack_requested {
            f |= FLAG_ACK_REQUESTED;
        }
        f
    }

    /// Header and payload with the MAC flag as given: the bytes the MAC covers.
    pub(crate) fn encode_body(&self, mac_flag: bool) -> Result<Vec<u8>, CspError> {
        let command = self.command();
        checked_device_no(self.device_no.get(), DEVICE_OFFSET)?;
        self.message
            .validate()
            .map_err(|e| invalid_field(command, e))?;
        let mut flags = 0;
        if mac_flag {
            flags |= FLAG_MAC;
        }
        if self.ack_requested {
            flags |= FLAG_ACK_REQUESTED;
        }
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.device_no.get().to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.push(command.code());
        out.push(flags);
        let mut out = self
            .message
            .encode_payload(out)
            .map_err(|e| CspError::BadPayload {
                offset: HEADER_LEN,
                command,
                reason: e.to_string(),
            })?;
        let len = out.len() - HEADER_LEN;
        let len16 = u16::try_from(len)
            .ok()
            .filter(|l| usize::from(*l) <= MAX_PAYLOAD)
            .ok_or(CspError::PayloadTooLong {
                offset: HEADER_LEN,
                length: len,
                max: MAX_PAYLOAD,
            })?;
        if let Some(l) = out.get_mut(LENGTH_OFFSET..LENGTH_OFFSET + 2) {
            l.copy_from_slice(&len16.to_be_bytes());
        }
        Ok(out)
    }

    fn finish(mut out: Vec<u8>, mac: Option<&Mac>) -> Vec<u8> {
        if let Some(m) = mac {
            out.extend_from_slice(&m.0);
        }
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Encodes the frame with the MAC it holds (none, or one set by [`seal`](Self::seal)).
    ///
    /// Fails if the message is invalid, the payload is above [`MAX_PAYLOAD`],
    /// the device number is not a DTU's, or the command requires a MAC and
    /// the frame has none.
    pub fn encode(&self) -> Result<Vec<u8>, CspError> {
        let command = self.command();
        if command.requires_mac() && self.mac.is_none() {
            return Err(CspError::MacRequired {
                offset: FLAGS_OFFSET,
                command,
            });
        }
        let body = self.encode_body(self.mac.is_some())?;
        Ok(Frame::finish(body, self.mac.as_ref()))
    }

    /// Encodes the frame sealed with `key` (computes the MAC in one pass).
    pub fn encode_sealed(&self, key: &DeviceKey) -> Result<Vec<u8>, CspError> {
        let body = self.encode_body(true)?;
        let mac = key.mac(&body)?;
        Ok(Frame::finish(body, Some(&mac)))
    }

    /// Computes and stores the MAC under `key`.
    pub fn seal(&mut self, key: &DeviceKey) -> Result<(), CspError> {
        let body = self.encode_body(true)?;
        self.mac = Some(key.mac(&body)?);
        Ok(())
    }

    /// The frame sealed under `key`.
    pub fn sealed(mut self, key: &DeviceKey) -> Result<Frame, CspError> {
        self.seal(key)?;
        Ok(self)
    }

    /// Whether the MAC is absent, unverifiable (no key), valid or invalid.
    /// Does not consult a replay window: use [`authenticate`] before acting.
    pub fn mac_status(&self, key: Option<&DeviceKey>) -> Result<MacStatus, CspError> {
        match (&self.mac, key) {
            (None, _) => Ok(MacStatus::Absent),
            (Some(_), None) => Ok(MacStatus::PresentUnverified),
            (Some(m), Some(k)) => {
                let body = self.encode_body(true)?;
                Ok(if k.verify(&body, m)? {
                    MacStatus::Valid
                } else {
                    MacStatus::Invalid
                })
            }
        }
    }

    /// The header this frame encodes to.
    pub fn header(&self) -> Result<Header, CspError> {
        let body = self.encode_body(self.mac.is_some())?;
        decode_header(&body)
    }
}

/// The streaming framer for CSP, for [`StreamDecoder`](crate::stream::StreamDecoder):
/// frames start at the magic `43 53`; the payload length is checked against
/// the maximum before anything waits for it; a bad frame is skipped one byte
/// at a time up to the next magic.
///
/// ```
/// use chargeswap_core::numbering::DeviceNo;
/// use chargeswap_protocol::csp::{CspCodec, Frame, Heartbeat, Message};
/// use chargeswap_protocol::stream::StreamDecoder;
///
/// let f = Frame::new(DeviceNo::new(20_001)?, 1,
///     Message::Heartbeat(Heartbeat { uptime_s: 60, rssi_dbm: Some(-71) }));
/// let wire = [b"noise".as_slice(), &f.encode()?, &f.encode()?].concat();
/// let mut d = StreamDecoder::new(CspCodec::new());
/// for chunk in wire.chunks(3) { d.push(chunk); }
/// assert_eq!(d.drain_frames(), vec![f.clone(), f]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CspCodec {
    max_payload: usize,
}

impl Default for CspCodec {
    fn default() -> Self {
        CspCodec::new()
    }
}

impl CspCodec {
    /// A framer accepting payloads up to [`MAX_PAYLOAD`].
    pub const fn new() -> CspCodec {
        CspCodec {
            max_payload: MAX_PAYLOAD,
        }
    }

    /// A framer with a smaller payload limit (clamped to [`MAX_PAYLOAD`]).
    pub fn with_max_payload(max_payload: usize) -> CspCodec {
        CspCodec {
            max_payload: max_payload.min(MAX_PAYLOAD),
        }
    }

    /// The payload limit.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }
}

impl FrameCodec for CspCodec {
    type Frame = Frame;
    type Error = CspError;

    fn max_frame_len(&self) -> usize {
        HEADER_LEN + self.max_payload + MAC_LEN + CRC_LEN
    }

    fn find_start(&self, buf: &[u8]) -> Option<usize> {
        let [m0, m1] = MAGIC;
        let mut from = 0;
        while let Some(rel) = buf.get(from..)?.iter().position(|b| *b == m0) {
            let i = from + rel;
            match buf.get(i + 1) {
                None => return Some(i),
                Some(b) if *b == m1 => return Some(i),
                Some(_) => from = i + 1,
            }
        }
        None
    }

    fn decode_prefix(&self, buf: &[u8]) -> Result<Decoded<Frame>, CspError> {
        Ok(match parse(buf, self.max_payload)? {
            Some((frame, len)) => Decoded::Frame { frame, len },
            None => Decoded::Incomplete,
        })
    }
}

/// The streaming framer without payload decoding: same framing, resync and
/// limits as [`CspCodec`], yielding [`RawFrame`]s (header and CRC checked).
/// A gateway uses it to split a TCP stream and route frames by device
/// number; payloads are decoded later with [`RawFrame::decode`].
///
/// ```
/// use chargeswap_core::numbering::DeviceNo;
/// use chargeswap_protocol::csp::{CspRawCodec, DoorClosed, Frame, Message};
/// use chargeswap_protocol::stream::StreamDecoder;
///
/// let f = Frame::new(DeviceNo::new(20_001)?, 1, Message::DoorClosed(DoorClosed { slot: 2 }));
/// let mut d = StreamDecoder::new(CspRawCodec::new());
/// d.push(&f.encode()?);
/// let raw = d.drain_frames().remove(0);
/// assert_eq!(raw.header().device_no.get(), 20_001);
/// assert_eq!(raw.decode()?, f);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CspRawCodec {
    inner: CspCodec,
}

impl CspRawCodec {
    /// A raw framer accepting payloads up to [`MAX_PAYLOAD`].
    pub const fn new() -> CspRawCodec {
        CspRawCodec {
            inner: CspCodec::new(),
        }
    }

    /// A raw framer with a smaller payload limit (clamped to [`MAX_PAYLOAD`]).
    pub fn with_max_payload(max_payload: usize) -> CspRawCodec {
        CspRawCodec {
            inner: CspCodec::with_max_payload(max_payload),
        }
    }
}

impl FrameCodec for CspRawCodec {
    type Frame = RawFrame;
    type Error = CspError;

    fn max_frame_len(&self) -> usize {
        self.inner.max_frame_len()
    }

    fn find_start(&self, buf: &[u8]) -> Option<usize> {
        self.inner.find_start(buf)
    }

    fn decode_prefix(&self, buf: &[u8]) -> Result<Decoded<RawFrame>, CspError> {
        Ok(match frame_span(buf, self.inner.max_payload)? {
            Some((header, len)) => Decoded::Frame {
                frame: RawFrame {
                    header,
                    bytes: buf.get(..len).unwrap_or(&[]).to_vec(),
                },
                len,
            },
            None => Decoded::Incomplete,
        })
    }
}

#[cfg(test)]
mod tests;
