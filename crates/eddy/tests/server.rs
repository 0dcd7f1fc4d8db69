//! `eddy server` as a user runs it: a child process, events over HTTP, a continuous job,
//! results through `/api/query`, and a `kill -9` in the middle.

mod common;

use common::{ServerProcess, int};
use serde_json::{Value, json};

#[test]
fn job_results_are_exact_windows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(dir.path());
    server.start_toll_counts();
    let rows = server.wait_for(
        "SELECT TollId, Cars, WindowEnd FROM tollcounts ORDER BY WindowEnd, TollId",
        |rows| rows.len() >= 3,
    );
    let summary: Vec<(i64, i64, String)> = rows
        .iter()
        .map(|r| {
            (
                int(&r[0]),
                int(&r[1]),
                r[2].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(summary.len(), 3, "{rows:?}");
    assert_eq!((summary[0].0, summary[0].1), (1, 2));
    assert_eq!((summary[1].0, summary[1].1), (2, 1));
    assert_eq!((summary[2].0, summary[2].1), (1, 1));
    assert!(summary[0].2.starts_with("2024-01-01T00:05:00"), "{rows:?}");
    assert!(summary[1].2.starts_with("2024-01-01T00:05:00"), "{rows:?}");
    assert!(summary[2].2.starts_with("2024-01-01T00:10:00"), "{rows:?}");

    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args([
            "query",
            "SELECT TollId, Cars FROM TollCounts ORDER BY WindowEnd, TollId",
            "--format",
            "csv",
        ])
        .args(["--server", &server.base])
        .output()
        .expect("eddy query runs");
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&cli.stdout),
        "TollId,Cars\r\n1,2\r\n2,1\r\n1,1\r\n"
    );
}

/// Event `i` lies 100 ms after event `i - 1`, so every 1-second window holds exactly 10.
fn events(range: std::ops::Range<i64>) -> Vec<Value> {
    range
        .map(|i| {
            let ms = 50 + i * 100;
            json!({ "i": i, "ts": format!("2024-01-01T00:{:02}:{:02}.{:03}Z", ms / 60_000, ms / 1000 % 60, ms % 1000) })
        })
        .collect()
}

#[test]
fn every_acknowledged_event_counts_once_across_kill_9() {
    const QUERY: &str = "SELECT COUNT(*) AS n, System.Timestamp() AS t INTO counts FROM ev TIMESTAMP BY ts \
                         GROUP BY TumblingWindow(second, 1)";
    const TOTALS: &str =
        "SELECT COUNT(*) AS windows, SUM(n) AS total, MIN(n) AS lo, MAX(n) AS hi FROM counts";
    let dir = tempfile::tempdir().expect("tempdir");
    let first = ServerProcess::start(dir.path());
    first.create_job("counter", QUERY);
    for chunk in events(0..500).chunks(100) {
        first.post_events("ev", chunk);
    }
    // Some output has landed before the crash, so recovery must not count it again.
    first.wait_for(TOTALS, |rows| {
        rows.first()
            .is_some_and(|r| r[1].as_f64().is_some_and(|n| n >= 300.0))
    });
    first.kill();

    let second = ServerProcess::start(dir.path());
    for chunk in events(500..1000).chunks(100) {
        second.post_events("ev", chunk);
    }
    second.post_events(
        "ev",
        &[json!({ "i": -1, "ts": "2024-01-02T00:00:00.500Z" })],
    );
    let rows = second.wait_for(TOTALS, |rows| {
        rows.first()
            .is_some_and(|r| r[1].as_f64().is_some_and(|n| n >= 1000.0))
    });
    let totals: Vec<i64> = rows[0].iter().map(int).collect();
    assert_eq!(
        totals,
        [100, 1000, 10, 10],
        "windows, events, min and max per window"
    );
    let duplicates = second
        .query("SELECT t FROM counts GROUP BY t HAVING COUNT(*) > 1")
        .expect("query");
    assert!(
        duplicates.is_empty(),
        "windows written twice: {duplicates:?}"
    );
}

