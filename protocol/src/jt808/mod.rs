//! JT/T 808 (2013 and 2019): the telematics protocol of the TBOX units on
//! e-bikes. Sans-IO: bytes in, typed [`Packet`]s out, and back.
//!
//! - Framing ([`decode_frame`], [`Packet::encode`]): `0x7E` delimiters,
//!   `0x7D` escaping of everything between them (checksum included), XOR
//!   checksum.
//! - [`Header`]: message properties (body length, encryption, split flag,
//!   2019 version flag and protocol version byte), BCD terminal number
//!   ([`Phone`], 6 bytes in 2013, 10 in 2019), serial number, split items.
//! - [`Body`]: 0x0001 / 0x8001 general replies, 0x0002 heartbeat, 0x0100 /
//!   0x8100 registration, 0x0102 authentication (2013 and 2019 layouts),
//!   0x0200 location report with additional items, 0x0704 batch; anything
//!   else is kept raw. Text fields are GBK.
//! - Split packets: [`split_packet`] cuts, [`Reassembler`] joins with
//!   bounded memory and no clock.
//! - [`Jt808Codec`]: the [`FrameCodec`](crate::stream::FrameCodec) for the
//!   shared [`StreamDecoder`](crate::stream::StreamDecoder).
//!
//! Decoding then encoding gives the same bytes for every frame the decoder
//! accepts: unknown additional items and messages are kept raw, reserved
//! property bits are kept, and text is accepted only if it re-encodes exactly.
//!
//! ```
//! use chargeswap_protocol::jt808::{decode_frame, Body, AdditionalItem};
//! // A 0x0200 location report (body from a public test suite).
//! let hex = "7E02000026012345678900000100000001000000020\
//!            0BA7F0E07E4F11C0028003C000018071510101001040000006402020037327E";
//! let wire: Vec<u8> = (0..hex.len()).step_by(2)
//!     .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
//!     .collect();
//! let p = decode_frame(&wire)?;
//! let Body::Location(loc) = &p.body else { unreachable!() };
//! assert_eq!(loc.lat_1e6, 12_222_222);
//! assert_eq!(loc.time.to_string(), "2018-07-15T10:10:10");
//! assert_eq!(loc.items, [AdditionalItem::Mileage(100), AdditionalItem::Fuel(55)]);
//! assert_eq!(p.encode()?, wire);
//! # Ok::<(), chargeswap_protocol::jt808::Jt808Error>(())
//! ```

mod body;
mod error;
mod frame;
mod header;
mod location;
mod reader;
mod reassembly;
mod text;

pub use body::{
    Authenticate, Body, GeneralReply, Register, RegisterReply, RegisterResult, ReplyResult, msg_id,
};
pub use error::Jt808Error;
pub use frame::{
    ESCAPE, FLAG, Jt808Codec, MAX_CONTENT_LEN, MAX_FRAME_LEN, MAX_HEADER_LEN, Packet, decode_frame,
};
pub use header::{Header, MAX_BODY_LEN, Phone, Split, Version};
pub use location::{
    AdditionalItem, BatchKind, BcdTime, LocationBatch, LocationReport, STATUS_ACC_ON,
    STATUS_POSITIONED, STATUS_SOUTH, STATUS_WEST,
};
pub use reassembly::{PendingMessage, Reassembler, ReassemblyLimits, split_packet};

#[cfg(test)]
mod tests;
