//! Daly BMS UART protocol: fixed 13-byte frames.
//!
//! ```text
//! A5 | address | data id | 08 | data[8] | checksum
//! address:  0x40 host (UART) → BMS (0x80 and 0x20 are other hosts), 0x01 BMS → host
//! checksum: low byte of the sum of the first 12 bytes
//! ```
//!
//! Replies (address 0x01) are typed by data id, 0x90 to 0x98; any other id
//! is kept raw. Frames from any other address are requests.
//!
//! ```
//! use chargeswap_protocol::bms::daly::{DalyFrame, DalyReply};
//! // Request 0x90: A5+40+90+08 = 0x17D → checksum 0x7D.
//! assert_eq!(DalyFrame::request(0x90).encode()?,
//!     [0xA5, 0x40, 0x90, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0x7D]);
//! let reply = [0xA5, 0x01, 0x90, 0x08, 0x02, 0xFC, 0x00, 0x00, 0x75, 0xA1, 0x00, 0x00, 0x52];
//! let DalyFrame::Reply(DalyReply::Summary(s)) = DalyFrame::decode(&reply)? else { unreachable!() };
//! assert_eq!(s.total_voltage_v.to_string(), "76.4"); // 0x02FC = 764 × 0.1 V
//! assert_eq!(s.current_a.to_string(), "11.3");       // (0x75A1 − 30000) × 0.1 A
//! # Ok::<(), chargeswap_protocol::bms::daly::DalyError>(())
//! ```

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{bits_from_cells, cells_from_bits, is_zero, range_text, raw, units, zeros};
use crate::stream::{Decoded, FrameCodec};

/// Start byte.
pub const START: u8 = 0xA5;
/// Address of the host on the UART port.
pub const HOST_UART: u8 = 0x40;
/// Address of the BMS (replies).
pub const BMS: u8 = 0x01;
/// The data length byte.
pub const DATA_LEN: u8 = 0x08;
/// Every frame is 13 bytes.
pub const FRAME_LEN: usize = 13;

/// Errors of the Daly codec. `offset` counts bytes from the 0xA5 start byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DalyError {
    /// The frame does not start with 0xA5.
    #[error("byte {offset}: expected the 0xA5 start byte, found {found:#04x}")]
    MissingStart {
        /// Where the start byte was expected.
        offset: usize,
        /// The byte found.
        found: u8,
    },
    /// Fewer than 13 bytes.
    #[error("byte {offset}: a Daly frame is 13 bytes, only {available} given")]
    Truncated {
        /// The end of the input.
        offset: usize,
        /// Bytes given.
        available: usize,
    },
    /// The length byte is not 0x08.
    #[error("byte {offset}: the length byte must be 0x08, found {found:#04x}")]
    BadLength {
        /// The length byte (3).
        offset: usize,
        /// Its value.
        found: u8,
    },
    /// The checksum does not match.
    #[error(
        "byte {offset}: checksum mismatch: computed {computed:#04x}, the frame carries {found:#04x}"
    )]
    Checksum {
        /// The checksum byte (12).
        offset: usize,
        /// Low byte of the sum of bytes 0 to 11.
        computed: u8,
        /// The checksum in the frame.
        found: u8,
    },
    /// More than one frame given.
    #[error("byte {offset}: {len} bytes follow the 13-byte frame; give one frame at a time")]
    TrailingData {
        /// The first extra byte.
        offset: usize,
        /// How many.
        len: usize,
    },
    /// A field holds a value the protocol does not define.
    #[error("byte {offset}: {field} is {found}; expected {expected}")]
    BadValue {
        /// The field.
        field: String,
        /// Its byte.
        offset: usize,
        /// The value found.
        found: u8,
        /// What is allowed.
        expected: String,
    },
    /// A value that cannot be encoded.
    #[error("cannot encode {field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// Why, and what is expected.
        reason: String,
    },
}

type Result<T> = core::result::Result<T, DalyError>;

