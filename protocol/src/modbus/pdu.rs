//! Protocol data units: the function code and its data, without framing.
//!
//! | function | request data                                   | response data                  |
//! |----------|------------------------------------------------|--------------------------------|
//! | 0x03     | address u16, quantity u16 (1–125)              | byte count (2 × n), n × u16    |
//! | 0x04     | address u16, quantity u16 (1–125)              | byte count (2 × n), n × u16    |
//! | 0x06     | address u16, value u16                         | echo of the request            |
//! | 0x10     | address u16, quantity u16 (1–123), byte count (2 × quantity), values | address u16, quantity u16 |
//! | 0x80 + f | —                                              | exception code u8              |
//!
//! All 16-bit fields are big-endian. A request PDU and a response PDU of the
//! same function have different lengths, so a decoder must know which
//! direction it reads: [`Request`] and [`Response`] each implement [`Pdu`].

use serde::{Deserialize, Serialize};

use super::{MAX_READ_QUANTITY, MAX_WRITE_QUANTITY, ModbusError, be16};

/// Which side of the exchange a PDU comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Master (client) to slave (server).
    Request,
    /// Slave (server) to master (client).
    Response,
}

/// How long a PDU at the front of a buffer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PduLen {
    /// The PDU is exactly this many bytes.
    Known(usize),
    /// More bytes are needed to tell; the PDU is at least this long.
    AtLeast(usize),
}

/// A PDU of one direction: its length rules, decoding and encoding.
pub trait Pdu: Sized {
    /// The direction this PDU type travels.
    const DIRECTION: Direction;

    /// The length of the PDU that starts `buf` (with its function code).
    /// `offset` is where `buf` starts in the frame, for error offsets.
    fn pdu_len(buf: &[u8], offset: usize) -> Result<PduLen, ModbusError>;

    /// Whether `code` may start a PDU of this direction (used to resynchronise).
    fn is_plausible_function(code: u8) -> bool;

    /// Decodes a PDU that is exactly `pdu` (its length already checked by
    /// [`Pdu::pdu_len`]). `offset` is where `pdu` starts in the frame.
    fn decode_pdu(pdu: &[u8], offset: usize) -> Result<Self, ModbusError>;

    /// Appends the PDU to `out`; on error `out` may hold a partial PDU, which
    /// the frame encoders remove.
    fn encode_pdu(&self, out: &mut Vec<u8>) -> Result<(), ModbusError>;

    /// The function code byte on the wire (0x80 | function for exceptions).
    fn function_code(&self) -> u8;

    /// Decodes a PDU whose length is given by the framing (MBAP): checks that
    /// the length is what the function code needs, then decodes.
    fn decode_exact(pdu: &[u8], offset: usize) -> Result<Self, ModbusError> {
        let function = pdu.first().copied().unwrap_or(0);
        match Self::pdu_len(pdu, offset)? {
            PduLen::Known(n) if n == pdu.len() => Self::decode_pdu(pdu, offset),
            PduLen::Known(n) | PduLen::AtLeast(n) => Err(ModbusError::PduLength {
                offset,
                function,
                expected: n,
                got: pdu.len(),
            }),
        }
    }
}

/// A Modbus exception code (the byte after 0x80 | function). Any byte is
/// kept as is, so vendor-specific codes round-trip; the standard ones have
/// names ([`ExceptionCode::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExceptionCode(pub u8);

impl ExceptionCode {
    /// 0x01: the function code is not supported by the slave.
    pub const ILLEGAL_FUNCTION: ExceptionCode = ExceptionCode(0x01);
    /// 0x02: the register address range is not in the slave's map.
    pub const ILLEGAL_DATA_ADDRESS: ExceptionCode = ExceptionCode(0x02);
    /// 0x03: a value in the request is not allowed.
    pub const ILLEGAL_DATA_VALUE: ExceptionCode = ExceptionCode(0x03);
    /// 0x04: the slave failed while performing the action.
    pub const SERVER_DEVICE_FAILURE: ExceptionCode = ExceptionCode(0x04);
    /// 0x05: accepted, will take long.
    pub const ACKNOWLEDGE: ExceptionCode = ExceptionCode(0x05);
    /// 0x06: busy, retry later.
    pub const SERVER_DEVICE_BUSY: ExceptionCode = ExceptionCode(0x06);
    /// 0x08: memory parity error.
    pub const MEMORY_PARITY_ERROR: ExceptionCode = ExceptionCode(0x08);
    /// 0x0A: the gateway has no path to the target.
    pub const GATEWAY_PATH_UNAVAILABLE: ExceptionCode = ExceptionCode(0x0A);
    /// 0x0B: the target behind the gateway did not answer.
    pub const GATEWAY_TARGET_FAILED: ExceptionCode = ExceptionCode(0x0B);

