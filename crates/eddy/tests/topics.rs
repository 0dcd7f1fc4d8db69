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

/// `eddy bench gen nexmark --server` posts the generator's events into the streams the
/// Nexmark queries read: the same events, in the same order, that `--out` writes as files,
/// and a job running q1 on them sees every bid.
#[test]
fn bench_gen_nexmark_posts_into_the_query_streams() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = "nexmark-t0k";
    let server = ServerProcess::start_with(&dir.path().join("data"), &["--auth-token", token]);
    let files = dir.path().join("files");
    let generated = stdout_of(&eddy(
        &server,
        &[
            "bench",
            "gen",
            "nexmark",
            "--events",
            "2000",
            "--out",
            files.to_str().expect("utf-8 path"),
            "--auth-token",
            token,
        ],
        None,
    ));
    assert!(
        generated.contains("wrote 40 persons, 120 auctions, 1840 bids")
            && generated.contains("posted 40 persons, 120 auctions, 1840 bids to"),
        "{generated}"
    );
    for kind in ["person", "auction", "bid"] {
        let written = std::fs::read_to_string(files.join(kind).join("part-0.ndjson"))
            .expect("generated file");
        let posted = stdout_of(&eddy(
            &server,
            &["consume", kind, "--auth-token", token],
            None,
        ));
        assert_eq!(posted, written, "stream {kind} holds the file's events");
    }

    let q1 = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../bench/nexmark/q1.sql"
    ))
    .expect("q1.sql");
    server.create_job("q1", &q1);
    server.wait_for("SELECT COUNT(*) FROM output", |rows| {
        rows.first()
            .and_then(|r| r.first())
            .is_some_and(|n| common::int(n) == 1840)
    });
}
