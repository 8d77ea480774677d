#!/usr/bin/env bash
# mallocs per log of each hop of the two-hop chain (edge -> ferry:// -> aggregator -> udp://, both on CPU 1), counted
# by a uprobe on libc's malloc: COUNT lines of 60-400 bytes at RATE (0 = flat out). Needs perf (Debian's linux-perf)
# and root; adds the probe once (`perf probe -x LIBC --add malloc`).
# usage: two-hop-mallocs.sh [COUNT [RATE]]   (FERRY=path/to/ferry, default .build/release/ferry; a static build,
#        --static-swift-stdlib, counts the Swift runtime's mallocs too, as they go through the same libc)
set -u
count=${1:-500000} rate=${2:-100000}
ferry=${FERRY:-.build/release/ferry}
bin=${BENCH_BIN:-/tmp/relay-bench-bin}
libc=$(ldconfig -p | awk '/libc.so.6 .*x86-64/ {print $NF; exit}')
perf list 2>/dev/null | grep -q probe_libc:malloc || perf probe -q -x "$libc" --add malloc || exit 1
work=$(mktemp -d)
sink_output=$work/sink
. "$(dirname "$0")/two-hop-processes.sh"
trap 'kill $edge $aggregator $sink 2>/dev/null; rm -rf "$work"' EXIT
sleep 2   # past start-up
perf stat -x, -e probe_libc:malloc -p $edge -o "$work/edge" & counting_edge=$!
perf stat -x, -e probe_libc:malloc -p $aggregator -o "$work/aggregator" & counting_aggregator=$!
sleep 0.5
taskset -c 0 "$bin/loadgen" 127.0.0.1 "$in" "$count" 60 "$rate" text 400 >/dev/null
wait $sink
kill -INT $counting_edge $counting_aggregator; wait $counting_edge $counting_aggregator 2>/dev/null
cat "$sink_output"
delivered=$(sed -n 's/.*unique=\([0-9]*\).*/\1/p' "$sink_output")
for hop in edge aggregator; do
  mallocs=$(awk -F, '/probe_libc:malloc/ {print $1}' "$work/$hop")
  awk -v h=$hop -v m="$mallocs" -v d="$delivered" 'BEGIN {printf "%s: %d mallocs, %.3f per delivered log\n", h, m, (d > 0 ? m / d : 0)}'
done
