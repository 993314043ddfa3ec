//! The normalized cabinet event model, and the [`CabinetCodec`] trait that
//! maps vendors' frames onto it.
//!
//! Every cabinet protocol the platform speaks (its own [CSP](crate::csp), a
//! vendor's [length-prefixed JSON](crate::vendor_json), ...) is adapted to the
//! types of this module, defined here once:
//!
//! - [`CabinetEvent`]: something a cabinet reported (door opened, battery
//!   inserted, slot status, alarm, ...), as [`EventKind`];
//! - [`CabinetCommand`]: something the platform asks a cabinet to do (open a
//!   door, run a swap order, push a tariff, ...), as [`CommandKind`].
//!
//! The core state machines consume only these types, never a vendor frame.
//!
//! # Units
//!
//! Integer fixed-point everywhere, the same as on the CSP wire:
//!
//! | quantity | unit | type |
//! |---|---|---|
//! | voltage | millivolt (mV) | `u32` / `u16` per cell |
//! | current | milliampere (mA), positive = charging | `i32` |
//! | temperature | 0.1 °C (`253` = 25.3 °C) | `i16` |
//! | state of charge / health | percent, 0–100 | `u8` |
//! | time of day | minutes after local midnight, 0–1439 | `u16` |
//! | instants | Unix time, seconds (or milliseconds where named `_ms`), UTC | `u64` |
//! | prices | 10⁻⁵ of the major currency unit (`350000` = ¥3.50) | `u64` |
//!
//! Prices become [`Money`] only through [`price_to_money`].
//!
//! # Idempotency: recognising duplicates
//!
//! Devices retransmit when an acknowledgement is lost, so the same report can
//! arrive twice. Every event carries the device number and the device's
//! message id ([`MessageId`]: the CSP sequence number, or the vendor's
//! `msgId`), and the pair is unique per report: [`CabinetEvent::dedupe_key`]
//! gives it as one string. A host keeps the keys it has processed (for at
//! least the device's retransmission horizon) and, on a duplicate, re-sends the
//! acknowledgement it sent the first time instead of acting again. The same
//! holds for commands: a cabinet dedupes [`CabinetCommand`]s by
//! `(device_no, message_id)`.
//!
//! ```
//! use chargeswap_core::numbering::DeviceNo;
//! use chargeswap_protocol::event::{CabinetEvent, EventKind, MessageId};
//!
//! let ev = CabinetEvent {
//!     device_no: DeviceNo::new(20_001)?,
//!     message_id: MessageId::Seq(42),
//!     authenticated: false,
//!     event: EventKind::DoorClosed { slot: 3 },
//! };
//! assert_eq!(ev.dedupe_key(), "20001/42");
//! assert_eq!(
//!     serde_json::to_value(&ev)?,
//!     serde_json::json!({"device_no": 20001, "message_id": 42, "authenticated": false,
//!                        "event": {"type": "door_closed", "slot": 3}}),
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use chargeswap_core::money::{Currency, Money};
use chargeswap_core::numbering::{DeviceClass, DeviceNo};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::stream::FrameCodec;

/// Decimal places of the wire price unit: prices are integers of 10⁻⁵ of the
/// major currency unit (the finest unit `Money` accepts).
pub const PRICE_SCALE: u32 = 5;

/// Minutes in a day: time-of-use period starts are below this.
pub const MINUTES_PER_DAY: u16 = 1440;

/// The most slots a cabinet may have (slot numbers are `1..=255`).
pub const MAX_SLOTS: usize = 255;

/// The longest firmware or model string, in bytes.
pub const MAX_LABEL_LEN: usize = 32;

/// Errors of the event model: a value that is well-formed but not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventError {
    /// A field's value is out of its allowed range or inconsistent.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field's path, e.g. `slots[2].battery.soc_pct`.
        field: String,
        /// What was expected.
        reason: String,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> EventError {
    EventError::InvalidField {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A device's id for one message: the key, together with the device number,
/// that makes duplicates recognisable. JSON: a number (CSP sequence number) or
/// a string (vendor message id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageId {
    /// A numeric sequence number (CSP).
    Seq(u32),
    /// A textual message id (vendor protocols).
    Text(String),
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageId::Seq(n) => write!(f, "{n}"),
            MessageId::Text(s) => f.write_str(s),
        }
    }
}

/// What a slot is doing. On the CSP wire: the index in this list (0–4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotState {
    /// 0: no battery.
    Empty,
    /// 1: a battery is charging.
    Charging,
    /// 2: a battery is full and can be issued.
    Full,
    /// 3: the slot or its battery has a fault.
    Fault,
    /// 4: the slot is locked out of service.
    Locked,
}

/// A battery's BMS figures as the cabinet last read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BmsSummary {
    /// State of charge, percent (0–100).
    pub soc_pct: u8,
    /// State of health, percent (0–100).
    pub soh_pct: u8,
    /// Pack voltage, mV.
    pub pack_mv: u32,
    /// Pack current, mA; positive while charging, negative while discharging.
    pub current_ma: i32,
    /// Highest pack temperature, 0.1 °C.
    pub temp_dc: i16,
    /// Charge cycles.
    pub cycles: u32,
    /// Lowest cell voltage, mV.
    pub cell_min_mv: u16,
    /// Highest cell voltage, mV (not below `cell_min_mv`).
    pub cell_max_mv: u16,
    /// Protection flags, bit 0 upward: cell over-voltage, cell under-voltage,
    /// pack over-voltage, pack under-voltage, charge over-temperature, charge
    /// under-temperature, discharge over-temperature, discharge
    /// under-temperature, charge over-current, discharge over-current, short
    /// circuit, front-end IC error, MOSFET software lock (the JBD order).
    pub protection: u16,
}

