#!/usr/bin/env bash
# Regenerates docs/lab.md: runs every lab experiment on this machine, one
# after another, in a normal (not -race) build, and writes the Markdown
# report with the environment (Go version, GOMAXPROCS, CPU model, load) in
# its header. Takes a few minutes at most; pass --quick for a smoke run.
#
#   scripts/lab-report.sh            # full run  -> docs/lab.md
#   scripts/lab-report.sh --quick    # quick run -> docs/lab.md (say so when committing)
#
# Once cmd/orderflow wires lab.Main, `go run ./cmd/orderflow lab --markdown --all`
# prints the same report. The xsync comparison lives in bench/peers (its own
# module) and is not part of this report: see docs/benchmarks/lab.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
go run ./lab/cmd/labreport --markdown --all "$@" >"$tmp"
mv "$tmp" docs/lab.md
trap - EXIT
echo "wrote docs/lab.md"
