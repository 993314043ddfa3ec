//! The platform side of DTU transparent mode.
//!
//! The cabinet's DTU dials the platform, so the platform is the TCP server:
//! [`DtuListener::accept`] takes a connection, reads the registration packet
//! ([`modbus::dtu`](crate::modbus::dtu), e.g. `REG:20001\r\n`) within the
//! registration timeout, and hands back a [`DtuSession`]: the DTU's device
//! number and a [`Master`] speaking Modbus RTU over the socket, whose every
//! request has the request timeout.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use chargeswap_protocol::transport::DtuListener;
//! let listener = DtuListener::bind("127.0.0.1:9000".parse()?, Duration::from_secs(10), Duration::from_millis(800)).await?;
//! loop {
//!     let mut session = match listener.accept().await {
//!         Ok(s) => s,
//!         Err(e) => { eprintln!("rejected a DTU: {e}"); continue; }
//!     };
//!     tokio::spawn(async move {
//!         for slot in 1..=12u8 {
//!             match session.master.read_slot_status(slot).await {
//!                 Ok(s) => println!("DTU {} slot {slot}: {s:?}", session.dtu),
//!                 Err(e) => eprintln!("DTU {} slot {slot}: {e}", session.dtu),
//!             }
//!         }
//!     });
//! }
//! # }
//! ```

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use chargeswap_core::numbering::DeviceNo;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Master, TimedClient, TransportError};
use crate::modbus::dtu::{MAX_REGISTRATION_LEN, Registration};
use crate::stream::Decoded;

/// Accepts DTUs in transparent mode; see the [module docs](self).
#[derive(Debug)]
pub struct DtuListener {
    listener: TcpListener,
    registration_timeout: Duration,
    request_timeout: Duration,
}

/// A registered DTU connection.
#[derive(Debug)]
pub struct DtuSession {
    /// The DTU's device number, from its registration packet.
    pub dtu: DeviceNo,
    /// The DTU's address.
    pub peer: SocketAddr,
    /// Modbus RTU master over the socket.
    pub master: Master<TcpStream>,
}

impl DtuSession {
    /// Gives the socket to tokio-modbus's RTU client instead of [`Master`],
    /// wrapped with the same request timeout.
    pub fn into_tokio_modbus(self, unit: u8) -> TimedClient {
        let timeout = self.master.timeout();
        TimedClient::rtu(self.master.into_inner(), unit, timeout)
    }
}

/// Reads one registration packet from `io`, byte by byte so that nothing
/// after it is consumed, within `timeout`.
pub async fn read_registration<S: AsyncRead + Unpin>(
    io: &mut S,
    timeout: Duration,
) -> Result<Registration, TransportError> {
    const OP: &str = "reading the DTU registration packet";
    let read = async {
        let mut buf = Vec::with_capacity(MAX_REGISTRATION_LEN);
        loop {
            let b = io.read_u8().await.map_err(|e| TransportError::io(OP, &e))?;
            buf.push(b);
            match Registration::decode_prefix(&buf) {
                Ok(Decoded::Frame { frame, .. }) => return Ok(frame),
                Ok(Decoded::Incomplete) if buf.len() < MAX_REGISTRATION_LEN => {}
                Ok(Decoded::Incomplete) => {
                    return Err(TransportError::Frame {
                        operation: OP.into(),
                        error: crate::modbus::ModbusError::BadRegistration {
                            offset: buf.len(),
                            reason: format!("no CR LF within {MAX_REGISTRATION_LEN} bytes"),
                        },
                    });
                }
                Err(error) => {
                    return Err(TransportError::Frame {
                        operation: OP.into(),
                        error,
                    });
                }
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| Err(TransportError::timeout(OP, timeout)))
}

impl DtuListener {
    /// Wraps a bound listener.
    pub fn new(
        listener: TcpListener,
        registration_timeout: Duration,
        request_timeout: Duration,
    ) -> Self {
        DtuListener {
            listener,
            registration_timeout,
            request_timeout,
        }
    }

    /// Binds `addr`.
    pub async fn bind(
        addr: SocketAddr,
        registration_timeout: Duration,
        request_timeout: Duration,
    ) -> io::Result<Self> {
        Ok(Self::new(
            TcpListener::bind(addr).await?,
            registration_timeout,
            request_timeout,
        ))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Waits for the next DTU and reads its registration. A connection
    /// whose registration is bad or late is closed and the error returned;
    /// the listener stays usable.
    pub async fn accept(&self) -> Result<DtuSession, TransportError> {
        let (mut stream, peer) = self
            .listener
            .accept()
            .await
            .map_err(|e| TransportError::io("accepting a DTU connection", &e))?;
        let _ = stream.set_nodelay(true);
        let reg = read_registration(&mut stream, self.registration_timeout).await?;
        Ok(DtuSession {
            dtu: reg.dtu,
            peer,
            master: Master::rtu(stream, self.request_timeout),
        })
    }
}
