//! End-to-end tests of the HTTP API against a real server on 127.0.0.1:0.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eddy_server::{Server, ServerConfig};
use serde_json::{Value, json};

/// Generous bound for a job to catch up; polling returns as soon as the condition holds.
const CATCH_UP: Duration = Duration::from_secs(30);

struct Harness {
    runtime: tokio::runtime::Runtime,
    server: Option<Server>,
    dir: PathBuf,
    token: Option<String>,
    base: String,
    agent: ureq::Agent,
}

impl Harness {
    fn start(dir: &Path, token: Option<&str>) -> Harness {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut harness = Harness {
            runtime,
            server: None,
            dir: dir.to_path_buf(),
            token: token.map(str::to_string),
            base: String::new(),
            agent,
        };
        harness.boot();
        harness
    }

    fn boot(&mut self) {
        let config = ServerConfig {
            data_dir: self.dir.clone(),
            http: "127.0.0.1:0".parse().unwrap(),
            auth_token: self.token.clone(),
            ..ServerConfig::default()
        };
        let server = self.runtime.block_on(Server::start(config)).unwrap();
        self.base = format!("http://{}", server.http_addr());
        self.server = Some(server);
    }

    fn stop(&mut self) {
        let server = self.server.take().unwrap();
        self.runtime.block_on(server.shutdown()).unwrap();
    }

    fn restart(&mut self) {
        self.stop();
        self.boot();
    }

