//! Per-device keys, frame MACs and the replay window.

use core::fmt;

use hmac::{Hmac, KeyInit, Mac as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;

use super::{CspError, Frame};

/// Bytes of the MAC on the wire: HMAC-SHA-256 truncated to its leftmost 128
/// bits (RFC 2104 §5, as RFC 4868 does for IPsec).
pub const MAC_LEN: usize = 16;

/// The shortest device key, bytes (128 bits).
pub const MIN_KEY_LEN: usize = 16;

/// The longest device key, bytes (one SHA-256 block; longer HMAC keys are hashed first anyway).
pub const MAX_KEY_LEN: usize = 64;

/// Sequence numbers a [`ReplayWindow`] remembers below the highest one seen.
pub const REPLAY_WINDOW: u32 = 64;

type HmacSha256 = Hmac<Sha256>;

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nib in [b >> 4, b & 0x0F] {
            if let Some(&d) = DIGITS.get(usize::from(nib)) {
                s.push(char::from(d));
            }
        }
    }
    s
}

pub(crate) fn from_hex(what: &str, text: &str) -> Result<Vec<u8>, CspError> {
    let bad = |reason: String| CspError::BadHex {
        what: what.to_owned(),
        reason,
    };
    let t = text.trim();
    if t.len() % 2 != 0 {
        return Err(bad(format!("{} hex digits; every byte needs two", t.len())));
    }
    let digit = |i: usize, c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or_else(|| {
                bad(format!(
                    "{:?} at character {i} is not a hex digit",
                    char::from(c)
                ))
            })
    };
    t.as_bytes()
        .chunks(2)
        .enumerate()
        .map(|(i, p)| match p {
            [a, b] => Ok(digit(2 * i, *a)? << 4 | digit(2 * i + 1, *b)?),
            _ => Err(bad("odd number of hex digits".into())),
        })
        .collect()
}

/// A device's secret key for frame MACs: 16 to 64 bytes. JSON: lower-case hex.
/// `Debug` does not print the key.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceKey(Vec<u8>);

impl DeviceKey {
    /// A key from its bytes; 16 to 64 bytes.
    pub fn new(bytes: &[u8]) -> Result<DeviceKey, CspError> {
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&bytes.len()) {
            return Err(CspError::BadKey {
                length: bytes.len(),
                min: MIN_KEY_LEN,
                max: MAX_KEY_LEN,
            });
        }
        Ok(DeviceKey(bytes.to_vec()))
    }

    /// A key from hex text.
    ///
    /// ```
    /// use chargeswap_protocol::csp::DeviceKey;
    /// assert!(DeviceKey::from_hex("000102030405060708090a0b0c0d0e0f").is_ok());
    /// assert!(DeviceKey::from_hex("0001").is_err()); // too short
    /// ```
    pub fn from_hex(text: &str) -> Result<DeviceKey, CspError> {
        DeviceKey::new(&from_hex("key", text)?)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn hmac(&self) -> Result<HmacSha256, CspError> {
        <HmacSha256 as KeyInit>::new_from_slice(&self.0).map_err(|_| CspError::BadKey {
            length: self.0.len(),
            min: MIN_KEY_LEN,
            max: MAX_KEY_LEN,
        })
    }

    /// The MAC of `data`: the leftmost 16 bytes of HMAC-SHA-256(key, data).
    pub fn mac(&self, data: &[u8]) -> Result<Mac, CspError> {
        let mut h = self.hmac()?;
        h.update(data);
        let full = h.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        for (o, b) in out.iter_mut().zip(full.iter()) {
            *o = *b;
        }
        Ok(Mac(out))
    }

    /// True when `mac` is the MAC of `data` (constant-time comparison).
    pub fn verify(&self, data: &[u8], mac: &Mac) -> Result<bool, CspError> {
        let mut h = self.hmac()?;
        h.update(data);
        Ok(h.verify_truncated_left(&mac.0).is_ok())
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceKey({} bytes, redacted)", self.0.len())
    }
}

impl Serialize for DeviceKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(&self.0))
    }
}

impl<'de> Deserialize<'de> for DeviceKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DeviceKey::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// A frame's MAC: 16 bytes. JSON: lower-case hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; MAC_LEN]);

impl Mac {
    /// A MAC from 32 hex digits.
    pub fn from_hex(text: &str) -> Result<Mac, CspError> {
        let v = from_hex("mac", text)?;
        let arr: [u8; MAC_LEN] = v.try_into().map_err(|v: Vec<u8>| CspError::BadHex {
            what: "mac".into(),
            reason: format!("{} bytes; a MAC is {MAC_LEN}", v.len()),
        })?;
        Ok(Mac(arr))
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({})", to_hex(&self.0))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(&self.0))
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Mac::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// What a [`ReplayWindow`] says about a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeqCheck {
    /// Not seen before and inside (or above) the window.
    Fresh,
    /// Seen before.
    Replayed,
    /// More than [`REPLAY_WINDOW`] − 1 below the highest seen: cannot tell, so rejected.
    TooOld,
}

/// The anti-replay sliding window of RFC 4303 §3.4.3 / RFC 6347 §4.1.2.6: the
/// highest authenticated sequence number seen and a 64-bit bitmap of which of
/// it and the 63 numbers below it were seen.
///
/// Plain data owned by the caller: keep one per device and direction, persist
/// it with the device's record. Only frames whose MAC verified may be recorded
/// (see [`authenticate`]); otherwise a forger could slide the window forward.
///
/// ```
/// use chargeswap_protocol::csp::{ReplayWindow, SeqCheck};
/// let mut w = ReplayWindow::new();
/// assert_eq!(w.accept(10), SeqCheck::Fresh);
/// assert_eq!(w.accept(10), SeqCheck::Replayed);
/// assert_eq!(w.accept(8), SeqCheck::Fresh);     // late but inside the window
/// assert_eq!(w.accept(100), SeqCheck::Fresh);
/// assert_eq!(w.accept(36), SeqCheck::TooOld);   // 100 - 36 = 64: outside
/// assert_eq!(w.accept(37), SeqCheck::Fresh);    // 100 - 37 = 63: inside
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplayWindow {
    /// The highest sequence number recorded; none before the first.
    pub highest: Option<u32>,
    /// Bit `i` set: `highest - i` was recorded.
    pub bitmap: u64,
}

impl ReplayWindow {
    /// An empty window: every sequence number is fresh.
    pub const fn new() -> ReplayWindow {
        ReplayWindow {
            highest: None,
            bitmap: 0,
        }
    }

