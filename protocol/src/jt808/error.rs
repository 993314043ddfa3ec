//! [`Jt808Error`]: every way a JT/T 808 frame or message can be wrong.

use serde::{Deserialize, Serialize};

/// Errors of the JT/T 808 codec. Each names what was wrong, where, and what
/// was expected.
///
/// `offset` is a byte offset into the input of the function that returned the
/// error: the escaped wire frame for [`decode_frame`](super::decode_frame)
/// and the stream codec (the opening `0x7E` is byte 0), the message body for
/// [`Body::decode`](super::Body::decode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Jt808Error {
    /// The input does not start with the `0x7E` delimiter.
    #[error("byte {offset}: expected the 0x7E start delimiter, found {found:#04x}")]
    MissingStart {
        /// Where the delimiter was expected.
        offset: usize,
        /// The byte found there.
        found: u8,
    },
    /// No closing `0x7E` delimiter.
    #[error("byte {offset}: the frame has no closing 0x7E delimiter")]
    MissingEnd {
        /// The end of the input.
        offset: usize,
    },
    /// Bytes follow the closing delimiter of a single frame.
    #[error("byte {offset}: {len} bytes follow the closing 0x7E; give one frame at a time")]
    TrailingData {
        /// The first byte after the frame.
        offset: usize,
        /// How many bytes follow.
        len: usize,
    },
    /// Two delimiters with nothing between them.
    #[error("byte {offset}: empty frame (0x7E 0x7E)")]
    EmptyFrame {
        /// The second delimiter.
        offset: usize,
    },
    /// `0x7D` not followed by `0x01` or `0x02`.
    #[error("byte {offset}: bad escape: 0x7D must be followed by 0x01 or 0x02, found {found:?}")]
    BadEscape {
        /// The `0x7D` byte.
        offset: usize,
        /// The byte after it, if any.
        found: Option<u8>,
    },
    /// The XOR checksum does not match.
    #[error(
        "byte {offset}: checksum mismatch: computed {computed:#04x}, the frame carries {found:#04x}"
    )]
    Checksum {
        /// The checksum byte.
        offset: usize,
        /// XOR of header and body.
        computed: u8,
        /// The checksum in the frame.
        found: u8,
    },
    /// A field runs past the end of the input.
    #[error("byte {offset}: {field} needs {needed} bytes but only {available} remain")]
    Truncated {
        /// The field being read.
        field: String,
        /// Where the field starts.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// The header's body length disagrees with the bytes in the frame.
    #[error(
        "byte {offset}: the header declares a {declared}-byte body but the frame carries {actual}"
    )]
    BodyLength {
        /// The message properties field.
        offset: usize,
        /// Body length in the header.
        declared: usize,
        /// Body bytes present.
        actual: usize,
    },
    /// A BCD byte has a nibble above 9.
    #[error("byte {offset}: {field} is not BCD: {byte:#04x} has a nibble above 9")]
    BadBcd {
        /// The field being read.
        field: String,
        /// The offending byte.
        offset: usize,
        /// Its value.
        byte: u8,
    },
    /// A text field is not GBK (or would not re-encode to the same bytes).
    #[error("byte {offset}: {field} is not valid GBK text")]
    BadText {
        /// The field being read.
        field: String,
        /// Where the field starts.
        offset: usize,
    },
    /// A field holds a value the standard does not define.
    #[error("byte {offset}: {field} is {found}; expected {expected}")]
    BadValue {
        /// The field being read.
        field: String,
        /// Where the field is.
        offset: usize,
        /// The value found.
        found: u32,
        /// What the standard allows.
        expected: String,
    },
    /// Bytes left over after a complete message body.
    #[error("byte {offset}: {len} unexpected bytes after the {message} body")]
    TrailingBytes {
        /// The message.
        message: String,
        /// The first extra byte.
        offset: usize,
        /// How many extra bytes.
        len: usize,
    },
    /// A batch's count field disagrees with the entries it holds.
    #[error("byte {offset}: the batch declares {declared} locations but holds {actual}")]
    CountMismatch {
        /// The count field.
        offset: usize,
        /// The declared count.
        declared: usize,
        /// Entries present.
        actual: usize,
    },
    /// A body too long for one frame (at most 1023 bytes); split it.
    #[error("the body is {len} bytes; one frame holds at most {max} (split the message)")]
    BodyTooLong {
        /// The body length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A value that cannot be encoded.
    #[error("cannot encode {field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// Why, and what is expected.
        reason: String,
    },
    /// The unescaped frame is longer than any valid frame.
    #[error("byte {offset}: the frame exceeds {max} bytes after unescaping")]
    FrameTooLong {
        /// Where the limit was crossed.
        offset: usize,
        /// The largest valid unescaped frame (header, body, checksum).
        max: usize,
    },
    /// A split message with more parts than the reassembler accepts.
    #[error("split message of {total} parts exceeds the limit of {max}")]
    TooManyParts {
        /// Parts announced by the packet.
        total: u16,
        /// The reassembler's limit.
        max: u16,
    },
    /// A split message larger than the reassembler's byte budget.
    #[error("split message of at least {len} bytes exceeds the reassembly budget of {max} bytes")]
    TooLarge {
        /// Bytes the message needs so far.
        len: usize,
        /// The budget.
        max: usize,
    },
}

impl Jt808Error {
    /// The byte offset the error points at, if it has one.
    pub fn offset(&self) -> Option<usize> {
        match self {
            Jt808Error::MissingStart { offset, .. }
            | Jt808Error::MissingEnd { offset }
            | Jt808Error::TrailingData { offset, .. }
            | Jt808Error::EmptyFrame { offset }
            | Jt808Error::BadEscape { offset, .. }
            | Jt808Error::Checksum { offset, .. }
            | Jt808Error::Truncated { offset, .. }
            | Jt808Error::BodyLength { offset, .. }
            | Jt808Error::BadBcd { offset, .. }
            | Jt808Error::BadText { offset, .. }
            | Jt808Error::BadValue { offset, .. }
            | Jt808Error::TrailingBytes { offset, .. }
            | Jt808Error::CountMismatch { offset, .. }
            | Jt808Error::FrameTooLong { offset, .. } => Some(*offset),
            Jt808Error::BodyTooLong { .. }
            | Jt808Error::Invalid { .. }
            | Jt808Error::TooManyParts { .. }
            | Jt808Error::TooLarge { .. } => None,
        }
    }

    /// The same error with its offset mapped through `f`.
    pub(crate) fn map_offset(mut self, f: impl FnOnce(usize) -> usize) -> Self {
        match &mut self {
            Jt808Error::MissingStart { offset, .. }
            | Jt808Error::MissingEnd { offset }
            | Jt808Error::TrailingData { offset, .. }
            | Jt808Error::EmptyFrame { offset }
            | Jt808Error::BadEscape { offset, .. }
            | Jt808Error::Checksum { offset, .. }
            | Jt808Error::Truncated { offset, .. }
            | Jt808Error::BodyLength { offset, .. }
            | Jt808Error::BadBcd { offset, .. }
            | Jt808Error::BadText { offset, .. }
            | Jt808Error::BadValue { offset, .. }
            | Jt808Error::TrailingBytes { offset, .. }
            | Jt808Error::CountMismatch { offset, .. }
            | Jt808Error::FrameTooLong { offset, .. } => *offset = f(*offset),
            Jt808Error::BodyTooLong { .. }
            | Jt808Error::Invalid { .. }
            | Jt808Error::TooManyParts { .. }
            | Jt808Error::TooLarge { .. } => {}
        }
        self
    }

    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Jt808Error::Invalid {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}
