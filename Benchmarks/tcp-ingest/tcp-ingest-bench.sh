#!/usr/bin/env bash
# tcp-ingest-bench.sh: TCP and TLS syslog ingest of Ferry beside rsyslog, on loopback, in one run.
#
# usage: Benchmarks/tcp-ingest/tcp-ingest-bench.sh [options]
#   --duration S        seconds loggen sends per run (default 10)
#   --rates "R ..."     total offered rates in logs/s, 0 = flat out (default "0 50000");
#                       loggen's --rate is per connection, so each connection gets R / connections
#   --connections N     loggen --active-connections (default 4)
#   --size BYTES        loggen --size, bytes per message (default 300)
#   --runs K            repetitions; the table shows the median of K (default 3)
#   --transports "..."  tcp and/or tls (default "tcp tls")
#   --framing lf|octet  lf: loggen's default newline-terminated lines; octet: loggen --syslog-proto
#                       (RFC 5424, octet-counted, RFC 6587) (default lf)
#   --receivers "..."   any of ferry ferry-1loop rsyslog-imptcp rsyslog-imtcp
#                       (default all; rsyslog-imptcp has no TLS and is skipped for tls)
#   --no-pin            do not pin; by default, as in ../shared/bench/relay-bench, the receiver
#                       runs on CPU 1 and loggen on CPU 0
#   --keep DIR          keep the work directory (outputs, receiver logs, per-run rows) in DIR
# env: FERRY (default .build/release/ferry), LOGGEN_ROOT (default /tmp/syslog-ng-root, unpacked
#      there by ../shared/bench/get-loggen.sh if missing), RSYSLOGD (default rsyslogd).
#
# Each receiver is started fresh per run and writes every log, as received, as one line to a file
# (Ferry: --upstream file:; rsyslog: omfile with template "%rawmsg%\n"). After loggen ends the script
# waits until the file stops growing. Columns (medians over runs, except lost_max):
#   offered/s    total --rate given to loggen ("max" = flat out)
#   loggen/s     loggen's own "average rate" (what it managed to write into its sockets)
#   delivered/s  lines in the file / (time of the file's last growth - loggen start)
#   cpu_us/log   receiver's utime+stime (/proc/PID/stat) from just before loggen starts until the
#                file stopped growing, divided by the lines in the file
#   cpu_pct      that CPU time / the same wall time (100 = one core busy: the receiver is the limit)
#   lost_max     loggen's count - lines in the file after the receiver was stopped; the largest of the runs
#   rss_kib      receiver's peak RSS (VmHWM)
#   ferry_rcvd   Ferry's /v1/status counters.received (- for rsyslog)
# Only loopback (127.0.0.1) is used. TLS certificates (a CA and a server certificate for
# localhost/127.0.0.1) are made in the temporary work directory and removed with it.
set -euo pipefail

DURATION=10 RATES="0 50000" CONNS=4 SIZE=300 RUNS=3 TRANSPORTS="tcp tls" FRAMING=lf
RECEIVERS="ferry ferry-1loop rsyslog-imptcp rsyslog-imtcp" PIN=1 KEEP=
while [[ $# -gt 0 ]]; do
    case $1 in
        --duration) DURATION=$2; shift 2 ;;
        --rates) RATES=$2; shift 2 ;;
        --connections) CONNS=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --transports) TRANSPORTS=$2; shift 2 ;;
        --framing) FRAMING=$2; shift 2 ;;
        --receivers) RECEIVERS=$2; shift 2 ;;
        --no-pin) PIN=0; shift ;;
        --keep) KEEP=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $FRAMING == lf || $FRAMING == octet ]] || { echo "--framing must be lf or octet" >&2; exit 2; }

FERRY=${FERRY:-.build/release/ferry}
RSYSLOGD=${RSYSLOGD:-rsyslogd}
LOGGEN_ROOT=${LOGGEN_ROOT:-/tmp/syslog-ng-root}
HERE=$(cd "$(dirname "$0")" && pwd)
[[ -x $FERRY ]] || { echo "no Ferry binary at $FERRY (set FERRY=)" >&2; exit 1; }
if [[ ! -x $LOGGEN_ROOT/usr/bin/loggen ]]; then
    bash "$HERE/../../../shared/bench/get-loggen.sh" "$LOGGEN_ROOT" >/dev/null
fi
LOGGEN=(env SYSLOGNG_PREFIX="$LOGGEN_ROOT/usr"
    LD_LIBRARY_PATH="$LOGGEN_ROOT/usr/lib/x86_64-linux-gnu:$LOGGEN_ROOT/usr/lib/syslog-ng" "$LOGGEN_ROOT/usr/bin/loggen")