    /// The standard name of the code, if it has one.
    ///
    /// ```
    /// use chargeswap_protocol::modbus::ExceptionCode;
    /// assert_eq!(ExceptionCode(2).name(), Some("illegal_data_address"));
    /// assert_eq!(ExceptionCode(0x42).name(), None);
    /// ```
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x01 => "illegal_function",
            0x02 => "illegal_data_address",
            0x03 => "illegal_data_value",
            0x04 => "server_device_failure",
            0x05 => "acknowledge",
            0x06 => "server_device_busy",
            0x08 => "memory_parity_error",
            0x0A => "gateway_path_unavailable",
            0x0B => "gateway_target_failed_to_respond",
            _ => return None,
        })
    }
}

impl core::fmt::Display for ExceptionCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.name() {
            Some(n) => write!(f, "0x{:02X} ({n})", self.0),
            None => write!(f, "0x{:02X}", self.0),
        }
    }
}

/// A request PDU (master to slave).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "function", rename_all = "snake_case")]
pub enum Request {
    /// 0x03: read `quantity` (1–125) holding registers from `address`.
    ReadHoldingRegisters {
        /// First register.
        address: u16,
        /// Number of registers.
        quantity: u16,
    },
    /// 0x04: read `quantity` (1–125) input registers from `address`.
    ReadInputRegisters {
        /// First register.
        address: u16,
        /// Number of registers.
        quantity: u16,
    },
    /// 0x06: write one holding register.
    WriteSingleRegister {
        /// The register.
        address: u16,
        /// The value.
        value: u16,
    },
    /// 0x10: write 1–123 holding registers from `address`.
    WriteMultipleRegisters {
        /// First register.
        address: u16,
        /// The values, in register order.
        values: Vec<u16>,
    },
}

/// A response PDU (slave to master).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "function", rename_all = "snake_case")]
pub enum Response {
    /// 0x03: the holding registers read (1–125).
    ReadHoldingRegisters {
        /// The register values, in order.
        registers: Vec<u16>,
    },
    /// 0x04: the input registers read (1–125).
    ReadInputRegisters {
        /// The register values, in order.
        registers: Vec<u16>,
    },
    /// 0x06: the echo of the written register.
    WriteSingleRegister {
        /// The register.
        address: u16,
        /// The value.
        value: u16,
    },
    /// 0x10: the range written.
    WriteMultipleRegisters {
        /// First register.
        address: u16,
        /// Number of registers written (1–123).
        quantity: u16,
    },
    /// 0x80 | function: the slave refused or failed the request.
    Exception {
        /// The function code of the failed request (0x00–0x7F).
        function_code: u8,
        /// Why.
        exception: ExceptionCode,
    },
}

fn check_quantity(quantity: u16, offset: usize, max: u16) -> Result<(), ModbusError> {
    if (1..=max).contains(&quantity) {
        Ok(())
    } else {
        Err(ModbusError::BadQuantity {
            offset,
            quantity,
            min: 1,
            max,
        })
    }
}

fn registers(data: &[u8]) -> Vec<u16> {
    data.chunks_exact(2)
        .map(|p| match p {
            [a, b] => u16::from_be_bytes([*a, *b]),
            _ => 0,
        })
        .collect()
}

fn push16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn encode_quantity(field: &str, n: usize, max: u16) -> Result<u16, ModbusError> {
    match u16::try_from(n) {
        Ok(q) if (1..=max).contains(&q) => Ok(q),
        _ => Err(ModbusError::BadValue {
            field: field.to_owned(),
            value: n.to_string(),
            expected: format!("1 to {max} registers"),
        }),
    }
}

fn addr_and_u16(pdu: &[u8]) -> (u16, u16) {
    (be16(pdu, 1).unwrap_or(0), be16(pdu, 3).unwrap_or(0))
}

impl Request {
    /// The function code on the wire.
    pub fn function_code(&self) -> u8 {
        match self {
            Request::ReadHoldingRegisters { .. } => 0x03,
            Request::ReadInputRegisters { .. } => 0x04,
            Request::WriteSingleRegister { .. } => 0x06,
            Request::WriteMultipleRegisters { .. } => 0x10,
        }
    }