    fn auth(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}"))
    }

    fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, String) {
        let mut response = response.unwrap();
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap(),
        )
    }

    fn get_text(&self, path: &str) -> (u16, String) {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(auth) = self.auth() {
            request = request.header("Authorization", auth);
        }
        Self::answer(request.call())
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let (status, text) = self.get_text(path);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn send(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut request = match method {
            "POST" => self.agent.post(url),
            "PUT" => self.agent.put(url),
            _ => panic!("no {method}"),
        };
        if let Some(auth) = self.auth() {
            request = request.header("Authorization", auth);
        }
        let (status, text) = Self::answer(request.send(body));
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send("POST", path, &body.to_string())
    }

    fn query(&self, sql: &str) -> Vec<Vec<Value>> {
        let (status, body) = self.post_json("/api/query", &json!({ "sql": sql }));
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body["rows"].clone()).unwrap()
    }

    /// Polls until `sql` returns `n` rows; fails with the last answer after `CATCH_UP`.
    fn wait_for_rows(&self, sql: &str, n: usize) -> Vec<Vec<Value>> {
        let deadline = Instant::now() + CATCH_UP;
        loop {
            let (status, body) = self.post_json("/api/query", &json!({ "sql": sql }));
            let rows: Vec<Vec<Value>> =
                serde_json::from_value(body["rows"].clone()).unwrap_or_default();
            if status == 200 && rows.len() == n {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} rows, got {status} {body}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls until the job has read every input record and its counters stop moving.
    fn wait_until_caught_up(&self, job: &str) -> Value {
        let deadline = Instant::now() + CATCH_UP;
        let mut previous = Value::Null;
        loop {
            let (status, body) = self.get(&format!("/api/jobs/{job}"));
            assert_eq!(status, 200, "{body}");
            let mut counters = body["metrics"].clone();
            counters
                .as_object_mut()
                .unwrap()
                .remove("watermark_delay_s"); // moves with the clock
            let lag: u64 = body["metrics"]["lag"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum();
            if lag == 0 && counters == previous {
                return body;
            }
            assert!(Instant::now() < deadline, "job did not catch up: {body}");
            previous = counters;
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn stream_events(&self, name: &str) -> Option<u64> {
        let (_, streams) = self.get("/api/streams");
        let stream = streams
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"].as_str().unwrap().eq_ignore_ascii_case(name))?;
        Some(
            stream["end_offsets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o.as_u64().unwrap())
                .sum(),
        )
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = self.runtime.block_on(server.shutdown());
        }
    }
}

fn reading(sensor: &str, second: u32, speed: i64) -> Value {
    json!({ "SensorId": sensor, "Speed": speed, "EventTime": format!("2024-01-01T00:{:02}:{:02}Z", second / 60, second % 60) })
}

fn ndjson(events: &[Value]) -> String {
    events.iter().map(|e| format!("{e}\n")).collect()
}

const COUNT_QUERY: &str = "SELECT System.Timestamp() AS WindowEnd, SensorId, COUNT(*) AS Events, SUM(Speed) AS Total\n\
    INTO counts\n\
    FROM readings TIMESTAMP BY EventTime\n\
    GROUP BY SensorId, TumblingWindow(second, 10)";

const COUNTS_SQL: &str =
    "SELECT WindowEnd, SensorId, Events, Total FROM counts ORDER BY WindowEnd, SensorId";

fn count_job() -> Value {
    json!({ "name": "counter", "query": COUNT_QUERY, "late_arrival_tolerance_s": -1 })
}

fn row(window_end: &str, sensor: &str, events: i64, total: i64) -> Vec<Value> {
    vec![
        json!(format!("2024-01-01T00:{window_end}.0000000Z")),
        json!(sensor),
        json!(events),
        json!(total),
    ]
}

#[test]
fn events_are_accepted_as_object_array_and_ndjson() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), None);
    let (status, body) = h.post_json("/api/streams/clicks/events", &json!({ "user": "a" }));
    assert_eq!((status, body), (200, json!({ "accepted": 1 })));
    let (status, body) = h.post_json(
        "/api/streams/clicks/events",
        &json!([{ "user": "b" }, { "user": "c" }]),
    );
    assert_eq!((status, body), (200, json!({ "accepted": 2 })));
    let (status, body) = h.send(
        "POST",
        "/api/streams/Clicks/events",
        "{\"user\":\"d\"}\n{\"user\":\"e\"}\n\n{\"user\":\"f\"}\n",
    );
    assert_eq!((status, body), (200, json!({ "accepted": 3 })));

    let (_, streams) = h.get("/api/streams");
    assert_eq!(streams[0]["name"], "clicks");
    assert_eq!(
        streams[0]["partitions"], 4,
        "created implicitly with the default partition count"
    );
    assert_eq!(h.stream_events("clicks"), Some(6));
}

#[test]
fn keyed_events_land_in_one_partition() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), None);
    let events: Vec<Value> = (0..20).map(|i| json!({ "device": "d1", "n": i })).collect();
    let (status, _) = h.post_json(
        "/api/streams/keyed/events?key=device",
        &Value::Array(events),
    );
    assert_eq!(status, 200);
    let (_, streams) = h.get("/api/streams");
    let mut ends: Vec<u64> = streams[0]["end_offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    ends.sort();
    assert_eq!(ends, vec![0, 0, 0, 20]);
}

#[test]
fn malformed_event_rejects_the_whole_request() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), None);
    assert_eq!(
        h.send("PUT", "/api/streams/orders", r#"{"partitions": 2}"#)
            .0,
        201
    );
    let body = "{\"id\":1}\n{\"id\":2}\n{\"id\":3,}\n{\"id\":4}\n";
    let (status, error) = h.send("POST", "/api/streams/orders/events", body);
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["line"], 3);
    assert!(
        error["error"].as_str().unwrap().starts_with("line 3"),
        "{error}"
    );
    assert_eq!(
        h.stream_events("orders"),
        Some(0),
        "nothing of a rejected request is written"
    );

    let (status, error) = h.send("POST", "/api/streams/orders/events", "[{\"id\":1}, 5]");
    assert_eq!(status, 400, "a non-object event is malformed: {error}");
    assert_eq!(h.stream_events("orders"), Some(0));
}