fn invalid(field: &str, reason: impl Into<String>) -> DalyError {
    DalyError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

fn to_raw(v: Decimal, field: &str, offset: i64, scale: u32, min: i64, max: i64) -> Result<i64> {
    raw(v, offset, scale, min, max).ok_or_else(|| {
        invalid(
            field,
            format!("{v}: expected {}", range_text(offset, scale, min, max)),
        )
    })
}

/// Low byte of the sum of `bytes`.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}

fn be16(d: &[u8; 8], at: usize) -> i64 {
    match d.get(at..at + 2) {
        Some([a, b]) => i64::from(u16::from_be_bytes([*a, *b])),
        _ => 0,
    }
}

fn byte(d: &[u8; 8], at: usize) -> u8 {
    d.get(at).copied().unwrap_or(0)
}

/// A 0/1 byte; `at` is its index in the data (frame byte `4 + at`).
fn flag(d: &[u8; 8], at: usize, field: &str) -> Result<bool> {
    match byte(d, at) {
        0 => Ok(false),
        1 => Ok(true),
        found => Err(DalyError::BadValue {
            field: field.to_owned(),
            offset: 4 + at,
            found,
            expected: "0 or 1".into(),
        }),
    }
}

fn put16(d: &mut [u8; 8], at: usize, v: i64) {
    if let Some(s) = d.get_mut(at..at + 2) {
        s.copy_from_slice(&(v as u16).to_be_bytes());
    }
}

fn put(d: &mut [u8; 8], at: usize, v: u8) {
    if let Some(s) = d.get_mut(at) {
        *s = v;
    }
}

/// 0x90: pack voltage, current and state of charge.
///
/// | data bytes | field | scaling |
/// |---|---|---|
/// | 0–1 | `total_voltage_v` | u16 × 0.1 V (cumulative) |
/// | 2–3 | `gather_voltage_v` | u16 × 0.1 V (gathered) |
/// | 4–5 | `current_a` | (u16 − 30000) × 0.1 A, positive = charging |
/// | 6–7 | `soc_percent` | u16 × 0.1 % |
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DalySummary {
    /// Cumulative total voltage, V.
    pub total_voltage_v: Decimal,
    /// Gathered total voltage, V.
    pub gather_voltage_v: Decimal,
    /// Current, A (30000 offset on the wire).
    pub current_a: Decimal,
    /// State of charge, %.
    pub soc_percent: Decimal,
}

/// 0x91: highest and lowest cell voltage.
///
/// | data bytes | field | scaling |
/// |---|---|---|
/// | 0–1 | `max_cell_v` | u16 mV → V |
/// | 2 | `max_cell_no` | cell number |
/// | 3–4 | `min_cell_v` | u16 mV → V |
/// | 5 | `min_cell_no` | cell number |
/// | 6–7 | `reserved` | kept |
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DalyCellVoltageRange {
    /// Highest cell voltage, V (0.001 V steps).
    pub max_cell_v: Decimal,
    /// Which cell.
    pub max_cell_no: u8,
    /// Lowest cell voltage, V.
    pub min_cell_v: Decimal,
    /// Which cell.
    pub min_cell_no: u8,
    /// Reserved bytes, kept for exact re-encoding (hex).
    #[serde(
        default,
        skip_serializing_if = "zeros",
        with = "crate::hexbytes::array"
    )]
    pub reserved: [u8; 2],
}

/// 0x92: highest and lowest temperature.
///
/// | data bytes | field | scaling |
/// |---|---|---|
/// | 0 | `max_temp_c` | u8 − 40 °C |
/// | 1 | `max_temp_sensor` | sensor number |
/// | 2 | `min_temp_c` | u8 − 40 °C |
/// | 3 | `min_temp_sensor` | sensor number |
/// | 4–7 | `reserved` | kept |
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DalyTemperatureRange {
    /// Highest temperature, °C (40 offset on the wire).
    pub max_temp_c: Decimal,
    /// Which sensor.
    pub max_temp_sensor: u8,
    /// Lowest temperature, °C.
    pub min_temp_c: Decimal,
    /// Which sensor.
    pub min_temp_sensor: u8,
    /// Reserved bytes, kept (hex).
    #[serde(
        default,
        skip_serializing_if = "zeros",
        with = "crate::hexbytes::array"
    )]
    pub reserved: [u8; 4],
}

/// Charge / discharge state of 0x93.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DalyChargeState {
    /// 0: neither charging nor discharging.
    Stationary,
    /// 1: charging.
    Charging,
    /// 2: discharging.
    Discharging,
}

/// 0x93: MOSFET states and remaining capacity.
///
/// | data bytes | field | scaling |
/// |---|---|---|
/// | 0 | `state` | 0 stationary, 1 charging, 2 discharging |
/// | 1 | `charge_mos` | 0 off, 1 on |
/// | 2 | `discharge_mos` | 0 off, 1 on |
/// | 3 | `bms_life` | 0–255 heartbeat counter |
/// | 4–7 | `remaining_ah` | u32 mAh → Ah |
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DalyMosStatus {
    /// Charging, discharging or neither.
    pub state: DalyChargeState,
    /// Charge MOSFET on.
    pub charge_mos: bool,
    /// Discharge MOSFET on.
    pub discharge_mos: bool,
    /// BMS life counter (wraps at 255).
    pub bms_life: u8,
    /// Remaining capacity, Ah (0.001 Ah steps).
    pub remaining_ah: Decimal,
}

