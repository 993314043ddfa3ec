//! The register map of a cabinet's slot board and of a battery's BMS, in
//! real units. The full table with scaling is docs/protocol/modbus-map.md.
//!
//! Each slot has one slot board on the RS-485 bus, at unit address = slot
//! number (1–247). The board also relays its battery's BMS registers, so one
//! unit answers both blocks.
//!
//! | block              | function  | address         | registers |
//! |--------------------|-----------|-----------------|-----------|
//! | slot status        | 0x04      | 0x0000–0x0006   | 7         |
//! | slot control       | 0x03/0x06 | 0x0100–0x0101   | 2         |
//! | BMS status         | 0x04      | 0x1000–0x102F   | 48        |
//! | battery number     | 0x03/0x10 | 0x1100–0x1101   | 2         |
//!
//! Scaling: voltages 0.01 V per bit (cells 0.001 V), currents 0.01 A per bit
//! (pack current signed, positive = charging), temperatures 0.1 °C per bit
//! signed, SOC and SOH 1 % per bit. Decoded values are exact decimals
//! ([`Decimal`]) with the register's scale, so `5312` in the pack voltage
//! register is `53.12` V; encoding refuses a value that is not a whole number
//! of steps or does not fit the register.
//!
//! ```
//! use chargeswap_protocol::modbus::map::{DoorState, SlotBoardStatus};
//! let regs = [1, 1, 1, 1, 1, 5460, 250];
//! let s = SlotBoardStatus::from_registers(&regs)?;
//! assert_eq!(s.door, DoorState::Open);
//! assert_eq!(s.charger_voltage.to_string(), "54.60");
//! assert_eq!(s.charger_current.to_string(), "2.50");
//! assert_eq!(s.to_registers()?, regs);
//! # Ok::<(), chargeswap_protocol::modbus::ModbusError>(())
//! ```

use chargeswap_core::numbering::{DeviceClass, DeviceNo};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use super::{ModbusError, Request};

/// First input register of the slot status block.
pub const SLOT_STATUS_ADDRESS: u16 = 0x0000;
/// Registers in the slot status block.
pub const SLOT_STATUS_LEN: u16 = 7;
/// First holding register of the slot control block.
pub const SLOT_CONTROL_ADDRESS: u16 = 0x0100;
/// Registers in the slot control block.
pub const SLOT_CONTROL_LEN: u16 = 2;
/// Holding register: charger enable (0 off, 1 on).
pub const CHARGER_REGISTER: u16 = 0x0100;
/// Holding register: door command (write 1 to unlock; reads 1 while pending).
pub const DOOR_REGISTER: u16 = 0x0101;
/// First input register of the BMS status block.
pub const BMS_STATUS_ADDRESS: u16 = 0x1000;
/// Registers in the BMS status block.
pub const BMS_STATUS_LEN: u16 = 48;
/// First holding register of the battery number (high word, then low word).
pub const BATTERY_NO_ADDRESS: u16 = 0x1100;
/// Most cell voltages the BMS block holds.
pub const MAX_CELLS: usize = 24;
/// Most temperature probes the BMS block holds.
pub const MAX_TEMPERATURES: usize = 8;

const CELLS_OFFSET: usize = 16;
const TEMPS_OFFSET: usize = 40;

/// Door sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorState {
    /// 0: closed.
    Closed,
    /// 1: open.
    Open,
}

/// Lock (latch) state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockState {
    /// 0: latched.
    Locked,
    /// 1: released.
    Unlocked,
}

/// The slot status block: input registers 0x0000–0x0006.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SlotBoardStatus {
    /// 0x0000: door sensor.
    pub door: DoorState,
    /// 0x0001: lock state.
    pub lock: LockState,
    /// 0x0002: something is in the slot (IR / microswitch), 0 or 1.
    pub occupied: bool,
    /// 0x0003: a battery is connected (its BMS answers on the connector), 0 or 1.
    pub battery_present: bool,
    /// 0x0004: the charger relay is on, 0 or 1.
    pub charger_on: bool,
    /// 0x0005: charger output voltage, volts, 0.01 V per bit, 0–655.35.
    pub charger_voltage: Decimal,
    /// 0x0006: charger output current, amps, 0.01 A per bit, 0–655.35.
    pub charger_current: Decimal,
}

/// The slot control block: holding registers 0x0100–0x0101.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SlotControl {
    /// 0x0100: the platform wants the charger on.
    pub charger_enabled: bool,
    /// 0x0101: a door-open command is pending (the board clears it once the latch fired).
    pub door_open_pending: bool,
}