#[test]
fn stream_creation_is_idempotent_and_conflicts_on_other_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), None);
    assert_eq!(
        h.send("PUT", "/api/streams/tolls", r#"{"partitions": 2}"#)
            .0,
        201
    );
    assert_eq!(
        h.send("PUT", "/api/streams/tolls", r#"{"partitions": 2}"#)
            .0,
        200
    );
    let (status, body) = h.send("PUT", "/api/streams/TOLLS", r#"{"partitions": 3}"#);
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        h.send("PUT", "/api/streams/tolls", r#"{"partitions": 0}"#)
            .0,
        400
    );
    assert_eq!(
        h.send("PUT", "/api/streams/bad%20name", r#"{"partitions": 1}"#)
            .0,
        400
    );
    let (_, streams) = h.get("/api/streams");
    assert_eq!(
        streams,
        json!([{ "name": "tolls", "partitions": 2, "end_offsets": [0, 0], "events": 0, "bytes": 0, "rate": 0.0, "format": "json" }])
    );
}

#[test]
fn job_over_historical_events_writes_exact_tumbling_windows() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), None);
    assert_eq!(
        h.send("PUT", "/api/streams/readings", r#"{"partitions": 2}"#)
            .0,
        201
    );
    let events = [
        reading("a", 1, 50),
        reading("a", 2, 60),
        reading("b", 5, 70),
        reading("a", 12, 80),
    ];
    assert_eq!(
        h.send("POST", "/api/streams/readings/events", &ndjson(&events))
            .0,
        200
    );
    // One event per partition beyond the last window closes it on both partitions.
    let closing = [reading("c", 45, 1), reading("c", 45, 1)];
    assert_eq!(
        h.send("POST", "/api/streams/readings/events", &ndjson(&closing))
            .0,
        200
    );

    let (status, body) = h.post_json("/api/jobs", &count_job());
    assert_eq!(status, 201, "{body}");
    let rows = h.wait_for_rows(COUNTS_SQL, 3);
    assert_eq!(
        rows,
        vec![
            row("00:10", "a", 2, 110),
            row("00:10", "b", 1, 70),
            row("00:20", "a", 1, 80)
        ]
    );

    let job = h.wait_until_caught_up("counter");
    assert_eq!(job["state"], "running");
    assert_eq!(job["metrics"]["input"], 6);
    assert_eq!(job["metrics"]["output"], 3);
    assert_eq!(job["metrics"]["watermark"], "2024-01-01T00:00:45.0000000Z");
    assert_eq!(
        h.post_json("/api/jobs", &count_job()).0,
        409,
        "duplicate job name"
    );

    let (status, tables) = h.get("/api/tables");
    assert_eq!(status, 200);
    assert_eq!(tables[0]["name"], "counts");

    // The dashboard chart's query shape: quoted identifiers, newest first.
    let chart = h.query(
        r#"SELECT "WindowEnd", "Events", "SensorId" FROM "counts" ORDER BY "WindowEnd" DESC LIMIT 5000"#,
    );
    assert_eq!(
        chart[0],
        vec![json!("2024-01-01T00:00:20.0000000Z"), json!(1), json!("a")]
    );

    let (status, metrics) = h.get_text("/metrics");
    assert_eq!(status, 200);
    for line in [
        "eddy_stream_events_appended_total{stream=\"readings\"} 6",
        "eddy_job_input_events_total{job=\"counter\"} 6",
        "eddy_job_output_events_total{job=\"counter\"} 3",
        "eddy_job_late_events_total{job=\"counter\"} 0",
        "eddy_job_dropped_events_total{job=\"counter\"} 0",
        "eddy_job_errors_total{job=\"counter\"} 0",
        "eddy_input_events_total{job=\"counter\",input=\"readings\"} 6",
        "eddy_input_late_events_total{job=\"counter\",input=\"readings\"} 0",
        "eddy_http_requests_total{method=\"POST\",route=\"/api/streams/{name}/events\",status=\"200\"} 2",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in\n{metrics}"
        );
    }
    assert!(
        metrics.contains("eddy_job_watermark_delay_seconds{job=\"counter\"} "),
        "{metrics}"
    );
}

