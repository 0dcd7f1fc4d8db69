//! The eddy server: the HTTP API, the dashboard, the job manager and the metrics, wired
//! over the log (`eddy-log`), the engine (`eddy-engine`) and the store (`eddy-store`).
//!
//! Layout:
//! - [`config`]: [`ServerConfig`], [`JobSpec`] and the output bindings a user writes.
//! - `server`: [`Server`] owns the shared state ([`eddy_log::Log`], [`eddy_store::Store`],
//!   jobs, metrics), the HTTP listener, the Kafka (`eddy-kafka`) and MQTT (`eddy-mqtt`)
//!   listeners over the same log, and the background tasks (retention, store flush).
//! - `ingest`: events in (HTTP body or JSON values) → validated → spread over partitions →
//!   appended, one batch per partition, before the request is acknowledged.
//! - `jobs`: one thread per job reads its input partitions from the log, feeds the engine,
//!   writes each output to its sink, then checkpoints (see `docs/internals/jobs.md`).
//! - `metrics`: counters per stream, job and HTTP route, rendered as Prometheus text.
//! - `http`: the axum routes, bearer-token auth and the embedded dashboard assets.
//!
//! Data moves: producer → `POST /api/streams/{name}/events` → log → job thread → engine →
//! sink (store table, stream, file) → `POST /api/query` and the dashboard.
#![deny(missing_docs)]

mod capture;
pub mod config;
mod error;
mod folders;
mod http;
mod ingest;
mod jobs;
mod metrics;
mod server;

pub use capture::{CAPTURE_GROUP, ParquetCapture};
pub use config::{JobSpec, OutOfOrderPolicy, OutputTarget, ReferenceInput, ServerConfig};
pub use error::ServerError;
pub use folders::{DEAD_LETTER_SUFFIX, FolderSource};
pub use server::Server;
