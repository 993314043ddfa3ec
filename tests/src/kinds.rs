//! The evaluators: one per vector `kind`.

use chargeswap_core::money::Money;
use chargeswap_core::numbering::{DeviceClass, DeviceNo, DeviceNoAllocator};
use chargeswap_core::{membership, org, package, settlement};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error_json;

mod modbus;

fn input<T: DeserializeOwned>(v: &Value) -> Result<T, Value> {
    serde_json::from_value(v.clone())
        .map_err(|e| json!({"kind": "bad_input", "message": e.to_string()}))
}

fn out<T: serde::Serialize>(v: &T) -> Result<Value, Value> {
    serde_json::to_value(v).map_err(|e| json!({"kind": "serialize", "message": e.to_string()}))
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
        other => Err(
            json!({"kind": "unknown_vector_kind", "message": format!("no evaluator for kind {other:?}")}),
        ),
    }
}

fn hex_bytes(h: &str) -> Result<Vec<u8>, Value> {
    let bad = || json!({"kind": "bad_input", "message": format!("bad hex {h:?}")});
    if h.len() % 2 != 0 {
        return Err(bad());
    }
    (0..h.len())
        .step_by(2)
        .map(|i| {
            h.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
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
    let bytes = hex_bytes(&i.hex)?;
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
        let r =
            csp::decode(&hex_bytes(h)?).and_then(|f| csp::authenticate(&f, &i.key, &mut window));
        out.push(match r {
            Ok(true) => json!("authenticated"),
            Ok(false) => json!("unauthenticated"),
            Err(e) => error_json(&e)["kind"].clone(),
        });
    }
    Ok(Value::Array(out))
}