/// 0x94: status information.
///
/// | data bytes | field |
/// |---|---|
/// | 0 | `cell_count` |
/// | 1 | `temp_sensor_count` |
/// | 2 | `charger_connected` (0/1) |
/// | 3 | `load_connected` (0/1) |
/// | 4 | `dio`: bits 0–3 DI1–DI4, bits 4–7 DO1–DO4 |
/// | 5–6 | `cycles` (u16) |
/// | 7 | `reserved` |
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DalyStatus {
    /// Cells in series.
    pub cell_count: u8,
    /// Temperature sensors.
    pub temp_sensor_count: u8,
    /// A charger is connected.
    pub charger_connected: bool,
    /// A load is connected.
    pub load_connected: bool,
    /// Digital inputs (bits 0–3) and outputs (bits 4–7).
    pub dio: u8,
    /// Charge / discharge cycles.
    pub cycles: u16,
    /// Reserved byte, kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reserved: u8,
}

/// 0x95: three cell voltages per frame; frame `n` holds cells 3n−2 to 3n.
///
/// | data bytes | field | scaling |
/// |---|---|---|
/// | 0 | `frame_no` | from 1 |
/// | 1–6 | `cells_v` | 3 × u16 mV → V |
/// | 7 | `reserved` | kept |
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DalyCellVoltages {
    /// Frame number, from 1.
    pub frame_no: u8,
    /// Three cell voltages, V (0.001 V steps).
    pub cells_v: [Decimal; 3],
    /// Reserved byte, kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reserved: u8,
}

/// 0x96: seven temperatures per frame; frame `n` holds sensors 7n−6 to 7n.
///
/// | data bytes | field | scaling |
/// |---|---|---|
/// | 0 | `frame_no` | from 1 |
/// | 1–7 | `temperatures_c` | 7 × (u8 − 40) °C |
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DalyCellTemperatures {
    /// Frame number, from 1.
    pub frame_no: u8,
    /// Seven temperatures, °C.
    pub temperatures_c: [Decimal; 7],
}

/// 0x97: balancing state of cells 1 to 48 (bit n of data bytes 0–5, byte 0
/// bit 0 first, is cell n+1), bytes 6–7 reserved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DalyCellBalance {
    /// Cells (from 1) being balanced, ascending.
    pub balancing_cells: Vec<u8>,
    /// Reserved bytes, kept (hex).
    #[serde(
        default,
        skip_serializing_if = "zeros",
        with = "crate::hexbytes::array"
    )]
    pub reserved: [u8; 2],
}

