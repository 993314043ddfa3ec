//! A pure simulator of a cabinet's slot boards: requests in, responses out,
//! following the register map of [`map`](super::map). No I/O: the tokio
//! servers, the tests and the cabinet simulator wrap it.
//!
//! ```
//! use chargeswap_protocol::modbus::{Request, Response};
//! use chargeswap_protocol::modbus::map::{DoorState, SlotCommand, SlotBoardStatus};
//! use chargeswap_protocol::modbus::slave::CabinetSim;
//!
//! let mut cab = CabinetSim::new(4);                       // units 1..=4
//! let rsp = cab.handle(2, &SlotCommand::OpenDoor.to_request());
//! assert_eq!(rsp, Some(Response::WriteSingleRegister { address: 0x0101, value: 1 }));
//! assert_eq!(cab.slot(2).map(|s| s.status.door), Some(DoorState::Open));
//! assert_eq!(cab.handle(9, &SlotBoardStatus::read_request()), None); // no such unit: silence
//! ```

use std::collections::BTreeMap;

use chargeswap_core::numbering::DeviceNo;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::map::{
    BATTERY_NO_ADDRESS, BMS_STATUS_ADDRESS, BmsStatus, CHARGER_REGISTER, DOOR_REGISTER, DoorState,
    LockState, SLOT_CONTROL_ADDRESS, SLOT_STATUS_ADDRESS, SlotBoardStatus, SlotControl,
    battery_no_from_registers, battery_no_to_registers,
};
use super::{ExceptionCode, Request, Response};

/// One simulated slot board and the battery in its slot, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotSim {
    /// The status block the board reports.
    pub status: SlotBoardStatus,
    /// The control block.
    pub control: SlotControl,
    /// The battery's BMS block, when a battery is in the slot.
    pub battery: Option<BmsStatus>,
}

impl Default for SlotSim {
    fn default() -> Self {
        SlotSim {
            status: SlotBoardStatus {
                door: DoorState::Closed,
                lock: LockState::Locked,
                occupied: false,
                battery_present: false,
                charger_on: false,
                charger_voltage: Decimal::new(0, 2),
                charger_current: Decimal::new(0, 2),
            },
            control: SlotControl {
                charger_enabled: false,
                door_open_pending: false,
            },
            battery: None,
        }
    }
}

fn read(block: &[u16], base: u16, address: u16, quantity: u16) -> Option<Vec<u16>> {
    let from = usize::from(address.checked_sub(base)?);
    block
        .get(from..from.checked_add(usize::from(quantity))?)
        .map(<[u16]>::to_vec)
}

impl SlotSim {
    /// Puts a battery in the slot: occupied, present, BMS block answering.
    pub fn insert_battery(&mut self, bms: BmsStatus) {
        self.status.occupied = true;
        self.status.battery_present = true;
        self.battery = Some(bms);
    }

    /// Takes the battery out.
    pub fn remove_battery(&mut self) -> Option<BmsStatus> {
        self.status.occupied = false;
        self.status.battery_present = false;
        self.battery.take()
    }

    /// Closes and latches the door.
    pub fn close_door(&mut self) {
        self.status.door = DoorState::Closed;
        self.status.lock = LockState::Locked;
    }

    fn input_block(&self, address: u16, quantity: u16) -> Option<Vec<u16>> {
        if let Ok(regs) = self.status.to_registers() {
            if let Some(v) = read(&regs, SLOT_STATUS_ADDRESS, address, quantity) {
                return Some(v);
            }
        }
        let regs = self.battery.as_ref()?.to_registers().ok()?;
        read(&regs, BMS_STATUS_ADDRESS, address, quantity)
    }

    fn holding_block(&self, address: u16, quantity: u16) -> Option<Vec<u16>> {
        if let Some(v) = read(
            &self.control.to_registers(),
            SLOT_CONTROL_ADDRESS,
            address,
            quantity,
        ) {
            return Some(v);
        }
        let b = self.battery.as_ref()?;
        read(
            &battery_no_to_registers(b.battery_no),
            BATTERY_NO_ADDRESS,
            address,
            quantity,
        )
    }

