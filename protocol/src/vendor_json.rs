//! A vendor's length-prefixed JSON cabinet protocol, adapted to the
//! [normalized event model](crate::event) through [`CabinetCodec`].
//!
//! It stands for the style many cabinet vendors use: each frame is a 4-byte
//! big-endian length `N` (2 to [`MAX_JSON_LEN`]) followed by `N` bytes of a
//! UTF-8 JSON object with the vendor's field names:
//!
//! ```json
//! {"sn":"20001","msgId":"m-17","cmd":"batIn","data":{"no":3,"bat":"200001","bms":null}}
//! ```
//!
//! - `sn`: the cabinet's DTU number as a decimal string; `msgId`: the sender's
//!   message id (1 to 64 characters), the deduplication key with `sn`;
//! - `cmd` and `data`: the message, see docs/protocol/csp.md ("The JSON vendor
//!   adapter") for every command and field;
//! - vendor units: voltages in 0.01 V, currents in 0.01 A, temperatures in whole
//!   °C, signal as CSQ (0–31, 99 unknown; dBm = −113 + 2·CSQ). The adapter
//!   converts them to the model's mV, mA, 0.1 °C and dBm; a model value the
//!   vendor cannot express exactly (e.g. 54 321 mV) is an error, never rounded.
//! - there is no MAC: events are reported `authenticated: false`; tariff and
//!   configuration pushes are not supported by this vendor.
//!
//! ```
//! use chargeswap_protocol::event::{CabinetCodec, EventKind};
//! use chargeswap_protocol::vendor_json::JsonVendorCabinet;
//!
//! let json = br#"{"sn":"20001","msgId":"m-17","cmd":"doorClose","data":{"no":3}}"#;
//! let mut frame = (json.len() as u32).to_be_bytes().to_vec();
//! frame.extend_from_slice(json);
//! let ev = JsonVendorCabinet::new().decode_event(&frame)?;
//! assert_eq!(ev.event, EventKind::DoorClosed { slot: 3 });
//! assert_eq!(ev.dedupe_key(), "20001/m-17");
//! # Ok::<(), chargeswap_protocol::vendor_json::VendorJsonError>(())
//! ```

use chargeswap_core::numbering::{DeviceClass, DeviceNo};
use serde::{Deserialize, Serialize};

use crate::event::{
    AlarmKind, AlarmState, BmsSummary, CabinetCodec, CabinetCommand, CabinetEvent, CommandKind,
    DoorFailure, EventKind, MessageId, OpenReason, ResultCode, SlotBattery, SlotReport, SlotState,
    SwapOrder, SwapOutcome,
};
use crate::stream::{Decoded, FrameCodec};

/// The largest JSON body, bytes.
pub const MAX_JSON_LEN: usize = 16 * 1024;
/// Bytes of the length prefix.
pub const PREFIX_LEN: usize = 4;
/// The longest message id, characters.
pub const MAX_MSG_ID_LEN: usize = 64;

/// Errors of the JSON vendor adapter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VendorJsonError {
    /// Fewer bytes than the frame needs.
    #[error("frame truncated: {needed} bytes needed, {available} present")]
    Truncated {
        /// Bytes needed (as far as known).
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// A length prefix outside 2..=MAX_JSON_LEN.
    #[error("JSON length {length} at byte 0 is outside 2..={max}")]
    BadLength {
        /// The length.
        length: u64,
        /// The maximum.
        max: usize,
    },
    /// The body is not a JSON object of the vendor's shape.
    #[error("bad JSON at byte {offset}: {reason}")]
    BadJson {
        /// Offset in the frame (prefix included).
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// A field's value is out of range or cannot be converted.
    #[error("bad field {field}: {reason}")]
    BadField {
        /// The vendor field, e.g. `data.doors[2].bat`.
        field: String,
        /// What was expected.
        reason: String,
    },
    /// A model value this vendor cannot express exactly.
    #[error("cannot express {field} in the vendor protocol: {reason}")]
    Unrepresentable {
        /// The model field.
        field: String,
        /// Why.
        reason: String,
    },
    /// A command the vendor protocol does not have.
    #[error("the JSON vendor protocol has no {what} command")]
    Unsupported {
        /// The command.
        what: String,
    },
    /// A message travelling the wrong way.
    #[error("{cmd:?} is not a {expected} message")]
    WrongDirection {
        /// The vendor `cmd`.
        cmd: String,
        /// `"device-to-platform"` or `"platform-to-device"`.
        expected: String,
    },
    /// Bytes after a complete frame where exactly one was expected.
    #[error("{extra} bytes after the end of the frame at byte {offset}")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// Extra bytes.
        extra: usize,
    },
}

type Result<T, E = VendorJsonError> = core::result::Result<T, E>;

fn bad_field(field: impl Into<String>, reason: impl Into<String>) -> VendorJsonError {
    VendorJsonError::BadField {
        field: field.into(),
        reason: reason.into(),
    }
}

fn unrepresentable(field: impl Into<String>, reason: impl Into<String>) -> VendorJsonError {
    VendorJsonError::Unrepresentable {
        field: field.into(),
        reason: reason.into(),
    }
}

/// One vendor frame: envelope and body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorFrame {
    /// The cabinet's DTU number, decimal.
    pub sn: String,
    /// The sender's message id.
    #[serde(rename = "msgId")]
    pub msg_id: String,
    /// `cmd` and `data`.
    #[serde(flatten)]
    pub body: VendorBody,
}

/// A slot in a vendor status report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorDoor {
    /// Door (slot) number.
    pub no: u8,
    /// 0 empty, 1 charging, 2 full, 3 fault, 4 locked.
    pub st: u8,
    /// Battery number, `""` when none.
    pub bat: String,
    /// SOC, %.
    pub soc: u8,
    /// Pack voltage, 0.01 V.
    pub vol: u32,
    /// Temperature, °C.
    pub temp: i16,
}

/// Vendor BMS block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorBms {
    /// SOC, %.
    pub soc: u8,
    /// SOH, %.
    pub soh: u8,
    /// Pack voltage, 0.01 V.
    pub vol: u32,
    /// Current, 0.01 A, positive charging.
    pub cur: i32,
    /// Temperature, °C.
    pub temp: i16,
    /// Cycles.
    pub cycle: u32,
    /// Lowest cell, mV.
    #[serde(rename = "cellMin")]
    pub cell_min: u16,
    /// Highest cell, mV.
    #[serde(rename = "cellMax")]
    pub cell_max: u16,
    /// Protection flags (JBD order).
    pub prot: u16,
}

