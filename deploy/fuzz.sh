#!/usr/bin/env bash
# Release check: each libFuzzer target of fuzz/ for RUNS executions (a
# million by default), then the parser properties of src/parser_robustness.rs
# with CASES cases each (PROPERTIES=0 skips them).
#
# cargo-fuzz runs on the stable toolchain with `--sanitizer none`: coverage-
# guided libFuzzer without AddressSanitizer, which needs nightly. The code
# under test is safe Rust, so what there is to find is a panic, an overflow
# (`--debug-assertions` turns the checks on) or a broken invariant, and none
# of those needs a sanitizer. A crash stops the script; its input is under
# fuzz/artifacts/<target>/: fix it and commit it to fuzz/regressions/<target>/,
# which the test suite replays (src/fuzzing.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1000000}
CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
for t in ${TARGETS:-intake_event notify_form result_details query_answer sync_answer}; do
  # libFuzzer adds what it finds to the first directory; the committed
  # seeds (the second) stay as they are.
  work=fuzz/target/corpus/$t
  mkdir -p "$work"
  echo "fuzz: $t, $RUNS runs" >&2
  cargo fuzz run --sanitizer none --debug-assertions "$t" "$work" "fuzz/corpus/$t" -- \
    -runs="$RUNS" -max_len=4096 -print_final_stats=1
done
if [ "${PROPERTIES:-1}" = 1 ]; then
  PROPTEST_CASES=${CASES:-1000000} cargo test --release --lib parser_robustness -- --test-threads=2
fi
