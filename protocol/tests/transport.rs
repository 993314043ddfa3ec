//! The tokio transports against each other on loopback: the DTU listener
//! and master against the DTU simulator, the tokio-modbus server against
//! both masters, and every timeout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chargeswap_core::numbering::DeviceNo;
use chargeswap_protocol::modbus::map::{DoorState, SlotCommand, write_battery_no_request};
use chargeswap_protocol::modbus::slave::CabinetSim;
use chargeswap_protocol::modbus::{ExceptionCode, Request, Response, RtuFrame};
use chargeswap_protocol::transport::server::serve_modbus_tcp;
use chargeswap_protocol::transport::slave::run_dtu_simulator;
use chargeswap_protocol::transport::{DtuListener, Master, TimedClient, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_millis(500);

fn cabinet() -> Arc<Mutex<CabinetSim>> {
    let mut cab = CabinetSim::new(4);
    cab.slot_mut(2)
        .unwrap()
        .insert_battery(CabinetSim::sample_battery(DeviceNo::new(200_123).ok(), 77));
    Arc::new(Mutex::new(cab))
}

async fn listener() -> (DtuListener, SocketAddr) {
    let l = DtuListener::bind("127.0.0.1:0".parse().unwrap(), T, T)
        .await
        .unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

#[tokio::test]
async fn dtu_transparent_mode_end_to_end() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let (l, addr) = listener().await;
        let sim = cabinet();
        let dev = tokio::spawn(run_dtu_simulator(
            addr,
            DeviceNo::new(20_001).unwrap(),
            sim.clone(),
            Duration::from_secs(5),
        ));
        let mut s = l.accept().await.unwrap();
        assert_eq!(s.dtu.get(), 20_001);
        let m = &mut s.master;
        let st = m.read_slot_status(2).await.unwrap();
        assert!(st.occupied && st.battery_present);
        let bms = m.read_bms(2).await.unwrap();
        assert_eq!(bms.soc, 77);
        assert_eq!(bms.battery_no.unwrap().get(), 200_123);
        m.slot_command(2, SlotCommand::OpenDoor).await.unwrap();
        assert_eq!(
            sim.lock().unwrap().slot(2).unwrap().status.door,
            DoorState::Open
        );
        assert_eq!(m.read_slot_status(2).await.unwrap().door, DoorState::Open);
        m.write_multiple_registers(2, 0x1100, &[0x0004, 0x93E0])
            .await
            .unwrap(); // 0x000493E0 = 300000
        assert_eq!(
            m.read_bms(2).await.unwrap().battery_no.unwrap().get(),
            300_000
        );
        // a slot with no battery has no BMS block
        match m.read_bms(1).await {
            Err(TransportError::Exception {
                unit: 1,
                function_code: 4,
                exception,
            }) => assert_eq!(exception, ExceptionCode::ILLEGAL_DATA_ADDRESS),
            other => panic!("{other:?}"),
        }
        // a unit nobody answers: a timeout, then the session still works
        let t0 = Instant::now();
        assert!(matches!(
            m.read_slot_status(9).await,
            Err(TransportError::Timeout { .. })
        ));
        assert!(t0.elapsed() >= T && t0.elapsed() < T * 4);
        assert!(m.read_slot_status(1).await.is_ok());
        // broadcast: no answer expected
        assert_eq!(
            m.call(0, &SlotCommand::SetCharger { on: true }.to_request())
                .await
                .unwrap(),
            None
        );
        drop(s);
        // the simulator ends when the platform closes the socket
        dev.await.unwrap().unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn master_skips_heartbeats_garbage_and_stale_answers() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let (l, addr) = listener().await;
        // a hand-made DTU: registers, then answers each request with
        // garbage, a stale answer for another unit, and the right answer
        let dev = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"REG:20002\r\n").await.unwrap();
            let mut buf = [0u8; 8];
            s.read_exact(&mut buf).await.unwrap();
            let req = RtuFrame::<Request>::decode(&buf).unwrap();
            let answer = |unit| {
                RtuFrame {
                    unit,
                    pdu: Response::ReadInputRegisters {
                        registers: vec![0, 0, 1, 1, 0, 100, 0],
                    },
                }
                .encode()
                .unwrap()
            };
            let mut wire = b"HB:20002\r\n".to_vec();
            wire.extend(answer(req.unit + 1));
            wire.extend(answer(req.unit));
            for b in wire {
                s.write_all(&[b]).await.unwrap(); // one byte at a time
            }
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest).await;
        });
        let mut s = l.accept().await.unwrap();
        assert_eq!(s.dtu.get(), 20_002);
        let st = s.master.read_slot_status(3).await.unwrap();
        assert!(st.occupied && st.battery_present);
        assert_eq!(st.charger_voltage.to_string(), "1.00");
        drop(s);
        dev.await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn registration_must_come_in_time_and_well_formed() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let (l, addr) = listener().await;
        let silent = TcpStream::connect(addr).await.unwrap();
        let t0 = Instant::now();
        assert!(matches!(
            l.accept().await,
            Err(TransportError::Timeout { .. })
        ));
        assert!(t0.elapsed() >= T);
        drop(silent);
        let mut bad = TcpStream::connect(addr).await.unwrap();
        bad.write_all(b"REG:200001\r\n").await.unwrap();
        match l.accept().await {
            Err(TransportError::Frame { error, .. }) => {
                assert!(error.to_string().contains("byte offset 4"), "{error}")
            }
            other => panic!("{other:?}"),
        }
        let mut closed = TcpStream::connect(addr).await.unwrap();
        closed.write_all(b"REG:2").await.unwrap();
        closed.shutdown().await.unwrap();
        drop(closed);
        assert!(matches!(
            l.accept().await,
            Err(TransportError::Closed { .. })
        ));
    })
    .await
    .unwrap();
}

