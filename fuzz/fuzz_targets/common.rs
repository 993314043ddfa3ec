//! Checks shared by every protocol's fuzz checks (`*_checks.rs`), which the
//! fuzz targets and the corpus replay test (protocol/tests/fuzz_corpus.rs)
//! both include, so the two cannot drift. Each check panics on a broken law.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt::Debug;

use chargeswap_protocol::stream::{FrameCodec, StreamDecoder};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Splits a stream target's input: the first byte is the chunk size (0 is
/// read as 1), the rest is the byte stream.
pub fn chunked(data: &[u8]) -> Option<(usize, &[u8])> {
    let (&n, rest) = data.split_first()?;
    Some((usize::from(n).max(1), rest))
}

/// Feeds `bytes` to a [`StreamDecoder`] in chunks of `chunk` bytes and
/// checks the laws every streaming decoder keeps:
///
/// - it always makes progress (at most one report per byte) and never
///   buffers a maximum frame length while waiting;
/// - the frames do not depend on where the stream was split: chunked and
///   all-at-once give the same frames;
/// - `check` holds for every frame (typically: it re-encodes and decodes
///   back to itself).
///
/// Returns the frames.
pub fn stream<C>(
    codec: impl Fn() -> C,
    chunk: usize,
    bytes: &[u8],
    check: impl Fn(&C::Frame),
) -> Vec<C::Frame>
where
    C: FrameCodec,
    C::Frame: PartialEq + Debug,
{
    let c = codec();
    let max = c.max_frame_len();
    let mut d = StreamDecoder::new(c);
    let mut frames = Vec::new();
    let mut reports = 0usize;
    for part in bytes.chunks(chunk.max(1)) {
        d.push(part);
        while let Some(r) = d.next_frame() {
            reports += 1;
            assert!(reports <= bytes.len(), "the decoder always makes progress");
            if let Ok(f) = r {
                check(&f);
                frames.push(f);
            }
        }
        assert!(
            d.buffered() < max,
            "bounded buffering: {} of {max}",
            d.buffered()
        );
    }
    let mut whole = StreamDecoder::new(codec());
    whole.push(bytes);
    assert_eq!(
        whole.drain_frames(),
        frames,
        "the frames do not depend on how the stream is split"
    );
    frames
}

/// When the whole stream is one frame by the one-shot decoder, the
/// streaming decoder yields exactly that frame.
pub fn single<F: PartialEq + Debug, E>(frames: &[F], one: Result<F, E>) {
    if let Ok(f) = one {
        assert_eq!(frames, [f], "one frame streamed = the frame decoded");
    }
}

/// Serde JSON round trip: the value the CLI prints is the value it reads back.
pub fn json_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let text = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("JSON {text} does not read back: {e}"));
    assert_eq!(&back, value, "JSON round trip through {text}");
}

/// An error's byte offset points into the input or just past its end.
pub fn offset_in(offset: Option<usize>, input: &[u8], what: &dyn Debug) {
    if let Some(o) = offset {
        assert!(
            o <= input.len(),
            "error offset {o} beyond the {} input bytes: {what:?}",
            input.len()
        );
    }
}
