//! Battery custody: where every battery is, and how it got there.
//!
//! Every registered battery is always in exactly one [`Location`]: a cabinet
//! slot, a rider, a store, in transit, in maintenance, or retired. Every
//! movement is a [`CustodyEvent`] with its [`Cause`]; the [`Custody`] book is
//! nothing but the fold of its events, so it can be rebuilt from them at any
//! time (its serde form *is* the event log).
//!
//! Moves are idempotent by [`MoveId`]: recording the same id with the same
//! content again changes nothing and returns the original event; the same id
//! with different content is an error. Impossible moves (removing a battery
//! from a slot it is not in, filling an occupied slot, moving a retired
//! battery) are typed errors and change nothing.
//!
//! ```
//! use chargeswap_core::custody::{Cause, Custody, Location, MoveId, MoveRequest, RiderId, CabinetId};
//! use chargeswap_core::numbering::DeviceNo;
//! use chrono::{TimeZone, Utc};
//!
//! let now = Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0).unwrap();
//! let battery = DeviceNo::new(200_001)?;
//! let slot = Location::Slot { cabinet: CabinetId(20_001), slot: 3 };
//! let mut book = Custody::new();
//! book.record(MoveRequest::register(MoveId::new(1, 0), battery, slot.clone()), now)?;
//! let rider = Location::Rider { rider: RiderId(7) };
//! book.record(MoveRequest::new(MoveId::new(2, 0), battery, slot.clone(), rider.clone(), Cause::Manual), now)?;
//! assert_eq!(book.location(battery), Some(&rider));
//! assert_eq!(book.occupant(CabinetId(20_001), 3), None);
//! assert_eq!(book.history(battery).len(), 2);
//!
//! // The battery is no longer in slot 3: moving it out of there again is refused.
//! let err = book.record(MoveRequest::new(MoveId::new(3, 0), battery, slot, rider, Cause::Manual), now);
//! assert!(err.is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::numbering::{DeviceClass, DeviceNo};

/// A point in time (UTC). Always a parameter, never read from a clock.
pub type Timestamp = DateTime<Utc>;

/// A cabinet slot number (仓位), as the cabinet numbers them (usually from 1).
pub type SlotNo = u16;

/// A rider (end user) of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RiderId(pub u64);

/// A swap or charging cabinet (换电柜 / 充电柜).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CabinetId(pub u64);

/// A store or station (网点) where staff hand batteries over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoreId(pub u64);

/// Identifies one custody movement: the operation that caused it (an order,
/// a work order, a shipment...) and the movement's number within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MoveId {
    /// The order or operation that caused the movement.
    pub source: u64,
    /// The movement's number within that operation.
    pub seq: u32,
}

impl MoveId {
    /// A move id.
    pub const fn new(source: u64, seq: u32) -> MoveId {
        MoveId { source, seq }
    }
}

/// Where a battery is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// In a cabinet slot.
    Slot {
        /// The cabinet.
        cabinet: CabinetId,
        /// The slot.
        slot: SlotNo,
    },
    /// With a rider.
    Rider {
        /// The rider.
        rider: RiderId,
    },
    /// In a store's stock.
    Store {
        /// The store.
        store: StoreId,
    },
    /// On its way somewhere (logistics).
    Transit {
        /// The shipment or work order carrying it.
        shipment: u64,
    },
    /// In maintenance or repair.
    Maintenance {
        /// The repair work order.
        work_order: u64,
    },
    /// Taken out of service for good. A retired battery never moves again.
    Retired,
}

/// Why a battery moved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// First registration in the book.
    Registration,
    /// A swap session (换电): the order that moved it.
    Swap {
        /// The swap order.
        order: u64,
    },
    /// A rental (租电) issue, return or replacement.
    Rental {
        /// The rental order.
        order: u64,
    },
    /// A charging-cabinet session.
    Charging {
        /// The charging order.
        order: u64,
    },
    /// A physical movement reported by a device that no session expected
    /// (a late or stray message); an alert goes with it.
    DeviceReport {
        /// The order whose slot reported it, if any.
        order: Option<u64>,
    },
    /// Restocking, rebalancing or logistics.
    Logistics,
    /// Sent to or back from maintenance.
    Maintenance,
    /// Taken out of service.
    Retirement,
    /// An operator corrected the book to match reality.
    Correction(Box<Correction>),
    /// Any other manual movement by staff.
    Manual,
}

