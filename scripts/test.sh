#!/usr/bin/env bash
# The project's one test command (README, .ci/run): starts what the tests need,
# then runs every gate CI runs. Integration tests FAIL when CI=true and a
# service is missing; on a laptop without them they skip, loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2

scripts/services.sh || [ "${CI:-}" != "true" ]

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'; git ls-files --others --exclude-standard '*.go'))
if [ -n "$unformatted" ]; then echo "not gofmt'ed:"; echo "$unformatted"; exit 1; fi

echo "== go vet"
go vet ./...
(cd bench/peers && go vet ./...)

echo "== staticcheck"
go run "$STATICCHECK" ./...
(cd bench/peers && go run "$STATICCHECK" ./...)

echo "== go test -race"
# The cluster fault test at the size issue #5 asks for (docs/operations.md):
# 20,000 orders, a risk and an order replica killed, Redis restarted empty.
ORDERFLOW_CLUSTER_ORDERS=${ORDERFLOW_CLUSTER_ORDERS:-20000} go test -race -count=1 -timeout 20m ./...
(cd bench/peers && go test -count=1 -timeout 10m ./...)
