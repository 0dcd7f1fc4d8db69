//! Devices over MQTT, as they would connect to IoT Hub: real clients (`mosquitto_pub` and
//! paho-mqtt, installed by `crates/eddy-mqtt/tests/setup.sh`) publish to `eddy server`
//! running as a child process; results are read back over the HTTP API.

mod common;

use common::{ServerProcess, int};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One server and its clients at a time: the machine has 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

const SETUP: &str =
    "run crates/eddy-mqtt/tests/setup.sh to install mosquitto-clients and paho-mqtt";

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn port(server: &ServerProcess) -> String {
    server
        .mqtt
        .rsplit_once(':')
        .map(|(_, p)| p.to_string())
        .expect("mqtt host:port")
}

/// `mosquitto_pub` against the server, bounded by 30 s.
fn mosquitto_pub(server: &ServerProcess, args: &[&str]) -> Output {
    let port = port(server);
    Command::new("timeout")
        .args(["30", "mosquitto_pub", "-h", "127.0.0.1", "-p", &port])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("mosquitto_pub: {e}; {SETUP}"))
}

/// Runs `paho_publish.py`: `count` QoS 1 messages from `client_id`, all acknowledged.
fn paho_publish(
    server: &ServerProcess,
    client_id: &str,
    version: &str,
    count: usize,
    password: Option<&str>,
) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mqtt/paho_publish.py");
    let count = count.to_string();
    let port = port(server);
    let mut args = vec!["127.0.0.1", &port, client_id, version, &count];
    args.extend(password);
    let output = Command::new("timeout")
        .arg("150")
        .arg("python3")
        .arg(&script)
        .args(&args)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(&format!("ok acked {count}")),
        "paho {client_id} v{version} failed ({SETUP}): {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every event of partition 0 of `stream` (the test server gives streams one partition).
fn events(server: &ServerProcess, stream: &str) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let url = format!(
            "{}/api/streams/{stream}/events?partition=0&offset={}&max=10000",
            server.base,
            all.len()
        );
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent.get(&url).call().expect("read events");
        if response.status().as_u16() == 404 {
            return all;
        }
        let page: Value = response.body_mut().read_json().expect("events JSON");
        let batch = page["events"].as_array().cloned().unwrap_or_default();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch.into_iter().map(|e| e["value"].clone()));
    }
}