impl BmsSummary {
    /// Checks ranges; `field` prefixes the field names in errors.
    pub fn validate(&self, field: &str) -> Result<(), EventError> {
        check_pct(&format_args!("{field}.soc_pct"), self.soc_pct)?;
        check_pct(&format_args!("{field}.soh_pct"), self.soh_pct)?;
        if self.cell_min_mv > self.cell_max_mv {
            return Err(invalid(
                format!("{field}.cell_min_mv"),
                format!(
                    "{} mV is above cell_max_mv {} mV",
                    self.cell_min_mv, self.cell_max_mv
                ),
            ));
        }
        Ok(())
    }
}

/// The battery in a slot, as a status report gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SlotBattery {
    /// The battery's device number (battery class).
    pub battery: DeviceNo,
    /// State of charge, percent (0–100).
    pub soc_pct: u8,
    /// Pack voltage, mV.
    pub voltage_mv: u32,
    /// Pack temperature, 0.1 °C.
    pub temp_dc: i16,
}

/// One slot of a status report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SlotReport {
    /// Slot number, from 1.
    pub slot: u8,
    /// What the slot is doing.
    pub state: SlotState,
    /// The battery in it: none when `empty`, always one when `charging` or `full`.
    pub battery: Option<SlotBattery>,
}

impl SlotReport {
    /// Checks the slot number, the state/battery consistency and the battery.
    /// Field names in errors are relative (`slot`, `battery.soc_pct`).
    pub fn validate(&self) -> Result<(), EventError> {
        check_slot(&"slot", self.slot)?;
        match (self.state, &self.battery) {
            (SlotState::Empty, Some(_)) => Err(invalid("battery", "an empty slot has no battery")),
            (SlotState::Charging | SlotState::Full, None) => Err(invalid(
                "battery",
                "a charging or full slot must report its battery",
            )),
            (_, Some(b)) => {
                check_battery(&"battery.battery", b.battery)?;
                check_pct(&"battery.soc_pct", b.soc_pct)
            }
            (_, None) => Ok(()),
        }
    }
}

fn prefixed(prefix: fmt::Arguments<'_>, e: EventError) -> EventError {
    let EventError::InvalidField { field, reason } = e;
    EventError::InvalidField {
        field: format!("{prefix}.{field}"),
        reason,
    }
}

/// Checks a status report: at most [`MAX_SLOTS`] slots, strictly increasing
/// slot numbers, each slot valid.
pub fn validate_slots(slots: &[SlotReport]) -> Result<(), EventError> {
    if slots.len() > MAX_SLOTS {
        return Err(invalid(
            "slots",
            format!("{} entries; at most {MAX_SLOTS}", slots.len()),
        ));
    }
    let mut last = 0u8;
    for (i, s) in slots.iter().enumerate() {
        s.validate()
            .map_err(|e| prefixed(format_args!("slots[{i}]"), e))?;
        if s.slot <= last {
            return Err(invalid(
                format!("slots[{i}].slot"),
                format!(
                    "slot {} follows slot {last}; slots must be listed once each, in increasing order",
                    s.slot
                ),
            ));
        }
        last = s.slot;
    }
    Ok(())
}

/// Why a door did not open. On the CSP wire: the index in this list (0–4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorFailure {
    /// 0: the lock did not release.
    LockFault,
    /// 1: the lock released but the door did not open.
    Jammed,
    /// 2: the slot is disabled.
    SlotDisabled,
    /// 3: another door operation is running.
    Busy,
    /// 4: no door sensor change within the timeout.
    Timeout,
}

/// An alarm's kind. On the CSP wire: the index in this list (0–4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// 0: smoke detector.
    Smoke,
    /// 1: over-temperature (cabinet or slot); `reading` is the temperature in 0.1 °C.
    OverTemperature,
    /// 2: water ingress.
    Water,
    /// 3: tamper (cabinet opened, forced door).
    Tamper,
    /// 4: mains power lost (running on backup).
    PowerLoss,
}

/// Whether an alarm began or ended. On the CSP wire: 0 raised, 1 cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// 0: the condition began.
    Raised,
    /// 1: the condition ended.
    Cleared,
}

/// How a swap order ended. On the CSP wire: the index in this list (0–5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwapOutcome {
    /// 0: flat battery returned and full battery taken.
    Completed,
    /// 1: the rider did not return a battery in time.
    ReturnTimeout,
    /// 2: the returned battery is not the expected one (kept locked in the slot).
    WrongBattery,
    /// 3: a door failed to open.
    DoorFailed,
    /// 4: cancelled at the cabinet.
    Cancelled,
    /// 5: the order expired before it started.
    Expired,
}

/// Why a door is opened. On the CSP wire: the index in this list (0–4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenReason {
    /// 0: an empty slot for the rider's flat battery.
    SwapReturn,
    /// 1: the slot with the full battery to take.
    SwapIssue,
    /// 2: issuing a rental battery.
    Rental,
    /// 3: taking back a rental battery.
    RentalReturn,
    /// 4: maintenance by staff.
    Maintenance,
}

/// The result code of an acknowledgement. On the CSP wire: the index in this
/// list (0–14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultCode {
    /// 0: done.
    Ok,
    /// 1: the command code is not known.
    UnknownCommand,
    /// 2: the payload did not decode or is invalid.
    BadPayload,
    /// 3: the MAC is missing or wrong.
    AuthFailed,
    /// 4: the sequence number was seen before or is too old.
    Replayed,
    /// 5: no such slot.
    InvalidSlot,
    /// 6: the slot is in use.
    SlotBusy,
    /// 7: the device is busy with another operation.
    DeviceBusy,
    /// 8: no such order.
    UnknownOrder,
    /// 9: the order has expired.
    OrderExpired,
    /// 10: the device must log in first.
    NotLoggedIn,
    /// 11: the protocol version is not supported.
    UnsupportedVersion,
    /// 12: a hardware fault prevented it.
    HardwareFault,
    /// 13: already done earlier (a duplicate); the earlier result stands.
    Duplicate,
    /// 14: an internal error.
    InternalError,
}

/// A time-of-use tier (尖 / 峰 / 平 / 谷). On the CSP wire: the index (0–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TouTier {
    /// 0: sharp (尖).
    Sharp,
    /// 1: peak (峰).
    Peak,
    /// 2: flat (平).
    Flat,
    /// 3: valley (谷).
    Valley,
}

