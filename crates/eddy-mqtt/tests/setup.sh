#!/usr/bin/env bash
# Installs the real MQTT clients that crates/eddy/tests/mqtt.rs drives: mosquitto_pub from
# Debian's mosquitto-clients and paho-mqtt (2.x) from PyPI. Safe to run again.
set -euo pipefail
if ! command -v mosquitto_pub >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq mosquitto-clients
fi
if ! python3 -c 'import paho.mqtt, sys; sys.exit(int(paho.mqtt.__version__.split(".")[0]) < 2)' 2>/dev/null; then
    # Debian's system Python refuses global installs (PEP 668) unless told.
    python3 -m pip install --quiet --disable-pip-version-check 'paho-mqtt>=2,<3' \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages 'paho-mqtt>=2,<3'
fi
