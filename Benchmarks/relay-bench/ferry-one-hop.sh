#!/usr/bin/env bash
# One Ferry as the relay for ../shared/bench/relay-bench: generator -> udp (IN) -> ferry -> udp:// (OUT).
# usage: ferry-one-hop.sh IN OUT   (FERRY=path/to/ferry, default .build/release/ferry;
#        SPOOL=1: with a disk spool in a fresh temporary directory, removed at the end;
#        RATE_LIMIT=N: each source held to N logs/s, burst N; ALLOW=CIDR: an allowlist)
set -euo pipefail
in=$1 out=$2
ferry=${FERRY:-.build/release/ferry}
extra=()
if [[ ${SPOOL:-0} == 1 ]]; then
    spool=$(mktemp -d /tmp/ferry-bench-spool.XXXXXX)
    extra=(--spool-dir "$spool")
fi
if [[ -n ${RATE_LIMIT:-} ]]; then extra+=(--rate-limit "$RATE_LIMIT"); fi
if [[ -n ${ALLOW:-} ]]; then extra+=(--allow "$ALLOW"); fi
"$ferry" serve --listen "127.0.0.1:$in" --upstream "udp://127.0.0.1:$out" --http 127.0.0.1:0 --log-level warning "${extra[@]}" &
relay=$!
trap 'kill -TERM $relay 2>/dev/null; wait; [[ -n ${spool:-} ]] && rm -rf "$spool"' TERM INT
wait
