//! The device numbering plan: [`DeviceNo`], [`DeviceClass`] and [`DeviceNoAllocator`].
//!
//! | class   | first       | last          |
//! |---------|-------------|---------------|
//! | DTU     | 20,001      | 200,000       |
//! | battery | 200,001     | 5,000,000     |
//! | TBOX    | 5,000,001   | 4,294,967,295 |
//!
//! The TBOX range ends at `u32::MAX` ([`MAX_DEVICE_NO`]) so that every device
//! number fits the 32-bit field of the cabinet protocol header. Numbers below
//! 20,001 are reserved and never valid.
//!
//! ```
//! use chargeswap_core::numbering::{DeviceClass, DeviceNo};
//! let n: DeviceNo = "200001".parse()?;
//! assert_eq!(n.class(), DeviceClass::Battery);
//! assert!(DeviceNo::new(20_000).is_err());
//! # Ok::<(), chargeswap_core::numbering::NumberingError>(())
//! ```

use core::fmt;
use core::str::FromStr;
use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest valid device number (the end of the TBOX range).
pub const MAX_DEVICE_NO: u32 = u32::MAX;

const RANGES: &str = "DTU 20001-200000, battery 200001-5000000, TBOX 5000001-4294967295";

/// Errors of the numbering module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NumberingError {
    /// Outside every class of the plan.
    #[error("device number {number} is outside the numbering plan; valid ranges: {ranges}")]
    OutOfRange {
        /// The offending number.
        number: u64,
        /// The valid ranges, spelled out.
        ranges: String,
    },
    /// Not a number at all.
    #[error("invalid device number {input:?}: expected a decimal integer in {ranges}")]
    Invalid {
        /// The offending text.
        input: String,
        /// The valid ranges, spelled out.
        ranges: String,
    },
    /// Not a class name.
    #[error("unknown device class {input:?}: expected one of \"dtu\", \"battery\", \"tbox\"")]
    UnknownClass {
        /// The offending text.
        input: String,
    },
    /// Every number of the class is in use.
    #[error("no free {class} number left in {first}-{last}")]
    Exhausted {
        /// The class asked for.
        class: DeviceClass,
        /// First number of the class.
        first: u32,
        /// Last number of the class.
        last: u32,
    },
}

/// The class of a device, from its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceClass {
    /// DTU communication unit (a cabinet's 4G module): 20,001–200,000.
    Dtu,
    /// Battery: 200,001–5,000,000.
    Battery,
    /// TBOX vehicle telematics unit: 5,000,001–[`MAX_DEVICE_NO`].
    Tbox,
}

impl DeviceClass {
    /// All classes, in numbering order.
    pub const ALL: [DeviceClass; 3] = [DeviceClass::Dtu, DeviceClass::Battery, DeviceClass::Tbox];

    /// The inclusive range `(first, last)` of the class.
    pub const fn range(self) -> (u32, u32) {
        match self {
            DeviceClass::Dtu => (20_001, 200_000),
            DeviceClass::Battery => (200_001, 5_000_000),
            DeviceClass::Tbox => (5_000_001, MAX_DEVICE_NO),
        }
    }

    /// The class name used in JSON and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeviceClass::Dtu => "dtu",
            DeviceClass::Battery => "battery",
            DeviceClass::Tbox => "tbox",
        }
    }
}

impl fmt::Display for DeviceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeviceClass {
    type Err = NumberingError;
    fn from_str(s: &str) -> Result<Self, NumberingError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dtu" => Ok(DeviceClass::Dtu),
            "battery" => Ok(DeviceClass::Battery),
            "tbox" => Ok(DeviceClass::Tbox),
            _ => Err(NumberingError::UnknownClass {
                input: s.to_owned(),
            }),
        }
    }
}

/// A valid device number. Serialized as a JSON number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceNo(u32);

impl DeviceNo {
    /// Validates a number against the plan.
    pub fn new(number: u64) -> Result<DeviceNo, NumberingError> {
        match u32::try_from(number) {
            Ok(n) if n >= DeviceClass::Dtu.range().0 => Ok(DeviceNo(n)),
            _ => Err(NumberingError::OutOfRange {
                number,
                ranges: RANGES.to_owned(),
            }),
        }
    }

    /// The number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The class the number belongs to.
    pub const fn class(self) -> DeviceClass {
        if self.0 <= DeviceClass::Dtu.range().1 {
            DeviceClass::Dtu
        } else if self.0 <= DeviceClass::Battery.range().1 {
            DeviceClass::Battery
        } else {
            DeviceClass::Tbox
        }
    }

