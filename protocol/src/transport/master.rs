//! A Modbus master (client) on any async byte stream, RTU or MBAP framing.
//!
//! Each request has a deadline covering the write and the wait for the
//! answer. While waiting, the master decodes with the sans-IO codecs and
//! keeps only the answer that fits the request (same unit, same function or
//! its exception, the register count asked for, the echo a write expects,
//! and for MBAP the same transaction id); garbage, heartbeats and stale
//! answers to earlier timed-out requests are skipped. After a timeout,
//! bytes already waiting on the socket are dropped before the next request.
//!
//! RTU has no transaction id: a late answer to a timed-out request that is
//! identical to the next request cannot be told apart from the answer to
//! the next one. Polling the same block again makes that harmless.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use chargeswap_protocol::transport::Master;
//! let stream = tokio::net::TcpStream::connect("127.0.0.1:1502").await?;
//! let mut m = Master::tcp(stream, Duration::from_millis(500));
//! let status = m.read_slot_status(1).await?;
//! println!("door {:?}, charger {} V", status.door, status.charger_voltage);
//! # Ok(()) }
//! ```

use std::time::Duration;

use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::TransportError;
use crate::modbus::map::{BmsStatus, SlotBoardStatus, SlotCommand, SlotControl};
use crate::modbus::{MbapCodec, Request, Response, RtuCodec, RtuFrame, TcpFrame};
use crate::stream::StreamDecoder;

/// How frames are put on the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// Modbus RTU (with CRC), e.g. RTU over TCP through a DTU.
    Rtu,
    /// Modbus TCP (MBAP header).
    Tcp,
}

/// A Modbus master; see the [module docs](self).
#[derive(Debug)]
pub struct Master<S> {
    io: S,
    framing: Framing,
    timeout: Duration,
    next_transaction: u16,
    dirty: bool,
}

fn describe(unit: u8, r: &Request) -> String {
    match r {
        Request::ReadHoldingRegisters { address, quantity } => {
            format!("read_holding_registers 0x{address:04X} x{quantity} from unit {unit}")
        }
        Request::ReadInputRegisters { address, quantity } => {
            format!("read_input_registers 0x{address:04X} x{quantity} from unit {unit}")
        }
        Request::WriteSingleRegister { address, value } => {
            format!("write_single_register 0x{address:04X} = {value} to unit {unit}")
        }
        Request::WriteMultipleRegisters { address, values } => format!(
            "write_multiple_registers 0x{address:04X} x{} to unit {unit}",
            values.len()
        ),
    }
}