HZ=$(getconf CLK_TCK)
if [[ $PIN == 1 ]]; then RPIN=(taskset -c 1) GPIN=(taskset -c 0); else RPIN=() GPIN=(); fi

WORK=$(mktemp -d /tmp/tcp-ingest-bench.XXXXXX)
RECV_PID=
cleanup() {
    if [[ -n $RECV_PID ]]; then kill -TERM "$RECV_PID" 2>/dev/null || true; sleep 0.5; kill -KILL "$RECV_PID" 2>/dev/null || true; fi
    if [[ -n $KEEP ]]; then mkdir -p "$KEEP" && rm -f "$WORK"/tls/*.key && cp -r "$WORK"/. "$KEEP"/ && echo "kept in $KEEP" >&2; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# TLS: a CA and a server certificate for localhost / 127.0.0.1.
T=$WORK/tls; mkdir -p "$T"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tcp-ingest-bench CA" \
    -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$T/server.key" -out "$T/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$T/ext"
openssl x509 -req -in "$T/server.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
    -extfile "$T/ext" -out "$T/server.pem" 2>/dev/null

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cputicks() { awk '{print $14+$15}' "/proc/$1/stat"; }
now() { date +%s.%N; }
lines() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }
listening() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

# start_receiver NAME TRANSPORT PORT HTTPPORT OUTFILE DIR: starts it in the background, sets RECV_PID.
start_receiver() {
    local name=$1 transport=$2 port=$3 http=$4 out=$5 dir=$6
    case $name in
        ferry | ferry-1loop)
            local args=(serve --listen "$transport://127.0.0.1:$port" --http "127.0.0.1:$http"
                --upstream "file:$out" --log-format text)
            [[ $transport == tls ]] && args+=(--tls-cert "$T/server.pem" --tls-key "$T/server.key")
            [[ $name == ferry-1loop ]] && args+=(--receive-sockets 1)
            "${RPIN[@]}" "$FERRY" "${args[@]}" >"$dir/receiver.log" 2>&1 &
            ;;
        rsyslog-imptcp | rsyslog-imtcp)
            local global="global(workDirectory=\"$dir\" maxMessageSize=\"64k\""
            local input
            if [[ $transport == tls ]]; then
                global+=" defaultNetstreamDriverCAFile=\"$T/ca.pem\" defaultNetstreamDriverCertFile=\"$T/server.pem\""
                global+=" defaultNetstreamDriverKeyFile=\"$T/server.key\""
                input="module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\")"
                input+=$'\n'"input(type=\"imtcp\" address=\"127.0.0.1\" port=\"$port\")"
            else
                local m=${name#rsyslog-}
                input="module(load=\"$m\")"$'\n'"input(type=\"$m\" address=\"127.0.0.1\" port=\"$port\")"
            fi
            cat >"$dir/rsyslog.conf" <<CONF
$global)
$input
template(name="raw" type="string" string="%rawmsg%\n")
action(type="omfile" file="$out" template="raw")
CONF
            "${RPIN[@]}" "$RSYSLOGD" -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid" >"$dir/receiver.log" 2>&1 &
            ;;
        *) echo "unknown receiver $name" >&2; exit 2 ;;
    esac
    RECV_PID=$!
    local i
    for i in $(seq 1 100); do
        listening "$port" && return 0
        kill -0 "$RECV_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "$name ($transport) did not start listening on $port; its log:" >&2; cat "$dir/receiver.log" >&2; exit 1
}

stop_receiver() {
    kill -TERM "$RECV_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do kill -0 "$RECV_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$RECV_PID" 2>/dev/null || true
    wait "$RECV_PID" 2>/dev/null || true
    RECV_PID=
}

# run_one RECEIVER TRANSPORT RATE RUN: appends one row to $WORK/rows.
run_one() {
    local name=$1 transport=$2 rate=$3 run=$4
    local dir=$WORK/$name-$transport-$rate-$run; mkdir -p "$dir"
    local port http out=$dir/out.log
    port=$(freeport); http=$(freeport)
    start_receiver "$name" "$transport" "$port" "$http" "$out" "$dir"
    sleep 1
    local per_conn=$(( rate > 0 ? (rate + CONNS - 1) / CONNS : 100000000 ))
    local gargs=(--rate "$per_conn" --interval "$DURATION" --size "$SIZE" --active-connections "$CONNS")
    if [[ $transport == tls ]]; then gargs+=(--use-ssl); else gargs+=(--inet --stream); fi
    [[ $FRAMING == octet ]] && gargs+=(--syslog-proto)
    local cpu0 t0 t1 cpu1 n last tlast same
    cpu0=$(cputicks "$RECV_PID"); t0=$(now)
    "${GPIN[@]}" "${LOGGEN[@]}" "${gargs[@]}" 127.0.0.1 "$port" >"$dir/loggen.out" 2>&1 || echo "loggen exited $? ($name $transport run $run)" >&2
    # Wait until the file has not grown for 1 s (at most 60 s).
    last=$(lines "$out"); tlast=$(now); same=0
    for _ in $(seq 1 600); do
        sleep 0.1
        n=$(lines "$out")
        if [[ $n != "$last" ]]; then last=$n; tlast=$(now); same=0; else same=$((same + 1)); fi
        [[ $same -ge 10 ]] && break
    done
    cpu1=$(cputicks "$RECV_PID")
    local rss ferry_rcvd=-
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$RECV_PID/status")
    if [[ $name == ferry* ]]; then
        curl -s "127.0.0.1:$http/v1/status" >"$dir/status.json" || true
        ferry_rcvd=$(jq -r '.counters.received // "?"' "$dir/status.json" 2>/dev/null || echo '?')
    fi
    stop_receiver
    local final; final=$(lines "$out")
    local sent grate
    sent=$(sed -n 's/.*average rate = .*count=\([0-9]*\).*/\1/p' "$dir/loggen.out" | tail -1)
    grate=$(sed -n 's/.*average rate = \([0-9.]*\) msg\/sec.*/\1/p' "$dir/loggen.out" | tail -1)
    t1=$tlast
    awk -v r="$name" -v tr="$transport" -v rate="$rate" -v run="$run" -v g="${grate:-0}" -v sent="${sent:-0}" \
        -v n="$last" -v fin="$final" -v t0="$t0" -v t1="$t1" -v c="$((cpu1 - cpu0))" -v hz="$HZ" -v rss="${rss:-0}" -v fr="$ferry_rcvd" \
        'BEGIN { d = t1 - t0; printf "%s %s %s %s %.0f %.0f %.2f %.0f %d %s %s %s\n", r, tr, (rate > 0 ? rate : "max"), run, g,
                 (d > 0 ? n / d : 0), (n > 0 ? c / hz * 1e6 / n : 0), (d > 0 ? c / hz / d * 100 : 0), sent - fin, rss, fr,
                 (fin != n ? "late=" fin - n : "") }' \
        | tee -a "$WORK/rows" >&2
    grep -iE 'error|warn|fail' "$dir/receiver.log" | grep -v 'worker thread .* terminated' | head -3 | sed "s|^|  [$name $transport] |" >&2 || true
}