/// A command to a slot board, written with function 0x06.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum SlotCommand {
    /// Write 1 to 0x0101: release the latch.
    OpenDoor,
    /// Write 0 or 1 to 0x0100.
    SetCharger {
        /// On or off.
        on: bool,
    },
}

impl SlotCommand {
    /// The request that carries the command.
    ///
    /// ```
    /// use chargeswap_protocol::modbus::{Request, map::SlotCommand};
    /// assert_eq!(SlotCommand::OpenDoor.to_request(),
    ///            Request::WriteSingleRegister { address: 0x0101, value: 1 });
    /// ```
    pub fn to_request(self) -> Request {
        match self {
            SlotCommand::OpenDoor => Request::WriteSingleRegister {
                address: DOOR_REGISTER,
                value: 1,
            },
            SlotCommand::SetCharger { on } => Request::WriteSingleRegister {
                address: CHARGER_REGISTER,
                value: u16::from(on),
            },
        }
    }
}

/// BMS protection flags: input register 0x1009, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProtectionFlags {
    /// Bit 0: a cell above its overvoltage limit.
    pub cell_overvoltage: bool,
    /// Bit 1: a cell below its undervoltage limit.
    pub cell_undervoltage: bool,
    /// Bit 2: pack overvoltage.
    pub pack_overvoltage: bool,
    /// Bit 3: pack undervoltage.
    pub pack_undervoltage: bool,
    /// Bit 4: too hot to charge.
    pub charge_overtemperature: bool,
    /// Bit 5: too cold to charge.
    pub charge_undertemperature: bool,
    /// Bit 6: too hot to discharge.
    pub discharge_overtemperature: bool,
    /// Bit 7: too cold to discharge.
    pub discharge_undertemperature: bool,
    /// Bit 8: charge overcurrent.
    pub charge_overcurrent: bool,
    /// Bit 9: discharge overcurrent.
    pub discharge_overcurrent: bool,
    /// Bit 10: short circuit.
    pub short_circuit: bool,
    /// Bit 11: analog front-end IC error.
    pub frontend_error: bool,
    /// Bit 12: MOSFETs locked off by software.
    pub mosfet_locked: bool,
    /// Bits 13–15 as found (reserved; kept so blocks round-trip).
    pub reserved_bits: u16,
}

const FLAG_COUNT: u16 = 13;

impl ProtectionFlags {
    fn bits(&self) -> [bool; FLAG_COUNT as usize] {
        [
            self.cell_overvoltage,
            self.cell_undervoltage,
            self.pack_overvoltage,
            self.pack_undervoltage,
            self.charge_overtemperature,
            self.charge_undertemperature,
            self.discharge_overtemperature,
            self.discharge_undertemperature,
            self.charge_overcurrent,
            self.discharge_overcurrent,
            self.short_circuit,
            self.frontend_error,
            self.mosfet_locked,
        ]
    }

    /// The flags of a register value.
    ///
    /// ```
    /// use chargeswap_protocol::modbus::map::ProtectionFlags;
    /// let f = ProtectionFlags::from_register(0b0000_0100_0000_0001);
    /// assert!(f.cell_overvoltage && f.short_circuit && !f.any_reserved());
    /// assert_eq!(f.to_register(), 0x0401);
    /// ```
    pub fn from_register(r: u16) -> Self {
        let b = |n: u16| r & (1 << n) != 0;
        ProtectionFlags {
            cell_overvoltage: b(0),
            cell_undervoltage: b(1),
            pack_overvoltage: b(2),
            pack_undervoltage: b(3),
            charge_overtemperature: b(4),
            charge_undertemperature: b(5),
            discharge_overtemperature: b(6),
            discharge_undertemperature: b(7),
            charge_overcurrent: b(8),
            discharge_overcurrent: b(9),
            short_circuit: b(10),
            frontend_error: b(11),
            mosfet_locked: b(12),
            reserved_bits: r & !((1 << FLAG_COUNT) - 1),
        }
    }

    /// The register value (reserved bits outside 13–15 are dropped).
    pub fn to_register(&self) -> u16 {
        let mut r = self.reserved_bits & !((1 << FLAG_COUNT) - 1);
        for (i, on) in self.bits().iter().enumerate() {
            if *on {
                r |= 1 << i;
            }
        }
        r
    }

    /// Whether any protection is active.
    pub fn any(&self) -> bool {
        self.bits().iter().any(|b| *b)
    }

