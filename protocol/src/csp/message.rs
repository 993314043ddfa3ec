//! CSP commands and their payloads.

use chargeswap_core::numbering::DeviceNo;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::event::{
    AlarmKind, AlarmState, BmsSummary, CabinetConfig, DoorFailure, EventError, MAX_LABEL_LEN,
    OpenReason, ResultCode, SlotReport, SwapOrder, SwapOutcome, Tariff, check_battery, check_slot,
    validate_slots,
};

/// Which way a command travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Cabinet (DTU) to platform: codes `0x01`–`0x3F`.
    Uplink,
    /// Platform to cabinet: codes `0x81`–`0xBF`.
    Downlink,
    /// Either way: `0x40` (acknowledgement).
    Both,
}

macro_rules! commands {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $snake:literal, $dir:ident, $mac:literal; )*) => {
        /// A CSP command code: byte 13 of the header. JSON: its snake_case name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Command {
            $( $(#[$doc])* $name, )*
        }

        impl Command {
            /// Every command, in code order.
            pub const ALL: &'static [Command] = &[ $( Command::$name, )* ];

            /// The wire code.
            pub const fn code(self) -> u8 {
                match self { $( Command::$name => $code, )* }
            }

            /// The command with this wire code.
            pub const fn from_code(code: u8) -> Option<Command> {
                match code { $( $code => Some(Command::$name), )* _ => None }
            }

            /// The snake_case name, as in JSON.
            pub const fn name(self) -> &'static str {
                match self { $( Command::$name => $snake, )* }
            }

            /// Which way the command travels.
            pub const fn direction(self) -> Direction {
                match self { $( Command::$name => Direction::$dir, )* }
            }

            /// True for the commands that move batteries or money: their
            /// frames must carry a MAC and pass the replay window.
            pub const fn requires_mac(self) -> bool {
                match self { $( Command::$name => $mac, )* }
            }
        }
    };
}

commands! {
    /// `0x01` ↑ login: firmware, model, slot count.
    Login = 0x01, "login", Uplink, false;
    /// `0x02` ↑ heartbeat.
    Heartbeat = 0x02, "heartbeat", Uplink, false;
    /// `0x03` ↑ status of every slot.
    CabinetStatus = 0x03, "cabinet_status", Uplink, false;
    /// `0x04` ↑ a door opened.
    DoorOpened = 0x04, "door_opened", Uplink, false;
    /// `0x05` ↑ a door closed.
    DoorClosed = 0x05, "door_closed", Uplink, false;
    /// `0x06` ↑ a door failed to open.
    DoorFailed = 0x06, "door_failed", Uplink, false;
    /// `0x07` ↑ a battery was inserted.
    BatteryInserted = 0x07, "battery_inserted", Uplink, false;
    /// `0x08` ↑ a battery was removed.
    BatteryRemoved = 0x08, "battery_removed", Uplink, false;
    /// `0x09` ↑ a swap order ended (MAC: it settles money).
    SwapResult = 0x09, "swap_result", Uplink, true;
    /// `0x0A` ↑ an alarm was raised or cleared.
    Alarm = 0x0A, "alarm", Uplink, false;
    /// `0x0B` ↑ the cabinet asks for the time.
    TimeSyncRequest = 0x0B, "time_sync_request", Uplink, false;
    /// `0x40` ↕ acknowledgement of a frame, with a result code.
    Ack = 0x40, "ack", Both, false;
    /// `0x81` ↓ open a door (MAC: it releases a battery).
    OpenDoor = 0x81, "open_door", Downlink, true;
    /// `0x82` ↓ run a swap order (MAC).
    SwapOrder = 0x82, "swap_order", Downlink, true;
    /// `0x83` ↓ set the clock.
    TimeSync = 0x83, "time_sync", Downlink, false;
    /// `0x84` ↓ install a tariff (MAC: it sets prices).
    TariffPush = 0x84, "tariff_push", Downlink, true;
    /// `0x85` ↓ install settings (MAC: it can disable slots and change charging limits).
    ConfigPush = 0x85, "config_push", Downlink, true;
    /// `0x86` ↓ ask for a status report now.
    QueryStatus = 0x86, "query_status", Downlink, false;
}