    /// Validates a number and checks that it is of `class`.
    pub fn of_class(number: u64, class: DeviceClass) -> Result<DeviceNo, NumberingError> {
        let n = DeviceNo::new(number)?;
        if n.class() == class {
            Ok(n)
        } else {
            let (first, last) = class.range();
            Err(NumberingError::OutOfRange {
                number,
                ranges: format!("{class} {first}-{last}"),
            })
        }
    }
}

impl From<DeviceNo> for u32 {
    fn from(d: DeviceNo) -> u32 {
        d.0
    }
}

impl TryFrom<u32> for DeviceNo {
    type Error = NumberingError;
    fn try_from(n: u32) -> Result<Self, NumberingError> {
        DeviceNo::new(u64::from(n))
    }
}

impl fmt::Display for DeviceNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for DeviceNo {
    type Err = NumberingError;
    fn from_str(s: &str) -> Result<Self, NumberingError> {
        let t = s.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NumberingError::Invalid {
                input: s.to_owned(),
                ranges: RANGES.to_owned(),
            });
        }
        match t.parse::<u64>() {
            Ok(n) => DeviceNo::new(n),
            Err(_) => Err(NumberingError::OutOfRange {
                number: u64::MAX,
                ranges: RANGES.to_owned(),
            }),
        }
    }
}

impl Serialize for DeviceNo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for DeviceNo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        DeviceNo::new(n).map_err(serde::de::Error::custom)
    }
}

/// Hands out free device numbers per class.
///
/// The next number of a class is one above the highest number in use, so
/// retired numbers are not handed out again while the top of the range has
/// room; once it is full the lowest free number (a gap) is used; when there is
/// none the class is exhausted. The allocator is plain data and can be rebuilt
/// from the numbers in use at any time with [`DeviceNoAllocator::from_in_use`].
///
/// ```
/// use chargeswap_core::numbering::{DeviceClass, DeviceNo, DeviceNoAllocator};
/// let in_use = [DeviceNo::new(200_001)?, DeviceNo::new(200_005)?, DeviceNo::new(20_001)?];
/// let mut a = DeviceNoAllocator::from_in_use(in_use);
/// assert_eq!(a.next(DeviceClass::Battery)?.get(), 200_006);
/// assert_eq!(a.next(DeviceClass::Battery)?.get(), 200_007);
/// assert_eq!(a.next(DeviceClass::Tbox)?.get(), 5_000_001);
/// # Ok::<(), chargeswap_core::numbering::NumberingError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNoAllocator {
    in_use: BTreeSet<DeviceNo>,
}

impl DeviceNoAllocator {
    /// An allocator with nothing in use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds an allocator from the numbers in use.
    pub fn from_in_use<I: IntoIterator<Item = DeviceNo>>(in_use: I) -> Self {
        DeviceNoAllocator {
            in_use: in_use.into_iter().collect(),
        }
    }

    /// Marks a number as used; returns false if it already was.
    pub fn mark_used(&mut self, n: DeviceNo) -> bool {
        self.in_use.insert(n)
    }

    /// Releases a number; returns false if it was not in use.
    pub fn release(&mut self, n: DeviceNo) -> bool {
        self.in_use.remove(&n)
    }

    /// How many numbers of a class are in use.
    pub fn used(&self, class: DeviceClass) -> usize {
        let (first, last) = class.range();
        self.in_use.range(DeviceNo(first)..=DeviceNo(last)).count()
    }

    /// The number [`next`](Self::next) would hand out, without taking it.
    pub fn peek(&self, class: DeviceClass) -> Result<DeviceNo, NumberingError> {
        let (first, last) = class.range();
        let mut used = self.in_use.range(DeviceNo(first)..=DeviceNo(last));
        match used.next_back() {
            None => return Ok(DeviceNo(first)),
            Some(top) if top.0 < last => return Ok(DeviceNo(top.0 + 1)),
            Some(_) => {}
        }
        // Top is taken: find the lowest gap.
        let mut expect = first;
        for n in self.in_use.range(DeviceNo(first)..=DeviceNo(last)) {
            if n.0 != expect {
                return Ok(DeviceNo(expect));
            }
            match expect.checked_add(1) {
                Some(e) => expect = e,
                None => break,
            }
        }
        Err(NumberingError::Exhausted { class, first, last })
    }

