//! Unit, property and streaming tests of CSP.

use super::*;
use crate::event::{
    AlarmKind, AlarmState, BmsSummary, CabinetConfig, DoorFailure, OpenReason, ResultCode,
    SlotBattery, SlotReport, SlotState, SwapOrder, SwapOutcome, Tariff, TierPrice, TouPeriod,
    TouTier, arb,
};
use crate::stream::{StreamDecoder, StreamError};
use chargeswap_core::money::Currency;
use proptest::prelude::*;

fn dn(n: u64) -> DeviceNo {
    DeviceNo::new(n).unwrap()
}

fn dev() -> DeviceNo {
    dn(20_001)
}

/// The fixed test key of the golden vectors: bytes 0x00..=0x1F.
fn key() -> DeviceKey {
    DeviceKey::new(&(0u8..32).collect::<Vec<_>>()).unwrap()
}

fn bms() -> BmsSummary {
    BmsSummary {
        soc_pct: 87,
        soh_pct: 96,
        pack_mv: 54_320,
        current_ma: -1_500,
        temp_dc: 253,
        cycles: 312,
        cell_min_mv: 3_390,
        cell_max_mv: 3_402,
        protection: 0,
    }
}

fn tariff() -> Tariff {
    Tariff {
        tariff_id: 7,
        currency: Currency::CNY,
        swap_fee: 350_000,
        tiers: vec![
            TierPrice {
                tier: TouTier::Peak,
                energy_per_kwh: 110_000,
                service_per_kwh: 40_000,
            },
            TierPrice {
                tier: TouTier::Valley,
                energy_per_kwh: 35_000,
                service_per_kwh: 40_000,
            },
        ],
        periods: vec![
            TouPeriod {
                start_minute: 0,
                tier: TouTier::Valley,
            },
            TouPeriod {
                start_minute: 480,
                tier: TouTier::Peak,
            },
            TouPeriod {
                start_minute: 1320,
                tier: TouTier::Valley,
            },
        ],
        effective_from: 1_735_689_600,
    }
}

/// One sample of every message.
fn samples() -> Vec<Message> {
    vec![
        Message::Login(Login {
            firmware: "1.4.2".into(),
            model: "CS-12".into(),
            slot_count: 12,
        }),
        Message::Heartbeat(Heartbeat {
            uptime_s: 3600,
            rssi_dbm: Some(-71),
        }),
        Message::CabinetStatus(CabinetStatus {
            slots: vec![
                SlotReport {
                    slot: 1,
                    state: SlotState::Empty,
                    battery: None,
                },
                SlotReport {
                    slot: 2,
                    state: SlotState::Charging,
                    battery: Some(SlotBattery {
                        battery: dn(200_001),
                        soc_pct: 64,
                        voltage_mv: 52_100,
                        temp_dc: 291,
                    }),
                },
                SlotReport {
                    slot: 3,
                    state: SlotState::Locked,
                    battery: None,
                },
            ],
        }),
        Message::DoorOpened(DoorOpened {
            slot: 3,
            command_seq: Some(100),
        }),
        Message::DoorClosed(DoorClosed { slot: 3 }),
        Message::DoorFailed(DoorFailed {
            slot: 4,
            reason: DoorFailure::Jammed,
            command_seq: None,
        }),
        Message::BatteryInserted(BatteryEvent {
            slot: 3,
            battery: dn(200_001),
            bms: Some(bms()),
        }),
        Message::BatteryRemoved(BatteryEvent {
            slot: 5,
            battery: dn(4_999_999),
            bms: None,
        }),
        Message::SwapResult(SwapResult {
            order_id: 900_000_001,
            outcome: SwapOutcome::Completed,
            returned_battery: Some(dn(200_001)),
            issued_battery: Some(dn(200_002)),
        }),
        Message::Alarm(Alarm {
            alarm: AlarmKind::OverTemperature,
            state: AlarmState::Raised,
            slot: Some(6),
            reading: Some(655),
        }),
        Message::TimeSyncRequest(TimeSyncRequest {
            device_time: 1_735_689_600,
        }),
        Message::Ack(Ack {
            ack_seq: 7,
            result: ResultCode::Ok,
        }),
        Message::OpenDoor(OpenDoor {
            slot: 3,
            reason: OpenReason::SwapIssue,
            order_id: Some(900_000_001),
        }),
        Message::SwapOrder(SwapOrder {
            order_id: 900_000_001,
            return_slot: 2,
            issue_slot: 7,
            issue_battery: dn(200_002),
            expected_return: Some(dn(200_001)),
            expires_at: 1_735_689_660,
        }),
        Message::TimeSync(TimeSync {
            unix_ms: 1_735_689_600_123,
            utc_offset_min: 480,
        }),
        Message::TariffPush(tariff()),
        Message::ConfigPush(CabinetConfig {
            heartbeat_interval_s: 60,
            status_interval_s: 300,
            door_open_timeout_s: 30,
            over_temperature_dc: 600,
            max_charge_current_ma: 5_000,
            disabled_slots: vec![9],
        }),
        Message::QueryStatus,
    ]
}

