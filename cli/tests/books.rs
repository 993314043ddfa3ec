//! `chargeswap books run` end to end: operations in, balances, events and
//! errors out.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use serde_json::{Value, json};

fn run(args: &[&str]) -> (i32, Value, String) {
    common::run_in(&common::commerce_examples(), args)
}

#[test]
fn purchase_three_swaps_refund_on_the_books() {
    let (code, v, err) = run(&["books", "run", "--ops", "books-ops.json"]);
    assert_eq!(code, 0, "{err}");
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 12);
    assert_eq!(
        steps[3]["transfers"],
        json!([
            "o4.rec: P1:liability -> platform:revenue 5.00 [package_consume]",
            "o4.rec.s1: platform:revenue -> store-1:revenue 0.48 [revenue_share]",
            "o4.rec.s2: platform:revenue -> agent-1:revenue 1.16 [revenue_share]"
        ])
    );
    // the cabinet's retry of SW-2 moves nothing
    assert_eq!(steps[5], json!({"id": "o6"}));
    assert_eq!(steps[7]["events"], json!(["refunded 135.00"]));
    assert_eq!(v["balances"]["r1:wallet"]["posted"], "185.00");
    assert_eq!(v["balances"]["platform:revenue"]["posted"], "10.08");
    assert_eq!(v["reconciliation"]["agrees"], true);
}

#[test]
fn a_list_of_steps_with_errors_and_a_config_file() {
    let dir = std::env::temp_dir().join(format!("chargeswap-books-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ops = dir.join("ops.json");
    let config = dir.join("config.json");
    std::fs::write(
        &ops,
        json!([
            {"id": "a", "at": "2026-05-01T00:00:00Z", "op": "open_rider", "rider": "r1"},
            {"id": "b", "at": "2026-05-01T00:00:00Z", "op": "top_up", "rider": "r1", "amount": "5.00"},
            {"id": "c", "at": "2026-05-01T00:00:00Z", "op": "sale", "order": "CH-1", "rider": "r1",
             "amount": "6.00", "product": "charging", "chain": ["agent-1"]},
            {"id": "d", "at": "2026-05-01T00:00:00Z", "op": "sale", "order": "CH-1", "rider": "r1",
             "amount": "4.00", "product": "charging", "chain": ["agent-1"]}
        ])
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        &config,
        json!({"rules": {"rules": [{"node": "agent-1", "percent": "25"}]}}).to_string(),
    )
    .unwrap();
    let (code, v, err) = run(&[
        "books",
        "run",
        "--ops",
        ops.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    // 6.00 > the 5.00 in the wallet: refused, nothing moved
    assert_eq!(v["steps"][2]["error"]["kind"], "wallet");
    assert_eq!(
        v["steps"][2]["error"]["error"]["kind"],
        "insufficient_funds"
    );
    // 4.00 at 75 : 25 -> the agent gets 1.00
    assert_eq!(
        v["steps"][3]["transfers"][1],
        "d.sale.s1: platform:revenue -> agent-1:revenue 1.00 [revenue_share]"
    );
    assert_eq!(v["balances"]["platform:revenue"]["posted"], "3.00");
    // a broken file is an error with a message, exit status 2
    std::fs::write(&ops, "[{\"id\": \"a\"}]").unwrap();
    let (code, _, err) = run(&["books", "run", "--ops", ops.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("is not valid"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
