//! Interoperability with a Modbus stack nobody here wrote: pymodbus (PyPI).
//!
//! The peer is `python` with `pymodbus` importable, found as
//! `$CHARGESWAP_PYTHON`, else `<workspace>/.venv/bin/python` (scripts/test.sh
//! creates it and installs the pinned pymodbus), else `python3`. When none
//! has pymodbus the tests print why and pass as skipped, unless
//! `CHARGESWAP_REQUIRE_PEERS=1` (set by scripts/test.sh once the install
//! worked), which turns a missing peer into a failure. Everything runs on
//! 127.0.0.1, each test is bounded in time, and the Python side stops by
//! itself (and is killed by the test when done).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chargeswap_core::numbering::DeviceNo;
use chargeswap_protocol::modbus::map::{
    BmsStatus, DoorState, LockState, SlotBoardStatus, SlotCommand,
};
use chargeswap_protocol::modbus::slave::CabinetSim;
use chargeswap_protocol::modbus::{ExceptionCode, Request, Response};
use chargeswap_protocol::transport::server::serve_modbus_tcp;
use chargeswap_protocol::transport::slave::serve_rtu;
use chargeswap_protocol::transport::{DtuListener, Master, TransportError};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

const LIMIT: Duration = Duration::from_secs(40);
const T: Duration = Duration::from_secs(2);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pymodbus_peer.py")
}

/// A python with pymodbus, or why there is none.
fn peer() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(p) = std::env::var("CHARGESWAP_PYTHON") {
        candidates.push(p.into());
    }
    candidates.push(root.join(".venv/bin/python"));
    candidates.push("python3".into());
    let mut tried = Vec::new();
    for c in candidates {
        let ok = std::process::Command::new(&c)
            .args(["-c", "import pymodbus"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(c);
        }
        tried.push(c.display().to_string());
    }
    Err(format!(
        "no python with pymodbus among {tried:?}; run scripts/test.sh (it creates .venv and installs the pinned pymodbus) or set CHARGESWAP_PYTHON"
    ))
}

/// The peer, or `None` after printing why the test is skipped.
fn peer_or_skip(test: &str) -> Option<PathBuf> {
    match peer() {
        Ok(p) => Some(p),
        Err(why) if std::env::var("CHARGESWAP_REQUIRE_PEERS").as_deref() == Ok("1") => {
            panic!("{test}: CHARGESWAP_REQUIRE_PEERS=1 but {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED {test}: {why}");
            None
        }
    }
}

fn cabinet() -> Arc<Mutex<CabinetSim>> {
    let mut cab = CabinetSim::new(4);
    cab.slot_mut(2)
        .unwrap()
        .insert_battery(CabinetSim::sample_battery(DeviceNo::new(200_123).ok(), 77));
    Arc::new(Mutex::new(cab))
}

async fn run_client(python: &Path, mode: &str, port: u16) -> serde_json::Value {
    let out = Command::new(python)
        .arg(script())
        .args([mode, &port.to_string()])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pymodbus {mode} failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

fn check_client_view(v: &serde_json::Value, sim: &Arc<Mutex<CabinetSim>>) {
    assert_eq!(v["ok"], true);
    let regs: Vec<u16> = serde_json::from_value(v["slot_status"].clone()).unwrap();
    let st = SlotBoardStatus::from_registers(&regs).unwrap();
    assert!(st.occupied && st.battery_present);
    let regs: Vec<u16> = serde_json::from_value(v["bms"].clone()).unwrap();
    let bms = BmsStatus::from_registers(&regs).unwrap();
    assert_eq!(bms.soc, 77);
    assert_eq!(bms.battery_no.unwrap().get(), 200_123);
    // what pymodbus wrote reached the simulated board
    let sim = sim.lock().unwrap();
    let slot = sim.slot(2).unwrap();
    assert_eq!(slot.status.door, DoorState::Open);
    assert_eq!(slot.status.lock, LockState::Unlocked);
    assert_eq!(
        slot.battery.as_ref().unwrap().battery_no.unwrap().get(),
        300_000
    );
}

#[tokio::test]
async fn pymodbus_tcp_client_against_our_tokio_modbus_server() {
    let Some(python) = peer_or_skip("pymodbus_tcp_client_against_our_tokio_modbus_server") else {
        return;
    };
    tokio::time::timeout(LIMIT, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sim = cabinet();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_modbus_tcp(
            listener,
            sim.clone(),
            Duration::from_secs(10),
            async move {
                let _ = stopped.await;
            },
        ));
        let v = run_client(&python, "client-tcp", port).await;
        check_client_view(&v, &sim);
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn pymodbus_rtu_over_tcp_client_against_our_rtu_slave() {
    let Some(python) = peer_or_skip("pymodbus_rtu_over_tcp_client_against_our_rtu_slave") else {
        return;
    };
    tokio::time::timeout(LIMIT, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sim = cabinet();
        let sim2 = sim.clone();
        let slave = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            serve_rtu(s, sim2, Duration::from_secs(10)).await
        });
        let v = run_client(&python, "client-rtu", port).await;
        check_client_view(&v, &sim);
        slave.await.unwrap().unwrap();
    })
    .await
    .expect("test timed out");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What a pymodbus server with the registers of pymodbus_peer.py shows us.
