#!/usr/bin/env bash
# Two Ferry processes as one "relay" for ../shared/bench/relay-bench:
#   generator -> edge (udp on IN) -> ferry:// -> aggregator -> udp:// -> sink (OUT)
# usage: ferry-two-hop.sh IN OUT   (FERRY=path/to/ferry, default .build/release/ferry;
#        SPOOL=1: each hop with a disk spool in a fresh temporary directory;
#        FSYNC=interval|always|never: their spool.fsync policy (default interval);
#        ROUTES=3: the aggregator with three routes (every log to OUT, a severity route and a balanced
#        pair that relay-bench's <14> lines never match), as ferry-one-hop.sh has them;
#        KEYED=1: both hops with one auth.key-file, so every frame and ack carries a MAC;
#        RATE_LIMIT=N: the edge holds each source to N logs/s, burst N;
#        EDGE_ARGS='...': more `ferry serve` options for the edge, e.g. --frame-max-bytes 8000)
# relay-bench sums CPU time and peak RSS of this script's children: both hops.
set -euo pipefail
in=$1 out=$2
ferry=${FERRY:-.build/release/ferry}
hop=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
edge_spool=() aggregator_spool=() keys=() limit=()
if [[ ${KEYED:-0} == 1 ]]; then
    keyfile=$(mktemp /tmp/ferry-bench-key.XXXXXX)   # mktemp makes it mode 600
    openssl rand -hex 32 > "$keyfile"
    keys=(--auth-key-file "$keyfile")
fi
if [[ -n ${RATE_LIMIT:-} ]]; then limit=(--rate-limit "$RATE_LIMIT"); fi
if [[ ${SPOOL:-0} == 1 ]]; then
    spool=$(mktemp -d /tmp/ferry-bench-spool.XXXXXX)
    edge_spool=(--spool-dir "$spool/edge" --spool-fsync "${FSYNC:-interval}")
    aggregator_spool=(--spool-dir "$spool/aggregator" --spool-fsync "${FSYNC:-interval}")
fi
aggregator_upstream=(--upstream "udp://127.0.0.1:$out")
if [[ ${ROUTES:-1} == 3 ]]; then
    config=$("$(dirname "$0")/three-routes.sh" "$out")
    aggregator_upstream=(--config "$config")
fi
"$ferry" serve --instance aggregator --listen "127.0.0.1:$hop" "${aggregator_upstream[@]}" --http 127.0.0.1:0 --log-level warning "${aggregator_spool[@]}" "${keys[@]}" &
aggregator=$!
"$ferry" serve --instance edge --listen "127.0.0.1:$in" --upstream "ferry://127.0.0.1:$hop" --http 127.0.0.1:0 --log-level warning "${edge_spool[@]}" "${keys[@]}" "${limit[@]}" ${EDGE_ARGS:-} &
edge=$!
trap 'kill -TERM $edge $aggregator 2>/dev/null; wait; [[ -n ${spool:-} ]] && rm -rf "$spool"; [[ -n ${keyfile:-} ]] && rm -f "$keyfile"; [[ -n ${config:-} ]] && rm -f "$config"' TERM INT
wait
