#!/bin/bash
# Container health check without curl (debian:bookworm-slim has none): GET
# /healthz over bash's /dev/tcp and succeed on an HTTP 200 status line.
# The port is taken from FERRY_HTTP_ADDRESS (HOST:PORT) if set, else 9514;
# the request always goes to 127.0.0.1, so http.address must be 0.0.0.0:PORT
# or 127.0.0.1:PORT inside the container.
set -euo pipefail
address="${FERRY_HTTP_ADDRESS:-0.0.0.0:9514}"
port="${address##*:}"
path="${1:-/healthz}"
exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t 5 status <&3
exec 3<&-
case "$status" in
    "HTTP/1."?" 200"*) exit 0 ;;
    *) echo "unhealthy: ${status:-no answer}" >&2; exit 1 ;;
esac
