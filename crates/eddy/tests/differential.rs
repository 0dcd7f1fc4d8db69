//! Differential test: window aggregates of `eddy run` over random event streams equal the
//! same aggregation computed in batch by DuckDB (`conformance/differential/windows_duckdb.py`).
//!
//! The streams are seeded (the failing seed is in the message), keyed, with duplicate
//! timestamps, events exactly on window boundaries and events out of order within the
//! out-of-order tolerance, which eddy must re-sort to agree with the batch result.

use eddy_engine::time::{format_datetime, parse_datetime};
use serde_json::{Value as J, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const TICKS_PER_MS: i64 = 10_000;
/// 2024-01-01T00:00:00Z in milliseconds.
const START_MS: i64 = 1_704_067_200_000;

/// SplitMix64: a few lines of seeded randomness, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One event: key, value, event time in ms.
struct Event {
    k: &'static str,
    v: i64,
    ms: i64,
}

/// A random stream: steps of 0 to 750 ms in quarter seconds (so whole seconds, window
/// boundaries, recur), then neighbours swapped so some events arrive out of order.
fn stream(seed: u64, count: usize) -> Vec<Event> {
    const KEYS: [&str; 4] = ["a", "b", "c", "d"];
    let mut rng = Rng(seed);
    let mut ms = START_MS;
    let mut events: Vec<Event> = (0..count)
        .map(|_| {
            ms += rng.below(4) as i64 * 250;
            Event {
                k: KEYS[rng.below(4) as usize],
                v: rng.below(201) as i64 - 100,
                ms,
            }
        })
        .collect();
    for i in 1..events.len() {
        if rng.below(5) == 0 {
            events.swap(i - 1, i);
        }
    }
    events
}

/// Writes the events for eddy (ISO event time, arrival = latest event time so far) and
/// for DuckDB (the same fields, time in ms).
fn write_events(events: &[Event], dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut for_eddy = String::new();
    let mut for_duckdb = String::new();
    let mut arrival = i64::MIN;
    for e in events {
        arrival = arrival.max(e.ms);
        let row = json!({
            "k": e.k,
            "v": e.v,
            "t": format_datetime(e.ms * TICKS_PER_MS),
            "EventEnqueuedUtcTime": format_datetime(arrival * TICKS_PER_MS),
        });
        for_eddy.push_str(&row.to_string());
        for_eddy.push('\n');
        for_duckdb.push_str(&json!({"k": e.k, "v": e.v, "ms": e.ms}).to_string());
        for_duckdb.push('\n');
    }
    let (a, b) = (dir.join("events.ndjson"), dir.join("duckdb.ndjson"));
    std::fs::write(&a, for_eddy).expect("write events");
    std::fs::write(&b, for_duckdb).expect("write events");
    (a, b)
}

/// Rows keyed by (window end in ms, key).
type Rows = BTreeMap<(i64, String), J>;

fn eddy_rows(dir: &Path, events: &Path, window: &str) -> Rows {
    let query = format!(
        "SELECT System.Timestamp() AS WindowEnd, k, COUNT(*) AS n, SUM(v) AS sum, MIN(v) AS min,\n\
         \x20      MAX(v) AS max, AVG(v) AS avg, COUNT(DISTINCT v) AS distinct, STDEV(v) AS stdev,\n\
         \x20      VARP(v) AS varp\n\
         INTO output\n\
         FROM s TIMESTAMP BY t\n\
         GROUP BY k, {window}\n"
    );
    let query_path = dir.join("query.sql");
    std::fs::write(&query_path, &query).expect("write query");
    let out = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .arg("run")
        .arg(&query_path)
        .arg("--input")
        .arg(format!("s={}", events.display()))
        .args(["--out-of-order-tolerance-s", "5"])
        .env_remove("RUST_LOG")
        .output()
        .expect("eddy runs");
    assert!(
        out.status.success(),
        "eddy run failed for {window}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows = Rows::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut row: serde_json::Map<String, J> = serde_json::from_str(line).expect("JSON row");
        let end = row
            .remove("WindowEnd")
            .and_then(|e| e.as_str().and_then(parse_datetime))
            .expect("WindowEnd");
        let key = row.remove("k").and_then(|k| k.as_str().map(String::from));
        let key = key.expect("k");
        let previous = rows.insert((end / TICKS_PER_MS, key), J::Object(row));
        assert!(
            previous.is_none(),
            "{window}: two rows for one window and key"
        );
    }
    rows
}

fn duckdb_rows(events: &Path, size_ms: i64, hop_ms: i64) -> Rows {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../conformance/differential/windows_duckdb.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(events)
        .arg(size_ms.to_string())
        .arg(hop_ms.to_string())
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed for this test ({e}); run scripts/test.sh"));
    assert!(
        out.status.success(),
        "windows_duckdb.py failed (is duckdb installed? scripts/test.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows = Rows::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut row: serde_json::Map<String, J> = serde_json::from_str(line).expect("JSON row");
        let end = row.remove("end").and_then(|e| e.as_i64()).expect("end");
        let key = row.remove("k").and_then(|k| k.as_str().map(String::from));
        rows.insert((end, key.expect("k")), J::Object(row));
    }
    rows
}

/// Equal as numbers, floats within a relative 1e-9; NULL only equals NULL.
fn same_value(a: &J, b: &J) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => a == b,
    }
}

fn check(seed: u64, window: &str, size_ms: i64, hop_ms: i64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = stream(seed, 1500);
    let (for_eddy, for_duckdb) = write_events(&events, dir.path());
    let eddy = eddy_rows(dir.path(), &for_eddy, window);
    let duckdb = duckdb_rows(&for_duckdb, size_ms, hop_ms);
    let context = format!("seed {seed}, GROUP BY k, {window}");
    assert!(duckdb.len() > 100, "{context}: too few groups to compare");
    assert_eq!(
        eddy.keys().collect::<Vec<_>>(),
        duckdb.keys().collect::<Vec<_>>(),
        "{context}: the (window end, key) groups differ"
    );
    for (group, expected) in &duckdb {
        let actual = &eddy[group];
        for (name, want) in expected.as_object().expect("object") {
            let got = actual.get(name).unwrap_or(&J::Null);
            assert!(
                same_value(got, want),
                "{context}: window ending {} key {}: {name} is {got}, DuckDB says {want}",
                format_datetime(group.0 * TICKS_PER_MS),
                group.1
            );
        }
    }
}

#[test]
fn tumbling_windows_agree_with_duckdb() {
    for seed in [1, 2, 3] {
        check(seed, "TumblingWindow(second, 10)", 10_000, 10_000);
        check(seed, "TumblingWindow(millisecond, 1500)", 1_500, 1_500);
    }
}

#[test]
fn hopping_windows_agree_with_duckdb() {
    for seed in [4, 5, 6] {
        check(seed, "HoppingWindow(second, 10, 2)", 10_000, 2_000);
        check(
            seed,
            "HoppingWindow(Duration(second, 60), Hop(second, 1))",
            60_000,
            1_000,
        );
    }
}
