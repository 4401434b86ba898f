#!/usr/bin/env bash
# The README's test command: services up, then every test (unit, property and
# integration against the real PostgreSQL and RabbitMQ).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/services.sh
bash deploy/browser.sh
cargo test --all-targets "$@"
