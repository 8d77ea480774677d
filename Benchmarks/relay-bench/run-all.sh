#!/usr/bin/env bash
# Every relay-bench block of README "Performance", in one go, Ferry beside the
# C reference relay. Needs a release build (swift build -c release --product ferry)
# and ../shared/bench/relay-bench (it builds the C programs into /tmp/relay-bench-bin).
# usage: Benchmarks/relay-bench/run-all.sh [RELAY_BENCH]
set -euo pipefail
bench=${1:-../shared/bench/relay-bench}
ferry=".build/release/ferry serve --listen 127.0.0.1:{IN} --upstream udp://127.0.0.1:{OUT} --http 127.0.0.1:0"
c="/tmp/relay-bench-bin/relay_limit {IN} {OUT} 1"
block() { echo; echo "## $1"; shift; "$bench" "$@" | tail -n +2; }

echo "relay              delivered_pps loss_pct    p50_us    p99_us    rss_kib cpu_ns_per_dg"
# ferry-no-gso: one message per datagram, as when consecutive datagrams differ in length.
block "200 B flat out, median of 3" --runs 3 c-reference="$c" ferry="$ferry" ferry-2-sockets="$ferry --receive-sockets 2" \
  ferry-no-gso="$ferry --udp-segmentation false"
block "200 B at 100,000/s, median of 3" --runs 3 --rate 100000 c-reference="$c" ferry="$ferry"
for size in 64 1400 8192; do
  block "$size B flat out" --runs 1 --size "$size" c-reference="$c" ferry="$ferry" ferry-2-sockets="$ferry --receive-sockets 2" \
    ferry-no-gso="$ferry --udp-segmentation false"
done
block "200 B --text flat out" --runs 1 --text c-reference="$c" ferry="$ferry" ferry-no-gso="$ferry --udp-segmentation false"
block "ferry:// edge -> aggregator -> udp:// at 50,000/s (both hops on the relay core)" --runs 1 --rate 50000 \
  two-hop="Benchmarks/relay-bench/ferry-two-hop.sh {IN} {OUT}"
