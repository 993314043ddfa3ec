//! The DTU registration packet of transparent mode.
//!
//! A cabinet's DTU (4G module) dials the platform over TCP and then passes
//! bytes unchanged between the socket and the RS-485 bus. Before the first
//! byte from the bus it sends a registration packet, so the platform knows
//! which cabinet the socket belongs to. DTUs let the installer configure
//! that packet; the platform expects this one:
//!
//! ```text
//! 'R' 'E' 'G' ':' <DTU device number, 5–6 ASCII decimal digits, no leading 0> '\r' '\n'
//! ```
//!
//! for example `REG:20001\r\n` (hex `52 45 47 3A 32 30 30 30 31 0D 0A`). The
//! number must be a DTU number of the numbering plan (20001–200000); a
//! packet longer than [`MAX_REGISTRATION_LEN`] bytes is refused. After it,
//! RTU frames flow: the platform is the Modbus master. Heartbeats, if the
//! DTU is set to send them, are skipped by the RTU decoder as garbage.
//!
//! ```
//! use chargeswap_protocol::modbus::dtu::Registration;
//! let r = Registration::decode(b"REG:20001\r\n")?;
//! assert_eq!(r.dtu.get(), 20_001);
//! assert_eq!(r.encode(), b"REG:20001\r\n");
//! assert!(Registration::decode(b"REG:200001\r\n").is_err()); // a battery number
//! # Ok::<(), chargeswap_protocol::modbus::ModbusError>(())
//! ```

use chargeswap_core::numbering::{DeviceClass, DeviceNo};
use serde::{Deserialize, Serialize};

use super::ModbusError;
use crate::stream::{Decoded, FrameCodec, FrameEncoder};

/// The packet's first bytes.
pub const REGISTRATION_PREFIX: &[u8; 4] = b"REG:";
/// The longest registration packet accepted: prefix, 10 digits, CR LF.
pub const MAX_REGISTRATION_LEN: usize = 16;

/// A decoded registration packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Registration {
    /// The DTU's device number.
    pub dtu: DeviceNo,
}

fn bad(offset: usize, reason: impl Into<String>) -> ModbusError {
    ModbusError::BadRegistration {
        offset,
        reason: reason.into(),
    }
}

impl Registration {
    /// Decodes the packet at the front of `buf`, telling how many bytes it used.
    pub fn decode_prefix(buf: &[u8]) -> Result<Decoded<Self>, ModbusError> {
        for (i, (got, want)) in buf.iter().zip(REGISTRATION_PREFIX).enumerate() {
            if got != want {
                return Err(bad(i, "expected the text \"REG:\" first"));
            }
        }
        let digits_at = REGISTRATION_PREFIX.len();
        let mut n: u64 = 0;
        let mut i = digits_at;
        loop {
            let Some(&b) = buf.get(i) else {
                return Ok(Decoded::Incomplete);
            };
            match b {
                b'0' if i == digits_at => {
                    return Err(bad(i, "the device number must not start with 0"));
                }
                b'0'..=b'9' if i < MAX_REGISTRATION_LEN - 2 => {
                    n = n * 10 + u64::from(b - b'0');
                    i += 1;
                }
                b'0'..=b'9' => return Err(bad(i, "the device number has too many digits")),
                b'\r' if i > digits_at => break,
                _ => {
                    return Err(bad(
                        i,
                        format!("expected a decimal digit or CR, found 0x{b:02X}"),
                    ));
                }
            }
        }
        match buf.get(i + 1) {
            None => return Ok(Decoded::Incomplete),
            Some(b'\n') => {}
            Some(b) => return Err(bad(i + 1, format!("expected LF after CR, found 0x{b:02X}"))),
        }
        let dtu = DeviceNo::of_class(n, DeviceClass::Dtu).map_err(|e| {
            bad(
                digits_at,
                format!("{e}: expected a DTU number, 20001-200000"),
            )
        })?;
        Ok(Decoded::Frame {
            frame: Registration { dtu },
            len: i + 2,
        })
    }

    /// Decodes exactly one packet.
    pub fn decode(bytes: &[u8]) -> Result<Self, ModbusError> {
        match Self::decode_prefix(bytes)? {
            Decoded::Frame { frame, len } if len == bytes.len() => Ok(frame),
            Decoded::Frame { len, .. } => Err(ModbusError::TrailingBytes {
                offset: len,
                len: bytes.len() - len,
            }),
            Decoded::Incomplete => Err(ModbusError::Truncated {
                needed: bytes.len() + 1,
                got: bytes.len(),
            }),
        }
    }

    /// The packet's bytes.
    pub fn encode(&self) -> Vec<u8> {
        format!("REG:{}\r\n", self.dtu.get()).into_bytes()
    }
}

/// Streaming decoder for registration packets (a frame starts at `R`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RegistrationCodec;

impl FrameCodec for RegistrationCodec {
    type Frame = Registration;
    type Error = ModbusError;

    fn max_frame_len(&self) -> usize {
        MAX_REGISTRATION_LEN
    }

    fn find_start(&self, buf: &[u8]) -> Option<usize> {
        buf.iter().position(|b| *b == b'R')
    }

    fn decode_prefix(&self, buf: &[u8]) -> Result<Decoded<Registration>, ModbusError> {
        Registration::decode_prefix(buf)
    }
}

impl FrameEncoder<Registration> for RegistrationCodec {
    type Error = ModbusError;

    fn encode_frame(&self, frame: &Registration, out: &mut Vec<u8>) -> Result<(), ModbusError> {
        out.extend_from_slice(&frame.encode());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_point_at_the_bad_byte() {
        let off = |b: &[u8]| match Registration::decode(b) {
            Err(ModbusError::BadRegistration { offset, .. }) => offset,
            other => panic!("{other:?}"),
        };
        assert_eq!(off(b"RFG:20001\r\n"), 1);
        assert_eq!(off(b"REG:02001\r\n"), 4);
        assert_eq!(off(b"REG:2000x\r\n"), 8);
        assert_eq!(off(b"REG:20001\r\r"), 10);
        assert_eq!(off(b"REG:\r\n"), 4);
        assert_eq!(off(b"REG:12345678901\r\n"), 14);
        assert_eq!(off(b"REG:5000001\r\n"), 4);
        assert_eq!(
            Registration::decode(b"REG:200"),
            Err(ModbusError::Truncated { needed: 8, got: 7 })
        );
        assert_eq!(
            Registration::decode(b"REG:20001\r\nX"),
            Err(ModbusError::TrailingBytes { offset: 11, len: 1 })
        );
    }

    #[test]
    fn largest_dtu_number_round_trips() {
        let r = Registration::decode(b"REG:200000\r\n").unwrap();
        assert_eq!(r.encode(), b"REG:200000\r\n");
    }
}
