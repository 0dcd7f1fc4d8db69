//! The engine's throughput benchmark, shared by `benches/` and `eddy bench`.

use crate::job::{Arrival, Job, JobOptions};
use crate::time::TICKS_PER_SECOND;
use crate::value::{Record, Value};
use std::sync::Arc;
use std::time::Instant;

/// Events per second of `SELECT k, COUNT(*) ... GROUP BY k, TumblingWindow(second, 1)`
/// over `events` pre-built records spread over `keys` keys (1000 events per second of
/// event time), pushed with `push_record` and drained as a server would.
pub fn bench_tumbling_count(events: usize, keys: usize) -> f64 {
    let query = "SELECT k, COUNT(*) AS n INTO out FROM s TIMESTAMP BY t GROUP BY k, TumblingWindow(second, 1)";
    let Ok(mut job) = Job::compile(query, JobOptions::default()) else {
        return 0.0;
    };
    let names: Arc<[Arc<str>]> = vec![Arc::from("k"), Arc::from("t")].into();
    let key_values: Vec<Value> = (0..keys.max(1))
        .map(|i| Value::from(format!("key{i}").as_str()))
        .collect();
    let records: Vec<Value> = (0..events)
        .map(|i| {
            let t = 1_700_000_000 * TICKS_PER_SECOND + i as i64 * TICKS_PER_SECOND / 1000;
            Record::new(
                names.clone(),
                vec![key_values[i % key_values.len()].clone(), Value::DateTime(t)],
            )
            .into()
        })
        .collect();
    let mut records = records.into_iter();
    drive(&mut job, events, |job, i, arrival| {
        let record = records.next().unwrap_or(Value::Null);
        job.push_record(0, 0, i as u64, Arrival::At(arrival), record)
    })
}

/// Like [`bench_tumbling_count`] but pushing JSON text with `push_json` (about 100-byte
/// events with fields the query does not read), so decoding is included.
pub fn bench_json_tumbling_count(events: usize, keys: usize) -> f64 {
    let query = "SELECT k, COUNT(*) AS n INTO out FROM s TIMESTAMP BY t GROUP BY k, TumblingWindow(second, 1)";
    let Ok(mut job) = Job::compile(query, JobOptions::default()) else {
        return 0.0;
    };
    let base = 1_700_000_000 * TICKS_PER_SECOND;
    let payloads: Vec<Vec<u8>> = (0..events)
        .map(|i| {
            let t = crate::time::format_datetime(base + i as i64 * TICKS_PER_SECOND / 1000);
            format!(
                r#"{{"k":"key{}","t":"{t}","temperature":{}.5,"device":"sensor-{}","ok":true}}"#,
                i % keys.max(1),
                i % 90,
                i % 7
            )
            .into_bytes()
        })
        .collect();
    drive(&mut job, events, |job, i, arrival| {
        job.push_json(0, 0, i as u64, Arrival::At(arrival), &payloads[i])
    })
}

/// Pushes `events` events through `job` (1000 per second of arrival time), draining as a
/// server would, and returns events per second; 0 when the engine rejects an event.
fn drive(
    job: &mut Job,
    events: usize,
    push: impl FnMut(&mut Job, usize, i64) -> Result<(), crate::EventError>,
) -> f64 {
    drive_at(job, events, 1000, true, push).0
}

/// [`drive`] with `per_second` events per second of arrival time; `finish` says whether
/// the timing includes closing the windows still open at the end. Also returns the
/// number of output rows.
fn drive_at(
    job: &mut Job,
    events: usize,
    per_second: i64,
    finish: bool,
    mut push: impl FnMut(&mut Job, usize, i64) -> Result<(), crate::EventError>,
) -> (f64, usize) {
    let base = 1_700_000_000 * TICKS_PER_SECOND;
    let mut out = Vec::new();
    let mut rows = 0;
    let start = Instant::now();
    for i in 0..events {
        if push(
            job,
            i,
            base + i as i64 * TICKS_PER_SECOND / per_second.max(1),
        )
        .is_err()
        {
            return (0.0, rows);
        }
        if i % 10_000 == 9_999 {
            job.drain_output(&mut out);
            rows += out.len();
            out.clear();
        }
    }
    if finish {
        job.finish();
    }
    job.drain_output(&mut out);
    rows += out.len();
    (events as f64 / start.elapsed().as_secs_f64(), rows)
}

/// One window kind's figures from [`bench_window_kinds`].
#[derive(Debug, Clone, Copy)]
pub struct WindowFigures {
    /// Events per second.
    pub events_per_second: f64,
    /// Output rows produced while the events were pushed.
    pub rows: usize,
}

/// The same events through `SELECT k, COUNT(*), SUM(v) ... GROUP BY k, <window>` for a
/// tumbling, a hopping and a sliding window, so the cost of overlapping windows is
/// measured against tumbling in one run.
#[derive(Debug, Clone, Copy)]
pub struct WindowKindFigures {
    /// `TumblingWindow(second, 60)`.
    pub tumbling: WindowFigures,
    /// `HoppingWindow(second, 60, 1)`: 60 windows hold each event.
    pub hopping: WindowFigures,
    /// `SlidingWindow(second, 60)`: a row per key whenever an event enters or leaves.
    pub sliding: WindowFigures,
}