/// A stock Kafka producer (kcat) feeds a job, and a stock consumer reads the job's output
/// topic: topics are streams, whichever protocol wrote them.
#[test]
fn kafka_producers_feed_jobs_and_consumers_read_their_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(dir.path());
    let (status, answer) = server.post(
        "/api/jobs",
        &json!({
            "name": "kafka-counts",
            "query": "SELECT TollId, COUNT(*) AS Cars INTO TollCounts FROM tolls \
                      TIMESTAMP BY EntryTime GROUP BY TollId, TumblingWindow(minute, 5)",
            "late_arrival_tolerance_s": -1,
            "outputs": { "TollCounts": { "type": "stream", "name": "toll-counts" } }
        }),
    );
    assert_eq!(status, 201, "{answer}");
    let messages = [
        r#"{"TollId": 1, "EntryTime": "2024-01-01T00:00:10Z"}"#,
        r#"{"TollId": 1, "EntryTime": "2024-01-01T00:01:30Z"}"#,
        r#"{"TollId": 2, "EntryTime": "2024-01-01T00:02:00Z"}"#,
        r#"{"TollId": 9, "EntryTime": "2024-01-01T00:30:30Z"}"#,
    ];
    kcat(
        &["-P", "-b", &server.kafka, "-t", "tolls"],
        &(messages.join("\n") + "\n"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let rows: Vec<Value> = loop {
        let out = kcat(
            &[
                "-C",
                "-b",
                &server.kafka,
                "-t",
                "toll-counts",
                "-e",
                "-q",
                "-o",
                "beginning",
            ],
            "",
        );
        let rows: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("each output record is JSON"))
            .collect();
        if rows.len() >= 2 || std::time::Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(
        rows,
        vec![
            json!({"TollId": 1, "Cars": 2}),
            json!({"TollId": 2, "Cars": 1}),
        ]
    );
}

#[test]
fn reference_data_is_refreshed_while_the_job_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sites = dir.path().join("sites.json");
    std::fs::write(&sites, r#"[{"id": 1, "name": "old"}]"#).expect("write sites");
    let server = ServerProcess::start(&dir.path().join("data"));
    let (status, answer) = server.post(
        "/api/jobs",
        &json!({
            "name": "enrich",
            "query": "SELECT e.n, s.name INTO enriched FROM readings e JOIN Sites s ON e.site = s.id",
            "late_arrival_tolerance_s": 0,
            "references": { "Sites": { "path": sites, "refresh_interval_s": 0.2 } },
        }),
    );
    assert!((200..300).contains(&status), "job refused: {answer}");
    const ROWS: &str = "SELECT n, name FROM enriched ORDER BY n";
    server.post_events("readings", &[json!({ "n": 1, "site": 1 })]);
    let rows = server.wait_for(ROWS, |rows| !rows.is_empty());
    assert_eq!(rows, vec![vec![json!(1), json!("old")]]);

    std::fs::write(&sites, "{\"id\": 1, \"name\": \"renamed\"}\n").expect("rewrite sites");
    // Past the refresh interval and a job round: the next event sees the new table.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.post_events("readings", &[json!({ "n": 2, "site": 1 })]);
    let rows = server.wait_for(ROWS, |rows| rows.len() >= 2);
    assert_eq!(
        rows,
        vec![
            vec![json!(1), json!("old")],
            vec![json!(2), json!("renamed")]
        ]
    );

    // A broken reference file refuses the job, naming the file and line.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "id,name\n1,a\n2\n").expect("write bad.csv");
    let (status, answer) = server.post(
        "/api/jobs",
        &json!({
            "name": "broken",
            "query": "SELECT e.n, s.name INTO x FROM readings e JOIN Sites s ON e.site = s.id",
            "references": { "Sites": { "path": bad } },
        }),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("bad.csv:3"), "{answer}");

    // A reference alias the query does not join is refused too.
    let (status, answer) = server.post(
        "/api/jobs",
        &json!({
            "name": "unknown-alias",
            "query": "SELECT e.n, s.name INTO y FROM readings e JOIN Sites s ON e.site = s.id",
            "references": { "Sites": { "path": sites }, "Zones": { "path": sites } },
        }),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("Zones"), "{answer}");
}

#[test]
fn kafka_key_headers_and_position_reach_queries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(dir.path());
    // kcat -K: splits key:value, -H adds a header to every message.
    kcat(
        &[
            "-P",
            "-b",
            &server.kafka,
            "-t",
            "meters",
            "-K",
            ":",
            "-H",
            "trace=t-1",
        ],
        "m-1:{\"id\": 1}\nm-2:{\"id\": 2}\n",
    );
    server.create_job(
        "meta",
        "SELECT id, GetMetadataPropertyValue(meters, '[Kafka].[Key]') AS k, \
         GetMetadataPropertyValue(meters, '[User].[trace]') AS trace, \
         GetMetadataPropertyValue(meters, '[User].[missing]') AS missing, \
         GetMetadataPropertyValue(meters, 'Offset') AS off, PartitionId AS p \
         INTO metered FROM meters",
    );
    let rows = server.wait_for(
        "SELECT id, k, trace, missing, off, p FROM metered ORDER BY id",
        |r| r.len() >= 2,
    );
    assert_eq!(rows[0][1], json!("m-1"), "{rows:?}");
    assert_eq!(rows[1][1], json!("m-2"), "{rows:?}");
    assert_eq!(rows[0][2], json!("t-1"), "{rows:?}");
    assert_eq!(rows[0][3], Value::Null, "{rows:?}");
    assert_eq!((int(&rows[0][4]), int(&rows[1][4])), (0, 1), "{rows:?}");
    assert_eq!(int(&rows[0][5]), 0, "{rows:?}");
}