/// The per-kWh prices of one tier, in 10⁻⁵ of the major currency unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TierPrice {
    /// The tier.
    pub tier: TouTier,
    /// Electricity fee (电费) per kWh, 10⁻⁵ major units.
    pub energy_per_kwh: u64,
    /// Service fee (服务费) per kWh, 10⁻⁵ major units.
    pub service_per_kwh: u64,
}

/// From `start_minute` (local time) until the next period's start, `tier` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TouPeriod {
    /// Minutes after local midnight, 0–1439.
    pub start_minute: u16,
    /// The tier in force.
    pub tier: TouTier,
}

/// Prices a cabinet displays and applies locally (a tariff push).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tariff {
    /// The platform's tariff id.
    pub tariff_id: u32,
    /// The currency of every price.
    pub currency: Currency,
    /// Fee per swap, 10⁻⁵ major units (`350000` = ¥3.50).
    pub swap_fee: u64,
    /// Prices per tier; each tier at most once.
    pub tiers: Vec<TierPrice>,
    /// The day's periods: the first starts at minute 0, starts strictly
    /// increase, and every tier used has a price in `tiers`.
    pub periods: Vec<TouPeriod>,
    /// When the tariff takes effect, Unix seconds.
    pub effective_from: u64,
}

/// Converts a wire price (10⁻⁵ major units) to [`Money`]; fails above `i64::MAX`.
///
/// ```
/// use chargeswap_core::money::Currency;
/// use chargeswap_protocol::event::price_to_money;
/// assert_eq!(price_to_money(350_000, Currency::CNY)?.to_string(), "¥3.50");
/// assert_eq!(price_to_money(123_456, Currency::CNY)?.to_string(), "¥1.23456");
/// # Ok::<(), chargeswap_protocol::event::EventError>(())
/// ```
pub fn price_to_money(price: u64, currency: Currency) -> Result<Money, EventError> {
    let units = i64::try_from(price)
        .map_err(|_| invalid("price", format!("{price} is above {}", i64::MAX)))?;
    Money::new(Decimal::new(units, PRICE_SCALE), currency)
        .map_err(|e| invalid("price", e.to_string()))
}

impl Tariff {
    /// The swap fee as money.
    pub fn swap_fee_money(&self) -> Result<Money, EventError> {
        price_to_money(self.swap_fee, self.currency)
    }

    /// Checks prices, tiers and periods.
    pub fn validate(&self) -> Result<(), EventError> {
        let max = u64::try_from(i64::MAX).unwrap_or(u64::MAX);
        if self.swap_fee > max {
            return Err(invalid("swap_fee", format!("above {max}")));
        }
        if self.tiers.len() > 4 {
            return Err(invalid("tiers", "at most one price per tier (4)"));
        }
        for (i, t) in self.tiers.iter().enumerate() {
            if t.energy_per_kwh > max || t.service_per_kwh > max {
                return Err(invalid(format!("tiers[{i}]"), format!("price above {max}")));
            }
            if self.tiers.iter().take(i).any(|o| o.tier == t.tier) {
                return Err(invalid(
                    format!("tiers[{i}].tier"),
                    format!("{:?} is priced twice", t.tier),
                ));
            }
        }
        if self.periods.is_empty() || self.periods.len() > usize::from(MINUTES_PER_DAY) {
            return Err(invalid("periods", "1 to 1440 periods are needed"));
        }
        let mut prev: Option<u16> = None;
        for (i, p) in self.periods.iter().enumerate() {
            let ok = match prev {
                None => p.start_minute == 0,
                Some(q) => p.start_minute > q && p.start_minute < MINUTES_PER_DAY,
            };
            if !ok {
                return Err(invalid(
                    format!("periods[{i}].start_minute"),
                    "the first period starts at 0 and starts strictly increase below 1440",
                ));
            }
            if !self.tiers.iter().any(|t| t.tier == p.tier) {
                return Err(invalid(
                    format!("periods[{i}].tier"),
                    format!("{:?} has no price in tiers", p.tier),
                ));
            }
            prev = Some(p.start_minute);
        }
        Ok(())
    }
}

/// Cabinet settings pushed by the platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CabinetConfig {
    /// Seconds between heartbeats (at least 1).
    pub heartbeat_interval_s: u16,
    /// Seconds between full status reports (at least 1).
    pub status_interval_s: u16,
    /// Seconds a door may stay open before a `timeout` failure (at least 1).
    pub door_open_timeout_s: u16,
    /// Slot temperature that raises an over-temperature alarm, 0.1 °C.
    pub over_temperature_dc: i16,
    /// Charger current limit per slot, mA.
    pub max_charge_current_ma: u32,
    /// Slots taken out of service, increasing, each from 1.
    pub disabled_slots: Vec<u8>,
}

impl CabinetConfig {
    /// Checks intervals and the slot list.
    pub fn validate(&self) -> Result<(), EventError> {
        for (name, v) in [
            ("heartbeat_interval_s", self.heartbeat_interval_s),
            ("status_interval_s", self.status_interval_s),
            ("door_open_timeout_s", self.door_open_timeout_s),
        ] {
            if v == 0 {
                return Err(invalid(name, "must be at least 1 second"));
            }
        }
        let mut last = 0u8;
        for (i, s) in self.disabled_slots.iter().enumerate() {
            if *s <= last {
                return Err(invalid(
                    format!("disabled_slots[{i}]"),
                    "slots from 1, strictly increasing",
                ));
            }
            last = *s;
        }
        Ok(())
    }
}

/// A swap the cabinet is to run: take the rider's flat battery into
/// `return_slot`, then issue `issue_battery` from `issue_slot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SwapOrder {
    /// The platform's order id.
    pub order_id: u64,
    /// The empty slot opened for the flat battery.
    pub return_slot: u8,
    /// The slot holding the full battery.
    pub issue_slot: u8,
    /// The full battery to issue (battery class).
    pub issue_battery: DeviceNo,
    /// The battery the rider is expected to return, if known (battery class).
    pub expected_return: Option<DeviceNo>,
    /// The order must start before this Unix time, seconds.
    pub expires_at: u64,
}

