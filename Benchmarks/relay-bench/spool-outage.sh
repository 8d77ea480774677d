#!/usr/bin/env bash
# An edge with a spool receives 1.2 M lines (12x its default memory buffer) while its aggregator is not running,
# then the aggregator starts: prints what the edge held, how long the drain took, lines delivered and duplicated.
# usage: Benchmarks/relay-bench/spool-outage.sh   (needs .build/release/ferry and /tmp/relay-bench-bin/loadgen from relay-bench)
set -u
B=${FERRY:-.build/release/ferry}
D=/tmp/outage; rm -rf $D; mkdir -p $D
$B serve --listen 127.0.0.1:5901 --http 127.0.0.1:5902 --upstream ferry://127.0.0.1:5903 --spool-dir $D/edge --log-file $D/edge.log --receive-sockets 1 &
E=$!
sleep 1.5
/tmp/relay-bench-bin/loadgen 127.0.0.1 5901 1200000 60 100000 text 400 > /dev/null
sleep 1
curl -s localhost:5902/v1/status | python3 -c "import json,sys; d=json.load(sys.stdin); c=d['counters']; s=d['spool']; print('edge: received',c['received'],'dropped',c['dropped'],'spool logs',s['logs'],'bytes',s['bytes'],'spilling',s['spilling_shards'])"
$B serve --listen 127.0.0.1:5903 --http 127.0.0.1:5904 --upstream file:$D/out.log --log-file $D/agg.log --receive-sockets 1 &
A=$!
T0=$(date +%s)
for i in $(seq 1 120); do
  n=$(curl -s localhost:5902/v1/status | python3 -c "import json,sys; print(json.load(sys.stdin)['spool']['logs'])")
  [ "$n" = "0" ] && break; sleep 1
done
echo "drained in $(( $(date +%s) - T0 )) s"
wc -l < $D/out.log
sort $D/out.log | uniq -d | wc -l
curl -s localhost:5902/v1/status | python3 -c "import json,sys; d=json.load(sys.stdin); c=d['counters']; print('edge: received',c['received'],'forwarded',c['forwarded'],'dropped',c['dropped_by_reason'],'queued',c['queued'])"
grep -o "kernel_receive_drops[^,]*" <(curl -s localhost:5902/v1/status) | head -2
kill $E $A; wait
