//! Split packets (分包): cutting a long body into parts, and joining parts
//! back with bounded memory and no clock.
//!
//! Parts of one message share the terminal number and message id and carry
//! consecutive serial numbers, so part `index` of a message whose first part
//! has serial `s` has serial `s + index - 1` (wrapping). That first serial is
//! the key that tells two messages apart.

use serde::{Deserialize, Serialize};

use super::Jt808Error;
use super::body::Body;
use super::frame::Packet;
use super::header::{Header, MAX_BODY_LEN, Phone, Split, Version};

type Result<T> = core::result::Result<T, Jt808Error>;

/// Cuts `packet`'s body into parts of at most `part_len` bytes (1 to 1023).
/// The parts carry `packet`'s header with split items and consecutive serial
/// numbers starting at `packet.header.serial`; their bodies are
/// [`Body::Raw`] slices. An empty body gives one empty part.
///
/// ```
/// use chargeswap_protocol::jt808::{split_packet, Reassembler, Packet, Header, Body, Phone, Version};
/// let p = Packet {
///     header: Header::new(Version::V2013, "013912345678".parse()?, 7),
///     body: Body::Raw { msg_id: 0x0900, data: vec![0xAB; 2500] },
/// };
/// let parts = split_packet(&p, 1000)?;
/// assert_eq!(parts.len(), 3);
/// let mut r = Reassembler::default();
/// let mut out = None;
/// for part in parts {
///     let wire = part.encode()?;
///     out = r.push(Packet::decode(&wire)?)?;
/// }
/// assert_eq!(out, Some(p));
/// # Ok::<(), chargeswap_protocol::jt808::Jt808Error>(())
/// ```
pub fn split_packet(packet: &Packet, part_len: usize) -> Result<Vec<Packet>> {
    if part_len == 0 || part_len > MAX_BODY_LEN {
        return Err(Jt808Error::invalid(
            "part_len",
            format!("{part_len}: expected 1 to {MAX_BODY_LEN}"),
        ));
    }
    let mut body = Vec::new();
    packet.body.encode(packet.header.version, &mut body)?;
    let total = body.len().div_ceil(part_len).max(1);
    let total = u16::try_from(total).map_err(|_| {
        Jt808Error::invalid(
            "body",
            format!("{total} parts; a message holds at most 65535"),
        )
    })?;
    let msg_id = packet.msg_id();
    let mut parts = Vec::with_capacity(usize::from(total));
    for index in 1..=total {
        let from = usize::from(index - 1) * part_len;
        let data = body
            .get(from..(from + part_len).min(body.len()))
            .unwrap_or(&[])
            .to_vec();
        let header = Header {
            serial: packet.header.serial.wrapping_add(index - 1),
            split: Some(Split { total, index }),
            ..packet.header
        };
        parts.push(Packet {
            header,
            body: Body::Raw { msg_id, data },
        });
    }
    Ok(parts)
}

/// Bounds of a [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassemblyLimits {
    /// Messages joined at once; past it the least recently advanced is evicted.
    pub max_messages: usize,
    /// The most parts one message may announce.
    pub max_parts: u16,
    /// Bytes buffered across all messages.
    pub max_bytes: usize,
    /// A message that gets no new part within this many pushes is evicted
    /// (0: only [`Reassembler::evict_idle`] and the other limits evict).
    pub max_idle_pushes: u64,
}

impl Default for ReassemblyLimits {
    /// 16 messages, 256 parts each, 256 KiB in all, evicted after 1024 idle pushes.
    fn default() -> Self {
        ReassemblyLimits {
            max_messages: 16,
            max_parts: 256,
            max_bytes: 256 * 1024,
            max_idle_pushes: 1024,
        }
    }
}

/// One message being joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Partial {
    phone: Phone,
    version: Version,
    encryption: u8,
    reserved_bit: bool,
    msg_id: u16,
    first_serial: u16,
    total: u16,
    #[serde(with = "parts_hex")]
    parts: Vec<Option<Vec<u8>>>,
    last_push: u64,
}

