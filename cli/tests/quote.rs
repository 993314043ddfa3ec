//! Runs the `chargeswap quote` binary on the bundled example tariff and
//! session (the README's main command) and on broken inputs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn quote(tariff: &Path, session: &Path, explain: bool) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chargeswap"));
    c.arg("quote")
        .arg("--tariff")
        .arg(tariff)
        .arg("--session")
        .arg(session);
    if explain {
        c.arg("--explain");
    }
    c.output().unwrap()
}

fn example() -> (PathBuf, PathBuf) {
    let r = root();
    (
        r.join("examples/tariffs/city-ebike.json"),
        r.join("examples/sessions/evening-charge.json"),
    )
}

// Worked by hand (see docs/pricing.md, "The bundled example"): peak 0.2500 +
// 0.2160 = 0.4660 kWh, sharp 0.6000, valley 0.1440; electricity 0.48 + 0.75 +
// 0.05 = 1.28, service 0.37 + 0.48 + 0.06 = 0.91, idle 15 min past grace → one
// half hour = 0.60; gold 10 % of service 0.91 → −0.09; 满2减0.3 on 2.70 → −0.30.
// Total 1.28 + 0.91 + 0.60 − 0.09 − 0.30 = 2.40.

#[test]
fn readme_main_command_explains_the_evening_session() {
    let (t, s) = example();
    let out = quote(&t, &s, true);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "Quote under tariff city-ebike-2025",
        "1.2100 kWh from meter readings",
        "electricity (电费) sharp: 0.6000 kWh × ¥1.253/kWh = 0.7518 → ¥0.75",
        "idle (占位费): 30 min × ¥1.20/h ÷ 60 = ¥0.60",
        "member discount (会员折扣) gold: 10% of ¥0.91 = −¥0.09",
        "coupon (优惠券) MJ-2-0.3",
        "Total: ¥2.40",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn quote_prints_json_whose_lines_add_up() {
    let (t, s) = example();
    let out = quote(&t, &s, false);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total"], "2.40");
    assert_eq!(v["subtotals"]["electricity"], "1.28");
    assert_eq!(v["subtotals"]["service"], "0.91");
    assert_eq!(v["subtotals"]["idle"], "0.60");
    assert_eq!(v["subtotals"]["discounts"], "-0.39");
    let fen: i64 = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let a = l["amount"].as_str().unwrap().replace('.', "");
            a.parse::<i64>().unwrap()
        })
        .sum();
    assert_eq!(fen, 240);
}

#[test]
fn invalid_tariff_fails_with_the_field_path() {
    let dir = std::env::temp_dir().join(format!("chargeswap-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("gap.json");
    std::fs::write(
        &bad,
        r#"{"id": "gap", "tou": {"ranges": [
            {"start": "00:00", "end": "08:00", "tier": "valley"},
            {"start": "09:00", "end": "24:00", "tier": "flat"}]}}"#,
    )
    .unwrap();
    let (_, s) = example();
    let out = quote(&bad, &s, false);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("is not valid"), "{err}");
    assert!(err.contains("tou.ranges[1].start"), "{err}");
    assert!(err.contains("08:00 to 09:00"), "{err}");
    // Several problems are all named.
    let bad2 = dir.join("two.json");
    std::fs::write(
        &bad2,
        r#"{"id": "two", "energy": {"tiers": {"flat": {"electricity": "-1", "service": "0"}}},
            "session_fee": "0.001"}"#,
    )
    .unwrap();
    let out = quote(&bad2, &s, false);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("(2 problems)"), "{err}");
    assert!(err.contains("energy.tiers.flat.electricity"), "{err}");
    assert!(err.contains("session_fee"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_file_and_unpriceable_session_fail_clearly() {
    let (t, _) = example();
    let out = quote(&t, Path::new("/nonexistent/session.json"), false);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read session file"));

    let dir = std::env::temp_dir().join(format!("chargeswap-cli-test2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let s = dir.join("swap.json");
    std::fs::write(&s, r#"{"service": "swap", "battery_model": "72V40Ah"}"#).unwrap();
    let out = quote(&t, &s, false);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("session.battery_model"), "{err}");
    assert!(err.contains("48V20Ah, 60V30Ah"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
