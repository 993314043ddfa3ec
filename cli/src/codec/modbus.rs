//! `modbus-rtu` and `modbus-tcp`: a frame may be a request or a response and
//! the bytes do not say which, so `decode` tries both and prints each that
//! fits; `encode` takes `{"request": FRAME}` or `{"response": FRAME}`.

use chargeswap_protocol::modbus::{ModbusError, Request, Response, RtuFrame, TcpFrame};
use serde_json::{Map, Value, json};

use crate::util::CliResult;

fn json_of<T: serde::Serialize>(v: &T) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| format!("cannot serialize output: {e}"))
}

/// Decodes one RTU (`modbus-rtu`) or MBAP (`modbus-tcp`) frame.
pub fn decode(protocol: &str, bytes: &[u8]) -> CliResult {
    let tcp = protocol == "modbus-tcp";
    let (req, rsp): (Result<Value, ModbusError>, Result<Value, ModbusError>) = if tcp {
        (
            TcpFrame::<Request>::decode(bytes).map(|f| json_of(&f).unwrap_or(Value::Null)),
            TcpFrame::<Response>::decode(bytes).map(|f| json_of(&f).unwrap_or(Value::Null)),
        )
    } else {
        (
            RtuFrame::<Request>::decode(bytes).map(|f| json_of(&f).unwrap_or(Value::Null)),
            RtuFrame::<Response>::decode(bytes).map(|f| json_of(&f).unwrap_or(Value::Null)),
        )
    };
    let mut out = Map::new();
    out.insert("protocol".into(), json!(protocol));
    match (req, rsp) {
        (Err(a), Err(b)) => {
            return Err(format!(
                "not a {protocol} frame: as a request, {a}; as a response, {b}"
            ));
        }
        (a, b) => {
            if let Ok(v) = a {
                out.insert("request".into(), v);
            }
            if let Ok(v) = b {
                out.insert("response".into(), v);
            }
        }
    }
    Ok(Value::Object(out))
}

/// Encodes `{"request": FRAME}` or `{"response": FRAME}` as RTU or MBAP bytes.
pub fn encode(protocol: &str, json: &Value) -> Result<Vec<u8>, String> {
    let tcp = protocol == "modbus-tcp";
    let bad = |e: serde_json::Error| format!("the {protocol} frame JSON is not valid: {e}");
    let enc = |e: ModbusError| format!("cannot encode the {protocol} frame: {e}");
    match (json.get("request"), json.get("response")) {
        (Some(f), None) if tcp => serde_json::from_value::<TcpFrame<Request>>(f.clone())
            .map_err(bad)?
            .encode()
            .map_err(enc),
        (Some(f), None) => serde_json::from_value::<RtuFrame<Request>>(f.clone())
            .map_err(bad)?
            .encode()
            .map_err(enc),
        (None, Some(f)) if tcp => serde_json::from_value::<TcpFrame<Response>>(f.clone())
            .map_err(bad)?
            .encode()
            .map_err(enc),
        (None, Some(f)) => serde_json::from_value::<RtuFrame<Response>>(f.clone())
            .map_err(bad)?
            .encode()
            .map_err(enc),
        _ => Err(format!(
            "a {protocol} frame is {{\"request\": {{...}}}} or {{\"response\": {{...}}}} (exactly one), e.g. {{\"request\": {{\"unit\": 1, \"function\": \"read_input_registers\", \"address\": 0, \"quantity\": 7}}}}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtu_round_trip_through_json() {
        let v = decode(
            "modbus-rtu",
            &[0x11, 0x06, 0x00, 0x01, 0x00, 0x03, 0x9A, 0x9B],
        )
        .unwrap();
        // 0x06 requests and responses are the same bytes
        assert!(v.get("request").is_some() && v.get("response").is_some());
        let req = json!({"request": v["request"].clone()});
        assert_eq!(
            encode("modbus-rtu", &req).unwrap(),
            [0x11, 0x06, 0x00, 0x01, 0x00, 0x03, 0x9A, 0x9B]
        );
    }

    #[test]
    fn errors_name_offsets() {
        let e = decode(
            "modbus-rtu",
            &[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCE],
        )
        .unwrap_err();
        assert!(e.contains("byte offset 6"), "{e}");
        let e = decode("modbus-tcp", &[0, 1, 0, 9, 0, 6, 1, 3, 0, 0, 0, 1]).unwrap_err();
        assert!(e.contains("byte offset 2"), "{e}");
        assert!(
            encode("modbus-tcp", &json!({}))
                .unwrap_err()
                .contains("request")
        );
    }

    #[test]
    fn tcp_encode() {
        let j = json!({"response": {"transaction": 1, "unit": 1, "function": "exception", "function_code": 4, "exception": 2}});
        assert_eq!(
            encode("modbus-tcp", &j).unwrap(),
            [0, 1, 0, 0, 0, 3, 1, 0x84, 2]
        );
    }
}
