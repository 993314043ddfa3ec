//! Message bodies: general replies, heartbeat, registration, authentication,
//! and the dispatch by message id.

use serde::{Deserialize, Serialize};

use super::header::Version;
use super::location::{LocationBatch, LocationReport};
use super::reader::Reader;
use super::{Jt808Error, text};

type Result<T> = core::result::Result<T, Jt808Error>;

/// Message ids of the typed messages.
pub mod msg_id {
    /// 0x0001 terminal general reply (终端通用应答).
    pub const TERMINAL_REPLY: u16 = 0x0001;
    /// 0x8001 platform general reply (平台通用应答).
    pub const PLATFORM_REPLY: u16 = 0x8001;
    /// 0x0002 terminal heartbeat (终端心跳).
    pub const HEARTBEAT: u16 = 0x0002;
    /// 0x0100 terminal registration (终端注册).
    pub const REGISTER: u16 = 0x0100;
    /// 0x8100 registration reply (终端注册应答).
    pub const REGISTER_REPLY: u16 = 0x8100;
    /// 0x0102 terminal authentication (终端鉴权).
    pub const AUTHENTICATE: u16 = 0x0102;
    /// 0x0200 location report (位置信息汇报).
    pub const LOCATION: u16 = 0x0200;
    /// 0x0704 batch of locations (定位数据批量上传).
    pub const LOCATION_BATCH: u16 = 0x0704;
}

/// The result byte of a general reply (0x0001 / 0x8001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyResult {
    /// 0: success / acknowledged.
    Success,
    /// 1: failure.
    Failure,
    /// 2: the message was wrong.
    MessageError,
    /// 3: not supported.
    Unsupported,
    /// 4: alarm handling confirmed (0x8001 only).
    AlarmAck,
    /// Any other value, kept as is.
    Other(u8),
}

impl ReplyResult {
    /// From the wire byte.
    pub fn from_u8(b: u8) -> ReplyResult {
        match b {
            0 => ReplyResult::Success,
            1 => ReplyResult::Failure,
            2 => ReplyResult::MessageError,
            3 => ReplyResult::Unsupported,
            4 => ReplyResult::AlarmAck,
            n => ReplyResult::Other(n),
        }
    }

    /// The wire byte.
    pub fn to_u8(self) -> u8 {
        match self {
            ReplyResult::Success => 0,
            ReplyResult::Failure => 1,
            ReplyResult::MessageError => 2,
            ReplyResult::Unsupported => 3,
            ReplyResult::AlarmAck => 4,
            ReplyResult::Other(n) => n,
        }
    }
}

/// 0x0001 / 0x8001 general reply: `ack serial u16 | ack msg id u16 | result u8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GeneralReply {
    /// Serial number of the message answered.
    pub ack_serial: u16,
    /// Id of the message answered.
    pub ack_msg_id: u16,
    /// The outcome.
    pub result: ReplyResult,
}

impl GeneralReply {
    fn read(r: &mut Reader<'_>, name: &str) -> Result<GeneralReply> {
        let g = GeneralReply {
            ack_serial: r.u16("reply serial")?,
            ack_msg_id: r.u16("reply message id")?,
            result: ReplyResult::from_u8(r.u8("result")?),
        };
        r.finish(name)?;
        Ok(g)
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ack_serial.to_be_bytes());
        out.extend_from_slice(&self.ack_msg_id.to_be_bytes());
        out.push(self.result.to_u8());
    }
}