/// The vendor's messages: `cmd` names the message, `data` holds its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "data")]
pub enum VendorBody {
    /// ↑ `login`.
    #[serde(rename = "login")]
    Login {
        /// Firmware.
        fw: String,
        /// Model.
        model: String,
        /// Number of doors.
        #[serde(rename = "doorCount")]
        door_count: u8,
    },
    /// ↑ `heartbeat`.
    #[serde(rename = "heartbeat")]
    Heartbeat {
        /// Uptime, s.
        uptime: u32,
        /// Signal quality, CSQ 0–31, 99 unknown.
        csq: u8,
    },
    /// ↑ `status`.
    #[serde(rename = "status")]
    Status {
        /// Every door.
        doors: Vec<VendorDoor>,
    },
    /// ↑ `doorOpen`.
    #[serde(rename = "doorOpen")]
    DoorOpen {
        /// Door.
        no: u8,
        /// The `msgId` of the command that opened it.
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    /// ↑ `doorClose`.
    #[serde(rename = "doorClose")]
    DoorClose {
        /// Door.
        no: u8,
    },
    /// ↑ `doorFail`.
    #[serde(rename = "doorFail")]
    DoorFail {
        /// Door.
        no: u8,
        /// 1 lock fault, 2 jammed, 3 disabled, 4 busy, 5 timeout.
        err: u8,
        /// The `msgId` of the command.
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    /// ↑ `batIn`.
    #[serde(rename = "batIn")]
    BatIn {
        /// Door.
        no: u8,
        /// Battery number.
        bat: String,
        /// BMS block.
        bms: Option<VendorBms>,
    },
    /// ↑ `batOut`.
    #[serde(rename = "batOut")]
    BatOut {
        /// Door.
        no: u8,
        /// Battery number.
        bat: String,
        /// BMS block.
        bms: Option<VendorBms>,
    },
    /// ↑ `swapDone`.
    #[serde(rename = "swapDone")]
    SwapDone {
        /// Order number, decimal.
        #[serde(rename = "orderNo")]
        order_no: String,
        /// 0 completed, 1 return timeout, 2 wrong battery, 3 door failed, 4 cancelled, 5 expired.
        code: u8,
        /// Battery returned.
        #[serde(rename = "in")]
        bat_in: Option<String>,
        /// Battery taken.
        #[serde(rename = "out")]
        bat_out: Option<String>,
    },
    /// ↑ `alarm`.
    #[serde(rename = "alarm")]
    Alarm {
        /// `smoke`, `temp`, `water`, `tamper`, `power`.
        #[serde(rename = "type")]
        kind: String,
        /// Door, for door alarms.
        no: Option<u8>,
        /// 1 raised, 0 cleared.
        on: u8,
        /// Reading (`temp`: °C).
        val: Option<i32>,
    },
    /// ↑ `timeReq`.
    #[serde(rename = "timeReq")]
    TimeReq {
        /// Cabinet clock, Unix s.
        ts: u64,
    },
    /// ↕ `reply`.
    #[serde(rename = "reply")]
    Reply {
        /// The `msgId` replied to.
        #[serde(rename = "ref")]
        reference: String,
        /// 0 ok, 1 busy, 2 no such door, 3 door occupied, 4 bad request, 5 duplicate, 9 other.
        code: u8,
    },
    /// ↓ `openDoor`.
    #[serde(rename = "openDoor")]
    OpenDoor {
        /// Door.
        no: u8,
        /// `swapIn`, `swapOut`, `rent`, `rentBack`, `maint`.
        why: String,
        /// Order number, decimal.
        #[serde(rename = "orderNo")]
        order_no: Option<String>,
    },
    /// ↓ `swap`.
    #[serde(rename = "swap")]
    Swap {
        /// Order number, decimal.
        #[serde(rename = "orderNo")]
        order_no: String,
        /// Door for the returned battery.
        #[serde(rename = "inNo")]
        in_no: u8,
        /// Door of the battery to take.
        #[serde(rename = "outNo")]
        out_no: u8,
        /// Battery to take.
        #[serde(rename = "outBat")]
        out_bat: String,
        /// Battery expected back.
        #[serde(rename = "expectBat")]
        expect_bat: Option<String>,
        /// Expiry, Unix s.
        expire: u64,
    },
    /// ↓ `setTime`.
    #[serde(rename = "setTime")]
    SetTime {
        /// Platform time, Unix ms.
        ts: u64,
        /// UTC offset, minutes.
        tz: i16,
    },
    /// ↓ `query`.
    #[serde(rename = "query")]
    Query,
}

impl VendorBody {
    /// The vendor `cmd`.
    pub fn cmd(&self) -> &'static str {
        match self {
            VendorBody::Login { .. } => "login",
            VendorBody::Heartbeat { .. } => "heartbeat",
            VendorBody::Status { .. } => "status",
            VendorBody::DoorOpen { .. } => "doorOpen",
            VendorBody::DoorClose { .. } => "doorClose",
            VendorBody::DoorFail { .. } => "doorFail",
            VendorBody::BatIn { .. } => "batIn",
            VendorBody::BatOut { .. } => "batOut",
            VendorBody::SwapDone { .. } => "swapDone",
            VendorBody::Alarm { .. } => "alarm",
            VendorBody::TimeReq { .. } => "timeReq",
            VendorBody::Reply { .. } => "reply",
            VendorBody::OpenDoor { .. } => "openDoor",
            VendorBody::Swap { .. } => "swap",
            VendorBody::SetTime { .. } => "setTime",
            VendorBody::Query => "query",
        }
    }
}

fn json_offset(text: &[u8], e: &serde_json::Error) -> usize {
    // serde_json reports 1-based line and column; turn them into a byte offset.
    let mut line = 1;
    let mut start = 0;
    for (i, b) in text.iter().enumerate() {
        if line == e.line() {
            break;
        }
        if *b == b'\n' {
            line += 1;
            start = i + 1;
        }
    }
    PREFIX_LEN + start + e.column().saturating_sub(1)
}

fn parse(buf: &[u8]) -> Result<Option<(VendorFrame, usize)>> {
    let Some(prefix) = buf.get(..PREFIX_LEN) else {
        return Ok(None);
    };
    let mut len_bytes = [0u8; PREFIX_LEN];
    len_bytes.copy_from_slice(prefix);
    let length = u32::from_be_bytes(len_bytes);
    let len = usize::try_from(length).unwrap_or(usize::MAX);
    if !(2..=MAX_JSON_LEN).contains(&len) {
        return Err(VendorJsonError::BadLength {
            length: u64::from(length),
            max: MAX_JSON_LEN,
        });
    }
    if let Some(&b) = buf.get(PREFIX_LEN) {
        if b != b'{' {
            return Err(VendorJsonError::BadJson {
                offset: PREFIX_LEN,
                reason: format!("the body starts with 0x{b:02X}; a JSON object starts with '{{'"),
            });
        }
    }
    let total = PREFIX_LEN + len;
    let Some(body) = buf.get(PREFIX_LEN..total) else {
        return Ok(None);
    };
    let frame: VendorFrame =
        serde_json::from_slice(body).map_err(|e| VendorJsonError::BadJson {
            offset: json_offset(body, &e),
            reason: e.to_string(),
        })?;
    Ok(Some((frame, total)))
}

/// Decodes exactly one frame.
pub fn decode(bytes: &[u8]) -> Result<VendorFrame> {
    match parse(bytes)? {
        Some((f, n)) if n == bytes.len() => Ok(f),
        Some((_, n)) => Err(VendorJsonError::TrailingBytes {
            offset: n,
            extra: bytes.len() - n,
        }),
        None => Err(VendorJsonError::Truncated {
            needed: match bytes.get(..PREFIX_LEN) {
                Some(p) => PREFIX_LEN + p.iter().fold(0usize, |a, b| a << 8 | usize::from(*b)),
                None => PREFIX_LEN,
            },
            available: bytes.len(),
        }),
    }
}

/// Encodes one frame: compact JSON in field order, with the length prefix.
pub fn encode(frame: &VendorFrame) -> Result<Vec<u8>> {
    let mut out = vec![0u8; PREFIX_LEN];
    serde_json::to_writer(&mut out, frame).map_err(|e| VendorJsonError::BadJson {
        offset: PREFIX_LEN,
        reason: e.to_string(),
    })?;
    let len = out.len() - PREFIX_LEN;
    if len > MAX_JSON_LEN {
        return Err(VendorJsonError::BadLength {
            length: len as u64,
            max: MAX_JSON_LEN,
        });
    }
    let l = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    if let Some(p) = out.get_mut(..PREFIX_LEN) {
        p.copy_from_slice(&l);
    }
    Ok(out)
}

/// The streaming framer: a frame may start where the length's top two bytes
/// are zero, the third is below `0x40` (lengths up to 16 KiB) and the body
/// starts with `{`; a bad frame is skipped one byte at a time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonVendorCodec;

impl FrameCodec for JsonVendorCodec {
    type Frame = VendorFrame;
    type Error = VendorJsonError;

