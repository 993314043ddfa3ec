//! `chargeswap flow run` replays the bundled scenario and the golden flows.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use serde_json::Value;

fn run(args: &[&str]) -> (i32, Value, String) {
    common::run_in(&common::root(), args)
}

#[test]
fn swap_scenario_prints_steps_summary_and_custody() {
    let (code, v, err) = run(&[
        "flow",
        "run",
        "--scenario",
        "examples/flows/swap-happy.json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["steps"].as_array().unwrap().len(), 3);
    assert_eq!(
        v["summary"]["outcome"],
        serde_json::json!({"swapped": {"waived": false}})
    );
    assert_eq!(
        v["steps"][2]["effects"][1],
        serde_json::json!({"consume_entitlement": {"order": 1, "package": "pkg-42"}})
    );
    let custody = v["custody"].as_array().unwrap();
    assert!(
        custody.contains(&serde_json::json!({"battery": 200004, "at": {"rider": {"rider": 7}}}))
    );
}

#[test]
fn every_golden_flow_case_runs_the_same_through_the_cli() {
    let dir = common::root().join("tests/vectors/flows");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for case in file["cases"].as_array().unwrap() {
            let tmp = std::env::temp_dir().join(format!(
                "chargeswap-flow-{}-{}.json",
                std::process::id(),
                case["name"].as_str().unwrap()
            ));
            std::fs::write(&tmp, case["input"].to_string()).unwrap();
            let (code, v, err) = run(&["flow", "run", "--scenario", tmp.to_str().unwrap()]);
            std::fs::remove_file(&tmp).ok();
            assert_eq!(code, 0, "{}: {err}", case["name"]);
            // one output per input, plus one per price a scenario tariff answered
            let priced = usize::from(case["input"].get("tariff").is_some());
            assert_eq!(
                v["steps"].as_array().unwrap().len(),
                case["input"]["steps"].as_array().unwrap().len() + priced
            );
        }
    }
}

#[test]
fn a_bad_scenario_names_the_file_and_the_place() {
    let tmp = std::env::temp_dir().join(format!("chargeswap-bad-{}.json", std::process::id()));
    std::fs::write(&tmp, r#"{"machine": "swap", "steps": [{"at": "soon"}]}"#).unwrap();
    let (code, _, err) = run(&["flow", "run", "--scenario", tmp.to_str().unwrap()]);
    std::fs::remove_file(&tmp).ok();
    assert_eq!(code, 2);
    assert!(
        err.contains("--scenario file") && err.contains("line"),
        "{err}"
    );
}