enum Rx {
    Rtu(StreamDecoder<RtuCodec<Response>>),
    Tcp(StreamDecoder<MbapCodec<Response>>),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Master<S> {
    /// A master speaking Modbus RTU on `io` (RTU over TCP, or a serial port).
    pub fn rtu(io: S, timeout: Duration) -> Self {
        Self::new(io, Framing::Rtu, timeout)
    }

    /// A master speaking Modbus TCP on `io`.
    pub fn tcp(io: S, timeout: Duration) -> Self {
        Self::new(io, Framing::Tcp, timeout)
    }

    /// A master with the given framing and per-request timeout.
    pub fn new(io: S, framing: Framing, timeout: Duration) -> Self {
        Master {
            io,
            framing,
            timeout,
            next_transaction: 1,
            dirty: false,
        }
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Changes the per-request timeout.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The framing.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The stream, giving up the master.
    pub fn into_inner(self) -> S {
        self.io
    }

    /// Drops bytes that are already waiting (late answers to a timed-out request).
    fn drain_ready(&mut self) {
        let mut scratch = [0u8; 256];
        for _ in 0..64 {
            match self.io.read(&mut scratch).now_or_never() {
                Some(Ok(n)) if n > 0 => {}
                _ => break,
            }
        }
    }

    /// Sends `request` to `unit` and waits for the answer that fits it.
    ///
    /// Returns `Ok(None)` for an RTU broadcast (unit 0), which no slave
    /// answers. An exception response is `Ok(Some(Response::Exception {..}))`;
    /// the typed helpers turn it into [`TransportError::Exception`].
    pub async fn call(
        &mut self,
        unit: u8,
        request: &Request,
    ) -> Result<Option<Response>, TransportError> {
        let op = describe(unit, request);
        let tid = self.next_transaction;
        self.next_transaction = self.next_transaction.wrapping_add(1);
        let (bytes, mut rx) = match self.framing {
            Framing::Rtu => (
                RtuFrame {
                    unit,
                    pdu: request.clone(),
                }
                .encode(),
                Rx::Rtu(StreamDecoder::new(RtuCodec::expecting(
                    unit,
                    request.function_code(),
                ))),
            ),
            Framing::Tcp => (
                TcpFrame {
                    transaction: tid,
                    unit,
                    pdu: request.clone(),
                }
                .encode(),
                Rx::Tcp(StreamDecoder::new(MbapCodec::new())),
            ),
        };
        let bytes = bytes.map_err(|error| TransportError::Frame {
            operation: op.clone(),
            error,
        })?;
        if self.dirty {
            self.drain_ready();
            self.dirty = false;
        }
        let timeout = self.timeout;
        let broadcast = unit == 0 && self.framing == Framing::Rtu;
        let exchange = async {
            self.io
                .write_all(&bytes)
                .await
                .map_err(|e| TransportError::io(&op, &e))?;
            self.io
                .flush()
                .await
                .map_err(|e| TransportError::io(&op, &e))?;
            if broadcast {
                return Ok(None);
            }
            let mut chunk = [0u8; 512];
            loop {
                let n = self
                    .io
                    .read(&mut chunk)
                    .await
                    .map_err(|e| TransportError::io(&op, &e))?;
                let Some(got) = chunk.get(..n).filter(|c| !c.is_empty()) else {
                    return Err(TransportError::Closed {
                        operation: op.clone(),
                    });
                };
                match &mut rx {
                    Rx::Rtu(d) => {
                        d.push(got);
                        while let Some(r) = d.next_frame() {
                            if let Ok(f) = r {
                                if f.unit == unit && request.matches(&f.pdu) {
                                    return Ok(Some(f.pdu));
                                }
                            }
                        }
                    }
                    Rx::Tcp(d) => {
                        d.push(got);
                        while let Some(r) = d.next_frame() {
                            if let Ok(f) = r {
                                if f.transaction == tid && f.unit == unit && request.matches(&f.pdu)
                                {
                                    return Ok(Some(f.pdu));
                                }
                            }
                        }
                    }
                }
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => {
                self.dirty = true;
                Err(TransportError::timeout(&op, timeout))
            }
        }
    }

    /// [`Master::call`] for a unicast request, with exceptions as errors.
    async fn call_ok(&mut self, unit: u8, request: &Request) -> Result<Response, TransportError> {
        match self.call(unit, request).await? {
            Some(Response::Exception {
                function_code,
                exception,
            }) => Err(TransportError::Exception {
                unit,
                function_code,
                exception,
            }),
            Some(r) => Ok(r),
            None => Err(TransportError::UnexpectedResponse {
                operation: describe(unit, request),
                expected: "an answer".into(),
                got: "none (unit 0 is broadcast on RTU; use call for broadcasts)".into(),
            }),
        }
    }

    /// Function 0x03.
    pub async fn read_holding_registers(
        &mut self,
        unit: u8,
        address: u16,
        quantity: u16,
    ) -> Result<Vec<u16>, TransportError> {
        let req = Request::ReadHoldingRegisters { address, quantity };
        match self.call_ok(unit, &req).await? {
            Response::ReadHoldingRegisters { registers } => Ok(registers),
            other => Err(unexpected(unit, &req, &other)),
        }
    }

    /// Function 0x04.
    pub async fn read_input_registers(
        &mut self,
        unit: u8,
        address: u16,
        quantity: u16,
    ) -> Result<Vec<u16>, TransportError> {
        let req = Request::ReadInputRegisters { address, quantity };
        match self.call_ok(unit, &req).await? {
            Response::ReadInputRegisters { registers } => Ok(registers),
            other => Err(unexpected(unit, &req, &other)),
        }
    }

    /// Function 0x06.
    pub async fn write_single_register(
        &mut self,
        unit: u8,
        address: u16,
        value: u16,
    ) -> Result<(), TransportError> {
        self.call_ok(unit, &Request::WriteSingleRegister { address, value })
            .await
            .map(|_| ())
    }

    /// Function 0x10.
    pub async fn write_multiple_registers(
        &mut self,
        unit: u8,
        address: u16,
        values: &[u16],
    ) -> Result<(), TransportError> {
        let req = Request::WriteMultipleRegisters {
            address,
            values: values.to_vec(),
        };
        self.call_ok(unit, &req).await.map(|_| ())
    }

    /// Reads and decodes a slot board's status block.
    pub async fn read_slot_status(&mut self, unit: u8) -> Result<SlotBoardStatus, TransportError> {
        let regs = self
            .read_block(unit, SlotBoardStatus::read_request())
            .await?;
        SlotBoardStatus::from_registers(&regs).map_err(|error| TransportError::Frame {
            operation: format!("slot status of unit {unit}"),
            error,
        })
    }

    /// Reads and decodes a slot board's control block.
    pub async fn read_slot_control(&mut self, unit: u8) -> Result<SlotControl, TransportError> {
        let regs = self.read_block(unit, SlotControl::read_request()).await?;
        SlotControl::from_registers(&regs).map_err(|error| TransportError::Frame {
            operation: format!("slot control of unit {unit}"),
            error,
        })
    }

    /// Reads and decodes the BMS block of the battery in a slot.
    pub async fn read_bms(&mut self, unit: u8) -> Result<BmsStatus, TransportError> {
        let regs = self.read_block(unit, BmsStatus::read_request()).await?;
        BmsStatus::from_registers(&regs).map_err(|error| TransportError::Frame {
            operation: format!("BMS status of unit {unit}"),
            error,
        })
    }

    /// Sends a command to a slot board.
    pub async fn slot_command(
        &mut self,
        unit: u8,
        command: SlotCommand,
    ) -> Result<(), TransportError> {
        self.call_ok(unit, &command.to_request()).await.map(|_| ())
    }

    async fn read_block(&mut self, unit: u8, req: Request) -> Result<Vec<u16>, TransportError> {
        match self.call_ok(unit, &req).await? {
            Response::ReadHoldingRegisters { registers }
            | Response::ReadInputRegisters { registers } => Ok(registers),
            other => Err(unexpected(unit, &req, &other)),
        }
    }
}

fn unexpected(unit: u8, req: &Request, got: &Response) -> TransportError {
    TransportError::UnexpectedResponse {
        operation: describe(unit, req),
        expected: format!("a function 0x{:02X} answer", req.function_code()),
        got: format!("{got:?}"),
    }
}
