# Sourced by two-hop-memory.sh and two-hop-mallocs.sh: starts relay-bench's sink on CPU 0 and the two-hop chain
# (aggregator -> udp:// sink, edge -> ferry:// aggregator) on CPU 1, each a process of its own so that the caller can
# read /proc or attach perf to it; sets $in (the edge's UDP port), $sink, $aggregator and $edge, and kills all three on
# exit. Needs $count, $ferry, $bin and $sink_output set, and takes EDGE_ARGS as ferry-two-hop.sh does.
freeport() { python3 -c 'import socket; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
in=$(freeport) out=$(freeport) hop=$(freeport)
taskset -c 0 "$bin/sink" "$out" "$count" 2000 60 text >"$sink_output" &
sink=$!
taskset -c 1 "$ferry" serve --instance aggregator --listen "127.0.0.1:$hop" --upstream "udp://127.0.0.1:$out" --http 127.0.0.1:0 --log-level error &
aggregator=$!
taskset -c 1 "$ferry" serve --instance edge --listen "127.0.0.1:$in" --upstream "ferry://127.0.0.1:$hop" --http 127.0.0.1:0 --log-level error ${EDGE_ARGS:-} &
edge=$!
trap 'kill $edge $aggregator $sink 2>/dev/null' EXIT
