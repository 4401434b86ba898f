#!/usr/bin/env bash
# Makes PostgreSQL and RabbitMQ answer on localhost for development, tests and CI:
# uses them if they already answer, else starts installed ones, else installs them
# from Debian's packages (needs root) and starts them.
#
# Development only: a PostgreSQL installed here is opened to the `postgres` user on
# 127.0.0.1 without a password (trust), which is what DATABASE_URL's default expects.
set -euo pipefail

PG_PORT=${PG_PORT:-5432}
AMQP_PORT=${AMQP_PORT:-5672}

say() { echo "services: $*" >&2; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { # port, name, seconds
  for _ in $(seq 1 "$3"); do answers "$1" && return 0; sleep 1; done
  say "$2 did not answer on port $1 within $3 s"; return 1
}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

postgres_up() {
  if answers "$PG_PORT"; then say "PostgreSQL answers on $PG_PORT"; return; fi
  if ! command -v pg_ctlcluster >/dev/null; then
    say "installing PostgreSQL from Debian's packages"
    apt_install postgresql
    local version; version=$(ls /etc/postgresql | sort -n | tail -1)
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    # Development trust for the postgres user over TCP on loopback only.
    as_root sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
  fi
  local version; version=$(ls /etc/postgresql | sort -n | tail -1)
  say "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for "$PG_PORT" PostgreSQL 60
}

rabbitmq_up() {
  if answers "$AMQP_PORT"; then say "RabbitMQ answers on $AMQP_PORT"; return; fi
  if ! command -v rabbitmq-server >/dev/null; then
    say "installing RabbitMQ from Debian's packages"
    apt_install rabbitmq-server
  fi
  # A node whose application was stopped (`rabbitmqctl stop_app`, as an
  # interrupted `soak --restart-every` can leave it) only needs start_app.
  if command -v rabbitmqctl >/dev/null && as_root timeout 60 rabbitmqctl start_app >/dev/null 2>&1 \
    && wait_for "$AMQP_PORT" RabbitMQ 30; then
    say "started RabbitMQ's stopped application"
    return
  fi
  say "starting RabbitMQ"
  as_root rabbitmq-server -detached || true
  wait_for "$AMQP_PORT" RabbitMQ 120
}

postgres_up
rabbitmq_up