    fn max_frame_len(&self) -> usize {
        PREFIX_LEN + MAX_JSON_LEN
    }

    fn find_start(&self, buf: &[u8]) -> Option<usize> {
        let max_hi = u8::try_from(MAX_JSON_LEN >> 8).unwrap_or(u8::MAX);
        (0..buf.len()).find(|&i| {
            let at = |k: usize| buf.get(i + k);
            at(0) == Some(&0)
                && at(1).is_none_or(|b| *b == 0)
                && at(2).is_none_or(|b| *b <= max_hi)
                && at(4).is_none_or(|b| *b == b'{')
        })
    }

    fn decode_prefix(&self, buf: &[u8]) -> Result<Decoded<VendorFrame>> {
        Ok(match parse(buf)? {
            Some((frame, len)) => Decoded::Frame { frame, len },
            None => Decoded::Incomplete,
        })
    }
}

/// The JSON vendor protocol as a [`CabinetCodec`]. Stateless: the vendor has
/// no MAC and no sequence numbers (message ids are opaque strings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonVendorCabinet;

impl JsonVendorCabinet {
    /// The adapter.
    pub const fn new() -> JsonVendorCabinet {
        JsonVendorCabinet
    }
}

// ---- unit conversions -------------------------------------------------------

fn device(field: &str, s: &str, class: DeviceClass) -> Result<DeviceNo> {
    let n: DeviceNo = s.parse().map_err(|e| bad_field(field, format!("{e}")))?;
    if n.class() != class {
        let (a, b) = class.range();
        return Err(bad_field(
            field,
            format!(
                "{n} is a {} number; expected a {class} number {a}-{b}",
                n.class()
            ),
        ));
    }
    Ok(n)
}

fn order_no(field: &str, s: &str) -> Result<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(bad_field(
            field,
            format!("{s:?} is not a decimal order number"),
        ));
    }
    s.parse()
        .map_err(|_| bad_field(field, format!("{s:?} is above {}", u64::MAX)))
}

fn msg_id(field: &str, s: &str) -> Result<MessageId> {
    if s.is_empty() || s.chars().count() > MAX_MSG_ID_LEN {
        return Err(bad_field(
            field,
            format!("1 to {MAX_MSG_ID_LEN} characters"),
        ));
    }
    Ok(MessageId::Text(s.to_owned()))
}

fn id_text(field: &str, id: &MessageId) -> Result<String> {
    match id {
        MessageId::Text(t) if !t.is_empty() && t.chars().count() <= MAX_MSG_ID_LEN => Ok(t.clone()),
        MessageId::Text(_) => Err(unrepresentable(
            field,
            format!("1 to {MAX_MSG_ID_LEN} characters"),
        )),
        MessageId::Seq(n) => Err(unrepresentable(
            field,
            format!("vendor message ids are strings; got the number {n}"),
        )),
    }
}

fn cv_to_mv(field: &str, cv: u32) -> Result<u32> {
    cv.checked_mul(10)
        .ok_or_else(|| bad_field(field, format!("{cv} × 0.01 V overflows mV")))
}

fn mv_to_cv(field: &str, mv: u32) -> Result<u32> {
    if mv % 10 != 0 {
        return Err(unrepresentable(
            field,
            format!("{mv} mV is not a multiple of 10 mV (0.01 V)"),
        ));
    }
    Ok(mv / 10)
}

fn c_to_dc(field: &str, c: i16) -> Result<i16> {
    c.checked_mul(10)
        .ok_or_else(|| bad_field(field, format!("{c} °C is out of range")))
}

fn dc_to_c(field: &str, dc: i16) -> Result<i16> {
    if dc % 10 != 0 {
        return Err(unrepresentable(
            field,
            format!("{dc} × 0.1 °C is not a whole degree"),
        ));
    }
    Ok(dc / 10)
}

fn ca_to_ma(field: &str, ca: i32) -> Result<i32> {
    ca.checked_mul(10)
        .ok_or_else(|| bad_field(field, format!("{ca} × 0.01 A overflows mA")))
}

