#!/usr/bin/env bash
# Two Ferry processes as one "relay" for ../shared/bench/relay-bench:
#   generator -> edge (udp on IN) -> ferry:// -> aggregator -> udp:// -> sink (OUT)
# usage: ferry-two-hop.sh IN OUT   (FERRY=path/to/ferry, default .build/release/ferry;
#        SPOOL=1: each hop with a disk spool in a fresh temporary directory)
# relay-bench sums CPU time and peak RSS of this script's children: both hops.
set -euo pipefail
in=$1 out=$2
ferry=${FERRY:-.build/release/ferry}
hop=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
edge_spool=() aggregator_spool=()
if [[ ${SPOOL:-0} == 1 ]]; then
    spool=$(mktemp -d /tmp/ferry-bench-spool.XXXXXX)
    edge_spool=(--spool-dir "$spool/edge") aggregator_spool=(--spool-dir "$spool/aggregator")
fi
"$ferry" serve --instance aggregator --listen "127.0.0.1:$hop" --upstream "udp://127.0.0.1:$out" --http 127.0.0.1:0 --log-level warning "${aggregator_spool[@]}" &
aggregator=$!
"$ferry" serve --instance edge --listen "127.0.0.1:$in" --upstream "ferry://127.0.0.1:$hop" --http 127.0.0.1:0 --log-level warning "${edge_spool[@]}" &
edge=$!
trap 'kill -TERM $edge $aggregator 2>/dev/null; wait; [[ -n ${spool:-} ]] && rm -rf "$spool"' TERM INT
wait
