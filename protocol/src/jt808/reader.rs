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
    #[inline]
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes left.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The bytes left, without consuming them.
    #[inline]
    pub(crate) fn peek_rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Consumes and returns the bytes left.
    #[inline]
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let r = self.peek_rest();
        self.pos = self.buf.len();
        r
    }

    /// Consumes `n` bytes.
    #[inline]
    pub(crate) fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n);
        match end.and_then(|e| self.buf.get(self.pos..e)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.truncated(n, field)),
        }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn truncated(&self, n: usize, field: &str) -> Jt808Error {
        Jt808Error::Truncated {
            field: field.to_owned(),
            offset: self.offset(),
            needed: n,
            available: self.remaining(),
        }
    }

    /// A reader over the next `n` bytes (consumed here), with absolute offsets.
    #[inline]
    pub(crate) fn sub(&mut self, n: usize, field: &str) -> Result<Reader<'a>> {
        let base = self.offset();
        let buf = self.take(n, field)?;
        Ok(Reader { buf, pos: 0, base })
    }

    #[inline]
    pub(crate) fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
        let s = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    #[inline]
    pub(crate) fn u8(&mut self, field: &str) -> Result<u8> {
        let [b] = self.array::<1>(field)?;
        Ok(b)
    }

    #[inline]
    pub(crate) fn u16(&mut self, field: &str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// Fails with [`Jt808Error::TrailingBytes`] if bytes are left.
    #[inline]
    pub(crate) fn finish(&self, message: &str) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            len => Err(self.trailing(message, len)),
        }
    }

    #[cold]
    #[inline(never)]
    fn trailing(&self, message: &str, len: usize) -> Jt808Error {
        Jt808Error::TrailingBytes {
            message: message.to_owned(),
            offset: self.offset(),
            len,
        }
    }
}

/// Big-endian u16 at `at`, 0 if out of range (callers check lengths first;
/// with a constant `at` the check folds away).
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

/// Big-endian u32 at `at`, 0 if out of range.
#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[w, x, y, z]) => u32::from_be_bytes([w, x, y, z]),
        _ => 0,
    }
}

/// The index of the first byte with a nibble above 9, if any.
///
/// Eight bytes at a time: adding 6 to every nibble carries into bit 4 of the
/// nibble exactly when the nibble is above 9.
#[inline]
pub(crate) fn first_non_bcd(bytes: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    const SIX: u64 = 0x0606_0606_0606_0606;
    const CARRY: u64 = 0x1010_1010_1010_1010;
    let mut any = 0u64;
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        if let Some(dst) = w.get_mut(..chunk.len()) {
            dst.copy_from_slice(chunk);
        }
        let w = u64::from_le_bytes(w);
        any |= ((w & LO) + SIX) | (((w >> 4) & LO) + SIX);
    }
    if any & CARRY == 0 {
        return None;
    }
    bytes.iter().position(|b| ((b & 0x0F) > 9) | ((b >> 4) > 9))
}