#[test]
fn a_running_job_reads_partitions_added_with_create_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(dir.path());
    kcat(&["-P", "-b", &server.kafka, "-t", "grows"], "{\"id\": 1}\n");
    // The default late-arrival tolerance lets arrival time move quiet partitions' watermarks.
    let (status, answer) = server.post(
        "/api/jobs",
        &json!({ "name": "grows", "query": "SELECT id, PartitionId AS p INTO grown FROM grows" }),
    );
    assert_eq!(status, 201, "{answer}");
    server.wait_for("SELECT id FROM grown", |r| r.len() == 1);
    // A stock admin client grows the topic from 1 to 3 partitions while the job runs.
    let script = format!(
        "from confluent_kafka.admin import AdminClient, NewPartitions\n\
         a = AdminClient({{'bootstrap.servers': '{}'}})\n\
         for f in a.create_partitions([NewPartitions('grows', 3)]).values(): f.result(30)\n",
        server.kafka
    );
    let status = std::process::Command::new("python3")
        .args(["-c", &script])
        .status()
        .expect("python3 runs (crates/eddy-kafka/tests/setup.sh installs confluent-kafka)");
    assert!(status.success(), "create_partitions failed");
    kcat(
        &["-P", "-b", &server.kafka, "-t", "grows", "-p", "2"],
        "{\"id\": 2}\n",
    );
    let rows = server.wait_for("SELECT id, p FROM grown ORDER BY id", |r| r.len() >= 2);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((int(&rows[1][0]), int(&rows[1][1])), (2, 2), "{rows:?}");
    // After kill -9 and a restart the job keeps reading every partition, from its checkpoint.
    server.kill();
    let server = ServerProcess::start(dir.path());
    kcat(
        &["-P", "-b", &server.kafka, "-t", "grows", "-p", "1"],
        "{\"id\": 3}\n",
    );
    let rows = server.wait_for("SELECT id, p FROM grown ORDER BY id", |r| r.len() >= 3);
    let ids: Vec<i64> = rows.iter().map(|r| int(&r[0])).collect();
    assert_eq!(ids, [1, 2, 3], "{rows:?}");
    assert_eq!(int(&rows[2][1]), 1, "{rows:?}");
}

/// Runs kcat (installed by `crates/eddy-kafka/tests/setup.sh`) with `input` on stdin.
fn kcat(args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("kcat")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kcat runs (install it with crates/eddy-kafka/tests/setup.sh)");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .expect("write to kcat");
    let out = child.wait_with_output().expect("kcat finishes");
    assert!(out.status.success(), "kcat {args:?} failed");
    String::from_utf8(out.stdout).expect("utf-8")
}