#[test]
fn outputs_bound_to_a_file_and_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::start(dir.path(), None);
    assert_eq!(
        h.send("PUT", "/api/streams/readings", r#"{"partitions": 1}"#)
            .0,
        201
    );
    let file = dir.path().join("counts.ndjson");
    let spec = json!({
        "name": "to-file", "query": COUNT_QUERY, "late_arrival_tolerance_s": -1,
        "outputs": { "Counts": { "type": "file", "path": file } },
    });
    assert_eq!(h.post_json("/api/jobs", &spec).0, 201);
    let alerts = json!({
        "name": "alerts", "query": "SELECT SensorId, Speed INTO fast FROM readings WHERE Speed > 65",
        "outputs": { "fast": { "type": "stream", "name": "fast-cars" } },
    });
    assert_eq!(h.post_json("/api/jobs", &alerts).0, 201);
    let checkpoints =
        ["jobs/to-file/checkpoint.bin", "jobs/alerts/checkpoint.bin"].map(|p| dir.path().join(p));
    let first_checkpoints = checkpoints.clone().map(|p| std::fs::read(p).unwrap());

    let events = [
        reading("a", 1, 50),
        reading("b", 5, 70),
        reading("a", 12, 80),
        reading("c", 45, 1),
    ];
    let server = h.server.as_ref().unwrap();
    assert_eq!(server.ingest("readings", &events).unwrap(), 4);
    assert!(
        server.ingest("readings", &[json!(1)]).is_err(),
        "only objects are events"
    );

    let deadline = Instant::now() + CATCH_UP;
    let lines = loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() == 3 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["SensorId"], "a");
    assert_eq!(lines[0]["WindowEnd"], "2024-01-01T00:00:10.0000000Z");
    assert_eq!(
        h.get("/api/tables").1,
        json!([]),
        "a bound output writes no table"
    );

    h.wait_until_caught_up("alerts");
    assert_eq!(h.stream_events("fast-cars"), Some(2));

    // Crash after the outputs were written but before any checkpoint covered them: both
    // jobs replay everything, the file is cut back and the stream rows are recognised.
    h.stop();
    for (path, bytes) in checkpoints.iter().zip(&first_checkpoints) {
        std::fs::write(path, bytes).unwrap();
    }
    h.boot();
    h.wait_until_caught_up("to-file");
    h.wait_until_caught_up("alerts");
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 3);
    assert_eq!(h.stream_events("fast-cars"), Some(2));

    let url = format!("{}/api/jobs/to-file", h.base);
    assert_eq!(h.agent.delete(&url).call().unwrap().status().as_u16(), 204);
    assert_eq!(h.get("/api/jobs/to-file").0, 404);
    assert!(!dir.path().join("jobs/to-file").exists());
    assert_eq!(h.agent.delete(&url).call().unwrap().status().as_u16(), 404);
}

#[test]
fn auth_token_guards_every_api_route() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), Some("s3cret"));
    let status = |path: &str, auth: Option<&str>| {
        let mut request = h.agent.get(format!("{}{path}", h.base));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        request.call().unwrap().status().as_u16()
    };
    for path in ["/api/streams", "/api/jobs", "/api/tables", "/metrics", "/"] {
        assert_eq!(status(path, None), 401, "{path}");
        assert_eq!(status(path, Some("Bearer wrong")), 401, "{path}");
        assert_eq!(status(path, Some("Bearer s3cret")), 200, "{path}");
    }
    let post = h
        .agent
        .post(format!("{}/api/streams/s/events", h.base))
        .send("{}")
        .unwrap();
    assert_eq!(post.status().as_u16(), 401);
    assert_eq!(
        h.stream_events("s"),
        None,
        "a refused request writes nothing"
    );
    assert_eq!(
        status("/?token=s3cret", None),
        200,
        "the dashboard page takes ?token="
    );
    assert_eq!(
        status("/api/streams?token=s3cret", None),
        401,
        "API routes do not"
    );
    assert_eq!(
        status("/assets/uPlot.iife.min.js", None),
        200,
        "static assets are public"
    );
}

