//! eddy-mqtt: an MQTT 3.1.1 and 5 listener in the IoT Hub role: devices publish JSON
//! telemetry, eddy appends it to log streams that jobs read, with the client id available
//! to queries as `IoTHub.ConnectionDeviceId`.
//!
//! Layout of the crate (a packet flows top to bottom, its answer back up):
//! - [`serve`] (`server.rs`): accepts connections under a semaphore, one task each, and
//!   stops them when the shutdown future resolves.
//! - `conn.rs`: one connection: CONNECT (version, credentials, client id), then PUBLISH,
//!   SUBSCRIBE, UNSUBSCRIBE, PINGREQ and DISCONNECT, with the keep-alive timeout. PUBLISHes
//!   read together are appended together; their PUBACKs go out after the append returned.
//! - `codec.rs`: one view of both protocol versions over `rumqttc`'s packet codecs; checks
//!   the fixed header (size limit) before decoding and tells "need more bytes" from "bad bytes".
//! - `routes.rs`: which stream a topic's events go to ([`Routes`]).
//! - `events.rs`: payload → JSON events, each with its `IoTHub` record.
//! - `stats.rs`: counters for `/metrics` ([`MqttStats`]).
//!
//! Design, guarantees and gaps: `docs/internals/mqtt.md`.
#![deny(missing_docs)]

mod codec;
mod conn;
mod error;
mod events;
mod routes;
mod server;
mod stats;

use std::sync::Arc;
use std::time::Duration;

pub use error::MqttError;
pub use routes::{Route, Routes};
pub use server::serve;
pub use stats::{MqttStats, MqttStatsSnapshot};

/// Largest `max_packet_bytes` accepted: one message's events must fit a log batch.
pub const MAX_PACKET_BYTES_MAX: usize = 2 << 20;

/// The stream that receives topics no route names.
pub const DEFAULT_STREAM: &str = "devices";

/// Called after each append with (stream, events, payload bytes), so the server's stream
/// counters include MQTT traffic.
pub type OnAppend = Arc<dyn Fn(&str, u64, u64) + Send + Sync>;

/// How the MQTT listener behaves.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// Topic-to-stream mapping.
    pub routes: Routes,
    /// When set, CONNECT must carry this as its password (any user name).
    pub auth_token: Option<String>,
    /// Largest packet accepted (IoT Hub's device-to-cloud limit is 256 KiB); larger ones
    /// close the connection before they are buffered.
    pub max_packet_bytes: usize,
    /// Open connections at most; further clients wait in the accept backlog.
    pub max_connections: usize,
    /// Time a new connection has to send its CONNECT.
    pub connect_timeout: Duration,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            routes: Routes::default(),
            auth_token: None,
            max_packet_bytes: 256 << 10,
            max_connections: 1024,
            connect_timeout: Duration::from_secs(10),
        }
    }
}
