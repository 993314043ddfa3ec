//! Transports (feature `tokio`): the sans-IO codecs on tokio sockets.
//!
//! - [`codec`]: [`TokioCodec`], a tokio-util `Decoder`/`Encoder` over any
//!   [`FrameCodec`](crate::stream::FrameCodec).
//! - [`master`]: [`Master`], a Modbus master (client) over RTU or MBAP
//!   framing on any async byte stream, with a timeout on every request.
//! - [`dtu`]: [`DtuListener`], the platform's TCP server for DTUs in
//!   transparent mode: accept, read the registration packet, then poll the
//!   cabinet's slot boards as Modbus RTU master.
//! - [`slave`]: a Modbus RTU slave loop over [`CabinetSim`](crate::modbus::slave::CabinetSim)
//!   and a DTU simulator that dials the platform, for tests and demos.
//! - [`server`]: a Modbus TCP server (tokio-modbus) simulating a cabinet's
//!   slot boards, with an idle timeout per connection.
//! - [`client`]: [`TimedClient`], tokio-modbus's client with the timeouts
//!   tokio-modbus does not have.
//!
//! Every network wait here has an explicit deadline; nothing waits forever
//! on a peer. Timeouts are given by the caller (there is no global default
//! hidden in a constant the caller cannot change).

use serde::{Deserialize, Serialize};

use crate::modbus::{ExceptionCode, ModbusError};

pub mod client;
pub mod codec;
pub mod dtu;
pub mod master;
pub mod server;
pub mod slave;

pub use client::TimedClient;
pub use codec::TokioCodec;
pub use dtu::{DtuListener, DtuSession};
pub use master::{Framing, Master};

/// Errors of the transports. `operation` says what was being done, e.g.
/// `"read_input_registers 0x0000 x7 from unit 3"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TransportError {
    /// The socket failed.
    #[error("{operation}: I/O error: {message}")]
    Io {
        /// What was being done.
        operation: String,
        /// The system's message.
        message: String,
    },
    /// No complete answer before the deadline.
    #[error("{operation}: no answer within {after_ms} ms")]
    Timeout {
        /// What was being done.
        operation: String,
        /// The timeout, in milliseconds.
        after_ms: u64,
    },
    /// The peer closed the connection.
    #[error("{operation}: the peer closed the connection")]
    Closed {
        /// What was being done.
        operation: String,
    },
    /// A frame could not be encoded or decoded.
    #[error("{operation}: {error}")]
    Frame {
        /// What was being done.
        operation: String,
        /// The codec's error.
        error: ModbusError,
    },
    /// The slave answered with an exception.
    #[error("unit {unit} refused function 0x{function_code:02X} with exception {exception}")]
    Exception {
        /// The slave.
        unit: u8,
        /// The function it refused.
        function_code: u8,
        /// Its exception code.
        exception: ExceptionCode,
    },
    /// A well-formed answer that does not fit the request.
    #[error("{operation}: unexpected response {got}; expected {expected}")]
    UnexpectedResponse {
        /// What was being done.
        operation: String,
        /// What the request needs.
        expected: String,
        /// What came.
        got: String,
    },
}

impl TransportError {
    pub(crate) fn io(operation: &str, e: &std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            return TransportError::Closed {
                operation: operation.into(),
            };
        }
        TransportError::Io {
            operation: operation.into(),
            message: e.to_string(),
        }
    }

    pub(crate) fn timeout(operation: &str, after: std::time::Duration) -> Self {
        TransportError::Timeout {
            operation: operation.into(),
            after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        }
    }
}
