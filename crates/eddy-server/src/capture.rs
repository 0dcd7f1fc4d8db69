//! Parquet capture: a stream's events written to Parquet files partitioned by date and
//! hour of arrival, `DIR/<stream>/date=YYYY-MM-DD/hour=HH/part-<partition>-<offset>.parquet`,
//! for batch engines (DuckDB, Spark, DataFusion) to read.
//!
//! The capture is a consumer group (`eddy-capture-parquet`) of the log: each pass reads
//! from the committed offsets, writes one file per (hour, partition) run of records,
//! atomically, and only then commits. A file is named by its first record's offset, so a
//! pass replayed after a crash rewrites the same names: no event lands in two files.
//! Each row holds the event's fields plus `PartitionId`, `Offset` and
//! `EventEnqueuedUtcTime` (unless the event has fields of those names).

use std::path::PathBuf;
use std::sync::Arc;

use eddy_log::{Log, StoredRecord};
use eddy_store::{Cell, Row};
use serde_json::Value;

use crate::ServerError;

/// The consumer group whose committed offsets mark what is captured.
pub const CAPTURE_GROUP: &str = "eddy-capture-parquet";
/// Most records one pass takes from a partition, bounding a file's size and memory.
const RECORDS_PER_PASS: usize = 200_000;

/// A stream captured to Parquet under a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetCapture {
    /// The stream captured.
    pub stream: String,
    /// Root folder of the files.
    pub dir: PathBuf,
}

fn cell(value: &Value) -> Cell {
    match value {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Cell::Int(i),
            None => Cell::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Cell::Str(s.clone()),
        other => Cell::Json(other.to_string()),
    }
}

fn row(partition: u32, record: &StoredRecord) -> Row {
    let mut row: Row = match serde_json::from_slice::<Value>(&record.value) {
        Ok(Value::Object(fields)) => fields.iter().map(|(k, v)| (k.clone(), cell(v))).collect(),
        _ => vec![(
            "Body".to_string(),
            Cell::Str(String::from_utf8_lossy(&record.value).into_owned()),
        )],
    };
    let has = |row: &Row, name: &str| row.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    if !has(&row, "PartitionId") {
        row.push(("PartitionId".into(), Cell::Int(i64::from(partition))));
    }
    if !has(&row, "Offset") {
        row.push(("Offset".into(), Cell::Int(record.offset as i64)));
    }
    if !has(&row, "EventEnqueuedUtcTime") {
        let ns = record.timestamp_ms.saturating_mul(1_000_000);
        row.push(("EventEnqueuedUtcTime".into(), Cell::Timestamp(ns)));
    }
    row
}

/// `date=YYYY-MM-DD/hour=HH` of an arrival time.
fn hour_folder(timestamp_ms: i64) -> String {
    let iso = eddy_engine::time::format_datetime(timestamp_ms.saturating_mul(10_000));
    format!("date={}/hour={}", &iso[..10], &iso[11..13])
}

/// Captures whatever arrived since the last pass; returns the records written.
pub(crate) fn capture_pass(log: &Arc<Log>, capture: &ParquetCapture) -> Result<u64, ServerError> {
    let Some(info) = log.stream(&capture.stream) else {
        return Ok(0);
    };
    let mut written = 0;
    for p in &info.partitions {
        let from = log
            .committed_offset(CAPTURE_GROUP, &info.name, p.partition)
            .unwrap_or(p.start_offset)
            .max(p.start_offset);
        if from >= p.end_offset {
            continue;
        }
        let records = log.read(&info.name, p.partition, from, RECORDS_PER_PASS)?;
        let Some(last) = records.last().map(|r| r.offset) else {
            continue;
        };
        // One file per run of records in the same hour.
        let mut start = 0;
        while start < records.len() {
            let folder = hour_folder(records[start].timestamp_ms);
            let mut end = start + 1;
            while end < records.len() && hour_folder(records[end].timestamp_ms) == folder {
                end += 1;
            }
            let rows: Vec<Row> = records[start..end]
                .iter()
                .map(|r| row(p.partition, r))
                .collect();
            let path = capture.dir.join(&info.name).join(&folder).join(format!(
                "part-{}-{:020}.parquet",
                p.partition, records[start].offset
            ));
            eddy_store::write_parquet_file(&path, &rows)?;
            written += rows.len() as u64;
            start = end;
        }
        log.commit_offset(CAPTURE_GROUP, &info.name, p.partition, last + 1)?;
    }
    if written > 0 {
        tracing::debug!(stream = %capture.stream, records = written, "captured to Parquet");
    }
    Ok(written)
}
