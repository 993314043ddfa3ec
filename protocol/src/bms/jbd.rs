//! JBD (Xiaoxiang) BMS UART protocol.
//!
//! ```text
//! read request:  DD A5 register len data[len] checksum(u16 BE) 77
//! write request: DD 5A register len data[len] checksum(u16 BE) 77
//! response:      DD register status len data[len] checksum(u16 BE) 77
//! checksum = 0x10000 − (sum of the bytes from `register` (requests) or
//!            `status` (responses) to the end of data), modulo 0x10000
//! ```
//!
//! Registers typed here (status 0x00): 0x03 basic information, 0x04 cell
//! voltages, 0x05 hardware name; any other register, and any response with
//! a non-zero status (0x80 is the BMS's error), is kept raw. The second byte
//! tells requests (0xA5, 0x5A) from responses, so a response to register
//! 0xA5 or 0x5A cannot be represented.
//!
//! ```
//! use chargeswap_protocol::bms::jbd::{JbdFrame, JbdBody};
//! // Ask for basic information: sum 0x03 + 0x00 = 0x0003, 0x10000 − 3 = 0xFFFD.
//! assert_eq!(JbdFrame::read(0x03).encode()?, [0xDD, 0xA5, 0x03, 0x00, 0xFF, 0xFD, 0x77]);
//! let reply = [0xDD, 0x04, 0x00, 0x04, 0x0C, 0xE4, 0x0C, 0xE5, 0xFE, 0x1B, 0x77];
//! let JbdFrame::Response(r) = JbdFrame::decode(&reply)? else { unreachable!() };
//! let JbdBody::CellVoltages { cells_v } = r.body else { unreachable!() };
//! assert_eq!(cells_v[0].to_string(), "3.300"); // 0x0CE4 = 3300 mV
//! # Ok::<(), chargeswap_protocol::bms::jbd::JbdError>(())
//! ```

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{bits_from_cells, cells_from_bits, is_zero, range_text, raw, units};
use crate::stream::{Decoded, FrameCodec};

/// Start byte.
pub const START: u8 = 0xDD;
/// End byte.
pub const END: u8 = 0x77;
/// Second byte of a read request.
pub const READ: u8 = 0xA5;
/// Second byte of a write request.
pub const WRITE: u8 = 0x5A;
/// Register 0x03: basic information.
pub const BASIC_INFO: u8 = 0x03;
/// Register 0x04: cell voltages.
pub const CELL_VOLTAGES: u8 = 0x04;
/// Register 0x05: hardware name.
pub const HARDWARE_NAME: u8 = 0x05;
/// The longest frame: 7 bytes of framing and 255 of data.
pub const MAX_FRAME_LEN: usize = 7 + 255;

