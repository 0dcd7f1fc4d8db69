//! Where a job's output rows go: a store table, a log stream or an NDJSON file.

use std::path::PathBuf;

use bytes::Bytes;
use eddy_connectors::files::NdjsonSink;
use eddy_engine::{OutputRow, Value};
use eddy_log::{Log, Record};
use eddy_store::{Cell, Store};

use crate::ServerError;
use crate::metrics::Metrics;

/// One output's sink.
pub(crate) enum Sink {
    /// Exactly-once: `Store::write_from` skips sequence numbers it already holds.
    Table { table: String, writer: String, seq_base: u64 },
    /// At-least-once: rows replayed after a crash are appended again (same `eddy-seq` header).
    Stream { stream: String },
    /// Exactly-once for one writer: truncated back to the checkpointed length on restore.
    File { path: PathBuf, file: NdjsonSink },
}

impl Sink {
    /// A short description for the API, e.g. `table tollcounts`.
    pub fn describe(&self) -> String {
        match self {
            Sink::Table { table, .. } => format!("table {table}"),
            Sink::Stream { stream } => format!("stream {stream}"),
            Sink::File { path, .. } => format!("file {}", path.display()),
        }
    }

    /// Writes one output's rows (in sequence order); returns once they are in the sink.
    pub fn write(&mut self, rows: &[OutputRow], log: &Log, store: &Store, metrics: &Metrics) -> Result<(), ServerError> {
        let Some(first) = rows.first() else { return Ok(()) };
        match self {
            Sink::Table { table, writer, seq_base } => {
                let cells: Vec<eddy_store::Row> = rows.iter().map(|r| to_store_row(&r.row)).collect();
                store.write_from(table, writer, *seq_base + first.seq, &cells)?;
            }
            Sink::Stream { stream } => {
                let partitions = log.get_or_create_stream(stream)?.partitions.len().max(1) as u32;
                let now_ms = now_ms();
                let mut batches: Vec<Vec<Record>> = (0..partitions).map(|_| Vec::new()).collect();
                let mut bytes = 0;
                for row in rows {
                    let mut value = Vec::new();
                    row.row.write_json(&mut value);
                    bytes += value.len();
                    let partition = eddy_log::partition_for_key(None, partitions, row.seq);
                    let seq = Bytes::from(row.seq.to_string());
                    batches[partition as usize].push(Record {
                        timestamp_ms: now_ms,
                        key: None,
                        value: Bytes::from(value),
                        headers: vec![("eddy-seq".to_string(), seq)],
                    });
                }
                for (partition, batch) in batches.iter().enumerate() {
                    if !batch.is_empty() {
                        log.append(stream, partition as u32, batch)?;
                    }
                }
                metrics.record_append(stream, rows.len() as u64, bytes as u64, now_ms);
            }
            Sink::File { path, file } => {
                let mut line = Vec::new();
                for row in rows {
                    line.clear();
                    row.row.write_json(&mut line);
                    file.write_line(&line).map_err(|e| file_error(path, e))?;
                }
                file.flush().map_err(|e| file_error(path, e))?;
            }
        }
        Ok(())
    }
}

fn file_error(path: &std::path::Path, e: eddy_connectors::files::FileError) -> ServerError {
    ServerError::Invalid(format!("writing {}: {e}", path.display()))
}

/// Wall-clock milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    eddy_engine::time::now_ticks() / 10_000
}

/// Engine row → store row: datetimes become nanosecond timestamps, records and arrays JSON text.
pub(crate) fn to_store_row(row: &eddy_engine::Row) -> eddy_store::Row {
    let mut json: Option<serde_json::Value> = None;
    row.columns
        .iter()
        .zip(&row.values)
        .map(|(name, value)| {
            let cell = match value {
                Value::Null => Cell::Null,
                Value::Bit(b) => Cell::Bool(*b),
                Value::BigInt(i) => Cell::Int(*i),
                Value::Float(f) => Cell::Float(*f),
                Value::String(s) => Cell::Str(s.to_string()),
                Value::DateTime(ticks) => Cell::Timestamp(ticks.saturating_mul(100)),
                Value::Record(_) | Value::Array(_) => {
                    let whole = json.get_or_insert_with(|| row.to_json());
                    Cell::Json(whole.get(&**name).map(|v| v.to_string()).unwrap_or_else(|| "null".into()))
                }
            };
            (name.to_string(), cell)
        })
        .collect()
}