    /// Whether reserved bits are set.
    pub fn any_reserved(&self) -> bool {
        self.reserved_bits != 0
    }
}

/// The BMS status block: input registers 0x1000–0x102F.
///
/// | offset | address       | field              | scaling                             |
/// |--------|---------------|--------------------|-------------------------------------|
/// | 0–1    | 0x1000–0x1001 | battery number     | u32, high word first; 0 = none      |
/// | 2      | 0x1002        | pack voltage       | u16, 0.01 V                         |
/// | 3      | 0x1003        | pack current       | i16, 0.01 A, + charging             |
/// | 4      | 0x1004        | SOC                | 0–100 %                             |
/// | 5      | 0x1005        | SOH                | 0–100 %                             |
/// | 6      | 0x1006        | cycles             | u16                                 |
/// | 7      | 0x1007        | cell count n       | 0–24                                |
/// | 8      | 0x1008        | temperature count m| 0–8                                 |
/// | 9      | 0x1009        | protection flags   | [`ProtectionFlags`]                 |
/// | 10–15  | 0x100A–0x100F | reserved           | written 0, ignored when read        |
/// | 16–39  | 0x1010–0x1027 | cell voltages      | u16, 0.001 V; first n used          |
/// | 40–47  | 0x1028–0x102F | temperatures       | i16, 0.1 °C; first m used           |
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BmsStatus {
    /// The battery's device number (battery class), `None` if not programmed (0).
    pub battery_no: Option<DeviceNo>,
    /// Pack voltage, volts (0.01 V steps, 0–655.35).
    pub pack_voltage: Decimal,
    /// Pack current, amps (0.01 A steps, −327.68–327.67), positive while charging.
    pub pack_current: Decimal,
    /// State of charge, percent 0–100.
    pub soc: u8,
    /// State of health, percent 0–100.
    pub soh: u8,
    /// Full charge cycles.
    pub cycles: u16,
    /// Cell voltages, volts (0.001 V steps), at most 24.
    pub cell_voltages: Vec<Decimal>,
    /// Temperatures, °C (0.1 °C steps, −3276.8–3276.7), at most 8.
    pub temperatures: Vec<Decimal>,
    /// Active protections.
    pub protection: ProtectionFlags,
}

fn block_len(block: &str, regs: &[u16], expected: u16) -> Result<(), ModbusError> {
    if regs.len() == usize::from(expected) {
        Ok(())
    } else {
        Err(ModbusError::BlockLength {
            block: block.into(),
            expected: usize::from(expected),
            got: regs.len(),
        })
    }
}

fn reg(regs: &[u16], i: usize) -> u16 {
    regs.get(i).copied().unwrap_or(0)
}

fn address(base: u16, i: usize) -> u16 {
    base.saturating_add(u16::try_from(i).unwrap_or(u16::MAX))
}

fn flag(regs: &[u16], base: u16, i: usize, field: &str) -> Result<bool, ModbusError> {
    match reg(regs, i) {
        0 => Ok(false),
        1 => Ok(true),
        value => Err(ModbusError::BadRegister {
            address: address(base, i),
            field: field.into(),
            value,
            expected: "0 or 1".into(),
        }),
    }
}

fn percent(regs: &[u16], i: usize, field: &str) -> Result<u8, ModbusError> {
    match u8::try_from(reg(regs, i)) {
        Ok(v) if v <= 100 => Ok(v),
        _ => Err(ModbusError::BadRegister {
            address: address(BMS_STATUS_ADDRESS, i),
            field: field.into(),
            value: reg(regs, i),
            expected: "0 to 100 (%)".into(),
        }),
    }
}

/// `value` as a whole number of `10^-scale` steps within `min..=max`.
fn steps(
    field: &str,
    value: Decimal,
    scale: u32,
    min: i64,
    max: i64,
    unit: &str,
) -> Result<i64, ModbusError> {
    let bad = || ModbusError::BadValue {
        field: field.into(),
        value: value.to_string(),
        expected: format!(
            "{} to {} {unit} in steps of {}",
            Decimal::new(min, scale),
            Decimal::new(max, scale),
            Decimal::new(1, scale)
        ),
    };
    let n = value
        .checked_mul(Decimal::from(10i64.pow(scale)))
        .ok_or_else(bad)?;
    if !n.fract().is_zero() {
        return Err(bad());
    }
    match n.to_i64() {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(bad()),
    }
}

