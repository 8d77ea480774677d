#!/usr/bin/env bash
# README "Everything on": every feature of the data path on and off, one hop and two hops, beside the C relay and
# the peers' two-hop chains, in ONE relay-bench invocation per load (so the rows compare), on printable lines of
# 60-400 bytes. Needs a release build (swift build -c release --product ferry); Fluent Bit's acked forward chain
# is added when its binary exists (FLUENT_BIT, default /tmp/fb/build/bin/fluent-bit: ../shared/bench/peers/build-fluent-bit.sh).
# usage: Benchmarks/relay-bench/everything-on.sh [RUNS] [RELAY_BENCH]     (~8 min per load at RUNS=3)
#        LOADS="100000 0" (logs/s offered; 0 = flat out), COUNT=500000 per row
set -euo pipefail
runs=${1:-3}
bench=${2:-../shared/bench/relay-bench}
peers=$(dirname "$bench")/peers
one="Benchmarks/relay-bench/ferry-one-hop.sh {IN} {OUT}"
two="Benchmarks/relay-bench/ferry-two-hop.sh {IN} {OUT}"
limits="RATE_LIMIT=10000000 ALLOW=127.0.0.0/8"
rows=(
    c-hop="/tmp/relay-bench-bin/relay_limit {IN} {OUT} 1"
    1hop="$one"
    1hop-spool-interval="env SPOOL=1 FSYNC=interval $one"
    1hop-spool-always="env SPOOL=1 FSYNC=always $one"
    1hop-spool-never="env SPOOL=1 FSYNC=never $one"
    1hop-limits="env $limits $one"
    1hop-3-routes="env ROUTES=3 $one"
    1hop-all="env SPOOL=1 $limits ROUTES=3 $one"
    2hop="$two"
    2hop-spool-interval="env SPOOL=1 FSYNC=interval $two"
    2hop-spool-always="env SPOOL=1 FSYNC=always $two"
    2hop-spool-never="env SPOOL=1 FSYNC=never $two"
    2hop-keyed="env KEYED=1 $two"
    2hop-limits="env RATE_LIMIT=10000000 $two"
    2hop-3-routes="env ROUTES=3 $two"
    2hop-all="env SPOOL=1 KEYED=1 RATE_LIMIT=10000000 ROUTES=3 $two"
    rsyslog-tcp-2hop="$peers/rsyslog-two-hop tcp {IN} {OUT}"
)
fluent_bit=${FLUENT_BIT:-/tmp/fb/build/bin/fluent-bit}
if [[ -x $fluent_bit ]]; then rows+=(fluent-bit-ack-2hop="env FLUENT_BIT=$fluent_bit $peers/fluent-bit-two-hop {IN} {OUT}"); fi
for rate in ${LOADS:-100000 0}; do
    echo
    echo "## ${rate/#0/flat out} logs/s offered, ${COUNT:-500000} logs per row, median of $runs"
    "$bench" --runs "$runs" --text --size 60 --max-size 400 --count "${COUNT:-500000}" --rate "$rate" "${rows[@]}"
done
