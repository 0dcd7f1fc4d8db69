#!/usr/bin/env bash
# Runs every eddy test from a clean checkout: installs what the tests need, checks
# formatting and lints, then runs the whole workspace's tests (unit, golden, integration).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/eddy-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== setup: real peers the tests drive"
# Kafka clients (confluent-kafka, kafka-python, kcat, kafkajs) for eddy-kafka's client tests.
crates/eddy-kafka/tests/setup.sh
# MQTT clients (mosquitto_pub, paho-mqtt) for crates/eddy/tests/mqtt.rs.
crates/eddy-mqtt/tests/setup.sh
# Headless Chromium and Playwright for the dashboard test (crates/eddy/tests/dashboard.rs).
crates/eddy/tests/dashboard/setup.sh
# DuckDB checks eddy's Nexmark, window and Parquet-capture results; fastavro writes the
# Avro container files the format tests produce over Kafka.
python3 -m pip install --quiet --disable-pip-version-check duckdb fastavro \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages duckdb fastavro

echo "== formatting"
cargo fmt --all -- --check

echo "== lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
cargo test --workspace --locked
