//! Unit and property tests of the JT/T 808 codec.

use proptest::prelude::*;

use super::*;
use crate::stream::{StreamDecoder, StreamError};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// An independent frame builder: checksum, escape, delimiters.
fn frame(content: &[u8]) -> Vec<u8> {
    let mut c = content.to_vec();
    c.push(content.iter().fold(0, |a, b| a ^ b));
    let mut out = vec![0x7E];
    for b in c {
        match b {
            0x7E => out.extend([0x7D, 0x02]),
            0x7D => out.extend([0x7D, 0x01]),
            b => out.push(b),
        }
    }
    out.push(0x7E);
    out
}

fn phone(s: &str) -> Phone {
    s.parse().unwrap()
}

const V2019: Version = Version::V2019 {
    protocol_version: 1,
};

#[test]
fn heartbeat_2013_public_vector() {
    let wire = hex("7E00020000012345678900000A817E");
    let p = decode_frame(&wire).unwrap();
    assert_eq!(p.msg_id(), 0x0002);
    assert_eq!(
        p.header,
        Header::new(Version::V2013, phone("012345678900"), 10)
    );
    assert_eq!(p.body, Body::Heartbeat);
    assert_eq!(p.encode().unwrap(), wire);
}

#[test]
fn register_2013_public_vector_with_gbk_plate() {
    let wire = hex(
        "7E0100002D000123456789000A002800323132333400736D616C6C636869313233\
         0000000000000000004348493132330001D4C14131323334358A7E",
    );
    let p = decode_frame(&wire).unwrap();
    assert_eq!(p.header.serial, 10);
    assert_eq!(p.header.phone.to_string(), "000123456789");
    assert_eq!(
        p.body,
        Body::Register(Register {
            province: 40,
            city: 50,
            maker: "1234".into(),
            model: "smallchi123".into(),
            terminal_id: "CHI123".into(),
            plate_color: 1,
            plate: "粤A12345".into(),
        })
    );
    assert_eq!(p.encode().unwrap(), wire);
}

#[test]
fn replies_and_auth_public_vectors() {
    let wire = hex("7E80010005012345678900000A0064020000617E");
    let p = decode_frame(&wire).unwrap();
    assert_eq!(
        p.body,
        Body::PlatformReply(GeneralReply {
            ack_serial: 100,
            ack_msg_id: 0x0200,
            result: ReplyResult::Success
        })
    );
    assert_eq!(p.encode().unwrap(), wire);

    let wire = hex("7E81000009012345678900000A006400313233343536687E");
    let p = decode_frame(&wire).unwrap();
    assert_eq!(
        p.body,
        Body::RegisterReply(RegisterReply {
            ack_serial: 100,
            result: RegisterResult::Success,
            auth_code: "123456".into()
        })
    );
    assert_eq!(p.encode().unwrap(), wire);

    let wire = hex("7E010200090123456789003039343536313231313131BE7E");
    let p = decode_frame(&wire).unwrap();
    assert_eq!(p.header.serial, 12345);
    assert_eq!(
        p.body,
        Body::Authenticate(Authenticate {
            auth_code: "456121111".into(),
            imei: None,
            software_version: None
        })
    );
    assert_eq!(p.encode().unwrap(), wire);
}

#[test]
fn location_body_public_vector() {
    let body = hex("000000010000000200BA7F0E07E4F11C0028003C000018071510101001040000006402020037");
    let b = Body::decode(0x0200, Version::V2013, &body).unwrap();
    let Body::Location(l) = &b else {
        panic!("{b:?}")
    };
    assert_eq!((l.alarm, l.status), (1, 2));
    assert_eq!((l.lat_1e6, l.lon_1e6), (12_222_222, 132_444_444));
    assert_eq!((l.altitude_m, l.speed_0_1kmh, l.direction_deg), (40, 60, 0));
    assert_eq!(l.time.to_string(), "2018-07-15T10:10:10");
    assert_eq!(
        l.items,
        vec![AdditionalItem::Mileage(100), AdditionalItem::Fuel(55)]
    );
    assert_eq!(l.latitude().to_string(), "12.222222");
    assert_eq!(l.speed_kmh().to_string(), "6.0");
    assert_eq!(l.mileage_km().unwrap().to_string(), "10.0");
    let mut out = Vec::new();
    b.encode(Version::V2013, &mut out).unwrap();
    assert_eq!(out, body);
}