mod parts_hex {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Part(#[serde(with = "crate::hexbytes::vec")] Vec<u8>);

    pub(super) fn serialize<S: Serializer>(
        parts: &[Option<Vec<u8>>],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let v: Vec<Option<Part>> = parts.iter().map(|p| p.clone().map(Part)).collect();
        v.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<Option<Vec<u8>>>, D::Error> {
        let v: Vec<Option<Part>> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|p| p.map(|Part(b)| b)).collect())
    }
}

/// What tells two split messages apart.
type Key = (Phone, Version, u16, u16);

impl Partial {
    fn key(&self) -> Key {
        (self.phone, self.version, self.msg_id, self.first_serial)
    }

    fn bytes(&self) -> usize {
        self.parts.iter().flatten().map(Vec::len).sum()
    }

    fn info(&self) -> PendingMessage {
        PendingMessage {
            phone: self.phone,
            msg_id: self.msg_id,
            first_serial: self.first_serial,
            total: self.total,
            missing: (1..=self.total)
                .zip(&self.parts)
                .filter(|(_, p)| p.is_none())
                .map(|(i, _)| i)
                .collect(),
        }
    }
}

/// A message still missing parts: what a platform puts in a 0x8003
/// re-transmission request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMessage {
    /// The terminal.
    pub phone: Phone,
    /// The message id.
    pub msg_id: u16,
    /// Serial number of part 1.
    pub first_serial: u16,
    /// Parts announced.
    pub total: u16,
    /// Indexes (from 1) not yet received.
    pub missing: Vec<u16>,
}

/// Joins split packets into whole messages. Plain data: no clock, no I/O;
/// memory is bounded by [`ReassemblyLimits`], and "time" is the number of
/// packets pushed, so stale parts are evicted after a caller-chosen count of
/// pushes or by an explicit [`evict_idle`](Reassembler::evict_idle).
///
/// Pushing the same part twice is harmless: the first copy is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    pending: Vec<Partial>,
    pushes: u64,
    evicted: u64,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new(ReassemblyLimits::default())
    }
}

impl Reassembler {
    /// An empty reassembler.
    pub fn new(limits: ReassemblyLimits) -> Self {
        Reassembler {
            limits,
            pending: Vec::new(),
            pushes: 0,
            evicted: 0,
        }
    }

    /// The limits.
    pub fn limits(&self) -> ReassemblyLimits {
        self.limits
    }

    /// Takes one packet. A packet that is not split comes straight back. A
    /// part is stored, and when it completes its message the joined packet is
    /// returned: the header of part 1 without split items, the body decoded
    /// by message id (raw if encrypted).
    ///
    /// Errors: [`Jt808Error::TooManyParts`] (nothing stored),
    /// [`Jt808Error::TooLarge`] (the message is dropped), or the joined
    /// body's decoding error (the message is dropped).
    pub fn push(&mut self, packet: Packet) -> Result<Option<Packet>> {
        let Some(split) = packet.header.split else {
            return Ok(Some(packet));
        };
        if split.total > self.limits.max_parts {
            return Err(Jt808Error::TooManyParts {
                total: split.total,
                max: self.limits.max_parts,
            });
        }
        if split.index == 0 || split.index > split.total {
            return Err(Jt808Error::invalid(
                "split",
                format!("part {} of {}", split.index, split.total),
            ));
        }
        let h = packet.header;
        let msg_id = packet.msg_id();
        let data = match packet.body {
            Body::Raw { data, .. } => data,
            typed => {
                let mut v = Vec::new();
                typed.encode(h.version, &mut v)?;
                v
            }
        };
        self.pushes = self.pushes.saturating_add(1);
        if self.limits.max_idle_pushes > 0 {
            self.evict_idle(self.limits.max_idle_pushes);
        }
        let first_serial = h.serial.wrapping_sub(split.index - 1);
        let key: Key = (h.phone, h.version, msg_id, first_serial);
        match self.position(key) {
            Some(i) if self.pending.get(i).is_some_and(|p| p.total == split.total) => {}
            other => {
                if let Some(i) = other {
                    // Same key, different part count: a new message reusing
                    // the serial numbers replaces the stale one.
                    self.pending.remove(i);
                    self.evicted += 1;
                }
                while self.pending.len() >= self.limits.max_messages.max(1) {
                    if !self.evict_lru(None) {
                        break;
                    }
                }
                self.pending.push(Partial {
                    phone: h.phone,
                    version: h.version,
                    encryption: h.encryption,
                    reserved_bit: h.reserved_bit,
                    msg_id,
                    first_serial,
                    total: split.total,
                    parts: vec![None; usize::from(split.total)],
                    last_push: self.pushes,
                });
            }
        }
        let slot = usize::from(split.index - 1);
        let duplicate = self
            .position(key)
            .and_then(|i| self.pending.get(i))
            .and_then(|p| p.parts.get(slot))
            .is_some_and(Option::is_some);
        if duplicate {
            return Ok(None);
        }
        // Byte budget: evict other messages first, then give up on this one.
        while self.buffered_bytes() + data.len() > self.limits.max_bytes {
            if !self.evict_lru(Some(key)) {
                let len = self.buffered_bytes() + data.len();
                if let Some(i) = self.position(key) {
                    self.pending.remove(i);
                    self.evicted += 1;
                }
                return Err(Jt808Error::TooLarge {
                    len,
                    max: self.limits.max_bytes,
                });
            }
        }
        match self.position(key) {
            Some(at) => self.store(at, slot, data),
            None => Ok(None),
        }
    }

