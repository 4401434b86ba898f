#!/usr/bin/env bash
# A short soak against a three-node RabbitMQ cluster with broker nodes
# killed under load (CI runs it after the tests; the full run of 100 000
# refunds is in docs/testing.md). Starts the cluster of deploy/cluster.sh,
# runs `refund-worker soak --cluster`, and stops the cluster again, keeping
# its data only when the soak failed. The cluster is wiped first, so every
# run starts from three empty nodes (not from a failed run's queues), and
# the soak is given at most LIMIT seconds (default 900) before it is killed
# and the run fails with the cluster's state: CI must end, not wait.
#
#   bash deploy/cluster-soak.sh [REFUNDS] [KILL_EVERY] [LIMIT]   # default 4000, 5s, 900
set -euo pipefail
cd "$(dirname "$0")/.."
refunds=${1:-4000}
every=${2:-5s}
limit=${3:-900}

cargo build --quiet --bin refund-worker
bash deploy/cluster.sh wipe
bash deploy/cluster.sh start
status=0
AMQP_URL='amqp://guest:guest@127.0.0.1:5681/%2f,127.0.0.1:5682,127.0.0.1:5683' \
  timeout --kill-after=30 "$limit" "${CARGO_TARGET_DIR:-target}/debug/refund-worker" \
  soak --cluster --kill-node-every "$every" --refunds "$refunds" --workers 2 \
  >/tmp/refund-worker-cluster-soak.json || status=$?
python3 - /tmp/refund-worker-cluster-soak.json <<'PY' || true
import json, sys
r = json.load(open(sys.argv[1]))
c = r.get("cluster") or {}
print(f"cluster soak: {r['valid_refunds']} refunds, {r['succeeded']} succeeded, {r['failed']} failed; "
      f"{c.get('node_kills')} node kills ({c.get('leader_kills')} of the leader, "
      f"{c.get('leader_changes')} leader changes); longest pause: intake "
      f"{c.get('longest_intake_pause_ms')} ms, publishing {c.get('longest_publish_pause_ms')} ms; "
      f"violations: {len(r['violations'])}")
PY
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
  echo "cluster soak: no end within $limit s; the cluster as it stood:" >&2
  bash deploy/cluster.sh status >&2 || true
  pkill -f 'refund-worker .*run --roles' || true
fi
if [ "$status" = 0 ]; then
  bash deploy/cluster.sh wipe
else
  echo "cluster soak failed (exit $status); the cluster and its data are kept: bash deploy/cluster.sh wipe" >&2
  bash deploy/cluster.sh stop || true
fi
exit "$status"
