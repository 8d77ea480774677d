#!/usr/bin/env bash
# Builds Ferry's libFuzzer targets and runs them (docs/fuzzing.md).
#
#   Fuzz/run.sh [TARGET|all] [SECONDS]   fuzz one target or all (default: all, 30 s each)
#   Fuzz/run.sh seeds                    regenerate the seed corpora in Fuzz/Corpus/
#   Fuzz/run.sh list                     the targets
#
# Each target starts from a copy of Fuzz/Corpus/TARGET in a temporary
# directory (the committed corpus never grows). Exits non-zero when a target
# crashes, breaks an invariant, leaks or hangs (-timeout=10 per input); the
# input that did it is kept under .build-fuzz/artifacts/TARGET/.
#
# Environment: FUZZ_JOBS (targets run at once; default: the number of CPUs),
# FUZZ_ARGS (more libFuzzer flags), FERRY_BUILD_LOCK (a lock file the build
# waits on, shared with other builds on the machine; default
# /tmp/swift-build.lock).
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(Frame Ack SpoolScanner SegmentReader SpoolRecovery ProgressFile FrameJournal StreamFramer SyslogPriority LineSplitter
    Configuration KeyFile AdminToken EvictedRuns DedupeJournal SyslogParser)

# More libFuzzer flags per target. The configuration loader's tasks free their memory on other
# threads after an input returns, so libFuzzer's leak check after each input would stop the world
# for nothing on most of them: its leaks are found when the process exits instead. A spool
# directory or a configuration takes more than a few bytes: those inputs may be long from the start.
extra_flags() {
    case "$1" in
        Configuration) echo "-detect_leaks=0 -len_control=0" ;;
        SpoolRecovery) echo "-len_control=0" ;;
        *) echo "" ;;
    esac
}

# Longest input per target: room for what each decoder reads, small enough to stay fast.
max_len() {
    case "$1" in
        Ack) echo 1200 ;;
        ProgressFile) echo 160 ;;
        SyslogPriority) echo 64 ;;
        AdminToken) echo 600 ;;
        StreamFramer) echo 2048 ;;
        SyslogParser) echo 1024 ;;
        *) echo 8192 ;;
    esac
}

what="${1:-all}"
seconds="${2:-30}"
case "$what" in
    list)
        printf '%s\n' "${targets[@]}"
        exit 0
        ;;
    all | seeds) selected=("${targets[@]}") ;;
    *)
        name="${what#Fuzz}"
        if [[ ! " ${targets[*]} " == *" $name "* ]]; then
            echo "unknown target '$what'; one of: ${targets[*]}, all, seeds" >&2
            exit 2
        fi
        selected=("$name")
        ;;
esac
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "SECONDS must be a whole number above 0, not '$seconds'" >&2
    exit 2
fi

build_path=.build-fuzz
echo "== fuzz: building the targets (FERRY_FUZZ=1, -sanitize=fuzzer,address, $build_path)"
started=$(date +%s)
mkdir -p "$build_path"
lock="${FERRY_BUILD_LOCK:-/tmp/swift-build.lock}"
build=(swift build --build-path "$build_path")
if command -v flock >/dev/null; then build=(flock "$lock" "${build[@]}"); fi
# ld.gold warns about every ASan symbol it cannot export; those lines say nothing.
if ! FERRY_FUZZ=1 "${build[@]}" > "$build_path/build.log" 2>&1; then
    grep -v "Cannot export local symbol" "$build_path/build.log" | tail -40
    echo "fuzz: build failed (full log: $build_path/build.log)" >&2
    exit 1
fi
bin="$(FERRY_FUZZ=1 swift build --build-path "$build_path" --show-bin-path)"
echo "built in $(($(date +%s) - started)) s"

export SWIFT_BACKTRACE=enable=no   # Swift's backtracer and ASan both want the crash; libFuzzer reports it
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"

if [ "$what" = seeds ]; then
    "$bin/FuzzSeeds" Fuzz/Corpus
    exit 0
fi

work="$(mktemp -d /tmp/ferry-fuzz-run.XXXXXX)"
trap 'rm -rf "$work"' EXIT
jobs_max="${FUZZ_JOBS:-$(nproc)}"

run_one() {
    local target="$1" dir="$work/$1"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    rm -rf "$build_path/artifacts/$target"
    cp -R "Fuzz/Corpus/$target/." "$dir/corpus/"
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    local status=0
    "$bin/Fuzz$target" "$dir/corpus" -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" $(extra_flags "$target") ${FUZZ_ARGS:-} > "$dir/log" 2>&1 || status=$?
    echo "$status" > "$dir/status"
}

summary() {
    local target="$1" status="$2" dir="$work/$1" last runs
    last="$(grep -E '^#[0-9]+' "$dir/log" | tail -1 || true)"
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")"
    local cov ft corp
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")"
    corp="$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<< "$last")"
    if [ "$status" -eq 0 ]; then
        printf '%-15s ok      %10s runs  cov: %-6s ft: %-6s corpus %s\n' "$target" "${runs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
    else
        printf '%-15s FAILED  %10s runs  cov: %-6s ft: %-6s (exit %s)\n' "$target" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$status"
        grep -E "invariant broken|Fatal error|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|SUMMARY|Test unit written" "$dir/log" | head -8 | sed 's/^/    /'
        mkdir -p "$build_path/artifacts/$target"
        cp "$dir/log" "$build_path/artifacts/$target/log"
        cp "$dir/artifacts/"* "$build_path/artifacts/$target/" 2>/dev/null || true
        echo "    log and input: $build_path/artifacts/$target/ (reproduce: FERRY_FUZZ=1 $bin/Fuzz$target FILE)"
    fi
}

echo "== fuzz: ${#selected[@]} target(s), $seconds s each, $jobs_max at a time"
for target in "${selected[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
    run_one "$target" &
done
wait
failed=0
for target in "${selected[@]}"; do
    status="$(cat "$work/$target/status" 2>/dev/null || echo 1)"
    summary "$target" "$status"
    [ "$status" -eq 0 ] || failed=$((failed + 1))
done
echo "fuzz: $((${#selected[@]} - failed)) of ${#selected[@]} targets clean; $(($(date +%s) - started)) s in all"
[ "$failed" -eq 0 ]