/// A failure flag of 0x98, by data byte and bit. Level 1 is an alarm,
/// level 2 a protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DalyFault {
    /// Byte 0 bit 0: cell overvoltage level 1 (alarm).
    CellOvervoltageLevel1,
    /// Byte 0 bit 1: cell overvoltage level 2 (protection).
    CellOvervoltageLevel2,
    /// Byte 0 bit 2: cell undervoltage level 1 (alarm).
    CellUndervoltageLevel1,
    /// Byte 0 bit 3: cell undervoltage level 2 (protection).
    CellUndervoltageLevel2,
    /// Byte 0 bit 4: pack overvoltage level 1 (alarm).
    PackOvervoltageLevel1,
    /// Byte 0 bit 5: pack overvoltage level 2 (protection).
    PackOvervoltageLevel2,
    /// Byte 0 bit 6: pack undervoltage level 1 (alarm).
    PackUndervoltageLevel1,
    /// Byte 0 bit 7: pack undervoltage level 2 (protection).
    PackUndervoltageLevel2,
    /// Byte 1 bit 0: charge overtemp level 1 (alarm).
    ChargeOvertempLevel1,
    /// Byte 1 bit 1: charge overtemp level 2 (protection).
    ChargeOvertempLevel2,
    /// Byte 1 bit 2: charge undertemp level 1 (alarm).
    ChargeUndertempLevel1,
    /// Byte 1 bit 3: charge undertemp level 2 (protection).
    ChargeUndertempLevel2,
    /// Byte 1 bit 4: discharge overtemp level 1 (alarm).
    DischargeOvertempLevel1,
    /// Byte 1 bit 5: discharge overtemp level 2 (protection).
    DischargeOvertempLevel2,
    /// Byte 1 bit 6: discharge undertemp level 1 (alarm).
    DischargeUndertempLevel1,
    /// Byte 1 bit 7: discharge undertemp level 2 (protection).
    DischargeUndertempLevel2,
    /// Byte 2 bit 0: charge overcurrent level 1 (alarm).
    ChargeOvercurrentLevel1,
    /// Byte 2 bit 1: charge overcurrent level 2 (protection).
    ChargeOvercurrentLevel2,
    /// Byte 2 bit 2: discharge overcurrent level 1 (alarm).
    DischargeOvercurrentLevel1,
    /// Byte 2 bit 3: discharge overcurrent level 2 (protection).
    DischargeOvercurrentLevel2,
    /// Byte 2 bit 4: soc high level 1 (alarm).
    SocHighLevel1,
    /// Byte 2 bit 5: soc high level 2 (protection).
    SocHighLevel2,
    /// Byte 2 bit 6: soc low level 1 (alarm).
    SocLowLevel1,
    /// Byte 2 bit 7: soc low level 2 (protection).
    SocLowLevel2,
    /// Byte 3 bit 0: cell voltage diff level 1 (alarm).
    CellVoltageDiffLevel1,
    /// Byte 3 bit 1: cell voltage diff level 2 (protection).
    CellVoltageDiffLevel2,
    /// Byte 3 bit 2: temperature diff level 1 (alarm).
    TemperatureDiffLevel1,
    /// Byte 3 bit 3: temperature diff level 2 (protection).
    TemperatureDiffLevel2,
    /// Byte 4 bit 0: charge mos overtemp.
    ChargeMosOvertemp,
    /// Byte 4 bit 1: discharge mos overtemp.
    DischargeMosOvertemp,
    /// Byte 4 bit 2: charge mos temp sensor fault.
    ChargeMosTempSensorFault,
    /// Byte 4 bit 3: discharge mos temp sensor fault.
    DischargeMosTempSensorFault,
    /// Byte 4 bit 4: charge mos adhesion.
    ChargeMosAdhesion,
    /// Byte 4 bit 5: discharge mos adhesion.
    DischargeMosAdhesion,
    /// Byte 4 bit 6: charge mos open circuit.
    ChargeMosOpenCircuit,
    /// Byte 4 bit 7: discharge mos open circuit.
    DischargeMosOpenCircuit,
    /// Byte 5 bit 0: afe chip fault.
    AfeChipFault,
    /// Byte 5 bit 1: voltage collection dropped.
    VoltageCollectionDropped,
    /// Byte 5 bit 2: cell temp sensor fault.
    CellTempSensorFault,
    /// Byte 5 bit 3: eeprom fault.
    EepromFault,
    /// Byte 5 bit 4: rtc fault.
    RtcFault,
    /// Byte 5 bit 5: precharge failure.
    PrechargeFailure,
    /// Byte 5 bit 6: vehicle comm fault.
    VehicleCommFault,
    /// Byte 5 bit 7: internal comm fault.
    InternalCommFault,
    /// Byte 6 bit 0: current module fault.
    CurrentModuleFault,
    /// Byte 6 bit 1: pack voltage detect fault.
    PackVoltageDetectFault,
    /// Byte 6 bit 2: short circuit protect fault.
    ShortCircuitProtectFault,
    /// Byte 6 bit 3: low voltage charge forbidden.
    LowVoltageChargeForbidden,
    /// A reserved bit, by data byte (0–6) and bit (0–7).
    Bit {
        /// Data byte, 0 to 6.
        byte: u8,
        /// Bit, 0 to 7.
        bit: u8,
    },
}

use DalyFault as F;