impl core::fmt::Display for Command {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} (0x{:02X})", self.name(), self.code())
    }
}

/// `0x01` login payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    /// Firmware version, UTF-8, at most 32 bytes.
    pub firmware: String,
    /// Cabinet model, UTF-8, at most 32 bytes.
    pub model: String,
    /// Number of slots, 1–255.
    pub slot_count: u8,
}

/// `0x02` heartbeat payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Seconds since the DTU booted.
    pub uptime_s: u32,
    /// Cellular signal strength, dBm, if known.
    pub rssi_dbm: Option<i8>,
}

/// `0x03` cabinet status payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CabinetStatus {
    /// Every slot, increasing slot numbers, at most 255.
    pub slots: Vec<SlotReport>,
}

/// `0x04` door opened payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorOpened {
    /// The slot, from 1.
    pub slot: u8,
    /// The sequence number of the open-door or swap-order frame that caused
    /// it; none for a manual opening.
    pub command_seq: Option<u32>,
}

/// `0x05` door closed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorClosed {
    /// The slot, from 1.
    pub slot: u8,
}

/// `0x06` door failed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorFailed {
    /// The slot, from 1.
    pub slot: u8,
    /// Why.
    pub reason: DoorFailure,
    /// The sequence number of the frame that asked for the opening, if any.
    pub command_seq: Option<u32>,
}

/// `0x07` battery inserted and `0x08` battery removed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatteryEvent {
    /// The slot, from 1.
    pub slot: u8,
    /// The battery's number (battery class).
    pub battery: DeviceNo,
    /// The BMS summary (on removal: the last one read). Cabinets should send it.
    pub bms: Option<BmsSummary>,
}

/// `0x09` swap result payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapResult {
    /// The platform's order id.
    pub order_id: u64,
    /// How the order ended.
    pub outcome: SwapOutcome,
    /// The battery the rider put in, if any.
    pub returned_battery: Option<DeviceNo>,
    /// The battery the rider took, if any.
    pub issued_battery: Option<DeviceNo>,
}

/// `0x0A` alarm payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    /// What kind.
    pub alarm: AlarmKind,
    /// Raised or cleared.
    pub state: AlarmState,
    /// The slot, for slot alarms.
    pub slot: Option<u8>,
    /// Kind-specific reading (over-temperature: 0.1 °C).
    pub reading: Option<i32>,
}

/// `0x0B` time sync request payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSyncRequest {
    /// The cabinet's clock, Unix seconds.
    pub device_time: u64,
}

/// `0x40` acknowledgement payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The sequence number of the acknowledged frame (from the other side).
    pub ack_seq: u32,
    /// The result.
    pub result: ResultCode,
}

/// `0x81` open door payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenDoor {
    /// The slot, from 1.
    pub slot: u8,
    /// Why.
    pub reason: OpenReason,
    /// The order served, if any.
    pub order_id: Option<u64>,
}

/// `0x83` time sync payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSync {
    /// Platform time, Unix milliseconds.
    pub unix_ms: u64,
    /// Local offset from UTC, minutes.
    pub utc_offset_min: i16,
}

