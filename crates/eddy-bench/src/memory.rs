//! Process measurements: resident set size from `/proc/self/status` and the calling
//! thread's CPU time from `/proc/thread-self/schedstat` (Linux), and the bytes of state
//! per group key of a COUNT/SUM/AVG query.

use crate::error::BenchError;
use eddy_engine::time::TICKS_PER_SECOND;
use eddy_engine::{Arrival, Job, JobOptions, OutputRow, Record, Value};
use std::sync::Arc;

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Current resident memory of this process in bytes (Linux only).
pub fn rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|k| k * 1024)
}

/// Peak resident memory since the last [`reset_peak_rss`] (or process start), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

/// Resets the kernel's peak-RSS mark, so each query's peak can be read in one process;
/// `false` where the kernel does not allow it (the peak then covers the whole process).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU time the calling thread has run, in nanoseconds (Linux only): on a shared
/// machine, rates per CPU second vary less between runs than rates per wall second.
pub fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Engine state measured for many group keys in one open window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StateMemory {
    /// Distinct group keys held.
    pub keys: u64,
    /// Growth of resident memory while the keys were added.
    pub bytes: u64,
}

impl StateMemory {
    /// Bytes of state per key, key string and hash-table overhead included.
    pub fn bytes_per_key(&self) -> f64 {
        self.bytes as f64 / self.keys.max(1) as f64
    }
}

/// The window of the figure: one that stays open while the keys are added.
pub const STATE_WINDOW: &str = "TumblingWindow(hour, 1)";

/// The query measured: three aggregates per key, grouped by key and `window`, so other
/// window kinds' state can be measured the same way.
pub fn state_query(window: &str) -> String {
    format!(
        "SELECT k, COUNT(*) AS n, SUM(v) AS total, AVG(v) AS mean \
         INTO out FROM s TIMESTAMP BY t GROUP BY k, {window}"
    )
}

/// Pushes one event for each of `keys` distinct keys (1 ms apart, all inside one 1-hour
/// window) and measures how much resident memory the job's state grew by.
pub fn state_bytes_per_key(keys: u64) -> Result<StateMemory, BenchError> {
    state_bytes_per_key_in(keys, STATE_WINDOW)
}

/// [`state_bytes_per_key`] grouped by `window` instead (one that holds the keys' events
/// until they are all in, such as `HoppingWindow(hour, 2, 1)` or
/// `SessionWindow(hour, 1, 2)`).
pub fn state_bytes_per_key_in(keys: u64, window: &str) -> Result<StateMemory, BenchError> {
    let mut job = Job::compile(&state_query(window), JobOptions::default())
        .map_err(|e| BenchError::Unsupported(e.to_string()))?;
    let names: Arc<[Arc<str>]> = ["k", "v", "t"].into_iter().map(Arc::from).collect();
    let base = 1_704_067_200 * TICKS_PER_SECOND;
    let mut out: Vec<OutputRow> = Vec::new();
    let before = rss_bytes();
    for i in 0..keys {
        let t = base + i as i64 * (TICKS_PER_SECOND / 1000);
        let record = Record::new(
            names.clone(),
            vec![
                Value::String(Arc::from(format!("key{i}"))),
                Value::BigInt(i as i64 % 1000),
                Value::DateTime(t),
            ],
        );
        // Every event is well formed; a rejection would only lower the measured state.
        let _ = job.push_record(0, 0, i, Arrival::At(t), record.into());
    }
    job.drain_output(&mut out);
    let after = rss_bytes();
    let bytes = match (before, after) {
        (Some(b), Some(a)) => a.saturating_sub(b),
        _ => 0,
    };
    drop(job);
    Ok(StateMemory { keys, bytes })
}