#[test]
fn bad_query_answers_400_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), None);
    let spec =
        json!({ "name": "broken", "query": "SELECT SensorId\nINTO out\nFROM readings WHERE = 3" });
    let (status, body) = h.post_json("/api/jobs", &spec);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["line"], 3, "{body}");
    assert!(body["column"].as_u64().unwrap() >= 1, "{body}");
    assert!(
        body["rendered"]
            .as_str()
            .unwrap()
            .contains("FROM readings WHERE = 3"),
        "{body}"
    );
    assert!(
        h.get("/api/jobs").1.as_array().unwrap().is_empty(),
        "a rejected job is not kept"
    );

    let (status, body) = h.post_json("/api/query", &json!({ "sql": "SELEC nonsense" }));
    assert_eq!(status, 400);
    assert!(body["error"].is_string());
    let (status, _) = h.post_json(
        "/api/jobs",
        &json!({ "name": "x", "query": "SELECT 1", "late": 3 }),
    );
    assert_eq!(status, 400, "unknown spec fields are errors");
}

#[test]
fn job_resumes_after_restart_without_duplicates_or_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::start(dir.path(), None);
    assert_eq!(
        h.send("PUT", "/api/streams/readings", r#"{"partitions": 1}"#)
            .0,
        201
    );
    let phase1 = [
        reading("a", 1, 1),
        reading("a", 3, 2),
        reading("b", 11, 3),
        reading("a", 21, 4),
    ];
    h.send("POST", "/api/streams/readings/events", &ndjson(&phase1));
    assert_eq!(h.post_json("/api/jobs", &count_job()).0, 201);
    h.wait_for_rows(COUNTS_SQL, 2);
    h.wait_until_caught_up("counter");
    let checkpoint = dir.path().join("jobs/counter/checkpoint.bin");
    let early_checkpoint = std::fs::read(&checkpoint).unwrap();

    let phase2 = [
        reading("b", 25, 5),
        reading("a", 33, 6),
        reading("a", 41, 7),
    ];
    h.send("POST", "/api/streams/readings/events", &ndjson(&phase2));
    h.wait_for_rows(COUNTS_SQL, 5);
    h.wait_until_caught_up("counter");
    h.restart();
    h.wait_until_caught_up("counter");
    assert_eq!(
        h.query(COUNTS_SQL).len(),
        5,
        "a clean restart replays nothing"
    );

    // Simulate a crash after the phase-2 rows reached the store but before their checkpoint:
    // the job replays phase 2 and the store skips the sequence numbers it already holds.
    h.stop();
    std::fs::write(&checkpoint, &early_checkpoint).unwrap();
    h.boot();
    let phase3 = [reading("b", 52, 8), reading("z", 75, 9)];
    h.send("POST", "/api/streams/readings/events", &ndjson(&phase3));
    h.wait_for_rows(COUNTS_SQL, 7);
    h.wait_until_caught_up("counter");
    let expected = vec![
        row("00:10", "a", 2, 3),
        row("00:20", "b", 1, 3),
        row("00:30", "a", 1, 4),
        row("00:30", "b", 1, 5),
        row("00:40", "a", 1, 6),
        row("00:50", "a", 1, 7),
        row("01:00", "b", 1, 8),
    ];
    assert_eq!(h.query(COUNTS_SQL), expected);
}

#[test]
fn live_job_closes_windows_on_idle_partitions_by_arrival_time() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), None);
    let spec = json!({
        "name": "live",
        "query": "SELECT System.Timestamp() AS WindowEnd, COUNT(*) AS N INTO live FROM clicks GROUP BY TumblingWindow(second, 1)",
    });
    assert_eq!(h.post_json("/api/jobs", &spec).0, 201);
    // One request: every event has the same arrival time, so one window holds all ten,
    // and it closes once arrival time minus the 5 s late tolerance passes its end.
    let events: Vec<Value> = (0..10).map(|i| json!({ "n": i })).collect();
    assert_eq!(
        h.post_json("/api/streams/clicks/events", &Value::Array(events))
            .1["accepted"],
        10
    );
    let rows = h.wait_for_rows("SELECT N FROM live", 1);
    assert_eq!(rows, vec![vec![json!(10)]]);
}