/// Errors of the JBD codec. `offset` counts bytes from the frame's start byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JbdError {
    /// The frame does not start with 0xDD.
    #[error("byte {offset}: expected the 0xDD start byte, found {found:#04x}")]
    MissingStart {
        /// Where the start byte was expected.
        offset: usize,
        /// The byte found.
        found: u8,
    },
    /// The frame is shorter than its length byte says.
    #[error("byte {offset}: {field} needs {needed} bytes but only {available} remain")]
    Truncated {
        /// The field being read.
        field: String,
        /// Where it starts.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// The byte after the checksum is not 0x77.
    #[error("byte {offset}: expected the 0x77 end byte, found {found:#04x}")]
    MissingEnd {
        /// Where the end byte was expected.
        offset: usize,
        /// The byte found.
        found: u8,
    },
    /// The checksum does not match.
    #[error(
        "byte {offset}: checksum mismatch: computed {computed:#06x}, the frame carries {found:#06x}"
    )]
    Checksum {
        /// The checksum field.
        offset: usize,
        /// 0x10000 minus the sum.
        computed: u16,
        /// The checksum in the frame.
        found: u16,
    },
    /// Bytes after the end byte.
    #[error("byte {offset}: {len} bytes follow the 0x77 end byte; give one frame at a time")]
    TrailingData {
        /// The first extra byte.
        offset: usize,
        /// How many.
        len: usize,
    },
    /// Cell voltages must come in pairs of bytes.
    #[error("byte {offset}: {len} bytes of cell voltages; expected 2 per cell")]
    OddLength {
        /// The data.
        offset: usize,
        /// Its length.
        len: usize,
    },
    /// The hardware name is not UTF-8 text.
    #[error("byte {offset}: the hardware name is not UTF-8 text")]
    BadText {
        /// The data.
        offset: usize,
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

type Result<T> = core::result::Result<T, JbdError>;

fn invalid(field: &str, reason: impl Into<String>) -> JbdError {
    JbdError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// 0x10000 − sum of `bytes`, modulo 0x10000.
pub fn checksum(bytes: &[u8]) -> u16 {
    let sum = bytes
        .iter()
        .fold(0u16, |a, b| a.wrapping_add(u16::from(*b)));
    0u16.wrapping_sub(sum)
}

/// A production date packed as `(year − 2000) << 9 | month << 5 | day`.
/// No calendar check, so every packed value round-trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JbdDate {
    /// 2000 to 2127.
    pub year: u16,
    /// 0 to 15 (1 to 12 when valid).
    pub month: u8,
    /// 0 to 31.
    pub day: u8,
}

impl JbdDate {
    fn from_raw(r: u16) -> JbdDate {
        JbdDate {
            year: 2000 + (r >> 9),
            month: ((r >> 5) & 0x0F) as u8,
            day: (r & 0x1F) as u8,
        }
    }

    fn to_raw(self) -> Result<u16> {
        if !(2000..=2127).contains(&self.year) || self.month > 15 || self.day > 31 {
            return Err(invalid(
                "production_date",
                format!(
                    "{}-{}-{}: expected year 2000..=2127, month 0..=15, day 0..=31",
                    self.year, self.month, self.day
                ),
            ));
        }
        Ok(((self.year - 2000) << 9) | (u16::from(self.month) << 5) | u16::from(self.day))
    }
}

/// A protection status bit of the basic information (bytes 16–17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JbdProtection {
    /// Bit 0: cell over-voltage.
    CellOvervoltage,
    /// Bit 1: cell under-voltage.
    CellUndervoltage,
    /// Bit 2: pack over-voltage.
    PackOvervoltage,
    /// Bit 3: pack under-voltage.
    PackUndervoltage,
    /// Bit 4: charging over-temperature.
    ChargeOvertemp,
    /// Bit 5: charging under-temperature.
    ChargeUndertemp,
    /// Bit 6: discharging over-temperature.
    DischargeOvertemp,
    /// Bit 7: discharging under-temperature.
    DischargeUndertemp,
    /// Bit 8: charging over-current.
    ChargeOvercurrent,
    /// Bit 9: discharging over-current.
    DischargeOvercurrent,
    /// Bit 10: short circuit.
    ShortCircuit,
    /// Bit 11: front-end IC error.
    FrontEndIcError,
    /// Bit 12: MOS locked by software.
    MosSoftwareLock,
    /// Bits 13–15 (reserved), by number.
    Bit(u8),
}

const PROTECTIONS: [JbdProtection; 13] = [
    JbdProtection::CellOvervoltage,
    JbdProtection::CellUndervoltage,
    JbdProtection::PackOvervoltage,
    JbdProtection::PackUndervoltage,
    JbdProtection::ChargeOvertemp,
    JbdProtection::ChargeUndertemp,
    JbdProtection::DischargeOvertemp,
    JbdProtection::DischargeUndertemp,
    JbdProtection::ChargeOvercurrent,
    JbdProtection::DischargeOvercurrent,
    JbdProtection::ShortCircuit,
    JbdProtection::FrontEndIcError,
    JbdProtection::MosSoftwareLock,
];

impl JbdProtection {
    /// The bit number (0 to 15).
    pub fn bit(self) -> u8 {
        match self {
            JbdProtection::Bit(b) => b,
            named => PROTECTIONS
                .iter()
                .position(|p| *p == named)
                .map_or(0, |i| i as u8),
        }
    }
}

