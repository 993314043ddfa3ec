//! The evaluators: one per vector `kind`.

use chargeswap_core::money::Money;
use chargeswap_core::numbering::{DeviceClass, DeviceNo, DeviceNoAllocator};
use chargeswap_core::tariff::{Session, Tariff};
use chargeswap_core::{membership, org, package, settlement};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error_json;

mod ledger;
mod modbus;

fn input<T: DeserializeOwned>(v: &Value) -> Result<T, Value> {
    serde_json::from_value(v.clone())
        .map_err(|e| json!({"kind": "bad_input", "message": e.to_string()}))
}

fn out<T: serde::Serialize>(v: &T) -> Result<Value, Value> {
    serde_json::to_value(v).map_err(|e| json!({"kind": "serialize", "message": e.to_string()}))
}

/// Parses the hex of a vector (whitespace allowed) into bytes.
pub(crate) fn from_hex(text: &str) -> Result<Vec<u8>, Value> {
    let digits: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return Err(json!({"kind": "bad_input", "message": "odd number of hex digits"}));
    }
    digits
        .chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(|| json!({"kind": "bad_input", "message": format!("bad hex {text:?}")}))
        })
        .collect()
}

/// Upper-case hex without separators.
pub(crate) fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// Dispatches on the vector kind.
pub fn evaluate(kind: &str, v: &Value) -> Result<Value, Value> {
    match kind {
        "money.parse" => {
            let s: String = input(v)?;
            let m: Money = s.parse().map_err(|e| error_json(&e))?;
            Ok(json!({"display": m.to_string(), "json": m, "minor": m.to_minor()}))
        }
        "money.allocate" => {
            #[derive(serde::Deserialize)]
            struct In {
                total: Money,
                weights: Vec<Decimal>,
            }
            let i: In = input(v)?;
            out(&i.total.allocate(&i.weights).map_err(|e| error_json(&e))?)
        }
        "numbering.classify" => {
            let n: u64 = input(v)?;
            let d = DeviceNo::new(n).map_err(|e| error_json(&e))?;
            Ok(json!({"number": d.get(), "class": d.class()}))
        }
        "numbering.next" => {
            #[derive(serde::Deserialize)]
            struct In {
                class: DeviceClass,
                in_use: Vec<DeviceNo>,
            }
            let i: In = input(v)?;
            let mut a = DeviceNoAllocator::from_in_use(i.in_use);
            let n = a.next(i.class).map_err(|e| error_json(&e))?;
            Ok(json!(n.get()))
        }
        "flow.run" => {
            let s: chargeswap_core::flow::Scenario = input(v)?;
            out(&chargeswap_core::flow::run(&s))
        }
        "package.run" => {
            let s: package::Scenario = input(v)?;
            out(&s.run().map_err(|e| error_json(&e))?)
        }
        "package.refund_quote" | "package.fees" | "package.change_quote" => {
            #[derive(serde::Deserialize)]
            struct In {
                scenario: package::Scenario,
                at: chrono::NaiveDateTime,
                #[serde(default)]
                to: Option<package::Product>,
                #[serde(default)]
                rider: package::RiderProfile,
            }
            let i: In = input(v)?;
            let p = i.scenario.run().map_err(|e| error_json(&e))?.package;
            match (kind, i.to) {
                ("package.refund_quote", _) => {
                    out(&p.refund_quote(i.at).map_err(|e| error_json(&e))?)
                }
                ("package.fees", _) => out(&p.fees(i.at).map_err(|e| error_json(&e))?),
                (_, Some(to)) => out(&p
                    .change_quote(&to, &i.rider, i.at)
                    .map_err(|e| error_json(&e))?),
                (_, None) => {
                    Err(json!({"kind": "bad_input", "message": "change_quote needs \"to\""}))
                }
            }
        }
        "membership.assess" => {
            #[derive(serde::Deserialize)]
            struct In {
                config: membership::MembershipConfig,
                activity: Vec<membership::Activity>,
                at: chrono::NaiveDateTime,
            }
            let i: In = input(v)?;
            out(&membership::assess(&i.config, &i.activity, i.at).map_err(|e| error_json(&e))?)
        }
        "membership.discount" => {
            #[derive(serde::Deserialize)]
            struct In {
                benefits: membership::Benefits,
                electricity: Money,
                service: Money,
                #[serde(default)]
                rounding: chargeswap_core::money::Rounding,
            }
            let i: In = input(v)?;
            let d = i.benefits.discount(i.electricity, i.service, i.rounding);
            out(&d.map_err(|e| error_json(&e))?)
        }
        "org.can" => {
            #[derive(serde::Deserialize)]
            struct In {
                org: org::OrgSpec,
                actor: org::Actor,
                action: org::Action,
                resource: org::Resource,
            }
            let i: In = input(v)?;
            let o = org::Org::new(i.org).map_err(|e| error_json(&e))?;
            o.can(&i.actor, i.action, &i.resource)
                .map_err(|e| error_json(&e))?;
            Ok(json!("allowed"))
        }
        "settlement.split" => {
            #[derive(serde::Deserialize)]
            struct In {
                rules: settlement::RevenueRules,
                order: settlement::RevenueOrder,
            }
            let i: In = input(v)?;
            out(&settlement::split(&i.rules, &i.order).map_err(|e| error_json(&e))?)
        }
        "settlement.statements" => {
            #[derive(serde::Deserialize)]
            struct In {
                rules: settlement::RevenueRules,
                orders: Vec<settlement::RevenueOrder>,
                from: chrono::NaiveDateTime,
                to: chrono::NaiveDateTime,
            }
            let i: In = input(v)?;
            let splits = i
                .orders
                .iter()
                .map(|o| settlement::split(&i.rules, o))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| error_json(&e))?;
            let cur = chargeswap_core::money::Currency::CNY;
            out(&settlement::statements(&splits, i.from, i.to, cur).map_err(|e| error_json(&e))?)
        }
        k if k.starts_with("modbus.") => modbus::evaluate(k, v),
        "csp.decode" => csp_decode(v),
        "csp.authenticate" => csp_authenticate(v),
        "protocol.jt808.frame" => tbox_bms::jt808_frame(v),
        "protocol.jt808.body" => tbox_bms::jt808_body(v),
        "protocol.jt808.reassemble" => tbox_bms::jt808_reassemble(v),
        "protocol.jbd.frame" => tbox_bms::jbd_frame(v),
        "protocol.daly.frame" => tbox_bms::daly_frame(v),
        "books.run" => {
            let run: chargeswap_core::books::BooksRun = input(v)?;
            out(&chargeswap_core::books::simulate(&run).map_err(|e| error_json(&e))?)
        }
        "ledger.sequence" => ledger::ledger_sequence(v),
        "wallet.sequence" => ledger::wallet_sequence(v),
        "deposit.sequence" => ledger::deposit_sequence(v),
        "report.daily" => ledger::report_daily(v),
        "pricing.quote" => {
            #[derive(serde::Deserialize)]
            struct In {
                tariff: Tariff,
                session: Session,
            }
            let i: In = input(v)?;
            let t = i.tariff.compile().map_err(|e| error_json(&e))?;
            out(&t.quote(&i.session).map_err(|e| error_json(&e))?)
        }
        "pricing.validate" => {
            let t: Tariff = input(v)?;
            t.validate().map_err(|e| error_json(&e))?;
            Ok(json!({"valid": true}))
        }
        "pricing.validate_all" => {
            let t: Tariff = input(v)?;
            Ok(match t.validate_all() {
                Ok(()) => json!({"valid": true}),
                Err(errors) => json!({
                    "valid": false,
                    "errors": errors.iter().map(error_json).collect::<Vec<_>>(),
                }),
            })
        }
        other => Err(
            json!({"kind": "unknown_vector_kind", "message": format!("no evaluator for kind {other:?}")}),
        ),
    }
}

