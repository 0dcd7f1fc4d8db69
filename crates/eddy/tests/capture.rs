//! Parquet capture through the real binary, read back by DuckDB: every acknowledged event
//! lands in exactly one file under `date=/hour=` folders, also across a `kill -9`.

mod common;

use common::ServerProcess;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn start(data: &Path, out: &Path) -> ServerProcess {
    let capture = format!("readings={}", out.display());
    ServerProcess::start_with(
        data,
        &["--capture-parquet", &capture, "--capture-interval-s", "0.2"],
    )
}

/// (rows, distinct ids, distinct hour folders) of every Parquet file, as DuckDB reads them.
fn duckdb_summary(out: &Path) -> Option<(u64, u64, u64)> {
    let glob = format!("{}/readings/**/*.parquet", out.display());
    let script = format!(
        "import duckdb\n\
         r = duckdb.sql(\"SELECT count(*), count(DISTINCT id), count(DISTINCT date || hour), \
         min(PartitionId) >= 0 AND min(EventEnqueuedUtcTime) IS NOT NULL \
         FROM read_parquet('{glob}', hive_partitioning = true)\").fetchall()[0]\n\
         assert r[3], r\n\
         print(r[0], r[1], r[2])"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed ({e}); scripts/test.sh installs duckdb"));
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("No files found"),
            "DuckDB failed on the capture: {stderr}"
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let n: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    Some((n[0], n[1], n[2]))
}

fn wait_for_rows(out: &Path, rows: u64) -> (u64, u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let summary = duckdb_summary(out);
        if let Some(s) = summary
            && (s.0 >= rows || Instant::now() > deadline)
        {
            return s;
        }
        assert!(Instant::now() < deadline, "no Parquet files appeared");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_stream_is_captured_to_parquet_once_across_kill_9() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    let server = start(data.path(), out.path());
    let batch = |range: std::ops::Range<i64>| -> Vec<serde_json::Value> {
        range.map(|i| json!({ "id": i, "temp": 20.0 + i as f64 / 10.0, "site": format!("s{}", i % 3) })).collect()
    };
    server.post_events("readings", &batch(0..500));
    let first = wait_for_rows(out.path(), 500);
    assert_eq!(first.0, 500, "{first:?}");
    assert_eq!(first.1, 500);
    assert!(first.2 >= 1);

    server.post_events("readings", &batch(500..800));
    server.kill();
    let server = start(data.path(), out.path());
    server.post_events("readings", &batch(800..1000));
    let all = wait_for_rows(out.path(), 1000);
    std::thread::sleep(Duration::from_millis(800));
    let settled = duckdb_summary(out.path()).expect("files");
    assert_eq!(settled, all, "nothing more was written after catching up");
    assert_eq!(
        (all.0, all.1),
        (1000, 1000),
        "each event in exactly one file"
    );
    drop(server);
}