/// Register 0x03: basic information.
///
/// | bytes | field | scaling |
/// |---|---|---|
/// | 0–1 | `voltage_v` | u16 × 0.01 V |
/// | 2–3 | `current_a` | i16 × 0.01 A, positive = charging |
/// | 4–5 | `remaining_ah` | u16 × 0.01 Ah |
/// | 6–7 | `nominal_ah` | u16 × 0.01 Ah |
/// | 8–9 | `cycles` | u16 |
/// | 10–11 | `production_date` | packed date |
/// | 12–15 | `balancing_cells` | bit n of (bytes 12–13, then 14–15) = cell n+1 (1–16, 17–32) |
/// | 16–17 | `protections` | bit flags |
/// | 18 | `software_version` | 0x10 = 1.0 |
/// | 19 | `soc_percent` | % |
/// | 20 | `charge_fet`, `discharge_fet` | bits 0, 1 |
/// | 21 | `cell_count` | |
/// | 22 | number of temperature sensors N | |
/// | 23… | `temperatures_c` | N × u16, (raw − 2731) × 0.1 °C (0.1 K on the wire) |
/// | … | `extra` | newer firmware's further bytes, kept raw |
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BasicInfo {
    /// Pack voltage, V (0.01 V steps).
    pub voltage_v: Decimal,
    /// Pack current, A (0.01 A steps), positive while charging.
    pub current_a: Decimal,
    /// Remaining capacity, Ah (0.01 Ah steps).
    pub remaining_ah: Decimal,
    /// Nominal capacity, Ah (0.01 Ah steps).
    pub nominal_ah: Decimal,
    /// Charge cycles.
    pub cycles: u16,
    /// Production date.
    pub production_date: JbdDate,
    /// Cells (from 1, up to 32) being balanced, ascending.
    pub balancing_cells: Vec<u8>,
    /// Active protections, by ascending bit.
    pub protections: Vec<JbdProtection>,
    /// Software version byte (0x10 is version 1.0).
    pub software_version: u8,
    /// Relative state of charge, %.
    pub soc_percent: Decimal,
    /// Charge MOSFET on.
    pub charge_fet: bool,
    /// Discharge MOSFET on.
    pub discharge_fet: bool,
    /// Bits 2–7 of the FET byte (undefined), kept for exact re-encoding.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fet_reserved: u8,
    /// Number of cells in series.
    pub cell_count: u8,
    /// Temperature sensors, °C (0.1 °C steps).
    pub temperatures_c: Vec<Decimal>,
    /// Bytes after the temperatures (newer firmware), as hex.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "crate::hexbytes::vec"
    )]
    pub extra: Vec<u8>,
}

/// A data reader with frame offsets.
struct Data<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Data<'a> {
    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        match self.buf.get(self.pos..self.pos + n) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(JbdError::Truncated {
                field: field.to_owned(),
                offset: self.base + self.pos,
                needed: n,
                available: self.buf.len().saturating_sub(self.pos),
            }),
        }
    }

    fn u8(&mut self, field: &str) -> Result<u8> {
        Ok(self.take(1, field)?.first().copied().unwrap_or(0))
    }

    fn u16(&mut self, field: &str) -> Result<u16> {
        match self.take(2, field)? {
            [a, b] => Ok(u16::from_be_bytes([*a, *b])),
            _ => Ok(0),
        }
    }
}

/// The wire integer of a value in real units, or an error naming the field.
fn to_raw(v: Decimal, field: &str, offset: i64, scale: u32, min: i64, max: i64) -> Result<i64> {
    raw(v, offset, scale, min, max).ok_or_else(|| {
        invalid(
            field,
            format!("{v}: expected {}", range_text(offset, scale, min, max)),
        )
    })
}

