//! eddy-kafka: the Kafka wire protocol over eddy's log, so stock Kafka clients produce to and
//! consume from eddy streams (a topic is a stream of the same name).
//!
//! Layout of the crate (a request flows top to bottom, its response back up):
//! - [`serve`] (`server.rs`): accepts connections (bounded by a semaphore), one task each, and
//!   stops them all when the shutdown future resolves.
//! - `conn.rs`: one connection: reads frames, decodes the request header, checks the API
//!   version against `versions.rs`, dispatches, writes responses in request order.
//! - `frame.rs`: the size-prefixed frame codec; checks the size before allocating and tells
//!   "need more bytes" from "bad bytes".
//! - one module per message family, each `decode → handle → encode` over the `kafka-protocol`
//!   codecs: `versions.rs` (ApiVersions), `metadata.rs` (Metadata), `produce.rs` (Produce,
//!   InitProducerId), `fetch.rs` (Fetch, ListOffsets), `groups.rs` (FindCoordinator, JoinGroup,
//!   SyncGroup, Heartbeat, LeaveGroup, DescribeGroups, ListGroups, OffsetCommit, OffsetFetch),
//!   `admin.rs` (CreateTopics, DeleteTopics, DescribeConfigs).
//! - state behind them: `records.rs` (Kafka record batches ⇄ log records), `producers.rs`
//!   (idempotent producer ids and sequences), `coordinator.rs` (the consumer-group state machine).
//!
//! What is advertised, stored where and the known gaps: `docs/internals/kafka.md`.
#![deny(missing_docs)]

mod admin;
mod conn;
mod coordinator;
mod error;
mod fetch;
mod frame;
mod groups;
mod metadata;
mod produce;
mod producers;
mod records;
mod server;
mod versions;

pub use error::KafkaError;
pub use records::{CREATE_TIME_HEADER, NULLS_HEADER, PRODUCER_HEADER};
pub use server::serve;
pub use versions::SUPPORTED_APIS;

/// How the Kafka listener behaves; `Default` matches Kafka's own broker defaults where one exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Host name clients are told to connect to (Metadata, FindCoordinator).
    pub advertised_host: String,
    /// Port clients are told to connect to; 0 = the listener's own port.
    pub advertised_port: u16,
    /// Largest request frame accepted; a bigger size prefix closes the connection before any
    /// allocation (Kafka's `socket.request.max.bytes`).
    pub max_frame_bytes: usize,
    /// Largest record batch one partition of a Produce may carry, compressed (Kafka's
    /// `message.max.bytes`); bigger ones get `MESSAGE_TOO_LARGE`.
    pub max_message_bytes: usize,
    /// Partition count of topics created by Metadata auto-creation or `num_partitions = -1`.
    pub auto_create_partitions: u32,
    /// Whether Metadata for an unknown topic creates it (as clients and kcat expect).
    pub auto_create_topics: bool,
    /// Open connections at most; further clients wait in the accept backlog.
    pub max_connections: usize,
    /// How long an empty consumer group's first rebalance waits for more members (Kafka's
    /// `group.initial.rebalance.delay.ms`); 0 completes it as soon as the first member joins.
    pub group_initial_rebalance_delay_ms: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            advertised_host: "127.0.0.1".to_string(),
            advertised_port: 0,
            max_frame_bytes: 100 << 20,
            // Kafka's default message.max.bytes.
            max_message_bytes: 1_048_588,
            auto_create_partitions: 4,
            auto_create_topics: true,
            max_connections: 1024,
            // Kafka's default: consumers started together share the first generation.
            group_initial_rebalance_delay_ms: 3000,
        }
    }
}