fn frame_of(m: Message, seq: u32) -> Frame {
    let f = Frame::new(dev(), seq, m);
    if f.command().requires_mac() {
        f.sealed(&key()).unwrap()
    } else {
        f
    }
}

#[test]
fn samples_cover_every_command() {
    let mut cmds: Vec<Command> = samples().iter().map(Message::command).collect();
    cmds.dedup();
    assert_eq!(cmds, Command::ALL);
    for c in Command::ALL {
        assert_eq!(Command::from_code(c.code()), Some(*c));
        assert_eq!(
            serde_json::to_value(c).unwrap(),
            serde_json::json!(c.name())
        );
    }
    assert_eq!(Command::from_code(0x00), None);
    assert_eq!(Command::from_code(0x0C), None);
}

#[test]
fn every_sample_round_trips() {
    for (i, m) in samples().into_iter().enumerate() {
        let f = frame_of(m, i as u32);
        let bytes = f.encode().unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.encode().unwrap(), bytes);
        let h = decode_header(&bytes).unwrap();
        assert_eq!(h.frame_len(), bytes.len());
        assert_eq!(h.command, f.command());
        assert_eq!(f.header().unwrap(), h);
        // JSON round trip of the frame
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<Frame>(&json).unwrap(), f);
        // authenticates under the key when sealed
        let mut w = ReplayWindow::new();
        assert_eq!(
            authenticate(&back, &key(), &mut w).unwrap(),
            f.mac.is_some()
        );
    }
}

#[test]
fn crc_is_crc32_iso_hdlc() {
    // the catalogue check value of CRC-32/ISO-HDLC
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn door_closed_bytes_by_hand() {
    let f = Frame::new(dev(), 7, Message::DoorClosed(DoorClosed { slot: 3 }));
    let bytes = f.encode().unwrap();
    let body = [
        0x43, 0x53, // magic
        0x01, // version
        0x00, 0x01, // payload length 1
        0x00, 0x00, 0x4E, 0x21, // 20001
        0x00, 0x00, 0x00, 0x07, // seq 7
        0x05, // door_closed
        0x00, // flags
        0x03, // slot 3 (u8, one raw byte)
    ];
    assert_eq!(&bytes[..16], &body);
    assert_eq!(&bytes[16..], &crc32(&body).to_be_bytes());
}

#[test]
fn payload_encodings_by_hand() {
    let payload = |m: Message| {
        let b = Frame::new(dev(), 1, m).encode_body(false).unwrap();
        b[HEADER_LEN..].to_vec()
    };
    // heartbeat: uptime 3600 = varint 90 1C; Some(-71 as i8) = 01 B9
    assert_eq!(
        payload(Message::Heartbeat(Heartbeat {
            uptime_s: 3600,
            rssi_dbm: Some(-71)
        })),
        [0x90, 0x1C, 0x01, 0xB9]
    );
    // login: strings are varint length + UTF-8
    assert_eq!(
        payload(Message::Login(Login {
            firmware: "1.0".into(),
            model: "X".into(),
            slot_count: 12
        })),
        [0x03, b'1', b'.', b'0', 0x01, b'X', 0x0C]
    );
    // ack: seq 300 = AC 02; result index 13 (duplicate)
    assert_eq!(
        payload(Message::Ack(Ack {
            ack_seq: 300,
            result: ResultCode::Duplicate
        })),
        [0xAC, 0x02, 0x0D]
    );
    // alarm: water (2), cleared (1), slot None, reading Some(-5) zigzag 9
    assert_eq!(
        payload(Message::Alarm(Alarm {
            alarm: AlarmKind::Water,
            state: AlarmState::Cleared,
            slot: None,
            reading: Some(-5)
        })),
        [0x02, 0x01, 0x00, 0x01, 0x09]
    );
    assert_eq!(payload(Message::QueryStatus), Vec::<u8>::new());
}

fn raw(cmd: u8, flags: u8, payload: &[u8], device: u32) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    v.push(VERSION);
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&device.to_be_bytes());
    v.extend_from_slice(&1u32.to_be_bytes());
    v.push(cmd);
    v.push(flags);
    v.extend_from_slice(payload);
    if flags & FLAG_MAC != 0 {
        v.extend_from_slice(&[0; MAC_LEN]);
    }
    let crc = crc32(&v);
    v.extend_from_slice(&crc.to_be_bytes());
    v
}