impl SwapOrder {
    /// Checks slots and battery numbers.
    pub fn validate(&self) -> Result<(), EventError> {
        check_slot(&"return_slot", self.return_slot)?;
        check_slot(&"issue_slot", self.issue_slot)?;
        if self.return_slot == self.issue_slot {
            return Err(invalid(
                "issue_slot",
                "must differ from return_slot (the flat and the full battery need two slots)",
            ));
        }
        check_battery(&"issue_battery", self.issue_battery)?;
        if let Some(b) = self.expected_return {
            check_battery(&"expected_return", b)?;
        }
        Ok(())
    }
}

/// Something a cabinet reported, normalized. See the [module docs](self) for
/// units and deduplication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CabinetEvent {
    /// The reporting cabinet (its DTU's number).
    pub device_no: DeviceNo,
    /// The device's message id; with `device_no`, the deduplication key.
    pub message_id: MessageId,
    /// True when the frame carried a MAC that was verified with the device's key.
    pub authenticated: bool,
    /// What happened.
    pub event: EventKind,
}

impl CabinetEvent {
    /// `"<device_no>/<message_id>"`: equal for a report and its retransmissions,
    /// different for any two distinct reports of a device.
    pub fn dedupe_key(&self) -> String {
        format!("{}/{}", self.device_no, self.message_id)
    }
}

/// What happened at a cabinet. JSON: tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The cabinet came online (logged in).
    Online {
        /// Firmware version, at most 32 bytes.
        firmware: String,
        /// Cabinet model, at most 32 bytes.
        model: String,
        /// Number of slots, at least 1.
        slot_count: u8,
    },
    /// The cabinet is alive.
    Heartbeat {
        /// Seconds since the DTU booted.
        uptime_s: u32,
        /// Cellular signal strength, dBm, when known.
        rssi_dbm: Option<i8>,
    },
    /// The state of slots (all of them, or the ones that changed).
    SlotStatus {
        /// Slot reports, increasing slot numbers.
        slots: Vec<SlotReport>,
    },
    /// A door opened.
    DoorOpened {
        /// The slot.
        slot: u8,
        /// The open-door command that caused it, if any (none for a manual opening).
        command_id: Option<MessageId>,
    },
    /// A door closed.
    DoorClosed {
        /// The slot.
        slot: u8,
    },
    /// A door failed to open.
    DoorFailed {
        /// The slot.
        slot: u8,
        /// Why.
        reason: DoorFailure,
        /// The open-door command that failed, if any.
        command_id: Option<MessageId>,
    },
    /// A battery was put into a slot.
    BatteryInserted {
        /// The slot.
        slot: u8,
        /// The battery (battery class).
        battery: DeviceNo,
        /// Its BMS figures, when the cabinet read them.
        bms: Option<BmsSummary>,
    },
    /// A battery was taken out of a slot.
    BatteryRemoved {
        /// The slot.
        slot: u8,
        /// The battery (battery class).
        battery: DeviceNo,
        /// Its last BMS figures, when known.
        bms: Option<BmsSummary>,
    },
    /// A swap order ended.
    SwapResult {
        /// The platform's order id.
        order_id: u64,
        /// How it ended.
        outcome: SwapOutcome,
        /// The battery the rider put in, if any.
        returned_battery: Option<DeviceNo>,
        /// The battery the rider took, if any.
        issued_battery: Option<DeviceNo>,
    },
    /// An alarm was raised or cleared.
    Alarm {
        /// What kind.
        alarm: AlarmKind,
        /// Raised or cleared.
        state: AlarmState,
        /// The slot, if the alarm is slot-specific.
        slot: Option<u8>,
        /// A kind-specific reading (over-temperature: 0.1 °C).
        reading: Option<i32>,
    },
    /// The cabinet asks for the time.
    TimeSyncRequested {
        /// The cabinet's own clock, Unix seconds.
        device_time: u64,
    },
    /// The cabinet acknowledged a command.
    CommandResult {
        /// The command's message id.
        command_id: MessageId,
        /// The result.
        result: ResultCode,
    },
}

impl EventKind {
    /// The `type` tag, e.g. `"door_opened"`.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Online { .. } => "online",
            EventKind::Heartbeat { .. } => "heartbeat",
            EventKind::SlotStatus { .. } => "slot_status",
            EventKind::DoorOpened { .. } => "door_opened",
            EventKind::DoorClosed { .. } => "door_closed",
            EventKind::DoorFailed { .. } => "door_failed",
            EventKind::BatteryInserted { .. } => "battery_inserted",
            EventKind::BatteryRemoved { .. } => "battery_removed",
            EventKind::SwapResult { .. } => "swap_result",
            EventKind::Alarm { .. } => "alarm",
            EventKind::TimeSyncRequested { .. } => "time_sync_requested",
            EventKind::CommandResult { .. } => "command_result",
        }
    }

    /// Checks every field's range and consistency.
    pub fn validate(&self) -> Result<(), EventError> {
        match self {
            EventKind::Online {
                firmware,
                model,
                slot_count,
            } => {
                check_label("firmware", firmware)?;
                check_label("model", model)?;
                check_slot(&"slot_count", *slot_count)
            }
            EventKind::Heartbeat { .. }
            | EventKind::TimeSyncRequested { .. }
            | EventKind::CommandResult { .. } => Ok(()),
            EventKind::SlotStatus { slots } => validate_slots(slots),
            EventKind::DoorOpened { slot, .. }
            | EventKind::DoorClosed { slot }
            | EventKind::DoorFailed { slot, .. } => check_slot(&"slot", *slot),
            EventKind::BatteryInserted { slot, battery, bms }
            | EventKind::BatteryRemoved { slot, battery, bms } => {
                check_slot(&"slot", *slot)?;
                check_battery(&"battery", *battery)?;
                match bms {
                    Some(b) => b.validate("bms"),
                    None => Ok(()),
                }
            }
            EventKind::SwapResult {
                returned_battery,
                issued_battery,
                ..
            } => {
                if let Some(b) = returned_battery {
                    check_battery(&"returned_battery", *b)?;
                }
                if let Some(b) = issued_battery {
                    check_battery(&"issued_battery", *b)?;
                }
                Ok(())
            }
            EventKind::Alarm { slot, .. } => match slot {
                Some(s) => check_slot(&"slot", *s),
                None => Ok(()),
            },
        }
    }
}