/// `csp.decode`: hex (+ optional key) → frame and MAC status; also checks
/// that re-encoding the frame gives the input bytes back.
fn csp_decode(v: &Value) -> Result<Value, Value> {
    use chargeswap_protocol::csp::{self, DeviceKey};
    #[derive(serde::Deserialize)]
    struct In {
        hex: String,
        key: Option<DeviceKey>,
    }
    let i: In = input(v)?;
    let bytes = from_hex(&i.hex)?;
    let frame = csp::decode(&bytes).map_err(|e| error_json(&e))?;
    let again = frame.encode().map_err(|e| error_json(&e))?;
    if again != bytes {
        return Err(
            json!({"kind": "reencode_mismatch", "message": "decode then encode changed the bytes"}),
        );
    }
    let mac = frame
        .mac_status(i.key.as_ref())
        .map_err(|e| error_json(&e))?;
    Ok(json!({"frame": frame, "mac_status": mac}))
}

/// `csp.authenticate`: frames through one replay window; per frame
/// "authenticated", "unauthenticated" or the error kind.
fn csp_authenticate(v: &Value) -> Result<Value, Value> {
    use chargeswap_protocol::csp::{self, DeviceKey, ReplayWindow};
    #[derive(serde::Deserialize)]
    struct In {
        key: DeviceKey,
        frames: Vec<String>,
    }
    let i: In = input(v)?;
    let mut window = ReplayWindow::new();
    let mut out = Vec::new();
    for h in &i.frames {
        let r = csp::decode(&from_hex(h)?).and_then(|f| csp::authenticate(&f, &i.key, &mut window));
        out.push(match r {
            Ok(true) => json!("authenticated"),
            Ok(false) => json!("unauthenticated"),
            Err(e) => error_json(&e)["kind"].clone(),
        });
    }
    Ok(Value::Array(out))
}

