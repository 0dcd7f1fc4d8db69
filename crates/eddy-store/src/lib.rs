//! Analytical store of eddy: tables whose columns are inferred from the rows written,
//! held as Arrow in memory, flushed to Parquet, queried with DataFusion.
//!
//! Layout:
//! - [`Store`] (`store.rs`): the table map, the background flusher and the public API.
//! - `table.rs`: one table: its schema, in-memory batches, Parquet files, writer seqs; write,
//!   flush and recovery.
//! - `wal.rs`: the write-ahead file: CRC-framed records, one per write; torn tails truncated.
//! - `rows.rs`: schema inference and [`Row`] → Arrow `RecordBatch`, type widening.
//! - `export.rs`: rows as a standalone Parquet file (stream captures).
//! - `query.rs`: DataFusion catalog over table snapshots, case-insensitive names, results as JSON.
//!
//! A write flows: rows → Arrow batch (no lock) → WAL append → in-memory batch list. A flush
//! writes the in-memory batches as one Parquet file and deletes the WAL segments it covers.
//! A query snapshots each table's batch and file lists under a short lock and scans them.
//! On-disk format and crash points: `docs/internals/store.md`.
#![deny(missing_docs)]

mod export;
mod query;
mod rows;
mod store;
mod table;
mod wal;

pub use export::write_parquet_file;
pub use store::Store;

/// A value written to a table; the column type is inferred from the cells written.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Missing value; never decides a column's type.
    Null,
    /// Boolean (`bit`).
    Bool(bool),
    /// 64-bit integer (`bigint`).
    Int(i64),
    /// 64-bit float.
    Float(f64),
    /// Text (`nvarchar(max)`).
    Str(String),
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    Timestamp(i64),
    /// A record or array, as JSON text.
    Json(String),
}

/// One row: column name and value pairs, in output order.
pub type Row = Vec<(String, Cell)>;

/// When in-memory rows are flushed to Parquet.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Flush a table once it holds this many unflushed rows.
    pub flush_rows: usize,
    /// Flush a table whose oldest unflushed row is this old.
    pub flush_interval_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            flush_rows: 100_000,
            flush_interval_ms: 10_000,
        }
    }
}

/// A query's answer, ready to serialize for the HTTP API and CLI.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueryResult {
    /// Output column names, in order.
    pub columns: Vec<String>,
    /// Rows of JSON values; timestamps as `2024-01-01T00:05:00.0000000Z`.
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// What the dashboard and `eddy query` show about a table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TableInfo {
    /// Name as first written.
    pub name: String,
    /// Rows in memory and in Parquet files.
    pub rows: u64,
    /// Column names and type names (`bigint`, `float`, `string`, `bool`, `timestamp`, `null`).
    pub columns: Vec<(String, String)>,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing the data directory failed.
    #[error("store I/O error on {path}: {source}")]
    Io {
        /// File or directory involved.
        path: std::path::PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The SQL text could not be parsed, planned or executed; carries DataFusion's message.
    #[error("SQL error: {0}")]
    Sql(String),
    /// Arrow or Parquet rejected data (for example while writing a Parquet file).
    #[error("data error: {0}")]
    Data(String),
    /// A row or table name is not acceptable.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Another open store (in this or another process) is writing to this directory.
    #[error("data directory {0} is in use by another eddy store")]
    Locked(std::path::PathBuf),
    /// A write was attempted on a store opened read-only.
    #[error("store is open read-only")]
    ReadOnly,
    /// The table does not exist.
    #[error("no table named {0}")]
    NoSuchTable(String),
    /// A file in the data directory is damaged beyond a torn WAL tail.
    #[error("corrupt store file {path}: {reason}")]
    Corrupt {
        /// File involved.
        path: std::path::PathBuf,
        /// What was wrong.
        reason: String,
    },
}

impl StoreError {
    fn io(path: &std::path::Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