/// Something the platform asks a cabinet to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CabinetCommand {
    /// The cabinet (its DTU's number).
    pub device_no: DeviceNo,
    /// The platform's id for this command, chosen by the host (for CSP: the
    /// platform→device sequence number, which must increase); the cabinet's
    /// acknowledgement and door events refer to it.
    pub message_id: MessageId,
    /// What to do.
    pub command: CommandKind,
}

/// What a cabinet is asked to do. JSON: tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CommandKind {
    /// Open one door.
    OpenDoor {
        /// The slot.
        slot: u8,
        /// Why.
        reason: OpenReason,
        /// The order it serves, if any.
        order_id: Option<u64>,
    },
    /// Run a swap.
    SwapOrder(SwapOrder),
    /// Set the cabinet's clock.
    SyncTime {
        /// Platform time, Unix milliseconds.
        unix_ms: u64,
        /// The local offset from UTC, minutes (`480` for China).
        utc_offset_min: i16,
    },
    /// Install a tariff.
    PushTariff(Tariff),
    /// Install settings.
    PushConfig(CabinetConfig),
    /// Ask for a full status report now.
    QueryStatus,
    /// Acknowledge a device message.
    Acknowledge {
        /// The device message acknowledged.
        message_id: MessageId,
        /// The result.
        result: ResultCode,
    },
}

impl CommandKind {
    /// The `type` tag, e.g. `"open_door"`.
    pub fn name(&self) -> &'static str {
        match self {
            CommandKind::OpenDoor { .. } => "open_door",
            CommandKind::SwapOrder(_) => "swap_order",
            CommandKind::SyncTime { .. } => "sync_time",
            CommandKind::PushTariff(_) => "push_tariff",
            CommandKind::PushConfig(_) => "push_config",
            CommandKind::QueryStatus => "query_status",
            CommandKind::Acknowledge { .. } => "acknowledge",
        }
    }

    /// Checks every field's range and consistency.
    pub fn validate(&self) -> Result<(), EventError> {
        match self {
            CommandKind::OpenDoor { slot, .. } => check_slot(&"slot", *slot),
            CommandKind::SwapOrder(o) => o.validate(),
            CommandKind::PushTariff(t) => t.validate(),
            CommandKind::PushConfig(c) => c.validate(),
            CommandKind::SyncTime { .. }
            | CommandKind::QueryStatus
            | CommandKind::Acknowledge { .. } => Ok(()),
        }
    }
}

/// Maps one vendor's cabinet protocol onto the normalized model.
///
/// A codec has two layers: *framing* (bytes ⇄ the vendor's typed
/// [`Frame`](Self::Frame), stateless, also available as a streaming
/// [`FrameCodec`] for [`StreamDecoder`](crate::stream::StreamDecoder)) and
/// *mapping* (frame ⇄ [`CabinetEvent`] / [`CabinetCommand`]). Mapping takes
/// `&mut self` because a secure protocol checks authenticity there and updates
/// its replay state, which is plain data inside the codec value, owned by the
/// host (one value per device).
///
/// The platform side uses [`decode_event`](Self::decode_event) and
/// [`encode_command`](Self::encode_command); a cabinet simulator uses
/// [`encode_event`](Self::encode_event) and
/// [`decode_command`](Self::decode_command).
///
/// ```
/// use chargeswap_core::numbering::DeviceNo;
/// use chargeswap_protocol::event::{CabinetCodec, CabinetEvent, EventKind, MessageId};
/// use chargeswap_protocol::vendor_json::JsonVendorCabinet;
///
/// let ev = CabinetEvent {
///     device_no: DeviceNo::new(20_001)?,
///     message_id: MessageId::Text("m-7".into()),
///     authenticated: false,
///     event: EventKind::DoorClosed { slot: 3 },
/// };
/// let mut vendor = JsonVendorCabinet::new();
/// let bytes = vendor.encode_event(&ev)?;            // what the cabinet would send
/// assert_eq!(vendor.decode_event(&bytes)?, ev);     // what the platform gets
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait CabinetCodec {
    /// The vendor's decoded frame.
    type Frame;
    /// The vendor's error type.
    type Error;
    /// The streaming framer for this protocol.
    type Stream: FrameCodec<Frame = Self::Frame, Error = Self::Error>;

    /// A short protocol name, e.g. `"csp"`.
    fn protocol(&self) -> &'static str;

    /// A streaming framer, for [`StreamDecoder`](crate::stream::StreamDecoder).
    fn stream_codec(&self) -> Self::Stream;

    /// Decodes exactly one complete frame.
    fn decode_frame(&self, bytes: &[u8]) -> Result<Self::Frame, Self::Error>;

    /// Encodes one frame.
    fn encode_frame(&self, frame: &Self::Frame) -> Result<Vec<u8>, Self::Error>;

    /// Maps a device→platform frame to an event, checking its authenticity.
    /// A frame that fails the check is an error and changes no state.
    fn to_event(&mut self, frame: &Self::Frame) -> Result<CabinetEvent, Self::Error>;

    /// Builds the platform→device frame for a command.
    fn command_frame(&mut self, command: &CabinetCommand) -> Result<Self::Frame, Self::Error>;

    /// Builds the device→platform frame for an event (cabinet side, simulators).
    fn event_frame(&mut self, event: &CabinetEvent) -> Result<Self::Frame, Self::Error>;

    /// Maps a platform→device frame to a command, checking its authenticity
    /// (cabinet side, simulators).
    fn to_command(&mut self, frame: &Self::Frame) -> Result<CabinetCommand, Self::Error>;

    /// Bytes of one device→platform frame to an event.
    fn decode_event(&mut self, bytes: &[u8]) -> Result<CabinetEvent, Self::Error> {
        let frame = self.decode_frame(bytes)?;
        self.to_event(&frame)
    }

    /// A command to the bytes of one platform→device frame.
    fn encode_command(&mut self, command: &CabinetCommand) -> Result<Vec<u8>, Self::Error> {
        let frame = self.command_frame(command)?;
        self.encode_frame(&frame)
    }

    /// An event to the bytes of one device→platform frame.
    fn encode_event(&mut self, event: &CabinetEvent) -> Result<Vec<u8>, Self::Error> {
        let frame = self.event_frame(event)?;
        self.encode_frame(&frame)
    }

    /// Bytes of one platform→device frame to a command.
    fn decode_command(&mut self, bytes: &[u8]) -> Result<CabinetCommand, Self::Error> {
        let frame = self.decode_frame(bytes)?;
        self.to_command(&frame)
    }
}

