#!/usr/bin/env bash
# Makes sure the services the integration tests talk to are running on
# loopback: PostgreSQL and Redis (started by this machine kind before a session,
# restarted here if they stopped) and etcd (installed from Debian's packages and
# started here, since nothing else starts it). Idempotent; safe to run twice.
set -euo pipefail

log() { printf 'services: %s\n' "$*" >&2; }

up() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_up() { # name host port
  for _ in $(seq 1 100); do up "$2" "$3" && return 0; sleep 0.1; done
  log "$1 did not come up on $2:$3"; return 1
}

if ! up 127.0.0.1 5432; then
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  wait_up PostgreSQL 127.0.0.1 5432
fi

if ! up 127.0.0.1 6379; then
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_up Redis 127.0.0.1 6379
fi

if ! up 127.0.0.1 2379; then
  if ! command -v etcd >/dev/null 2>&1; then
    log "installing etcd-server from Debian's packages"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
  fi
  log "starting etcd on 127.0.0.1:2379"
  datadir=$(mktemp -d /tmp/orderflow-etcd.XXXXXX)
  nohup etcd --name orderflow-test --data-dir "$datadir" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster orderflow-test=http://127.0.0.1:2380 \
    >"$datadir.log" 2>&1 &
  wait_up etcd 127.0.0.1 2379
fi
log "PostgreSQL 127.0.0.1:5432, Redis 127.0.0.1:6379, etcd 127.0.0.1:2379 are up"
