//! 0x0200 location report (位置信息汇报) and 0x0704 batch of locations
//! (定位数据批量上传).
//!
//! ```text
//! 0x0200: alarm u32 | status u32 | latitude u32 | longitude u32 | altitude u16
//!         | speed u16 | direction u16 | time BCD[6] | additional items...
//! item:   id u8 | length u8 | data[length]
//! 0x0704: count u16 | type u8 (0 normal, 1 blind-area backfill)
//!         | count × (length u16 | 0x0200 body[length])
//! ```

use core::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Jt808Error;
use super::reader::{Reader, be16, be32, first_non_bcd};

type Result<T> = core::result::Result<T, Jt808Error>;

/// Status bit 2: south latitude.
pub const STATUS_SOUTH: u32 = 1 << 2;
/// Status bit 3: west longitude.
pub const STATUS_WEST: u32 = 1 << 3;
/// Status bit 0: ACC on.
pub const STATUS_ACC_ON: u32 = 1 << 0;
/// Status bit 1: positioned (GNSS fix).
pub const STATUS_POSITIONED: u32 = 1 << 1;

/// A `BCD[6]` time `YY-MM-DD-hh-mm-ss` in GMT+8, the year counted from 2000.
///
/// Each field is the two BCD digits as a number; no calendar check is made,
/// so any BCD bytes round-trip. Serialized as `"20YY-MM-DDThh:mm:ss"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BcdTime {
    /// Year minus 2000 (0 to 99).
    pub year: u8,
    /// Month (1 to 12 when valid).
    pub month: u8,
    /// Day of the month.
    pub day: u8,
    /// Hour.
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second.
    pub second: u8,
}

impl BcdTime {
    /// From 6 BCD bytes at `offset`.
    #[inline]
    fn from_bcd(raw: &[u8], offset: usize) -> Result<BcdTime> {
        if let Some(i) = first_non_bcd(raw) {
            return Err(Jt808Error::BadBcd {
                field: "time".into(),
                offset: offset + i,
                byte: raw.get(i).copied().unwrap_or(0),
            });
        }
        let d = |i: usize| raw.get(i).map_or(0, |b| (b >> 4) * 10 + (b & 0x0F));
        Ok(BcdTime {
            year: d(0),
            month: d(1),
            day: d(2),
            hour: d(3),
            minute: d(4),
            second: d(5),
        })
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        for (name, v) in [
            ("time year", self.year),
            ("time month", self.month),
            ("time day", self.day),
            ("time hour", self.hour),
            ("time minute", self.minute),
            ("time second", self.second),
        ] {
            if v > 99 {
                return Err(Jt808Error::invalid(
                    name,
                    format!("{v}: two BCD digits hold 0 to 99"),
                ));
            }
            out.push(((v / 10) << 4) | (v % 10));
        }
        Ok(())
    }
}

impl fmt::Display for BcdTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl core::str::FromStr for BcdTime {
    type Err = Jt808Error;

    /// Parses `20YY-MM-DDThh:mm:ss`.
    fn from_str(s: &str) -> Result<BcdTime> {
        let bad = || {
            Jt808Error::invalid(
                "time",
                format!("{s:?}: expected 20YY-MM-DDThh:mm:ss (years 2000 to 2099)"),
            )
        };
        let b = s.as_bytes();
        if b.len() != 19 || !s.starts_with("20") {
            return Err(bad());
        }
        let num = |at: usize| -> Result<u8> {
            match (b.get(at), b.get(at + 1)) {
                (Some(h @ b'0'..=b'9'), Some(l @ b'0'..=b'9')) => Ok((h - b'0') * 10 + (l - b'0')),
                _ => Err(bad()),
            }
        };
        for (at, sep) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
            if b.get(at) != Some(&sep) {
                return Err(bad());
            }
        }
        Ok(BcdTime {
            year: num(2)?,
            month: num(5)?,
            day: num(8)?,
            hour: num(11)?,
            minute: num(14)?,
            second: num(17)?,
        })
    }
}

impl Serialize for BcdTime {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BcdTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<BcdTime, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One additional item (附加信息) of a location report.
///
/// The common items are typed when their length is the standard one; every
/// other item (unknown id, or a known id with an unexpected length) is kept as
/// [`AdditionalItem::Other`] so that re-encoding gives the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdditionalItem {
    /// 0x01, 4 bytes: odometer mileage in 1/10 km.
    Mileage(u32),
    /// 0x02, 2 bytes: fuel in 1/10 L.
    Fuel(u16),
    /// 0x03, 2 bytes: speed from the tachograph in 1/10 km/h.
    RecorderSpeed(u16),
    /// 0x25, 4 bytes: extended vehicle signal status bits.
    VehicleSignal(u32),
    /// 0x2A, 2 bytes: IO status bits (bit 0 deep sleep, bit 1 sleep).
    IoStatus(u16),
    /// 0x2B, 4 bytes: analog inputs, AD0 in bits 0..15, AD1 in bits 16..31.
    Analog(u32),
    /// 0x30, 1 byte: wireless signal strength.
    SignalStrength(u8),
    /// 0x31, 1 byte: number of GNSS satellites in view.
    Satellites(u8),
    /// Any other item, kept byte for byte.
    Other {
        /// Item id.
        id: u8,
        /// Item data (at most 255 bytes), as hex in JSON.
        #[serde(with = "crate::hexbytes::vec")]
        data: Vec<u8>,
    },
}

