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

step "integration peers: pymodbus (PyPI, pinned) in .venv"
# protocol/tests/pymodbus_interop.rs runs our Modbus transports against
# pymodbus; it finds .venv/bin/python. With the peer installed, a missing
# peer is a failure (CHARGESWAP_REQUIRE_PEERS=1), not a skip.
PYMODBUS_VERSION=3.11.4
install_pymodbus() {
  python3 -m venv .venv &&
    .venv/bin/pip install --quiet --disable-pip-version-check "pymodbus==${PYMODBUS_VERSION}"
}
if install_pymodbus || install_pymodbus; then
  export CHARGESWAP_REQUIRE_PEERS=1
elif [ "${CI:-}" = "true" ]; then
  echo "error: could not install pymodbus==${PYMODBUS_VERSION} from PyPI in CI" >&2
  exit 1
else
  echo "warning: could not install pymodbus; the pymodbus interop tests will be skipped"
fi

step "cargo test (workspace, all features)"
cargo test --workspace --all-features --no-fail-fast

step "fuzz targets compile (fuzz/ workspace, stable, without cargo-fuzz)"
# The corpus itself is replayed by protocol/tests/fuzz_corpus.rs above.
cargo check --manifest-path fuzz/Cargo.toml --bins

step "benchmarks run once each (criterion test mode, debug build)"
cargo test --workspace --all-features --benches
