//! GBK text fields: `STRING` (GBK, variable length) and `BYTE[n]` (fixed
//! width, padded with 0x00 after the text).
//!
//! Decoding is strict so that re-encoding gives the same bytes: the bytes
//! must be GBK (encoding_rs's GBK decoder) and must encode back to exactly
//! themselves, otherwise the field is rejected with [`Jt808Error::BadText`].

use std::borrow::Cow;

use encoding_rs::GBK;

use super::Jt808Error;

type Result<T> = core::result::Result<T, Jt808Error>;

/// Decodes GBK bytes that re-encode to themselves.
pub(crate) fn decode(bytes: &[u8], field: &str, offset: usize) -> Result<String> {
    if bytes.is_ascii() {
        // ASCII is its own GBK encoding.
        return String::from_utf8(bytes.to_vec()).map_err(|_| bad(field, offset));
    }
    let text = GBK
        .decode_without_bom_handling_and_without_replacement(bytes)
        .ok_or_else(|| bad(field, offset))?;
    let (back, _, unmappable) = GBK.encode(&text);
    if unmappable || back.as_ref() != bytes {
        return Err(bad(field, offset));
    }
    Ok(text.into_owned())
}

/// Decodes a fixed-width field: trailing 0x00 padding is removed first.
pub(crate) fn decode_fixed(bytes: &[u8], field: &str, offset: usize) -> Result<String> {
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    decode(bytes.get(..end).unwrap_or(&[]), field, offset)
}

fn bad(field: &str, offset: usize) -> Jt808Error {
    Jt808Error::BadText {
        field: field.to_owned(),
        offset,
    }
}

/// Encodes text as GBK.
pub(crate) fn encode<'a>(text: &'a str, field: &str) -> Result<Cow<'a, [u8]>> {
    if text.is_ascii() {
        return Ok(Cow::Borrowed(text.as_bytes()));
    }
    let (bytes, _, unmappable) = GBK.encode(text);
    if unmappable {
        return Err(Jt808Error::invalid(
            field,
            "the text has a character that GBK cannot encode",
        ));
    }
    Ok(bytes)
}

/// Writes `text` as GBK padded with 0x00 to `width` bytes.
pub(crate) fn write_fixed(out: &mut Vec<u8>, text: &str, width: usize, field: &str) -> Result<()> {
    if text.ends_with('\0') {
        return Err(Jt808Error::invalid(
            field,
            "the text must not end with NUL (NUL is the padding)",
        ));
    }
    let bytes = encode(text, field)?;
    if bytes.len() > width {
        return Err(Jt808Error::invalid(
            field,
            format!("{} bytes in GBK; the field holds {width}", bytes.len()),
        ));
    }
    out.extend_from_slice(&bytes);
    out.resize(out.len() + (width - bytes.len()), 0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_plate_round_trips() {
        // 粤 is D4 C1 in GBK (GB 2312 row 84, cell 33: 0xA0+0x34, 0xA0+0x21).
        let bytes = [0xD4, 0xC1, b'A', b'1', b'2', b'3', b'4', b'5'];
        let s = decode(&bytes, "plate", 0).unwrap();
        assert_eq!(s, "粤A12345");
        assert_eq!(encode(&s, "plate").unwrap().as_ref(), &bytes);
    }

    #[test]
    fn rejects_non_gbk_and_non_round_tripping_bytes() {
        assert!(matches!(
            decode(&[0xFF], "plate", 7),
            Err(Jt808Error::BadText { offset: 7, .. })
        ));
        // A GB18030 four-byte sequence decodes but GBK cannot encode it back.
        assert!(decode(&[0x81, 0x30, 0x81, 0x30], "plate", 0).is_err());
        assert!(encode("😀", "plate").is_err());
    }

    #[test]
    fn fixed_fields_pad_and_trim() {
        let mut out = Vec::new();
        write_fixed(&mut out, "1234", 5, "maker").unwrap();
        assert_eq!(out, b"1234\0");
        assert_eq!(decode_fixed(&out, "maker", 0).unwrap(), "1234");
        assert!(write_fixed(&mut out, "123456", 5, "maker").is_err());
        assert!(write_fixed(&mut out, "a\0", 5, "maker").is_err());
        // NULs inside the text survive; only trailing padding is removed.
        assert_eq!(decode_fixed(b"a\0b\0\0", "maker", 0).unwrap(), "a\0b");
    }
}
