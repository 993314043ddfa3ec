//! A Modbus TCP server (tokio-modbus) simulating a cabinet's slot boards
//! from a [`CabinetSim`]: unit N is slot N. Each connection is closed after
//! `idle_timeout` without a request, so a silent client cannot hold a task.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//! use chargeswap_protocol::modbus::slave::CabinetSim;
//! use chargeswap_protocol::transport::server::serve_modbus_tcp;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:1502").await?;
//! let sim = Arc::new(Mutex::new(CabinetSim::new(12)));
//! serve_modbus_tcp(listener, sim, Duration::from_secs(30), std::future::pending()).await
//! # }
//! ```

use std::future::{Future, Ready, ready};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tokio_modbus::server::tcp::Server;
use tokio_modbus::{ExceptionCode as TmException, Response as TmResponse, SlaveRequest};

use crate::modbus::slave::CabinetSim;
use crate::modbus::{Request, Response};

/// tokio-modbus service answering from a shared [`CabinetSim`].
#[derive(Debug, Clone)]
pub struct CabinetService {
    sim: Arc<Mutex<CabinetSim>>,
}

impl CabinetService {
    /// A service over `sim`.
    pub fn new(sim: Arc<Mutex<CabinetSim>>) -> Self {
        CabinetService { sim }
    }
}

/// Our request from tokio-modbus's, if it is one of the four functions we handle.
pub fn request_from_tokio_modbus(r: tokio_modbus::Request<'_>) -> Option<Request> {
    Some(match r {
        tokio_modbus::Request::ReadHoldingRegisters(address, quantity) => {
            Request::ReadHoldingRegisters { address, quantity }
        }
        tokio_modbus::Request::ReadInputRegisters(address, quantity) => {
            Request::ReadInputRegisters { address, quantity }
        }
        tokio_modbus::Request::WriteSingleRegister(address, value) => {
            Request::WriteSingleRegister { address, value }
        }
        tokio_modbus::Request::WriteMultipleRegisters(address, values) => {
            Request::WriteMultipleRegisters {
                address,
                values: values.into_owned(),
            }
        }
        _ => return None,
    })
}

impl tokio_modbus::server::Service for CabinetService {
    type Request = SlaveRequest<'static>;
    type Response = Option<TmResponse>;
    type Exception = TmException;
    type Future = Ready<Result<Option<TmResponse>, TmException>>;

    fn call(&self, req: SlaveRequest<'static>) -> Self::Future {
        let unit = req.slave;
        let Some(request) = request_from_tokio_modbus(req.request) else {
            return ready(Err(TmException::IllegalFunction));
        };
        if unit == 0 {
            // Modbus TCP has no broadcast; unit 0 is no slot.
            return ready(Err(TmException::GatewayTargetDevice));
        }
        let answer = self
            .sim
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .handle(unit, &request);
        ready(match answer {
            None => Err(TmException::GatewayTargetDevice),
            Some(Response::Exception { exception, .. }) => Err(TmException::new(exception.0)),
            Some(Response::ReadHoldingRegisters { registers }) => {
                Ok(Some(TmResponse::ReadHoldingRegisters(registers)))
            }
            Some(Response::ReadInputRegisters { registers }) => {
                Ok(Some(TmResponse::ReadInputRegisters(registers)))
            }
            Some(Response::WriteSingleRegister { address, value }) => {
                Ok(Some(TmResponse::WriteSingleRegister(address, value)))
            }
            Some(Response::WriteMultipleRegisters { address, quantity }) => {
                Ok(Some(TmResponse::WriteMultipleRegisters(address, quantity)))
            }
        })
    }
}

/// A stream whose reads fail with `TimedOut` after `idle` without a byte.
#[derive(Debug)]
pub struct IdleTimeout<S> {
    inner: S,
    idle: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl<S> IdleTimeout<S> {
    /// Wraps `inner`; the idle clock starts now.
    pub fn new(inner: S, idle: Duration) -> Self {
        IdleTimeout {
            inner,
            idle,
            sleep: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                let next = Instant::now() + this.idle;
                this.sleep.as_mut().reset(next);
                Poll::Ready(r)
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no request for {} ms", this.idle.as_millis()),
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Serves Modbus TCP on `listener` from `sim` until `shutdown` completes.
/// Each connection is dropped after `idle_timeout` without a request.
pub async fn serve_modbus_tcp(
    listener: TcpListener,
    sim: Arc<Mutex<CabinetSim>>,
    idle_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> io::Result<()> {
    let server = Server::new(listener);
    let service = CabinetService::new(sim);
    let on_connected = move |stream: tokio::net::TcpStream, _addr| {
        let service = service.clone();
        async move {
            let _ = stream.set_nodelay(true);
            Ok(Some((service, IdleTimeout::new(stream, idle_timeout))))
        }
    };
    server
        .serve_until(&on_connected, |_err| {}, shutdown)
        .await
        .map(|_| ())
}
