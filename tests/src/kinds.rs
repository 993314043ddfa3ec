//! The evaluators: one per vector `kind`.

use chargeswap_core::money::Money;
use chargeswap_core::numbering::{DeviceClass, DeviceNo, DeviceNoAllocator};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error_json;

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
        other => Err(
            json!({"kind": "unknown_vector_kind", "message": format!("no evaluator for kind {other:?}")}),
        ),
    }
}
