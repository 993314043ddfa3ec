//! `chargeswap decode csp` / `chargeswap encode csp`.
//!
//! Decode prints the header, the message and the MAC status:
//!
//! ```json
//! {"protocol": "csp", "device_no": 20001, "seq": 7, "ack_requested": false,
//!  "message": {"type": "door_closed", "slot": 3},
//!  "mac": "absent", "mac_hex": null,
//!  "header": {"version": 1, "payload_len": 1, "command": "door_closed", "command_code": "0x05",
//!             "flags": "0x00", "frame_len": 20, "crc": "0x…"}}
//! ```
//!
//! `mac` is `"absent"`, `"present-unverified"` (no `--key`), `"valid"` or
//! `"invalid"`. Encode takes the same JSON (extra fields are ignored) plus an
//! optional `"key"` (hex): with a key the frame is sealed; without one, a
//! `"mac_hex"` is copied as is (to craft test frames).

use chargeswap_core::numbering::DeviceNo;
use chargeswap_protocol::csp::{self, CspError, DeviceKey, Frame, Mac, Message};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::util::CliResult;

fn explain(e: &CspError) -> String {
    match e.offset() {
        Some(o) if !e.to_string().contains("at byte") => format!("{e} (byte offset {o})"),
        _ => e.to_string(),
    }
}

/// Decodes one CSP frame; with a key, verifies its MAC.
pub fn decode(bytes: &[u8], key: Option<&str>) -> CliResult {
    let key = key
        .map(DeviceKey::from_hex)
        .transpose()
        .map_err(|e| format!("bad --key: {e}"))?;
    let frame = csp::decode(bytes).map_err(|e| format!("bad csp frame: {}", explain(&e)))?;
    let header = csp::decode_header(bytes).map_err(|e| explain(&e))?;
    let mac = frame.mac_status(key.as_ref()).map_err(|e| explain(&e))?;
    let crc = bytes
        .len()
        .checked_sub(csp::CRC_LEN)
        .and_then(|at| bytes.get(at..))
        .map(|c| c.iter().fold(0u32, |a, b| a << 8 | u32::from(*b)))
        .unwrap_or(0);
    Ok(json!({
        "protocol": "csp",
        "device_no": frame.device_no,
        "seq": frame.seq,
        "ack_requested": frame.ack_requested,
        "message": frame.message,
        "mac": mac,
        "mac_hex": frame.mac,
        "header": {
            "version": header.version,
            "payload_len": header.payload_len,
            "command": header.command,
            "command_code": format!("0x{:02X}", header.command.code()),
            "flags": format!("0x{:02X}", header.flags),
            "frame_len": header.frame_len(),
            "crc": format!("0x{crc:08X}"),
        },
    }))
}

#[derive(Deserialize)]
struct EncodeInput {
    device_no: DeviceNo,
    seq: u32,
    #[serde(default)]
    ack_requested: bool,
    message: Message,
    #[serde(default)]
    key: Option<DeviceKey>,
    #[serde(default)]
    mac_hex: Option<Mac>,
}

/// Encodes one CSP frame from JSON.
pub fn encode(json: &Value) -> Result<Vec<u8>, String> {
    let input: EncodeInput = serde_json::from_value(json.clone()).map_err(|e| {
        format!(
            "bad csp frame JSON: {e}; expected {{\"device_no\", \"seq\", \"message\": {{\"type\": ...}}, \
             optional \"ack_requested\", \"key\" (hex) or \"mac_hex\"}}"
        )
    })?;
    let frame = Frame {
        device_no: input.device_no,
        seq: input.seq,
        ack_requested: input.ack_requested,
        message: input.message,
        mac: input.mac_hex,
    };
    let out = match &input.key {
        Some(k) => frame.encode_sealed(k),
        None => frame.encode(),
    };
    out.map_err(|e| match e {
        CspError::MacRequired { .. } => format!("{e}: pass --key HEX (or \"key\" in the JSON)"),
        e => e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn decode_then_encode_round_trips() {
        let v =
            json!({"device_no": 20001, "seq": 7, "message": {"type": "door_closed", "slot": 3}});
        let bytes = encode(&v).unwrap();
        let d = decode(&bytes, None).unwrap();
        assert_eq!(d["mac"], "absent");
        assert_eq!(d["header"]["command_code"], "0x05");
        assert_eq!(d["header"]["frame_len"], 20);
        assert_eq!(encode(&d).unwrap(), bytes);
    }

    #[test]
    fn mac_statuses() {
        let v = json!({"device_no": 20001, "seq": 9, "key": KEY,
            "message": {"type": "open_door", "slot": 3, "reason": "swap_issue", "order_id": null}});
        let bytes = encode(&v).unwrap();
        assert_eq!(decode(&bytes, None).unwrap()["mac"], "present-unverified");
        assert_eq!(decode(&bytes, Some(KEY)).unwrap()["mac"], "valid");
        let other = "ff".repeat(32);
        assert_eq!(decode(&bytes, Some(&other)).unwrap()["mac"], "invalid");
        // re-encoding the decoded JSON keeps the MAC
        let d = decode(&bytes, Some(KEY)).unwrap();
        assert_eq!(encode(&d).unwrap(), bytes);
        assert!(
            decode(&bytes, Some("12"))
                .unwrap_err()
                .contains("bad --key")
        );
        // without a key an open-door cannot be encoded
        let mut nokey = v.clone();
        nokey.as_object_mut().unwrap().remove("key");
        assert!(encode(&nokey).unwrap_err().contains("--key"));
    }

    #[test]
    fn bad_frames_name_the_offset() {
        let v =
            json!({"device_no": 20001, "seq": 7, "message": {"type": "door_closed", "slot": 3}});
        let good = encode(&v).unwrap();
        let mut bytes = good.clone();
        bytes[2] = 9;
        let e = codec::decode("csp", &bytes).unwrap_err();
        assert!(e.contains("at byte 2"), "{e}");
        let e = codec::decode("csp", &good[..5]).unwrap_err();
        assert!(e.contains("truncated at byte 5"), "{e}");
        let e = encode(&json!({"device_no": 20001})).unwrap_err();
        assert!(e.contains("bad csp frame JSON"), "{e}");
        let e = encode(&json!({"device_no": 200001, "seq": 1,
            "message": {"type": "door_closed", "slot": 3}}))
        .unwrap_err();
        assert!(e.contains("battery number"), "{e}");
    }
}
