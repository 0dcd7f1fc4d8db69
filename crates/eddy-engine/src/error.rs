//! Error types: compile-time ([`EngineError`]), per-event ([`EventError`]) and the
//! runtime evaluation errors that drop one event.

use std::sync::atomic::{AtomicU64, Ordering};
use thiserror::Error;

/// Runtime errors seen by this process, for [`log_runtime_error`].
static RUNTIME_ERRORS: AtomicU64 = AtomicU64::new(0);
/// Every runtime error up to this many is logged...
const LOG_FIRST: u64 = 100;
/// ...then one in this many, so a stream of bad events cannot flood the log (every one
/// is still counted in the job's metrics).
const LOG_EVERY: u64 = 1000;

/// Logs a runtime error that dropped an event or row (`what`), sampled past the first
/// [`LOG_FIRST`].
pub(crate) fn log_runtime_error(what: &str, e: &EvalError) {
    let n = RUNTIME_ERRORS.fetch_add(1, Ordering::Relaxed) + 1;
    if n <= LOG_FIRST || n.is_multiple_of(LOG_EVERY) {
        tracing::warn!(error = %e, runtime_errors = n, "{what} dropped: runtime error");
    }
}

/// Why a job could not be compiled, snapshotted or restored.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The query text does not parse or bind.
    #[error("{0}")]
    Sql(#[from] eddy_sql::Diagnostic),
    /// The binder accepts the construct but the engine does not run it yet.
    #[error("line {line}, column {column}: {message} is not supported yet")]
    Unsupported {
        /// The construct, e.g. `SlidingWindow`.
        message: String,
        /// 1-based line in the query text.
        line: usize,
        /// 1-based column in the query text.
        column: usize,
        /// Where in the query text, to show the offending text.
        span: eddy_sql::span::Span,
    },
    /// A snapshot could not be written or does not fit this job.
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// Reference data that cannot be loaded into this job.
    #[error("reference data: {0}")]
    Reference(String),
}

impl EngineError {
    /// The error drawn over the query text like a compiler diagnostic (line:column, the
    /// source line, carets under the offending text), for errors that point into it.
    pub fn render(&self, text: &str) -> Option<String> {
        match self {
            EngineError::Sql(d) => Some(d.render(text)),
            EngineError::Unsupported { message, span, .. } => Some(
                eddy_sql::Diagnostic::new(format!("{message} is not supported yet"), *span, text)
                    .render(text),
            ),
            EngineError::Snapshot(_) | EngineError::Reference(_) => None,
        }
    }

    /// Adds a help line to a query diagnostic (other errors are returned unchanged).
    pub(crate) fn with_help(self, help: impl Into<String>) -> EngineError {
        match self {
            EngineError::Sql(d) => EngineError::Sql(d.with_help(help)),
            other => other,
        }
    }
}

/// Why one input event was rejected; the job counts it and continues.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EventError {
    /// The payload is not valid JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// The parser's message.
        message: String,
        /// 1-based line in the payload.
        line: usize,
        /// 1-based column in the payload.
        column: usize,
    },
    /// The payload is valid JSON but not an object.
    #[error("an event must be a JSON object, found {found}")]
    NotARecord {
        /// The type found instead.
        found: &'static str,
    },
    /// A value could not be converted, e.g. a TIMESTAMP BY value that is not a datetime.
    #[error("{what}: {message}")]
    Conversion {
        /// Where the conversion happened, e.g. `TIMESTAMP BY (input 'in')`.
        what: String,
        /// What went wrong.
        message: String,
    },
    /// The input index is not one of the job's inputs.
    #[error("no input #{input}")]
    UnknownInput {
        /// The index given.
        input: usize,
    },
    /// The partition was not declared for that input (see `Job::declare_partitions`).
    #[error("input '{input}' has {declared} partitions, got partition {partition}")]
    UnknownPartition {
        /// The input name.
        input: String,
        /// The partition given.
        partition: u32,
        /// How many are declared.
        declared: u32,
    },
}

/// A runtime error while evaluating an expression; the event is dropped and counted.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EvalError {
    /// An operator or function got a value of the wrong type.
    #[error("type error: {0}")]
    Type(String),
    /// Integer division or modulo by zero.
    #[error("division by zero")]
    DivideByZero,
    /// Integer arithmetic overflowed bigint.
    #[error("bigint overflow")]
    Overflow,
    /// CAST could not convert the value.
    #[error("cast failed: {0}")]
    Cast(String),
}
