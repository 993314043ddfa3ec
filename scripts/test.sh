#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: formatting, lints, the
# Rust workspace (unit, property, doc and golden-vector tests, fuzz corpus
# replay), and the integration tests against real peers when they can be
# installed. Installs what it needs itself.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
export PROPTEST_CASES="${PROPTEST_CASES:-256}"

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
cargo --version
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (deny warnings)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo test (workspace, all features)"
cargo test --workspace --all-features --no-fail-fast

step "benchmarks compile"
cargo bench --workspace --no-run
