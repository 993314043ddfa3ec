//! # chargeswap-protocol
//!
//! Sans-IO device protocol codecs for chargeswap. Codecs take bytes and give
//! typed frames or typed errors; nothing here opens a socket or reads a clock.
//! Transports live behind the `tokio` feature.
//!
//! - [`stream`]: the generic streaming decoder every protocol uses: arbitrary
//!   chunks in, frames out, resynchronisation after corruption, a maximum
//!   frame size.
//! - [`jt808`]: JT/T 808 (2013 and 2019) for the TBOX units on e-bikes.
//! - [`bms`]: battery BMS UART protocols, [`bms::jbd`] and [`bms::daly`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod stream;

pub mod bms;
mod hexbytes;
pub mod jt808;
