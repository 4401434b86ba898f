#!/usr/bin/env bash
# The README's "run it" command: services up, the sandbox gateway and the
# worker running with every role, sample traffic published, and the result
# events printed as they arrive, then one refund's and one batch's story and
# the sandbox's ledger.
#
# The whole loop: refunds stored, batched, accepted by the sandbox (which pays
# them in its ledger), its signed notifications received and applied, one
# terminal result event per refund (and a refund.bank_returned per 充退
# notification) published to demo.refunds.results. Each run starts from a
# clean demo database and demo queues, so what it prints is this run's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/services.sh
cargo build --release --quiet --bin refund-worker --examples
bin=target/release/refund-worker
examples=target/release/examples
amqp=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/refund_worker_demo}
export AMQP_NAME_PREFIX=${AMQP_NAME_PREFIX:-demo.}
export ALIPAY_PARTNER=${ALIPAY_PARTNER:-2088101122136241}
export ALIPAY_KEY=${ALIPAY_KEY:-demo0key0not0secret0000000000000}
export ALIPAY_GATEWAY=${ALIPAY_GATEWAY:-http://127.0.0.1:9000/gateway.do}
# The second partner is on the OpenAPI channel (deploy/demo.toml); the
# sandbox serves both interfaces on one address.
export ALIPAY_OPENAPI_GATEWAY=${ALIPAY_OPENAPI_GATEWAY:-http://127.0.0.1:9000/gateway.do}
export ALIPAY_NOTIFY_URL=${ALIPAY_NOTIFY_URL:-http://127.0.0.1:8080/alipay/notify}
export ALIPAY_DBACK_NOTIFY_URL=${ALIPAY_DBACK_NOTIFY_URL:-http://127.0.0.1:8080/alipay/dback-notify}
export BATCH_LINGER_MS=${BATCH_LINGER_MS:-500}
export LOG_FORMAT=${LOG_FORMAT:-pretty}
export RUST_LOG=${RUST_LOG:-info}

echo "== a clean start: dropping the demo database and queues of an earlier run"
psql -q -h 127.0.0.1 -U postgres -d postgres -c 'DROP DATABASE IF EXISTS refund_worker_demo WITH (FORCE)' 2>/dev/null || true
if command -v rabbitmqctl >/dev/null; then
  for q in refunds.approved refunds.dead refunds.results ledger.refund-results; do
    rabbitmqctl -q delete_queue "${AMQP_NAME_PREFIX}$q" >/dev/null 2>&1 || true
  done
fi

"$bin" --config deploy/demo.toml sandbox --listen 127.0.0.1:9000 --time-scale 0.01 \
  --alipay-private-key-file deploy/sandbox-keys/alipay-private.pem 2>demo-sandbox.log &
sandbox=$!
"$bin" migrate
"$bin" --config deploy/demo.toml run 2>demo-worker.log &
worker=$!
trap 'kill -TERM $worker $sandbox 2>/dev/null || true; wait $worker $sandbox 2>/dev/null || true' EXIT

# Waits (30 s at most) until process $2 writes a line matching $4 to log $3.
started() {
  for _ in $(seq 1 300); do
    grep -q "$4" "$3" && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  grep -q "$4" "$3" || { cat "$3"; echo "$1 did not start"; exit 1; }
}

# The watcher reads from its own queue, so it starts first: it sees what is
# published after it says "watching".
: > demo-watch.log
"$bin" watch-results --terminal 26 --timeout-ms 60000 2>demo-watch.log >demo-results.txt &
watcher=$!
started watch-results $watcher demo-watch.log '^watching'
# A downstream team's consumer (examples/result_consumer.rs): its own durable
# queue, manual acks, dedup on event_id.
"$examples/result_consumer" "$amqp" "$AMQP_NAME_PREFIX" >demo-consumer.txt 2>demo-consumer.log &
consumer=$!
started "the example consumer" $consumer demo-consumer.log '^consuming'

echo "== publishing deploy/sample-events.jsonl (20 valid, 1 duplicate, 1 conflicting, 3 invalid)"
"$bin" publish deploy/sample-events.jsonl
echo "== publishing deploy/sample-events-openapi.jsonl (5 refunds of the OpenAPI partner)"
"$bin" --config deploy/demo.toml publish deploy/sample-events-openapi.jsonl
echo "== an upstream service's publisher (examples/upstream_publisher.rs): one more refund"
"$examples/upstream_publisher" "$amqp" "$AMQP_NAME_PREFIX" DEMO-EX-1

echo "== result events as they arrive on ${AMQP_NAME_PREFIX}refunds.results"
wait $watcher
cat demo-results.txt
echo
"$bin" refund show DEMO-0001
echo
"$bin" refund show DEMO-0020 --json
echo
echo "== an OpenAPI refund: one alipay.trade.refund, no batch"
"$bin" --config deploy/demo.toml refund show DEMO-OA-03
echo
echo "== the batch that paid DEMO-0001:"
batch_no=$("$bin" refund show DEMO-0001 --json | sed -n 's/^  "batch_no": "\([0-9A-Za-z]*\)".*/\1/p')
"$bin" batch show "$batch_no" > demo-batch.txt
head -n 24 demo-batch.txt
echo "   … the whole story of the batch is in demo-batch.txt"
echo
echo "== the sandbox's ledger (what Alipay paid):"
curl -fsS http://127.0.0.1:9000/ledger -o demo-ledger.json
head -c 1500 demo-ledger.json; echo
echo "   … the whole ledger (both channels) is in demo-ledger.json"
echo
kill -TERM $consumer 2>/dev/null || true
wait $consumer 2>/dev/null || true
echo "== the example consumer (examples/result_consumer.rs) applied $(wc -l < demo-consumer.txt) distinct events from its own queue ${AMQP_NAME_PREFIX}ledger.refund-results (demo-consumer.txt)"
echo
echo "== the 4 rejected events are in the dead-letter queue ${AMQP_NAME_PREFIX}refunds.dead,"
echo "   each with x-refund-error-code and x-refund-error; logs: demo-worker.log, demo-sandbox.log"
