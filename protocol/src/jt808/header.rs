//! The message header: message properties, protocol version, BCD terminal
//! number, serial number and split-packet items.
//!
//! ```text
//! 2013: msg id u16 | properties u16 |                     phone BCD[6]  | serial u16 | [total u16 | index u16]
//! 2019: msg id u16 | properties u16 | protocol version u8 | phone BCD[10] | serial u16 | [total u16 | index u16]
//!
//! properties: bit 15 reserved | bit 14 version flag (2019) | bit 13 split
//!             | bits 12..10 encryption (bit 10 = RSA) | bits 9..0 body length
//! ```

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Jt808Error;
use super::reader::{Reader, first_non_bcd};

type Result<T> = core::result::Result<T, Jt808Error>;

/// The largest body one frame carries (10 bits of body length).
pub const MAX_BODY_LEN: usize = 0x03FF;

const PROP_LEN_MASK: u16 = 0x03FF;
const PROP_ENCRYPTION_SHIFT: u16 = 10;
const PROP_SPLIT: u16 = 1 << 13;
const PROP_VERSION: u16 = 1 << 14;
const PROP_RESERVED: u16 = 1 << 15;

/// The protocol edition of a frame, told apart by bit 14 of the message
/// properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Version {
    /// JT/T 808-2013 (and 2011): 6-byte terminal number, no version byte.
    V2013,
    /// JT/T 808-2019: version flag set, a protocol version byte (1 for the
    /// first 2019 edition), 10-byte terminal number.
    V2019 {
        /// The protocol version byte.
        protocol_version: u8,
    },
}

impl Version {
    /// Bytes of the BCD terminal number in this edition.
    pub fn phone_len(&self) -> usize {
        match self {
            Version::V2013 => 6,
            Version::V2019 { .. } => 10,
        }
    }
}

/// A terminal number (终端手机号): 12 BCD digits in 2013, 20 in 2019.
///
/// Serialized as its digit string. Leading zeros are significant: the digits
/// are exactly those on the wire.
///
/// ```
/// use chargeswap_protocol::jt808::{Phone, Version};
/// let p: Phone = "013912345678".parse()?;
/// assert_eq!(p.as_bcd(), &[0x01, 0x39, 0x12, 0x34, 0x56, 0x78]);
/// let wide = Phone::padded("13912345678", Version::V2019 { protocol_version: 1 })?;
/// assert_eq!(wide.to_string(), "00000000013912345678");
/// # Ok::<(), chargeswap_protocol::jt808::Jt808Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Phone {
    bcd: [u8; 10],
    len: u8,
}

impl Phone {
    /// From 6 or 10 BCD bytes; `offset` locates them for errors.
    #[inline]
    pub fn from_bcd(bytes: &[u8], offset: usize) -> Result<Phone> {
        let mut bcd = [0u8; 10];
        match bcd.get_mut(..bytes.len()) {
            Some(dst) if bytes.len() == 6 || bytes.len() == 10 => dst.copy_from_slice(bytes),
            _ => {
                return Err(Jt808Error::invalid(
                    "terminal phone",
                    format!("{} BCD bytes; expected 6 (2013) or 10 (2019)", bytes.len()),
                ));
            }
        }
        if let Some(i) = first_non_bcd(bytes) {
            return Err(Jt808Error::BadBcd {
                field: "terminal phone".into(),
                offset: offset + i,
                byte: bytes.get(i).copied().unwrap_or(0),
            });
        }
        Ok(Phone {
            bcd,
            len: bytes.len() as u8,
        })
    }

    /// Left-pads `digits` with zeros to the width of `version` (12 or 20 digits).
    pub fn padded(digits: &str, version: Version) -> Result<Phone> {
        let width = version.phone_len() * 2;
        if digits.len() > width {
            return Err(Jt808Error::invalid(
                "terminal phone",
                format!("{} digits; this edition holds {width}", digits.len()),
            ));
        }
        let mut s = "0".repeat(width - digits.len());
        s.push_str(digits);
        s.parse()
    }

