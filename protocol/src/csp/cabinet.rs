//! CSP as a [`CabinetCodec`]: frames ⇄ normalized events and commands.

use chargeswap_core::numbering::DeviceNo;
use serde::{Deserialize, Serialize};

use super::message::{
    Ack, Alarm, BatteryEvent, CabinetStatus, Direction, DoorClosed, DoorFailed, DoorOpened,
    Heartbeat, Login, Message, OpenDoor, SwapResult, TimeSync, TimeSyncRequest,
};
use super::security::{DeviceKey, ReplayWindow, authenticate};
use super::{CspCodec, CspError, Frame};
use crate::event::{CabinetCodec, CabinetCommand, CabinetEvent, CommandKind, EventKind, MessageId};

/// One side of a CSP conversation with one cabinet, as a [`CabinetCodec`].
///
/// Plain data owned by the host (persist it with the device record):
/// - `device_no`: the cabinet; frames for another device are refused;
/// - `key`: the device key. With a key, outgoing frames are sealed and
///   incoming MACs verified. Without one, commands that require a MAC can be
///   neither sent nor accepted, and other frames are reported unauthenticated;
/// - `window`: the replay window for the frames this side *receives* (uplink
///   on the platform, downlink on a cabinet).
///
/// Sequence numbers of outgoing frames are the message ids the caller puts in
/// commands and events: the host owns its counter (it must keep increasing
/// across restarts, or the peer's replay window rejects the frames).
///
/// ```
/// use chargeswap_core::numbering::DeviceNo;
/// use chargeswap_protocol::csp::{CspCabinet, DeviceKey};
/// use chargeswap_protocol::event::{CabinetCodec, CabinetCommand, CommandKind, MessageId, OpenReason};
///
/// let key = DeviceKey::new(&[42; 32])?;
/// let dev = DeviceNo::new(20_001)?;
/// let mut platform = CspCabinet::new(dev, Some(key.clone()));
/// let mut cabinet = CspCabinet::new(dev, Some(key));
/// let open = CabinetCommand {
///     device_no: dev,
///     message_id: MessageId::Seq(1),
///     command: CommandKind::OpenDoor { slot: 4, reason: OpenReason::SwapReturn, order_id: Some(77) },
/// };
/// let bytes = platform.encode_command(&open)?;     // sealed with the key
/// assert_eq!(cabinet.decode_command(&bytes)?, open);
/// assert!(cabinet.decode_command(&bytes).is_err()); // replayed: refused
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CspCabinet {
    /// The cabinet's DTU number.
    pub device_no: DeviceNo,
    /// The device key, if provisioned.
    pub key: Option<DeviceKey>,
    /// Replay state for received frames.
    #[serde(default)]
    pub window: ReplayWindow,
}

impl CspCabinet {
    /// A codec for one cabinet with an empty replay window.
    pub fn new(device_no: DeviceNo, key: Option<DeviceKey>) -> CspCabinet {
        CspCabinet {
            device_no,
            key,
            window: ReplayWindow::new(),
        }
    }

    fn check_device(&self, found: DeviceNo) -> Result<(), CspError> {
        if found != self.device_no {
            return Err(CspError::WrongDevice {
                expected: self.device_no,
                found,
            });
        }
        Ok(())
    }

    /// Authenticates a received frame travelling `want`; returns whether it was MAC-verified.
    fn receive(&mut self, frame: &Frame, want: Direction) -> Result<bool, CspError> {
        self.check_device(frame.device_no)?;
        let command = frame.command();
        let direction = command.direction();
        if direction != want && direction != Direction::Both {
            return Err(CspError::WrongDirection { command, direction });
        }
        match &self.key {
            Some(k) => authenticate(frame, k, &mut self.window),
            None if command.requires_mac() => Err(CspError::KeyMissing {
                device_no: frame.device_no,
                command,
            }),
            None => Ok(false),
        }
    }