/// A CSP message: the command and its payload. JSON: tagged by `type` (the
/// command's snake_case name), payload fields alongside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// `0x01`
    Login(Login),
    /// `0x02`
    Heartbeat(Heartbeat),
    /// `0x03`
    CabinetStatus(CabinetStatus),
    /// `0x04`
    DoorOpened(DoorOpened),
    /// `0x05`
    DoorClosed(DoorClosed),
    /// `0x06`
    DoorFailed(DoorFailed),
    /// `0x07`
    BatteryInserted(BatteryEvent),
    /// `0x08`
    BatteryRemoved(BatteryEvent),
    /// `0x09` (MAC)
    SwapResult(SwapResult),
    /// `0x0A`
    Alarm(Alarm),
    /// `0x0B`
    TimeSyncRequest(TimeSyncRequest),
    /// `0x40`
    Ack(Ack),
    /// `0x81` (MAC)
    OpenDoor(OpenDoor),
    /// `0x82` (MAC)
    SwapOrder(SwapOrder),
    /// `0x83`
    TimeSync(TimeSync),
    /// `0x84` (MAC)
    TariffPush(Tariff),
    /// `0x85` (MAC)
    ConfigPush(CabinetConfig),
    /// `0x86`: empty payload.
    QueryStatus,
}

/// Why a payload failed to decode (mapped to [`CspError`](super::CspError) with offsets).
pub(crate) enum PayloadError {
    Postcard(postcard::Error),
    Trailing { consumed: usize },
    NonCanonical,
    Invalid(EventError),
}

fn take<T: DeserializeOwned + Serialize>(p: &[u8]) -> Result<T, PayloadError> {
    let (v, rest) = postcard::take_from_bytes::<T>(p).map_err(PayloadError::Postcard)?;
    if !rest.is_empty() {
        return Err(PayloadError::Trailing {
            consumed: p.len().saturating_sub(rest.len()),
        });
    }
    // Postcard's only non-unique encodings are over-long varints, which are
    // strictly longer than the canonical form: equal size means canonical.
    let size: usize = postcard::serialize_with_flavor(&v, postcard::ser_flavors::Size::default())
        .map_err(PayloadError::Postcard)?;
    if size != p.len() {
        return Err(PayloadError::NonCanonical);
    }
    Ok(v)
}

impl Message {
    /// The command code of this message.
    pub const fn command(&self) -> Command {
        match self {
            Message::Login(_) => Command::Login,
            Message::Heartbeat(_) => Command::Heartbeat,
            Message::CabinetStatus(_) => Command::CabinetStatus,
            Message::DoorOpened(_) => Command::DoorOpened,
            Message::DoorClosed(_) => Command::DoorClosed,
            Message::DoorFailed(_) => Command::DoorFailed,
            Message::BatteryInserted(_) => Command::BatteryInserted,
            Message::BatteryRemoved(_) => Command::BatteryRemoved,
            Message::SwapResult(_) => Command::SwapResult,
            Message::Alarm(_) => Command::Alarm,
            Message::TimeSyncRequest(_) => Command::TimeSyncRequest,
            Message::Ack(_) => Command::Ack,
            Message::OpenDoor(_) => Command::OpenDoor,
            Message::SwapOrder(_) => Command::SwapOrder,
            Message::TimeSync(_) => Command::TimeSync,
            Message::TariffPush(_) => Command::TariffPush,
            Message::ConfigPush(_) => Command::ConfigPush,
            Message::QueryStatus => Command::QueryStatus,
        }
    }

    pub(crate) fn decode_payload(command: Command, p: &[u8]) -> Result<Message, PayloadError> {
        let m = match command {
            Command::Login => Message::Login(take(p)?),
            Command::Heartbeat => Message::Heartbeat(take(p)?),
            Command::CabinetStatus => Message::CabinetStatus(take(p)?),
            Command::DoorOpened => Message::DoorOpened(take(p)?),
            Command::DoorClosed => Message::DoorClosed(take(p)?),
            Command::DoorFailed => Message::DoorFailed(take(p)?),
            Command::BatteryInserted => Message::BatteryInserted(take(p)?),
            Command::BatteryRemoved => Message::BatteryRemoved(take(p)?),
            Command::SwapResult => Message::SwapResult(take(p)?),
            Command::Alarm => Message::Alarm(take(p)?),
            Command::TimeSyncRequest => Message::TimeSyncRequest(take(p)?),
            Command::Ack => Message::Ack(take(p)?),
            Command::OpenDoor => Message::OpenDoor(take(p)?),
            Command::SwapOrder => Message::SwapOrder(take(p)?),
            Command::TimeSync => Message::TimeSync(take(p)?),
            Command::TariffPush => Message::TariffPush(take(p)?),
            Command::ConfigPush => Message::ConfigPush(take(p)?),
            Command::QueryStatus => {
                if !p.is_empty() {
                    return Err(PayloadError::Trailing { consumed: 0 });
                }
                Message::QueryStatus
            }
        };
        m.validate().map_err(PayloadError::Invalid)?;
        Ok(m)
    }

