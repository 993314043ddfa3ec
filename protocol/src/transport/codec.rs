//! A tokio-util [`Decoder`] and [`Encoder`] over any [`FrameCodec`]: every
//! protocol of this crate gets a tokio codec for free.
//!
//! Decoding yields `Result<Frame, StreamError>` items rather than failing the
//! stream: garbage and corrupt frames are reports, and decoding goes on after
//! them, exactly as with [`StreamDecoder`]. Only I/O errors end the stream.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use chargeswap_protocol::modbus::{Request, RtuCodec, RtuFrame};
//! use chargeswap_protocol::transport::codec::TokioCodec;
//! use futures_util::{SinkExt, StreamExt};
//! use tokio_util::codec::Framed;
//!
//! let (a, b) = tokio::io::duplex(64);
//! let mut tx = Framed::new(a, TokioCodec::new(RtuCodec::<Request>::new()));
//! let mut rx = Framed::new(b, TokioCodec::new(RtuCodec::<Request>::new()));
//! let f = RtuFrame { unit: 1, pdu: Request::ReadInputRegisters { address: 0, quantity: 7 } };
//! tx.send(f.clone()).await.unwrap();
//! assert_eq!(rx.next().await.unwrap().unwrap(), Ok(f));
//! # }
//! ```

use std::io;

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::stream::{FrameCodec, FrameEncoder, StreamDecoder, StreamError};

/// Why a frame could not be written.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError<E> {
    /// The socket failed.
    #[error("I/O error while writing a frame: {0}")]
    Io(#[from] io::Error),
    /// The frame cannot be encoded.
    #[error("cannot encode the frame: {0}")]
    Frame(E),
}

/// tokio-util codec adapter over a [`FrameCodec`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct TokioCodec<C> {
    decoder: StreamDecoder<C>,
    pushed: u64,
    eof_reported: bool,
}

impl<C: FrameCodec> TokioCodec<C> {
    /// An adapter with an empty buffer.
    pub fn new(codec: C) -> Self {
        TokioCodec {
            decoder: StreamDecoder::new(codec),
            pushed: 0,
            eof_reported: false,
        }
    }

    /// The protocol codec.
    pub fn codec(&self) -> &C {
        self.decoder.codec()
    }

    /// Bytes received and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.decoder.buffered()
    }
}

impl<C: FrameCodec> Decoder for TokioCodec<C> {
    type Item = Result<C::Frame, StreamError<C::Error>>;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Self::Item>> {
        if !src.is_empty() {
            self.decoder.push(src);
            self.pushed = self.pushed.saturating_add(src.len() as u64);
            src.clear();
        }
        Ok(self.decoder.next_frame())
    }

    /// At end of stream, bytes of an incomplete frame are reported once as garbage.
    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<Self::Item>> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        let len = self.decoder.buffered();
        if len == 0 || self.eof_reported {
            return Ok(None);
        }
        self.eof_reported = true;
        Ok(Some(Err(StreamError::Garbage {
            offset: self.pushed.saturating_sub(len as u64),
            len,
        })))
    }
}

impl<C, T> Encoder<T> for TokioCodec<C>
where
    C: FrameCodec + FrameEncoder<T>,
{
    type Error = EncodeError<<C as FrameEncoder<T>>::Error>;

    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), Self::Error> {
        let mut out = Vec::new();
        self.decoder
            .codec()
            .encode_frame(&item, &mut out)
            .map_err(EncodeError::Frame)?;
        dst.extend_from_slice(&out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::{Response, RtuCodec, RtuFrame};

    #[test]
    fn chunks_and_eof() {
        let f = RtuFrame {
            unit: 4,
            pdu: Response::ReadHoldingRegisters {
                registers: vec![1, 2],
            },
        };
        let bytes = f.encode().unwrap();
        let mut c = TokioCodec::new(RtuCodec::<Response>::new());
        let mut buf = BytesMut::from(&bytes[..3]);
        assert!(c.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&bytes[3..]);
        buf.extend_from_slice(&bytes[..2]);
        assert_eq!(c.decode(&mut buf).unwrap(), Some(Ok(f)));
        assert!(c.decode(&mut buf).unwrap().is_none());
        assert_eq!(
            c.decode_eof(&mut buf).unwrap(),
            Some(Err(StreamError::Garbage {
                offset: bytes.len() as u64,
                len: 2
            }))
        );
        assert_eq!(c.decode_eof(&mut buf).unwrap(), None);
    }

    #[test]
    fn encode_errors_are_typed() {
        let mut c = TokioCodec::new(RtuCodec::<Response>::new());
        let bad = RtuFrame {
            unit: 1,
            pdu: Response::ReadInputRegisters { registers: vec![] },
        };
        let mut dst = BytesMut::new();
        assert!(matches!(
            c.encode(bad, &mut dst),
            Err(EncodeError::Frame(_))
        ));
        assert!(dst.is_empty());
    }
}