/// Who corrected the custody book, and why (boxed in [`Cause::Correction`]
/// so that causes stay small).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Correction {
    /// Who corrected it.
    pub operator: String,
    /// Why.
    pub reason: String,
}

/// A request to move a battery (or to register a new one when `from` is a
/// registration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveRequest {
    /// Idempotency key.
    pub id: MoveId,
    /// The battery (a battery-class device number).
    pub battery: DeviceNo,
    /// Where the battery is expected to be now.
    pub from: Origin,
    /// Where it goes.
    pub to: Location,
    /// Why.
    pub cause: Cause,
}

/// The expected origin of a move.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The battery is new to the book (registration).
    New,
    /// The battery must be exactly here, or the move is refused.
    Exactly {
        /// The expected location.
        location: Location,
    },
    /// Wherever the book says it is (a device report or a correction that
    /// follows physical reality). The recorded event still names the actual
    /// origin.
    Anywhere,
}

impl MoveRequest {
    /// A move from an exact expected location.
    pub fn new(id: MoveId, battery: DeviceNo, from: Location, to: Location, cause: Cause) -> Self {
        MoveRequest {
            id,
            battery,
            from: Origin::Exactly { location: from },
            to,
            cause,
        }
    }

    /// Registers a new battery at a location.
    pub fn register(id: MoveId, battery: DeviceNo, at: Location) -> Self {
        MoveRequest {
            id,
            battery,
            from: Origin::New,
            to: at,
            cause: Cause::Registration,
        }
    }
}

/// One recorded movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodyEvent {
    /// Idempotency key.
    pub id: MoveId,
    /// The battery.
    pub battery: DeviceNo,
    /// Where it was (`None` for a registration).
    pub from: Option<Location>,
    /// Where it went.
    pub to: Location,
    /// Why.
    pub cause: Cause,
    /// When it was recorded.
    pub at: Timestamp,
}

/// Errors of the custody module. A refused move changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CustodyError {
    /// The device number is not in the battery range.
    #[error("device {number} is not a battery: expected a number in 200001-5000000")]
    NotABattery {
        /// The offending number.
        number: u32,
    },
    /// The battery is not in the book.
    #[error("battery {battery} is unknown: register it first")]
    UnknownBattery {
        /// The battery.
        battery: u32,
    },
    /// Registration of a battery that is already in the book.
    #[error("battery {battery} is already registered (at {at:?})")]
    AlreadyRegistered {
        /// The battery.
        battery: u32,
        /// Where it is.
        at: Location,
    },
    /// The battery is not where the move expects it.
    #[error("battery {battery} is not at {expected:?}: the book has it at {actual:?}")]
    NotThere {
        /// The battery.
        battery: u32,
        /// Where the move expected it.
        expected: Location,
        /// Where it actually is.
        actual: Location,
    },
    /// The target slot already holds a battery.
    #[error("slot {slot} of cabinet {cabinet} already holds battery {occupant}")]
    SlotOccupied {
        /// The cabinet.
        cabinet: u64,
        /// The slot.
        slot: SlotNo,
        /// The battery in it.
        occupant: u32,
    },
    /// A move to where the battery already is.
    #[error("battery {battery} is already at {at:?}: a move must change the location")]
    SameLocation {
        /// The battery.
        battery: u32,
        /// Where it is.
        at: Location,
    },
    /// A retired battery never moves.
    #[error("battery {battery} is retired and cannot move")]
    Retired {
        /// The battery.
        battery: u32,
    },
    /// The move id was used before for a different movement.
    #[error("move id {id:?} was already used for a different movement of battery {battery}")]
    IdConflict {
        /// The id.
        id: MoveId,
        /// The battery of the original movement.
        battery: u32,
    },
}