/// 0x0100 terminal registration.
///
/// ```text
/// province u16 | city u16 | maker BYTE[5|11] | model BYTE[20|30]
/// | terminal id BYTE[7|30] | plate color u8 | plate STRING (GBK, rest of body)
/// ```
/// (2013 widths | 2019 widths; fixed fields are padded with 0x00.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Register {
    /// Province code (GB/T 2260 first two digits).
    pub province: u16,
    /// City or county code (GB/T 2260 last four digits).
    pub city: u16,
    /// Maker id (制造商ID).
    pub maker: String,
    /// Terminal model (终端型号).
    pub model: String,
    /// Terminal id (终端ID).
    pub terminal_id: String,
    /// Plate colour (JT/T 415); 0 means no plate and `plate` holds the VIN.
    pub plate_color: u8,
    /// Plate number in GBK, e.g. 粤A12345, or the VIN.
    pub plate: String,
}

fn register_widths(v: Version) -> (usize, usize, usize) {
    match v {
        Version::V2013 => (5, 20, 7),
        Version::V2019 { .. } => (11, 30, 30),
    }
}

impl Register {
    fn read(r: &mut Reader<'_>, v: Version) -> Result<Register> {
        let (wm, wmo, wid) = register_widths(v);
        let province = r.u16("province")?;
        let city = r.u16("city")?;
        let at = r.offset();
        let maker = text::decode_fixed(r.take(wm, "maker id")?, "maker id", at)?;
        let at = r.offset();
        let model = text::decode_fixed(r.take(wmo, "terminal model")?, "terminal model", at)?;
        let at = r.offset();
        let terminal_id = text::decode_fixed(r.take(wid, "terminal id")?, "terminal id", at)?;
        let plate_color = r.u8("plate color")?;
        let at = r.offset();
        let plate = text::decode(r.rest(), "plate", at)?;
        Ok(Register {
            province,
            city,
            maker,
            model,
            terminal_id,
            plate_color,
            plate,
        })
    }

    fn write(&self, v: Version, out: &mut Vec<u8>) -> Result<()> {
        let (wm, wmo, wid) = register_widths(v);
        out.extend_from_slice(&self.province.to_be_bytes());
        out.extend_from_slice(&self.city.to_be_bytes());
        text::write_fixed(out, &self.maker, wm, "maker id")?;
        text::write_fixed(out, &self.model, wmo, "terminal model")?;
        text::write_fixed(out, &self.terminal_id, wid, "terminal id")?;
        out.push(self.plate_color);
        out.extend_from_slice(&text::encode(&self.plate, "plate")?);
        Ok(())
    }
}

/// The result byte of a registration reply (0x8100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterResult {
    /// 0: registered; the reply carries an authentication code.
    Success,
    /// 1: the vehicle is already registered.
    VehicleRegistered,
    /// 2: no such vehicle in the database.
    VehicleUnknown,
    /// 3: the terminal is already registered.
    TerminalRegistered,
    /// 4: no such terminal in the database.
    TerminalUnknown,
    /// Any other value, kept as is.
    Other(u8),
}

impl RegisterResult {
    /// From the wire byte.
    pub fn from_u8(b: u8) -> RegisterResult {
        match b {
            0 => RegisterResult::Success,
            1 => RegisterResult::VehicleRegistered,
            2 => RegisterResult::VehicleUnknown,
            3 => RegisterResult::TerminalRegistered,
            4 => RegisterResult::TerminalUnknown,
            n => RegisterResult::Other(n),
        }
    }

    /// The wire byte.
    pub fn to_u8(self) -> u8 {
        match self {
            RegisterResult::Success => 0,
            RegisterResult::VehicleRegistered => 1,
            RegisterResult::VehicleUnknown => 2,
            RegisterResult::TerminalRegistered => 3,
            RegisterResult::TerminalUnknown => 4,
            RegisterResult::Other(n) => n,
        }
    }
}

/// 0x8100 registration reply: `ack serial u16 | result u8 | auth code STRING`
/// (the code only on success; empty otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RegisterReply {
    /// Serial number of the 0x0100 answered.
    pub ack_serial: u16,
    /// The outcome.
    pub result: RegisterResult,
    /// The authentication code (GBK), empty when absent.
    #[serde(default)]
    pub auth_code: String,
}

