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
freeport() { python3 -c 'import socket; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
in=$(freeport) out=$(freeport) hop=$(freeport)
memory() { grep -E "VmHWM|RssAnon|RssFile" "/proc/$2/status" | tr -s ' \t\n' ' ' | sed "s/^/$1: /"; echo; }
mappings() { awk -v who="$1" '/^[0-9a-f]+-/ {map=$0} /^Rss:/ && $2 > 1024 {print who ": " $2 " KiB " map}' "/proc/$2/smaps"; }

taskset -c 0 "$bin/sink" "$out" "$count" 2000 60 text >/tmp/two-hop-memory.sink &
sink=$!
taskset -c 1 "$ferry" serve --instance aggregator --listen "127.0.0.1:$hop" --upstream "udp://127.0.0.1:$out" --http 127.0.0.1:0 --log-level error &
aggregator=$!
taskset -c 1 "$ferry" serve --instance edge --listen "127.0.0.1:$in" --upstream "ferry://127.0.0.1:$hop" --http 127.0.0.1:0 --log-level error ${EDGE_ARGS:-} &
edge=$!
trap 'kill $edge $aggregator $sink 2>/dev/null' EXIT
sleep 1.5   # as relay-bench waits
memory edge $edge; memory aggregator $aggregator
taskset -c 0 "$bin/loadgen" 127.0.0.1 "$in" "$count" 60 "$rate" text 400 >/dev/null
wait $sink
cat /tmp/two-hop-memory.sink
memory edge $edge; memory aggregator $aggregator
mappings edge $edge; mappings aggregator $aggregator
