#!/usr/bin/env bash
# Kafka-protocol benchmark: librdkafka's rdkafka_performance against eddy's release-built
# example broker on loopback, compared in the same run with the disk's sequential write
# bandwidth and the loopback bandwidth. Prints a Markdown table (BENCHMARKS.md).
# Usage: bench/kafka/run.sh   (env: MSGS_100B, MSGS_1KB, LAT_SECONDS, PARTITIONS, FSYNC)
# Throughput runs leave placement to the scheduler. Latency runs start a broker of their own
# on core 1 and run rdkafka_performance's producing thread on core 0, librdkafka's threads on
# core 1 (`split_client` in common.sh says why), and leave out the first second of messages
# (connection and metadata set-up).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=../../crates/eddy-kafka/tests/librdkafka/common.sh
source "$root/crates/eddy-kafka/tests/librdkafka/common.sh"

MSGS_100B="${MSGS_100B:-3000000}"
MSGS_1KB="${MSGS_1KB:-500000}"
LAT_SECONDS="${LAT_SECONDS:-10}"
PARTITIONS="${PARTITIONS:-4}"
FSYNC="${FSYNC:-}"

rdkafka_build
perf="$RDKAFKA_DIR/src/examples/rdkafka_performance"
export LD_LIBRARY_PATH="$RDKAFKA_DIR/src/src${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
work="$(mktemp -d "${BENCH_DIR:-$root}/.bench-kafka.XXXXXX")"
trap 'broker_stop; rm -rf "$work"' EXIT

# Disk: 1 GiB sequential write, flushed (on the filesystem the broker's log lives on).
disk_mb_s=$(dd if=/dev/zero of="$work/dd" bs=1M count=1024 conv=fdatasync 2>&1 |
    awk '/copied/ { t = $(NF-3); b = $1; printf "%.0f", b / t / 1e6 }')
rm -f "$work/dd"

# Loopback: 4 GiB through one TCP connection, 1 MiB writes (what one client connection gets).
loop_mb_s=$(python3 - <<'PY'
import socket, threading, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
total = 4 << 30
def sink():
    c, _ = srv.accept(); buf = bytearray(1 << 20); n = 0
    while n < total:
        r = c.recv_into(buf)
        if not r: break
        n += r
t = threading.Thread(target=sink); t.start()
s = socket.create_connection(srv.getsockname()); chunk = b"\0" * (1 << 20)
t0 = time.time()
for _ in range(total >> 20): s.sendall(chunk)
s.close(); t.join()
print(f"{total / (time.time() - t0) / 1e6:.0f}")
PY
)

broker_flags=(--partitions "$PARTITIONS" ${FSYNC:+--fsync "$FSYNC"})