impl RegisterReply {
    fn read(r: &mut Reader<'_>) -> Result<RegisterReply> {
        let ack_serial = r.u16("reply serial")?;
        let result = RegisterResult::from_u8(r.u8("result")?);
        let at = r.offset();
        let auth_code = text::decode(r.rest(), "auth code", at)?;
        Ok(RegisterReply {
            ack_serial,
            result,
            auth_code,
        })
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.ack_serial.to_be_bytes());
        out.push(self.result.to_u8());
        out.extend_from_slice(&text::encode(&self.auth_code, "auth code")?);
        Ok(())
    }
}

/// 0x0102 terminal authentication.
///
/// ```text
/// 2013: auth code STRING (the whole body)
/// 2019: code length u8 | auth code STRING[length] | IMEI BYTE[15] | software version BYTE[20]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Authenticate {
    /// The code from the 0x8100 reply.
    pub auth_code: String,
    /// Terminal IMEI (2019 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imei: Option<String>,
    /// Software version (2019 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
}

impl Authenticate {
    fn read(r: &mut Reader<'_>, v: Version) -> Result<Authenticate> {
        match v {
            Version::V2013 => {
                let at = r.offset();
                Ok(Authenticate {
                    auth_code: text::decode(r.rest(), "auth code", at)?,
                    imei: None,
                    software_version: None,
                })
            }
            Version::V2019 { .. } => {
                let len = usize::from(r.u8("auth code length")?);
                let at = r.offset();
                let auth_code = text::decode(r.take(len, "auth code")?, "auth code", at)?;
                let at = r.offset();
                let imei = text::decode_fixed(r.take(15, "IMEI")?, "IMEI", at)?;
                let at = r.offset();
                let sw =
                    text::decode_fixed(r.take(20, "software version")?, "software version", at)?;
                r.finish("0x0102 authentication")?;
                Ok(Authenticate {
                    auth_code,
                    imei: Some(imei),
                    software_version: Some(sw),
                })
            }
        }
    }

    fn write(&self, v: Version, out: &mut Vec<u8>) -> Result<()> {
        let code = text::encode(&self.auth_code, "auth code")?;
        match (v, &self.imei, &self.software_version) {
            (Version::V2013, None, None) => {
                out.extend_from_slice(&code);
                Ok(())
            }
            (Version::V2013, _, _) => Err(Jt808Error::invalid(
                "imei",
                "a 2013 authentication has no IMEI or software version; use a 2019 header",
            )),
            (Version::V2019 { .. }, Some(imei), Some(sw)) => {
                let len = u8::try_from(code.len()).map_err(|_| {
                    Jt808Error::invalid("auth code", "longer than 255 bytes in GBK")
                })?;
                out.push(len);
                out.extend_from_slice(&code);
                text::write_fixed(out, imei, 15, "IMEI")?;
                text::write_fixed(out, sw, 20, "software version")
            }
            (Version::V2019 { .. }, _, _) => Err(Jt808Error::invalid(
                "imei",
                "a 2019 authentication needs imei and software_version",
            )),
        }
    }
}

/// A message body, typed by message id.
///
/// Split-packet parts and encrypted bodies are always [`Body::Raw`]: a split
/// part is a slice of a body, to be joined by the
/// [`Reassembler`](super::Reassembler) first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// 0x0001 terminal general reply.
    TerminalReply(GeneralReply),
    /// 0x8001 platform general reply.
    PlatformReply(GeneralReply),
    /// 0x0002 heartbeat (empty body).
    Heartbeat,
    /// 0x0100 registration.
    Register(Register),
    /// 0x8100 registration reply.
    RegisterReply(RegisterReply),
    /// 0x0102 authentication.
    Authenticate(Authenticate),
    /// 0x0200 location report.
    Location(LocationReport),
    /// 0x0704 batch of locations.
    LocationBatch(LocationBatch),
    /// Any other message, a split part or an encrypted body, byte for byte.
    Raw {
        /// The message id.
        msg_id: u16,
        /// The body bytes, as hex in JSON.
        #[serde(with = "crate::hexbytes::vec")]
        data: Vec<u8>,
    },
}

