//! `decode` / `encode` for JT/T 808 (`jt808`) and the BMS UART protocols
//! (`jbd`, `daly`). Decoding prints the typed frame as JSON; encoding takes
//! the same JSON (extra informative keys such as `msg_id` are ignored).
//! Errors name the byte offset of the problem.

use chargeswap_protocol::bms::daly::DalyFrame;
use chargeswap_protocol::bms::jbd::JbdFrame;
use chargeswap_protocol::jt808::Packet;
use serde_json::{Value, json};

use crate::util::CliResult;

fn merge(extra: Value, frame: Value) -> Value {
    match (extra, frame) {
        (Value::Object(mut a), Value::Object(b)) => {
            a.extend(b);
            Value::Object(a)
        }
        (_, frame) => frame,
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> CliResult {
    serde_json::to_value(v).map_err(|e| format!("cannot print the frame: {e}"))
}

fn from_json<T: serde::de::DeserializeOwned>(protocol: &str, v: &Value) -> Result<T, String> {
    serde_json::from_value(v.clone())
        .map_err(|e| format!("the {protocol} frame JSON is not valid: {e}"))
}

/// Decodes one JT/T 808 frame (0x7E ... 0x7E).
pub fn decode_jt808(bytes: &[u8]) -> CliResult {
    let p = Packet::decode(bytes).map_err(|e| format!("jt808: {e}"))?;
    Ok(merge(
        json!({"msg_id": p.msg_id(), "msg_id_hex": format!("0x{:04X}", p.msg_id())}),
        to_json(&p)?,
    ))
}

/// Encodes one JT/T 808 frame.
pub fn encode_jt808(v: &Value) -> Result<Vec<u8>, String> {
    let p: Packet = from_json("jt808", v)?;
    p.encode().map_err(|e| format!("jt808: {e}"))
}

/// Decodes one JBD frame.
pub fn decode_jbd(bytes: &[u8]) -> CliResult {
    to_json(&JbdFrame::decode(bytes).map_err(|e| format!("jbd: {e}"))?)
}

/// Encodes one JBD frame.
pub fn encode_jbd(v: &Value) -> Result<Vec<u8>, String> {
    let f: JbdFrame = from_json("jbd", v)?;
    f.encode().map_err(|e| format!("jbd: {e}"))
}

/// Decodes one 13-byte Daly frame.
pub fn decode_daly(bytes: &[u8]) -> CliResult {
    let f = DalyFrame::decode(bytes).map_err(|e| format!("daly: {e}"))?;
    Ok(merge(
        json!({"address": f.address(), "data_id": f.data_id()}),
        to_json(&f)?,
    ))
}

/// Encodes one Daly frame.
pub fn encode_daly(v: &Value) -> Result<Vec<u8>, String> {
    let f: DalyFrame = from_json("daly", v)?;
    f.encode()
        .map(|a| a.to_vec())
        .map_err(|e| format!("daly: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode, parse_hex, to_hex};

    fn round_trip(protocol: &str, hex: &str) {
        let bytes = parse_hex(hex).unwrap();
        let v = decode(protocol, &bytes).unwrap();
        let again = encode(protocol, &v).unwrap();
        assert_eq!(to_hex(&again), to_hex(&bytes), "{protocol}: {v}");
    }

    #[test]
    fn decode_then_encode_gives_the_bytes() {
        round_trip("jt808", "7E80010005012345678900000A0064020000617E");
        round_trip(
            "jt808",
            "7E020000260123456789000001000000010000000200BA7F0E07E4F11C0028003C000018071510101001040000006402020037327E",
        );
        round_trip("jbd", "DD0400080CE40CE50CE30CEEFC2E77");
        round_trip("daly", "A501900802FC000075A1000052");
        round_trip("daly", "A540900800000000000000007D");
    }

    #[test]
    fn decode_prints_ids() {
        let v = decode(
            "jt808",
            &parse_hex("7E00020000012345678900000A817E").unwrap(),
        )
        .unwrap();
        assert_eq!(v["msg_id_hex"], "0x0002");
        assert_eq!(v["body"]["type"], "heartbeat");
        let v = decode("daly", &parse_hex("A501900802FC000075A1000052").unwrap()).unwrap();
        assert_eq!(v["current_a"], "11.3");
        assert_eq!(v["data_id"], 144);
    }

    #[test]
    fn errors_name_the_byte_offset() {
        let e = decode(
            "jt808",
            &parse_hex("7E00020000012345678900000A827E").unwrap(),
        )
        .unwrap_err();
        assert!(e.contains("byte 13") && e.contains("checksum"), "{e}");
        let e = decode("jbd", &parse_hex("DDA50300FFFD78").unwrap()).unwrap_err();
        assert!(e.contains("byte 6"), "{e}");
        let e = decode("daly", &parse_hex("A501900802FC000075A1000053").unwrap()).unwrap_err();
        assert!(e.contains("byte 12"), "{e}");
        let e = encode("daly", &json!({"type": "reply", "reply": "summary"})).unwrap_err();
        assert!(e.contains("not valid"), "{e}");
        let e = encode(
            "daly",
            &json!({"type": "reply", "reply": "summary", "total_voltage_v": "1.25",
                "gather_voltage_v": "0", "current_a": "0", "soc_percent": "0"}),
        )
        .unwrap_err();
        assert!(e.contains("total_voltage_v"), "{e}");
    }
}
