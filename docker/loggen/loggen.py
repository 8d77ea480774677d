"""Demo log generator for docker/docker-compose.yml (service "loggen").

Sends RFC 5424 syslog lines as UDP datagrams to Ferry, LOGGEN_RATE per second,
forever (or LOGGEN_COUNT datagrams). Standard library only, so the stock
python image runs it as is:  python3 loggen.py
Environment: LOGGEN_TARGET (HOST:PORT, default edge:5514), LOGGEN_RATE (default
20), LOGGEN_COUNT (default 0 = no end).
"""
import os
import socket
import sys
import time

target = os.environ.get("LOGGEN_TARGET", "edge:5514")
host, _, port = target.rpartition(":")
rate = float(os.environ.get("LOGGEN_RATE", "20"))
count = int(os.environ.get("LOGGEN_COUNT", "0"))
levels = ["<14>", "<14>", "<14>", "<12>", "<11>"]  # user.info x3, user.warning, user.err

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print(f"loggen: {rate:g} logs/s to {host}:{port}", flush=True)
sent = 0
next_send = time.monotonic()
while count == 0 or sent < count:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    line = f"{levels[sent % len(levels)]}1 {stamp} loggen demo {os.getpid()} - - demo log line {sent}"
    try:
        sock.sendto(line.encode(), (host, int(port)))
        sent += 1
    except OSError as error:  # edge not up yet (name not resolvable, no route)
        print(f"loggen: {error}; retrying", file=sys.stderr, flush=True)
        time.sleep(1)
        continue
    next_send += 1 / rate
    time.sleep(max(0.0, next_send - time.monotonic()))
print(f"loggen: sent {sent}", flush=True)
