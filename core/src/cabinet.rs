//! The normalized cabinet vocabulary that the operation machines consume.
//!
//! Vendors' cabinet protocols differ; the protocol crate maps each of them
//! onto one event model, and the host maps that model onto these core types
//! (core does not depend on protocol). The mapping is one-to-one: a door
//! opened, closed or failed to open; a battery inserted (with its number and a
//! BMS summary when the slot board could read them) or removed; a slot status
//! report; the cabinet going online or offline.
//!
//! ```
//! use chargeswap_core::cabinet::{CabinetEvent, DeviceEvent};
//! use chargeswap_core::custody::CabinetId;
//! let e: CabinetEvent = serde_json::from_str(r#"{"cabinet":20001,"event":{"door_opened":{"slot":3}}}"#).unwrap();
//! assert_eq!(e.cabinet, CabinetId(20001));
//! assert_eq!(e.event, DeviceEvent::DoorOpened { slot: 3 });
//! ```

use serde::{Deserialize, Serialize};

use crate::custody::{CabinetId, SlotNo};
use crate::numbering::DeviceNo;

/// What a battery's BMS said when the slot board read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BmsSummary {
    /// State of charge, percent (0-100).
    pub soc: u8,
    /// Highest pack temperature, 0.1 °C (`253` is 25.3 °C), as the
    /// protocol crate reports it.
    pub temp_dc: i16,
    /// Fault bits as the BMS reports them; 0 means no fault.
    pub faults: u32,
}

/// What is in a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotState {
    /// Nothing in it; the door works.
    Empty,
    /// A battery is in it.
    Battery {
        /// The battery number, when it could be read.
        battery: Option<DeviceNo>,
        /// The battery model (e.g. "48V20Ah").
        model: String,
        /// The BMS summary, when it could be read.
        bms: Option<BmsSummary>,
    },
    /// Locked by the platform (fault, quarantine, maintenance): never chosen.
    Locked,
    /// The slot board reports a fault: never chosen.
    Faulty,
}

/// One slot of a cabinet snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotSnapshot {
    /// The slot number.
    pub slot: SlotNo,
    /// What is in it.
    pub state: SlotState,
}

/// A cabinet as the host last saw it, passed to a machine when a session
/// starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CabinetSnapshot {
    /// The cabinet.
    pub cabinet: CabinetId,
    /// Whether the cabinet is connected.
    pub online: bool,
    /// The order of another session running at the cabinet, if any.
    pub busy_with: Option<u64>,
    /// Its slots.
    pub slots: Vec<SlotSnapshot>,
}

/// A normalized event reported by a cabinet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceEvent {
    /// A door opened.
    DoorOpened {
        /// The slot.
        slot: SlotNo,
    },
    /// A door closed.
    DoorClosed {
        /// The slot.
        slot: SlotNo,
    },
    /// A door was commanded open but did not open.
    DoorFailed {
        /// The slot.
        slot: SlotNo,
    },
    /// A battery was put into a slot.
    BatteryInserted {
        /// The slot.
        slot: SlotNo,
        /// The battery number, when the slot board could read it.
        battery: Option<DeviceNo>,
        /// The BMS summary, when it could be read.
        bms: Option<BmsSummary>,
    },
    /// A battery was taken out of a slot.
    BatteryRemoved {
        /// The slot.
        slot: SlotNo,
        /// The battery number, when known.
        battery: Option<DeviceNo>,
    },
    /// A periodic slot status report.
    SlotStatus {
        /// The slot.
        slot: SlotNo,
        /// What the slot holds.
        state: SlotState,
    },
    /// The cabinet connected.
    Online,
    /// The cabinet disconnected.
    Offline,
}

/// A device event with the cabinet that reported it.
///
/// `seq` is the cabinet's message sequence number when its protocol has one
/// (increasing per cabinet). With it, a machine drops stale and duplicated
/// messages about a slot exactly; without it, machines fall back to
/// comparing the message with what they already know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CabinetEvent {
    /// The reporting cabinet.
    pub cabinet: CabinetId,
    /// The cabinet's message sequence number, if its protocol has one.
    #[serde(default)]
    pub seq: Option<u64>,
    /// What happened.
    pub event: DeviceEvent,
}

impl DeviceEvent {
    /// The slot the event is about, if any.
    pub fn slot(&self) -> Option<SlotNo> {
        match self {
            DeviceEvent::DoorOpened { slot }
            | DeviceEvent::DoorClosed { slot }
            | DeviceEvent::DoorFailed { slot }
            | DeviceEvent::BatteryInserted { slot, .. }
            | DeviceEvent::BatteryRemoved { slot, .. }
            | DeviceEvent::SlotStatus { slot, .. } => Some(*slot),
            DeviceEvent::Online | DeviceEvent::Offline => None,
        }
    }
}