    /// Whether `response` answers this request: same function (or an
    /// exception for it), the register count a read asked for, the echo a
    /// write expects. Used by masters to drop stale or foreign replies.
    ///
    /// ```
    /// use chargeswap_protocol::modbus::{Request, Response, ExceptionCode};
    /// let r = Request::ReadInputRegisters { address: 0, quantity: 2 };
    /// assert!(r.matches(&Response::ReadInputRegisters { registers: vec![1, 2] }));
    /// assert!(!r.matches(&Response::ReadInputRegisters { registers: vec![1] }));
    /// assert!(r.matches(&Response::Exception { function_code: 4, exception: ExceptionCode(2) }));
    /// ```
    pub fn matches(&self, response: &Response) -> bool {
        match (self, response) {
            (_, Response::Exception { function_code, .. }) => {
                *function_code == self.function_code()
            }
            (
                Request::ReadHoldingRegisters { quantity, .. },
                Response::ReadHoldingRegisters { registers },
            )
            | (
                Request::ReadInputRegisters { quantity, .. },
                Response::ReadInputRegisters { registers },
            ) => registers.len() == usize::from(*quantity),
            (
                Request::WriteSingleRegister { address, value },
                Response::WriteSingleRegister {
                    address: a,
                    value: v,
                },
            ) => address == a && value == v,
            (
                Request::WriteMultipleRegisters { address, values },
                Response::WriteMultipleRegisters {
                    address: a,
                    quantity,
                },
            ) => address == a && values.len() == usize::from(*quantity),
            _ => false,
        }
    }
}

impl Pdu for Request {
    const DIRECTION: Direction = Direction::Request;

    fn pdu_len(buf: &[u8], offset: usize) -> Result<PduLen, ModbusError> {
        let Some(&code) = buf.first() else {
            return Ok(PduLen::AtLeast(1));
        };
        match code {
            0x03 | 0x04 | 0x06 => Ok(PduLen::Known(5)),
            0x10 => {
                if let Some(q) = be16(buf, 3) {
                    check_quantity(q, offset + 3, MAX_WRITE_QUANTITY)?;
                    if let Some(&bc) = buf.get(5) {
                        if u16::from(bc) != q * 2 {
                            return Err(ModbusError::BadByteCount {
                                offset: offset + 5,
                                byte_count: bc,
                                expected: format!("2 × quantity = {}", q * 2),
                            });
                        }
                        return Ok(PduLen::Known(6 + usize::from(bc)));
                    }
                }
                Ok(PduLen::AtLeast(8))
            }
            code => Err(ModbusError::UnsupportedFunction {
                offset,
                code,
                exception_allowed: false,
            }),
        }
    }

    fn is_plausible_function(code: u8) -> bool {
        matches!(code, 0x03 | 0x04 | 0x06 | 0x10)
    }

    fn decode_pdu(pdu: &[u8], offset: usize) -> Result<Self, ModbusError> {
        let (address, word) = addr_and_u16(pdu);
        match pdu.first().copied().unwrap_or(0) {
            0x03 => {
                check_quantity(word, offset + 3, MAX_READ_QUANTITY)?;
                Ok(Request::ReadHoldingRegisters {
                    address,
                    quantity: word,
                })
            }
            0x04 => {
                check_quantity(word, offset + 3, MAX_READ_QUANTITY)?;
                Ok(Request::ReadInputRegisters {
                    address,
                    quantity: word,
                })
            }
            0x06 => Ok(Request::WriteSingleRegister {
                address,
                value: word,
            }),
            0x10 => Ok(Request::WriteMultipleRegisters {
                address,
                values: registers(pdu.get(6..).unwrap_or(&[])),
            }),
            code => Err(ModbusError::UnsupportedFunction {
                offset,
                code,
                exception_allowed: false,
            }),
        }
    }

    fn encode_pdu(&self, out: &mut Vec<u8>) -> Result<(), ModbusError> {
        out.push(self.function_code());
        match self {
            Request::ReadHoldingRegisters { address, quantity }
            | Request::ReadInputRegisters { address, quantity } => {
                let q = encode_quantity("quantity", usize::from(*quantity), MAX_READ_QUANTITY)?;
                push16(out, *address);
                push16(out, q);
            }
            Request::WriteSingleRegister { address, value } => {
                push16(out, *address);
                push16(out, *value);
            }
            Request::WriteMultipleRegisters { address, values } => {
                let q = encode_quantity("values", values.len(), MAX_WRITE_QUANTITY)?;
                push16(out, *address);
                push16(out, q);
                // q ≤ 123, so 2q ≤ 246 fits a byte.
                out.push(u8::try_from(q * 2).unwrap_or(u8::MAX));
                for v in values {
                    push16(out, *v);
                }
            }
        }
        Ok(())
    }

