//! Unit and property tests of the JBD and Daly codecs.

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::daly::{self, *};
use super::jbd::{self, *};
use crate::stream::{StreamDecoder, StreamError};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

// ---------- JBD ----------

#[test]
fn jbd_read_requests() {
    // Checksum 0x10000 − (register + 0): 0xFFFD, 0xFFFC, 0xFFFB.
    assert_eq!(JbdFrame::read(3).encode().unwrap(), hex("DDA50300FFFD77"));
    assert_eq!(JbdFrame::read(4).encode().unwrap(), hex("DDA50400FFFC77"));
    assert_eq!(JbdFrame::read(5).encode().unwrap(), hex("DDA50500FFFB77"));
    assert_eq!(
        JbdFrame::decode(&hex("DDA50300FFFD77")).unwrap(),
        JbdFrame::read(3)
    );
}

#[test]
fn jbd_basic_info_public_frame() {
    let wire = hex(
        "DD03001B 1700 0000 02D0 03E8 0000 2078 0000 0000 0000 10 48 03 0F 02 0B76 0B82 FBFF 77",
    );
    let JbdFrame::Response(r) = JbdFrame::decode(&wire).unwrap() else {
        panic!()
    };
    assert_eq!(r.status, 0);
    let JbdBody::BasicInfo(b) = &r.body else {
        panic!()
    };
    assert_eq!(b.voltage_v.to_string(), "58.88");
    assert_eq!(b.current_a.to_string(), "0.00");
    assert_eq!(b.remaining_ah.to_string(), "7.20");
    assert_eq!(b.nominal_ah.to_string(), "10.00");
    assert_eq!(
        b.production_date,
        JbdDate {
            year: 2016,
            month: 3,
            day: 24
        }
    );
    assert_eq!(b.soc_percent, d("72"));
    assert!(b.charge_fet && b.discharge_fet);
    assert_eq!(b.cell_count, 15);
    assert_eq!(b.temperatures_c, vec![d("20.3"), d("21.5")]);
    assert!(b.extra.is_empty());
    assert_eq!(JbdFrame::Response(r).encode().unwrap(), wire);
}

#[test]
fn jbd_basic_info_flags_negative_current_and_extra_bytes() {
    let wire =
        hex("DD030019 1450 FC18 0FA0 1388 0023 2E61 0005 0001 0401 21 50 02 10 01 0A1B FBBF 77");
    let f = JbdFrame::decode(&wire).unwrap();
    let JbdFrame::Response(JbdResponse {
        body: JbdBody::BasicInfo(b),
        ..
    }) = &f
    else {
        panic!()
    };
    assert_eq!(b.current_a.to_string(), "-10.00");
    assert_eq!(b.balancing_cells, vec![1, 3, 17]);
    assert_eq!(
        b.protections,
        vec![JbdProtection::CellOvervoltage, JbdProtection::ShortCircuit]
    );
    assert!(!b.charge_fet && b.discharge_fet);
    assert_eq!(b.temperatures_c, vec![d("-14.4")]);
    assert_eq!(
        b.production_date,
        JbdDate {
            year: 2023,
            month: 3,
            day: 1
        }
    );
    assert_eq!(f.encode().unwrap(), wire);

    // Two extra bytes after the temperatures (newer firmware) are kept:
    // len 0x1B, checksum 0xFBBF − (0x02 + 0xAA + 0xBB) = 0xFBBF − 0x167 = 0xFA58.
    let wire = hex(
        "DD03001B 1450 FC18 0FA0 1388 0023 2E61 0005 0001 0401 21 50 02 10 01 0A1B AABB FA58 77",
    );
    let f = JbdFrame::decode(&wire).unwrap();
    let JbdFrame::Response(JbdResponse {
        body: JbdBody::BasicInfo(b),
        ..
    }) = &f
    else {
        panic!()
    };
    assert_eq!(b.extra, vec![0xAA, 0xBB]);
    assert_eq!(f.encode().unwrap(), wire);
}