impl AdditionalItem {
    /// The item id on the wire.
    pub fn id(&self) -> u8 {
        match self {
            AdditionalItem::Mileage(_) => 0x01,
            AdditionalItem::Fuel(_) => 0x02,
            AdditionalItem::RecorderSpeed(_) => 0x03,
            AdditionalItem::VehicleSignal(_) => 0x25,
            AdditionalItem::IoStatus(_) => 0x2A,
            AdditionalItem::Analog(_) => 0x2B,
            AdditionalItem::SignalStrength(_) => 0x30,
            AdditionalItem::Satellites(_) => 0x31,
            AdditionalItem::Other { id, .. } => *id,
        }
    }

    /// Types an item from its id and data.
    #[inline]
    pub fn from_raw(id: u8, data: &[u8]) -> AdditionalItem {
        match (id, data) {
            (0x01, &[a, b, c, d]) => AdditionalItem::Mileage(u32::from_be_bytes([a, b, c, d])),
            (0x02, &[a, b]) => AdditionalItem::Fuel(u16::from_be_bytes([a, b])),
            (0x03, &[a, b]) => AdditionalItem::RecorderSpeed(u16::from_be_bytes([a, b])),
            (0x25, &[a, b, c, d]) => {
                AdditionalItem::VehicleSignal(u32::from_be_bytes([a, b, c, d]))
            }
            (0x2A, &[a, b]) => AdditionalItem::IoStatus(u16::from_be_bytes([a, b])),
            (0x2B, &[a, b, c, d]) => AdditionalItem::Analog(u32::from_be_bytes([a, b, c, d])),
            (0x30, &[b]) => AdditionalItem::SignalStrength(b),
            (0x31, &[b]) => AdditionalItem::Satellites(b),
            _ => AdditionalItem::Other {
                id,
                data: data.to_vec(),
            },
        }
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        out.push(self.id());
        match self {
            AdditionalItem::Mileage(v)
            | AdditionalItem::VehicleSignal(v)
            | AdditionalItem::Analog(v) => {
                out.push(4);
                out.extend_from_slice(&v.to_be_bytes());
            }
            AdditionalItem::Fuel(v)
            | AdditionalItem::RecorderSpeed(v)
            | AdditionalItem::IoStatus(v) => {
                out.push(2);
                out.extend_from_slice(&v.to_be_bytes());
            }
            AdditionalItem::SignalStrength(v) | AdditionalItem::Satellites(v) => {
                out.push(1);
                out.push(*v);
            }
            AdditionalItem::Other { id, data } => {
                let len = u8::try_from(data.len()).map_err(|_| {
                    Jt808Error::invalid(
                        "additional item",
                        format!("item {id:#04x} has {} bytes; at most 255", data.len()),
                    )
                })?;
                out.push(len);
                out.extend_from_slice(data);
            }
        }
        Ok(())
    }
}

/// 0x0200 location report. Raw fields keep the wire units; the methods give
/// real units.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LocationReport {
    /// Alarm flag bits (报警标志).
    pub alarm: u32,
    /// Status bits (状态): bit 0 ACC, bit 1 fix, bit 2 south, bit 3 west, ...
    pub status: u32,
    /// Latitude in millionths of a degree, unsigned (the hemisphere is status bit 2).
    pub lat_1e6: u32,
    /// Longitude in millionths of a degree, unsigned (the hemisphere is status bit 3).
    pub lon_1e6: u32,
    /// Altitude in metres.
    pub altitude_m: u16,
    /// Speed in 1/10 km/h.
    pub speed_0_1kmh: u16,
    /// Heading, 0 to 359 degrees clockwise from north.
    pub direction_deg: u16,
    /// Time of the fix, GMT+8.
    pub time: BcdTime,
    /// Additional items in wire order.
    #[serde(default)]
    pub items: Vec<AdditionalItem>,
}

impl LocationReport {
    /// Size of the fixed part before the additional items.
    pub const FIXED_LEN: usize = 28;

    /// Latitude in degrees, negative in the southern hemisphere.
    pub fn latitude(&self) -> Decimal {
        let d = Decimal::new(i64::from(self.lat_1e6), 6);
        if self.status & STATUS_SOUTH != 0 {
            -d
        } else {
            d
        }
    }

    /// Longitude in degrees, negative in the western hemisphere.
    pub fn longitude(&self) -> Decimal {
        let d = Decimal::new(i64::from(self.lon_1e6), 6);
        if self.status & STATUS_WEST != 0 {
            -d
        } else {
            d
        }
    }

    /// Speed in km/h.
    pub fn speed_kmh(&self) -> Decimal {
        Decimal::new(i64::from(self.speed_0_1kmh), 1)
    }