    /// Builds an outgoing frame, sealed when a key is configured.
    fn send(
        &self,
        device_no: DeviceNo,
        id: &MessageId,
        message: Message,
        ack_requested: bool,
    ) -> Result<Frame, CspError> {
        self.check_device(device_no)?;
        let seq = seq_of("message_id", id)?;
        let command = message.command();
        let mut frame = Frame::new(device_no, seq, message);
        frame.ack_requested = ack_requested;
        match &self.key {
            Some(k) => frame.seal(k)?,
            None if command.requires_mac() => {
                return Err(CspError::KeyMissing { device_no, command });
            }
            None => {}
        }
        Ok(frame)
    }
}

fn seq_of(field: &str, id: &MessageId) -> Result<u32, CspError> {
    match id {
        MessageId::Seq(n) => Ok(*n),
        MessageId::Text(t) => Err(CspError::Unrepresentable {
            field: field.into(),
            reason: format!("CSP message ids are u32 sequence numbers, not text ({t:?})"),
        }),
    }
}

fn opt_seq(field: &str, id: &Option<MessageId>) -> Result<Option<u32>, CspError> {
    id.as_ref().map(|i| seq_of(field, i)).transpose()
}

fn event_of(message: &Message) -> Option<EventKind> {
    Some(match message.clone() {
        Message::Login(Login {
            firmware,
            model,
            slot_count,
        }) => EventKind::Online {
            firmware,
            model,
            slot_count,
        },
        Message::Heartbeat(Heartbeat { uptime_s, rssi_dbm }) => {
            EventKind::Heartbeat { uptime_s, rssi_dbm }
        }
        Message::CabinetStatus(CabinetStatus { slots }) => EventKind::SlotStatus { slots },
        Message::DoorOpened(DoorOpened { slot, command_seq }) => EventKind::DoorOpened {
            slot,
            command_id: command_seq.map(MessageId::Seq),
        },
        Message::DoorClosed(DoorClosed { slot }) => EventKind::DoorClosed { slot },
        Message::DoorFailed(DoorFailed {
            slot,
            reason,
            command_seq,
        }) => EventKind::DoorFailed {
            slot,
            reason,
            command_id: command_seq.map(MessageId::Seq),
        },
        Message::BatteryInserted(BatteryEvent { slot, battery, bms }) => {
            EventKind::BatteryInserted { slot, battery, bms }
        }
        Message::BatteryRemoved(BatteryEvent { slot, battery, bms }) => {
            EventKind::BatteryRemoved { slot, battery, bms }
        }
        Message::SwapResult(SwapResult {
            order_id,
            outcome,
            returned_battery,
            issued_battery,
        }) => EventKind::SwapResult {
            order_id,
            outcome,
            returned_battery,
            issued_battery,
        },
        Message::Alarm(Alarm {
            alarm,
            state,
            slot,
            reading,
        }) => EventKind::Alarm {
            alarm,
            state,
            slot,
            reading,
        },
        Message::TimeSyncRequest(TimeSyncRequest { device_time }) => {
            EventKind::TimeSyncRequested { device_time }
        }
        Message::Ack(Ack { ack_seq, result }) => EventKind::CommandResult {
            command_id: MessageId::Seq(ack_seq),
            result,
        },
        _ => return None,
    })
}

