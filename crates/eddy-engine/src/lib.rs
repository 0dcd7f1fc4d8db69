//! The eddy streaming engine: runs Azure Stream Analytics queries over events.
//!
//! Layout, in the order data flows:
//! - [`value`]: typed values, records and output rows; JSON in and out;
//! - [`time`]: datetimes as 100-ns ticks, ISO-8601 parsing and ASA's output format;
//! - `expr` and `functions`: syntax-tree expressions compiled once into closures;
//! - `agg`: aggregate state; `operator`: one operator per SELECT (filter, projection or
//!   window aggregation);
//! - [`job`]: a compiled query (`eddy_sql::compile` → operators), time policies and
//!   watermarks per input partition, the re-sorting buffer, outputs, metrics, snapshots;
//! - [`bench`]: the throughput benchmark `eddy bench` runs.
#![deny(missing_docs)]

mod agg;
pub mod bench;
pub mod error;
mod expr;
mod functions;
pub mod job;
mod operator;
pub mod time;
pub mod value;

pub use error::{EngineError, EventError};
pub use job::{Arrival, Job, JobMetrics, JobOptions, OutOfOrderAction, OutputRow};
pub use value::{Record, Row, Value};