#[test]
fn decode_errors_name_offsets() {
    let good = raw(0x05, 0, &[3], 20_001);
    assert!(decode(&good).is_ok());

    let e = decode(&good[..10]).unwrap_err();
    assert_eq!(
        e,
        CspError::Truncated {
            needed: 15,
            available: 10
        }
    );
    let e = decode(&good[..17]).unwrap_err();
    assert_eq!(
        e,
        CspError::Truncated {
            needed: 20,
            available: 17
        }
    );

    let mut b = good.clone();
    b[0] = 0x44;
    assert!(matches!(
        decode(&b),
        Err(CspError::BadMagic {
            offset: 0,
            found: 0x44,
            expected: 0x43
        })
    ));
    let mut b = good.clone();
    b[1] = 0x00;
    let e = decode(&b).unwrap_err();
    assert_eq!(e.offset(), Some(1));
    assert!(e.to_string().contains("at byte 1"), "{e}");

    let mut b = good.clone();
    b[2] = 2;
    assert!(matches!(
        decode(&b),
        Err(CspError::UnsupportedVersion {
            offset: 2,
            found: 2,
            supported: 1
        })
    ));

    let mut b = good.clone();
    b[3] = 0x10;
    b[4] = 0x01; // 4097
    assert!(matches!(
        decode(&b),
        Err(CspError::PayloadTooLong {
            offset: 3,
            length: 4097,
            max: 4096
        })
    ));

    let e = decode(&raw(0x05, 0, &[3], 20_000)).unwrap_err();
    assert!(matches!(
        e,
        CspError::BadDeviceNo {
            offset: 5,
            number: 20_000,
            ..
        }
    ));
    let e = decode(&raw(0x05, 0, &[3], 200_001)).unwrap_err();
    assert!(e.to_string().contains("battery number"), "{e}");

    assert!(matches!(
        decode(&raw(0x0C, 0, &[], 20_001)),
        Err(CspError::UnknownCommand {
            offset: 13,
            code: 0x0C
        })
    ));
    assert!(matches!(
        decode(&raw(0x05, 0x80, &[3], 20_001)),
        Err(CspError::ReservedFlags {
            offset: 14,
            flags: 0x80
        })
    ));
    // open door without MAC flag
    assert!(matches!(
        decode(&raw(0x81, 0, &[3, 1, 0], 20_001)),
        Err(CspError::MacRequired {
            offset: 14,
            command: Command::OpenDoor
        })
    ));

    let mut b = good.clone();
    let last = b.len() - 1;
    b[last] ^= 1;
    let e = decode(&b).unwrap_err();
    assert!(matches!(e, CspError::BadCrc { offset: 16, .. }), "{e:?}");
    assert!(e.to_string().contains("at byte 16"));

    // door failed with reason index 9: out of range enum
    let e = decode(&raw(0x06, 0, &[3, 9, 0], 20_001)).unwrap_err();
    assert!(
        matches!(
            e,
            CspError::BadPayload {
                offset: 15,
                command: Command::DoorFailed,
                ..
            }
        ),
        "{e:?}"
    );
    // empty payload for a door event: ends early
    let e = decode(&raw(0x05, 0, &[], 20_001)).unwrap_err();
    assert!(e.to_string().contains("ends before"), "{e}");
    // an extra byte after the struct
    assert!(matches!(
        decode(&raw(0x05, 0, &[3, 0], 20_001)),
        Err(CspError::TrailingPayload {
            offset: 16,
            extra: 1,
            ..
        })
    ));
    assert!(matches!(
        decode(&raw(0x86, 0, &[0], 20_001)),
        Err(CspError::TrailingPayload { offset: 15, .. })
    ));
    // heartbeat uptime 5 as an over-long varint 85 00
    assert!(matches!(
        decode(&raw(0x02, 0, &[0x85, 0x00, 0x00], 20_001)),
        Err(CspError::NonCanonical {
            offset: 15,
            command: Command::Heartbeat
        })
    ));
    // slot 0
    let e = decode(&raw(0x05, 0, &[0], 20_001)).unwrap_err();
    assert!(
        matches!(e, CspError::InvalidField { offset: 15, ref field, .. } if field == "slot"),
        "{e:?}"
    );
    // battery inserted with a DTU number as battery: varint 20001 = A1 9C 01
    let e = decode(&raw(0x07, 0, &[3, 0xA1, 0x9C, 0x01, 0x00], 20_001)).unwrap_err();
    assert!(e.to_string().contains("battery"), "{e}");
    // battery number out of the plan entirely (5): a custom serde error
    let e = decode(&raw(0x07, 0, &[3, 0x05, 0x00], 20_001)).unwrap_err();
    assert!(e.to_string().contains("numbering plan"), "{e}");

    let mut two = good.clone();
    two.push(0x43);
    assert!(matches!(
        decode(&two),
        Err(CspError::TrailingBytes {
            offset: 20,
            extra: 1
        })
    ));
}