fn message_of_event(event: &EventKind) -> Result<Message, CspError> {
    Ok(match event.clone() {
        EventKind::Online {
            firmware,
            model,
            slot_count,
        } => Message::Login(Login {
            firmware,
            model,
            slot_count,
        }),
        EventKind::Heartbeat { uptime_s, rssi_dbm } => {
            Message::Heartbeat(Heartbeat { uptime_s, rssi_dbm })
        }
        EventKind::SlotStatus { slots } => Message::CabinetStatus(CabinetStatus { slots }),
        EventKind::DoorOpened { slot, command_id } => Message::DoorOpened(DoorOpened {
            slot,
            command_seq: opt_seq("command_id", &command_id)?,
        }),
        EventKind::DoorClosed { slot } => Message::DoorClosed(DoorClosed { slot }),
        EventKind::DoorFailed {
            slot,
            reason,
            command_id,
        } => Message::DoorFailed(DoorFailed {
            slot,
            reason,
            command_seq: opt_seq("command_id", &command_id)?,
        }),
        EventKind::BatteryInserted { slot, battery, bms } => {
            Message::BatteryInserted(BatteryEvent { slot, battery, bms })
        }
        EventKind::BatteryRemoved { slot, battery, bms } => {
            Message::BatteryRemoved(BatteryEvent { slot, battery, bms })
        }
        EventKind::SwapResult {
            order_id,
            outcome,
            returned_battery,
            issued_battery,
        } => Message::SwapResult(SwapResult {
            order_id,
            outcome,
            returned_battery,
            issued_battery,
        }),
        EventKind::Alarm {
            alarm,
            state,
            slot,
            reading,
        } => Message::Alarm(Alarm {
            alarm,
            state,
            slot,
            reading,
        }),
        EventKind::TimeSyncRequested { device_time } => {
            Message::TimeSyncRequest(TimeSyncRequest { device_time })
        }
        EventKind::CommandResult { command_id, result } => Message::Ack(Ack {
            ack_seq: seq_of("command_id", &command_id)?,
            result,
        }),
    })
}

fn command_of(message: &Message) -> Option<CommandKind> {
    Some(match message.clone() {
        Message::OpenDoor(OpenDoor {
            slot,
            reason,
            order_id,
        }) => CommandKind::OpenDoor {
            slot,
            reason,
            order_id,
        },
        Message::SwapOrder(o) => CommandKind::SwapOrder(o),
        Message::TimeSync(TimeSync {
            unix_ms,
            utc_offset_min,
        }) => CommandKind::SyncTime {
            unix_ms,
            utc_offset_min,
        },
        Message::TariffPush(t) => CommandKind::PushTariff(t),
        Message::ConfigPush(c) => CommandKind::PushConfig(c),
        Message::QueryStatus => CommandKind::QueryStatus,
        Message::Ack(Ack { ack_seq, result }) => CommandKind::Acknowledge {
            message_id: MessageId::Seq(ack_seq),
            result,
        },
        _ => return None,
    })
}

fn message_of_command(command: &CommandKind) -> Result<Message, CspError> {
    Ok(match command.clone() {
        CommandKind::OpenDoor {
            slot,
            reason,
            order_id,
        } => Message::OpenDoor(OpenDoor {
            slot,
            reason,
            order_id,
        }),
        CommandKind::SwapOrder(o) => Message::SwapOrder(o),
        CommandKind::SyncTime {
            unix_ms,
            utc_offset_min,
        } => Message::TimeSync(TimeSync {
            unix_ms,
            utc_offset_min,
        }),
        CommandKind::PushTariff(t) => Message::TariffPush(t),
        CommandKind::PushConfig(c) => Message::ConfigPush(c),
        CommandKind::QueryStatus => Message::QueryStatus,
        CommandKind::Acknowledge { message_id, result } => Message::Ack(Ack {
            ack_seq: seq_of("message_id", &message_id)?,
            result,
        }),
    })
}

impl CabinetCodec for CspCabinet {
    type Frame = Frame;
    type Error = CspError;
    type Stream = CspCodec;