impl BasicInfo {
    fn read(d: &mut Data<'_>) -> Result<BasicInfo> {
        let voltage_v = units(i64::from(d.u16("pack voltage")?), 0, 2);
        let current_a = units(i64::from(d.u16("current")? as i16), 0, 2);
        let remaining_ah = units(i64::from(d.u16("remaining capacity")?), 0, 2);
        let nominal_ah = units(i64::from(d.u16("nominal capacity")?), 0, 2);
        let cycles = d.u16("cycles")?;
        let production_date = JbdDate::from_raw(d.u16("production date")?);
        let lo = d.u16("balance status")?;
        let hi = d.u16("balance status (high)")?;
        let balancing_cells = cells_from_bits(u64::from(lo) | u64::from(hi) << 16, 32);
        let prot = d.u16("protection status")?;
        let protections = cells_from_bits(u64::from(prot), 16)
            .into_iter()
            .map(|n| {
                let b = n - 1;
                PROTECTIONS
                    .get(usize::from(b))
                    .copied()
                    .unwrap_or(JbdProtection::Bit(b))
            })
            .collect();
        let software_version = d.u8("software version")?;
        let soc_percent = Decimal::from(d.u8("state of charge")?);
        let fet = d.u8("FET status")?;
        let cell_count = d.u8("cell count")?;
        let ntc = d.u8("temperature sensor count")?;
        let mut temperatures_c = Vec::with_capacity(usize::from(ntc));
        for _ in 0..ntc {
            temperatures_c.push(units(i64::from(d.u16("temperature")?), -2731, 1));
        }
        let extra = d.buf.get(d.pos..).unwrap_or(&[]).to_vec();
        Ok(BasicInfo {
            voltage_v,
            current_a,
            remaining_ah,
            nominal_ah,
            cycles,
            production_date,
            balancing_cells,
            protections,
            software_version,
            soc_percent,
            charge_fet: fet & 1 != 0,
            discharge_fet: fet & 2 != 0,
            fet_reserved: fet & 0xFC,
            cell_count,
            temperatures_c,
            extra,
        })
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        let v = to_raw(self.voltage_v, "voltage_v", 0, 2, 0, 65535)? as u16;
        let c = to_raw(self.current_a, "current_a", 0, 2, -32768, 32767)? as i16;
        let rem = to_raw(self.remaining_ah, "remaining_ah", 0, 2, 0, 65535)? as u16;
        let nom = to_raw(self.nominal_ah, "nominal_ah", 0, 2, 0, 65535)? as u16;
        let soc = to_raw(self.soc_percent, "soc_percent", 0, 0, 0, 255)? as u8;
        let date = self.production_date.to_raw()?;
        let bal = bits_from_cells(&self.balancing_cells, 32)
            .ok_or_else(|| invalid("balancing_cells", "cell numbers must be 1 to 32"))?;
        let mut prot = 0u16;
        for p in &self.protections {
            let b = p.bit();
            if b > 15 || matches!(p, JbdProtection::Bit(n) if usize::from(*n) < PROTECTIONS.len()) {
                return Err(invalid(
                    "protections",
                    format!("bit {b}: use the named flag for bits 0 to 12; bits go up to 15"),
                ));
            }
            prot |= 1 << b;
        }
        if self.fet_reserved & 0x03 != 0 {
            return Err(invalid(
                "fet_reserved",
                "bits 0 and 1 are charge_fet and discharge_fet",
            ));
        }
        let ntc = u8::try_from(self.temperatures_c.len())
            .map_err(|_| invalid("temperatures_c", "at most 255 sensors"))?;
        out.extend_from_slice(&v.to_be_bytes());
        out.extend_from_slice(&c.to_be_bytes());
        out.extend_from_slice(&rem.to_be_bytes());
        out.extend_from_slice(&nom.to_be_bytes());
        out.extend_from_slice(&self.cycles.to_be_bytes());
        out.extend_from_slice(&date.to_be_bytes());
        out.extend_from_slice(&((bal & 0xFFFF) as u16).to_be_bytes());
        out.extend_from_slice(&((bal >> 16) as u16).to_be_bytes());
        out.extend_from_slice(&prot.to_be_bytes());
        out.push(self.software_version);
        out.push(soc);
        out.push(
            self.fet_reserved | u8::from(self.charge_fet) | (u8::from(self.discharge_fet) << 1),
        );
        out.push(self.cell_count);
        out.push(ntc);
        for t in &self.temperatures_c {
            let r = to_raw(*t, "temperatures_c", -2731, 1, 0, 65535)? as u16;
            out.extend_from_slice(&r.to_be_bytes());
        }
        out.extend_from_slice(&self.extra);
        Ok(())
    }
}

/// The body of a response, typed by register when the status is 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JbdBody {
    /// Register 0x03.
    BasicInfo(BasicInfo),
    /// Register 0x04: each cell's voltage, V (0.001 V steps; u16 mV on the wire).
    CellVoltages {
        /// Cell 1 first.
        cells_v: Vec<Decimal>,
    },
    /// Register 0x05: the hardware name, ASCII text.
    HardwareName {
        /// The name.
        name: String,
    },
    /// Any other register, or a response with a non-zero status.
    Raw {
        /// The register.
        register: u8,
        /// The data, as hex.
        #[serde(with = "crate::hexbytes::vec")]
        data: Vec<u8>,
    },
}

