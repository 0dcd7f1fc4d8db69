#!/usr/bin/env bash
# Produce latency alone, at a fixed rate: rdkafka_performance with acks=all and linger.ms=1
# against the release-built example broker, once per fsync policy in the same run, so the
# policies share the machine's state. Prints p50/p90/p99/p99.9/max over every message after
# the first WARMUP_S seconds (connection and metadata set-up) and, with SERIES=1, the p99 of
# every 100 ms window (to see whether the tail is periodic) into $SERIES_DIR/series-<fsync>.txt.
# Usage: bench/kafka/latency.sh   (env: RATE, SIZE, SECONDS_, WARMUP_S, FSYNCS, PIN, PARTITIONS,
# SERIES, LINGER, NICE, BINS). BINS: broker binaries to take turns with (default: this tree's
# release build), e.g. a copy of the build before a change and the current one, so both are
# measured in the same run.
# PIN=1 starts the broker on core 1 and runs rdkafka_performance's producing thread on core 0
# with librdkafka's own threads on core 1: at any rate over 1 000 msgs/s its rate limiter spins
# a whole core (it polls with a 0 ms timeout between messages), and a spinning thread on the
# core of librdkafka's I/O thread delays every response it reads by up to a scheduler tick.
# PIN=client0 is the older layout (the whole client on core 0, the broker on core 1).
# PRODUCERS=N (unpinned only) runs N latency producers at once, each at RATE, and gives the
# percentiles over all their messages: one producer's rate limiter tops out near 0.8 M
# msgs/s of 100 B, so higher fixed rates need several.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=../../crates/eddy-kafka/tests/librdkafka/common.sh
source "$root/crates/eddy-kafka/tests/librdkafka/common.sh"

RATE="${RATE:-300000}"
SIZE="${SIZE:-100}"
SECONDS_="${SECONDS_:-10}"
FSYNCS="${FSYNCS:-interval:100 never}"
PARTITIONS="${PARTITIONS:-4}"
PIN="${PIN:-0}"
SERIES="${SERIES:-0}"
WARMUP_S="${WARMUP_S:-1}"
LINGER="${LINGER:-1}"
PRODUCERS="${PRODUCERS:-1}"
if [ "$PRODUCERS" != 1 ] && [ "$PIN" != 0 ]; then
    echo "PRODUCERS=$PRODUCERS needs PIN=0" >&2
    exit 2
fi

rdkafka_build
perf="$RDKAFKA_DIR/src/examples/rdkafka_performance"
export LD_LIBRARY_PATH="$RDKAFKA_DIR/src/src${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
work="$(mktemp -d "${BENCH_DIR:-$root}/.bench-kafka-lat.XXXXXX")"
trap 'broker_stop; rm -rf "$work"' EXIT
client=()
case "$PIN" in
1) client=(taskset -c 1) BROKER_CORES=1 ;;
client0) client=(taskset -c 0) BROKER_CORES=1 ;;
esac
export BROKER_CORES

echo "rate $RATE msgs/s of $SIZE B for ${SECONDS_} s (the first $WARMUP_S s left out), acks=all, linger.ms=$LINGER, $PARTITIONS partitions, pinned: $PIN; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| broker | fsync | msgs/s reached | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |"
echo "|---|---|---|---|---|---|---|---|"
(cd "$root" && cargo build --quiet --release -p eddy-kafka --example broker)
for fsync in $FSYNCS; do
  for bin in ${BINS:-$CARGO_TARGET_DIR/release/examples/broker}; do
    BROKER_BIN="$bin" broker_start "$work/data-${fsync/:/-}-$RANDOM" --partitions "$PARTITIONS" --fsync "$fsync"
    # NICE=-10: the broker's threads (those running now: the runtime's workers) get a larger
    # share and preempt at wake-up, to tell its own delays from waiting for a CPU.
    if [ -n "${NICE:-}" ]; then
      for task in /proc/"$BROKER_PID"/task/*; do renice -n "$NICE" -p "${task##*/}" >/dev/null; done
    fi
    # Warm up (topic creation, connection) so the measured run starts in a steady state.
    "${client[@]}" "$perf" -P -t lat -b "$BROKER_ADDR" -s "$SIZE" -c 1000 -a -1 -q >/dev/null 2>&1
    args=(-P -t lat -b "$BROKER_ADDR" -s "$SIZE" -c $((RATE * SECONDS_)) -a -1 -r "$RATE" -l -q
        -X linger.ms="$LINGER" -X batch.size=1000000 -X queue.buffering.max.messages=1000000)
    # Producer p writes its latencies to lat.p.
    if [ "$PIN" = 1 ]; then
        split_client "$perf" "${args[@]}" -A "$work/lat.1" >"$work/perf.out.1" 2>&1
    else
        pids=()
        for p in $(seq "$PRODUCERS"); do
            "${client[@]}" "$perf" "${args[@]}" -A "$work/lat.$p" >"$work/perf.out.$p" 2>&1 &
            pids+=($!)
        done
        wait "${pids[@]}"
    fi
    rate=$(cat "$work"/perf.out.* | sed -n 's/.* \([0-9]*\) msgs\/s and .*/\1/p' | awk '{ r += $1 } END { print r }')
    broker_stop
    # Messages are delivered in about the order they were produced, at RATE per producer:
    # each producer's first WARMUP_S seconds are left out.
    for p in $(seq "$PRODUCERS"); do tail -n +$((RATE * WARMUP_S + 1)) "$work/lat.$p"; done \
    | sort -n | awk -v b="$bin" -v f="$fsync" -v r="$rate" '{ v[NR] = $1 } END {
        printf "| %s | %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", b, f, r, v[int(NR * 0.50)] / 1000,
            v[int(NR * 0.90)] / 1000, v[int(NR * 0.99)] / 1000, v[int(NR * 0.999)] / 1000, v[NR] / 1000 }'
    if [ "$SERIES" = 1 ]; then
        # Messages are delivered in about the order they were produced, at RATE: line n is at
        # about n / RATE seconds. One line per 100 ms window: its start and its p99 and max.
        # The first producer's messages.
        python3 - "$work/lat.1" "$RATE" >"${SERIES_DIR:-/tmp}/series-${fsync/:/-}-$(basename "$bin").txt" <<'PY'
import sys
lat = [int(l) for l in open(sys.argv[1]) if l.strip()]
w = int(sys.argv[2]) // 10
for i in range(0, len(lat), w):
    s = sorted(lat[i:i + w])
    print(f"{i / w / 10:.1f} s p50 {s[len(s) // 2] / 1000:.2f} p99 {s[int(len(s) * 0.99)] / 1000:.2f} max {s[-1] / 1000:.2f}")
PY
    fi
  done
done
