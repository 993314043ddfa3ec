//! [`Key`]: the inline identifier used for account ids, transfer ids, codes
//! and references.

use core::fmt;
use core::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{LedgerError, Result};

/// The longest [`Key`] in bytes.
pub const KEY_CAPACITY: usize = 48;

const KEY_EXPECTED: &str =
    "1 to 48 printable ASCII characters without spaces (letters, digits, punctuation)";

/// An identifier: 1 to [`KEY_CAPACITY`] printable ASCII bytes, no spaces.
///
/// Used for account ids, transfer ids, transfer codes and references. It is
/// `Copy` and stored inline (no heap allocation), so applying a transfer
/// allocates no strings. Serialized as a plain JSON string.
///
/// ```
/// use chargeswap_core::ledger::Key;
/// let k = Key::new("order-20240501-0001")?;
/// assert_eq!(k.as_str(), "order-20240501-0001");
/// assert_eq!(k.suffixed(".gift", "id")?.as_str(), "order-20240501-0001.gift");
/// assert!(Key::new("has space").is_err());
/// assert!(Key::new("").is_err());
/// # Ok::<(), chargeswap_core::ledger::LedgerError>(())
/// ```
#[derive(Clone, Copy)]
pub struct Key {
    pub(super) len: u8,
    pub(super) bytes: [u8; KEY_CAPACITY],
}

impl Key {
    /// Validates `text` as a key; errors name the field `key`.
    pub fn new(text: &str) -> Result<Key> {
        Key::for_field("key", text)
    }

    /// Validates `text` as a key; errors name `field`.
    pub fn for_field(field: &str, text: &str) -> Result<Key> {
        Key::build(text.as_bytes(), &[]).ok_or_else(|| invalid_key(field, text))
    }

    fn build(a: &[u8], b: &[u8]) -> Option<Key> {
        let len = a.len().checked_add(b.len())?;
        if len == 0 || len > KEY_CAPACITY {
            return None;
        }
        if !a.iter().chain(b).all(u8::is_ascii_graphic) {
            return None;
        }
        let mut bytes = [0u8; KEY_CAPACITY];
        bytes.get_mut(..a.len())?.copy_from_slice(a);
        bytes.get_mut(a.len()..len)?.copy_from_slice(b);
        Some(Key {
            len: u8::try_from(len).ok()?,
            bytes,
        })
    }

    /// This key followed by `suffix` (e.g. a leg of a multi-transfer
    /// operation: `"op-7"` + `".gift"`); errors name `field` when the result
    /// is too long or the suffix is not printable ASCII.
    pub fn suffixed(&self, suffix: &str, field: &str) -> Result<Key> {
        Key::build(self.as_bytes(), suffix.as_bytes())
            .ok_or_else(|| invalid_key(field, &format!("{self}{suffix}")))
    }

    /// A key from a literal at compile time. Bytes that are not printable
    /// ASCII become `_`, an empty literal becomes `"_"` and a long one is cut
    /// at [`KEY_CAPACITY`], so the result is always a valid key. Use
    /// [`Key::new`] for input.
    ///
    /// ```
    /// use chargeswap_core::ledger::Key;
    /// const REVENUE: Key = Key::lit("platform:revenue");
    /// assert_eq!(REVENUE.as_str(), "platform:revenue");
    /// assert_eq!(Key::lit("a b").as_str(), "a_b");
    /// ```
    #[allow(clippy::indexing_slicing)] // const fn: bounds checked by the loop condition
    pub const fn lit(text: &str) -> Key {
        let b = text.as_bytes();
        let mut bytes = [0u8; KEY_CAPACITY];
        let mut i = 0;
        while i < b.len() && i < KEY_CAPACITY {
            let c = b[i];
            bytes[i] = if c.is_ascii_graphic() { c } else { b'_' };
            i += 1;
        }
        if i == 0 {
            bytes[0] = b'_';
            i = 1;
        }
        Key {
            len: i as u8,
            bytes,
        }
    }

    /// The key as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

fn invalid_key(field: &str, text: &str) -> LedgerError {
    let value: String = text.chars().take(64).collect();
    LedgerError::InvalidKey {
        field: field.to_owned(),
        value,
        expected: KEY_EXPECTED.to_owned(),
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for Key {}
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Key) -> core::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}
impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl core::str::FromStr for Key {
    type Err = LedgerError;
    fn from_str(s: &str) -> Result<Key> {
        Key::new(s)
    }
}
impl TryFrom<&str> for Key {
    type Error = LedgerError;
    fn try_from(s: &str) -> Result<Key> {
        Key::new(s)
    }
}
impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Key, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Key::new(&s).map_err(serde::de::Error::custom)
    }
}
