//! The server's errors, and how each one answers over HTTP.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use eddy_log::LogError;
use serde_json::json;

/// Everything the server can fail with; each variant maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The log failed (I/O, corruption, unknown stream).
    #[error("log: {0}")]
    Log(#[from] eddy_log::LogError),
    /// The store failed (I/O, bad rows).
    #[error("store: {0}")]
    Store(#[from] eddy_store::StoreError),
    /// A file or directory of the server's own state failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing, with the path.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The HTTP listener could not bind or serve.
    #[error("http server: {0}")]
    Http(std::io::Error),
    /// A request was malformed (bad name, bad option, bad JSON).
    #[error("{0}")]
    Invalid(String),
    /// An event of an ingest request was malformed; nothing of the request was written.
    #[error("{0}")]
    Body(#[from] eddy_connectors::ndjson::BodyError),
    /// The stream exists with another partition count.
    #[error("stream {name} already exists with {partitions} partitions")]
    StreamConflict {
        /// The stream.
        name: String,
        /// Its partition count.
        partitions: u32,
    },
    /// A job of that name (case-insensitive) already exists.
    #[error("job {0} already exists")]
    JobExists(String),
    /// No job of that name.
    #[error("job {0} not found")]
    JobNotFound(String),
    /// The job's query does not compile; carries the diagnostic and its rendering.
    #[error("{diagnostic}")]
    Query {
        /// Message, line, column and help.
        diagnostic: Box<eddy_sql::Diagnostic>,
        /// Rustc-style rendering with the source line and carets.
        rendered: String,
    },
    /// The engine rejected the job for another reason (e.g. an unsupported construct).
    #[error("{0}")]
    Engine(String),
}

impl ServerError {
    /// Shorthand for an [`ServerError::Io`] with context.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> ServerError {
        ServerError::Io {
            context: context.into(),
            source,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ServerError::Invalid(_)
            | ServerError::Body(_)
            | ServerError::Query { .. }
            | ServerError::Engine(_) => StatusCode::BAD_REQUEST,
            ServerError::StreamConflict { .. } | ServerError::JobExists(_) => StatusCode::CONFLICT,
            ServerError::JobNotFound(_) => StatusCode::NOT_FOUND,
            ServerError::Log(e) => match e {
                LogError::InvalidName { .. } | LogError::InvalidPartitions(_) => {
                    StatusCode::BAD_REQUEST
                }
                LogError::BatchTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                LogError::StreamExists(_) => StatusCode::CONFLICT,
                LogError::UnknownStream(_) | LogError::UnknownPartition { .. } => {
                    StatusCode::NOT_FOUND
                }
                LogError::OffsetOutOfRange { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ServerError::Store(_) | ServerError::Io { .. } | ServerError::Http(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = match &self {
            ServerError::Body(e) => json!({ "error": self.to_string(), "line": e.line }),
            ServerError::Query {
                diagnostic,
                rendered,
            } => json!({
                "error": diagnostic.message,
                "line": diagnostic.line,
                "column": diagnostic.column,
                "help": diagnostic.help,
                "rendered": rendered,
            }),
            _ => json!({ "error": self.to_string() }),
        };
        (status, axum::Json(body)).into_response()
    }
}
