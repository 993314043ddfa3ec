//! # chargeswap-protocol
//!
//! Sans-IO device protocol codecs for chargeswap. Codecs take bytes and give
//! typed frames or typed errors; nothing here opens a socket or reads a clock.
//! Transports live behind the `tokio` feature.
//!
//! - [`stream`]: the generic streaming decoder every protocol uses: arbitrary
//!   chunks in, frames out, resynchronisation after corruption, a maximum
//!   frame size.
//! - [`modbus`]: Modbus RTU, RTU over TCP and Modbus TCP (MBAP); function
//!   codes 0x03, 0x04, 0x06, 0x10 and exceptions; the slot board and BMS
//!   register map; the DTU registration packet.
//! - `transport` (feature `tokio`): a tokio-util codec over any
//!   [`stream::FrameCodec`], a Modbus master with timeouts, the DTU listener
//!   for transparent mode, and a tokio-modbus slot board server.
//! - [`csp`]: CSP v1, the platform's own cabinet protocol (DTU ⇄ platform),
//!   with per-device MACs and a replay window.
//! - [`event`]: the normalized cabinet event and command model, and the
//!   [`CabinetCodec`](event::CabinetCodec) trait vendors' protocols implement.
//! - [`vendor_json`]: a length-prefixed JSON vendor protocol adapted to the
//!   event model.
//! - [`core_events`]: maps normalized events onto the core machines' input
//!   vocabulary (`chargeswap_core::cabinet`).
//! - [`jt808`]: JT/T 808 (2013 and 2019) for the TBOX units on e-bikes.
//! - [`bms`]: battery BMS UART protocols, [`bms::jbd`] and [`bms::daly`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bms;
pub mod core_events;
pub mod csp;
pub mod event;
mod hexbytes;
pub mod jt808;
pub mod modbus;
pub mod stream;
#[cfg(feature = "tokio")]
pub mod transport;
pub mod vendor_json;
