#!/usr/bin/env bash
# Two Ferry processes as one "relay" for ../shared/bench/relay-bench:
#   generator -> edge (udp on IN) -> ferry:// -> aggregator -> udp:// -> sink (OUT)
# usage: ferry-two-hop.sh IN OUT   (FERRY=path/to/ferry, default .build/release/ferry)
# relay-bench sums CPU time and peak RSS of this script's children: both hops.
set -euo pipefail
in=$1 out=$2
ferry=${FERRY:-.build/release/ferry}
hop=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$ferry" serve --instance aggregator --listen "127.0.0.1:$hop" --upstream "udp://127.0.0.1:$out" --http 127.0.0.1:0 --log-level warning &
aggregator=$!
"$ferry" serve --instance edge --listen "127.0.0.1:$in" --upstream "ferry://127.0.0.1:$hop" --http 127.0.0.1:0 --log-level warning &
edge=$!
trap 'kill -TERM $edge $aggregator 2>/dev/null; wait' TERM INT
wait
