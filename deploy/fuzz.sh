#!/usr/bin/env bash
# Release check: the parser properties of src/parser_robustness.rs with many
# more cases than the test suite's default (CASES each, a million by default).
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES=${CASES:-1000000}
cargo test --release --lib parser_robustness -- --test-threads=2
