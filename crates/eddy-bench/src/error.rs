//! The harness's error type.

use std::path::PathBuf;
use thiserror::Error;

/// Why a generator, eddy run, peer run or comparison could not complete.
#[derive(Debug, Error)]
pub enum BenchError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The engine rejects a construct the query uses (it runs in a later version).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The query does not parse or bind: a bug in the query file or the SQL front end.
    #[error("query {query} does not compile: {message}")]
    Compile {
        /// The query name, e.g. `q5`.
        query: String,
        /// The engine's message.
        message: String,
    },
    /// A query reads an input that is not one of `person`, `auction`, `bid`.
    #[error("query {query} reads unknown input '{input}'")]
    UnknownInput {
        /// The query name.
        query: String,
        /// The input name.
        input: String,
    },
    /// No query of that name exists under `bench/nexmark`.
    #[error("no Nexmark query named '{0}' (known: q0 q1 q2 q3 q4 q5 q7 q8 q11)")]
    UnknownQuery(String),
    /// A peer process (Python, Flink, Spark) failed or printed no result.
    #[error("{peer}: {message}")]
    Peer {
        /// Which peer.
        peer: String,
        /// What went wrong, with the end of its output.
        message: String,
    },
}

impl BenchError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BenchError {
        let path = path.into();
        move |source| BenchError::Io { path, source }
    }
}
