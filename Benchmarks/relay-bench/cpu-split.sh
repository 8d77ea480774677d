#!/usr/bin/env bash
# Where a relay's CPU goes: one run of COUNT printable lines of 60-400 bytes (flat out, or RATE/s) through the relay
# CMD (relay-bench's {IN}/{OUT} placeholders; relay on CPU 1, loadgen and sink on CPU 0, as relay-bench runs them),
# then the relay's (and its children's) user and kernel CPU time per delivered datagram, from /proc/PID/stat.
# relay-bench prints their sum; the split shows how much of it a relay's own code can still change.
# usage: cpu-split.sh NAME CMD...   (COUNT=1000000, RATE=0; BENCH_BIN: relay-bench's compiled loadgen and sink,
#        default /tmp/relay-bench-bin, made by relay-bench's first run)
# e.g.   cpu-split.sh c /tmp/relay-bench-bin/relay_limit {IN} {OUT} 1
#        cpu-split.sh ferry .build/release/ferry serve --listen 127.0.0.1:{IN} --upstream udp://127.0.0.1:{OUT} --http 127.0.0.1:0 --log-level warning
set -euo pipefail
bin=${BENCH_BIN:-/tmp/relay-bench-bin}
count=${COUNT:-1000000} rate=${RATE:-0}
name=$1
shift
freeport() { python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
in=$(freeport) out=$(freeport)
command="$*"
command=${command//\{IN\}/$in}
command=${command//\{OUT\}/$out}
# user and system clock ticks of a process and its children
ticks() { for p in $1 $(pgrep -P "$1"); do awk '{print $14, $15}' "/proc/$p/stat" 2>/dev/null; done | awk '{u += $1; s += $2} END {print u + 0, s + 0}'; }
sink_output=$(mktemp /tmp/cpu-split.XXXXXX)
taskset -c 0 "$bin/sink" "$out" "$count" 1000 120 text >"$sink_output" &
sink=$!
taskset -c 1 bash -c "exec $command" >/dev/null 2>&1 &
relay=$!
sleep 1.5   # as relay-bench waits
read -r user0 system0 < <(ticks $relay)
taskset -c 0 "$bin/loadgen" 127.0.0.1 "$in" "$count" 60 "$rate" text 400 >/dev/null
wait $sink
read -r user1 system1 < <(ticks $relay)
kill $relay 2>/dev/null || true
sleep 0.3
kill -9 $relay 2>/dev/null || true
wait $relay 2>/dev/null || true
unique=$(grep -o 'unique=[0-9]*' "$sink_output" | cut -d= -f2)
delivered=$(grep -o 'rate_pps=[0-9]*' "$sink_output" | cut -d= -f2)
rm -f "$sink_output"
awk -v name="$name" -v u="$unique" -v r="$delivered" -v hz="$(getconf CLK_TCK)" \
    -v user=$((user1 - user0)) -v kernel=$((system1 - system0)) \
    'BEGIN { printf "%-12s delivered_pps=%d unique=%d user_us=%.2f kernel_us=%.2f total_us=%.2f\n", name, r, u, user / hz * 1e6 / u, kernel / hz * 1e6 / u, (user + kernel) / hz * 1e6 / u }'