    /// The BCD bytes (6 or 10).
    pub fn as_bcd(&self) -> &[u8] {
        self.bcd.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Number of digits (12 or 20).
    pub fn digit_count(&self) -> usize {
        usize::from(self.len) * 2
    }
}

impl FromStr for Phone {
    type Err = Jt808Error;

    /// Parses 12 or 20 decimal digits.
    fn from_str(s: &str) -> Result<Phone> {
        let digits = s.as_bytes();
        if (digits.len() != 12 && digits.len() != 20) || !digits.iter().all(u8::is_ascii_digit) {
            return Err(Jt808Error::invalid(
                "terminal phone",
                format!("{s:?}: expected 12 digits (2013) or 20 digits (2019)"),
            ));
        }
        let mut bcd = [0u8; 10];
        for (slot, pair) in bcd.iter_mut().zip(digits.chunks_exact(2)) {
            if let [hi, lo] = pair {
                *slot = ((hi - b'0') << 4) | (lo - b'0');
            }
        }
        Ok(Phone {
            bcd,
            len: (digits.len() / 2) as u8,
        })
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bcd() {
            write!(f, "{}{}", b >> 4, b & 0x0F)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({self})")
    }
}

impl Serialize for Phone {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Phone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Phone, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The split-packet items of a header: this is part `index` of `total`
/// (both counted from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Split {
    /// Number of parts of the message.
    pub total: u16,
    /// This part, from 1 to `total`.
    pub index: u16,
}

/// A message header. The message id and the body length are not stored here:
/// the id comes from the [`Body`](super::Body) and the length from its encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Header {
    /// 2013 or 2019 layout.
    pub version: Version,
    /// Encryption bits 10..12 of the properties: 0 none, 1 RSA. An encrypted
    /// body is kept raw.
    pub encryption: u8,
    /// Bit 15 of the properties (reserved), kept so re-encoding is exact.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub reserved_bit: bool,
    /// The terminal number (6 BCD bytes in 2013, 10 in 2019).
    pub phone: Phone,
    /// The message serial number (流水号).
    pub serial: u16,
    /// Present when the message is split into several packets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
}

impl Header {
    /// A 2013 header without split or encryption.
    pub fn new(version: Version, phone: Phone, serial: u16) -> Header {
        Header {
            version,
            encryption: 0,
            reserved_bit: false,
            phone,
            serial,
            split: None,
        }
    }

    /// Reads a header; returns it with the message id and declared body length.
    #[inline]
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<(Header, u16, usize)> {
        let msg_id = r.u16("message id")?;
        let props = r.u16("message properties")?;
        let version = if props & PROP_VERSION != 0 {
            Version::V2019 {
                protocol_version: r.u8("protocol version")?,
            }
        } else {
            Version::V2013
        };
        let phone_at = r.offset();
        let phone = Phone::from_bcd(r.take(version.phone_len(), "terminal phone")?, phone_at)?;
        let serial = r.u16("serial number")?;
        let split = if props & PROP_SPLIT != 0 {
            let total_at = r.offset();
            let total = r.u16("split total")?;
            let index_at = r.offset();
            let index = r.u16("split index")?;
            if total == 0 {
                return Err(Jt808Error::BadValue {
                    field: "split total".into(),
                    offset: total_at,
                    found: 0,
                    expected: "at least 1".into(),
                });
            }
            if index == 0 || index > total {
                return Err(Jt808Error::BadValue {
                    field: "split index".into(),
                    offset: index_at,
                    found: u32::from(index),
                    expected: format!("1 to {total}"),
                });
            }
            Some(Split { total, index })
        } else {
            None
        };
        let header = Header {
            version,
            encryption: ((props >> PROP_ENCRYPTION_SHIFT) & 0x07) as u8,
            reserved_bit: props & PROP_RESERVED != 0,
            phone,
            serial,
            split,
        };
        Ok((header, msg_id, usize::from(props & PROP_LEN_MASK)))
    }