    /// Hands out the next free number of a class and marks it used.
    pub fn next(&mut self, class: DeviceClass) -> Result<DeviceNo, NumberingError> {
        let n = self.peek(class)?;
        self.in_use.insert(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn boundaries_classify() {
        assert!(DeviceNo::new(0).is_err());
        assert!(DeviceNo::new(20_000).is_err());
        assert_eq!(DeviceNo::new(20_001).unwrap().class(), DeviceClass::Dtu);
        assert_eq!(DeviceNo::new(200_000).unwrap().class(), DeviceClass::Dtu);
        assert_eq!(
            DeviceNo::new(200_001).unwrap().class(),
            DeviceClass::Battery
        );
        assert_eq!(
            DeviceNo::new(5_000_000).unwrap().class(),
            DeviceClass::Battery
        );
        assert_eq!(DeviceNo::new(5_000_001).unwrap().class(), DeviceClass::Tbox);
        assert_eq!(
            DeviceNo::new(u64::from(u32::MAX)).unwrap().class(),
            DeviceClass::Tbox
        );
        let e = DeviceNo::new(u64::from(u32::MAX) + 1).unwrap_err();
        assert!(e.to_string().contains("battery 200001-5000000"), "{e}");
        assert!(DeviceNo::of_class(20_001, DeviceClass::Battery).is_err());
    }

    #[test]
    fn text_and_serde() {
        assert_eq!("  200001 ".parse::<DeviceNo>().unwrap().get(), 200_001);
        assert!(matches!(
            "12a".parse::<DeviceNo>(),
            Err(NumberingError::Invalid { .. })
        ));
        assert!(matches!(
            "-5".parse::<DeviceNo>(),
            Err(NumberingError::Invalid { .. })
        ));
        assert!(matches!(
            "99999999999999999999999".parse::<DeviceNo>(),
            Err(NumberingError::OutOfRange { .. })
        ));
        let d = DeviceNo::new(5_000_001).unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "5000001");
        assert!(serde_json::from_str::<DeviceNo>("19999").is_err());
        assert_eq!("TBOX".parse::<DeviceClass>().unwrap(), DeviceClass::Tbox);
        assert!("pile".parse::<DeviceClass>().is_err());
    }

    #[test]
    fn allocator_fills_gaps_when_top_is_full_then_exhausts() {
        let (first, last) = DeviceClass::Dtu.range();
        let mut a = DeviceNoAllocator::new();
        assert_eq!(a.next(DeviceClass::Dtu).unwrap().get(), first);
        a.mark_used(DeviceNo::new(u64::from(last)).unwrap());
        assert_eq!(a.next(DeviceClass::Dtu).unwrap().get(), first + 1);
        let all: Vec<DeviceNo> = (first..=last)
            .map(|n| DeviceNo::try_from(n).unwrap())
            .collect();
        let mut full = DeviceNoAllocator::from_in_use(all);
        assert!(matches!(
            full.next(DeviceClass::Dtu),
            Err(NumberingError::Exhausted {
                class: DeviceClass::Dtu,
                ..
            })
        ));
        full.release(DeviceNo::new(100_000).unwrap());
        assert_eq!(full.next(DeviceClass::Dtu).unwrap().get(), 100_000);
        assert_eq!(full.used(DeviceClass::Dtu), (last - first + 1) as usize);
    }

    proptest! {
        #[test]
        fn next_is_free_and_in_class(used in prop::collection::btree_set(200_001u32..200_100, 0..50)) {
            let nos: Vec<DeviceNo> = used.iter().map(|n| DeviceNo::try_from(*n).unwrap()).collect();
            let mut a = DeviceNoAllocator::from_in_use(nos.clone());
            let n = a.next(DeviceClass::Battery).unwrap();
            prop_assert_eq!(n.class(), DeviceClass::Battery);
            prop_assert!(!used.contains(&n.get()));
            // rebuilt from the numbers in use, the allocator agrees
            let mut again = DeviceNoAllocator::from_in_use(nos);
            prop_assert_eq!(again.next(DeviceClass::Battery).unwrap(), n);
        }

        #[test]
        fn classification_matches_ranges(n in 20_001u64..=u64::from(u32::MAX)) {
            let d = DeviceNo::new(n).unwrap();
            let (first, last) = d.class().range();
            prop_assert!(u64::from(first) <= n && n <= u64::from(last));
            prop_assert_eq!(d.to_string().parse::<DeviceNo>().unwrap(), d);
        }
    }
}
