//! The Nexmark benchmark harness: proves (or disproves) that eddy is faster than Apache
//! Flink and Spark Structured Streaming on the standard streaming workload.
//!
//! Layout, in the order a benchmark runs:
//! - [`generator`]: Person/Auction/Bid events from the `nexmark` crate, written as NDJSON
//!   (one directory per kind) or built in memory as engine records;
//! - [`queries`]: q0–q5, q7, q8, q11 in eddy's ASA dialect, from `bench/nexmark/qN.sql`;
//! - [`run`]: a query run through `eddy_engine::Job`, from files or from memory;
//! - [`memory`]: resident memory, peak per query, and state bytes per group key;
//! - [`compare`]: the same files through the Flink and Spark runners, and the table.
//!
//! The `eddy-nexmark` binary wraps these; the `eddy` binary calls the same functions.
#![deny(missing_docs)]

pub mod cli;
pub mod compare;
pub mod error;
pub mod generator;
pub mod memory;
pub mod queries;
pub mod run;

pub use compare::{CompareOptions, CompareRow, Outcome, Peer, compare, format_table};
pub use error::BenchError;
pub use generator::{GenOptions, GenSummary, Kind, write_ndjson};
pub use queries::{NexmarkQuery, QUERIES, query};
pub use run::{EddyRun, Feed, run_files, run_memory};
