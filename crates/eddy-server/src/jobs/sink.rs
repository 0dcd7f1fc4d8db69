//! Where a job's output rows go: a store table, a log stream or an NDJSON file.

use std::path::PathBuf;

use bytes::Bytes;
use eddy_connectors::files::NdjsonSink;
use eddy_engine::{OutputRow, Value};
use eddy_log::{Log, LogError, Record};
use eddy_store::{Cell, Store};

use crate::ServerError;

/// Record header naming the job output that appended a row to a stream.
const WRITER_HEADER: &str = "eddy-writer";
/// Record header with the row's per-output sequence number.
const SEQ_HEADER: &str = "eddy-seq";
use crate::metrics::Metrics;

/// One output's sink.
pub(crate) enum Sink {
    /// Exactly-once: `Store::write_from` skips sequence numbers it already holds.
    Table {
        table: String,
        writer: String,
        seq_base: u64,
    },
    /// Exactly-once for one writer: each record carries `eddy-writer` and `eddy-seq` headers;
    /// after a restore, rows up to the highest seq found past the checkpoint are skipped.
    Stream {
        stream: String,
        writer: String,
        /// Highest seq this writer already appended (found when restoring); 0 if none.
        written_through: u64,
    },
    /// Exactly-once for one writer: truncated back to the checkpointed length on restore.
    File { path: PathBuf, file: NdjsonSink },
}

impl Sink {
    /// A short description for the API, e.g. `table tollcounts`.
    pub fn describe(&self) -> String {
        match self {
            Sink::Table { table, .. } => format!("table {table}"),
            Sink::Stream { stream, .. } => format!("stream {stream}"),
            Sink::File { path, .. } => format!("file {}", path.display()),
        }
    }

    /// Writes one output's rows (in sequence order); returns once they are in the sink.
    pub fn write(
        &mut self,
        rows: &[OutputRow],
        log: &Log,
        store: &Store,
        metrics: &Metrics,
    ) -> Result<(), ServerError> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        match self {
            Sink::Table {
                table,
                writer,
                seq_base,
            } => {
                let cells: Vec<eddy_store::Row> =
                    rows.iter().map(|r| to_store_row(&r.row)).collect();
                store.write_from(table, writer, *seq_base + first.seq, &cells)?;
            }
            Sink::Stream {
                stream,
                writer,
                written_through,
            } => {
                let rows: Vec<&OutputRow> =
                    rows.iter().filter(|r| r.seq > *written_through).collect();
                if rows.is_empty() {
                    return Ok(());
                }
                let partitions = log.get_or_create_stream(stream)?.partitions.len().max(1) as u32;
                let now_ms = now_ms();
                let mut batches: Vec<Vec<Record>> = (0..partitions).map(|_| Vec::new()).collect();
                let mut bytes = 0;
                // One shared buffer for every row's writer header (a refcount per row).
                let writer = Bytes::from(writer.clone());
                for row in &rows {
                    let mut value = Vec::new();
                    row.row.write_json(&mut value);
                    bytes += value.len();
                    let partition = eddy_log::partition_for_key(None, partitions, row.seq);
                    let seq = Bytes::from(row.seq.to_string());
                    batches[partition as usize].push(Record {
                        timestamp_ms: now_ms,
                        key: None,
                        value: Bytes::from(value),
                        headers: vec![
                            (WRITER_HEADER.to_string(), writer.clone()),
                            (SEQ_HEADER.to_string(), seq),
                        ],
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

/// Scans `stream` from the checkpointed end offsets for the highest seq `writer` appended:
/// those rows reached the stream after the checkpoint and will be replayed.
pub(crate) fn last_seq_in_stream(
    log: &Log,
    stream: &str,
    checkpointed_ends: &[u64],
    writer: &str,
) -> Result<u64, ServerError> {
    let mut last = 0;
    for (partition, start) in checkpointed_ends.iter().enumerate() {
        let mut offset = *start;
        loop {
            let records = match log.read(stream, partition as u32, offset, 1024) {
                // Retention removed the start: scan what is left.
                Err(LogError::OffsetOutOfRange { start, .. }) if start > offset => {
                    offset = start;
                    continue;
                }
                // The stream is shorter than at the checkpoint: nothing was appended since.
                Err(LogError::OffsetOutOfRange { .. }) => break,
                result => result?,
            };
            let Some(tail) = records.last() else { break };
            offset = tail.offset + 1;
            for record in &records {
                let header = |name: &str| {
                    record
                        .headers
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v)
                };
                if header(WRITER_HEADER).is_some_and(|w| w.as_ref() == writer.as_bytes()) {
                    let seq =
                        header(SEQ_HEADER).and_then(|v| std::str::from_utf8(v).ok()?.parse().ok());
                    last = last.max(seq.unwrap_or(0));
                }
            }
        }
    }
    Ok(last)
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
                    Cell::Json(
                        whole
                            .get(&**name)
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "null".into()),
                    )
                }
            };
            (name.to_string(), cell)
        })
        .collect()
}