impl JbdBody {
    /// The register this body answers.
    pub fn register(&self) -> u8 {
        match self {
            JbdBody::BasicInfo(_) => BASIC_INFO,
            JbdBody::CellVoltages { .. } => CELL_VOLTAGES,
            JbdBody::HardwareName { .. } => HARDWARE_NAME,
            JbdBody::Raw { register, .. } => *register,
        }
    }

    fn read(register: u8, data: &[u8], base: usize) -> Result<JbdBody> {
        let mut d = Data {
            buf: data,
            pos: 0,
            base,
        };
        Ok(match register {
            BASIC_INFO => JbdBody::BasicInfo(BasicInfo::read(&mut d)?),
            CELL_VOLTAGES => {
                if data.len() % 2 != 0 {
                    return Err(JbdError::OddLength {
                        offset: base,
                        len: data.len(),
                    });
                }
                JbdBody::CellVoltages {
                    cells_v: data
                        .chunks_exact(2)
                        .map(|c| match c {
                            [a, b] => units(i64::from(u16::from_be_bytes([*a, *b])), 0, 3),
                            _ => Decimal::ZERO,
                        })
                        .collect(),
                }
            }
            HARDWARE_NAME => JbdBody::HardwareName {
                name: String::from_utf8(data.to_vec())
                    .map_err(|_| JbdError::BadText { offset: base })?,
            },
            register => JbdBody::Raw {
                register,
                data: data.to_vec(),
            },
        })
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        match self {
            JbdBody::BasicInfo(b) => b.write(out),
            JbdBody::CellVoltages { cells_v } => {
                for v in cells_v {
                    let mv = to_raw(*v, "cells_v", 0, 3, 0, 65535)? as u16;
                    out.extend_from_slice(&mv.to_be_bytes());
                }
                Ok(())
            }
            JbdBody::HardwareName { name } => {
                out.extend_from_slice(name.as_bytes());
                Ok(())
            }
            JbdBody::Raw { data, .. } => {
                out.extend_from_slice(data);
                Ok(())
            }
        }
    }
}

/// A response from the BMS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JbdResponse {
    /// 0x00 OK; 0x80 the BMS refused the request (the body is then raw).
    pub status: u8,
    /// The data; its variant gives the register.
    pub body: JbdBody,
}

/// One JBD frame: a request from the host or a response from the BMS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JbdFrame {
    /// `DD A5`: read a register.
    Read {
        /// The register.
        register: u8,
        /// Request data (normally none), as hex.
        #[serde(default, with = "crate::hexbytes::vec")]
        data: Vec<u8>,
    },
    /// `DD 5A`: write a register.
    Write {
        /// The register.
        register: u8,
        /// The value, as hex.
        #[serde(with = "crate::hexbytes::vec")]
        data: Vec<u8>,
    },
    /// `DD register status`: the BMS's answer.
    Response(JbdResponse),
}

impl JbdFrame {
    /// A read request without data, e.g. `JbdFrame::read(0x03)`.
    pub fn read(register: u8) -> JbdFrame {
        JbdFrame::Read {
            register,
            data: Vec::new(),
        }
    }

    /// Decodes exactly one frame.
    pub fn decode(bytes: &[u8]) -> Result<JbdFrame> {
        match decode_prefix(bytes)? {
            Some((frame, len)) if len == bytes.len() => Ok(frame),
            Some((_, len)) => Err(JbdError::TrailingData {
                offset: len,
                len: bytes.len() - len,
            }),
            None => Err(truncated(bytes)),
        }
    }