/// Named flags by data byte and bit; `None` is reserved.
const FAULTS: [[Option<DalyFault>; 8]; 7] = [
    [
        Some(F::CellOvervoltageLevel1),
        Some(F::CellOvervoltageLevel2),
        Some(F::CellUndervoltageLevel1),
        Some(F::CellUndervoltageLevel2),
        Some(F::PackOvervoltageLevel1),
        Some(F::PackOvervoltageLevel2),
        Some(F::PackUndervoltageLevel1),
        Some(F::PackUndervoltageLevel2),
    ],
    [
        Some(F::ChargeOvertempLevel1),
        Some(F::ChargeOvertempLevel2),
        Some(F::ChargeUndertempLevel1),
        Some(F::ChargeUndertempLevel2),
        Some(F::DischargeOvertempLevel1),
        Some(F::DischargeOvertempLevel2),
        Some(F::DischargeUndertempLevel1),
        Some(F::DischargeUndertempLevel2),
    ],
    [
        Some(F::ChargeOvercurrentLevel1),
        Some(F::ChargeOvercurrentLevel2),
        Some(F::DischargeOvercurrentLevel1),
        Some(F::DischargeOvercurrentLevel2),
        Some(F::SocHighLevel1),
        Some(F::SocHighLevel2),
        Some(F::SocLowLevel1),
        Some(F::SocLowLevel2),
    ],
    [
        Some(F::CellVoltageDiffLevel1),
        Some(F::CellVoltageDiffLevel2),
        Some(F::TemperatureDiffLevel1),
        Some(F::TemperatureDiffLevel2),
        None,
        None,
        None,
        None,
    ],
    [
        Some(F::ChargeMosOvertemp),
        Some(F::DischargeMosOvertemp),
        Some(F::ChargeMosTempSensorFault),
        Some(F::DischargeMosTempSensorFault),
        Some(F::ChargeMosAdhesion),
        Some(F::DischargeMosAdhesion),
        Some(F::ChargeMosOpenCircuit),
        Some(F::DischargeMosOpenCircuit),
    ],
    [
        Some(F::AfeChipFault),
        Some(F::VoltageCollectionDropped),
        Some(F::CellTempSensorFault),
        Some(F::EepromFault),
        Some(F::RtcFault),
        Some(F::PrechargeFailure),
        Some(F::VehicleCommFault),
        Some(F::InternalCommFault),
    ],
    [
        Some(F::CurrentModuleFault),
        Some(F::PackVoltageDetectFault),
        Some(F::ShortCircuitProtectFault),
        Some(F::LowVoltageChargeForbidden),
        None,
        None,
        None,
        None,
    ],
];

impl DalyFault {
    /// The data byte (0–6) and bit (0–7) of the flag, or `None` for a
    /// [`DalyFault::Bit`] that names a non-reserved or out-of-range bit.
    pub fn position(self) -> Option<(u8, u8)> {
        if let DalyFault::Bit { byte, bit } = self {
            let slot = FAULTS.get(usize::from(byte))?.get(usize::from(bit))?;
            return slot.is_none().then_some((byte, bit));
        }
        FAULTS.iter().enumerate().find_map(|(byte, row)| {
            row.iter()
                .position(|f| *f == Some(self))
                .map(|bit| (byte as u8, bit as u8))
        })
    }
}

/// 0x98: failure flags (data bytes 0–6) and fault code (byte 7).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DalyFaults {
    /// Active flags in byte, then bit, order.
    pub faults: Vec<DalyFault>,
    /// The fault code byte.
    pub fault_code: u8,
}

/// A reply from the BMS (address 0x01), typed by data id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum DalyReply {
    /// 0x90.
    Summary(DalySummary),
    /// 0x91.
    CellVoltageRange(DalyCellVoltageRange),
    /// 0x92.
    TemperatureRange(DalyTemperatureRange),
    /// 0x93.
    MosStatus(DalyMosStatus),
    /// 0x94.
    Status(DalyStatus),
    /// 0x95.
    CellVoltages(DalyCellVoltages),
    /// 0x96.
    CellTemperatures(DalyCellTemperatures),
    /// 0x97.
    CellBalance(DalyCellBalance),
    /// 0x98.
    Faults(DalyFaults),
    /// Any other data id, kept raw.
    Other {
        /// The data id.
        data_id: u8,
        /// The 8 data bytes, as hex.
        #[serde(with = "crate::hexbytes::array")]
        data: [u8; 8],
    },
}

impl DalyReply {
    /// The data id.
    pub fn data_id(&self) -> u8 {
        match self {
            DalyReply::Summary(_) => 0x90,
            DalyReply::CellVoltageRange(_) => 0x91,
            DalyReply::TemperatureRange(_) => 0x92,
            DalyReply::MosStatus(_) => 0x93,
            DalyReply::Status(_) => 0x94,
            DalyReply::CellVoltages(_) => 0x95,
            DalyReply::CellTemperatures(_) => 0x96,
            DalyReply::CellBalance(_) => 0x97,
            DalyReply::Faults(_) => 0x98,
            DalyReply::Other { data_id, .. } => *data_id,
        }
    }

