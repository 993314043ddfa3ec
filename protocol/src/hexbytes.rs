//! Serde helpers: byte strings as upper-case hex text in JSON, so a frame's
//! raw parts read like a capture and can be pasted back into `encode`.

use serde::{Deserialize, Deserializer, Serializer};

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(
            DIGITS.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
        ));
        s.push(char::from(
            DIGITS.get(usize::from(b & 0x0F)).copied().unwrap_or(b'0'),
        ));
    }
    s
}

fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| !matches!(c, b' ' | b':' | b'-'))
        .collect();
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| {
            let s = core::str::from_utf8(pair).map_err(|_| format!("bad hex at byte {i}"))?;
            u8::from_str_radix(s, 16).map_err(|_| format!("bad hex {s:?} at byte {i}"))
        })
        .collect()
}

/// `Vec<u8>` as hex text.
pub(crate) mod vec {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// `[u8; N]` as hex text of exactly `N` bytes.
pub(crate) mod array {
    use super::*;

    pub(crate) fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(d)?;
        let v = from_hex(&text).map_err(serde::de::Error::custom)?;
        let len = v.len();
        v.try_into()
            .map_err(|_| serde::de::Error::custom(format!("expected {N} bytes of hex, got {len}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(to_hex(&[0x7E, 0x00, 0xAB]), "7E00AB");
        assert_eq!(from_hex("7e 00:ab").unwrap(), vec![0x7E, 0, 0xAB]);
        assert!(from_hex("7").is_err());
        assert!(from_hex("zz").is_err());
    }
}
