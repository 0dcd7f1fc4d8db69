//! Each Nexmark query the engine runs gives the same rows as DuckDB computing the same
//! query in batch (`bench/nexmark/duckdb_check.py`) on the same generated events.

use eddy_bench::generator::{GenOptions, write_ndjson};
use eddy_bench::{BenchError, QUERIES, run_files};
use eddy_engine::time::parse_datetime;
use serde_json::Value as J;
use std::path::Path;
use std::process::Command;

/// 20 000 events at 1 000 per second: 20 s of event time, so windows of 2 and 10 s and
/// 10-second sessions all open and close several times.
fn small_set(dir: &Path) {
    let options = GenOptions {
        events: 20_000,
        events_per_second: 1_000,
        ..GenOptions::default()
    };
    write_ndjson(&options, dir).expect("generate events");
}

fn duckdb_results(dir: &Path) -> serde_json::Map<String, J> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/nexmark/duckdb_check.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed for this test ({e}); run bench/setup.sh"));
    assert!(
        out.status.success(),
        "duckdb_check.py failed (is duckdb installed? run bench/setup.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout) {
        Ok(J::Object(map)) => map,
        other => panic!("duckdb_check.py printed no JSON object: {other:?}"),
    }
}

/// A value in a form both engines agree on: numbers to 10 significant digits, datetime
/// strings (any ISO-8601 precision) as ticks, column names in lower case.
fn canonical(row: &J) -> String {
    let J::Object(fields) = row else {
        return format!("not an object: {row}");
    };
    let mut cells: Vec<String> = fields
        .iter()
        .map(|(k, v)| {
            let v = match v {
                J::Number(n) => format!("{:.9e}", n.as_f64().unwrap_or(f64::NAN)),
                J::String(s) => match parse_datetime(s) {
                    Some(t) => format!("t{t}"),
                    None => format!("{s:?}"),
                },
                other => other.to_string(),
            };
            format!("{}={v}", k.to_lowercase())
        })
        .collect();
    cells.sort();
    cells.join(",")
}

fn first_differences(expected: &[String], actual: &[String]) -> String {
    let mut missing = expected.to_vec();
    let mut extra = Vec::new();
    for a in actual {
        match missing.iter().position(|e| e == a) {
            Some(i) => {
                missing.swap_remove(i);
            }
            None => extra.push(a.clone()),
        }
    }
    format!(
        "{} rows missing, e.g. {:?}\n{} rows unexpected, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)],
        extra.len(),
        &extra[..extra.len().min(3)]
    )
}

#[test]
fn supported_queries_match_duckdb() {
    let dir = tempfile::tempdir().expect("temp dir");
    small_set(dir.path());
    let expected_all = duckdb_results(dir.path());
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for q in &QUERIES {
        let run = match run_files(q, dir.path(), true) {
            Ok(run) => run,
            Err(BenchError::Unsupported(reason)) => {
                failures.push(format!("{}: the engine does not run it: {reason}", q.name));
                continue;
            }
            Err(e) => panic!("{}: {e}", q.name),
        };
        let Some(J::Array(expected)) = expected_all.get(q.name) else {
            panic!("duckdb_check.py has no result for {}", q.name);
        };
        let mut expected: Vec<String> = expected.iter().map(canonical).collect();
        let mut actual: Vec<String> = run.rows.iter().map(|r| canonical(&r.to_json())).collect();
        expected.sort();
        actual.sort();
        assert!(
            !expected.is_empty(),
            "{}: the small set gives no rows, so checks nothing",
            q.name
        );
        assert_eq!(run.rejected, 0, "{}: eddy rejected events", q.name);
        if expected == actual {
            checked.push(q.name);
        } else {
            failures.push(format!(
                "{}: eddy {} rows, DuckDB {} rows\n{}",
                q.name,
                actual.len(),
                expected.len(),
                first_differences(&expected, &actual)
            ));
        }
    }
    eprintln!("matched DuckDB: {checked:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked.len(), QUERIES.len(), "every query is checked");
}
