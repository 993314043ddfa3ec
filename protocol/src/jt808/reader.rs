//! A bounds-checked big-endian reader that reports absolute offsets.

use super::Jt808Error;

type Result<T> = core::result::Result<T, Jt808Error>;

/// Reads fields front to back; every error names the field and its offset.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader whose offsets start at `base`.
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    /// The absolute offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The bytes left, without consuming them.
    pub(crate) fn peek_rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Consumes and returns the bytes left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let r = self.peek_rest();
        self.pos = self.buf.len();
        r
    }

    /// Consumes `n` bytes.
    pub(crate) fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n);
        match end.and_then(|e| self.buf.get(self.pos..e)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(Jt808Error::Truncated {
                field: field.to_owned(),
                offset: self.offset(),
                needed: n,
                available: self.remaining(),
            }),
        }
    }

    /// A reader over the next `n` bytes (consumed here), with absolute offsets.
    pub(crate) fn sub(&mut self, n: usize, field: &str) -> Result<Reader<'a>> {
        let base = self.offset();
        let buf = self.take(n, field)?;
        Ok(Reader { buf, pos: 0, base })
    }

    pub(crate) fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
        let s = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self, field: &str) -> Result<u8> {
        let [b] = self.array::<1>(field)?;
        Ok(b)
    }

    pub(crate) fn u16(&mut self, field: &str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Fails with [`Jt808Error::TrailingBytes`] if bytes are left.
    pub(crate) fn finish(&self, message: &str) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            len => Err(Jt808Error::TrailingBytes {
                message: message.to_owned(),
                offset: self.offset(),
                len,
            }),
        }
    }
}