impl Body {
    /// The message id this body is sent under.
    pub fn msg_id(&self) -> u16 {
        match self {
            Body::TerminalReply(_) => msg_id::TERMINAL_REPLY,
            Body::PlatformReply(_) => msg_id::PLATFORM_REPLY,
            Body::Heartbeat => msg_id::HEARTBEAT,
            Body::Register(_) => msg_id::REGISTER,
            Body::RegisterReply(_) => msg_id::REGISTER_REPLY,
            Body::Authenticate(_) => msg_id::AUTHENTICATE,
            Body::Location(_) => msg_id::LOCATION,
            Body::LocationBatch(_) => msg_id::LOCATION_BATCH,
            Body::Raw { msg_id, .. } => *msg_id,
        }
    }

    /// Decodes a whole (unescaped, joined) body of message `id` in the
    /// layout of `version`. Unknown ids give [`Body::Raw`]. Error offsets
    /// count from the start of `bytes`.
    ///
    /// ```
    /// use chargeswap_protocol::jt808::{Body, Version, GeneralReply, ReplyResult};
    /// let b = Body::decode(0x8001, Version::V2013, &[0x00, 0x64, 0x02, 0x00, 0x00])?;
    /// assert_eq!(b, Body::PlatformReply(GeneralReply {
    ///     ack_serial: 100, ack_msg_id: 0x0200, result: ReplyResult::Success }));
    /// # Ok::<(), chargeswap_protocol::jt808::Jt808Error>(())
    /// ```
    pub fn decode(id: u16, version: Version, bytes: &[u8]) -> Result<Body> {
        Body::read(id, version, bytes, 0)
    }

    #[inline]
    pub(crate) fn read(id: u16, version: Version, bytes: &[u8], base: usize) -> Result<Body> {
        let mut r = Reader::new(bytes, base);
        let body = match id {
            msg_id::TERMINAL_REPLY => {
                Body::TerminalReply(GeneralReply::read(&mut r, "0x0001 general reply")?)
            }
            msg_id::PLATFORM_REPLY => {
                Body::PlatformReply(GeneralReply::read(&mut r, "0x8001 general reply")?)
            }
            msg_id::HEARTBEAT => {
                r.finish("0x0002 heartbeat")?;
                Body::Heartbeat
            }
            msg_id::REGISTER => Body::Register(Register::read(&mut r, version)?),
            msg_id::REGISTER_REPLY => Body::RegisterReply(RegisterReply::read(&mut r)?),
            msg_id::AUTHENTICATE => Body::Authenticate(Authenticate::read(&mut r, version)?),
            msg_id::LOCATION => Body::Location(LocationReport::read(&mut r)?),
            msg_id::LOCATION_BATCH => Body::LocationBatch(LocationBatch::read(&mut r)?),
            other => Body::Raw {
                msg_id: other,
                data: bytes.to_vec(),
            },
        };
        Ok(body)
    }

    /// Appends the body bytes (unescaped) in the layout of `version`.
    /// On error `out` is left as it was.
    pub fn encode(&self, version: Version, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let r = self.write(version, out);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn write(&self, version: Version, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Body::TerminalReply(g) | Body::PlatformReply(g) => {
                g.write(out);
                Ok(())
            }
            Body::Heartbeat => Ok(()),
            Body::Register(m) => m.write(version, out),
            Body::RegisterReply(m) => m.write(out),
            Body::Authenticate(m) => m.write(version, out),
            Body::Location(m) => m.write(out),
            Body::LocationBatch(m) => m.write(out),
            Body::Raw { data, .. } => {
                out.extend_from_slice(data);
                Ok(())
            }
        }
    }
}