    /// Writes the header for a body of `body_len` bytes.
    pub(crate) fn write(&self, msg_id: u16, body_len: usize, out: &mut Vec<u8>) -> Result<()> {
        if body_len > MAX_BODY_LEN {
            return Err(Jt808Error::BodyTooLong {
                len: body_len,
                max: MAX_BODY_LEN,
            });
        }
        if self.encryption > 7 {
            return Err(Jt808Error::invalid(
                "encryption",
                format!("{}: the field has 3 bits (0 to 7)", self.encryption),
            ));
        }
        if self.phone.as_bcd().len() != self.version.phone_len() {
            return Err(Jt808Error::invalid(
                "terminal phone",
                format!(
                    "{} digits; this edition needs {} (use Phone::padded)",
                    self.phone.digit_count(),
                    self.version.phone_len() * 2
                ),
            ));
        }
        let mut props = body_len as u16 | (u16::from(self.encryption) << PROP_ENCRYPTION_SHIFT);
        if self.split.is_some() {
            props |= PROP_SPLIT;
        }
        if matches!(self.version, Version::V2019 { .. }) {
            props |= PROP_VERSION;
        }
        if self.reserved_bit {
            props |= PROP_RESERVED;
        }
        out.extend_from_slice(&msg_id.to_be_bytes());
        out.extend_from_slice(&props.to_be_bytes());
        if let Version::V2019 { protocol_version } = self.version {
            out.push(protocol_version);
        }
        out.extend_from_slice(self.phone.as_bcd());
        out.extend_from_slice(&self.serial.to_be_bytes());
        if let Some(s) = self.split {
            if s.total == 0 || s.index == 0 || s.index > s.total {
                return Err(Jt808Error::invalid(
                    "split",
                    format!(
                        "part {} of {}: expected 1 <= index <= total",
                        s.index, s.total
                    ),
                ));
            }
            out.extend_from_slice(&s.total.to_be_bytes());
            out.extend_from_slice(&s.index.to_be_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_parse_display_and_errors() {
        let p: Phone = "012345678900".parse().unwrap();
        assert_eq!(p.as_bcd(), &[0x01, 0x23, 0x45, 0x67, 0x89, 0x00]);
        assert_eq!(p.to_string(), "012345678900");
        assert!("01234567890".parse::<Phone>().is_err());
        assert!("01234567890a".parse::<Phone>().is_err());
        assert!(matches!(
            Phone::from_bcd(&[0x01, 0x2A, 0, 0, 0, 0], 5),
            Err(Jt808Error::BadBcd {
                offset: 6,
                byte: 0x2A,
                ..
            })
        ));
        assert!(Phone::padded("123456789012345678901", Version::V2013).is_err());
        assert_eq!(
            Phone::padded("123", Version::V2013).unwrap().to_string(),
            "000000000123"
        );
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"012345678900\"");
        assert_eq!(serde_json::from_str::<Phone>(&json).unwrap(), p);
    }

    #[test]
    fn header_rejects_bad_split_and_phone_width() {
        let p: Phone = "012345678900".parse().unwrap();
        let mut h = Header::new(
            Version::V2019 {
                protocol_version: 1,
            },
            p,
            1,
        );
        assert!(h.write(2, 0, &mut Vec::new()).is_err());
        h.version = Version::V2013;
        h.split = Some(Split { total: 2, index: 3 });
        assert!(h.write(2, 0, &mut Vec::new()).is_err());
        h.split = None;
        h.encryption = 8;
        assert!(h.write(2, 0, &mut Vec::new()).is_err());
        h.encryption = 0;
        assert!(matches!(
            h.write(2, 1024, &mut Vec::new()),
            Err(Jt808Error::BodyTooLong { len: 1024, .. })
        ));
    }
}
