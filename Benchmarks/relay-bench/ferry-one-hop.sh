#!/usr/bin/env bash
# One Ferry as the relay for ../shared/bench/relay-bench: generator -> udp (IN) -> ferry -> udp:// (OUT).
# usage: ferry-one-hop.sh IN OUT   (FERRY=path/to/ferry, default .build/release/ferry;
#        SPOOL=1: with a disk spool in a fresh temporary directory, removed at the end;
#        FSYNC=interval|always|never: its spool.fsync policy (default interval);
#        RATE_LIMIT=N: each source held to N logs/s, burst N; ALLOW=CIDR: an allowlist;
#        ROUTES=3: three routes instead of one — every log to OUT, plus a severity route (warning
#        and worse) and a balanced pair (facility local0) that relay-bench's <14> lines never match:
#        the cost of the route decision, with the receive threads' direct route off;
#        ARGS='...': more `ferry serve` options, e.g. --receive-coalesce 0)
set -euo pipefail
in=$1 out=$2
ferry=${FERRY:-.build/release/ferry}
extra=()
if [[ ${SPOOL:-0} == 1 ]]; then
    spool=$(mktemp -d /tmp/ferry-bench-spool.XXXXXX)
    extra=(--spool-dir "$spool" --spool-fsync "${FSYNC:-interval}")
fi
if [[ -n ${RATE_LIMIT:-} ]]; then extra+=(--rate-limit "$RATE_LIMIT"); fi
if [[ -n ${ALLOW:-} ]]; then extra+=(--allow "$ALLOW"); fi
upstream=(--upstream "udp://127.0.0.1:$out")
if [[ ${ROUTES:-1} == 3 ]]; then
    config=$("$(dirname "$0")/three-routes.sh" "$out")
    upstream=(--config "$config")
fi
"$ferry" serve --listen "127.0.0.1:$in" "${upstream[@]}" --http 127.0.0.1:0 --log-level warning "${extra[@]}" ${ARGS:-} &
relay=$!
trap 'kill -TERM $relay 2>/dev/null; wait; [[ -n ${spool:-} ]] && rm -rf "$spool"; [[ -n ${config:-} ]] && rm -f "$config"' TERM INT
wait