#[test]
fn jbd_cells_name_error_status_and_write() {
    let f = JbdFrame::decode(&hex("DD040008 0CE4 0CE5 0CE3 0CEE FC2E 77")).unwrap();
    assert_eq!(
        f,
        JbdFrame::Response(JbdResponse {
            status: 0,
            body: JbdBody::CellVoltages {
                cells_v: vec![d("3.300"), d("3.301"), d("3.299"), d("3.310")]
            }
        })
    );
    let f = JbdFrame::decode(&hex("DD05000C 4A42442D5350303453303334 FD06 77")).unwrap();
    assert_eq!(
        f,
        JbdFrame::Response(JbdResponse {
            status: 0,
            body: JbdBody::HardwareName {
                name: "JBD-SP04S034".into()
            }
        })
    );
    let f = JbdFrame::decode(&hex("DD038000FF8077")).unwrap();
    assert_eq!(
        f,
        JbdFrame::Response(JbdResponse {
            status: 0x80,
            body: JbdBody::Raw {
                register: 3,
                data: vec![]
            }
        })
    );
    let w = JbdFrame::Write {
        register: 0xE1,
        data: vec![0, 2],
    };
    assert_eq!(w.encode().unwrap(), hex("DD5AE1020002FF1B77"));
    assert_eq!(JbdFrame::decode(&hex("DD5AE1020002FF1B77")).unwrap(), w);
}

#[test]
fn jbd_errors_name_offsets() {
    assert_eq!(
        JbdFrame::decode(&hex("DDA50300FFFE77")).unwrap_err(),
        JbdError::Checksum {
            offset: 4,
            computed: 0xFFFD,
            found: 0xFFFE
        }
    );
    assert_eq!(
        JbdFrame::decode(&hex("DDA50300FFFD78")).unwrap_err(),
        JbdError::MissingEnd {
            offset: 6,
            found: 0x78
        }
    );
    assert!(matches!(
        JbdFrame::decode(&hex("DDA503")),
        Err(JbdError::Truncated {
            needed: 7,
            available: 3,
            ..
        })
    ));
    assert!(matches!(
        JbdFrame::decode(&hex("AA")),
        Err(JbdError::MissingStart { found: 0xAA, .. })
    ));
    assert!(matches!(
        JbdFrame::decode(&hex("DDA50300FFFD7700")),
        Err(JbdError::TrailingData { offset: 7, len: 1 })
    ));
    // Three bytes of cell voltages: sum 03+0C+E4+0C = 0xFF → 0xFF01.
    assert_eq!(
        JbdFrame::decode(&hex("DD0400030CE40CFF0177")).unwrap_err(),
        JbdError::OddLength { offset: 4, len: 3 }
    );
    // Hardware name 0xFF: sum 01+FF = 0x100 → 0xFF00.
    assert_eq!(
        JbdFrame::decode(&hex("DD050001FFFF0077")).unwrap_err(),
        JbdError::BadText { offset: 4 }
    );
    // Basic info cut short after 2 bytes: sum 02+17+00 = 0x19 → 0xFFE7.
    assert!(matches!(
        JbdFrame::decode(&hex("DD0300021700FFE777")),
        Err(JbdError::Truncated { offset: 6, .. })
    ));
}

#[test]
fn jbd_encode_refuses_unrepresentable_values() {
    let cells = |v: &str| {
        JbdFrame::Response(JbdResponse {
            status: 0,
            body: JbdBody::CellVoltages {
                cells_v: vec![d(v)],
            },
        })
    };
    assert!(cells("3.3005").encode().is_err());
    assert!(cells("65.536").encode().is_err());
    assert!(cells("-0.001").encode().is_err());
    assert_eq!(
        cells("3.30").encode().unwrap(),
        cells("3.300").encode().unwrap()
    );
    let raw = |register| {
        JbdFrame::Response(JbdResponse {
            status: 0,
            body: JbdBody::Raw {
                register,
                data: vec![],
            },
        })
    };
    assert!(raw(READ).encode().is_err());
    assert!(raw(WRITE).encode().is_err());
    let typed_bad_status = JbdFrame::Response(JbdResponse {
        status: 0x80,
        body: JbdBody::HardwareName { name: "x".into() },
    });
    assert!(typed_bad_status.encode().is_err());
    let long = JbdFrame::Write {
        register: 1,
        data: vec![0; 256],
    };
    let mut out = vec![9];
    assert!(long.encode_to(&mut out).is_err());
    assert_eq!(out, [9]);
}