fn check_pct(field: &dyn fmt::Display, v: u8) -> Result<(), EventError> {
    if v > 100 {
        return Err(invalid(field.to_string(), format!("{v}% is above 100%")));
    }
    Ok(())
}

/// Checks a slot number: slots count from 1.
pub fn check_slot(field: &dyn fmt::Display, slot: u8) -> Result<(), EventError> {
    if slot == 0 {
        return Err(invalid(
            field.to_string(),
            "slots count from 1; 0 is invalid",
        ));
    }
    Ok(())
}

/// Checks that a device number is a battery's (200001–5000000).
pub fn check_battery(field: &dyn fmt::Display, n: DeviceNo) -> Result<(), EventError> {
    if n.class() != DeviceClass::Battery {
        let (first, last) = DeviceClass::Battery.range();
        return Err(invalid(
            field.to_string(),
            format!(
                "{n} is a {} number; a battery number is {first}-{last}",
                n.class()
            ),
        ));
    }
    Ok(())
}

fn check_label(field: &str, s: &str) -> Result<(), EventError> {
    if s.len() > MAX_LABEL_LEN {
        return Err(invalid(
            field,
            format!("{} bytes; at most {MAX_LABEL_LEN}", s.len()),
        ));
    }
    Ok(())
}

/// proptest strategies for the model's values (valid ones).
#[cfg(test)]
pub(crate) mod arb {
    use super::*;
    use proptest::prelude::*;

    pub fn battery() -> impl Strategy<Value = DeviceNo> {
        (200_001u64..=5_000_000).prop_map(|n| DeviceNo::new(n).unwrap())
    }

    pub fn dtu() -> impl Strategy<Value = DeviceNo> {
        (20_001u64..=200_000).prop_map(|n| DeviceNo::new(n).unwrap())
    }

    pub fn slot() -> impl Strategy<Value = u8> {
        1u8..=255
    }

    pub fn label() -> impl Strategy<Value = String> {
        "[ -~]{0,32}"
    }

    pub fn bms() -> impl Strategy<Value = BmsSummary> {
        (
            0u8..=100,
            0u8..=100,
            any::<u32>(),
            any::<i32>(),
            any::<i16>(),
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
            any::<u16>(),
        )
            .prop_map(|(soc, soh, pack, cur, temp, cyc, a, b, prot)| BmsSummary {
                soc_pct: soc,
                soh_pct: soh,
                pack_mv: pack,
                current_ma: cur,
                temp_dc: temp,
                cycles: cyc,
                cell_min_mv: a.min(b),
                cell_max_mv: a.max(b),
                protection: prot,
            })
    }

    pub fn slot_state() -> impl Strategy<Value = SlotState> {
        prop_oneof![
            Just(SlotState::Empty),
            Just(SlotState::Charging),
            Just(SlotState::Full),
            Just(SlotState::Fault),
            Just(SlotState::Locked),
        ]
    }

    pub fn slot_battery() -> impl Strategy<Value = SlotBattery> {
        (battery(), 0u8..=100, any::<u32>(), any::<i16>()).prop_map(|(b, soc, v, t)| SlotBattery {
            battery: b,
            soc_pct: soc,
            voltage_mv: v,
            temp_dc: t,
        })
    }

    pub fn slots() -> impl Strategy<Value = Vec<SlotReport>> {
        prop::collection::btree_set(slot(), 0..24).prop_flat_map(|set| {
            let n = set.len();
            let nums: Vec<u8> = set.into_iter().collect();
            (
                Just(nums),
                prop::collection::vec((slot_state(), slot_battery(), any::<bool>()), n),
            )
                .prop_map(|(nums, rest)| {
                    nums.into_iter()
                        .zip(rest)
                        .map(|(slot, (state, b, keep))| SlotReport {
                            slot,
                            state,
                            battery: match state {
                                SlotState::Empty => None,
                                SlotState::Charging | SlotState::Full => Some(b),
                                _ => keep.then_some(b),
                            },
                        })
                        .collect()
                })
        })
    }

    pub fn door_failure() -> impl Strategy<Value = DoorFailure> {
        prop_oneof![
            Just(DoorFailure::LockFault),
            Just(DoorFailure::Jammed),
            Just(DoorFailure::SlotDisabled),
            Just(DoorFailure::Busy),
            Just(DoorFailure::Timeout),
        ]
    }

    pub fn alarm_kind() -> impl Strategy<Value = AlarmKind> {
        prop_oneof![
            Just(AlarmKind::Smoke),
            Just(AlarmKind::OverTemperature),
            Just(AlarmKind::Water),
            Just(AlarmKind::Tamper),
            Just(AlarmKind::PowerLoss),
        ]
    }