    fn write(&mut self, address: u16, values: &[u16]) -> Result<(), ExceptionCode> {
        match (address, values) {
            (CHARGER_REGISTER, [v @ (0 | 1)]) => {
                let on = *v == 1;
                self.control.charger_enabled = on;
                self.status.charger_on = on && self.status.battery_present;
                Ok(())
            }
            (DOOR_REGISTER, [1]) => {
                // The latch fires at once in the simulator, so the command is never pending.
                self.status.door = DoorState::Open;
                self.status.lock = LockState::Unlocked;
                self.control.door_open_pending = false;
                Ok(())
            }
            (DOOR_REGISTER, [0]) => Ok(()),
            (CHARGER_REGISTER | DOOR_REGISTER, _) => Err(ExceptionCode::ILLEGAL_DATA_VALUE),
            (BATTERY_NO_ADDRESS, [hi, lo]) => {
                let bms = self
                    .battery
                    .as_mut()
                    .ok_or(ExceptionCode::ILLEGAL_DATA_ADDRESS)?;
                bms.battery_no = battery_no_from_registers(*hi, *lo)
                    .map_err(|_| ExceptionCode::ILLEGAL_DATA_VALUE)?;
                Ok(())
            }
            _ => Err(ExceptionCode::ILLEGAL_DATA_ADDRESS),
        }
    }

    /// Answers one request addressed to this board.
    pub fn handle(&mut self, request: &Request) -> Response {
        let exception = |exception| Response::Exception {
            function_code: request.function_code(),
            exception,
        };
        match request {
            Request::ReadInputRegisters { address, quantity } => {
                match self.input_block(*address, *quantity) {
                    Some(registers) => Response::ReadInputRegisters { registers },
                    None => exception(ExceptionCode::ILLEGAL_DATA_ADDRESS),
                }
            }
            Request::ReadHoldingRegisters { address, quantity } => {
                match self.holding_block(*address, *quantity) {
                    Some(registers) => Response::ReadHoldingRegisters { registers },
                    None => exception(ExceptionCode::ILLEGAL_DATA_ADDRESS),
                }
            }
            Request::WriteSingleRegister { address, value } => {
                match self.write(*address, &[*value]) {
                    Ok(()) => Response::WriteSingleRegister {
                        address: *address,
                        value: *value,
                    },
                    Err(e) => exception(e),
                }
            }
            Request::WriteMultipleRegisters { address, values } => {
                match self.write(*address, values) {
                    Ok(()) => Response::WriteMultipleRegisters {
                        address: *address,
                        quantity: values.len() as u16,
                    },
                    Err(e) => exception(e),
                }
            }
        }
    }
}

/// The slot boards of one cabinet, by unit address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CabinetSim {
    /// Slot boards by unit address (= slot number).
    pub slots: BTreeMap<u8, SlotSim>,
}

impl CabinetSim {
    /// A cabinet with `slots` empty slots at units 1..=slots.
    pub fn new(slots: u8) -> Self {
        CabinetSim {
            slots: (1..=slots).map(|u| (u, SlotSim::default())).collect(),
        }
    }

    /// The board at `unit`.
    pub fn slot(&self, unit: u8) -> Option<&SlotSim> {
        self.slots.get(&unit)
    }

    /// The board at `unit`, to change its state.
    pub fn slot_mut(&mut self, unit: u8) -> Option<&mut SlotSim> {
        self.slots.get_mut(&unit)
    }

    /// Answers a request to `unit`. `None` when nobody answers: no board at
    /// that unit, or a broadcast (unit 0), which every board executes silently.
    pub fn handle(&mut self, unit: u8, request: &Request) -> Option<Response> {
        if unit == 0 {
            if matches!(
                request,
                Request::WriteSingleRegister { .. } | Request::WriteMultipleRegisters { .. }
            ) {
                for s in self.slots.values_mut() {
                    s.handle(request);
                }
            }
            return None;
        }
        self.slots.get_mut(&unit).map(|s| s.handle(request))
    }

