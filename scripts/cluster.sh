#!/usr/bin/env bash
# Runs the distributed topology on loopback: 2 `orderflow order` and 2
# `orderflow risk` replicas against local PostgreSQL (a dedicated database),
# Redis and etcd (scripts/services.sh starts what is not running).
#
#   scripts/cluster.sh start    build, create the database, start 4 processes
#   scripts/cluster.sh stop     SIGTERM each process (by its pid file), wait
#   scripts/cluster.sh status   which processes run, and each /readyz
#
# Environment: RUN_DIR (default /tmp/orderflow-cluster: binary, logs, pids),
# CLUSTER_DB (orderflow_cluster), REDIS_URL (redis://127.0.0.1:6379/0),
# LOCK_URL (etcd://127.0.0.1:2379), BASE_PORT (18080: order replicas on
# BASE_PORT+0/+1, risk on +10/+11, admin listeners on +100…), SECRET.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
run=${RUN_DIR:-/tmp/orderflow-cluster}
db=${CLUSTER_DB:-orderflow_cluster}
redis_url=${REDIS_URL:-redis://127.0.0.1:6379/0}
lock_url=${LOCK_URL:-etcd://127.0.0.1:2379}
base=${BASE_PORT:-18080}
secret=${SECRET:-cluster-secret-change-me}
store="postgres://postgres@127.0.0.1:5432/$db?sslmode=disable"

log() { printf 'cluster: %s\n' "$*" >&2; }

order_urls() { echo "http://127.0.0.1:$base,http://127.0.0.1:$((base + 1))"; }

start_one() { # name args...
  local name=$1; shift
  if [[ -f $run/$name.pid ]] && kill -0 "$(cat "$run/$name.pid")" 2>/dev/null; then
    log "$name already running (pid $(cat "$run/$name.pid"))"; return 0
  fi
  ORDERFLOW_CALLBACK_SECRET=$secret nohup "$run/orderflow" "$@" >>"$run/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
  log "$name started (pid $!, log $run/$name.log)"
}

start() {
  "$here/scripts/services.sh"
  mkdir -p "$run"
  (cd "$here" && go build -o "$run/orderflow" ./cmd/orderflow)
  if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db"
    log "created database $db"
  fi
  for i in 0 1; do
    start_one "order$i" order --store "$store" --bus "$redis_url" --lock "$lock_url" --lock-prefix "orderflow-cluster/" \
      --addr "127.0.0.1:$((base + i))" --admin-addr "127.0.0.1:$((base + 100 + i))" --log-level warn
  done
  for i in 0 1; do
    start_one "risk$i" risk --store "$store" --bus "$redis_url" --order-url "$(order_urls)" \
      --consumer "risk$i" --addr "127.0.0.1:$((base + 10 + i))" --admin-addr "127.0.0.1:$((base + 110 + i))" --log-level warn
  done
  for p in $base $((base + 1)) $((base + 10)) $((base + 11)); do
    for _ in $(seq 1 100); do
      curl -fsS "http://127.0.0.1:$p/readyz" >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
  status
}

stop() {
  for name in order0 order1 risk0 risk1; do
    local f=$run/$name.pid
    [[ -f $f ]] || continue
    local pid; pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && { log "$name did not stop in 15 s, SIGKILL"; kill -KILL "$pid"; }
      log "$name stopped"
    fi
    rm -f "$f"
  done
}

status() {
  local i=0
  for name in order0 order1 risk0 risk1; do
    local port
    case $name in order*) port=$((base + ${name#order})) ;; risk*) port=$((base + 10 + ${name#risk})) ;; esac
    local f=$run/$name.pid state=stopped
    if [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null; then state="running pid $(cat "$f")"; fi
    printf '%-7s %-18s http://127.0.0.1:%s  readyz: %s\n' "$name" "$state" "$port" \
      "$(curl -sS -m 2 "http://127.0.0.1:$port/readyz" 2>/dev/null || echo -)"
    i=$((i + 1))
  done
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