#[test]
fn jbd_stream_resyncs() {
    let good = hex("DD040008 0CE4 0CE5 0CE3 0CEE FC2E 77");
    let mut wire = hex("00 DD A5 03 00 FF FF 77"); // garbage, bad checksum
    wire.extend(&good);
    let mut d = StreamDecoder::new(JbdCodec);
    d.push(&wire);
    let mut frames = vec![];
    let mut errors = vec![];
    while let Some(r) = d.next_frame() {
        match r {
            Ok(f) => frames.push(f),
            Err(e) => errors.push(e),
        }
    }
    assert_eq!(frames.len(), 1);
    assert!(matches!(
        errors[0],
        StreamError::Garbage { offset: 0, len: 1 }
    ));
    assert!(matches!(
        errors[1],
        StreamError::Frame {
            offset: 1,
            error: JbdError::Checksum { .. }
        }
    ));
}

// ---------- Daly ----------

#[test]
fn daly_public_frames() {
    let req = hex("A540900800000000000000007D");
    assert_eq!(DalyFrame::decode(&req).unwrap(), DalyFrame::request(0x90));
    assert_eq!(DalyFrame::request(0x90).encode().unwrap().to_vec(), req);
    let rep = hex("A501900802FC000075A1000052");
    let f = DalyFrame::decode(&rep).unwrap();
    assert_eq!(
        f,
        DalyFrame::Reply(DalyReply::Summary(DalySummary {
            total_voltage_v: d("76.4"),
            gather_voltage_v: d("0.0"),
            current_a: d("11.3"),
            soc_percent: d("0.0"),
        }))
    );
    assert_eq!(f.encode().unwrap().to_vec(), rep);
    assert_eq!((f.address(), f.data_id()), (1, 0x90));
}

#[test]
fn daly_every_reply_kind() {
    let cases: Vec<(&str, DalyReply)> = vec![
        (
            "A501900802080207 74B3 0354 CF",
            DalyReply::Summary(DalySummary {
                total_voltage_v: d("52.0"),
                gather_voltage_v: d("51.9"),
                current_a: d("-12.5"),
                soc_percent: d("85.2"),
            }),
        ),
        (
            "A50191080D16050CEE0C00006D",
            DalyReply::CellVoltageRange(DalyCellVoltageRange {
                max_cell_v: d("3.350"),
                max_cell_no: 5,
                min_cell_v: d("3.310"),
                min_cell_no: 12,
                reserved: [0, 0],
            }),
        ),
        (
            "A501920841013C0200000000C0",
            DalyReply::TemperatureRange(DalyTemperatureRange {
                max_temp_c: d("25"),
                max_temp_sensor: 1,
                min_temp_c: d("20"),
                min_temp_sensor: 2,
                reserved: [0; 4],
            }),
        ),
        (
            "A5019308020101 2A 0000C350 82",
            DalyReply::MosStatus(DalyMosStatus {
                state: DalyChargeState::Discharging,
                charge_mos: true,
                discharge_mos: true,
                bms_life: 42,
                remaining_ah: d("50.000"),
            }),
        ),
        (
            "A5019408100200010000230078",
            DalyReply::Status(DalyStatus {
                cell_count: 16,
                temp_sensor_count: 2,
                charger_connected: false,
                load_connected: true,
                dio: 0,
                cycles: 35,
                reserved: 0,
            }),
        ),
        (
            "A5019508010CE40CE50CE30014",
            DalyReply::CellVoltages(DalyCellVoltages {
                frame_no: 1,
                cells_v: [d("3.300"), d("3.301"), d("3.299")],
                reserved: 0,
            }),
        ),
        (
            "A50196080141423C2800FF4671",
            DalyReply::CellTemperatures(DalyCellTemperatures {
                frame_no: 1,
                temperatures_c: [
                    d("25"),
                    d("26"),
                    d("20"),
                    d("0"),
                    d("-40"),
                    d("215"),
                    d("30"),
                ],
            }),
        ),
        (
            "A501970801010000008000 00C7",
            DalyReply::CellBalance(DalyCellBalance {
                balancing_cells: vec![1, 9, 48],
                reserved: [0, 0],
            }),
        ),
        (
            "A5019808020008100000040569",
            DalyReply::Faults(DalyFaults {
                faults: vec![
                    DalyFault::CellOvervoltageLevel2,
                    DalyFault::DischargeOvercurrentLevel2,
                    DalyFault::Bit { byte: 3, bit: 4 },
                    DalyFault::ShortCircuitProtectFault,
                ],
                fault_code: 5,
            }),
        ),
    ];
    for (h, want) in cases {
        let wire = hex(h);
        let f = DalyFrame::decode(&wire).unwrap();
        assert_eq!(f, DalyFrame::Reply(want), "{h}");
        assert_eq!(f.encode().unwrap().to_vec(), wire, "{h}");
    }
}