#[test]
fn checksum_that_needs_escaping() {
    // Heartbeat, phone 012345678900: XOR of 00 02 00 00 01 23 45 67 89 00 00
    // is 0x8B, so serial 0x00F5 gives checksum 0x8B ^ 0xF5 = 0x7E (escaped
    // 7D 02) and serial 0x00F6 gives 0x7D (escaped 7D 01).
    let p = Packet {
        header: Header::new(Version::V2013, phone("012345678900"), 0x00F5),
        body: Body::Heartbeat,
    };
    let wire = hex("7E00020000 012345678900 00F5 7D02 7E");
    assert_eq!(p.encode().unwrap(), wire);
    assert_eq!(decode_frame(&wire).unwrap(), p);
    let p2 = Packet {
        header: Header {
            serial: 0x00F6,
            ..p.header
        },
        ..p.clone()
    };
    let wire = hex("7E00020000 012345678900 00F6 7D01 7E");
    assert_eq!(p2.encode().unwrap(), wire);
    assert_eq!(decode_frame(&wire).unwrap(), p2);
}

#[test]
fn escaped_header_and_body_bytes() {
    // Serial 0x7E7D escapes to 7D02 7D01; checksum 0x8B ^ 0x7E ^ 0x7D = 0x88.
    let p = Packet {
        header: Header::new(Version::V2013, phone("012345678900"), 0x7E7D),
        body: Body::Heartbeat,
    };
    let wire = hex("7E00020000012345678900 7D027D01 88 7E");
    assert_eq!(p.encode().unwrap(), wire);
    assert_eq!(decode_frame(&wire).unwrap(), p);
}

#[test]
fn heartbeat_2019_header() {
    let p = Packet {
        header: Header::new(V2019, phone("00000000000123456789"), 1),
        body: Body::Heartbeat,
    };
    let wire = p.encode().unwrap();
    // 0002 | 4000 (version bit) | 01 | 10-byte phone | 0001 | checksum
    assert_eq!(&wire[..6], &hex("7E0002400001"));
    assert_eq!(wire.len(), 1 + 2 + 2 + 1 + 10 + 2 + 1 + 1);
    assert_eq!(decode_frame(&wire).unwrap(), p);
}

#[test]
fn decode_errors_name_wire_offsets() {
    // Bad checksum: the checksum byte of the heartbeat is at wire byte 13.
    let e = decode_frame(&hex("7E00020000012345678900000A827E")).unwrap_err();
    assert_eq!(
        e,
        Jt808Error::Checksum {
            offset: 13,
            computed: 0x81,
            found: 0x82
        }
    );
    assert!(e.to_string().contains("byte 13"));
    // An escape before the checksum shifts the wire offset by one.
    let e = decode_frame(&hex("7E000200000123456789007E7D01007E")).unwrap_err();
    assert!(matches!(e, Jt808Error::TrailingData { .. }), "{e:?}");
    let e = decode_frame(&hex("7E0002000001234567890000 7D01 007E")).unwrap_err();
    assert!(
        matches!(e, Jt808Error::Checksum { offset: 14, .. }),
        "{e:?}"
    );
    // Bad escape.
    let e = decode_frame(&hex("7E0002000001234567897D03000A817E")).unwrap_err();
    assert_eq!(
        e,
        Jt808Error::BadEscape {
            offset: 10,
            found: Some(3)
        }
    );
    assert!(matches!(
        decode_frame(&hex("7E00027D")),
        Err(Jt808Error::MissingEnd { offset: 4 })
    ));
    assert!(matches!(
        decode_frame(&hex("0002")),
        Err(Jt808Error::MissingStart { found: 0, .. })
    ));
    assert!(matches!(
        decode_frame(&hex("7E7E")),
        Err(Jt808Error::EmptyFrame { offset: 1 })
    ));
    assert!(matches!(
        decode_frame(&[]),
        Err(Jt808Error::MissingEnd { offset: 0 })
    ));
    // Declared body length 1, none present.
    let f = frame(&hex("0002 0001 012345678900 000A"));
    assert!(matches!(
        decode_frame(&f),
        Err(Jt808Error::BodyLength {
            declared: 1,
            actual: 0,
            ..
        })
    ));
    // Heartbeat with a body byte: trailing byte at wire offset 13.
    let f = frame(&hex("0002 0001 012345678900 000A FF"));
    assert_eq!(
        decode_frame(&f).unwrap_err(),
        Jt808Error::TrailingBytes {
            message: "0x0002 heartbeat".into(),
            offset: 13,
            len: 1
        }
    );
    // Header cut short.
    let f = frame(&hex("0002 0000 0123"));
    assert!(matches!(
        decode_frame(&f),
        Err(Jt808Error::Truncated { offset: 5, .. })
    ));
    // Non-BCD phone digit at wire byte 6.
    let f = frame(&hex("0002 0000 01A345678900 000A"));
    assert!(matches!(
        decode_frame(&f),
        Err(Jt808Error::BadBcd {
            offset: 6,
            byte: 0xA3,
            ..
        })
    ));
    // Split index 3 of 2.
    let f = frame(&hex("0002 2000 012345678900 000A 0002 0003"));
    assert!(matches!(
        decode_frame(&f),
        Err(Jt808Error::BadValue { offset: 15, .. })
    ));
}