    /// Odometer in km from item 0x01, if present.
    pub fn mileage_km(&self) -> Option<Decimal> {
        self.items.iter().find_map(|i| match i {
            AdditionalItem::Mileage(v) => Some(Decimal::new(i64::from(*v), 1)),
            _ => None,
        })
    }

    #[inline]
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<LocationReport> {
        let at = r.offset();
        let f = r.take(Self::FIXED_LEN, "location report (28 fixed bytes)")?;
        let time = BcdTime::from_bcd(f.get(22..28).unwrap_or(&[]), at + 22)?;
        let items = read_items(r)?;
        Ok(LocationReport {
            alarm: be32(f, 0),
            status: be32(f, 4),
            lat_1e6: be32(f, 8),
            lon_1e6: be32(f, 12),
            altitude_m: be16(f, 16),
            speed_0_1kmh: be16(f, 18),
            direction_deg: be16(f, 20),
            time,
            items,
        })
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.alarm.to_be_bytes());
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&self.lat_1e6.to_be_bytes());
        out.extend_from_slice(&self.lon_1e6.to_be_bytes());
        out.extend_from_slice(&self.altitude_m.to_be_bytes());
        out.extend_from_slice(&self.speed_0_1kmh.to_be_bytes());
        out.extend_from_slice(&self.direction_deg.to_be_bytes());
        self.time.write(out)?;
        for item in &self.items {
            item.write(out)?;
        }
        Ok(())
    }
}

#[inline]
fn read_items(r: &mut Reader<'_>) -> Result<Vec<AdditionalItem>> {
    let at = r.offset();
    let all = r.rest();
    // Count first so the vector is allocated once, at its final size.
    let mut count = 0usize;
    let mut rest = all;
    while let [_, len, tail @ ..] = rest {
        rest = tail.get(usize::from(*len)..).unwrap_or(&[]);
        count += 1;
    }
    let mut items = Vec::with_capacity(count);
    let mut rest = all;
    loop {
        match rest {
            [] => return Ok(items),
            [id, len, tail @ ..] => match tail.split_at_checked(usize::from(*len)) {
                Some((data, next)) => {
                    items.push(AdditionalItem::from_raw(*id, data));
                    rest = next;
                }
                None => {
                    let offset = at + (all.len() - tail.len());
                    return Err(Jt808Error::Truncated {
                        field: format!("additional item {id:#04x}"),
                        offset,
                        needed: usize::from(*len),
                        available: tail.len(),
                    });
                }
            },
            [_] => {
                return Err(Jt808Error::Truncated {
                    field: "additional item length".into(),
                    offset: at + all.len(),
                    needed: 1,
                    available: 0,
                });
            }
        }
    }
}

/// The type byte of a 0x0704 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchKind {
    /// 0: normal batch report (正常位置批量汇报).
    Normal,
    /// 1: blind-area backfill (盲区补报), fixes stored while offline.
    BlindArea,
}

/// 0x0704 batch of location reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LocationBatch {
    /// Normal or backfill.
    pub kind: BatchKind,
    /// The reports; the count on the wire is their number.
    pub locations: Vec<LocationReport>,
}

impl LocationBatch {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<LocationBatch> {
        let count_at = r.offset();
        let count = usize::from(r.u16("location count")?);
        let kind_at = r.offset();
        let kind = match r.u8("batch type")? {
            0 => BatchKind::Normal,
            1 => BatchKind::BlindArea,
            other => {
                return Err(Jt808Error::BadValue {
                    field: "batch type".into(),
                    offset: kind_at,
                    found: u32::from(other),
                    expected: "0 (normal) or 1 (blind-area backfill)".into(),
                });
            }
        };
        // Each entry takes at least 2 + 28 bytes: never reserve more than the
        // body can hold, whatever the count says.
        let mut locations = Vec::with_capacity(count.min(r.remaining() / 30));
        while r.remaining() > 0 {
            let len = usize::from(r.u16("location length")?);
            let mut sub = r.sub(len, "location report")?;
            locations.push(LocationReport::read(&mut sub)?);
        }
        if locations.len() != count {
            return Err(Jt808Error::CountMismatch {
                offset: count_at,
                declared: count,
                actual: locations.len(),
            });
        }
        Ok(LocationBatch { kind, locations })
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        let count = u16::try_from(self.locations.len()).map_err(|_| {
            Jt808Error::invalid("locations", "more than 65535 reports in one batch")
        })?;
        out.extend_from_slice(&count.to_be_bytes());
        out.push(match self.kind {
            BatchKind::Normal => 0,
            BatchKind::BlindArea => 1,
        });
        for loc in &self.locations {
            let len_at = out.len();
            out.extend_from_slice(&[0, 0]);
            loc.write(out)?;
            let len = u16::try_from(out.len() - len_at - 2)
                .map_err(|_| Jt808Error::invalid("location report", "longer than 65535 bytes"))?;
            if let Some(slot) = out.get_mut(len_at..len_at + 2) {
                slot.copy_from_slice(&len.to_be_bytes());
            }
        }
        Ok(())
    }
}