#[test]
fn daly_errors() {
    assert_eq!(
        DalyFrame::decode(&hex("A501900802FC000075A1000053")).unwrap_err(),
        DalyError::Checksum {
            offset: 12,
            computed: 0x52,
            found: 0x53
        }
    );
    assert!(matches!(
        DalyFrame::decode(&hex("A5019009 02FC000075A1000053")),
        Err(DalyError::BadLength {
            offset: 3,
            found: 9
        })
    ));
    assert!(matches!(
        DalyFrame::decode(&hex("A50190")),
        Err(DalyError::Truncated { available: 3, .. })
    ));
    assert!(matches!(
        DalyFrame::decode(&hex("5A")),
        Err(DalyError::MissingStart { found: 0x5A, .. })
    ));
    assert!(matches!(
        DalyFrame::decode(&hex("A540900800000000000000007D00")),
        Err(DalyError::TrailingData { offset: 13, len: 1 })
    ));
    // 0x93 with state 3: sum A5+01+93+08+03 = 0x144 → 0x44.
    assert!(matches!(
        DalyFrame::decode(&hex("A501930803000000000000 0044")),
        Err(DalyError::BadValue {
            offset: 4,
            found: 3,
            ..
        })
    ));
    // 0x94 with charger byte 2 (data byte 2 = frame byte 6): sum 0x142+2 → 0x44.
    assert!(matches!(
        DalyFrame::decode(&hex("A501940800000200000000 0044")),
        Err(DalyError::BadValue {
            offset: 6,
            found: 2,
            ..
        })
    ));
}

#[test]
fn daly_encode_refuses_unrepresentable_values() {
    let s = |current: &str| {
        DalyFrame::Reply(DalyReply::Summary(DalySummary {
            total_voltage_v: d("1"),
            gather_voltage_v: d("1"),
            current_a: d(current),
            soc_percent: d("1"),
        }))
    };
    assert!(s("-3000.0").encode().is_ok());
    assert!(s("-3000.1").encode().is_err());
    assert!(s("3553.5").encode().is_ok());
    assert!(s("3553.6").encode().is_err());
    assert!(s("1.25").encode().is_err());
    let err = s("1.25").encode().unwrap_err();
    assert!(err.to_string().contains("current_a"), "{err}");
    let bad_req = DalyFrame::Request {
        address: 1,
        data_id: 0x90,
        data: [0; 8],
    };
    assert!(bad_req.encode().is_err());
    let bal = DalyFrame::Reply(DalyReply::CellBalance(DalyCellBalance {
        balancing_cells: vec![49],
        reserved: [0, 0],
    }));
    assert!(bal.encode().is_err());
    let fault = DalyFrame::Reply(DalyReply::Faults(DalyFaults {
        faults: vec![DalyFault::Bit { byte: 0, bit: 0 }],
        fault_code: 0,
    }));
    assert!(fault.encode().is_err(), "byte 0 bit 0 has a name");
    let t = DalyFrame::Reply(DalyReply::TemperatureRange(DalyTemperatureRange {
        max_temp_c: d("216"),
        max_temp_sensor: 0,
        min_temp_c: d("0"),
        min_temp_sensor: 0,
        reserved: [0; 4],
    }));
    assert!(t.encode().is_err());
}

#[test]
fn daly_json_shape() {
    let f = DalyFrame::decode(&hex("A501900802FC000075A1000052")).unwrap();
    let j = serde_json::to_value(&f).unwrap();
    assert_eq!(
        j,
        serde_json::json!({"type": "reply", "reply": "summary", "total_voltage_v": "76.4",
            "gather_voltage_v": "0.0", "current_a": "11.3", "soc_percent": "0.0"})
    );
    let back: DalyFrame = serde_json::from_value(j).unwrap();
    assert_eq!(back, f);
    let r = serde_json::to_value(DalyFrame::request(0x95)).unwrap();
    assert_eq!(
        r,
        serde_json::json!({"type": "request", "address": 64, "data_id": 149, "data": "0000000000000000"})
    );
}