#[test]
fn body_errors() {
    // Plate that is not GBK (0xFF), at body offset 37.
    let mut body = hex("0028 0032 3132333400");
    body.extend([0u8; 20]);
    body.extend(hex("43484931323300 01 FF"));
    assert_eq!(
        Body::decode(0x0100, Version::V2013, &body).unwrap_err(),
        Jt808Error::BadText {
            field: "plate".into(),
            offset: 37
        }
    );
    // Location item running past the end.
    let mut loc = hex("00000000 00000000 00000000 00000000 0000 0000 0000 180715101010");
    loc.extend(hex("01 04 0000"));
    assert!(matches!(
        Body::decode(0x0200, Version::V2013, &loc),
        Err(Jt808Error::Truncated {
            offset: 30,
            needed: 4,
            available: 2,
            ..
        })
    ));
    // Bad BCD in the time.
    let loc = hex("00000000 00000000 00000000 00000000 0000 0000 0000 1807151010FA");
    assert!(matches!(
        Body::decode(0x0200, Version::V2013, &loc),
        Err(Jt808Error::BadBcd { offset: 27, .. })
    ));
    // Batch declaring 2 entries but holding none.
    assert_eq!(
        Body::decode(0x0704, Version::V2013, &hex("0002 00")).unwrap_err(),
        Jt808Error::CountMismatch {
            offset: 0,
            declared: 2,
            actual: 0
        }
    );
    assert!(matches!(
        Body::decode(0x0704, Version::V2013, &hex("0000 07")),
        Err(Jt808Error::BadValue {
            offset: 2,
            found: 7,
            ..
        })
    ));
    // 2019 authentication cut short.
    assert!(matches!(
        Body::decode(0x0102, V2019, &hex("03 414243")),
        Err(Jt808Error::Truncated { offset: 4, .. })
    ));
    assert!(Body::decode(0x0001, Version::V2013, &hex("0001 0002")).is_err());
}

#[test]
fn encode_errors_leave_output_untouched() {
    let mut out = vec![1, 2, 3];
    let p = Packet {
        header: Header::new(Version::V2013, phone("012345678900"), 1),
        body: Body::Raw {
            msg_id: 0x0900,
            data: vec![0; 1024],
        },
    };
    assert!(matches!(
        p.encode_to(&mut out),
        Err(Jt808Error::BodyTooLong { len: 1024, .. })
    ));
    assert_eq!(out, [1, 2, 3]);
    let p = Packet {
        header: Header::new(Version::V2013, phone("012345678900"), 1),
        body: Body::Authenticate(Authenticate {
            auth_code: "x".into(),
            imei: Some("1".into()),
            software_version: None,
        }),
    };
    assert!(p.encode_to(&mut out).is_err());
    assert_eq!(out, [1, 2, 3]);
    let p = Packet {
        header: Header::new(V2019, phone("00000000000123456789"), 1),
        body: Body::Register(Register {
            province: 0,
            city: 0,
            maker: "M".into(),
            model: "X".repeat(31),
            terminal_id: String::new(),
            plate_color: 0,
            plate: String::new(),
        }),
    };
    assert!(matches!(p.encode(), Err(Jt808Error::Invalid { .. })));
}