    fn read(id: u8, d: &[u8; 8]) -> Result<DalyReply> {
        Ok(match id {
            0x90 => DalyReply::Summary(DalySummary {
                total_voltage_v: units(be16(d, 0), 0, 1),
                gather_voltage_v: units(be16(d, 2), 0, 1),
                current_a: units(be16(d, 4), -30000, 1),
                soc_percent: units(be16(d, 6), 0, 1),
            }),
            0x91 => DalyReply::CellVoltageRange(DalyCellVoltageRange {
                max_cell_v: units(be16(d, 0), 0, 3),
                max_cell_no: byte(d, 2),
                min_cell_v: units(be16(d, 3), 0, 3),
                min_cell_no: byte(d, 5),
                reserved: [byte(d, 6), byte(d, 7)],
            }),
            0x92 => DalyReply::TemperatureRange(DalyTemperatureRange {
                max_temp_c: units(i64::from(byte(d, 0)), -40, 0),
                max_temp_sensor: byte(d, 1),
                min_temp_c: units(i64::from(byte(d, 2)), -40, 0),
                min_temp_sensor: byte(d, 3),
                reserved: [byte(d, 4), byte(d, 5), byte(d, 6), byte(d, 7)],
            }),
            0x93 => DalyReply::MosStatus(DalyMosStatus {
                state: match byte(d, 0) {
                    0 => DalyChargeState::Stationary,
                    1 => DalyChargeState::Charging,
                    2 => DalyChargeState::Discharging,
                    found => {
                        return Err(DalyError::BadValue {
                            field: "state".into(),
                            offset: 4,
                            found,
                            expected: "0 (stationary), 1 (charging) or 2 (discharging)".into(),
                        });
                    }
                },
                charge_mos: flag(d, 1, "charge_mos")?,
                discharge_mos: flag(d, 2, "discharge_mos")?,
                bms_life: byte(d, 3),
                remaining_ah: units(
                    i64::from(u32::from_be_bytes([
                        byte(d, 4),
                        byte(d, 5),
                        byte(d, 6),
                        byte(d, 7),
                    ])),
                    0,
                    3,
                ),
            }),
            0x94 => DalyReply::Status(DalyStatus {
                cell_count: byte(d, 0),
                temp_sensor_count: byte(d, 1),
                charger_connected: flag(d, 2, "charger_connected")?,
                load_connected: flag(d, 3, "load_connected")?,
                dio: byte(d, 4),
                cycles: be16(d, 5) as u16,
                reserved: byte(d, 7),
            }),
            0x95 => DalyReply::CellVoltages(DalyCellVoltages {
                frame_no: byte(d, 0),
                cells_v: [
                    units(be16(d, 1), 0, 3),
                    units(be16(d, 3), 0, 3),
                    units(be16(d, 5), 0, 3),
                ],
                reserved: byte(d, 7),
            }),
            0x96 => DalyReply::CellTemperatures(DalyCellTemperatures {
                frame_no: byte(d, 0),
                temperatures_c: core::array::from_fn(|i| units(i64::from(byte(d, i + 1)), -40, 0)),
            }),
            0x97 => {
                let mut b = [0u8; 8];
                if let (Some(dst), Some(src)) = (b.get_mut(..6), d.get(..6)) {
                    dst.copy_from_slice(src);
                }
                DalyReply::CellBalance(DalyCellBalance {
                    balancing_cells: cells_from_bits(u64::from_le_bytes(b), 48),
                    reserved: [byte(d, 6), byte(d, 7)],
                })
            }
            0x98 => {
                let mut faults = Vec::new();
                for (i, row) in FAULTS.iter().enumerate() {
                    let v = byte(d, i);
                    for (bit, named) in row.iter().enumerate() {
                        if v >> bit & 1 == 1 {
                            faults.push(named.unwrap_or(DalyFault::Bit {
                                byte: i as u8,
                                bit: bit as u8,
                            }));
                        }
                    }
                }
                DalyReply::Faults(DalyFaults {
                    faults,
                    fault_code: byte(d, 7),
                })
            }
            data_id => DalyReply::Other { data_id, data: *d },
        })
    }

