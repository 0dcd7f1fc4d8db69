#!/usr/bin/env bash
# Produce latency alone, at a fixed rate: rdkafka_performance with acks=all and linger.ms=1
# against the release-built example broker, once per fsync policy in the same run, so the
# policies share the machine's state. Prints p50/p90/p99/p99.9/max and, with SERIES=1, the
# p99 of every 100 ms window (to see whether the tail is periodic) into $SERIES_DIR/series-<fsync>.txt.
# Usage: bench/kafka/latency.sh   (env: RATE, SIZE, SECONDS_, FSYNCS, PIN=1, PARTITIONS, SERIES, LINGER, NICE,
# BINS). PIN=1 runs the client on core 0 and the broker on core 1 (taskset). BINS: broker
# binaries to take turns with (default: this tree's release build), e.g. a copy of the build
# before a change and the current one, so both are measured in the same run.
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
LINGER="${LINGER:-1}"

rdkafka_build
perf="$RDKAFKA_DIR/src/examples/rdkafka_performance"
export LD_LIBRARY_PATH="$RDKAFKA_DIR/src/src${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
work="$(mktemp -d "${BENCH_DIR:-$root}/.bench-kafka-lat.XXXXXX")"
trap 'broker_stop; rm -rf "$work"' EXIT
client=()
[ "$PIN" = 1 ] && client=(taskset -c 0)

echo "rate $RATE msgs/s of $SIZE B for ${SECONDS_} s, acks=all, linger.ms=$LINGER, $PARTITIONS partitions, pinned: $PIN; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| broker | fsync | msgs/s reached | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |"
echo "|---|---|---|---|---|---|---|---|"
(cd "$root" && cargo build --quiet --release -p eddy-kafka --example broker)
for fsync in $FSYNCS; do
  for bin in ${BINS:-$CARGO_TARGET_DIR/release/examples/broker}; do
    BROKER_BIN="$bin" broker_start "$work/data-${fsync/:/-}-$RANDOM" --partitions "$PARTITIONS" --fsync "$fsync"
    [ "$PIN" = 1 ] && taskset -a -p -c 1 "$BROKER_PID" >/dev/null
    # NICE=-10: the broker's threads (those running now: the runtime's workers) get a larger
    # share and preempt at wake-up, to tell its own delays from waiting for a CPU.
    if [ -n "${NICE:-}" ]; then
      for task in /proc/"$BROKER_PID"/task/*; do renice -n "$NICE" -p "${task##*/}" >/dev/null; done
    fi
    # Warm up (topic creation, connection) so the measured run starts in a steady state.
    "${client[@]}" "$perf" -P -t lat -b "$BROKER_ADDR" -s "$SIZE" -c 1000 -a -1 -q >/dev/null 2>&1
    rate=$("${client[@]}" "$perf" -P -t lat -b "$BROKER_ADDR" -s "$SIZE" -c $((RATE * SECONDS_)) -a -1 \
        -r "$RATE" -l -A "$work/lat" -q \
        -X linger.ms="$LINGER" -X batch.size=1000000 -X queue.buffering.max.messages=1000000 2>&1 |
        sed -n 's/.* \([0-9]*\) msgs\/s and .*/\1/p' | tail -1)
    broker_stop
    sort -n "$work/lat" | awk -v b="$bin" -v f="$fsync" -v r="$rate" '{ v[NR] = $1 } END {
        printf "| %s | %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", b, f, r, v[int(NR * 0.50)] / 1000,
            v[int(NR * 0.90)] / 1000, v[int(NR * 0.99)] / 1000, v[int(NR * 0.999)] / 1000, v[NR] / 1000 }'
    if [ "$SERIES" = 1 ]; then
        # Messages are delivered in about the order they were produced, at RATE: line n is at
        # about n / RATE seconds. One line per 100 ms window: its start and its p99 and max.
        python3 - "$work/lat" "$RATE" >"${SERIES_DIR:-/tmp}/series-${fsync/:/-}-$(basename "$bin").txt" <<'PY'
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
