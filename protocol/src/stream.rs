//! The streaming decoder shared by every protocol.
//!
//! A protocol implements [`FrameCodec`]: where a frame may start, and how to
//! decode one frame from the front of a buffer. [`StreamDecoder`] does the
//! rest: it accepts chunks split anywhere, yields every complete frame,
//! discards garbage between frames, resynchronises after a corrupt frame by
//! moving to the next possible start, and refuses to buffer more than the
//! codec's maximum frame length while waiting for a frame to complete.
//!
//! ```
//! use chargeswap_protocol::stream::{FrameCodec, Decoded, StreamDecoder, StreamError};
//!
//! /// A toy codec: `0xAA len payload...`.
//! struct Toy;
//! impl FrameCodec for Toy {
//!     type Frame = Vec<u8>;
//!     type Error = &'static str;
//!     fn max_frame_len(&self) -> usize { 16 }
//!     fn find_start(&self, buf: &[u8]) -> Option<usize> { buf.iter().position(|b| *b == 0xAA) }
//!     fn decode_prefix(&self, buf: &[u8]) -> Result<Decoded<Vec<u8>>, &'static str> {
//!         let Some(&len) = buf.get(1) else { return Ok(Decoded::Incomplete) };
//!         if len > 14 { return Err("length over 14") }
//!         match buf.get(2..2 + usize::from(len)) {
//!             Some(p) => Ok(Decoded::Frame { frame: p.to_vec(), len: 2 + usize::from(len) }),
//!             None => Ok(Decoded::Incomplete),
//!         }
//!     }
//! }
//!
//! let mut d = StreamDecoder::new(Toy);
//! d.push(&[0x00, 0xAA, 0x02, 0x01]);          // garbage, then half a frame
//! assert!(matches!(d.next_frame(), Some(Err(StreamError::Garbage { offset: 0, len: 1 }))));
//! assert!(d.next_frame().is_none());           // waiting for the rest
//! d.push(&[0x02, 0xAA, 0x00]);
//! assert_eq!(d.next_frame(), Some(Ok(vec![1, 2])));
//! assert_eq!(d.next_frame(), Some(Ok(vec![])));
//! assert!(d.next_frame().is_none());
//! ```

/// The result of decoding at the front of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<F> {
    /// A complete frame that used the first `len` bytes.
    Frame {
        /// The decoded frame.
        frame: F,
        /// Bytes consumed (at least 1).
        len: usize,
    },
    /// A frame may start here but more bytes are needed.
    Incomplete,
}

/// A protocol's framing rules, used by [`StreamDecoder`].
pub trait FrameCodec {
    /// The decoded frame.
    type Frame;
    /// Why the bytes at the front are not a valid frame.
    type Error;

    /// The largest frame this protocol allows, in bytes on the wire.
    fn max_frame_len(&self) -> usize;

    /// The offset of the first byte in `buf` at which a frame may start.
    fn find_start(&self, buf: &[u8]) -> Option<usize>;

    /// Decodes one frame from the front of `buf`, which begins at a possible
    /// start. An error means no valid frame starts here; the stream decoder
    /// then moves on to the next possible start.
    fn decode_prefix(&self, buf: &[u8]) -> Result<Decoded<Self::Frame>, Self::Error>;
}

/// The encoding side of a protocol's framing, used by transports (the
/// tokio codec of `transport`) to write frames of type `T`.
pub trait FrameEncoder<T> {
    /// Why a frame cannot be encoded.
    type Error;

    /// Appends the encoded `frame` to `out`; on error `out` is left as it was.
    fn encode_frame(&self, frame: &T, out: &mut Vec<u8>) -> Result<(), Self::Error>;
}

/// Why bytes of the stream were discarded. `offset` counts bytes from the start of the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError<E> {
    /// Bytes before any possible frame start.
    #[error("skipped {len} bytes of garbage at stream offset {offset}")]
    Garbage {
        /// Stream offset of the first skipped byte.
        offset: u64,
        /// Bytes skipped.
        len: usize,
    },
    /// A frame start whose frame failed to decode; the decoder skips past the start.
    #[error("bad frame at stream offset {offset}: {error}")]
    Frame {
        /// Stream offset of the frame start.
        offset: u64,
        /// The codec's error.
        error: E,
    },
    /// A frame start with no complete frame within the maximum frame length.
    #[error("no complete frame within {max} bytes at stream offset {offset}")]
    TooLong {
        /// Stream offset of the frame start.
        offset: u64,
        /// The maximum frame length.
        max: usize,
    },
}

/// Accepts bytes in arbitrary chunks and yields frames; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct StreamDecoder<C> {
    codec: C,
    buf: Vec<u8>,
    pos: usize,
    consumed: u64,
}

impl<C: FrameCodec> StreamDecoder<C> {
    /// A decoder with an empty buffer.
    pub fn new(codec: C) -> Self {
        StreamDecoder {
            codec,
            buf: Vec::new(),
            pos: 0,
            consumed: 0,
        }
    }