    fn protocol(&self) -> &'static str {
        "csp"
    }

    fn stream_codec(&self) -> CspCodec {
        CspCodec::new()
    }

    fn decode_frame(&self, bytes: &[u8]) -> Result<Frame, CspError> {
        super::decode(bytes)
    }

    fn encode_frame(&self, frame: &Frame) -> Result<Vec<u8>, CspError> {
        frame.encode()
    }

    fn to_event(&mut self, frame: &Frame) -> Result<CabinetEvent, CspError> {
        let authenticated = self.receive(frame, Direction::Uplink)?;
        let event = event_of(&frame.message).ok_or(CspError::WrongDirection {
            command: frame.command(),
            direction: Direction::Downlink,
        })?;
        Ok(CabinetEvent {
            device_no: frame.device_no,
            message_id: MessageId::Seq(frame.seq),
            authenticated,
            event,
        })
    }

    fn command_frame(&mut self, command: &CabinetCommand) -> Result<Frame, CspError> {
        let message = message_of_command(&command.command)?;
        // every command but an acknowledgement asks for one
        let ack = !matches!(message, Message::Ack(_));
        self.send(command.device_no, &command.message_id, message, ack)
    }

    fn event_frame(&mut self, event: &CabinetEvent) -> Result<Frame, CspError> {
        let message = message_of_event(&event.event)?;
        self.send(event.device_no, &event.message_id, message, false)
    }

    fn to_command(&mut self, frame: &Frame) -> Result<CabinetCommand, CspError> {
        self.receive(frame, Direction::Downlink)?;
        let command = command_of(&frame.message).ok_or(CspError::WrongDirection {
            command: frame.command(),
            direction: Direction::Uplink,
        })?;
        Ok(CabinetCommand {
            device_no: frame.device_no,
            message_id: MessageId::Seq(frame.seq),
            command,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csp::Command;
    use crate::event::{
        AlarmKind, AlarmState, OpenReason, ResultCode, SwapOrder, SwapOutcome, arb,
    };
    use proptest::prelude::*;

    fn dev() -> DeviceNo {
        DeviceNo::new(20_001).unwrap()
    }

    fn key() -> DeviceKey {
        DeviceKey::new(&[9; 32]).unwrap()
    }

    fn pair() -> (CspCabinet, CspCabinet) {
        (
            CspCabinet::new(dev(), Some(key())),
            CspCabinet::new(dev(), Some(key())),
        )
    }

    #[test]
    fn swap_result_needs_key_and_is_replay_protected() {
        let ev = CabinetEvent {
            device_no: dev(),
            message_id: MessageId::Seq(10),
            authenticated: true,
            event: EventKind::SwapResult {
                order_id: 5,
                outcome: SwapOutcome::Completed,
                returned_battery: Some(DeviceNo::new(200_001).unwrap()),
                issued_battery: Some(DeviceNo::new(200_002).unwrap()),
            },
        };
        let (mut cabinet, mut platform) = pair();
        let bytes = cabinet.encode_event(&ev).unwrap();
        assert_eq!(platform.decode_event(&bytes).unwrap(), ev);
        let before = platform.window;
        assert!(matches!(
            platform.decode_event(&bytes),
            Err(CspError::Replayed { seq: 10, .. })
        ));
        assert_eq!(platform.window, before, "a rejected frame changes nothing");
        // a platform without a key refuses it
        let mut keyless = CspCabinet::new(dev(), None);
        assert!(matches!(
            keyless.decode_event(&bytes),
            Err(CspError::KeyMissing { .. })
        ));
        // a cabinet without a key cannot produce it
        assert!(matches!(
            keyless.encode_event(&ev),
            Err(CspError::KeyMissing { .. })
        ));
    }

    #[test]
    fn unauthenticated_event_without_key() {
        let mut keyless = CspCabinet::new(dev(), None);
        let ev = CabinetEvent {
            device_no: dev(),
            message_id: MessageId::Seq(3),
            authenticated: false,
            event: EventKind::Alarm {
                alarm: AlarmKind::Smoke,
                state: AlarmState::Raised,
                slot: None,
                reading: None,
            },
        };
        let bytes = keyless.encode_event(&ev).unwrap();
        assert_eq!(keyless.decode_event(&bytes).unwrap(), ev);
        // a keyed platform accepts an unsealed alarm as unauthenticated
        let (_, mut platform) = pair();
        assert!(!platform.decode_event(&bytes).unwrap().authenticated);
        assert_eq!(platform.window, ReplayWindow::new());
    }

    #[test]
    fn wrong_device_direction_and_text_ids() {
        let (mut platform, mut cabinet) = pair();
        let other = DeviceNo::new(20_002).unwrap();
        let cmd = CabinetCommand {
            device_no: other,
            message_id: MessageId::Seq(1),
            command: CommandKind::QueryStatus,
        };
        assert!(matches!(
            platform.encode_command(&cmd),
            Err(CspError::WrongDevice { .. })
        ));
        let cmd = CabinetCommand {
            device_no: dev(),
            message_id: MessageId::Text("x".into()),
            command: CommandKind::QueryStatus,
        };
        assert!(matches!(
            platform.encode_command(&cmd),
            Err(CspError::Unrepresentable { .. })
        ));
        // a downlink command fed to the platform's event decoder
        let cmd = CabinetCommand {
            device_no: dev(),
            message_id: MessageId::Seq(2),
            command: CommandKind::OpenDoor {
                slot: 1,
                reason: OpenReason::Maintenance,
                order_id: None,
            },
        };
        let bytes = platform.encode_command(&cmd).unwrap();
        assert!(matches!(
            platform.decode_event(&bytes),
            Err(CspError::WrongDirection { .. })
        ));
        assert_eq!(platform.window, ReplayWindow::new());
        assert_eq!(cabinet.decode_command(&bytes).unwrap(), cmd);
        // a frame for another device is refused by the cabinet's codec
        let mut stranger = CspCabinet::new(other, Some(key()));
        assert!(matches!(
            stranger.decode_command(&bytes),
            Err(CspError::WrongDevice { .. })
        ));
    }

    #[test]
    fn forged_command_is_refused() {
        let (mut platform, _) = pair();
        let mut cabinet = CspCabinet::new(dev(), Some(DeviceKey::new(&[1; 32]).unwrap()));
        let cmd = CabinetCommand {
            device_no: dev(),
            message_id: MessageId::Seq(2),
            command: CommandKind::SwapOrder(SwapOrder {
                order_id: 1,
                return_slot: 1,
                issue_slot: 2,
                issue_battery: DeviceNo::new(200_100).unwrap(),
                expected_return: None,
                expires_at: 0,
            }),
        };
        let bytes = platform.encode_command(&cmd).unwrap();
        assert!(matches!(
            cabinet.decode_command(&bytes),
            Err(CspError::BadMac { .. })
        ));
        assert_eq!(cabinet.window, ReplayWindow::new());
    }

    fn uplink_event() -> impl Strategy<Value = EventKind> {
        let opt_id = prop::option::of(any::<u32>().prop_map(MessageId::Seq));
        prop_oneof![
            (arb::label(), arb::label(), arb::slot()).prop_map(|(f, m, n)| EventKind::Online {
                firmware: f,
                model: m,
                slot_count: n
            }),
            (any::<u32>(), prop::option::of(any::<i8>())).prop_map(|(u, r)| EventKind::Heartbeat {
                uptime_s: u,
                rssi_dbm: r
            }),
            arb::slots().prop_map(|slots| EventKind::SlotStatus { slots }),
            (arb::slot(), opt_id.clone()).prop_map(|(slot, c)| EventKind::DoorOpened {
                slot,
                command_id: c
            }),
            arb::slot().prop_map(|slot| EventKind::DoorClosed { slot }),
            (arb::slot(), arb::door_failure(), opt_id).prop_map(|(slot, r, c)| {
                EventKind::DoorFailed {
                    slot,
                    reason: r,
                    command_id: c,
                }
            }),
            (arb::slot(), arb::battery(), prop::option::of(arb::bms()))
                .prop_map(|(slot, battery, bms)| EventKind::BatteryInserted { slot, battery, bms }),
            (arb::slot(), arb::battery(), prop::option::of(arb::bms()))
                .prop_map(|(slot, battery, bms)| EventKind::BatteryRemoved { slot, battery, bms }),
            (
                any::<u64>(),
                arb::swap_outcome(),
                prop::option::of(arb::battery()),
                prop::option::of(arb::battery())
            )
                .prop_map(|(o, out, r, i)| EventKind::SwapResult {
                    order_id: o,
                    outcome: out,
                    returned_battery: r,
                    issued_battery: i
                }),
            (
                arb::alarm_kind(),
                arb::alarm_state(),
                prop::option::of(arb::slot()),
                prop::option::of(any::<i32>())
            )
                .prop_map(|(a, s, slot, r)| EventKind::Alarm {
                    alarm: a,
                    state: s,
                    slot,
                    reading: r
                }),
            any::<u64>().prop_map(|t| EventKind::TimeSyncRequested { device_time: t }),
            (any::<u32>(), arb::result_code()).prop_map(|(s, r)| EventKind::CommandResult {
                command_id: MessageId::Seq(s),
                result: r
            }),
        ]
    }

    fn downlink_command() -> impl Strategy<Value = CommandKind> {
        prop_oneof![
            (
                arb::slot(),
                arb::open_reason(),
                prop::option::of(any::<u64>())
            )
                .prop_map(|(slot, reason, order_id)| CommandKind::OpenDoor {
                    slot,
                    reason,
                    order_id
                }),
            arb::swap_order().prop_map(CommandKind::SwapOrder),
            (any::<u64>(), any::<i16>()).prop_map(|(m, o)| CommandKind::SyncTime {
                unix_ms: m,
                utc_offset_min: o
            }),
            arb::tariff().prop_map(CommandKind::PushTariff),
            arb::config().prop_map(CommandKind::PushConfig),
            Just(CommandKind::QueryStatus),
            (any::<u32>(), arb::result_code()).prop_map(|(s, r)| CommandKind::Acknowledge {
                message_id: MessageId::Seq(s),
                result: r
            }),
        ]
    }

    proptest! {
        #[test]
        fn every_event_round_trips_through_csp(ev in uplink_event(), seq in any::<u32>(), keyed in any::<bool>()) {
            let k = keyed.then(key);
            let mut cabinet = CspCabinet::new(dev(), k.clone());
            let mut platform = CspCabinet::new(dev(), k);
            let event = CabinetEvent { device_no: dev(), message_id: MessageId::Seq(seq), authenticated: keyed, event: ev };
            if !keyed && event.event.name() == "swap_result" {
                let got = cabinet.encode_event(&event);
                prop_assert!(matches!(got, Err(CspError::KeyMissing { .. })), "{:?}", got);
            } else {
                let bytes = cabinet.encode_event(&event).unwrap();
                prop_assert_eq!(platform.decode_event(&bytes).unwrap(), event);
            }
        }

        #[test]
        fn every_command_round_trips_through_csp(c in downlink_command(), seq in any::<u32>()) {
            let (mut platform, mut cabinet) = pair();
            let cmd = CabinetCommand { device_no: dev(), message_id: MessageId::Seq(seq), command: c };
            let bytes = platform.encode_command(&cmd).unwrap();
            prop_assert_eq!(cabinet.decode_command(&bytes).unwrap(), cmd);
        }
    }

    #[test]
    fn acknowledge_maps_to_ack_without_ack_request() {
        let (mut platform, _) = pair();
        let cmd = CabinetCommand {
            device_no: dev(),
            message_id: MessageId::Seq(7),
            command: CommandKind::Acknowledge {
                message_id: MessageId::Seq(3),
                result: ResultCode::Duplicate,
            },
        };
        let f = platform.command_frame(&cmd).unwrap();
        assert!(!f.ack_requested);
        assert_eq!(
            f.message,
            Message::Ack(Ack {
                ack_seq: 3,
                result: ResultCode::Duplicate
            })
        );
        assert_eq!(f.command(), Command::Ack);
    }
}
