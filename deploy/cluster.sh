#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine, from Debian's rabbitmq-server,
# for development and CI: nodes rw1@localhost, rw2@localhost and rw3@localhost
# with AMQP on 127.0.0.1:5681-5683, clustered, so quorum queues are replicated
# over the three. Beside the machine's own node (rabbit@localhost, port 5672),
# which it never starts, stops or changes.
#
#   bash deploy/cluster.sh start    # start (or finish starting) the three, join them
#   bash deploy/cluster.sh status   # which run, and the cluster as node 1 sees it
#   bash deploy/cluster.sh stop     # stop the three; their data stays for the next start
#   bash deploy/cluster.sh wipe     # stop them and delete their data
#   bash deploy/cluster.sh leader Q # the node leading queue Q (vhost /)
#   bash deploy/cluster.sh kill N   # SIGKILL node N (1-3), as a crash would
#
# After a kill, `start` brings the node back into the cluster
# (`refund-worker soak --cluster` does both, under load).
#
# Every command may be run again. State (data, logs, the cookie, the
# configuration) lives under $CLUSTER_DIR (default /tmp/refund-worker-cluster).
# Nodes run as the user who runs this (root in CI). If rabbitmq-server is
# missing, `start` says so and installs Debian's package (needs root or sudo);
# that package's own postinstall may start the machine's default node.
#
# The worker: AMQP_URL=amqp://guest:guest@127.0.0.1:5681/%2f,127.0.0.1:5682,127.0.0.1:5683
set -euo pipefail