/// The result of recording a move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The movement (the original one for a duplicate).
    pub event: CustodyEvent,
    /// True when the id had been recorded before and nothing changed.
    pub duplicate: bool,
}

/// The custody book: current locations, slot occupants and the full history.
///
/// Serializes as its event log; deserializing replays the log, so a book
/// read back is the same book bit for bit (and a corrupt log is refused).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CustodyLog", into = "CustodyLog")]
pub struct Custody {
    events: Vec<CustodyEvent>,
    holders: HashMap<DeviceNo, Location>,
    slots: HashMap<(CabinetId, SlotNo), DeviceNo>,
    by_id: HashMap<MoveId, usize>,
    by_battery: BTreeMap<DeviceNo, Vec<usize>>,
}

/// The serde form of [`Custody`]: its events, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustodyLog {
    /// Every recorded movement, oldest first.
    pub events: Vec<CustodyEvent>,
}

impl From<Custody> for CustodyLog {
    fn from(c: Custody) -> Self {
        CustodyLog { events: c.events }
    }
}

impl TryFrom<CustodyLog> for Custody {
    type Error = CustodyError;
    fn try_from(log: CustodyLog) -> Result<Self, CustodyError> {
        Custody::replay(log.events)
    }
}

fn slot_key(l: &Location) -> Option<(CabinetId, SlotNo)> {
    match l {
        Location::Slot { cabinet, slot } => Some((*cabinet, *slot)),
        _ => None,
    }
}

impl Custody {
    /// An empty book.
    pub fn new() -> Self {
        Custody::default()
    }

    /// Rebuilds a book from its events, checking each one as it is applied.
    pub fn replay<I: IntoIterator<Item = CustodyEvent>>(
        events: I,
    ) -> Result<Custody, CustodyError> {
        let mut c = Custody::new();
        for e in events {
            c.check_event(&e)?;
            c.apply(e);
        }
        Ok(c)
    }

    /// Decides a move without changing the book: the event it would record
    /// (or the original one for a duplicate id), or why it is impossible.
    pub fn decide(&self, req: &MoveRequest, now: Timestamp) -> Result<Recorded, CustodyError> {
        if let Some(orig) = self.by_id.get(&req.id).and_then(|i| self.events.get(*i)) {
            return if same_request(orig, req) {
                Ok(Recorded {
                    event: orig.clone(),
                    duplicate: true,
                })
            } else {
                Err(CustodyError::IdConflict {
                    id: req.id,
                    battery: orig.battery.get(),
                })
            };
        }
        let from = match &req.from {
            Origin::New => None,
            Origin::Exactly { location } => Some(location.clone()),
            Origin::Anywhere => Some(self.holders.get(&req.battery).cloned().ok_or(
                CustodyError::UnknownBattery {
                    battery: req.battery.get(),
                },
            )?),
        };
        let event = CustodyEvent {
            id: req.id,
            battery: req.battery,
            from,
            to: req.to.clone(),
            cause: req.cause.clone(),
            at: now,
        };
        self.check_event(&event)?;
        Ok(Recorded {
            event,
            duplicate: false,
        })
    }

    /// Records a move: checks it, appends its event and updates the book.
    pub fn record(&mut self, req: MoveRequest, now: Timestamp) -> Result<Recorded, CustodyError> {
        let r = self.decide(&req, now)?;
        if !r.duplicate {
            self.apply(r.event.clone());
        }
        Ok(r)
    }