#[test]
fn encode_errors() {
    let open = Frame::new(
        dev(),
        1,
        Message::OpenDoor(OpenDoor {
            slot: 1,
            reason: OpenReason::Maintenance,
            order_id: None,
        }),
    );
    assert!(matches!(
        open.encode(),
        Err(CspError::MacRequired {
            command: Command::OpenDoor,
            ..
        })
    ));
    let bad = Frame::new(dev(), 1, Message::DoorClosed(DoorClosed { slot: 0 }));
    assert!(matches!(bad.encode(), Err(CspError::InvalidField { .. })));
    let battery_sender = Frame::new(dn(200_001), 1, Message::DoorClosed(DoorClosed { slot: 1 }));
    assert!(matches!(
        battery_sender.encode(),
        Err(CspError::BadDeviceNo { .. })
    ));
    // a tariff with a period every minute does not fit 4096 bytes
    let mut t = tariff();
    t.periods = (0..1440)
        .map(|m| TouPeriod {
            start_minute: m,
            tier: TouTier::Peak,
        })
        .collect();
    let big = Frame::new(dev(), 1, Message::TariffPush(t));
    assert!(matches!(
        big.encode_sealed(&key()),
        Err(CspError::PayloadTooLong { max: 4096, .. })
    ));
    // the largest status report (255 slots, widest values) does fit
    let slots: Vec<SlotReport> = (1..=255)
        .map(|s| SlotReport {
            slot: s,
            state: SlotState::Charging,
            battery: Some(SlotBattery {
                battery: dn(5_000_000),
                soc_pct: 100,
                voltage_mv: u32::MAX,
                temp_dc: i16::MIN,
            }),
        })
        .collect();
    let f = Frame::new(dev(), 1, Message::CabinetStatus(CabinetStatus { slots }));
    let bytes = f.encode_sealed(&key()).unwrap();
    assert!(bytes.len() <= MAX_FRAME_LEN);
    assert_eq!(decode(&bytes).unwrap().message, f.message);
}