async fn modbus_tcp_server() -> (
    SocketAddr,
    Arc<Mutex<CabinetSim>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sim = cabinet();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = rx.await;
    };
    tokio::spawn(serve_modbus_tcp(
        listener,
        sim.clone(),
        Duration::from_millis(700),
        shutdown,
    ));
    (addr, sim, tx)
}

#[tokio::test]
async fn tokio_modbus_server_answers_our_master_and_the_timed_client() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let (addr, sim, stop) = modbus_tcp_server().await;
        let mut m = Master::tcp(TcpStream::connect(addr).await.unwrap(), T);
        assert!(m.read_slot_status(2).await.unwrap().battery_present);
        m.slot_command(1, SlotCommand::OpenDoor).await.unwrap();
        assert_eq!(
            sim.lock().unwrap().slot(1).unwrap().status.door,
            DoorState::Open
        );
        assert!(!m.read_slot_control(1).await.unwrap().door_open_pending);
        let r = m
            .call(7, &SlotCommand::OpenDoor.to_request())
            .await
            .unwrap();
        assert_eq!(
            r,
            Some(Response::Exception {
                function_code: 6,
                exception: ExceptionCode::GATEWAY_TARGET_FAILED
            })
        );

        let mut c = TimedClient::connect_tcp(addr, 2, T).await.unwrap();
        assert_eq!(c.read_bms().await.unwrap().soc, 77);
        let n = DeviceNo::new(4_000_000).ok();
        assert_eq!(
            c.call(&write_battery_no_request(n)).await.unwrap(),
            Response::WriteMultipleRegisters {
                address: 0x1100,
                quantity: 2
            }
        );
        assert_eq!(c.read_bms().await.unwrap().battery_no, n);
        c.set_unit(3);
        assert!(matches!(
            c.read_bms().await,
            Err(TransportError::Exception { unit: 3, .. })
        ));
        c.disconnect().await.unwrap();
        stop.send(()).unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn silent_clients_are_dropped_by_the_server() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let (addr, _sim, stop) = modbus_tcp_server().await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let t0 = Instant::now();
        let mut buf = [0u8; 8];
        let n = s.read(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0);
        assert!(t0.elapsed() >= Duration::from_millis(600));
        stop.send(()).unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn timed_client_over_a_dtu_session() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let (l, addr) = listener().await;
        let sim = cabinet();
        let dev = tokio::spawn(run_dtu_simulator(
            addr,
            DeviceNo::new(20_003).unwrap(),
            sim,
            Duration::from_secs(5),
        ));
        let s = l.accept().await.unwrap();
        let mut c = s.into_tokio_modbus(2);
        assert!(c.read_slot_status().await.unwrap().battery_present);
        assert_eq!(c.read_bms().await.unwrap().soc, 77);
        c.set_unit(9);
        assert!(matches!(
            c.read_slot_status().await,
            Err(TransportError::Timeout { .. })
        ));
        c.disconnect().await.unwrap();
        dev.await.unwrap().unwrap();
    })
    .await
    .unwrap();
}