    fn check_event(&self, e: &CustodyEvent) -> Result<(), CustodyError> {
        let b = e.battery.get();
        if e.battery.class() != DeviceClass::Battery {
            return Err(CustodyError::NotABattery { number: b });
        }
        if let Some(orig) = self.by_id.get(&e.id).and_then(|i| self.events.get(*i)) {
            return Err(CustodyError::IdConflict {
                id: e.id,
                battery: orig.battery.get(),
            });
        }
        let current = self.holders.get(&e.battery);
        match (&e.from, current) {
            (None, Some(at)) => {
                return Err(CustodyError::AlreadyRegistered {
                    battery: b,
                    at: at.clone(),
                });
            }
            (Some(_), None) => return Err(CustodyError::UnknownBattery { battery: b }),
            (Some(from), Some(actual)) => {
                if *actual == Location::Retired {
                    return Err(CustodyError::Retired { battery: b });
                }
                if from != actual {
                    return Err(CustodyError::NotThere {
                        battery: b,
                        expected: from.clone(),
                        actual: actual.clone(),
                    });
                }
                if *from == e.to {
                    return Err(CustodyError::SameLocation {
                        battery: b,
                        at: from.clone(),
                    });
                }
            }
            (None, None) => {}
        }
        if let Some(key) = slot_key(&e.to) {
            if let Some(occ) = self.slots.get(&key) {
                return Err(CustodyError::SlotOccupied {
                    cabinet: key.0.0,
                    slot: key.1,
                    occupant: occ.get(),
                });
            }
        }
        Ok(())
    }

    fn apply(&mut self, e: CustodyEvent) {
        if let Some(key) = e.from.as_ref().and_then(slot_key) {
            self.slots.remove(&key);
        }
        if let Some(key) = slot_key(&e.to) {
            self.slots.insert(key, e.battery);
        }
        self.holders.insert(e.battery, e.to.clone());
        let idx = self.events.len();
        self.by_id.insert(e.id, idx);
        self.by_battery.entry(e.battery).or_default().push(idx);
        self.events.push(e);
    }

    /// Where a battery is, if it is registered.
    pub fn location(&self, battery: DeviceNo) -> Option<&Location> {
        self.holders.get(&battery)
    }

    /// The battery in a slot, if any.
    pub fn occupant(&self, cabinet: CabinetId, slot: SlotNo) -> Option<DeviceNo> {
        self.slots.get(&(cabinet, slot)).copied()
    }

    /// The batteries a rider holds, in number order.
    pub fn held_by_rider(&self, rider: RiderId) -> Vec<DeviceNo> {
        let mut v: Vec<DeviceNo> = self
            .holders
            .iter()
            .filter(|(_, l)| **l == Location::Rider { rider })
            .map(|(b, _)| *b)
            .collect();
        v.sort();
        v
    }

    /// A battery's movements, oldest first (empty for an unknown battery).
    pub fn history(&self, battery: DeviceNo) -> Vec<&CustodyEvent> {
        self.by_battery
            .get(&battery)
            .map(|ix| ix.iter().filter_map(|i| self.events.get(*i)).collect())
            .unwrap_or_default()
    }

    /// Every movement, oldest first.
    pub fn events(&self) -> &[CustodyEvent] {
        &self.events
    }

    /// How many batteries are registered (retired ones included). Moves
    /// never change this number; only registrations raise it.
    pub fn battery_count(&self) -> usize {
        self.holders.len()
    }

    /// Every battery with its location, in battery-number order.
    pub fn locations(&self) -> Vec<(DeviceNo, Location)> {
        let mut v: Vec<(DeviceNo, Location)> =
            self.holders.iter().map(|(b, l)| (*b, l.clone())).collect();
        v.sort_by_key(|(b, _)| *b);
        v
    }
}

