#!/usr/bin/env bash
# pipeline-bench.sh: end-to-end throughput of `orderflow serve` (SQLite
# store) measured with `orderflow loadgen` on this machine.
#
#   scripts/pipeline-bench.sh RATE [RATE...]
#
# For each rate: starts serve on a fresh store, runs loadgen at RATE orders/s
# for DURATION (default 10s), prints `uptime` and loadgen's summary, then
# stops serve. Everything it starts is stopped on exit. Env:
#   OF         binary to use (default: build ./cmd/orderflow into $WORK/of)
#   DURATION   sending phase per rate (default 10s)
#   PROFILE=1  also save a 8 s CPU profile of serve, taken mid-run, to
#              $WORK/cpu-RATE.pprof (read it with `go tool pprof -top`)
#   SERVE_ARGS extra flags for serve; LOADGEN_ARGS extra flags for loadgen
#              (e.g. "--concurrency 256 --procs 1 --watch list")
# Besides loadgen's summary it prints each process's CPU seconds and, per
# decided order, their CPU and the SQLite writes and commits (from /metrics).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 RATE [RATE...]" >&2; exit 2; }
WORK=${WORK:-$(mktemp -d /tmp/pipeline-bench.XXXXXX)}
DURATION=${DURATION:-10s}
ADDR=127.0.0.1:28971
ADMIN=127.0.0.1:28972
if [ -z "${OF:-}" ]; then
	OF=$WORK/of
	(cd "$(dirname "$0")/.." && go build -o "$OF" ./cmd/orderflow)
fi
serve_pid=
cleanup() {
	if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT
for rate in "$@"; do
	rm -rf "$WORK/db"* && mkdir -p "$WORK/db"
	# shellcheck disable=SC2086
	"$OF" serve --store "sqlite://$WORK/db/of.db" --addr $ADDR --admin-addr $ADMIN --log-level warn ${SERVE_ARGS:-} 2>"$WORK/serve.log" &
	serve_pid=$!
	for _ in $(seq 100); do curl -fs "http://$ADDR/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
	echo "== rate $rate  $(date -u +%H:%M:%SZ)  $(uptime | sed 's/.*load/load/')"
	prof_pid=
	if [ "${PROFILE:-}" = 1 ]; then
		(sleep 2; curl -fs -o "$WORK/cpu-$rate.pprof" "http://$ADMIN/debug/pprof/profile?seconds=8") &
		prof_pid=$!
	fi
	t0=$(date +%s.%N)
	# shellcheck disable=SC2086
	"$OF" loadgen --url "http://$ADDR" --rate "$rate" --duration "$DURATION" --quiet --label-delay -1s --drain 30s ${LOADGEN_ARGS:-} >"$WORK/loadgen-$rate.txt" &
	lg_pid=$!
	lg_cpu=0
	while kill -0 "$lg_pid" 2>/dev/null; do # CPU seconds of loadgen, sampled until it exits
		lg_cpu=$(awk -v t="$(getconf CLK_TCK)" '{print ($14+$15)/t}' "/proc/$lg_pid/stat" 2>/dev/null || echo "$lg_cpu")
		sleep 0.2
	done
	wait "$lg_pid" || true
	t1=$(date +%s.%N)
	cat "$WORK/loadgen-$rate.txt"
	serve_cpu=$(awk -v t="$(getconf CLK_TCK)" '{print ($14+$15)/t}' "/proc/$serve_pid/stat")
	echo "cpu        serve ${serve_cpu}s  loadgen ≥${lg_cpu}s  in $(echo "$t1 - $t0" | bc)s wall"
	if [ -n "$prof_pid" ]; then wait "$prof_pid" || true; fi
	curl -fs "http://$ADMIN/metrics" >"$WORK/metrics-$rate.txt" 2>/dev/null || true
	# Per decided order: CPU of each process, and the store's writes and
	# commits (group commit: commits per order well under one under load).
	decided=$(awk '/^decided/ {print $2; exit}' "$WORK/loadgen-$rate.txt")
	writes=$(awk '/^orderflow_sqlite_writes_total/ {print $2}' "$WORK/metrics-$rate.txt")
	commits=$(awk '/^orderflow_sqlite_commits_total/ {print $2}' "$WORK/metrics-$rate.txt")
	if [ -n "$decided" ] && [ "$decided" -gt 0 ]; then
		awk -v d="$decided" -v s="$serve_cpu" -v l="$lg_cpu" -v w="${writes:-0}" -v c="${commits:-0}" 'BEGIN {
			printf "per order  serve %.3f ms CPU  loadgen %.3f ms CPU  sum %.3f ms", 1000*s/d, 1000*l/d, 1000*(s+l)/d
			if (w > 0) printf "  sqlite writes %.2f  commits %.3f", w/d, c/d
			printf "\n" }'
	fi
	cleanup; serve_pid=
done
echo "work dir: $WORK"
