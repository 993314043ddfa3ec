//! Property tests for the Modbus codecs and register map: round trips both
//! ways for every message type, split-anywhere streaming, no panics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use chargeswap_core::numbering::DeviceNo;
use chargeswap_protocol::modbus::dtu::{Registration, RegistrationCodec};
use chargeswap_protocol::modbus::map::{
    BmsStatus, DoorState, LockState, ProtectionFlags, SlotBoardStatus, SlotControl,
};
use chargeswap_protocol::modbus::{
    ExceptionCode, MbapCodec, Request, Response, RtuCodec, RtuFrame, TcpFrame, crc16,
};
use chargeswap_protocol::stream::{FrameCodec, StreamDecoder};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn arb_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (any::<u16>(), 1u16..=125).prop_map(|(address, quantity)| {
            Request::ReadHoldingRegisters { address, quantity }
        }),
        (any::<u16>(), 1u16..=125)
            .prop_map(|(address, quantity)| Request::ReadInputRegisters { address, quantity }),
        (any::<u16>(), any::<u16>())
            .prop_map(|(address, value)| Request::WriteSingleRegister { address, value }),
        (any::<u16>(), prop::collection::vec(any::<u16>(), 1..=123))
            .prop_map(|(address, values)| Request::WriteMultipleRegisters { address, values }),
    ]
}

fn arb_response() -> impl Strategy<Value = Response> {
    prop_oneof![
        prop::collection::vec(any::<u16>(), 1..=125)
            .prop_map(|registers| Response::ReadHoldingRegisters { registers }),
        prop::collection::vec(any::<u16>(), 1..=125)
            .prop_map(|registers| Response::ReadInputRegisters { registers }),
        (any::<u16>(), any::<u16>())
            .prop_map(|(address, value)| Response::WriteSingleRegister { address, value }),
        (any::<u16>(), 1u16..=123)
            .prop_map(|(address, quantity)| Response::WriteMultipleRegisters { address, quantity }),
        (0u8..=0x7F, any::<u8>()).prop_map(|(function_code, e)| Response::Exception {
            function_code,
            exception: ExceptionCode(e),
        }),
    ]
}

fn split_feed<C: FrameCodec>(codec: C, wire: &[u8], cuts: &[prop::sample::Index]) -> Vec<C::Frame> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
    points.sort_unstable();
    let mut d = StreamDecoder::new(codec);
    let mut out = Vec::new();
    let mut last = 0;
    for p in points.into_iter().chain([wire.len()]) {
        d.push(&wire[last..p]);
        last = p;
        out.extend(d.drain_frames());
    }
    assert_eq!(d.buffered(), 0);
    out
}

/// Frame bytes with a correct CRC around arbitrary content.
fn with_crc(mut body: Vec<u8>) -> Vec<u8> {
    let c = crc16(&body);
    body.extend_from_slice(&c.to_le_bytes());
    body
}

fn dec(cents: u16, scale: u32) -> Decimal {
    Decimal::new(i64::from(cents), scale)
}

fn arb_slot_status() -> impl Strategy<Value = SlotBoardStatus> {
    (any::<[bool; 7]>(), any::<u16>(), any::<u16>()).prop_map(|(b, v, i)| SlotBoardStatus {
        door: if b[0] {
            DoorState::Open
        } else {
            DoorState::Closed
        },
        lock: if b[1] {
            LockState::Unlocked
        } else {
            LockState::Locked
        },
        occupied: b[2],
        battery_present: b[3],
        charger_on: b[4],
        charger_voltage: dec(v, 2),
        charger_current: dec(i, 2),
    })
}

fn arb_bms() -> impl Strategy<Value = BmsStatus> {
    (
        prop::option::of(200_001u64..=5_000_000),
        any::<u16>(),
        any::<i16>(),
        0u8..=100,
        0u8..=100,
        any::<u16>(),
        prop::collection::vec(any::<u16>(), 0..=24),
        prop::collection::vec(any::<i16>(), 0..=8),
        any::<u16>(),
    )
        .prop_map(
            |(n, v, i, soc, soh, cycles, cells, temps, flags)| BmsStatus {
                battery_no: n.map(|n| DeviceNo::new(n).unwrap()),
                pack_voltage: dec(v, 2),
                pack_current: Decimal::new(i64::from(i), 2),
                soc,
                soh,
                cycles,
                cell_voltages: cells.into_iter().map(|c| dec(c, 3)).collect(),
                temperatures: temps
                    .into_iter()
                    .map(|t| Decimal::new(i64::from(t), 1))
                    .collect(),
                protection: ProtectionFlags::from_register(flags),
            },
        )
}

