# Shared by tests/librdkafka/run.sh and bench/kafka/run.sh (sourced, not run): fetches
# librdkafka's source from the rdkafka-sys crate, builds it once into $RDKAFKA_DIR, and
# starts the example broker, release-built, on a free loopback port.

# The rdkafka-sys release whose bundled librdkafka is used (4.10.0 carries librdkafka 2.12.1).
RDKAFKA_SYS_VERSION="${RDKAFKA_SYS_VERSION:-4.10.0+2.12.1}"
# Build directory, outside the repository: the source and objects take about 600 MB.
RDKAFKA_DIR="${RDKAFKA_DIR:-$HOME/.cache/librdkafka}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"

# Installs the Debian build dependencies that are missing.
rdkafka_deps() {
    local missing=()
    for p in build-essential libssl-dev zlib1g-dev libzstd-dev liblz4-dev python3 pkg-config; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi
}

# Unpacks librdkafka from the rdkafka-sys crate into $RDKAFKA_DIR/src: cargo fetches the
# crate from crates.io into its own cache through a throwaway manifest.
rdkafka_source() {
    [ -f "$RDKAFKA_DIR/src/configure" ] && return 0
    mkdir -p "$RDKAFKA_DIR"
    local tmp
    tmp="$(mktemp -d)"
    mkdir -p "$tmp/src"
    cat >"$tmp/Cargo.toml" <<TOML
[package]
name = "fetch-rdkafka-sys"
version = "0.0.0"
edition = "2021"
[dependencies]
rdkafka-sys = { version = "=$RDKAFKA_SYS_VERSION", default-features = false }
TOML
    : >"$tmp/src/lib.rs"
    cargo fetch --quiet --manifest-path "$tmp/Cargo.toml"
    local crate
    crate="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"rdkafka-sys-$RDKAFKA_SYS_VERSION.crate" | head -1)"
    tar -xzf "$crate" -C "$tmp"
    mv "$tmp/rdkafka-sys-$RDKAFKA_SYS_VERSION/librdkafka" "$RDKAFKA_DIR/src"
    rm -rf "$tmp"
}

# Builds the library, the test runner and rdkafka_performance (once; `make` is incremental).
rdkafka_build() {
    rdkafka_deps
    rdkafka_source
    cd "$RDKAFKA_DIR/src"
    if [ ! -f Makefile.config ]; then
        # GSSAPI and OIDC (curl) are only for SASL tests, which a plaintext broker skips.
        ./configure --disable-gssapi --disable-curl >"$RDKAFKA_DIR/configure.log" 2>&1
    fi
    make -j2 libs >"$RDKAFKA_DIR/make-libs.log" 2>&1
    make -j2 -C tests build >"$RDKAFKA_DIR/make-tests.log" 2>&1
    make -j2 -C examples rdkafka_performance >"$RDKAFKA_DIR/make-examples.log" 2>&1
    cd - >/dev/null
}

# Starts the release-built example broker (or $BROKER_BIN, e.g. a copy of an earlier build
# to compare in the same run) over a fresh log in $1 with extra flags $2...; sets BROKER_PID
# and BROKER_ADDR. $BROKER_CORES (e.g. "1") starts it pinned to those cores, so that its
# runtime sizes its worker pool to them (pinning after start leaves one worker per core of
# the machine competing for the pinned one).
broker_start() {
    local data="$1"
    shift
    if [ -z "${BROKER_BIN:-}" ]; then
        (cd "$REPO_ROOT" && cargo build --quiet --release -p eddy-kafka --example broker)
    fi
    local pin=()
    [ -n "${BROKER_CORES:-}" ] && pin=(taskset -c "$BROKER_CORES")
    "${pin[@]}" "${BROKER_BIN:-$CARGO_TARGET_DIR/release/examples/broker}" --data-dir "$data" --listen 127.0.0.1:0 "$@" \
        >"$data.out" 2>"$data.broker.log" &
    BROKER_PID=$!
    local line="" i
    for i in $(seq 100); do
        line="$(head -1 "$data.out" 2>/dev/null || true)"
        [ -n "$line" ] && break
        sleep 0.1
    done
    BROKER_ADDR="${line#listening on }"
    [ -n "$BROKER_ADDR" ] && [ "$BROKER_ADDR" != "$line" ] || {
        echo "broker did not start: $line" >&2
        return 1
    }
}

# Runs a latency-mode rdkafka_performance ($1, its arguments $2...) with its producing thread
# on core 0 and librdkafka's own threads on core 1, the core of a broker started with
# BROKER_CORES=1. Asked for a rate over 1 000 msgs/s, its rate limiter polls with a 0 ms
# timeout between messages and so spins a whole core; sharing that core, librdkafka's I/O
# thread would read each response up to a scheduler tick (4 ms at HZ=250) late.
split_client() {
    local bin="$1" pid i
    shift
    # librdkafka's threads inherit the affinity of the thread that creates them: start all
    # on core 1, then move the main thread alone once they exist.
    taskset -c 1 "$bin" "$@" &
    pid=$!
    for i in $(seq 200); do
        grep -qs rdk:main /proc/"$pid"/task/*/comm && break
        sleep 0.005
    done
    taskset -p -c 0 "$pid" >/dev/null
    wait "$pid"
}

broker_stop() {
    [ -n "${BROKER_PID:-}" ] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null
    BROKER_PID=
}