echo "# runs: $RUNS x $DURATION s, $CONNS connections, $SIZE B, framing $FRAMING, pin $PIN, $(nproc) CPUs, $(date -u +%FT%TZ)" >&2
echo "# per-run rows: receiver transport offered run loggen/s delivered/s cpu_us/log cpu_pct lost rss_kib ferry_rcvd" >&2
for run in $(seq 1 "$RUNS"); do
    for transport in $TRANSPORTS; do
        for rate in $RATES; do
            for name in $RECEIVERS; do
                [[ $transport == tls && $name == rsyslog-imptcp ]] && continue
                run_one "$name" "$transport" "$rate" "$run"
            done
        done
    done
done

echo
echo "## median of $RUNS runs: $DURATION s each, $CONNS connections, $SIZE B messages, framing $FRAMING, receiver $([[ $PIN == 1 ]] && echo 'on CPU 1, loggen on CPU 0' || echo unpinned)"
printf '%-15s %-5s %9s %10s %12s %11s %8s %9s %9s %11s\n' receiver proto offered/s loggen/s delivered/s cpu_us/log cpu_pct lost_max rss_kib ferry_rcvd
for transport in $TRANSPORTS; do
    for rate in $RATES; do
        r=$rate; [[ $rate == 0 ]] && r=max
        for name in $RECEIVERS; do
            awk -v n="$name" -v t="$transport" -v r="$r" '$1 == n && $2 == t && $3 == r' "$WORK/rows" >"$WORK/sel"
            [[ -s $WORK/sel ]] || continue
            mx() { awk -v c="$1" '{print $c}' "$WORK/sel" | sort -g | tail -1; }
            med() { awk -v c="$1" '{print $c}' "$WORK/sel" | sort -g | awk '{a[NR]=$1} END {m=int((NR+1)/2); print (NR%2 || a[m]!=a[m]+0) ? a[m] : sprintf("%.10g", (a[m]+a[m+1])/2)}'; }
            printf '%-15s %-5s %9s %10s %12s %11s %8s %9s %9s %11s\n' "$name" "$transport" "$r" "$(med 5)" "$(med 6)" "$(med 7)" "$(med 8)" "$(mx 9)" "$(med 10)" "$(med 11)"
        done
    done
done