# Producer throughput: prints "msgs/s MB/s" from rdkafka_performance's summary.
produce() { # size count acks topic
    "$perf" -P -t "$4" -b "$BROKER_ADDR" -s "$1" -c "$2" -a "$3" -q \
        -X linger.ms=5 -X batch.size=1000000 -X queue.buffering.max.messages=1000000 2>&1 |
        sed -n 's/.* \([0-9]*\) msgs\/s and \([0-9.]*\) MB\/s.*/\1 \2/p' | tail -1
}
consume() { # count topic
    "$perf" -G "bench-$2" -t "$2" -b "$BROKER_ADDR" -c "$1" -q \
        -X auto.offset.reset=earliest -X fetch.max.bytes=52428800 2>&1 |
        sed -n 's/.* \([0-9]*\) msgs\/s (\([0-9.]*\) MB\/s).*/\1 \2/p' | tail -1
}
# p50/p99 produce latency in ms at RATE msgs/s, and the rate rdkafka_performance achieved
# (its limiter can fall short). linger.ms=1: at these rates linger 0 sends so many small
# requests that they queue, and 5 (the throughput runs') adds 5 ms to every message.
# The latency producer's own peak and its p50/p99 produce latency in ms at half that rate.
# The peak is that of the same producer settings (linger.ms=1, one latency stamp per
# message), unthrottled: the throughput runs' settings (linger.ms=5, 1 MB batches) reach
# higher, but one rdkafka_performance in latency mode cannot send at half of their peak (at
# 100 B it tops out near 0.8 M msgs/s with its rate limiter on). The limiter sleeps whole
# microseconds between messages (1 M / rate, rounded down), so asked rates between 0.5 M and
# 1 M all mean 1 M, and from 1 M up mean no limit at all: those are capped at 999 999. The
# table says the rate reached.
latency() { # size acks topic throughput-peak
    local peak_count=$(($4 * 2)) peak half rate
    BROKER_CORES=1 broker_start "$work/data-lat-$3" "${broker_flags[@]}"
    # The topic exists and the connection is warm before the measured runs.
    "$perf" -P -t "$3" -b "$BROKER_ADDR" -s "$1" -c 1000 -a "$2" -q >/dev/null 2>&1
    local lat_args=(-P -t "$3" -b "$BROKER_ADDR" -s "$1" -a "$2" -l -q
        -X linger.ms=1 -X batch.size=1000000 -X queue.buffering.max.messages=1000000)
    split_client "$perf" "${lat_args[@]}" -c "$peak_count" -A "$work/lat-peak" >"$work/perf-peak.out" 2>&1
    peak=$(sed -n 's/.* \([0-9]*\) msgs\/s and .*/\1/p' "$work/perf-peak.out" | tail -1)
    half=$((peak / 2))
    [ "$half" -ge 1000000 ] && half=999999
    split_client "$perf" "${lat_args[@]}" -c $((half * LAT_SECONDS)) -r "$half" -A "$work/lat" \
        >"$work/perf.out" 2>&1
    broker_stop
    rate=$(sed -n 's/.* \([0-9]*\) msgs\/s and .*/\1/p' "$work/perf.out" | tail -1)
    # Messages are delivered in about the order they were produced: leave out the first
    # second (connection and metadata set-up).
    tail -n +$((half + 1)) "$work/lat" | sort -n | awk -v p="$peak" -v r="$rate" '{ v[NR] = $1 } END {
        printf "%d %d %.2f %.2f", p, r, v[int(NR * 0.50)] / 1000, v[int(NR * 0.99)] / 1000 }'
}

echo "disk sequential write: $disk_mb_s MB/s; loopback TCP: $loop_mb_s MB/s"
echo
echo "| size | acks | produce msgs/s | produce MB/s | consume msgs/s | consume MB/s | produce / disk | produce / loopback | latency producer's peak msgs/s | latency run msgs/s (half its peak asked) | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for size in 100 1024; do
    count=$MSGS_100B
    [ "$size" = 1024 ] && count=$MSGS_1KB
    for acks in 1 -1; do
        name="acks=$acks"
        [ "$acks" = -1 ] && name="acks=all"
        topic="bench-$size-${acks#-}"
        broker_start "$work/data-$topic" "${broker_flags[@]}"
        read -r p_msgs p_mb <<<"$(produce "$size" "$count" "$acks" "$topic")"
        read -r c_msgs c_mb <<<"$(consume "$count" "$topic")"
        broker_stop
        read -r l_peak l_msgs p50 p99 <<<"$(latency "$size" "$acks" "$topic-lat" "$p_msgs")"
        awk -v s="$size" -v a="$name" -v pm="$p_msgs" -v pb="$p_mb" -v cm="$c_msgs" -v cb="$c_mb" \
            -v d="$disk_mb_s" -v l="$loop_mb_s" -v p50="$p50" -v p99="$p99" -v lp="$l_peak" -v lm="$l_msgs" \
            'BEGIN { printf "| %s B | %s | %d | %.1f | %d | %.1f | %.2f | %.3f | %d | %d (%d) | %s | %s |\n",
                     s, a, pm, pb, cm, cb, pb / d, pb / l, lp, lm, lp / 2, p50, p99 }'
    done
done