// ---------- properties ----------

fn split_points(len: usize, cuts: &[prop::sample::Index]) -> Vec<usize> {
    let mut p: Vec<usize> = cuts.iter().map(|i| i.index(len + 1)).collect();
    p.sort_unstable();
    p
}

fn daly_frame() -> impl Strategy<Value = DalyFrame> {
    // Typed replies from their wire bytes: every value is representable.
    let reply =
        (0x90u8..=0x99, any::<[u8; 8]>()).prop_filter_map("defined values", |(id, mut data)| {
            match id {
                0x93 => {
                    data[0] %= 3;
                    data[1] %= 2;
                    data[2] %= 2;
                }
                0x94 => {
                    data[2] %= 2;
                    data[3] %= 2;
                }
                _ => {}
            }
            let mut f = vec![daly::START, BMS, id, DATA_LEN];
            f.extend(data);
            f.push(f.iter().fold(0u8, |a, b| a.wrapping_add(*b)));
            DalyFrame::decode(&f).ok()
        });
    prop_oneof![
        reply,
        (
            any::<u8>().prop_filter("host", |a| *a != BMS),
            any::<u8>(),
            any::<[u8; 8]>()
        )
            .prop_map(|(address, data_id, data)| DalyFrame::Request {
                address,
                data_id,
                data
            }),
    ]
}

fn jbd_frame() -> impl Strategy<Value = JbdFrame> {
    let basic = (
        (
            any::<u16>(),
            any::<i16>(),
            any::<u16>(),
            any::<u16>(),
            any::<u16>(),
        ),
        (0u16..128, 0u8..16, 0u8..32),
        (
            any::<u32>(),
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            0u8..64,
            any::<bool>(),
            any::<bool>(),
        ),
        (
            any::<u8>(),
            prop::collection::vec(any::<u16>(), 0..6),
            prop::collection::vec(any::<u8>(), 0..4),
        ),
    )
        .prop_map(
            |(
                (v, c, rem, nom, cycles),
                (y, m, dd),
                (bal, prot, sw, soc, fet_hi, cf, df),
                (cells, temps, extra),
            )| {
                JbdBody::BasicInfo(BasicInfo {
                    voltage_v: Decimal::new(v.into(), 2),
                    current_a: Decimal::new(c.into(), 2),
                    remaining_ah: Decimal::new(rem.into(), 2),
                    nominal_ah: Decimal::new(nom.into(), 2),
                    cycles,
                    production_date: JbdDate {
                        year: 2000 + y,
                        month: m,
                        day: dd,
                    },
                    balancing_cells: (0..32)
                        .filter(|i| bal >> i & 1 == 1)
                        .map(|i| i + 1)
                        .collect(),
                    protections: (0..16u8)
                        .filter(|b| prot >> b & 1 == 1)
                        .map(|b| {
                            // Named flags decode as themselves; bits 13-15 as Bit(n).
                            let f = JbdFrame::decode(&{
                                let mut data = vec![0u8; 23];
                                data[16..18].copy_from_slice(&(1u16 << b).to_be_bytes());
                                let mut w = vec![0xDD, 3, 0, 23];
                                w.extend(&data);
                                let s = jbd::checksum(&w[2..]);
                                w.extend(s.to_be_bytes());
                                w.push(0x77);
                                w
                            })
                            .unwrap();
                            match f {
                                JbdFrame::Response(JbdResponse {
                                    body: JbdBody::BasicInfo(b),
                                    ..
                                }) => b.protections[0],
                                _ => unreachable!(),
                            }
                        })
                        .collect(),
                    software_version: sw,
                    soc_percent: Decimal::from(soc),
                    charge_fet: cf,
                    discharge_fet: df,
                    fet_reserved: fet_hi << 2,
                    cell_count: cells,
                    temperatures_c: temps
                        .iter()
                        .map(|t| Decimal::new(i64::from(*t) - 2731, 1))
                        .collect(),
                    extra,
                })
            },
        );
    let body = prop_oneof![
        basic,
        prop::collection::vec(any::<u16>(), 0..32).prop_map(|mv| JbdBody::CellVoltages {
            cells_v: mv.iter().map(|m| Decimal::new((*m).into(), 3)).collect()
        }),
        "[ -~]{0,40}".prop_map(|name| JbdBody::HardwareName { name }),
        (
            (0x06u8..0xA5).prop_filter("not a request marker", |r| *r != WRITE),
            prop::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(register, data)| JbdBody::Raw { register, data }),
    ];
    prop_oneof![
        (body, prop::bool::weighted(0.9)).prop_map(|(body, ok)| {
            if ok {
                JbdFrame::Response(JbdResponse { status: 0, body })
            } else {
                JbdFrame::Response(JbdResponse {
                    status: 0x80,
                    body: JbdBody::Raw {
                        register: body.register(),
                        data: vec![],
                    },
                })
            }
        }),
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(register, data)| JbdFrame::Read { register, data }),
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(register, data)| JbdFrame::Write { register, data }),
    ]
}

