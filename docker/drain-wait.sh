#!/bin/bash
# ferry-drain-wait SETTLE MAX: a preStop hook that lets a Ferry empty its
# spool before Kubernetes sends SIGTERM. It sleeps SETTLE seconds (the pod is
# already out of the Service's endpoints; kube-proxy on every node needs a
# moment to apply that and delete the pod's UDP conntrack entries), then asks
# GET /v1/status once a second until the spool holds no undelivered log
# (`spool.logs` 0; without a spool, `queue.depth_logs` 0), for at most MAX
# seconds. Ferry keeps forwarding meanwhile; what is still there after MAX
# (an upstream that is down) stays in the spool for the next start on the
# same volume. Always exits 0: a preStop hook's failure would not stop the
# SIGTERM anyway, and the last line says what was left.
# No curl in debian:bookworm-slim: HTTP over bash's /dev/tcp, as healthcheck.sh.
set -uo pipefail
settle="${1:-5}"
max="${2:-100}"
address="${FERRY_HTTP_ADDRESS:-0.0.0.0:9514}"
port="${address##*:}"

# Prints the undelivered logs the status reports, or nothing if it cannot tell.
undelivered() {
    local body
    exec 3<>"/dev/tcp/127.0.0.1/${port}" || return
    printf 'GET /v1/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
    body="$(timeout 5 cat <&3)"
    exec 3<&-
    body="${body//[[:space:]]/}"
    if [[ "$body" == *'"spool":{'* ]]; then
        body="${body#*\"spool\":\{}"
        [[ "$body" =~ \"logs\":([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
    elif [[ "$body" =~ \"depth_logs\":([0-9]+) ]]; then
        echo "${BASH_REMATCH[1]}"
    fi
}

sleep "$settle"
left=""
for ((waited = 0; waited < max; waited++)); do
    left="$(undelivered 2>/dev/null)"
    if [[ "$left" == "0" ]]; then
        echo "ferry-drain-wait: spool empty"
        exit 0
    fi
    sleep 1
done
echo "ferry-drain-wait: gave up after ${max}s with ${left:-an unknown number of} logs undelivered (kept in the spool)" >&2
exit 0