    /// Appends the postcard payload to `out`.
    pub(crate) fn encode_payload(&self, out: Vec<u8>) -> Result<Vec<u8>, postcard::Error> {
        match self {
            Message::Login(v) => postcard::to_extend(v, out),
            Message::Heartbeat(v) => postcard::to_extend(v, out),
            Message::CabinetStatus(v) => postcard::to_extend(v, out),
            Message::DoorOpened(v) => postcard::to_extend(v, out),
            Message::DoorClosed(v) => postcard::to_extend(v, out),
            Message::DoorFailed(v) => postcard::to_extend(v, out),
            Message::BatteryInserted(v) | Message::BatteryRemoved(v) => postcard::to_extend(v, out),
            Message::SwapResult(v) => postcard::to_extend(v, out),
            Message::Alarm(v) => postcard::to_extend(v, out),
            Message::TimeSyncRequest(v) => postcard::to_extend(v, out),
            Message::Ack(v) => postcard::to_extend(v, out),
            Message::OpenDoor(v) => postcard::to_extend(v, out),
            Message::SwapOrder(v) => postcard::to_extend(v, out),
            Message::TimeSync(v) => postcard::to_extend(v, out),
            Message::TariffPush(v) => postcard::to_extend(v, out),
            Message::ConfigPush(v) => postcard::to_extend(v, out),
            Message::QueryStatus => Ok(out),
        }
    }

    /// Checks ranges and consistency beyond what the encoding guarantees
    /// (slots from 1, battery numbers in the battery class, SOC ≤ 100, ...).
    pub fn validate(&self) -> Result<(), EventError> {
        match self {
            Message::Login(l) => {
                for (name, s) in [("firmware", &l.firmware), ("model", &l.model)] {
                    if s.len() > MAX_LABEL_LEN {
                        return Err(EventError::InvalidField {
                            field: name.into(),
                            reason: format!("{} bytes; at most {MAX_LABEL_LEN}", s.len()),
                        });
                    }
                }
                check_slot(&"slot_count", l.slot_count)
            }
            Message::CabinetStatus(s) => validate_slots(&s.slots),
            Message::DoorOpened(DoorOpened { slot, .. })
            | Message::DoorClosed(DoorClosed { slot })
            | Message::DoorFailed(DoorFailed { slot, .. })
            | Message::OpenDoor(OpenDoor { slot, .. }) => check_slot(&"slot", *slot),
            Message::BatteryInserted(b) | Message::BatteryRemoved(b) => {
                check_slot(&"slot", b.slot)?;
                check_battery(&"battery", b.battery)?;
                match &b.bms {
                    Some(s) => s.validate("bms"),
                    None => Ok(()),
                }
            }
            Message::SwapResult(r) => {
                if let Some(b) = r.returned_battery {
                    check_battery(&"returned_battery", b)?;
                }
                if let Some(b) = r.issued_battery {
                    check_battery(&"issued_battery", b)?;
                }
                Ok(())
            }
            Message::Alarm(a) => match a.slot {
                Some(s) => check_slot(&"slot", s),
                None => Ok(()),
            },
            Message::SwapOrder(o) => o.validate(),
            Message::TariffPush(t) => t.validate(),
            Message::ConfigPush(c) => c.validate(),
            Message::Heartbeat(_)
            | Message::TimeSyncRequest(_)
            | Message::Ack(_)
            | Message::TimeSync(_)
            | Message::QueryStatus => Ok(()),
        }
    }
}