#[test]
fn keys_and_macs() {
    assert!(matches!(
        DeviceKey::new(&[0; 15]),
        Err(CspError::BadKey {
            length: 15,
            min: 16,
            max: 64
        })
    ));
    assert!(DeviceKey::new(&[0; 65]).is_err());
    assert!(DeviceKey::new(&[0; 64]).is_ok());
    let e = DeviceKey::from_hex("zz").unwrap_err();
    assert!(matches!(e, CspError::BadHex { .. }));
    assert!(e.to_string().contains("character 0"), "{e}");
    assert!(DeviceKey::from_hex("abc").is_err());
    assert!(!format!("{:?}", key()).contains("0001"));
    assert_eq!(
        serde_json::to_value(key()).unwrap(),
        serde_json::json!("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
    );
    assert!(Mac::from_hex("00").is_err());
    let m = Mac::from_hex("00112233445566778899aabbccddeeff").unwrap();
    assert_eq!(m.to_string(), "00112233445566778899aabbccddeeff");
    // RFC 4231 test case 1: key 0x0b × 20, data "Hi There", HMAC-SHA-256 =
    // b0344c61d8db38535ca8afceaf0bf12b 881dc200c9833da726e9376c2e32cff7;
    // the CSP MAC is the left half.
    let k = DeviceKey::new(&[0x0b; 20]).unwrap();
    let mac = k.mac(b"Hi There").unwrap();
    assert_eq!(mac.to_string(), "b0344c61d8db38535ca8afceaf0bf12b");
    assert!(k.verify(b"Hi There", &mac).unwrap());
    let k = DeviceKey::new(b"JefeJefeJefeJefe").unwrap();
    let mac = k.mac(b"what do ya want for nothing?").unwrap();
    assert!(k.verify(b"what do ya want for nothing?", &mac).unwrap());
    assert!(!k.verify(b"what do ya want for nothing!", &mac).unwrap());
}

#[test]
fn mac_status_cases() {
    let plain = Frame::new(dev(), 1, Message::DoorClosed(DoorClosed { slot: 1 }));
    assert_eq!(plain.mac_status(Some(&key())).unwrap(), MacStatus::Absent);
    let sealed = plain.clone().sealed(&key()).unwrap();
    assert_eq!(
        sealed.mac_status(None).unwrap(),
        MacStatus::PresentUnverified
    );
    assert_eq!(sealed.mac_status(Some(&key())).unwrap(), MacStatus::Valid);
    let other = DeviceKey::new(&[1; 16]).unwrap();
    assert_eq!(sealed.mac_status(Some(&other)).unwrap(), MacStatus::Invalid);
    assert_eq!(
        serde_json::to_value(MacStatus::PresentUnverified).unwrap(),
        serde_json::json!("present-unverified")
    );
    // a sealed optional-MAC frame authenticates and enters the window
    let mut w = ReplayWindow::new();
    assert!(authenticate(&sealed, &key(), &mut w).unwrap());
    assert_eq!(w.highest, Some(1));
    // an unsealed frame does not touch the window
    let mut w2 = ReplayWindow::new();
    assert!(!authenticate(&plain, &key(), &mut w2).unwrap());
    assert_eq!(w2, ReplayWindow::new());
}

#[test]
fn tampered_forged_and_replayed_frames_are_rejected() {
    let open = Frame::new(
        dev(),
        50,
        Message::OpenDoor(OpenDoor {
            slot: 3,
            reason: OpenReason::SwapIssue,
            order_id: Some(1),
        }),
    )
    .sealed(&key())
    .unwrap();
    let bytes = open.encode().unwrap();

    // tamper with the slot (byte 15) and fix the CRC: the MAC catches it
    let mut t = bytes.clone();
    t[15] = 4;
    let n = t.len();
    let crc = crc32(&t[..n - 4]);
    t[n - 4..].copy_from_slice(&crc.to_be_bytes());
    let f = decode(&t).unwrap();
    let mut w = ReplayWindow::new();
    assert!(matches!(
        authenticate(&f, &key(), &mut w),
        Err(CspError::BadMac { seq: 50, .. })
    ));
    assert_eq!(w, ReplayWindow::new());

    // a forged MAC
    let mut forged = open.clone();
    forged.mac = Some(Mac([0xAB; MAC_LEN]));
    let f = decode(&forged.encode().unwrap()).unwrap();
    assert!(matches!(
        authenticate(&f, &key(), &mut w),
        Err(CspError::BadMac { .. })
    ));

    // a MAC-required frame stripped of its MAC (hand-built) is refused
    let mut stripped = open.clone();
    stripped.mac = None;
    assert!(matches!(
        authenticate(&stripped, &key(), &mut w),
        Err(CspError::MacRequired { .. })
    ));

    // accepted once, replayed, too old
    assert!(authenticate(&open, &key(), &mut w).unwrap());
    assert!(matches!(
        authenticate(&open, &key(), &mut w),
        Err(CspError::Replayed { seq: 50, .. })
    ));
    let newer = Frame {
        seq: 200,
        ..open.clone()
    }
    .sealed(&key())
    .unwrap();
    assert!(authenticate(&newer, &key(), &mut w).unwrap());
    let old = Frame {
        seq: 100,
        ..open.clone()
    }
    .sealed(&key())
    .unwrap();
    let e = authenticate(&old, &key(), &mut w).unwrap_err();
    assert!(
        matches!(
            e,
            CspError::TooOld {
                seq: 100,
                highest: 200,
                window: 64,
                ..
            }
        ),
        "{e:?}"
    );
    // replaying the header of another device under this key fails too
    let mut moved = open.clone();
    moved.device_no = dn(20_002);
    let f = decode(&moved.encode().unwrap()).unwrap();
    assert!(matches!(
        authenticate(&f, &key(), &mut ReplayWindow::new()),
        Err(CspError::BadMac { .. })
    ));
}

#[test]
fn replay_window_edges() {
    let mut w = ReplayWindow::new();
    assert_eq!(w.accept(0), SeqCheck::Fresh);
    assert_eq!(w.accept(0), SeqCheck::Replayed);
    assert_eq!(w.accept(u32::MAX), SeqCheck::Fresh);
    assert_eq!(w.check(0), SeqCheck::TooOld);
    assert_eq!(w.accept(u32::MAX - 63), SeqCheck::Fresh);
    assert_eq!(w.accept(u32::MAX - 64), SeqCheck::TooOld);
    assert_eq!(w.accept(u32::MAX - 63), SeqCheck::Replayed);
    // a jump of exactly 64 clears the bitmap
    let mut w = ReplayWindow::new();
    w.accept(10);
    w.accept(74);
    assert_eq!(w.bitmap, 1);
    assert_eq!(w.check(10), SeqCheck::TooOld);
    assert_eq!(w.check(11), SeqCheck::Fresh);
    // a jump of 63 keeps the old one at bit 63
    let mut w = ReplayWindow::new();
    w.accept(10);
    w.accept(73);
    assert_eq!(w.check(10), SeqCheck::Replayed);
    assert_eq!(
        serde_json::to_value(w).unwrap(),
        serde_json::json!({"highest": 73, "bitmap": (1u64 << 63) | 1})
    );
}

// ---- property tests ---------------------------------------------------------

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (arb::label(), arb::label(), arb::slot()).prop_map(|(f, m, n)| Message::Login(Login {
            firmware: f,
            model: m,
            slot_count: n
        })),
        (any::<u32>(), prop::option::of(any::<i8>())).prop_map(|(u, r)| Message::Heartbeat(
            Heartbeat {
                uptime_s: u,
                rssi_dbm: r
            }
        )),
        arb::slots().prop_map(|slots| Message::CabinetStatus(CabinetStatus { slots })),
        (arb::slot(), prop::option::of(any::<u32>())).prop_map(|(slot, c)| Message::DoorOpened(
            DoorOpened {
                slot,
                command_seq: c
            }
        )),
        arb::slot().prop_map(|slot| Message::DoorClosed(DoorClosed { slot })),
        (
            arb::slot(),
            arb::door_failure(),
            prop::option::of(any::<u32>())
        )
            .prop_map(|(slot, r, c)| Message::DoorFailed(DoorFailed {
                slot,
                reason: r,
                command_seq: c
            })),
        (arb::slot(), arb::battery(), prop::option::of(arb::bms())).prop_map(
            |(slot, battery, bms)| Message::BatteryInserted(BatteryEvent { slot, battery, bms })
        ),
        (arb::slot(), arb::battery(), prop::option::of(arb::bms())).prop_map(
            |(slot, battery, bms)| Message::BatteryRemoved(BatteryEvent { slot, battery, bms })
        ),
        (
            any::<u64>(),
            arb::swap_outcome(),
            prop::option::of(arb::battery()),
            prop::option::of(arb::battery())
        )
            .prop_map(|(o, out, r, i)| Message::SwapResult(SwapResult {
                order_id: o,
                outcome: out,
                returned_battery: r,
                issued_battery: i
            })),
        (
            arb::alarm_kind(),
            arb::alarm_state(),
            prop::option::of(arb::slot()),
            prop::option::of(any::<i32>())
        )
            .prop_map(|(a, s, slot, r)| Message::Alarm(Alarm {
                alarm: a,
                state: s,
                slot,
                reading: r
            })),
        any::<u64>().prop_map(|t| Message::TimeSyncRequest(TimeSyncRequest { device_time: t })),
        (any::<u32>(), arb::result_code()).prop_map(|(s, r)| Message::Ack(Ack {
            ack_seq: s,
            result: r
        })),
        (
            arb::slot(),
            arb::open_reason(),
            prop::option::of(any::<u64>())
        )
            .prop_map(|(slot, reason, order_id)| Message::OpenDoor(OpenDoor {
                slot,
                reason,
                order_id
            })),
        arb::swap_order().prop_map(Message::SwapOrder),
        (any::<u64>(), any::<i16>()).prop_map(|(m, o)| Message::TimeSync(TimeSync {
            unix_ms: m,
            utc_offset_min: o
        })),
        arb::tariff().prop_map(Message::TariffPush),
        arb::config().prop_map(Message::ConfigPush),
        Just(Message::QueryStatus),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        arb::dtu(),
        any::<u32>(),
        any::<bool>(),
        any::<bool>(),
        message(),
    )
        .prop_map(|(d, seq, ack, seal, m)| {
            let mut f = Frame::new(d, seq, m);
            f.ack_requested = ack;
            if seal || f.command().requires_mac() {
                f.seal(&key()).unwrap();
            }
            f
        })
}