fn ma_to_ca(field: &str, ma: i32) -> Result<i32> {
    if ma % 10 != 0 {
        return Err(unrepresentable(
            field,
            format!("{ma} mA is not a multiple of 10 mA (0.01 A)"),
        ));
    }
    Ok(ma / 10)
}

fn csq_to_dbm(csq: u8) -> Result<Option<i8>> {
    match csq {
        99 => Ok(None),
        0..=31 => Ok(Some(-113 + 2 * i8::try_from(csq).unwrap_or(0))),
        _ => Err(bad_field(
            "data.csq",
            format!("{csq}; expected 0-31 or 99 (unknown)"),
        )),
    }
}

fn dbm_to_csq(dbm: Option<i8>) -> Result<u8> {
    let Some(d) = dbm else { return Ok(99) };
    let x = i16::from(d) + 113;
    if x % 2 != 0 || !(0..=62).contains(&x) {
        return Err(unrepresentable(
            "rssi_dbm",
            format!("{d} dBm; CSQ expresses -113 to -51 dBm in steps of 2"),
        ));
    }
    u8::try_from(x / 2).map_err(|_| unrepresentable("rssi_dbm", "out of range"))
}

fn bms_in(field: &str, b: &VendorBms) -> Result<BmsSummary> {
    let s = BmsSummary {
        soc_pct: b.soc,
        soh_pct: b.soh,
        pack_mv: cv_to_mv(&format!("{field}.vol"), b.vol)?,
        current_ma: ca_to_ma(&format!("{field}.cur"), b.cur)?,
        temp_dc: c_to_dc(&format!("{field}.temp"), b.temp)?,
        cycles: b.cycle,
        cell_min_mv: b.cell_min,
        cell_max_mv: b.cell_max,
        protection: b.prot,
    };
    Ok(s)
}

fn bms_out(b: &BmsSummary) -> Result<VendorBms> {
    Ok(VendorBms {
        soc: b.soc_pct,
        soh: b.soh_pct,
        vol: mv_to_cv("bms.pack_mv", b.pack_mv)?,
        cur: ma_to_ca("bms.current_ma", b.current_ma)?,
        temp: dc_to_c("bms.temp_dc", b.temp_dc)?,
        cycle: b.cycles,
        cell_min: b.cell_min_mv,
        cell_max: b.cell_max_mv,
        prot: b.protection,
    })
}

const SLOT_STATES: [SlotState; 5] = [
    SlotState::Empty,
    SlotState::Charging,
    SlotState::Full,
    SlotState::Fault,
    SlotState::Locked,
];

fn code_of<T: PartialEq + core::fmt::Debug>(field: &str, table: &[(u8, T)], v: &T) -> Result<u8> {
    table
        .iter()
        .find(|(_, t)| t == v)
        .map(|(c, _)| *c)
        .ok_or_else(|| unrepresentable(field, format!("the vendor has no code for {v:?}")))
}

fn value_of<T: Copy>(field: &str, table: &[(u8, T)], code: u8) -> Result<T> {
    table
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let codes: Vec<String> = table.iter().map(|(c, _)| c.to_string()).collect();
            bad_field(
                field,
                format!("code {code}; expected one of {}", codes.join(", ")),
            )
        })
}