    fn function_code(&self) -> u8 {
        Request::function_code(self)
    }
}

impl Response {
    /// The function code on the wire (0x80 | function for exceptions).
    pub fn function_code(&self) -> u8 {
        match self {
            Response::ReadHoldingRegisters { .. } => 0x03,
            Response::ReadInputRegisters { .. } => 0x04,
            Response::WriteSingleRegister { .. } => 0x06,
            Response::WriteMultipleRegisters { .. } => 0x10,
            Response::Exception { function_code, .. } => 0x80 | function_code,
        }
    }
}

impl Pdu for Response {
    const DIRECTION: Direction = Direction::Response;

    fn pdu_len(buf: &[u8], offset: usize) -> Result<PduLen, ModbusError> {
        let Some(&code) = buf.first() else {
            return Ok(PduLen::AtLeast(1));
        };
        match code {
            0x03 | 0x04 => {
                let Some(&bc) = buf.get(1) else {
                    return Ok(PduLen::AtLeast(2));
                };
                if bc == 0 || bc % 2 != 0 || u16::from(bc) > MAX_READ_QUANTITY * 2 {
                    return Err(ModbusError::BadByteCount {
                        offset: offset + 1,
                        byte_count: bc,
                        expected: "an even number from 2 to 250".into(),
                    });
                }
                Ok(PduLen::Known(2 + usize::from(bc)))
            }
            0x06 | 0x10 => Ok(PduLen::Known(5)),
            c if c & 0x80 != 0 => Ok(PduLen::Known(2)),
            code => Err(ModbusError::UnsupportedFunction {
                offset,
                code,
                exception_allowed: true,
            }),
        }
    }

    fn is_plausible_function(code: u8) -> bool {
        matches!(code, 0x03 | 0x04 | 0x06 | 0x10) || code & 0x80 != 0
    }

    fn decode_pdu(pdu: &[u8], offset: usize) -> Result<Self, ModbusError> {
        match pdu.first().copied().unwrap_or(0) {
            0x03 => Ok(Response::ReadHoldingRegisters {
                registers: registers(pdu.get(2..).unwrap_or(&[])),
            }),
            0x04 => Ok(Response::ReadInputRegisters {
                registers: registers(pdu.get(2..).unwrap_or(&[])),
            }),
            0x06 => {
                let (address, value) = addr_and_u16(pdu);
                Ok(Response::WriteSingleRegister { address, value })
            }
            0x10 => {
                let (address, quantity) = addr_and_u16(pdu);
                check_quantity(quantity, offset + 3, MAX_WRITE_QUANTITY)?;
                Ok(Response::WriteMultipleRegisters { address, quantity })
            }
            c if c & 0x80 != 0 => Ok(Response::Exception {
                function_code: c & 0x7F,
                exception: ExceptionCode(pdu.get(1).copied().unwrap_or(0)),
            }),
            code => Err(ModbusError::UnsupportedFunction {
                offset,
                code,
                exception_allowed: true,
            }),
        }
    }

    fn encode_pdu(&self, out: &mut Vec<u8>) -> Result<(), ModbusError> {
        match self {
            Response::ReadHoldingRegisters { registers }
            | Response::ReadInputRegisters { registers } => {
                let q = encode_quantity("registers", registers.len(), MAX_READ_QUANTITY)?;
                out.push(self.function_code());
                out.push(u8::try_from(q * 2).unwrap_or(u8::MAX));
                for r in registers {
                    push16(out, *r);
                }
            }
            Response::WriteSingleRegister { address, value } => {
                out.push(0x06);
                push16(out, *address);
                push16(out, *value);
            }
            Response::WriteMultipleRegisters { address, quantity } => {
                let q = encode_quantity("quantity", usize::from(*quantity), MAX_WRITE_QUANTITY)?;
                out.push(0x10);
                push16(out, *address);
                push16(out, q);
            }
            Response::Exception {
                function_code,
                exception,
            } => {
                if *function_code > 0x7F {
                    return Err(ModbusError::BadValue {
                        field: "function_code".into(),
                        value: function_code.to_string(),
                        expected: "the request's function code, 0 to 127".into(),
                    });
                }
                out.push(0x80 | function_code);
                out.push(exception.0);
            }
        }
        Ok(())
    }