    fn position(&self, key: Key) -> Option<usize> {
        self.pending.iter().position(|p| p.key() == key)
    }

    fn store(&mut self, at: usize, slot: usize, data: Vec<u8>) -> Result<Option<Packet>> {
        let pushes = self.pushes;
        let Some(p) = self.pending.get_mut(at) else {
            return Ok(None);
        };
        if let Some(s) = p.parts.get_mut(slot) {
            *s = Some(data);
        }
        p.last_push = pushes;
        if p.parts.iter().any(Option::is_none) {
            return Ok(None);
        }
        let p = self.pending.remove(at);
        let body: Vec<u8> = p.parts.into_iter().flatten().flatten().collect();
        let header = Header {
            version: p.version,
            encryption: p.encryption,
            reserved_bit: p.reserved_bit,
            phone: p.phone,
            serial: p.first_serial,
            split: None,
        };
        let body = if p.encryption != 0 {
            Body::Raw {
                msg_id: p.msg_id,
                data: body,
            }
        } else {
            Body::decode(p.msg_id, p.version, &body)?
        };
        Ok(Some(Packet { header, body }))
    }

    /// Evicts the least recently advanced message other than `keep`;
    /// false when there is none.
    fn evict_lru(&mut self, keep: Option<Key>) -> bool {
        let victim = self
            .pending
            .iter()
            .enumerate()
            .filter(|(_, p)| Some(p.key()) != keep)
            .min_by_key(|(_, p)| p.last_push)
            .map(|(i, _)| i);
        match victim {
            Some(i) => {
                self.pending.remove(i);
                self.evicted += 1;
                true
            }
            None => false,
        }
    }

    /// Drops every message that got no new part in the last `max_idle`
    /// pushes, and returns what was dropped.
    pub fn evict_idle(&mut self, max_idle: u64) -> Vec<PendingMessage> {
        let now = self.pushes;
        let mut out = Vec::new();
        self.pending.retain(|p| {
            let keep = now.saturating_sub(p.last_push) <= max_idle;
            if !keep {
                out.push(p.info());
            }
            keep
        });
        self.evicted += out.len() as u64;
        out
    }

    /// Drops everything and returns what was dropped.
    pub fn clear(&mut self) -> Vec<PendingMessage> {
        let out = self.pending();
        self.evicted += out.len() as u64;
        self.pending.clear();
        out
    }

    /// The messages still missing parts, oldest first.
    pub fn pending(&self) -> Vec<PendingMessage> {
        self.pending.iter().map(Partial::info).collect()
    }

    /// Bytes of parts held.
    pub fn buffered_bytes(&self) -> usize {
        self.pending.iter().map(Partial::bytes).sum()
    }

    /// Messages dropped so far by the limits or by eviction.
    pub fn evicted_count(&self) -> u64 {
        self.evicted
    }

    /// Packets pushed so far (the reassembler's notion of time).
    pub fn pushes(&self) -> u64 {
        self.pushes
    }
}
