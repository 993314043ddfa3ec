//! `chargeswap decode` and `chargeswap encode`: read a capture, craft a frame.
//!
//! Each protocol plugs in one arm in [`decode`] and [`encode`].

use serde_json::Value;

use crate::util::CliResult;

mod modbus;

/// Parses hex text: spaces, colons, dashes and a `0x` prefix are allowed.
/// Errors name the character offset of the bad input.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let mut digits = Vec::with_capacity(t.len());
    for (i, c) in t.char_indices() {
        match c {
            ' ' | ':' | '-' | '\n' | '\t' | '\r' => {}
            c if c.is_ascii_hexdigit() => digits.push((i, c)),
            c => {
                return Err(format!(
                    "bad hex: {c:?} at character {i} is not a hex digit"
                ));
            }
        }
    }
    if digits.len() % 2 != 0 {
        return Err(format!(
            "bad hex: odd number of hex digits ({}); every byte needs two",
            digits.len()
        ));
    }
    digits
        .chunks(2)
        .map(|p| match p {
            [(_, a), (_, b)] => {
                let s: String = [*a, *b].iter().collect();
                u8::from_str_radix(&s, 16).map_err(|e| format!("bad hex: {e}"))
            }
            _ => Err("bad hex".to_owned()),
        })
        .collect()
}

/// Formats bytes as upper-case hex without separators.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The protocols the CLI knows.
pub const PROTOCOLS: &[&str] = &["csp", "modbus-rtu", "modbus-tcp", "jt808", "jbd", "daly"];

/// Decodes one frame of `protocol` from bytes into JSON.
pub fn decode(protocol: &str, bytes: &[u8]) -> CliResult {
    match protocol {
        "csp" => crate::csp::decode(bytes, None),
        "modbus-rtu" | "modbus-tcp" => modbus::decode(protocol, bytes),
        "jt808" => crate::codec_tbox_bms::decode_jt808(bytes),
        "jbd" => crate::codec_tbox_bms::decode_jbd(bytes),
        "daly" => crate::codec_tbox_bms::decode_daly(bytes),
        _ => Err(format!(
            "unknown protocol {protocol:?}: expected one of {}",
            PROTOCOLS.join(", ")
        )),
    }
}

/// Encodes one frame of `protocol` from JSON into bytes.
pub fn encode(protocol: &str, json: &Value) -> Result<Vec<u8>, String> {
    match protocol {
        "csp" => crate::csp::encode(json),
        "modbus-rtu" | "modbus-tcp" => modbus::encode(protocol, json),
        "jt808" => crate::codec_tbox_bms::encode_jt808(json),
        "jbd" => crate::codec_tbox_bms::encode_jbd(json),
        "daly" => crate::codec_tbox_bms::encode_daly(json),
        _ => Err(format!(
            "unknown protocol {protocol:?}: expected one of {}",
            PROTOCOLS.join(", ")
        )),
    }
}

/// Decodes one frame with an optional device key (`--key`): only CSP frames carry MACs.
pub fn decode_keyed(protocol: &str, bytes: &[u8], key: Option<&str>) -> CliResult {
    match (protocol, key) {
        ("csp", _) => crate::csp::decode(bytes, key),
        (_, None) => decode(protocol, bytes),
        (p, Some(_)) => Err(format!("--key applies to csp frames only, not {p}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_parsing_names_offsets() {
        assert_eq!(parse_hex("0x7E 00:02-0a").unwrap(), vec![0x7E, 0, 2, 0x0A]);
        assert!(parse_hex("7G").unwrap_err().contains("at character 1"));
        assert!(parse_hex("7E0").unwrap_err().contains("odd number"));
        assert_eq!(to_hex(&[0xde, 0xad]), "DEAD");
    }
}
