//! The device side, for tests and demos: a Modbus RTU slave loop over a
//! [`CabinetSim`] and a DTU simulator that dials the platform, registers,
//! and then answers RTU requests like a cabinet behind a transparent DTU.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chargeswap_core::numbering::DeviceNo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::TransportError;
use crate::modbus::dtu::Registration;
use crate::modbus::slave::CabinetSim;
use crate::modbus::{Request, RtuCodec, RtuFrame};
use crate::stream::StreamDecoder;

/// Answers Modbus RTU requests on `io` from `sim` until the peer closes
/// (`Ok`) or is silent for `idle_timeout` (`Err(Timeout)`).
pub async fn serve_rtu<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    sim: Arc<Mutex<CabinetSim>>,
    idle_timeout: Duration,
) -> Result<(), TransportError> {
    const OP: &str = "serving Modbus RTU";
    let mut rx = StreamDecoder::new(RtuCodec::<Request>::new());
    let mut chunk = [0u8; 512];
    let mut out = Vec::new();
    loop {
        let n = match tokio::time::timeout(idle_timeout, io.read(&mut chunk)).await {
            Err(_) => return Err(TransportError::timeout(OP, idle_timeout)),
            Ok(r) => r.map_err(|e| TransportError::io(OP, &e))?,
        };
        let Some(got) = chunk.get(..n).filter(|c| !c.is_empty()) else {
            return Ok(());
        };
        rx.push(got);
        while let Some(r) = rx.next_frame() {
            let Ok(frame) = r else { continue };
            let answer = sim
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .handle(frame.unit, &frame.pdu);
            if let Some(pdu) = answer {
                out.clear();
                RtuFrame {
                    unit: frame.unit,
                    pdu,
                }
                .encode_into(&mut out)
                .map_err(|error| TransportError::Frame {
                    operation: OP.into(),
                    error,
                })?;
                tokio::time::timeout(idle_timeout, io.write_all(&out))
                    .await
                    .map_err(|_| TransportError::timeout(OP, idle_timeout))?
                    .map_err(|e| TransportError::io(OP, &e))?;
            }
        }
    }
}

/// A simulated cabinet DTU: connects to the platform at `platform`, sends
/// the registration packet for `dtu`, then serves `sim` over RTU (see
/// [`serve_rtu`]). Connecting is bounded by `idle_timeout` too.
pub async fn run_dtu_simulator(
    platform: SocketAddr,
    dtu: DeviceNo,
    sim: Arc<Mutex<CabinetSim>>,
    idle_timeout: Duration,
) -> Result<(), TransportError> {
    const OP: &str = "DTU simulator connecting";
    let mut stream = tokio::time::timeout(idle_timeout, TcpStream::connect(platform))
        .await
        .map_err(|_| TransportError::timeout(OP, idle_timeout))?
        .map_err(|e| TransportError::io(OP, &e))?;
    let _ = stream.set_nodelay(true);
    stream
        .write_all(&Registration { dtu }.encode())
        .await
        .map_err(|e| TransportError::io(OP, &e))?;
    serve_rtu(stream, sim, idle_timeout).await
}