fn unsigned(field: &str, value: Decimal, scale: u32, unit: &str) -> Result<u16, ModbusError> {
    let v = steps(field, value, scale, 0, i64::from(u16::MAX), unit)?;
    Ok(u16::try_from(v).unwrap_or(0))
}

fn signed(field: &str, value: Decimal, scale: u32, unit: &str) -> Result<u16, ModbusError> {
    let v = steps(
        field,
        value,
        scale,
        i64::from(i16::MIN),
        i64::from(i16::MAX),
        unit,
    )?;
    Ok(i16::try_from(v).unwrap_or(0) as u16)
}

impl SlotBoardStatus {
    /// The request that reads this block.
    pub fn read_request() -> Request {
        Request::ReadInputRegisters {
            address: SLOT_STATUS_ADDRESS,
            quantity: SLOT_STATUS_LEN,
        }
    }

    /// Decodes the 7 registers of the block.
    pub fn from_registers(regs: &[u16]) -> Result<Self, ModbusError> {
        block_len("slot status", regs, SLOT_STATUS_LEN)?;
        let b = SLOT_STATUS_ADDRESS;
        Ok(SlotBoardStatus {
            door: if flag(regs, b, 0, "door")? {
                DoorState::Open
            } else {
                DoorState::Closed
            },
            lock: if flag(regs, b, 1, "lock")? {
                LockState::Unlocked
            } else {
                LockState::Locked
            },
            occupied: flag(regs, b, 2, "occupied")?,
            battery_present: flag(regs, b, 3, "battery_present")?,
            charger_on: flag(regs, b, 4, "charger_on")?,
            charger_voltage: Decimal::new(i64::from(reg(regs, 5)), 2),
            charger_current: Decimal::new(i64::from(reg(regs, 6)), 2),
        })
    }

    /// Encodes the block's 7 registers.
    pub fn to_registers(&self) -> Result<Vec<u16>, ModbusError> {
        Ok(vec![
            u16::from(self.door == DoorState::Open),
            u16::from(self.lock == LockState::Unlocked),
            u16::from(self.occupied),
            u16::from(self.battery_present),
            u16::from(self.charger_on),
            unsigned("charger_voltage", self.charger_voltage, 2, "V")?,
            unsigned("charger_current", self.charger_current, 2, "A")?,
        ])
    }
}

impl SlotControl {
    /// The request that reads this block.
    pub fn read_request() -> Request {
        Request::ReadHoldingRegisters {
            address: SLOT_CONTROL_ADDRESS,
            quantity: SLOT_CONTROL_LEN,
        }
    }

    /// Decodes the 2 registers of the block.
    pub fn from_registers(regs: &[u16]) -> Result<Self, ModbusError> {
        block_len("slot control", regs, SLOT_CONTROL_LEN)?;
        Ok(SlotControl {
            charger_enabled: flag(regs, SLOT_CONTROL_ADDRESS, 0, "charger_enabled")?,
            door_open_pending: flag(regs, SLOT_CONTROL_ADDRESS, 1, "door_open_pending")?,
        })
    }

    /// Encodes the block's 2 registers.
    pub fn to_registers(&self) -> Vec<u16> {
        vec![
            u16::from(self.charger_enabled),
            u16::from(self.door_open_pending),
        ]
    }
}

/// Decodes a battery number from its two registers (high word first); 0 means none.
///
/// ```
/// use chargeswap_protocol::modbus::map::battery_no_from_registers;
/// let n = battery_no_from_registers(0x0003, 0x0D41)?;   // 0x00030D41 = 200001
/// assert_eq!(n.map(|d| d.get()), Some(200_001));
/// assert_eq!(battery_no_from_registers(0, 0)?, None);
/// assert!(battery_no_from_registers(0, 20_001).is_err()); // a DTU number
/// # Ok::<(), chargeswap_protocol::modbus::ModbusError>(())
/// ```
pub fn battery_no_from_registers(high: u16, low: u16) -> Result<Option<DeviceNo>, ModbusError> {
    let n = (u32::from(high) << 16) | u32::from(low);
    if n == 0 {
        return Ok(None);
    }
    DeviceNo::of_class(u64::from(n), DeviceClass::Battery)
        .map(Some)
        .map_err(|e| ModbusError::BadRegister {
            address: BMS_STATUS_ADDRESS,
            field: "battery_no".into(),
            value: high,
            expected: format!("0 (none) or a battery number, 200001-5000000; {e}"),
        })
}

