//! `PARTITION BY PartitionId` statements run one instance per input partition, on
//! several threads: the output must not depend on the thread count, must be the same
//! from run to run, must survive snapshot/restore, and must hold the rows the same
//! query computes unpartitioned when PartitionId is among the group keys.

use eddy_engine::time::{TICKS_PER_SECOND, parse_datetime};
use eddy_engine::{Arrival, Job, JobOptions};

const PARTITIONS: u32 = 4;

fn at(secs: f64) -> i64 {
    parse_datetime("2024-01-01T00:00:00Z").unwrap() + (secs * TICKS_PER_SECOND as f64) as i64
}

/// Events of every partition in round robin: keys and values from a small LCG, times a
/// few milliseconds apart with ties, so windows close in every batch.
fn events(n: usize) -> Vec<(u32, f64, String)> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|i| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let key = (x >> 33) % 37;
            let v = (x >> 20) % 100;
            let secs = (i / 3) as f64 * 0.004;
            let t = eddy_engine::time::format_datetime(at(secs));
            let json = format!(r#"{{"t":"{t}","k":"key{key}","v":{v}}}"#);
            ((i as u32) % PARTITIONS, secs, json)
        })
        .collect()
}

/// Runs `query` over `events` with `threads` threads, taking a snapshot after `cut`
/// events (if any) and restoring it into a fresh job; returns `output seq row` lines.
fn run(
    query: &str,
    events: &[(u32, f64, String)],
    threads: usize,
    cut: Option<usize>,
) -> Vec<String> {
    let fresh = || {
        let mut j = Job::compile(query, JobOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        j.declare_partitions(0, PARTITIONS);
        j.set_threads(threads);
        j
    };
    let mut job = fresh();
    let mut out = Vec::new();
    for (i, (partition, secs, json)) in events.iter().enumerate() {
        if Some(i) == cut {
            let snap = job.snapshot().unwrap();
            job = fresh();
            job.restore(&snap).unwrap();
        }
        job.push_json(
            0,
            *partition,
            i as u64,
            Arrival::At(at(*secs)),
            json.as_bytes(),
        )
        .unwrap();
        if i % 5000 == 4999 {
            job.drain_output(&mut out);
        }
    }
    job.finish();
    job.drain_output(&mut out);
    assert_eq!(job.metrics().errors, 0);
    out.iter()
        .map(|r| format!("{} {} {}", r.output, r.seq, r.row.to_json()))
        .collect()
}

const WINDOWS: [&str; 3] = [
    "TumblingWindow(second, 1)",
    "HoppingWindow(second, 2, 1)",
    "SlidingWindow(second, 1)",
];

fn windowed(window: &str, partitioned: bool) -> String {
    let by = if partitioned {
        "PARTITION BY PartitionId"
    } else {
        ""
    };
    format!(
        "SELECT PartitionId, k, COUNT(*) AS n, SUM(v) AS total, System.Timestamp() AS w \
         INTO out FROM s {by} TIMESTAMP BY t GROUP BY PartitionId, k, {window}"
    )
}

#[test]
fn partitioned_windows_give_the_same_bytes_on_one_thread_or_several() {
    let events = events(12_000);
    for window in WINDOWS {
        let q = windowed(window, true);
        let one = run(&q, &events, 1, None);
        assert!(one.len() > 1000, "{window}: {} rows", one.len());
        assert_eq!(one, run(&q, &events, 2, None), "{window}: 2 threads");
        assert_eq!(one, run(&q, &events, 4, None), "{window}: 4 threads");
        assert_eq!(one, run(&q, &events, 4, None), "{window}: again");
    }
}

#[test]
fn partitioned_windows_hold_the_rows_of_the_unpartitioned_query() {
    let events = events(6_000);
    let rows = |lines: Vec<String>| {
        let mut r: Vec<String> = lines
            .into_iter()
            .map(|l| l.splitn(3, ' ').nth(2).unwrap_or_default().to_string())
            .collect();
        r.sort();
        r
    };
    for window in WINDOWS {
        let partitioned = rows(run(&windowed(window, true), &events, 2, None));
        let whole = rows(run(&windowed(window, false), &events, 1, None));
        assert_eq!(partitioned, whole, "{window}");
    }
}

#[test]
fn partitioned_plain_select_and_analytics_are_per_partition_and_deterministic() {
    // LAG without PARTITION BY reads the previous event of the same input partition.
    let q = "SELECT PartitionId, k, v, LAG(v) OVER (LIMIT DURATION(second, 10)) AS prev \
             INTO out FROM s PARTITION BY PartitionId TIMESTAMP BY t WHERE v > 10";
    let events = events(4_000);
    let one = run(q, &events, 1, None);
    assert_eq!(one, run(q, &events, 3, None));
    let first: Vec<&String> = one
        .iter()
        .filter(|l| l.contains(r#""prev":null"#))
        .collect();
    assert_eq!(first.len(), PARTITIONS as usize, "{first:?}");
}

#[test]
fn partitioned_state_survives_snapshot_and_restore() {
    let events = events(9_000);
    for window in WINDOWS {
        let q = windowed(window, true);
        let whole = run(&q, &events, 2, None);
        for cut in [1, 4_097, 7_777] {
            assert_eq!(
                whole,
                run(&q, &events, 2, Some(cut)),
                "{window} cut at {cut}"
            );
        }
    }
}

#[test]
fn one_partition_runs_the_statement_whole() {
    let q = windowed("TumblingWindow(second, 1)", true);
    let mut j = Job::compile(&q, JobOptions::default()).unwrap();
    let json = format!(
        r#"{{"t":"{}","k":"a","v":1}}"#,
        eddy_engine::time::format_datetime(at(0.5))
    );
    j.push_json(0, 0, 0, Arrival::At(at(0.5)), json.as_bytes())
        .unwrap();
    j.finish();
    let mut out = Vec::new();
    j.drain_output(&mut out);
    assert_eq!(out.len(), 1);
}
