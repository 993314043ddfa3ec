//! tokio-modbus's client with the timeouts it does not have: every call is
//! bounded by the caller's timeout and converted to this crate's types.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chargeswap_protocol::transport::TransportError> {
//! use std::time::Duration;
//! use chargeswap_protocol::modbus::map::SlotBoardStatus;
//! use chargeswap_protocol::transport::TimedClient;
//! let mut c = TimedClient::connect_tcp("127.0.0.1:1502".parse().unwrap(), 1, Duration::from_millis(500)).await?;
//! let rsp = c.call(&SlotBoardStatus::read_request()).await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_modbus::client::{Client, Context};
use tokio_modbus::slave::SlaveContext;
use tokio_modbus::{Request as TmRequest, Response as TmResponse, Slave};

use super::TransportError;
use crate::modbus::map::{BmsStatus, SlotBoardStatus};
use crate::modbus::{ExceptionCode, Request, Response};

/// A tokio-modbus client context with a timeout on every call.
#[allow(missing_debug_implementations)]
pub struct TimedClient {
    ctx: Context,
    unit: u8,
    timeout: Duration,
}

fn to_tokio_modbus(r: &Request) -> TmRequest<'static> {
    match r {
        Request::ReadHoldingRegisters { address, quantity } => {
            TmRequest::ReadHoldingRegisters(*address, *quantity)
        }
        Request::ReadInputRegisters { address, quantity } => {
            TmRequest::ReadInputRegisters(*address, *quantity)
        }
        Request::WriteSingleRegister { address, value } => {
            TmRequest::WriteSingleRegister(*address, *value)
        }
        Request::WriteMultipleRegisters { address, values } => {
            TmRequest::WriteMultipleRegisters(*address, values.clone().into())
        }
    }
}

impl TimedClient {
    /// Wraps a tokio-modbus context, addressing `unit`.
    pub fn new(mut ctx: Context, unit: u8, timeout: Duration) -> Self {
        ctx.set_slave(Slave(unit));
        TimedClient { ctx, unit, timeout }
    }

    /// Connects to a Modbus TCP server within `timeout`.
    pub async fn connect_tcp(
        addr: SocketAddr,
        unit: u8,
        timeout: Duration,
    ) -> Result<Self, TransportError> {
        let op = format!("connecting to Modbus TCP server {addr}");
        let ctx = tokio::time::timeout(
            timeout,
            tokio_modbus::client::tcp::connect_slave(addr, Slave(unit)),
        )
        .await
        .map_err(|_| TransportError::timeout(&op, timeout))?
        .map_err(|e| TransportError::io(&op, &e))?;
        Ok(Self::new(ctx, unit, timeout))
    }

    /// tokio-modbus's RTU client on `transport` (e.g. a DTU socket).
    pub fn rtu<T>(transport: T, unit: u8, timeout: Duration) -> Self
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Self::new(
            tokio_modbus::client::rtu::attach_slave(transport, Slave(unit)),
            unit,
            timeout,
        )
    }

    /// Addresses another unit from now on.
    pub fn set_unit(&mut self, unit: u8) {
        self.unit = unit;
        self.ctx.set_slave(Slave(unit));
    }

    /// Sends `request` and waits at most the timeout. Exceptions come back
    /// as `Ok(Response::Exception {..})`.
    pub async fn call(&mut self, request: &Request) -> Result<Response, TransportError> {
        let op = format!(
            "function 0x{:02X} to unit {} (tokio-modbus)",
            request.function_code(),
            self.unit
        );
        let answer = tokio::time::timeout(self.timeout, self.ctx.call(to_tokio_modbus(request)))
            .await
            .map_err(|_| TransportError::timeout(&op, self.timeout))?;
        let unexpected = |got: String| TransportError::UnexpectedResponse {
            operation: op.clone(),
            expected: format!("a function 0x{:02X} answer", request.function_code()),
            got,
        };
        match answer {
            Err(tokio_modbus::Error::Transport(e)) => Err(TransportError::io(&op, &e)),
            Err(tokio_modbus::Error::Protocol(e)) => Err(unexpected(e.to_string())),
            Ok(Err(code)) => Ok(Response::Exception {
                function_code: request.function_code(),
                exception: ExceptionCode(u8::from(code)),
            }),
            Ok(Ok(TmResponse::ReadHoldingRegisters(registers))) => {
                Ok(Response::ReadHoldingRegisters { registers })
            }
            Ok(Ok(TmResponse::ReadInputRegisters(registers))) => {
                Ok(Response::ReadInputRegisters { registers })
            }
            Ok(Ok(TmResponse::WriteSingleRegister(address, value))) => {
                Ok(Response::WriteSingleRegister { address, value })
            }
            Ok(Ok(TmResponse::WriteMultipleRegisters(address, quantity))) => {
                Ok(Response::WriteMultipleRegisters { address, quantity })
            }
            Ok(Ok(other)) => Err(unexpected(format!("{other:?}"))),
        }
    }

    async fn block(&mut self, request: Request) -> Result<Vec<u16>, TransportError> {
        match self.call(&request).await? {
            Response::ReadHoldingRegisters { registers }
            | Response::ReadInputRegisters { registers } => Ok(registers),
            Response::Exception {
                function_code,
                exception,
            } => Err(TransportError::Exception {
                unit: self.unit,
                function_code,
                exception,
            }),
            other => Err(TransportError::UnexpectedResponse {
                operation: format!("reading a block from unit {}", self.unit),
                expected: "registers".into(),
                got: format!("{other:?}"),
            }),
        }
    }

    /// Reads the current unit's slot status block.
    pub async fn read_slot_status(&mut self) -> Result<SlotBoardStatus, TransportError> {
        let regs = self.block(SlotBoardStatus::read_request()).await?;
        SlotBoardStatus::from_registers(&regs).map_err(|error| TransportError::Frame {
            operation: format!("slot status of unit {}", self.unit),
            error,
        })
    }

    /// Reads the current unit's BMS block.
    pub async fn read_bms(&mut self) -> Result<BmsStatus, TransportError> {
        let regs = self.block(BmsStatus::read_request()).await?;
        BmsStatus::from_registers(&regs).map_err(|error| TransportError::Frame {
            operation: format!("BMS status of unit {}", self.unit),
            error,
        })
    }

    /// Closes the connection within the timeout.
    pub async fn disconnect(mut self) -> Result<(), TransportError> {
        let op = "disconnecting (tokio-modbus)";
        tokio::time::timeout(self.timeout, self.ctx.disconnect())
            .await
            .map_err(|_| TransportError::timeout(op, self.timeout))?
            .map_err(|e| TransportError::io(op, &e))
    }
}