CLUSTER_DIR=${CLUSTER_DIR:-/tmp/refund-worker-cluster}
case "$CLUSTER_DIR" in /*) ;; *) CLUSTER_DIR="$PWD/$CLUSTER_DIR" ;; esac
RABBITMQ_BIN=${RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}
NODES=(rw1 rw2 rw3)
FIRST_PORT=5681

say() { echo "cluster: $*" >&2; }
node_name() { echo "$1@localhost"; }
amqp_port() { echo $((FIRST_PORT + $1)); }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# A node's environment: its own name, ports, directories and configuration,
# the cluster's cookie (through HOME), and nothing from /etc/rabbitmq, which
# belongs to the machine's default node. For a subshell.
node_env() { # index
  local name=${NODES[$1]} port; port=$(amqp_port "$1")
  export HOME="$CLUSTER_DIR/home"
  export RABBITMQ_CONF_ENV_FILE="$CLUSTER_DIR/rabbitmq-env.conf"
  export RABBITMQ_NODENAME; RABBITMQ_NODENAME=$(node_name "$name")
  export RABBITMQ_NODE_PORT=$port RABBITMQ_DIST_PORT=$((20000 + port))
  export RABBITMQ_CONFIG_FILE="$CLUSTER_DIR/$name/rabbitmq.conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$CLUSTER_DIR/$name/advanced.config"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$CLUSTER_DIR/enabled_plugins"
  export RABBITMQ_MNESIA_BASE="$CLUSTER_DIR/$name/mnesia"
  export RABBITMQ_LOG_BASE="$CLUSTER_DIR/$name/log"
  export RABBITMQ_PID_FILE="$CLUSTER_DIR/$name/beam.pid"
  # A VM that fails to boot leaves its crash dump there, not in the caller's
  # directory.
  export ERL_CRASH_DUMP="$CLUSTER_DIR/$name/log/erl_crash.dump"
  cd "$CLUSTER_DIR"
}
ctl() { # index, rabbitmqctl args...
  local i=$1; shift
  (node_env "$i"; exec "$RABBITMQ_BIN/rabbitmqctl" -q -n "$(node_name "${NODES[$i]}")" "$@")
}
# An Erlang expression evaluated on node 0, printed.
on_first() { ctl 0 eval "$1" 2>/dev/null; }

# The node's server process (rabbitmq-server, which waits for its Erlang VM
# and stops it on SIGTERM), if it lives: from its pid file, and only if that
# pid is still a rabbitmq-server (a stale file is ignored). Checked without
# the CLI, which boots an Erlang VM of its own for every call.
server_pid() { # index
  local pid; pid=$(cat "$CLUSTER_DIR/${NODES[$1]}/server.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q rabbitmq-server; then
    echo "$pid"
  fi
}
alive() { [ -n "$(server_pid "$1")" ]; }
running() { alive "$1" && answers "$(amqp_port "$1")"; }

ensure_installed() {
  if [ -x "$RABBITMQ_BIN/rabbitmq-server" ]; then return; fi
  say "rabbitmq-server is not installed: installing Debian's package (apt-get install rabbitmq-server)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  if [ ! -x "$RABBITMQ_BIN/rabbitmq-server" ]; then
    say "no $RABBITMQ_BIN/rabbitmq-server after the install (set RABBITMQ_BIN)"
    return 1
  fi
}

# The files every node reads, written once; the cookie is made once and kept.
prepare() {
  mkdir -p "$CLUSTER_DIR/home"
  chmod 700 "$CLUSTER_DIR/home"
  local cookie="$CLUSTER_DIR/home/.erlang.cookie"
  if [ ! -s "$cookie" ]; then
    (umask 077; head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F | head -c 20 >"$cookie")
    chmod 400 "$cookie"
  fi
  cat >"$CLUSTER_DIR/rabbitmq-env.conf" <<'EOF'
# The cluster's nodes and CLI: Erlang distribution on loopback only.
ERL_EPMD_ADDRESS=127.0.0.1
export ERL_EPMD_ADDRESS
ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"
export ERL_FLAGS
EOF
  echo '[].' >"$CLUSTER_DIR/enabled_plugins"
  local i
  for i in "${!NODES[@]}"; do
    local dir="$CLUSTER_DIR/${NODES[$i]}"
    mkdir -p "$dir/mnesia" "$dir/log"
    cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.local = 127.0.0.1:$(amqp_port "$i")
loopback_users.guest = true
cluster_partition_handling = pause_minority
EOF
    echo '[].' >"$dir/advanced.config"
  done
}

start_node() { # index
  local i=$1 name=${NODES[$1]} dir="$CLUSTER_DIR/${NODES[$1]}"
  if alive "$i"; then say "$(node_name "$name") already runs"; return; fi
  if answers "$(amqp_port "$i")"; then
    say "port $(amqp_port "$i") is taken by something else: not starting $(node_name "$name")"
    return 1
  fi
  say "starting $(node_name "$name") on 127.0.0.1:$(amqp_port "$i")"
  # Its own session, so a Ctrl-C or a closed terminal does not reach it.
  (node_env "$i"; exec setsid "$RABBITMQ_BIN/rabbitmq-server") \
    >>"$dir/log/server.out" 2>&1 </dev/null &
  echo $! >"$dir/server.pid"
}

# Waits until the node's AMQP port answers (its last step of booting).
await_node() { # index
  local i=$1 waited=0 node; node=$(node_name "${NODES[$1]}")
  until running "$i"; do
    if ! alive "$i"; then
      say "$node exited while starting; its logs: $CLUSTER_DIR/${NODES[$i]}/log"
      return 1
    fi
    waited=$((waited + 1))
    if [ "$waited" = 90 ]; then
      # Alive without its listener: its application was stopped.
      ctl "$i" start_app >/dev/null 2>&1 || true
    fi
    if [ "$waited" -ge 180 ]; then
      say "$node did not answer on $(amqp_port "$i") within 180 s; its logs: $CLUSTER_DIR/${NODES[$i]}/log"
      return 1
    fi
    sleep 1
  done
}

# Node i joins node 0's cluster, unless it is already a member.
join() { # index, node 0's members
  local i=$1 members=$2 first node
  first=$(node_name "${NODES[0]}")
  node=$(node_name "${NODES[$i]}")
  case "$members" in *"$node"*) return ;; esac
  say "joining $node to $first"
  local log="$CLUSTER_DIR/${NODES[$i]}/log/join.log"
  if ! { ctl "$i" stop_app && ctl "$i" reset && ctl "$i" join_cluster "$first" \
    && ctl "$i" start_app; } >>"$log" 2>&1; then
    say "$node could not join $first; see $log"
    return 1
  fi
}

running_count() { on_first "length(rabbit_nodes:all_running())." || true; }

start() {
  ensure_installed
  prepare
  local i
  # All three at once: a node that was not the last to stop waits at boot
  # for the others.
  for i in "${!NODES[@]}"; do start_node "$i"; done
  for i in "${!NODES[@]}"; do await_node "$i"; done
  local members
  members=$(on_first "rabbit_nodes:all()." || true)
  if [ -z "$members" ]; then
    # Never guess: joining resets the node, which would wipe a member's data.
    say "cannot read $(node_name "${NODES[0]}")'s members; run start again"
    return 1
  fi
  for i in 1 2; do join "$i" "$members"; done
  local tries=0
  until [ "$(running_count)" = 3 ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 60 ]; then
      say "the cluster does not show three running nodes:"
      ctl 0 cluster_status >&2 || true
      return 1
    fi
    sleep 1
  done
  say "three nodes running: rw1, rw2, rw3 @localhost on 127.0.0.1:5681-5683"
  echo "AMQP_URL=amqp://guest:guest@127.0.0.1:5681/%2f,127.0.0.1:5682,127.0.0.1:5683"
}

stop() {
  if [ ! -d "$CLUSTER_DIR" ]; then say "nothing to stop ($CLUSTER_DIR does not exist)"; return; fi
  local i pid waited
  for i in 2 1 0; do
    pid=$(server_pid "$i")
    [ -n "$pid" ] || continue
    say "stopping $(node_name "${NODES[$i]}")"
    # The server process stops its VM cleanly on SIGTERM.
    kill -TERM "$pid" 2>/dev/null || true
    waited=0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 60 ]; do sleep 1; waited=$((waited + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
      say "$(node_name "${NODES[$i]}") (pid $pid) did not stop within 60 s"
      return 1
    fi
    rm -f "$CLUSTER_DIR/${NODES[$i]}/server.pid"
  done
  say "stopped (data kept in $CLUSTER_DIR)"
}

status() {
  local i state
  for i in "${!NODES[@]}"; do
    if running "$i"; then state=running
    elif alive "$i"; then state="starting (or its application stopped)"
    else state=stopped; fi
    echo "$(node_name "${NODES[$i]}") 127.0.0.1:$(amqp_port "$i") $state"
  done
  if running 0; then
    echo "running as node 1 sees it: $(on_first "rabbit_nodes:all_running().")"
  fi
}

# The node leading a queue (of vhost /), as the first running node sees it.
leader() { # queue
  local i
  for i in "${!NODES[@]}"; do
    if running "$i"; then
      ctl "$i" list_queues -p / name leader --no-table-headers 2>/dev/null \
        | awk -v q="$1" '$1 == q { print $2 }'
      return
    fi
  done
  say "no node runs"
  return 1
}

# SIGKILL node N (1-3): its whole process group, as a crash would end it.
kill_node() { # 1..3
  case "${1:-}" in 1|2|3) ;; *) say "kill takes a node number, 1 to 3"; return 2 ;; esac
  local i=$(($1 - 1)) pid
  pid=$(server_pid "$i")
  if [ -z "$pid" ]; then say "$(node_name "${NODES[$i]}") does not run"; return 1; fi
  say "killing $(node_name "${NODES[$i]}") (SIGKILL to process group $pid)"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$CLUSTER_DIR/${NODES[$i]}/server.pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  wipe) stop; rm -rf "${CLUSTER_DIR:?}"; say "removed $CLUSTER_DIR" ;;
  leader) leader "${2:?usage: $0 leader QUEUE}" ;;
  kill) kill_node "${2:-}" ;;
  *) echo "usage: $0 start|status|stop|wipe|leader QUEUE|kill N" >&2; exit 2 ;;
esac