/// Polls until `stream` holds at least `n` events; returns them.
fn wait_for_events(server: &ServerProcess, stream: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = events(server, stream);
        if all.len() >= n || Instant::now() > deadline {
            return all;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of an unlabelled counter in `/metrics`.
fn metric(server: &ServerProcess, name: &str) -> u64 {
    let text = ureq::get(format!("{}/metrics", server.base))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
}

#[test]
fn mosquitto_pub_qos0_and_qos1_over_v311_and_v5() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(dir.path());
    for (version, qos) in [
        ("mqttv311", "0"),
        ("mqttv311", "1"),
        ("mqttv5", "0"),
        ("mqttv5", "1"),
    ] {
        let id = format!("sensor-{version}-q{qos}");
        let message = format!(r#"{{"version": "{version}", "qos": {qos}}}"#);
        let out = mosquitto_pub(
            &server,
            &[
                "-V",
                version,
                "-q",
                qos,
                "-i",
                &id,
                "-t",
                "devices/x/telemetry",
                "-m",
                &message,
            ],
        );
        assert!(
            out.status.success(),
            "{version} q{qos}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let all = wait_for_events(&server, "devices", 4);
    assert_eq!(all.len(), 4, "{all:?}");
    for event in &all {
        let version = event["version"].as_str().expect("version");
        let qos = event["qos"].as_i64().expect("qos");
        assert_eq!(
            event["IoTHub"]["ConnectionDeviceId"],
            format!("sensor-{version}-q{qos}").as_str()
        );
        let enqueued = event["IoTHub"]["EnqueuedTime"].as_str().expect("time");
        assert!(
            enqueued.ends_with('Z') && enqueued.len() == 28,
            "{enqueued}"
        );
    }
    assert_eq!(metric(&server, "eddy_mqtt_messages_received_total"), 4);
    assert_eq!(metric(&server, "eddy_mqtt_connections_accepted_total"), 4);
}

#[test]
fn paho_v311_and_v5_qos1_bursts_all_arrive_and_a_job_counts_per_device() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(dir.path());
    server.create_job(
        "per-device",
        "SELECT IoTHub.ConnectionDeviceId AS device, seq INTO readings FROM devices",
    );
    // Windows over arrival time; a zero late tolerance lets the clock close them.
    let (status, answer) = server.post(
        "/api/jobs",
        &serde_json::json!({
            "name": "device-counts",
            "query": "SELECT IoTHub.ConnectionDeviceId AS device, COUNT(*) AS n INTO device_counts \
                      FROM devices GROUP BY IoTHub.ConnectionDeviceId, TumblingWindow(second, 1)",
            "late_arrival_tolerance_s": 0,
        }),
    );
    assert!((200..300).contains(&status), "{answer}");
    const N: usize = 2000;
    std::thread::scope(|scope| {
        scope.spawn(|| paho_publish(&server, "paho-v311", "311", N, None));
        scope.spawn(|| paho_publish(&server, "paho-v5", "5", N, None));
    });
    // Acknowledged means appended: everything is in the stream the moment the clients end.
    let all = events(&server, "devices");
    assert_eq!(all.len(), 2 * N);
    // One device's messages stay in order (its client id is the partition key).
    let seqs: Vec<i64> = all
        .iter()
        .filter(|e| e["IoTHub"]["ConnectionDeviceId"] == "paho-v5")
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, (0..N as i64).collect::<Vec<_>>());
    let rows = server.wait_for(
        "SELECT device, COUNT(*) AS n, COUNT(DISTINCT seq) AS d FROM readings GROUP BY device ORDER BY device",
        |rows| rows.len() == 2 && rows.iter().all(|r| int(&r[1]) >= N as i64),
    );
    for (row, device) in rows.iter().zip(["paho-v311", "paho-v5"]) {
        assert_eq!(row[0], device);
        assert_eq!(int(&row[1]), N as i64, "{rows:?}");
        assert_eq!(int(&row[2]), N as i64, "{rows:?}");
    }
    let sums = server.wait_for(
        "SELECT device, SUM(n) AS n FROM device_counts GROUP BY device ORDER BY device",
        |rows| rows.len() == 2 && rows.iter().all(|r| int(&r[1]) >= N as i64),
    );
    assert_eq!(
        sums.iter().map(|r| int(&r[1])).collect::<Vec<_>>(),
        [N as i64, N as i64]
    );
    assert_eq!(
        metric(&server, "eddy_mqtt_events_appended_total"),
        2 * N as u64
    );
}

#[test]
fn kill_9_after_qos1_acks_loses_nothing() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(dir.path());
    paho_publish(&server, "crash-v5", "5", 500, None);
    paho_publish(&server, "crash-v311", "311", 500, None);
    server.kill();
    let server = ServerProcess::start(dir.path());
    let all = events(&server, "devices");
    assert_eq!(all.len(), 1000);
    for device in ["crash-v5", "crash-v311"] {
        let seqs: Vec<i64> = all
            .iter()
            .filter(|e| e["IoTHub"]["ConnectionDeviceId"] == device)
            .map(|e| e["seq"].as_i64().expect("seq"))
            .collect();
        assert_eq!(seqs, (0..500).collect::<Vec<_>>(), "{device}");
    }
}

#[test]
fn malformed_payload_is_refused_and_counted() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(dir.path());
    // v5: PUBACK 0x99 "payload format invalid".
    let out = mosquitto_pub(
        &server,
        &[
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-i",
            "bad-5",
            "-t",
            "t",
            "-m",
            "{not json",
        ],
    );
    let said = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(said.contains("payload format invalid"), "{said}");
    // 3.1.1 has no negative PUBACK: acknowledged, dropped, counted.
    let out = mosquitto_pub(
        &server,
        &[
            "-V", "mqttv311", "-q", "1", "-i", "bad-311", "-t", "t", "-m", "[1, 2]",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let out = mosquitto_pub(
        &server,
        &[
            "-V",
            "mqttv311",
            "-q",
            "0",
            "-i",
            "good",
            "-t",
            "t",
            "-m",
            r#"{"ok":1}"#,
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let all = wait_for_events(&server, "devices", 1);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["ok"], 1);
    assert_eq!(metric(&server, "eddy_mqtt_malformed_payloads_total"), 2);
}

#[test]
fn auth_token_is_the_password_when_set() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start_with(dir.path(), &["--auth-token", "s3cret"]);
    for version in ["mqttv311", "mqttv5"] {
        for password in [None, Some("wrong")] {
            let mut args = vec!["-V", version, "-q", "1", "-i", "intruder", "-t", "t"];
            args.extend(["-m", r#"{"x":1}"#]);
            if let Some(p) = password {
                args.extend(["-u", "intruder", "-P", p]);
            }
            let out = mosquitto_pub(&server, &args);
            let said = String::from_utf8_lossy(&out.stderr).to_lowercase();
            assert!(
                !out.status.success() && said.contains("not authori"),
                "{version} {password:?}: {said}"
            );
        }
        let out = mosquitto_pub(
            &server,
            &[
                "-V",
                version,
                "-q",
                "1",
                "-i",
                "dev",
                "-u",
                "dev",
                "-P",
                "s3cret",
                "-t",
                "t",
                "-m",
                r#"{"x":2}"#,
            ],
        );
        assert!(out.status.success(), "{version}: {out:?}");
    }
    paho_publish(&server, "paho-auth", "5", 10, Some("s3cret"));
    // The HTTP API reads with the bearer token; the anonymous read is refused.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let status = agent
        .get(format!("{}/api/streams", server.base))
        .call()
        .expect("request")
        .status();
    assert_eq!(status.as_u16(), 401);
    let page: Value = agent
        .get(format!(
            "{}/api/streams/devices/events?partition=0&max=100",
            server.base
        ))
        .header("Authorization", "Bearer s3cret")
        .call()
        .expect("request")
        .body_mut()
        .read_json()
        .expect("events");
    assert_eq!(page["events"].as_array().map(Vec::len), Some(12));
    drop(server);

    // Without --auth-token any credentials (or none) are accepted.
    let dir = tempfile::tempdir().expect("tempdir");
    let open = ServerProcess::start(dir.path());
    let out = mosquitto_pub(
        &open,
        &[
            "-V", "mqttv5", "-q", "1", "-i", "anyone", "-u", "x", "-P", "y", "-t", "t", "-m", "{}",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(wait_for_events(&open, "devices", 1).len(), 1);
}

#[test]
fn routes_send_topics_to_streams() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start_with(
        dir.path(),
        &[
            "--mqtt-route",
            "devices/+/alerts=alerts",
            "--mqtt-route",
            "devices/#=telemetry",
            "--mqtt-stream",
            "other",
        ],
    );
    for topic in ["devices/d1/alerts", "devices/d1/temp", "misc"] {
        let out = mosquitto_pub(
            &server,
            &["-q", "1", "-i", "d1", "-t", topic, "-m", r#"{"n":1}"#],
        );
        assert!(out.status.success(), "{out:?}");
    }
    for stream in ["alerts", "telemetry", "other"] {
        assert_eq!(events(&server, stream).len(), 1, "{stream}");
    }
}