#[test]
fn authentication_2019_layout() {
    let a = Authenticate {
        auth_code: "AUTH".into(),
        imei: Some("861234567890123".into()),
        software_version: Some("V1.2".into()),
    };
    let mut out = Vec::new();
    Body::Authenticate(a.clone())
        .encode(V2019, &mut out)
        .unwrap();
    let mut want = hex("04 41555448");
    want.extend(b"861234567890123");
    want.extend(b"V1.2");
    want.extend([0u8; 16]);
    assert_eq!(out, want);
    assert_eq!(
        Body::decode(0x0102, V2019, &out).unwrap(),
        Body::Authenticate(a)
    );
}

#[test]
fn encrypted_bodies_stay_raw() {
    let content = hex("0200 0403 012345678900 0001 AABBCC");
    let p = decode_frame(&frame(&content)).unwrap();
    assert_eq!(p.header.encryption, 1);
    assert_eq!(
        p.body,
        Body::Raw {
            msg_id: 0x0200,
            data: vec![0xAA, 0xBB, 0xCC]
        }
    );
    assert_eq!(p.encode().unwrap(), frame(&content));
}

#[test]
fn unknown_items_and_odd_lengths_round_trip() {
    let mut body = hex("00000000 00000000 00000000 00000000 0000 0000 0000 250101000000");
    body.extend(hex("01 02 0102")); // mileage with a non-standard length
    body.extend(hex("EB 03 7E7D00")); // vendor item holding escape bytes
    body.extend(hex(
        "30 01 1F 31 01 0C 25 04 00000001 2A 02 0003 2B 04 00010002 03 02 0050",
    ));
    let b = Body::decode(0x0200, Version::V2013, &body).unwrap();
    let Body::Location(l) = &b else { panic!() };
    assert_eq!(
        l.items,
        vec![
            AdditionalItem::Other {
                id: 1,
                data: vec![1, 2]
            },
            AdditionalItem::Other {
                id: 0xEB,
                data: vec![0x7E, 0x7D, 0]
            },
            AdditionalItem::SignalStrength(31),
            AdditionalItem::Satellites(12),
            AdditionalItem::VehicleSignal(1),
            AdditionalItem::IoStatus(3),
            AdditionalItem::Analog(0x0001_0002),
            AdditionalItem::RecorderSpeed(80),
        ]
    );
    let mut out = Vec::new();
    b.encode(Version::V2013, &mut out).unwrap();
    assert_eq!(out, body);
}

#[test]
fn location_hemispheres() {
    let mut l = LocationReport {
        alarm: 0,
        status: STATUS_SOUTH | STATUS_WEST,
        lat_1e6: 33_868_820,
        lon_1e6: 151_209_296,
        altitude_m: 0,
        speed_0_1kmh: 0,
        direction_deg: 0,
        time: BcdTime::default(),
        items: vec![],
    };
    assert_eq!(l.latitude().to_string(), "-33.868820");
    assert_eq!(l.longitude().to_string(), "-151.209296");
    l.status = 0;
    assert_eq!(l.longitude().to_string(), "151.209296");
    assert!(l.mileage_km().is_none());
}

#[test]
fn bcd_time_text() {
    let t: BcdTime = "2024-02-29T23:59:01".parse().unwrap();
    assert_eq!((t.year, t.month, t.day, t.second), (24, 2, 29, 1));
    assert_eq!(t.to_string(), "2024-02-29T23:59:01");
    for bad in [
        "1999-01-01T00:00:00",
        "2024-02-29 23:59:01",
        "2024-2-29T23:59:01",
    ] {
        assert!(bad.parse::<BcdTime>().is_err(), "{bad}");
    }
    let mut t = t;
    t.month = 100;
    let p = Packet {
        header: Header::new(Version::V2013, phone("012345678900"), 1),
        body: Body::Location(LocationReport {
            alarm: 0,
            status: 0,
            lat_1e6: 0,
            lon_1e6: 0,
            altitude_m: 0,
            speed_0_1kmh: 0,
            direction_deg: 0,
            time: t,
            items: vec![],
        }),
    };
    assert!(p.encode().is_err());
}

