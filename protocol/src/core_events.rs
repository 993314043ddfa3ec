//! The bridge from the normalized protocol events ([`crate::event`]) to the
//! input vocabulary of the core operation machines
//! ([`chargeswap_core::cabinet`]). Core does not depend on this crate; the
//! host calls [`to_core`] on every decoded event and feeds the results to the
//! swap, charging or rental session of the cabinet.
//!
//! | protocol `EventKind` | core `DeviceEvent` |
//! |---|---|
//! | `door_opened`, `door_closed`, `door_failed` | same (the failure reason stays in the protocol event) |
//! | `battery_inserted`, `battery_removed` | same; `bms` becomes `BmsSummary { soc, temp_dc, faults = protection }` |
//! | `slot_status` | one `slot_status` per slot (`charging`/`full` → `battery`, `fault` → `faulty`) |
//! | `online` | `online` |
//! | heartbeat, alarm, swap result, time sync, command result | nothing (the host handles them) |
//!
//! The message id becomes the core `seq` when it is numeric (CSP), so the
//! machines drop stale and duplicated reports; textual vendor ids give no
//! `seq` and the machines fall back to comparing content.
//!
//! ```
//! use chargeswap_core::numbering::DeviceNo;
//! use chargeswap_protocol::core_events::to_core;
//! use chargeswap_protocol::event::{CabinetEvent, EventKind, MessageId};
//!
//! let ev = CabinetEvent {
//!     device_no: DeviceNo::new(20_001)?,
//!     message_id: MessageId::Seq(42),
//!     authenticated: true,
//!     event: EventKind::DoorClosed { slot: 3 },
//! };
//! let core = to_core(&ev);
//! assert_eq!(core.len(), 1);
//! assert_eq!(core[0].seq, Some(42));
//! assert_eq!(core[0].event, chargeswap_core::cabinet::DeviceEvent::DoorClosed { slot: 3 });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use chargeswap_core::cabinet::{self as cab, DeviceEvent};
use chargeswap_core::custody::CabinetId;

use crate::event::{BmsSummary, CabinetEvent, EventKind, MessageId, SlotReport, SlotState};

/// The core BMS summary of a protocol one.
pub fn bms(b: &BmsSummary) -> cab::BmsSummary {
    cab::BmsSummary {
        soc: b.soc_pct,
        temp_dc: b.temp_dc,
        faults: u32::from(b.protection),
    }
}

/// The core slot state of one slot of a status report. Status reports carry
/// no battery model: the host fills it in from its asset registry before it
/// builds a [`cab::CabinetSnapshot`] (an empty model matches no package).
pub fn slot_state(r: &SlotReport) -> cab::SlotState {
    match (r.state, r.battery) {
        (SlotState::Empty, _) => cab::SlotState::Empty,
        (SlotState::Locked, _) => cab::SlotState::Locked,
        (SlotState::Fault, _) => cab::SlotState::Faulty,
        (SlotState::Charging | SlotState::Full, Some(b)) => cab::SlotState::Battery {
            battery: Some(b.battery),
            model: String::new(),
            bms: Some(cab::BmsSummary {
                soc: b.soc_pct,
                temp_dc: b.temp_dc,
                faults: 0,
            }),
        },
        (SlotState::Charging | SlotState::Full, None) => cab::SlotState::Battery {
            battery: None,
            model: String::new(),
            bms: None,
        },
    }
}

