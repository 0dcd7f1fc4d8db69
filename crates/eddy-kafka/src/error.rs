//! The public error of the crate, the per-connection error that closes a connection, and the
//! Kafka error codes the handlers answer with.

use eddy_log::LogError;

/// Why [`crate::serve`] failed; per-connection problems are logged, never returned here.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The listener failed (e.g. its address could not be read).
    #[error("kafka listener: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration cannot work (e.g. zero partitions for auto-created topics).
    #[error("invalid kafka configuration: {0}")]
    Config(String),
}

/// Why a connection is closed; Kafka brokers close on these too, since no response the client
/// could parse exists.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    /// Socket I/O failed or the peer went away mid-frame.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The size prefix is negative or above `max_frame_bytes`.
    #[error("frame of {size} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// Declared size.
        size: i64,
        /// The limit.
        max: usize,
    },
    /// The request header or body does not decode.
    #[error("malformed {api} request: {reason}")]
    Malformed {
        /// API key (or "header").
        api: String,
        /// Decoder message.
        reason: String,
    },
    /// An API key this broker does not implement, or a version outside the advertised range.
    #[error("unsupported api {api_key} version {version}")]
    Unsupported {
        /// Requested API key.
        api_key: i16,
        /// Requested version.
        version: i16,
    },
    /// A response failed to encode (a handler set a field the version lacks).
    #[error("encode {api} response: {reason}")]
    Encode {
        /// API name.
        api: String,
        /// Encoder message.
        reason: String,
    },
}

/// Kafka protocol error codes used by the handlers (names as in Kafka's `Errors`).
pub(crate) mod code {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const INVALID_REQUEST: i16 = 42;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const INVALID_RECORD: i16 = 87;
}

/// Maps a log failure to the Kafka error code a client knows how to react to.
pub(crate) fn log_error_code(e: &LogError) -> i16 {
    match e {
        LogError::UnknownStream(_) | LogError::UnknownPartition { .. } => {
            code::UNKNOWN_TOPIC_OR_PARTITION
        }
        LogError::InvalidName { .. } => code::INVALID_TOPIC_EXCEPTION,
        LogError::StreamExists(_) => code::TOPIC_ALREADY_EXISTS,
        LogError::InvalidPartitions(_) | LogError::PartitionsNotIncreased { .. } => {
            code::INVALID_PARTITIONS
        }
        LogError::OffsetOutOfRange { .. } => code::OFFSET_OUT_OF_RANGE,
        LogError::BatchTooLarge { .. } => code::MESSAGE_TOO_LARGE,
        LogError::Io { .. } | LogError::Corrupt { .. } => code::KAFKA_STORAGE_ERROR,
    }
}
