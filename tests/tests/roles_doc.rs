//! docs/roles.md's permission matrix says exactly what `Role::allows` does.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use chargeswap_core::org::{Action, Role};

#[test]
fn roles_doc_matrix_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/roles.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().trim_matches('`').to_owned())
            .collect()
    };
    let header = text
        .lines()
        .find(|l| l.starts_with("| action |"))
        .expect("matrix header");
    let roles: Vec<Role> = cells(header)[1..]
        .iter()
        .map(|r| serde_json::from_value(serde_json::Value::String(r.clone())).unwrap())
        .collect();
    assert_eq!(roles, Role::ALL.to_vec(), "columns are every role in order");
    let mut seen = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let c = cells(line);
        let Ok(action) = serde_json::from_value::<Action>(serde_json::Value::String(c[0].clone()))
        else {
            continue; // the roles table above the matrix
        };
        for (role, cell) in roles.iter().zip(&c[1..]) {
            let documented = match cell.as_str() {
                "✓" => true,
                "·" => false,
                other => panic!("{action:?}/{role:?}: unexpected cell {other:?}"),
            };
            assert_eq!(documented, role.allows(action), "{action:?} / {role:?}");
        }
        seen.push(action);
    }
    assert_eq!(seen, Action::ALL.to_vec(), "rows are every action in order");
}