/// Evaluators for the JT/T 808 and BMS vectors: every frame must decode to
/// the expected value and re-encode to exactly the input bytes.
mod tbox_bms {
    use chargeswap_protocol::bms::daly::DalyFrame;
    use chargeswap_protocol::bms::jbd::JbdFrame;
    use chargeswap_protocol::jt808::{self, Body, Packet, Reassembler, Version};
    use serde_json::{Value, json};

    use super::{from_hex, input, out, to_hex};
    use crate::error_json;

    fn same_bytes(input: &[u8], again: &[u8]) -> Result<(), Value> {
        if input == again {
            Ok(())
        } else {
            Err(
                json!({"kind": "reencode_mismatch", "input": to_hex(input), "reencoded": to_hex(again)}),
            )
        }
    }

    fn packet_json(p: &Packet) -> Result<Value, Value> {
        let mut body = Vec::new();
        p.body
            .encode(p.header.version, &mut body)
            .map_err(|e| error_json(&e))?;
        Ok(json!({
            "msg_id": p.msg_id(),
            "body_len": body.len(),
            "header": out(&p.header)?,
            "body": out(&p.body)?,
        }))
    }

    /// Input: the frame as hex. Output: msg_id, body_len, header, body.
    pub(super) fn jt808_frame(v: &Value) -> Result<Value, Value> {
        let bytes = from_hex(&input::<String>(v)?)?;
        let p = jt808::decode_frame(&bytes).map_err(|e| error_json(&e))?;
        same_bytes(&bytes, &p.encode().map_err(|e| error_json(&e))?)?;
        packet_json(&p)
    }

    /// Input: {msg_id, version, hex} of a body. Output: the body.
    pub(super) fn jt808_body(v: &Value) -> Result<Value, Value> {
        #[derive(serde::Deserialize)]
        struct In {
            msg_id: u16,
            version: Version,
            hex: String,
        }
        let i: In = input(v)?;
        let bytes = from_hex(&i.hex)?;
        let b = Body::decode(i.msg_id, i.version, &bytes).map_err(|e| error_json(&e))?;
        let mut again = Vec::new();
        b.encode(i.version, &mut again)
            .map_err(|e| error_json(&e))?;
        same_bytes(&bytes, &again)?;
        out(&b)
    }

    /// Input: a list of split-part frames (hex), in arrival order. Output: the
    /// joined packet; re-splitting it into parts of the first part's size
    /// must give the same frames (in index order).
    pub(super) fn jt808_reassemble(v: &Value) -> Result<Value, Value> {
        let frames: Vec<String> = input(v)?;
        let mut r = Reassembler::default();
        let mut parts = Vec::new();
        let mut done = None;
        for f in &frames {
            let bytes = from_hex(f)?;
            let p = jt808::decode_frame(&bytes).map_err(|e| error_json(&e))?;
            parts.push((p.header.split.map_or(0, |s| s.index), bytes, p.clone()));
            if let Some(whole) = r.push(p).map_err(|e| error_json(&e))? {
                done = Some(whole);
            }
        }
        let Some(whole) = done else {
            return Err(json!({"kind": "incomplete", "pending": out(&r.pending())?}));
        };
        parts.sort_by_key(|(i, _, _)| *i);
        parts.dedup_by_key(|(i, _, _)| *i);
        let part_len = match parts.first().map(|(_, _, p)| &p.body) {
            Some(Body::Raw { data, .. }) => data.len(),
            _ => 0,
        };
        let again = jt808::split_packet(&whole, part_len).map_err(|e| error_json(&e))?;
        let original: Vec<u8> = parts.iter().flat_map(|(_, b, _)| b.clone()).collect();
        let mut wire = Vec::new();
        for p in &again {
            p.encode_to(&mut wire).map_err(|e| error_json(&e))?;
        }
        same_bytes(&original, &wire)?;
        packet_json(&whole)
    }

    /// Input: the frame as hex. Output: the frame.
    pub(super) fn jbd_frame(v: &Value) -> Result<Value, Value> {
        let bytes = from_hex(&input::<String>(v)?)?;
        let f = JbdFrame::decode(&bytes).map_err(|e| error_json(&e))?;
        same_bytes(&bytes, &f.encode().map_err(|e| error_json(&e))?)?;
        out(&f)
    }

    /// Input: the frame as hex. Output: address, data_id and the frame.
    pub(super) fn daly_frame(v: &Value) -> Result<Value, Value> {
        let bytes = from_hex(&input::<String>(v)?)?;
        let f = DalyFrame::decode(&bytes).map_err(|e| error_json(&e))?;
        same_bytes(&bytes, &f.encode().map_err(|e| error_json(&e))?)?;
        Ok(json!({"address": f.address(), "data_id": f.data_id(), "frame": out(&f)?}))
    }
}