proptest! {
    #[test]
    fn daly_encode_then_decode(f in daly_frame()) {
        let wire = f.encode().unwrap();
        prop_assert_eq!(DalyFrame::decode(&wire).unwrap(), f);
    }

    #[test]
    fn daly_decode_then_encode(addr in prop::sample::select(vec![0x01u8, 0x40, 0x80]), id in any::<u8>(), data in any::<[u8; 8]>()) {
        let mut w = vec![daly::START, addr, id, DATA_LEN];
        w.extend(data);
        w.push(w.iter().fold(0u8, |a, b| a.wrapping_add(*b)));
        if let Ok(f) = DalyFrame::decode(&w) {
            prop_assert_eq!(f.encode().unwrap().to_vec(), w);
        }
    }

    #[test]
    fn jbd_encode_then_decode(f in jbd_frame()) {
        let wire = f.encode().unwrap();
        prop_assert_eq!(JbdFrame::decode(&wire).unwrap(), f);
    }

    #[test]
    fn jbd_decode_then_encode(reg in prop::sample::select(vec![3u8, 4, 5, 0x10]), status in prop::sample::select(vec![0u8, 0x80]), data in prop::collection::vec(any::<u8>(), 0..60)) {
        let mut w = vec![jbd::START, reg, status, data.len() as u8];
        w.extend(&data);
        let s = jbd::checksum(&w[2..]);
        w.extend(s.to_be_bytes());
        w.push(END);
        if let Ok(f) = JbdFrame::decode(&w) {
            prop_assert_eq!(f.encode().unwrap(), w);
        }
    }

    #[test]
    fn bms_decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = JbdFrame::decode(&bytes);
        let _ = DalyFrame::decode(&bytes);
        let mut a = StreamDecoder::new(JbdCodec);
        a.push(&bytes);
        while a.next_frame().is_some() {}
        let mut b = StreamDecoder::new(DalyCodec);
        b.push(&bytes);
        while b.next_frame().is_some() {}
    }

    #[test]
    fn daly_split_anywhere(frames in prop::collection::vec(daly_frame(), 1..10), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10)) {
        let wire: Vec<u8> = frames.iter().flat_map(|f| f.encode().unwrap()).collect();
        let mut d = StreamDecoder::new(DalyCodec);
        let mut out = vec![];
        let mut last = 0;
        for p in split_points(wire.len(), &cuts).into_iter().chain([wire.len()]) {
            d.push(&wire[last..p]);
            last = p;
            out.extend(d.drain_frames());
        }
        prop_assert_eq!(out, frames);
    }

    #[test]
    fn jbd_split_anywhere(frames in prop::collection::vec(jbd_frame(), 1..6), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10)) {
        let wire: Vec<u8> = frames.iter().flat_map(|f| f.encode().unwrap()).collect();
        let mut d = StreamDecoder::new(JbdCodec);
        let mut out = vec![];
        let mut last = 0;
        for p in split_points(wire.len(), &cuts).into_iter().chain([wire.len()]) {
            d.push(&wire[last..p]);
            last = p;
            out.extend(d.drain_frames());
        }
        prop_assert_eq!(out, frames);
    }
}