// ---------- split packets ----------

fn location_packet(serial: u16, items: usize) -> Packet {
    Packet {
        header: Header::new(Version::V2013, phone("013912345678"), serial),
        body: Body::Location(LocationReport {
            alarm: 0,
            status: 3,
            lat_1e6: 22_543_096,
            lon_1e6: 114_057_865,
            altitude_m: 12,
            speed_0_1kmh: 250,
            direction_deg: 90,
            time: "2024-05-01T08:30:00".parse().unwrap(),
            items: (0..items)
                .map(|i| AdditionalItem::Other {
                    id: 0xE0,
                    data: vec![i as u8; 200],
                })
                .collect(),
        }),
    }
}

#[test]
fn split_and_reassemble_out_of_order_with_duplicates() {
    let p = location_packet(100, 12); // 28 + 12 * 202 = 2452 bytes
    let parts = split_packet(&p, 1000).unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[2].header.serial, 102);
    assert_eq!(parts[2].header.split, Some(Split { total: 3, index: 3 }));
    let wires: Vec<Vec<u8>> = parts.iter().map(|x| x.encode().unwrap()).collect();
    let mut r = Reassembler::default();
    assert_eq!(r.push(decode_frame(&wires[2]).unwrap()).unwrap(), None);
    assert_eq!(r.push(decode_frame(&wires[0]).unwrap()).unwrap(), None);
    assert_eq!(r.push(decode_frame(&wires[0]).unwrap()).unwrap(), None);
    assert_eq!(
        r.pending(),
        vec![PendingMessage {
            phone: phone("013912345678"),
            msg_id: 0x0200,
            first_serial: 100,
            total: 3,
            missing: vec![2]
        }]
    );
    assert_eq!(r.buffered_bytes(), 1000 + 452);
    assert_eq!(r.push(decode_frame(&wires[1]).unwrap()).unwrap(), Some(p));
    assert_eq!(r.buffered_bytes(), 0);
    assert!(r.pending().is_empty());
}

#[test]
fn unsplit_packets_pass_through() {
    let mut r = Reassembler::default();
    let p = location_packet(1, 0);
    assert_eq!(r.push(p.clone()).unwrap(), Some(p));
}

#[test]
fn reassembler_limits() {
    let p = location_packet(100, 12);
    let parts = split_packet(&p, 500).unwrap(); // 5 parts
    // Too many parts: refused, nothing stored.
    let mut r = Reassembler::new(ReassemblyLimits {
        max_parts: 4,
        ..ReassemblyLimits::default()
    });
    assert_eq!(
        r.push(parts[0].clone()).unwrap_err(),
        Jt808Error::TooManyParts { total: 5, max: 4 }
    );
    assert_eq!(r.pushes(), 0);

    // Byte budget smaller than the message: dropped with TooLarge.
    let mut r = Reassembler::new(ReassemblyLimits {
        max_bytes: 900,
        ..ReassemblyLimits::default()
    });
    assert_eq!(r.push(parts[0].clone()).unwrap(), None);
    assert!(matches!(
        r.push(parts[1].clone()),
        Err(Jt808Error::TooLarge {
            len: 1000,
            max: 900
        })
    ));
    assert_eq!(r.buffered_bytes(), 0);
    assert_eq!(r.evicted_count(), 1);

    // Idle eviction after a caller-chosen number of pushes.
    let mut r = Reassembler::new(ReassemblyLimits {
        max_idle_pushes: 2,
        ..ReassemblyLimits::default()
    });
    r.push(parts[0].clone()).unwrap();
    r.push(location_packet(1, 0)).unwrap(); // unsplit packets do not count
    let other = split_packet(&location_packet(7, 12), 500).unwrap();
    r.push(other[0].clone()).unwrap();
    r.push(other[1].clone()).unwrap();
    assert_eq!(r.pending().len(), 2);
    r.push(other[2].clone()).unwrap(); // 4th push: the first message idles 3
    assert_eq!(r.pending().len(), 1);
    assert_eq!(r.pending()[0].first_serial, 7);
    assert_eq!(r.evicted_count(), 1);
    // Explicit eviction.
    let gone = r.evict_idle(0);
    assert!(gone.is_empty(), "advanced on the last push");
    r.push(parts[0].clone()).unwrap();
    let gone = r.evict_idle(0);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].first_serial, 7);
    assert_eq!(r.clear().len(), 1);

    // Too many messages at once: the least recently advanced goes.
    let mut r = Reassembler::new(ReassemblyLimits {
        max_messages: 2,
        ..ReassemblyLimits::default()
    });
    for s in [10u16, 20, 30] {
        let ps = split_packet(&location_packet(s, 12), 500).unwrap();
        r.push(ps[0].clone()).unwrap();
    }
    let firsts: Vec<u16> = r.pending().iter().map(|m| m.first_serial).collect();
    assert_eq!(firsts, vec![20, 30]);
}

