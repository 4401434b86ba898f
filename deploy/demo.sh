#!/usr/bin/env bash
# The README's "run it" command: services up, the sandbox gateway and the worker
# running, sample traffic published, and what became of it shown. Safe to run
# again: the sample events are then duplicates, acked and stored once.
#
# The whole loop of this version: refunds stored, batched, accepted by the
# sandbox (which pays them in its ledger), its signed notifications received
# and applied, and one result event per refund published to
# demo.refunds.results. (The reconcile role is left out only to keep the demo
# quiet; the 充退 receiver is not built yet.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/services.sh
cargo build --release --quiet
bin=target/release/refund-worker

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/refund_worker_demo}
export AMQP_NAME_PREFIX=${AMQP_NAME_PREFIX:-demo.}
export ALIPAY_PARTNER=${ALIPAY_PARTNER:-2088101122136241}
export ALIPAY_KEY=${ALIPAY_KEY:-demo0key0not0secret0000000000000}
export ALIPAY_GATEWAY=${ALIPAY_GATEWAY:-http://127.0.0.1:9000/gateway.do}
export ALIPAY_NOTIFY_URL=${ALIPAY_NOTIFY_URL:-http://127.0.0.1:8080/alipay/notify}
export BATCH_LINGER_MS=${BATCH_LINGER_MS:-500}
export LOG_FORMAT=${LOG_FORMAT:-pretty}
export RUST_LOG=${RUST_LOG:-info}

"$bin" sandbox --listen 127.0.0.1:9000 --time-scale 0.01 2>demo-sandbox.log &
sandbox=$!
"$bin" migrate
"$bin" run --roles intake,batch,submit,http,relay 2>demo-worker.log &
worker=$!
trap 'kill -TERM $worker $sandbox 2>/dev/null || true; wait $worker $sandbox 2>/dev/null || true' EXIT

echo "== publishing deploy/sample-events.jsonl (20 valid, 1 duplicate, 1 conflicting, 3 invalid)"
"$bin" publish deploy/sample-events.jsonl

echo "== waiting for the worker to store, batch, submit them and apply Alipay's notification"
for _ in $(seq 1 150); do
  "$bin" refund show DEMO-0020 2>/dev/null | grep -q "published" && break
  sleep 0.2
done
"$bin" refund show DEMO-0001
echo
"$bin" refund show DEMO-0020 --json
echo
echo "== the sandbox's ledger (what Alipay paid):"
curl -fsS http://127.0.0.1:9000/ledger | head -c 1500; echo
echo
echo "== the 4 rejected events are in the dead-letter queue ${AMQP_NAME_PREFIX}refunds.dead,"
echo "   each with x-refund-error-code and x-refund-error; logs: demo-worker.log, demo-sandbox.log"