fn name_of<T: PartialEq + Copy>(table: &[(&'static str, T)], v: T) -> &'static str {
    table
        .iter()
        .find(|(_, t)| *t == v)
        .map(|(n, _)| *n)
        .unwrap_or("")
}

fn named<T: Copy>(field: &str, table: &[(&'static str, T)], s: &str) -> Result<T> {
    table
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            bad_field(
                field,
                format!("{s:?}; expected one of {}", names.join(", ")),
            )
        })
}

const DOOR_ERRORS: [(u8, DoorFailure); 5] = [
    (1, DoorFailure::LockFault),
    (2, DoorFailure::Jammed),
    (3, DoorFailure::SlotDisabled),
    (4, DoorFailure::Busy),
    (5, DoorFailure::Timeout),
];

const SWAP_CODES: [(u8, SwapOutcome); 6] = [
    (0, SwapOutcome::Completed),
    (1, SwapOutcome::ReturnTimeout),
    (2, SwapOutcome::WrongBattery),
    (3, SwapOutcome::DoorFailed),
    (4, SwapOutcome::Cancelled),
    (5, SwapOutcome::Expired),
];

const REPLY_CODES: [(u8, ResultCode); 7] = [
    (0, ResultCode::Ok),
    (1, ResultCode::DeviceBusy),
    (2, ResultCode::InvalidSlot),
    (3, ResultCode::SlotBusy),
    (4, ResultCode::BadPayload),
    (5, ResultCode::Duplicate),
    (9, ResultCode::InternalError),
];

const ALARMS: [(&str, AlarmKind); 5] = [
    ("smoke", AlarmKind::Smoke),
    ("temp", AlarmKind::OverTemperature),
    ("water", AlarmKind::Water),
    ("tamper", AlarmKind::Tamper),
    ("power", AlarmKind::PowerLoss),
];

const REASONS: [(&str, OpenReason); 5] = [
    ("swapIn", OpenReason::SwapReturn),
    ("swapOut", OpenReason::SwapIssue),
    ("rent", OpenReason::Rental),
    ("rentBack", OpenReason::RentalReturn),
    ("maint", OpenReason::Maintenance),
];

fn door_in(i: usize, d: &VendorDoor) -> Result<SlotReport> {
    let f = |name: &str| format!("data.doors[{i}].{name}");
    let state = *SLOT_STATES
        .get(usize::from(d.st))
        .ok_or_else(|| bad_field(f("st"), format!("{}; expected 0-4", d.st)))?;
    let battery = if d.bat.is_empty() {
        None
    } else {
        Some(SlotBattery {
            battery: device(&f("bat"), &d.bat, DeviceClass::Battery)?,
            soc_pct: d.soc,
            voltage_mv: cv_to_mv(&f("vol"), d.vol)?,
            temp_dc: c_to_dc(&f("temp"), d.temp)?,
        })
    };
    Ok(SlotReport {
        slot: d.no,
        state,
        battery,
    })
}

fn door_out(s: &SlotReport) -> Result<VendorDoor> {
    let st = SLOT_STATES
        .iter()
        .position(|x| *x == s.state)
        .and_then(|p| u8::try_from(p).ok())
        .unwrap_or(0);
    Ok(match &s.battery {
        None => VendorDoor {
            no: s.slot,
            st,
            bat: String::new(),
            soc: 0,
            vol: 0,
            temp: 0,
        },
        Some(b) => VendorDoor {
            no: s.slot,
            st,
            bat: b.battery.to_string(),
            soc: b.soc_pct,
            vol: mv_to_cv("slots.battery.voltage_mv", b.voltage_mv)?,
            temp: dc_to_c("slots.battery.temp_dc", b.temp_dc)?,
        },
    })
}

fn opt_battery(field: &str, s: &Option<String>) -> Result<Option<DeviceNo>> {
    s.as_deref()
        .map(|b| device(field, b, DeviceClass::Battery))
        .transpose()
}

fn event_of(body: &VendorBody) -> Result<Option<EventKind>> {
    Ok(Some(match body {
        VendorBody::Login {
            fw,
            model,
            door_count,
        } => EventKind::Online {
            firmware: fw.clone(),
            model: model.clone(),
            slot_count: *door_count,
        },
        VendorBody::Heartbeat { uptime, csq } => EventKind::Heartbeat {
            uptime_s: *uptime,
            rssi_dbm: csq_to_dbm(*csq)?,
        },
        VendorBody::Status { doors } => EventKind::SlotStatus {
            slots: doors
                .iter()
                .enumerate()
                .map(|(i, d)| door_in(i, d))
                .collect::<Result<_>>()?,
        },
        VendorBody::DoorOpen { no, reference } => EventKind::DoorOpened {
            slot: *no,
            command_id: reference
                .as_deref()
                .map(|r| msg_id("data.ref", r))
                .transpose()?,
        },
        VendorBody::DoorClose { no } => EventKind::DoorClosed { slot: *no },
        VendorBody::DoorFail { no, err, reference } => EventKind::DoorFailed {
            slot: *no,
            reason: value_of("data.err", &DOOR_ERRORS, *err)?,
            command_id: reference
                .as_deref()
                .map(|r| msg_id("data.ref", r))
                .transpose()?,
        },
        VendorBody::BatIn { no, bat, bms } => EventKind::BatteryInserted {
            slot: *no,
            battery: device("data.bat", bat, DeviceClass::Battery)?,
            bms: bms.as_ref().map(|b| bms_in("data.bms", b)).transpose()?,
        },
        VendorBody::BatOut { no, bat, bms } => EventKind::BatteryRemoved {
            slot: *no,
            battery: device("data.bat", bat, DeviceClass::Battery)?,
            bms: bms.as_ref().map(|b| bms_in("data.bms", b)).transpose()?,
        },
        VendorBody::SwapDone {
            order_no: o,
            code,
            bat_in,
            bat_out,
        } => EventKind::SwapResult {
            order_id: order_no("data.orderNo", o)?,
            outcome: value_of("data.code", &SWAP_CODES, *code)?,
            returned_battery: opt_battery("data.in", bat_in)?,
            issued_battery: opt_battery("data.out", bat_out)?,
        },
        VendorBody::Alarm { kind, no, on, val } => EventKind::Alarm {
            alarm: named("data.type", &ALARMS, kind)?,
            state: match on {
                1 => AlarmState::Raised,
                0 => AlarmState::Cleared,
                _ => return Err(bad_field("data.on", format!("{on}; expected 1 or 0"))),
            },
            slot: *no,
            reading: match (kind.as_str(), val) {
                ("temp", Some(c)) => Some(
                    c.checked_mul(10)
                        .ok_or_else(|| bad_field("data.val", "out of range"))?,
                ),
                (_, v) => *v,
            },
        },
        VendorBody::TimeReq { ts } => EventKind::TimeSyncRequested { device_time: *ts },
        VendorBody::Reply { reference, code } => EventKind::CommandResult {
            command_id: msg_id("data.ref", reference)?,
            result: value_of("data.code", &REPLY_CODES, *code)?,
        },
        _ => return Ok(None),
    }))
}

fn body_of_event(ev: &EventKind) -> Result<VendorBody> {
    let opt_ref =
        |id: &Option<MessageId>| id.as_ref().map(|i| id_text("command_id", i)).transpose();
    Ok(match ev {
        EventKind::Online {
            firmware,
            model,
            slot_count,
        } => VendorBody::Login {
            fw: firmware.clone(),
            model: model.clone(),
            door_count: *slot_count,
        },
        EventKind::Heartbeat { uptime_s, rssi_dbm } => VendorBody::Heartbeat {
            uptime: *uptime_s,
            csq: dbm_to_csq(*rssi_dbm)?,
        },
        EventKind::SlotStatus { slots } => VendorBody::Status {
            doors: slots.iter().map(door_out).collect::<Result<_>>()?,
        },
        EventKind::DoorOpened { slot, command_id } => VendorBody::DoorOpen {
            no: *slot,
            reference: opt_ref(command_id)?,
        },
        EventKind::DoorClosed { slot } => VendorBody::DoorClose { no: *slot },
        EventKind::DoorFailed {
            slot,
            reason,
            command_id,
        } => VendorBody::DoorFail {
            no: *slot,
            err: code_of("reason", &DOOR_ERRORS, reason)?,
            reference: opt_ref(command_id)?,
        },
        EventKind::BatteryInserted { slot, battery, bms } => VendorBody::BatIn {
            no: *slot,
            bat: battery.to_string(),
            bms: bms.as_ref().map(bms_out).transpose()?,
        },
        EventKind::BatteryRemoved { slot, battery, bms } => VendorBody::BatOut {
            no: *slot,
            bat: battery.to_string(),
            bms: bms.as_ref().map(bms_out).transpose()?,
        },
        EventKind::SwapResult {
            order_id,
            outcome,
            returned_battery,
            issued_battery,
        } => VendorBody::SwapDone {
            order_no: order_id.to_string(),
            code: code_of("outcome", &SWAP_CODES, outcome)?,
            bat_in: returned_battery.map(|b| b.to_string()),
            bat_out: issued_battery.map(|b| b.to_string()),
        },
        EventKind::Alarm {
            alarm,
            state,
            slot,
            reading,
        } => VendorBody::Alarm {
            kind: name_of(&ALARMS, *alarm).to_owned(),
            no: *slot,
            on: u8::from(*state == AlarmState::Raised),
            val: match (alarm, reading) {
                (AlarmKind::OverTemperature, Some(dc)) => {
                    if dc % 10 != 0 {
                        return Err(unrepresentable(
                            "reading",
                            format!("{dc} × 0.1 °C is not a whole degree"),
                        ));
                    }
                    Some(dc / 10)
                }
                (_, r) => *r,
            },
        },
        EventKind::TimeSyncRequested { device_time } => VendorBody::TimeReq { ts: *device_time },
        EventKind::CommandResult { command_id, result } => VendorBody::Reply {
            reference: id_text("command_id", command_id)?,
            code: code_of("result", &REPLY_CODES, result)?,
        },
    })
}

fn command_of(body: &VendorBody) -> Result<Option<CommandKind>> {
    Ok(Some(match body {
        VendorBody::OpenDoor {
            no,
            why,
            order_no: o,
        } => CommandKind::OpenDoor {
            slot: *no,
            reason: named("data.why", &REASONS, why)?,
            order_id: o
                .as_deref()
                .map(|s| order_no("data.orderNo", s))
                .transpose()?,
        },
        VendorBody::Swap {
            order_no: o,
            in_no,
            out_no,
            out_bat,
            expect_bat,
            expire,
        } => CommandKind::SwapOrder(SwapOrder {
            order_id: order_no("data.orderNo", o)?,
            return_slot: *in_no,
            issue_slot: *out_no,
            issue_battery: device("data.outBat", out_bat, DeviceClass::Battery)?,
            expected_return: opt_battery("data.expectBat", expect_bat)?,
            expires_at: *expire,
        }),
        VendorBody::SetTime { ts, tz } => CommandKind::SyncTime {
            unix_ms: *ts,
            utc_offset_min: *tz,
        },
        VendorBody::Query => CommandKind::QueryStatus,
        VendorBody::Reply { reference, code } => CommandKind::Acknowledge {
            message_id: msg_id("data.ref", reference)?,
            result: value_of("data.code", &REPLY_CODES, *code)?,
        },
        _ => return Ok(None),
    }))
}

fn body_of_command(c: &CommandKind) -> Result<VendorBody> {
    Ok(match c {
        CommandKind::OpenDoor {
            slot,
            reason,
            order_id,
        } => VendorBody::OpenDoor {
            no: *slot,
            why: name_of(&REASONS, *reason).to_owned(),
            order_no: order_id.map(|o| o.to_string()),
        },
        CommandKind::SwapOrder(o) => VendorBody::Swap {
            order_no: o.order_id.to_string(),
            in_no: o.return_slot,
            out_no: o.issue_slot,
            out_bat: o.issue_battery.to_string(),
            expect_bat: o.expected_return.map(|b| b.to_string()),
            expire: o.expires_at,
        },
        CommandKind::SyncTime {
            unix_ms,
            utc_offset_min,
        } => VendorBody::SetTime {
            ts: *unix_ms,
            tz: *utc_offset_min,
        },
        CommandKind::QueryStatus => VendorBody::Query,
        CommandKind::Acknowledge { message_id, result } => VendorBody::Reply {
            reference: id_text("message_id", message_id)?,
            code: code_of("result", &REPLY_CODES, result)?,
        },
        CommandKind::PushTariff(_) | CommandKind::PushConfig(_) => {
            return Err(VendorJsonError::Unsupported {
                what: c.name().to_owned(),
            });
        }
    })
}

fn validate<T>(r: core::result::Result<T, crate::event::EventError>) -> Result<T> {
    r.map_err(|crate::event::EventError::InvalidField { field, reason }| {
        VendorJsonError::BadField { field, reason }
    })
}

impl CabinetCodec for JsonVendorCabinet {
    type Frame = VendorFrame;
    type Error = VendorJsonError;
    type Stream = JsonVendorCodec;

    fn protocol(&self) -> &'static str {
        "vendor-json"
    }

    fn stream_codec(&self) -> JsonVendorCodec {
        JsonVendorCodec
    }

    fn decode_frame(&self, bytes: &[u8]) -> Result<VendorFrame> {
        decode(bytes)
    }

    fn encode_frame(&self, frame: &VendorFrame) -> Result<Vec<u8>> {
        encode(frame)
    }

    fn to_event(&mut self, frame: &VendorFrame) -> Result<CabinetEvent> {
        let event = event_of(&frame.body)?.ok_or_else(|| VendorJsonError::WrongDirection {
            cmd: frame.body.cmd().to_owned(),
            expected: "device-to-platform".into(),
        })?;
        validate(event.validate())?;
        Ok(CabinetEvent {
            device_no: device("sn", &frame.sn, DeviceClass::Dtu)?,
            message_id: msg_id("msgId", &frame.msg_id)?,
            authenticated: false,
            event,
        })
    }

    fn command_frame(&mut self, command: &CabinetCommand) -> Result<VendorFrame> {
        validate(command.command.validate())?;
        Ok(VendorFrame {
            sn: command.device_no.to_string(),
            msg_id: id_text("message_id", &command.message_id)?,
            body: body_of_command(&command.command)?,
        })
    }

    fn event_frame(&mut self, event: &CabinetEvent) -> Result<VendorFrame> {
        validate(event.event.validate())?;
        Ok(VendorFrame {
            sn: event.device_no.to_string(),
            msg_id: id_text("message_id", &event.message_id)?,
            body: body_of_event(&event.event)?,
        })
    }

    fn to_command(&mut self, frame: &VendorFrame) -> Result<CabinetCommand> {
        let command = command_of(&frame.body)?.ok_or_else(|| VendorJsonError::WrongDirection {
            cmd: frame.body.cmd().to_owned(),
            expected: "platform-to-device".into(),
        })?;
        validate(command.validate())?;
        Ok(CabinetCommand {
            device_no: device("sn", &frame.sn, DeviceClass::Dtu)?,
            message_id: msg_id("msgId", &frame.msg_id)?,
            command,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::arb;
    use crate::stream::{StreamDecoder, StreamError};
    use proptest::prelude::*;

    fn wire(json: &str) -> Vec<u8> {
        let mut v = (json.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(json.as_bytes());
        v
    }

    fn dev() -> DeviceNo {
        DeviceNo::new(20_001).unwrap()
    }

    #[test]
    fn decodes_battery_inserted_with_unit_conversion() {
        let json = r#"{"sn":"20001","msgId":"a1","cmd":"batIn","data":{"no":3,"bat":"200001","bms":{"soc":80,"soh":97,"vol":5432,"cur":-150,"temp":31,"cycle":12,"cellMin":3301,"cellMax":3350,"prot":0}}}"#;
        let ev = JsonVendorCabinet.decode_event(&wire(json)).unwrap();
        assert_eq!(
            ev.event,
            EventKind::BatteryInserted {
                slot: 3,
                battery: DeviceNo::new(200_001).unwrap(),
                bms: Some(BmsSummary {
                    soc_pct: 80,
                    soh_pct: 97,
                    pack_mv: 54_320,
                    current_ma: -1500,
                    temp_dc: 310,
                    cycles: 12,
                    cell_min_mv: 3301,
                    cell_max_mv: 3350,
                    protection: 0,
                }),
            }
        );
        assert!(!ev.authenticated);
        assert_eq!(ev.message_id, MessageId::Text("a1".into()));
        // and back to the same bytes
        assert_eq!(JsonVendorCabinet.encode_event(&ev).unwrap(), wire(json));
    }

    #[test]
    fn heartbeat_csq() {
        let json = r#"{"sn":"20001","msgId":"h","cmd":"heartbeat","data":{"uptime":5,"csq":21}}"#;
        let ev = JsonVendorCabinet.decode_event(&wire(json)).unwrap();
        assert_eq!(
            ev.event,
            EventKind::Heartbeat {
                uptime_s: 5,
                rssi_dbm: Some(-71)
            }
        );
        let json = r#"{"sn":"20001","msgId":"h","cmd":"heartbeat","data":{"uptime":5,"csq":40}}"#;
        let e = JsonVendorCabinet.decode_event(&wire(json)).unwrap_err();
        assert!(e.to_string().contains("data.csq"), "{e}");
    }

    #[test]
    fn errors_say_what_and_where() {
        // bad JSON: the offset points into the frame
        let e = decode(&wire(r#"{"sn":"20001","msgId":x}"#)).unwrap_err();
        assert!(
            matches!(e, VendorJsonError::BadJson { offset: 26, .. }),
            "{e:?}"
        );
        // not an object
        assert!(matches!(
            decode(&wire("[1]")).unwrap_err(),
            VendorJsonError::BadJson { offset: 4, .. }
        ));
        // unknown cmd
        let e = decode(&wire(r#"{"sn":"20001","msgId":"m","cmd":"fly","data":{}}"#)).unwrap_err();
        assert!(e.to_string().contains("fly"), "{e}");
        // length out of range
        assert!(matches!(
            decode(&[0, 1, 0, 0, b'{']).unwrap_err(),
            VendorJsonError::BadLength { length: 65536, .. }
        ));
        assert!(matches!(
            decode(&[0, 0, 0, 5, b'{']).unwrap_err(),
            VendorJsonError::Truncated {
                needed: 9,
                available: 5
            }
        ));
        let mut two = wire(r#"{"sn":"20001","msgId":"m","cmd":"query"}"#);
        two.push(0);
        assert!(matches!(
            decode(&two).unwrap_err(),
            VendorJsonError::TrailingBytes { extra: 1, .. }
        ));
        // a TBOX number as sn
        let e = JsonVendorCabinet
            .decode_event(&wire(
                r#"{"sn":"5000001","msgId":"m","cmd":"doorClose","data":{"no":1}}"#,
            ))
            .unwrap_err();
        assert!(e.to_string().contains("expected a dtu number"), "{e}");
        // slot 0 fails model validation
        let e = JsonVendorCabinet
            .decode_event(&wire(
                r#"{"sn":"20001","msgId":"m","cmd":"doorClose","data":{"no":0}}"#,
            ))
            .unwrap_err();
        assert!(matches!(e, VendorJsonError::BadField { .. }), "{e:?}");
        // a downlink message is not an event
        let e = JsonVendorCabinet
            .decode_event(&wire(r#"{"sn":"20001","msgId":"m","cmd":"query"}"#))
            .unwrap_err();
        assert!(matches!(e, VendorJsonError::WrongDirection { .. }));
        // empty msgId
        let e = JsonVendorCabinet
            .decode_event(&wire(
                r#"{"sn":"20001","msgId":"","cmd":"doorClose","data":{"no":1}}"#,
            ))
            .unwrap_err();
        assert!(e.to_string().contains("msgId"));
        // leading zero order number
        let e = JsonVendorCabinet
            .decode_event(&wire(r#"{"sn":"20001","msgId":"m","cmd":"swapDone","data":{"orderNo":"007","code":0,"in":null,"out":null}}"#))
            .unwrap_err();
        assert!(e.to_string().contains("orderNo"));
    }

    #[test]
    fn unsupported_and_unrepresentable() {
        let tariff = crate::event::Tariff {
            tariff_id: 1,
            currency: chargeswap_core::money::Currency::CNY,
            swap_fee: 0,
            tiers: vec![],
            periods: vec![],
            effective_from: 0,
        };
        let cmd = CabinetCommand {
            device_no: dev(),
            message_id: MessageId::Text("t".into()),
            command: CommandKind::PushTariff(tariff),
        };
        // invalid tariff fails validation first
        assert!(JsonVendorCabinet.encode_command(&cmd).is_err());
        let cmd = CabinetCommand {
            command: CommandKind::PushConfig(crate::event::CabinetConfig {
                heartbeat_interval_s: 1,
                status_interval_s: 1,
                door_open_timeout_s: 1,
                over_temperature_dc: 0,
                max_charge_current_ma: 0,
                disabled_slots: vec![],
            }),
            ..cmd
        };
        assert!(matches!(
            JsonVendorCabinet.encode_command(&cmd),
            Err(VendorJsonError::Unsupported { .. })
        ));
        let ev = CabinetEvent {
            device_no: dev(),
            message_id: MessageId::Seq(1),
            authenticated: false,
            event: EventKind::DoorClosed { slot: 1 },
        };
        assert!(matches!(
            JsonVendorCabinet.encode_event(&ev),
            Err(VendorJsonError::Unrepresentable { .. })
        ));
        let ev = CabinetEvent {
            message_id: MessageId::Text("m".into()),
            event: EventKind::Heartbeat {
                uptime_s: 1,
                rssi_dbm: Some(-70),
            },
            ..ev
        };
        assert!(
            JsonVendorCabinet
                .encode_event(&ev)
                .unwrap_err()
                .to_string()
                .contains("rssi_dbm")
        );
    }

    fn cv_mv() -> impl Strategy<Value = u32> {
        (0u32..=429_496_729).prop_map(|v| v * 10)
    }

    fn dc() -> impl Strategy<Value = i16> {
        (-3276i16..=3276).prop_map(|v| v * 10)
    }

    fn vbms() -> impl Strategy<Value = BmsSummary> {
        (arb::bms(), cv_mv(), (-214_748_364i32..=214_748_364), dc()).prop_map(|(b, v, c, t)| {
            BmsSummary {
                pack_mv: v,
                current_ma: c * 10,
                temp_dc: t,
                ..b
            }
        })
    }

    fn vslots() -> impl Strategy<Value = Vec<SlotReport>> {
        (arb::slots(), prop::collection::vec((cv_mv(), dc()), 24)).prop_map(|(mut s, r)| {
            for (x, (v, t)) in s.iter_mut().zip(r) {
                if let Some(b) = &mut x.battery {
                    b.voltage_mv = v;
                    b.temp_dc = t;
                }
            }
            s
        })
    }

    fn text_id() -> impl Strategy<Value = MessageId> {
        "[a-zA-Z0-9-]{1,64}".prop_map(MessageId::Text)
    }

    fn vendor_event() -> impl Strategy<Value = EventKind> {
        let door_fail = prop_oneof![
            Just(DoorFailure::LockFault),
            Just(DoorFailure::Jammed),
            Just(DoorFailure::SlotDisabled),
            Just(DoorFailure::Busy),
            Just(DoorFailure::Timeout)
        ];
        let reply = prop::sample::select(REPLY_CODES.map(|(_, r)| r).to_vec());
        prop_oneof![
            (arb::label(), arb::label(), arb::slot()).prop_map(|(f, m, n)| EventKind::Online {
                firmware: f,
                model: m,
                slot_count: n
            }),
            (
                any::<u32>(),
                prop::option::of((0i8..=31).prop_map(|c| -113 + 2 * c))
            )
                .prop_map(|(u, r)| EventKind::Heartbeat {
                    uptime_s: u,
                    rssi_dbm: r
                }),
            vslots().prop_map(|slots| EventKind::SlotStatus { slots }),
            (arb::slot(), prop::option::of(text_id())).prop_map(|(slot, c)| {
                EventKind::DoorOpened {
                    slot,
                    command_id: c,
                }
            }),
            arb::slot().prop_map(|slot| EventKind::DoorClosed { slot }),
            (arb::slot(), door_fail, prop::option::of(text_id())).prop_map(|(slot, r, c)| {
                EventKind::DoorFailed {
                    slot,
                    reason: r,
                    command_id: c,
                }
            }),
            (arb::slot(), arb::battery(), prop::option::of(vbms()))
                .prop_map(|(slot, battery, bms)| EventKind::BatteryInserted { slot, battery, bms }),
            (arb::slot(), arb::battery(), prop::option::of(vbms()))
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
                prop::option::of(-100_000i32..100_000)
            )
                .prop_map(|(a, s, slot, r)| EventKind::Alarm {
                    alarm: a,
                    state: s,
                    slot,
                    reading: if a == AlarmKind::OverTemperature {
                        r.map(|x| x * 10)
                    } else {
                        r
                    }
                }),
            any::<u64>().prop_map(|t| EventKind::TimeSyncRequested { device_time: t }),
            (text_id(), reply).prop_map(|(id, r)| EventKind::CommandResult {
                command_id: id,
                result: r
            }),
        ]
    }

    fn vendor_command() -> impl Strategy<Value = CommandKind> {
        let reply = prop::sample::select(REPLY_CODES.map(|(_, r)| r).to_vec());
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
            Just(CommandKind::QueryStatus),
            (text_id(), reply).prop_map(|(id, r)| CommandKind::Acknowledge {
                message_id: id,
                result: r
            }),
        ]
    }

    proptest! {
        #[test]
        fn events_round_trip(ev in vendor_event(), dev in arb::dtu(), id in text_id()) {
            let event = CabinetEvent { device_no: dev, message_id: id, authenticated: false, event: ev };
            let bytes = JsonVendorCabinet.encode_event(&event).unwrap();
            prop_assert_eq!(JsonVendorCabinet.decode_event(&bytes).unwrap(), event);
            // decode then encode gives the bytes back
            let f = decode(&bytes).unwrap();
            prop_assert_eq!(encode(&f).unwrap(), bytes);
        }

        #[test]
        fn commands_round_trip(c in vendor_command(), dev in arb::dtu(), id in text_id()) {
            let cmd = CabinetCommand { device_no: dev, message_id: id, command: c };
            let bytes = JsonVendorCabinet.encode_command(&cmd).unwrap();
            prop_assert_eq!(JsonVendorCabinet.decode_command(&bytes).unwrap(), cmd);
        }

        #[test]
        fn stream_split_anywhere(
            evs in prop::collection::vec(vendor_event(), 1..6),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
            garbage in prop::collection::vec(1u8..=255, 0..5),
        ) {
            let events: Vec<CabinetEvent> = evs.into_iter().enumerate().map(|(i, e)| CabinetEvent {
                device_no: dev(), message_id: MessageId::Text(format!("m{i}")), authenticated: false, event: e,
            }).collect();
            let mut wire = garbage.clone();
            for e in &events {
                wire.extend(JsonVendorCabinet.encode_event(e).unwrap());
            }
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            points.sort_unstable();
            let mut d = StreamDecoder::new(JsonVendorCabinet.stream_codec());
            let mut got = Vec::new();
            let mut last = 0;
            for p in points.into_iter().chain([wire.len()]) {
                d.push(&wire[last..p]);
                last = p;
                got.extend(d.drain_frames());
            }
            let mut codec = JsonVendorCabinet;
            let decoded: Vec<CabinetEvent> = got.iter().map(|f| codec.to_event(f).unwrap()).collect();
            prop_assert_eq!(decoded, events);
        }

        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = JsonVendorCabinet.decode_event(&bytes);
            let mut d = StreamDecoder::new(JsonVendorCodec);
            d.push(&bytes);
            let mut steps = 0;
            while d.next_frame().is_some() {
                steps += 1;
                prop_assert!(steps <= bytes.len());
            }
        }
    }

    #[test]
    fn stream_resyncs_after_corruption() {
        let good = wire(r#"{"sn":"20001","msgId":"m","cmd":"doorClose","data":{"no":1}}"#);
        let mut bad = good.clone();
        bad[10] = b'#';
        let mut d = StreamDecoder::new(JsonVendorCodec);
        d.push(&bad);
        d.push(&good);
        let mut frames = 0;
        let mut errors = 0;
        while let Some(r) = d.next_frame() {
            match r {
                Ok(_) => frames += 1,
                Err(StreamError::Frame { offset: 0, .. }) => errors += 1,
                Err(_) => {}
            }
        }
        assert_eq!((frames, errors), (1, 1));
    }
}