    fn function_code(&self) -> u8 {
        Response::function_code(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc<P: Pdu>(p: &P) -> Vec<u8> {
        let mut v = Vec::new();
        p.encode_pdu(&mut v).unwrap();
        v
    }

    #[test]
    fn request_pdus_encode_per_spec() {
        let r = Request::WriteMultipleRegisters {
            address: 1,
            values: vec![0x000A, 0x0102],
        };
        assert_eq!(enc(&r), [0x10, 0, 1, 0, 2, 4, 0, 0x0A, 1, 2]);
        assert_eq!(Request::decode_exact(&enc(&r), 1).unwrap(), r);
        let r = Request::WriteSingleRegister {
            address: 1,
            value: 3,
        };
        assert_eq!(enc(&r), [0x06, 0, 1, 0, 3]);
    }

    #[test]
    fn quantity_limits_hold_both_ways() {
        let too_many = Request::ReadHoldingRegisters {
            address: 0,
            quantity: 126,
        };
        assert!(matches!(
            too_many.encode_pdu(&mut Vec::new()),
            Err(ModbusError::BadValue { .. })
        ));
        assert_eq!(
            Request::decode_exact(&[0x03, 0, 0, 0, 0], 1),
            Err(ModbusError::BadQuantity {
                offset: 4,
                quantity: 0,
                min: 1,
                max: 125
            })
        );
        let empty = Request::WriteMultipleRegisters {
            address: 0,
            values: vec![],
        };
        assert!(empty.encode_pdu(&mut Vec::new()).is_err());
        assert!(
            Response::ReadInputRegisters { registers: vec![] }
                .encode_pdu(&mut Vec::new())
                .is_err()
        );
    }

    #[test]
    fn byte_count_must_match() {
        assert!(matches!(
            Request::pdu_len(&[0x10, 0, 0, 0, 2, 3], 1),
            Err(ModbusError::BadByteCount {
                offset: 6,
                byte_count: 3,
                ..
            })
        ));
        assert!(matches!(
            Response::pdu_len(&[0x03, 5], 1),
            Err(ModbusError::BadByteCount {
                offset: 2,
                byte_count: 5,
                ..
            })
        ));
        assert_eq!(Response::pdu_len(&[0x03], 1), Ok(PduLen::AtLeast(2)));
        assert_eq!(Response::pdu_len(&[0x83], 1), Ok(PduLen::Known(2)));
    }

    #[test]
    fn exceptions_only_in_responses() {
        assert!(matches!(
            Request::pdu_len(&[0x83, 2], 1),
            Err(ModbusError::UnsupportedFunction {
                code: 0x83,
                exception_allowed: false,
                ..
            })
        ));
        let e = Response::decode_exact(&[0x90, 4], 1).unwrap();
        assert_eq!(
            e,
            Response::Exception {
                function_code: 0x10,
                exception: ExceptionCode::SERVER_DEVICE_FAILURE
            }
        );
        assert_eq!(enc(&e), [0x90, 4]);
        assert!(
            Response::Exception {
                function_code: 0x80,
                exception: ExceptionCode(1)
            }
            .encode_pdu(&mut Vec::new())
            .is_err()
        );
    }

    #[test]
    fn exact_length_is_enforced() {
        assert_eq!(
            Request::decode_exact(&[0x06, 0, 1, 0], 7),
            Err(ModbusError::PduLength {
                offset: 7,
                function: 6,
                expected: 5,
                got: 4
            })
        );
        assert_eq!(
            Response::decode_exact(&[0x04, 2, 0, 1, 9], 7),
            Err(ModbusError::PduLength {
                offset: 7,
                function: 4,
                expected: 4,
                got: 5
            })
        );
    }

    #[test]
    fn serde_form_is_tagged_by_function() {
        let r = Request::ReadInputRegisters {
            address: 16,
            quantity: 2,
        };
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"function": "read_input_registers", "address": 16, "quantity": 2})
        );
        let e = Response::Exception {
            function_code: 3,
            exception: ExceptionCode(2),
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"function": "exception", "function_code": 3, "exception": 2})
        );
        assert_eq!(ExceptionCode(2).to_string(), "0x02 (illegal_data_address)");
    }
}