/// The two registers (high word first) of a battery number; `None` gives 0, 0.
pub fn battery_no_to_registers(n: Option<DeviceNo>) -> [u16; 2] {
    let v = n.map_or(0, DeviceNo::get);
    [(v >> 16) as u16, (v & 0xFFFF) as u16]
}

/// The request that programs a battery number into a BMS (function 0x10).
pub fn write_battery_no_request(n: Option<DeviceNo>) -> Request {
    Request::WriteMultipleRegisters {
        address: BATTERY_NO_ADDRESS,
        values: battery_no_to_registers(n).to_vec(),
    }
}

impl BmsStatus {
    /// The request that reads this block.
    pub fn read_request() -> Request {
        Request::ReadInputRegisters {
            address: BMS_STATUS_ADDRESS,
            quantity: BMS_STATUS_LEN,
        }
    }

    /// Decodes the 48 registers of the block.
    pub fn from_registers(regs: &[u16]) -> Result<Self, ModbusError> {
        block_len("BMS status", regs, BMS_STATUS_LEN)?;
        let count = |i: usize, field: &str, max: usize| {
            let v = reg(regs, i);
            if usize::from(v) <= max {
                Ok(usize::from(v))
            } else {
                Err(ModbusError::BadRegister {
                    address: address(BMS_STATUS_ADDRESS, i),
                    field: field.into(),
                    value: v,
                    expected: format!("0 to {max}"),
                })
            }
        };
        let cells = count(7, "cell_count", MAX_CELLS)?;
        let temps = count(8, "temperature_count", MAX_TEMPERATURES)?;
        let slice = |from: usize, n: usize| regs.get(from..from + n).unwrap_or(&[]);
        Ok(BmsStatus {
            battery_no: battery_no_from_registers(reg(regs, 0), reg(regs, 1))?,
            pack_voltage: Decimal::new(i64::from(reg(regs, 2)), 2),
            pack_current: Decimal::new(i64::from(reg(regs, 3) as i16), 2),
            soc: percent(regs, 4, "soc")?,
            soh: percent(regs, 5, "soh")?,
            cycles: reg(regs, 6),
            cell_voltages: slice(CELLS_OFFSET, cells)
                .iter()
                .map(|r| Decimal::new(i64::from(*r), 3))
                .collect(),
            temperatures: slice(TEMPS_OFFSET, temps)
                .iter()
                .map(|r| Decimal::new(i64::from(*r as i16), 1))
                .collect(),
            protection: ProtectionFlags::from_register(reg(regs, 9)),
        })
    }