/// Maps one protocol event onto core device events (none, one, or one per
/// slot of a status report).
pub fn to_core(ev: &CabinetEvent) -> Vec<cab::CabinetEvent> {
    let cabinet = CabinetId(u64::from(ev.device_no.get()));
    let seq = match ev.message_id {
        MessageId::Seq(n) => Some(u64::from(n)),
        MessageId::Text(_) => None,
    };
    let one = |event| {
        vec![cab::CabinetEvent {
            cabinet,
            seq,
            event,
        }]
    };
    match &ev.event {
        EventKind::DoorOpened { slot, .. } => one(DeviceEvent::DoorOpened {
            slot: u16::from(*slot),
        }),
        EventKind::DoorClosed { slot } => one(DeviceEvent::DoorClosed {
            slot: u16::from(*slot),
        }),
        EventKind::DoorFailed { slot, .. } => one(DeviceEvent::DoorFailed {
            slot: u16::from(*slot),
        }),
        EventKind::BatteryInserted {
            slot,
            battery,
            bms: b,
        } => one(DeviceEvent::BatteryInserted {
            slot: u16::from(*slot),
            battery: Some(*battery),
            bms: b.as_ref().map(bms),
        }),
        EventKind::BatteryRemoved { slot, battery, .. } => one(DeviceEvent::BatteryRemoved {
            slot: u16::from(*slot),
            battery: Some(*battery),
        }),
        EventKind::SlotStatus { slots } => slots
            .iter()
            .map(|r| cab::CabinetEvent {
                cabinet,
                seq,
                event: DeviceEvent::SlotStatus {
                    slot: u16::from(r.slot),
                    state: slot_state(r),
                },
            })
            .collect(),
        EventKind::Online { .. } => one(DeviceEvent::Online),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SlotBattery;
    use chargeswap_core::numbering::DeviceNo;

    fn ev(message_id: MessageId, event: EventKind) -> CabinetEvent {
        CabinetEvent {
            device_no: DeviceNo::new(20_001).unwrap(),
            message_id,
            authenticated: false,
            event,
        }
    }

    #[test]
    fn battery_events_keep_number_bms_and_sequence() {
        let b = DeviceNo::new(200_001).unwrap();
        let summary = BmsSummary {
            soc_pct: 12,
            soh_pct: 98,
            pack_mv: 48_000,
            current_ma: 0,
            temp_dc: 253,
            cycles: 10,
            cell_min_mv: 3_300,
            cell_max_mv: 3_310,
            protection: 0b100,
        };
        let out = to_core(&ev(
            MessageId::Seq(7),
            EventKind::BatteryInserted {
                slot: 2,
                battery: b,
                bms: Some(summary),
            },
        ));
        assert_eq!(
            out,
            vec![cab::CabinetEvent {
                cabinet: CabinetId(20_001),
                seq: Some(7),
                event: DeviceEvent::BatteryInserted {
                    slot: 2,
                    battery: Some(b),
                    bms: Some(cab::BmsSummary {
                        soc: 12,
                        temp_dc: 253,
                        faults: 4
                    }),
                },
            }]
        );
        let out = to_core(&ev(
            MessageId::Text("m-1".into()),
            EventKind::BatteryRemoved {
                slot: 2,
                battery: b,
                bms: None,
            },
        ));
        assert_eq!(out[0].seq, None);
    }

    #[test]
    fn status_reports_become_one_event_per_slot() {
        let b = DeviceNo::new(200_002).unwrap();
        let slots = vec![
            SlotReport {
                slot: 1,
                state: SlotState::Empty,
                battery: None,
            },
            SlotReport {
                slot: 2,
                state: SlotState::Full,
                battery: Some(SlotBattery {
                    battery: b,
                    soc_pct: 99,
                    voltage_mv: 54_000,
                    temp_dc: 280,
                }),
            },
            SlotReport {
                slot: 3,
                state: SlotState::Fault,
                battery: None,
            },
            SlotReport {
                slot: 4,
                state: SlotState::Locked,
                battery: None,
            },
        ];
        let out = to_core(&ev(MessageId::Seq(1), EventKind::SlotStatus { slots }));
        let states: Vec<_> = out
            .iter()
            .map(|e| match &e.event {
                DeviceEvent::SlotStatus { state, .. } => state.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(states[0], cab::SlotState::Empty);
        assert!(matches!(
            &states[1],
            cab::SlotState::Battery { battery: Some(x), bms: Some(m), .. } if *x == b && m.soc == 99
        ));
        assert_eq!(states[2], cab::SlotState::Faulty);
        assert_eq!(states[3], cab::SlotState::Locked);
    }

    #[test]
    fn other_events_map_to_nothing() {
        let out = to_core(&ev(
            MessageId::Seq(1),
            EventKind::Heartbeat {
                uptime_s: 5,
                rssi_dbm: None,
            },
        ));
        assert!(out.is_empty());
    }
}
