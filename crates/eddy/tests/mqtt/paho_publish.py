"""Publishes COUNT JSON events as one device with paho-mqtt and waits for every QoS 1 ack.

Usage: paho_publish.py HOST PORT CLIENT_ID {311,5} COUNT [PASSWORD]
Prints "ok acked COUNT" once the server acknowledged them all; every wait is bounded.
"""

import json
import sys
import time

import paho.mqtt.client as mqtt

host, port, client_id, version, count = sys.argv[1:6]
password = sys.argv[6] if len(sys.argv) > 6 else None
port, count = int(port), int(count)
protocol = mqtt.MQTTv311 if version == "311" else mqtt.MQTTv5

client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
if password is not None:
    client.username_pw_set(client_id, password)
client.max_inflight_messages_set(100)
failures = []


def on_publish(_client, _userdata, mid, reason_code, _properties):
    if reason_code.is_failure:
        failures.append((mid, str(reason_code)))


client.on_publish = on_publish
client.connect(host, port, keepalive=30)
client.loop_start()
deadline = time.monotonic() + 120
infos = []
for seq in range(count):
    payload = json.dumps({"seq": seq, "temperature": 20 + seq % 7})
    infos.append(client.publish(f"devices/{client_id}/telemetry", payload, qos=1))
for info in infos:
    info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
    if not info.is_published():
        sys.exit(f"message {info.mid} not acknowledged in time")
if failures:
    sys.exit(f"negative acks: {failures[:5]}")
client.disconnect()
client.loop_stop()
print(f"ok acked {count}", flush=True)
