//! `eddy topics`, `eddy produce` and `eddy consume` against a running server, and consumer
//! lag in `/metrics`: the operations a Kafka user reaches for first.

mod common;

use common::ServerProcess;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn eddy(server: &ServerProcess, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .args(["--server", &server.base])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("eddy runs");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("eddy finishes")
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn topics_produce_consume_and_group_lag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(dir.path());

    let created = eddy(
        &server,
        &["topics", "create", "Readings", "--partitions", "3"],
        None,
    );
    assert!(stdout_of(&created).contains("Readings has 3 partitions"));
    let again = eddy(
        &server,
        &["topics", "create", "readings", "--partitions", "2"],
        None,
    );
    assert_eq!(
        again.status.code(),
        Some(2),
        "a partition-count conflict is a usage error"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists with 3 partitions"));

    let lines: String = (0..30).map(|i| format!("{{\"i\":{i}}}\n")).collect();
    let produced = eddy(&server, &["produce", "readings"], Some(&lines));
    assert!(stdout_of(&produced).is_empty());
    assert!(String::from_utf8_lossy(&produced.stderr).contains("produced 30 events"));

    let listed = stdout_of(&eddy(&server, &["topics", "list"], None));
    let row = listed
        .lines()
        .find(|l| l.starts_with("Readings"))
        .unwrap_or_else(|| panic!("Readings listed: {listed}"));
    assert_eq!(row.split_whitespace().nth(2), Some("30"), "{row}");

    // A group reads 12 events and commits; the rest is its lag.
    let first = stdout_of(&eddy(
        &server,
        &[
            "consume",
            "readings",
            "--group",
            "audit",
            "--max-events",
            "12",
        ],
        None,
    ));
    assert_eq!(first.lines().count(), 12, "{first}");
    let described = stdout_of(&eddy(&server, &["topics", "describe", "readings"], None));
    let lag: u64 = described
        .lines()
        .filter(|l| l.starts_with("audit"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum();
    let committed_partitions = described.lines().filter(|l| l.starts_with("audit")).count();
    assert!(committed_partitions >= 1, "{described}");
    let metrics = ureq::get(format!("{}/metrics", server.base))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("metrics text");
    let metric_lag: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("eddy_consumer_group_lag_events{group=\"audit\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(metric_lag, lag, "metrics and describe agree:\n{metrics}");

    // The same group resumes where it committed: together the two runs read every event once.
    let rest = stdout_of(&eddy(
        &server,
        &["consume", "readings", "--group", "audit"],
        None,
    ));
    let mut seen: Vec<i64> = first
        .lines()
        .chain(rest.lines())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("JSON")["i"]
                .as_i64()
                .expect("i")
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..30).collect::<Vec<_>>());
    let described = stdout_of(&eddy(&server, &["topics", "describe", "readings"], None));
    assert!(
        described
            .lines()
            .filter(|l| l.starts_with("audit"))
            .all(|l| l.ends_with(" 0")),
        "no lag once everything is consumed:\n{described}"
    );

    // Without a group, consume reads from the beginning; --metadata shows where each came from.
    let all = stdout_of(&eddy(&server, &["consume", "readings", "--metadata"], None));
    assert_eq!(all.lines().count(), 30);
    let first_event: serde_json::Value =
        serde_json::from_str(all.lines().next().expect("a line")).expect("JSON");
    assert!(
        first_event["offset"].is_u64() && first_event["partition"].is_u64(),
        "{first_event}"
    );

    let deleted = eddy(&server, &["topics", "delete", "readings"], None);
    assert!(stdout_of(&deleted).contains("deleted topic readings"));
    let gone = eddy(&server, &["topics", "describe", "readings"], None);
    assert_eq!(gone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("readings"));
}