    pub fn alarm_state() -> impl Strategy<Value = AlarmState> {
        prop_oneof![Just(AlarmState::Raised), Just(AlarmState::Cleared)]
    }

    pub fn swap_outcome() -> impl Strategy<Value = SwapOutcome> {
        prop_oneof![
            Just(SwapOutcome::Completed),
            Just(SwapOutcome::ReturnTimeout),
            Just(SwapOutcome::WrongBattery),
            Just(SwapOutcome::DoorFailed),
            Just(SwapOutcome::Cancelled),
            Just(SwapOutcome::Expired),
        ]
    }

    pub fn open_reason() -> impl Strategy<Value = OpenReason> {
        prop_oneof![
            Just(OpenReason::SwapReturn),
            Just(OpenReason::SwapIssue),
            Just(OpenReason::Rental),
            Just(OpenReason::RentalReturn),
            Just(OpenReason::Maintenance),
        ]
    }

    pub fn result_code() -> impl Strategy<Value = ResultCode> {
        (0usize..15).prop_map(|i| {
            [
                ResultCode::Ok,
                ResultCode::UnknownCommand,
                ResultCode::BadPayload,
                ResultCode::AuthFailed,
                ResultCode::Replayed,
                ResultCode::InvalidSlot,
                ResultCode::SlotBusy,
                ResultCode::DeviceBusy,
                ResultCode::UnknownOrder,
                ResultCode::OrderExpired,
                ResultCode::NotLoggedIn,
                ResultCode::UnsupportedVersion,
                ResultCode::HardwareFault,
                ResultCode::Duplicate,
                ResultCode::InternalError,
            ][i]
        })
    }

    pub fn tier() -> impl Strategy<Value = TouTier> {
        prop_oneof![
            Just(TouTier::Sharp),
            Just(TouTier::Peak),
            Just(TouTier::Flat),
            Just(TouTier::Valley),
        ]
    }

    pub fn price() -> impl Strategy<Value = u64> {
        prop_oneof![0u64..1_000_000, 0u64..=(i64::MAX as u64)]
    }

    pub fn tariff() -> impl Strategy<Value = Tariff> {
        (
            any::<u32>(),
            prop::collection::btree_set(tier(), 1..=4),
            prop::collection::btree_set(1u16..1440, 0..8),
            price(),
            any::<u64>(),
            prop::collection::vec((price(), price(), any::<prop::sample::Index>()), 9),
        )
            .prop_map(|(id, tiers, starts, fee, from, rnd)| {
                let tiers: Vec<TouTier> = tiers.into_iter().collect();
                let tier_prices = tiers
                    .iter()
                    .zip(&rnd)
                    .map(|(t, (e, s, _))| TierPrice {
                        tier: *t,
                        energy_per_kwh: *e,
                        service_per_kwh: *s,
                    })
                    .collect();
                let periods = std::iter::once(0u16)
                    .chain(starts)
                    .zip(rnd.iter().cycle())
                    .map(|(start, (_, _, ix))| TouPeriod {
                        start_minute: start,
                        tier: *ix.get(&tiers),
                    })
                    .collect();
                Tariff {
                    tariff_id: id,
                    currency: Currency::CNY,
                    swap_fee: fee,
                    tiers: tier_prices,
                    periods,
                    effective_from: from,
                }
            })
    }

    pub fn config() -> impl Strategy<Value = CabinetConfig> {
        (
            1u16..,
            1u16..,
            1u16..,
            any::<i16>(),
            any::<u32>(),
            prop::collection::btree_set(slot(), 0..8),
        )
            .prop_map(|(h, s, d, t, c, dis)| CabinetConfig {
                heartbeat_interval_s: h,
                status_interval_s: s,
                door_open_timeout_s: d,
                over_temperature_dc: t,
                max_charge_current_ma: c,
                disabled_slots: dis.into_iter().collect(),
            })
    }