    /// Encodes the block's 48 registers (reserved and unused registers are 0).
    pub fn to_registers(&self) -> Result<Vec<u16>, ModbusError> {
        let too_many = |field: &str, n: usize, max: usize| ModbusError::BadValue {
            field: field.into(),
            value: format!("{n} entries"),
            expected: format!("at most {max}"),
        };
        if self.cell_voltages.len() > MAX_CELLS {
            return Err(too_many(
                "cell_voltages",
                self.cell_voltages.len(),
                MAX_CELLS,
            ));
        }
        if self.temperatures.len() > MAX_TEMPERATURES {
            return Err(too_many(
                "temperatures",
                self.temperatures.len(),
                MAX_TEMPERATURES,
            ));
        }
        let pct = |field: &str, v: u8| {
            if v <= 100 {
                Ok(u16::from(v))
            } else {
                Err(ModbusError::BadValue {
                    field: field.into(),
                    value: v.to_string(),
                    expected: "0 to 100 (%)".into(),
                })
            }
        };
        if let Some(n) = self
            .battery_no
            .filter(|n| n.class() != DeviceClass::Battery)
        {
            return Err(ModbusError::BadValue {
                field: "battery_no".into(),
                value: n.to_string(),
                expected: "a battery number, 200001-5000000".into(),
            });
        }
        let mut r = vec![0u16; usize::from(BMS_STATUS_LEN)];
        let [hi, lo] = battery_no_to_registers(self.battery_no);
        let head = [
            hi,
            lo,
            unsigned("pack_voltage", self.pack_voltage, 2, "V")?,
            signed("pack_current", self.pack_current, 2, "A")?,
            pct("soc", self.soc)?,
            pct("soh", self.soh)?,
            self.cycles,
            self.cell_voltages.len() as u16,
            self.temperatures.len() as u16,
            self.protection.to_register(),
        ];
        for (slot, v) in r.iter_mut().zip(head) {
            *slot = v;
        }
        for (i, v) in self.cell_voltages.iter().enumerate() {
            if let Some(slot) = r.get_mut(CELLS_OFFSET + i) {
                *slot = unsigned("cell_voltages", *v, 3, "V")?;
            }
        }
        for (i, v) in self.temperatures.iter().enumerate() {
            if let Some(slot) = r.get_mut(TEMPS_OFFSET + i) {
                *slot = signed("temperatures", *v, 1, "°C")?;
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn sample_bms() -> BmsStatus {
        BmsStatus {
            battery_no: Some(DeviceNo::new(200_001).unwrap()),
            pack_voltage: d("53.12"),
            pack_current: d("-12.50"),
            soc: 87,
            soh: 96,
            cycles: 312,
            cell_voltages: vec![d("3.321"), d("3.318")],
            temperatures: vec![d("25.3"), d("-5.0")],
            protection: ProtectionFlags {
                charge_overcurrent: true,
                ..ProtectionFlags::default()
            },
        }
    }

    #[test]
    fn bms_block_by_hand() {
        let r = sample_bms().to_registers().unwrap();
        assert_eq!(r.len(), 48);
        // 200001 = 0x0003_0D41; 53.12 V = 5312; -12.50 A = -1250 = 0xFB1E
        assert_eq!(
            &r[..10],
            &[3, 0x0D41, 5312, 0xFB1E, 87, 96, 312, 2, 2, 0x0100]
        );
        assert_eq!(&r[16..18], &[3321, 3318]);
        // 25.3 °C = 253; -5.0 °C = -50 = 0xFFCE
        assert_eq!(&r[40..42], &[253, 0xFFCE]);
        assert_eq!(BmsStatus::from_registers(&r).unwrap(), sample_bms());
    }

    #[test]
    fn bad_registers_are_named() {
        let mut r = sample_bms().to_registers().unwrap();
        r[4] = 101;
        assert!(matches!(
            BmsStatus::from_registers(&r),
            Err(ModbusError::BadRegister {
                address: 0x1004,
                value: 101,
                ..
            })
        ));
        r[4] = 50;
        r[7] = 25;
        assert!(matches!(
            BmsStatus::from_registers(&r),
            Err(ModbusError::BadRegister {
                address: 0x1007,
                ..
            })
        ));
        assert!(matches!(
            SlotBoardStatus::from_registers(&[0, 2, 0, 0, 0, 0, 0]),
            Err(ModbusError::BadRegister {
                address: 1,
                value: 2,
                ..
            })
        ));
        assert!(matches!(
            SlotBoardStatus::from_registers(&[0; 6]),
            Err(ModbusError::BlockLength {
                expected: 7,
                got: 6,
                ..
            })
        ));
    }

    #[test]
    fn values_off_the_grid_are_refused() {
        let mut b = sample_bms();
        b.pack_voltage = d("53.125");
        assert!(matches!(
            b.to_registers(),
            Err(ModbusError::BadValue { ref field, .. }) if field == "pack_voltage"
        ));
        b.pack_voltage = d("655.36");
        assert!(b.to_registers().is_err());
        b.pack_voltage = d("655.35");
        b.pack_current = d("327.68");
        assert!(b.to_registers().is_err());
        b.pack_current = d("-327.68");
        assert_eq!(b.to_registers().unwrap()[3], 0x8000);
        b.soc = 101;
        assert!(b.to_registers().is_err());
        b.soc = 1;
        b.cell_voltages = vec![d("3.3"); 25];
        assert!(b.to_registers().is_err());
        b.cell_voltages = vec![];
        b.battery_no = Some(DeviceNo::new(20_001).unwrap());
        assert!(b.to_registers().is_err());
    }

    #[test]
    fn slot_command_and_control() {
        assert_eq!(
            SlotCommand::SetCharger { on: true }.to_request(),
            Request::WriteSingleRegister {
                address: 0x0100,
                value: 1
            }
        );
        let c = SlotControl::from_registers(&[1, 0]).unwrap();
        assert!(c.charger_enabled && !c.door_open_pending);
        assert_eq!(c.to_registers(), [1, 0]);
        assert_eq!(
            write_battery_no_request(DeviceNo::new(5_000_000).ok()),
            Request::WriteMultipleRegisters {
                address: 0x1100,
                values: vec![0x004C, 0x4B40]
            }
        );
    }

    #[test]
    fn reserved_protection_bits_round_trip() {
        let f = ProtectionFlags::from_register(0xE001);
        assert_eq!(f.reserved_bits, 0xE000);
        assert_eq!(f.to_register(), 0xE001);
    }
}
