//! Replays every golden case under tests/vectors/.

use chargeswap_conformance::{VectorFile, check_case, vector_files, vectors_dir};

#[test]
fn every_vector_file_passes() {
    let files = vector_files(&vectors_dir());
    assert!(!files.is_empty(), "no vector files found");
    let mut failures = Vec::new();
    let mut count = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let vf: VectorFile = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not a vector file: {e}", f.display()));
        assert!(!vf.cases.is_empty(), "{}: no cases", f.display());
        for c in &vf.cases {
            count += 1;
            if let Err(e) = check_case(&vf.kind, c) {
                failures.push(format!("{} :: {}\n{e}", f.display(), c.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    eprintln!("{count} golden cases in {} files passed", files.len());
}