    /// Classifies `seq` without recording it.
    pub fn check(&self, seq: u32) -> SeqCheck {
        let Some(top) = self.highest else {
            return SeqCheck::Fresh;
        };
        if seq > top {
            return SeqCheck::Fresh;
        }
        let back = top - seq;
        if back >= REPLAY_WINDOW {
            SeqCheck::TooOld
        } else if self.bitmap >> back & 1 == 1 {
            SeqCheck::Replayed
        } else {
            SeqCheck::Fresh
        }
    }

    /// Classifies `seq` and records it if fresh.
    pub fn accept(&mut self, seq: u32) -> SeqCheck {
        let c = self.check(seq);
        if c == SeqCheck::Fresh {
            self.record(seq);
        }
        c
    }

    fn record(&mut self, seq: u32) {
        match self.highest {
            Some(top) if seq <= top => {
                self.bitmap |= 1u64 << (top - seq);
            }
            Some(top) => {
                let shift = seq - top;
                self.bitmap = if shift >= 64 {
                    1
                } else {
                    (self.bitmap << shift) | 1
                };
                self.highest = Some(seq);
            }
            None => {
                self.bitmap = 1;
                self.highest = Some(seq);
            }
        }
    }
}

/// What a decoder can say about a frame's MAC. JSON: `"absent"`,
/// `"present-unverified"` (no key given), `"valid"`, `"invalid"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MacStatus {
    /// The frame has no MAC.
    Absent,
    /// The frame has a MAC but no key was given to check it.
    PresentUnverified,
    /// The MAC is right for the key.
    Valid,
    /// The MAC is wrong for the key: forged, tampered or another key.
    Invalid,
}

/// Decides whether a decoded frame may be acted on, and records its sequence
/// number. Order (RFC 4303): replay check, then MAC, then record; so a frame
/// that fails changes nothing.
///
/// - A frame with a MAC must verify under `key` (else [`CspError::BadMac`])
///   and pass `window` (else [`CspError::Replayed`] / [`CspError::TooOld`]);
///   it is then recorded and `Ok(true)` returned.
/// - A frame without a MAC is `Ok(false)` (unauthenticated: the host may act
///   on it only as far as its policy allows) unless its command requires a
///   MAC ([`CspError::MacRequired`]). It does not touch the window.
///
/// ```
/// use chargeswap_core::numbering::DeviceNo;
/// use chargeswap_protocol::csp::{authenticate, CspError, DeviceKey, Frame, Message, OpenDoor, ReplayWindow};
/// use chargeswap_protocol::event::OpenReason;
///
/// let key = DeviceKey::new(&[7; 32])?;
/// let open = Message::OpenDoor(OpenDoor { slot: 3, reason: OpenReason::SwapIssue, order_id: Some(9) });
/// let frame = Frame::new(DeviceNo::new(20_001)?, 5, open).sealed(&key)?;
/// let mut window = ReplayWindow::new();
/// assert_eq!(authenticate(&frame, &key, &mut window)?, true);
/// // the same frame again is a replay and is rejected
/// assert!(matches!(authenticate(&frame, &key, &mut window), Err(CspError::Replayed { seq: 5, .. })));
/// // under another key it is a forgery
/// let other = DeviceKey::new(&[8; 32])?;
/// assert!(matches!(authenticate(&frame, &other, &mut ReplayWindow::new()), Err(CspError::BadMac { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn authenticate(
    frame: &Frame,
    key: &DeviceKey,
    window: &mut ReplayWindow,
) -> Result<bool, CspError> {
    let command = frame.command();
    let Some(mac) = &frame.mac else {
        if command.requires_mac() {
            return Err(CspError::MacRequired {
                offset: super::FLAGS_OFFSET,
                command,
            });
        }
        return Ok(false);
    };
    match window.check(frame.seq) {
        SeqCheck::Fresh => {}
        SeqCheck::Replayed => {
            return Err(CspError::Replayed {
                device_no: frame.device_no,
                seq: frame.seq,
                command,
            });
        }
        SeqCheck::TooOld => {
            return Err(CspError::TooOld {
                device_no: frame.device_no,
                seq: frame.seq,
                highest: window.highest.unwrap_or(0),
                window: REPLAY_WINDOW,
            });
        }
    }
    let body = frame.encode_body(true)?;
    if !key.verify(&body, mac)? {
        return Err(CspError::BadMac {
            device_no: frame.device_no,
            seq: frame.seq,
            command,
        });
    }
    window.accept(frame.seq);
    Ok(true)
}
