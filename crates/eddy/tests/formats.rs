//! Streams that declare a payload format: CSV and Avro (embedded schema) over HTTP and
//! over Kafka (confluent-kafka, fastavro), decoded by jobs; malformed payloads are refused
//! over HTTP with their position, and over Kafka counted, logged with their offset and
//! sent to the dead-letter stream.

mod common;

use common::ServerProcess;
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

fn put(server: &ServerProcess, path: &str, body: &Value) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .put(format!("{}{path}", server.base))
        .send(body.to_string())
        .expect("request");
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_json().unwrap_or(Value::Null),
    )
}

fn get_text(server: &ServerProcess, path: &str) -> String {
    ureq::get(format!("{}{path}", server.base))
        .call()
        .expect("GET")
        .body_mut()
        .read_to_string()
        .expect("text")
}

/// Produces Avro container files (two records each) and one garbage message with
/// confluent-kafka; fastavro writes the containers, schema embedded.
fn produce_avro(bootstrap: &str, topic: &str) {
    let script = format!(
        r#"
import io, fastavro
from confluent_kafka import Producer
schema = fastavro.parse_schema({{"type": "record", "name": "Reading", "fields": [
    {{"name": "id", "type": "long"}}, {{"name": "site", "type": "string"}},
    {{"name": "temp", "type": ["null", "double"]}}]}})
def container(rows):
    out = io.BytesIO()
    fastavro.writer(out, schema, rows)
    return out.getvalue()
p = Producer({{"bootstrap.servers": "{bootstrap}", "acks": "all"}})
p.produce("{topic}", container([{{"id": 1, "site": "a", "temp": 20.5}}, {{"id": 2, "site": "b", "temp": None}}]))
p.produce("{topic}", b"this is not avro")
p.produce("{topic}", container([{{"id": 3, "site": "a", "temp": 21.0}}, {{"id": 4, "site": "c", "temp": 19.5}}]))
assert p.flush(30) == 0
"#
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs (scripts/test.sh installs confluent-kafka and fastavro)");
    assert!(
        out.status.success(),
        "producer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn csv_and_avro_streams_feed_jobs_and_malformed_payloads_are_dead_lettered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(dir.path());

    // CSV over HTTP: checked whole, refused with the line of the bad row.
    let (status, made) = put(
        &server,
        "/api/streams/csvreadings",
        &json!({ "format": "csv" }),
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["format"], "csv");
    let (status, answer) = server.post_bytes(
        "/api/streams/csvreadings/events",
        b"id,site,temp\n1,a,20.5\n2,b,21\n3,a,19\n",
    );
    assert_eq!((status, &answer["accepted"]), (200, &json!(3)), "{answer}");
    let (status, answer) =
        server.post_bytes("/api/streams/csvreadings/events", b"id,site\n4,a\n5\n");
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("line 3"),
        "{answer}"
    );
    let (status, _) = put(
        &server,
        "/api/streams/csvreadings",
        &json!({ "format": "avro" }),
    );
    assert_eq!(status, 400, "a stream keeps the format it declared");

    // Avro over Kafka.
    let (status, made) = put(
        &server,
        "/api/streams/avroreadings",
        &json!({ "format": "avro", "partitions": 1 }),
    );
    assert_eq!(status, 201, "{made}");
    produce_avro(&server.kafka, "avroreadings");

    server.create_job(
        "csv",
        "SELECT CAST(id AS bigint) AS id, site INTO csvout FROM csvreadings",
    );
    server.create_job(
        "avro",
        "SELECT id, site, temp INTO avroout FROM avroreadings",
    );
    let csv = server.wait_for("SELECT id, site FROM csvout ORDER BY id", |r| r.len() >= 3);
    assert_eq!(
        csv.iter().map(|r| r[1].clone()).collect::<Vec<_>>(),
        [json!("a"), json!("b"), json!("a")]
    );
    let avro = server.wait_for("SELECT id, site, temp FROM avroout ORDER BY id", |r| {
        r.len() >= 4
    });
    let ids: Vec<i64> = avro.iter().map(|r| common::int(&r[0])).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    assert_eq!(avro[1][2], Value::Null, "an Avro null stays NULL");

    // The garbage message: counted, and in the dead-letter stream with its offset.
    let deadline = Instant::now() + Duration::from_secs(30);
    let letters = loop {
        let body = get_text(
            &server,
            "/api/streams/avroreadings-deadletter/events?partition=0&offset=0",
        );
        let body: Value = serde_json::from_str(&body).expect("JSON");
        let events = body["events"].as_array().cloned().unwrap_or_default();
        if !events.is_empty() || Instant::now() > deadline {
            break events;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0]["value"];
    assert_eq!(letter["stream"], "avroreadings");
    assert_eq!(letter["offset"], 1, "{letter}");
    assert!(
        letter["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("avro"),
        "{letter}"
    );
    let metrics = get_text(&server, "/metrics");
    assert!(
        metrics.contains("eddy_job_malformed_events_total{job=\"avro\"} 1"),
        "{metrics}"
    );
}
