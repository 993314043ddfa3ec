//! One generic host loop over two different cabinet protocols: the
//! `CabinetCodec` trait is all it needs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::BTreeSet;
use std::fmt::Debug;

use chargeswap_core::numbering::DeviceNo;
use chargeswap_protocol::csp::{CspCabinet, DeviceKey};
use chargeswap_protocol::event::{
    CabinetCodec, CabinetCommand, CabinetEvent, CommandKind, EventKind, MessageId, OpenReason,
    ResultCode, SwapOutcome,
};
use chargeswap_protocol::stream::StreamDecoder;
use chargeswap_protocol::vendor_json::JsonVendorCabinet;

/// A host: reads a byte stream in odd-sized chunks, maps frames to events,
/// drops duplicates by `dedupe_key`, and acknowledges each new report.
fn host<C>(codec: &mut C, wire: &[u8], ack_id: impl Fn(usize) -> MessageId) -> Vec<EventKind>
where
    C: CabinetCodec,
    C::Error: Debug,
{
    let mut stream = StreamDecoder::new(codec.stream_codec());
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for chunk in wire.chunks(5) {
        stream.push(chunk);
        for frame in stream.drain_frames() {
            let ev = match codec.to_event(&frame) {
                Ok(ev) => ev,
                // a replayed sealed frame: already acted on, ignore
                Err(_) => continue,
            };
            if !seen.insert(ev.dedupe_key()) {
                continue;
            }
            let ack = CabinetCommand {
                device_no: ev.device_no,
                message_id: ack_id(out.len()),
                command: CommandKind::Acknowledge {
                    message_id: ev.message_id.clone(),
                    result: ResultCode::Ok,
                },
            };
            assert!(!codec.encode_command(&ack).unwrap().is_empty());
            out.push(ev.event);
        }
    }
    out
}

fn events(dev: DeviceNo, ids: &[MessageId]) -> Vec<CabinetEvent> {
    let kinds = [
        EventKind::DoorOpened {
            slot: 2,
            command_id: None,
        },
        EventKind::BatteryInserted {
            slot: 2,
            battery: DeviceNo::new(200_001).unwrap(),
            bms: None,
        },
        EventKind::DoorClosed { slot: 2 },
        EventKind::SwapResult {
            order_id: 42,
            outcome: SwapOutcome::Completed,
            returned_battery: Some(DeviceNo::new(200_001).unwrap()),
            issued_battery: Some(DeviceNo::new(200_002).unwrap()),
        },
    ];
    kinds
        .into_iter()
        .zip(ids)
        .map(|(event, id)| CabinetEvent {
            device_no: dev,
            message_id: id.clone(),
            authenticated: false,
            event,
        })
        .collect()
}

fn wire_with_duplicates<C>(cabinet: &mut C, evs: &[CabinetEvent]) -> Vec<u8>
where
    C: CabinetCodec,
    C::Error: Debug,
{
    let mut wire = Vec::new();
    for e in evs {
        let bytes = cabinet.encode_event(e).unwrap();
        wire.extend(&bytes);
        // every report retransmitted once (the ack "got lost")
        wire.extend(&bytes);
    }
    wire
}

#[test]
fn same_host_loop_for_csp_and_vendor_json() {
    let dev = DeviceNo::new(20_001).unwrap();
    let expected: Vec<EventKind> = events(dev, &vec![MessageId::Seq(0); 4])
        .into_iter()
        .map(|e| e.event)
        .collect();

    // CSP, with a device key: the sealed swap result is authenticated
    let key = DeviceKey::new(&[3; 32]).unwrap();
    let mut cabinet = CspCabinet::new(dev, Some(key.clone()));
    let ids: Vec<MessageId> = (1..=4).map(MessageId::Seq).collect();
    let wire = wire_with_duplicates(&mut cabinet, &events(dev, &ids));
    let mut platform = CspCabinet::new(dev, Some(key));
    let got = host(&mut platform, &wire, |i| MessageId::Seq(1000 + i as u32));
    assert_eq!(got, expected);
    assert_eq!(platform.window.highest, Some(4));

    // the JSON vendor
    let ids: Vec<MessageId> = (1..=4).map(|i| MessageId::Text(format!("v-{i}"))).collect();
    let wire = wire_with_duplicates(&mut JsonVendorCabinet::new(), &events(dev, &ids));
    let got = host(&mut JsonVendorCabinet::new(), &wire, |i| {
        MessageId::Text(format!("ack-{i}"))
    });
    assert_eq!(got, expected);
}

#[test]
fn commands_reach_the_cabinet_through_either_codec() {
    let dev = DeviceNo::new(20_001).unwrap();
    fn deliver<C: CabinetCodec>(platform: &mut C, cabinet: &mut C, cmd: &CabinetCommand)
    where
        C::Error: Debug,
    {
        let bytes = platform.encode_command(cmd).unwrap();
        assert_eq!(&cabinet.decode_command(&bytes).unwrap(), cmd);
    }
    let open = |id| CabinetCommand {
        device_no: dev,
        message_id: id,
        command: CommandKind::OpenDoor {
            slot: 5,
            reason: OpenReason::Rental,
            order_id: Some(7),
        },
    };
    let key = DeviceKey::new(&[4; 32]).unwrap();
    deliver(
        &mut CspCabinet::new(dev, Some(key.clone())),
        &mut CspCabinet::new(dev, Some(key)),
        &open(MessageId::Seq(9)),
    );
    deliver(
        &mut JsonVendorCabinet::new(),
        &mut JsonVendorCabinet::new(),
        &open(MessageId::Text("o-9".into())),
    );
}