fn split_feed(wire: &[u8], cuts: &[prop::sample::Index]) -> (Vec<Frame>, usize) {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
    points.sort_unstable();
    let mut d = StreamDecoder::new(CspCodec::new());
    let mut out = Vec::new();
    let mut errors = 0;
    let mut last = 0;
    for p in points.into_iter().chain([wire.len()]) {
        d.push(&wire[last..p]);
        last = p;
        while let Some(r) = d.next_frame() {
            match r {
                Ok(f) => out.push(f),
                Err(_) => errors += 1,
            }
        }
    }
    (out, errors)
}

proptest! {
    #[test]
    fn encode_then_decode_gives_the_value(f in frame()) {
        let bytes = f.encode().unwrap();
        prop_assert!(bytes.len() <= MAX_FRAME_LEN);
        let back = decode(&bytes).unwrap();
        prop_assert_eq!(&back, &f);
        // decode then encode gives the bytes
        prop_assert_eq!(back.encode().unwrap(), bytes);
        if f.mac.is_some() {
            prop_assert_eq!(back.mac_status(Some(&key())).unwrap(), MacStatus::Valid);
        }
    }

    #[test]
    fn any_bit_flip_is_caught(f in frame(), at in any::<prop::sample::Index>(), bit in 0u8..8, fix_crc in any::<bool>()) {
        let f = if f.mac.is_none() { f.sealed(&key()).unwrap() } else { f };
        let mut bytes = f.encode().unwrap();
        let n = bytes.len();
        let i = at.index(if fix_crc { n - CRC_LEN } else { n });
        bytes[i] ^= 1 << bit;
        if fix_crc {
            let crc = crc32(&bytes[..n - CRC_LEN]);
            bytes[n - CRC_LEN..].copy_from_slice(&crc.to_be_bytes());
        }
        // either the frame no longer decodes, or it fails authentication
        if let Ok(g) = decode(&bytes) {
            let mut w = ReplayWindow::new();
            let r = authenticate(&g, &key(), &mut w);
            prop_assert!(matches!(r, Err(CspError::BadMac { .. }) | Ok(false)), "{:?}", r);
            if r.is_ok() {
                // the MAC flag itself was cleared on an optional-MAC frame; the
                // frame is then unauthenticated, and never a MAC-required one
                prop_assert!(!g.command().requires_mac());
                prop_assert!(g.mac.is_none());
            }
            prop_assert_eq!(w, ReplayWindow::new());
        }
    }

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&bytes);
        let _ = decode_header(&bytes);
    }

    #[test]
    fn decode_never_panics_on_valid_headers(f in frame(), tail in prop::collection::vec(any::<u8>(), 0..64)) {
        // a valid header with a random payload and a correct CRC: exercises the payload decoder
        let mut bytes = f.encode().unwrap()[..HEADER_LEN].to_vec();
        bytes[3..5].copy_from_slice(&(tail.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&tail);
        if bytes[14] & FLAG_MAC != 0 {
            bytes.extend_from_slice(&[0; MAC_LEN]);
        }
        let crc = crc32(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        if let Ok(g) = decode(&bytes) {
            // whatever decodes is canonical
            prop_assert_eq!(g.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn replay_window_matches_a_set_model(seqs in prop::collection::vec(prop_oneof![0u32..300, any::<u32>()], 0..200)) {
        let mut w = ReplayWindow::new();
        let mut seen = std::collections::BTreeSet::new();
        for s in seqs {
            let highest = seen.iter().next_back().copied();
            let expect = match highest {
                Some(h) if h >= s && h - s >= REPLAY_WINDOW => SeqCheck::TooOld,
                _ if seen.contains(&s) => SeqCheck::Replayed,
                _ => SeqCheck::Fresh,
            };
            prop_assert_eq!(w.accept(s), expect);
            if expect == SeqCheck::Fresh {
                seen.insert(s);
            }
            prop_assert_eq!(w.highest, seen.iter().next_back().copied());
        }
    }

    #[test]
    fn stream_split_anywhere(
        frames in prop::collection::vec(frame(), 0..8),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let wire: Vec<u8> = frames.iter().flat_map(|f| f.encode().unwrap()).collect();
        let (out, errors) = split_feed(&wire, &cuts);
        prop_assert_eq!(errors, 0);
        prop_assert_eq!(&out, &frames);
        // the raw framer finds the same frames, and their payloads decode to them
        let mut d = StreamDecoder::new(CspRawCodec::new());
        let mut raws = Vec::new();
        for chunk in wire.chunks(7) {
            d.push(chunk);
            raws.extend(d.drain_frames());
        }
        let decoded: Vec<Frame> = raws.iter().map(|r| r.decode().unwrap()).collect();
        prop_assert_eq!(decoded, frames);
        let lens: usize = raws.iter().map(|r| r.as_bytes().len()).sum();
        prop_assert_eq!(lens, wire.len());
    }

    #[test]
    fn stream_skips_garbage_and_corrupt_frames(
        frames in prop::collection::vec(frame(), 1..6),
        garbage in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 6),
        corrupt in any::<prop::sample::Index>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        // garbage before every frame, and one frame's CRC broken
        let bad = corrupt.index(frames.len());
        let mut wire = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            wire.extend(&garbage[i]);
            let mut b = f.encode().unwrap();
            if i == bad {
                let n = b.len();
                b[n - 1] ^= 0xFF;
            }
            wire.extend(b);
        }
        let (out, _) = split_feed(&wire, &cuts);
        // every intact frame comes out, in order; garbage may (rarely) hold
        // a valid frame of its own, so compare as a subsequence
        let want: Vec<&Frame> = frames.iter().enumerate().filter(|(i, _)| *i != bad).map(|(_, f)| f).collect();
        let mut it = out.iter();
        for w in want {
            prop_assert!(it.any(|o| o == w), "missing frame {:?}", w);
        }
    }

    #[test]
    fn stream_never_panics_and_progresses(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut d = StreamDecoder::new(CspCodec::new());
        d.push(&bytes);
        let mut steps = 0;
        while d.next_frame().is_some() {
            steps += 1;
            prop_assert!(steps <= bytes.len());
        }
        prop_assert!(d.buffered() < MAX_FRAME_LEN);
    }
}

#[test]
fn stream_rejects_oversize_length_at_once() {
    // a header announcing 60000 payload bytes fails as soon as the length is in
    let mut d = StreamDecoder::new(CspCodec::new());
    d.push(&[0x43, 0x53, 0x01, 0xEA, 0x60]);
    assert!(matches!(
        d.next_frame(),
        Some(Err(StreamError::Frame {
            offset: 0,
            error: CspError::PayloadTooLong { length: 60_000, .. }
        }))
    ));
    // a smaller limit per codec
    let c = CspCodec::with_max_payload(100);
    assert_eq!(c.max_payload(), 100);
    assert_eq!(c.max_frame_len(), 15 + 100 + 16 + 4);
    assert_eq!(
        CspCodec::with_max_payload(1 << 20).max_payload(),
        MAX_PAYLOAD
    );
    let mut d = StreamDecoder::new(c);
    d.push(&[0x43, 0x53, 0x01, 0x00, 0x65]);
    assert!(matches!(
        d.next_frame(),
        Some(Err(StreamError::Frame {
            error: CspError::PayloadTooLong { length: 101, .. },
            ..
        }))
    ));
}

#[test]
fn stream_waits_then_gives_up_on_a_stalled_frame() {
    // a valid header announcing 4096 bytes that never come: buffered up to the
    // maximum frame length, then skipped, and the next frame is found
    let mut d = StreamDecoder::new(CspCodec::new());
    let mut hdr = raw(0x03, 0, &[], 20_001)[..HEADER_LEN].to_vec();
    hdr[3..5].copy_from_slice(&4096u16.to_be_bytes());
    d.push(&hdr);
    assert!(d.next_frame().is_none());
    d.push(&vec![0u8; MAX_FRAME_LEN]);
    let good = raw(0x05, 0, &[3], 20_001);
    d.push(&good);
    let mut too_long = 0;
    let mut frames = Vec::new();
    while let Some(r) = d.next_frame() {
        match r {
            Ok(f) => frames.push(f),
            Err(StreamError::TooLong { offset: 0, .. }) => too_long += 1,
            Err(StreamError::Frame {
                error: CspError::BadCrc { .. },
                offset: 0,
            }) => too_long += 1,
            Err(_) => {}
        }
    }
    assert_eq!(too_long, 1);
    assert_eq!(frames.len(), 1);
    assert_eq!(
        frames[0].message,
        Message::DoorClosed(DoorClosed { slot: 3 })
    );
}

#[test]
fn find_start_handles_a_trailing_c() {
    let c = CspCodec::new();
    assert_eq!(c.find_start(b"xxC"), Some(2));
    assert_eq!(c.find_start(b"xCxCS"), Some(3));
    assert_eq!(c.find_start(b"xCx"), None);
    assert_eq!(c.find_start(b""), None);
}

#[test]
fn raw_frames() {
    let f = Frame::new(dev(), 3, Message::DoorClosed(DoorClosed { slot: 2 }));
    let bytes = f.encode().unwrap();
    let rf = decode_raw(&bytes).unwrap();
    assert_eq!(rf.header().seq, 3);
    assert_eq!(rf.as_bytes(), &bytes[..]);
    assert_eq!(rf.decode().unwrap(), f);
    let json = serde_json::to_value(&rf).unwrap();
    assert_eq!(
        json["hex"],
        serde_json::json!(crate::csp::security::to_hex(&bytes))
    );
    assert_eq!(serde_json::from_value::<RawFrame>(json).unwrap(), rf);
    assert!(serde_json::from_value::<RawFrame>(serde_json::json!({"hex": "4353"})).is_err());
    // raw decoding checks the CRC but not the payload
    let bad_payload = raw(0x05, 0, &[0], 20_001);
    assert!(decode_raw(&bad_payload).is_ok());
    assert!(matches!(
        decode_raw(&bad_payload).unwrap().decode(),
        Err(CspError::InvalidField { .. })
    ));
    let mut bad_crc = bytes.clone();
    bad_crc[16] ^= 1;
    assert!(matches!(decode_raw(&bad_crc), Err(CspError::BadCrc { .. })));
    assert!(matches!(
        decode_raw(&bytes[..10]),
        Err(CspError::Truncated { .. })
    ));
    let mut two = bytes.clone();
    two.push(0);
    assert!(matches!(
        decode_raw(&two),
        Err(CspError::TrailingBytes { .. })
    ));
    assert_eq!(
        CspRawCodec::with_max_payload(10).max_frame_len(),
        15 + 10 + 16 + 4
    );
}