/// Runs [`WindowKindFigures`]: `events` events over `keys` keys in round robin,
/// `per_second` per second of event time (arrival time, so records are shared and no
/// time is parsed). Timing stops before the windows still open at the end are flushed:
/// it measures the steady state of a stream, not its end.
pub fn bench_window_kinds(events: usize, keys: usize, per_second: i64) -> WindowKindFigures {
    let names: Arc<[Arc<str>]> = vec![Arc::from("k"), Arc::from("v")].into();
    let records: Vec<Value> = (0..keys.max(1))
        .map(|i| {
            let key = Value::from(format!("key{i}").as_str());
            Record::new(names.clone(), vec![key, Value::BigInt((i % 100) as i64)]).into()
        })
        .collect();
    let run = |window: &str| {
        let query = format!(
            "SELECT k, COUNT(*) AS n, SUM(v) AS total INTO out FROM s GROUP BY k, {window}"
        );
        let Ok(mut job) = Job::compile(&query, JobOptions::default()) else {
            return WindowFigures {
                events_per_second: 0.0,
                rows: 0,
            };
        };
        let (events_per_second, rows) =
            drive_at(&mut job, events, per_second, false, |job, i, arrival| {
                let record = records[i % records.len()].clone();
                job.push_record(0, 0, i as u64, Arrival::At(arrival), record)
            });
        WindowFigures {
            events_per_second,
            rows,
        }
    };
    // `EDDY_BENCH_ONLY=hopping` (or tumbling, sliding) runs one kind, for profiling.
    let only = std::env::var("EDDY_BENCH_ONLY").unwrap_or_default();
    let kind = |name: &str, window: &str| {
        if only.is_empty() || only == name {
            run(window)
        } else {
            WindowFigures {
                events_per_second: f64::NAN,
                rows: 0,
            }
        }
    };
    WindowKindFigures {
        tumbling: kind("tumbling", "TumblingWindow(second, 60)"),
        hopping: kind("hopping", "HoppingWindow(second, 60, 1)"),
        sliding: kind("sliding", "SlidingWindow(second, 60)"),
    }
}

/// The same tumbling count written by hand over the same records (a hash map per open
/// window, rows emitted as each window closes): the floor that [`bench_tumbling_count`]
/// is compared against in the same run, so the ratio survives a noisy machine.
pub fn bench_handwritten_tumbling_count(events: usize, keys: usize) -> f64 {
    let key_names: Vec<Arc<str>> = (0..keys.max(1))
        .map(|i| Arc::from(format!("key{i}").as_str()))
        .collect();
    let records: Vec<(Arc<str>, i64)> = (0..events)
        .map(|i| {
            let t = 1_700_000_000 * TICKS_PER_SECOND + i as i64 * TICKS_PER_SECOND / 1000;
            (key_names[i % key_names.len()].clone(), t)
        })
        .collect();
    let mut open: hashbrown::HashMap<Arc<str>, i64> = hashbrown::HashMap::new();
    let mut window_end = i64::MIN;
    let mut emitted: Vec<(Arc<str>, i64, i64)> = Vec::new();
    let start = Instant::now();
    for (key, t) in records {
        // (start, end] windows: an event at exactly the end belongs to that window.
        let end = (t + TICKS_PER_SECOND - 1).div_euclid(TICKS_PER_SECOND) * TICKS_PER_SECOND;
        if end != window_end {
            emitted.extend(open.drain().map(|(k, n)| (k, n, window_end)));
            emitted.sort_unstable();
            emitted.clear();
            window_end = end;
        }
        *open.entry(key).or_insert(0) += 1;
    }
    emitted.extend(open.drain().map(|(k, n)| (k, n, window_end)));
    std::hint::black_box(&emitted);
    events as f64 / start.elapsed().as_secs_f64()
}

/// Events per second of a `PARTITION BY PartitionId` query over `partitions` input
/// partitions run on `threads` threads: `SELECT PartitionId, k, COUNT(*), SUM(v) ...
/// GROUP BY PartitionId, k, <window>` over `events` events spread over `keys` keys and
/// the partitions in round robin, `per_second` per second of arrival time. Timing stops
/// before the windows still open at the end are flushed, as in [`bench_window_kinds`].
pub fn bench_partitioned(
    events: usize,
    keys: usize,
    partitions: u32,
    threads: usize,
    per_second: i64,
    window: &str,
) -> WindowFigures {
    let names: Arc<[Arc<str>]> = vec![Arc::from("k"), Arc::from("v")].into();
    let records: Vec<Value> = (0..keys.max(1))
        .map(|i| {
            let key = Value::from(format!("key{i}").as_str());
            Record::new(names.clone(), vec![key, Value::BigInt((i % 100) as i64)]).into()
        })
        .collect();
    let query = format!(
        "SELECT PartitionId, k, COUNT(*) AS n, SUM(v) AS total INTO out \
         FROM s PARTITION BY PartitionId GROUP BY PartitionId, k, {window}"
    );
    let Ok(mut job) = Job::compile(&query, JobOptions::default()) else {
        return WindowFigures {
            events_per_second: 0.0,
            rows: 0,
        };
    };
    let partitions = partitions.max(1);
    job.declare_partitions(0, partitions);
    job.set_threads(threads);
    let (events_per_second, rows) =
        drive_at(&mut job, events, per_second, false, |job, i, arrival| {
            let record = records[i % records.len()].clone();
            let partition = (i % partitions as usize) as u32;
            job.push_record(0, partition, i as u64, Arrival::At(arrival), record)
        });
    WindowFigures {
        events_per_second,
        rows,
    }
}
