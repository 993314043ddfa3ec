//! The commerce subcommands run end to end on the bundled examples.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use serde_json::Value;

fn run(args: &[&str]) -> (i32, Value, String) {
    common::run_in(&common::commerce_examples(), args)
}

#[test]
fn refund_quote_counts_a_replayed_swap_once() {
    let (code, v, _) = run(&[
        "package",
        "refund-quote",
        "--package",
        "package-swap30.json",
        "--usage",
        "usage.json",
        "--at",
        "2026-05-01T10:00:00",
    ]);
    assert_eq!(code, 0);
    // swap-0002 appears twice in usage.json: 3 swaps, 150.00 - 5.00 x 3
    assert_eq!(v["terms"][0]["swaps_used"], 3);
    assert_eq!(v["amount"], "135.00");
    assert_eq!(v["refundable"], true);
}

#[test]
fn fees_at_a_date() {
    // ends 05-25 08:00, grace 24 h: 05-26 08:00 -> 05-28 09:00 is 2 days 1 hour = 3 days x 5.00
    let (code, v, _) = run(&[
        "package",
        "fees",
        "--package",
        "package-swap30.json",
        "--at",
        "2026-05-28 09:00",
    ]);
    assert_eq!(code, 0);
    assert_eq!(v["status"], "overdue");
    assert_eq!(v["overdue"]["fee"], "15.00");
}

#[test]
fn revenue_split_sums_to_the_order() {
    let (code, v, _) = run(&[
        "revenue",
        "split",
        "--rules",
        "revenue-rules.json",
        "--order",
        "order.json",
    ]);
    assert_eq!(code, 0);
    let totals: Vec<&str> = v["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["total"].as_str().unwrap())
        .collect();
    // fixed 0.20 to the agent; 4.79 at 60:5:10:25 -> 287.4, 23.95, 47.9, 119.75 fen
    // -> floors 287, 23, 47, 119 and 3 fen to the remainders .95, .9, .75
    assert_eq!(totals, ["2.87", "0.24", "0.48", "1.40"]);
}

#[test]
fn permission_refused_with_a_reason() {
    let (code, v, _) = run(&[
        "org",
        "can",
        "--org",
        "org.json",
        "--actor",
        r#"{"id":"u7","role":"agent_admin","node":"sub-east"}"#,
        "--action",
        "operate_devices",
        "--resource",
        r#"{"type":"asset","kind":"cabinet","id":"CAB-0002"}"#,
    ]);
    assert_eq!(code, 0);
    assert_eq!(v["allowed"], false);
    assert_eq!(v["reason"]["kind"], "out_of_scope");
}

#[test]
fn bad_input_exits_2_with_a_message() {
    let (code, _, err) = run(&[
        "package",
        "refund-quote",
        "--package",
        "package-swap30.json",
        "--at",
        "yesterday",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("expected local time like 2026-05-01T10:00:00"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "org",
        "can",
        "--org",
        "org.json",
        "--actor",
        r#"{"id":"u","role":"agent","node":"agent-east"}"#,
        "--action",
        "fly",
        "--resource",
        r#"{"type":"platform"}"#,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("not an action"), "{err}");
}