    pub fn swap_order() -> impl Strategy<Value = SwapOrder> {
        (
            any::<u64>(),
            slot(),
            slot(),
            battery(),
            prop::option::of(battery()),
            any::<u64>(),
        )
            .prop_filter_map("two slots", |(id, r, i, b, e, exp)| {
                (r != i).then_some(SwapOrder {
                    order_id: id,
                    return_slot: r,
                    issue_slot: i,
                    issue_battery: b,
                    expected_return: e,
                    expires_at: exp,
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn dn(n: u64) -> DeviceNo {
        DeviceNo::new(n).unwrap()
    }

    #[test]
    fn dedupe_key_distinguishes_devices_and_ids() {
        let mk = |d, id| CabinetEvent {
            device_no: dn(d),
            message_id: id,
            authenticated: true,
            event: EventKind::DoorClosed { slot: 1 },
        };
        assert_eq!(mk(20_001, MessageId::Seq(7)).dedupe_key(), "20001/7");
        assert_eq!(
            mk(20_002, MessageId::Text("a-1".into())).dedupe_key(),
            "20002/a-1"
        );
        assert_ne!(
            mk(20_001, MessageId::Seq(7)).dedupe_key(),
            mk(20_002, MessageId::Seq(7)).dedupe_key()
        );
    }

    #[test]
    fn message_id_json_is_number_or_string() {
        assert_eq!(serde_json::to_value(MessageId::Seq(5)).unwrap(), json!(5));
        assert_eq!(
            serde_json::from_value::<MessageId>(json!("x")).unwrap(),
            MessageId::Text("x".into())
        );
        assert_eq!(
            serde_json::from_value::<MessageId>(json!(9)).unwrap(),
            MessageId::Seq(9)
        );
    }

    #[test]
    fn slot_validation() {
        let b = SlotBattery {
            battery: dn(200_001),
            soc_pct: 50,
            voltage_mv: 54_000,
            temp_dc: 250,
        };
        let ok = SlotReport {
            slot: 1,
            state: SlotState::Charging,
            battery: Some(b),
        };
        assert!(validate_slots(&[ok]).is_ok());
        let empty_with = SlotReport {
            state: SlotState::Empty,
            ..ok
        };
        let e = validate_slots(&[empty_with]).unwrap_err();
        assert!(e.to_string().contains("slots[0].battery"), "{e}");
        let full_without = SlotReport {
            state: SlotState::Full,
            battery: None,
            ..ok
        };
        assert!(validate_slots(&[full_without]).is_err());
        let zero = SlotReport { slot: 0, ..ok };
        assert!(
            validate_slots(&[zero])
                .unwrap_err()
                .to_string()
                .contains("slots[0].slot")
        );
        let dup = validate_slots(&[ok, ok]).unwrap_err();
        assert!(dup.to_string().contains("slots[1].slot"), "{dup}");
        let soc = SlotReport {
            battery: Some(SlotBattery { soc_pct: 101, ..b }),
            ..ok
        };
        assert!(
            validate_slots(&[soc])
                .unwrap_err()
                .to_string()
                .contains("soc_pct")
        );
        let dtu = SlotReport {
            battery: Some(SlotBattery {
                battery: dn(20_001),
                ..b
            }),
            ..ok
        };
        let e = validate_slots(&[dtu]).unwrap_err();
        assert!(e.to_string().contains("is a dtu number"), "{e}");
        let many: Vec<SlotReport> = (0..256)
            .map(|i| SlotReport {
                slot: (i % 255 + 1) as u8,
                ..ok
            })
            .collect();
        assert!(
            validate_slots(&many)
                .unwrap_err()
                .to_string()
                .contains("at most 255")
        );
    }

    #[test]
    fn bms_validation() {
        let b = BmsSummary {
            soc_pct: 80,
            soh_pct: 99,
            pack_mv: 54_000,
            current_ma: -1500,
            temp_dc: 300,
            cycles: 12,
            cell_min_mv: 3300,
            cell_max_mv: 3350,
            protection: 0,
        };
        assert!(b.validate("bms").is_ok());
        assert!(
            BmsSummary { soh_pct: 101, ..b }
                .validate("bms")
                .unwrap_err()
                .to_string()
                .contains("bms.soh_pct")
        );
        assert!(
            BmsSummary {
                cell_min_mv: 3400,
                ..b
            }
            .validate("bms")
            .unwrap_err()
            .to_string()
            .contains("bms.cell_min_mv")
        );
    }

    fn tariff() -> Tariff {
        Tariff {
            tariff_id: 1,
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
            ],
            effective_from: 1_700_000_000,
        }
    }

    #[test]
    fn tariff_validation_and_money() {
        let t = tariff();
        t.validate().unwrap();
        assert_eq!(t.swap_fee_money().unwrap().to_string(), "¥3.50");
        assert_eq!(
            price_to_money(t.tiers[0].energy_per_kwh, t.currency)
                .unwrap()
                .to_string(),
            "¥1.10"
        );
        assert!(price_to_money(u64::MAX, Currency::CNY).is_err());
        let mut bad = t.clone();
        bad.periods[0].start_minute = 5;
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("periods[0]")
        );
        let mut bad = t.clone();
        bad.periods[1].start_minute = 1440;
        assert!(bad.validate().is_err());
        let mut bad = t.clone();
        bad.periods[1].tier = TouTier::Sharp;
        assert!(bad.validate().unwrap_err().to_string().contains("no price"));
        let mut bad = t.clone();
        bad.tiers[1].tier = TouTier::Peak;
        assert!(bad.validate().unwrap_err().to_string().contains("twice"));
        let mut bad = t.clone();
        bad.periods.clear();
        assert!(bad.validate().is_err());
        let mut bad = t;
        bad.swap_fee = u64::MAX;
        assert!(bad.validate().unwrap_err().to_string().contains("swap_fee"));
    }

    #[test]
    fn config_and_order_validation() {
        let c = CabinetConfig {
            heartbeat_interval_s: 60,
            status_interval_s: 300,
            door_open_timeout_s: 30,
            over_temperature_dc: 600,
            max_charge_current_ma: 5000,
            disabled_slots: vec![2, 5],
        };
        c.validate().unwrap();
        assert!(
            CabinetConfig {
                heartbeat_interval_s: 0,
                ..c.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            CabinetConfig {
                disabled_slots: vec![5, 2],
                ..c
            }
            .validate()
            .is_err()
        );
        let o = SwapOrder {
            order_id: 9,
            return_slot: 1,
            issue_slot: 2,
            issue_battery: dn(200_002),
            expected_return: Some(dn(200_003)),
            expires_at: 1,
        };
        o.validate().unwrap();
        assert!(SwapOrder { issue_slot: 1, ..o }.validate().is_err());
        assert!(
            SwapOrder {
                expected_return: Some(dn(5_000_001)),
                ..o
            }
            .validate()
            .unwrap_err()
            .to_string()
            .contains("expected_return")
        );
    }

    #[test]
    fn event_json_shape() {
        let ev = EventKind::BatteryInserted {
            slot: 2,
            battery: dn(200_010),
            bms: None,
        };
        assert_eq!(
            serde_json::to_value(&ev).unwrap(),
            json!({"type": "battery_inserted", "slot": 2, "battery": 200010, "bms": null})
        );
        assert_eq!(ev.name(), "battery_inserted");
        let c = CommandKind::QueryStatus;
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"type": "query_status"})
        );
        let long = EventKind::Online {
            firmware: "x".repeat(33),
            model: String::new(),
            slot_count: 1,
        };
        assert!(
            long.validate()
                .unwrap_err()
                .to_string()
                .contains("firmware")
        );
    }

    proptest! {
        #[test]
        fn generated_values_are_valid(
            slots in arb::slots(), t in arb::tariff(), c in arb::config(),
            o in arb::swap_order(), b in arb::bms(),
        ) {
            prop_assert!(validate_slots(&slots).is_ok());
            prop_assert!(t.validate().is_ok(), "{:?}", t.validate());
            prop_assert!(c.validate().is_ok());
            prop_assert!(o.validate().is_ok());
            prop_assert!(b.validate("bms").is_ok());
        }
    }
}
