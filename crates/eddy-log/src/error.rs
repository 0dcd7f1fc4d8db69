//! The one error type of the crate.

use std::path::PathBuf;

/// Every way a log operation can fail; callers map these to HTTP / Kafka error codes.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The stream name breaks the Kafka naming rules (1..=249 of `[A-Za-z0-9._-]`, not `.`/`..`).
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// No stream of that name (in any case) exists.
    #[error("unknown stream {0:?}")]
    UnknownStream(String),
    /// The stream exists but has no such partition.
    #[error("stream {stream:?} has {partitions} partitions, no partition {partition}")]
    UnknownPartition {
        /// The stream asked for.
        stream: String,
        /// The partition asked for.
        partition: u32,
        /// How many partitions the stream has.
        partitions: u32,
    },
    /// `create_stream` found a stream of that name (in any case).
    #[error("stream {0:?} already exists")]
    StreamExists(String),
    /// A partition count outside `1..=MAX_PARTITIONS`.
    #[error("invalid partition count {0} (allowed 1..={max})", max = crate::MAX_PARTITIONS)]
    InvalidPartitions(u32),
    /// `add_partitions` asked for no more partitions than the stream has (partitions are never
    /// removed: that would drop data and remap keys).
    #[error("stream {stream:?} has {current} partitions; cannot change to {requested}")]
    PartitionsNotIncreased {
        /// The stream asked for.
        stream: String,
        /// Its partition count.
        current: u32,
        /// The count asked for.
        requested: u32,
    },
    /// The offset is outside `start..=end` of the partition.
    #[error("offset {offset} out of range {start}..={end}")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: u64,
        /// First offset still stored.
        start: u64,
        /// Next offset to be written.
        end: u64,
    },
    /// One append would encode to more than `MAX_BATCH_BYTES` (or a field exceeds its length limit).
    #[error("batch too large: {bytes} bytes (max {max})")]
    BatchTooLarge {
        /// Encoded size (or offending field size).
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// The operating system refused a read, write, fsync or directory operation.
    #[error("{context}: {source}")]
    Io {
        /// What the log was doing, with the path.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Bytes on disk fail their CRC or structure checks where a torn tail is impossible.
    #[error("corrupt log data in {path}: {reason}", path = path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },
}

impl LogError {
    /// Wraps an OS error with what was being done, so logs name the file.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> LogError {
        LogError::Io {
            context: context.into(),
            source,
        }
    }

    /// Builds a `Corrupt` error for `path`.
    pub(crate) fn corrupt(path: &std::path::Path, reason: impl Into<String>) -> LogError {
        LogError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}