#[test]
fn reassembler_state_is_serde_data() {
    let parts = split_packet(&location_packet(100, 12), 1000).unwrap();
    let mut r = Reassembler::default();
    r.push(parts[0].clone()).unwrap();
    let json = serde_json::to_string(&r).unwrap();
    let mut back: Reassembler = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    back.push(parts[1].clone()).unwrap();
    assert!(back.push(parts[2].clone()).unwrap().is_some());
}

#[test]
fn split_packet_rejects_bad_part_len() {
    let p = location_packet(1, 0);
    assert!(split_packet(&p, 0).is_err());
    assert!(split_packet(&p, 1024).is_err());
    let one = split_packet(
        &Packet {
            body: Body::Heartbeat,
            ..p
        },
        10,
    )
    .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].header.split, Some(Split { total: 1, index: 1 }));
}

// ---------- streaming ----------

#[test]
fn stream_skips_garbage_and_resyncs() {
    let hb = hex("7E00020000012345678900000A817E");
    let bad = hex("7E00020000012345678900000A827E"); // bad checksum
    let mut wire = vec![0x11, 0x22];
    wire.extend(&bad);
    wire.extend(&hb);
    wire.extend([0x7E]); // a lone delimiter
    wire.extend(&hb);
    let mut d = StreamDecoder::new(Jt808Codec);
    d.push(&wire);
    let mut frames = 0;
    let mut errors = Vec::new();
    while let Some(r) = d.next_frame() {
        match r {
            Ok(p) => {
                assert_eq!(p.body, Body::Heartbeat);
                frames += 1;
            }
            Err(e) => errors.push(e),
        }
    }
    assert_eq!(frames, 2);
    assert!(matches!(
        errors[0],
        StreamError::Garbage { offset: 0, len: 2 }
    ));
    assert!(matches!(
        errors[1],
        StreamError::Frame {
            offset: 2,
            error: Jt808Error::Checksum { .. }
        }
    ));
}

#[test]
fn stream_refuses_overlong_frames() {
    let mut d = StreamDecoder::new(Jt808Codec);
    d.push(&[0x7E]);
    d.push(&vec![0x01; MAX_FRAME_LEN]);
    assert!(matches!(
        d.next_frame(),
        Some(Err(StreamError::TooLong { offset: 0, .. }))
    ));
}

// ---------- property tests ----------

fn gbk_text(max_chars: usize) -> impl Strategy<Value = String> {
    let chars: Vec<char> = "ABCXYZ0189abz -粤京沪浙苏川鄂湘桂琼车辆终端€"
        .chars()
        .collect();
    prop::collection::vec(prop::sample::select(chars), 0..=max_chars)
        .prop_map(|v| v.into_iter().collect())
}

fn ascii(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(b"ABCZ0129-_.".to_vec()), 0..=max)
        .prop_map(|v| String::from_utf8(v).unwrap())
}

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![
        Just(Version::V2013),
        any::<u8>().prop_map(|protocol_version| Version::V2019 { protocol_version }),
    ]
}

fn header_for(v: Version) -> impl Strategy<Value = Header> {
    let digits = v.phone_len() * 2;
    (
        prop::collection::vec(0u8..10, digits),
        any::<u16>(),
        any::<bool>(),
    )
        .prop_map(move |(d, serial, reserved_bit)| {
            let s: String = d.iter().map(|x| char::from(b'0' + x)).collect();
            Header {
                version: v,
                encryption: 0,
                reserved_bit,
                phone: s.parse().unwrap(),
                serial,
                split: None,
            }
        })
}

