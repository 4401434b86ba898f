#!/usr/bin/env bash
# The README's test command: services up, then every test (unit, property and
# integration against the real PostgreSQL and RabbitMQ).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/services.sh
bash deploy/browser.sh
# The alert rules, where promtool is installed (Debian's prometheus package);
# tests/it/observability.rs checks the same files without it.
if command -v promtool >/dev/null; then
    promtool check rules deploy/observability/rules.yaml
    promtool test rules deploy/observability/rules.test.yaml
fi
cargo test --all-targets "$@"