fn same_request(orig: &CustodyEvent, req: &MoveRequest) -> bool {
    let from_ok = match &req.from {
        Origin::New => orig.from.is_none(),
        Origin::Exactly { location } => orig.from.as_ref() == Some(location),
        Origin::Anywhere => orig.from.is_some(),
    };
    from_ok && orig.battery == req.battery && orig.to == req.to && orig.cause == req.cause
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t0() -> Timestamp {
        Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0).unwrap()
    }
    fn bat(n: u32) -> DeviceNo {
        DeviceNo::new(u64::from(200_000 + n)).unwrap()
    }
    fn slot(s: SlotNo) -> Location {
        Location::Slot {
            cabinet: CabinetId(1),
            slot: s,
        }
    }
    fn rider(r: u64) -> Location {
        Location::Rider { rider: RiderId(r) }
    }
    fn mv(id: u64, b: u32, from: Location, to: Location) -> MoveRequest {
        MoveRequest::new(MoveId::new(id, 0), bat(b), from, to, Cause::Manual)
    }

    fn book() -> Custody {
        let mut c = Custody::new();
        c.record(
            MoveRequest::register(MoveId::new(1, 0), bat(1), slot(1)),
            t0(),
        )
        .unwrap();
        c.record(
            MoveRequest::register(MoveId::new(1, 1), bat(2), rider(9)),
            t0(),
        )
        .unwrap();
        c
    }

    #[test]
    fn register_and_move() {
        let mut c = book();
        assert_eq!(c.occupant(CabinetId(1), 1), Some(bat(1)));
        let r = c.record(mv(2, 1, slot(1), rider(5)), t0()).unwrap();
        assert!(!r.duplicate);
        assert_eq!(r.event.from, Some(slot(1)));
        assert_eq!(c.location(bat(1)), Some(&rider(5)));
        assert_eq!(c.occupant(CabinetId(1), 1), None);
        assert_eq!(c.held_by_rider(RiderId(5)), vec![bat(1)]);
        assert_eq!(c.history(bat(1)).len(), 2);
        assert_eq!(c.battery_count(), 2);
        assert_eq!(c.locations().len(), 2);
    }

    #[test]
    fn duplicate_id_same_content_is_noop() {
        let mut c = book();
        let a = c.record(mv(2, 1, slot(1), rider(5)), t0()).unwrap();
        let before = c.clone();
        let b = c
            .record(
                mv(2, 1, slot(1), rider(5)),
                t0() + chrono::Duration::seconds(5),
            )
            .unwrap();
        assert!(b.duplicate);
        assert_eq!(a.event, b.event);
        assert_eq!(c, before);
    }

    #[test]
    fn duplicate_id_other_content_is_conflict() {
        let mut c = book();
        c.record(mv(2, 1, slot(1), rider(5)), t0()).unwrap();
        let before = c.clone();
        let e = c.record(mv(2, 1, rider(5), slot(2)), t0()).unwrap_err();
        assert!(matches!(e, CustodyError::IdConflict { .. }));
        assert_eq!(c, before);
    }

    #[test]
    fn impossible_moves_are_refused_and_change_nothing() {
        let mut c = book();
        let before = c.clone();
        // not in that slot
        let e = c.record(mv(3, 2, slot(1), rider(5)), t0()).unwrap_err();
        assert!(matches!(e, CustodyError::NotThere { .. }), "{e}");
        // slot occupied
        let e = c.record(mv(4, 2, rider(9), slot(1)), t0()).unwrap_err();
        assert!(matches!(
            e,
            CustodyError::SlotOccupied {
                occupant: 200_001,
                ..
            }
        ));
        // same place
        let e = c.record(mv(5, 2, rider(9), rider(9)), t0()).unwrap_err();
        assert!(matches!(e, CustodyError::SameLocation { .. }));
        // unknown battery
        let e = c.record(mv(6, 3, rider(9), slot(4)), t0()).unwrap_err();
        assert!(matches!(
            e,
            CustodyError::UnknownBattery { battery: 200_003 }
        ));
        // registering twice
        let e = c
            .record(
                MoveRequest::register(MoveId::new(7, 0), bat(1), slot(3)),
                t0(),
            )
            .unwrap_err();
        assert!(matches!(e, CustodyError::AlreadyRegistered { .. }));
        // not a battery
        let dtu = DeviceNo::new(20_001).unwrap();
        let e = c
            .record(MoveRequest::register(MoveId::new(8, 0), dtu, slot(3)), t0())
            .unwrap_err();
        assert!(matches!(e, CustodyError::NotABattery { number: 20_001 }));
        assert_eq!(c, before);
        // retired batteries never move
        c.record(mv(9, 2, rider(9), Location::Retired), t0())
            .unwrap();
        let e = c
            .record(mv(10, 2, Location::Retired, rider(9)), t0())
            .unwrap_err();
        assert!(matches!(e, CustodyError::Retired { .. }));
        assert!(e.to_string().contains("retired"));
    }

    #[test]
    fn anywhere_moves_record_the_actual_origin() {
        let mut c = book();
        let r = c
            .record(
                MoveRequest {
                    id: MoveId::new(3, 0),
                    battery: bat(2),
                    from: Origin::Anywhere,
                    to: slot(7),
                    cause: Cause::DeviceReport { order: None },
                },
                t0(),
            )
            .unwrap();
        assert_eq!(r.event.from, Some(rider(9)));
        let e = c
            .record(
                MoveRequest {
                    id: MoveId::new(4, 0),
                    battery: bat(3),
                    from: Origin::Anywhere,
                    to: slot(8),
                    cause: Cause::Manual,
                },
                t0(),
            )
            .unwrap_err();
        assert!(matches!(e, CustodyError::UnknownBattery { .. }));
    }

    #[test]
    fn serde_round_trip_is_identical() {
        let mut c = book();
        c.record(mv(2, 1, slot(1), rider(5)), t0()).unwrap();
        let json = serde_json::to_string(&c).unwrap();
        let back: Custody = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        let bytes = postcard::to_allocvec(&c).unwrap();
        let back: Custody = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, c);
        // a corrupt log (a move of an unknown battery) is refused
        let bad = r#"{"events":[{"id":{"source":1,"seq":0},"battery":200001,"from":"retired","to":"retired","cause":"manual","at":"2025-03-01T08:00:00Z"}]}"#;
        assert!(serde_json::from_str::<Custody>(bad).is_err());
    }

    proptest! {
        /// Random moves: the book never loses or duplicates a battery, every
        /// slot holds at most one, and refused moves change nothing.
        #[test]
        fn conservation(ops in proptest::collection::vec((0u32..6, 0u8..12, 0u8..12, any::<bool>()), 1..80)) {
            let places: Vec<Location> = (1..=4).map(slot)
                .chain((1..=3).map(rider))
                .chain([Location::Store { store: StoreId(1) }, Location::Maintenance { work_order: 1 }, Location::Transit { shipment: 2 }, Location::Retired, slot(5)])
                .collect();
            let mut c = Custody::new();
            for b in 0..6u32 {
                let _ = c.record(MoveRequest::register(MoveId::new(0, b), bat(b + 1), places[usize::try_from(b).unwrap()].clone()), t0());
            }
            let n = c.battery_count();
            for (i, (b, f, t, exact)) in ops.into_iter().enumerate() {
                let before = c.clone();
                let req = MoveRequest {
                    id: MoveId::new(100 + i as u64, 0),
                    battery: bat(b + 1),
                    from: if exact { Origin::Exactly { location: places[usize::from(f)].clone() } } else { Origin::Anywhere },
                    to: places[usize::from(t)].clone(),
                    cause: Cause::Manual,
                };
                if c.record(req, t0()).is_err() {
                    prop_assert_eq!(&c, &before);
                }
                prop_assert_eq!(c.battery_count(), n);
                let mut seen = std::collections::HashSet::new();
                for (b, l) in c.locations() {
                    if let Some(k) = slot_key(&l) {
                        prop_assert!(seen.insert(k));
                        prop_assert_eq!(c.occupant(k.0, k.1), Some(b));
                    }
                }
                prop_assert_eq!(c.slots.len(), seen.len());
                let replayed = Custody::replay(c.events().to_vec()).unwrap();
                prop_assert_eq!(&replayed, &c);
            }
        }
    }
}