fn bcd_time() -> impl Strategy<Value = BcdTime> {
    (0u8..100, 0u8..100, 0u8..100, 0u8..100, 0u8..100, 0u8..100).prop_map(
        |(year, month, day, hour, minute, second)| BcdTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        },
    )
}

fn item() -> impl Strategy<Value = AdditionalItem> {
    prop_oneof![
        any::<u32>().prop_map(AdditionalItem::Mileage),
        any::<u16>().prop_map(AdditionalItem::Fuel),
        any::<u16>().prop_map(AdditionalItem::RecorderSpeed),
        any::<u32>().prop_map(AdditionalItem::VehicleSignal),
        any::<u16>().prop_map(AdditionalItem::IoStatus),
        any::<u32>().prop_map(AdditionalItem::Analog),
        any::<u8>().prop_map(AdditionalItem::SignalStrength),
        any::<u8>().prop_map(AdditionalItem::Satellites),
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..12))
            .prop_filter("typed id with its standard length", |(id, d)| {
                AdditionalItem::from_raw(*id, d)
                    == AdditionalItem::Other {
                        id: *id,
                        data: d.clone(),
                    }
            })
            .prop_map(|(id, data)| AdditionalItem::Other { id, data }),
    ]
}

fn location() -> impl Strategy<Value = LocationReport> {
    (
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (any::<u16>(), any::<u16>(), any::<u16>()),
        bcd_time(),
        prop::collection::vec(item(), 0..6),
    )
        .prop_map(
            |(
                (alarm, status, lat_1e6, lon_1e6),
                (altitude_m, speed_0_1kmh, direction_deg),
                time,
                items,
            )| {
                LocationReport {
                    alarm,
                    status,
                    lat_1e6,
                    lon_1e6,
                    altitude_m,
                    speed_0_1kmh,
                    direction_deg,
                    time,
                    items,
                }
            },
        )
}

fn reply() -> impl Strategy<Value = GeneralReply> {
    (any::<u16>(), any::<u16>(), any::<u8>()).prop_map(|(ack_serial, ack_msg_id, r)| GeneralReply {
        ack_serial,
        ack_msg_id,
        result: ReplyResult::from_u8(r),
    })
}

fn body_for(v: Version) -> BoxedStrategy<Body> {
    let (wm, wmo, wid) = match v {
        Version::V2013 => (5, 20, 7),
        Version::V2019 { .. } => (11, 30, 30),
    };
    let auth = match v {
        Version::V2013 => gbk_text(8)
            .prop_map(|auth_code| Authenticate {
                auth_code,
                imei: None,
                software_version: None,
            })
            .boxed(),
        Version::V2019 { .. } => (gbk_text(8), ascii(15), ascii(20))
            .prop_map(|(auth_code, imei, sw)| Authenticate {
                auth_code,
                imei: Some(imei),
                software_version: Some(sw),
            })
            .boxed(),
    };
    prop_oneof![
        reply().prop_map(Body::TerminalReply),
        reply().prop_map(Body::PlatformReply),
        Just(Body::Heartbeat),
        (
            any::<u16>(),
            any::<u16>(),
            ascii(wm),
            ascii(wmo),
            ascii(wid),
            any::<u8>(),
            gbk_text(10)
        )
            .prop_map(
                |(province, city, maker, model, terminal_id, plate_color, plate)| {
                    Body::Register(Register {
                        province,
                        city,
                        maker,
                        model,
                        terminal_id,
                        plate_color,
                        plate,
                    })
                }
            ),
        (any::<u16>(), any::<u8>(), gbk_text(8)).prop_map(|(ack_serial, r, auth_code)| {
            Body::RegisterReply(RegisterReply {
                ack_serial,
                result: RegisterResult::from_u8(r),
                auth_code,
            })
        }),
        auth.prop_map(Body::Authenticate),
        location().prop_map(Body::Location),
        (any::<bool>(), prop::collection::vec(location(), 0..4)).prop_map(|(b, locations)| {
            Body::LocationBatch(LocationBatch {
                kind: if b {
                    BatchKind::BlindArea
                } else {
                    BatchKind::Normal
                },
                locations,
            })
        }),
        (0xE000u16..0xF000, prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(msg_id, data)| Body::Raw { msg_id, data }),
    ]
    .boxed()
}