    fn write(&self) -> Result<[u8; 8]> {
        let mut d = [0u8; 8];
        match self {
            DalyReply::Summary(s) => {
                put16(
                    &mut d,
                    0,
                    to_raw(s.total_voltage_v, "total_voltage_v", 0, 1, 0, 65535)?,
                );
                put16(
                    &mut d,
                    2,
                    to_raw(s.gather_voltage_v, "gather_voltage_v", 0, 1, 0, 65535)?,
                );
                put16(
                    &mut d,
                    4,
                    to_raw(s.current_a, "current_a", -30000, 1, 0, 65535)?,
                );
                put16(
                    &mut d,
                    6,
                    to_raw(s.soc_percent, "soc_percent", 0, 1, 0, 65535)?,
                );
            }
            DalyReply::CellVoltageRange(c) => {
                put16(
                    &mut d,
                    0,
                    to_raw(c.max_cell_v, "max_cell_v", 0, 3, 0, 65535)?,
                );
                put(&mut d, 2, c.max_cell_no);
                put16(
                    &mut d,
                    3,
                    to_raw(c.min_cell_v, "min_cell_v", 0, 3, 0, 65535)?,
                );
                put(&mut d, 5, c.min_cell_no);
                let [a, b] = c.reserved;
                put(&mut d, 6, a);
                put(&mut d, 7, b);
            }
            DalyReply::TemperatureRange(t) => {
                put(
                    &mut d,
                    0,
                    to_raw(t.max_temp_c, "max_temp_c", -40, 0, 0, 255)? as u8,
                );
                put(&mut d, 1, t.max_temp_sensor);
                put(
                    &mut d,
                    2,
                    to_raw(t.min_temp_c, "min_temp_c", -40, 0, 0, 255)? as u8,
                );
                put(&mut d, 3, t.min_temp_sensor);
                for (i, r) in t.reserved.iter().enumerate() {
                    put(&mut d, 4 + i, *r);
                }
            }
            DalyReply::MosStatus(m) => {
                put(
                    &mut d,
                    0,
                    match m.state {
                        DalyChargeState::Stationary => 0,
                        DalyChargeState::Charging => 1,
                        DalyChargeState::Discharging => 2,
                    },
                );
                put(&mut d, 1, u8::from(m.charge_mos));
                put(&mut d, 2, u8::from(m.discharge_mos));
                put(&mut d, 3, m.bms_life);
                let mah = to_raw(m.remaining_ah, "remaining_ah", 0, 3, 0, i64::from(u32::MAX))?;
                if let Some(s) = d.get_mut(4..8) {
                    s.copy_from_slice(&(mah as u32).to_be_bytes());
                }
            }
            DalyReply::Status(s) => {
                put(&mut d, 0, s.cell_count);
                put(&mut d, 1, s.temp_sensor_count);
                put(&mut d, 2, u8::from(s.charger_connected));
                put(&mut d, 3, u8::from(s.load_connected));
                put(&mut d, 4, s.dio);
                put16(&mut d, 5, i64::from(s.cycles));
                put(&mut d, 7, s.reserved);
            }
            DalyReply::CellVoltages(c) => {
                put(&mut d, 0, c.frame_no);
                for (i, v) in c.cells_v.iter().enumerate() {
                    put16(&mut d, 1 + 2 * i, to_raw(*v, "cells_v", 0, 3, 0, 65535)?);
                }
                put(&mut d, 7, c.reserved);
            }
            DalyReply::CellTemperatures(c) => {
                put(&mut d, 0, c.frame_no);
                for (i, t) in c.temperatures_c.iter().enumerate() {
                    put(
                        &mut d,
                        1 + i,
                        to_raw(*t, "temperatures_c", -40, 0, 0, 255)? as u8,
                    );
                }
            }
            DalyReply::CellBalance(b) => {
                let bits = bits_from_cells(&b.balancing_cells, 48)
                    .ok_or_else(|| invalid("balancing_cells", "cell numbers must be 1 to 48"))?;
                let le = bits.to_le_bytes();
                if let (Some(dst), Some(src)) = (d.get_mut(..6), le.get(..6)) {
                    dst.copy_from_slice(src);
                }
                let [x, y] = b.reserved;
                put(&mut d, 6, x);
                put(&mut d, 7, y);
            }
            DalyReply::Faults(f) => {
                for fault in &f.faults {
                    let (byte, bit) = fault.position().ok_or_else(|| {
                        invalid(
                            "faults",
                            format!("{fault:?}: a raw bit must be a reserved one (byte 3 or 6, bit 4 to 7)"),
                        )
                    })?;
                    if let Some(b) = d.get_mut(usize::from(byte)) {
                        *b |= 1 << bit;
                    }
                }
                put(&mut d, 7, f.fault_code);
            }
            DalyReply::Other { data, .. } => d = *data,
        }
        Ok(d)
    }
}