    /// Encodes the frame.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(40);
        self.encode_to(&mut out)?;
        Ok(out)
    }

    /// Appends the frame to `out`; on error `out` is left as it was.
    pub fn encode_to(&self, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let r = self.write(out, start);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn write(&self, out: &mut Vec<u8>, start: usize) -> Result<()> {
        out.push(START);
        match self {
            JbdFrame::Read { register, data } | JbdFrame::Write { register, data } => {
                out.push(if matches!(self, JbdFrame::Read { .. }) {
                    READ
                } else {
                    WRITE
                });
                out.push(*register);
                out.push(0);
                out.extend_from_slice(data);
            }
            JbdFrame::Response(r) => {
                let register = r.body.register();
                if register == READ || register == WRITE {
                    return Err(invalid(
                        "register",
                        format!(
                            "{register:#04x} cannot be told from a request marker in a response"
                        ),
                    ));
                }
                if r.status != 0 && !matches!(r.body, JbdBody::Raw { .. }) {
                    return Err(invalid(
                        "status",
                        "a typed body needs status 0; use a raw body with an error status",
                    ));
                }
                out.push(register);
                out.push(r.status);
                out.push(0);
                r.body.write(out)?;
            }
        }
        // Byte 3 is the data length. The checksum covers byte 2 (the register
        // of a request, the status of a response) through the end of data.
        let len = out.len() - start - 4;
        let len =
            u8::try_from(len).map_err(|_| invalid("data", format!("{len} bytes; at most 255")))?;
        if let Some(slot) = out.get_mut(start + 3) {
            *slot = len;
        }
        let covered = out.get(start + 2..).unwrap_or(&[]);
        let sum = checksum(covered);
        out.extend_from_slice(&sum.to_be_bytes());
        out.push(END);
        Ok(())
    }
}

fn truncated(bytes: &[u8]) -> JbdError {
    let need = match bytes.get(3) {
        Some(len) => 7 + usize::from(*len),
        None => 7,
    };
    JbdError::Truncated {
        field: "frame".into(),
        offset: 0,
        needed: need,
        available: bytes.len(),
    }
}

/// Decodes a frame at the front of `buf`: `Ok(None)` if more bytes are needed.
fn decode_prefix(buf: &[u8]) -> Result<Option<(JbdFrame, usize)>> {
    match buf.first() {
        Some(&START) => {}
        Some(&found) => return Err(JbdError::MissingStart { offset: 0, found }),
        None => return Ok(None),
    }
    let (Some(&kind), Some(&b2), Some(&len)) = (buf.get(1), buf.get(2), buf.get(3)) else {
        return Ok(None);
    };
    let len = usize::from(len);
    let total = 7 + len;
    let Some(frame) = buf.get(..total) else {
        return Ok(None);
    };
    let data = frame.get(4..4 + len).unwrap_or(&[]);
    let (found, end) = match frame.get(4 + len..) {
        Some([hi, lo, end]) => (u16::from_be_bytes([*hi, *lo]), *end),
        _ => return Ok(None),
    };
    if end != END {
        return Err(JbdError::MissingEnd {
            offset: total - 1,
            found: end,
        });
    }
    let computed = checksum(frame.get(2..4 + len).unwrap_or(&[]));
    if computed != found {
        return Err(JbdError::Checksum {
            offset: 4 + len,
            computed,
            found,
        });
    }
    let frame = match kind {
        READ => JbdFrame::Read {
            register: b2,
            data: data.to_vec(),
        },
        WRITE => JbdFrame::Write {
            register: b2,
            data: data.to_vec(),
        },
        register => {
            let status = b2;
            let body = if status == 0 {
                JbdBody::read(register, data, 4)?
            } else {
                JbdBody::Raw {
                    register,
                    data: data.to_vec(),
                }
            };
            JbdFrame::Response(JbdResponse { status, body })
        }
    };
    Ok(Some((frame, total)))
}

/// The JBD [`FrameCodec`] for [`StreamDecoder`](crate::stream::StreamDecoder).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JbdCodec;

impl FrameCodec for JbdCodec {
    type Frame = JbdFrame;
    type Error = JbdError;

    fn max_frame_len(&self) -> usize {
        MAX_FRAME_LEN
    }

    fn find_start(&self, buf: &[u8]) -> Option<usize> {
        memchr::memchr(START, buf)
    }

    fn decode_prefix(&self, buf: &[u8]) -> Result<Decoded<JbdFrame>> {
        Ok(match decode_prefix(buf)? {
            Some((frame, len)) => Decoded::Frame { frame, len },
            None => Decoded::Incomplete,
        })
    }
}