proptest! {
    #[test]
    fn rtu_request_encode_then_decode(unit in any::<u8>(), pdu in arb_request()) {
        let f = RtuFrame { unit, pdu };
        let bytes = f.encode().unwrap();
        prop_assert_eq!(RtuFrame::<Request>::decode(&bytes).unwrap(), f);
    }

    #[test]
    fn rtu_response_encode_then_decode(unit in any::<u8>(), pdu in arb_response()) {
        let f = RtuFrame { unit, pdu };
        let bytes = f.encode().unwrap();
        prop_assert_eq!(RtuFrame::<Response>::decode(&bytes).unwrap(), f);
    }

    #[test]
    fn tcp_encode_then_decode(transaction in any::<u16>(), unit in any::<u8>(),
                              req in arb_request(), rsp in arb_response()) {
        let f = TcpFrame { transaction, unit, pdu: req };
        prop_assert_eq!(TcpFrame::<Request>::decode(&f.encode().unwrap()).unwrap(), f);
        let f = TcpFrame { transaction, unit, pdu: rsp };
        prop_assert_eq!(TcpFrame::<Response>::decode(&f.encode().unwrap()).unwrap(), f);
    }

    /// Any bytes with a correct CRC that decode re-encode to the same bytes.
    #[test]
    fn rtu_decode_then_encode(body in prop::collection::vec(any::<u8>(), 1..40),
                              fc in prop::sample::select(vec![3u8, 4, 6, 0x10, 0x83, 0x90])) {
        let mut body = body;
        if body.len() > 1 { body[1] = fc; }
        let bytes = with_crc(body);
        if let Ok(f) = RtuFrame::<Request>::decode(&bytes) {
            prop_assert_eq!(f.encode().unwrap(), bytes.clone());
        }
        if let Ok(f) = RtuFrame::<Response>::decode(&bytes) {
            prop_assert_eq!(f.encode().unwrap(), bytes);
        }
    }

    /// Same for MBAP, with the length field made consistent.
    #[test]
    fn tcp_decode_then_encode(tid in any::<u16>(), unit in any::<u8>(),
                              pdu in prop::collection::vec(any::<u8>(), 1..30),
                              fc in prop::sample::select(vec![3u8, 4, 6, 0x10, 0x84])) {
        let mut pdu = pdu;
        pdu[0] = fc;
        let mut bytes = tid.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&(pdu.len() as u16 + 1).to_be_bytes());
        bytes.push(unit);
        bytes.extend_from_slice(&pdu);
        if let Ok(f) = TcpFrame::<Request>::decode(&bytes) {
            prop_assert_eq!(f.encode().unwrap(), bytes.clone());
        }
        if let Ok(f) = TcpFrame::<Response>::decode(&bytes) {
            prop_assert_eq!(f.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn rtu_requests_split_anywhere(frames in prop::collection::vec((1u8..=247, arb_request()), 0..12),
                                   cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        let frames: Vec<_> = frames.into_iter().map(|(unit, pdu)| RtuFrame { unit, pdu }).collect();
        let wire: Vec<u8> = frames.iter().flat_map(|f| f.encode().unwrap()).collect();
        prop_assert_eq!(split_feed(RtuCodec::<Request>::new(), &wire, &cuts), frames);
    }

    #[test]
    fn rtu_responses_split_anywhere(frames in prop::collection::vec((1u8..=247, arb_response()), 0..12),
                                    cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        let frames: Vec<_> = frames.into_iter().map(|(unit, pdu)| RtuFrame { unit, pdu }).collect();
        let wire: Vec<u8> = frames.iter().flat_map(|f| f.encode().unwrap()).collect();
        prop_assert_eq!(split_feed(RtuCodec::<Response>::new(), &wire, &cuts), frames);
    }

    #[test]
    fn mbap_split_anywhere(reqs in prop::collection::vec((any::<u16>(), any::<u8>(), arb_request()), 0..12),
                           rsps in prop::collection::vec((any::<u16>(), any::<u8>(), arb_response()), 0..12),
                           cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        let reqs: Vec<_> = reqs.into_iter().map(|(transaction, unit, pdu)| TcpFrame { transaction, unit, pdu }).collect();
        let wire: Vec<u8> = reqs.iter().flat_map(|f| f.encode().unwrap()).collect();
        prop_assert_eq!(split_feed(MbapCodec::<Request>::new(), &wire, &cuts), reqs);
        let rsps: Vec<_> = rsps.into_iter().map(|(transaction, unit, pdu)| TcpFrame { transaction, unit, pdu }).collect();
        let wire: Vec<u8> = rsps.iter().flat_map(|f| f.encode().unwrap()).collect();
        prop_assert_eq!(split_feed(MbapCodec::<Response>::new(), &wire, &cuts), rsps);
    }

    #[test]
    fn registrations_split_anywhere(ns in prop::collection::vec(20_001u64..=200_000, 0..8),
                                    cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let regs: Vec<_> = ns.into_iter().map(|n| Registration { dtu: DeviceNo::new(n).unwrap() }).collect();
        let wire: Vec<u8> = regs.iter().flat_map(Registration::encode).collect();
        prop_assert_eq!(split_feed(RegistrationCodec, &wire, &cuts), regs.clone());
        for r in regs {
            prop_assert_eq!(Registration::decode(&r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = RtuFrame::<Request>::decode(&bytes);
        let _ = RtuFrame::<Response>::decode(&bytes);
        let _ = TcpFrame::<Request>::decode(&bytes);
        let _ = TcpFrame::<Response>::decode(&bytes);
        let _ = Registration::decode(&bytes);
        fn drain<C: FrameCodec>(c: C, bytes: &[u8]) -> usize {
            let mut d = StreamDecoder::new(c);
            d.push(bytes);
            let mut steps = 0;
            while d.next_frame().is_some() {
                steps += 1;
                assert!(steps <= bytes.len());
            }
            d.buffered()
        }
        prop_assert!(drain(RtuCodec::<Request>::new(), &bytes) < 256);
        prop_assert!(drain(RtuCodec::<Response>::new(), &bytes) < 256);
        prop_assert!(drain(MbapCodec::<Request>::new(), &bytes) < 260);
        prop_assert!(drain(MbapCodec::<Response>::new(), &bytes) < 260);
        prop_assert!(drain(RegistrationCodec, &bytes) < 16);
    }

    #[test]
    fn slot_status_round_trips(s in arb_slot_status()) {
        let regs = s.to_registers().unwrap();
        prop_assert_eq!(SlotBoardStatus::from_registers(&regs).unwrap(), s);
        prop_assert_eq!(SlotBoardStatus::from_registers(&regs).unwrap().to_registers().unwrap(), regs);
    }

    #[test]
    fn slot_control_round_trips(a in any::<bool>(), b in any::<bool>()) {
        let c = SlotControl { charger_enabled: a, door_open_pending: b };
        prop_assert_eq!(SlotControl::from_registers(&c.to_registers()).unwrap(), c);
    }

    #[test]
    fn bms_round_trips(b in arb_bms()) {
        let regs = b.to_registers().unwrap();
        let back = BmsStatus::from_registers(&regs).unwrap();
        prop_assert_eq!(&back, &b);
        prop_assert_eq!(back.to_registers().unwrap(), regs);
    }

    #[test]
    fn map_decoders_never_panic(regs in prop::collection::vec(any::<u16>(), 0..60)) {
        let _ = SlotBoardStatus::from_registers(&regs);
        let _ = SlotControl::from_registers(&regs);
        if let Ok(b) = BmsStatus::from_registers(&regs) {
            // a decoded block re-encodes; only reserved/unused registers may differ
            let again = b.to_registers().unwrap();
            prop_assert_eq!(BmsStatus::from_registers(&again).unwrap(), b);
        }
    }
}