    /// The codec.
    pub fn codec(&self) -> &C {
        &self.codec
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Appends a chunk of received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.pos > 0 && (self.pos >= self.buf.len() / 2 || self.pos > 64 * 1024) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    fn advance(&mut self, n: usize) -> u64 {
        let off = self.consumed;
        self.pos = self.pos.saturating_add(n).min(self.buf.len());
        self.consumed = self.consumed.saturating_add(n as u64);
        off
    }

    /// The next frame or discard, or `None` when more bytes are needed.
    ///
    /// Errors are reports, not failures: decoding can go on after them.
    pub fn next_frame(&mut self) -> Option<Result<C::Frame, StreamError<C::Error>>> {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        if rest.is_empty() {
            return None;
        }
        match self.codec.find_start(rest) {
            None => {
                let len = rest.len();
                let offset = self.advance(len);
                return Some(Err(StreamError::Garbage { offset, len }));
            }
            Some(0) => {}
            Some(n) => {
                let offset = self.advance(n);
                return Some(Err(StreamError::Garbage { offset, len: n }));
            }
        }
        let max = self.codec.max_frame_len();
        match self.codec.decode_prefix(rest) {
            Ok(Decoded::Frame { frame, len }) => {
                self.advance(len.max(1));
                Some(Ok(frame))
            }
            Ok(Decoded::Incomplete) if rest.len() >= max => {
                let offset = self.advance(1);
                Some(Err(StreamError::TooLong { offset, max }))
            }
            Ok(Decoded::Incomplete) => None,
            Err(error) => {
                let offset = self.advance(1);
                Some(Err(StreamError::Frame { offset, error }))
            }
        }
    }

    /// Decodes every complete frame now buffered, dropping the discard reports.
    pub fn drain_frames(&mut self) -> Vec<C::Frame> {
        let mut out = Vec::new();
        while let Some(r) = self.next_frame() {
            if let Ok(f) = r {
                out.push(f);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Toy;
    impl FrameCodec for Toy {
        type Frame = Vec<u8>;
        type Error = &'static str;
        fn max_frame_len(&self) -> usize {
            16
        }
        fn find_start(&self, buf: &[u8]) -> Option<usize> {
            buf.iter().position(|b| *b == 0xAA)
        }
        fn decode_prefix(&self, buf: &[u8]) -> Result<Decoded<Vec<u8>>, &'static str> {
            let Some(&len) = buf.get(1) else {
                return Ok(Decoded::Incomplete);
            };
            if len > 20 {
                return Err("length");
            }
            let n = 2 + usize::from(len);
            match buf.get(2..n) {
                Some(p) => {
                    // toy checksum: payload must not contain 0xAA
                    if p.contains(&0xAA) {
                        return Err("payload");
                    }
                    Ok(Decoded::Frame {
                        frame: p.to_vec(),
                        len: n,
                    })
                }
                None => Ok(Decoded::Incomplete),
            }
        }
    }

    fn encode(p: &[u8]) -> Vec<u8> {
        let mut v = vec![0xAA, p.len() as u8];
        v.extend_from_slice(p);
        v
    }

    #[test]
    fn too_long_is_reported_and_skipped() {
        let mut d = StreamDecoder::new(Toy);
        d.push(&[0xAA, 18, 1, 2, 3]);
        assert!(d.next_frame().is_none());
        d.push(&[0; 11]);
        assert!(matches!(
            d.next_frame(),
            Some(Err(StreamError::TooLong { offset: 0, max: 16 }))
        ));
    }

    #[test]
    fn corrupt_frame_resyncs_to_next() {
        let mut d = StreamDecoder::new(Toy);
        let mut bytes = vec![0xAA, 21];
        bytes.extend(encode(&[7, 8]));
        d.push(&bytes);
        assert!(matches!(
            d.next_frame(),
            Some(Err(StreamError::Frame { offset: 0, .. }))
        ));
        assert!(matches!(
            d.next_frame(),
            Some(Err(StreamError::Garbage { offset: 1, len: 1 }))
        ));
        assert_eq!(d.next_frame(), Some(Ok(vec![7, 8])));
        assert_eq!(d.buffered(), 0);
    }

    proptest! {
        #[test]
        fn split_anywhere_gives_same_frames(
            frames in prop::collection::vec(prop::collection::vec(0u8..0xA0, 0..14), 0..20),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let wire: Vec<u8> = frames.iter().flat_map(|f| encode(f)).collect();
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            points.sort_unstable();
            let mut d = StreamDecoder::new(Toy);
            let mut out = Vec::new();
            let mut last = 0;
            for p in points.into_iter().chain([wire.len()]) {
                d.push(&wire[last..p]);
                last = p;
                out.extend(d.drain_frames());
            }
            prop_assert_eq!(out, frames);
        }

        #[test]
        fn never_panics_and_always_progresses(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut d = StreamDecoder::new(Toy);
            d.push(&bytes);
            let mut steps = 0;
            while d.next_frame().is_some() {
                steps += 1;
                prop_assert!(steps <= bytes.len());
            }
            prop_assert!(d.buffered() < 16);
        }
    }
}
