//! Starting `eddy server` as a child process and talking to it over HTTP.
// Each test binary uses its own part of these helpers.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `eddy server`; killed (SIGKILL) when dropped.
pub struct ServerProcess {
    child: Child,
    /// Kept open so the server never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
    /// `http://ADDR` of the API.
    pub base: String,
    /// `host:port` of its Kafka protocol listener.
    pub kafka: String,
    /// `host:port` of its MQTT listener.
    pub mqtt: String,
    /// The `--auth-token` it was started with; the helpers below send it.
    pub token: Option<String>,
}

impl ServerProcess {
    /// Starts a server on a free port with one partition per stream, and waits for its
    /// `eddy listening http=ADDR` line.
    pub fn start(data_dir: &Path) -> ServerProcess {
        ServerProcess::start_with(data_dir, &[])
    }

    /// Like [`ServerProcess::start`], with more `eddy server` arguments (e.g. `--auth-token`).
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args([
                "server",
                "--http",
                "127.0.0.1:0",
                "--kafka",
                "127.0.0.1:0",
                "--mqtt",
                "127.0.0.1:0",
                "--partitions",
                "1",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("eddy server starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("read the listening line");
        let (addr, kafka, mqtt) = line
            .trim()
            .strip_prefix("eddy listening http=")
            .and_then(|rest| rest.split_once(" kafka="))
            .and_then(|(addr, rest)| {
                let (kafka, mqtt) = rest.split_once(" mqtt=")?;
                Some((addr, kafka, mqtt))
            })
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let token = extra
            .iter()
            .position(|a| *a == "--auth-token")
            .and_then(|i| extra.get(i + 1))
            .map(|t| t.to_string());
        ServerProcess {
            base: format!("http://{addr}"),
            kafka: kafka.to_string(),
            mqtt: mqtt.to_string(),
            token,
            child,
            _stdout: stdout,
        }
    }

    /// `kill -9`: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// POSTs a JSON body; returns the status and the JSON answer.
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_bytes(path, body.to_string().as_bytes())
    }

    /// POSTs raw bytes (e.g. NDJSON events).
    pub fn post_bytes(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut request = agent.post(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = request.send(body).expect("request");
        let status = response.status().as_u16();
        (
            status,
            response.body_mut().read_json().unwrap_or(Value::Null),
        )
    }

    /// Creates a job that accepts historical timestamps.
    pub fn create_job(&self, name: &str, query: &str) {
        let (status, answer) = self.post(
            "/api/jobs",
            &json!({ "name": name, "query": query, "late_arrival_tolerance_s": -1 }),
        );
        assert!((200..300).contains(&status), "job {name} refused: {answer}");
    }

    /// Posts NDJSON events; every one must be acknowledged.
    pub fn post_events(&self, stream: &str, events: &[Value]) {
        let body: String = events.iter().map(|e| format!("{e}\n")).collect();
        let (status, answer) =
            self.post_bytes(&format!("/api/streams/{stream}/events"), body.as_bytes());
        assert_eq!(status, 200, "events refused: {answer}");
    }

    /// Rows of a store query, or `None` while the server refuses it (e.g. no table yet).
    pub fn query(&self, sql: &str) -> Option<Vec<Vec<Value>>> {
        let (status, answer) = self.post("/api/query", &json!({ "sql": sql }));
        (status == 200).then(|| serde_json::from_value(answer["rows"].clone()).expect("rows"))
    }

    /// Polls `sql` until `done` accepts its rows; fails after a generous deadline.
    pub fn wait_for(&self, sql: &str, done: impl Fn(&[Vec<Value>]) -> bool) -> Vec<Vec<Value>> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(rows) = self.query(sql) {
                if done(&rows) {
                    return rows;
                }
                last = Some(rows);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{sql} never gave the expected rows; last answer: {last:?}");
    }
}

impl ServerProcess {
    /// The tour's job: cars per toll in 5-minute windows into `TollCounts`, fed four events and
    /// one that closes their windows, so three rows come out.
    pub fn start_toll_counts(&self) {
        self.create_job(
            "toll-counts",
            "SELECT TollId, COUNT(*) AS Cars, System.Timestamp() AS WindowEnd INTO TollCounts \
             FROM tolls TIMESTAMP BY EntryTime GROUP BY TollId, TumblingWindow(minute, 5)",
        );
        let event = |toll: i64, time: &str| json!({ "TollId": toll, "EntryTime": time });
        self.post_events(
            "tolls",
            &[
                event(1, "2024-01-01T00:00:10Z"),
                event(1, "2024-01-01T00:01:30Z"),
                event(2, "2024-01-01T00:05:00Z"),
                event(1, "2024-01-01T00:06:00Z"),
            ],
        );
        // Closes every window before it; its own window stays open.
        self.post_events("tolls", &[event(9, "2024-01-01T00:30:30Z")]);
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A number cell as i64 (the store may answer integers or floats).
pub fn int(value: &Value) -> i64 {
    value
        .as_i64()
        .or_else(|| value.as_f64().map(|f| f as i64))
        .unwrap_or_else(|| panic!("not a number: {value}"))
}