async fn poll_pymodbus_board<S>(m: &mut Master<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let st = m.read_slot_status(1).await.unwrap();
    assert_eq!(st.door, DoorState::Closed);
    assert!(st.occupied && st.battery_present && st.charger_on);
    assert_eq!(st.charger_voltage.to_string(), "54.60");
    assert_eq!(st.charger_current.to_string(), "2.50");
    let bms = m.read_bms(1).await.unwrap();
    assert_eq!(bms.battery_no.unwrap().get(), 200_001);
    assert_eq!(bms.pack_voltage.to_string(), "53.12");
    assert_eq!(bms.pack_current.to_string(), "-12.50");
    assert_eq!(
        bms.temperatures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["25.3", "-5.0"]
    );
    assert!(bms.protection.charge_overcurrent);
    let c = m.read_slot_control(1).await.unwrap();
    assert!(c.charger_enabled && !c.door_open_pending);
    m.slot_command(1, SlotCommand::SetCharger { on: false })
        .await
        .unwrap();
    assert!(!m.read_slot_control(1).await.unwrap().charger_enabled);
    m.write_multiple_registers(1, 0x1100, &[0x0004, 0x93E0])
        .await
        .unwrap();
    assert_eq!(
        m.read_holding_registers(1, 0x1100, 2).await.unwrap(),
        [0x0004, 0x93E0]
    );
    match m.read_input_registers(1, 0x2000, 1).await {
        Err(TransportError::Exception { exception, .. }) => {
            assert_eq!(exception, ExceptionCode::ILLEGAL_DATA_ADDRESS)
        }
        other => panic!("{other:?}"),
    }
    let r = m
        .call(
            1,
            &Request::ReadHoldingRegisters {
                address: 0x0100,
                quantity: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        r,
        Some(Response::ReadHoldingRegisters {
            registers: vec![0, 0]
        })
    );
}

#[tokio::test]
async fn our_tcp_master_against_pymodbus_server() {
    let Some(python) = peer_or_skip("our_tcp_master_against_pymodbus_server") else {
        return;
    };
    tokio::time::timeout(LIMIT, async {
        let port = free_port();
        let mut child = Command::new(&python)
            .arg(script())
            .args(["server-tcp", &port.to_string()])
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)).await {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let mut m = Master::tcp(stream, T);
        poll_pymodbus_board(&mut m).await;
        child.kill().await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn dtu_bridging_a_pymodbus_rtu_slave() {
    let Some(python) = peer_or_skip("dtu_bridging_a_pymodbus_rtu_slave") else {
        return;
    };
    tokio::time::timeout(LIMIT, async {
        let listener =
            DtuListener::bind("127.0.0.1:0".parse().unwrap(), Duration::from_secs(15), T)
                .await
                .unwrap();
        let platform = listener.local_addr().unwrap().port();
        let mut child = Command::new(&python)
            .arg(script())
            .args(["dtu", &platform.to_string(), &free_port().to_string()])
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut s = listener.accept().await.unwrap();
        assert_eq!(s.dtu.get(), 20_009);
        poll_pymodbus_board(&mut s.master).await;
        // and the same board through tokio-modbus's RTU client
        let mut c = s.into_tokio_modbus(1);
        assert_eq!(c.read_bms().await.unwrap().soc, 87);
        c.disconnect().await.unwrap();
        child.kill().await.unwrap();
    })
    .await
    .expect("test timed out");
}
