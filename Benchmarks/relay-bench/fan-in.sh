#!/usr/bin/env bash
# One aggregator fed by several edges over ferry:// (the sizing guide's figures):
#   N x (loadgen -> edge) -> ferry:// -> aggregator (pinned to CPU 1) -> udp:// -> sink
# usage: fan-in.sh EDGES RATE_PER_EDGE COUNT_PER_EDGE   (FERRY=path/to/ferry, default .build/release/ferry;
#        BENCH_BIN: where ../shared/bench/relay-bench built loadgen and sink, default /tmp/relay-bench-bin;
#        KEYED=1: every hop with one auth.key-file; AGG_SOCKETS=N: the aggregator's receive.sockets, and the
#        datagrams each of its sockets read are printed: each edge loop's socket hashes to one of them)
# Prints the aggregator's CPU per log (user+system from /proc), what the sink received, and the edges' CPU per log.
set -euo pipefail
edges=$1 rate=$2 count=$3
ferry=${FERRY:-.build/release/ferry}
bin=${BENCH_BIN:-/tmp/relay-bench-bin}
port() { python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }   # clock ticks, user + system
keys=()
if [[ ${KEYED:-0} == 1 ]]; then
    keyfile=$(mktemp /tmp/ferry-fan-in-key.XXXXXX); openssl rand -hex 32 > "$keyfile"; keys=(--auth-key-file "$keyfile")
fi
tcpport() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sinkport=$(port) aggport=$(port) agghttp=$(tcpport)
pids=()
cleanup() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; [[ -n ${keyfile:-} ]] && rm -f "$keyfile"; }
trap cleanup EXIT
total=$((edges * count))
"$bin/sink" "$sinkport" "$total" 3000 600 text > /tmp/fan-in-sink.out &
sink=$!
taskset -c 1 "$ferry" serve --instance aggregator --listen "127.0.0.1:$aggport" --upstream "udp://127.0.0.1:$sinkport" \
    --http "127.0.0.1:$agghttp" --log-level warning --receive-sockets "${AGG_SOCKETS:-1}" "${keys[@]}" &
aggregator=$!; pids+=("$aggregator")
edgeports=()
for _ in $(seq "$edges"); do
    p=$(port); edgeports+=("$p")
    taskset -c 0 "$ferry" serve --instance "edge-$p" --listen "127.0.0.1:$p" --upstream "ferry://127.0.0.1:$aggport" \
        --http 127.0.0.1:0 --log-level warning "${keys[@]}" &
    pids+=("$!")
done
sleep 1.5
edgecpu0=0; for pid in "${pids[@]:1}"; do edgecpu0=$((edgecpu0 + $(cpu "$pid"))); done
aggcpu0=$(cpu "$aggregator")
gens=()
for p in "${edgeports[@]}"; do taskset -c 0 "$bin/loadgen" 127.0.0.1 "$p" "$count" 60 "$rate" text 400 > /dev/null & gens+=("$!"); done
wait "${gens[@]}"
wait "$sink" || true
aggcpu1=$(cpu "$aggregator")
edgecpu1=0; for pid in "${pids[@]:1}"; do edgecpu1=$((edgecpu1 + $(cpu "$pid"))); done
received=$(grep -o 'received=[0-9]*' /tmp/fan-in-sink.out | head -1 | cut -d= -f2)
hz=$(getconf CLK_TCK)
python3 - "$edges" "$rate" "$total" "${received:-0}" "$((aggcpu1 - aggcpu0))" "$((edgecpu1 - edgecpu0))" "$hz" <<'PY'
import sys
edges, rate, total, received, agg, edge, hz = map(int, sys.argv[1:])
ns = lambda ticks: ticks / hz * 1e9 / max(received, 1)
print(f"edges={edges} offered={edges * rate}/s sent={total} received={received} lost={100 * (total - received) / total:.2f}% "
      f"aggregator={ns(agg):.0f} ns/log (~{1e9 / max(ns(agg), 1):,.0f} logs/s per core) edges={ns(edge):.0f} ns/log")
PY
if [[ ${AGG_SOCKETS:-1} != 1 ]]; then
    echo "datagrams (frames) each aggregator receive socket read:"
    curl -s "127.0.0.1:$agghttp/metrics" | grep '^ferry_udp_datagrams_received_total' || echo "(no metrics)"
fi
