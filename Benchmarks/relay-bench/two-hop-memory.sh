#!/usr/bin/env bash
# Where the two-hop chain's memory goes: starts an aggregator and an edge as ferry-two-hop.sh does (both on CPU 1),
# prints VmHWM / RssAnon / RssFile of each at start and after COUNT lines of 60-400 bytes at RATE (0 = flat out),
# and the mappings of each over 1 MiB resident at the end.
# usage: two-hop-memory.sh [COUNT [RATE]]   (FERRY=path/to/ferry, default .build/release/ferry;
#        EDGE_ARGS='...' more `ferry serve` options for the edge; loadgen and sink are the ones relay-bench
#        compiles into /tmp/relay-bench-bin on its first run)
set -u
count=${1:-1000000} rate=${2:-0}
ferry=${FERRY:-.build/release/ferry}
bin=${BENCH_BIN:-/tmp/relay-bench-bin}
memory() { grep -E "VmHWM|RssAnon|RssFile" "/proc/$2/status" | tr -s ' \t\n' ' ' | sed "s/^/$1: /"; echo; }
mappings() { awk -v who="$1" '/^[0-9a-f]+-/ {map=$0} /^Rss:/ && $2 > 1024 {print who ": " $2 " KiB " map}' "/proc/$2/smaps"; }
sink_output=/tmp/two-hop-memory.sink
. "$(dirname "$0")/two-hop-processes.sh"
sleep 1.5   # as relay-bench waits
memory edge $edge; memory aggregator $aggregator
taskset -c 0 "$bin/loadgen" 127.0.0.1 "$in" "$count" 60 "$rate" text 400 >/dev/null
wait $sink
cat "$sink_output"
memory edge $edge; memory aggregator $aggregator
mappings edge $edge; mappings aggregator $aggregator
