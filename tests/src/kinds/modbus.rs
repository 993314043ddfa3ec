//! Evaluators for the `modbus.*` vector kinds.
//!
//! Decoders return `{"frame": ..., "reencoded": HEX}` so each case checks
//! both the decoded values and that they encode back to the same bytes.

use chargeswap_protocol::modbus::dtu::Registration;
use chargeswap_protocol::modbus::map::{BmsStatus, SlotBoardStatus, SlotControl};
use chargeswap_protocol::modbus::{
    Direction, ModbusError, Request, Response, RtuFrame, TcpFrame, crc16,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{from_hex, input, out, to_hex};
use crate::error_json;

fn err(e: ModbusError) -> Value {
    error_json(&e)
}

#[derive(Deserialize)]
struct DecodeIn {
    hex: String,
    direction: Direction,
}

#[derive(Deserialize)]
struct EncodeIn {
    direction: Direction,
    frame: Value,
}

fn rtu_decode(i: &DecodeIn) -> Result<Value, Value> {
    let b = from_hex(&i.hex)?;
    match i.direction {
        Direction::Request => {
            let f = RtuFrame::<Request>::decode(&b).map_err(err)?;
            Ok(json!({"frame": out(&f)?, "reencoded": to_hex(&f.encode().map_err(err)?)}))
        }
        Direction::Response => {
            let f = RtuFrame::<Response>::decode(&b).map_err(err)?;
            Ok(json!({"frame": out(&f)?, "reencoded": to_hex(&f.encode().map_err(err)?)}))
        }
    }
}

fn tcp_decode(i: &DecodeIn) -> Result<Value, Value> {
    let b = from_hex(&i.hex)?;
    match i.direction {
        Direction::Request => {
            let f = TcpFrame::<Request>::decode(&b).map_err(err)?;
            Ok(json!({"frame": out(&f)?, "reencoded": to_hex(&f.encode().map_err(err)?)}))
        }
        Direction::Response => {
            let f = TcpFrame::<Response>::decode(&b).map_err(err)?;
            Ok(json!({"frame": out(&f)?, "reencoded": to_hex(&f.encode().map_err(err)?)}))
        }
    }
}

fn encode(tcp: bool, i: EncodeIn) -> Result<Value, Value> {
    let bytes = match (tcp, i.direction) {
        (false, Direction::Request) => input::<RtuFrame<Request>>(&i.frame)?.encode(),
        (false, Direction::Response) => input::<RtuFrame<Response>>(&i.frame)?.encode(),
        (true, Direction::Request) => input::<TcpFrame<Request>>(&i.frame)?.encode(),
        (true, Direction::Response) => input::<TcpFrame<Response>>(&i.frame)?.encode(),
    }
    .map_err(err)?;
    Ok(json!(to_hex(&bytes)))
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Block {
    SlotStatus,
    SlotControl,
    BmsStatus,
}

fn map_decode(v: &Value) -> Result<Value, Value> {
    #[derive(Deserialize)]
    struct In {
        block: Block,
        registers: Vec<u16>,
    }
    let i: In = input(v)?;
    let (value, again) = match i.block {
        Block::SlotStatus => {
            let s = SlotBoardStatus::from_registers(&i.registers).map_err(err)?;
            (out(&s)?, s.to_registers().map_err(err)?)
        }
        Block::SlotControl => {
            let s = SlotControl::from_registers(&i.registers).map_err(err)?;
            (out(&s)?, s.to_registers())
        }
        Block::BmsStatus => {
            let s = BmsStatus::from_registers(&i.registers).map_err(err)?;
            (out(&s)?, s.to_registers().map_err(err)?)
        }
    };
    Ok(json!({"value": value, "reencoded": again}))
}

fn map_encode(v: &Value) -> Result<Value, Value> {
    #[derive(Deserialize)]
    struct In {
        block: Block,
        value: Value,
    }
    let i: In = input(v)?;
    let regs = match i.block {
        Block::SlotStatus => input::<SlotBoardStatus>(&i.value)?
            .to_registers()
            .map_err(err)?,
        Block::SlotControl => input::<SlotControl>(&i.value)?.to_registers(),
        Block::BmsStatus => input::<BmsStatus>(&i.value)?.to_registers().map_err(err)?,
    };
    out(&regs)
}

/// Dispatches the `modbus.*` kinds.
pub fn evaluate(kind: &str, v: &Value) -> Result<Value, Value> {
    match kind {
        "modbus.crc" => {
            #[derive(Deserialize)]
            struct In {
                data_hex: String,
            }
            let i: In = input(v)?;
            let c = crc16(&from_hex(&i.data_hex)?);
            Ok(json!({"crc": format!("0x{c:04X}"), "wire": to_hex(&c.to_le_bytes())}))
        }
        "modbus.rtu.decode" => rtu_decode(&input(v)?),
        "modbus.rtu.encode" => encode(false, input(v)?),
        "modbus.tcp.decode" => tcp_decode(&input(v)?),
        "modbus.tcp.encode" => encode(true, input(v)?),
        "modbus.map.decode" => map_decode(v),
        "modbus.map.encode" => map_encode(v),
        "modbus.dtu.decode" => {
            #[derive(Deserialize)]
            struct In {
                hex: String,
            }
            let i: In = input(v)?;
            let r = Registration::decode(&from_hex(&i.hex)?).map_err(err)?;
            Ok(json!({"registration": out(&r)?, "reencoded": to_hex(&r.encode())}))
        }
        other => Err(
            json!({"kind": "unknown_vector_kind", "message": format!("no evaluator for kind {other:?}")}),
        ),
    }
}