fn packet() -> impl Strategy<Value = Packet> {
    version().prop_flat_map(|v| {
        (header_for(v), body_for(v)).prop_map(|(header, body)| Packet { header, body })
    })
}

fn split_at(wire: &[u8], cuts: &[prop::sample::Index]) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
    points.sort_unstable();
    points
}

proptest! {
    #[test]
    fn encode_then_decode_gives_the_packet(p in packet()) {
        let wire = p.encode().unwrap();
        prop_assert_eq!(wire.first(), Some(&0x7E));
        prop_assert_eq!(wire.last(), Some(&0x7E));
        prop_assert!(!wire[1..wire.len() - 1].contains(&0x7E));
        prop_assert_eq!(decode_frame(&wire).unwrap(), p);
    }

    #[test]
    fn decode_then_encode_gives_the_bytes(
        v in version(),
        id in prop::sample::select(vec![0x0001u16, 0x8001, 0x0002, 0x0100, 0x8100, 0x0102, 0x0200, 0x0704, 0x0900]),
        serial in any::<u16>(),
        body in prop::collection::vec(any::<u8>(), 0..80),
        tail in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        // Random bodies, half of them behind a valid location prefix so the
        // item parser sees random items.
        let mut b = body.clone();
        if id == 0x0200 && body.len() % 2 == 0 {
            b = hex("00000001 00000002 00BA7F0E 07E4F11C 0028 003C 0000 180715101010");
            b.extend(&tail);
        }
        let mut content = id.to_be_bytes().to_vec();
        let mut props = b.len() as u16;
        if let Version::V2019 { protocol_version } = v {
            props |= 0x4000;
            content.extend(props.to_be_bytes());
            content.push(protocol_version);
            content.extend([0u8; 10]);
        } else {
            content.extend(props.to_be_bytes());
            content.extend([0x01, 0x39, 0, 0, 0, 0]);
        }
        content.extend(serial.to_be_bytes());
        content.extend(&b);
        let wire = frame(&content);
        if let Ok(p) = decode_frame(&wire) {
            prop_assert_eq!(p.encode().unwrap(), wire);
        }
    }

    #[test]
    fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_frame(&bytes);
        let mut framed = vec![0x7E];
        framed.extend(bytes.iter().filter(|b| **b != 0x7E));
        framed.push(0x7E);
        if let Ok(p) = decode_frame(&framed) {
            prop_assert_eq!(p.encode().unwrap(), framed);
        }
    }

    #[test]
    fn split_anywhere_streams_the_same_packets(
        packets in prop::collection::vec(packet(), 1..8),
        garbage in prop::collection::vec(any::<u8>().prop_filter("no flag", |b| *b != 0x7E), 0..5),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut wire = garbage.clone();
        for p in &packets {
            wire.extend(p.encode().unwrap());
        }
        let mut d = StreamDecoder::new(Jt808Codec);
        let mut out = Vec::new();
        let mut last = 0;
        for at in split_at(&wire, &cuts).into_iter().chain([wire.len()]) {
            d.push(&wire[last..at]);
            last = at;
            out.extend(d.drain_frames());
        }
        prop_assert_eq!(out, packets);
        prop_assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn split_then_reassemble_in_any_order(
        p in packet(),
        part_len in 1usize..64,
        seed in any::<u64>(),
    ) {
        let parts = split_packet(&p, part_len).unwrap();
        prop_assume!(parts.len() <= 256);
        let mut order: Vec<usize> = (0..parts.len()).collect();
        // Deterministic shuffle from the seed.
        let mut s = seed | 1;
        for i in (1..order.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            order.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut r = Reassembler::default();
        let mut done = None;
        for (n, i) in order.iter().enumerate() {
            let wire = parts[*i].encode().unwrap();
            let got = r.push(decode_frame(&wire).unwrap()).unwrap();
            if n + 1 < order.len() {
                prop_assert!(got.is_none());
            } else {
                done = got;
            }
        }
        prop_assert_eq!(done, Some(p));
        prop_assert_eq!(r.buffered_bytes(), 0);
    }
}
