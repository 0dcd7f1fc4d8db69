//! `eddy demo` and `eddy query` through the real binary.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn eddy(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("eddy runs")
}

fn query_json(sql: &str, data_dir: &Path) -> Vec<Value> {
    let output = eddy(&["query", sql, "--format", "json"], data_dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "eddy query failed: {stderr}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

#[test]
fn demo_produces_congestion_rows_that_query_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = eddy(
        &["demo", "--duration-s", "5", "--http", "127.0.0.1:0"],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&demo.stdout);
    assert!(
        demo.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&demo.stderr)
    );
    assert!(
        stdout.starts_with("eddy listening http=127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("dashboard: http://127.0.0.1:"), "{stdout}");

    // The two minutes of backfill close at least eleven 10-second windows for all 40 segments.
    let rows = query_json(
        "SELECT COUNT(DISTINCT SegmentId) AS segments, COUNT(*) AS rows, MIN(Readings) AS lo FROM SegmentCongestion",
        dir.path(),
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["segments"], 40, "{rows:?}");
    assert!(
        rows[0]["rows"].as_i64().is_some_and(|n| n >= 40 * 11),
        "{rows:?}"
    );
    assert!(rows[0]["lo"].as_i64().is_some_and(|n| n >= 1), "{rows:?}");
    let levels = query_json(
        "SELECT DISTINCT Congestion FROM segmentcongestion",
        dir.path(),
    );
    for level in &levels {
        let level = level["Congestion"].as_str().unwrap_or_default();
        assert!(
            ["free", "moderate", "heavy", "jam"].contains(&level),
            "unknown level {level}"
        );
    }
    assert!(!levels.is_empty());

    let table = eddy(
        &[
            "query",
            "SELECT COUNT(DISTINCT SegmentId) AS segments FROM SegmentCongestion",
        ],
        dir.path(),
    );
    assert!(table.status.success());
    assert_eq!(
        String::from_utf8_lossy(&table.stdout),
        " segments\n----------\n       40\n(1 row)\n"
    );
    let csv = eddy(
        &[
            "query",
            "SELECT COUNT(DISTINCT SegmentId) AS segments FROM SegmentCongestion",
            "--format",
            "csv",
        ],
        dir.path(),
    );
    assert_eq!(String::from_utf8_lossy(&csv.stdout), "segments\r\n40\r\n");

    let bad = eddy(
        &["query", "SELECT nosuch FROM SegmentCongestion"],
        dir.path(),
    );
    assert_eq!(bad.status.code(), Some(2), "a bad query is a usage error");
    assert!(String::from_utf8_lossy(&bad.stderr).starts_with("error: "));
}

/// `eddy bench gen nexmark` writes the three inputs, and `eddy bench nexmark` runs the
/// queries over them and prints one row per query (q0 passes every bid through).
#[test]
fn bench_generates_nexmark_files_and_runs_queries_on_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("nexmark");
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("eddy runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "eddy {args:?} failed: {stderr}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let out_arg = out.to_str().expect("utf-8 path");
    let generated = run(&[
        "bench", "gen", "nexmark", "--events", "2000", "--out", out_arg,
    ]);
    assert!(
        generated.starts_with("wrote 40 persons, 120 auctions, 1840 bids"),
        "{generated}"
    );
    for kind in ["person", "auction", "bid"] {
        assert!(out.join(kind).is_dir(), "{kind}/ missing");
    }
    let table = run(&["bench", "nexmark", "--dir", out_arg, "--queries", "q0"]);
    assert!(table.contains("| q0 | 1840 |"), "{table}");
}

#[test]
fn bench_latency_reports_both_queries_and_writes_a_timeline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let timeline = dir.path().join("timeline.txt");
    let output = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["bench", "latency", "--rate", "2000", "--seconds", "1"])
        .arg("--timeline")
        .arg(&timeline)
        .env("RUST_LOG", "warn")
        .output()
        .expect("eddy runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "eddy bench latency failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // 2 000 events/s for the warm-up second and the measured one; half pass the filter.
    assert!(stdout.starts_with("4000 events at"), "{stdout}");
    assert!(
        stdout.contains("| 1000 "),
        "filter rows of the measured second: {stdout}"
    );
    assert!(stdout.contains("tumbling 100 ms COUNT"), "{stdout}");
    let lines: Vec<String> = std::fs::read_to_string(&timeline)
        .expect("timeline written")
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines[0], "sent_us post_us slowest_row_us");
    // One line per batch (100 a second), each with the filter's slowest row found.
    assert_eq!(lines.len(), 1 + 200, "{lines:?}");
    for line in &lines[1..] {
        let fields: Vec<i64> = line
            .split(' ')
            .map(|f| f.parse().expect("numbers"))
            .collect();
        // A row can be read back before its POST's answer reaches the producer, so the two
        // durations are not ordered; both are there.
        assert!(fields[1] > 0 && fields[2] > 0, "{line}");
    }
}
