#!/usr/bin/env bash
# Installs the real Kafka clients that tests/clients.rs drives: confluent-kafka (librdkafka)
# and kafka-python from PyPI, kcat from Debian, kafkajs from npm into tests/js/node_modules
# (gitignored). Safe to run again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pip_install() {
    # Debian's system Python refuses global installs (PEP 668) unless told.
    python3 -m pip install --quiet --disable-pip-version-check "$@" \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}
pip_install 'confluent-kafka>=2.3' 'kafka-python>=2.1'
if ! command -v kcat >/dev/null; then
    apt-get update -qq
    # Debian ships it as `kcat` since bookworm (`kafkacat` before); the tests call `kcat`.
    apt-get install -y -qq kcat
fi
cd "$here/js"
npm install --no-audit --no-fund --silent kafkajs@2