/// One Daly frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DalyFrame {
    /// From a host (any address but 0x01): ask for `data_id`.
    Request {
        /// 0x40 for the UART host.
        address: u8,
        /// What to read (0x90 to 0x98).
        data_id: u8,
        /// Request data, normally zero (hex).
        #[serde(default, with = "crate::hexbytes::array")]
        data: [u8; 8],
    },
    /// From the BMS (address 0x01).
    Reply(DalyReply),
}

impl DalyFrame {
    /// A UART host's request for `data_id` with zero data.
    pub fn request(data_id: u8) -> DalyFrame {
        DalyFrame::Request {
            address: HOST_UART,
            data_id,
            data: [0; 8],
        }
    }

    /// The address byte.
    pub fn address(&self) -> u8 {
        match self {
            DalyFrame::Request { address, .. } => *address,
            DalyFrame::Reply(_) => BMS,
        }
    }

    /// The data id.
    pub fn data_id(&self) -> u8 {
        match self {
            DalyFrame::Request { data_id, .. } => *data_id,
            DalyFrame::Reply(r) => r.data_id(),
        }
    }

    /// Decodes exactly one 13-byte frame.
    pub fn decode(bytes: &[u8]) -> Result<DalyFrame> {
        let f = decode13(bytes)?;
        if bytes.len() > FRAME_LEN {
            return Err(DalyError::TrailingData {
                offset: FRAME_LEN,
                len: bytes.len() - FRAME_LEN,
            });
        }
        Ok(f)
    }

    /// Encodes the frame.
    pub fn encode(&self) -> Result<[u8; FRAME_LEN]> {
        let (address, id, data) = match self {
            DalyFrame::Request {
                address,
                data_id,
                data,
            } => {
                if *address == BMS {
                    return Err(invalid(
                        "address",
                        "0x01 is the BMS's address; a request comes from a host (0x40 on UART)",
                    ));
                }
                (*address, *data_id, *data)
            }
            DalyFrame::Reply(r) => (BMS, r.data_id(), r.write()?),
        };
        let [d0, d1, d2, d3, d4, d5, d6, d7] = data;
        let mut out = [
            START, address, id, DATA_LEN, d0, d1, d2, d3, d4, d5, d6, d7, 0,
        ];
        let sum = checksum(out.get(..12).unwrap_or(&[]));
        if let Some(last) = out.last_mut() {
            *last = sum;
        }
        Ok(out)
    }
}

fn decode13(bytes: &[u8]) -> Result<DalyFrame> {
    let Some(f) = bytes.get(..FRAME_LEN) else {
        return match bytes.first() {
            Some(&b) if b != START => Err(DalyError::MissingStart {
                offset: 0,
                found: b,
            }),
            _ => Err(DalyError::Truncated {
                offset: bytes.len(),
                available: bytes.len(),
            }),
        };
    };
    let mut a = [0u8; FRAME_LEN];
    a.copy_from_slice(f);
    let [start, address, id, len, d0, d1, d2, d3, d4, d5, d6, d7, sum] = a;
    if start != START {
        return Err(DalyError::MissingStart {
            offset: 0,
            found: start,
        });
    }
    if len != DATA_LEN {
        return Err(DalyError::BadLength {
            offset: 3,
            found: len,
        });
    }
    let computed = checksum(f.get(..12).unwrap_or(&[]));
    if computed != sum {
        return Err(DalyError::Checksum {
            offset: 12,
            computed,
            found: sum,
        });
    }
    let data = [d0, d1, d2, d3, d4, d5, d6, d7];
    if address == BMS {
        Ok(DalyFrame::Reply(DalyReply::read(id, &data)?))
    } else {
        Ok(DalyFrame::Request {
            address,
            data_id: id,
            data,
        })
    }
}

/// The Daly [`FrameCodec`] for [`StreamDecoder`](crate::stream::StreamDecoder).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DalyCodec;

impl FrameCodec for DalyCodec {
    type Frame = DalyFrame;
    type Error = DalyError;

    fn max_frame_len(&self) -> usize {
        FRAME_LEN
    }

    fn find_start(&self, buf: &[u8]) -> Option<usize> {
        memchr::memchr(START, buf)
    }

    fn decode_prefix(&self, buf: &[u8]) -> Result<Decoded<DalyFrame>> {
        if buf.len() < FRAME_LEN {
            return Ok(Decoded::Incomplete);
        }
        Ok(Decoded::Frame {
            frame: decode13(buf)?,
            len: FRAME_LEN,
        })
    }
}