    /// A sample battery for simulations and tests: number `battery_no`,
    /// 16 cells at 3.300 V, 52.80 V, charging at 5.00 A, SOC `soc` %.
    pub fn sample_battery(battery_no: Option<DeviceNo>, soc: u8) -> BmsStatus {
        BmsStatus {
            battery_no,
            pack_voltage: Decimal::new(5280, 2),
            pack_current: Decimal::new(500, 2),
            soc: soc.min(100),
            soh: 98,
            cycles: 120,
            cell_voltages: vec![Decimal::new(3300, 3); 16],
            temperatures: vec![Decimal::new(251, 1), Decimal::new(248, 1)],
            protection: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::map::{BMS_STATUS_LEN, SlotCommand};

    #[test]
    fn reads_follow_the_map() {
        let mut cab = CabinetSim::new(2);
        let bms = CabinetSim::sample_battery(DeviceNo::new(200_002).ok(), 80);
        cab.slot_mut(1).unwrap().insert_battery(bms.clone());
        let Some(Response::ReadInputRegisters { registers }) =
            cab.handle(1, &SlotBoardStatus::read_request())
        else {
            panic!("no status")
        };
        let s = SlotBoardStatus::from_registers(&registers).unwrap();
        assert!(s.occupied && s.battery_present && !s.charger_on);
        let Some(Response::ReadInputRegisters { registers }) =
            cab.handle(1, &BmsStatus::read_request())
        else {
            panic!("no bms")
        };
        assert_eq!(registers.len(), usize::from(BMS_STATUS_LEN));
        assert_eq!(BmsStatus::from_registers(&registers).unwrap(), bms);
        // a sub-range inside a block is fine; one across blocks is not
        assert_eq!(
            cab.handle(
                1,
                &Request::ReadInputRegisters {
                    address: 0x1004,
                    quantity: 1
                }
            ),
            Some(Response::ReadInputRegisters {
                registers: vec![80]
            })
        );
        assert_eq!(
            cab.handle(
                2,
                &Request::ReadInputRegisters {
                    address: 0x1000,
                    quantity: 2
                }
            ),
            Some(Response::Exception {
                function_code: 4,
                exception: ExceptionCode::ILLEGAL_DATA_ADDRESS
            })
        );
        assert_eq!(
            cab.handle(
                1,
                &Request::ReadInputRegisters {
                    address: 0x0005,
                    quantity: 3
                }
            ),
            Some(Response::Exception {
                function_code: 4,
                exception: ExceptionCode::ILLEGAL_DATA_ADDRESS
            })
        );
    }

    #[test]
    fn writes_change_state_or_are_refused() {
        let mut cab = CabinetSim::new(1);
        cab.slot_mut(1)
            .unwrap()
            .insert_battery(CabinetSim::sample_battery(None, 10));
        cab.handle(1, &SlotCommand::SetCharger { on: true }.to_request());
        assert!(cab.slot(1).unwrap().status.charger_on);
        assert_eq!(
            cab.handle(
                1,
                &Request::WriteSingleRegister {
                    address: CHARGER_REGISTER,
                    value: 2
                }
            ),
            Some(Response::Exception {
                function_code: 6,
                exception: ExceptionCode::ILLEGAL_DATA_VALUE
            })
        );
        let n = DeviceNo::new(300_000).ok();
        let rsp = cab.handle(1, &crate::modbus::map::write_battery_no_request(n));
        assert_eq!(
            rsp,
            Some(Response::WriteMultipleRegisters {
                address: BATTERY_NO_ADDRESS,
                quantity: 2
            })
        );
        assert_eq!(cab.slot(1).unwrap().battery.as_ref().unwrap().battery_no, n);
        // broadcast: executed, no answer
        assert_eq!(cab.handle(0, &SlotCommand::OpenDoor.to_request()), None);
        assert_eq!(cab.slot(1).unwrap().status.door, DoorState::Open);
        cab.slot_mut(1).unwrap().close_door();
        assert_eq!(cab.slot(1).unwrap().status.lock, LockState::Locked);
    }
}
